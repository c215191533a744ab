//! The client's half of the protocol, sans IO: [`ClientSession`] and its
//! [`ClientWorld`].
//!
//! Every tickwire client (the native client, the bots, the browser SDK, the
//! tests and the benches) is a thin driver around this one state machine, so
//! the client rules of `docs/PROTOCOL.md` exist exactly once: the handshake,
//! input sequencing and resending (§7), snapshots, acks and baselines (§8.7),
//! ping/pong, leaving, resuming (§6.6) and which endings may be retried.
//!
//! ```text
//!            ┌──────────────────────── ClientSession ────────────────────────┐
//!  bytes ──▶ │ handle_message(now, bytes, channel)                           │ ──▶ poll_event()
//!  input ──▶ │ push_input(now, input) ─▶ InputWindow (unapplied, resent)     │       Welcome, Snapshot,
//!  timer ──▶ │ handle_timeout(now)      ClientWorld (patched in place)      │       Events, Rtt, Closed
//!  close ──▶ │ handle_transport_closed  handshake · acks · pings · leave     │ ──▶ poll_transmit(now, buf)
//!            └───────────────────────────────────────────────────────────────┘ ──▶ poll_timeout()
//! ```
//!
//! # Call order (a driver's loop)
//!
//! 1. [`ClientSession::new`] queues the `Hello`. Open the transport, then
//!    send every [`ClientSession::poll_transmit`] (until it returns `None`).
//! 2. Feed each received message to [`ClientSession::handle_message`], saying
//!    whether it came reliably (WebSocket, QUIC stream) or as a datagram.
//! 3. After each `handle_*` or `push_input` call, drain
//!    [`ClientSession::poll_event`] and then [`ClientSession::poll_transmit`].
//! 4. Arm a timer for [`ClientSession::poll_timeout`]; when it fires call
//!    [`ClientSession::handle_timeout`] (then step 3).
//! 5. When the transport ends, call [`ClientSession::handle_transport_closed`].
//!    When an [`Event::Closed`] with `local: true` comes out, close the
//!    transport with its code and reason.
//! 6. To reconnect after a drop, open a new transport and call
//!    [`ClientSession::resume`] (then step 1's sends).
//!
//! Time is a [`Duration`] since any epoch the driver picks; nothing here
//! reads a clock.
//!
//! ```
//! use std::time::Duration;
//! use tickwire_shared::client::{Channel, ClientConfig, ClientSession, Event};
//! use tickwire_shared::{GameProtocol, Hello, ServerMessage, Welcome, ResumeToken};
//! # struct Dots;
//! # impl GameProtocol for Dots {
//! #     const NAME: &'static str = "dots"; const VERSION: u32 = 1;
//! #     type Input = (i8, i8); type EntityState = (i32, i32); type Event = String; type Message = ();
//! # }
//! let now = Duration::ZERO;
//! let mut session = ClientSession::<Dots>::new(now, Hello::new(Dots::PROTOCOL_HASH), ClientConfig::default());
//! let mut buf = Vec::new();
//! assert_eq!(session.poll_transmit(now, &mut buf), Some(Channel::Reliable)); // the Hello
//! # let welcome = ServerMessage::<String>::Welcome(Welcome { client_id: 1, tick_rate: 60, tick: 0,
//! #     snapshot_interval: 1, resume_token: ResumeToken([0; 16]), room: "r".into(), resumed: false,
//! #     implicit_acks: None })
//! #     .to_bytes().unwrap();
//! session.handle_message(now, &welcome, Channel::Reliable);
//! assert!(matches!(session.poll_event(), Some(Event::Welcome(_))));
//! let seq = session.push_input(now, (1, 0)).unwrap();
//! assert_eq!(seq, 1);
//! assert_eq!(session.poll_transmit(now, &mut buf), Some(Channel::Unreliable)); // Inputs
//! ```

mod index;
mod inputs;
mod messages;
mod world;

use std::collections::VecDeque;
use std::time::Duration;

pub use messages::SendMessageError;
pub use world::{ApplyError, Changes, ClientWorld};

use crate::codec::{DecodeError, Writer};
use crate::game::GameProtocol;
use crate::handshake::{ClientHandshake, CloseCode, HandshakeError, Hello, RejectCode, Welcome};
use crate::limits::Limits;
use crate::message::{ClientMessage, ServerMessage, SnapshotFrame};
use inputs::InputWindow;
use messages::MessageQueue;

/// How a message travels. A driver without datagrams sends both kinds
/// reliably.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// In order and reliable: the WebSocket, or the QUIC stream.
    Reliable,
    /// May be lost, duplicated or reordered: a QUIC datagram. Only messages
    /// whose loss costs nothing travel this way (inputs are resent until
    /// applied; acks are cumulative).
    Unreliable,
}

