//! The signature acceptance rule (primitives/src/crypto.rs) on the edge cases of
//! "Taming the many EdDSAs" and ZIP-215: small-order keys and nonces, mixed-order
//! points, non-canonical encodings, S >= L. Each case is asserted three ways — the
//! single check, a batch that must settle it by bisection, and the all-or-nothing
//! batch — so the paths cannot drift apart, and against the rule's expected answer,
//! so a change of rule (say back to cofactorless `verify_strict`, or to plain ZIP-215
//! without the canonical checks) fails here.

use atonomi_primitives::crypto::{self, is_canonical_point, SignatureCheck};
use atonomi_primitives::{AccountId, Hash, Keypair, PublicKey, Signature};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT as B;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use proptest::prelude::*;
use sha2::{Digest, Sha512};

const DOMAIN: &str = "atonomi test signature rule";

/// A generator of the torsion subgroup: the small-order part of a point found by
/// hashing, `T = P - [1/8]([8]P)`, taken when it has order 8.
fn torsion() -> Vec<EdwardsPoint> {
    let inv8 = Scalar::from(8u8).invert();
    for i in 0u32.. {
        let h = Hash::with_domain("torsion search", &i.to_le_bytes());
        let Some(p) = CompressedEdwardsY(h.0).decompress() else {
            continue;
        };
        let t = p - inv8 * p.mul_by_cofactor();
        if !(t + t + t + t).is_identity() {
            return (0..8u8).map(|k| Scalar::from(k) * t).collect();
        }
    }
    unreachable!()
}

fn scalar(label: &str) -> Scalar {
    Scalar::from_bytes_mod_order(Hash::with_domain("test scalar", label.as_bytes()).0)
}

/// k = SHA-512(R ‖ A ‖ M) mod L over the encodings as given.
fn challenge(r: &[u8; 32], a: &[u8; 32], m: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(m);
    let wide: [u8; 64] = h.finalize().into();
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// A signature by secret `a` for key bytes `a_bytes`, nonce `r` plus `r_extra`, over the
/// digest of `msg`; `r_bytes` overrides the encoding of R (to test re-encodings).
fn sign_raw(
    a: Scalar,
    a_bytes: [u8; 32],
    r: Scalar,
    r_extra: EdwardsPoint,
    r_bytes: Option<[u8; 32]>,
    msg: &[u8],
) -> Signature {
    let digest = Hash::with_domain(DOMAIN, msg);
    let r_bytes = r_bytes.unwrap_or_else(|| (r * B + r_extra).compress().to_bytes());
    let k = challenge(&r_bytes, &a_bytes, digest.as_bytes());
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_bytes);
    sig[32..].copy_from_slice(s.as_bytes());
    Signature(sig)
}

struct Case {
    name: &'static str,
    key: [u8; 32],
    sig: Signature,
    msg: &'static [u8],
    /// What the rule answers.
    accept: bool,
    /// What plain ZIP-215 (ed25519-consensus alone) answers, to show which part of the
    /// rule decides.
    zip215: bool,
}

