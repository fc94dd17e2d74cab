//! The JSON-RPC middleware that counts requests by method and outcome and times them
//! (`atonomi_rpc_requests_total`, `atonomi_rpc_request_seconds`). Method labels are
//! the declared methods only (anything else is `unknown`), so a client cannot grow the
//! label set; a batch counts once, as `batch`.

use crate::metrics::{Metrics, RpcCall, RpcMethod};
use jsonrpsee::core::middleware::{Batch, Notification, RpcServiceT};
use jsonrpsee::types::Request;
use jsonrpsee::MethodResponse;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// Wraps each connection's RPC service in [`Counted`].
#[derive(Debug, Clone)]
pub(super) struct CountLayer(pub Arc<Metrics>);

impl<S> tower::Layer<S> for CountLayer {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Counted<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// The declared name of `method`, or `unknown`.
fn label(method: &str) -> &'static str {
    atonomi_api::rpc::methods::METHODS
        .iter()
        .find_map(|m| match m.kind {
            atonomi_api::rpc::declare::Kind::Subscription { unsubscribe, .. }
                if unsubscribe == method =>
            {
                Some(unsubscribe)
            }
            _ => (m.name == method).then_some(m.name),
        })
        .unwrap_or("unknown")
}

fn observe(metrics: &Metrics, method: &'static str, ok: bool, started: Instant) {
    let outcome = if ok { "ok" } else { "error" };
    metrics
        .rpc_requests
        .get_or_create(&RpcCall { method, outcome })
        .inc();
    metrics
        .rpc_request_seconds
        .get_or_create(&RpcMethod { method })
        .observe(started.elapsed().as_secs_f64());
}

impl<S> RpcServiceT for Counted<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let (inner, metrics) = (self.inner.clone(), self.metrics.clone());
        async move {
            let method = label(request.method_name());
            let started = Instant::now();
            let response = inner.call(request).await;
            observe(&metrics, method, response.is_success(), started);
            response
        }
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let (inner, metrics) = (self.inner.clone(), self.metrics.clone());
        async move {
            let started = Instant::now();
            let response = inner.batch(batch).await;
            observe(&metrics, "batch", response.is_success(), started);
            response
        }
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.notification(n)
    }
}
