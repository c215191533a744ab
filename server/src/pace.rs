//! Each client's adaptive snapshot rate: a client that falls behind is sent
//! fewer snapshots, never more expensive ones.
//!
//! A client falls behind when it reads or applies snapshots more slowly than
//! the room sends them. Two signals show it, and the room reads both at every
//! snapshot tick, before building anything for the client:
//!
//! * **its outbox still holds the previous snapshot**: the session could not
//!   write it (the socket's send buffer is full). Building another would only
//!   replace it, so nothing is built;
//! * **its acknowledgements lag**: its newest acknowledged snapshot is older
//!   than its round trip explains (the smallest lag seen lately, plus the
//!   snapshots it is not sent, plus a margin of 150 ms: 100 ms of queue and
//!   the 50 ms a client may hold an ack), or more than
//!   half the baseline ring old. Its socket buffers or a queue on its path
//!   are filling, and once its baseline leaves the ring the only thing it
//!   could be sent is a full snapshot, the most expensive message there is.
//!   Reacting to the queue while it is short (a delay signal, as in LEDBAT
//!   or BBR) keeps its baselines in the ring. A lag counts only when the
//!   client's acknowledgements moved since its previous due snapshot: a
//!   loss on a reliable stream (TCP, or the link conditioner's stream mode)
//!   holds every ack back for a round trip and then delivers them all at
//!   once, fresh, which is not a queue, while a queue delivers acks that are
//!   each late. (Without this, 5 % loss at 50 ms each way slowed WSS clients
//!   to about 20 snapshots a second in the capacity report's table 4.) A
//!   lag past half the ring counts whether or not the acks moved, and so
//!   does every lag of a client with implicit acks (PROTOCOL.md §8.7), whose
//!   acks are the session's own writes: one that does not move is a write
//!   blocked on a full socket, a queue.
//!
//! Either way the client's interval doubles (every 2nd, 4th, … snapshot, up
//! to [`crate::RoomConfig::max_snapshot_slowdown`]), so its deltas stay
//! against baselines the ring still holds and it costs the room fewer builds,
//! not more. After [`RECOVER_AFTER`] prompt snapshots in a row the interval
//! shrinks by one. A client whose outbox stays full at the slowest rate for
//! more than [`crate::RoomConfig::max_skipped_snapshots`] snapshots is
//! closed with `SlowConsumer`.
//!
//! [`Pace`] is a plain state machine: no clock, no IO. The room calls
//! [`Pace::due`] once per snapshot tick per client.

/// Prompt snapshots in a row (the outbox was empty and the acks kept up)
/// before a slowed-down client's interval shrinks by one.
pub const RECOVER_AFTER: u32 = 8;

/// Due snapshots over which the smallest ack lag is remembered: the round
/// trip is the smallest lag of this window and the previous one, so a
/// lasting change of route is learnt within two windows.
pub const MIN_LAG_WINDOW: u32 = 256;

/// What the room does for one client at one snapshot tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Build and queue a snapshot.
    Build,
    /// Build nothing this tick.
    Skip,
    /// Close the client as a slow consumer: it stayed behind at the slowest
    /// rate for the given number of snapshots.
    Close(u32),
}

/// One client's snapshot pacing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pace {
    /// Send one snapshot in `every` (1: all of them).
    every: u32,
    /// Prompt due snapshots in a row.
    prompt: u32,
    /// Snapshots the outbox stayed full while at the slowest rate.
    stalled: u32,
    /// The smallest ack lag (ticks) of the current and previous windows.
    min_lag: [Option<u32>; 2],
    /// Due snapshots counted in the current window.
    window: u32,
    /// The newest acknowledged tick at the previous due snapshot.
    acked: Option<u32>,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            every: 1,
            prompt: 0,
            stalled: 0,
            min_lag: [None; 2],
            window: 0,
            acked: None,
        }
    }
}

/// A client's newest acknowledgement, as [`Pace::due`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The acknowledged tick.
    pub acked: u32,
    /// The time since that tick's snapshot was built, in ticks.
    pub lag: u32,
    /// The acks are the session's own writes (implicit acks): one that does
    /// not move is a write that cannot go out, a queue, not a stall on the
    /// way back.
    pub implicit: bool,
}

/// The limits a [`Pace`] works within (from the server config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceLimits {
    /// The longest interval, in snapshots (1: never slow down).
    pub max_every: u32,
    /// Acknowledgement lag, in ticks, from which a client always counts as
    /// behind (half the ring's span).
    pub max_ack_lag: u32,
    /// Ticks of lag over the client's round trip (and the snapshots it is
    /// not sent) from which it counts as behind.
    pub lag_margin: u32,
    /// Ticks between two snapshots of the room.
    pub interval: u32,
    /// Snapshots a client may stay stalled at the slowest rate.
    pub max_stalled: u32,
}

