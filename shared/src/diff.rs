//! Writing one entity's field patch (PROTOCOL.md §8.5) by comparing two
//! states **field by field**, without serde: the server-side mirror of
//! [`crate::patch::Patcher`].
//!
//! The reference encoder ([`crate::delta`]) flattens both states through a
//! serde serializer into a list of fields (allocating every string), then
//! compares the lists. A state that implements [`Patch`] (derive it with
//! `#[derive(tickwire_derive::Patch)]`) visits its fields in the same order
//! in [`Patch::diff`], handing each pair to the matching [`Differ`] method,
//! which marks the field and writes its payload when the two differ. The
//! bytes are exactly those of the reference encoder.
//!
//! A pair whose field layout differs (an option that is `Some` on one side
//! only, a sequence whose length changed, an enum whose variant changed) is
//! reported as [`PatchError::Layout`]: the caller encodes that entity with
//! the reference encoder, which decides between a patch and a full state as
//! it always has. So the fast path never changes what goes on the wire.
//!
//! ```
//! use tickwire_shared::diff::{Differ, DiffScratch, diff_fields};
//!
//! let mut scratch = DiffScratch::default();
//! // (x, y, hp): only y changed, by -2.
//! let mut d = Differ::new(&mut scratch, 64);
//! diff_fields(&(10i32, 7i32, 3u8), &(10i32, 5i32, 3u8), &mut d).unwrap();
//! // Mask 0b010, then zigzag(-2) = 3.
//! assert_eq!(scratch.patch(), [0b010, 3]);
//! ```

use std::sync::Arc;

use crate::codec::Writer;
use crate::patch::{Patch, PatchError};

/// Reusable buffers for [`Differ`]: after a successful [`diff_fields`],
/// [`DiffScratch::patch`] holds the patch (mask, then the marked fields'
/// payloads).
#[derive(Debug, Default, Clone)]
pub struct DiffScratch {
    /// The patch, written in place during the walk: the mask's bytes
    /// (zeroed by [`Differ::begin`], a bit set per changed field), then the
    /// changed fields' payloads in order.
    patch: Writer,
    /// The current state's whole encoding, written during the same walk.
    state: Writer,
}

impl DiffScratch {
    /// The patch written by the last [`diff_fields`], when it succeeded
    /// (after a [`PatchError`] it holds a partial walk: use the reference
    /// encoder's bytes instead, as [`crate::delta`] does).
    #[must_use]
    pub fn patch(&self) -> &[u8] {
        self.patch.as_slice()
    }

    /// The current state's whole encoding (bincode, as a full snapshot
    /// carries it), written by the last successful [`diff_fields`] in the
    /// same walk as the patch: the encoder needs it to choose between the
    /// patch and the whole state, and for the full section.
    #[must_use]
    pub fn state(&self) -> &[u8] {
        self.state.as_slice()
    }
}

/// Compares two states' fields in flattening order (see the module docs).
/// Made by [`Differ::new`]; driven by [`diff_fields`].
#[derive(Debug)]
pub struct Differ<'s> {
    s: &'s mut DiffScratch,
    max_fields: usize,
    fields: usize,
    next: usize,
}

impl<'s> Differ<'s> {
    /// A differ writing into `scratch`, for states of at most `max_fields`
    /// flattened fields (more is [`PatchError::Layout`], as the reference
    /// encoder sends such a state whole).
    #[must_use]
    pub fn new(scratch: &'s mut DiffScratch, max_fields: usize) -> Self {
        Self {
            s: scratch,
            max_fields,
            fields: 0,
            next: 0,
        }
    }

    /// Starts a patch over `fields` flattened fields.
    ///
    /// # Errors
    /// [`PatchError::Layout`] past the field limit.
    #[inline]
    pub fn begin(&mut self, fields: usize) -> Result<(), PatchError> {
        if fields > self.max_fields {
            return Err(PatchError::Layout);
        }
        self.fields = fields;
        self.next = 0;
        self.s.patch.clear();
        self.s.patch.zeros(fields.div_ceil(8));
        self.s.state.clear();
        Ok(())
    }

    /// Ends the patch: checks that every field was visited. The mask and
    /// the payloads are then [`DiffScratch::patch`] (written in place as the
    /// fields were visited).
    ///
    /// # Errors
    /// [`PatchError::Layout`] when the visit did not cover exactly the
    /// fields given to [`Differ::begin`] (a hand-written [`Patch`] impl
    /// whose `diff` and `field_count` disagree).
    #[inline]
    pub fn finish(&mut self) -> Result<(), PatchError> {
        if self.next != self.fields {
            return Err(PatchError::Layout);
        }
        Ok(())
    }

    /// The next field's index, or `Layout` past the end.
    #[inline(always)]
    fn field(&mut self) -> Result<usize, PatchError> {
        let i = self.next;
        if i >= self.fields {
            return Err(PatchError::Layout);
        }
        self.next = i + 1;
        Ok(i)
    }

