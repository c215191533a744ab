//! Applying one entity's field patch (PROTOCOL.md §8.5) to its state **in
//! place**.
//!
//! A patch is a field mask over the flattened fields of the baseline state
//! (see [`crate::delta`]) followed by the marked fields' payloads. The
//! reference decoder ([`crate::delta::read_delta`]) flattens the baseline
//! through serde, applies the payloads, writes the fields back to bytes and
//! decodes a new state with bincode: correct for any serde type, but it costs
//! a serializer walk, a full decode and the state's allocations per patched
//! entity.
//!
//! [`Patch`] is the fast path: a state that knows its own field layout reads
//! the mask with [`Patcher::begin`] and then hands each of its fields, in
//! flattening order, to the matching [`Patcher`] method, which updates the
//! field only when its bit is set. Nothing is allocated unless a string
//! field is marked. Games derive it (`#[derive(tickwire_derive::Patch)]`) and
//! override [`crate::GameProtocol::patch_in_place`], or keep that method's
//! default, which asks for the serde fallback, [`patch_with_serde`].
//!
//! A patch whose payload would change the field layout (an option that
//! becomes `Some`, a sequence that changes length, an enum that changes
//! variant) cannot be applied field by field: the fast path reports
//! [`PatchError::Layout`] and the caller retries the same bytes with the serde
//! fallback, which handles every layout the reference decoder handles.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{DecodeError, Reader, Writer};
use crate::diff::Differ;
use crate::fields::{Field, flatten, write_fields};
use crate::limits::Limits;

/// Why a patch could not be applied in place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The bytes are malformed: the peer misbehaved.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The patch changes the state's layout (or the state's type has no
    /// in-place path for it): apply it with [`patch_with_serde`] instead.
    #[error("the patch changes the layout of the state; use the serde path")]
    Layout,
}

/// A state that can apply a field patch to itself, field by field.
///
/// Implement it with `#[derive(tickwire_derive::Patch)]`; a manual impl must
/// visit exactly the fields serde would serialize, in the same order, with
/// the same kinds (bincode's view: an `Option` is a tag then its value, a
/// sequence is a length then its items, a newtype is its inner value).
pub trait Patch {
    /// The number of flattened fields of this value (PROTOCOL.md §8.4).
    fn field_count(&self) -> usize;

    /// Applies the marked fields, in order. Call [`Patcher::begin`] first
    /// (only at the top level: [`patch_in_place`] does it).
    ///
    /// # Errors
    /// [`PatchError::Decode`] for malformed bytes, [`PatchError::Layout`]
    /// when the patch changes this value's layout.
    fn patch(&mut self, p: &mut Patcher<'_, '_>) -> Result<(), PatchError>;

    /// Compares `self` (the current state) with `base` field by field, in
    /// the same order as [`Patch::patch`], handing each pair to the matching
    /// [`Differ`] method (see [`crate::diff`]). The derive implements it; the
    /// default asks for the serde path.
    ///
    /// # Errors
    /// [`PatchError::Layout`] when the layouts differ (or for the default).
    fn diff(&self, base: &Self, d: &mut Differ<'_>) -> Result<(), PatchError> {
        let _ = (base, d);
        Err(PatchError::Layout)
    }

    /// Loads the memory this value points to (an `Arc`'s reference count,
    /// a string's first byte), and returns a number made from what it read,
    /// which means nothing. A client's world calls it through
    /// [`crate::GameProtocol::read_ahead`] on the entities a delta will most
    /// likely patch, all at once before decoding it, so that those loads'
    /// cache misses overlap instead of each waiting behind the decode of the
    /// patch before it. The derive folds its fields' results; the default,
    /// for a value with nothing behind a pointer, loads nothing and returns
    /// 0.
    #[inline(always)]
    fn read_ahead(&self) -> usize {
        0
    }
}

/// Reads one patch: the mask, then each marked field's payload. Or, made
/// with [`Patcher::whole`], one whole state as bincode encodes it: every
/// field is read, with its absolute value.
#[derive(Debug)]
pub struct Patcher<'a, 'r> {
    r: &'r mut Reader<'a>,
    limits: &'r Limits,
    mask: &'a [u8],
    fields: usize,
    next: usize,
    /// Reading a whole state (no mask, absolute values), not a patch.
    whole: bool,
    /// Reading a whole state only to compare it with the visited values
    /// ([`read_unchanged`]): nothing is written, and the first value that
    /// differs is [`PatchError::Layout`].
    compare: bool,
}

const DIFF: &str = "field difference";

#[inline]
fn narrow<T: TryFrom<i64>>(d: i64) -> Result<T, DecodeError> {
    T::try_from(d).map_err(|_| does_not_fit(d))
}

#[cold]
#[inline(never)]
fn not_utf8() -> DecodeError {
    DecodeError::Invalid {
        what: "string field",
        detail: "not valid UTF-8".to_owned(),
    }
}

