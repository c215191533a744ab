//! A room's configuration: its tick and snapshot rates, its capacity, and the
//! limits and policies that belong to one room, with documented defaults.
//!
//! Every room of a server runs with [`crate::ServerConfig::room`] unless the
//! server was given a hook with [`crate::Server::with_room_config`], which
//! gives each room its own (by name and game mode, like Colyseus's
//! `define("battle", BattleRoom, options)` or a Nakama match's config). A
//! room's config is checked with [`RoomConfig::validate`] when the room
//! opens: a config that cannot work refuses the join that would open the
//! room ([`tickwire_shared::RejectCode::InvalidRoom`]) and is logged with
//! its [`RoomConfigError`]; the server and its other rooms go on.
//!
//! What belongs to a room, and what to the listener
//! ([`crate::config::ListenerConfig`], [`crate::config::SessionConfig`]):
//! anything the room task reads (rates, capacity, replication, pacing, the
//! byte budget, input and game-message queues, the resume grace, how long
//! an empty room lives), and the per-session limits that only make sense
//! with the room's rates (the message rate limits, the outbox bounds). What
//! a connection needs before it knows its room (addresses, TLS, the
//! handshake deadline, decode limits, idle and write timeouts, auth) is the
//! listener's.
//!
//! ```
//! use std::time::Duration;
//! use tickwire_server::RoomConfig;
//! let duel = RoomConfig::default()
//!     .with_tick_rate(30)
//!     .with_snapshot_interval(2)
//!     .with_max_clients(2)
//!     .with_resume_grace(Duration::from_secs(60));
//! assert_eq!(duel.validate(), Ok(()));
//! assert_eq!(duel.snapshot_period(), Duration::from_secs(1) / 15);
//! ```

use std::time::Duration;

pub use crate::config_error::RoomConfigError;
use crate::messages::MessageLimits;

