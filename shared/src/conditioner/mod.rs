//! A seeded link conditioner: a simulated bad network for one direction of one link.
//!
//! [`LinkConditioner`] is a plain sans-IO struct. Packets go in through
//! [`condition`](LinkConditioner::condition) together with the time they were sent,
//! and come out through [`poll`](LinkConditioner::poll) once the caller's clock has
//! reached their delivery time. Time is always an argument (a [`Duration`] since an
//! arbitrary epoch) and all randomness comes from a seeded
//! [`Xoshiro256PlusPlus`], so the same seed and the same inputs give the same
//! outputs on every platform.
//!
//! ```text
//!  condition(p, now) ─► queue limit ─► bandwidth ─► loss ─► latency ± jitter ─► heap ─► poll(now)
//!                      (tail drop)   (serialize)          (+ reorder delay,
//!                                                           + duplicate copy)
//! ```
//!
//! Call order: call `condition` for each packet sent, then `poll(now)` until it
//! returns `None`. A virtual clock can jump straight to
//! [`poll_timeout`](LinkConditioner::poll_timeout), so tests never sleep.
//!
//! The model (all knobs live in [`ConditionerConfig`]):
//!
//! 1. **Queue limit**: if [`max_queue`](ConditionerConfig::max_queue) packets are already
//!    held, the packet is tail-dropped ([`ConditionerStats::dropped_by_queue`]).
//! 2. **Bandwidth**: with a cap, packets are serialized one after another through a
//!    FIFO bottleneck; each takes `size / bandwidth` seconds ([`PacketSize`]).
//! 3. **Loss**: [`LossModel::Uniform`] or the bursty [`LossModel::GilbertElliott`].
//! 4. **Delay**: `latency` plus a uniform offset in `[-jitter, +jitter]`, clamped at
//!    zero; with probability `reorder` an extra `reorder_delay` lets later packets
//!    overtake this one.
//! 5. **Duplication**: with probability `duplicate` a second copy is delivered, with
//!    its own jitter.
//!
//! # Example
//!
//! ```
//! use core::time::Duration;
//! use tickwire_shared::conditioner::{ConditionerConfig, LinkConditioner};
//!
//! let config: ConditionerConfig = "latency=50ms,jitter=5ms,loss=1%".parse()?;
//! let mut link = LinkConditioner::new(config, 42);
//!
//! // Send ten packets, one every 16 ms of virtual time.
//! let mut now = Duration::ZERO;
//! for i in 0..10u8 {
//!     link.condition(vec![i; 32], now);
//!     now += Duration::from_millis(16);
//! }
//!
//! // Jump the virtual clock from one delivery to the next.
//! let mut received = Vec::new();
//! while let Some(at) = link.poll_timeout() {
//!     now = now.max(at);
//!     while let Some(packet) = link.poll(now) {
//!         received.push(packet);
//!     }
//! }
//! assert!(link.is_empty());
//! assert_eq!(received.len() as u64, link.stats().delivered);
//! assert_eq!(link.stats().sent, 10);
//! # Ok::<(), tickwire_shared::conditioner::ConditionerParseError>(())
//! ```
//!
//! # Spec syntax
//!
//! [`ConditionerConfig`] implements [`FromStr`](core::str::FromStr) and [`Display`](core::fmt::Display) (the output
//! parses back to an equal config). A spec is a comma-separated list of `key=value`
//! items; each key may appear once and an omitted key keeps its default.
//!
//! | key | value | example |
//! |---|---|---|
//! | `latency` | duration | `latency=100ms` |
//! | `jitter` | duration | `jitter=10ms` |
//! | `loss` | probability, `none`, or `ge:P_GB:P_BG[:LOSS_GOOD:LOSS_BAD]` | `loss=2%`, `loss=ge:1%:25%:0%:90%` |
//! | `dup` (or `duplicate`) | probability | `dup=1%` |
//! | `reorder` | probability | `reorder=5%` |
//! | `reorder-delay` | duration | `reorder-delay=30ms` |
//! | `bandwidth` | rate, or `none` | `bandwidth=256kbps`, `bandwidth=32KB/s` |
//! | `queue` | packet count | `queue=1024` |
//!
//! - A **duration** is a decimal number with a unit `ns`, `us`, `ms` or `s`
//!   (`1.5ms`); a bare `0` is also accepted.
//! - A **probability** is a percentage (`2%`, `0.5%`) or a fraction (`0.02`), within
//!   `0..=1`.
//! - In `ge:P_GB:P_BG:LOSS_GOOD:LOSS_BAD` the four probabilities are: good→bad
//!   transition, bad→good transition, loss in the good state, loss in the bad state.
//!   The last two default to `0` and `1` (the classic Gilbert model).
//! - A **rate** is a decimal number with a unit: bits per second `bps`, `kbps`, `Mbps`,
//!   `Gbps` (also written `bit/s`, `kbit/s`, …), or bytes per second `B/s`, `KB/s`,
//!   `MB/s`, `GB/s` (also `Bps`, `KBps`, …). Prefixes `k`/`M`/`G` are powers of 1000
//!   (case-insensitive); `Ki`/`Mi`/`Gi` are powers of 1024. Bits are rounded down to
//!   whole bytes; the result must be at least 1 byte per second.