fn add_l(s: &[u8]) -> [u8; 32] {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(s[i]) + u16::from(L[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    out
}

fn cases() -> Vec<Case> {
    let t = torsion();
    let a = scalar("a");
    let r = scalar("r");
    let honest_a = (a * B).compress().to_bytes();
    let mixed_a = (a * B + t[1]).compress().to_bytes();
    let none = EdwardsPoint::default();
    let mut out = Vec::new();

    let honest = sign_raw(a, honest_a, r, none, None, b"m");
    out.push(Case {
        name: "honest RFC 8032 signature",
        key: honest_a,
        sig: honest,
        msg: b"m",
        accept: true,
        zip215: true,
    });
    out.push(Case {
        name: "wrong message",
        key: honest_a,
        sig: honest,
        msg: b"n",
        accept: false,
        zip215: false,
    });

    let mut s_plus_l = honest;
    let s = add_l(&honest.0[32..]);
    s_plus_l.0[32..].copy_from_slice(&s);
    out.push(Case {
        name: "S + L (non-canonical S)",
        key: honest_a,
        sig: s_plus_l,
        msg: b"m",
        accept: false,
        zip215: false,
    });
    let mut high_s = honest;
    high_s.0[63] |= 0xe0;
    out.push(Case {
        name: "S with the top three bits set",
        key: honest_a,
        sig: high_s,
        msg: b"m",
        accept: false,
        zip215: false,
    });

    // Mixed-order key: cofactorless verification rejects whenever k·T != 0; the
    // cofactored rule accepts (the signer knows a, the torsion part is ignored).
    let mut mixed_key_case = None;
    for i in 0..16u8 {
        let sig = sign_raw(a, mixed_a, r + Scalar::from(i), none, None, b"m");
        let k = challenge(
            sig.0[..32].try_into().unwrap(),
            &mixed_a,
            Hash::with_domain(DOMAIN, b"m").as_bytes(),
        );
        if !(k * t[1]).is_identity() {
            mixed_key_case = Some(sig);
            break;
        }
    }
    out.push(Case {
        name: "mixed-order key, cofactorless-invalid",
        key: mixed_a,
        sig: mixed_key_case.unwrap(),
        msg: b"m",
        accept: true,
        zip215: true,
    });
    out.push(Case {
        name: "mixed-order nonce R",
        key: honest_a,
        sig: sign_raw(a, honest_a, r, t[3], None, b"m"),
        msg: b"m",
        accept: true,
        zip215: true,
    });

    // R = identity (r = 0): small-order nonce, canonical: accepted (it forges nothing).
    let identity = EdwardsPoint::default().compress().to_bytes();
    out.push(Case {
        name: "small-order nonce R (identity), canonical",
        key: honest_a,
        sig: sign_raw(a, honest_a, Scalar::ZERO, none, Some(identity), b"m"),
        msg: b"m",
        accept: true,
        zip215: true,
    });
    // The same nonce re-encoded: y = 1 + p, and the sign bit on x = 0. ZIP-215 accepts
    // both; the rule refuses them (a third party could otherwise re-encode R).
    let mut y_plus_p = [0xffu8; 32];
    y_plus_p[0] = 0xee;
    y_plus_p[31] = 0x7f;
    let mut signed_zero = identity;
    signed_zero[31] |= 0x80;
    for (name, enc) in [
        ("nonce R = identity as y + p", y_plus_p),
        ("nonce R = identity with the sign bit", signed_zero),
    ] {
        out.push(Case {
            name,
            key: honest_a,
            sig: sign_raw(a, honest_a, Scalar::ZERO, none, Some(enc), b"m"),
            msg: b"m",
            accept: false,
            zip215: true,
        });
    }

    // Every small-order key with every small-order nonce and S = 0 satisfies the
    // cofactored equation (ZIP-215 accepts all 64); the rule refuses every one.
    for key in &t {
        for nonce in &t {
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&nonce.compress().to_bytes());
            out.push(Case {
                name: "small-order key and nonce, S = 0",
                key: key.compress().to_bytes(),
                sig: Signature(sig),
                msg: b"m",
                accept: false,
                zip215: true,
            });
        }
    }
    // Non-canonical encodings of small-order keys (y + p for y = 0 and 1, and the
    // identity with the sign bit): refused as keys before any arithmetic.
    let mut y0_plus_p = y_plus_p;
    y0_plus_p[0] = 0xed;
    for key in [y_plus_p, y0_plus_p, signed_zero] {
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&identity);
        out.push(Case {
            name: "non-canonical small-order key, S = 0",
            key,
            sig: Signature(sig),
            msg: b"m",
            accept: false,
            zip215: true,
        });
    }
    out
}

fn check(c: &Case) -> SignatureCheck {
    SignatureCheck::new(&AccountId::new(c.key), DOMAIN, c.msg, &c.sig)
}

