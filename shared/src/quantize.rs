//! Quantization helpers: shrink glam values to small integers for snapshots.
//!
//! A quantized value is an integer on the wire, so the delta encoder sends
//! only the (usually tiny) difference from the baseline: a player that moved a
//! few units costs one or two bytes per axis instead of four.
//!
//! ```
//! use glam::Vec2;
//! use tickwire_shared::quantize::{Angle16, QVec2};
//!
//! let p = QVec2::<16>::from_vec2(Vec2::new(10.5, -3.25));
//! assert_eq!(p.to_vec2(), Vec2::new(10.5, -3.25)); // exact: multiples of 1/16
//! let a = Angle16::from_radians(std::f32::consts::FRAC_PI_2);
//! assert!((a.to_radians() - std::f32::consts::FRAC_PI_2).abs() <= Angle16::PRECISION);
//! ```

use glam::Vec2;
use serde::{Deserialize, Serialize};

use crate::diff::Differ;
use crate::patch::{Patch, PatchError, Patcher};

/// A `Vec2` stored as fixed-point `i32` per axis, in units of `1 / SCALE`.
///
/// `SCALE = 16` gives a precision of 1/16 unit over ±134 million units.
/// Values outside the `i32` range saturate; NaN becomes 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QVec2<const SCALE: u32> {
    /// x in units of `1 / SCALE`.
    pub x: i32,
    /// y in units of `1 / SCALE`.
    pub y: i32,
}

impl<const SCALE: u32> QVec2<SCALE> {
    /// The precision: the largest rounding error of one axis is half of this.
    pub const STEP: f32 = 1.0 / SCALE as f32;

    /// Quantizes `v`, rounding to the nearest step.
    #[must_use]
    pub fn from_vec2(v: Vec2) -> Self {
        Self {
            x: quantize_f32(v.x, SCALE as f32),
            y: quantize_f32(v.y, SCALE as f32),
        }
    }

    /// The value as a `Vec2`.
    #[must_use]
    pub fn to_vec2(self) -> Vec2 {
        Vec2::new(self.x as f32, self.y as f32) / SCALE as f32
    }
}

impl<const SCALE: u32> From<Vec2> for QVec2<SCALE> {
    fn from(v: Vec2) -> Self {
        Self::from_vec2(v)
    }
}

impl<const SCALE: u32> From<QVec2<SCALE>> for Vec2 {
    fn from(q: QVec2<SCALE>) -> Self {
        q.to_vec2()
    }
}

/// Rounds `v * scale` to the nearest `i32`, saturating; NaN becomes 0.
#[must_use]
pub fn quantize_f32(v: f32, scale: f32) -> i32 {
    // `as` from float saturates and maps NaN to 0.
    (v * scale).round() as i32
}

/// An angle in 16 bits: a full turn is 65,536 steps (about 0.0055°).
///
/// Wrapping is exact: the delta of a small turn across ±π is small.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Angle16(pub u16);

impl Angle16 {
    /// One step, in radians.
    pub const PRECISION: f32 = core::f32::consts::TAU / 65_536.0;

    /// Quantizes an angle in radians (any value; it wraps).
    #[must_use]
    pub fn from_radians(r: f32) -> Self {
        if !r.is_finite() {
            return Self(0);
        }
        let turns = (r / core::f32::consts::TAU).rem_euclid(1.0);
        // rem_euclid may return exactly 1.0 for tiny negative inputs.
        Self(((turns * 65_536.0).round() as u32 & 0xffff) as u16)
    }

    /// The angle in radians, in `[0, 2π)`.
    #[must_use]
    pub fn to_radians(self) -> f32 {
        f32::from(self.0) * Self::PRECISION
    }

    /// The unit vector pointing at this angle.
    #[must_use]
    pub fn to_unit_vec2(self) -> Vec2 {
        Vec2::from_angle(self.to_radians())
    }
}

/// A value in `[0, 1]` stored in one byte (255 = 1.0), e.g. health fractions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Unorm8(pub u8);

impl Unorm8 {
    /// Quantizes `v`, clamped to `[0, 1]`; NaN becomes 0.
    #[must_use]
    pub fn from_f32(v: f32) -> Self {
        let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
        Self((v * 255.0).round() as u8)
    }

    /// The value in `[0, 1]`.
    #[must_use]
    pub fn to_f32(self) -> f32 {
        f32::from(self.0) / 255.0
    }
}

// The in-place patch path (see `crate::patch`) for the types above, visiting
// what their derived serde impls serialize: `QVec2` is a struct of two `i32`
// (x then y); `Angle16` and `Unorm8` are newtypes, i.e. their inner integer.

