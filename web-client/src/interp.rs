//! Interpolation of remote entities: the [`Interpolate`] trait (with
//! implementations for `f32`, `f64`, glam's vectors and quaternions, angles
//! and tuples) and [`InterpBuffer`], which keeps the last snapshots and
//! samples them a little in the past.
//!
//! Remote entities are drawn between the two snapshots that bracket the
//! render time, so they move smoothly although snapshots arrive in steps
//! (and with jitter). The delay adapts to what the network does:
//! `2 × interval + 2 × jitter`, clamped to 50–250 ms, where `interval` is the
//! smoothed time between snapshot arrivals and `jitter` the smoothed
//! deviation from it.
//!
//! Server time is counted in ticks. Each arrival gives a sample of the offset
//! between the local clock and the server's tick clock; their average maps
//! `now` to a server tick, and the render tick is that minus the delay,
//! never going backwards.
//!
//! ```
//! use glam::Vec2;
//! use tickwire_shared::NetId;
//! use tickwire_web::interp::{Angle, InterpBuffer};
//!
//! // 60 Hz, a snapshot every 2 ticks; each entity is a position and a facing.
//! let mut buffer = InterpBuffer::<(Vec2, Angle)>::new(60, 2);
//! buffer.push(0.0, 10, vec![(NetId(1), (Vec2::ZERO, Angle(0.0)))]);
//! buffer.push(33.0, 12, vec![(NetId(1), (Vec2::new(4.0, 0.0), Angle(1.0)))]);
//! let mut out = Vec::new();
//! buffer.sample_at(11.0, &mut out);
//! assert_eq!(out, vec![(NetId(1), (Vec2::new(2.0, 0.0), Angle(0.5)))]);
//! ```

use std::collections::VecDeque;

use glam::{DQuat, DVec2, DVec3, Quat, Vec2, Vec3, Vec3A, Vec4};
use tickwire_shared::NetId;

/// Shortest and longest interpolation delay, in milliseconds.
pub const DELAY_RANGE_MS: (f64, f64) = (50.0, 250.0);
/// Snapshots kept.
const MAX_FRAMES: usize = 32;
/// Weight of a new sample in the smoothed interval, jitter and clock offset.
const SMOOTHING: f64 = 0.1;

/// A value that can be blended between two samples.
///
/// `a.interpolate(&b, t)` is `a` at `t = 0` and `b` at `t = 1`. The
/// interpolation buffer only uses `t` in `[0, 1]`; the predictor's
/// correction smoothing ([`crate::predict`]) also extrapolates (`t` up to
/// 2), so an implementation should be affine: `a + (b − a) × t` for any `t`,
/// as every implementation here is.
///
/// Implement it for the part of an entity state that moves continuously
/// (usually a projection such as `(position, facing)`); discrete fields
/// (health, names) are taken from the newer snapshot by the game.
pub trait Interpolate: Clone {
    /// The value a fraction `t` of the way from `self` to `to`.
    #[must_use]
    fn interpolate(&self, to: &Self, t: f32) -> Self;
}

impl Interpolate for f32 {
    fn interpolate(&self, to: &Self, t: f32) -> Self {
        self + (to - self) * t
    }
}

impl Interpolate for f64 {
    fn interpolate(&self, to: &Self, t: f32) -> Self {
        self + (to - self) * f64::from(t)
    }
}

macro_rules! lerp_impl {
    ($($ty:ty => $t:ty),* $(,)?) => {$(
        impl Interpolate for $ty {
            fn interpolate(&self, to: &Self, t: f32) -> Self {
                self.lerp(*to, <$t>::from(t))
            }
        }
    )*};
}
lerp_impl!(Vec2 => f32, Vec3 => f32, Vec3A => f32, Vec4 => f32, DVec2 => f64, DVec3 => f64);

/// Rotations take the shortest arc (spherical interpolation).
impl Interpolate for Quat {
    fn interpolate(&self, to: &Self, t: f32) -> Self {
        self.slerp(*to, t)
    }
}

impl Interpolate for DQuat {
    fn interpolate(&self, to: &Self, t: f32) -> Self {
        self.slerp(*to, f64::from(t))
    }
}

/// An angle in radians that interpolates the short way round (from 170° to
/// −170° through 180°, not through 0°). The result is not normalized: use
/// it with `sin`/`cos`.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd)]
pub struct Angle(pub f32);

