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
//! [`ConditionerConfig`] implements [`FromStr`] and [`Display`](fmt::Display) (the output
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
use core::fmt;
use core::str::FromStr;
use core::time::Duration;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::sync::Arc;

use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

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
// Configuration
// ---------------------------------------------------------------------------

/// How packets are lost.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[non_exhaustive]
pub enum LossModel {
    /// No packet is lost. The default.
    #[default]
    None,
    /// Each packet is lost independently with this probability (`0..=1`).
    Uniform(f64),
    /// The Gilbert–Elliott two-state Markov model, which loses packets in bursts.
    ///
    /// The link starts in the good state. For each packet, the loss probability of
    /// the current state applies, and then the state changes with the transition
    /// probability. The long-run loss rate is
    /// [`stationary_loss_rate`](LossModel::stationary_loss_rate).
    GilbertElliott {
        /// Probability of moving from the good to the bad state after a packet.
        p_good_to_bad: f64,
        /// Probability of moving from the bad to the good state after a packet.
        p_bad_to_good: f64,
        /// Probability that a packet is lost while in the good state.
        loss_in_good: f64,
        /// Probability that a packet is lost while in the bad state.
        loss_in_bad: f64,
    },
}

impl LossModel {
    /// This model with every probability clamped to `0..=1` (`NaN` becomes `0`).
    #[must_use]
    pub fn clamped(self) -> Self {
        match self {
            Self::None => Self::None,
            Self::Uniform(p) => Self::Uniform(clamp_probability(p)),
            Self::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_in_good,
                loss_in_bad,
            } => Self::GilbertElliott {
                p_good_to_bad: clamp_probability(p_good_to_bad),
                p_bad_to_good: clamp_probability(p_bad_to_good),
                loss_in_good: clamp_probability(loss_in_good),
                loss_in_bad: clamp_probability(loss_in_bad),
            },
        }
    }

    /// The long-run fraction of packets lost by this model (after clamping).
    ///
    /// For Gilbert–Elliott this is `π_good · loss_in_good + π_bad · loss_in_bad` with
    /// `π_bad = p_good_to_bad / (p_good_to_bad + p_bad_to_good)`; if both transition
    /// probabilities are zero the link stays in the good state.
    #[must_use]
    pub fn stationary_loss_rate(&self) -> f64 {
        match self.clamped() {
            Self::None => 0.0,
            Self::Uniform(p) => p,
            Self::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_in_good,
                loss_in_bad,
            } => {
                let total = p_good_to_bad + p_bad_to_good;
                let pi_bad = if total > 0.0 {
                    p_good_to_bad / total
                } else {
                    0.0
                };
                (1.0 - pi_bad) * loss_in_good + pi_bad * loss_in_bad
            }
        }
    }
}

/// The knobs of a [`LinkConditioner`]. [`Default`] is a perfect link.
///
/// The struct is `#[non_exhaustive]`: build it from [`Default`] with the `with_*`
/// methods (which clamp their arguments), or parse a spec string (see the
/// [module docs](self)). Fields assigned directly are clamped by
/// [`LinkConditioner::new`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ConditionerConfig {
    /// One-way base delay added to every packet. Default: `0`.
    pub latency: Duration,
    /// Each packet's delay is `latency` plus a uniform offset in `[-jitter, +jitter]`,
    /// clamped at zero. Default: `0`.
    pub jitter: Duration,
    /// How packets are lost. Default: [`LossModel::None`].
    pub loss: LossModel,
    /// Probability (`0..=1`) that a delivered packet is delivered twice; the second
    /// copy gets its own jitter. Default: `0`.
    pub duplicate: f64,
    /// Probability (`0..=1`) that a packet is held back by an extra
    /// [`reorder_delay`](Self::reorder_delay), so that later packets overtake it.
    /// Default: `0`.
    pub reorder: f64,
    /// Extra delay given to a reordered packet. Default: 20 ms.
    pub reorder_delay: Duration,
    /// Bandwidth cap in bytes per second; each packet is serialized for
    /// `packet_size / bandwidth` seconds, one after another. `Some(0)` is treated as
    /// `Some(1)`. Default: `None` (unlimited).
    pub bandwidth_bytes_per_sec: Option<u64>,
    /// Maximum number of packets held at once (in flight or waiting for bandwidth);
    /// a packet arriving at a full conditioner is dropped and counted in
    /// [`ConditionerStats::dropped_by_queue`]. Default: 1024.
    pub max_queue: usize,
}