use core::cmp::Ordering;
use core::time::Duration;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::sync::Arc;

use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

mod config;

pub use config::{ConditionerConfig, ConditionerParseError, LossModel};

const NANOS_PER_SEC: u128 = 1_000_000_000;
const DEFAULT_REORDER_DELAY: Duration = Duration::from_millis(20);
const DEFAULT_MAX_QUEUE: usize = 1024;

// ---------------------------------------------------------------------------
// Packet size
// ---------------------------------------------------------------------------

/// The size in bytes of a packet, used by the bandwidth cap.
///
/// Implemented for byte containers (`[u8]`, `[u8; N]`, `Vec<u8>`, `str`, `String`)
/// and, transparently, for references and `Box`/`Rc`/`Arc` of any implementor.
/// `Arc<[u8]>` is a good packet type when duplication should not copy bytes.
pub trait PacketSize {
    /// The number of bytes this packet occupies on the wire.
    fn packet_size(&self) -> usize;
}

impl PacketSize for [u8] {
    fn packet_size(&self) -> usize {
        self.len()
    }
}

impl<const N: usize> PacketSize for [u8; N] {
    fn packet_size(&self) -> usize {
        N
    }
}

impl PacketSize for Vec<u8> {
    fn packet_size(&self) -> usize {
        self.len()
    }
}

impl PacketSize for str {
    fn packet_size(&self) -> usize {
        self.len()
    }
}

impl PacketSize for String {
    fn packet_size(&self) -> usize {
        self.len()
    }
}

impl<T: PacketSize + ?Sized> PacketSize for &T {
    fn packet_size(&self) -> usize {
        (**self).packet_size()
    }
}

impl<T: PacketSize + ?Sized> PacketSize for Box<T> {
    fn packet_size(&self) -> usize {
        (**self).packet_size()
    }
}

impl<T: PacketSize + ?Sized> PacketSize for Rc<T> {
    fn packet_size(&self) -> usize {
        (**self).packet_size()
    }
}

impl<T: PacketSize + ?Sized> PacketSize for Arc<T> {
    fn packet_size(&self) -> usize {
        (**self).packet_size()
    }
}

// ---------------------------------------------------------------------------
// Conditioner
// ---------------------------------------------------------------------------

/// Counters kept by a [`LinkConditioner`].
///
/// At any time, `sent + duplicated == dropped + dropped_by_queue + delivered + len()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ConditionerStats {
    /// Packets passed to [`condition`](LinkConditioner::condition).
    pub sent: u64,
    /// Packets lost by the [`LossModel`].
    pub dropped: u64,
    /// Extra copies created by duplication.
    pub duplicated: u64,
    /// Packets given the extra reorder delay. (Jitter can reorder packets too; those
    /// are not counted here.)
    pub reordered: u64,
    /// Packets (copies included) returned by [`poll`](LinkConditioner::poll).
    pub delivered: u64,
    /// Packets (copies included) dropped because the conditioner already held
    /// [`max_queue`](ConditionerConfig::max_queue) packets.
    pub dropped_by_queue: u64,
    /// Losses repaired by retransmission in [stream mode](LinkConditioner::new_stream)
    /// (each repair of one packet counts once; the packet itself is delivered).
    pub retransmitted: u64,
}

