//! A test kit for games: one [`Room`] and any number of [`ClientSession`]s,
//! joined by in-memory links through the seeded link conditioner, on a
//! virtual clock. No sockets, no threads, no sleeps: a test of a thousand
//! ticks runs in milliseconds and replays exactly from its seed.
//!
//! ```text
//!  ClientSession ── poll_transmit ─▶ uplink (conditioned) ─▶ session rules ─▶ Room::handle / join
//!        ▲                                                                     │ Room::tick(now)
//!        └── handle_message ◀── downlink (conditioned) ◀── Outbox::take ◀──────┘
//! ```
//!
//! The links model QUIC, the transport with the most ways to go wrong:
//! snapshots, inputs and acks travel as datagrams (lost, duplicated,
//! reordered and delayed by the [`ConditionerConfig`]); everything else
//! (game messages included) travels on an ordered, reliable stream with the
//! same latency. The server side does what the real session driver does:
//! it answers pings, pings each client every `SessionConfig::ping_interval`
//! (so [`crate::Ctx::rtt`] works), records acks, rate-limits game messages
//! and closes a misbehaving client with the same code and reason.
//!
//! ```
//! use std::time::Duration;
//! use tickwire_server::testkit::{Harness, HarnessConfig};
//! use tickwire_server::{ClientId, Ctx, Game, AuthError};
//! use tickwire_shared::{GameProtocol, conditioner::ConditionerConfig};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)] struct Dot { x: i32 }
//! # struct Dots;
//! # impl GameProtocol for Dots {
//! #     const NAME: &'static str = "dots"; const VERSION: u32 = 1;
//! #     type Input = i8; type EntityState = Dot; type Event = (); type Message = ();
//! # }
//! # #[derive(Default)] struct Game1 { dots: std::collections::HashMap<ClientId, tickwire_server::world::EntityKey> }
//! # impl Game for Game1 {
//! #     type Protocol = Dots; type User = (); type View = ();
//! #     fn on_auth(&mut self, _: Option<&str>) -> Result<(), AuthError> { Ok(()) }
//! #     fn on_join(&mut self, ctx: &mut Ctx<'_, Self>, c: ClientId, (): ()) {
//! #         self.dots.insert(c, { let t = ctx.tick(); ctx.world.spawn(t, Dot { x: 0 }) });
//! #     }
//! #     fn on_input(&mut self, ctx: &mut Ctx<'_, Self>, c: ClientId, dx: i8, _: tickwire_server::InputMeta) {
//! #         if let Some(d) = self.dots.get(&c).and_then(|k| ctx.world.get_mut(*k)) { d.x += i32::from(dx); }
//! #     }
//! #     fn on_tick(&mut self, _: &mut Ctx<'_, Self>, _: f32) {}
//! #     fn on_leave(&mut self, ctx: &mut Ctx<'_, Self>, c: ClientId, _: tickwire_server::LeaveReason) {
//! #         if let Some(k) = self.dots.remove(&c) { let t = ctx.tick(); ctx.world.despawn(t, k); }
//! #     }
//! # }
//! // 50 ms each way, 5 % of datagrams lost.
//! let link = ConditionerConfig::perfect()
//!     .with_latency(Duration::from_millis(50))
//!     .with_uniform_loss(0.05);
//! let mut h = Harness::new(Game1::default(), HarnessConfig::default().with_link(link));
//! let ann = h.connect(Some("ann"));
//! h.run_for(Duration::from_millis(500));
//! assert!(h.client(ann).session.is_established());
//! for _ in 0..30 {
//!     h.input(ann, 1);
//!     h.step();
//! }
//! h.run_for(Duration::from_millis(500));
//! // The client's world is the server's: its dot moved 30 times.
//! let dot = h.client(ann).session.world().iter().next().map(|(_, d)| d.x);
//! assert_eq!(dot, Some(30));
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tickwire_shared::client::{Channel, ClientConfig, ClientSession, Event, SendMessageError};
use tickwire_shared::conditioner::{ConditionerConfig, LinkConditioner};
use tickwire_shared::handshake::ServerHandshake;
use tickwire_shared::message::is_snapshot;
use tickwire_shared::{
    ClientMessage, GameProtocol, Hello, NetId, ResumeToken, ServerMessage, Snapshot,
};

