//! The ledger's methods: state reads, transactions, proofs, discovery, the bridge.

use super::{admit_error, error_body, hex_bytes, storage_error, Rpc};
use crate::mempool::{AdmitError, PoolLookup};
use crate::rpc::{bad_params, err, internal};
use atonomi_api::rpc::views::*;
use atonomi_api::rpc::{
    code, page_limit, AtonomiApiServer, BlockId, DiscoverParams, ListDevices, ListPage,
    ListProposals, ReputationHistoryQuery, ValidateParams, MAX_TX_BATCH, MAX_TYPE_BYTES,
};
use atonomi_primitives::codec;
use atonomi_primitives::gov::{Governance, Proposal};
use atonomi_primitives::state::{
    tag, Account, Auditor, CheckpointSignature, Device, Manufacturer, PendingValidatorSet,
    ReputationAggregate, StateKey, Subject, TokenInfo, ValidatorSet,
};
use atonomi_primitives::{
    AccountId, Amount, AuditorId, DeviceId, Hash, Height, ManufacturerId, Params, ProposalId,
    SignedTransaction, TxStatus,
};
use jsonrpsee::core::RpcResult;

impl AtonomiApiServer for Rpc {
    fn status(&self) -> RpcResult<Status> {
        let chain = &self.chain;
        let (height, latest_block_hash, latest_block_time) = chain.head();
        let set = chain.voting_set_at(height.next()).map_err(internal)?;
        let round = *self.context.round.borrow();
        Ok(Status {
            chain_id: chain.chain_id.clone(),
            height,
            latest_block_hash,
            latest_block_time,
            state_root: chain.db().root_at(height.get()).map_err(internal)?,
            validator: self.context.validator,
            validators: set
                .validators
                .iter()
                .map(|v| ValidatorPower {
                    key: v.consensus_key,
                    power: v.power.to_string(),
                })
                .collect(),
            round: round.map(|(height, round)| RoundPosition { height, round }),
            mempool: self.mempool.len().map_err(internal)?,
            peers: self.metrics.peers.get(),
            banned_peers: self.metrics.banned_peers.get(),
            peer_penalties: self.metrics.peer_penalties.get(),
            lowest_block_height: chain.lowest_block_height().map_err(internal)?,
            lowest_state_height: chain.lowest_state_height(),
        })
    }

    fn send_transaction(&self, tx: String) -> RpcResult<Submitted> {
        let hash = self
            .admission
            .submit_and_gossip(hex_bytes("tx", &tx)?)
            .map_err(admit_error)?;
        Ok(Submitted { hash })
    }

    fn send_transaction_batch(&self, txs: Vec<String>) -> RpcResult<Vec<BatchAnswer>> {
        if txs.len() > MAX_TX_BATCH {
            return Err(bad_params(format!(
                "txs: at most {MAX_TX_BATCH} transactions per batch, not {}",
                txs.len()
            )));
        }
        let decoded: Vec<RpcResult<Vec<u8>>> = txs.iter().map(|t| hex_bytes("txs", t)).collect();
        let good: Vec<Vec<u8>> = decoded
            .iter()
            .filter_map(|d| d.as_ref().ok().cloned())
            .collect();
        let mut results = self.admission.submit_batch(good).into_iter();
        Ok(decoded
            .into_iter()
            .map(|d| {
                let answer = d.and_then(|_| {
                    results
                        .next()
                        .unwrap_or(Err(AdmitError::Stopped))
                        .map_err(admit_error)
                });
                match answer {
                    Ok(hash) => BatchAnswer::Admitted { hash },
                    Err(e) => BatchAnswer::Refused {
                        error: error_body(e),
                    },
                }
            })
            .collect())
    }