impl Default for ConditionerConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: LossModel::None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: DEFAULT_REORDER_DELAY,
            bandwidth_bytes_per_sec: None,
            max_queue: DEFAULT_MAX_QUEUE,
        }
    }
}

impl ConditionerConfig {
    /// A perfect link: no delay, no loss, no cap (same as [`Default`]).
    #[must_use]
    pub fn perfect() -> Self {
        Self::default()
    }

    /// Sets [`latency`](Self::latency).
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Sets [`jitter`](Self::jitter).
    #[must_use]
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets [`loss`](Self::loss), clamping its probabilities to `0..=1`.
    #[must_use]
    pub fn with_loss(mut self, loss: LossModel) -> Self {
        self.loss = loss.clamped();
        self
    }

    /// Sets a uniform loss probability, clamped to `0..=1`.
    #[must_use]
    pub fn with_uniform_loss(self, probability: f64) -> Self {
        self.with_loss(LossModel::Uniform(probability))
    }

    /// Sets a Gilbert–Elliott loss model; probabilities are clamped to `0..=1`.
    #[must_use]
    pub fn with_gilbert_elliott(
        self,
        p_good_to_bad: f64,
        p_bad_to_good: f64,
        loss_in_good: f64,
        loss_in_bad: f64,
    ) -> Self {
        self.with_loss(LossModel::GilbertElliott {
            p_good_to_bad,
            p_bad_to_good,
            loss_in_good,
            loss_in_bad,
        })
    }

    /// Sets [`duplicate`](Self::duplicate), clamped to `0..=1`.
    #[must_use]
    pub fn with_duplicate(mut self, probability: f64) -> Self {
        self.duplicate = clamp_probability(probability);
        self
    }

    /// Sets [`reorder`](Self::reorder), clamped to `0..=1`.
    #[must_use]
    pub fn with_reorder(mut self, probability: f64) -> Self {
        self.reorder = clamp_probability(probability);
        self
    }

    /// Sets [`reorder_delay`](Self::reorder_delay).
    #[must_use]
    pub fn with_reorder_delay(mut self, delay: Duration) -> Self {
        self.reorder_delay = delay;
        self
    }

    /// Sets [`bandwidth_bytes_per_sec`](Self::bandwidth_bytes_per_sec); `Some(0)`
    /// becomes `Some(1)`.
    #[must_use]
    pub fn with_bandwidth(mut self, bytes_per_sec: Option<u64>) -> Self {
        self.bandwidth_bytes_per_sec = bytes_per_sec.map(|b| b.max(1));
        self
    }

    /// Sets [`max_queue`](Self::max_queue).
    #[must_use]
    pub fn with_max_queue(mut self, max_queue: usize) -> Self {
        self.max_queue = max_queue;
        self
    }

    /// This config with every value brought into range.
    fn sanitized(self) -> Self {
        let duplicate = self.duplicate;
        let reorder = self.reorder;
        let loss = self.loss;
        let bandwidth = self.bandwidth_bytes_per_sec;
        self.with_loss(loss)
            .with_duplicate(duplicate)
            .with_reorder(reorder)
            .with_bandwidth(bandwidth)
    }
}

