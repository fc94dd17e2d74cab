//! The metrics port: `GET /metrics` (Prometheus text, from [`crate::metrics`]),
//! `GET /health` and `GET /ready` (JSON, from [`crate::health`]).

use crate::health::Health;
use crate::metrics::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;

/// Connections the metrics port serves at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 64;

/// How long `/health` and `/ready` wait for the node's parts to answer.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves `GET /metrics` (Prometheus text), `GET /health` and `GET /ready` (JSON; 200
/// or 503, see [`crate::health`]); anything else gets 404. At most
/// [`MAX_CONNECTIONS`] at once, each with a header deadline and a lifetime bound.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let sock = match listener.accept().await {
                Ok((sock, _)) => sock,
                Err(e) => {
                    tracing::warn!(target: "metrics", "accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                drop(sock);
                continue;
            };
            let (metrics, health) = (metrics.clone(), health.clone());
            tokio::spawn(async move {
                let _slot = slot;
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (metrics, health) = (metrics.clone(), health.clone());
                        async move {
                            Ok::<_, std::convert::Infallible>(answer(&req, &metrics, &health).await)
                        }
                    },
                );
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(5))
                    .max_buf_size(16 << 10)
                    .serve_connection(hyper_util::rt::TokioIo::new(sock), svc);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(60), conn).await;
            });
        }
    });
    Ok(bound)
}

type Body = http_body_util::Full<bytes::Bytes>;

async fn answer(
    req: &hyper::Request<hyper::body::Incoming>,
    metrics: &Metrics,
    health: &Arc<Health>,
) -> hyper::Response<Body> {
    use hyper::{Method, StatusCode};
    if req.method() != Method::GET {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics.render(),
        ),
        path @ ("/health" | "/ready") => {
            let health = health.clone();
            let ready = path == "/ready";
            let probe = tokio::task::spawn_blocking(move || {
                if ready {
                    let r = health.ready();
                    (r.ready, serde_json::to_string(&r))
                } else {
                    let r = health.health();
                    (r.healthy, serde_json::to_string(&r))
                }
            });
            let (ok, body) = match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
                Ok(Ok((ok, Ok(body)))) => (ok, body),
                _ => (
                    false,
                    serde_json::json!({
                        "healthy": false,
                        "ready": false,
                        "reasons": [format!("the node's parts did not answer within {} s", PROBE_TIMEOUT.as_secs())],
                    })
                    .to_string(),
                ),
            };
            let status = if ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            respond(status, "application/json", body + "\n")
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: /metrics, /health, /ready\n".into(),
        ),
    }
}

fn respond(
    status: hyper::StatusCode,
    content_type: &'static str,
    body: String,
) -> hyper::Response<Body> {
    let mut r = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}