    fn get_transaction(&self, hash: Hash) -> RpcResult<TxLookup> {
        let chain = &self.chain;
        if let Some(receipt) = chain.receipt(&hash).map_err(internal)? {
            return Ok(TxLookup::Final { receipt });
        }
        // Asked with the chain held: the pool is pruned for this height or the one
        // before, so a committed transaction is found above or still pending here.
        match self.mempool.lookup(hash).map_err(internal)? {
            Some(PoolLookup::Pending) => return Ok(TxLookup::Pending),
            // Admitted, then dropped: say why, so a client need not wait for a timeout.
            Some(PoolLookup::Dropped(d)) => {
                return Ok(TxLookup::Dropped {
                    message: d.reason.explain(),
                    dropped: d,
                })
            }
            None => {}
        }
        Err(err(
            code::NOT_FOUND,
            format!("transaction {hash} not found"),
        ))
    }

    fn get_block(&self, id: BlockId) -> RpcResult<BlockView> {
        let chain = &self.chain;
        let block = match id {
            BlockId::Height(h) => chain.block(Height::new(h)),
            BlockId::Hash(h) => chain.block_by_hash(&h),
        }
        .map_err(internal)?
        .ok_or_else(|| err(code::NOT_FOUND, "block not found"))?;
        let commit = chain.certificate(block.header.height).map_err(internal)?;
        Ok(BlockView {
            hash: block.hash(),
            txs: block
                .txs
                .iter()
                .map(|t| SignedTransaction::hash_of(t))
                .collect(),
            header: block.header,
            commit,
        })
    }

    fn get_account(&self, account: AccountId) -> RpcResult<AccountView> {
        let record: Account = self.state(&StateKey::Account(account))?.unwrap_or_default();
        // The committed nonce is the next one to sign with (as `ChainReader::next_nonce`).
        Ok(AccountView {
            next_nonce: record.nonce,
            record,
            account,
        })
    }

    fn get_token(&self) -> RpcResult<TokenInfo> {
        self.found("token", &StateKey::Token)
    }

    fn get_allowance(&self, owner: AccountId, spender: AccountId) -> RpcResult<Allowance> {
        let amount = self
            .state(&StateKey::Allowance { owner, spender })?
            .unwrap_or(Amount::ZERO);
        Ok(Allowance {
            owner,
            spender,
            amount,
        })
    }

    fn get_params(&self) -> RpcResult<Params> {
        self.found("network parameters", &StateKey::Params)
    }

    fn get_governance(&self) -> RpcResult<Governance> {
        self.found("governance", &StateKey::Governance)
    }

    fn get_proposal(&self, id: u64) -> RpcResult<Proposal> {
        self.found("proposal", &StateKey::Proposal(ProposalId::new(id)))
    }

    fn get_upgrade(&self, name: Option<String>) -> RpcResult<UpgradeView> {
        use atonomi_primitives::gov::{UpgradePlan, UpgradeRecord, UpgradeStatus};
        let upgrades = self.chain.upgrades;
        let ((upgrade, protocol_version), height) = self.chain.at_one_height(|_| {
            let upgrade = match &name {
                Some(n) => Some(self.found::<UpgradeRecord>(
                    &format!("upgrade {n:?}"),
                    &StateKey::Upgrade(n.clone()),
                )?),
                None => self
                    .state::<UpgradePlan>(&StateKey::ScheduledUpgrade)?
                    .map(|plan| UpgradeRecord {
                        plan,
                        status: UpgradeStatus::Scheduled,
                    }),
            };
            let version = self
                .state::<u32>(&StateKey::ProtocolVersion)?
                .unwrap_or(atonomi_runtime::upgrade::GENESIS_PROTOCOL_VERSION);
            RpcResult::Ok((upgrade, version))
        })?;
        Ok(UpgradeView {
            known: upgrade.as_ref().map(|u| upgrades.knows(&u.plan.name)),
            upgrade,
            protocol_version,
            implemented: upgrades.names().into_iter().map(String::from).collect(),
            height,
        })
    }

