//! Server statistics over a measurement window: how long ticks took, how
//! many started late, how many clients are connected, and how many snapshots
//! (and bytes) were queued for sending.
//!
//! Unlike [`crate::metrics`] (Prometheus, cumulative), these are windows:
//! [`RunningServer::take_stats`](crate::RunningServer::take_stats) returns
//! what happened since its previous call and starts a new window. Load tools
//! read them once a second (`arena-server --stats-interval 1s`) and merge the
//! windows they care about.
//!
//! Cost on the tick path: each room takes one uncontended lock per tick to
//! record one histogram value and add its counters. Sessions touch one atomic
//! when they join and when they end. Nothing is locked per client.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Highest tick duration the histogram tracks, in microseconds (60 s);
/// longer ticks are recorded as 60 s.
const MAX_TICK_US: u64 = 60_000_000;

/// Snapshot counters of one room tick (see [`crate::room::Room::take_sent`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SentCounters {
    /// Snapshot messages queued for clients.
    pub snapshots: u64,
    /// Of those, full snapshots (no baseline).
    pub full_snapshots: u64,
    /// Bytes of those messages (protocol payload, before WebSocket/TLS framing).
    pub bytes: u64,
}

impl SentCounters {
    fn add(&mut self, other: SentCounters) {
        self.snapshots += other.snapshots;
        self.full_snapshots += other.full_snapshots;
        self.bytes += other.bytes;
    }
}

/// What happened in one window, over all rooms.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerStats {
    /// The window's length.
    pub elapsed: Duration,
    /// Durations of the room ticks, in microseconds: the whole
    /// [`crate::room::Room::tick`] (inputs, game, snapshot encoding for every
    /// client). One value per tick per room.
    pub tick_us: Histogram<u64>,
    /// Ticks that started more than one tick period late (the schedule then
    /// re-anchors; see [`crate::tick`]).
    pub overruns: u64,
    /// Ticks whose duration exceeded the tick period.
    pub ticks_over_budget: u64,
    /// Sessions past the handshake at the end of the window.
    pub connected_clients: u64,
    /// Snapshots queued for sending in the window.
    pub sent: SentCounters,
    /// Times a room task woke between ticks for a command (a join, a leave,
    /// a disconnect, a console action). Inputs never wake a room: it reads
    /// them at the start of each tick (and acks never reach it).
    pub room_wakeups: u64,
}

impl Default for ServerStats {
    /// An empty window (no ticks, nothing sent).
    fn default() -> Self {
        Self {
            elapsed: Duration::ZERO,
            tick_us: new_histogram(),
            overruns: 0,
            ticks_over_budget: 0,
            connected_clients: 0,
            sent: SentCounters::default(),
            room_wakeups: 0,
        }
    }
}

impl ServerStats {
    /// The tick duration at quantile `q` (0.0–1.0); zero without ticks.
    #[must_use]
    pub fn tick_quantile(&self, q: f64) -> Duration {
        Duration::from_micros(self.tick_us.value_at_quantile(q))
    }

    /// The longest tick; zero without ticks.
    #[must_use]
    pub fn tick_max(&self) -> Duration {
        Duration::from_micros(self.tick_us.max())
    }

    /// Ticks recorded.
    #[must_use]
    pub fn ticks(&self) -> u64 {
        self.tick_us.len()
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TICK_US, 3).expect("constant bounds are valid")
}

struct Window {
    started: Instant,
    tick_us: Histogram<u64>,
    overruns: u64,
    over_budget: u64,
    sent: SentCounters,
}

/// Shared by the rooms and sessions of one server.
pub(crate) struct StatsCollector {
    window: Mutex<Window>,
    clients: AtomicI64,
    wakeups: AtomicU64,
}