/// A packet waiting in the heap, ordered so that the earliest `(deliver_at, seq)`
/// is the heap's maximum.
#[derive(Debug)]
struct Entry<P> {
    deliver_at: Duration,
    seq: u64,
    packet: P,
}

impl<P> Entry<P> {
    fn key(&self) -> (Duration, u64) {
        (self.deliver_at, self.seq)
    }
}

impl<P> PartialEq for Entry<P> {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl<P> Eq for Entry<P> {}

impl<P> PartialOrd for Entry<P> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<P> Ord for Entry<P> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

/// A seeded, deterministic simulation of one direction of a bad network link.
///
/// See the [module docs](self) for the model, the call order and an example.
#[derive(Debug)]
pub struct LinkConditioner<P> {
    config: ConditionerConfig,
    rng: Xoshiro256PlusPlus,
    heap: BinaryHeap<Entry<P>>,
    next_seq: u64,
    /// When the bandwidth bottleneck finishes serializing the last accepted packet.
    link_free_at: Duration,
    /// Gilbert–Elliott state: `true` while in the bad state.
    in_bad_state: bool,
    /// Stream mode (see [`LinkConditioner::new_stream`]).
    stream: bool,
    /// Stream mode: the latest delivery time handed out, so that nothing overtakes.
    last_delivery: Duration,
    stats: ConditionerStats,
}

impl<P> LinkConditioner<P> {
    /// A conditioner with this config (clamped into range) and RNG seed.
    #[must_use]
    pub fn new(config: ConditionerConfig, seed: u64) -> Self {
        Self {
            config: config.sanitized(),
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            heap: BinaryHeap::new(),
            next_seq: 0,
            link_free_at: Duration::ZERO,
            in_bad_state: false,
            stream: false,
            last_delivery: Duration::ZERO,
            stats: ConditionerStats::default(),
        }
    }

    /// A conditioner for a **reliable, ordered byte stream** such as TCP (a
    /// WebSocket) or a QUIC stream, on the same network as [`new`](Self::new).
    ///
    /// Nothing is lost: a packet the loss model drops is retransmitted and
    /// arrives one round trip (`2 × latency`, at least 1 ms) later per loss,
    /// as with TCP's fast retransmit. Nothing is reordered or duplicated: a
    /// packet is never delivered before one sent earlier, so a repaired loss
    /// holds back every packet behind it (head-of-line blocking). Latency,
    /// jitter, the bandwidth cap and the queue limit apply as in datagram mode.
    #[must_use]
    pub fn new_stream(config: ConditionerConfig, seed: u64) -> Self {
        let mut link = Self::new(config, seed);
        link.stream = true;
        link
    }

    /// Whether this conditioner models a stream ([`new_stream`](Self::new_stream)).
    #[must_use]
    pub fn is_stream(&self) -> bool {
        self.stream
    }

    /// The (clamped) config in use.
    #[must_use]
    pub fn config(&self) -> &ConditionerConfig {
        &self.config
    }

    /// Pops the packet with the earliest delivery time if that time is `<= now`.
    /// Packets with equal delivery times come out in the order they were accepted.
    #[must_use]
    pub fn poll(&mut self, now: Duration) -> Option<P> {
        if self.heap.peek()?.deliver_at > now {
            return None;
        }
        let entry = self.heap.pop()?;
        self.stats.delivered = self.stats.delivered.saturating_add(1);
        Some(entry.packet)
    }

    /// The earliest delivery time of a held packet, or `None` if empty. A virtual
    /// clock can jump to it and then [`poll`](Self::poll).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.heap.peek().map(|e| e.deliver_at)
    }