    fn list_proposals(&self, filter: ListProposals) -> RpcResult<ProposalPage> {
        let limit = page_limit(filter.limit);
        let gov: Governance = self
            .state(&StateKey::Governance)?
            .ok_or_else(|| internal("no governance record"))?;
        let mut proposals = Vec::new();
        let first = filter.from.unwrap_or(1).max(1);
        let mut id = first;
        // Ids are sequential; a page reads at most `limit` matches, and at most
        // 10,000 records to find them.
        while id < gov.next_proposal.get() && proposals.len() < limit && id - first < 10_000 {
            if let Some(prop) = self.state::<Proposal>(&StateKey::Proposal(ProposalId::new(id)))? {
                if filter.status.is_none_or(|want| want.matches(&prop.status)) {
                    proposals.push(prop);
                }
            }
            id += 1;
        }
        Ok(ProposalPage {
            proposals,
            next: (id < gov.next_proposal.get()).then_some(id),
            threshold: gov.threshold,
        })
    }

    fn get_validators(&self, height: Option<u64>) -> RpcResult<Validators> {
        let Some(height) = height else {
            return Ok(Validators {
                current: self.state::<ValidatorSet>(&StateKey::ValidatorSet)?,
                pending: self.state::<PendingValidatorSet>(&StateKey::PendingValidatorSet)?,
            });
        };
        // As of the state after `height` (kept heights only).
        let chain = &self.chain;
        if height > chain.height().get() {
            return Err(err(
                code::NOT_FOUND,
                format!("height {height} is not committed yet"),
            ));
        }
        let at = |key: StateKey| -> RpcResult<Option<Vec<u8>>> {
            chain
                .db()
                .get_at(&key.to_bytes(), height)
                .map_err(storage_error)
        };
        let current = at(StateKey::ValidatorSet)?
            .map(|b| codec::decode::<ValidatorSet>(&b, 16 << 20))
            .transpose()
            .map_err(internal)?;
        let pending = at(StateKey::PendingValidatorSet)?
            .map(|b| codec::decode::<PendingValidatorSet>(&b, 16 << 20))
            .transpose()
            .map_err(internal)?;
        Ok(Validators { current, pending })
    }

    fn list_manufacturers(&self, page: ListPage) -> RpcResult<Page<Manufacturer>> {
        let start = StateKey::Manufacturer(ManufacturerId::new(page.from.unwrap_or(0))).to_bytes();
        self.page(
            &[tag::MANUFACTURER],
            &start,
            page.limit,
            |m: &Manufacturer| u64::from(m.id.get()),
        )
    }

    fn list_auditors(&self, page: ListPage) -> RpcResult<Page<Auditor>> {
        let start = StateKey::Auditor(AuditorId::new(page.from.unwrap_or(0))).to_bytes();
        self.page(&[tag::AUDITOR], &start, page.limit, |a: &Auditor| {
            u64::from(a.id.get())
        })
    }

    fn get_manufacturer(&self, id: u32) -> RpcResult<Manufacturer> {
        self.found(
            "manufacturer",
            &StateKey::Manufacturer(ManufacturerId::new(id)),
        )
    }

    fn get_auditor(&self, id: u32) -> RpcResult<Auditor> {
        self.found("auditor", &StateKey::Auditor(AuditorId::new(id)))
    }

    fn get_device(&self, device: DeviceId) -> RpcResult<Device> {
        self.found("device", &StateKey::Device(device))
    }

    fn list_devices(&self, query: ListDevices) -> RpcResult<DevicePage> {
        let limit = page_limit(query.limit);
        let manufacturer = ManufacturerId::new(query.manufacturer);
        let chain = &self.chain;
        let kv = chain.db().kv();
        let (ids, next) =
            crate::index::devices_of(kv, manufacturer, query.from, limit).map_err(internal)?;
        let mut devices = Vec::with_capacity(ids.len());
        for id in ids {
            let bytes = chain
                .db()
                .get(&StateKey::Device(id).to_bytes())
                .map_err(internal)?
                .ok_or_else(|| internal(format!("indexed device {id} has no record")))?;
            devices.push(codec::decode::<Device>(&bytes, 16 << 20).map_err(internal)?);
        }
        Ok(DevicePage { devices, next })
    }