    /// Marks the next field as changed when `changed`, and returns the
    /// payload writer in that case.
    #[inline(always)]
    fn mark(&mut self, changed: bool) -> Result<Option<&mut Writer>, PatchError> {
        let i = self.field()?;
        if !changed {
            return Ok(None);
        }
        // The mask is the patch's first bytes (`begin`), so `i / 8` is in it.
        self.s.patch.or_at(i / 8, 1 << (i % 8));
        Ok(Some(&mut self.s.patch))
    }

    /// A `bool` field: a marked bool is flipped, with no payload.
    ///
    /// # Errors
    /// [`PatchError::Layout`] past the last field.
    #[inline(always)]
    pub fn bool(&mut self, cur: bool, base: bool) -> Result<(), PatchError> {
        self.s.state.bool(cur);
        self.mark(cur != base).map(drop)
    }

    /// A structural field (option tag, variant index, length) that must be
    /// equal on both sides for the fast path.
    #[inline(always)]
    fn same(&mut self, equal: bool) -> Result<(), PatchError> {
        if !equal {
            return Err(PatchError::Layout);
        }
        self.field().map(drop)
    }

    /// An option's tag (the value, when `Some`, follows).
    ///
    /// # Errors
    /// [`PatchError::Layout`] when one side is `Some` and the other `None`.
    #[inline(always)]
    pub fn option_tag(&mut self, cur: bool, base: bool) -> Result<(), PatchError> {
        self.s.state.u8(u8::from(cur));
        self.same(cur == base)
    }

    /// An enum's variant index (its fields follow).
    ///
    /// # Errors
    /// [`PatchError::Layout`] when the variants differ.
    #[inline(always)]
    pub fn variant(&mut self, cur: u32, base: u32) -> Result<(), PatchError> {
        self.s.state.u32(cur);
        self.same(cur == base)
    }

    /// A sequence's length (its items follow).
    ///
    /// # Errors
    /// [`PatchError::Layout`] when the lengths differ.
    #[inline(always)]
    pub fn len(&mut self, cur: usize, base: usize) -> Result<(), PatchError> {
        self.s.state.u64(cur as u64);
        self.same(cur == base)
    }

    /// A `u8` field: the new byte.
    ///
    /// # Errors
    /// [`PatchError::Layout`] past the last field.
    #[inline(always)]
    pub fn u8(&mut self, cur: u8, base: u8) -> Result<(), PatchError> {
        self.s.state.u8(cur);
        if let Some(w) = self.mark(cur != base)? {
            w.u8(cur);
        }
        Ok(())
    }

    /// An `i8` field: the new byte.
    ///
    /// # Errors
    /// [`PatchError::Layout`] past the last field.
    #[inline(always)]
    pub fn i8(&mut self, cur: i8, base: i8) -> Result<(), PatchError> {
        self.s.state.u8(cur as u8);
        if let Some(w) = self.mark(cur != base)? {
            w.u8(cur as u8);
        }
        Ok(())
    }

    /// A `char` field: its scalar value, varint.
    ///
    /// # Errors
    /// [`PatchError::Layout`] past the last field.
    #[inline(always)]
    pub fn char(&mut self, cur: char, base: char) -> Result<(), PatchError> {
        let mut utf8 = [0u8; 4];
        self.s.state.raw(cur.encode_utf8(&mut utf8).as_bytes());
        if let Some(w) = self.mark(cur != base)? {
            w.u32(u32::from(cur));
        }
        Ok(())
    }

    /// A string or byte-string field: its length and bytes.
    ///
    /// # Errors
    /// [`PatchError::Layout`] past the last field.
    #[inline(always)]
    pub fn bytes(&mut self, cur: &[u8], base: &[u8]) -> Result<(), PatchError> {
        self.s.state.bytes(cur);
        if let Some(w) = self.mark(cur != base)? {
            w.bytes(cur);
        }
        Ok(())
    }

    /// A `String` field.
    ///
    /// # Errors
    /// [`PatchError::Layout`] past the last field.
    #[inline(always)]
    pub fn string(&mut self, cur: &str, base: &str) -> Result<(), PatchError> {
        self.bytes(cur.as_bytes(), base.as_bytes())
    }

    /// An `Arc<str>` field: shared names compare by pointer first.
    ///
    /// # Errors
    /// [`PatchError::Layout`] past the last field.
    #[inline(always)]
    pub fn arc_str(&mut self, cur: &Arc<str>, base: &Arc<str>) -> Result<(), PatchError> {
        if Arc::ptr_eq(cur, base) {
            self.s.state.bytes(cur.as_bytes());
            return self.field().map(drop);
        }
        self.bytes(cur.as_bytes(), base.as_bytes())
    }
}

