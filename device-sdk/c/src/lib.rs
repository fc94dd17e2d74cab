//! C interface of the Atonomi device SDK. Every function returns an `AtonomiStatus`
//! (0 = ok) and writes only into buffers the caller passes with their sizes; nothing
//! is allocated, nothing is kept between calls. Keys are 32-byte seeds held by the
//! caller; ids, accounts and hashes are 32 bytes; amounts are base units (10^-18 ATMI)
//! as two 64-bit halves.
#![no_std]
#![allow(unsafe_code)] // the C boundary: raw pointers from the caller, checked for null
#![allow(non_camel_case_types)] // C names for the C header

use atonomi_device::{activation_signature, header_state_root, verify_device, DeviceKey, DeviceStatus, Error, Outcome, TxBuilder};
use core::slice;

#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // The SDK has no panicking paths (clippy denies them); should one ever be reached,
    // stop rather than continue with a half-written buffer.
    loop {}
}

/// Result of every call.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtonomiStatus {
    ATONOMI_OK = 0,
    ATONOMI_NULL_ARGUMENT = 1,
    ATONOMI_BUFFER_TOO_SMALL = 2,
    ATONOMI_INPUT_TOO_LONG = 3,
    ATONOMI_MALFORMED = 4,
    ATONOMI_HEADER_MISMATCH = 5,
    ATONOMI_PROOF_MISMATCH = 6,
    ATONOMI_BAD_UTF8 = 7,
}

use AtonomiStatus::*;

fn status(e: Error) -> AtonomiStatus {
    match e {
        Error::BufferTooSmall => ATONOMI_BUFFER_TOO_SMALL,
        Error::InputTooLong => ATONOMI_INPUT_TOO_LONG,
        Error::Malformed => ATONOMI_MALFORMED,
        Error::HeaderMismatch => ATONOMI_HEADER_MISMATCH,
        Error::ProofMismatch => ATONOMI_PROOF_MISMATCH,
    }
}

/// # Safety
/// `p` is null or points to `len` readable bytes.
unsafe fn bytes<'a>(p: *const u8, len: usize) -> Option<&'a [u8]> {
    if p.is_null() {
        return if len == 0 { Some(&[]) } else { None };
    }
    Some(unsafe { slice::from_raw_parts(p, len) })
}

/// # Safety
/// `p` is null or points to 32 readable bytes.
unsafe fn array<'a>(p: *const u8) -> Option<&'a [u8; 32]> {
    if p.is_null() {
        return None;
    }
    Some(unsafe { &*(p as *const [u8; 32]) })
}

/// # Safety
/// `p` is null or points to `len` readable bytes.
unsafe fn text<'a>(p: *const u8, len: usize) -> Result<&'a str, AtonomiStatus> {
    let b = unsafe { bytes(p, len) }.ok_or(ATONOMI_NULL_ARGUMENT)?;
    core::str::from_utf8(b).map_err(|_| ATONOMI_BAD_UTF8)
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(s) => return s,
        }
    };
}

/// Writes the public key (the device's account) of `seed` to `out_public_key` (32 bytes).
///
/// # Safety
/// `seed` points to 32 bytes, `out_public_key` to 32 writable bytes.
#[no_mangle]
pub unsafe extern "C" fn atonomi_public_key(seed: *const u8, out_public_key: *mut u8) -> AtonomiStatus {
    let seed = tri!(unsafe { array(seed) }.ok_or(ATONOMI_NULL_ARGUMENT));
    if out_public_key.is_null() {
        return ATONOMI_NULL_ARGUMENT;
    }
    let pk = DeviceKey::from_seed(seed).public_key();
    unsafe { core::ptr::copy_nonoverlapping(pk.as_ptr(), out_public_key, 32) };
    ATONOMI_OK
}