impl<const SCALE: u32> Patch for QVec2<SCALE> {
    #[inline(always)]
    fn field_count(&self) -> usize {
        2
    }
    #[inline(always)]
    fn patch(&mut self, p: &mut Patcher<'_, '_>) -> Result<(), PatchError> {
        p.i32(&mut self.x)?;
        p.i32(&mut self.y)
    }
    #[inline(always)]
    fn diff(&self, base: &Self, d: &mut Differ<'_>) -> Result<(), PatchError> {
        d.i32(self.x, base.x)?;
        d.i32(self.y, base.y)
    }
}

impl Patch for Angle16 {
    #[inline(always)]
    fn field_count(&self) -> usize {
        1
    }
    #[inline(always)]
    fn patch(&mut self, p: &mut Patcher<'_, '_>) -> Result<(), PatchError> {
        p.u16(&mut self.0)
    }
    #[inline(always)]
    fn diff(&self, base: &Self, d: &mut Differ<'_>) -> Result<(), PatchError> {
        d.u16(self.0, base.0)
    }
}

impl Patch for Unorm8 {
    #[inline(always)]
    fn field_count(&self) -> usize {
        1
    }
    #[inline(always)]
    fn patch(&mut self, p: &mut Patcher<'_, '_>) -> Result<(), PatchError> {
        p.u8(&mut self.0)
    }
    #[inline(always)]
    fn diff(&self, base: &Self, d: &mut Differ<'_>) -> Result<(), PatchError> {
        d.u8(self.0, base.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn edge_values_saturate_instead_of_panicking() {
        let q = QVec2::<16>::from_vec2(Vec2::new(f32::INFINITY, f32::NAN));
        assert_eq!((q.x, q.y), (i32::MAX, 0));
        assert_eq!(Angle16::from_radians(f32::NAN), Angle16(0));
        assert_eq!(Angle16::from_radians(-1e-9), Angle16(0));
        assert_eq!(Unorm8::from_f32(2.0), Unorm8(255));
    }

    proptest! {
        /// The in-place patch of each quantized type agrees with serde's
        /// layout: a delta between two values applies to the same result
        /// both ways, and `field_count` is the flattened field count.
        #[test]
        fn quantized_types_patch_in_place_like_serde(
            a in any::<(i32, i32, u16, u8)>(),
            b in any::<(i32, i32, u16, u8)>(),
        ) {
            use crate::codec::Reader;
            use crate::limits::Limits;
            use crate::patch::{PatchScratch, patch_in_place, patch_with_serde};
            use crate::snapshot::{NetId, Snapshot};
            type S = (QVec2<16>, Angle16, Unorm8);
            let make = |(x, y, r, h): (i32, i32, u16, u8)| -> S {
                (QVec2 { x, y }, Angle16(r), Unorm8(h))
            };
            let (base, cur) = (make(a), make(b));
            prop_assert_eq!(base.field_count(), 4);
            let bytes = crate::delta::diff(
                &Snapshot::from_vec(vec![(NetId(1), base)]).unwrap(),
                &Snapshot::from_vec(vec![(NetId(1), cur)]).unwrap(),
            )
            .unwrap();
            if bytes[1] == 1 {
                let limits = Limits::default();
                let mut fast = base;
                let mut r = Reader::new(&bytes[3..]);
                patch_in_place(&mut fast, &mut r, &limits).unwrap();
                prop_assert_eq!(r.remaining(), 1); // the full section's count
                prop_assert_eq!(fast, cur);
                let mut slow = base;
                let mut r = Reader::new(&bytes[3..]);
                patch_with_serde(&mut slow, &mut r, &limits, &mut PatchScratch::default())
                    .unwrap();
                prop_assert_eq!(slow, cur);
            }
        }

        #[test]
        fn qvec2_error_is_within_half_a_step(x in -1.0e5f32..1.0e5, y in -1.0e5f32..1.0e5) {
            let back = QVec2::<16>::from_vec2(Vec2::new(x, y)).to_vec2();
            prop_assert!((back.x - x).abs() <= 0.5 / 16.0 + x.abs() * 1e-6);
            prop_assert!((back.y - y).abs() <= 0.5 / 16.0 + y.abs() * 1e-6);
        }

        #[test]
        fn angle_round_trips_within_one_step(r in -100.0f32..100.0) {
            let back = Angle16::from_radians(r).to_radians();
            let diff = (back - r).rem_euclid(core::f32::consts::TAU);
            let err = diff.min(core::f32::consts::TAU - diff);
            prop_assert!(err <= Angle16::PRECISION + 1e-4 * r.abs().max(1.0));
        }
    }
}
