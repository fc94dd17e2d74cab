//! `atonomi bridge`: deploy the Ethereum checkpoint contract, print the genesis
//! validators' bridge set, write a bridge key.

use anyhow::Result;
use atonomi_node::config::load_genesis;
use atonomi_node::{bridge, keys};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum BridgeCommand {
    /// Deploy the checkpoint contract (bridge/eth/build, see scripts/eth-tools.sh)
    /// trusting the genesis validators' bridge keys; prints its address and chain id.
    Deploy {
        /// Ethereum JSON-RPC URL.
        #[arg(long, env = "ATONOMI_ETH_RPC")]
        eth_rpc: String,
        /// Bridge key file (secp256k1) of a funded Ethereum account paying the deployment.
        #[arg(long)]
        eth_key: PathBuf,
        /// The chain's genesis file: its validators' bridge keys become the contract's first set.
        #[arg(long)]
        genesis: PathBuf,
    },
    /// Print the genesis validators' bridge set (addresses, powers) and its hash.
    SetHash {
        /// The chain's genesis file.
        #[arg(long)]
        genesis: PathBuf,
    },
    /// Write a new secp256k1 bridge key file (0600) and print its address.
    NewKey {
        /// Where to write the key file.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: BridgeCommand) -> Result<()> {
    match cmd {
        BridgeCommand::Deploy {
            eth_rpc,
            eth_key,
            genesis,
        } => {
            let g = load_genesis(&genesis)?;
            Ok(super::runtime()?.block_on(bridge::deploy_cli(&eth_rpc, &eth_key, &g))?)
        }
        BridgeCommand::SetHash { genesis } => {
            let set = bridge::genesis_set(&load_genesis(&genesis)?);
            println!(
                "{}",
                serde_json::json!({ "set_hash": set.hash(), "validators": set.validators, "powers": set.powers })
            );
            Ok(())
        }
        BridgeCommand::NewKey { out } => {
            let k = alloy::signers::local::PrivateKeySigner::random();
            keys::bridge::write(&out, &k, false)?;
            println!("{}", serde_json::json!({ "address": k.address() }));
            Ok(())
        }
    }
}