impl Interpolate for Angle {
    fn interpolate(&self, to: &Self, t: f32) -> Self {
        Self(lerp_angle(self.0, to.0, t))
    }
}

/// Interpolates from angle `a` to angle `b` (radians) the short way round.
#[must_use]
pub fn lerp_angle(a: f32, b: f32, t: f32) -> f32 {
    use core::f32::consts::{PI, TAU};
    let mut d = (b - a).rem_euclid(TAU);
    if d > PI {
        d -= TAU;
    }
    a + d * t
}

macro_rules! tuple_impl {
    ($($name:ident $idx:tt),+) => {
        impl<$($name: Interpolate),+> Interpolate for ($($name,)+) {
            fn interpolate(&self, to: &Self, t: f32) -> Self {
                ($(self.$idx.interpolate(&to.$idx, t),)+)
            }
        }
    };
}
tuple_impl!(A 0);
tuple_impl!(A 0, B 1);
tuple_impl!(A 0, B 1, C 2);
tuple_impl!(A 0, B 1, C 2, D 3);

impl<T: Interpolate, const N: usize> Interpolate for [T; N] {
    fn interpolate(&self, to: &Self, t: f32) -> Self {
        std::array::from_fn(|i| self[i].interpolate(&to[i], t))
    }
}

#[derive(Debug, Clone)]
struct Frame<T> {
    tick: u32,
    /// Sorted by id.
    samples: Vec<(NetId, T)>,
}

/// The buffer. Push every snapshot's entities (their interpolated part),
/// then sample once per rendered frame.
#[derive(Debug, Clone)]
pub struct InterpBuffer<T> {
    frames: VecDeque<Frame<T>>,
    ticks_per_ms: f64,
    expected_interval_ms: f64,
    interval_ms: f64,
    jitter_ms: f64,
    last_arrival: Option<f64>,
    /// Server tick minus local ms × ticks_per_ms.
    clock_offset: Option<f64>,
    last_render_tick: f64,
}

impl<T: Interpolate> InterpBuffer<T> {
    /// A buffer for a server at `tick_rate` that sends a snapshot every
    /// `snapshot_interval` ticks (both from the welcome).
    #[must_use]
    pub fn new(tick_rate: u16, snapshot_interval: u16) -> Self {
        let rate = f64::from(tick_rate.max(1));
        let expected = f64::from(snapshot_interval.max(1)) * 1000.0 / rate;
        Self {
            frames: VecDeque::new(),
            ticks_per_ms: rate / 1000.0,
            expected_interval_ms: expected,
            interval_ms: expected,
            jitter_ms: 0.0,
            last_arrival: None,
            clock_offset: None,
            last_render_tick: f64::NEG_INFINITY,
        }
    }

    /// Adds the entities of the snapshot of `tick`, received at `now_ms`.
    /// Older or repeated ticks are ignored.
    pub fn push(&mut self, now_ms: f64, tick: u32, mut samples: Vec<(NetId, T)>) {
        if self.frames.back().is_some_and(|f| f.tick >= tick) {
            return;
        }
        samples.sort_unstable_by_key(|s| s.0);
        if let Some(last) = self.last_arrival {
            let gap = (now_ms - last).max(0.0);
            self.interval_ms += (gap - self.interval_ms) * SMOOTHING;
            self.jitter_ms += ((gap - self.interval_ms).abs() - self.jitter_ms) * SMOOTHING;
        }
        self.last_arrival = Some(now_ms);
        let offset = f64::from(tick) - now_ms * self.ticks_per_ms;
        self.clock_offset = Some(match self.clock_offset {
            None => offset,
            Some(o) => o + (offset - o) * SMOOTHING,
        });
        if self.frames.len() == MAX_FRAMES {
            self.frames.pop_front();
        }
        self.frames.push_back(Frame { tick, samples });
    }

    /// The current delay in milliseconds.
    #[must_use]
    pub fn delay_ms(&self) -> f64 {
        (2.0 * self.interval_ms + 2.0 * self.jitter_ms).clamp(DELAY_RANGE_MS.0, DELAY_RANGE_MS.1)
    }

    /// The smoothed time between snapshots, in milliseconds.
    #[must_use]
    pub fn interval_ms(&self) -> f64 {
        self.interval_ms
    }