use crate::config::ServerConfig;
use crate::game::{ClientId, Game, InputOf, LeaveReason, MessageOf, StateOf};
use crate::messages::MessageRate;
use crate::outbox::Outbox;
use crate::room::{JoinRequest, Room};
use crate::rtt::{Pinger, Rtt};

/// How a [`Harness`] is set up, with documented defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HarnessConfig {
    /// The server's configuration: the room runs with its
    /// [`ServerConfig::room`]. Default: [`ServerConfig::default`] with tick
    /// rate 60 and a snapshot every tick.
    pub server: ServerConfig,
    /// Each client's session settings. Default: no pings (a test sends what
    /// it means to).
    pub client: ClientConfig,
    /// The network between each client and the room, both ways. Default:
    /// perfect (no delay, no loss).
    pub link: ConditionerConfig,
    /// Seed of every link's randomness and of the resume tokens. Default: 1.
    pub seed: u64,
}

impl Default for HarnessConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig::default()
                .with_tick_rate(60)
                .with_snapshot_interval(1),
            client: ClientConfig::default().with_ping_interval(None),
            link: ConditionerConfig::perfect(),
            seed: 1,
        }
    }
}

impl HarnessConfig {
    /// This config with another room configuration.
    #[must_use]
    pub fn with_server(mut self, server: ServerConfig) -> Self {
        self.server = server;
        self
    }

    /// This config with another network.
    #[must_use]
    pub fn with_link(mut self, link: ConditionerConfig) -> Self {
        self.link = link;
        self
    }

    /// This config with another seed.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// This config with other client session settings.
    #[must_use]
    pub fn with_client(mut self, client: ClientConfig) -> Self {
        self.client = client;
        self
    }
}

/// An index into [`Harness::clients`].
pub type ClientIndex = usize;

/// One in-memory connection: datagrams and a stream, each way.
struct Link {
    up_datagrams: LinkConditioner<Vec<u8>>,
    up_stream: LinkConditioner<Vec<u8>>,
    down_datagrams: LinkConditioner<Vec<u8>>,
    down_stream: LinkConditioner<Vec<u8>>,
}

impl Link {
    fn new(config: &ConditionerConfig, seed: u64) -> Self {
        let stream = config.clone().with_max_queue(usize::MAX);
        Self {
            up_datagrams: LinkConditioner::new(config.clone(), seed),
            up_stream: LinkConditioner::new_stream(stream.clone(), seed ^ 1),
            down_datagrams: LinkConditioner::new(config.clone(), seed ^ 2),
            down_stream: LinkConditioner::new_stream(stream, seed ^ 3),
        }
    }

