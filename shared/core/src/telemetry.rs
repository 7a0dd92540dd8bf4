//! Tracing set-up: JSON lines in Lambda (CloudWatch parses them), readable text locally.
//! The level of ordinary logs comes from `RUST_LOG` (default `info`). Audit records (target
//! `audit`) have a layer of their own that no log filter reaches: `RUST_LOG=off` or a
//! template's log level can quiet the logs, never switch the audit trail off.

use tracing::Subscriber;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, Layer, Registry};

/// The target audit records are emitted under (see [`crate::audit`]).
pub const AUDIT_TARGET: &str = "audit";

/// Installs the global subscriber; calling it twice is harmless.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let _ = subscriber(filter, in_lambda, std::io::stderr).try_init();
}

/// Logs filtered by `filter`, plus every audit record whatever `filter` says.
pub fn subscriber<W>(filter: EnvFilter, json: bool, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + Clone + 'static,
{
    let is_audit = |meta: &tracing::Metadata<'_>| meta.target() == AUDIT_TARGET;
    let logs = layer(json, writer.clone())
        .with_filter(filter)
        .with_filter(filter_fn(move |meta| !is_audit(meta)));
    let audit = layer(json, writer).with_filter(filter_fn(is_audit));
    let layers: Vec<BoxedLayer> = vec![logs.boxed(), audit.boxed()];
    Registry::default().with(layers)
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn layer<W>(json: bool, writer: W) -> BoxedLayer
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = fmt::layer().with_writer(writer);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .without_time()
            .boxed()
    } else {
        builder.compact().boxed()
    }
}