    /// The smoothed arrival jitter, in milliseconds.
    #[must_use]
    pub fn jitter_ms(&self) -> f64 {
        self.jitter_ms
    }

    /// The server tick (fractional) to render at `now_ms`; `None` before the
    /// first snapshot. Never goes backwards.
    pub fn render_tick(&mut self, now_ms: f64) -> Option<f64> {
        let offset = self.clock_offset?;
        let t = now_ms * self.ticks_per_ms + offset - self.delay_ms() * self.ticks_per_ms;
        self.last_render_tick = self.last_render_tick.max(t);
        Some(self.last_render_tick)
    }

    /// Fills `out` with the entities at `now_ms` (sorted by id), and drops
    /// snapshots no longer needed.
    pub fn sample(&mut self, now_ms: f64, out: &mut Vec<(NetId, T)>) {
        out.clear();
        let Some(t) = self.render_tick(now_ms) else {
            return;
        };
        while self.frames.len() > 2 && self.frames.get(1).is_some_and(|f| f64::from(f.tick) <= t) {
            self.frames.pop_front();
        }
        self.sample_at(t, out);
    }

    /// Fills `out` with the entities at server tick `t` (sorted by id).
    /// Before the first kept snapshot it shows the first; past the last it
    /// holds the last. An entity only in the older of the two bracketing
    /// snapshots stays where it was; one only in the newer appears when its
    /// snapshot is reached.
    pub fn sample_at(&self, t: f64, out: &mut Vec<(NetId, T)>) {
        out.clear();
        let Some(first) = self.frames.front() else {
            return;
        };
        let Some(i) = self.frames.iter().rposition(|f| f64::from(f.tick) <= t) else {
            out.extend_from_slice(&first.samples);
            return;
        };
        let a = &self.frames[i];
        let Some(b) = self.frames.get(i + 1) else {
            out.extend_from_slice(&a.samples);
            return;
        };
        let span = f64::from(b.tick - a.tick);
        let alpha = ((t - f64::from(a.tick)) / span).clamp(0.0, 1.0) as f32;
        for (id, s) in &a.samples {
            match b.samples.binary_search_by_key(id, |x| x.0) {
                Ok(j) => out.push((*id, s.interpolate(&b.samples[j].1, alpha))),
                Err(_) => out.push((*id, s.clone())),
            }
        }
    }

    /// Snapshots currently kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when nothing is kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The interval the server announced, in milliseconds.
    #[must_use]
    pub fn expected_interval_ms(&self) -> f64 {
        self.expected_interval_ms
    }
}

#[cfg(test)]
mod tests {
    use core::f32::consts::PI;

    use super::*;

    type S = (NetId, (Vec2, Angle));

    fn s(id: u32, x: f32, y: f32, angle: f32) -> S {
        (NetId(id), (Vec2::new(x, y), Angle(angle)))
    }

    #[test]
    fn half_time_between_two_snapshots_is_the_midpoint() {
        let mut b = InterpBuffer::new(60, 2);
        b.push(0.0, 10, vec![s(1, 0.0, 0.0, 0.0), s(2, 10.0, 10.0, 1.0)]);
        b.push(33.0, 12, vec![s(2, 20.0, 30.0, 2.0), s(1, 4.0, -8.0, 0.5)]);
        let mut out = Vec::new();
        b.sample_at(11.0, &mut out);
        assert_eq!(out, vec![s(1, 2.0, -4.0, 0.25), s(2, 15.0, 20.0, 1.5)]);
        // Before and after the kept range: the nearest snapshot, unchanged.
        b.sample_at(5.0, &mut out);
        assert_eq!(out[1], s(2, 10.0, 10.0, 1.0));
        b.sample_at(99.0, &mut out);
        assert_eq!(out[0], s(1, 4.0, -8.0, 0.5));
    }

    #[test]
    fn angles_take_the_short_way_round() {
        let a = 170f32.to_radians();
        let b = (-170f32).to_radians();
        let mid = lerp_angle(a, b, 0.5);
        assert!((mid.cos() - (-1.0)).abs() < 1e-5, "{}", mid.to_degrees());
        let q = lerp_angle(b, a, 0.25);
        assert!(((q.to_degrees() + 360.0) % 360.0 - 185.0).abs() < 1e-3);
        // Across zero, from the wire's [0, 2π) representation.
        let m = lerp_angle(0.1, 2.0 * PI - 0.1, 0.5);
        assert!(m.sin().abs() < 1e-5 && m.cos() > 0.99);
        assert_eq!(lerp_angle(1.0, 2.0, 0.5), 1.5);
    }

