//! The arena on `tickwire-server`: [`ArenaGame`] maps the [`ArenaSim`] onto
//! a room's entity store (only with the `server` feature).

use std::collections::HashMap;

use glam::Vec2;
use tickwire_server::interest::Grid;
use tickwire_server::world::{EntityKey, World};
use tickwire_server::{AuthError, ClientId, Ctx, Game, InputMeta, LeaveReason, Target};
use tickwire_shared::NetId;

use crate::{
    Arena, ArenaEvent, ArenaSim, BOT_ID_BASE, EntityState, PlayerInput, SimEvent, SimId, Wanderers,
    bot, in_view, sanitize_name,
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
            grid: Grid::new(crate::VIEW_RADIUS / 2.0),
        }
    }

    /// Adds `count` wandering NPCs ([`Wanderers`]) that move every tick: a
    /// known number of moving entities for load tests.
    #[must_use]
    pub fn with_npcs(mut self, count: usize) -> Self {
        self.npcs = Wanderers::new(count, self.seed);
        self
    }

    /// Turns interest management off or on (default on): with it, a client
    /// only receives entities within [`crate::VIEW_RADIUS`] of its player.
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
    /// The viewer's position.
    type View = Vec2;

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

    fn view(&self, _world: &World<EntityState>, client: ClientId) -> Option<Vec2> {
        if !self.interest {
            return None;
        }
        Some(self.sim.player(client)?.pos)
    }

    /// The entities in the grid cells around the player; the room keeps
    /// those [`in_view`] (`can_see`).
    fn visible(&self, _world: &World<EntityState>, view: &Vec2, out: &mut Vec<NetId>) -> bool {
        self.grid.query(*view, crate::VIEW_RADIUS, out);
        true
    }

    fn can_see(view: &Vec2, _id: NetId, state: &EntityState) -> bool {
        in_view(*view, state.pos.to_vec2())
    }

    /// With a byte budget (`arena-server --client-bytes-per-sec`), nearer
    /// entities are sent first: priority 1 at the edge of the view, up to
    /// 8 next to the player.
    fn priority(view: &Vec2, _id: NetId, state: &EntityState) -> f32 {
        let d = view.distance(state.pos.to_vec2()) / crate::VIEW_RADIUS;
        1.0 + 7.0 * (1.0 - d.clamp(0.0, 1.0))
    }
}
