//! Sliding-window rate meters: "how many per second, over the last second".
//!
//! Time is an argument (milliseconds from any monotonic origin, such as
//! `performance.now()`), so the meters are testable without a clock.

use std::collections::VecDeque;

/// Counts amounts added over the last [`RateMeter::WINDOW_MS`] and reports
/// them per second.
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    samples: VecDeque<(f64, f64)>,
    sum: f64,
    total: f64,
}

impl RateMeter {
    /// The window length in milliseconds.
    pub const WINDOW_MS: f64 = 1000.0;
    /// Most samples kept; older ones are folded away early (bounds memory when
    /// a caller adds thousands of samples per second).
    const MAX_SAMPLES: usize = 4096;

    /// An empty meter.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `amount` at time `now_ms`.
    pub fn add(&mut self, now_ms: f64, amount: f64) {
        self.expire(now_ms);
        if self.samples.len() == Self::MAX_SAMPLES
            && let Some((_, old)) = self.samples.pop_front()
        {
            self.sum -= old;
        }
        self.samples.push_back((now_ms, amount));
        self.sum += amount;
        self.total += amount;
    }

    /// The amount per second over the window ending at `now_ms`.
    #[must_use]
    pub fn per_second(&mut self, now_ms: f64) -> f64 {
        self.expire(now_ms);
        // Recompute instead of trusting the running sum forever: no drift.
        if self.samples.is_empty() {
            self.sum = 0.0;
        }
        self.sum.max(0.0) * 1000.0 / Self::WINDOW_MS
    }

    /// Everything ever added.
    #[must_use]
    pub fn total(&self) -> f64 {
        self.total
    }

    fn expire(&mut self, now_ms: f64) {
        while let Some(&(t, amount)) = self.samples.front() {
            if now_ms - t < Self::WINDOW_MS {
                break;
            }
            self.samples.pop_front();
            self.sum -= amount;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_the_last_second() {
        let mut m = RateMeter::new();
        for i in 0..60 {
            m.add(f64::from(i) * 1000.0 / 60.0, 1.0);
        }
        assert_eq!(m.per_second(999.0), 60.0);
        // Samples at exactly 500 ms are a full window old.
        assert_eq!(m.per_second(1500.0), 29.0);
        assert_eq!(m.per_second(5000.0), 0.0);
        assert_eq!(m.total(), 60.0);
    }

    #[test]
    fn memory_is_bounded() {
        let mut m = RateMeter::new();
        for i in 0..10_000 {
            m.add(f64::from(i) * 0.01, 1.0);
        }
        assert!(m.samples.len() <= RateMeter::MAX_SAMPLES);
        assert_eq!(m.per_second(100.0), RateMeter::MAX_SAMPLES as f64);
    }
}
