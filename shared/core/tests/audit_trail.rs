//! The audit trail cannot be switched off by the log filter (`RUST_LOG`, the template's level).

use std::io::Write;
use std::sync::{Arc, Mutex};

use snapshot_core::audit::{AuditRecord, Outcome};
use snapshot_core::telemetry::{log_filter, subscriber};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn lines_with(filter: &str) -> String {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = subscriber(log_filter(filter).unwrap(), true, move || writer.clone());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("an ordinary log line");
        AuditRecord::new("tester", "snapshot.create", Outcome::Success)
            .aggregate("item-1", Some(3))
            .emit();
    });
    let bytes = buffer.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn audit_records_are_written_whatever_the_log_filter() {
    for filter in ["off", "error", "warn", "audit=off", "off,audit=off", "info"] {
        let out = lines_with(filter);
        let audit: Vec<&str> = out.lines().filter(|l| l.contains("\"audit\"")).collect();
        assert_eq!(audit.len(), 1, "filter `{filter}`: {out}");
        assert!(audit[0].contains("snapshot.create"), "{out}");
    }
}

#[test]
fn the_log_filter_still_governs_ordinary_logs() {
    assert!(!lines_with("off").contains("an ordinary log line"));
    assert!(!lines_with("warn").contains("an ordinary log line"));
    assert!(lines_with("info").contains("an ordinary log line"));
}