    /// The number of packets (copies included) held and not yet delivered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no packet is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> ConditionerStats {
        self.stats
    }

    fn unit(&mut self) -> f64 {
        // 53 random bits → uniform in [0, 1).
        (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    fn chance(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.unit() < probability
    }

    /// Uniform in `0..=max`.
    fn uniform_inclusive(&mut self, max: u64) -> u64 {
        let x = self.rng.next_u64();
        match max.checked_add(1) {
            None => x,
            // Widening multiply; the bias is at most `max / 2^64`.
            Some(range) => ((u128::from(x) * u128::from(range)) >> 64) as u64,
        }
    }

    fn is_lost(&mut self) -> bool {
        match self.config.loss {
            LossModel::None => false,
            LossModel::Uniform(p) => self.chance(p),
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_in_good,
                loss_in_bad,
            } => {
                let (loss, leave) = if self.in_bad_state {
                    (loss_in_bad, p_bad_to_good)
                } else {
                    (loss_in_good, p_good_to_bad)
                };
                let lost = self.chance(loss);
                if self.chance(leave) {
                    self.in_bad_state = !self.in_bad_state;
                }
                lost
            }
        }
    }

    /// `latency` plus a uniform offset in `[-jitter, +jitter]`, clamped at zero.
    fn propagation_delay(&mut self) -> Duration {
        let latency = self.config.latency.as_nanos();
        let jitter = u64::try_from(self.config.jitter.as_nanos())
            .unwrap_or(u64::MAX)
            .min(u64::MAX / 2);
        if jitter == 0 {
            return self.config.latency;
        }
        let offset = u128::from(self.uniform_inclusive(jitter * 2));
        duration_from_nanos((latency + offset).saturating_sub(u128::from(jitter)))
    }

    fn push(&mut self, deliver_at: Duration, packet: P) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.heap.push(Entry {
            deliver_at,
            seq,
            packet,
        });
    }

    fn queue_full(&mut self) -> bool {
        if self.heap.len() >= self.config.max_queue {
            self.stats.dropped_by_queue = self.stats.dropped_by_queue.saturating_add(1);
            true
        } else {
            false
        }
    }
}

impl<P: PacketSize + Clone> LinkConditioner<P> {
    /// Accepts a packet sent at `now` and decides whether it is lost, duplicated or
    /// reordered, and when each copy is delivered.
    pub fn condition(&mut self, packet: P, now: Duration) {
        self.stats.sent = self.stats.sent.saturating_add(1);
        if self.queue_full() {
            return;
        }

        // Serialization through the bandwidth bottleneck (FIFO).
        let departs_at = match self.config.bandwidth_bytes_per_sec {
            None => now,
            Some(rate) => {
                let start = now.max(self.link_free_at);
                let rate = u128::from(rate.max(1));
                let bytes = packet.packet_size() as u128;
                let tx_nanos = (bytes.saturating_mul(NANOS_PER_SEC)).div_ceil(rate);
                self.link_free_at = start.saturating_add(duration_from_nanos(tx_nanos));
                self.link_free_at
            }
        };

        if self.stream {
            self.condition_stream(packet, departs_at);
            return;
        }

        if self.is_lost() {
            self.stats.dropped = self.stats.dropped.saturating_add(1);
            return;
        }

        let mut deliver_at = departs_at.saturating_add(self.propagation_delay());
        if self.chance(self.config.reorder) {
            self.stats.reordered = self.stats.reordered.saturating_add(1);
            deliver_at = deliver_at.saturating_add(self.config.reorder_delay);
        }

        if self.chance(self.config.duplicate) {
            self.stats.duplicated = self.stats.duplicated.saturating_add(1);
            let copy_at = departs_at.saturating_add(self.propagation_delay());
            self.push(deliver_at, packet.clone());
            if !self.queue_full() {
                self.push(copy_at, packet);
            }
        } else {
            self.push(deliver_at, packet);
        }
    }
}

impl<P> LinkConditioner<P> {
    /// Stream mode: losses become retransmission delays; delivery stays in order.
    fn condition_stream(&mut self, packet: P, departs_at: Duration) {
        /// A retransmission can be lost again; give up counting after this many.
        const MAX_RETRANSMISSIONS: u32 = 16;
        let round_trip = self
            .config
            .latency
            .saturating_mul(2)
            .max(Duration::from_millis(1));
        let mut deliver_at = departs_at.saturating_add(self.propagation_delay());
        let mut tries = 0;
        while tries < MAX_RETRANSMISSIONS && self.is_lost() {
            tries += 1;
            self.stats.retransmitted = self.stats.retransmitted.saturating_add(1);
            deliver_at = deliver_at.saturating_add(round_trip);
        }
        deliver_at = deliver_at.max(self.last_delivery);
        self.last_delivery = deliver_at;
        self.push(deliver_at, packet);
    }
}

