//! The records of a genesis state, in the order the runtime writes them.

use crate::gov::Governance;
use crate::ids::{AccountId, Amount};
use crate::params::Params;
use crate::state::{Auditor, ChainInfo, Manufacturer, TokenInfo, ValidatorSet};

/// The records of a genesis state, in the order the runtime writes them. Kept here so
/// the genesis crate and the runtime agree on it.
#[derive(Clone, Debug)]
pub struct GenesisState {
    pub chain: ChainInfo,
    pub token: TokenInfo,
    pub params: Params,
    pub governance: Governance,
    pub validators: ValidatorSet,
    pub balances: Vec<(AccountId, Amount)>,
    pub manufacturers: Vec<Manufacturer>,
    pub auditors: Vec<Auditor>,
    /// Peer ids (libp2p bytes) of full nodes allowed to connect to validators.
    pub node_peers: Vec<Vec<u8>>,
}