/// The configuration of one room. Build it with [`RoomConfig::default`] and
/// the `with_*` methods, or set fields directly; check it with
/// [`RoomConfig::validate`] (the server does, as the room opens).
///
/// ```
/// use tickwire_server::{RoomConfig, RoomConfigError};
/// let mut lobby = RoomConfig::default().with_max_clients(200);
/// lobby.tick_rate = 10;
/// assert_eq!(lobby.validate(), Ok(()));
/// lobby.max_clients = 0;
/// assert_eq!(lobby.validate(), Err(RoomConfigError::MaxClients));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomConfig {
    /// Ticks per second, 1 to 1,000. Default 60.
    pub tick_rate: u16,
    /// Send a snapshot every this many ticks (1 = every tick). Default 1.
    pub snapshot_interval: u16,
    /// Clients in the room at most (attached, or detached within their
    /// resume grace): a hello naming a full room gets `RoomFull`; an
    /// unnamed one goes to another room. Default 64.
    pub max_clients: usize,
    /// A dropped session can resume within this grace period (its
    /// entities stay). Zero: a dropped client leaves at once. Default 10 s.
    pub resume_grace: Duration,
    /// An empty room closes after this long (at once while the node
    /// drains). Default 30 s.
    pub empty_grace: Duration,

    /// Snapshots kept for delta baselines (ticks). At least 2. Default 64.
    pub baseline_ring: usize,
    /// Send deltas against each client's newest acknowledged snapshot.
    /// When false, every snapshot is sent full (no baseline): more bytes,
    /// for measuring what deltas save or for debugging. Default true.
    pub deltas: bool,
    /// How many snapshots older than its newest acknowledgement a client's
    /// delta baseline may be, so that clients whose acks are spread over a
    /// few ticks (different round trips) share one baseline: every distinct
    /// baseline of a tick costs a diff of the world, shared clients cost
    /// none. Each client gets, among the snapshots it acknowledged within
    /// this window, the one most clients can use. 0: always the newest
    /// acknowledged snapshot. At most 31; the window spans
    /// `baseline_snap × snapshot_interval` ticks, capped at the 31 ticks of
    /// acknowledgements a client's outbox records (so at a snapshot every 8
    /// ticks or more, the default shares baselines within 31 ticks).
    /// Default 4 (67 ms at 60 snapshots/s).
    pub baseline_snap: u16,
    /// Write a delta's patches with the game's field-by-field diff
    /// ([`tickwire_shared::GameProtocol::diff_fields`], derived with
    /// `#[derive(tickwire_derive::Patch)]`) where it has one. When false,
    /// every patch goes through serde's flattener: the same bytes, more CPU,
    /// for measuring what the derive saves or for debugging. Default true.
    pub field_diff: bool,

    /// Inputs applied per client per tick at most (the excess waits; beyond
    /// `max_queued_inputs` it is dropped). Default 2.
    pub max_inputs_per_tick: usize,
    /// Inputs queued per client at most. At least `max_inputs_per_tick`.
    /// Default 16.
    pub max_queued_inputs: usize,
    /// Messages per second a client of this room may send (token bucket,
    /// burst = `max_messages_per_sec / 2`). Over it the session closes with
    /// `InputFlood`. Default 240.
    pub max_messages_per_sec: u32,
    /// Reliable game messages (`GameProtocol::Message`): rate limit, queue
    /// bound and per-tick budget. See [`MessageLimits`].
    pub game_messages: MessageLimits,
    /// Reliable messages (events, pongs) queued per session before the
    /// session is closed as a slow consumer. At least 1. Default 256.
    pub max_queued_reliable: usize,
    /// Snapshots in a row that a session failed to send (each replaced by a
    /// newer one) before it is closed as a slow consumer. Default 120.
    pub max_skipped_snapshots: u32,
    /// How far a client that falls behind is slowed down: it is sent one
    /// snapshot in up to this many, deltas against a baseline the ring still
    /// holds, rather than every snapshot (and, once its baseline left the
    /// ring, full ones). A client falls behind when its outbox still holds
    /// the previous snapshot or its newest acknowledgement is more than half
    /// the ring (`baseline_ring / 2` snapshots) old; its rate recovers step
    /// by step once it keeps up. A client still stalled at the slowest rate
    /// for `max_skipped_snapshots` snapshots is closed as a slow consumer.
    /// 1: never slow down. Default 8 (7.5 snapshots/s at 60).
    pub max_snapshot_slowdown: u16,
    /// Each client's byte budget for snapshots, in bytes per second (the
    /// protocol payload, before WebSocket/TLS framing). When a snapshot
    /// would exceed it, lower-priority changes wait for a later snapshot and
    /// their priority ([`crate::Game::priority`]) accumulates until they are
    /// sent; see `budget.rs`. Nothing changes on the wire. Needs `deltas`.
    /// Default none (every change of every snapshot is sent).
    pub client_bytes_per_sec: Option<u32>,
    /// With a byte budget, the longest a changed entity waits: after this
    /// it is sent whatever the budget (so a budget too small for the view
    /// is exceeded rather than leaving entities stale). At most half the
    /// ring (`baseline_ring × snapshot_interval / 2` ticks) when a budget
    /// is set. Default 500 ms.
    pub budget_max_wait: Duration,
    /// Bounded channel from sessions to the room for joins, leaves and
    /// disconnects (commands that wake the room). At least 1. Default
    /// 1,024. Inputs travel on a second channel that the room reads once
    /// per tick; see [`RoomConfig::message_capacity`].
    pub channel_capacity: usize,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            tick_rate: 60,
            snapshot_interval: 1,
            max_clients: 64,
            resume_grace: Duration::from_secs(10),
            empty_grace: Duration::from_secs(30),
            baseline_ring: 64,
            deltas: true,
            baseline_snap: 4,
            field_diff: true,
            max_inputs_per_tick: 2,
            max_queued_inputs: 16,
            max_messages_per_sec: 240,
            game_messages: MessageLimits::default(),
            max_queued_reliable: 256,
            max_skipped_snapshots: 120,
            max_snapshot_slowdown: 8,
            client_bytes_per_sec: None,
            budget_max_wait: Duration::from_millis(500),
            channel_capacity: 1024,
        }
    }
}

