//! Each client's round-trip time as the server measures it: the session
//! pings (`SessionConfig::ping_interval`), a [`Pinger`] turns the pong into a
//! sample, and the smoothed figure goes into an [`Rtt`] the room reads
//! ([`crate::Ctx::rtt`]). Sans IO: time is an argument.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// "No sample yet" in [`Rtt`].
const NONE: u64 = u64::MAX;

/// One client's smoothed round-trip time, written by its session and read by
/// its room (one atomic; no lock). Smoothed as TCP does (RFC 6298): the
/// first sample as is, then `srtt = 7/8 · srtt + 1/8 · sample`.
///
/// ```
/// use std::time::Duration;
/// use tickwire_server::rtt::Rtt;
/// let rtt = Rtt::default();
/// assert_eq!(rtt.get(), None);
/// rtt.record(Duration::from_millis(80));
/// rtt.record(Duration::from_millis(160));
/// assert_eq!(rtt.get(), Some(Duration::from_millis(90)));
/// ```
#[derive(Debug)]
pub struct Rtt(AtomicU64);

impl Default for Rtt {
    fn default() -> Self {
        Self(AtomicU64::new(NONE))
    }
}

impl Rtt {
    /// Adds one sample.
    pub fn record(&self, sample: Duration) {
        let sample = u64::try_from(sample.as_micros())
            .unwrap_or(NONE - 1)
            .min(NONE - 1);
        // One writer (the client's session): a load and a store suffice.
        let srtt = match self.0.load(Ordering::Relaxed) {
            NONE => sample,
            old => old - old / 8 + sample / 8,
        };
        self.0.store(srtt, Ordering::Relaxed);
    }

    /// The smoothed round-trip time; `None` before the first pong.
    #[must_use]
    pub fn get(&self) -> Option<Duration> {
        match self.0.load(Ordering::Relaxed) {
            NONE => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }
}

/// The server's pings of one connection: at most one in flight (a newer
/// ping replaces it, so a lost pong costs one sample).
#[derive(Debug, Default)]
pub(crate) struct Pinger {
    nonce: u32,
    in_flight: Option<(u32, Duration)>,
}

impl Pinger {
    /// A ping goes out at `now`: its nonce.
    pub(crate) fn ping(&mut self, now: Duration) -> u32 {
        self.nonce = self.nonce.wrapping_add(1);
        self.in_flight = Some((self.nonce, now));
        self.nonce
    }

    /// A pong arrived at `now`: the round trip, when it answers the ping in
    /// flight (anything else is ignored).
    pub(crate) fn pong(&mut self, nonce: u32, now: Duration) -> Option<Duration> {
        match self.in_flight {
            Some((n, sent)) if n == nonce => {
                self.in_flight = None;
                Some(now.saturating_sub(sent))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pong_of_the_ping_in_flight_counts() {
        let mut p = Pinger::default();
        let ms = Duration::from_millis;
        let a = p.ping(ms(0));
        let b = p.ping(ms(10));
        assert_ne!(a, b);
        assert_eq!(p.pong(a, ms(30)), None, "a replaced ping");
        assert_eq!(p.pong(b, ms(50)), Some(ms(40)));
        assert_eq!(p.pong(b, ms(60)), None, "a duplicate pong");
    }

    #[test]
    fn smoothing_follows_rfc_6298() {
        let rtt = Rtt::default();
        rtt.record(Duration::from_millis(100));
        assert_eq!(rtt.get(), Some(Duration::from_millis(100)));
        for _ in 0..64 {
            rtt.record(Duration::from_millis(20));
        }
        let got = rtt.get().unwrap();
        assert!(got < Duration::from_millis(21), "{got:?}");
    }
}
