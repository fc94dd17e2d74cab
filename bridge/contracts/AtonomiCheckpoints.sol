// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Checkpoints of the Atonomi ledger's state on Ethereum.
/// @notice Anyone may submit a checkpoint; it is accepted only with secp256k1
/// signatures (low-s) of more than 2/3 of the voting power of the validator set this
/// contract currently trusts, for exactly the next epoch. A checkpoint whose next-set
/// hash differs from the current one rotates the trusted set. What a checkpoint
/// commits to (state root, block hash) is then the anchor of inclusion proofs.
/// @dev The signed digest binds the Atonomi chain id, the Ethereum chain id and this
/// contract's address, so a signature counts for one checkpoint in one place.
contract AtonomiCheckpoints {
    struct Checkpoint {
        uint64 epoch;
        uint64 height;
        bytes32 blockHash;
        bytes32 stateRoot;
        bytes32 nextSetHash;
    }

    bytes32 public constant DOMAIN = keccak256("atonomi 2026 checkpoint v1");
    /// secp256k1n / 2: signatures with a larger s are malleable twins and refused.
    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// keccak256 of the Atonomi chain id (UTF-8).
    bytes32 public immutable chainIdHash;
    /// keccak256(abi.encode(validators, powers)) of the set whose signatures count.
    bytes32 public validatorSetHash;
    uint64 public latestEpoch;
    mapping(uint64 => Checkpoint) private checkpoints;

    error EpochNotNext(uint64 expected, uint64 got);
    error HeightNotIncreasing(uint64 last, uint64 got);
    error ValidatorSetMismatch(bytes32 trusted, bytes32 given);
    error LengthMismatch();
    error BadSignatureLength(uint256 index);
    error HighS(uint256 index);
    error BadV(uint256 index);
    error InvalidSignature(uint256 index);
    error InsufficientPower(uint256 signed, uint256 total);
    error UnknownEpoch(uint64 epoch);
    error EmptySet();

    event CheckpointSubmitted(
        uint64 indexed epoch, uint64 height, bytes32 blockHash, bytes32 stateRoot, bytes32 nextSetHash, address submitter
    );
    event ValidatorSetRotated(uint64 indexed epoch, bytes32 previousSetHash, bytes32 newSetHash);

    constructor(bytes32 chainIdHash_, bytes32 genesisSetHash) {
        if (genesisSetHash == bytes32(0)) revert EmptySet();
        chainIdHash = chainIdHash_;
        validatorSetHash = genesisSetHash;
    }

    /// The hash a validator set is known by.
    function setHash(address[] calldata validators, uint256[] calldata powers) public pure returns (bytes32) {
        return keccak256(abi.encode(validators, powers));
    }

    /// The digest validators sign for `c` (an Ethereum signed-message prefix is not used).
    function digest(Checkpoint calldata c) public view returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN, chainIdHash, block.chainid, address(this), c.epoch, c.height, c.blockHash, c.stateRoot, c.nextSetHash
            )
        );
    }

    /// @param validators, powers the trusted set, in its order (its hash must match).
    /// @param signatures one entry per validator: 65 bytes (r, s, v) or empty if absent.
    function submitCheckpoint(
        Checkpoint calldata c,
        address[] calldata validators,
        uint256[] calldata powers,
        bytes[] calldata signatures
    ) external {
        if (c.epoch != latestEpoch + 1) revert EpochNotNext(latestEpoch + 1, c.epoch);
        uint64 lastHeight = checkpoints[latestEpoch].height;
        if (latestEpoch != 0 && c.height <= lastHeight) revert HeightNotIncreasing(lastHeight, c.height);
        if (validators.length != powers.length || validators.length != signatures.length) revert LengthMismatch();
        bytes32 given = setHash(validators, powers);
        bytes32 trusted = validatorSetHash;
        if (given != trusted) revert ValidatorSetMismatch(trusted, given);

        (uint256 signed, uint256 total) = signedPower(digest(c), validators, powers, signatures);
        if (signed * 3 <= total * 2) revert InsufficientPower(signed, total);
        accept(c, trusted);
    }

    function signedPower(bytes32 d, address[] calldata validators, uint256[] calldata powers, bytes[] calldata signatures)
        private
        pure
        returns (uint256 signed, uint256 total)
    {
        for (uint256 i = 0; i < validators.length; i++) {
            total += powers[i];
            if (signatures[i].length == 0) continue;
            if (recover(d, signatures[i], i) != validators[i]) revert InvalidSignature(i);
            signed += powers[i];
        }
    }

    function accept(Checkpoint calldata c, bytes32 trusted) private {
        latestEpoch = c.epoch;
        checkpoints[c.epoch] = c;
        emit CheckpointSubmitted(c.epoch, c.height, c.blockHash, c.stateRoot, c.nextSetHash, msg.sender);
        if (c.nextSetHash != trusted) {
            validatorSetHash = c.nextSetHash;
            emit ValidatorSetRotated(c.epoch, trusted, c.nextSetHash);
        }
    }

    /// The signer of `d` by a 65-byte (r, s, v) low-s signature; reverts on malformed ones.
    function recover(bytes32 d, bytes calldata sig, uint256 i) private pure returns (address who) {
        if (sig.length != 65) revert BadSignatureLength(i);
        bytes32 r = bytes32(sig[0:32]);
        bytes32 s = bytes32(sig[32:64]);
        uint8 v = uint8(sig[64]);
        if (uint256(s) > HALF_N) revert HighS(i);
        if (v != 27 && v != 28) revert BadV(i);
        who = ecrecover(d, v, r, s);
        if (who == address(0)) revert InvalidSignature(i);
    }

    function latestCheckpoint() external view returns (Checkpoint memory) {
        if (latestEpoch == 0) revert UnknownEpoch(0);
        return checkpoints[latestEpoch];
    }

    function checkpointAt(uint64 epoch) external view returns (Checkpoint memory) {
        if (epoch == 0 || epoch > latestEpoch) revert UnknownEpoch(epoch);
        return checkpoints[epoch];
    }
}
