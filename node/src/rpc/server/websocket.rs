//! WebSocket connections: the client's socket is terminated here and each checked
//! message is passed to jsonrpsee's own WebSocket handler over an in-memory pipe.

use super::{envelope, rpc_error, Body, Ctx, Prepared, Slot};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio_util::compat::TokioAsyncReadCompatExt;

type Outer = soketto::Sender<
    futures::io::BufReader<
        futures::io::BufWriter<tokio_util::compat::Compat<TokioIo<hyper::upgrade::Upgraded>>>,
    >,
>;

/// Takes a WebSocket upgrade: the client's socket is terminated here, and jsonrpsee's
/// own WebSocket handler runs behind an in-memory pipe (see [`relay`]).
pub(super) fn websocket(
    ctx: &Arc<Ctx>,
    slot: &Arc<Slot>,
    req: Request<Incoming>,
) -> Response<Body> {
    if !slot.upgrade(&ctx.limits) {
        return rpc_error(
            StatusCode::TOO_MANY_REQUESTS,
            atonomi_api::rpc::code::TOO_MANY_CONNECTIONS,
            "too many WebSocket connections (from this address or in total)",
        );
    }
    let mut server = soketto::handshake::http::Server::new();
    let response = match server.receive_request(&req) {
        Ok(r) => r,
        Err(e) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                envelope::INVALID_REQUEST,
                &format!("WebSocket handshake failed: {e}"),
            )
        }
    };
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(target: "rpc", "WebSocket upgrade failed: {e}");
                return;
            }
        };
        let stream = futures::io::BufReader::new(futures::io::BufWriter::new(
            TokioIo::new(upgraded).compat(),
        ));
        let mut builder = server.into_builder(stream);
        builder.set_max_message_size(ctx.limits.max_request_bytes as usize);
        let (tx, rx) = builder.finish();
        relay(&ctx, tx, rx).await;
    });
    response.map(|()| Full::new(Bytes::new()))
}

/// Most calls of one WebSocket awaiting jsonrpsee's answer.
const MAX_PENDING_CALLS: usize = 4096;

/// One client WebSocket: each message is checked ([`envelope::prepare`]) and forwarded
/// to jsonrpsee's WebSocket handler on an in-memory pipe; its answers come back with
/// the client's ids, subscription notifications as they are.
async fn relay(
    ctx: &Arc<Ctx>,
    outer_tx: Outer,
    mut outer_rx: soketto::Receiver<
        futures::io::BufReader<
            futures::io::BufWriter<tokio_util::compat::Compat<TokioIo<hyper::upgrade::Upgraded>>>,
        >,
    >,
) {
    let (near, far) = tokio::io::duplex(1 << 16);
    let svc = hyper_util::service::TowerToHyperService::new(ctx.jsonrpsee());
    tokio::spawn(async move {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(far), svc)
            .with_upgrades()
            .await;
    });
    let near = futures::io::BufReader::new(futures::io::BufWriter::new(near.compat()));
    let mut client = soketto::handshake::Client::new(near, "localhost", "/");
    match client.handshake().await {
        Ok(soketto::handshake::ServerResponse::Accepted { .. }) => {}
        other => {
            tracing::warn!(target: "rpc", "the in-process WebSocket handshake failed: {other:?}");
            return;
        }
    }
    let mut builder = client.into_builder();
    builder.set_max_message_size(ctx.limits.max_response_bytes as usize);
    let (mut inner_tx, mut inner_rx) = builder.finish();
    let outer_tx = tokio::sync::Mutex::new(outer_tx);
    let pending: Mutex<BTreeMap<u64, Arc<envelope::Envelope>>> = Mutex::default();
    let send_out = |text: String| {
        let outer_tx = &outer_tx;
        async move {
            let mut tx = outer_tx.lock().await;
            tx.send_text_owned(text).await?;
            tx.flush().await
        }
    };
    let max_batch = ctx.limits.max_batch as usize;
    let up = async {
        let mut next_id = 0u64;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if outer_rx.receive_data(&mut buf).await.is_err() {
                break;
            }
            let busy = pending.lock().unwrap_or_else(|e| e.into_inner()).len() >= MAX_PENDING_CALLS;
            let prepared = if busy {
                Prepared::Answer(envelope::error_object(
                    None,
                    atonomi_api::rpc::code::SERVER_BUSY,
                    "too many calls in flight on this connection",
                ))
            } else {
                envelope::prepare(&buf, max_batch, &mut next_id, true)
            };
            match prepared {
                // Never produced for a WebSocket (see `envelope::prepare`).
                Prepared::PassThrough { body } => {
                    if inner_tx.send_text_owned(body).await.is_err()
                        || inner_tx.flush().await.is_err()
                    {
                        break;
                    }
                }
                Prepared::Answer(a) => {
                    if send_out(a).await.is_err() {
                        break;
                    }
                }
                Prepared::Silent => {}
                Prepared::Forward { body, envelope } => {
                    let envelope = Arc::new(envelope);
                    {
                        let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                        for id in envelope.internal_ids() {
                            p.insert(id, envelope.clone());
                        }
                    }
                    if inner_tx.send_text_owned(body).await.is_err()
                        || inner_tx.flush().await.is_err()
                    {
                        break;
                    }
                }
            }
        }
        let _ = inner_tx.close().await;
    };
    let down = async {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if inner_rx.receive_data(&mut buf).await.is_err() {
                break;
            }
            let text = String::from_utf8_lossy(&buf).into_owned();
            let items = envelope::responses(&text);
            let owner = items
                .iter()
                .find_map(|r| envelope::response_id(r))
                .and_then(|id| {
                    pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(&id)
                        .cloned()
                });
            let out = match owner {
                Some(env) => {
                    {
                        let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
                        for id in env.internal_ids() {
                            p.remove(&id);
                        }
                    }
                    env.finish(&items)
                }
                // A subscription notification (no id): as it is.
                None => Some(text),
            };
            if let Some(out) = out {
                if send_out(out).await.is_err() {
                    break;
                }
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}
