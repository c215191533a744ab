//! The room core: one world, one game, its clients, and `tick(now)`.
//!
//! A [`Room`] is a plain struct with no IO: the room task (`rooms/task.rs`)
//! feeds it joins and messages and calls [`Room::tick`] on schedule; tests
//! drive it directly with a virtual clock. Outgoing bytes go into each
//! client's [`Outbox`]; the room never waits on a socket.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tickwire_shared::client::AckPolicy;
use tickwire_shared::{
    ClientMessage, CloseCode, Hello, NetId, RejectCode, ResumeToken, ServerMessage, Snapshot,
    Welcome, Writer, handshake::Rejection,
};

use crate::budget::Budget;
use crate::game::{
    ClientId, Ctx, EventOf, Game, InputMeta, InputOf, LeaveReason, MessageOf, StateOf, Target,
};
use crate::messages::MessageError;
use crate::metrics as m;
use crate::outbox::Outbox;
use crate::pace::{self, Decision, Pace, PaceLimits};
use crate::replication::{ClientReplication, Replication};
use crate::room_config::RoomConfig;
use crate::rtt::Rtt;
use crate::stats::SentCounters;
use crate::view::{ClientView, Views};
use crate::world::World;

/// A request to join (or resume) this room.
#[derive(Debug)]
pub struct JoinRequest {
    /// The client's hello (version and hash already checked).
    pub hello: Hello,
    /// A fresh id, used unless the client resumes.
    pub client_id: ClientId,
    /// Fresh random bytes for a new resume token.
    pub new_token: ResumeToken,
    /// The session's outbox.
    pub outbox: Arc<Outbox>,
    /// Where the session records the client's round-trip time
    /// ([`Ctx::rtt`] reads it).
    pub rtt: Arc<Rtt>,
}

/// A successful join.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The welcome to send.
    pub welcome: Welcome,
}

/// One client of a room, as the room keeps it.
pub(crate) struct Peer<G: Game + ?Sized> {
    outbox: Option<Arc<Outbox>>,
    token: ResumeToken,
    detached_at: Option<Duration>,
    inputs: VecDeque<(InputMeta, InputOf<G>)>,
    /// Game messages waiting for their tick, oldest first.
    messages: VecDeque<MessageOf<G>>,
    last_received: u32,
    last_applied: u32,
    repl: ClientReplication,
    pace: Pace,
    /// Whether this snapshot tick builds a snapshot for the client.
    due: bool,
    /// Its byte budget, when the room has one (`client_bytes_per_sec`).
    budget: Option<Box<Budget>>,
    rtt: Arc<Rtt>,
}

impl<G: Game + ?Sized> Peer<G> {
    /// The smoothed RTT of the attached session.
    pub(crate) fn rtt(&self) -> Option<Duration> {
        self.outbox.as_ref().and_then(|_| self.rtt.get())
    }
}

/// One room: a world, a game and its clients.
pub struct Room<G: Game> {
    name: String,
    config: Arc<RoomConfig>,
    /// Events per message at most (the clients' decode limit).
    max_events: usize,
    game: G,
    world: World<StateOf<G>>,
    tick: u32,
    clients: BTreeMap<ClientId, Peer<G>>,
    /// The keys of `clients`, in order, kept in step on join and removal
    /// (the `Ctx::clients` every hook call sees).
    client_ids: Vec<ClientId>,
    replication: Replication<StateOf<G>>,
    events: Vec<(Target, EventOf<G>)>,
    kicks: Vec<(ClientId, String)>,
    forgotten: Vec<ResumeToken>,
    scratch: Vec<u8>,
    /// Buffers for each client's view (`view.rs`).
    views: Views,
    /// When each snapshot of the ring was built (for clients' ack lags).
    snapshot_times: VecDeque<(u32, Duration)>,
    empty_since: Option<Duration>,
    sent: SentCounters,
}

