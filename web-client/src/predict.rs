//! Client-side prediction of the local player's entity, and reconciliation
//! with the server: the [`Predict`] hook a game implements and the
//! [`Predictor`] that runs it.
//!
//! Every local tick the client applies its own input at once with the very
//! rule the server runs (for the arena, `arena::step_player`), so the
//! player moves without waiting a round trip. When a snapshot arrives it
//! carries the server's state of our entity after input `last_input`;
//! [`Predictor::reconcile`] restarts from it and replays every input the
//! server has not applied yet (the session's pending inputs). If the result
//! differs from what was shown, the difference becomes a visual correction
//! that decays over about 100 ms instead of snapping; differences larger than
//! the snap distance (respawn, teleport) snap.
//!
//! ```
//! use glam::Vec2;
//! use tickwire_web::predict::{Predict, Predictor};
//!
//! /// Moves at 120 units/s in the input's direction.
//! struct Walk;
//! impl Predict for Walk {
//!     type Input = Vec2;
//!     type State = Vec2;
//!     fn step(&self, p: &Vec2, dir: &Vec2, dt: f32) -> Vec2 {
//!         *p + dir.normalize_or_zero() * 120.0 * dt
//!     }
//!     fn distance(&self, a: &Vec2, b: &Vec2) -> f32 {
//!         a.distance(*b)
//!     }
//! }
//!
//! let mut p = Predictor::new(Walk, 60, 50.0);
//! p.reconcile(0.0, Vec2::ZERO, []); // the first server state
//! p.apply_input(&Vec2::X); // one local tick, shown at once
//! assert_eq!(p.position(), Some(Vec2::new(2.0, 0.0)));
//! // The server applied nothing yet: replaying the pending input agrees.
//! assert_eq!(p.reconcile(10.0, Vec2::ZERO, [&Vec2::X]), 0.0);
//! ```

use crate::interp::Interpolate;
use crate::meter::RateMeter;

/// The prediction hook a game implements: how one tick of the local
/// player's input changes the predicted state (usually the position of the
/// player's entity, taken from its replicated state).
pub trait Predict {
    /// One tick of input (the game's `GameProtocol::Input`).
    type Input;
    /// What is predicted, e.g. a position. [`Interpolate`] is used to smooth
    /// corrections.
    type State: Interpolate;

    /// The state after one tick of `input`, `dt` seconds long. It must be
    /// the server's rule, or every snapshot will correct the prediction.
    fn step(&self, state: &Self::State, input: &Self::Input, dt: f32) -> Self::State;

    /// How far apart two states are (world units for a position): decides
    /// snapping and counts corrections.
    fn distance(&self, a: &Self::State, b: &Self::State) -> f32;
}

/// Differences smaller than this are not corrections: they are quantization
/// noise (arena positions travel as 1/16 units).
pub const CORRECTION_EPSILON: f32 = 0.1;
/// The visual correction shrinks to 5 % within this many milliseconds.
pub const SMOOTHING_MS: f64 = 100.0;
/// A correction whose remaining size is below this is dropped.
const SETTLED: f32 = 1e-3;

/// A correction being smoothed out: shown = `position + (from − to) × keep`.
#[derive(Debug, Clone)]
struct Correction<S> {
    /// What was shown when the correction happened.
    from: S,
    /// The corrected prediction at that moment.
    to: S,
    /// The part of `from − to` still shown, from 1 down to 0.
    keep: f32,
}

/// Predicts one entity driven by local inputs with the game's [`Predict`].
#[derive(Debug, Clone)]
pub struct Predictor<P: Predict> {
    hook: P,
    dt: f32,
    snap_distance: f32,
    position: Option<P::State>,
    correction: Option<Correction<P::State>>,
    corrections: RateMeter,
    last_error: f32,
}

impl<P: Predict> Predictor<P> {
    /// A predictor that steps with `hook` at `tick_rate` ticks per second
    /// and snaps when the server disagrees by more than `snap_distance`.
    #[must_use]
    pub fn new(hook: P, tick_rate: u16, snap_distance: f32) -> Self {
        Self {
            hook,
            dt: 1.0 / f32::from(tick_rate.max(1)),
            snap_distance,
            position: None,
            correction: None,
            corrections: RateMeter::new(),
            last_error: 0.0,
        }
    }

    /// The game's hook.
    pub fn hook(&self) -> &P {
        &self.hook
    }