#[cold]
#[inline(never)]
fn does_not_fit(d: i64) -> DecodeError {
    DecodeError::Invalid {
        what: DIFF,
        detail: format!("difference {d} does not fit the field's width"),
    }
}

impl<'a, 'r> Patcher<'a, 'r> {
    /// A patcher reading from `r` (positioned at the field mask).
    #[inline]
    pub fn new(r: &'r mut Reader<'a>, limits: &'r Limits) -> Self {
        Self {
            r,
            limits,
            mask: &[],
            fields: 0,
            next: 0,
            whole: false,
            compare: false,
        }
    }

    /// A patcher that reads one whole state from `r` (its bincode encoding,
    /// as in a full snapshot) into the visited fields: there is no mask,
    /// every field is read, and numbers are absolute values, not
    /// differences. Do not call [`Patcher::begin`]. A structural field
    /// (option tag, variant index, length) that differs from the visited
    /// value is [`PatchError::Layout`], as in a patch. See
    /// [`read_in_place`].
    #[inline]
    pub fn whole(r: &'r mut Reader<'a>, limits: &'r Limits) -> Self {
        Self {
            whole: true,
            ..Self::new(r, limits)
        }
    }

    /// Reads the mask of a state with `fields` flattened fields.
    ///
    /// # Errors
    /// More fields than [`Limits::max_fields_per_entity`], a truncated mask,
    /// or bits set beyond the last field.
    #[inline]
    pub fn begin(&mut self, fields: usize) -> Result<(), DecodeError> {
        if fields > self.limits.max_fields_per_entity {
            return Err(DecodeError::Invalid {
                what: "baseline entity",
                detail: format!(
                    "value has more fields than the limit of {}",
                    self.limits.max_fields_per_entity
                ),
            });
        }
        let mask = self.r.raw(fields.div_ceil(8), "field mask")?;
        let spare_bits = mask.len() * 8 - fields;
        if spare_bits > 0 && mask[mask.len() - 1] >> (8 - spare_bits) != 0 {
            return Err(DecodeError::Invalid {
                what: "field mask",
                detail: format!("bits set beyond the entity's {fields} fields"),
            });
        }
        self.mask = mask;
        self.fields = fields;
        self.next = 0;
        Ok(())
    }

    /// Checks that every field of the mask was visited.
    ///
    /// # Errors
    /// [`PatchError::Layout`] when the visit and the mask disagree (a
    /// manual [`Patch`] impl that does not match serde's view).
    #[inline]
    pub fn finish(&self) -> Result<(), PatchError> {
        if self.whole || self.next == self.fields {
            Ok(())
        } else {
            Err(PatchError::Layout)
        }
    }

    /// Stores `n`, a whole state's value, into `v`; when comparing, checks
    /// instead that `v` already holds it.
    #[inline(always)]
    fn set<T: PartialEq>(&self, v: &mut T, n: T) -> Result<(), PatchError> {
        if self.compare {
            if *v != n {
                return Err(PatchError::Layout);
            }
        } else {
            *v = n;
        }
        Ok(())
    }

    /// Moves to the next field; true when its bit is set (always, for a
    /// whole state).
    #[inline(always)]
    fn marked(&mut self) -> Result<bool, PatchError> {
        if self.whole {
            return Ok(true);
        }
        let i = self.next;
        if i >= self.fields {
            return Err(PatchError::Layout);
        }
        self.next += 1;
        Ok(self.mask[i / 8] & (1 << (i % 8)) != 0)
    }