impl<G: Game> Room<G> {
    /// A new room at tick 0, run by `config` (checked by the caller: see
    /// [`RoomConfig::validate`]) and encoding within the protocol `limits`
    /// its clients decode with ([`crate::ServerConfig::limits`]).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use tickwire_server::{room::Room, Game, RoomConfig};
    /// # fn f<G: Game>(game: G) {
    /// let config = RoomConfig::default().with_tick_rate(20).with_max_clients(4);
    /// let room = Room::new("duel-1", game, Arc::new(config), &tickwire_shared::Limits::default());
    /// assert_eq!(room.config().tick_rate, 20);
    /// # }
    /// ```
    #[must_use]
    pub fn new(
        name: impl Into<String>,
        game: G,
        config: Arc<RoomConfig>,
        limits: &tickwire_shared::Limits,
    ) -> Self {
        let ring = config.baseline_ring;
        let reuse = u32::try_from(ring)
            .unwrap_or(u32::MAX)
            .saturating_mul(2)
            .saturating_mul(u32::from(config.snapshot_interval));
        Self {
            name: name.into(),
            replication: {
                // In ticks, within the acks a client's outbox records.
                let snap = (u32::from(config.baseline_snap)
                    * u32::from(config.snapshot_interval.max(1)))
                .min(crate::outbox::AckWindow::SPAN);
                let r = Replication::new(ring, limits.max_fields_per_entity)
                    .with_deltas(config.deltas)
                    .with_baseline_snap(snap);
                if config.field_diff {
                    r.with_field_diff(<G::Protocol as tickwire_shared::GameProtocol>::diff_fields)
                } else {
                    r
                }
            },
            world: World::new(reuse),
            max_events: limits.max_events_per_message.max(1),
            config,
            game,
            tick: 0,
            clients: BTreeMap::new(),
            client_ids: Vec::new(),
            events: Vec::new(),
            kicks: Vec::new(),
            forgotten: Vec::new(),
            scratch: Vec::new(),
            views: Views::default(),
            snapshot_times: VecDeque::new(),
            empty_since: Some(Duration::ZERO),
            sent: SentCounters::default(),
        }
    }

    /// The snapshots queued since the previous call (counts and bytes), for
    /// [`crate::stats`].
    pub fn take_sent(&mut self) -> SentCounters {
        core::mem::take(&mut self.sent)
    }

    /// The room's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The room's configuration.
    #[must_use]
    pub fn config(&self) -> &Arc<RoomConfig> {
        &self.config
    }

    /// The current tick.
    #[must_use]
    pub fn tick_count(&self) -> u32 {
        self.tick
    }

    /// The world (read-only, for tests and tools).
    #[must_use]
    pub fn world(&self) -> &World<StateOf<G>> {
        &self.world
    }

    /// The game.
    #[must_use]
    pub fn game(&self) -> &G {
        &self.game
    }

    /// Clients in the room, attached or within their resume grace.
    #[must_use]
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// How long the room has been empty at `now`, if it is.
    #[must_use]
    pub fn empty_for(&self, now: Duration) -> Option<Duration> {
        self.empty_since.map(|t| now.saturating_sub(t))
    }

    /// Resume tokens that stopped being valid since the last call.
    pub fn take_forgotten_tokens(&mut self) -> Vec<ResumeToken> {
        core::mem::take(&mut self.forgotten)
    }

