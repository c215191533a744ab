//! The trait a game implements, and the context its hooks get.

use std::collections::BTreeMap;
use std::time::Duration;

use tickwire_shared::{GameProtocol, NetId, RejectCode};

use crate::room::Peer;
use crate::world::World;

/// A client's id, assigned by the server and unique for its lifetime.
pub type ClientId = u32;

/// The entity state type of a game.
pub type StateOf<G> = <<G as Game>::Protocol as GameProtocol>::EntityState;
/// The input type of a game.
pub type InputOf<G> = <<G as Game>::Protocol as GameProtocol>::Input;
/// The event type of a game.
pub type EventOf<G> = <<G as Game>::Protocol as GameProtocol>::Event;
/// The client → server message type of a game.
pub type MessageOf<G> = <<G as Game>::Protocol as GameProtocol>::Message;

/// What the wire says about one input ([`Game::on_input`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct InputMeta {
    /// Its sequence number on this connection (from 1; they restart when a
    /// client resumes on a new connection).
    pub seq: u32,
    /// The server tick the client made it for: its estimate of the server's
    /// tick when it sampled the input (docs/PROTOCOL.md §7). Together with
    /// [`Ctx::rtt`] and [`Ctx::tick`] this is what lag compensation needs:
    /// the client saw the world as of about `tick` minus the interpolation
    /// delay it renders with. A hostile client can claim any tick; clamp it
    /// to a window you accept.
    pub tick: u32,
}

impl InputMeta {
    /// The meta of input `seq` made for `tick`.
    #[must_use]
    pub fn new(seq: u32, tick: u32) -> Self {
        Self { seq, tick }
    }
}

/// The auth hook refused a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AuthError {
    /// Sent to the client ([`RejectCode::AuthFailed`], [`RejectCode::Banned`], …).
    pub code: RejectCode,
    /// Sent to the client, for people.
    pub message: String,
}

impl AuthError {
    /// An [`RejectCode::AuthFailed`] rejection.
    #[must_use]
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: RejectCode::AuthFailed,
            message: message.into(),
        }
    }
}

/// Who receives an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One client.
    Client(ClientId),
    /// Some clients.
    Group(Vec<ClientId>),
    /// Every client in the room.
    All,
}

/// Why a client left the game.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaveReason {
    /// The client said goodbye.
    Left,
    /// The connection dropped and was not resumed within the grace period.
    TimedOut,
    /// The game kicked it.
    Kicked,
    /// The session broke a rule (malformed message, flood, slow consumer).
    Misbehaved,
    /// The server or the room is shutting down.
    Shutdown,
}

/// What a hook can do: change the world, send events, kick clients.
pub struct Ctx<'a, G: Game + ?Sized> {
    /// The room's entities.
    pub world: &'a mut World<StateOf<G>>,
    pub(crate) tick: u32,
    pub(crate) room: &'a str,
    pub(crate) clients: &'a [ClientId],
    pub(crate) peers: &'a BTreeMap<ClientId, Peer<G>>,
    pub(crate) events: &'a mut Vec<(Target, EventOf<G>)>,
    pub(crate) kicks: &'a mut Vec<(ClientId, String)>,
}

impl<G: Game + ?Sized> Ctx<'_, G> {
    /// The current tick.
    #[must_use]
    pub fn tick(&self) -> u32 {
        self.tick
    }

    /// The room's name.
    #[must_use]
    pub fn room(&self) -> &str {
        self.room
    }

    /// The clients in the room (attached or within their resume grace).
    #[must_use]
    pub fn clients(&self) -> &[ClientId] {
        self.clients
    }

    /// The smoothed round-trip time of `client` as the server measures it
    /// (pings every `SessionConfig::ping_interval`; RFC 6298 smoothing).
    /// `None` before its first pong, for a client detached within its resume
    /// grace, and for an unknown client.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tickwire_server::{ClientId, Ctx, Game};
    /// // Lag compensation: how far back the client saw the world.
    /// fn rewind_ticks<G: Game>(ctx: &Ctx<'_, G>, client: ClientId, tick_rate: u32) -> u32 {
    ///     let half_rtt = ctx.rtt(client).unwrap_or(Duration::ZERO) / 2;
    ///     (half_rtt.as_secs_f64() * f64::from(tick_rate)).round() as u32
    /// }
    /// ```
    #[must_use]
    pub fn rtt(&self, client: ClientId) -> Option<Duration> {
        self.peers.get(&client).and_then(Peer::rtt)
    }

    /// Sends a reliable event; it goes out with this tick's messages.
    pub fn send(&mut self, to: Target, event: EventOf<G>) {
        self.events.push((to, event));
    }

    /// Kicks a client at the end of this tick with a reason for people.
    pub fn kick(&mut self, client: ClientId, reason: impl Into<String>) {
        self.kicks.push((client, reason.into()));
    }
}

