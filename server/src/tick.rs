//! A drift-free tick schedule: tick `n` is due at `start + n × period`.
//!
//! Pure arithmetic on injected instants. When a tick starts more than one
//! period late, the lateness is reported as an overrun and the schedule is
//! re-anchored at that tick: the loop never runs a burst of catch-up ticks.

use std::time::Duration;

/// The schedule. Times are durations since an arbitrary epoch.
#[derive(Debug, Clone)]
pub struct TickSchedule {
    period: Duration,
    anchor: Duration,
    /// Ticks since the anchor.
    n: u32,
    overruns: u64,
}

/// What [`TickSchedule::start_tick`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickStart {
    /// How late the tick started (zero when on time).
    pub late_by: Duration,
    /// True when it was late by more than a period; the schedule was re-anchored.
    pub overrun: bool,
}

impl TickSchedule {
    /// A schedule whose first tick is due at `start`.
    #[must_use]
    pub fn new(start: Duration, period: Duration) -> Self {
        Self {
            period: period.max(Duration::from_micros(100)),
            anchor: start,
            n: 0,
            overruns: 0,
        }
    }

    /// When the next tick is due.
    #[must_use]
    pub fn next_deadline(&self) -> Duration {
        self.anchor + self.period * self.n
    }

    /// Overruns so far.
    #[must_use]
    pub fn overruns(&self) -> u64 {
        self.overruns
    }

    /// Call when a tick starts at `now`; advances the schedule.
    pub fn start_tick(&mut self, now: Duration) -> TickStart {
        let due = self.next_deadline();
        let late_by = now.saturating_sub(due);
        let overrun = late_by > self.period;
        if overrun {
            self.overruns += 1;
            self.anchor = now;
            self.n = 1;
        } else if self.n >= 1_000_000 {
            // Keep the multiplication small; re-anchor exactly on schedule.
            self.anchor = due + self.period;
            self.n = 0;
        } else {
            self.n += 1;
        }
        TickStart { late_by, overrun }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn deadlines_do_not_drift_when_ticks_start_slightly_late() {
        let mut s = TickSchedule::new(Duration::ZERO, 10 * MS);
        for n in 0..1000u32 {
            assert_eq!(s.next_deadline(), 10 * MS * n);
            // Each tick wakes 3 ms late; the schedule must not slip.
            let t = s.start_tick(10 * MS * n + 3 * MS);
            assert!(!t.overrun);
        }
    }

    #[test]
    fn an_overrun_is_counted_and_not_followed_by_a_burst() {
        let mut s = TickSchedule::new(Duration::ZERO, 10 * MS);
        s.start_tick(Duration::ZERO);
        // The next tick (due at 10 ms) starts at 55 ms.
        let t = s.start_tick(55 * MS);
        assert!(t.overrun);
        assert_eq!(t.late_by, 45 * MS);
        assert_eq!(s.overruns(), 1);
        // The following tick is one period later, not immediately.
        assert_eq!(s.next_deadline(), 65 * MS);
    }
}