fn clamp_probability(p: f64) -> f64 {
    if p.is_nan() {
        0.0
    } else {
        // `+ 0.0` turns `-0.0` into `0.0`.
        p.clamp(0.0, 1.0) + 0.0
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

// ---------------------------------------------------------------------------
// Spec parsing and printing
// ---------------------------------------------------------------------------

/// Why a conditioner spec string did not parse. Every variant names the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConditionerParseError {
    /// The key is not one of the documented keys.
    #[error(
        "unknown conditioner key `{key}` (expected latency, jitter, loss, dup, reorder, reorder-delay, bandwidth or queue)"
    )]
    UnknownKey {
        /// The unrecognized key.
        key: String,
    },
    /// An item had no `=value`.
    #[error("conditioner key `{key}` has no value (expected `{key}=VALUE`)")]
    MissingValue {
        /// The key without a value.
        key: String,
    },
    /// A key appeared more than once.
    #[error("conditioner key `{key}` is given more than once")]
    DuplicateKey {
        /// The repeated key.
        key: String,
    },
    /// A value could not be parsed.
    #[error("invalid value `{value}` for conditioner key `{key}`: {reason}")]
    InvalidValue {
        /// The key whose value is bad.
        key: String,
        /// The bad value, as written.
        value: String,
        /// What was expected.
        reason: &'static str,
    },
    /// A probability was outside `0..=1` (`0%..=100%`).
    #[error(
        "probability `{value}` for conditioner key `{key}` is out of range (expected 0..=1 or 0%..=100%)"
    )]
    ProbabilityOutOfRange {
        /// The key whose value is bad.
        key: String,
        /// The bad value, as written.
        value: String,
    },
}

impl FromStr for ConditionerConfig {
    type Err = ConditionerParseError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut config = Self::default();
        let mut seen: Vec<&'static str> = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => (item, ""),
            };
            let canonical = match key {
                "latency" => "latency",
                "jitter" => "jitter",
                "loss" => "loss",
                "dup" | "duplicate" => "dup",
                "reorder" => "reorder",
                "reorder-delay" => "reorder-delay",
                "bandwidth" => "bandwidth",
                "queue" => "queue",
                _ => return Err(ConditionerParseError::UnknownKey { key: key.into() }),
            };
            if value.is_empty() {
                return Err(ConditionerParseError::MissingValue { key: key.into() });
            }
            if seen.contains(&canonical) {
                return Err(ConditionerParseError::DuplicateKey { key: key.into() });
            }
            seen.push(canonical);
            match canonical {
                "latency" => config.latency = parse_duration(key, value)?,
                "jitter" => config.jitter = parse_duration(key, value)?,
                "loss" => config.loss = parse_loss(key, value)?,
                "dup" => config.duplicate = parse_probability(key, value, value)?,
                "reorder" => config.reorder = parse_probability(key, value, value)?,
                "reorder-delay" => config.reorder_delay = parse_duration(key, value)?,
                "bandwidth" => config.bandwidth_bytes_per_sec = parse_bandwidth(key, value)?,
                _ => {
                    config.max_queue = value.parse().map_err(|_| {
                        invalid(key, value, "expected a packet count such as `1024`")
                    })?
                }
            }
        }
        Ok(config)
    }
}

