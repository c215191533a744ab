//! Per-room and per-client figures for the fleet console, kept over
//! one-second windows so that the API can answer rates without state of
//! its own.
//!
//! Writers (a room task once per tick, a session once per batch it sends)
//! take one uncontended lock; readers (an admin request) take the same lock
//! briefly. Nothing here is on a path a peer's bytes can make expensive.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::stats::SentCounters;

/// The length of one window.
const WINDOW: Duration = Duration::from_secs(1);
/// Tick durations kept per window at most (a 1000 Hz room fills 1000).
const MAX_TICKS_PER_WINDOW: usize = 4096;

/// One room's last complete window (or the current one, before the first
/// window completes).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct RoomFigures {
    /// Ticks in the window.
    pub(crate) ticks: u64,
    /// Tick duration quantiles and maximum, in microseconds.
    pub(crate) tick_p50_us: u64,
    pub(crate) tick_p99_us: u64,
    pub(crate) tick_max_us: u64,
    /// Ticks that started more than a period late, since the room opened.
    pub(crate) overruns: u64,
    /// Snapshots and bytes queued per second.
    pub(crate) snapshots_per_s: f64,
    pub(crate) bytes_per_s: f64,
}

struct RoomWindow {
    start: Instant,
    tick_us: Vec<u32>,
    sent: SentCounters,
    last: Option<RoomFigures>,
    overruns: u64,
}

/// What one room's task records per tick.
pub(crate) struct RoomStats {
    window: Mutex<RoomWindow>,
}

