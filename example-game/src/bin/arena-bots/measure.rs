//! What `arena-bots` measures and reports: the counters and histograms all
//! bots share, each connection's [`Watch`], and the progress line.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arena::{EntityKind, EntityState};
use hdrhistogram::Histogram;
use tickwire_client::ClientWorld;
use tokio::time::Instant;

/// How the report defines staleness.
pub(crate) const STALENESS: &str = "staleness: for each applied snapshot, (arrival time - tick x tick period) \
    minus the smallest such value of the same connection: how much older than on the \
    connection's best-case path a snapshot's state is when the bot applies it";

/// Every this many snapshots, a bot compares the snapshot with the previous
/// one to count the entities that changed (sampling keeps the cost low).
pub(crate) const CHANGE_SAMPLE_EVERY: u64 = 16;

/// Staleness samples kept per connection (about 73 min at 60 Hz).
pub(crate) const MAX_STALENESS_SAMPLES: usize = 1 << 18;

/// Counters shared by all bots (the progress line reads them). Those marked
/// "measured" count only after the warm-up.
pub(crate) struct Counters {
    /// The start of the run: the bots' common clock for staleness.
    pub(crate) epoch: Instant,
    /// When measuring starts.
    pub(crate) measure_from: Instant,
    pub(crate) connected_now: AtomicU64,
    pub(crate) connects: AtomicU64,
    /// Connects after the warm-up.
    pub(crate) measured_connects: AtomicU64,
    pub(crate) failed: AtomicU64,
    /// Measured: snapshots applied, and of them full ones.
    pub(crate) snapshots: AtomicU64,
    pub(crate) full_snapshots: AtomicU64,
    /// Measured: WebSocket payload bytes received.
    pub(crate) bytes: AtomicU64,
    /// Measured: entities in applied snapshots.
    pub(crate) entities: AtomicU64,
    /// Measured, sampled: snapshots compared with their predecessor, the
    /// entities in them, those that changed, and the NPCs among them.
    pub(crate) sampled: AtomicU64,
    pub(crate) sampled_entities: AtomicU64,
    pub(crate) sampled_changed: AtomicU64,
    pub(crate) sampled_npcs: AtomicU64,
    /// Every snapshot and byte (warm-up included), for the progress line.
    pub(crate) all_snapshots: AtomicU64,
    pub(crate) all_bytes: AtomicU64,
    /// Measured: time connected, in µs, summed over bots.
    pub(crate) connected_us: AtomicU64,
    pub(crate) desyncs: AtomicU64,
    pub(crate) abnormal_closes: AtomicU64,
    pub(crate) resumed: AtomicU64,
    /// Sessions lost under a `--rematchmake` bot, which then matchmade again.
    pub(crate) rematchmakes: AtomicU64,
    pub(crate) errors: Mutex<Vec<String>>,
    pub(crate) hist: Mutex<Histograms>,
}

impl Counters {
    pub(crate) fn new(epoch: Instant, measure_from: Instant) -> Self {
        Self {
            epoch,
            measure_from,
            connected_now: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            measured_connects: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            full_snapshots: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            entities: AtomicU64::new(0),
            sampled: AtomicU64::new(0),
            sampled_entities: AtomicU64::new(0),
            sampled_changed: AtomicU64::new(0),
            sampled_npcs: AtomicU64::new(0),
            all_snapshots: AtomicU64::new(0),
            all_bytes: AtomicU64::new(0),
            connected_us: AtomicU64::new(0),
            desyncs: AtomicU64::new(0),
            abnormal_closes: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
            rematchmakes: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
            hist: Mutex::new(Histograms::default()),
        }
    }

    pub(crate) fn error(&self, msg: String) {
        let mut e = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if e.len() < 10 {
            e.push(msg);
        }
    }

    pub(crate) fn measuring(&self, now: Instant) -> bool {
        now >= self.measure_from
    }

    pub(crate) fn hist(&self) -> std::sync::MutexGuard<'_, Histograms> {
        self.hist.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds the measured part of a connection that lasted `from..to`.
    pub(crate) fn connected(&self, from: Instant, to: Instant) {
        let d = to.saturating_duration_since(from.max(self.measure_from));
        self.connected_us.fetch_add(d.as_micros() as u64, Relaxed);
    }
}

