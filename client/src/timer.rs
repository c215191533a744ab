//! The session's one timer: a [`Sleep`] kept for the life of the client and
//! moved only when the session's next deadline changes.
//!
//! Waiting for the next event races a read against this timer. A fresh
//! `sleep_until` per wait would insert an entry into the runtime's timer
//! wheel and remove it again for every received message (a lock each, on
//! the multi-thread runtime); the session's deadline (the next ping, about
//! once a second) mostly stays put from one message to the next, so the
//! entry is kept and re-armed only when the deadline moves.

use std::pin::Pin;

use tokio::time::{Instant, Sleep};

/// A reusable deadline.
#[derive(Debug)]
pub(crate) struct Timer {
    sleep: Pin<Box<Sleep>>,
    /// The deadline the sleep is set to, when armed.
    armed: Option<Instant>,
}

impl Timer {
    /// A disarmed timer. Must be called inside a tokio runtime.
    pub(crate) fn new() -> Self {
        Self {
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
            armed: None,
        }
    }

    /// Sets the deadline (`None`: none). The timer entry is moved only when
    /// `at` differs from the armed deadline.
    pub(crate) fn arm(&mut self, at: Option<Instant>) {
        if at == self.armed {
            return;
        }
        if let Some(at) = at {
            self.sleep.as_mut().reset(at);
        }
        self.armed = at;
    }

    /// Whether a deadline is set ([`Timer::sleep`] may only be awaited then).
    pub(crate) fn is_armed(&self) -> bool {
        self.armed.is_some()
    }

    /// The sleep to await while armed. Call [`Timer::fired`] once it
    /// completes.
    pub(crate) fn sleep(&mut self) -> Pin<&mut Sleep> {
        self.sleep.as_mut()
    }

    /// The deadline was reached: disarms, so that the next
    /// [`Timer::arm`] sets the sleep again even for the same instant.
    pub(crate) fn fired(&mut self) {
        self.armed = None;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_armed_deadline_and_moves_with_it() {
        let mut t = Timer::new();
        assert!(!t.is_armed());
        let start = Instant::now();
        t.arm(Some(start + Duration::from_secs(5)));
        // Moved earlier: the new deadline counts.
        t.arm(Some(start + Duration::from_secs(2)));
        t.sleep().await;
        t.fired();
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
        assert!(!t.is_armed());
        // Armed again for the instant it just fired at: it is reset, not
        // left as it was, and completes at once.
        t.arm(Some(start + Duration::from_secs(2)));
        assert!(t.is_armed());
        t.sleep().await;
        assert_eq!(Instant::now() - start, Duration::from_secs(2));
        // Moved later, then disarmed.
        t.arm(Some(start + Duration::from_secs(7)));
        t.sleep().await;
        t.fired();
        assert_eq!(Instant::now() - start, Duration::from_secs(7));
        t.arm(None);
        assert!(!t.is_armed());
    }
}