/// `with_*` setters, one per field: `with! { Type; /// doc name: path: type, }`.
macro_rules! with {
    ($ty:ty; $($(#[$m:meta])* $name:ident: $($field:ident).+: $fty:ty,)*) => {
        impl $ty {
            $($(#[$m])* #[must_use] pub fn $name(mut self, v: $fty) -> Self { self.$($field).+ = v; self })*
        }
    };
}
pub(crate) use with;

with! { RoomConfig;
    /// Sets [`RoomConfig::tick_rate`].
    with_tick_rate: tick_rate: u16,
    /// Sets [`RoomConfig::snapshot_interval`].
    with_snapshot_interval: snapshot_interval: u16,
    /// Sets [`RoomConfig::max_clients`].
    with_max_clients: max_clients: usize,
    /// Sets [`RoomConfig::resume_grace`].
    with_resume_grace: resume_grace: Duration,
    /// Sets [`RoomConfig::empty_grace`].
    with_empty_grace: empty_grace: Duration,
    /// Sets [`RoomConfig::baseline_ring`].
    with_baseline_ring: baseline_ring: usize,
    /// Sets [`RoomConfig::deltas`].
    with_deltas: deltas: bool,
    /// Sets [`RoomConfig::baseline_snap`].
    with_baseline_snap: baseline_snap: u16,
    /// Sets [`RoomConfig::field_diff`].
    with_field_diff: field_diff: bool,
    /// Sets [`RoomConfig::max_messages_per_sec`].
    with_max_messages_per_sec: max_messages_per_sec: u32,
    /// Sets [`RoomConfig::game_messages`].
    with_game_messages: game_messages: MessageLimits,
    /// Sets [`RoomConfig::max_queued_reliable`].
    with_max_queued_reliable: max_queued_reliable: usize,
    /// Sets [`RoomConfig::max_skipped_snapshots`].
    with_max_skipped_snapshots: max_skipped_snapshots: u32,
    /// Sets [`RoomConfig::max_snapshot_slowdown`].
    with_max_snapshot_slowdown: max_snapshot_slowdown: u16,
    /// Sets [`RoomConfig::client_bytes_per_sec`].
    with_client_bytes_per_sec: client_bytes_per_sec: Option<u32>,
    /// Sets [`RoomConfig::budget_max_wait`].
    with_budget_max_wait: budget_max_wait: Duration,
    /// Sets [`RoomConfig::channel_capacity`].
    with_channel_capacity: channel_capacity: usize,
}

impl RoomConfig {
    /// Sets [`RoomConfig::max_inputs_per_tick`] and
    /// [`RoomConfig::max_queued_inputs`].
    #[must_use]
    pub fn with_input_queue(mut self, per_tick: usize, queued: usize) -> Self {
        self.max_inputs_per_tick = per_tick;
        self.max_queued_inputs = queued;
        self
    }

    /// The tick period (of `tick_rate`, at least 1).
    #[must_use]
    pub fn tick_period(&self) -> Duration {
        Duration::from_secs(1) / u32::from(self.tick_rate.max(1))
    }

    /// The time between two snapshots: `snapshot_interval` tick periods.
    #[must_use]
    pub fn snapshot_period(&self) -> Duration {
        self.tick_period() * u32::from(self.snapshot_interval.max(1))
    }

    /// The capacity of the room's input channel, which the room reads once
    /// per tick: a tick's worth of messages from a full room at the message
    /// rate limit (`max_clients` × ⌈`max_messages_per_sec` / `tick_rate`⌉),
    /// twice over for a late tick, and at least
    /// [`RoomConfig::channel_capacity`]. A message that finds it full is
    /// dropped (an input is resent until acked).
    ///
    /// ```
    /// let c = tickwire_server::RoomConfig::default();
    /// assert!(c.message_capacity() >= c.max_clients * 4);
    /// ```
    #[must_use]
    pub fn message_capacity(&self) -> usize {
        let per_tick = self
            .max_messages_per_sec
            .div_ceil(u32::from(self.tick_rate.max(1)))
            .max(1) as usize;
        self.max_clients
            .saturating_mul(per_tick)
            .saturating_mul(2)
            .max(self.channel_capacity)
    }

    /// Checks that the values can work together.
    ///
    /// # Errors
    /// A [`RoomConfigError`] naming the rule and the values it saw.
    pub fn validate(&self) -> Result<(), RoomConfigError> {
        use RoomConfigError as E;
        if self.tick_rate == 0 || self.tick_rate > 1000 {
            return Err(E::TickRate(self.tick_rate));
        }
        if self.snapshot_interval == 0 {
            return Err(E::SnapshotInterval);
        }
        if self.max_clients == 0 {
            return Err(E::MaxClients);
        }
        if self.max_snapshot_slowdown == 0 {
            return Err(E::MaxSnapshotSlowdown);
        }
        if self.client_bytes_per_sec == Some(0) {
            return Err(E::ClientBytesPerSec);
        }
        if self.baseline_ring < 2 {
            return Err(E::BaselineRing(self.baseline_ring));
        }
        let max_ticks =
            (self.baseline_ring as u64).saturating_mul(u64::from(self.snapshot_interval)) / 2;
        let wait_ticks =
            (self.budget_max_wait.as_secs_f64() * f64::from(self.tick_rate)).ceil() as u64;
        if self.client_bytes_per_sec.is_some() && wait_ticks > max_ticks {
            return Err(E::BudgetMaxWait {
                wait_ticks,
                max_ticks,
            });
        }
        let max = crate::outbox::AckWindow::SPAN;
        if u32::from(self.baseline_snap) > max {
            return Err(E::BaselineSnap {
                snapshots: self.baseline_snap,
                max,
            });
        }
        if self.max_inputs_per_tick == 0 || self.max_queued_inputs < self.max_inputs_per_tick {
            return Err(E::InputQueue {
                per_tick: self.max_inputs_per_tick,
                queued: self.max_queued_inputs,
            });
        }
        let gm = &self.game_messages;
        for (name, value) in [
            ("burst", gm.burst as usize),
            ("max_queued", gm.max_queued),
            ("max_per_tick", gm.max_per_tick),
        ] {
            if value == 0 {
                return Err(E::GameMessages(name));
            }
        }
        for (name, value) in [
            ("max_queued_reliable", self.max_queued_reliable),
            ("channel_capacity", self.channel_capacity),
        ] {
            if value == 0 {
                return Err(E::Zero(name));
            }
        }
        Ok(())
    }
}

/// The room a [`crate::Server::with_room_config`] hook configures: its name
/// and its game mode (the seat token's that opened it, else the node's
/// [`crate::FleetConfig::mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomSpec<'a> {
    /// The room's name (the hello's, the seat token's, or `room-N` for an
    /// unnamed join).
    pub name: &'a str,
    /// The room's game mode (empty unless set).
    pub mode: &'a str,
}

impl<'a> RoomSpec<'a> {
    /// A room named `name` of mode `mode`.
    #[must_use]
    pub fn new(name: &'a str, mode: &'a str) -> Self {
        Self { name, mode }
    }
}

/// A hook that gives a room its own config: see
/// [`crate::Server::with_room_config`].
pub(crate) type RoomConfigHook =
    dyn Fn(&RoomSpec<'_>, &RoomConfig) -> RoomConfig + Send + Sync + 'static;

#[cfg(test)]
mod tests {
    use super::*;

    /// `check(change, expected)`: the default room config with one change
    /// is refused with exactly that error.
    fn check(change: impl FnOnce(&mut RoomConfig), want: RoomConfigError) {
        let mut c = RoomConfig::default();
        change(&mut c);
        assert_eq!(c.validate(), Err(want));
    }

    #[test]
    fn each_room_rule_has_its_variant() {
        assert_eq!(RoomConfig::default().validate(), Ok(()));
        check(|c| c.tick_rate = 1001, RoomConfigError::TickRate(1001));
        check(|c| c.tick_rate = 0, RoomConfigError::TickRate(0));
        check(
            |c| c.snapshot_interval = 0,
            RoomConfigError::SnapshotInterval,
        );
        check(|c| c.max_clients = 0, RoomConfigError::MaxClients);
        check(
            |c| c.max_snapshot_slowdown = 0,
            RoomConfigError::MaxSnapshotSlowdown,
        );
        check(
            |c| c.client_bytes_per_sec = Some(0),
            RoomConfigError::ClientBytesPerSec,
        );
        check(|c| c.baseline_ring = 1, RoomConfigError::BaselineRing(1));
        check(
            |c| {
                c.client_bytes_per_sec = Some(1000);
                c.budget_max_wait = Duration::from_secs(1);
            },
            RoomConfigError::BudgetMaxWait {
                wait_ticks: 60,
                max_ticks: 32,
            },
        );
        check(
            |c| c.baseline_snap = 40,
            RoomConfigError::BaselineSnap {
                snapshots: 40,
                max: 31,
            },
        );
        check(
            |c| c.max_queued_inputs = 1,
            RoomConfigError::InputQueue {
                per_tick: 2,
                queued: 1,
            },
        );
        check(
            |c| c.game_messages.max_per_tick = 0,
            RoomConfigError::GameMessages("max_per_tick"),
        );
        check(
            |c| c.channel_capacity = 0,
            RoomConfigError::Zero("channel_capacity"),
        );
        check(
            |c| c.max_queued_reliable = 0,
            RoomConfigError::Zero("max_queued_reliable"),
        );
    }

    /// The default `baseline_snap` fits every snapshot rate: its window is
    /// capped at the acks an outbox records, not refused (an arena server
    /// with `--snapshot-rate 1` was refused at start).
    #[test]
    fn slow_snapshot_rates_keep_the_default_baseline_snap() {
        for interval in [1, 7, 8, 60, 240] {
            let c = RoomConfig::default().with_snapshot_interval(interval);
            assert_eq!(c.validate(), Ok(()), "snapshot_interval {interval}");
        }
        let c = RoomConfig::default().with_baseline_snap(31);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn rates_and_capacities_follow_the_fields() {
        let c = RoomConfig::default()
            .with_tick_rate(20)
            .with_snapshot_interval(2)
            .with_max_clients(10);
        assert_eq!(c.tick_period(), Duration::from_millis(50));
        assert_eq!(c.snapshot_period(), Duration::from_millis(100));
        // 10 clients × ⌈240 / 20⌉ × 2 = 240, under the channel's 1,024.
        assert_eq!(c.message_capacity(), 1024);
        assert_eq!(c.clone().with_max_clients(100).message_capacity(), 2400);
    }
}
