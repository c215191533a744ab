//! The arena on `tickwire-server`: [`ArenaGame`] maps the [`ArenaSim`] onto
//! a room's entity store (only with the `server` feature).

use std::collections::HashMap;

use glam::Vec2;
use tickwire_server::interest::Grid;
use tickwire_server::world::{EntityKey, World};
use tickwire_server::{AuthError, ClientId, Ctx, Game, InputMeta, LeaveReason, Target};
use tickwire_shared::NetId;

use crate::{
    Arena, ArenaEvent, ArenaSim, BOT_ID_BASE, EntityState, PlayerInput, SimEvent, SimId,
    VIEW_RADIUS, Wanderers, bot, sanitize_name, within,
};

/// One room of the arena.
pub struct ArenaGame {
    sim: ArenaSim,
    entities: HashMap<SimId, EntityKey>,
    bots: u32,
    bots_added: bool,
    seed: u64,
    interest: bool,
    npcs: Wanderers,
    /// The store keys of the NPCs, in [`Wanderers::iter`] order (spawned on
    /// the first tick).
    npc_keys: Vec<EntityKey>,
    /// Every entity's position by net id, for [`Game::visible`].
    grid: Grid,
    /// How far a client sees ([`ArenaGame::with_view_radius`]).
    view_radius: f32,
}

/// Where a client sees from: its player's position, and how far it sees
/// ([`ArenaGame::with_view_radius`]). The room's [`Game::View`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewpoint {
    /// The player's position.
    pub pos: Vec2,
    /// The view radius, in world units.
    pub radius: f32,
}

impl ArenaGame {
    /// A room with `bots` server-side AI players; `seed` drives spawns and bots.
    #[must_use]
    pub fn new(bots: u32, seed: u64) -> Self {
        Self {
            sim: ArenaSim::new(seed).with_per_input_movement(),
            entities: HashMap::new(),
            bots,
            bots_added: false,
            seed,
            interest: true,
            npcs: Wanderers::new(0, seed),
            npc_keys: Vec::new(),
            grid: Grid::new(VIEW_RADIUS / 2.0),
            view_radius: VIEW_RADIUS,
        }
    }

    /// How far a client sees when interest management is on, in world
    /// units (default [`VIEW_RADIUS`], 900: most of the 1,600 × 1,000
    /// arena). A smaller radius gives each client fewer entities, as in a
    /// large world, for load tests. Non-finite or non-positive values are
    /// taken as the default.
    ///
    /// ```
    /// use arena::host::ArenaGame;
    /// let game = ArenaGame::new(0, 1).with_npcs(10_000).with_view_radius(125.0);
    /// assert_eq!(game.view_radius(), 125.0);
    /// assert_eq!(ArenaGame::new(0, 1).with_view_radius(f32::NAN).view_radius(), arena::VIEW_RADIUS);
    /// ```
    #[must_use]
    pub fn with_view_radius(mut self, radius: f32) -> Self {
        self.view_radius = if radius.is_finite() && radius > 0.0 {
            radius
        } else {
            VIEW_RADIUS
        };
        // Cells of half the radius keep a query to about 5 × 5 cells. The
        // grid is filled on the first tick, so it is still empty here.
        self.grid = Grid::new(self.view_radius / 2.0);
        self
    }

    /// How far a client sees ([`ArenaGame::with_view_radius`]).
    #[must_use]
    pub fn view_radius(&self) -> f32 {
        self.view_radius
    }

    /// Adds `count` wandering NPCs ([`Wanderers`]) that move every tick: a
    /// known number of moving entities for load tests.
    #[must_use]
    pub fn with_npcs(mut self, count: usize) -> Self {
        self.npcs = Wanderers::new(count, self.seed);
        self
    }

    /// Turns interest management off or on (default on): with it, a client
    /// only receives entities within the view radius of its player
    /// ([`ArenaGame::with_view_radius`]).
    #[must_use]
    pub fn with_interest_management(mut self, on: bool) -> Self {
        self.interest = on;
        self
    }

    /// The simulation (read-only).
    #[must_use]
    pub fn sim(&self) -> &ArenaSim {
        &self.sim
    }

    fn spawn(&mut self, world: &mut World<EntityState>, tick: u32, id: SimId) -> Option<NetId> {
        let state = self.sim.state_of(id)?;
        let key = world.spawn(tick, state);
        self.entities.insert(id, key);
        world.net_id(key)
    }

    fn despawn(&mut self, world: &mut World<EntityState>, tick: u32, id: SimId) {
        if let Some(key) = self.entities.remove(&id) {
            if let Some(nid) = world.net_id(key) {
                self.grid.remove(nid);
            }
            world.despawn(tick, key);
        }
    }

    fn add_player(&mut self, ctx: &mut Ctx<'_, Self>, client: u32, name: &str) {
        self.sim.add_player(client, name, self.seed);
        if let Some(id) = self.spawn(ctx.world, ctx.tick(), SimId::Player(client))
            && client < BOT_ID_BASE
        {
            ctx.send(Target::Client(client), ArenaEvent::YouAre { entity: id });
        }
    }
}

impl Game for ArenaGame {
    type Protocol = Arena;
    /// The player's display name.
    type User = String;
    /// The viewer's position and view radius.
    type View = Viewpoint;

    /// The demo has no accounts: the token is the display name (cleaned).
    fn on_auth(&mut self, token: Option<&str>) -> Result<String, AuthError> {
        Ok(sanitize_name(token.unwrap_or_default()))
    }

    fn on_join(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, name: String) {
        self.add_player(ctx, client, &name);
        let name = self
            .sim
            .player(client)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        ctx.send(
            Target::All,
            ArenaEvent::Chat {
                from: String::new(),
                text: format!("{name} joined"),
            },
        );
    }