    fn get_reputation_history(
        &self,
        query: ReputationHistoryQuery,
    ) -> RpcResult<ReputationHistory> {
        let limit = page_limit(query.limit);
        let chain = &self.chain;
        let kv = chain.db().kv();
        let (records, next) =
            crate::index::reputation_of(kv, &query.subject, query.from, limit).map_err(internal)?;
        Ok(ReputationHistory {
            records,
            next,
            since: Height::new(crate::index::since(kv).map_err(internal)?),
        })
    }

    fn get_reputation(&self, subject: Subject, rep_type: String) -> RpcResult<ReputationAggregate> {
        if rep_type.len() > MAX_TYPE_BYTES {
            return Err(bad_params(format!(
                "rep_type: at most {MAX_TYPE_BYTES} bytes"
            )));
        }
        self.found(
            "reputation",
            &StateKey::ReputationAggregate { subject, rep_type },
        )
    }

    fn validate_device(&self, query: ValidateParams) -> RpcResult<ValidationAt> {
        self.lookups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(query.device, query.requester);
        let chain = &self.chain;
        let reader = |k: &[u8]| chain.db().get(k);
        let (validation, height) = chain
            .at_one_height(|_| {
                atonomi_runtime::query::validate_device(
                    &reader,
                    query.device,
                    query.requester,
                    query.min_reputation,
                )
            })
            .map_err(internal)?;
        Ok(ValidationAt { validation, height })
    }

    fn get_proof(&self, key: StateKey, height: Option<u64>) -> RpcResult<ProofView> {
        let chain = &self.chain;
        let height = height.unwrap_or(chain.height().get());
        if height > chain.height().get() {
            return Err(err(
                code::NOT_FOUND,
                format!("height {height} is not committed yet"),
            ));
        }
        let (value, proof) = chain
            .db()
            .prove(&key.to_bytes(), height)
            .map_err(storage_error)?;
        let state_root = chain.db().root_at(height).map_err(internal)?;
        let (header, commit) = if height == 0 {
            (None, None)
        } else {
            let h = Height::new(height);
            (
                chain.block(h).map_err(internal)?.map(|b| b.header),
                chain.certificate(h).map_err(internal)?,
            )
        };
        Ok(ProofView {
            height,
            key: hex::encode(key.to_bytes()),
            value: value.map(hex::encode),
            proof: hex::encode(proof.to_bytes()),
            state_root,
            header_bytes: header.as_ref().map(|h| hex::encode(codec::encode(h))),
            header_hash: header.as_ref().map(|h| h.hash()),
            header,
            commit,
        })
    }

    fn discover(&self, query: DiscoverParams) -> RpcResult<Discovered> {
        query
            .check()
            .map_err(|e| bad_params(format!("query: {e}")))?;
        let limit = query.limit();
        let chain = &self.chain;
        let (offers, height) = chain.at_one_height(|height| self.offers(&query, limit, height))?;
        Ok(Discovered { height, offers })
    }

    fn get_evidence(&self, from: Option<u64>) -> RpcResult<Vec<EvidenceView>> {
        let chain = &self.chain;
        let list = chain
            .evidence(Height::new(from.unwrap_or(0)), 100)
            .map_err(internal)?;
        Ok(list
            .into_iter()
            .map(|(height, e)| EvidenceView {
                height,
                double_votes: e
                    .double_votes
                    .iter()
                    .map(|(a, b)| DoubleVote {
                        validator: a.validator,
                        height: a.height,
                        round: a.round,
                        vote_type: a.vote_type,
                        first: a.block,
                        second: b.block,
                    })
                    .collect(),
                double_proposals: e
                    .double_proposals
                    .iter()
                    .map(|(a, b)| DoubleProposal {
                        proposer: a.proposer,
                        height: a.height,
                        round: a.round,
                        first: a.block,
                        second: b.block,
                    })
                    .collect(),
            })
            .collect())
    }