/// Settings of a [`ClientSession`], with documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Decoder limits; must match the server's. Default: [`Limits::default`].
    pub limits: Limits,
    /// Ticks kept as delta baselines. Default: 64.
    pub baseline_capacity: usize,
    /// Unapplied inputs kept for resending and prediction (the newest
    /// `limits.max_inputs_per_message` of them go in each message).
    /// Default: 128 (about two seconds at 60 Hz).
    pub max_pending_inputs: usize,
    /// How often to measure the round-trip time with a `Ping`; `None` turns
    /// pings off. Default: 1 s.
    pub ping_interval: Option<Duration>,
    /// How long to wait for the `Welcome` after [`ClientSession::new`] or
    /// [`ClientSession::resume`]. Default: 10 s (the server's default).
    pub handshake_timeout: Duration,
    /// The session ends with [`CloseCode::IdleTimeout`] when nothing at all
    /// arrives for this long after the welcome; `None` waits forever.
    /// Default: 10 s.
    pub idle_timeout: Option<Duration>,
    /// Game messages ([`ClientSession::send_message`]) waiting for
    /// [`ClientSession::poll_transmit`] at most; past it `send_message`
    /// returns [`SendMessageError::QueueFull`]. Default: 64.
    pub max_queued_messages: usize,
    /// When applied snapshots are acknowledged (PROTOCOL.md §8.7). Default:
    /// [`AckPolicy::EVERY_SNAPSHOT`] (see [`AckPolicy::DELAYED`] for why it
    /// is not the delayed policy).
    pub acks: AckPolicy,
    /// Ask the server for implicit acks (PROTOCOL.md §8.7): where the
    /// server grants them (`Welcome::implicit_acks`, on WSS), it counts
    /// every snapshot it writes as acknowledged, and the session sends no
    /// `Ack` for snapshots that arrive on [`Channel::Reliable`]: no message
    /// per snapshot from an idle client, and no read for the server. Where
    /// it does not (QUIC, WebTransport, or a server that turned them off),
    /// `acks` applies as usual. [`ClientSession::new`] writes this into the
    /// hello's [`Hello::implicit_acks`]. A server that predates the option
    /// refuses such a hello (close `1002`): turn it off to talk to one.
    /// Default: true.
    pub implicit_acks: bool,
}

/// When a [`ClientSession`] acknowledges the snapshots it applied.
///
/// Every ack costs the server a read, and an ack per snapshot is most of
/// what an idle client sends. A delayed policy ([`AckPolicy::DELAYED`])
/// acks like TCP: a pending ack rides with the next `Inputs` (in the same
/// [`ClientSession::poll_transmit`] batch, so a driver writes both at
/// once), and a client that sends no inputs acks on its own once per
/// `every` snapshot intervals, on **aligned ticks**: the first snapshot it
/// applies at or past each multiple of `every × snapshot_interval` ticks
/// (from the welcome), or `max_delay` after the oldest unacknowledged
/// snapshot, whichever comes first. Idle clients of a room that keep up
/// thus acknowledge the same ticks, and the server can diff them all
/// against one baseline. A full snapshot is acknowledged at once: until
/// the server sees that ack, every snapshot it sends is full.
///
/// Keep `every × snapshot period` within `max_delay` plus one snapshot
/// period, or the timer, not the alignment, decides most acks.
///
/// **Why the default is [`AckPolicy::EVERY_SNAPSHOT`].** Measured in the
/// Colyseus scene (BENCHMARKS.md), the delayed policy before alignment cut
/// the server's context switches 2.7× but did not lower its CPU: idle
/// clients that acked every third snapshot at their own phases had no acked
/// tick in common, so the server diffed the world against up to three
/// baselines per tick instead of one. With aligned acks, four runs of six
/// cut the server's CPU by up to 27 %, but two went 2.5–4× worse (not yet
/// explained; BENCHMARKS.md), so the delayed policy stays opt-in.
///
/// The server needs nothing from acks beyond the baselines it may diff
/// against and a sign that the client keeps up: its pacing (PROTOCOL.md
/// §8.8) allows [`AckPolicy::MAX_DELAY`] on top of a client's round trip,
/// so keep `max_delay` within it.
/// `AckPolicy::EVERY_SNAPSHOT` restores one ack per snapshot.
///
/// **Byte budgets.** A delta goes against an acked baseline, so whatever
/// the server sent after it is sent again until acked. Against a server
/// that limits this client's bytes per second (PROTOCOL.md §8.9), a delayed
/// ack spends budget on those re-sends: give such clients
/// `AckPolicy::EVERY_SNAPSHOT`, or send inputs every tick (their acks ride
/// along).
///
/// ```
/// use std::time::Duration;
/// use tickwire_shared::client::{AckPolicy, ClientConfig};
/// let config = ClientConfig::default().with_acks(AckPolicy { every: 2, max_delay: Duration::from_millis(30) });
/// assert_eq!(config.acks.every, 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckPolicy {
    /// A standalone ack goes out for the first snapshot applied at or past
    /// each multiple of this many snapshot intervals (aligned ticks). 1
    /// acknowledges every snapshot at once.
    pub every: u32,
    /// … or this long after the oldest unacknowledged snapshot was applied.
    pub max_delay: Duration,
}

