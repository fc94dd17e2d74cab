//! The pool itself, pure data: signed transactions admitted after the checks a block
//! would make (size, decoding, chain id, signature, nonce not used), ordered per account
//! by nonce, bounded in count and bytes, duplicates suppressed, pruned after every
//! block. It never reads the chain: each sender's next nonce arrives with its
//! transactions (read by admission) and with every commit (the accounts a block
//! changed), so the [`super::actor`] that owns it answers without locks.

use atonomi_primitives::{AccountId, Hash, SignedTransaction};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Dropped transactions remembered for `atonomi_getTransaction` (oldest forgotten first):
/// a few seconds of overload at 10,000 transactions per second, about 20 MB.
const MAX_DROPPED: usize = 100_000;
/// Blocks a transaction may wait in the pool behind a nonce the pool does not hold
/// before it is dropped (reason `gapped`): long enough for gossip to deliver an
/// out-of-order predecessor, short enough that a stream cut by a refusal is reported
/// to its client instead of waiting forever.
pub const GAP_TTL_BLOCKS: u64 = 20;
/// The same from three quarters full: a block for gossip to catch up, then room for
/// what can run.
pub const GAP_TTL_BLOCKS_PRESSED: u64 = 2;

pub use atonomi_api::rpc::views::{DropReason, Dropped};

#[derive(Debug, Clone)]
pub struct MempoolConfig {
    pub max_txs: usize,
    pub max_bytes: usize,
    /// Nonces further than this ahead of the account's next nonce are refused, so one
    /// account cannot fill the pool with transactions that cannot run.
    pub max_nonce_gap: u64,
    /// Most transactions one account may hold in the pool (`[admission]`).
    pub max_per_account: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_txs: 50_000,
            max_bytes: 128 << 20,
            max_nonce_gap: 1_000,
            max_per_account: 1_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    #[error("invalid transaction: {0}")]
    Invalid(atonomi_primitives::InvalidTx),
    #[error("invalid transaction: signed for chain {tx}, this chain is {chain}")]
    WrongChain {
        tx: atonomi_primitives::ChainId,
        chain: atonomi_primitives::ChainId,
    },
    #[error("the node could not read its state: {0}")]
    State(atonomi_runtime::Fatal),
    #[error("the node is stopping: its mempool no longer answers")]
    Stopped,
    #[error("blocks were committed under each of {attempts} checks of this transaction; submit it again")]
    Busy { attempts: u32 },
    #[error("invalid transaction: undecodable or bad signature")]
    BadSignature,
    #[error("transaction already known")]
    Duplicate,
    #[error("the mempool is full ({len} transactions); resubmit from nonce {resubmit_from} later")]
    Full { len: usize, resubmit_from: u64 },
    #[error("nonce {nonce} is too far ahead of the account's next nonce {next}")]
    NonceGap { nonce: u64, next: u64 },
    #[error("not admitted by this node: {0}")]
    NotAdmitted(crate::admission::Refused),
    #[error(
        "not admitted by this node: the account has {0} transactions pending, the most it may"
    )]
    TooManyPending(usize),
}

impl AdmitError {
    /// A short name for metrics labels.
    pub fn label(&self) -> &'static str {
        match self {
            AdmitError::Invalid(_) => "invalid",
            AdmitError::WrongChain { .. } => "wrong_chain",
            AdmitError::State(_) => "state_unreadable",
            AdmitError::Stopped => "stopped",
            AdmitError::Busy { .. } => "busy",
            AdmitError::BadSignature => "bad_signature",
            AdmitError::Duplicate => "duplicate",
            AdmitError::Full { .. } => "full",
            AdmitError::NonceGap { .. } => "nonce_gap",
            AdmitError::NotAdmitted(_) => "not_admitted",
            AdmitError::TooManyPending(_) => "too_many_pending",
        }
    }
}

#[derive(Debug)]
struct Entry {
    bytes: Vec<u8>,
    hash: Hash,
    /// The pool's block count when it was admitted (see [`GAP_TTL_BLOCKS`]).
    admitted_at: u64,
}

/// Recently dropped transactions by hash, bounded, and those not yet announced. Each
/// record has a sequence number so that forgetting the oldest never removes a newer
/// record of the same hash, and a re-admitted transaction leaves the log in O(log n).
#[derive(Debug, Default)]
struct DropLog {
    by_hash: BTreeMap<Hash, (u64, Dropped)>,
    order: VecDeque<(u64, Hash)>,
    seq: u64,
    unannounced: Vec<Dropped>,
}