/// Honest signatures to surround a case, so the batch path (not the small-batch
/// fallback) has to settle it.
fn honest_batch(n: usize, tag: &str) -> Vec<SignatureCheck> {
    (0..n)
        .map(|i| {
            let k = Keypair::from_label(&format!("{tag} {}", i % 5));
            let msg = format!("message {i}");
            SignatureCheck::new(
                &k.account(),
                DOMAIN,
                msg.as_bytes(),
                &k.sign(DOMAIN, msg.as_bytes()),
            )
        })
        .collect()
}

#[test]
fn edge_cases_get_the_rules_answer_on_the_single_and_the_batch_path() {
    // Every path must decide for itself, not answer from what an earlier check saw.
    crypto::bypass_verified_cache_on_this_thread();
    let cases = cases();
    assert!(cases.len() > 70);
    for c in &cases {
        let single = crypto::verify(&AccountId::new(c.key), DOMAIN, c.msg, &c.sig).is_ok();
        assert_eq!(single, c.accept, "{}: single path", c.name);
        assert_eq!(
            check(c).verify(),
            c.accept,
            "{}: SignatureCheck::verify",
            c.name
        );

        let mut batch = honest_batch(12, c.name);
        batch.insert(5, check(c));
        let each = crypto::verify_each(&batch);
        let mut want = vec![true; batch.len()];
        want[5] = c.accept;
        assert_eq!(each, want, "{}: batch path", c.name);
        assert_eq!(
            crypto::verify_all(&batch),
            c.accept,
            "{}: all-or-nothing batch",
            c.name
        );

        let zip215 = ed25519_consensus::VerificationKey::try_from(c.key).is_ok_and(|k| {
            k.verify(
                &ed25519_consensus::Signature::from(c.sig.0),
                Hash::with_domain(DOMAIN, c.msg).as_bytes(),
            )
            .is_ok()
        });
        assert_eq!(zip215, c.zip215, "{}: plain ZIP-215", c.name);
    }
}

#[test]
fn the_small_order_list_is_the_torsion_subgroup() {
    let t = torsion();
    let mut encodings: Vec<[u8; 32]> = t.iter().map(|p| p.compress().to_bytes()).collect();
    encodings.sort();
    encodings.dedup();
    assert_eq!(encodings.len(), 8, "eight distinct small-order points");
    for e in &encodings {
        assert!(is_canonical_point(e));
        assert!(
            PublicKey::from_bytes(e).is_err(),
            "small-order key {} accepted",
            hex::encode(e)
        );
    }
    // A key of large order next to them is fine.
    let k = Keypair::from_label("large");
    assert!(PublicKey::from_bytes(k.account().as_bytes()).is_ok());
}

#[test]
fn canonical_encodings_are_recognised() {
    // All 19 field elements with a second encoding y + p < 2^255 are refused.
    for i in 0..19u8 {
        let mut b = [0xffu8; 32];
        b[0] = 0xed + i;
        b[31] = 0x7f;
        assert!(!is_canonical_point(&b), "y = p + {i}");
        assert!(PublicKey::from_bytes(&b).is_err());
    }
    let mut p_minus_one = [0xffu8; 32];
    p_minus_one[0] = 0xec;
    p_minus_one[31] = 0x7f;
    assert!(is_canonical_point(&p_minus_one));
    p_minus_one[31] |= 0x80;
    assert!(!is_canonical_point(&p_minus_one), "x = 0 with the sign bit");
    for i in 0..200u32 {
        let k = Keypair::from_label(&format!("c{i}"));
        assert!(is_canonical_point(k.account().as_bytes()));
        assert!(is_canonical_point(
            k.sign("d", b"m").0[..32].try_into().unwrap()
        ));
    }
}