impl AckPolicy {
    /// The longest a client should hold an ack (PROTOCOL.md §8.7): the
    /// server's pacing allows for it on top of a client's round trip.
    pub const MAX_DELAY: Duration = Duration::from_millis(50);

    /// An ack for every applied snapshot, sent at once (the default).
    pub const EVERY_SNAPSHOT: Self = Self {
        every: 1,
        max_delay: Duration::ZERO,
    };

    /// With the next inputs, or on its own on aligned ticks every 3
    /// snapshot intervals, or after 50 ms.
    pub const DELAYED: Self = Self {
        every: 3,
        max_delay: Self::MAX_DELAY,
    };
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            baseline_capacity: 64,
            max_pending_inputs: 128,
            ping_interval: Some(Duration::from_secs(1)),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(10)),
            max_queued_messages: 64,
            acks: AckPolicy::EVERY_SNAPSHOT,
            implicit_acks: true,
        }
    }
}

impl ClientConfig {
    /// These settings with other limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// These settings with another ping interval (`None`: no pings).
    #[must_use]
    pub fn with_ping_interval(mut self, interval: Option<Duration>) -> Self {
        self.ping_interval = interval;
        self
    }

    /// These settings with another handshake timeout.
    #[must_use]
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// These settings with another idle timeout (`None`: none).
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// These settings with another baseline capacity.
    #[must_use]
    pub fn with_baseline_capacity(mut self, ticks: usize) -> Self {
        self.baseline_capacity = ticks;
        self
    }

    /// These settings with another ack policy.
    #[must_use]
    pub fn with_acks(mut self, acks: AckPolicy) -> Self {
        self.acks = acks;
        self
    }

    /// These settings asking for implicit acks or not
    /// ([`ClientConfig::implicit_acks`]).
    #[must_use]
    pub fn with_implicit_acks(mut self, on: bool) -> Self {
        self.implicit_acks = on;
        self
    }
}

/// A snapshot was applied: read the world with [`ClientSession::world`] and
/// what changed with [`ClientWorld::changes`]. Its ack is queued or
/// scheduled ([`AckPolicy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotApplied {
    /// The server tick it shows.
    pub tick: u32,
    /// The last input sequence the server applied (0: none yet on this
    /// connection).
    pub last_input: u32,
    /// The baseline tick of a delta; `None` for a full snapshot.
    pub baseline: Option<u32>,
}

/// How the session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The close code (for a rejection: [`CloseCode::Rejected`]; for a
    /// connection that dropped without one: 1006).
    pub code: CloseCode,
    /// The reason, for people.
    pub reason: String,
    /// The reject code, when the server refused the hello.
    pub reject: Option<RejectCode>,
    /// True when this client decided to close (a protocol error, a timeout):
    /// the driver closes the transport with `code` and `reason`.
    pub local: bool,
    /// Whether reconnecting later can help (see [`Closed::may_retry`]).
    pub retry: bool,
}

/// WebSocket's "closed abnormally, no close frame" (RFC 6455 §7.4.1).
pub const ABNORMAL_CLOSURE: u16 = 1006;

impl Closed {
    /// The retry rule: a dropped connection, a timeout, a protocol error, a
    /// server shutdown or a full server are worth a retry (with backoff);
    /// leaving, kicks, bans, incompatible versions, refused auth or names,
    /// refused seat tokens (matchmake again instead), and a session taken
    /// over by another connection are not.
    #[must_use]
    pub fn may_retry(code: CloseCode, reject: Option<RejectCode>, left: bool) -> bool {
        if left {
            return false;
        }
        match reject {
            Some(r) => matches!(
                r,
                RejectCode::ServerFull
                    | RejectCode::RoomFull
                    | RejectCode::RateLimited
                    | RejectCode::AuthTimeout
                    | RejectCode::ShuttingDown
                    | RejectCode::Other(_)
            ),
            None => !matches!(
                code,
                CloseCode::Normal
                    | CloseCode::Kicked
                    | CloseCode::Replaced
                    | CloseCode::UnsupportedData
                    | CloseCode::Rejected
            ),
        }
    }
}

/// Something the application reacts to.
pub enum Event<P: GameProtocol> {
    /// The handshake succeeded (`resumed`: the server kept the session).
    Welcome(Welcome),
    /// A snapshot was applied.
    Snapshot(SnapshotApplied),
    /// Reliable game events, in order.
    Events(Vec<P::Event>),
    /// A ping's round trip completed.
    Rtt(Duration),
    /// The session ended; nothing more will be sent or applied.
    Closed(Closed),
}