impl StatsCollector {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            window: Mutex::new(Window {
                started: now,
                tick_us: new_histogram(),
                overruns: 0,
                over_budget: 0,
                sent: SentCounters::default(),
            }),
            clients: AtomicI64::new(0),
            wakeups: AtomicU64::new(0),
        }
    }

    /// A room task woke between ticks for a command.
    pub(crate) fn room_woke(&self) {
        self.wakeups.fetch_add(1, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        // A poisoned lock only means a panic elsewhere; the counters are fine.
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one room tick that took `took`, with period `period`.
    pub(crate) fn record_tick(
        &self,
        took: Duration,
        period: Duration,
        overrun: bool,
        sent: SentCounters,
    ) {
        let us = u64::try_from(took.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, MAX_TICK_US);
        let mut w = self.lock();
        w.tick_us.saturating_record(us);
        w.overruns += u64::from(overrun);
        w.over_budget += u64::from(took > period);
        w.sent.add(sent);
    }

    /// A session finished its handshake (`+1`) or ended (`-1`).
    pub(crate) fn clients(&self, delta: i64) {
        self.clients.fetch_add(delta, Ordering::Relaxed);
    }

    /// The window since the previous call; starts a new one at `now`.
    pub(crate) fn take(&self, now: Instant) -> ServerStats {
        let fresh = new_histogram();
        let mut w = self.lock();
        let tick_us = core::mem::replace(&mut w.tick_us, fresh);
        let stats = ServerStats {
            elapsed: now.saturating_duration_since(w.started),
            tick_us,
            overruns: core::mem::take(&mut w.overruns),
            ticks_over_budget: core::mem::take(&mut w.over_budget),
            connected_clients: u64::try_from(self.clients.load(Ordering::Relaxed)).unwrap_or(0),
            sent: core::mem::take(&mut w.sent),
            room_wakeups: self.wakeups.swap(0, Ordering::Relaxed),
        };
        w.started = now;
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_window_holds_what_was_recorded_and_the_next_starts_empty() {
        let t0 = Instant::now();
        let c = StatsCollector::new(t0);
        let period = Duration::from_micros(16_667);
        let sent = SentCounters {
            snapshots: 10,
            full_snapshots: 1,
            bytes: 500,
        };
        c.record_tick(MS, period, false, sent);
        c.record_tick(2 * MS, period, false, sent);
        c.record_tick(30 * MS, period, true, SentCounters::default());
        c.clients(3);
        c.clients(-1);

        let s = c.take(t0 + 1000 * MS);
        assert_eq!(s.elapsed, 1000 * MS);
        assert_eq!(s.ticks(), 3);
        assert_eq!(s.overruns, 1);
        assert_eq!(s.ticks_over_budget, 1);
        assert_eq!(s.connected_clients, 2);
        assert_eq!(
            s.sent,
            SentCounters {
                snapshots: 20,
                full_snapshots: 2,
                bytes: 1000
            }
        );
        // Three significant digits: within 0.1 %.
        assert!(s.tick_quantile(0.5).abs_diff(2 * MS) <= Duration::from_micros(2));
        assert!(s.tick_max().abs_diff(30 * MS) <= Duration::from_micros(30));

        let next = c.take(t0 + 1500 * MS);
        assert_eq!(next.elapsed, 500 * MS);
        assert_eq!(next.ticks(), 0);
        assert_eq!((next.overruns, next.ticks_over_budget), (0, 0));
        assert_eq!(next.sent, SentCounters::default());
        assert_eq!(next.connected_clients, 2, "a gauge, not a window counter");
        assert_eq!(next.tick_max(), Duration::ZERO);
    }

    #[test]
    fn extreme_durations_are_clamped_not_lost() {
        let c = StatsCollector::new(Instant::now());
        c.record_tick(Duration::ZERO, MS, false, SentCounters::default());
        c.record_tick(
            Duration::from_secs(3600),
            MS,
            false,
            SentCounters::default(),
        );
        let s = c.take(Instant::now());
        assert_eq!(s.ticks(), 2);
        assert_eq!(s.ticks_over_budget, 1);
        assert!(s.tick_max() >= Duration::from_secs(59));
    }
}
