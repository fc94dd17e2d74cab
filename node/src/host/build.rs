//! Proposals: the block this validator proposes, built from the mempool's selection;
//! the blocks others propose, checked and executed before the engine hears they are
//! valid.

use super::{Host, Rejected, Result, MAX_CLOCK_DRIFT_MS, MAX_PROPOSED_TX_BYTES};
use crate::clock::now_ms;
use atonomi_consensus::context::ValidatorSet as ConsensusSet;
use atonomi_consensus::engine::Step;
use atonomi_consensus::message::{ProposedBlock, WireProposal};
use atonomi_consensus::validate::{check_proposed_block, Expected};
use atonomi_primitives::block::Block;
use atonomi_primitives::{Height, Keypair, Timestamp};
use atonomi_runtime::SigCheck;

impl Host {
    /// Validates bodies that match proposals of the current height and tells the engine.
    pub(super) fn feed_values(&mut self) -> Result<()> {
        let height = self.engine.height();
        if self.waiting.is_some() {
            // The engine's height is decided: nothing of it is judged any more.
            return Ok(());
        }
        let candidates: Vec<WireProposal> = self
            .proposals
            .iter()
            .filter(|p| p.height == height)
            .cloned()
            .collect();
        let me = self.key.as_ref().map(Keypair::account);
        for p in candidates {
            // Our own proposal's value is already known to the engine.
            if Some(p.proposer) == me || self.fed.contains(&(p.round, p.block)) {
                continue;
            }
            let Some(block) = self.bodies.get(&p.block).cloned() else {
                continue;
            };
            self.fed.push((p.round, p.block));
            let valid = self.validate(&p, block.clone());
            if let Err(e) = &valid {
                self.metrics.invalid_proposals.inc();
                tracing::warn!(%height, round = p.round, block = %p.block, "invalid proposed block: {e}");
            }
            self.chain.persist_consensus(&[], None, &[block])?;
            let value = ProposedBlock {
                height,
                round: p.round,
                pol_round: p.pol_round,
                proposer: p.proposer,
                block: p.block,
                valid: valid.is_ok(),
            };
            let step = self.engine.proposed_value(value, false);
            self.perform(step)?;
        }
        Ok(())
    }

    pub(super) fn validate(&mut self, p: &WireProposal, block: Block) -> Result<(), Rejected> {
        if self.executed.contains_key(&p.block) {
            return Ok(());
        }
        let executed = {
            let chain = &self.chain;
            let set = chain.next_validator_set()?;
            let cset =
                ConsensusSet::from_state(&set).ok_or(Rejected::EmptySet(chain.height().next()))?;
            let expected = Expected {
                chain_id: &chain.chain_id,
                height: chain.height().next(),
                parent_hash: chain.head_hash(),
                parent_timestamp: chain.head_timestamp(),
                validator_set_hash: set.hash(),
                set: &cset,
                latest_timestamp: Timestamp::new(now_ms() + MAX_CLOCK_DRIFT_MS),
            };
            check_proposed_block(p, &block, &expected)?;
            let preverified = self.mempool.preverified(&block.txs);
            chain.execute(block, &preverified)?
        };
        self.executed.insert(p.block, executed);
        Ok(())
    }

    /// The proposal this validator signed at (height, round) before it restarted, from
    /// the WAL (the engine records it in the step that sends it).
    pub(super) fn signed_before(&self, height: Height, round: u32) -> Result<Option<WireProposal>> {
        let Some(me) = self.key.as_ref().map(Keypair::account) else {
            return Ok(None);
        };
        let wal = self.chain.wal()?;
        Ok(wal.into_iter().find_map(|r| match r.entry {
            atonomi_consensus::message::WalEntry::Proposal(p)
                if r.height == height
                    && p.height == height
                    && p.round == round
                    && p.proposer == me =>
            {
                Some(p)
            }
            _ => None,
        }))
    }

    pub(super) fn build(&mut self, height: Height, round: u32) -> Result<Option<Step>> {
        if self.key.is_none() {
            return Ok(None);
        }
        // After a restart, never a second, different proposal for a (height, round) this
        // validator already signed: it sends the one it signed (the engine, replayed,
        // knows it too; the guard would refuse any other).
        if let Some(p) = self.signed_before(height, round)? {
            tracing::info!(%height, round, block = %p.block, "sending again the proposal this validator signed before it restarted");
            if self.proposals.len() < 256 {
                self.proposals.push(p.clone());
            }
            self.own_body_resends = 0;
            self.send_own_proposal(&p, true);
            return Ok(None);
        }
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let executed = {
            let chain = &self.chain;
            if chain.height().next() != height {
                return Ok(None);
            }
            let params = chain.params()?;
            // A block must also fit one gossip message (the chain's max_block_bytes may be
            // set above it): otherwise the proposal could never reach the other validators.
            let max_bytes = (params.max_block_bytes as usize).min(MAX_PROPOSED_TX_BYTES);
            let txs = self
                .mempool
                .select(params.max_block_txs as usize, max_bytes)?;
            chain.build(
                txs,
                key.account(),
                Timestamp::new(now_ms()),
                SigCheck::Trusted,
            )?
        };
        let hash = executed.block.hash();
        tracing::info!(%height, round, block = %hash, txs = executed.block.txs.len(), "proposing");
        self.chain
            .persist_consensus(&[], None, std::slice::from_ref(&executed.block))?;
        self.bodies.insert(hash, executed.block.clone());
        self.executed.insert(hash, executed);
        Ok(Some(self.engine.propose(height, round, hash)))
    }
}
