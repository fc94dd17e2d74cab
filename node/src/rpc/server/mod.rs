//! The JSON-RPC listener in front of jsonrpsee's method table: connection limits per
//! remote address and per transport, an idle timeout for keep-alive connections, body
//! limits that answer 413 however the body is framed, and the JSON-RPC 2.0 envelope
//! ([`super::envelope`]) checked on HTTP and WebSocket alike.
//!
//! jsonrpsee still runs every method and subscription. HTTP requests are handed to its
//! tower service in process; a WebSocket is terminated here and each checked message is
//! passed to jsonrpsee's own WebSocket handler over an in-memory pipe, so
//! subscriptions keep jsonrpsee's semantics while the client only ever sees
//! conforming answers.

mod metrics;
mod websocket;

use super::envelope::{self, Prepared};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonrpsee::server::{Methods, ServerConfig, StopHandle};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The listener's bounds (`[rpc]` in `config.toml`).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_request_bytes: u32,
    pub max_response_bytes: u32,
    pub max_batch: u32,
    /// HTTP connections open at once, and from one remote address.
    pub max_http: usize,
    pub max_http_per_ip: usize,
    /// WebSocket connections open at once, and from one remote address: a budget of
    /// their own, so held WebSockets never lock HTTP clients out (nor the reverse).
    pub max_ws: usize,
    pub max_ws_per_ip: usize,
    /// An HTTP connection with no request in flight for this long is closed.
    pub idle: Duration,
}

/// Open connections by transport, in total and per remote address.
#[derive(Debug, Default)]
struct Budget {
    total: usize,
    per_ip: BTreeMap<IpAddr, usize>,
}

impl Budget {
    fn try_take(&mut self, ip: IpAddr, max: usize, max_per_ip: usize) -> bool {
        let mine = self.per_ip.get(&ip).copied().unwrap_or(0);
        if self.total >= max || mine >= max_per_ip {
            return false;
        }
        self.total += 1;
        *self.per_ip.entry(ip).or_default() += 1;
        true
    }

    fn give_back(&mut self, ip: IpAddr) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

#[derive(Debug, Default)]
struct Budgets {
    http: Budget,
    ws: Budget,
}

/// One accepted connection's place in the budgets, released when the connection's
/// socket is dropped (after an upgrade the socket lives inside the WebSocket).
#[derive(Debug)]
struct Slot {
    ip: IpAddr,
    budgets: Arc<Mutex<Budgets>>,
    websocket: AtomicBool,
    /// Requests being served, and when the last one ended (ms since `born`).
    inflight: AtomicUsize,
    last_active_ms: AtomicU64,
    born: tokio::time::Instant,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Budgets> {
        self.budgets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves this connection from the HTTP budget to the WebSocket one, if it has room.
    fn upgrade(&self, limits: &Limits) -> bool {
        let mut b = self.lock();
        if !b.ws.try_take(self.ip, limits.max_ws, limits.max_ws_per_ip) {
            return false;
        }
        b.http.give_back(self.ip);
        self.websocket.store(true, Ordering::SeqCst);
        true
    }

    fn begin(&self) {
        self.inflight.fetch_add(1, Ordering::SeqCst);
    }

    fn end(&self) {
        self.last_active_ms
            .store(self.born.elapsed().as_millis() as u64, Ordering::SeqCst);
        self.inflight.fetch_sub(1, Ordering::SeqCst);
    }

    fn idle_for(&self) -> Option<Duration> {
        if self.inflight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_active_ms.load(Ordering::SeqCst));
        Some(self.born.elapsed().saturating_sub(last))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let ip = self.ip;
        let ws = self.websocket.load(Ordering::SeqCst);
        let mut b = self.lock();
        if ws {
            b.ws.give_back(ip);
        } else {
            b.http.give_back(ip);
        }
    }
}

/// A socket that holds its connection's [`Slot`].
#[derive(Debug)]
struct Counted {
    inner: TcpStream,
    _slot: Arc<Slot>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type Body = Full<Bytes>;
type RpcLayers = tower::layer::util::Stack<metrics::CountLayer, tower::layer::util::Identity>;
type JsonRpsee = jsonrpsee::server::TowerService<RpcLayers, tower::layer::util::Identity>;

/// What every connection shares.
struct Ctx {
    limits: Limits,
    methods: Methods,
    builder: jsonrpsee::server::TowerServiceBuilder<RpcLayers, tower::layer::util::Identity>,
    stop: StopHandle,
    budgets: Arc<Mutex<Budgets>>,
}

impl Ctx {
    fn jsonrpsee(&self) -> JsonRpsee {
        self.builder
            .clone()
            .build(self.methods.clone(), self.stop.clone())
    }
}

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn rpc_error(status: StatusCode, code: i32, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "jsonrpc": "2.0", "error": { "code": code, "message": message }, "id": null });
    respond(status, body.to_string())
}

