//! Each function's release bootstrap: its size, and its cold start — process start to the
//! first invocation answered — through a local Lambda Runtime API (the same HTTP interface
//! Lambda gives a `provided.al2023` function), with the sample events of `events/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::mpsc;

use crate::stats::Figure;

pub const FUNCTIONS: [(&str, &str); 3] = [
    ("snapshotter", "events/snapshotter/insert-batch.json"),
    ("pruner", "events/pruner/dry-run.json"),
    ("admin-api", "events/admin-api/list.json"),
];

#[derive(Debug, Clone)]
pub struct BinaryRow {
    pub function: &'static str,
    /// The sample event of its first invocation.
    pub event: &'static str,
    pub bytes: u64,
    /// `None` when the function did not answer (see `outcome`).
    pub cold_start_ms: Option<Figure>,
    /// What the first invocation answered with (`response` or `error`).
    pub outcome: String,
}

#[derive(Clone)]
struct Api {
    event: Arc<Mutex<Option<Vec<u8>>>>,
    done: mpsc::UnboundedSender<(Instant, String)>,
}

async fn next(State(api): State<Api>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let event = api
        .event
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    let Some(event) = event else {
        // One invocation per process: later polls wait until the process is stopped.
        std::future::pending::<()>().await;
        return (StatusCode::NO_CONTENT, HeaderMap::new(), Vec::new());
    };
    let mut headers = HeaderMap::new();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() + 30_000);
    headers.insert(
        "lambda-runtime-aws-request-id",
        HeaderValue::from_static("bench-request-1"),
    );
    if let Ok(value) = HeaderValue::from_str(&deadline.to_string()) {
        headers.insert("lambda-runtime-deadline-ms", value);
    }
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:bench"),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
    );
    (StatusCode::OK, headers, event)
}

async fn answered(
    State(api): State<Api>,
    UrlPath((_id, kind)): UrlPath<(String, String)>,
) -> StatusCode {
    let _ = api.done.send((Instant::now(), kind));
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<Api>) -> StatusCode {
    let _ = api.done.send((Instant::now(), "init error".to_owned()));
    StatusCode::ACCEPTED
}

/// One cold start: spawn, serve one event, time the answer, stop the process.
async fn cold_start(
    bootstrap: &Path,
    event: Vec<u8>,
    env: &[(String, String)],
) -> Result<(Duration, String)> {
    let (done, mut answers) = mpsc::unbounded_channel();
    let api = Api {
        event: Arc::new(Mutex::new(Some(event))),
        done,
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(answered))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(api);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bootstrap)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", bootstrap.display()))?;
    // A process that exits before answering (a failed start) is reported at once.
    let answer = tokio::select! {
        answer = tokio::time::timeout(Duration::from_secs(30), answers.recv()) => answer.ok().flatten(),
        status = child.wait() => {
            server.abort();
            bail!("{} exited before answering: {status:?}", bootstrap.display());
        }
    };
    let _ = child.kill().await;
    server.abort();
    match answer {
        Some((at, kind)) => Ok((at.duration_since(started), kind)),
        None => bail!(
            "{} did not answer its first invocation",
            bootstrap.display()
        ),
    }
}

pub async fn run(root: &Path, env: &[(String, String)], runs: usize) -> Result<Vec<BinaryRow>> {
    let mut rows = Vec::new();
    for (function, event) in FUNCTIONS {
        let bootstrap: PathBuf = root.join("target/lambda").join(function).join("bootstrap");
        let bytes = std::fs::metadata(&bootstrap)
            .with_context(|| format!("{} (run `make build` first)", bootstrap.display()))?
            .len();
        let body = std::fs::read(root.join(event))?;
        let mut times = Vec::new();
        let mut outcome = String::new();
        for _ in 0..runs {
            match cold_start(&bootstrap, body.clone(), env).await {
                Ok((took, kind)) => {
                    times.push(took.as_secs_f64() * 1000.0);
                    outcome = kind;
                }
                // Reported in the table (no cold start figure) rather than losing the run.
                Err(e) => {
                    eprintln!("bench: {function}: {e:#}");
                    outcome = format!("failed: {e:#}");
                    times.clear();
                    break;
                }
            }
        }
        rows.push(BinaryRow {
            function,
            event,
            bytes,
            cold_start_ms: (!times.is_empty()).then(|| Figure::of(times)),
            outcome,
        });
    }
    Ok(rows)
}
