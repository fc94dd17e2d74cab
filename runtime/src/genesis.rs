//! The state diff of a genesis: what the chain holds at height 0.

use crate::error::Fatal;
use crate::governance::validate_set;
use crate::state::StateDiff;
use atonomi_primitives::codec;
use atonomi_primitives::genesis::GenesisState;
use atonomi_primitives::state::{Account, StateKey};
use atonomi_primitives::Amount;
use borsh::BorshSerialize;
use std::collections::BTreeMap;

fn put<T: BorshSerialize>(diff: &mut StateDiff, key: StateKey, v: &T) {
    diff.insert(key.to_bytes(), Some(codec::encode(v)));
}

/// Builds the genesis state diff. Checks the invariants the runtime relies on: the
/// allocations sum to the total supply, the validator set is usable, the parameters
/// are valid, and no account, manufacturer or auditor is listed twice.
pub fn genesis_diff(g: &GenesisState) -> Result<StateDiff, Fatal> {
    let bad = |m: String| Fatal::InvalidBlock(format!("genesis: {m}"));
    g.params.validate().map_err(|e| bad(e.to_string()))?;
    validate_set(&g.validators).map_err(|e| bad(format!("validators: {e}")))?;
    let mut diff = StateDiff::new();
    let mut balances = BTreeMap::new();
    let mut sum = Amount::ZERO;
    for (a, amount) in &g.balances {
        if balances
            .insert(
                *a,
                Account {
                    nonce: 0,
                    balance: *amount,
                },
            )
            .is_some()
        {
            return Err(bad(format!("account {a} is allocated twice")));
        }
        sum = sum
            .checked_add(*amount)
            .ok_or_else(|| bad("allocations overflow".into()))?;
    }
    if sum != g.token.total_supply {
        return Err(bad(format!(
            "allocations sum to {sum} ATMI but the total supply is {} ATMI",
            g.token.total_supply
        )));
    }
    if g.governance.threshold == 0 || g.governance.threshold as usize > g.governance.admins.len() {
        return Err(bad(
            "governance threshold must be between 1 and the number of admins".into(),
        ));
    }
    for (a, acct) in &balances {
        put(&mut diff, StateKey::Account(*a), acct);
    }
    for m in &g.manufacturers {
        if !m.pool.is_zero() {
            return Err(bad(format!(
                "manufacturer {} must start with an empty pool",
                m.id
            )));
        }
        if diff
            .insert(
                StateKey::Manufacturer(m.id).to_bytes(),
                Some(codec::encode(m)),
            )
            .is_some()
        {
            return Err(bad(format!("manufacturer {} is listed twice", m.id)));
        }
    }
    for a in &g.auditors {
        if diff
            .insert(StateKey::Auditor(a.id).to_bytes(), Some(codec::encode(a)))
            .is_some()
        {
            return Err(bad(format!("auditor {} is listed twice", a.id)));
        }
    }
    put(&mut diff, StateKey::ChainInfo, &g.chain);
    put(&mut diff, StateKey::Token, &g.token);
    put(&mut diff, StateKey::Params, &g.params);
    put(&mut diff, StateKey::Governance, &g.governance);
    put(&mut diff, StateKey::ValidatorSet, &g.validators);
    for p in &g.node_peers {
        if p.is_empty() {
            return Err(bad("a node peer id is empty".into()));
        }
        put(&mut diff, StateKey::NodePeer(p.clone()), &());
    }
    Ok(diff)
}
