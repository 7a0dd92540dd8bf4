//! Tracing set-up: JSON lines in Lambda (CloudWatch parses them), readable text locally.
//! The level of ordinary logs comes from `RUST_LOG` (default `info`). Audit records (target
//! `audit`) have a layer of their own that no log filter reaches: `RUST_LOG=off` or a
//! template's log level can quiet the logs, never switch the audit trail off.
//!
//! `RUST_LOG` takes comma-separated `level`, `target` and `target=level` directives (the most
//! specific target prefix wins, as with `EnvFilter`). The filter is tracing-subscriber's
//! [`Targets`], not `EnvFilter`: `EnvFilter`'s span and field-value matching links a regex
//! engine into every function (about 0.4 MB of each bootstrap, docs/binaries.md).

use tracing::Subscriber;
use tracing_subscriber::filter::{filter_fn, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, Layer, Registry};

/// The target audit records are emitted under (see [`crate::audit`]).
pub const AUDIT_TARGET: &str = "audit";

/// Installs the global subscriber; calling it twice is harmless.
pub fn init() {
    let filter = env_log_filter(default_log_filter());
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let _ = subscriber(filter, in_lambda, std::io::stderr).try_init();
}

/// The filter `RUST_LOG` describes, or `default` when it is unset or does not parse.
pub fn env_log_filter(default: Targets) -> Targets {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| log_filter(&directives))
        .unwrap_or(default)
}

/// The filter `directives` (`RUST_LOG` syntax: `info`, `snapshotter=debug,info`, `off`)
/// describe; `None` when one of them does not parse (then [`init`] uses the default, as it
/// did with `EnvFilter::try_from_default_env`). Empty directives (`info,`) are skipped.
pub fn log_filter(directives: &str) -> Option<Targets> {
    let directives: Vec<&str> = directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return None;
    }
    directives.join(",").parse().ok()
}

/// The filter when `RUST_LOG` is unset or does not parse: ordinary logs at `info` and above.
pub fn default_log_filter() -> Targets {
    Targets::new().with_default(tracing::Level::INFO)
}

/// Logs filtered by `filter`, plus every audit record whatever `filter` says.
pub fn subscriber<W>(filter: Targets, json: bool, writer: W) -> impl Subscriber + Send + Sync
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

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::{default_log_filter, log_filter};

    #[test]
    fn a_bare_level_applies_to_every_target() {
        let filter = log_filter("warn").unwrap();
        assert!(filter.would_enable("snapshotter", &Level::WARN));
        assert!(!filter.would_enable("snapshotter", &Level::INFO));
        assert!(!log_filter("off")
            .unwrap()
            .would_enable("pruner", &Level::ERROR));
    }

    #[test]
    fn the_most_specific_target_prefix_wins() {
        let filter = log_filter("snapshotter=debug, info,admin_api::auth=error,").unwrap();
        assert!(filter.would_enable("snapshotter::handler", &Level::DEBUG));
        assert!(!filter.would_enable("snapshotter", &Level::TRACE));
        assert!(filter.would_enable("pruner", &Level::INFO));
        assert!(!filter.would_enable("pruner", &Level::DEBUG));
        assert!(filter.would_enable("admin_api::auth::jwks", &Level::ERROR));
        assert!(!filter.would_enable("admin_api::auth", &Level::WARN));
        assert!(filter.would_enable("admin_api::routes", &Level::INFO));
    }

    #[test]
    fn targets_without_a_default_leave_other_targets_off() {
        let filter = log_filter("snapshotter=debug").unwrap();
        assert!(filter.would_enable("snapshotter", &Level::DEBUG));
        assert!(!filter.would_enable("pruner", &Level::ERROR));
    }

    #[test]
    fn directives_that_do_not_parse_give_none_so_the_default_applies() {
        assert!(log_filter("snapshotter=loud").is_none());
        assert!(log_filter("a=info=debug").is_none());
        assert!(log_filter("").is_none());
        assert!(log_filter(" , ").is_none());
        let default = default_log_filter();
        assert!(default.would_enable("anything", &Level::INFO));
        assert!(!default.would_enable("anything", &Level::DEBUG));
    }
}