impl<P: GameProtocol> Clone for Event<P> {
    fn clone(&self) -> Self {
        match self {
            Self::Welcome(w) => Self::Welcome(w.clone()),
            Self::Snapshot(s) => Self::Snapshot(*s),
            Self::Events(e) => Self::Events(e.clone()),
            Self::Rtt(d) => Self::Rtt(*d),
            Self::Closed(c) => Self::Closed(c.clone()),
        }
    }
}

impl<P: GameProtocol> core::fmt::Debug for Event<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Welcome(w) => f.debug_tuple("Welcome").field(w).finish(),
            Self::Snapshot(s) => f.debug_tuple("Snapshot").field(s).finish(),
            Self::Events(e) => f.debug_tuple("Events").field(e).finish(),
            Self::Rtt(d) => f.debug_tuple("Rtt").field(d).finish(),
            Self::Closed(c) => f.debug_tuple("Closed").field(c).finish(),
        }
    }
}

impl<P: GameProtocol> PartialEq for Event<P>
where
    P::Event: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Welcome(a), Self::Welcome(b)) => a == b,
            (Self::Snapshot(a), Self::Snapshot(b)) => a == b,
            (Self::Events(a), Self::Events(b)) => a == b,
            (Self::Rtt(a), Self::Rtt(b)) => a == b,
            (Self::Closed(a), Self::Closed(b)) => a == b,
            _ => false,
        }
    }
}

/// Counters of the current connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Message bytes received.
    pub bytes_received: u64,
    /// Message bytes produced by [`ClientSession::poll_transmit`].
    pub bytes_sent: u64,
    /// Messages that arrived on [`Channel::Unreliable`].
    pub datagrams_received: u64,
    /// Snapshots applied.
    pub snapshots_applied: u64,
    /// Full snapshots among them.
    pub full_snapshots: u64,
    /// Snapshots ignored as stale or duplicate.
    pub snapshots_stale: u64,
}

#[derive(Debug)]
enum State {
    Handshaking {
        hs: ClientHandshake,
        deadline: Duration,
    },
    Established,
    /// `Leave` is queued or sent; waiting for the server's close.
    Leaving,
    Closed,
}

/// What to send next (encoded when polled, so acks and inputs coalesce).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    Hello,
    Inputs,
    Ack,
    Ping(u32),
    Pong(u32),
    Leave,
    /// The oldest game message of `ClientSession::messages`.
    Message,
}

/// Most pings awaiting their pong; older ones are forgotten.
const MAX_PINGS_IN_FLIGHT: usize = 16;
/// Most messages queued for sending (pongs are dropped past it).
const MAX_OUTBOX: usize = 64;

/// One client's protocol session for game `P`. See the module docs for the
/// call order.
pub struct ClientSession<P: GameProtocol> {
    config: ClientConfig,
    hello: Hello,
    state: State,
    welcome: Option<Welcome>,
    world: ClientWorld<P::EntityState>,
    inputs: InputWindow<P::Input>,
    last_input: u32,
    /// When the newest snapshot (or the welcome) arrived, and its tick.
    clock: Option<(u32, Duration)>,
    outbox: VecDeque<Out>,
    inputs_queued: bool,
    ack_queued: bool,
    /// Applied snapshots not acknowledged yet (the ack is not queued).
    unacked: u32,
    /// When the oldest of them must be acknowledged at the latest.
    ack_due: Option<Duration>,
    /// The tick of the newest snapshot acknowledged so far (aligned acks,
    /// [`AckPolicy`]).
    acked_tick: Option<u32>,
    /// The server granted implicit acks for this connection
    /// ([`ClientConfig::implicit_acks`]).
    implicit_acks: bool,
    events: VecDeque<Event<P>>,
    messages: MessageQueue,
    pings: VecDeque<(u32, Duration)>,
    next_nonce: u32,
    next_ping: Option<Duration>,
    rtt: Option<Duration>,
    last_heard: Duration,
    /// A protocol `Close` received before the transport ended.
    left: bool,
    stats: SessionStats,
}

impl<P: GameProtocol> core::fmt::Debug for ClientSession<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientSession")
            .field("state", &self.state)
            .field("welcome", &self.welcome)
            .field("tick", &self.world.tick())
            .field("last_input", &self.last_input)
            .finish_non_exhaustive()
    }
}