    #[test]
    fn every_implementation_is_affine() {
        assert_eq!(1.0f32.interpolate(&3.0, 0.5), 2.0);
        assert_eq!(1.0f64.interpolate(&3.0, 2.0), 5.0);
        assert_eq!(
            Vec3::ZERO.interpolate(&Vec3::new(2.0, 4.0, 6.0), 0.25),
            Vec3::new(0.5, 1.0, 1.5)
        );
        assert_eq!(Vec2::ZERO.interpolate(&Vec2::ONE, 2.0), Vec2::splat(2.0));
        assert_eq!([1.0f32, 2.0].interpolate(&[3.0, 6.0], 0.5), [2.0, 4.0]);
        let half = Quat::IDENTITY.interpolate(&Quat::from_rotation_z(PI / 2.0), 0.5);
        assert!(
            half.abs_diff_eq(Quat::from_rotation_z(PI / 4.0), 1e-6),
            "{half}"
        );
        assert_eq!(
            (1.0f32, Angle(0.0)).interpolate(&(2.0, Angle(1.0)), 0.5),
            (1.5, Angle(0.5))
        );
    }

    #[test]
    fn entities_appear_and_disappear_at_their_snapshots() {
        let mut b = InterpBuffer::new(60, 1);
        b.push(0.0, 1, vec![s(1, 0.0, 0.0, 0.0), s(2, 5.0, 5.0, 0.0)]);
        b.push(16.0, 2, vec![s(1, 1.0, 0.0, 0.0), s(3, 9.0, 9.0, 0.0)]);
        let mut out = Vec::new();
        b.sample_at(1.5, &mut out);
        let ids: Vec<_> = out.iter().map(|x| x.0.0).collect();
        assert_eq!(ids, vec![1, 2]);
        b.sample_at(2.0, &mut out);
        let ids: Vec<_> = out.iter().map(|x| x.0.0).collect();
        assert_eq!(ids, vec![1, 3]);
    }

    #[test]
    fn delay_adapts_to_jitter_within_bounds() {
        let mut steady = InterpBuffer::<f32>::new(60, 2);
        let mut jittery = InterpBuffer::<f32>::new(60, 2);
        let mut t = 0.0;
        for tick in 0..200u32 {
            steady.push(f64::from(tick) * 100.0 / 3.0, tick * 2, Vec::new());
            t += if tick % 2 == 0 { 5.0 } else { 61.67 };
            jittery.push(t, tick * 2, Vec::new());
        }
        let d = steady.delay_ms();
        assert!((d - 66.7).abs() < 1.0, "{d}");
        assert!(jittery.delay_ms() > d + 40.0, "{}", jittery.delay_ms());
        assert!(jittery.delay_ms() <= 250.0);
        let fast = InterpBuffer::<f32>::new(60, 1);
        assert_eq!(fast.delay_ms(), 50.0);
        let mut stalled = InterpBuffer::<f32>::new(60, 2);
        for tick in 0..50u32 {
            stalled.push(f64::from(tick) * 1000.0, tick * 2, Vec::new());
        }
        assert_eq!(stalled.delay_ms(), 250.0);
    }

    #[test]
    fn renders_the_delay_in_the_past_and_never_goes_back() {
        let mut b = InterpBuffer::new(60, 2);
        for k in 0..30u32 {
            let now = f64::from(k) * 100.0 / 3.0;
            b.push(now, 1000 + 2 * k, vec![s(1, (2 * k) as f32, 0.0, 0.0)]);
        }
        let now = 29.0 * 100.0 / 3.0;
        let t = b.render_tick(now).unwrap();
        // ~66.7 ms at 60 Hz is 4 ticks behind the newest (1058).
        assert!((t - 1054.0).abs() < 0.5, "{t}");
        let mut out = Vec::new();
        b.sample(now, &mut out);
        assert!((out[0].1.0.x - 54.0).abs() < 0.5, "{:?}", out[0]);
        assert!(b.len() <= 3);
        // A late snapshot that drags the clock back does not move time back.
        b.push(now + 200.0, 1060, Vec::new());
        assert!(b.render_tick(now + 1.0).unwrap() >= t);
    }
}