impl DropLog {
    fn record(&mut self, d: Dropped) {
        self.seq += 1;
        self.by_hash.insert(d.hash, (self.seq, d.clone()));
        self.order.push_back((self.seq, d.hash));
        while self.order.len() > MAX_DROPPED {
            if let Some((seq, old)) = self.order.pop_front() {
                if self.by_hash.get(&old).is_some_and(|(s, _)| *s == seq) {
                    self.by_hash.remove(&old);
                }
            }
        }
        if self.unannounced.len() < MAX_DROPPED {
            self.unannounced.push(d);
        }
    }

    fn forget(&mut self, hash: &Hash) {
        self.by_hash.remove(hash);
    }
}

#[derive(Debug, Default)]
pub struct Mempool {
    config: MempoolConfig,
    by_sender: BTreeMap<(AccountId, u64), Entry>,
    by_hash: BTreeMap<Hash, (AccountId, u64)>,
    per_sender: BTreeMap<AccountId, usize>,
    /// `per_sender` ordered by count: the busiest account in O(log n), asked for every
    /// transaction that meets a full pool.
    by_count: BTreeSet<(usize, AccountId)>,
    /// Each pooled sender's next nonce in the committed state: learned on admission,
    /// kept current by [`Mempool::prune`] (only a block changes a nonce).
    next: BTreeMap<AccountId, u64>,
    /// Blocks pruned so far (the pool's clock for [`GAP_TTL_BLOCKS`]).
    blocks: u64,
    bytes: usize,
    dropped: DropLog,
}

impl Mempool {
    pub fn new(config: MempoolConfig) -> Mempool {
        Mempool {
            config,
            ..Mempool::default()
        }
    }

    pub fn len(&self) -> usize {
        self.by_sender.len()
    }