fn duration_from_nanos(nanos: u128) -> Duration {
    match u64::try_from(nanos / NANOS_PER_SEC) {
        Ok(secs) => Duration::new(secs, (nanos % NANOS_PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use super::config::strategies::config;

    const MS: Duration = Duration::from_millis(1);

    /// A test packet that remembers its id and send time.
    #[derive(Clone, Debug, PartialEq)]
    struct Pkt {
        id: u64,
        sent_at: Duration,
        size: usize,
    }

    impl PacketSize for Pkt {
        fn packet_size(&self) -> usize {
            self.size
        }
    }

    fn pkt(id: u64, sent_at: Duration) -> Pkt {
        Pkt {
            id,
            sent_at,
            size: 100,
        }
    }

    /// Drains everything by jumping a virtual clock; returns `(packet, poll time)`.
    fn drain(link: &mut LinkConditioner<Pkt>, mut now: Duration) -> Vec<(Pkt, Duration)> {
        let mut out = Vec::new();
        let mut steps = 0;
        while let Some(at) = link.poll_timeout() {
            steps += 1;
            assert!(steps < 1_000_000, "drain did not terminate");
            now = now.max(at);
            while let Some(p) = link.poll(now) {
                out.push((p, now));
            }
        }
        out
    }

    #[test]
    fn stream_mode_loses_nothing_keeps_order_and_delays_losses_by_a_round_trip() {
        let config = ConditionerConfig::default()
            .with_latency(50 * MS)
            .with_jitter(5 * MS)
            .with_uniform_loss(0.1)
            .with_duplicate(0.5)
            .with_reorder(0.5);
        let mut link = LinkConditioner::new_stream(config, 7);
        assert!(link.is_stream());
        for id in 0..1000 {
            let at = 16 * MS * u32::try_from(id).unwrap();
            link.condition(pkt(id, at), at);
        }
        let out = drain(&mut link, Duration::ZERO);
        let ids: Vec<u64> = out.iter().map(|(p, _)| p.id).collect();
        assert_eq!(
            ids,
            (0..1000).collect::<Vec<_>>(),
            "all delivered, in order"
        );
        let stats = link.stats();
        assert_eq!(
            (stats.dropped, stats.duplicated, stats.reordered),
            (0, 0, 0)
        );
        assert!(
            (60..=150).contains(&stats.retransmitted),
            "about 10 % retransmitted: {}",
            stats.retransmitted
        );
        // A repaired loss arrives at least a round trip late, and holds back
        // the packets behind it.
        let late = out
            .iter()
            .filter(|(p, at)| *at - p.sent_at >= 45 * MS + 100 * MS)
            .count();
        assert!(late as u64 >= stats.retransmitted, "{late} late packets");
        assert_eq!(stats.sent, stats.delivered);
    }

    /// Sends `n` packets, one per `gap`, polling as the clock advances.
    fn run(
        config: ConditionerConfig,
        seed: u64,
        n: u64,
        gap: Duration,
    ) -> (Vec<(Pkt, Duration)>, LinkConditioner<Pkt>) {
        let mut link = LinkConditioner::new(config, seed);
        let mut out = Vec::new();
        let mut now = Duration::ZERO;
        for id in 0..n {
            while let Some(p) = link.poll(now) {
                out.push((p, now));
            }
            link.condition(pkt(id, now), now);
            now += gap;
        }
        out.extend(drain(&mut link, now));
        (out, link)
    }

    fn assert_accounted(link: &LinkConditioner<Pkt>) {
        let s = link.stats();
        assert_eq!(
            s.sent + s.duplicated,
            s.dropped + s.dropped_by_queue + s.delivered + link.len() as u64,
            "{s:?}"
        );
    }

    #[test]
    fn perfect_link_delivers_in_order_at_send_time() {
        let mut link = LinkConditioner::new(ConditionerConfig::default(), 1);
        for id in 0..100 {
            let now = MS * id as u32;
            link.condition(pkt(id, now), now);
            assert_eq!(link.poll_timeout(), Some(now));
            assert_eq!(link.poll(now).map(|p| p.id), Some(id));
            assert_eq!(link.poll(now), None);
        }
        // Several packets at the same instant come out in send order.
        for id in 0..10 {
            link.condition(pkt(id, Duration::ZERO), Duration::ZERO);
        }
        let ids: Vec<u64> = std::iter::from_fn(|| link.poll(Duration::ZERO))
            .map(|p| p.id)
            .collect();
        assert_eq!(ids, (0..10).collect::<Vec<_>>());
        let s = link.stats();
        assert_eq!((s.sent, s.delivered, s.dropped), (110, 110, 0));
        assert!(link.is_empty());
    }

    #[test]
    fn latency_delays_by_exactly_latency() {
        let config = ConditionerConfig::default().with_latency(Duration::from_millis(100));
        let mut link = LinkConditioner::new(config, 7);
        let sent = Duration::from_millis(5);
        link.condition(pkt(0, sent), sent);
        let due = sent + Duration::from_millis(100);
        assert_eq!(link.poll_timeout(), Some(due));
        assert_eq!(link.poll(due - Duration::from_nanos(1)), None);
        assert_eq!(link.len(), 1);
        assert_eq!(link.poll(due).map(|p| p.id), Some(0));
    }

    #[test]
    fn uniform_loss_rate_is_within_band() {
        let config = ConditionerConfig::default().with_uniform_loss(0.10);
        let (out, link) = run(config, 42, 100_000, Duration::ZERO);
        let rate = link.stats().dropped as f64 / 100_000.0;
        assert!((0.095..=0.105).contains(&rate), "loss rate {rate}");
        assert_eq!(out.len() as u64 + link.stats().dropped, 100_000);
        assert_accounted(&link);
    }

    /// Mean length of runs of consecutive lost packets (ids missing from delivery).
    fn loss_runs(delivered: &[(Pkt, Duration)], n: u64) -> (u64, f64) {
        let mut got = vec![false; n as usize];
        for (p, _) in delivered {
            got[p.id as usize] = true;
        }
        let (mut lost, mut runs, mut in_run) = (0u64, 0u64, false);
        for g in got {
            if !g {
                lost += 1;
                if !in_run {
                    runs += 1;
                }
            }
            in_run = !g;
        }
        (lost, lost as f64 / runs.max(1) as f64)
    }

    #[test]
    fn gilbert_elliott_loses_in_bursts_at_stationary_rate() {
        let n = 200_000;
        let config = ConditionerConfig::default().with_gilbert_elliott(0.01, 0.25, 0.0, 0.9);
        let expected = config.loss.stationary_loss_rate();
        assert!((expected - 0.9 * 0.01 / 0.26).abs() < 1e-12);
        let (out, link) = run(config, 3, n, Duration::ZERO);
        let (lost, mean_burst) = loss_runs(&out, n);
        assert_eq!(lost, link.stats().dropped);
        let rate = lost as f64 / n as f64;
        assert!(
            (expected * 0.85..=expected * 1.15).contains(&rate),
            "rate {rate} vs {expected}"
        );
        assert!(mean_burst > 1.5, "mean burst {mean_burst}");

        // Uniform loss at the same rate is not bursty.
        let uniform = ConditionerConfig::default().with_uniform_loss(expected);
        let (out, _) = run(uniform, 3, n, Duration::ZERO);
        let (_, uniform_burst) = loss_runs(&out, n);
        assert!(uniform_burst < 1.1, "uniform burst {uniform_burst}");
    }

    #[test]
    fn duplication_and_reordering_match_probabilities() {
        let n = 10_000;
        let config = ConditionerConfig::default()
            .with_latency(Duration::from_millis(50))
            .with_duplicate(0.05)
            .with_reorder(0.10)
            .with_reorder_delay(Duration::from_millis(20))
            .with_max_queue(usize::MAX);
        let (out, link) = run(config, 11, n, MS);
        let s = link.stats();
        assert!((430..=570).contains(&s.duplicated), "{s:?}");
        assert!((900..=1100).contains(&s.reordered), "{s:?}");
        assert_eq!(out.len() as u64, n + s.duplicated);
        // Every id arrives, some twice.
        let mut counts = vec![0u32; n as usize];
        for (p, _) in &out {
            counts[p.id as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c == 1 || c == 2));
        // Some packets arrive after a later-sent packet.
        let mut max_id = 0;
        let mut overtaken = 0;
        for (p, _) in &out {
            if p.id < max_id {
                overtaken += 1;
            }
            max_id = max_id.max(p.id);
        }
        // With zero jitter only reordered packets are overtaken; the last few sent
        // have nothing left to overtake them.
        assert!(
            overtaken <= s.reordered && overtaken + 25 >= s.reordered,
            "overtaken {overtaken}, {s:?}"
        );
        assert_accounted(&link);
    }

    #[test]
    fn bandwidth_cap_serializes_packets() {
        let config = ConditionerConfig::default().with_bandwidth(Some(100_000));
        let mut link = LinkConditioner::new(config, 5);
        for id in 0..100 {
            link.condition(vec![id as u8; 1_000], Duration::ZERO);
        }
        // Each 1,000-byte packet takes 10 ms at 100 KB/s.
        assert_eq!(link.poll_timeout(), Some(Duration::from_millis(10)));
        let mut now = Duration::ZERO;
        let mut count = 0;
        while let Some(at) = link.poll_timeout() {
            now = at;
            while link.poll(now).is_some() {
                count += 1;
            }
        }
        assert_eq!(count, 100);
        assert_eq!(now, Duration::from_secs(1));
        // The link is idle again: a later packet only waits for its own serialization.
        let later = Duration::from_secs(5);
        link.condition(vec![0; 500], later);
        assert_eq!(link.poll_timeout(), Some(later + Duration::from_millis(5)));
    }

    #[test]
    fn queue_overflow_drops_and_counts() {
        let config = ConditionerConfig::default()
            .with_latency(Duration::from_millis(100))
            .with_max_queue(10);
        let mut link = LinkConditioner::new(config, 9);
        for id in 0..25 {
            link.condition(pkt(id, Duration::ZERO), Duration::ZERO);
        }
        assert_eq!(link.len(), 10);
        assert_eq!(link.stats().dropped_by_queue, 15);
        let out = drain(&mut link, Duration::ZERO);
        let ids: Vec<u64> = out.iter().map(|(p, _)| p.id).collect();
        assert_eq!(ids, (0..10).collect::<Vec<_>>());
        // Room again after draining.
        link.condition(pkt(99, Duration::ZERO), Duration::ZERO);
        assert_eq!(link.len(), 1);
        assert_accounted(&link);
    }

    fn noisy_config() -> ConditionerConfig {
        ConditionerConfig::default()
            .with_latency(Duration::from_millis(40))
            .with_jitter(Duration::from_millis(15))
            .with_uniform_loss(0.1)
            .with_duplicate(0.1)
            .with_reorder(0.1)
            .with_bandwidth(Some(50_000))
    }

    #[test]
    fn same_seed_same_output_different_seed_differs() {
        let trace = |seed| {
            let (out, link) = run(noisy_config(), seed, 2_000, MS);
            let ids: Vec<(u64, Duration)> = out.into_iter().map(|(p, t)| (p.id, t)).collect();
            (ids, link.stats())
        };
        let (a, stats_a) = trace(1234);
        let (b, stats_b) = trace(1234);
        let (c, _) = trace(1235);
        assert_eq!(a, b);
        assert_eq!(stats_a, stats_b);
        assert_ne!(a, c);
    }
    proptest! {
        #[test]
        fn never_delivers_early_and_never_panics(
            config in config(),
            seed in any::<u64>(),
            sends in proptest::collection::vec((0..50_000_000u64, 0..4_000usize), 0..200),
        ) {
            let floor = config.latency.saturating_sub(config.jitter);
            let mut link = LinkConditioner::new(config, seed);
            let mut now = Duration::ZERO;
            let check = |p: Pkt, now: Duration| {
                prop_assert!(p.sent_at.saturating_add(floor) <= now, "{p:?} at {now:?}");
                Ok(())
            };
            for (id, (gap, size)) in sends.into_iter().enumerate() {
                now = now.saturating_add(Duration::from_nanos(gap));
                while let Some(p) = link.poll(now) {
                    check(p, now)?;
                }
                if let Some(next) = link.poll_timeout() {
                    prop_assert!(next > now);
                }
                link.condition(Pkt { id: id as u64, sent_at: now, size }, now);
            }
            let mut steps = 0;
            while let Some(at) = link.poll_timeout() {
                steps += 1;
                prop_assert!(steps <= 1_000);
                now = now.max(at);
                while let Some(p) = link.poll(now) {
                    check(p, now)?;
                }
            }
            assert_accounted(&link);
        }
    }
}
