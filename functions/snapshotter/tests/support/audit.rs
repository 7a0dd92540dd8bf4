//! Captures the audit records a test's own thread writes.

thread_local! {
    static AUDIT_LINES: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Where the audit records go: the current thread's buffer. One global subscriber (installed
/// once) rather than a scoped one: scoped subscribers race with tracing's callsite-interest
/// cache when tests run in parallel and drop records (as in functions/admin-api/tests/common).
/// `#[tokio::test]` runs each test on its own thread, so the buffer is the test's own.
#[derive(Clone, Copy, Default)]
struct ThreadBuffer;

impl std::io::Write for ThreadBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        AUDIT_LINES.with(|lines| lines.borrow_mut().extend_from_slice(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing this thread's audit records (logs off; audit records always written).
pub fn capture_audit() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let subscriber = snapshot_core::telemetry::subscriber(
            snapshot_core::telemetry::log_filter("off").unwrap(),
            true,
            || ThreadBuffer,
        );
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
    AUDIT_LINES.with(|lines| lines.borrow_mut().clear());
}

pub fn captured_audit() -> String {
    AUDIT_LINES.with(|lines| String::from_utf8(lines.borrow().clone()).unwrap())
}