    /// Bytes of the pooled transactions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.by_sender.is_empty()
    }

    /// Whether some pooled transaction can run in the next block: an account's lowest
    /// pooled nonce is its next nonce. A pool holding only gapped transactions (a nonce
    /// ahead of the account's) has nothing to propose, so it must not start a height.
    pub fn has_executable(&self) -> bool {
        !self.is_empty()
            && self.per_sender.keys().any(|sender| {
                self.by_sender
                    .range((*sender, 0)..=(*sender, u64::MAX))
                    .next()
                    .is_some_and(|((_, nonce), _)| *nonce == self.next_nonce(sender))
            })
    }

    /// `sender`'s next nonce in the committed state, as the pool knows it.
    fn next_nonce(&self, sender: &AccountId) -> u64 {
        self.next.get(sender).copied().unwrap_or(0)
    }

    /// Under pressure (three quarters full by count or bytes) the pool keeps only what
    /// can run: transactions waiting for a nonce it does not hold are refused or dropped.
    fn under_pressure(&self) -> bool {
        self.by_sender.len() * 4 >= self.config.max_txs * 3
            || self.bytes * 4 >= self.config.max_bytes * 3
    }

    /// The first nonce from `next` on that `sender` has not pooled.
    fn first_missing(&self, sender: &AccountId, next: u64) -> u64 {
        let mut want = next;
        for ((_, nonce), _) in self.by_sender.range((*sender, next)..=(*sender, u64::MAX)) {
            if *nonce != want {
                break;
            }
            want += 1;
        }
        want
    }

    /// Refuses `(signer, nonce)` for a full pool. The signer's pooled transactions after
    /// that nonce can no longer run, so they go too (announced as dropped), and the
    /// client learns where to resubmit from.
    pub fn refuse_full(&mut self, signer: &AccountId, nonce: u64) -> AdmitError {
        self.drop_after(signer, nonce);
        AdmitError::Full {
            len: self.by_sender.len(),
            resubmit_from: nonce,
        }
    }

    fn drop_after(&mut self, signer: &AccountId, missing: u64) {
        self.drop_after_older(signer, missing, u64::MAX);
    }

    /// Drops `signer`'s pooled transactions after nonce `missing` that were admitted
    /// before the pool's block `before`.
    fn drop_after_older(&mut self, signer: &AccountId, missing: u64, before: u64) {
        let later: Vec<((AccountId, u64), Hash)> = self
            .by_sender
            .range((*signer, missing.saturating_add(1))..=(*signer, u64::MAX))
            .filter(|(_, e)| e.admitted_at < before)
            .map(|(k, e)| (*k, e.hash))
            .collect();
        for (key, hash) in later {
            self.remove(&key);
            self.drop_record(hash, key, DropReason::Gapped { missing });
        }
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Whether a transaction from `signer` would be refused as things stand: the pool is
    /// full and the signer already holds as many transactions as the busiest account
    /// (so nobody would make room for it). Checked before the signature, so a flood
    /// into a full pool costs no verification.
    pub fn would_refuse(&self, signer: &AccountId) -> bool {
        if self.by_sender.len() < self.config.max_txs && self.bytes < self.config.max_bytes {
            return false;
        }
        let mine = self.per_sender.get(signer).copied().unwrap_or(0);
        self.by_count
            .last()
            .is_none_or(|(busiest, _)| *busiest <= mine + 1)
    }

    fn count_changed(&mut self, sender: AccountId, old: usize, new: usize) {
        if old > 0 {
            self.by_count.remove(&(old, sender));
        }
        if new > 0 {
            self.by_count.insert((new, sender));
        }
    }

    /// Admits a transaction that passed `runtime::precheck`; `next_nonce` is the
    /// sender's next nonce in the committed state it was checked against (at least the
    /// height the pool was last pruned at: see [`super::actor`]). A transaction with the
    /// same (sender, nonce) as a pooled one replaces it.
    pub fn admit(
        &mut self,
        stx: &SignedTransaction,
        bytes: Vec<u8>,
        next_nonce: u64,
    ) -> Result<Hash, AdmitError> {
        let hash = SignedTransaction::hash_of(&bytes);
        if self.by_hash.contains_key(&hash) {
            return Err(AdmitError::Duplicate);
        }
        let nonce = stx.tx.nonce;
        // Nonces only grow: the later of two readings is the current one.
        let next_nonce = self
            .next
            .get(&stx.tx.signer)
            .map_or(next_nonce, |known| next_nonce.max(*known));
        if nonce < next_nonce {
            return Err(AdmitError::Invalid(
                atonomi_primitives::InvalidTx::NonceUsed {
                    nonce,
                    next: next_nonce,
                },
            ));
        }
        if nonce > next_nonce.saturating_add(self.config.max_nonce_gap) {
            return Err(AdmitError::NonceGap {
                nonce,
                next: next_nonce,
            });
        }
        let key = (stx.tx.signer, nonce);
        self.next.insert(key.0, next_nonce);
        if let Some(old) = self.by_sender.get(&key).map(|e| e.hash) {
            self.remove(&key);
            self.drop_record(old, key, DropReason::Replaced { by: hash });
        } else {
            let pending = self.per_sender.get(&key.0).copied().unwrap_or(0);
            if pending >= self.config.max_per_account {
                return Err(AdmitError::TooManyPending(pending));
            }
        }
        while self.by_sender.len() >= self.config.max_txs
            || self.bytes + bytes.len() > self.config.max_bytes
        {
            // Full: the account holding the most transactions gives up its last one, so
            // one busy account cannot lock the others out; if that is the sender itself,
            // the new transaction is refused.
            let mine = self.per_sender.get(&stx.tx.signer).copied().unwrap_or(0);
            let Some((count, victim)) = self.by_count.last().copied() else {
                break;
            };
            if victim == stx.tx.signer || count <= mine + 1 {
                return Err(self.refuse_full(&stx.tx.signer, nonce));
            }
            let Some(last) = self
                .by_sender
                .range((victim, 0)..=(victim, u64::MAX))
                .next_back()
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(h) = self.by_sender.get(&last).map(|e| e.hash) {
                self.drop_record(h, last, DropReason::Evicted);
            }
            self.remove(&last);
        }
        // Admitted again (a client resubmitting): no longer dropped.
        self.dropped.forget(&hash);
        self.bytes += bytes.len();
        self.by_hash.insert(hash, key);
        self.by_sender.insert(
            key,
            Entry {
                bytes,
                hash,
                admitted_at: self.blocks,
            },
        );
        let count = self.per_sender.entry(key.0).or_default();
        *count += 1;
        let new = *count;
        self.count_changed(key.0, new - 1, new);
        Ok(hash)
    }

    fn remove(&mut self, key: &(AccountId, u64)) {
        if let Some(e) = self.by_sender.remove(key) {
            self.bytes -= e.bytes.len();
            self.by_hash.remove(&e.hash);
            if let Some(c) = self.per_sender.get_mut(&key.0) {
                *c -= 1;
                let new = *c;
                if new == 0 {
                    self.per_sender.remove(&key.0);
                    self.next.remove(&key.0);
                }
                self.count_changed(key.0, new + 1, new);
            }
        }
    }

    /// Transactions for the next block: per account, consecutive nonces from its next
    /// nonce, within the count and byte limits.
    pub fn select(&self, max_txs: usize, max_bytes: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut size = 0usize;
        let mut current: Option<(AccountId, u64)> = None;
        for ((sender, nonce), e) in &self.by_sender {
            let expected = match current {
                Some((s, n)) if s == *sender => n,
                _ => self.next_nonce(sender),
            };
            if *nonce != expected {
                current = Some((*sender, u64::MAX));
                continue;
            }
            if out.len() >= max_txs || size + e.bytes.len() > max_bytes {
                break;
            }
            size += e.bytes.len();
            out.push(e.bytes.clone());
            current = Some((*sender, nonce + 1));
        }
        out
    }

    /// After a block: `nonces` are the next nonces of the accounts it changed (every
    /// other account's nonce is as it was), `committed` the hashes of its transactions.
    /// Drops transactions whose nonce is now used; those not among `committed` are
    /// recorded as dropped.
    pub fn prune(&mut self, nonces: &[(AccountId, u64)], committed: &BTreeSet<Hash>) {
        let mut stale: Vec<((AccountId, u64), Hash, u64)> = Vec::new();
        for (s, next) in nonces {
            if !self.per_sender.contains_key(s) {
                continue;
            }
            self.next.insert(*s, *next);
            stale.extend(
                self.by_sender
                    .range((*s, 0)..(*s, *next))
                    .map(|(k, e)| (*k, e.hash, *next)),
            );
        }
        for (key, hash, next) in stale {
            self.remove(&key);
            if !committed.contains(&hash) {
                self.drop_record(
                    hash,
                    key,
                    DropReason::NonceUsed {
                        nonce: key.1,
                        next_nonce: next,
                    },
                );
            }
        }
        let senders: Vec<AccountId> = self.per_sender.keys().copied().collect();
        // What waits for a nonce the pool does not hold: under pressure it makes room at
        // once, otherwise it may wait GAP_TTL_BLOCKS for its predecessor (once per
        // block: the scan is over the pool's senders).
        self.blocks += 1;
        let ttl = if self.under_pressure() {
            GAP_TTL_BLOCKS_PRESSED
        } else {
            GAP_TTL_BLOCKS
        };
        let before = self.blocks.saturating_sub(ttl);
        for s in senders {
            let next = self.next_nonce(&s);
            // Nothing is pooled at `missing`, so everything after it is stuck.
            let missing = self.first_missing(&s, next);
            self.drop_after_older(&s, missing, before);
        }
    }

    fn drop_record(&mut self, hash: Hash, (signer, nonce): (AccountId, u64), reason: DropReason) {
        self.dropped.record(Dropped {
            hash,
            signer,
            nonce,
            reason,
        });
    }

    /// Why a transaction this pool admitted was dropped, if it was (recently).
    pub fn dropped(&self, hash: &Hash) -> Option<&Dropped> {
        self.dropped.by_hash.get(hash).map(|(_, d)| d)
    }

    /// Drops since the last call, for the event subscriptions.
    pub fn take_drops(&mut self) -> Vec<Dropped> {
        std::mem::take(&mut self.dropped.unannounced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atonomi_primitives::tx::Call;
    use atonomi_primitives::{Amount, ChainId, Keypair, Transaction};

    fn tx(key: &Keypair, nonce: u64) -> (SignedTransaction, Vec<u8>) {
        let stx = Transaction {
            chain_id: ChainId::new("m").unwrap(),
            signer: key.account(),
            nonce,
            max_fee: None,
            call: Call::Transfer {
                to: Keypair::from_label("to").account(),
                amount: Amount::new(1),
            },
        }
        .sign(key);
        let bytes = stx.to_bytes();
        (stx, bytes)
    }

    #[test]
    fn orders_by_nonce_skips_gaps_prunes_and_bounds() {
        let a = Keypair::from_label("a");
        let b = Keypair::from_label("b");
        let mut m = Mempool::new(MempoolConfig {
            max_txs: 4,
            max_bytes: 1 << 20,
            max_nonce_gap: 5,
            max_per_account: 3,
        });
        for n in [1, 0, 3] {
            let (s, bytes) = tx(&a, n);
            m.admit(&s, bytes, 0).unwrap();
        }
        let (s, bytes) = tx(&b, 7);
        m.admit(&s, bytes.clone(), 7).unwrap();
        assert_eq!(m.admit(&s, bytes, 7), Err(AdmitError::Duplicate));
        let (s, bytes) = tx(&b, 20);
        let mut small = Mempool::new(MempoolConfig {
            max_per_account: 1,
            ..MempoolConfig::default()
        });
        let (s0, b0) = tx(&b, 7);
        small.admit(&s0, b0, 7).unwrap();
        let (s1, b1) = tx(&b, 8);
        assert_eq!(small.admit(&s1, b1, 7), Err(AdmitError::TooManyPending(1)));
        // The same sender and nonce with other bytes replaces, and says so.
        let other = Transaction {
            chain_id: ChainId::new("m").unwrap(),
            signer: b.account(),
            nonce: 7,
            max_fee: None,
            call: Call::Burn {
                amount: Amount::new(1),
            },
        }
        .sign(&b);
        let new = small.admit(&other, other.to_bytes(), 7).unwrap();
        assert_eq!(
            small.dropped(&s0.hash()).map(|d| d.reason.clone()),
            Some(DropReason::Replaced { by: new })
        );
        assert!(matches!(
            m.admit(&s, bytes, 7),
            Err(AdmitError::NonceGap { .. })
        ));
        // Full: b (1 pooled) may not push out its own, but evicts a's last (a has 3).
        let (s, bytes) = tx(&b, 8);
        m.admit(&s, bytes, 7).unwrap();
        assert_eq!(m.len(), 4);
        let (s, bytes) = tx(&b, 9);
        assert!(
            m.would_refuse(&b.account()),
            "the pool is full and b is as busy as anyone"
        );
        assert!(
            !m.would_refuse(&Keypair::from_label("c").account()),
            "a newcomer would evict one of a or b"
        );
        assert!(
            matches!(
                m.admit(&s, bytes, 7),
                Err(AdmitError::Full {
                    len: 4,
                    resubmit_from: 9
                })
            ),
            "two each: nobody has more"
        );
        assert!(m.has_executable());
        let mut gapped = Mempool::new(MempoolConfig::default());
        let (s5, b5) = tx(&a, 5);
        gapped.admit(&s5, b5, 0).unwrap();
        assert!(
            !gapped.has_executable(),
            "no account's lowest pooled nonce is its next one"
        );
        // a:0, a:1 (a:3 was evicted), b:7, b:8
        assert_eq!(m.select(100, 1 << 20).len(), 4);
        assert_eq!(m.select(1, 1 << 20).len(), 1);
        let (a0, _) = tx(&a, 0);
        let committed: BTreeSet<Hash> = [a0.hash()].into_iter().collect();
        m.take_drops();
        m.prune(&[(a.account(), 1), (b.account(), 9)], &committed);
        assert_eq!(m.len(), 1, "only a:1 is left");
        // a:0 was committed itself; b:7 and b:8 lost their nonces to other transactions.
        let drops = m.take_drops();
        assert_eq!(drops.len(), 2, "{drops:?}");
        assert!(drops.iter().all(|d| d.signer == b.account()
            && matches!(d.reason, DropReason::NonceUsed { next_nonce: 9, .. })));
        assert!(
            m.dropped(&a0.hash()).is_none(),
            "a committed transaction is not dropped"
        );
    }

    /// Overload: a full pool refuses a sender's nonce and drops its pooled later ones
    /// (they could never run) and names where to resubmit from; what waits on a nonce
    /// the pool does not hold is dropped after a few blocks (two when pressed).
    #[test]
    fn overload_drops_what_cannot_run_and_says_where_to_resubmit() {
        let config = MempoolConfig {
            max_txs: 4,
            ..MempoolConfig::default()
        };
        let (a, b, c) = (
            Keypair::from_label("a"),
            Keypair::from_label("b"),
            Keypair::from_label("c"),
        );
        let mut m = Mempool::new(config.clone());
        // b:1 and b:2 arrive before b:0 (gossip reorders); the pool is not pressed yet.
        for (k, n) in [(&b, 1), (&b, 2), (&a, 0), (&a, 1)] {
            let (s, bytes) = tx(k, n);
            m.admit(&s, bytes, 0).unwrap();
        }
        let (s, bytes) = tx(&b, 0);
        assert_eq!(
            m.admit(&s, bytes, 0),
            Err(AdmitError::Full {
                len: 2,
                resubmit_from: 0
            }),
            "b is as busy as anyone: b:0 is refused and b:1, b:2 can no longer run"
        );
        let drops = m.take_drops();
        assert_eq!(
            drops
                .iter()
                .map(|d| (d.signer, d.nonce))
                .collect::<Vec<_>>(),
            vec![(b.account(), 1), (b.account(), 2)]
        );
        assert!(drops
            .iter()
            .all(|d| d.reason == DropReason::Gapped { missing: 0 }));
        assert!(
            m.dropped(&drops[0].hash).is_some(),
            "getTransaction can say why"
        );

        // Three of four full: pressed. A gapped one may wait GAP_TTL_BLOCKS_PRESSED
        // blocks for gossip to deliver its predecessor, then makes room.
        let mut m = Mempool::new(config);
        for (k, n) in [(&c, 5), (&a, 0), (&a, 1), (&a, 2)] {
            let (s, bytes) = tx(k, n);
            m.admit(&s, bytes, 0).unwrap();
        }
        for _ in 0..GAP_TTL_BLOCKS_PRESSED {
            m.prune(&[], &BTreeSet::new());
        }
        assert_eq!(m.len(), 4);
        m.prune(&[], &BTreeSet::new());
        let drops = m.take_drops();
        assert_eq!(drops.len(), 1);
        assert_eq!((drops[0].signer, drops[0].nonce), (c.account(), 5));
        assert_eq!(drops[0].reason, DropReason::Gapped { missing: 0 });
        assert_eq!(m.len(), 3, "a's run stays");

        // Without pressure a gapped one waits GAP_TTL_BLOCKS for its predecessor (gossip
        // may deliver it late), then goes.
        let mut m = Mempool::new(MempoolConfig::default());
        let (s, bytes) = tx(&c, 5);
        m.admit(&s, bytes, 0).unwrap();
        for _ in 0..GAP_TTL_BLOCKS {
            m.prune(&[], &BTreeSet::new());
        }
        assert_eq!(m.len(), 1, "still waiting within the TTL");
        m.prune(&[], &BTreeSet::new());
        assert!(m.is_empty(), "dropped after the TTL");
        let drops = m.take_drops();
        assert_eq!(drops[0].reason, DropReason::Gapped { missing: 0 });
        // Re-admitted, it leaves the drop log.
        let (s, bytes) = tx(&c, 5);
        let h = m.admit(&s, bytes, 0).unwrap();
        assert!(m.dropped(&h).is_none());
    }

    /// The pool keeps each sender's next nonce itself: a block that changed other
    /// accounts leaves it, a reading older than the pool's is overruled by it, and a
    /// nonce below it is refused as used.
    #[test]
    fn the_pool_keeps_nonces_from_admission_and_blocks() {
        let (a, b) = (Keypair::from_label("a"), Keypair::from_label("b"));
        let mut m = Mempool::new(MempoolConfig::default());
        for n in [3, 4] {
            let (s, bytes) = tx(&a, n);
            m.admit(&s, bytes, 3).unwrap();
        }
        let (s, bytes) = tx(&b, 0);
        m.admit(&s, bytes, 0).unwrap();
        // A block that used b's nonce 0 and changed nobody else.
        m.prune(&[(b.account(), 1)], &BTreeSet::new());
        assert_eq!(m.len(), 2, "a's transactions stay, b's used nonce goes");
        assert_eq!(m.select(10, 1 << 20).len(), 2, "a runs from 3");
        m.prune(&[(a.account(), 4)], &BTreeSet::new());
        let (s, bytes) = tx(&a, 3);
        assert_eq!(
            m.admit(&s, bytes, 3),
            Err(AdmitError::Invalid(
                atonomi_primitives::InvalidTx::NonceUsed { nonce: 3, next: 4 }
            )),
            "a reading from before the block is overruled by the block"
        );
        let (s, bytes) = tx(&a, 5);
        m.admit(&s, bytes, 3).unwrap();
        assert_eq!(m.select(10, 1 << 20).len(), 2, "a:4 and a:5");
        assert!(m.has_executable());
    }
}