/// Signs the device's consent to be activated by `owner` on `chain_id`; writes the
/// 64-byte signature the owner puts in `activate_device`.
///
/// # Safety
/// `seed`, `device_id`, `owner` point to 32 bytes; `chain_id` to `chain_id_len` bytes;
/// `out_signature` to 64 writable bytes.
#[no_mangle]
pub unsafe extern "C" fn atonomi_sign_activation(
    seed: *const u8,
    chain_id: *const u8,
    chain_id_len: usize,
    device_id: *const u8,
    owner: *const u8,
    out_signature: *mut u8,
) -> AtonomiStatus {
    let (Some(seed), Some(device), Some(owner)) = (unsafe { array(seed) }, unsafe { array(device_id) }, unsafe { array(owner) }) else {
        return ATONOMI_NULL_ARGUMENT;
    };
    let chain = tri!(unsafe { text(chain_id, chain_id_len) });
    if out_signature.is_null() {
        return ATONOMI_NULL_ARGUMENT;
    }
    let key = DeviceKey::from_seed(seed);
    let sig = tri!(activation_signature(&key, chain, device, owner).map_err(status));
    unsafe { core::ptr::copy_nonoverlapping(sig.as_ptr(), out_signature, 64) };
    ATONOMI_OK
}

/// # Safety
/// As documented on the public functions.
unsafe fn build(
    seed: *const u8,
    chain_id: *const u8,
    chain_id_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
    f: impl FnOnce(&TxBuilder<'_>, &mut [u8]) -> Result<usize, Error>,
) -> AtonomiStatus {
    let seed = tri!(unsafe { array(seed) }.ok_or(ATONOMI_NULL_ARGUMENT));
    let chain = tri!(unsafe { text(chain_id, chain_id_len) });
    if out.is_null() || out_len.is_null() {
        return ATONOMI_NULL_ARGUMENT;
    }
    let key = DeviceKey::from_seed(seed);
    let builder = tri!(TxBuilder::new(&key, chain).map_err(status));
    let buf = unsafe { slice::from_raw_parts_mut(out, out_cap) };
    let n = tri!(f(&builder, buf).map_err(status));
    unsafe { *out_len = n };
    ATONOMI_OK
}

/// Builds and signs `Pay { from_device, to_device, amount, memo }` with nonce `nonce`
/// (the device account's next nonce); writes the transaction to `out` (capacity
/// `out_cap`, 512 bytes always suffice) and its length to `out_len`. Submit it hex-encoded
/// with `atonomi_sendTransaction`.
///
/// # Safety
/// Pointers as their lengths say; 32-byte ids; `memo` may be null when `memo_len` is 0.
#[no_mangle]
pub unsafe extern "C" fn atonomi_build_pay(
    seed: *const u8,
    chain_id: *const u8,
    chain_id_len: usize,
    nonce: u64,
    from_device: *const u8,
    to_device: *const u8,
    amount_hi: u64,
    amount_lo: u64,
    memo: *const u8,
    memo_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> AtonomiStatus {
    let (Some(from), Some(to), Some(memo)) = (unsafe { array(from_device) }, unsafe { array(to_device) }, unsafe { bytes(memo, memo_len) }) else {
        return ATONOMI_NULL_ARGUMENT;
    };
    let amount = (u128::from(amount_hi) << 64) | u128::from(amount_lo);
    unsafe { build(seed, chain_id, chain_id_len, out, out_cap, out_len, |b, buf| b.pay(buf, nonce, from, to, amount, memo)) }
}

/// Builds and signs `ReportInteraction { device, peer, outcome (0 success, 1 failure), receipt }`.
///
/// # Safety
/// As [`atonomi_build_pay`].
#[no_mangle]
pub unsafe extern "C" fn atonomi_build_report_interaction(
    seed: *const u8,
    chain_id: *const u8,
    chain_id_len: usize,
    nonce: u64,
    device: *const u8,
    peer: *const u8,
    failed: bool,
    receipt: *const u8,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> AtonomiStatus {
    let (Some(device), Some(peer), Some(receipt)) = (unsafe { array(device) }, unsafe { array(peer) }, unsafe { array(receipt) }) else {
        return ATONOMI_NULL_ARGUMENT;
    };
    let outcome = if failed { Outcome::Failure } else { Outcome::Success };
    unsafe { build(seed, chain_id, chain_id_len, out, out_cap, out_len, |b, buf| b.report_interaction(buf, nonce, device, peer, outcome, receipt)) }
}

/// Builds and signs `AnchorLog { device, hash, kind, parties }`; `parties` is
/// `parties_count` consecutive 32-byte device ids (at most 16).
///
/// # Safety
/// As [`atonomi_build_pay`]; `parties` points to `32 * parties_count` bytes.
#[no_mangle]
pub unsafe extern "C" fn atonomi_build_anchor_log(
    seed: *const u8,
    chain_id: *const u8,
    chain_id_len: usize,
    nonce: u64,
    device: *const u8,
    hash: *const u8,
    kind: *const u8,
    kind_len: usize,
    parties: *const u8,
    parties_count: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> AtonomiStatus {
    let (Some(device), Some(hash)) = (unsafe { array(device) }, unsafe { array(hash) }) else {
        return ATONOMI_NULL_ARGUMENT;
    };
    let kind = tri!(unsafe { text(kind, kind_len) });
    if parties_count > 16 {
        return ATONOMI_INPUT_TOO_LONG;
    }
    let raw = tri!(unsafe { bytes(parties, parties_count * 32) }.ok_or(ATONOMI_NULL_ARGUMENT));
    let mut list = [[0u8; 32]; 16];
    for (slot, chunk) in list.iter_mut().zip(raw.chunks_exact(32)) {
        slot.copy_from_slice(chunk);
    }
    let parties = list.get(..parties_count).unwrap_or(&[]);
    unsafe { build(seed, chain_id, chain_id_len, out, out_cap, out_len, |b, buf| b.anchor_log(buf, nonce, device, hash, kind, parties)) }
}

/// What a verified device record says (`status`: 0 not registered, 1 registered,
/// 2 active, 3 suspended, 4 revoked).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AtonomiDeviceView {
    pub status: u8,
    pub manufacturer: u32,
    pub public_key: [u8; 32],
    pub has_owner: bool,
    pub owner: [u8; 32],
}

/// Verifies a validate-device answer: `header` (borsh bytes, `header_bytes` of
/// `atonomi_getProof`) must hash to `trusted_header_hash`; then `proof` must prove
/// `record` (or, when `record` is null, the device's absence) for `device_id` under the
/// header's state root. On success fills `out_view`.
///
/// # Safety
/// Pointers as their lengths say; `record` may be null (absence).
#[no_mangle]
pub unsafe extern "C" fn atonomi_verify_device(
    trusted_header_hash: *const u8,
    header: *const u8,
    header_len: usize,
    device_id: *const u8,
    record: *const u8,
    record_len: usize,
    proof: *const u8,
    proof_len: usize,
    out_view: *mut AtonomiDeviceView,
) -> AtonomiStatus {
    let (Some(trusted), Some(header), Some(device), Some(proof)) =
        (unsafe { array(trusted_header_hash) }, unsafe { bytes(header, header_len) }, unsafe { array(device_id) }, unsafe { bytes(proof, proof_len) })
    else {
        return ATONOMI_NULL_ARGUMENT;
    };
    if out_view.is_null() {
        return ATONOMI_NULL_ARGUMENT;
    }
    let record = if record.is_null() { None } else { Some(unsafe { slice::from_raw_parts(record, record_len) }) };
    let root = tri!(header_state_root(header, trusted).map_err(status));
    let view = tri!(verify_device(&root, device, record, proof).map_err(status));
    let code = match view.status {
        None => 0,
        Some(DeviceStatus::Registered) => 1,
        Some(DeviceStatus::Active) => 2,
        Some(DeviceStatus::Suspended) => 3,
        Some(DeviceStatus::Revoked) => 4,
    };
    unsafe {
        *out_view = AtonomiDeviceView { status: code, manufacturer: view.manufacturer, public_key: view.public_key, has_owner: view.owner.is_some(), owner: view.owner.unwrap_or([0; 32]) };
    }
    ATONOMI_OK
}