impl fmt::Display for ConditionerConfig {
    /// Prints the non-default settings as a spec that parses back to an equal config
    /// (a perfect link prints as `latency=0ms`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let default = Self::default();
        let mut items: Vec<String> = Vec::new();
        if self.latency != default.latency {
            items.push(format!("latency={}", DisplayDuration(self.latency)));
        }
        if self.jitter != default.jitter {
            items.push(format!("jitter={}", DisplayDuration(self.jitter)));
        }
        match self.loss {
            LossModel::None => {}
            LossModel::Uniform(p) => items.push(format!("loss={}", DisplayProbability(p))),
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_in_good,
                loss_in_bad,
            } => items.push(format!(
                "loss=ge:{}:{}:{}:{}",
                DisplayProbability(p_good_to_bad),
                DisplayProbability(p_bad_to_good),
                DisplayProbability(loss_in_good),
                DisplayProbability(loss_in_bad),
            )),
        }
        if self.duplicate != default.duplicate {
            items.push(format!("dup={}", DisplayProbability(self.duplicate)));
        }
        if self.reorder != default.reorder {
            items.push(format!("reorder={}", DisplayProbability(self.reorder)));
        }
        if self.reorder_delay != default.reorder_delay {
            items.push(format!(
                "reorder-delay={}",
                DisplayDuration(self.reorder_delay)
            ));
        }
        if let Some(rate) = self.bandwidth_bytes_per_sec {
            items.push(format!("bandwidth={}", DisplayRate(rate)));
        }
        if self.max_queue != default.max_queue {
            items.push(format!("queue={}", self.max_queue));
        }
        if items.is_empty() {
            f.write_str("latency=0ms")
        } else {
            f.write_str(&items.join(","))
        }
    }
}

fn invalid(key: &str, value: &str, reason: &'static str) -> ConditionerParseError {
    ConditionerParseError::InvalidValue {
        key: key.into(),
        value: value.into(),
        reason,
    }
}

/// `floor(number × scale)` for an unsigned decimal `number` such as `12`, `1.5` or
/// `.25`. Fraction digits past the 18th are ignored.
fn parse_scaled(number: &str, scale: u128) -> Option<u128> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let int_value = int.bytes().try_fold(0u128, |acc, b| {
        acc.checked_mul(10)?.checked_add(u128::from(b - b'0'))
    })?;
    let frac = &frac[..frac.len().min(18)];
    let frac_value = frac
        .bytes()
        .fold(0u128, |acc, b| acc * 10 + u128::from(b - b'0'));
    let frac_scaled = frac_value * scale / 10u128.pow(frac.len() as u32);
    int_value.checked_mul(scale)?.checked_add(frac_scaled)
}

fn parse_duration(key: &str, value: &str) -> Result<Duration, ConditionerParseError> {
    const REASON: &str = "expected a duration such as `100ms`, `1.5s`, `250us` or `0`";
    if value == "0" {
        return Ok(Duration::ZERO);
    }
    let (number, scale) = [("ns", 1), ("us", 1_000), ("µs", 1_000), ("ms", 1_000_000)]
        .into_iter()
        .chain([("s", NANOS_PER_SEC)])
        .find_map(|(unit, scale)| value.strip_suffix(unit).map(|n| (n, scale)))
        .ok_or_else(|| invalid(key, value, REASON))?;
    let nanos = parse_scaled(number, scale).ok_or_else(|| invalid(key, value, REASON))?;
    if nanos / NANOS_PER_SEC > u128::from(u64::MAX) {
        return Err(invalid(key, value, "duration is too large"));
    }
    Ok(duration_from_nanos(nanos))
}

/// Parses one probability; `whole` is the full value, quoted in errors.
fn parse_probability(key: &str, part: &str, whole: &str) -> Result<f64, ConditionerParseError> {
    const REASON: &str = "expected a probability such as `2%` or `0.02`";
    let (number, divisor) = match part.strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (part, 1.0),
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(invalid(key, whole, REASON));
    }
    let value: f64 = number.parse().map_err(|_| invalid(key, whole, REASON))?;
    let probability = value / divisor;
    if !(0.0..=1.0).contains(&probability) {
        return Err(ConditionerParseError::ProbabilityOutOfRange {
            key: key.into(),
            value: whole.into(),
        });
    }
    Ok(probability)
}