    /// A `bool` field: a marked bool is flipped (a whole state's bool is
    /// its byte).
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline(always)]
    pub fn bool(&mut self, v: &mut bool) -> Result<(), PatchError> {
        if self.whole {
            let n = self.r.bool("bool field")?;
            self.set(v, n)?;
        } else if self.marked()? {
            *v = !*v;
        }
        Ok(())
    }

    /// A `u8` field: the new byte.
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline(always)]
    pub fn u8(&mut self, v: &mut u8) -> Result<(), PatchError> {
        if self.marked()? {
            let n = self.r.u8("u8 field")?;
            self.set(v, n)?;
        }
        Ok(())
    }

    /// An `i8` field: the new byte.
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline(always)]
    pub fn i8(&mut self, v: &mut i8) -> Result<(), PatchError> {
        if self.marked()? {
            let n = self.r.u8("i8 field")? as i8;
            self.set(v, n)?;
        }
        Ok(())
    }

    /// A `u16` field: a wrapping difference.
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline(always)]
    pub fn u16(&mut self, v: &mut u16) -> Result<(), PatchError> {
        if self.whole {
            let n = self.r.u16("u16 field")?;
            self.set(v, n)?;
        } else if self.marked()? {
            *v = v.wrapping_add(narrow::<i16>(self.r.i64(DIFF)?)? as u16);
        }
        Ok(())
    }

    /// An `i16` field: a wrapping difference.
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline(always)]
    pub fn i16(&mut self, v: &mut i16) -> Result<(), PatchError> {
        if self.whole {
            let n = self.r.i16("i16 field")?;
            self.set(v, n)?;
        } else if self.marked()? {
            *v = v.wrapping_add(narrow::<i16>(self.r.i64(DIFF)?)?);
        }
        Ok(())
    }

    /// A `u32` field: a wrapping difference.
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline(always)]
    pub fn u32(&mut self, v: &mut u32) -> Result<(), PatchError> {
        if self.whole {
            let n = self.r.u32("u32 field")?;
            self.set(v, n)?;
        } else if self.marked()? {
            *v = v.wrapping_add(narrow::<i32>(self.r.i64(DIFF)?)? as u32);
        }
        Ok(())
    }

    /// An `i32` field: a wrapping difference.
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline(always)]
    pub fn i32(&mut self, v: &mut i32) -> Result<(), PatchError> {
        if self.whole {
            let n = self.r.i32("i32 field")?;
            self.set(v, n)?;
        } else if self.marked()? {
            *v = v.wrapping_add(narrow::<i32>(self.r.i64(DIFF)?)?);
        }
        Ok(())
    }

    /// A `u64` field: a wrapping difference.
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline(always)]
    pub fn u64(&mut self, v: &mut u64) -> Result<(), PatchError> {
        if self.whole {
            let n = self.r.u64("u64 field")?;
            self.set(v, n)?;
        } else if self.marked()? {
            *v = v.wrapping_add(self.r.i64(DIFF)? as u64);
        }
        Ok(())
    }

    /// An `i64` field: a wrapping difference.
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline(always)]
    pub fn i64(&mut self, v: &mut i64) -> Result<(), PatchError> {
        if self.whole {
            let n = self.r.i64("i64 field")?;
            self.set(v, n)?;
        } else if self.marked()? {
            *v = v.wrapping_add(self.r.i64(DIFF)?);
        }
        Ok(())
    }

    /// A `u128` field: a wrapping difference.
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline]
    pub fn u128(&mut self, v: &mut u128) -> Result<(), PatchError> {
        if self.whole {
            let n = self.r.u128("u128 field")?;
            self.set(v, n)?;
        } else if self.marked()? {
            *v = v.wrapping_add(self.r.i128(DIFF)? as u128);
        }
        Ok(())
    }

    /// An `i128` field: a wrapping difference.
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline]
    pub fn i128(&mut self, v: &mut i128) -> Result<(), PatchError> {
        if self.whole {
            let n = self.r.i128("i128 field")?;
            self.set(v, n)?;
        } else if self.marked()? {
            *v = v.wrapping_add(self.r.i128(DIFF)?);
        }
        Ok(())
    }

    /// An `f32` field: the new value, raw little endian.
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline(always)]
    pub fn f32(&mut self, v: &mut f32) -> Result<(), PatchError> {
        if self.marked()? {
            let b = self.r.raw(4, "f32 field")?;
            self.set(v, f32::from_le_bytes([b[0], b[1], b[2], b[3]]))?;
        }
        Ok(())
    }

    /// An `f64` field: the new value, raw little endian.
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline(always)]
    pub fn f64(&mut self, v: &mut f64) -> Result<(), PatchError> {
        if self.marked()? {
            let b = self.r.raw(8, "f64 field")?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            self.set(v, f64::from_le_bytes(a))?;
        }
        Ok(())
    }

    /// A `char` field: the new scalar value.
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline]
    pub fn char(&mut self, v: &mut char) -> Result<(), PatchError> {
        if self.whole {
            let n = self.r.char("char field")?;
            self.set(v, n)?;
        } else if self.marked()? {
            let n = self.r.u32("char field")?;
            *v = char::from_u32(n).ok_or_else(|| DecodeError::Invalid {
                what: "char field",
                detail: format!("{n:#x} is not a Unicode scalar value"),
            })?;
        }
        Ok(())
    }

    /// The bytes of a string field (not yet checked as UTF-8). The length
    /// and the bytes are read here rather than through `Reader::bytes`, which
    /// is not inlined into the visit: a call per string field.
    #[inline(always)]
    fn str_bytes(&mut self) -> Result<&'a [u8], PatchError> {
        const WHAT: &str = "string field";
        let len = self
            .r
            .count(WHAT, self.limits.max_server_message_bytes, 1)?;
        Ok(self.r.raw(len, WHAT)?)
    }

    /// A string field's new value, or `None` when its bytes equal `current`
    /// (then they need no UTF-8 check).
    #[inline(always)]
    fn new_str(&mut self, current: &str) -> Result<Option<&'a str>, PatchError> {
        let b = self.str_bytes()?;
        // Lengths first: an empty string (most entities' names, in the
        // arena) is settled without a call to `memcmp`.
        if b.len() == current.len() && (b.is_empty() || b == current.as_bytes()) {
            return Ok(None);
        }
        Ok(Some(core::str::from_utf8(b).map_err(|_| not_utf8())?))
    }

    /// A string field: the new string (its buffer is reused).
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline(always)]
    pub fn string(&mut self, v: &mut String) -> Result<(), PatchError> {
        if self.marked()?
            && let Some(s) = self.new_str(v)?
        {
            if self.compare {
                return Err(PatchError::Layout);
            }
            v.clear();
            v.push_str(s);
        }
        Ok(())
    }

    /// A shared string field (`Arc<str>`): the new string, shared with every
    /// equal string decoded in this process
    /// ([`crate::interned::shared_str`]). An equal string keeps the shared
    /// one (nothing is allocated).
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline(always)]
    pub fn arc_str(&mut self, v: &mut Arc<str>) -> Result<(), PatchError> {
        if self.marked()?
            && let Some(s) = self.new_str(v)?
        {
            if self.compare {
                return Err(PatchError::Layout);
            }
            *v = crate::interned::shared_str(s);
        }
        Ok(())
    }

    /// A byte-string field: the new bytes.
    ///
    /// # Errors
    /// As [`Patch::patch`].
    #[inline]
    pub fn bytes(&mut self, v: &mut Vec<u8>) -> Result<(), PatchError> {
        if self.marked()? {
            let b = self
                .r
                .bytes("bytes field", self.limits.max_server_message_bytes)?;
            if self.compare {
                return if v[..] == *b {
                    Ok(())
                } else {
                    Err(PatchError::Layout)
                };
            }
            v.clear();
            v.extend_from_slice(b);
        }
        Ok(())
    }

    /// A structural field whose value fixes the layout (option tag, enum
    /// variant index, sequence length), currently `value`. A marked one that
    /// keeps its value is a no-op; one that changes it changes the layout.
    #[inline(always)]
    fn structural(
        &mut self,
        value: u64,
        read: impl FnOnce(&mut Reader<'a>) -> Result<u64, DecodeError>,
    ) -> Result<(), PatchError> {
        if self.marked()? && read(self.r)? != value {
            return Err(PatchError::Layout);
        }
        Ok(())
    }

    /// An `Option`'s tag (0 = `None`, 1 = `Some`). Visit the value's fields
    /// after it when it is `Some`.
    ///
    /// # Errors
    /// As [`Patch::patch`]; a tag that changes is [`PatchError::Layout`].
    #[inline(always)]
    pub fn option_tag(&mut self, is_some: bool) -> Result<(), PatchError> {
        self.structural(u64::from(is_some), |r| {
            let t = r.u8("option tag")?;
            if t > 1 {
                return Err(DecodeError::Invalid {
                    what: "option tag",
                    detail: format!("{t} is neither 0 nor 1"),
                });
            }
            Ok(u64::from(t))
        })
    }

    /// An enum's variant index. Visit the variant's fields after it.
    ///
    /// # Errors
    /// As [`Patch::patch`]; an index that changes is [`PatchError::Layout`].
    #[inline(always)]
    pub fn variant(&mut self, index: u32) -> Result<(), PatchError> {
        self.structural(u64::from(index), |r| r.u32("variant index").map(u64::from))
    }

    /// A sequence or map length. Visit the items after it.
    ///
    /// # Errors
    /// As [`Patch::patch`]; a length that changes is [`PatchError::Layout`].
    #[inline(always)]
    pub fn len(&mut self, len: usize) -> Result<(), PatchError> {
        self.structural(len as u64, |r| r.u64("length"))
    }
}