impl RoomStats {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            window: Mutex::new(RoomWindow {
                start: now,
                tick_us: Vec::new(),
                sent: SentCounters::default(),
                last: None,
                overruns: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RoomWindow> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one tick that ended at `now`.
    pub(crate) fn record(&self, now: Instant, took: Duration, overrun: bool, sent: SentCounters) {
        let mut w = self.lock();
        let elapsed = now.saturating_duration_since(w.start);
        if elapsed >= WINDOW {
            let figures = summarize(&mut w, elapsed);
            w.last = Some(figures);
            w.start = now;
            w.tick_us.clear();
            w.sent = SentCounters::default();
        }
        if w.tick_us.len() < MAX_TICKS_PER_WINDOW {
            w.tick_us
                .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        }
        w.overruns += u64::from(overrun);
        w.sent.snapshots += sent.snapshots;
        w.sent.full_snapshots += sent.full_snapshots;
        w.sent.bytes += sent.bytes;
    }

    /// The last complete window, or the current one if none completed yet.
    pub(crate) fn figures(&self, now: Instant) -> RoomFigures {
        let mut w = self.lock();
        match w.last {
            Some(mut f) => {
                f.overruns = w.overruns;
                f
            }
            None => {
                let elapsed = now.saturating_duration_since(w.start);
                let mut ticks = core::mem::take(&mut w.tick_us);
                let f = summarize_ticks(&mut ticks, w.sent, w.overruns, elapsed);
                w.tick_us = ticks;
                f
            }
        }
    }
}

fn summarize(w: &mut RoomWindow, elapsed: Duration) -> RoomFigures {
    let mut ticks = core::mem::take(&mut w.tick_us);
    let f = summarize_ticks(&mut ticks, w.sent, w.overruns, elapsed);
    w.tick_us = ticks;
    f
}

/// Sorts `ticks` (keeping its allocation) and computes the figures.
fn summarize_ticks(
    ticks: &mut [u32],
    sent: SentCounters,
    overruns: u64,
    elapsed: Duration,
) -> RoomFigures {
    ticks.sort_unstable();
    let q = |q: f64| -> u64 {
        if ticks.is_empty() {
            return 0;
        }
        // Nearest rank.
        let rank = (q * ticks.len() as f64).ceil() as usize;
        u64::from(ticks[rank.clamp(1, ticks.len()) - 1])
    };
    let secs = elapsed.as_secs_f64().max(1e-3);
    RoomFigures {
        ticks: ticks.len() as u64,
        tick_p50_us: q(0.50),
        tick_p99_us: q(0.99),
        tick_max_us: ticks.last().copied().map_or(0, u64::from),
        overruns,
        snapshots_per_s: sent.snapshots as f64 / secs,
        bytes_per_s: sent.bytes as f64 / secs,
    }
}

/// One client's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct ClientFigures {
    /// The last measured round-trip time (server ping to client pong).
    pub(crate) rtt: Option<Duration>,
    /// Snapshots and bytes (all messages) sent per second.
    pub(crate) snapshots_per_s: f64,
    pub(crate) bytes_per_s: f64,
}

struct ClientWindow {
    start: Instant,
    snapshots: u64,
    bytes: u64,
    last: Option<(f64, f64)>,
}

/// What one session records as it sends and measures.
pub(crate) struct ClientStats {
    /// Round-trip time in microseconds; 0 until measured.
    rtt_us: AtomicU64,
    window: Mutex<ClientWindow>,
}

impl ClientStats {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            rtt_us: AtomicU64::new(0),
            window: Mutex::new(ClientWindow {
                start: now,
                snapshots: 0,
                bytes: 0,
                last: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ClientWindow> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a measured round trip.
    pub(crate) fn set_rtt(&self, rtt: Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1);
        self.rtt_us.store(us, Ordering::Relaxed);
    }

    /// Records one batch handed to the connection at `now`: `snapshots`
    /// snapshot messages, `bytes` bytes in all.
    pub(crate) fn record_sent(&self, now: Instant, snapshots: u64, bytes: u64) {
        let mut w = self.lock();
        roll(&mut w, now);
        w.snapshots += snapshots;
        w.bytes += bytes;
    }

    /// The figures of the last complete window (or the current one).
    pub(crate) fn figures(&self, now: Instant) -> ClientFigures {
        let rtt = match self.rtt_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        };
        let mut w = self.lock();
        roll(&mut w, now);
        let (snapshots_per_s, bytes_per_s) = w.last.unwrap_or_else(|| {
            let secs = now
                .saturating_duration_since(w.start)
                .as_secs_f64()
                .max(1e-3);
            (w.snapshots as f64 / secs, w.bytes as f64 / secs)
        });
        ClientFigures {
            rtt,
            snapshots_per_s,
            bytes_per_s,
        }
    }
}

/// Closes the window when it is over (a quiet second closes with zeros).
fn roll(w: &mut ClientWindow, now: Instant) {
    let elapsed = now.saturating_duration_since(w.start);
    if elapsed >= WINDOW {
        let secs = elapsed.as_secs_f64();
        let rates = if elapsed >= 2 * WINDOW {
            // Nothing was recorded for a whole window: the rates are zero.
            (0.0, 0.0)
        } else {
            (w.snapshots as f64 / secs, w.bytes as f64 / secs)
        };
        w.last = Some(rates);
        w.start = now;
        w.snapshots = 0;
        w.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_windows_give_quantiles_and_rates() {
        let t0 = Instant::now();
        let s = RoomStats::new(t0);
        let sent = SentCounters {
            snapshots: 2,
            full_snapshots: 0,
            bytes: 100,
        };
        for i in 1..=100u64 {
            let at = t0 + Duration::from_millis(i * 10 - 5);
            s.record(at, Duration::from_micros(i), i == 50, sent);
        }
        // Still in the first window: the partial figures.
        let f = s.figures(t0 + Duration::from_millis(999));
        assert_eq!(
            (f.ticks, f.tick_p50_us, f.tick_p99_us, f.tick_max_us),
            (100, 50, 99, 100)
        );
        assert_eq!(f.overruns, 1);
        // The next tick closes the window.
        s.record(
            t0 + Duration::from_millis(1000),
            Duration::from_micros(7),
            false,
            sent,
        );
        let f = s.figures(t0 + Duration::from_millis(1001));
        assert_eq!(f.ticks, 100);
        assert!((f.bytes_per_s - 10_000.0).abs() < 1.0, "{f:?}");
        assert!((f.snapshots_per_s - 200.0).abs() < 0.1, "{f:?}");
    }

    #[test]
    fn client_windows_give_rates_and_rtt() {
        let t0 = Instant::now();
        let c = ClientStats::new(t0);
        assert_eq!(c.figures(t0).rtt, None);
        c.set_rtt(Duration::from_millis(12));
        for i in 0..30u64 {
            c.record_sent(t0 + Duration::from_millis(i * 33), 1, 200);
        }
        let f = c.figures(t0 + Duration::from_millis(1000));
        assert_eq!(f.rtt, Some(Duration::from_millis(12)));
        assert!((f.snapshots_per_s - 30.0).abs() < 0.1, "{f:?}");
        assert!((f.bytes_per_s - 6000.0).abs() < 1.0, "{f:?}");
        // A silent client's rates fall to zero.
        let f = c.figures(t0 + Duration::from_millis(3500));
        assert_eq!((f.snapshots_per_s, f.bytes_per_s), (0.0, 0.0));
    }
}
