//! Blocks and the event subscriptions: committed events and dropped transactions,
//! filtered by name and by who they involve.

use super::Rpc;

use crate::chain::ChainReader;
use crate::ingress::NodeEvent;
use crate::mempool::Dropped;
use atonomi_api::rpc::views::*;
use atonomi_api::rpc::{AtonomiBlocksServer, AtonomiEventsServer, EventFilter};
use atonomi_primitives::Height;
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::{PendingSubscriptionSink, SubscriptionMessage};

#[jsonrpsee::core::async_trait]
impl AtonomiBlocksServer for Rpc {
    async fn open(&self, pending: PendingSubscriptionSink) -> SubscriptionResult {
        let mut rx = self.events.subscribe();
        let sink = pending.accept().await?;
        loop {
            match rx.recv().await {
                Ok(NodeEvent::Committed { height, hash, txs }) => {
                    let msg =
                        SubscriptionMessage::from(serde_json::value::to_raw_value(&BlockNotice {
                            height,
                            hash,
                            txs,
                        })?);
                    if sink.send(msg).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(NodeEvent::Dropped(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return Ok(()),
            }
        }
    }
}

#[jsonrpsee::core::async_trait]
impl AtonomiEventsServer for Rpc {
    async fn open(
        &self,
        pending: PendingSubscriptionSink,
        filter: Option<EventFilter>,
    ) -> SubscriptionResult {
        // A malformed filter was refused before this ran, never widened to every event.
        let filter = filter.unwrap_or_default();
        let mut rx = self.events.subscribe();
        let sink = pending.accept().await?;
        loop {
            let notices = match rx.recv().await {
                Ok(NodeEvent::Committed { height, .. }) => {
                    matching_events(&self.chain, height, &filter)
                }
                Ok(NodeEvent::Dropped(d)) => dropped_event(&d, &filter).into_iter().collect(),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return Ok(()),
            };
            for notice in notices {
                let msg = SubscriptionMessage::from(serde_json::value::to_raw_value(&notice)?);
                if sink.send(msg).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}

fn mentions(v: &serde_json::Value, needle: &str) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s == needle,
        Value::Array(a) => a.iter().any(|x| mentions(x, needle)),
        Value::Object(o) => o.values().any(|x| mentions(x, needle)),
        _ => false,
    }
}

/// A dropped transaction as a subscription event, if the filter wants it.
fn dropped_event(d: &Dropped, f: &EventFilter) -> Option<EventNotice> {
    let notice = DroppedNotice {
        dropped: d.clone(),
        event: DroppedTag::TransactionDropped,
        message: d.reason.explain(),
    };
    let name_ok = f.events.is_empty() || f.events.iter().any(|w| w == "transaction_dropped");
    let who_ok = f
        .involving
        .as_deref()
        .is_none_or(|w| serde_json::to_value(&notice).is_ok_and(|v| mentions(&v, w)));
    (name_ok && who_ok).then_some(EventNotice::Dropped {
        tx_hash: d.hash,
        event: notice,
    })
}

/// The events of the block at `height` that the filter wants.
fn matching_events(chain: &ChainReader, height: Height, f: &EventFilter) -> Vec<EventNotice> {
    let receipts = chain.receipts(height).unwrap_or_default();
    let mut out = Vec::new();
    for r in receipts {
        for event in r.events {
            let Ok(v) = serde_json::to_value(&event) else {
                continue;
            };
            let name_ok = f.events.is_empty()
                || v["event"]
                    .as_str()
                    .is_some_and(|n| f.events.iter().any(|w| w == n));
            let who_ok = f.involving.as_deref().is_none_or(|w| mentions(&v, w));
            if name_ok && who_ok {
                out.push(EventNotice::Committed {
                    height,
                    tx_hash: r.tx_hash,
                    event,
                });
            }
        }
    }
    out
}
