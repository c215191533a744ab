//! The arena client: glues tickwire-web's [`Connection`] (the protocol
//! session, reconnects), its [`Predictor`] and [`InterpBuffer`], and the
//! HUD state together, without touching the browser.
//!
//! The browser driver (`browser.rs`) runs it through
//! `tickwire_web::socket::GameClient` (it is the [`SocketApp`]) and
//! owns the canvas and the event listeners. Its sans-IO methods mirror what
//! the socket driver does, for the tests:
//!
//! ```text
//!  connect_due(now)? ─▶ open socket, connecting(now)   on_open(now)
//!  socket message ─────▶ on_message(now, bytes)
//!  socket close ───────▶ on_close(now, code, reason, random)
//!  animation frame ────▶ update(now); frame(now, view) ─▶ &Scene ─▶ renderer
//!  after each call ────▶ poll_close() ─▶ close the socket with (code, reason)
//!                        poll_transmit(now) until None ─▶ socket
//! ```
//!
//! The world drawn and predicted is the session's `ClientWorld`, patched in
//! place by every snapshot; remote entities reach the interpolation buffer
//! as a copy kept up to date from each snapshot's change list.

use arena::{
    ARENA_SIZE, Arena, ArenaEvent, EntityKind, EntityState, MAX_HEALTH, PLAYER_RADIUS,
    PLAYER_SPEED, PROJECTILE_RADIUS, PlayerInput, TICK_RATE, step_player, walls,
};
use glam::Vec2;
use tickwire_shared::client::{ClientWorld, Event};
use tickwire_shared::quantize::Angle16;
use tickwire_shared::{Hello, NetId};
use tickwire_web::connection::{Connection, Status};
use tickwire_web::interp::{Angle, InterpBuffer};
use tickwire_web::meter::RateMeter;
use tickwire_web::net::{self, Net};
use tickwire_web::predict::{Predict, Predictor};
use tickwire_web::socket::SocketApp;

use crate::input::InputState;
use crate::render::{Camera, PlayerSprite, Scene, ShotSprite};
use crate::ui::{self, KillFeed, NetFigures, ScoreRow};

mod stats;

pub use stats::Stats;

/// One entity's interpolated part: its position and facing.
pub type Sample = (NetId, (Vec2, Angle));

/// The arena's prediction hook: the local player moves with the server's
/// own [`step_player`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ArenaPredict;

impl Predict for ArenaPredict {
    type Input = PlayerInput;
    type State = Vec2;

    fn step(&self, pos: &Vec2, input: &PlayerInput, dt: f32) -> Vec2 {
        step_player(*pos, input, dt)
    }

    fn distance(&self, a: &Vec2, b: &Vec2) -> f32 {
        a.distance(*b)
    }
}

/// Most fixed ticks simulated in one update; a longer stall is dropped
/// instead of replayed.
const MAX_TICKS_PER_UPDATE: u32 = 8;
/// The server disagreeing by more than this snaps instead of smoothing
/// (a respawn or a teleport): a quarter second of running.
const SNAP_DISTANCE: f32 = PLAYER_SPEED * 0.25;

/// The whole client state of the arena demo.
#[derive(Debug)]
pub struct Client {
    name: String,
    /// The room and seat token of a matchmaker's ticket, if playing by one.
    seat: Option<(String, String)>,
    conn: Connection<Arena>,
    predictor: Predictor<ArenaPredict>,
    interp: InterpBuffer<(Vec2, Angle)>,
    my_client: Option<u32>,
    my_entity: Option<NetId>,
    tick_ms: f64,
    acc_ms: f64,
    last_update: Option<f64>,
    last_frame: Option<f64>,
    /// The keyboard and mouse.
    pub input: InputState,
    aim: Angle16,
    feed: KillFeed,
    fps: RateMeter,
    samples: Vec<Sample>,
    /// Every entity of the session's world as an interpolation sample, by
    /// id: updated from each snapshot's changes, then copied into `interp`.
    world_samples: Vec<Sample>,
    scene: Scene,
}

fn sample(id: NetId, s: &EntityState) -> Sample {
    (id, (s.pos.to_vec2(), Angle(s.angle.to_radians())))
}

