//! The admin API on 127.0.0.1: the Lambda's router with a dev token, plus one console line
//! per request, and the env file that hands the URL and token to scripts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use admin_api::local::bind;
use admin_api::{dynamo_state, router, Authenticator, DevToken};
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use snapshot_core::config::Config;
use tokio::net::TcpListener;

use crate::progress::{Progress, Reporter, Totals};
use crate::StackError;

/// A fresh dev token: two v4 UUIDs (244 random bits) as 64 hex digits.
pub fn generate_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Binds `port` on 127.0.0.1; a taken port that was not asked for explicitly falls back to a
/// free one.
pub async fn listen(port: u16, required: bool) -> Result<TcpListener, StackError> {
    match bind(port).await {
        Ok(listener) => Ok(listener),
        Err(e) if !required && e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::warn!(port, "port taken; using a free one");
            bind(0)
                .await
                .map_err(|e| StackError::Bind { port: 0, source: e })
        }
        Err(e) => Err(StackError::Bind { port, source: e }),
    }
}

#[derive(Clone)]
struct Console {
    reporter: Reporter,
    totals: Arc<Totals>,
}

/// One progress line per request: method, path (never the query), status, duration.
async fn report_request(State(console): State<Console>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    Totals::add(&console.totals.requests, 1);
    (console.reporter)(&Progress::Request {
        method,
        path,
        status: response.status().as_u16(),
        duration_ms: snapshot_core::clock::millis(started.elapsed()),
    });
    response
}

/// The admin router over the tables in `config`, accepting `token` (and, as in AWS, the
/// callers `authenticator`'s policy admits).
pub fn app(
    sdk: &aws_config::SdkConfig,
    config: Config,
    authenticator: Authenticator,
    token: &str,
    reporter: Reporter,
    totals: Arc<Totals>,
) -> Result<axum::Router, StackError> {
    let token = DevToken::new(token).ok_or(StackError::BlankToken)?;
    let state = dynamo_state(sdk, config);
    Ok(
        router(state, authenticator.with_dev_token(token)).layer(middleware::from_fn_with_state(
            Console { reporter, totals },
            report_request,
        )),
    )
}

/// The env file: `ADMIN_API_URL`, `ADMIN_DEV_TOKEN` and the demo ids, readable only by the
/// owner (it holds the token).
pub struct EnvFile {
    path: PathBuf,
    text: String,
}

impl EnvFile {
    pub fn write(path: &Path, entries: &[(&str, String)]) -> Result<Self, StackError> {
        let failed = |source| StackError::EnvFile {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(failed)?;
        let mut text = String::from(
            "# Written by local-stack (make run) while it runs; removed when it stops.\n",
        );
        for (name, value) in entries {
            text.push_str(&format!("{name}={value}\n"));
        }
        file.write_all(text.as_bytes()).map_err(failed)?;
        Ok(Self {
            path: path.to_owned(),
            text,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file (the token stops working when the stack stops), unless another stack
    /// has written its own there since.
    pub fn remove(&self) {
        if std::fs::read_to_string(&self.path).ok().as_deref() != Some(self.text.as_str()) {
            return;
        }
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove the env file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir()
            .join(format!("local-stack-{}", uuid::Uuid::new_v4().simple()))
            .join(name)
    }

    #[test]
    fn the_env_file_is_private_and_removed_only_while_it_is_ours() {
        let path = temp_path("admin-api.env");
        let file = EnvFile::write(&path, &[("ADMIN_DEV_TOKEN", "secret".to_owned())]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("ADMIN_DEV_TOKEN=secret\n"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        file.remove();
        assert!(!path.exists());

        // A second stack wrote its own file meanwhile: the first one leaves it alone.
        let first = EnvFile::write(&path, &[("ADMIN_DEV_TOKEN", "one".to_owned())]).unwrap();
        let _second = EnvFile::write(&path, &[("ADMIN_DEV_TOKEN", "two".to_owned())]).unwrap();
        first.remove();
        assert!(std::fs::read_to_string(&path).unwrap().contains("two"));
        if let Some(dir) = path.parent() {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn tokens_are_long_and_fresh() {
        let (a, b) = (generate_token(), generate_token());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn a_taken_default_port_falls_back_to_a_free_one_an_explicit_one_fails() {
        let taken = bind(0).await.unwrap();
        let port = taken.local_addr().unwrap().port();
        let fallback = listen(port, false).await.unwrap();
        assert_ne!(fallback.local_addr().unwrap().port(), port);
        let err = listen(port, true).await.unwrap_err();
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }
}