/// Applies the patch at `r` to `state` through its [`Patch`] impl: the mask,
/// then the fields. On [`PatchError::Layout`] nothing is promised about
/// `state` (patch a copy) or about `r`'s position (rewind it).
///
/// # Errors
/// As [`Patch::patch`].
#[inline]
pub fn patch_in_place<S: Patch>(
    state: &mut S,
    r: &mut Reader<'_>,
    limits: &Limits,
) -> Result<(), PatchError> {
    let mut p = Patcher::new(r, limits);
    p.begin(state.field_count())?;
    state.patch(&mut p)?;
    p.finish()
}

/// Overwrites `state` with the whole state encoded at `r` (bincode, as in a
/// full snapshot or a delta's full section) through its [`Patch`] impl,
/// reusing `state`'s allocations: an equal `Arc<str>` is kept, a `String`
/// keeps its buffer. Any value of the same layout works as the starting
/// `state` (the entity's previous state, or another entity's).
///
/// The result is what serde's derived `Deserialize` would decode from the
/// same bytes, for a [`Patch`] impl that follows the rules of the trait.
/// On [`PatchError::Layout`] (the bytes hold another option tag, variant or
/// length than `state`), nothing is promised about `state` or `r`: decode a
/// new value with serde instead.
///
/// ```
/// use tickwire_shared::patch::read_in_place;
/// use tickwire_shared::{Limits, Reader, Writer};
///
/// let mut w = Writer::new();
/// w.value("state", &(7u32, -3i16, String::from("ann"))).unwrap();
/// let mut state = (0u32, 0i16, String::from("a previous name"));
/// read_in_place(&mut state, &mut Reader::new(w.as_slice()), &Limits::default()).unwrap();
/// assert_eq!(state, (7, -3, String::from("ann")));
/// ```
///
/// # Errors
/// As [`Patch::patch`].
#[inline]
pub fn read_in_place<S: Patch>(
    state: &mut S,
    r: &mut Reader<'_>,
    limits: &Limits,
) -> Result<(), PatchError> {
    state.patch(&mut Patcher::whole(r, limits))
}