/// A game built on tickwire. One value of it runs each room.
///
/// All hooks run on the room's tick task: keep them quick and never block.
/// See the crate docs for a complete example.
pub trait Game: Send + 'static {
    /// The wire types.
    type Protocol: GameProtocol;
    /// What the auth hook attaches to a client.
    type User: Send + 'static;
    /// What a client sees from, computed once per client per snapshot by
    /// [`Game::view`] (e.g. its player's position). Use `()` for none.
    type View: Send + 'static;

    /// Accepts or rejects a joining client by its hello's auth token.
    ///
    /// # Errors
    /// An [`AuthError`], sent to the client as a reject.
    fn on_auth(&mut self, token: Option<&str>) -> Result<Self::User, AuthError>;

    /// A client joined (not called again when it resumes).
    fn on_join(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, user: Self::User);

    /// A client resumed its session after a dropped connection. Its entities
    /// were kept. Default: nothing.
    fn on_resume(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId) {
        let _ = (ctx, client);
    }

    /// One input of a client, in sequence order, at most
    /// `max_inputs_per_tick` per client per tick. `meta` has its sequence
    /// number and the tick the client made it for.
    fn on_input(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        client: ClientId,
        input: InputOf<Self>,
        meta: InputMeta,
    );

    /// One reliable game message of a client
    /// ([`GameProtocol::Message`], sent with
    /// `ClientSession::send_message`), on the room's tick before the
    /// tick's inputs, in the order the client sent them, at most
    /// [`crate::messages::MessageLimits::max_per_tick`] per client per tick.
    /// Default: ignored (for games whose `Message` is `()`).
    ///
    /// ```
    /// # use tickwire_server::{ClientId, Ctx, Game, Target};
    /// # use tickwire_server::game::MessageOf;
    /// // In `impl Game for MyGame` with `type Message = String` and
    /// // `type Event = String`: a chat relay.
    /// fn on_message<G: Game>(ctx: &mut Ctx<'_, G>, client: ClientId, line: MessageOf<G>)
    /// where
    ///     G::Protocol: tickwire_shared::GameProtocol<Message = String, Event = String>,
    /// {
    ///     let line: String = line.chars().take(200).collect();
    ///     ctx.send(Target::All, format!("{client}: {line}"));
    /// }
    /// ```
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, msg: MessageOf<Self>) {
        let _ = (ctx, client, msg);
    }

    /// Advances the world by `dt` seconds, after this tick's inputs.
    fn on_tick(&mut self, ctx: &mut Ctx<'_, Self>, dt: f32);

    /// A client left for good.
    fn on_leave(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, reason: LeaveReason);

    /// The view of `client` for this snapshot; `None` means it sees every
    /// entity. Default: `None`.
    fn view(&self, world: &World<StateOf<Self>>, client: ClientId) -> Option<Self::View> {
        let _ = (world, client);
        None
    }

    /// The entities that may be visible from `view`, from a spatial index the
    /// game keeps (for example a [`crate::interest::Grid`] updated in
    /// [`Game::on_tick`]): push their ids onto `out` (any order, a superset
    /// is fine) and return true. The room then checks only those with
    /// [`Game::can_see`], so a client costs what is near it, not the whole
    /// world. Default: false, and [`Game::can_see`] is asked about every
    /// entity.
    fn visible(
        &self,
        world: &World<StateOf<Self>>,
        view: &Self::View,
        out: &mut Vec<NetId>,
    ) -> bool {
        let _ = (world, view, out);
        false
    }

    /// Whether an entity is visible from `view`. Applied before diffing, so
    /// a hidden entity's state never reaches the client. Default: visible.
    fn can_see(view: &Self::View, id: NetId, state: &StateOf<Self>) -> bool {
        let _ = (view, id, state);
        true
    }

    /// How much a change of a visible entity matters to the client with
    /// `view`, when clients have a byte budget
    /// ([`crate::RoomConfig::client_bytes_per_sec`]): each snapshot a
    /// change that did not fit adds this to the entity's accumulated
    /// priority, and the highest accumulated priorities are sent first (for
    /// example, nearer entities higher). Negative counts as 0. Clients that
    /// see everything (no view) use 1 for every entity. Default: 1.
    fn priority(view: &Self::View, id: NetId, state: &StateOf<Self>) -> f32 {
        let _ = (view, id, state);
        1.0
    }
}
