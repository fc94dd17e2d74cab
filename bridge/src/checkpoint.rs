//! Checkpoints, validator-set hashes and signatures, byte-compatible with the contract.

use alloy::primitives::{keccak256, Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use alloy::sol_types::SolValue;

/// `keccak256("atonomi 2026 checkpoint v1")`, the contract's `DOMAIN`.
pub fn domain() -> B256 {
    keccak256("atonomi 2026 checkpoint v1")
}

/// What validators sign about a finalized block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub epoch: u64,
    pub height: u64,
    pub block_hash: B256,
    pub state_root: B256,
    pub next_set_hash: B256,
}

/// A validator set as the contract knows it: bridge addresses and powers, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeSet {
    pub validators: Vec<Address>,
    pub powers: Vec<U256>,
}

impl BridgeSet {
    /// `keccak256(abi.encode(validators, powers))`.
    pub fn hash(&self) -> B256 {
        keccak256((self.validators.clone(), self.powers.clone()).abi_encode_params())
    }

    pub fn total_power(&self) -> U256 {
        self.powers
            .iter()
            .fold(U256::ZERO, |a, p| a.saturating_add(*p))
    }
}

/// The digest a validator's bridge key signs for `c` on the contract at `contract` on
/// Ethereum chain `eth_chain_id`, for the Atonomi chain `chain_id`.
pub fn checkpoint_digest(
    chain_id: &str,
    eth_chain_id: u64,
    contract: Address,
    c: &Checkpoint,
) -> B256 {
    keccak256(
        (
            domain(),
            keccak256(chain_id.as_bytes()),
            U256::from(eth_chain_id),
            contract,
            c.epoch,
            c.height,
            c.block_hash,
            c.state_root,
            c.next_set_hash,
        )
            .abi_encode_params(),
    )
}

/// A 65-byte `(r, s, v)` signature of `digest` with `v` ∈ {27, 28} and low `s` (the
/// contract refuses the malleable high-s twin).
pub fn sign_digest(
    key: &PrivateKeySigner,
    digest: &B256,
) -> Result<[u8; 65], alloy::signers::Error> {
    let sig = key.sign_hash_sync(digest)?;
    let mut out = [0u8; 65];
    out[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
    out[32..64].copy_from_slice(&sig.s().to_be_bytes::<32>());
    out[64] = 27 + u8::from(sig.v());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_low_s_and_recover_to_the_signer() {
        let key = PrivateKeySigner::random();
        let d = keccak256(b"x");
        let sig = sign_digest(&key, &d).unwrap();
        let s = U256::from_be_slice(&sig[32..64]);
        let half_n = U256::from_str_radix(
            "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0",
            16,
        )
        .unwrap();
        assert!(s <= half_n);
        let parsed = alloy::primitives::Signature::from_raw(&sig).unwrap();
        assert_eq!(
            parsed.recover_address_from_prehash(&d).unwrap(),
            key.address()
        );
    }

    #[test]
    fn the_digest_binds_every_field_and_place() {
        let c = Checkpoint {
            epoch: 1,
            height: 10,
            block_hash: B256::repeat_byte(1),
            state_root: B256::repeat_byte(2),
            next_set_hash: B256::repeat_byte(3),
        };
        let a = Address::repeat_byte(9);
        let base = checkpoint_digest("atonomi-dev", 31337, a, &c);
        assert_ne!(base, checkpoint_digest("atonomi-test", 31337, a, &c));
        assert_ne!(base, checkpoint_digest("atonomi-dev", 1, a, &c));
        assert_ne!(
            base,
            checkpoint_digest("atonomi-dev", 31337, Address::repeat_byte(8), &c)
        );
        assert_ne!(
            base,
            checkpoint_digest("atonomi-dev", 31337, a, &Checkpoint { epoch: 2, ..c })
        );
        assert_ne!(
            base,
            checkpoint_digest(
                "atonomi-dev",
                31337,
                a,
                &Checkpoint {
                    state_root: B256::ZERO,
                    ..c
                }
            )
        );
    }
}
