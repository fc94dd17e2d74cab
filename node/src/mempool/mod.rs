//! The mempool: an actor on its own thread ([`actor`]) owning the pool ([`pool`]),
//! reached through a typed [`Mailbox`] ([`ingress`]). Who talks to it:
//!
//! - admission ([`crate::admit`], for the RPC server, the network and the bridge
//!   signer): triage before signatures, then verified transactions with their nonces;
//! - the consensus host: whether to start a height, what to propose, which of a block's
//!   signatures were verified already, and each commit;
//! - the RPC server: a transaction's status and the pool's size.

mod actor;
pub mod ingress;
pub mod pool;

pub use ingress::{AdmitFailed, Checked, Mailbox, Message, PoolLookup, Stopped};
pub use pool::{AdmitError, DropReason, Dropped, Mempool, MempoolConfig};

use crate::ingress::NodeEvent;
use crate::metrics::Metrics;
use atonomi_primitives::Height;
use std::sync::Arc;
use tokio::sync::{broadcast, Notify};

/// Messages that may wait for the actor before a sender blocks.
const MAILBOX: usize = 1024;

/// Starts the actor with an empty pool, pruned for committed `height`. It stops when
/// the last clone of the returned [`Mailbox`] is dropped.
pub fn spawn(
    config: MempoolConfig,
    height: Height,
    events: broadcast::Sender<NodeEvent>,
    metrics: Arc<Metrics>,
) -> std::io::Result<Mailbox> {
    let (sender, inbox) = std::sync::mpsc::sync_channel(MAILBOX);
    let arrived = Arc::new(Notify::new());
    let actor = actor::Actor {
        pool: Mempool::new(config),
        height,
        events,
        metrics,
        arrived: arrived.clone(),
    };
    std::thread::Builder::new()
        .name("mempool".into())
        .spawn(move || actor.run(inbox))?;
    Ok(Mailbox::new(sender, arrived))
}