impl<P: GameProtocol> ClientSession<P> {
    /// A session that sends `hello` first (queued for
    /// [`ClientSession::poll_transmit`]). `hello.game_hash` should be
    /// `P::PROTOCOL_HASH`.
    #[must_use]
    pub fn new(now: Duration, mut hello: Hello, config: ClientConfig) -> Self {
        hello.implicit_acks = config.implicit_acks;
        let mut s = Self {
            world: ClientWorld::new(config.baseline_capacity),
            inputs: InputWindow::new(config.max_pending_inputs),
            config,
            hello,
            state: State::Closed,
            welcome: None,
            last_input: 0,
            clock: None,
            outbox: VecDeque::new(),
            inputs_queued: false,
            ack_queued: false,
            unacked: 0,
            ack_due: None,
            acked_tick: None,
            implicit_acks: false,
            events: VecDeque::new(),
            messages: MessageQueue::default(),
            pings: VecDeque::new(),
            next_nonce: 1,
            next_ping: None,
            rtt: None,
            last_heard: now,
            left: false,
            stats: SessionStats::default(),
        };
        s.start(now);
        s
    }

    /// Starts a connection: per-connection state is forgotten (PROTOCOL.md
    /// §6.6, §7) and the hello is queued.
    fn start(&mut self, now: Duration) {
        self.world.clear();
        self.inputs.restart();
        self.last_input = 0;
        self.clock = None;
        self.outbox.clear();
        self.messages.clear();
        self.inputs_queued = false;
        self.ack_queued = false;
        self.unacked = 0;
        self.ack_due = None;
        self.acked_tick = None;
        self.implicit_acks = false;
        self.pings.clear();
        self.next_ping = None;
        self.last_heard = now;
        self.left = false;
        self.stats = SessionStats::default();
        self.outbox.push_back(Out::Hello);
        self.state = State::Handshaking {
            hs: ClientHandshake::new(self.hello.clone()),
            deadline: now.saturating_add(self.config.handshake_timeout),
        };
    }

    /// Reconnects on a new transport, resuming the session with the newest
    /// welcome's token (a fresh join when there was none). Kept baselines,
    /// unapplied inputs and pings are dropped, and input sequences restart at
    /// 1: the server restarts them too, so an input applied before the drop
    /// is never applied again (PROTOCOL.md §7). Unread events stay queued.
    pub fn resume(&mut self, now: Duration) {
        if let Some(w) = &self.welcome {
            self.hello.resume_token = Some(w.resume_token);
        }
        self.start(now);
    }

    /// Handles one received message.
    ///
    /// Malformed or out-of-place bytes end the session with
    /// [`CloseCode::ProtocolError`] (an [`Event::Closed`] with `local:
    /// true`). Nothing here panics on any input.
    pub fn handle_message(&mut self, now: Duration, bytes: &[u8], channel: Channel) {
        self.stats.bytes_received += bytes.len() as u64;
        self.stats.datagrams_received += u64::from(channel == Channel::Unreliable);
        if matches!(self.state, State::Closed) {
            return;
        }
        self.last_heard = now;
        let msg = match ServerMessage::<P::Event>::decode(bytes, &self.config.limits) {
            Ok(m) => m,
            Err(e) => return self.fail_decode(&e),
        };
        match core::mem::replace(&mut self.state, State::Closed) {
            State::Handshaking { hs, deadline } => {
                if channel == Channel::Unreliable {
                    // A datagram can overtake the welcome (QUIC); the server
                    // resends until acked.
                    self.state = State::Handshaking { hs, deadline };
                    return;
                }
                match hs.handle(msg) {
                    Ok(welcome) => self.on_welcome(now, welcome),
                    Err(HandshakeError::Rejected { code, message }) => {
                        self.close(CloseCode::Rejected, message, Some(code), false);
                    }
                    Err(HandshakeError::Closed { code, reason }) => {
                        self.close(code, reason, None, false);
                    }
                    Err(e) => self.fail(CloseCode::ProtocolError, e.to_string()),
                }
            }
            State::Established => {
                self.state = State::Established;
                self.on_message(now, msg, channel);
            }
            State::Leaving => {
                self.state = State::Leaving;
                if let ServerMessage::Close(c) = msg {
                    self.close(c.code, c.reason, None, false);
                }
            }
            State::Closed => {}
        }
    }

    fn on_welcome(&mut self, now: Duration, welcome: Welcome) {
        self.clock = Some((welcome.tick, now));
        self.next_ping = self.config.ping_interval.map(|_| now);
        self.implicit_acks = welcome.implicit_acks == Some(true);
        self.welcome = Some(welcome.clone());
        self.state = State::Established;
        self.events.push_back(Event::Welcome(welcome));
    }

    fn on_message(&mut self, now: Duration, msg: ServerMessage<'_, P::Event>, channel: Channel) {
        match msg {
            ServerMessage::Welcome(_) => {
                self.fail(CloseCode::ProtocolError, "a second welcome".into());
            }
            ServerMessage::Reject(_) => {
                self.fail(
                    CloseCode::ProtocolError,
                    "a reject after the welcome".into(),
                );
            }
            ServerMessage::Snapshot(frame) => self.on_snapshot(now, frame, channel),
            ServerMessage::Events(events) => self.events.push_back(Event::Events(events)),
            ServerMessage::Ping { nonce } => {
                if self.outbox.len() < MAX_OUTBOX {
                    self.outbox.push_back(Out::Pong(nonce));
                }
            }
            ServerMessage::Pong { nonce } => {
                if let Some(i) = self.pings.iter().position(|(n, _)| *n == nonce) {
                    let (_, sent) = self.pings[i];
                    self.pings.drain(..=i);
                    let rtt = now.saturating_sub(sent);
                    self.rtt = Some(rtt);
                    self.events.push_back(Event::Rtt(rtt));
                }
            }
            ServerMessage::Close(c) => self.close(c.code, c.reason, None, false),
        }
    }

