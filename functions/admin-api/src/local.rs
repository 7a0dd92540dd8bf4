//! The local dev server: the same router on 127.0.0.1, where a bearer token given at start-up
//! (`ADMIN_DEV_TOKEN`) stands in for API Gateway's authorizer.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::TcpListener;

/// Default port of the local server (`ADMIN_API_PORT` or the first argument override it).
pub const DEFAULT_PORT: u16 = 3000;

/// Why the port setting cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port {value:?} (from {source_name}): must be 0-65535")]
pub struct PortError {
    /// The port setting as given (not a number, or above 65535).
    pub value: String,
    /// Where it came from.
    pub source_name: &'static str,
}

/// The port: the first command-line argument, else `ADMIN_API_PORT`, else [`DEFAULT_PORT`].
pub fn port_from(arg: Option<String>, env: Option<String>) -> Result<u16, PortError> {
    let (value, source_name) = match (arg, env) {
        (Some(arg), _) => (arg, "the first argument"),
        (None, Some(env)) if !env.trim().is_empty() => (env, "ADMIN_API_PORT"),
        _ => return Ok(DEFAULT_PORT),
    };
    value
        .trim()
        .parse()
        .map_err(|_| PortError { value, source_name })
}

/// Binds 127.0.0.1 only: the dev server must not be reachable from other machines.
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await
}

/// Serves `router` on `listener` until the process stops.
pub async fn serve(listener: TcpListener, router: axum::Router) -> std::io::Result<()> {
    axum::serve(listener, router).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_comes_from_the_argument_then_the_environment_then_the_default() {
        assert_eq!(
            port_from(Some("8081".into()), Some("9000".into())),
            Ok(8081)
        );
        assert_eq!(port_from(None, Some("9000".into())), Ok(9000));
        assert_eq!(port_from(None, Some(" ".into())), Ok(DEFAULT_PORT));
        assert_eq!(port_from(None, None), Ok(DEFAULT_PORT));
        assert_eq!(port_from(Some("0".into()), None), Ok(0));
        let err = port_from(None, Some("http".into())).unwrap_err();
        assert_eq!(err.source_name, "ADMIN_API_PORT");
        assert!(port_from(Some("70000".into()), None).is_err());
    }
}