    fn on_resume(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId) {
        if let Some(id) = self
            .entities
            .get(&SimId::Player(client))
            .and_then(|k| ctx.world.net_id(*k))
        {
            ctx.send(Target::Client(client), ArenaEvent::YouAre { entity: id });
        }
    }

    fn on_input(
        &mut self,
        _ctx: &mut Ctx<'_, Self>,
        client: ClientId,
        input: PlayerInput,
        _meta: InputMeta,
    ) {
        let dt = 1.0 / f32::from(crate::TICK_RATE);
        self.sim.move_by_input(client, &input, dt);
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Self>, dt: f32) {
        let tick = ctx.tick();
        if !self.bots_added {
            self.bots_added = true;
            for i in 0..self.bots {
                self.add_player(ctx, BOT_ID_BASE + i, "");
            }
            self.npc_keys = self
                .npcs
                .iter()
                .map(|npc| ctx.world.spawn(tick, npc.state()))
                .collect();
        }
        self.npcs.step(tick, dt);
        for (npc, key) in self.npcs.iter().zip(&self.npc_keys) {
            if let Some(slot) = ctx.world.get_mut(*key) {
                let moved = npc.state();
                slot.pos = moved.pos;
                slot.angle = moved.angle;
            }
        }
        for i in 0..self.bots {
            let id = BOT_ID_BASE + i;
            let input = bot::bot_input(&self.sim, id, tick, self.seed);
            self.sim.move_by_input(id, &input, dt);
        }
        for event in self.sim.step(tick, dt) {
            match &event {
                SimEvent::Spawned(id) => {
                    self.spawn(ctx.world, tick, *id);
                }
                SimEvent::Despawned(id) => self.despawn(ctx.world, tick, *id),
                _ => {}
            }
            if let Some(e) = event.to_arena_event() {
                ctx.send(Target::All, e);
            }
        }
        // Copy changed states into the store (unchanged ones cost nothing
        // on the wire either way; skipping them saves the clone).
        for (id, key) in &self.entities {
            if let (Some(state), Some(slot)) = (self.sim.state_of(*id), ctx.world.get_mut(*key))
                && *slot != state
            {
                *slot = state;
            }
        }
        // The grid moves an entity only when it changes cell.
        if self.interest {
            for (nid, state) in ctx.world.iter_by_net_id() {
                self.grid.set(nid, state.pos.to_vec2());
            }
        }
    }

    fn on_leave(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, _why: LeaveReason) {
        let name = self
            .sim
            .player(client)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        self.sim.remove_player(client);
        self.despawn(ctx.world, ctx.tick(), SimId::Player(client));
        ctx.send(
            Target::All,
            ArenaEvent::Chat {
                from: String::new(),
                text: format!("{name} left"),
            },
        );
    }

    fn view(&self, _world: &World<EntityState>, client: ClientId) -> Option<Viewpoint> {
        if !self.interest {
            return None;
        }
        Some(Viewpoint {
            pos: self.sim.player(client)?.pos,
            radius: self.view_radius,
        })
    }

    /// The entities in the grid cells around the player; the room keeps
    /// those [`within`] the radius (`can_see`).
    fn visible(&self, _world: &World<EntityState>, view: &Viewpoint, out: &mut Vec<NetId>) -> bool {
        self.grid.query(view.pos, view.radius, out);
        true
    }

    fn can_see(view: &Viewpoint, _id: NetId, state: &EntityState) -> bool {
        within(view.pos, state.pos.to_vec2(), view.radius)
    }

    /// With a byte budget (`arena-server --client-bytes-per-sec`), nearer
    /// entities are sent first: priority 1 at the edge of the view, up to
    /// 8 next to the player.
    fn priority(view: &Viewpoint, _id: NetId, state: &EntityState) -> f32 {
        let d = view.pos.distance(state.pos.to_vec2()) / view.radius;
        1.0 + 7.0 * (1.0 - d.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tickwire_server::testkit::{Harness, HarnessConfig};

    use super::*;

    /// Runs a room of `npcs` wandering NPCs and one idle player for a
    /// second, and returns the distances from the player to each entity its
    /// client holds, with the number of entities in the room.
    fn distances_seen(game: ArenaGame) -> (Vec<f32>, usize) {
        let mut h = Harness::new(game, HarnessConfig::default());
        let ann = h.connect(Some("ann"));
        h.run_for(Duration::from_secs(1));
        let id = h.client_id(ann).expect("welcomed");
        // An idle player does not move: its position is the view's.
        let at = h.room().game().sim().player(id).expect("joined").pos;
        let seen = h
            .client(ann)
            .session
            .world()
            .iter()
            .map(|(_, s)| at.distance(s.pos.to_vec2()))
            .collect();
        (seen, h.room().world().len())
    }

    #[test]
    fn a_client_holds_only_what_is_within_the_view_radius() {
        let (near, total) =
            distances_seen(ArenaGame::new(0, 5).with_npcs(2000).with_view_radius(130.0));
        // 2,000 NPCs over 1,600 × 1,000: about 66 within 130 units.
        assert!(near.len() > 10, "{} of {total} seen", near.len());
        // Positions travel at 1/16 precision.
        let far = near.iter().filter(|d| **d > 130.0 + 0.1).count();
        assert_eq!(far, 0, "{far} entities beyond the radius: {near:?}");
        // The arena's own radius sees most of the room.
        let (wide, total) = distances_seen(ArenaGame::new(0, 5).with_npcs(2000));
        assert!(wide.len() > total / 2, "{} of {total} seen", wide.len());
        assert!(
            wide.len() > near.len() * 10,
            "{} vs {}",
            wide.len(),
            near.len()
        );
    }
}