    fn on_snapshot(&mut self, now: Duration, frame: SnapshotFrame<'_>, channel: Channel) {
        let h = frame.header;
        match self
            .world
            .apply::<P>(h.tick, h.baseline, frame.body, &self.config.limits)
        {
            Ok(()) => {}
            Err(ApplyError::Stale { .. }) => {
                self.stats.snapshots_stale += 1;
                return;
            }
            Err(ApplyError::BaselineMissing { baseline, .. }) => {
                return self.fail(
                    CloseCode::ProtocolError,
                    format!("delta against tick {baseline}, which is not kept"),
                );
            }
            Err(ApplyError::Decode(e)) => return self.fail_decode(&e),
        }
        self.stats.snapshots_applied += 1;
        self.stats.full_snapshots += u64::from(h.baseline.is_none());
        self.clock = Some((h.tick, now));
        if h.last_input > self.last_input {
            self.last_input = h.last_input;
            self.inputs.ack(h.last_input);
        }
        if self.implicit_acks && channel == Channel::Reliable {
            // The server counted it as acknowledged when it wrote it.
            self.acked_tick = Some(h.tick);
        } else {
            self.ack(now, h.tick, h.baseline.is_none());
        }
        self.events.push_back(Event::Snapshot(SnapshotApplied {
            tick: h.tick,
            last_input: h.last_input,
            baseline: h.baseline,
        }));
    }

    /// Acknowledges the snapshot of `tick` just applied, at once or later
    /// ([`AckPolicy`]).
    fn ack(&mut self, now: Duration, tick: u32, full: bool) {
        self.unacked += 1;
        if full || self.ack_boundary(tick) {
            self.queue_ack();
        } else if self.ack_due.is_none() {
            self.ack_due = Some(now.saturating_add(self.config.acks.max_delay));
        }
    }

    fn fail_decode(&mut self, e: &DecodeError) {
        let code = match e {
            DecodeError::MessageTooLong { .. } => CloseCode::MessageTooBig,
            _ => CloseCode::ProtocolError,
        };
        self.fail(code, format!("bad message from the server: {e}"));
    }

    /// This client ends the session: the driver closes the transport.
    fn fail(&mut self, code: CloseCode, reason: String) {
        self.close(code, reason, None, true);
    }

    fn close(&mut self, code: CloseCode, reason: String, reject: Option<RejectCode>, local: bool) {
        if matches!(self.state, State::Leaving) {
            self.left = true;
        }
        let retry = Closed::may_retry(code, reject, self.left);
        self.state = State::Closed;
        self.outbox.clear();
        self.messages.clear();
        self.inputs_queued = false;
        self.ack_queued = false;
        self.events.push_back(Event::Closed(Closed {
            code,
            reason,
            reject,
            local,
            retry,
        }));
    }

    /// The transport ended: `code` is its close code (`None`: it dropped
    /// without one). A protocol `Close` received before it has already ended
    /// the session; otherwise this does.
    pub fn handle_transport_closed(&mut self, now: Duration, code: Option<u16>, reason: &str) {
        let _ = now;
        if matches!(self.state, State::Closed) {
            return;
        }
        let code = CloseCode::from_u16(code.unwrap_or(ABNORMAL_CLOSURE));
        let reason = if reason.is_empty() && code.to_u16() == ABNORMAL_CLOSURE {
            "connection lost".to_owned()
        } else {
            reason.to_owned()
        };
        self.close(code, reason, None, false);
    }

    /// Records the local input for the next tick and queues an `Inputs`
    /// message carrying it with every input the server has not applied.
    /// Returns its sequence number, or `None` when the session is not
    /// established (the input is dropped).
    ///
    /// The input's `tick` is [`ClientSession::estimated_tick`] at `now`.
    #[must_use = "the sequence number identifies the input for prediction"]
    pub fn push_input(&mut self, now: Duration, input: P::Input) -> Option<u32> {
        if !matches!(self.state, State::Established) {
            return None;
        }
        let tick = self.estimated_tick(now);
        let seq = self.inputs.push(tick, input);
        if !self.inputs_queued {
            self.inputs_queued = true;
            self.outbox.push_back(Out::Inputs);
            // A pending ack rides with the inputs (AckPolicy).
            if self.unacked > 0 {
                self.queue_ack();
            }
        }
        Some(seq)
    }