fn parse_loss(key: &str, value: &str) -> Result<LossModel, ConditionerParseError> {
    if value == "none" {
        return Ok(LossModel::None);
    }
    let Some(params) = value.strip_prefix("ge:") else {
        return parse_probability(key, value, value).map(LossModel::Uniform);
    };
    let parts: Vec<&str> = params.split(':').collect();
    if parts.len() != 2 && parts.len() != 4 {
        return Err(invalid(
            key,
            value,
            "expected `ge:P_GOOD_TO_BAD:P_BAD_TO_GOOD[:LOSS_IN_GOOD:LOSS_IN_BAD]`",
        ));
    }
    let mut probabilities = [0.0, 0.0, 0.0, 1.0];
    for (slot, part) in probabilities.iter_mut().zip(&parts) {
        *slot = parse_probability(key, part, value)?;
    }
    let [p_good_to_bad, p_bad_to_good, loss_in_good, loss_in_bad] = probabilities;
    Ok(LossModel::GilbertElliott {
        p_good_to_bad,
        p_bad_to_good,
        loss_in_good,
        loss_in_bad,
    })
}

fn parse_bandwidth(key: &str, value: &str) -> Result<Option<u64>, ConditionerParseError> {
    const REASON: &str = "expected a rate such as `256kbps`, `32KB/s`, `1.5Mbps` or `none`";
    if value == "none" {
        return Ok(None);
    }
    // Split the number from the unit.
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| invalid(key, value, REASON))?;
    let (number, unit) = value.split_at(split);
    // Base unit: bits or bytes per second.
    let (prefix, bits) = [
        ("bps", true),
        ("bit/s", true),
        ("Bps", false),
        ("B/s", false),
    ]
    .into_iter()
    .find_map(|(suffix, bits)| unit.strip_suffix(suffix).map(|p| (p, bits)))
    .ok_or_else(|| invalid(key, value, REASON))?;
    let multiplier: u128 = match prefix.to_ascii_lowercase().as_str() {
        "" => 1,
        "k" => 1_000,
        "m" => 1_000_000,
        "g" => 1_000_000_000,
        "ki" => 1 << 10,
        "mi" => 1 << 20,
        "gi" => 1 << 30,
        _ => return Err(invalid(key, value, REASON)),
    };
    let amount = parse_scaled(number, multiplier).ok_or_else(|| invalid(key, value, REASON))?;
    let bytes = if bits { amount / 8 } else { amount };
    match u64::try_from(bytes) {
        Ok(0) => Err(invalid(
            key,
            value,
            "bandwidth must be at least 1 byte per second",
        )),
        Ok(bytes) => Ok(Some(bytes)),
        Err(_) => Err(invalid(key, value, "bandwidth is too large")),
    }
}

/// Prints a duration in the largest unit that represents it exactly.
struct DisplayDuration(Duration);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0ms");
        }
        let (value, unit) = [(NANOS_PER_SEC, "s"), (1_000_000, "ms"), (1_000, "us")]
            .into_iter()
            .find(|(scale, _)| nanos.is_multiple_of(*scale))
            .map_or((nanos, "ns"), |(scale, unit)| (nanos / scale, unit));
        write!(f, "{value}{unit}")
    }
}

/// Prints a probability as the shortest percentage that parses back exactly, or as
/// a fraction when no percentage does.
struct DisplayProbability(f64);

impl fmt::Display for DisplayProbability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        for decimals in 0..=17 {
            let text = format!("{:.*}", decimals, p * 100.0);
            if text.parse::<f64>().map(|v| v / 100.0) == Ok(p) {
                return write!(f, "{text}%");
            }
        }
        write!(f, "{p}")
    }
}

/// Prints a byte rate in the largest decimal unit that represents it exactly.
struct DisplayRate(u64);