/// The histograms of all bots (one set, shared: a set per bot would cost
/// hundreds of KiB per bot).
pub(crate) struct Histograms {
    /// Snapshot inter-arrival time, µs.
    pub(crate) interval: Histogram<u64>,
    /// |inter-arrival − nominal interval|, µs.
    pub(crate) jitter: Histogram<u64>,
    /// Input sent → first snapshot acknowledging it, µs.
    pub(crate) ack_latency: Histogram<u64>,
    /// See [`STALENESS`], µs.
    pub(crate) staleness: Histogram<u64>,
}

impl Default for Histograms {
    fn default() -> Self {
        Self {
            interval: histogram(),
            jitter: histogram(),
            ack_latency: histogram(),
            staleness: histogram(),
        }
    }
}

pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Counts the entities the newest snapshot changed (new ones included) and
/// the NPCs it shows.
pub(crate) fn changed_entities(world: &ClientWorld<EntityState>) -> (u64, u64) {
    let changes = world.changes();
    let changed = (changes.changed.len() + changes.added.len()) as u64;
    let npcs = world
        .iter()
        .filter(|(_, s)| s.kind == EntityKind::Npc)
        .count() as u64;
    (changed, npcs)
}

pub(crate) async fn progress_lines(c: Arc<Counters>, start: Instant, stop: Instant) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let (mut snaps, mut bytes) = (0, 0);
    loop {
        tick.tick().await;
        let (s, b) = (c.all_snapshots.load(Relaxed), c.all_bytes.load(Relaxed));
        eprintln!(
            "[{:>4.0}s] connected {:>5}  failed {:>4}  snapshots/s {:>7}  KB/s {:>9.1}{}",
            start
                .elapsed()
                .as_secs_f64()
                .min((stop - start).as_secs_f64()),
            c.connected_now.load(Relaxed),
            c.failed.load(Relaxed),
            s - snaps,
            (b - bytes) as f64 / 1024.0,
            match c.desyncs.load(Relaxed) {
                0 => String::new(),
                n => format!("  DESYNC {n}"),
            } + if c.measuring(Instant::now()) {
                ""
            } else {
                "  (warm-up)"
            }
        );
        (snaps, bytes) = (s, b);
    }
}

/// What one connection measured of its snapshots, before it is added to
/// the shared counters.
pub(crate) struct Watch {
    pub(crate) nominal: Duration,
    pub(crate) tick_period_us: f64,
    pub(crate) last_snapshot: Option<Instant>,
    /// (arrival − tick × period) in µs, measured snapshots only.
    pub(crate) staleness: Vec<f64>,
    /// The smallest (arrival − tick × period) of the connection.
    pub(crate) best: f64,
    pub(crate) applied: u64,
}

impl Watch {
    /// Records the measured part of the staleness samples.
    pub(crate) fn finish(self, c: &Counters) {
        if self.staleness.is_empty() {
            return;
        }
        let mut h = c.hist();
        for v in self.staleness {
            h.staleness
                .saturating_record(((v - self.best).round() as u64).max(1));
        }
    }
}

/// Adds one applied snapshot (after the warm-up) to the counters.
#[allow(clippy::too_many_arguments)]
pub(crate) fn measure_snapshot(
    c: &Counters,
    i: u32,
    watch: &mut Watch,
    now: Instant,
    age: f64,
    world: &ClientWorld<EntityState>,
    last_input: u32,
    sent: &mut VecDeque<(u32, Instant)>,
) {
    c.snapshots.fetch_add(1, Relaxed);
    c.entities.fetch_add(world.len() as u64, Relaxed);
    if watch.staleness.len() < MAX_STALENESS_SAMPLES {
        watch.staleness.push(age);
    }
    // Each bot samples different snapshots of the cycle.
    if watch.applied > 1 && (watch.applied + u64::from(i)).is_multiple_of(CHANGE_SAMPLE_EVERY) {
        let (changed, npcs) = changed_entities(world);
        c.sampled.fetch_add(1, Relaxed);
        c.sampled_entities.fetch_add(world.len() as u64, Relaxed);
        c.sampled_changed.fetch_add(changed, Relaxed);
        c.sampled_npcs.fetch_add(npcs, Relaxed);
    }
    let us = |d: Duration| (d.as_micros() as u64).max(1);
    let mut h = c.hist();
    if let Some(prev) = watch.last_snapshot {
        let dt = now - prev;
        h.interval.saturating_record(us(dt));
        h.jitter.saturating_record(us(dt.abs_diff(watch.nominal)));
    }
    while let Some(&(seq, at)) = sent.front() {
        if seq > last_input {
            break;
        }
        h.ack_latency.saturating_record(us(now - at));
        sent.pop_front();
    }
}