    /// Queues one reliable game message ([`GameProtocol::Message`]): it is
    /// encoded now and goes out through [`ClientSession::poll_transmit`] on
    /// [`Channel::Reliable`], in order with everything else this session
    /// sends reliably. The server hands it to the game's `on_message` hook on
    /// the room's tick, in the order sent.
    ///
    /// Messages are not kept across connections: those not yet polled when
    /// the connection ends, or sent on a connection that drops before the
    /// server reads them, are lost ([`ClientSession::resume`] does not resend
    /// them). The server limits how many a client may send per second
    /// (burst included) and closes a session over it with
    /// [`CloseCode::MessageFlood`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tickwire_shared::client::{ClientConfig, ClientSession, SendMessageError};
    /// # use tickwire_shared::{GameProtocol, Hello};
    /// # struct Chat;
    /// # impl GameProtocol for Chat {
    /// #     const NAME: &'static str = "chat"; const VERSION: u32 = 1;
    /// #     type Input = (); type EntityState = (); type Event = String;
    /// #     type Message = String;
    /// # }
    /// let now = Duration::ZERO;
    /// let mut s = ClientSession::<Chat>::new(now, Hello::new(Chat::PROTOCOL_HASH), ClientConfig::default());
    /// // Before the welcome nothing can be sent.
    /// assert_eq!(s.send_message(now, "hi".into()), Err(SendMessageError::NotEstablished));
    /// ```
    ///
    /// # Errors
    /// A [`SendMessageError`]; nothing was queued.
    pub fn send_message(&mut self, now: Duration, msg: P::Message) -> Result<(), SendMessageError> {
        let _ = now;
        if !matches!(self.state, State::Established) {
            return Err(SendMessageError::NotEstablished);
        }
        self.messages
            .push(msg, &self.config.limits, self.config.max_queued_messages)?;
        self.outbox.push_back(Out::Message);
        Ok(())
    }

    /// Whether the snapshot of `tick`, just applied, is acknowledged at
    /// once under a delayed [`AckPolicy`]: when `tick` is the first applied
    /// at or past a multiple of `every` snapshot intervals since the last
    /// ack. A client that applies every snapshot acks the ticks that are
    /// multiples of that period, as every other such client of the room does.
    fn ack_boundary(&self, tick: u32) -> bool {
        let every = self.config.acks.every;
        if every <= 1 {
            return true;
        }
        let interval = self
            .welcome
            .as_ref()
            .map_or(1, |w| u32::from(w.snapshot_interval.max(1)));
        let period = every.saturating_mul(interval);
        self.acked_tick
            .is_none_or(|acked| tick / period != acked / period)
    }

    /// Queues the ack of the newest applied snapshot (once).
    fn queue_ack(&mut self) {
        self.unacked = 0;
        self.ack_due = None;
        self.acked_tick = self.world.tick();
        if !self.ack_queued {
            self.ack_queued = true;
            self.outbox.push_back(Out::Ack);
        }
    }

    /// Timers: the handshake deadline, RTT pings, delayed acks
    /// ([`AckPolicy`]), and the idle timeout.
    pub fn handle_timeout(&mut self, now: Duration) {
        match &self.state {
            State::Handshaking { deadline, .. } if now >= *deadline => {
                let after = self.config.handshake_timeout;
                self.fail(
                    CloseCode::HandshakeTimeout,
                    format!("no welcome within {after:?}"),
                );
            }
            State::Established | State::Leaving => {
                if let Some(idle) = self.config.idle_timeout
                    && now.saturating_sub(self.last_heard) >= idle
                {
                    return self.fail(
                        CloseCode::IdleTimeout,
                        format!("nothing heard from the server for {idle:?}"),
                    );
                }
                if matches!(self.state, State::Established)
                    && self.ack_due.is_some_and(|due| now >= due)
                {
                    self.queue_ack();
                }
                if matches!(self.state, State::Established)
                    && let (Some(at), Some(every)) = (self.next_ping, self.config.ping_interval)
                    && now >= at
                {
                    let nonce = self.next_nonce;
                    self.next_nonce = self.next_nonce.wrapping_add(1);
                    if self.pings.len() == MAX_PINGS_IN_FLIGHT {
                        self.pings.pop_front();
                    }
                    self.pings.push_back((nonce, now));
                    self.next_ping = Some(now.saturating_add(every));
                    if self.outbox.len() < MAX_OUTBOX {
                        self.outbox.push_back(Out::Ping(nonce));
                    }
                }
            }
            _ => {}
        }
    }

