//! Client-side prediction of the local player, and reconciliation with the
//! server.
//!
//! Every local tick the client applies its own input at once with the very
//! movement function the server runs (for the arena: `arena::step_player`),
//! so the player moves without waiting a round trip. When a snapshot arrives
//! it carries the server's position of our entity after input `last_input`;
//! [`Predictor::reconcile`] restarts from it and replays every input the
//! server has not applied yet. If the result differs from what was shown,
//! the difference becomes a visual offset that decays over about 100 ms
//! instead of snapping; differences larger than the snap distance (respawn,
//! teleport) snap.

use glam::Vec2;

use crate::meter::RateMeter;

/// The movement function shared with the server: position, input, seconds.
pub type StepFn<I> = fn(Vec2, &I, f32) -> Vec2;

/// Differences smaller than this (world units) are not corrections: they are
/// quantization noise (positions travel as 1/16 units).
pub const CORRECTION_EPSILON: f32 = 0.1;
/// The visual offset shrinks to 5 % within this many milliseconds.
pub const SMOOTHING_MS: f64 = 100.0;

/// Predicts one entity driven by local inputs.
#[derive(Debug, Clone)]
pub struct Predictor<I> {
    step: StepFn<I>,
    dt: f32,
    snap_distance: f32,
    position: Option<Vec2>,
    offset: Vec2,
    corrections: RateMeter,
    last_error: f32,
}

impl<I> Predictor<I> {
    /// A predictor that steps with `step` at `tick_rate` ticks per second and
    /// snaps when the server disagrees by more than `snap_distance`.
    #[must_use]
    pub fn new(step: StepFn<I>, tick_rate: u16, snap_distance: f32) -> Self {
        Self {
            step,
            dt: 1.0 / f32::from(tick_rate.max(1)),
            snap_distance,
            position: None,
            offset: Vec2::ZERO,
            corrections: RateMeter::new(),
            last_error: 0.0,
        }
    }

    /// Changes the tick rate (from the server's welcome).
    pub fn set_tick_rate(&mut self, tick_rate: u16) {
        self.dt = 1.0 / f32::from(tick_rate.max(1));
    }

    /// Applies one tick of local input. Does nothing until the first
    /// [`Predictor::reconcile`] gave a starting position.
    pub fn apply_input(&mut self, input: &I) {
        if let Some(p) = self.position {
            self.position = Some((self.step)(p, input, self.dt));
        }
    }

    /// Takes the server's position after its last applied input, replays
    /// `unacked` (the inputs after it, oldest first) and turns any difference
    /// into a smoothed offset. Returns the size of the correction.
    pub fn reconcile<'a>(
        &mut self,
        now_ms: f64,
        server_position: Vec2,
        unacked: impl IntoIterator<Item = &'a I>,
    ) -> f32
    where
        I: 'a,
    {
        let mut p = server_position;
        for input in unacked {
            p = (self.step)(p, input, self.dt);
        }
        let Some(old) = self.position else {
            self.position = Some(p);
            self.offset = Vec2::ZERO;
            self.last_error = 0.0;
            return 0.0;
        };
        let error = old - p;
        let size = error.length();
        if !size.is_finite() || size > self.snap_distance {
            self.offset = Vec2::ZERO;
        } else {
            self.offset += error;
        }
        if size > CORRECTION_EPSILON || !size.is_finite() {
            self.corrections.add(now_ms, 1.0);
        }
        self.position = Some(p);
        self.last_error = size;
        size
    }

    /// Lets `elapsed_ms` of smoothing happen (call once per rendered frame).
    pub fn advance(&mut self, elapsed_ms: f64) {
        // exp(-3) ≈ 5 % left after SMOOTHING_MS.
        let keep = (-3.0 * elapsed_ms.max(0.0) / SMOOTHING_MS).exp() as f32;
        self.offset *= keep;
        if self.offset.length_squared() < 1e-6 {
            self.offset = Vec2::ZERO;
        }
    }

    /// Forgets the position (death, respawn, new session): the next
    /// reconcile starts fresh.
    pub fn reset(&mut self) {
        self.position = None;
        self.offset = Vec2::ZERO;
    }

    /// The predicted position (what the server will compute once it has
    /// applied every input sent so far).
    #[must_use]
    pub fn position(&self) -> Option<Vec2> {
        self.position
    }

    /// Where to draw the player: the prediction plus the decaying offset.
    #[must_use]
    pub fn visual_position(&self) -> Option<Vec2> {
        self.position.map(|p| p + self.offset)
    }

    /// The offset still being smoothed out.
    #[must_use]
    pub fn offset(&self) -> Vec2 {
        self.offset
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

    use super::*;

    /// A movement rule like the arena's: a unit direction at 120 units/s,
    /// clamped to a box.
    fn step(p: Vec2, dir: &Vec2, dt: f32) -> Vec2 {
        (p + dir.normalize_or_zero() * 120.0 * dt).clamp(Vec2::ZERO, Vec2::splat(500.0))
    }

    /// Runs a client against a server that applies inputs `delay` ticks late
    /// and reports snapshots every 2 ticks; `server_nudge` moves the server's
    /// player once, at tick 30.
    fn run(server_nudge: Vec2) -> (Predictor<Vec2>, Vec<f32>) {
        let mut predictor = Predictor::new(step as StepFn<Vec2>, 60, 50.0);
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
        assert_eq!(p.offset(), Vec2::ZERO);
        assert_eq!(p.corrections_per_sec(1000.0), 1.0);
    }

    #[test]
    fn the_offset_starts_at_the_error_and_decays_over_100ms() {
        let mut p = Predictor::new(step as StepFn<Vec2>, 60, 50.0);
        p.reconcile(0.0, Vec2::new(10.0, 10.0), []);
        p.reconcile(10.0, Vec2::new(14.0, 10.0), []);
        // Nothing moved on screen yet.
        assert_eq!(p.visual_position(), Some(Vec2::new(10.0, 10.0)));
        p.advance(50.0);
        let half = p.offset().x;
        assert!(-4.0 < half && half < -0.5, "{half}");
        p.advance(50.0);
        assert!(p.offset().x.abs() <= 4.0 * 0.051, "{}", p.offset().x);
        p.advance(500.0);
        assert_eq!(p.visual_position(), Some(Vec2::new(14.0, 10.0)));
    }

    #[test]
    fn large_jumps_snap() {
        let mut p = Predictor::new(step as StepFn<Vec2>, 60, 50.0);
        p.reconcile(0.0, Vec2::ZERO, []);
        p.reconcile(1.0, Vec2::new(400.0, 0.0), []);
        assert_eq!(p.visual_position(), Some(Vec2::new(400.0, 0.0)));
        p.reset();
        assert_eq!(p.position(), None);
        p.apply_input(&Vec2::X);
        assert_eq!(p.position(), None);
    }
}
