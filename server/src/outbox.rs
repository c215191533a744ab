//! The bounded queue from a room to one session.
//!
//! The room never waits on a session: it pushes into the outbox and moves
//! on. Snapshots are replaceable (a newer one supersedes an unsent one);
//! reliable messages queue up to a bound. A session that falls too far behind
//! gets its outbox closed with [`CloseCode::SlowConsumer`].

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
    max_reliable: usize,
    max_skipped: u32,
}

/// A room → session queue. Cheap to share (`Arc<Outbox>`).
#[derive(Debug)]
pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    /// The snapshots the client acknowledged, as an [`AckWindow`] packed
    /// by [`AckWindow::pack`] (0: none yet). Acks flow session → room
    /// through here, not the room channel: the room reads the window when it
    /// builds the next snapshot, so acks never wake the room and a burst of
    /// them costs one compare-and-swap each.
    acked: AtomicU64,
    /// The acks are the session's own writes (implicit acks, PROTOCOL.md
    /// §8.7), not the client's messages.
    implicit_acks: AtomicBool,
}

/// The newest snapshot tick a client acknowledged, and which of the
/// [`AckWindow::SPAN`] ticks before it it acknowledged too: the ticks the
/// server may diff against (PROTOCOL.md §8.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckWindow {
    /// The newest acknowledged tick.
    pub newest: u32,
    /// Bit `i` set: tick `newest − 1 − i` was acknowledged.
    pub before: u32,
}

impl AckWindow {
    /// How many ticks before the newest one the window remembers.
    pub const SPAN: u32 = 31;
    const MASK: u64 = (1 << Self::SPAN) - 1;

    /// `window` (none yet: empty) after acknowledging `tick` too.
    #[must_use]
    pub fn add(window: Option<Self>, tick: u32) -> Self {
        match window {
            Some(w) => w.with(tick),
            None => Self {
                newest: tick,
                before: 0,
            },
        }
    }

    /// The window after acknowledging `tick` too.
    #[must_use]
    pub fn with(self, tick: u32) -> Self {
        match tick.cmp(&self.newest) {
            core::cmp::Ordering::Equal => self,
            core::cmp::Ordering::Greater => {
                let d = tick - self.newest;
                let before = if d > Self::SPAN {
                    0
                } else {
                    // The old newest becomes bit d − 1; bit i moves to i + d.
                    ((u64::from(self.before) << d) | (1 << (d - 1))) & Self::MASK
                };
                Self {
                    newest: tick,
                    before: before as u32,
                }
            }
            core::cmp::Ordering::Less => {
                let d = self.newest - tick;
                let before = if d > Self::SPAN {
                    self.before
                } else {
                    self.before | (1 << (d - 1))
                };
                Self { before, ..self }
            }
        }
    }

    /// Whether `tick` was acknowledged (as far as the window remembers).
    #[must_use]
    pub fn contains(self, tick: u32) -> bool {
        match self.newest.checked_sub(tick) {
            Some(0) => true,
            Some(d) if d <= Self::SPAN => self.before & (1 << (d - 1)) != 0,
            _ => false,
        }
    }

    /// The acknowledged ticks, newest first.
    pub fn ticks(self) -> impl Iterator<Item = u32> {
        core::iter::once(self.newest).chain(
            (1..=Self::SPAN)
                .filter(move |d| self.before & (1 << (d - 1)) != 0)
                .filter_map(move |d| self.newest.checked_sub(d)),
        )
    }

    /// One word: `(newest + 1) << 31 | before` (0 is "none").
    fn pack(self) -> u64 {
        ((u64::from(self.newest) + 1) << Self::SPAN) | u64::from(self.before)
    }

    fn unpack(v: u64) -> Option<Self> {
        let newest = (v >> Self::SPAN).checked_sub(1)?;
        Some(Self {
            newest: newest as u32,
            before: (v & Self::MASK) as u32,
        })
    }
}

impl Outbox {
    /// An outbox holding at most `max_reliable` reliable messages and
    /// tolerating `max_skipped` replaced snapshots in a row.
    #[must_use]
    pub fn new(max_reliable: usize, max_skipped: u32) -> Self {
        Self {
            inner: Mutex::new(Inner {
                max_reliable,
                max_skipped,
                ..Inner::default()
            }),
            notify: Notify::new(),
            acked: AtomicU64::new(0),
            implicit_acks: AtomicBool::new(false),
        }
    }

