//! Reconnection: exponential backoff with jitter, and how an ending reads.
//! Which endings are worth a retry is the protocol's rule
//! ([`Closed::may_retry`], reported as `Closed::retry` by `ClientSession`).
//!
//! The delay before attempt `n` (0-based) is `0.5 s × 2^n`, capped at 8 s,
//! then scaled by a random factor in `[0.75, 1.25]` so that a server restart
//! does not see every client come back in the same millisecond. The random
//! number is an argument (the browser passes `Math.random()`).

use tickwire_shared::client::{ABNORMAL_CLOSURE, Closed};
use tickwire_shared::{CloseCode, RejectCode};

/// Why a connection ended, as the client understood it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The socket never opened.
    CannotConnect,
    /// The server refused the hello.
    Rejected {
        /// Why.
        code: RejectCode,
        /// The server's words.
        message: String,
    },
    /// The server closed the session (a `Close` message or a close frame).
    Closed {
        /// Why.
        code: CloseCode,
        /// The server's words.
        reason: String,
    },
    /// The server sent bytes this client cannot accept; the client closed.
    ProtocolError(String),
    /// The connection dropped without a reason.
    Lost,
    /// The player left (stop was called).
    Left,
}

impl Ending {
    /// How the player should hear about a session that ended as `closed`
    /// (from `ClientSession`); `opened` says whether the socket ever opened.
    /// Whether to retry is not decided here: it is `closed.retry`
    /// ([`Closed::may_retry`]).
    #[must_use]
    pub fn from_closed(closed: &Closed, opened: bool) -> Self {
        if !opened {
            return Self::CannotConnect;
        }
        if let Some(code) = closed.reject {
            return Self::Rejected {
                code,
                message: closed.reason.clone(),
            };
        }
        match closed.code {
            CloseCode::ProtocolError | CloseCode::MessageTooBig | CloseCode::UnsupportedData
                if closed.local =>
            {
                Self::ProtocolError(closed.reason.clone())
            }
            CloseCode::Normal if closed.local => Self::Left,
            code if matches!(code.to_u16(), NO_STATUS | ABNORMAL_CLOSURE) => Self::Lost,
            code => Self::Closed {
                code,
                reason: closed.reason.clone(),
            },
        }
    }
}

/// WebSocket's "no status code in the close frame" (RFC 6455 §7.4.1).
const NO_STATUS: u16 = 1005;

/// Exponential backoff with ±25 % jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    base_ms: f64,
    max_ms: f64,
    jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            attempt: 0,
            base_ms: 500.0,
            max_ms: 8000.0,
            jitter: 0.25,
        }
    }
}

impl Backoff {
    /// The default schedule: 0.5 s, 1 s, 2 s, 4 s, 8 s, 8 s… each ±25 %.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The delay before the next attempt, in milliseconds, given a uniform
    /// random number in `[0, 1)` (values outside are clamped). Advances the
    /// attempt counter.
    pub fn next_delay_ms(&mut self, random: f64) -> f64 {
        let exp = self.attempt.min(16);
        self.attempt = self.attempt.saturating_add(1);
        let nominal = (self.base_ms * f64::from(1u32 << exp)).min(self.max_ms);
        let r = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.5
        };
        nominal * (1.0 + self.jitter * (2.0 * r - 1.0))
    }

    /// Attempts made since the last [`Backoff::reset`].
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts over at the shortest delay (after a session was established).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_stays_within_jitter_bounds() {
        let mut lo = Backoff::new();
        let mut mid = Backoff::new();
        let mut hi = Backoff::new();
        let nominal = [500.0, 1000.0, 2000.0, 4000.0, 8000.0, 8000.0, 8000.0];
        for n in nominal {
            assert_eq!(mid.next_delay_ms(0.5), n);
            assert_eq!(lo.next_delay_ms(0.0), n * 0.75);
            assert!((hi.next_delay_ms(0.999_999) - n * 1.25).abs() < 0.01);
        }
        for _ in 0..100 {
            let d = hi.next_delay_ms(f64::NAN);
            assert_eq!(d, 8000.0);
        }
        hi.reset();
        assert_eq!(hi.attempts(), 0);
        assert_eq!(hi.next_delay_ms(0.5), 500.0);
    }

    #[test]
    fn endings_read_from_the_session_close() {
        let closed = |code: u16, reject, local| Closed {
            code: CloseCode::from_u16(code),
            reason: "why".into(),
            reject,
            local,
            retry: false,
        };
        let ending = |c: &Closed| Ending::from_closed(c, true);
        assert_eq!(
            Ending::from_closed(&closed(1006, None, false), false),
            Ending::CannotConnect
        );
        assert_eq!(ending(&closed(1006, None, false)), Ending::Lost);
        assert_eq!(ending(&closed(1005, None, false)), Ending::Lost);
        assert_eq!(
            ending(&closed(4005, Some(RejectCode::ServerFull), false)),
            Ending::Rejected {
                code: RejectCode::ServerFull,
                message: "why".into()
            }
        );
        assert_eq!(
            ending(&closed(1002, None, true)),
            Ending::ProtocolError("why".into())
        );
        assert_eq!(
            ending(&closed(1001, None, false)),
            Ending::Closed {
                code: CloseCode::ServerShutdown,
                reason: "why".into()
            }
        );
        assert_eq!(ending(&closed(1000, None, true)), Ending::Left);
    }
}
