//! The conditioner's settings, [`ConditionerConfig`] and [`LossModel`], and
//! their text form (`latency=50ms,jitter=5ms,loss=1%`): parsed with
//! [`FromStr`], printed with [`fmt::Display`], the two round-tripping.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use super::{DEFAULT_MAX_QUEUE, DEFAULT_REORDER_DELAY, NANOS_PER_SEC, duration_from_nanos};

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

/// The knobs of a [`LinkConditioner`](super::LinkConditioner). [`Default`] is a perfect link.
///
/// The struct is `#[non_exhaustive]`: build it from [`Default`] with the `with_*`
/// methods (which clamp their arguments), or parse a spec string (see the
/// [module docs](crate::conditioner)). Fields assigned directly are clamped by
/// [`LinkConditioner::new`](super::LinkConditioner::new).
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
    /// [`ConditionerStats::dropped_by_queue`](super::ConditionerStats::dropped_by_queue). Default: 1024.
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
    pub(super) fn sanitized(self) -> Self {
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

/// proptest strategies for settings, shared by the link's tests.
#[cfg(test)]
pub(super) mod strategies {
    use core::time::Duration;

    use proptest::prelude::*;

    use super::{ConditionerConfig, LossModel};

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

    pub(in crate::conditioner) fn config() -> impl Strategy<Value = ConditionerConfig> {
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
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::strategies::config;
    use super::*;
    use crate::conditioner::LinkConditioner;

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

    proptest! {
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