    /// Sets the bounds of [`Outbox::new`] anew: a session's outbox exists
    /// before the session knows its room, and the room sets its own bounds
    /// ([`crate::RoomConfig::max_queued_reliable`],
    /// [`crate::RoomConfig::max_skipped_snapshots`]) as the client joins.
    /// What is queued already stays.
    pub fn set_limits(&self, max_reliable: usize, max_skipped: u32) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        guard.max_reliable = max_reliable;
        guard.max_skipped = max_skipped;
    }

    /// Records the client's acknowledgement of snapshot `tick` (the newest
    /// one recorded stays the newest; an ack that arrives out of order only
    /// marks its tick in the window).
    pub fn record_ack(&self, tick: u32) {
        let _ = self
            .acked
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(AckWindow::add(AckWindow::unpack(v), tick).pack())
            });
    }

    /// Records that this client's acks are the session's writes of its
    /// snapshots (implicit acks), not messages from the client: an ack that
    /// does not move then means a write that cannot go out, never a loss
    /// being repaired on the way back (see [`crate::pace`]).
    pub fn set_implicit_acks(&self, on: bool) {
        self.implicit_acks.store(on, Ordering::Relaxed);
    }

    /// Whether [`Outbox::set_implicit_acks`] turned implicit acks on.
    #[must_use]
    pub fn implicit_acks(&self) -> bool {
        self.implicit_acks.load(Ordering::Relaxed)
    }

    /// The newest acknowledged snapshot tick, if any.
    #[must_use]
    pub fn latest_ack(&self) -> Option<u32> {
        self.acks().map(|w| w.newest)
    }

    /// The acknowledged snapshots, if any.
    #[must_use]
    pub fn acks(&self) -> Option<AckWindow> {
        AckWindow::unpack(self.acked.load(Ordering::Relaxed))
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
        self.with(|i| {
            let max = i.max_skipped;
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
        self.with(|i| {
            let max = i.max_reliable;
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

    /// Whether the snapshot queued last is still waiting to be sent (the
    /// session could not write it yet).
    #[must_use]
    pub fn snapshot_pending(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .snapshot
            .is_some()
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

    /// A room sets its own bounds on the outbox a session made before it
    /// knew its room.
    #[test]
    fn the_bounds_a_room_sets_are_the_ones_kept() {
        let o = Outbox::new(100, 100);
        o.set_limits(1, 1);
        o.push_reliable(Bytes::new());
        o.push_snapshot(Bytes::from_static(b"1"));
        o.push_snapshot(Bytes::from_static(b"2"));
        assert!(o.take().close.is_none(), "1 of each is within the bounds");
        o.push_reliable(Bytes::new());
        o.push_reliable(Bytes::new());
        assert_eq!(o.take().close.map(|c| c.0), Some(CloseCode::SlowConsumer));
        let o = Outbox::new(100, 100);
        o.set_limits(100, 1);
        for n in 0..3u8 {
            o.push_snapshot(Bytes::from(vec![n]));
        }
        let close = o.take().close.expect("closed");
        assert_eq!(close.0, CloseCode::SlowConsumer);
        assert_eq!(close.1, "fell 1 snapshots behind");
    }

    #[test]
    fn the_ack_window_remembers_the_ticks_before_the_newest() {
        let o = Outbox::new(2, 10);
        assert_eq!(o.acks(), None);
        for t in [10, 12, 11, 13, 40, 8] {
            o.record_ack(t);
        }
        let w = o.acks().unwrap();
        assert_eq!(w.newest, 40);
        // 13, 12, 11 and 10 are within 31 ticks of 40; 8 is not.
        assert_eq!(w.ticks().collect::<Vec<_>>(), [40, 13, 12, 11, 10]);
        assert!(w.contains(12) && !w.contains(14) && !w.contains(8) && !w.contains(41));
        // A jump past the window forgets everything before it.
        o.record_ack(100);
        assert_eq!(o.acks().unwrap().ticks().collect::<Vec<_>>(), [100]);
    }

    proptest::proptest! {
        /// The window agrees with a set of every acked tick, within its span.
        #[test]
        fn the_ack_window_matches_a_set(acks in proptest::collection::vec(0u32..200, 1..60)) {
            let o = Outbox::new(2, 10);
            let mut all = std::collections::BTreeSet::new();
            for &t in &acks {
                o.record_ack(t);
                all.insert(t);
            }
            let w = o.acks().unwrap();
            let newest = *all.last().unwrap();
            proptest::prop_assert_eq!(w.newest, newest);
            let expected: Vec<u32> = all
                .iter()
                .rev()
                .copied()
                .filter(|t| newest - t <= AckWindow::SPAN)
                .collect();
            proptest::prop_assert_eq!(w.ticks().collect::<Vec<_>>(), expected);
        }
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