/// Our player: `my_entity` once known, else (before `YouAre`) the player we
/// own.
fn find_me(
    world: &ClientWorld<EntityState>,
    my_entity: Option<NetId>,
    my_client: Option<u32>,
) -> Option<(NetId, &EntityState)> {
    if let Some(id) = my_entity {
        return world.get(id).map(|s| (id, s));
    }
    let me = my_client?;
    world
        .iter()
        .find(|(_, s)| s.kind == EntityKind::Player && s.owner == me)
}

impl Client {
    /// A client for the player `name`; nothing happens before
    /// [`Client::connect_due`] says so.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            seat: None,
            conn: Connection::new(),
            predictor: Predictor::new(ArenaPredict, TICK_RATE, SNAP_DISTANCE),
            interp: InterpBuffer::new(TICK_RATE, 1),
            my_client: None,
            my_entity: None,
            tick_ms: 1000.0 / f64::from(TICK_RATE),
            acc_ms: 0.0,
            last_update: None,
            last_frame: None,
            input: InputState::default(),
            aim: Angle16(0),
            feed: KillFeed::new(),
            fps: RateMeter::new(),
            samples: Vec::new(),
            world_samples: Vec::new(),
            scene: Scene {
                camera: Camera::follow(Vec2::new(800.0, 600.0), None, ARENA_SIZE, PLAYER_RADIUS),
                arena: ARENA_SIZE,
                walls: walls().iter().map(|w| (w.min, w.max)).collect(),
                players: Vec::new(),
                shots: Vec::new(),
                player_radius: PLAYER_RADIUS,
                shot_radius: PROJECTILE_RADIUS,
                notice: None,
            },
        }
    }

    /// (Re)starts playing as `name`: a new name is a new session; the same
    /// name resumes. Connects at the next [`Client::connect_due`].
    pub fn play(&mut self, now_ms: f64, name: &str) {
        if name != self.name {
            self.my_entity = None;
        }
        name.clone_into(&mut self.name);
        let hello = self.hello();
        self.conn.start(now_ms, hello);
    }

    /// (Re)starts playing as `name` with a matchmaker's seat (`room`,
    /// `seat_token`): a new seat is a new session, whose hello names the
    /// room and carries the token (docs/PROTOCOL.md §13).
    pub fn play_seat(&mut self, now_ms: f64, name: &str, room: &str, seat_token: &str) {
        let seat = Some((room.to_owned(), seat_token.to_owned()));
        if seat != self.seat {
            self.my_entity = None;
        }
        self.seat = seat;
        self.play(now_ms, name);
    }

    /// The hello of the current player: the name as the auth token, and the
    /// seat's room and token when playing by a ticket.
    fn hello(&self) -> Hello {
        let mut hello = net::hello::<Arena>(&self.name);
        if let Some((room, token)) = &self.seat {
            hello.room = Some(room.clone());
            hello.seat_token = Some(token.clone());
        }
        hello
    }

    /// Leaves the game: queues a `Leave` and stops reconnecting. The driver
    /// sends it, then closes the socket normally.
    pub fn leave(&mut self, now_ms: f64) {
        self.conn.leave(now_ms);
        self.drain(now_ms);
    }

    /// True when the driver should open a socket now.
    #[must_use]
    pub fn connect_due(&self, now_ms: f64) -> bool {
        self.conn.connect_due(now_ms)
    }

    /// A socket is opening: a new session says hello, a known one resumes.
    pub fn connecting(&mut self, now_ms: f64) {
        self.conn.connecting(now_ms);
    }

    /// The socket opened (the hello can go out now).
    pub fn on_open(&mut self, now_ms: f64) {
        self.conn.on_open(now_ms);
    }

    /// The next message to send, while the socket is open.
    pub fn poll_transmit(&mut self, now_ms: f64) -> Option<&[u8]> {
        self.conn.poll_transmit(now_ms)
    }

    /// The close the driver owes the socket, as `(code, reason)`: the
    /// session ended (a protocol error, a timeout, the server's close).
    pub fn poll_close(&mut self) -> Option<(u16, String)> {
        self.conn.poll_close()
    }

    /// Handles one binary frame. Returns `Some((code, reason))` when the
    /// driver must close the socket with that code (as [`Client::poll_close`]).
    pub fn on_message(&mut self, now_ms: f64, bytes: &[u8]) -> Option<(u16, String)> {
        self.conn.on_message(now_ms, bytes);
        self.drain(now_ms);
        self.poll_close()
    }

    /// Hands every pending session event to the game.
    fn drain(&mut self, now_ms: f64) {
        while let Some(event) = self.conn.poll_event(now_ms) {
            self.on_event(now_ms, event);
        }
    }

    /// A text frame arrived: tickwire speaks binary only.
    pub fn on_text_message(&mut self) -> (u16, String) {
        self.conn.on_text_message()
    }

    fn on_event(&mut self, now_ms: f64, event: Event<Arena>) {
        match event {
            Event::Welcome(w) => {
                if !w.resumed || self.my_client != Some(w.client_id) {
                    self.my_entity = None;
                }
                self.my_client = Some(w.client_id);
                self.tick_ms = 1000.0 / f64::from(w.tick_rate.max(1));
                self.predictor.set_tick_rate(w.tick_rate);
                self.predictor.reset();
                self.interp = InterpBuffer::new(w.tick_rate, w.snapshot_interval);
                self.world_samples.clear();
                self.acc_ms = 0.0;
            }
            Event::Snapshot(applied) => self.on_snapshot(now_ms, applied.tick),
            Event::Events(events) => {
                for e in events {
                    self.on_game_event(now_ms, e);
                }
            }
            // The overlay's RTT is `Net`'s; the end of the session, the
            // `Connection`'s.
            Event::Rtt(_) | Event::Closed(_) => {}
        }
    }

    fn on_game_event(&mut self, now_ms: f64, event: ArenaEvent) {
        match event {
            ArenaEvent::YouAre { entity } => {
                if self.my_entity != Some(entity) {
                    self.predictor.reset();
                }
                self.my_entity = Some(entity);
            }
            ArenaEvent::Killed {
                killer,
                victim,
                killer_name,
                victim_name,
            } => {
                let me = self.my_client;
                let who = |id: u32, name: &str| {
                    if Some(id) == me {
                        "you".to_owned()
                    } else if name.is_empty() {
                        "someone".to_owned()
                    } else {
                        name.to_owned()
                    }
                };
                let line = if killer == victim {
                    format!("{} went down", who(victim, &victim_name))
                } else {
                    format!(
                        "{} ✕ {}",
                        who(killer, &killer_name),
                        who(victim, &victim_name)
                    )
                };
                self.feed.push(now_ms, line);
            }
            ArenaEvent::Respawned { client } => {
                if Some(client) == self.my_client {
                    self.predictor.reset();
                }
            }
            // An empty sender is the server itself (joins, leaves).
            ArenaEvent::Chat { from, text } if from.is_empty() => self.feed.push(now_ms, text),
            ArenaEvent::Chat { from, text } => self.feed.push(now_ms, format!("{from}: {text}")),
        }
    }

    fn on_snapshot(&mut self, now_ms: f64, tick: u32) {
        let Some(session) = self.conn.net().map(Net::session) else {
            return;
        };
        let world = session.world();
        if let Some((id, state)) = find_me(world, self.my_entity, self.my_client) {
            self.my_entity = Some(id);
            if state.health > 0 {
                // The server's position after `last_input`, plus every input
                // it has not applied yet.
                let pending = session.pending_inputs().map(|(_, _, input)| input);
                self.predictor
                    .reconcile(now_ms, state.pos.to_vec2(), pending);
            } else {
                self.predictor.reset();
            }
        }
        update_samples(&mut self.world_samples, world);
        // Our own entity is in the copy too; `frame` draws it from the
        // predictor instead.
        self.interp.push(now_ms, tick, self.world_samples.clone());
    }

    /// The socket closed (or failed to open). `random` is a uniform number
    /// in `[0, 1)` for the backoff jitter.
    pub fn on_close(&mut self, now_ms: f64, code: u16, reason: &str, random: f64) {
        self.conn.on_close(now_ms, code, reason, random);
        self.drain(now_ms);
        if !matches!(self.conn.status(), Status::Connected) {
            self.predictor.reset();
        }
    }

    /// Runs the fixed-rate ticks due by `now_ms`: samples the input, sends
    /// it with every unacknowledged one, predicts; and sends pings.
    pub fn update(&mut self, now_ms: f64) {
        let elapsed = self
            .last_update
            .map_or(0.0, |t| (now_ms - t).clamp(0.0, 1000.0));
        self.last_update = Some(now_ms);
        self.conn.on_timer(now_ms);
        self.drain(now_ms);
        if self.conn.established().is_none() {
            self.acc_ms = 0.0;
            return;
        }
        self.acc_ms += elapsed;
        let mut ticks = 0;
        while self.acc_ms >= self.tick_ms && ticks < MAX_TICKS_PER_UPDATE {
            self.acc_ms -= self.tick_ms;
            ticks += 1;
            let from = self
                .predictor
                .visual_position()
                .unwrap_or(self.scene.camera.center);
            let target = self
                .input
                .pointer_position()
                .map(|p| self.scene.camera.to_world(p));
            let input = self.input.to_input(from, target, self.aim);
            self.aim = input.aim;
            if self.conn.push_input(now_ms, input).is_some() {
                self.predictor.apply_input(&input);
            }
        }
        if ticks == MAX_TICKS_PER_UPDATE {
            self.acc_ms = 0.0;
        }
    }

    /// Builds this frame's scene for a `view`-sized canvas.
    pub fn frame(&mut self, now_ms: f64, view: Vec2) -> &Scene {
        if let Some(last) = self.last_frame {
            self.predictor.advance(now_ms - last);
        }
        self.last_frame = Some(now_ms);
        self.fps.add(now_ms, 1.0);
        self.interp.sample(now_ms, &mut self.samples);

        let scene = &mut self.scene;
        scene.players.clear();
        scene.shots.clear();
        scene.notice = None;
        let mut focus = None;
        let world = self.conn.established().map(|s| s.world());
        if let Some(world) = world {
            let my_id = find_me(world, self.my_entity, self.my_client).map(|(id, _)| id);
            let mut me = None;
            for (id, state) in world.iter() {
                let health = f32::from(state.health) / f32::from(MAX_HEALTH.max(1));
                if Some(id) == my_id {
                    let alive = state.health > 0;
                    let pos = if alive {
                        self.predictor
                            .visual_position()
                            .unwrap_or(state.pos.to_vec2())
                    } else {
                        state.pos.to_vec2()
                    };
                    focus = Some(pos);
                    if !alive {
                        scene.notice = Some("Respawning…".to_owned());
                    }
                    me = Some(PlayerSprite {
                        pos,
                        angle: self.aim.to_radians(),
                        name: state.name.clone(),
                        health,
                        alive,
                        is_me: true,
                    });
                    continue;
                }
                let Ok(i) = self.samples.binary_search_by_key(&id, |s| s.0) else {
                    continue;
                };
                let (pos, Angle(angle)) = self.samples[i].1;
                match state.kind {
                    // NPCs (load tests) are drawn as nameless players.
                    EntityKind::Player | EntityKind::Npc => scene.players.push(PlayerSprite {
                        pos,
                        angle,
                        name: state.name.clone(),
                        health,
                        alive: state.health > 0,
                        is_me: false,
                    }),
                    EntityKind::Projectile => scene.shots.push(ShotSprite {
                        pos,
                        angle,
                        mine: Some(state.owner) == self.my_client,
                    }),
                }
            }
            scene.players.extend(me);
        }
        scene.camera = Camera::follow(view, focus, ARENA_SIZE, PLAYER_RADIUS);
        &self.scene
    }

    /// The banner for now.
    #[must_use]
    pub fn banner(&self, now_ms: f64) -> Option<(String, ui::Tone)> {
        ui::banner_text(self.conn.status(), now_ms)
    }

    /// The connection status.
    #[must_use]
    pub fn status(&self) -> &Status {
        self.conn.status()
    }

    /// The kill feed's current lines.
    pub fn feed_lines(&mut self, now_ms: f64) -> impl Iterator<Item = &str> {
        self.feed.lines(now_ms)
    }

    /// The scoreboard from the newest snapshot, ranked.
    #[must_use]
    pub fn scoreboard(&self) -> Vec<ScoreRow> {
        let Some(net) = self.conn.net() else {
            return Vec::new();
        };
        let mut rows: Vec<ScoreRow> = net
            .session()
            .world()
            .iter()
            .filter(|(_, s)| s.kind == EntityKind::Player)
            .map(|(id, s)| ScoreRow {
                name: s.name.clone(),
                kills: s.kills,
                deaths: s.deaths,
                is_me: Some(id) == self.my_entity || Some(s.owner) == self.my_client,
            })
            .collect();
        ui::rank(&mut rows);
        rows
    }

    /// The network overlay's figures.
    pub fn figures(&mut self, now_ms: f64) -> NetFigures {
        let corrections_per_sec = self.predictor.corrections_per_sec(now_ms);
        let fps = self.fps.per_second(now_ms);
        let interp_delay_ms = self.interp.delay_ms();
        let transport = self.conn.transport().map(|k| k.name());
        match self.conn.net_mut() {
            Some(n) if n.session().is_established() => NetFigures {
                transport,
                rtt_ms: n.rtt_ms(),
                snapshots_per_sec: n.snapshots_per_sec(now_ms),
                bytes_per_sec: n.bytes_in_per_sec(now_ms),
                tick: n.session().world().tick(),
                corrections_per_sec,
                fps,
                interp_delay_ms,
            },
            _ => NetFigures {
                transport,
                fps,
                interp_delay_ms,
                ..NetFigures::default()
            },
        }
    }

    /// Everything `window.tickwire.stats()` reports.
    pub fn stats(&mut self, now_ms: f64) -> Stats {
        let f = self.figures(now_ms);
        let status = self
            .banner(now_ms)
            .map_or_else(|| "playing".to_owned(), |(text, _)| text);
        let (entity_count, visible_players, projectiles, unacked_inputs, connected) =
            match self.conn.established() {
                Some(s) => {
                    let world = s.world();
                    let players = world
                        .iter()
                        .filter(|(_, e)| e.kind == EntityKind::Player)
                        .count();
                    let n = world.len();
                    (n, players, n - players, s.pending_inputs().len(), true)
                }
                _ => (0, 0, 0, 0, false),
            };
        Stats {
            connected,
            status,
            name: self.name.clone(),
            tick: f.tick,
            rtt_ms: f.rtt_ms,
            snapshots_per_sec: f.snapshots_per_sec,
            bytes_per_sec: f.bytes_per_sec,
            corrections_per_sec: f.corrections_per_sec,
            fps: f.fps,
            my_entity: self.my_entity.map(|e| e.0),
            client_id: self.my_client,
            entity_count,
            visible_players,
            projectiles,
            unacked_inputs,
            interp_delay_ms: f.interp_delay_ms,
            reconnect_attempts: self.conn.reconnect_attempts(),
            transport: f.transport,
        }
    }
}

impl SocketApp for Client {
    type Game = Arena;

    fn connection(&mut self) -> &mut Connection<Arena> {
        &mut self.conn
    }

    fn on_event(&mut self, now_ms: f64, event: Event<Arena>) {
        Client::on_event(self, now_ms, event);
    }
}

/// Brings `samples` (sorted by id) to the world's newest state. After the
/// first snapshot of a connection this costs what the snapshot changed; a
/// copy that disagrees with the world in size is rebuilt.
fn update_samples(samples: &mut Vec<Sample>, world: &ClientWorld<EntityState>) {
    let changes = world.changes();
    for &id in &changes.removed {
        if let Ok(i) = samples.binary_search_by_key(&id, |s| s.0) {
            samples.remove(i);
        }
    }
    for &id in changes.added.iter().chain(&changes.changed) {
        let Some(state) = world.get(id) else { continue };
        match samples.binary_search_by_key(&id, |s| s.0) {
            Ok(i) => samples[i] = sample(id, state),
            Err(i) => samples.insert(i, sample(id, state)),
        }
    }
    if samples.len() != world.len() {
        samples.clear();
        samples.extend(world.iter().map(|(id, s)| sample(id, s)));
    }
}

#[cfg(test)]
mod tests;