    /// Changes the tick rate (from the server's welcome).
    pub fn set_tick_rate(&mut self, tick_rate: u16) {
        self.dt = 1.0 / f32::from(tick_rate.max(1));
    }

    /// Applies one tick of local input. Does nothing until the first
    /// [`Predictor::reconcile`] gave a starting state.
    pub fn apply_input(&mut self, input: &P::Input) {
        if let Some(p) = &self.position {
            self.position = Some(self.hook.step(p, input, self.dt));
        }
    }

    /// Takes the server's state after its last applied input, replays
    /// `unacked` (the inputs after it, oldest first: the session's
    /// `pending_inputs`) and turns any difference into a smoothed
    /// correction. Returns the size of the correction.
    pub fn reconcile<'a>(
        &mut self,
        now_ms: f64,
        server_state: P::State,
        unacked: impl IntoIterator<Item = &'a P::Input>,
    ) -> f32
    where
        P::Input: 'a,
    {
        let mut p = server_state;
        for input in unacked {
            p = self.hook.step(&p, input, self.dt);
        }
        let Some(old) = self.position.take() else {
            self.position = Some(p);
            self.correction = None;
            self.last_error = 0.0;
            return 0.0;
        };
        let size = self.hook.distance(&old, &p);
        let shown = self.shown(&old);
        self.correction = if !size.is_finite() || size > self.snap_distance {
            None
        } else if self.hook.distance(&shown, &p) > SETTLED {
            Some(Correction {
                from: shown,
                to: p.clone(),
                keep: 1.0,
            })
        } else {
            None
        };
        if size > CORRECTION_EPSILON || !size.is_finite() {
            self.corrections.add(now_ms, 1.0);
        }
        self.position = Some(p);
        self.last_error = size;
        size
    }

    /// Lets `elapsed_ms` of smoothing happen (call once per rendered frame).
    pub fn advance(&mut self, elapsed_ms: f64) {
        let Some(c) = &mut self.correction else {
            return;
        };
        // exp(-3) ≈ 5 % left after SMOOTHING_MS.
        c.keep *= (-3.0 * elapsed_ms.max(0.0) / SMOOTHING_MS).exp() as f32;
        if self.hook.distance(&c.from, &c.to) * c.keep < SETTLED {
            self.correction = None;
        }
    }

    /// Forgets the state (death, respawn, new session): the next reconcile
    /// starts fresh.
    pub fn reset(&mut self) {
        self.position = None;
        self.correction = None;
    }

    /// The predicted state (what the server will compute once it has
    /// applied every input sent so far).
    #[must_use]
    pub fn position(&self) -> Option<P::State> {
        self.position.clone()
    }

    /// What to draw: the prediction plus what is left of the correction.
    #[must_use]
    pub fn visual_position(&self) -> Option<P::State> {
        self.position.as_ref().map(|p| self.shown(p))
    }

    /// `position + (from − to) × keep`, with interpolations only (affine:
    /// the midpoint of `to + 2·keep·(from − to)` and `2·position − to`).
    fn shown(&self, position: &P::State) -> P::State {
        match &self.correction {
            None => position.clone(),
            Some(c) => {
                let a = c.to.interpolate(&c.from, 2.0 * c.keep);
                let b = c.to.interpolate(position, 2.0);
                a.interpolate(&b, 0.5)
            }
        }
    }

    /// How far the drawn state still is from the prediction.
    #[must_use]
    pub fn correction_left(&self) -> f32 {
        match (&self.position, &self.correction) {
            (Some(p), Some(_)) => self.hook.distance(&self.shown(p), p),
            _ => 0.0,
        }
    }

    /// The size of the last correction.
    #[must_use]
    pub fn last_error(&self) -> f32 {
        self.last_error
    }

    /// Corrections larger than [`CORRECTION_EPSILON`] during the last second.
    #[must_use]
    pub fn corrections_per_sec(&mut self, now_ms: f64) -> f64 {
        self.corrections.per_second(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use glam::Vec2;

    use super::*;

    /// A movement rule like the arena's: a unit direction at 120 units/s,
    /// clamped to a box.
    #[derive(Debug, Clone)]
    struct Walk;
    impl Predict for Walk {
        type Input = Vec2;
        type State = Vec2;
        fn step(&self, p: &Vec2, dir: &Vec2, dt: f32) -> Vec2 {
            (*p + dir.normalize_or_zero() * 120.0 * dt).clamp(Vec2::ZERO, Vec2::splat(500.0))
        }
        fn distance(&self, a: &Vec2, b: &Vec2) -> f32 {
            a.distance(*b)
        }
    }

    fn step(p: Vec2, dir: &Vec2, dt: f32) -> Vec2 {
        Walk.step(&p, dir, dt)
    }

    fn offset(p: &Predictor<Walk>) -> Vec2 {
        p.visual_position().unwrap() - p.position().unwrap()
    }

    /// Runs a client against a server that applies inputs `delay` ticks late
    /// and reports snapshots every 2 ticks; `server_nudge` moves the server's
    /// player once, at tick 30.
    fn run(server_nudge: Vec2) -> (Predictor<Walk>, Vec<f32>) {
        let mut predictor = Predictor::new(Walk, 60, 50.0);
        let mut server = Vec2::new(100.0, 100.0);
        let mut in_flight: VecDeque<(u32, Vec2)> = VecDeque::new();
        let mut unacked: VecDeque<(u32, Vec2)> = VecDeque::new();
        let mut last_applied = 0;
        let mut errors = Vec::new();
        predictor.reconcile(0.0, server, []);
        for tick in 1..=120u32 {
            let now = f64::from(tick) * 1000.0 / 60.0;
            let input = if tick % 40 < 20 {
                Vec2::X
            } else {
                Vec2::new(0.0, 1.0)
            };
            predictor.apply_input(&input);
            unacked.push_back((tick, input));
            in_flight.push_back((tick, input));
            // The server sees inputs 5 ticks later.
            while in_flight.front().is_some_and(|(seq, _)| seq + 5 <= tick) {
                let (seq, i) = in_flight.pop_front().unwrap();
                server = step(server, &i, 1.0 / 60.0);
                last_applied = seq;
            }
            if tick == 30 {
                server += server_nudge;
            }
            if tick % 2 == 0 {
                unacked.retain(|(seq, _)| *seq > last_applied);
                errors.push(predictor.reconcile(now, server, unacked.iter().map(|(_, i)| i)));
            }
            predictor.advance(1000.0 / 60.0);
        }
        (predictor, errors)
    }

    #[test]
    fn replaying_unacked_inputs_matches_the_server_exactly() {
        let (mut p, errors) = run(Vec2::ZERO);
        assert!(errors.iter().all(|e| *e == 0.0), "{errors:?}");
        assert_eq!(p.corrections_per_sec(2000.0), 0.0);
        assert_eq!(p.visual_position(), p.position());
    }

    #[test]
    fn a_server_correction_is_smoothed_then_converges() {
        let (mut p, errors) = run(Vec2::new(3.0, 0.0));
        // Exactly one correction, of the nudge's size.
        let corrections: Vec<_> = errors.iter().filter(|e| **e > CORRECTION_EPSILON).collect();
        assert_eq!(corrections.len(), 1, "{errors:?}");
        assert!((corrections[0] - 3.0).abs() < 1e-3);
        // Long after, the visual offset is gone.
        assert_eq!(p.correction_left(), 0.0);
        assert_eq!(p.corrections_per_sec(1000.0), 1.0);
    }

    #[test]
    fn the_offset_starts_at_the_error_and_decays_over_100ms() {
        let mut p = Predictor::new(Walk, 60, 50.0);
        p.reconcile(0.0, Vec2::new(10.0, 10.0), []);
        p.reconcile(10.0, Vec2::new(14.0, 10.0), []);
        // Nothing moved on screen yet.
        assert_eq!(p.visual_position(), Some(Vec2::new(10.0, 10.0)));
        p.advance(50.0);
        let half = offset(&p).x;
        assert!(-4.0 < half && half < -0.5, "{half}");
        p.advance(50.0);
        assert!(offset(&p).x.abs() <= 4.0 * 0.051, "{}", offset(&p).x);
        p.advance(500.0);
        assert_eq!(p.visual_position(), Some(Vec2::new(14.0, 10.0)));
    }

    #[test]
    fn large_jumps_snap() {
        let mut p = Predictor::new(Walk, 60, 50.0);
        p.reconcile(0.0, Vec2::ZERO, []);
        p.reconcile(1.0, Vec2::new(400.0, 0.0), []);
        assert_eq!(p.visual_position(), Some(Vec2::new(400.0, 0.0)));
        p.reset();
        assert_eq!(p.position(), None);
        p.apply_input(&Vec2::X);
        assert_eq!(p.position(), None);
    }
}
