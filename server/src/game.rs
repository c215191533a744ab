//! The trait a game implements, and the context its hooks get.

use tickwire_shared::{GameProtocol, NetId, RejectCode};

use crate::world::World;

/// A client's id, assigned by the server and unique for its lifetime.
pub type ClientId = u32;

/// The entity state type of a game.
pub type StateOf<G> = <<G as Game>::Protocol as GameProtocol>::EntityState;
/// The input type of a game.
pub type InputOf<G> = <<G as Game>::Protocol as GameProtocol>::Input;
/// The event type of a game.
pub type EventOf<G> = <<G as Game>::Protocol as GameProtocol>::Event;

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
    /// `max_inputs_per_tick` per client per tick.
    fn on_input(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, input: InputOf<Self>);

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
    /// ([`crate::ServerConfig::client_bytes_per_sec`]): each snapshot a
    /// change that did not fit adds this to the entity's accumulated
    /// priority, and the highest accumulated priorities are sent first (for
    /// example, nearer entities higher). Negative counts as 0. Clients that
    /// see everything (no view) use 1 for every entity. Default: 1.
    fn priority(view: &Self::View, id: NetId, state: &StateOf<Self>) -> f32 {
        let _ = (view, id, state);
        1.0
    }
}
