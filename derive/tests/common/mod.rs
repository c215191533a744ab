//! Helpers shared by the derive's integration tests.
#![allow(dead_code)] // each test file uses some of them

use serde::Serialize;
use serde::de::DeserializeOwned;
use tickwire_shared::patch::{Patch, PatchError, PatchScratch, patch_in_place, patch_with_serde};
use tickwire_shared::{DecodeError, Limits, NetId, Reader, Snapshot, Writer, delta};

/// The bincode bytes of `v` (compares floats bit for bit, NaN included).
pub(crate) fn bytes<S: Serialize>(v: &S) -> Vec<u8> {
    let mut w = Writer::new();
    w.value("state", v).unwrap();
    w.into_vec()
}

/// The patch bytes of the single entity patched from `base` to `cur`, or
/// `None` when the delta sends it whole (layout change, patch not smaller)
/// or not at all (equal).
pub(crate) fn patch_bytes<S: Serialize + PartialEq + Clone>(base: &S, cur: &S) -> Option<Vec<u8>> {
    let b = Snapshot::from_vec(vec![(NetId(1), base.clone())]).unwrap();
    let c = Snapshot::from_vec(vec![(NetId(1), cur.clone())]).unwrap();
    let d = delta::diff(&b, &c).unwrap();
    // removed: 0; patched: 1, id gap 1, the patch; full: 0.
    (d[..3] == [0, 1, 1]).then(|| {
        assert_eq!(d.last(), Some(&0), "{d:?}");
        d[3..d.len() - 1].to_vec()
    })
}

/// The fast path on a copy of `base`.
pub(crate) fn fast<S: Patch + Clone>(
    base: &S,
    patch: &[u8],
    limits: &Limits,
) -> Result<(S, usize), PatchError> {
    let mut s = base.clone();
    let mut r = Reader::new(patch);
    patch_in_place(&mut s, &mut r, limits)?;
    Ok((s, r.position()))
}

/// The serde path on a copy of `base`.
pub(crate) fn slow<S: Serialize + DeserializeOwned + Clone>(
    base: &S,
    patch: &[u8],
    limits: &Limits,
) -> Result<(S, usize), DecodeError> {
    let mut s = base.clone();
    let mut r = Reader::new(patch);
    patch_with_serde(&mut s, &mut r, limits, &mut PatchScratch::default())?;
    Ok((s, r.position()))
}

/// What [`check_real`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Real {
    /// The fast path applied the patch.
    Fast,
    /// The fast path asked for the serde path ([`PatchError::Layout`]).
    Layout,
    /// The delta had no patch (equal states, or sent whole).
    NoPatch,
}

/// Applies a real patch from `base` to `cur` both ways: the fast path gives
/// `cur` or asks for the serde path, which gives `cur`.
pub(crate) fn check_real<S>(base: &S, cur: &S) -> Real
where
    S: Patch + Serialize + DeserializeOwned + Clone + PartialEq + core::fmt::Debug,
{
    let limits = Limits::default();
    let Some(patch) = patch_bytes(base, cur) else {
        return Real::NoPatch;
    };
    let (s, n) = slow(base, &patch, &limits).expect("the serde path applies a real patch");
    assert_eq!(bytes(&s), bytes(cur), "serde path");
    assert_eq!(n, patch.len());
    match fast(base, &patch, &limits) {
        Ok((f, n)) => {
            assert_eq!(bytes(&f), bytes(cur), "fast path: {base:?} -> {cur:?}");
            assert_eq!(n, patch.len(), "fast path read the whole patch");
            Real::Fast
        }
        Err(PatchError::Layout) => Real::Layout,
        Err(e) => panic!("fast path rejected a real patch: {e}; {base:?} -> {cur:?}"),
    }
}

/// Applies arbitrary bytes both ways (neither may panic) and checks that the
/// fast path never accepts what the serde path rejects, and agrees with it
/// when both accept:
///
/// * fast `Ok` ⇒ serde `Ok`, same value (bit for bit), same bytes read;
/// * fast `Decode` error ⇒ serde error too;
/// * fast `Layout` ⇒ nothing (the caller takes the serde path).
pub(crate) fn check_garbage<S>(base: &S, patch: &[u8])
where
    S: Patch + Serialize + DeserializeOwned + Clone + core::fmt::Debug,
{
    let limits = Limits::default();
    let f = fast(base, patch, &limits);
    let s = slow(base, patch, &limits);
    match (&f, &s) {
        (Ok((f, fnr)), Ok((s, snr))) => {
            assert_eq!(bytes(f), bytes(s), "both accepted {patch:?} on {base:?}");
            assert_eq!(fnr, snr, "bytes read, {patch:?} on {base:?}");
        }
        (Ok(_), Err(e)) => {
            panic!("fast path accepted {patch:?} on {base:?}, serde rejected it: {e}")
        }
        (Err(PatchError::Decode(_)), Ok(v)) => {
            panic!("fast path rejected {patch:?} on {base:?} as malformed, serde accepted: {v:?}")
        }
        (Err(_), _) => {}
    }
}