    fn next_wake(&self) -> Option<Duration> {
        [
            self.up_datagrams.poll_timeout(),
            self.up_stream.poll_timeout(),
            self.down_datagrams.poll_timeout(),
            self.down_stream.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// The server's side of one connection.
enum ServerSide {
    /// Waiting for the hello.
    Handshake,
    /// Joined as this client.
    Joined(ClientId),
    /// Closed (rejected, left, kicked…): nothing more is read.
    Closed,
}

/// A client of the harness: its session and what it received.
pub struct HarnessClient<P: GameProtocol> {
    /// The protocol session (its world, pending inputs, events…).
    pub session: ClientSession<P>,
    /// Every event the session produced, oldest first.
    pub events: Vec<Event<P>>,
    /// The inputs sent on the current connection, by sequence number − 1.
    pub inputs: Vec<P::Input>,
    /// Inputs the server reported applied (`last_input` passed them), over
    /// every connection, in order.
    pub acknowledged: Vec<P::Input>,
    /// Applied snapshots checked against the server's view of their tick.
    pub checked: usize,
    /// Applied snapshots whose world differed from the server's view (a
    /// description of each); empty when replication is correct.
    pub mismatches: Vec<String>,
    /// With a byte budget: the oldest state seen in the client's world, in
    /// ticks behind the snapshot that held it (see [`Harness`]).
    pub stalest: u32,
    /// The tick of the last full snapshot applied (a budgeted full snapshot
    /// may hold only part of the view).
    full_at: u32,
    /// With a byte budget: for each entity held, the newest server tick
    /// whose state it holds (it may never go back).
    state_ticks: std::collections::HashMap<NetId, u32>,
    acked_seq: u32,
    /// The server's pings and this connection's RTT and message rate.
    pinger: Pinger,
    rtt: Arc<Rtt>,
    next_ping: Duration,
    message_rate: MessageRate,
    outbox: Arc<Outbox>,
    link: Option<Link>,
    server: ServerSide,
    /// Whether the server side writes what the room queues (false: the
    /// client stopped reading and its socket buffer is full).
    reading: bool,
    buf: Vec<u8>,
}

/// A room and its clients in memory on a virtual clock. See the module docs.
pub struct Harness<G: Game> {
    room: Room<G>,
    config: Arc<ServerConfig>,
    harness: HarnessConfig,
    now: Duration,
    next_tick: Duration,
    clients: Vec<HarnessClient<G::Protocol>>,
    next_client_id: ClientId,
    /// The view each client was sent at each recent tick (see
    /// [`Harness::sent_view`]).
    views: VecDeque<TickViews<StateOf<G>>>,
    rng: u64,
}

/// One tick and the view each joined client had at it.
type TickViews<S> = (u32, Vec<(ClientId, Snapshot<S>)>);

/// Ticks of per-client views kept for [`Harness::sent_view`].
const VIEW_HISTORY: usize = 256;

impl<G: Game> Harness<G>
where
    StateOf<G>: Clone,
{
    /// A harness around a new room named `"test"` running `game`.
    #[must_use]
    pub fn new(game: G, config: HarnessConfig) -> Self {
        let server = Arc::new(config.server.clone());
        Self {
            room: Room::new("test", game, Arc::new(server.room.clone()), &server.limits),
            config: server,
            now: Duration::ZERO,
            next_tick: Duration::ZERO,
            clients: Vec::new(),
            next_client_id: 1,
            views: VecDeque::new(),
            rng: config.seed | 1,
            harness: config,
        }
    }

    /// The virtual time now.
    #[must_use]
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The room.
    #[must_use]
    pub fn room(&self) -> &Room<G> {
        &self.room
    }

    /// The room's snapshot counters since the previous call (see
    /// [`Room::take_sent`]).
    pub fn take_sent(&mut self) -> crate::stats::SentCounters {
        self.room.take_sent()
    }

    /// Client `i`.
    #[must_use]
    pub fn client(&self, i: ClientIndex) -> &HarnessClient<G::Protocol> {
        &self.clients[i]
    }

    /// Client `i`, mutably (to drive its session directly).
    pub fn client_mut(&mut self, i: ClientIndex) -> &mut HarnessClient<G::Protocol> {
        &mut self.clients[i]
    }

    /// Every client.
    #[must_use]
    pub fn clients(&self) -> &[HarnessClient<G::Protocol>] {
        &self.clients
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: the harness's own seeded randomness.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn new_outbox(&self) -> Arc<Outbox> {
        Arc::new(Outbox::new(
            self.config.room.max_queued_reliable,
            self.config.room.max_skipped_snapshots,
        ))
    }

    /// Opens a connection for a new client with `auth_token` and sends its
    /// hello. Returns its index; it is established once the welcome arrives.
    pub fn connect(&mut self, auth_token: Option<&str>) -> ClientIndex {
        let link = self.harness.link.clone();
        self.connect_with_link(auth_token, &link)
    }

    /// [`Harness::connect`] over a link of its own (a slow or lossy player
    /// among good ones, for example), instead of [`HarnessConfig::link`].
    pub fn connect_with_link(
        &mut self,
        auth_token: Option<&str>,
        link: &ConditionerConfig,
    ) -> ClientIndex {
        let mut hello = Hello::new(<G::Protocol as GameProtocol>::PROTOCOL_HASH);
        hello.auth_token = auth_token.map(str::to_owned);
        let session = ClientSession::new(self.now, hello, self.harness.client.clone());
        let seed = self.random();
        self.clients.push(HarnessClient {
            session,
            events: Vec::new(),
            inputs: Vec::new(),
            acknowledged: Vec::new(),
            checked: 0,
            mismatches: Vec::new(),
            stalest: 0,
            full_at: 0,
            state_ticks: std::collections::HashMap::new(),
            acked_seq: 0,
            pinger: Pinger::default(),
            rtt: Arc::new(Rtt::default()),
            next_ping: self.now,
            message_rate: MessageRate::new(&self.config.room.game_messages, self.now),
            outbox: self.new_outbox(),
            link: Some(Link::new(link, seed)),
            server: ServerSide::Handshake,
            reading: true,
            buf: Vec::new(),
        });
        let i = self.clients.len() - 1;
        self.pump_client(i);
        i
    }

    /// Stops (`false`) or restarts client `i`'s reading, as a player whose
    /// socket's buffers are full: while stopped, what the room queues for it
    /// stays in its outbox (a close still goes out).
    pub fn set_reading(&mut self, i: ClientIndex, reading: bool) {
        self.clients[i].reading = reading;
    }

    /// Drops client `i`'s connection without a close, as a network failure
    /// does: the room detaches it (it may resume within the grace period).
    pub fn drop_connection(&mut self, i: ClientIndex) {
        let now = self.now;
        let c = &mut self.clients[i];
        c.link = None;
        if let ServerSide::Joined(id) = c.server {
            let outbox = Arc::clone(&c.outbox);
            self.room
                .disconnect(now, id, &outbox, LeaveReason::TimedOut);
        }
        c.server = ServerSide::Closed;
        c.session
            .handle_transport_closed(now, None, "dropped by the test");
        self.drain(i);
    }

    /// Opens a new connection for client `i` and resumes its session.
    pub fn resume(&mut self, i: ClientIndex) {
        let seed = self.random();
        let outbox = self.new_outbox();
        let now = self.now;
        let rate = MessageRate::new(&self.config.room.game_messages, now);
        let c = &mut self.clients[i];
        c.outbox = outbox;
        c.pinger = Pinger::default();
        c.rtt = Arc::new(Rtt::default());
        c.next_ping = now;
        c.message_rate = rate;
        c.link = Some(Link::new(&self.harness.link, seed));
        c.server = ServerSide::Handshake;
        c.inputs.clear();
        c.acked_seq = 0;
        c.session.resume(now);
        self.pump_client(i);
    }

    /// Client `i` pushes `input` (sent at once, with its unapplied ones).
    /// Returns its sequence number, `None` when not established.
    pub fn input(
        &mut self,
        i: ClientIndex,
        input: <G::Protocol as GameProtocol>::Input,
    ) -> Option<u32> {
        let c = &mut self.clients[i];
        let seq = c.session.push_input(self.now, input.clone())?;
        c.inputs.push(input);
        self.pump_client(i);
        Some(seq)
    }

    /// Client `i` sends a reliable game message
    /// ([`ClientSession::send_message`]).
    ///
    /// # Errors
    /// The session's [`SendMessageError`].
    pub fn send_message(
        &mut self,
        i: ClientIndex,
        msg: MessageOf<G>,
    ) -> Result<(), SendMessageError> {
        self.clients[i].session.send_message(self.now, msg)?;
        self.pump_client(i);
        Ok(())
    }

    /// Puts raw `bytes` on client `i`'s uplink, as a hostile or broken
    /// client would, bypassing its session.
    pub fn send_raw(&mut self, i: ClientIndex, bytes: Vec<u8>, channel: Channel) {
        let now = self.now;
        if let Some(link) = self.clients[i].link.as_mut() {
            match channel {
                Channel::Reliable => link.up_stream.condition(bytes, now),
                Channel::Unreliable => link.up_datagrams.condition(bytes, now),
            }
        }
    }

    /// Client `i` leaves.
    pub fn leave(&mut self, i: ClientIndex) {
        self.clients[i].session.leave(self.now);
        self.pump_client(i);
    }

    /// Advances to the next room tick: delivers everything due on the way,
    /// runs the tick, and hands its messages to the links.
    pub fn step(&mut self) {
        let target = self.next_tick;
        self.advance_to(target);
        self.room.tick(self.now);
        self.record_views();
        self.next_tick = self.now + self.config.room.tick_period();
        for i in 0..self.clients.len() {
            self.ping(i);
            self.flush_server(i);
        }
        self.deliver();
    }

    /// Runs ticks until `d` of virtual time has passed.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.next_tick <= end {
            self.step();
        }
        self.advance_to(end);
    }

    /// Holds the room's ticks for `d`, as a preempted room task or a
    /// stalled server process does: the links keep delivering and the
    /// clients keep running; then ticks resume, numbered on (the room's
    /// schedule re-anchors after an overrun rather than catching up).
    pub fn stall(&mut self, d: Duration) {
        let end = self.now + d;
        self.advance_to(end);
        self.next_tick = self.next_tick.max(end);
    }

    /// Moves the clock to `t`, delivering packets and firing client timers
    /// at their exact times.
    fn advance_to(&mut self, t: Duration) {
        loop {
            let wake = self
                .clients
                .iter()
                .filter_map(|c| {
                    let link = c.link.as_ref().and_then(Link::next_wake);
                    [link, c.session.poll_timeout()].into_iter().flatten().min()
                })
                .filter(|w| *w <= t)
                .min();
            let Some(w) = wake else { break };
            self.now = self.now.max(w);
            for i in 0..self.clients.len() {
                let now = self.now;
                let c = &mut self.clients[i];
                if c.session.poll_timeout().is_some_and(|d| d <= now) {
                    c.session.handle_timeout(now);
                    self.drain(i);
                    self.pump_client(i);
                }
            }
            self.deliver();
        }
        self.now = self.now.max(t);
    }

    /// Delivers every packet due now, both ways.
    fn deliver(&mut self) {
        let now = self.now;
        for i in 0..self.clients.len() {
            // Up: client → server.
            while let Some(bytes) = self.clients[i]
                .link
                .as_mut()
                .and_then(|l| l.up_stream.poll(now).or_else(|| l.up_datagrams.poll(now)))
            {
                self.server_receive(i, &bytes);
            }
            // Down: server → client.
            loop {
                let c = &mut self.clients[i];
                let Some(link) = c.link.as_mut() else { break };
                let (bytes, channel) = match link.down_stream.poll(now) {
                    Some(b) => (b, Channel::Reliable),
                    None => match link.down_datagrams.poll(now) {
                        Some(b) => (b, Channel::Unreliable),
                        None => break,
                    },
                };
                c.session.handle_message(now, &bytes, channel);
                self.drain(i);
            }
            self.pump_client(i);
        }
    }

    /// Moves what client `i`'s session wants to send onto its uplink.
    fn pump_client(&mut self, i: ClientIndex) {
        let now = self.now;
        let c = &mut self.clients[i];
        while let Some(channel) = c.session.poll_transmit(now, &mut c.buf) {
            let Some(link) = c.link.as_mut() else {
                continue;
            };
            match channel {
                Channel::Reliable => link.up_stream.condition(c.buf.clone(), now),
                Channel::Unreliable => link.up_datagrams.condition(c.buf.clone(), now),
            }
        }
        self.drain(i);
    }

    /// Takes client `i`'s events; checks each applied snapshot against the
    /// server's view of its tick, and records the inputs it acknowledges.
    fn drain(&mut self, i: ClientIndex) {
        while let Some(ev) = self.clients[i].session.poll_event() {
            if let Event::Snapshot(a) = &ev {
                let id = self.client_id(i);
                let c = &self.clients[i];
                let world = c.session.world().to_snapshot();
                if a.baseline.is_none() {
                    self.clients[i].full_at = a.tick;
                }
                let verdict = match (id, self.config.room.client_bytes_per_sec) {
                    (Some(id), Some(_)) => self.check_budgeted(i, id, a.tick, &world),
                    _ => match id.and_then(|id| self.sent_view(a.tick, id)) {
                        Some(want) if *want == world => None,
                        Some(want) => Some(format!(
                            "client {id:?} at tick {}: has {} entities, the server sent a view of {} ({:?} vs {:?})",
                            a.tick,
                            world.len(),
                            want.len(),
                            world.as_slice().iter().take(4).collect::<Vec<_>>(),
                            want.as_slice().iter().take(4).collect::<Vec<_>>(),
                        )),
                        None => Some(format!("client {id:?}: no server view of tick {}", a.tick)),
                    },
                };
                let c = &mut self.clients[i];
                c.checked += 1;
                c.mismatches.extend(verdict);
                while c.acked_seq < a.last_input {
                    if let Some(input) = c.inputs.get(c.acked_seq as usize) {
                        c.acknowledged.push(input.clone());
                    }
                    c.acked_seq += 1;
                }
            }
            self.clients[i].events.push(ev);
        }
    }

    /// The check of a client with a byte budget, whose world after tick `t`
    /// may hold older states of entities whose changes waited: every entity
    /// it holds is in its view at `t` with a state the server had at most
    /// `budget_max_wait` ticks before `t` (the staleness is recorded in
    /// [`HarnessClient::stalest`]), and every entity in its view throughout
    /// that window plus the slowest pacing interval (and since its last full
    /// snapshot) is held; and no entity's state goes back to an older one.
    fn check_budgeted(
        &mut self,
        i: ClientIndex,
        id: ClientId,
        t: u32,
        world: &Snapshot<StateOf<G>>,
    ) -> Option<String> {
        let window = u32::try_from(
            (self.config.room.budget_max_wait.as_secs_f64() * f64::from(self.config.room.tick_rate))
                as u64,
        )
        .unwrap_or(u32::MAX);
        // (On a mismatch the record is dropped: the run has failed anyway.)
        let mut ticks = core::mem::take(&mut self.clients[i].state_ticks);
        let Some(now) = self.sent_view(t, id) else {
            return Some(format!("client {id}: no server view of tick {t}"));
        };
        let mut stalest = 0;
        ticks.retain(|eid, _| world.get(*eid).is_some());
        for (eid, state) in world.iter() {
            if now.get(eid).is_none() {
                return Some(format!(
                    "client {id} at tick {t}: holds {eid:?}, not in its view"
                ));
            }
            let age = (0..=window.min(t)).find(|age| {
                self.sent_view(t - age, id)
                    .and_then(|v| v.get(eid))
                    .is_some_and(|s| s == state)
            });
            match age {
                Some(age) => {
                    stalest = stalest.max(age);
                    let at = t - age;
                    if let Some(before) = ticks.insert(eid, at)
                        && before > at
                    {
                        return Some(format!(
                            "client {id} at tick {t}: {eid:?} went back from the state of tick \
                             {before} to that of tick {at}"
                        ));
                    }
                }
                None => {
                    return Some(format!(
                        "client {id} at tick {t}: {eid:?} holds a state the server did not have \
                         in the last {window} ticks"
                    ));
                }
            }
        }
        // A new entity's wait starts at the first snapshot built for the
        // client after it came into view, which a client sent one snapshot
        // in N (`max_snapshot_slowdown`) gets up to N snapshots later.
        let paced = u32::from(self.config.room.max_snapshot_slowdown)
            * u32::from(self.config.room.snapshot_interval.max(1));
        let present_within = window + paced;
        for (eid, _) in now.iter() {
            let always = (0..=present_within.min(t)).all(|age| {
                self.sent_view(t - age, id)
                    .is_some_and(|v| v.get(eid).is_some())
            });
            let settled = t >= self.clients[i].full_at.saturating_add(present_within);
            if always && settled && world.get(eid).is_none() {
                return Some(format!(
                    "client {id} at tick {t}: {eid:?} in view for {present_within} ticks but never sent"
                ));
            }
        }
        let c = &mut self.clients[i];
        c.stalest = c.stalest.max(stalest);
        c.state_ticks = ticks;
        None
    }

    /// The server's session rules for one received message (what
    /// `session.rs` does over a real transport).
    fn server_receive(&mut self, i: ClientIndex, bytes: &[u8]) {
        let now = self.now;
        let limits = &self.config.limits;
        let msg = match ClientMessage::<InputOf<G>, MessageOf<G>>::decode(bytes, limits) {
            Ok(m) => m,
            Err(e) => {
                let end = crate::session::decode_end(&e);
                self.server_close(i, end.code, &end.reason);
                return;
            }
        };
        match (&self.clients[i].server, msg) {
            (ServerSide::Closed, _) => {}
            (ServerSide::Handshake, ClientMessage::Hello(hello)) => self.server_hello(i, hello),
            (ServerSide::Handshake, _) => {
                self.server_close(i, tickwire_shared::CloseCode::ProtocolError, "hello first");
            }
            (ServerSide::Joined(_), ClientMessage::Ack { snapshot_tick }) => {
                self.clients[i].outbox.record_ack(snapshot_tick);
            }
            (ServerSide::Joined(_), ClientMessage::Ping { nonce }) => {
                let pong: ServerMessage<'static, ()> = ServerMessage::Pong { nonce };
                let pong = pong.to_bytes();
                if let Ok(pong) = pong {
                    self.clients[i].outbox.push_reliable(Bytes::from(pong));
                }
            }
            (ServerSide::Joined(_), ClientMessage::Pong { nonce }) => {
                let c = &mut self.clients[i];
                if let Some(rtt) = c.pinger.pong(nonce, now) {
                    c.rtt.record(rtt);
                }
            }
            (&ServerSide::Joined(id), msg @ ClientMessage::GameMessage(_)) => {
                match self.clients[i].message_rate.take(now) {
                    Ok(()) => self.room.handle(now, id, msg),
                    Err(e) => self.server_close(i, e.close_code(), &e.to_string()),
                }
            }
            (ServerSide::Joined(_), ClientMessage::Hello(_)) => {
                self.server_close(
                    i,
                    tickwire_shared::CloseCode::ProtocolError,
                    "a second hello",
                );
            }
            (&ServerSide::Joined(id), msg) => self.room.handle(now, id, msg),
        }
        self.flush_server(i);
    }

    fn server_hello(&mut self, i: ClientIndex, hello: Hello) {
        let now = self.now;
        let hs = ServerHandshake::new(now, self.config.listener.handshake_timeout);
        let token = ResumeToken::from_random({
            let (a, b) = (self.random(), self.random());
            let mut t = [0u8; 16];
            t[..8].copy_from_slice(&a.to_le_bytes());
            t[8..].copy_from_slice(&b.to_le_bytes());
            t
        });
        let id = self.next_client_id;
        let answer = match hs.handle_hello(hello, <G::Protocol as GameProtocol>::PROTOCOL_HASH) {
            Err(rejection) => Err(rejection),
            Ok(received) => {
                let hello = received.hello().clone();
                let req = JoinRequest {
                    hello,
                    client_id: id,
                    new_token: token,
                    outbox: Arc::clone(&self.clients[i].outbox),
                    rtt: Arc::clone(&self.clients[i].rtt),
                };
                self.room.join(now, req).map(|joined| (received, joined))
            }
        };
        let c = &mut self.clients[i];
        match answer {
            Ok((received, joined)) => {
                if joined.welcome.client_id == id {
                    self.next_client_id += 1;
                }
                c.server = ServerSide::Joined(joined.welcome.client_id);
                // The harness sends snapshots as datagrams, as QUIC does:
                // no implicit acks (PROTOCOL.md §8.7).
                let welcome = joined.welcome.answering(received.hello(), false);
                let (_, msg) = received.accept::<()>(welcome);
                if let Ok(bytes) = msg.to_bytes() {
                    send_down(c, now, Bytes::from(bytes));
                }
            }
            Err(rejection) => {
                c.server = ServerSide::Closed;
                if let Ok(bytes) = rejection.to_message::<()>().to_bytes() {
                    send_down(c, now, Bytes::from(bytes));
                }
            }
        }
    }

    fn server_close(&mut self, i: ClientIndex, code: tickwire_shared::CloseCode, reason: &str) {
        let now = self.now;
        let c = &mut self.clients[i];
        if let ServerSide::Joined(id) = c.server {
            let outbox = Arc::clone(&c.outbox);
            self.room
                .disconnect(now, id, &outbox, LeaveReason::Misbehaved);
        }
        c.server = ServerSide::Closed;
        let close: ServerMessage<'static, ()> =
            ServerMessage::Close(tickwire_shared::message::Close {
                code,
                reason: reason.to_owned(),
            });
        if let Ok(bytes) = close.to_bytes() {
            send_down(c, now, Bytes::from(bytes));
        }
    }

    /// The server pings joined client `i` when its ping is due.
    fn ping(&mut self, i: ClientIndex) {
        let (now, every) = (self.now, self.config.session.ping_interval);
        let c = &mut self.clients[i];
        if !matches!(c.server, ServerSide::Joined(_)) || now < c.next_ping || every.is_zero() {
            return;
        }
        c.next_ping = now + every;
        let nonce = c.pinger.ping(now);
        let ping: ServerMessage<'static, ()> = ServerMessage::Ping { nonce };
        if let Ok(bytes) = ping.to_bytes() {
            c.outbox.push_reliable(Bytes::from(bytes));
        }
    }

    /// Moves what the room queued for client `i` onto its downlink.
    fn flush_server(&mut self, i: ClientIndex) {
        let now = self.now;
        let c = &mut self.clients[i];
        if !matches!(c.server, ServerSide::Joined(_)) {
            return;
        }
        if !c.reading && !c.outbox.is_closed() {
            return;
        }
        let batch = c.outbox.take();
        for bytes in batch.reliable {
            send_down(c, now, bytes);
        }
        if let Some(bytes) = batch.snapshot {
            send_down(c, now, bytes);
        }
        if let Some((code, reason)) = batch.close {
            c.server = ServerSide::Closed;
            let close: ServerMessage<'static, ()> =
                ServerMessage::Close(tickwire_shared::message::Close { code, reason });
            if let Ok(bytes) = close.to_bytes() {
                send_down(c, now, Bytes::from(bytes));
            }
        }
    }

    /// Records, after a tick, what each joined client may see (the room's
    /// view rules applied to its world): the oracle for
    /// [`Harness::sent_view`].
    fn record_views(&mut self) {
        let tick = self.room.tick_count();
        let world = self.room.world();
        let game = self.room.game();
        let mut views = Vec::new();
        for c in &self.clients {
            let ServerSide::Joined(id) = c.server else {
                continue;
            };
            let view = game.view(world, id);
            let entities: Vec<(NetId, StateOf<G>)> = world
                .iter_by_net_id()
                .filter(|(nid, s)| view.as_ref().is_none_or(|v| G::can_see(v, *nid, s)))
                .map(|(nid, s)| (nid, s.clone()))
                .collect();
            if let Ok(snap) = Snapshot::from_vec(entities) {
                views.push((id, snap));
            }
        }
        self.views.push_back((tick, views));
        while self.views.len() > VIEW_HISTORY {
            self.views.pop_front();
        }
    }

    /// What client `id` could see at `tick` (within the last 256 ticks):
    /// what its world must equal after applying that tick's snapshot.
    #[must_use]
    pub fn sent_view(&self, tick: u32, id: ClientId) -> Option<&Snapshot<StateOf<G>>> {
        let (_, views) = self.views.iter().find(|(t, _)| *t == tick)?;
        views.iter().find(|(c, _)| *c == id).map(|(_, s)| s)
    }

    /// The room-assigned id of client `i`, once welcomed.
    #[must_use]
    pub fn client_id(&self, i: ClientIndex) -> Option<ClientId> {
        self.clients[i].session.welcome().map(|w| w.client_id)
    }
}

fn send_down<P: GameProtocol>(c: &mut HarnessClient<P>, now: Duration, bytes: Bytes) {
    let Some(link) = c.link.as_mut() else { return };
    if is_snapshot(&bytes) {
        link.down_datagrams.condition(bytes.to_vec(), now);
    } else {
        link.down_stream.condition(bytes.to_vec(), now);
    }
}