/// Reads the whole state encoded at `r` (as [`read_in_place`] does) if it
/// equals `state`, without changing `state`: a client's resync (a full
/// snapshot while it holds the entities) finds most entities unchanged, and
/// this settles each of them with no copy of its state. `Ok(())`: equal,
/// and `r` is past the state. [`PatchError::Layout`]: some field differs
/// (or the layout does): nothing is promised about `r`'s position, so
/// rewind it and read the state with [`read_in_place`] over a copy.
///
/// Values compare with `==` field by field, as a derived `PartialEq` does
/// (so a `NaN` field always differs). `state` is left as it is by any
/// [`Patch`] impl that only visits its fields through the [`Patcher`], as
/// the derive's and this module's do.
///
/// ```
/// use tickwire_shared::patch::{PatchError, read_unchanged};
/// use tickwire_shared::{Limits, Reader, Writer};
///
/// let mut w = Writer::new();
/// w.value("state", &(7u32, String::from("ann"))).unwrap();
/// let mut same = (7u32, String::from("ann"));
/// let mut r = Reader::new(w.as_slice());
/// read_unchanged(&mut same, &mut r, &Limits::default()).unwrap();
/// assert!(r.remaining() == 0);
/// let mut other = (7u32, String::from("bob"));
/// let r = &mut Reader::new(w.as_slice());
/// assert!(matches!(read_unchanged(&mut other, r, &Limits::default()), Err(PatchError::Layout)));
/// assert_eq!(other, (7, String::from("bob")));
/// ```
///
/// # Errors
/// As [`read_in_place`]; a differing value is also [`PatchError::Layout`].
#[inline]
pub fn read_unchanged<S: Patch>(
    state: &mut S,
    r: &mut Reader<'_>,
    limits: &Limits,
) -> Result<(), PatchError> {
    state.patch(&mut Patcher {
        compare: true,
        ..Patcher::whole(r, limits)
    })
}

/// The reference path for any serde state (PROTOCOL.md §8.7 step 2): flatten
/// `state`, read the mask and the marked fields' payloads, write the fields
/// back to bytes and decode them as the new state.
///
/// `fields` and `bytes` are scratch buffers, reused between calls.
///
/// # Errors
/// [`DecodeError`] for a malformed patch or one whose result does not decode.
pub fn patch_with_serde<S: Serialize + DeserializeOwned>(
    state: &mut S,
    r: &mut Reader<'_>,
    limits: &Limits,
    scratch: &mut PatchScratch,
) -> Result<(), DecodeError> {
    *state = patched_with_serde(&*state, r, limits, scratch)?;
    Ok(())
}

/// [`patch_with_serde`] into a new value, leaving `old` as it is.
pub(crate) fn patched_with_serde<S: Serialize + DeserializeOwned>(
    old: &S,
    r: &mut Reader<'_>,
    limits: &Limits,
    scratch: &mut PatchScratch,
) -> Result<S, DecodeError> {
    let fields = &mut scratch.fields;
    fields.clear();
    flatten(old, fields, limits.max_fields_per_entity).map_err(|e| DecodeError::Invalid {
        what: "baseline entity",
        detail: e.to_string(),
    })?;
    let mut p = Patcher::new(r, limits);
    p.begin(fields.len())?;
    for field in fields.iter_mut() {
        if p.marked().map_err(|_| unreachable_layout())? {
            crate::delta::read_field_change(p.r, field, limits)?;
        }
    }
    scratch.bytes.clear();
    write_fields(fields, &mut scratch.bytes);
    let mut state_reader = Reader::new(scratch.bytes.as_slice());
    let state = state_reader.value::<S>("patched entity state")?;
    state_reader.finish()?;
    Ok(state)
}

fn unreachable_layout() -> DecodeError {
    DecodeError::Invalid {
        what: "field mask",
        detail: "mask shorter than the fields".to_owned(),
    }
}

/// Scratch buffers for [`patch_with_serde`].
#[derive(Debug, Default, Clone)]
pub struct PatchScratch {
    fields: Vec<Field>,
    bytes: Writer,
}

macro_rules! patch_primitive {
    ($($t:ty => $m:ident),* $(,)?) => {$(
        impl Patch for $t {
            #[inline]
            fn field_count(&self) -> usize { 1 }
            #[inline(always)]
            fn patch(&mut self, p: &mut Patcher<'_, '_>) -> Result<(), PatchError> { p.$m(self) }
            #[inline(always)]
            fn diff(&self, base: &Self, d: &mut Differ<'_>) -> Result<(), PatchError> {
                d.$m(*self, *base)
            }
        }
    )*};
}

