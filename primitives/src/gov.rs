//! Governance: the actions k admins can approve, the proposals that carry them and the
//! council itself.

use crate::codec::bounded;
use crate::ids::{AccountId, Amount, AuditorId, Height, ManufacturerId, ProposalId, Score};
use crate::params::{ParamChange, Params};
use crate::state::{limits, MemberStatus, Validator};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Member lifecycle changes made by governance.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum MemberChange {
    Suspend,
    Resume,
    Remove,
}

impl MemberChange {
    /// The status a change leads to from `from`, or `None` when not allowed (anything
    /// from Removed; suspending a suspended member; resuming an active one).
    pub fn apply(self, from: MemberStatus) -> Option<MemberStatus> {
        match (self, from) {
            (_, MemberStatus::Removed) => None,
            (MemberChange::Suspend, MemberStatus::Active) => Some(MemberStatus::Suspended),
            (MemberChange::Resume, MemberStatus::Suspended) => Some(MemberStatus::Active),
            (MemberChange::Remove, _) => Some(MemberStatus::Removed),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct NewManufacturer {
    pub id: ManufacturerId,
    #[borsh(deserialize_with = "bounded::string::<_, { limits::NAME }>")]
    pub name: String,
    #[borsh(deserialize_with = "bounded::vec::<_, AccountId, { limits::KEYS }>")]
    pub keys: Vec<AccountId>,
    pub registration_fee: Option<Amount>,
    pub default_score: Score,
    pub reward_wallet: AccountId,
    #[borsh(deserialize_with = "bounded::bytes::<_, { limits::METADATA }>")]
    #[serde(default)]
    pub metadata: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct NewAuditor {
    pub id: AuditorId,
    #[borsh(deserialize_with = "bounded::string::<_, { limits::NAME }>")]
    pub name: String,
    #[borsh(deserialize_with = "bounded::vec::<_, AccountId, { limits::KEYS }>")]
    pub keys: Vec<AccountId>,
    pub reward_account: AccountId,
    #[borsh(deserialize_with = "bounded::bytes::<_, { limits::METADATA }>")]
    #[serde(default)]
    pub metadata: Vec<u8>,
}

/// Module accounts governance can pay out of.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PoolAccount {
    Treasury,
    AuditorPool,
}

impl PoolAccount {
    pub fn account(self) -> AccountId {
        match self {
            PoolAccount::Treasury => AccountId::treasury(),
            PoolAccount::AuditorPool => AccountId::auditor_pool(),
        }
    }
}

/// What a governance proposal does once k admins approved it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GovAction {
    AddManufacturer(NewManufacturer),
    ChangeManufacturer {
        id: ManufacturerId,
        change: MemberChange,
    },
    AddAuditor(NewAuditor),
    ChangeAuditor {
        id: AuditorId,
        change: MemberChange,
    },
    AddValidator(Validator),
    RemoveValidator {
        consensus_key: AccountId,
    },
    SetValidatorPower {
        consensus_key: AccountId,
        power: u64,
    },
    SetParams(Params),
    TreasuryPayout {
        from: PoolAccount,
        to: AccountId,
        amount: Amount,
    },
    SetAdmins {
        #[borsh(deserialize_with = "bounded::vec::<_, AccountId, { limits::ADMINS }>")]
        admins: Vec<AccountId>,
        threshold: u32,
    },
    /// Allow or disallow a full node's libp2p peer id to connect to validators.
    SetNodePeer {
        #[borsh(deserialize_with = "bounded::bytes::<_, { limits::PEER_ID }>")]
        peer_id: Vec<u8>,
        allowed: bool,
    },
    /// Change the named network parameters only; the others keep the values in force
    /// when the proposal executes. Each parameter at most once, at least one.
    UpdateParams(
        #[borsh(deserialize_with = "bounded::vec::<_, ParamChange, { limits::PARAM_CHANGES }>")]
        Vec<ParamChange>,
    ),
    /// Every node stops at `plan.height` unless its binary implements `plan.name`; one
    /// that does runs the upgrade's state migration at the start of that block. The
    /// height must be at least `upgrade_min_delay` blocks ahead when the proposal
    /// executes; a name is used once, ever; one plan is scheduled at a time.
    ScheduleUpgrade(UpgradePlan),
    /// Withdraws the scheduled plan of this name (its name stays used).
    CancelUpgrade {
        #[borsh(deserialize_with = "bounded::string::<_, { limits::NAME }>")]
        name: String,
    },
}

/// A software upgrade at a height (see [`GovAction::ScheduleUpgrade`]).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct UpgradePlan {
    /// 1 to 64 characters of `a-z`, `0-9`, `.`, `-`, `_`; the binary that implements
    /// the upgrade knows it by this name.
    #[borsh(deserialize_with = "bounded::string::<_, { limits::NAME }>")]
    pub name: String,
    /// The first block the new binary executes (its migration runs at its start).
    pub height: Height,
    /// For operators: what to install (a release, a URL, checksums).
    #[borsh(deserialize_with = "bounded::string::<_, { limits::METADATA }>")]
    #[serde(default)]
    pub info: String,
}

impl UpgradePlan {
    /// Whether `name` is an acceptable upgrade name.
    pub fn valid_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= limits::NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    }
}

/// Where an upgrade plan stands.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum UpgradeStatus {
    /// Waiting for its height.
    Scheduled,
    /// Withdrawn by governance in the block at `at`.
    Cancelled { at: Height },
    /// Its migration ran at the start of the block at `at`.
    Applied { at: Height },
}

/// A plan governance scheduled, kept for ever under its name (names are not reused).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct UpgradeRecord {
    pub plan: UpgradePlan,
    #[serde(flatten)]
    pub status: UpgradeStatus,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    Pending,
    Executed,
    /// The action was approved but failed when executed (error code).
    Failed(u16),
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Proposal {
    pub id: ProposalId,
    pub proposer: AccountId,
    pub action: GovAction,
    #[borsh(deserialize_with = "bounded::vec::<_, AccountId, { limits::ADMINS }>")]
    pub approvals: Vec<AccountId>,
    pub status: ProposalStatus,
    pub created: Height,
}

/// The governance council: admins and the approval threshold k.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Governance {
    #[borsh(deserialize_with = "bounded::vec::<_, AccountId, { limits::ADMINS }>")]
    pub admins: Vec<AccountId>,
    pub threshold: u32,
    pub next_proposal: ProposalId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_changes() {
        use MemberStatus::*;
        assert_eq!(MemberChange::Suspend.apply(Active), Some(Suspended));
        assert_eq!(MemberChange::Resume.apply(Suspended), Some(Active));
        assert_eq!(MemberChange::Resume.apply(Active), None);
        assert_eq!(MemberChange::Remove.apply(Suspended), Some(Removed));
        assert_eq!(MemberChange::Resume.apply(Removed), None);
        assert_eq!(MemberChange::Remove.apply(Removed), None);
    }

    #[test]
    fn upgrade_names() {
        for ok in ["v2", "atonomi-1.4.0", "fix_reputation"] {
            assert!(UpgradePlan::valid_name(ok), "{ok}");
        }
        for bad in ["", "V2", "v 2", "v2/", &"x".repeat(limits::NAME + 1)] {
            assert!(!UpgradePlan::valid_name(bad), "{bad}");
        }
    }
}
