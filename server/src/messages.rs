//! Reliable client → server game messages ([`GameProtocol::Message`]): their
//! limits, the per-session rate limit, and the typed violations that close a
//! session.
//!
//! ```text
//!  client ── GameMessage (reliable) ──▶ session: size (decoder) ─▶ MessageRate ─▶ room channel
//!                                                                           │ (in order, awaited)
//!  Game::on_message ◀── ≤ max_per_tick per client per tick ◀── queue (≤ max_queued) ◀┘
//! ```
//!
//! A violation closes only the offending session, with a close code and a
//! reason ([`MessageError::close_code`]); the game sees
//! [`crate::LeaveReason::Misbehaved`].
//!
//! [`GameProtocol::Message`]: tickwire_shared::GameProtocol::Message

use std::time::Duration;

use tickwire_shared::CloseCode;

/// The limits of game messages, with documented defaults. The size limit is
/// a decode limit shared with clients:
/// [`tickwire_shared::Limits::max_game_message_bytes`] (default 1,024 bytes;
/// over it the session closes with `MessageTooBig`).
///
/// ```
/// use tickwire_server::messages::MessageLimits;
/// let limits = MessageLimits::default().with_rate(10, 20);
/// assert_eq!((limits.per_sec, limits.burst), (10, 20));
/// assert_eq!(limits.max_queued, 64);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageLimits {
    /// Game messages per second a client may send on average (a token
    /// bucket refilled at this rate). Over it the session closes with
    /// `MessageFlood`. Game messages also count towards
    /// `RoomConfig::max_messages_per_sec`. Default 20.
    pub per_sec: u32,
    /// Game messages a client may send at once (the bucket's size; it
    /// starts full). At least 1. Default 40.
    pub burst: u32,
    /// Game messages queued per client in the room, waiting for their tick.
    /// A client that gets more queued closes with `MessageFlood`.
    /// Default 64.
    pub max_queued: usize,
    /// Game messages handed to [`crate::Game::on_message`] per client per
    /// tick at most; the rest wait for the next tick. Default 8.
    pub max_per_tick: usize,
}

impl Default for MessageLimits {
    fn default() -> Self {
        Self {
            per_sec: 20,
            burst: 40,
            max_queued: 64,
            max_per_tick: 8,
        }
    }
}

impl MessageLimits {
    /// These limits with another rate: `per_sec` on average, `burst` at once.
    #[must_use]
    pub fn with_rate(mut self, per_sec: u32, burst: u32) -> Self {
        self.per_sec = per_sec;
        self.burst = burst;
        self
    }

    /// These limits with another queue bound and per-tick budget.
    #[must_use]
    pub fn with_queue(mut self, max_queued: usize, max_per_tick: usize) -> Self {
        self.max_queued = max_queued;
        self.max_per_tick = max_per_tick;
        self
    }
}

/// A client broke a game-message rule; its session closes with
/// [`MessageError::close_code`] and the error's text as the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// More game messages than the rate limit allows.
    #[error("more than {per_sec} game messages per second (burst {burst})")]
    RateExceeded {
        /// [`MessageLimits::per_sec`].
        per_sec: u32,
        /// [`MessageLimits::burst`].
        burst: u32,
    },
    /// The room's queue of this client's game messages is full.
    #[error("more than {max} game messages queued in the room")]
    QueueFull {
        /// [`MessageLimits::max_queued`].
        max: usize,
    },
}

impl MessageError {
    /// The close code of the session: [`CloseCode::MessageFlood`].
    #[must_use]
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::RateExceeded { .. } | Self::QueueFull { .. } => CloseCode::MessageFlood,
        }
    }
}

/// The per-session token bucket for game messages. Sans IO: `now` is any
/// monotonic time since an epoch the caller picks.
#[derive(Debug, Clone)]
pub(crate) struct MessageRate {
    per_sec: u32,
    burst: u32,
    tokens: f64,
    last: Duration,
}

impl MessageRate {
    pub(crate) fn new(limits: &MessageLimits, now: Duration) -> Self {
        let burst = limits.burst.max(1);
        Self {
            per_sec: limits.per_sec,
            burst,
            tokens: f64::from(burst),
            last: now,
        }
    }

    /// Takes a token for one message received at `now`.
    pub(crate) fn take(&mut self, now: Duration) -> Result<(), MessageError> {
        let dt = now.saturating_sub(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * f64::from(self.per_sec)).min(f64::from(self.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(MessageError::RateExceeded {
                per_sec: self.per_sec,
                burst: self.burst,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let limits = MessageLimits::default().with_rate(10, 5);
        let ms = Duration::from_millis;
        let mut r = MessageRate::new(&limits, ms(0));
        for _ in 0..5 {
            assert_eq!(r.take(ms(0)), Ok(()));
        }
        assert_eq!(
            r.take(ms(0)),
            Err(MessageError::RateExceeded {
                per_sec: 10,
                burst: 5
            })
        );
        // 100 ms later one token is back, and only one.
        let mut r = MessageRate::new(&limits, ms(0));
        for _ in 0..5 {
            r.take(ms(0)).unwrap();
        }
        assert_eq!(r.take(ms(100)), Ok(()));
        assert!(r.take(ms(100)).is_err());
        // At the rate, forever.
        let mut r = MessageRate::new(&limits, ms(0));
        for k in 1..1000 {
            assert_eq!(r.take(ms(100 * k)), Ok(()), "message {k}");
        }
    }

    #[test]
    fn violations_close_with_message_flood() {
        let e = MessageError::QueueFull { max: 3 };
        assert_eq!(e.close_code(), CloseCode::MessageFlood);
        assert_eq!(
            e.to_string(),
            "more than 3 game messages queued in the room"
        );
    }
}
