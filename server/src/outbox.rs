//! The bounded queue from a room to one session.
//!
//! The room never waits on a session: it pushes into the outbox and moves
//! on. Snapshots are replaceable (a newer one supersedes an unsent one);
//! reliable messages queue up to a bound. A session that falls too far behind
//! gets its outbox closed with [`CloseCode::SlowConsumer`].

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tickwire_shared::CloseCode;
use tokio::sync::Notify;

/// Everything a session should write now, in order.
#[derive(Debug, Default)]
pub struct Batch {
    /// Reliable messages (welcome, events, pongs), oldest first.
    pub reliable: Vec<Bytes>,
    /// The newest snapshot, if one is waiting.
    pub snapshot: Option<Bytes>,
    /// Close after writing the above.
    pub close: Option<(CloseCode, String)>,
}

#[derive(Debug, Default)]
struct Inner {
    reliable: VecDeque<Bytes>,
    snapshot: Option<Bytes>,
    skipped: u32,
    close: Option<(CloseCode, String)>,
}

/// A room → session queue. Cheap to share (`Arc<Outbox>`).
#[derive(Debug)]
pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    max_reliable: usize,
    max_skipped: u32,
    /// The newest snapshot tick the client acknowledged, plus one (0: none).
    /// Acks flow session → room through here, not the room channel: the room
    /// reads the newest one when it builds the next snapshot, so acks never
    /// wake the room and a burst of them costs one store each.
    acked: AtomicU64,
}

impl Outbox {
    /// An outbox holding at most `max_reliable` reliable messages and
    /// tolerating `max_skipped` replaced snapshots in a row.
    #[must_use]
    pub fn new(max_reliable: usize, max_skipped: u32) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            max_reliable,
            max_skipped,
            acked: AtomicU64::new(0),
        }
    }

    /// Records the client's acknowledgement of snapshot `tick` (the newest
    /// one recorded wins; acks that arrive out of order cannot move it back).
    pub fn record_ack(&self, tick: u32) {
        self.acked.fetch_max(u64::from(tick) + 1, Ordering::Relaxed);
    }

    /// The newest acknowledged snapshot tick, if any.
    #[must_use]
    pub fn latest_ack(&self) -> Option<u32> {
        match self.acked.load(Ordering::Relaxed) {
            0 => None,
            n => u32::try_from(n - 1).ok(),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A poisoned lock only means another thread panicked mid-push; the
        // queue itself is still consistent.
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let r = f(&mut guard);
        drop(guard);
        self.notify.notify_one();
        r
    }

    /// Queues a snapshot, replacing an unsent one.
    pub fn push_snapshot(&self, bytes: Bytes) {
        let max = self.max_skipped;
        self.with(|i| {
            if i.close.is_some() {
                return;
            }
            if i.snapshot.replace(bytes).is_some() {
                i.skipped += 1;
                if i.skipped > max {
                    i.close = Some((
                        CloseCode::SlowConsumer,
                        format!("fell {max} snapshots behind"),
                    ));
                }
            }
        });
    }

    /// Queues a reliable message; closes the outbox when it overflows.
    pub fn push_reliable(&self, bytes: Bytes) {
        let max = self.max_reliable;
        self.with(|i| {
            if i.close.is_some() {
                return;
            }
            if i.reliable.len() >= max {
                i.close = Some((
                    CloseCode::SlowConsumer,
                    format!("more than {max} reliable messages unsent"),
                ));
            } else {
                i.reliable.push_back(bytes);
            }
        });
    }

    /// Asks the session to close (the first reason wins).
    pub fn close(&self, code: CloseCode, reason: impl Into<String>) {
        let reason = reason.into();
        self.with(|i| {
            i.close.get_or_insert((code, reason));
        });
    }

    /// True once closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .close
            .is_some()
    }

    /// Takes everything waiting.
    #[must_use]
    pub fn take(&self) -> Batch {
        let mut i = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        i.skipped = 0;
        Batch {
            reliable: i.reliable.drain(..).collect(),
            snapshot: i.snapshot.take(),
            close: i.close.clone(),
        }
    }

    /// Waits until something was pushed since the last wait.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_replace_and_slow_consumers_are_closed() {
        let o = Outbox::new(2, 3);
        o.push_reliable(Bytes::from_static(b"a"));
        for n in 0..4u8 {
            o.push_snapshot(Bytes::from(vec![n]));
        }
        let b = o.take();
        assert_eq!(b.reliable, [Bytes::from_static(b"a")]);
        assert_eq!(b.snapshot, Some(Bytes::from(vec![3])));
        assert!(b.close.is_none(), "3 skipped is within the limit");
        for n in 0..5u8 {
            o.push_snapshot(Bytes::from(vec![n]));
        }
        assert_eq!(o.take().close.map(|c| c.0), Some(CloseCode::SlowConsumer));
    }

    #[test]
    fn reliable_overflow_closes() {
        let o = Outbox::new(2, 10);
        for _ in 0..3 {
            o.push_reliable(Bytes::new());
        }
        let b = o.take();
        assert_eq!(b.reliable.len(), 2);
        assert_eq!(b.close.map(|c| c.0), Some(CloseCode::SlowConsumer));
    }

    #[test]
    fn the_newest_ack_wins_and_order_does_not_matter() {
        let o = Outbox::new(2, 10);
        assert_eq!(o.latest_ack(), None);
        o.record_ack(0);
        assert_eq!(o.latest_ack(), Some(0));
        o.record_ack(7);
        o.record_ack(5); // a reordered datagram
        assert_eq!(o.latest_ack(), Some(7));
        o.record_ack(u32::MAX);
        assert_eq!(o.latest_ack(), Some(u32::MAX));
    }
}