patch_primitive! {
    bool => bool, u8 => u8, i8 => i8, u16 => u16, i16 => i16, u32 => u32, i32 => i32,
    u64 => u64, i64 => i64, u128 => u128, i128 => i128, f32 => f32, f64 => f64,
    char => char,
}

impl Patch for String {
    #[inline]
    fn field_count(&self) -> usize {
        1
    }
    #[inline(always)]
    fn patch(&mut self, p: &mut Patcher<'_, '_>) -> Result<(), PatchError> {
        p.string(self)
    }
    #[inline(always)]
    fn diff(&self, base: &Self, d: &mut Differ<'_>) -> Result<(), PatchError> {
        d.string(self, base)
    }
    /// The first byte (a clone or a comparison reads the bytes).
    #[inline(always)]
    fn read_ahead(&self) -> usize {
        self.as_bytes().first().map_or(0, |&b| usize::from(b))
    }
}

impl Patch for Arc<str> {
    #[inline]
    fn field_count(&self) -> usize {
        1
    }
    #[inline(always)]
    fn patch(&mut self, p: &mut Patcher<'_, '_>) -> Result<(), PatchError> {
        p.arc_str(self)
    }
    #[inline(always)]
    fn diff(&self, base: &Self, d: &mut Differ<'_>) -> Result<(), PatchError> {
        d.arc_str(self, base)
    }
    /// The reference count, which a clone increments: with many worlds in
    /// one process (`arena-bots`), that increment waited on a cache miss for
    /// most patched entities.
    #[inline(always)]
    fn read_ahead(&self) -> usize {
        Arc::strong_count(self)
    }
}

impl Patch for () {
    fn field_count(&self) -> usize {
        0
    }
    fn patch(&mut self, _: &mut Patcher<'_, '_>) -> Result<(), PatchError> {
        Ok(())
    }
    fn diff(&self, _: &Self, _: &mut Differ<'_>) -> Result<(), PatchError> {
        Ok(())
    }
}

impl<T: Patch> Patch for Option<T> {
    #[inline(always)]
    fn field_count(&self) -> usize {
        1 + self.as_ref().map_or(0, Patch::field_count)
    }
    #[inline(always)]
    fn patch(&mut self, p: &mut Patcher<'_, '_>) -> Result<(), PatchError> {
        p.option_tag(self.is_some())?;
        match self {
            Some(v) => v.patch(p),
            None => Ok(()),
        }
    }
    #[inline(always)]
    fn diff(&self, base: &Self, d: &mut Differ<'_>) -> Result<(), PatchError> {
        d.option_tag(self.is_some(), base.is_some())?;
        match (self, base) {
            (Some(c), Some(b)) => c.diff(b, d),
            _ => Ok(()),
        }
    }
    #[inline(always)]
    fn read_ahead(&self) -> usize {
        self.as_ref().map_or(0, Patch::read_ahead)
    }
}

impl<T: Patch> Patch for Vec<T> {
    fn field_count(&self) -> usize {
        1 + self.iter().map(Patch::field_count).sum::<usize>()
    }
    fn patch(&mut self, p: &mut Patcher<'_, '_>) -> Result<(), PatchError> {
        p.len(self.len())?;
        self.iter_mut().try_for_each(|v| v.patch(p))
    }
    fn diff(&self, base: &Self, d: &mut Differ<'_>) -> Result<(), PatchError> {
        d.len(self.len(), base.len())?;
        self.iter().zip(base).try_for_each(|(c, b)| c.diff(b, d))
    }
    /// The first item's (the items are behind the vector's pointer, but
    /// reading an item that points to nothing loads nothing).
    fn read_ahead(&self) -> usize {
        self.first().map_or(0, Patch::read_ahead)
    }
}

impl<T: Patch, const N: usize> Patch for [T; N] {
    fn field_count(&self) -> usize {
        self.iter().map(Patch::field_count).sum()
    }
    fn patch(&mut self, p: &mut Patcher<'_, '_>) -> Result<(), PatchError> {
        self.iter_mut().try_for_each(|v| v.patch(p))
    }
    fn diff(&self, base: &Self, d: &mut Differ<'_>) -> Result<(), PatchError> {
        self.iter().zip(base).try_for_each(|(c, b)| c.diff(b, d))
    }
    fn read_ahead(&self) -> usize {
        self.iter()
            .fold(0, |sum, v| sum.wrapping_add(v.read_ahead()))
    }
}

macro_rules! patch_tuple {
    ($($n:tt $t:ident),+) => {
        impl<$($t: Patch),+> Patch for ($($t,)+) {
            #[inline(always)]
            fn field_count(&self) -> usize { 0 $(+ self.$n.field_count())+ }
            #[inline(always)]
            fn patch(&mut self, p: &mut Patcher<'_, '_>) -> Result<(), PatchError> {
                $(self.$n.patch(p)?;)+
                Ok(())
            }
            #[inline(always)]
            fn diff(&self, base: &Self, d: &mut Differ<'_>) -> Result<(), PatchError> {
                $(self.$n.diff(&base.$n, d)?;)+
                Ok(())
            }
            #[inline(always)]
            fn read_ahead(&self) -> usize {
                0usize $(.wrapping_add(self.$n.read_ahead()))+
            }
        }
    };
}