    fn with_game<R>(&mut self, f: impl FnOnce(&mut G, &mut Ctx<'_, G>) -> R) -> R {
        // Kept in step with `clients` by `join` and `remove_client`: a hook
        // call costs nothing per client (an input each is one call).
        debug_assert!(self.client_ids.iter().eq(self.clients.keys()));
        let mut ctx = Ctx {
            world: &mut self.world,
            tick: self.tick,
            room: &self.name,
            clients: &self.client_ids,
            peers: &self.clients,
            events: &mut self.events,
            kicks: &mut self.kicks,
        };
        f(&mut self.game, &mut ctx)
    }

    /// Joins a client, or resumes it when its hello carries a token this room
    /// issued and the grace period has not run out. A fresh join is decided
    /// by [`Game::on_auth`].
    ///
    /// # Errors
    /// A [`Rejection`] to send (room full, auth failed…).
    pub fn join(&mut self, now: Duration, req: JoinRequest) -> Result<Joined, Rejection> {
        self.join_as(now, req, &mut None)
    }

    /// As [`Room::join`], for a client an [`crate::auth::Authenticator`]
    /// already accepted: a fresh join takes the user out of `user` (and
    /// [`Game::on_auth`] is not called) when it holds one. A resume, or a
    /// rejection, leaves it there.
    ///
    /// # Errors
    /// A [`Rejection`] to send (room full, auth failed…).
    pub fn join_as(
        &mut self,
        now: Duration,
        req: JoinRequest,
        user: &mut Option<G::User>,
    ) -> Result<Joined, Rejection> {
        if let Some(token) = req.hello.resume_token
            && let Some((&id, _)) = self.clients.iter().find(|(_, c)| c.token == token)
        {
            return Ok(self.resume(now, id, req.outbox, req.rtt));
        }
        if self.clients.len() >= self.config.max_clients {
            return Err(Rejection {
                code: RejectCode::RoomFull,
                message: format!(
                    "room {:?} is full ({} players)",
                    self.name, self.config.max_clients
                ),
            });
        }
        let user = match user.take() {
            Some(user) => user,
            None => self
                .game
                .on_auth(req.hello.auth_token.as_deref())
                .map_err(|e| Rejection {
                    code: e.code,
                    message: e.message,
                })?,
        };
        let id = req.client_id;
        self.set_outbox_limits(&req.outbox);
        if let Err(at) = self.client_ids.binary_search(&id) {
            self.client_ids.insert(at, id);
        }
        self.clients.insert(
            id,
            Peer {
                outbox: Some(req.outbox),
                token: req.new_token,
                detached_at: None,
                inputs: VecDeque::new(),
                messages: VecDeque::new(),
                last_received: 0,
                last_applied: 0,
                repl: ClientReplication::default(),
                pace: Pace::default(),
                due: false,
                budget: self.new_budget(),
                rtt: req.rtt,
            },
        );
        self.empty_since = None;
        self.with_game(|g, ctx| g.on_join(ctx, id, user));
        tracing::info!(room = %self.name, client = id, "client joined");
        Ok(Joined {
            welcome: self.welcome(id, req.new_token, false),
        })
    }

    fn resume(
        &mut self,
        now: Duration,
        id: ClientId,
        outbox: Arc<Outbox>,
        rtt: Arc<Rtt>,
    ) -> Joined {
        let _ = now;
        self.set_outbox_limits(&outbox);
        let client = self.clients.get_mut(&id).expect("found above");
        if let Some(old) = client.outbox.replace(outbox) {
            old.close(CloseCode::Replaced, "session resumed on another connection");
        }
        client.detached_at = None;
        client.repl.reset();
        client.pace = Pace::default();
        if let Some(b) = &mut client.budget {
            b.reset();
        }
        client.rtt = rtt;
        // Messages are not kept across connections (docs/PROTOCOL.md §5.2).
        client.messages.clear();
        // Sequence numbers restart with every connection (docs/PROTOCOL.md §7).
        client.inputs.clear();
        client.last_received = 0;
        client.last_applied = 0;
        let token = client.token;
        self.with_game(|g, ctx| g.on_resume(ctx, id));
        tracing::info!(room = %self.name, client = id, "client resumed");
        Joined {
            welcome: self.welcome(id, token, true),
        }
    }

    /// Gives a joining session's outbox this room's bounds.
    fn set_outbox_limits(&self, outbox: &Outbox) {
        outbox.set_limits(
            self.config.max_queued_reliable,
            self.config.max_skipped_snapshots,
        );
    }

    fn welcome(&self, client_id: ClientId, token: ResumeToken, resumed: bool) -> Welcome {
        Welcome {
            client_id,
            tick_rate: self.config.tick_rate,
            tick: self.tick,
            snapshot_interval: self.config.snapshot_interval,
            resume_token: token,
            room: self.name.clone(),
            resumed,
            implicit_acks: None,
        }
    }

    /// Handles a message from an attached client (inputs, game messages,
    /// acks, leave). Pings and pongs are answered by the session itself.
    ///
    /// A game message over [`crate::messages::MessageLimits::max_queued`]
    /// closes the client's session with `MessageFlood`
    /// ([`MessageError::QueueFull`]) and removes it
    /// ([`LeaveReason::Misbehaved`]).
    pub fn handle(
        &mut self,
        now: Duration,
        client: ClientId,
        msg: ClientMessage<InputOf<G>, MessageOf<G>>,
    ) {
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        match msg {
            ClientMessage::Inputs(inputs) => {
                let mut dropped = 0u64;
                for (k, frame) in inputs.frames.into_iter().enumerate() {
                    let Some(seq) = inputs.first_seq.checked_add(k as u32) else {
                        break;
                    };
                    if seq <= c.last_received {
                        continue; // a resend of an input we already have
                    }
                    c.last_received = seq;
                    if c.inputs.len() >= self.config.max_queued_inputs {
                        dropped += 1;
                        continue;
                    }
                    c.inputs
                        .push_back((InputMeta::new(seq, frame.tick), frame.input));
                }
                if dropped > 0 {
                    m::inputs_dropped(dropped);
                }
            }
            ClientMessage::Ack { snapshot_tick } => match &c.outbox {
                Some(o) => o.record_ack(snapshot_tick),
                None => c.repl.ack(snapshot_tick),
            },
            ClientMessage::Leave => self.remove(now, client, LeaveReason::Left),
            ClientMessage::GameMessage(m) => {
                let max = self.config.game_messages.max_queued;
                if c.outbox.is_none() {
                    return; // detached: messages are not kept
                }
                if c.messages.len() >= max {
                    let e = MessageError::QueueFull { max };
                    if let Some(o) = &c.outbox {
                        o.close(e.close_code(), e.to_string());
                    }
                    tracing::info!(room = %self.name, client, error = %e, "game message flood");
                    self.remove(now, client, LeaveReason::Misbehaved);
                    return;
                }
                c.messages.push_back(m);
            }
            ClientMessage::Hello(_) | ClientMessage::Ping { .. } | ClientMessage::Pong { .. } => {}
        }
    }

    /// The session of `client` ended without a leave. With a resume grace
    /// the client stays (its entities too) until [`RoomConfig::resume_grace`]
    /// passes; a misbehaving session leaves at once.
    pub fn disconnect(
        &mut self,
        now: Duration,
        client: ClientId,
        outbox: &Arc<Outbox>,
        reason: LeaveReason,
    ) {
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        // A stale disconnect from a connection that was already replaced.
        if !c.outbox.as_ref().is_some_and(|o| Arc::ptr_eq(o, outbox)) {
            return;
        }
        if reason == LeaveReason::TimedOut && !self.config.resume_grace.is_zero() {
            c.outbox = None;
            c.detached_at = Some(now);
            c.inputs.clear();
            c.messages.clear();
            tracing::info!(room = %self.name, client, "client detached; may resume");
        } else {
            self.remove(now, client, reason);
        }
    }

    fn remove(&mut self, now: Duration, client: ClientId, reason: LeaveReason) {
        self.remove_because(now, client, reason, "server shutting down");
    }

    /// Removes `client`; `shutdown_reason` is the close reason when `reason`
    /// is [`LeaveReason::Shutdown`].
    fn remove_because(
        &mut self,
        now: Duration,
        client: ClientId,
        reason: LeaveReason,
        shutdown_reason: &str,
    ) {
        let Some(c) = self.clients.remove(&client) else {
            return;
        };
        if let Ok(at) = self.client_ids.binary_search(&client) {
            self.client_ids.remove(at);
        }
        if let Some(o) = c.outbox {
            match reason {
                LeaveReason::Left => o.close(CloseCode::Normal, "goodbye"),
                LeaveReason::Kicked => o.close(CloseCode::Kicked, "kicked"),
                LeaveReason::Shutdown => o.close(CloseCode::ServerShutdown, shutdown_reason),
                _ => o.close(CloseCode::PolicyViolation, "removed from the room"),
            }
        }
        self.forgotten.push(c.token);
        self.with_game(|g, ctx| g.on_leave(ctx, client, reason));
        if self.clients.is_empty() {
            self.empty_since = Some(now);
        }
        tracing::info!(room = %self.name, client, ?reason, "client left");
    }

    /// Closes every session with "server shutting down".
    pub fn shutdown(&mut self, now: Duration) {
        self.shutdown_because(now, "server shutting down");
    }

    /// Closes every session with [`CloseCode::ServerShutdown`] and `reason`
    /// (the game sees [`LeaveReason::Shutdown`]).
    pub fn shutdown_because(&mut self, now: Duration, reason: &str) {
        let ids: Vec<_> = self.clients.keys().copied().collect();
        for id in ids {
            self.remove_because(now, id, LeaveReason::Shutdown, reason);
        }
    }

    /// Whether a client of this room (attached, or detached within its
    /// resume grace) holds `token`: a hello with it resumes.
    #[must_use]
    pub fn holds(&self, token: ResumeToken) -> bool {
        self.clients.values().any(|c| c.token == token)
    }

    /// Runs one tick at `now`: expire detached clients, apply queued inputs,
    /// advance the game, send snapshots and events.
    pub fn tick(&mut self, now: Duration) {
        self.tick = self.tick.wrapping_add(1);
        let grace = self.config.resume_grace;
        let expired: Vec<_> = self
            .clients
            .iter()
            .filter(|(_, c)| {
                c.detached_at
                    .is_some_and(|t| now.saturating_sub(t) >= grace)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.remove(now, id, LeaveReason::TimedOut);
        }
        // Sessions whose outbox closed (slow consumers) without telling us.
        let closed: Vec<_> = self
            .clients
            .iter()
            .filter(|(_, c)| c.outbox.as_ref().is_some_and(|o| o.is_closed()))
            .map(|(id, c)| (*id, c.outbox.clone()))
            .collect();
        for (id, outbox) in closed {
            if let Some(outbox) = outbox {
                self.disconnect(now, id, &outbox, LeaveReason::TimedOut);
            }
        }

        let ids: Vec<_> = self.clients.keys().copied().collect();
        // Game messages first, then inputs; each client's in order.
        let per_tick = self.config.game_messages.max_per_tick;
        for id in &ids {
            for _ in 0..per_tick {
                let Some(msg) = self
                    .clients
                    .get_mut(id)
                    .and_then(|c| c.messages.pop_front())
                else {
                    break;
                };
                self.with_game(|g, ctx| g.on_message(ctx, *id, msg));
            }
        }
        let per_tick = self.config.max_inputs_per_tick;
        for id in &ids {
            for _ in 0..per_tick {
                let Some((meta, input)) =
                    self.clients.get_mut(id).and_then(|c| c.inputs.pop_front())
                else {
                    break;
                };
                if let Some(c) = self.clients.get_mut(id) {
                    c.last_applied = meta.seq;
                }
                self.with_game(|g, ctx| g.on_input(ctx, *id, input, meta));
            }
        }
        let dt = self.config.tick_period().as_secs_f32();
        self.with_game(|g, ctx| g.on_tick(ctx, dt));

        for (id, reason) in core::mem::take(&mut self.kicks) {
            if let Some(o) = self.clients.get(&id).and_then(|c| c.outbox.clone()) {
                o.close(CloseCode::Kicked, reason);
            }
            self.remove(now, id, LeaveReason::Kicked);
        }

        if self
            .tick
            .is_multiple_of(u32::from(self.config.snapshot_interval.max(1)))
        {
            self.send_snapshots(now);
        }
        self.send_events();
    }

    fn send_snapshots(&mut self, now: Duration) {
        let entities: Vec<(NetId, StateOf<G>)> = self
            .world
            .iter_by_net_id()
            .map(|(id, s)| (id, s.clone()))
            .collect();
        let snapshot = match Snapshot::from_vec(entities) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(room = %self.name, error = %e, "world has duplicate ids");
                return;
            }
        };
        self.replication.push(self.tick, snapshot);
        let max_sent = self.config.baseline_ring;
        let mut bytes_sent = 0u64;
        // Acks first, then each client's pace (a client that fell behind
        // is skipped, see `pace.rs`), then the possible baselines of the
        // clients due: they share the baselines most of them can use.
        let limits = self.pace_limits();
        let tick = self.tick;
        let period = self.config.tick_period().as_secs_f64().max(1e-9);
        self.snapshot_times.push_back((tick, now));
        while self.snapshot_times.len() > self.config.baseline_ring.max(2) {
            self.snapshot_times.pop_front();
        }
        let max_wait = self.budget_max_wait();
        for c in self.clients.values_mut() {
            c.due = false;
            let Some(outbox) = &c.outbox else { continue };
            if let Some(acks) = outbox.acks() {
                c.repl.ack_window(acks);
            }
            // The ack lag in ticks of time since that snapshot was built, not
            // in tick numbers: after a late tick the room runs the ticks it
            // owes back to back, and counting them would make every client
            // look behind.
            let ack = c.repl.acked().map(|a| {
                let sent = self
                    .snapshot_times
                    .iter()
                    .rev()
                    .find(|(t, _)| *t == a)
                    .map(|(_, at)| *at);
                let lag = sent.map_or(u32::MAX, |at| {
                    let ticks = now.saturating_sub(at).as_secs_f64() / period;
                    ticks.min(f64::from(u32::MAX)) as u32
                });
                pace::Ack {
                    acked: a,
                    lag,
                    implicit: outbox.implicit_acks(),
                }
            });
            let snapshot = tick / limits.interval;
            match c.pace.due(snapshot, outbox.snapshot_pending(), ack, limits) {
                Decision::Build => c.due = true,
                Decision::Skip => {}
                Decision::Close(behind) => outbox.close(
                    CloseCode::SlowConsumer,
                    format!("fell {behind} snapshots behind"),
                ),
            }
            if c.due && c.budget.is_none() {
                self.replication.vote(&c.repl);
            }
        }
        for (&id, c) in &mut self.clients {
            let Some(outbox) = c.outbox.as_ref().filter(|_| c.due) else {
                continue;
            };
            // A view is the positions of the visible entities in the snapshot
            // just pushed (`view.rs`).
            let view = self.game.view(&self.world, id);
            // A budget walks positions, and so do full snapshots; a view as
            // ids lets a delta compare it with the baseline's word by word.
            let deltas = self.replication.deltas();
            let budgeted = c.budget.is_some() && deltas;
            let visible = match (&view, self.replication.latest()) {
                (Some(view), Some((_, cur))) => self.views.build(
                    &self.game,
                    &self.world,
                    view,
                    tick,
                    cur.as_slice(),
                    deltas && !budgeted,
                ),
                (Some(_), None) => ClientView::At(&[]),
                (None, _) => ClientView::All,
            };
            let built = match &mut c.budget {
                Some(budget) if budgeted => self
                    .replication
                    .build_budgeted(
                        &mut c.repl,
                        budget,
                        // Built as positions (`!budgeted` above): no buffer.
                        visible.positions(&mut Vec::new()),
                        |nid, s| view.as_ref().map_or(1.0, |v| G::priority(v, nid, s)),
                        max_wait,
                        c.last_applied,
                        max_sent,
                        &mut self.scratch,
                    )
                    .map(|b| b.delta),
                _ => self
                    .replication
                    .build_view(
                        &mut c.repl,
                        visible,
                        c.last_applied,
                        max_sent,
                        &mut self.scratch,
                    )
                    .map(|b| b.delta),
            };
            match built {
                Ok(delta) => {
                    bytes_sent += self.scratch.len() as u64;
                    self.sent.snapshots += 1;
                    self.sent.full_snapshots += u64::from(!delta);
                    // The message moves into the outbox as it is (no copy);
                    // the next one gets a buffer of about its size.
                    let len = self.scratch.len();
                    let msg = core::mem::replace(&mut self.scratch, Vec::with_capacity(len));
                    outbox.push_snapshot(Bytes::from(msg));
                }
                Err(e) => {
                    tracing::error!(room = %self.name, client = id, error = %e, "cannot encode snapshot");
                    outbox.close(
                        CloseCode::InternalError,
                        "server failed to encode a snapshot",
                    );
                }
            }
        }
        m::snapshot_bytes(bytes_sent);
        self.sent.bytes += bytes_sent;
    }