    fn get_lookup_counts(&self, limit: Option<usize>) -> RpcResult<LookupCounts> {
        let limit = limit.unwrap_or(1000);
        if !(1..=10_000).contains(&limit) {
            return Err(bad_params(format!("limit: 1..=10000, not {limit}")));
        }
        let log = self.lookups.lock().unwrap_or_else(|e| e.into_inner());
        Ok(LookupCounts {
            run: log.run.to_string(),
            counts: log
                .top(limit)
                .into_iter()
                .map(|(device, c)| LookupCount {
                    device,
                    as_requester: c.as_requester,
                    as_target: c.as_target,
                })
                .collect(),
        })
    }

    fn get_events(&self, height: u64) -> RpcResult<BlockEvents> {
        let chain = &self.chain;
        if height == 0 || height > chain.height().get() {
            return Err(err(
                code::NOT_FOUND,
                format!("height {height} is not committed"),
            ));
        }
        let h = Height::new(height);
        let receipts = chain.receipts(h).map_err(internal)?;
        let block = chain.block(h).map_err(internal)?;
        let mut events = Vec::new();
        for (i, r) in receipts.into_iter().enumerate() {
            // A failed call has no events; say what failed, with who sent it, so that an
            // auditor sees refused payments.
            if let TxStatus::Failed(error) = r.status {
                let tx = block
                    .as_ref()
                    .and_then(|b| b.txs.get(i))
                    .and_then(|t| SignedTransaction::from_bytes(t).ok());
                if let Some(tx) = tx {
                    events.push(TxEvent::Failed {
                        tx_hash: r.tx_hash,
                        failed: FailedCall {
                            call: tx.tx.call,
                            signer: tx.tx.signer,
                            error,
                        },
                    });
                }
                continue;
            }
            for event in r.events {
                events.push(TxEvent::Event {
                    tx_hash: r.tx_hash,
                    event,
                });
            }
        }
        Ok(BlockEvents { height, events })
    }

    fn get_bridge_status(&self) -> RpcResult<BridgeStatus> {
        let chain = &self.chain;
        let cfg = self.context.bridge.as_ref();
        Ok(BridgeStatus {
            chain_epoch: chain.last_checkpoint_epoch().map_err(internal)?,
            contract: cfg.map(|c| c.contract.clone()),
            eth_chain_id: cfg.map(|c| c.eth_chain_id),
            signer: cfg.and_then(|c| c.signer.clone()),
            relayer: self.context.relayer.borrow().clone(),
            submissions: crate::bridge::recent_records(chain, 10)
                .iter()
                .map(|r| SubmissionView {
                    epoch: r.epoch,
                    nonce: r.nonce,
                    tx_hash: r.tx_hash.to_string(),
                    max_fee_per_gas: r.max_fee_per_gas.to_string(),
                    status: r.status,
                    replaced: r.replaced.iter().map(ToString::to_string).collect(),
                })
                .collect(),
        })
    }

    fn get_checkpoint(&self, epoch: u64) -> RpcResult<Checkpoint> {
        let chain = &self.chain;
        let height = chain
            .checkpoint_height(epoch)
            .map_err(internal)?
            .ok_or_else(|| err(code::NOT_FOUND, format!("no checkpoint epoch {epoch} yet")))?;
        let prefix = StateKey::checkpoint_prefix(epoch);
        let signatures = chain
            .db()
            .scan(&prefix, &[], 256)
            .map_err(internal)?
            .into_iter()
            .filter_map(|(k, v)| {
                let record: CheckpointSignature = codec::decode(&v, 1024).ok()?;
                Some(CheckpointSigned {
                    validator: hex::encode(k.get(prefix.len()..)?),
                    record,
                })
            })
            .collect();
        Ok(Checkpoint {
            epoch,
            height,
            signatures,
        })
    }
}
