//! Captures the audit records a test's own thread writes, as the functions write them: through
//! [`crate::telemetry::subscriber`] (JSON lines, ordinary logs off, the audit layer on).
//!
//! ```
//! use snapshot_core::audit::{AuditRecord, Outcome};
//! use snapshot_core::testing::audit::AuditCapture;
//!
//! let audit = AuditCapture::start();
//! AuditRecord::new("snapshotter", "snapshot.create", Outcome::Success).emit();
//! assert_eq!(audit.records()[0]["action"], "snapshot.create");
//! ```
//!
//! One global subscriber, installed on the first [`AuditCapture::start`] of a test binary,
//! writes into a per-thread buffer. A scoped subscriber (`tracing::subscriber::set_default`)
//! would race with tracing's callsite-interest cache when tests run in parallel and drop
//! records. `#[tokio::test]` runs each test, and the tasks it spawns, on the test's own thread
//! (the current-thread runtime), so the buffer holds that test's records alone.

use std::cell::RefCell;
use std::io::Write;
use std::marker::PhantomData;
use std::sync::Once;

use serde_json::Value;

use crate::telemetry::{log_filter, subscriber, AUDIT_TARGET};

thread_local! {
    static LINES: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The subscriber's writer: the current thread's buffer.
#[derive(Debug, Clone, Copy, Default)]
struct ThreadBuffer;

impl Write for ThreadBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LINES.with(|lines| lines.borrow_mut().extend_from_slice(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The audit records written on this thread since [`AuditCapture::start`].
#[derive(Debug)]
pub struct AuditCapture {
    // Not `Send`: it reads the buffer of the thread that started it.
    thread: PhantomData<*const ()>,
}

impl AuditCapture {
    /// Starts capturing this thread's audit records, forgetting those written before.
    ///
    /// # Panics
    /// When another global tracing subscriber was installed first in this test binary (its
    /// records would not reach the buffer).
    pub fn start() -> Self {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            let filter = log_filter("off").unwrap_or_default();
            tracing::subscriber::set_global_default(subscriber(filter, true, || ThreadBuffer))
                .expect("the audit capture's subscriber is the test binary's only global one");
        });
        LINES.with(|lines| lines.borrow_mut().clear());
        Self {
            thread: PhantomData,
        }
    }

    /// Everything written so far, one JSON line per record, as CloudWatch would receive it
    /// (the record itself is the line's `audit` field, a JSON string).
    ///
    /// # Panics
    /// When the lines are not UTF-8 (the subscriber writes UTF-8 only).
    pub fn text(&self) -> String {
        LINES.with(|lines| String::from_utf8(lines.borrow().clone()).expect("UTF-8 log lines"))
    }

    /// The audit records written so far, each parsed (`actor`, `action`, `outcome`, …; see
    /// [`crate::audit::AuditRecord`]).
    ///
    /// # Panics
    /// When an audit line's `audit` field is not a JSON object (it is a test assertion).
    pub fn records(&self) -> Vec<Value> {
        self.text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["target"] == AUDIT_TARGET)
            .map(|line| {
                let record = line["audit"].as_str().unwrap_or_default();
                serde_json::from_str(record)
                    .unwrap_or_else(|e| panic!("audit record is not JSON ({e}): {line}"))
            })
            .collect()
    }
}