impl Pace {
    /// Whether the client's newest ack, `acked`, `lag` ticks old, shows a
    /// queue building up; records the lag for the round-trip estimate.
    fn lagging(
        &mut self,
        Ack {
            acked,
            lag,
            implicit,
        }: Ack,
        limits: PaceLimits,
    ) -> bool {
        let moved = implicit || self.acked != Some(acked);
        self.acked = Some(acked);
        let rtt = match self.min_lag {
            [Some(a), Some(b)] => Some(a.min(b)),
            [a, b] => a.or(b),
        };
        self.window += 1;
        if self.window >= MIN_LAG_WINDOW {
            self.window = 0;
            self.min_lag = [None, self.min_lag[0]];
        }
        self.min_lag[0] = Some(self.min_lag[0].map_or(lag, |m| m.min(lag)));
        // A client sent one snapshot in `every` acks the newest of them up
        // to `every - 1` snapshots later than one sent them all.
        let unsent = (self.every - 1) * limits.interval;
        lag > limits.max_ack_lag
            || (moved && rtt.is_some_and(|rtt| lag > rtt + unsent + limits.lag_margin))
    }

    /// The current interval: one snapshot in this many is sent.
    #[must_use]
    pub fn every(&self) -> u32 {
        self.every
    }

    /// Decides snapshot number `snapshot` of the room (its tick divided by
    /// the snapshot interval) for the client. `pending`: its outbox still
    /// holds the previous snapshot. `ack`: its newest acknowledged snapshot
    /// and the time since it was built (`None` before its first ack).
    ///
    /// A client sent one snapshot in `every` gets the snapshots whose number
    /// is a multiple of `every`: slowed-down clients are built for on the
    /// same ticks, where they can share baselines and bodies.
    #[must_use]
    pub fn due(
        &mut self,
        snapshot: u32,
        pending: bool,
        ack: Option<Ack>,
        limits: PaceLimits,
    ) -> Decision {
        let max_every = limits.max_every.max(1);
        if !snapshot.is_multiple_of(self.every) {
            return Decision::Skip;
        }
        let lagging = ack.is_some_and(|ack| self.lagging(ack, limits));
        if pending || lagging {
            self.prompt = 0;
            if self.every < max_every {
                self.every = (self.every * 2).min(max_every);
            } else if pending {
                self.stalled = self.stalled.saturating_add(self.every);
                if self.stalled > limits.max_stalled {
                    return Decision::Close(self.stalled);
                }
            }
        } else {
            self.stalled = 0;
            self.prompt += 1;
            if self.prompt >= RECOVER_AFTER && self.every > 1 {
                self.every -= 1;
                self.prompt = 0;
            }
        }
        if pending {
            // A new snapshot would only replace the one still queued.
            Decision::Skip
        } else {
            Decision::Build
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: PaceLimits = PaceLimits {
        max_every: 8,
        max_ack_lag: 32,
        lag_margin: 6,
        interval: 1,
        max_stalled: 120,
    };

    /// A pace and the room's snapshot count. Its client's newest ack moves
    /// at every due snapshot unless [`Paced::stalled`] says otherwise.
    #[derive(Default)]
    struct Paced {
        pace: Pace,
        n: u32,
        /// [`Paced::stalled`]'s acks are implicit.
        implicit: bool,
    }

    impl Paced {
        fn due(&mut self, pending: bool, lag: Option<u32>, limits: PaceLimits) -> Decision {
            self.n += 1;
            let ack = lag.map(|lag| Ack {
                acked: self.n,
                lag,
                implicit: false,
            });
            self.pace.due(self.n - 1, pending, ack, limits)
        }

        /// A due snapshot at which the newest ack is still `acked`.
        fn stalled(&mut self, acked: u32, lag: u32) -> Decision {
            self.n += 1;
            let ack = Ack {
                acked,
                lag,
                implicit: self.implicit,
            };
            self.pace.due(self.n - 1, false, Some(ack), LIMITS)
        }

        fn every(&self) -> u32 {
            self.pace.every()
        }
    }

    /// Runs `n` snapshot ticks with the same signals; returns how many built.
    fn run(p: &mut Paced, n: u32, pending: bool, lag: Option<u32>) -> u32 {
        (0..n)
            .filter(|_| p.due(pending, lag, LIMITS) == Decision::Build)
            .count() as u32
    }

    #[test]
    fn a_prompt_client_gets_every_snapshot() {
        let mut p = Paced::default();
        assert_eq!(run(&mut p, 100, false, Some(2)), 100);
        assert_eq!(p.every(), 1);
        assert_eq!(run(&mut p, 10, false, None), 10, "before its first ack");
    }

    #[test]
    fn lagging_acks_slow_the_client_down_to_the_slowest_rate() {
        let mut p = Paced::default();
        // Built at snapshots 0 (then 1 in 2), 2 (1 in 4), 4 (1 in 8), then
        // 8, 16, …, 56.
        let built = run(&mut p, 64, false, Some(40));
        assert_eq!(p.every(), 8);
        assert_eq!(built, 3 + 7);
        // A lagging client that is not stalled is never closed.
        assert_eq!(run(&mut p, 10_000, false, Some(40)), 10_000 / 8);
    }

    #[test]
    fn a_long_round_trip_is_not_a_queue_but_a_growing_lag_is() {
        let mut p = Paced::default();
        // 20 ticks of round trip (under the 32 of the ceiling), steady.
        assert_eq!(run(&mut p, 1_000, false, Some(20)), 1_000);
        assert_eq!(p.every(), 1);
        // 6 ticks more is within the margin; 7 more is a queue.
        assert_eq!(run(&mut p, 10, false, Some(26)), 10);
        assert_eq!(p.due(false, Some(27), LIMITS), Decision::Build);
        assert_eq!(p.every(), 2);
        // At one in 2 the newest ack may be one snapshot older.
        assert_eq!(
            run(&mut p, 2 * RECOVER_AFTER, false, Some(21)),
            RECOVER_AFTER
        );
        assert_eq!(p.every(), 1);
    }

    /// A loss on a reliable stream holds every ack back for a round trip or
    /// two, then delivers them all: while nothing moves, a lag far over the
    /// margin (under the ceiling) is not a queue; acks that move but stay
    /// late are.
    #[test]
    fn loss_stalls_on_a_reliable_stream_are_not_a_queue() {
        let mut p = Paced::default();
        let _ = run(&mut p, 100, false, Some(6));
        for _ in 0..50 {
            // A stall: the newest ack stays put while its lag grows to 6 + 24
            // ticks (under the ceiling of 32)…
            let acked = p.n;
            for extra in 1..=24 {
                assert_eq!(p.stalled(acked, 6 + extra), Decision::Build);
            }
            // …then the acks arrive, fresh, until the next loss.
            assert_eq!(run(&mut p, 10, false, Some(6)), 10);
        }
        assert_eq!(p.every(), 1);
        // Acks that move but are each 19 ticks late: a queue.
        assert_eq!(p.due(false, Some(25), LIMITS), Decision::Build);
        assert_eq!(p.every(), 2);
        // Past the ceiling, a stall counts too.
        let mut p = Paced::default();
        let _ = run(&mut p, 100, false, Some(6));
        let acked = p.n;
        let _ = p.stalled(acked, 33);
        assert_eq!(p.every(), 2);
        // With implicit acks, an ack that does not move is a blocked write.
        let mut p = Paced {
            implicit: true,
            ..Paced::default()
        };
        let _ = run(&mut p, 100, false, Some(6));
        let acked = p.n;
        let _ = p.stalled(acked, 25);
        assert_eq!(p.every(), 2);
    }

    #[test]
    fn a_longer_route_is_learnt_within_two_windows() {
        let mut p = Paced::default();
        let _ = run(&mut p, 100, false, Some(2));
        // The round trip grows for good to 12 ticks: behind at first…
        let _ = run(&mut p, 50, false, Some(12));
        assert!(p.every() > 1);
        // …then learnt, and the rate recovers.
        let _ = run(&mut p, 8 * 2 * MIN_LAG_WINDOW, false, Some(12));
        assert_eq!(p.every(), 1);
    }

    #[test]
    fn a_client_that_catches_up_recovers_step_by_step() {
        let mut p = Paced::default();
        let _ = run(&mut p, 64, false, Some(40));
        assert_eq!(p.every(), 8);
        // 8 prompt sends at every 8th: one step back.
        let _ = run(&mut p, 8 * 8, false, Some(1));
        assert_eq!(p.every(), 7);
        let _ = run(&mut p, 1_000, false, Some(1));
        assert_eq!(p.every(), 1);
        assert_eq!(run(&mut p, 10, false, Some(1)), 10);
    }

    #[test]
    fn a_full_outbox_is_never_replaced_and_closes_at_the_slowest_rate() {
        let mut p = Paced::default();
        let mut built = 0;
        let mut closed = None;
        for n in 0..1_000u32 {
            match p.due(true, None, LIMITS) {
                Decision::Build => built += 1,
                Decision::Skip => {}
                Decision::Close(after) => {
                    closed = Some((n, after));
                    break;
                }
            }
        }
        assert_eq!(built, 0, "a pending snapshot is never replaced");
        let (n, after) = closed.expect("a stalled client is closed");
        assert!(after > LIMITS.max_stalled, "closed after {after} snapshots");
        // 4 snapshots to reach the slowest rate, then 8 per check.
        assert!(n <= 7 + LIMITS.max_stalled + 16, "closed at snapshot {n}");
    }

    #[test]
    fn a_stall_that_clears_resets_the_count() {
        let mut p = Paced::default();
        let mut decide = |pending| p.due(pending, None, LIMITS);
        for _ in 0..10 {
            // 100 snapshots stalled (under the limit of 120), then 8 prompt
            // ones: never closed, though the stalls add up to 1,000.
            for pending in [true; 100].into_iter().chain([false; 8]) {
                assert!(!matches!(decide(pending), Decision::Close(_)));
            }
        }
        assert!((0..200).any(|_| matches!(decide(true), Decision::Close(_))));
    }

    #[test]
    fn max_every_one_turns_slowing_down_off() {
        let limits = PaceLimits {
            max_every: 1,
            ..LIMITS
        };
        let mut p = Paced::default();
        let built = (0..100)
            .filter(|_| p.due(false, Some(1_000), limits) == Decision::Build)
            .count();
        assert_eq!(built, 100);
    }
}