patch_tuple!(0 A);
patch_tuple!(0 A, 1 B);
patch_tuple!(0 A, 1 B, 2 C);
patch_tuple!(0 A, 1 B, 2 C, 3 D);

macro_rules! patch_glam {
    ($($t:ty => [$($f:ident),+]),* $(,)?) => {$(
        impl Patch for $t {
            fn field_count(&self) -> usize { [$(stringify!($f)),+].len() }
            fn patch(&mut self, p: &mut Patcher<'_, '_>) -> Result<(), PatchError> {
                $(p.f32(&mut self.$f)?;)+
                Ok(())
            }
            fn diff(&self, base: &Self, d: &mut Differ<'_>) -> Result<(), PatchError> {
                $(d.f32(self.$f, base.$f)?;)+
                Ok(())
            }
        }
    )*};
}

// glam serializes its vectors as tuple structs of f32 (`serde` feature).
patch_glam! {
    glam::Vec2 => [x, y],
    glam::Vec3 => [x, y, z],
    glam::Vec4 => [x, y, z, w],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta;
    use crate::snapshot::{NetId, Snapshot};

    /// Applies the single patched entity of `delta` (from `base` to `cur`)
    /// both ways and checks they agree with `cur`.
    fn check<S>(base: S, cur: S)
    where
        S: Patch + Serialize + DeserializeOwned + Clone + PartialEq + core::fmt::Debug,
    {
        let b = Snapshot::from_vec(vec![(NetId(1), base.clone())]).unwrap();
        let c = Snapshot::from_vec(vec![(NetId(1), cur.clone())]).unwrap();
        let bytes = delta::diff(&b, &c).unwrap();
        let limits = Limits::default();
        // removed: 0; patched: 1, id 1; then the patch.
        assert_eq!(&bytes[..3], [0, 1, 1], "expected one patch: {bytes:?}");
        let mut r = Reader::new(&bytes[3..]);
        let mut fast = base.clone();
        patch_in_place(&mut fast, &mut r, &limits).unwrap();
        assert_eq!(r.u8("full count").unwrap(), 0);
        r.finish().unwrap();
        assert_eq!(fast, cur);
        let mut r = Reader::new(&bytes[3..]);
        let mut slow = base;
        patch_with_serde(&mut slow, &mut r, &limits, &mut PatchScratch::default()).unwrap();
        assert_eq!(slow, cur);
    }

    #[test]
    fn primitives_tuples_options_and_strings_patch_in_place() {
        check((1u32, -5i32, 7u64, true), (3u32, -9i32, 7u64, false));
        check(
            (1.5f32, 2u8, Some(9i16), String::from("ann")),
            (2.5f32, 2u8, Some(-3i16), String::from("ann")),
        );
        check(
            (String::from("ann"), [u64::MAX; 4]),
            (String::from("anna"), [u64::MAX; 4]),
        );
        check(
            (
                String::from("a"),
                [1u16, 2, 3],
                glam::Vec2::new(1.0, 2.0),
                'x',
            ),
            (
                String::from("b"),
                [1u16, 9, 3],
                glam::Vec2::new(1.0, 3.0),
                'y',
            ),
        );
        check((vec![1i64, 2, 3], 0u128), (vec![1i64, 5, 3], 1u128 << 100));
    }

    #[test]
    fn a_layout_change_asks_for_the_serde_path() {
        // Some(()) <-> None: same kinds ([OptTag]), so the encoder patches
        // the tag; the in-place path cannot build the new value.
        let b = Snapshot::from_vec(vec![(NetId(1), (Some(()), 1u8))]).unwrap();
        let c = Snapshot::from_vec(vec![(NetId(1), (None, 1u8))]).unwrap();
        let bytes = delta::diff(&b, &c).unwrap();
        let limits = Limits::default();
        let mut r = Reader::new(&bytes[3..]);
        let mut fast = (Some(()), 1u8);
        assert_eq!(
            patch_in_place(&mut fast, &mut r, &limits),
            Err(PatchError::Layout)
        );
        let mut r = Reader::new(&bytes[3..]);
        let mut slow = (Some(()), 1u8);
        patch_with_serde(&mut slow, &mut r, &limits, &mut PatchScratch::default()).unwrap();
        assert_eq!(slow, (None, 1u8));
    }

    /// Two states that decode the same name hold the same `Arc` (one
    /// reference count for every world in the process), and a new name is
    /// decoded, not kept.
    #[test]
    fn decoded_names_are_shared() {
        let mut w = Writer::new();
        w.value("state", &(1u8, "zoe")).unwrap();
        let bytes = w.into_vec();
        let limits = Limits::default();
        let mut a: (u8, Arc<str>) = (0, Arc::from("ann"));
        let mut b: (u8, Arc<str>) = (0, Arc::from("bob"));
        read_in_place(&mut a, &mut Reader::new(&bytes), &limits).unwrap();
        read_in_place(&mut b, &mut Reader::new(&bytes), &limits).unwrap();
        assert_eq!(&*a.1, "zoe");
        assert!(Arc::ptr_eq(&a.1, &b.1));
    }

    type Wide = (
        (u16, u32, u64, i64),
        (u128, i128, f32, f64),
        (i8, Vec<u16>, [u32; 2], Option<u8>),
        (String, Arc<str>, char, bool),
    );

    proptest::proptest! {
        /// A whole state read in place over any template of the same type
        /// is what serde decodes, or a layout miss; never a different value,
        /// and malformed bytes are refused by both.
        #[test]
        fn whole_states_read_in_place_like_serde(
            template in proptest::prelude::any::<Wide>(),
            value in proptest::prelude::any::<Wide>(),
            cut in proptest::option::of(0usize..200),
            same_layout in proptest::prelude::any::<bool>(),
        ) {
            let mut w = Writer::new();
            w.value("state", &value).unwrap();
            let mut bytes = w.into_vec();
            if let Some(c) = cut {
                bytes.truncate(c.min(bytes.len()));
            }
            let limits = Limits::default();
            let mut serde_reader = Reader::new(&bytes);
            let serde = serde_reader.value::<Wide>("state").ok();
            // Half the time, a template of the value's layout (same
            // sequence length and option tag, other numbers).
            let mut fast = if same_layout {
                let mut t = template;
                t.2.1 = value.2.1.iter().map(|x| x ^ 0x5a5a).collect();
                t.2.3 = value.2.3.map(|x| x.wrapping_add(1));
                t
            } else {
                template
            };
            let mut r = Reader::new(&bytes);
            match read_in_place(&mut fast, &mut r, &limits) {
                Ok(()) => {
                    let same = serde.as_ref().is_some_and(|s| format!("{s:?}") == format!("{fast:?}"));
                    proptest::prop_assert!(same, "in place {fast:?}, serde {serde:?}");
                    proptest::prop_assert_eq!(r.position(), serde_reader.position());
                }
                Err(PatchError::Layout) => {}
                Err(PatchError::Decode(e)) => {
                    proptest::prop_assert!(serde.is_none(), "refused ({e}) what serde decodes");
                }
            }
        }
    }

    proptest::proptest! {
        /// A whole state compared as it is read ([`read_unchanged`]) is
        /// accepted exactly when serde decodes a value equal to it, consumes
        /// what serde does then, and never changes it.
        #[test]
        fn unchanged_states_are_recognised_and_left_alone(
            other in proptest::prelude::any::<Wide>(),
            value in proptest::prelude::any::<Wide>(),
            edit in 0usize..6,
            cut in proptest::option::of(0usize..200),
        ) {
            let mut w = Writer::new();
            w.value("state", &value).unwrap();
            let mut bytes = w.into_vec();
            if let Some(c) = cut {
                bytes.truncate(c.min(bytes.len()));
            }
            // The value itself, the value with one field changed, or
            // another value.
            let mut held = value.clone();
            match edit {
                0 => {}
                1 => held.0.0 ^= 1,
                2 => held.3.0.push('x'),
                3 => held.3.3 = !held.3.3,
                4 => held.2.1.push(7),
                _ => held = other,
            }
            let before = format!("{held:?}");
            let limits = Limits::default();
            let mut serde_reader = Reader::new(&bytes);
            let serde = serde_reader.value::<Wide>("state").ok();
            let mut r = Reader::new(&bytes);
            let result = read_unchanged(&mut held, &mut r, &limits);
            proptest::prop_assert_eq!(format!("{held:?}"), before);
            let equal = serde.as_ref().is_some_and(|s| *s == held);
            match result {
                Ok(()) => {
                    proptest::prop_assert!(equal, "accepted {held:?}, serde {serde:?}");
                    proptest::prop_assert_eq!(r.position(), serde_reader.position());
                }
                Err(PatchError::Layout) => {
                    proptest::prop_assert!(!equal, "refused {held:?}, equal to what serde decodes");
                }
                Err(PatchError::Decode(e)) => {
                    proptest::prop_assert!(serde.is_none(), "refused ({e}) what serde decodes");
                }
            }
        }
    }

    #[test]
    fn hostile_masks_are_errors() {
        let limits = Limits::default();
        // 3 fields, but bit 7 set.
        let mut r = Reader::new(&[0x80]);
        let mut s = (1u8, 2u8, 3u8);
        assert!(matches!(
            patch_in_place(&mut s, &mut r, &limits),
            Err(PatchError::Decode(_))
        ));
        // Truncated payload.
        let mut r = Reader::new(&[0x01]);
        assert!(matches!(
            patch_in_place(&mut s, &mut r, &limits),
            Err(PatchError::Decode(_))
        ));
    }
}