fn too_large(limit: u32) -> Response<Body> {
    let mut r = rpc_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        atonomi_api::rpc::code::OVERSIZED_REQUEST,
        &format!("the request body is over the {limit}-byte limit"),
    );
    r.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    r
}

/// Serves JSON-RPC on `listener` until `stop` fires.
pub fn spawn(
    listener: tokio::net::TcpListener,
    methods: Methods,
    limits: Limits,
    stop: StopHandle,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let config = ServerConfig::builder()
        .max_request_body_size(limits.max_request_bytes)
        .max_response_body_size(limits.max_response_bytes)
        // The budgets here bound connections; jsonrpsee's own guard (which counts HTTP
        // requests and WebSockets together) is set above them so it never decides.
        .max_connections((limits.max_http + limits.max_ws + 1) as u32)
        .set_batch_request_config(jsonrpsee::server::BatchRequestConfig::Limit(
            limits.max_batch,
        ))
        .build();
    let ctx = Arc::new(Ctx {
        builder: jsonrpsee::server::Server::builder()
            .set_config(config)
            .set_rpc_middleware(
                jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new()
                    .layer(metrics::CountLayer(metrics)),
            )
            .to_service_builder(),
        limits,
        methods,
        stop: stop.clone(),
        budgets: Arc::default(),
    });
    tokio::spawn(async move {
        let stopped = stop.shutdown();
        tokio::pin!(stopped);
        loop {
            let (sock, remote) = tokio::select! {
                _ = &mut stopped => return,
                r = listener.accept() => match r {
                    Ok(r) => r,
                    Err(e) => {
                        // Out of descriptors, most likely: back off instead of spinning.
                        tracing::warn!(target: "rpc", "accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = sock.set_nodelay(true);
            tokio::spawn(connection(ctx.clone(), sock, remote));
        }
    });
}

async fn connection(ctx: Arc<Ctx>, sock: TcpStream, remote: SocketAddr) {
    let ip = remote.ip();
    let admitted = {
        let mut b = ctx.budgets.lock().unwrap_or_else(|e| e.into_inner());
        b.http
            .try_take(ip, ctx.limits.max_http, ctx.limits.max_http_per_ip)
    };
    let builder = {
        let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        b.http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(ctx.limits.idle);
        b
    };
    if !admitted {
        // Over a budget: one 429 on this connection, then close it.
        let svc = hyper::service::service_fn(|_req: Request<Incoming>| async {
            let mut r = rpc_error(
                StatusCode::TOO_MANY_REQUESTS,
                atonomi_api::rpc::code::TOO_MANY_CONNECTIONS,
                "too many connections from this address",
            );
            r.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
            Ok::<_, std::convert::Infallible>(r)
        });
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            builder.serve_connection(TokioIo::new(sock), svc),
        )
        .await;
        return;
    }
    let slot = Arc::new(Slot {
        ip,
        budgets: ctx.budgets.clone(),
        websocket: AtomicBool::new(false),
        inflight: AtomicUsize::new(0),
        last_active_ms: AtomicU64::new(0),
        born: tokio::time::Instant::now(),
    });
    let io = Counted {
        inner: sock,
        _slot: slot.clone(),
    };
    let svc = {
        let (ctx, slot) = (ctx.clone(), slot.clone());
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let (ctx, slot) = (ctx.clone(), slot.clone());
            async move {
                slot.begin();
                let r = handle(&ctx, &slot, req).await;
                slot.end();
                Ok::<_, std::convert::Infallible>(r)
            }
        })
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let stopped = ctx.stop.clone().shutdown();
    tokio::pin!(stopped);
    let tick = (ctx.limits.idle / 4).max(Duration::from_millis(100));
    let mut closing = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = &mut stopped, if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(tick), if !closing => {
                if slot.idle_for().is_some_and(|d| d >= ctx.limits.idle) {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

fn is_websocket(req: &Request<Incoming>) -> bool {
    let has = |name: hyper::header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has(hyper::header::UPGRADE, "websocket") && has(hyper::header::CONNECTION, "upgrade")
}

async fn handle(ctx: &Arc<Ctx>, slot: &Arc<Slot>, req: Request<Incoming>) -> Response<Body> {
    if is_websocket(&req) {
        return websocket::websocket(ctx, slot, req);
    }
    if req.method() != hyper::Method::POST
        || !jsonrpsee::server::http::is_json(req.headers().get(hyper::header::CONTENT_TYPE))
    {
        // jsonrpsee answers what is not a JSON-RPC POST (405, 415, ...).
        return match call(ctx, req).await {
            Ok((parts, body)) => Response::from_parts(parts, Full::new(body)),
            Err(r) => r,
        };
    }
    let max = ctx.limits.max_request_bytes;
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Far over the bound: refused before reading. Somewhat over: read and discarded
    // (below), so the answer reaches a client that is still sending.
    if declared.is_some_and(|n| n > DRAIN_BYTES as u64) {
        return too_large(max);
    }
    // A chunked body has no length to check first: it is read under the same bound.
    let body = match read_body(req.into_body(), max as usize).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return too_large(max),
        Err(BodyError::Unreadable) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                envelope::PARSE_ERROR,
                "the request body could not be read",
            )
        }
    };
    let mut next_id = 0;
    let (forward, env) =
        match envelope::prepare(&body, ctx.limits.max_batch as usize, &mut next_id, false) {
            Prepared::Answer(a) => return respond(StatusCode::OK, a),
            Prepared::Silent => return no_content(),
            Prepared::Forward { body, envelope } => (body, Some(envelope)),
            Prepared::PassThrough { body } => (body, None),
        };
    let mut inner = Request::new(Full::new(Bytes::from(forward)));
    *inner.method_mut() = hyper::Method::POST;
    inner.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    let (parts, text) = match call(ctx, inner).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if parts.status != StatusCode::OK {
        return Response::from_parts(parts, Full::new(text));
    }
    let Some(env) = env else {
        return Response::from_parts(parts, Full::new(text));
    };
    let text = String::from_utf8_lossy(&text);
    match env.finish(&envelope::responses(&text)) {
        Some(answer) => respond(StatusCode::OK, answer),
        // Notifications only: executed, and nothing to say (JSON-RPC 2.0, section 4.1).
        None => no_content(),
    }
}

fn no_content() -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

enum BodyError {
    TooLarge,
    Unreadable,
}

/// Bytes of an oversized body read and discarded before the 413 is sent, so the client
/// (still sending) gets the answer instead of a reset connection.
const DRAIN_BYTES: usize = 16 << 20;
const BODY_DEADLINE: Duration = Duration::from_secs(10);

/// Reads a request body of at most `max` bytes, however it is framed.
async fn read_body(mut body: Incoming, max: usize) -> Result<Bytes, BodyError> {
    let deadline = tokio::time::Instant::now() + BODY_DEADLINE;
    let mut out = Vec::new();
    let mut seen = 0usize;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(f))) => f,
            Ok(None) => break,
            Ok(Some(Err(_))) | Err(_) => return Err(BodyError::Unreadable),
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > max {
            if seen > DRAIN_BYTES {
                return Err(BodyError::TooLarge);
            }
            continue;
        }
        out.extend_from_slice(&data);
    }
    if seen > max {
        return Err(BodyError::TooLarge);
    }
    Ok(Bytes::from(out))
}

/// Calls jsonrpsee's HTTP service in process and reads its whole answer.
async fn call<B>(
    ctx: &Arc<Ctx>,
    req: Request<B>,
) -> Result<(hyper::http::response::Parts, Bytes), Response<Body>>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let failed = || {
        rpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            atonomi_api::rpc::code::INTERNAL,
            "internal error",
        )
    };
    let mut svc = ctx.jsonrpsee();
    let response = tower::Service::call(&mut svc, req)
        .await
        .map_err(|_| failed())?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|_| failed())?.to_bytes();
    Ok((parts, body))
}