    /// When [`ClientSession::handle_timeout`] wants to be called next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        match &self.state {
            State::Handshaking { deadline, .. } => Some(*deadline),
            State::Established | State::Leaving => {
                let idle = self
                    .config
                    .idle_timeout
                    .map(|d| self.last_heard.saturating_add(d));
                let ping = self
                    .next_ping
                    .filter(|_| matches!(self.state, State::Established));
                [idle, ping, self.ack_due].into_iter().flatten().min()
            }
            State::Closed => None,
        }
    }

    /// Leaves: queues `Leave` (nothing is sent after it, PROTOCOL.md §6.7)
    /// and waits for the server's close. Before the welcome it ends the
    /// session at once (`local: true`: the driver closes with 1000).
    pub fn leave(&mut self, now: Duration) {
        let _ = now;
        match self.state {
            State::Established => {
                self.state = State::Leaving;
                self.left = true;
                self.inputs_queued = false;
                // Nothing follows `Leave`: no pending ack either.
                self.unacked = 0;
                self.ack_due = None;
                self.outbox.retain(|o| !matches!(o, Out::Inputs));
                self.outbox.push_back(Out::Leave);
            }
            State::Handshaking { .. } => {
                self.left = true;
                self.close(CloseCode::Normal, "left".into(), None, true);
            }
            State::Leaving | State::Closed => {}
        }
    }

    /// Writes the next message to send into `buf` (replacing its contents)
    /// and says how it should travel; `None` when nothing is due.
    #[must_use = "the message in `buf` must be sent on the returned channel"]
    pub fn poll_transmit(&mut self, now: Duration, buf: &mut Vec<u8>) -> Option<Channel> {
        let _ = now;
        loop {
            let out = self.outbox.pop_front()?;
            let (msg, channel): (ClientMessage<P::Input>, Channel) = match out {
                Out::Hello => (ClientMessage::Hello(self.hello.clone()), Channel::Reliable),
                Out::Inputs => {
                    self.inputs_queued = false;
                    match self
                        .inputs
                        .message(self.config.limits.max_inputs_per_message)
                    {
                        Some(m) => (ClientMessage::Inputs(m), Channel::Unreliable),
                        None => continue,
                    }
                }
                Out::Ack => {
                    self.ack_queued = false;
                    match self.world.tick() {
                        Some(t) => (ClientMessage::Ack { snapshot_tick: t }, Channel::Unreliable),
                        None => continue,
                    }
                }
                Out::Ping(nonce) => (ClientMessage::Ping { nonce }, Channel::Reliable),
                Out::Pong(nonce) => (ClientMessage::Pong { nonce }, Channel::Reliable),
                Out::Leave => (ClientMessage::Leave, Channel::Reliable),
                Out::Message => {
                    let Some(bytes) = self.messages.pop() else {
                        continue;
                    };
                    buf.clear();
                    buf.extend_from_slice(&bytes);
                    self.stats.bytes_sent += buf.len() as u64;
                    return Some(Channel::Reliable);
                }
            };
            let mut w = Writer::from_vec(core::mem::take(buf));
            w.clear();
            // Only a game input that serde refuses can fail: a local bug the
            // game's own tests catch. Skip the message rather than panic.
            let ok = msg.encode(&mut w).is_ok();
            *buf = w.into_vec();
            if ok {
                self.stats.bytes_sent += buf.len() as u64;
                return Some(channel);
            }
        }
    }

    /// The next event, oldest first.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event<P>> {
        self.events.pop_front()
    }

    /// The world at the newest applied snapshot.
    #[must_use]
    pub fn world(&self) -> &ClientWorld<P::EntityState> {
        &self.world
    }

    /// The newest welcome (kept after the session ends).
    #[must_use]
    pub fn welcome(&self) -> Option<&Welcome> {
        self.welcome.as_ref()
    }

    /// True after the welcome, until `leave` or the end.
    #[must_use]
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established)
    }

    /// True once the session has ended.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The last input sequence the server applied on this connection.
    #[must_use]
    pub fn last_input(&self) -> u32 {
        self.last_input
    }

    /// The inputs not yet applied by the server, oldest first, with their
    /// sequence numbers and ticks: what prediction replays.
    pub fn pending_inputs(&self) -> impl ExactSizeIterator<Item = (u32, u32, &P::Input)> + '_ {
        self.inputs.iter().map(|(seq, f)| (seq, f.tick, &f.input))
    }

    /// The newest measured round-trip time.
    #[must_use]
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Counters of the current connection.
    #[must_use]
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The server tick now, estimated from the newest snapshot (or the
    /// welcome) and the whole ticks elapsed since it arrived (PROTOCOL.md
    /// §7). 0 before the welcome.
    #[must_use]
    pub fn estimated_tick(&self, now: Duration) -> u32 {
        let Some((tick, at)) = self.clock else {
            return 0;
        };
        let rate = self.welcome.as_ref().map_or(60, |w| u64::from(w.tick_rate));
        let micros = u64::try_from(now.saturating_sub(at).as_micros()).unwrap_or(u64::MAX);
        let elapsed = micros.saturating_mul(rate) / 1_000_000;
        tick.saturating_add(u32::try_from(elapsed).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests;