impl fmt::Display for DisplayRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = self.0;
        let (value, unit) = [
            (1_000_000_000, "GB/s"),
            (1_000_000, "MB/s"),
            (1_000, "KB/s"),
        ]
        .into_iter()
        .find(|(scale, _)| rate.is_multiple_of(*scale))
        .map_or((rate, "B/s"), |(scale, unit)| (rate / scale, unit));
        write!(f, "{value}{unit}")
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    #[test]
    fn parses_example_spec() {
        let config: ConditionerConfig = "latency=100ms,jitter=10ms,loss=2%".parse().unwrap();
        assert_eq!(
            config,
            ConditionerConfig::default()
                .with_latency(Duration::from_millis(100))
                .with_jitter(Duration::from_millis(10))
                .with_uniform_loss(0.02)
        );
        assert_eq!(config.to_string(), "latency=100ms,jitter=10ms,loss=2%");
    }

    #[test]
    fn parses_every_key() {
        let config: ConditionerConfig = " latency=1.5s , jitter=250us, loss=ge:0.05:0.3:0:0.5, \
             duplicate=0.01, reorder=5%, reorder-delay=30ms, bandwidth=256kbps, queue=64"
            .parse()
            .unwrap();
        let expected = ConditionerConfig::default()
            .with_latency(Duration::from_millis(1_500))
            .with_jitter(Duration::from_micros(250))
            .with_gilbert_elliott(0.05, 0.3, 0.0, 0.5)
            .with_duplicate(0.01)
            .with_reorder(0.05)
            .with_reorder_delay(Duration::from_millis(30))
            .with_bandwidth(Some(32_000))
            .with_max_queue(64);
        assert_eq!(config, expected);
        assert_eq!(
            config.to_string(),
            "latency=1500ms,jitter=250us,loss=ge:5%:30%:0%:50%,dup=1%,reorder=5%,\
             reorder-delay=30ms,bandwidth=32KB/s,queue=64"
        );

        let rate = |s: &str| {
            s.parse::<ConditionerConfig>()
                .unwrap()
                .bandwidth_bytes_per_sec
        };
        assert_eq!(rate("bandwidth=32KB/s"), Some(32_000));
        assert_eq!(rate("bandwidth=1KiB/s"), Some(1_024));
        assert_eq!(rate("bandwidth=1.5Mbps"), Some(187_500));
        assert_eq!(rate("bandwidth=800bit/s"), Some(100));
        assert_eq!(rate("bandwidth=none"), None);
        let ge: ConditionerConfig = "loss=ge:1%:25%".parse().unwrap();
        assert_eq!(
            ge.loss,
            LossModel::GilbertElliott {
                p_good_to_bad: 0.01,
                p_bad_to_good: 0.25,
                loss_in_good: 0.0,
                loss_in_bad: 1.0,
            }
        );
        assert_eq!("latency=0".parse(), Ok(ConditionerConfig::default()));
        assert_eq!("".parse(), Ok(ConditionerConfig::default()));
        assert_eq!(ConditionerConfig::default().to_string(), "latency=0ms");
    }

    #[test]
    fn parse_errors_name_key_and_value() {
        let err = |s: &str| s.parse::<ConditionerConfig>().unwrap_err();
        assert_eq!(
            err("latency=10ms,lag=5ms"),
            ConditionerParseError::UnknownKey { key: "lag".into() }
        );
        assert_eq!(
            err("jitter"),
            ConditionerParseError::MissingValue {
                key: "jitter".into()
            }
        );
        assert_eq!(
            err("dup=1%,duplicate=2%"),
            ConditionerParseError::DuplicateKey {
                key: "duplicate".into()
            }
        );
        assert_eq!(
            err("loss=150%"),
            ConditionerParseError::ProbabilityOutOfRange {
                key: "loss".into(),
                value: "150%".into()
            }
        );
        assert!(matches!(
            err("reorder=1.5"),
            ConditionerParseError::ProbabilityOutOfRange { ref key, .. } if key == "reorder"
        ));
        for (spec, key, value) in [
            ("latency=100", "latency", "100"),
            ("jitter=-5ms", "jitter", "-5ms"),
            ("loss=lots", "loss", "lots"),
            ("loss=NaN", "loss", "NaN"),
            ("loss=ge:1%", "loss", "ge:1%"),
            ("loss=ge:1%:x", "loss", "ge:1%:x"),
            ("bandwidth=fast", "bandwidth", "fast"),
            ("bandwidth=7bps", "bandwidth", "7bps"),
            ("bandwidth=10Tbps", "bandwidth", "10Tbps"),
            ("queue=-1", "queue", "-1"),
            (
                "reorder-delay=99999999999999999999999s",
                "reorder-delay",
                "99999999999999999999999s",
            ),
        ] {
            match err(spec) {
                ConditionerParseError::InvalidValue {
                    key: k, value: v, ..
                } => {
                    assert_eq!((k.as_str(), v.as_str()), (key, value), "{spec}");
                }
                other => panic!("{spec}: unexpected {other:?}"),
            }
        }
        let message = err("latency=100").to_string();
        assert!(
            message.contains("`latency`") && message.contains("`100`"),
            "{message}"
        );
        let message = err("lag=5ms").to_string();
        assert!(message.contains("`lag`"), "{message}");
    }

    #[test]
    fn out_of_range_fields_are_clamped() {
        // Public fields can be assigned out of range; `new` clamps them.
        let config = ConditionerConfig {
            loss: LossModel::Uniform(f64::NAN),
            duplicate: 7.0,
            reorder: -1.0,
            bandwidth_bytes_per_sec: Some(0),
            ..ConditionerConfig::default()
        };
        let link = LinkConditioner::<Vec<u8>>::new(config, 0);
        assert_eq!(link.config().loss, LossModel::Uniform(0.0));
        assert_eq!(link.config().duplicate, 1.0);
        assert_eq!(link.config().reorder, 0.0);
        assert_eq!(link.config().bandwidth_bytes_per_sec, Some(1));
        let clamped = ConditionerConfig::default().with_gilbert_elliott(2.0, -3.0, f64::NAN, 0.5);
        assert_eq!(clamped.loss.stationary_loss_rate(), 0.5);
    }

    fn probability() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => 0.0..=1.0f64,
            1 => Just(0.0),
            1 => Just(1.0),
            1 => any::<f64>(),
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
        ]
    }

    fn duration(max_nanos: u64) -> impl Strategy<Value = Duration> {
        prop_oneof![
            8 => (0..=max_nanos).prop_map(Duration::from_nanos),
            1 => Just(Duration::ZERO),
            1 => Just(Duration::MAX),
        ]
    }

    fn loss_model() -> impl Strategy<Value = LossModel> {
        prop_oneof![
            Just(LossModel::None),
            probability().prop_map(LossModel::Uniform),
            (probability(), probability(), probability(), probability()).prop_map(
                |(p_good_to_bad, p_bad_to_good, loss_in_good, loss_in_bad)| {
                    LossModel::GilbertElliott {
                        p_good_to_bad,
                        p_bad_to_good,
                        loss_in_good,
                        loss_in_bad,
                    }
                }
            ),
        ]
    }

    fn config() -> impl Strategy<Value = ConditionerConfig> {
        (
            (
                duration(1_000_000_000),
                duration(1_000_000_000),
                loss_model(),
            ),
            (probability(), probability(), duration(100_000_000)),
            (proptest::option::of(any::<u64>()), 0..64usize),
        )
            .prop_map(
                |((latency, jitter, loss), (dup, reorder, delay), (bw, queue))| {
                    ConditionerConfig::default()
                        .with_latency(latency)
                        .with_jitter(jitter)
                        .with_loss(loss)
                        .with_duplicate(dup)
                        .with_reorder(reorder)
                        .with_reorder_delay(delay)
                        .with_bandwidth(bw)
                        .with_max_queue(queue)
                },
            )
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

        #[test]
        fn display_round_trips(config in config()) {
            let text = config.to_string();
            let parsed: ConditionerConfig = text.parse().map_err(|e| {
                TestCaseError::fail(format!("{text}: {e}"))
            })?;
            prop_assert_eq!(parsed, config, "{}", text);
        }
    }
}
