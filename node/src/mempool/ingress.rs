//! How the rest of the node reaches the mempool: a [`Mailbox`] of typed [`Message`]s,
//! each with its reply channel. Callers may block on a reply from any thread, async or
//! not: the actor answers from its own thread and never waits for anyone.

use super::pool::{AdmitError, Dropped};
use atonomi_primitives::{AccountId, Hash, Height, SignedTransaction};
use std::collections::BTreeSet;
use std::sync::mpsc;
use std::sync::Arc;
use tokio::sync::Notify;

/// Where a reply goes.
pub type Reply<T> = mpsc::SyncSender<T>;

/// A transaction that passed every check of admission that reads the chain, with the
/// sender's next nonce as that check read it.
#[derive(Debug)]
pub struct Checked {
    pub stx: SignedTransaction,
    pub bytes: Vec<u8>,
    pub next_nonce: u64,
}

/// One answer per admitted transaction, in order: its hash or why it was refused.
pub type Admitted = Vec<Result<Hash, AdmitError>>;

/// What the pool knows of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolLookup {
    Pending,
    /// Admitted, then dropped (recently): why.
    Dropped(Dropped),
}

/// An admission the actor could not take.
#[derive(Debug)]
pub enum AdmitFailed {
    /// The nonces were read below a height the pool has already pruned for (a block
    /// committed in between): read them again. The transactions come back.
    Stale(Vec<Checked>),
    Stopped,
}

/// The actor has stopped (the node is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the mempool has stopped")]
pub struct Stopped;

/// The messages the mempool actor handles, one at a time, in the order they arrive.
#[derive(Debug)]
pub enum Message {
    /// Before signatures are verified: which of these (signer, nonce) a full pool would
    /// refuse as things stand (a refusal drops the signer's later pooled transactions).
    Triage {
        senders: Vec<(AccountId, u64)>,
        reply: Reply<Vec<Option<AdmitError>>>,
    },
    /// Verified transactions whose nonces were read at committed `height`.
    Admit {
        height: Height,
        txs: Vec<Checked>,
        reply: Reply<Result<Admitted, Vec<Checked>>>,
    },
    /// Block `height` is committed: the next nonces of the accounts it changed and the
    /// hashes of its transactions.
    Committed {
        height: Height,
        nonces: Vec<(AccountId, u64)>,
        in_block: BTreeSet<Hash>,
    },
    /// Whether some pooled transaction can run in the next block.
    HasExecutable {
        reply: Reply<bool>,
    },
    /// Transactions for the next block, within the limits.
    Select {
        max_txs: usize,
        max_bytes: usize,
        reply: Reply<Vec<Vec<u8>>>,
    },
    /// Which of these hashes the pool holds (their signatures verified on admission).
    Contains {
        hashes: Vec<Hash>,
        reply: Reply<Vec<bool>>,
    },
    Lookup {
        hash: Hash,
        reply: Reply<Option<PoolLookup>>,
    },
    Len {
        reply: Reply<usize>,
    },
}

/// The way to the mempool actor (cheap to clone).
#[derive(Debug, Clone)]
pub struct Mailbox {
    sender: mpsc::SyncSender<Message>,
    arrived: Arc<Notify>,
}

impl Mailbox {
    pub(super) fn new(sender: mpsc::SyncSender<Message>, arrived: Arc<Notify>) -> Mailbox {
        Mailbox { sender, arrived }
    }

    fn ask<T>(&self, message: impl FnOnce(Reply<T>) -> Message) -> Result<T, Stopped> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.sender.send(message(reply)).map_err(|_| Stopped)?;
        answer.recv().map_err(|_| Stopped)
    }

    /// Resolves once transactions were admitted since the last time (a permit is kept
    /// when nobody waits).
    pub fn arrived(&self) -> tokio::sync::futures::Notified<'_> {
        self.arrived.notified()
    }

    pub fn triage(
        &self,
        senders: Vec<(AccountId, u64)>,
    ) -> Result<Vec<Option<AdmitError>>, Stopped> {
        self.ask(|reply| Message::Triage { senders, reply })
    }

    /// Admits verified transactions whose nonces were read at committed `height`; one
    /// answer per transaction, in order.
    pub fn admit(&self, height: Height, txs: Vec<Checked>) -> Result<Admitted, AdmitFailed> {
        match self.ask(|reply| Message::Admit { height, txs, reply }) {
            Ok(Ok(answers)) => Ok(answers),
            Ok(Err(back)) => Err(AdmitFailed::Stale(back)),
            Err(Stopped) => Err(AdmitFailed::Stopped),
        }
    }

    /// Tells the pool that `height` is committed (no reply: later messages of the same
    /// sender are handled after it).
    pub fn committed(
        &self,
        height: Height,
        nonces: Vec<(AccountId, u64)>,
        in_block: BTreeSet<Hash>,
    ) -> Result<(), Stopped> {
        self.sender
            .send(Message::Committed {
                height,
                nonces,
                in_block,
            })
            .map_err(|_| Stopped)
    }

    pub fn has_executable(&self) -> Result<bool, Stopped> {
        self.ask(|reply| Message::HasExecutable { reply })
    }

    pub fn select(&self, max_txs: usize, max_bytes: usize) -> Result<Vec<Vec<u8>>, Stopped> {
        self.ask(|reply| Message::Select {
            max_txs,
            max_bytes,
            reply,
        })
    }

    pub fn contains(&self, hashes: Vec<Hash>) -> Result<Vec<bool>, Stopped> {
        self.ask(|reply| Message::Contains { hashes, reply })
    }

    /// Of a block's transactions, those this node verified on admission (the pool
    /// holds only transactions whose signature verified, keyed by the hash of their
    /// exact bytes): block execution need not verify them again. A pool that does
    /// not answer vouches for none.
    pub fn preverified(&self, txs: &[Vec<u8>]) -> Vec<bool> {
        let hashes = txs.iter().map(|b| SignedTransaction::hash_of(b)).collect();
        self.contains(hashes)
            .unwrap_or_else(|_| vec![false; txs.len()])
    }

    pub fn lookup(&self, hash: Hash) -> Result<Option<PoolLookup>, Stopped> {
        self.ask(|reply| Message::Lookup { hash, reply })
    }

    pub fn len(&self) -> Result<usize, Stopped> {
        self.ask(|reply| Message::Len { reply })
    }

    pub fn is_empty(&self) -> Result<bool, Stopped> {
        Ok(self.len()? == 0)
    }
}