    /// A new client's byte budget, when the room has one.
    fn new_budget(&self) -> Option<Box<Budget>> {
        let per_sec = self.config.client_bytes_per_sec?;
        let snapshots =
            f64::from(self.config.tick_rate) / f64::from(self.config.snapshot_interval.max(1));
        Some(Box::new(Budget::new(per_sec, snapshots)))
    }

    /// `budget_max_wait` in ticks (at least one snapshot).
    fn budget_max_wait(&self) -> u32 {
        let ticks = self.config.budget_max_wait.as_secs_f64() * f64::from(self.config.tick_rate);
        (ticks as u32).max(u32::from(self.config.snapshot_interval.max(1)))
    }

    /// The pacing limits from the config: the slowest rate, the ack lags
    /// (half the ring's span; 150 ms over the round trip) and the
    /// stall allowance.
    fn pace_limits(&self) -> PaceLimits {
        let interval = u32::from(self.config.snapshot_interval.max(1));
        let ring = u32::try_from(self.config.baseline_ring).unwrap_or(u32::MAX);
        PaceLimits {
            max_every: u32::from(self.config.max_snapshot_slowdown),
            max_ack_lag: ring.saturating_mul(interval) / 2,
            // 100 ms of queue, plus what a client may hold its ack.
            lag_margin: u32::try_from(
                (Duration::from_millis(100) + AckPolicy::MAX_DELAY).as_millis()
                    * u128::from(self.config.tick_rate)
                    / 1000,
            )
            .unwrap_or(u32::MAX)
            .max(2),
            interval,
            max_stalled: self.config.max_skipped_snapshots,
        }
    }

    fn send_events(&mut self) {
        if self.events.is_empty() {
            return;
        }
        let events = core::mem::take(&mut self.events);
        let max = self.max_events;
        for (&id, c) in &self.clients {
            let Some(outbox) = &c.outbox else { continue };
            let mine: Vec<EventOf<G>> = events
                .iter()
                .filter(|(t, _)| match t {
                    Target::All => true,
                    Target::Client(c) => *c == id,
                    Target::Group(g) => g.contains(&id),
                })
                .map(|(_, e)| e.clone())
                .collect();
            for chunk in mine.chunks(max) {
                let mut w = Writer::new();
                match ServerMessage::<EventOf<G>>::Events(chunk.to_vec()).encode(&mut w) {
                    Ok(()) => outbox.push_reliable(Bytes::from(w.into_vec())),
                    Err(e) => tracing::error!(room = %self.name, error = %e, "cannot encode event"),
                }
            }
        }
    }
}