#[test]
fn a_re_encoded_signature_does_not_make_a_second_transaction() {
    use atonomi_primitives::{Amount, ChainId};
    use atonomi_primitives::{Call, SignedTransaction, Transaction};
    // The only signatures with a second encoding of R have R of small order with
    // y < 19; build one for a real transaction and re-encode it.
    let a = scalar("tx signer");
    let key = (a * B).compress().to_bytes();
    let tx = Transaction {
        chain_id: ChainId::new("atonomi-test").unwrap(),
        signer: AccountId::new(key),
        nonce: 0,
        max_fee: None,
        call: Call::Transfer {
            to: AccountId::new([7; 32]),
            amount: Amount::new(5),
        },
    };
    let sign_with = |r_bytes: [u8; 32]| {
        let digest = Hash::with_domain(
            atonomi_primitives::hash::domain::TX_SIGN,
            &tx.signing_bytes(),
        );
        let k = challenge(&r_bytes, &key, digest.as_bytes());
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&r_bytes);
        sig[32..].copy_from_slice((k * a).as_bytes());
        SignedTransaction {
            tx: tx.clone(),
            signature: Signature(sig),
        }
    };
    let identity = EdwardsPoint::default().compress().to_bytes();
    let mut reencoded = [0xffu8; 32];
    reencoded[0] = 0xee;
    reencoded[31] = 0x7f;
    let first = sign_with(identity);
    let second = sign_with(reencoded);
    assert_ne!(first.hash(), second.hash());
    assert!(first.verify_signature().is_ok());
    assert!(
        second.verify_signature().is_err(),
        "the re-encoded twin must be refused"
    );
    assert_eq!(
        crypto::verify_each(&[first.signature_check(), second.signature_check()]),
        vec![true, false]
    );
}

/// Remembering verified signatures changes no answer: a bad one is refused every time,
/// also next to remembered good ones, and a remembered signature does not vouch for
/// another message.
#[test]
fn remembered_signatures_change_no_answer() {
    crypto::remember_verified_signatures(true);
    let mut batch = honest_batch(16, "remembered");
    let mut fresh = batch.clone();
    assert!(crypto::verify_all(&batch));
    let started = std::time::Instant::now();
    for _ in 0..50 {
        assert!(crypto::verify_all(&batch));
    }
    // 50 × 16 signatures answered from memory take far less than verifying them once
    // more would (one batch of 16 is ~0.5 ms); printed, not asserted.
    println!("50 remembered batches of 16: {:?}", started.elapsed());
    batch[3].digest = Hash::with_domain("other", b"x");
    for _ in 0..3 {
        let mut want = vec![true; 16];
        want[3] = false;
        assert_eq!(crypto::verify_each(&batch), want);
        assert!(!crypto::verify_all(&batch));
        assert_eq!(crypto::first_invalid(&batch), Some(3));
        assert!(!batch[3].verify());
    }
    // The same signature over another message, and another signature: not remembered.
    fresh[5].signature = fresh[6].signature;
    assert_eq!(crypto::first_invalid(&fresh), Some(5));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// One bad signature among honest ones: the batch fails and bisection names exactly
    /// that one; without it, the batch passes whole.
    #[test]
    fn bisection_finds_exactly_the_bad_signature(n in 4usize..96, bad in any::<prop::sample::Index>(), how in 0u8..3) {
        crypto::bypass_verified_cache_on_this_thread();
        let mut batch = honest_batch(n, "prop");
        prop_assert!(crypto::verify_all(&batch));
        prop_assert_eq!(crypto::verify_each(&batch), vec![true; n]);
        let i = bad.index(n);
        match how {
            // Signed over another message.
            0 => batch[i].digest = Hash::with_domain("other", b"x"),
            // Another signer's signature.
            1 => batch[i].signature = Keypair::from_label("stranger").sign(DOMAIN, b"x"),
            // A flipped bit in S (may leave S canonical or not).
            _ => batch[i].signature.0[40] ^= 1,
        }
        let mut want = vec![true; n];
        want[i] = false;
        prop_assert_eq!(crypto::verify_each(&batch), want);
        prop_assert!(!crypto::verify_all(&batch));
    }
}