macro_rules! differ_delta {
    ($($(#[$doc:meta])* $m:ident: $t:ty => |$n:ident, $o:ident, $w:ident| $write:expr, whole $whole:ident $(as $cast:ty)?;)*) => {
        impl Differ<'_> {$(
            $(#[$doc])*
            ///
            /// # Errors
            /// [`PatchError::Layout`] past the last field.
            #[inline(always)]
            pub fn $m(&mut self, cur: $t, base: $t) -> Result<(), PatchError> {
                self.s.state.$whole(cur $(as $cast)?);
                if let Some($w) = self.mark(cur != base)? {
                    let ($n, $o) = (cur, base);
                    $write;
                }
                Ok(())
            }
        )*}
    };
}

differ_delta! {
    /// A `u16` field: zigzag varint of `new − old`, wrapping, read as `i16`.
    u16: u16 => |n, o, w| w.i64(i64::from(n.wrapping_sub(o) as i16)), whole u16;
    /// An `i16` field: zigzag varint of `new − old`, wrapping.
    i16: i16 => |n, o, w| w.i64(i64::from(n.wrapping_sub(o))), whole i64 as i64;
    /// A `u32` field: zigzag varint of `new − old`, wrapping, read as `i32`.
    u32: u32 => |n, o, w| w.i64(i64::from(n.wrapping_sub(o) as i32)), whole u32;
    /// An `i32` field: zigzag varint of `new − old`, wrapping.
    i32: i32 => |n, o, w| w.i64(i64::from(n.wrapping_sub(o))), whole i64 as i64;
    /// A `u64` field: zigzag varint of `new − old`, wrapping, read as `i64`.
    u64: u64 => |n, o, w| w.i64(n.wrapping_sub(o) as i64), whole u64;
    /// An `i64` field: zigzag varint of `new − old`, wrapping.
    i64: i64 => |n, o, w| w.i64(n.wrapping_sub(o)), whole i64;
    /// A `u128` field: zigzag varint (i128) of `new − old`, wrapping.
    u128: u128 => |n, o, w| w.i128(n.wrapping_sub(o) as i128), whole u128;
    /// An `i128` field: zigzag varint (i128) of `new − old`, wrapping.
    i128: i128 => |n, o, w| w.i128(n.wrapping_sub(o)), whole i128;
}

impl Differ<'_> {
    /// An `f32` field, compared by bits: the new value, raw little endian.
    ///
    /// # Errors
    /// [`PatchError::Layout`] past the last field.
    #[inline(always)]
    pub fn f32(&mut self, cur: f32, base: f32) -> Result<(), PatchError> {
        let (n, o) = (cur.to_bits(), base.to_bits());
        self.s.state.raw(&n.to_le_bytes());
        if let Some(w) = self.mark(n != o)? {
            w.raw(&n.to_le_bytes());
        }
        Ok(())
    }

    /// An `f64` field, compared by bits: the new value, raw little endian.
    ///
    /// # Errors
    /// [`PatchError::Layout`] past the last field.
    #[inline(always)]
    pub fn f64(&mut self, cur: f64, base: f64) -> Result<(), PatchError> {
        let (n, o) = (cur.to_bits(), base.to_bits());
        self.s.state.raw(&n.to_le_bytes());
        if let Some(w) = self.mark(n != o)? {
            w.raw(&n.to_le_bytes());
        }
        Ok(())
    }
}

/// Writes the patch from `base` to `cur` into the differ's scratch through
/// their [`Patch`] impl: [`Differ::begin`], [`Patch::diff`],
/// [`Differ::finish`]. Use it in [`crate::GameProtocol::diff_fields`].
///
/// # Errors
/// [`PatchError::Layout`] when the two states' layouts differ, or the type
/// has no field-by-field diff: encode this entity with the serde path.
#[inline]
pub fn diff_fields<S: Patch>(base: &S, cur: &S, d: &mut Differ<'_>) -> Result<(), PatchError> {
    d.begin(cur.field_count())?;
    cur.diff(base, d)?;
    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_changes_and_floats_by_bits() {
        let mut s = DiffScratch::default();
        let mut d = Differ::new(&mut s, 64);
        assert_eq!(
            diff_fields(&Some(1u8), &None, &mut d),
            Err(PatchError::Layout)
        );
        assert_eq!(
            diff_fields(&vec![1u8], &vec![1, 2], &mut d),
            Err(PatchError::Layout)
        );
        // Over the field limit: the flattener sends such a state whole.
        let mut d = Differ::new(&mut s, 1);
        assert_eq!(
            diff_fields(&(1u8, 2u8), &(1, 3), &mut d),
            Err(PatchError::Layout)
        );
        // -0.0 and 0.0 differ by bits; the patch carries the new bits.
        let mut d = Differ::new(&mut s, 64);
        diff_fields(&0.0f32, &-0.0f32, &mut d).unwrap();
        assert_eq!(s.patch(), [1, 0, 0, 0, 0x80]);
        // A hand-written impl that visits too few fields is refused.
        let mut d = Differ::new(&mut s, 64);
        d.begin(2).unwrap();
        d.u8(1, 1).unwrap();
        assert_eq!(d.finish(), Err(PatchError::Layout));
    }
}
