//! The bench game: a fixed population of entities on a square torus, a
//! fraction of them moving every tick, and one viewpoint per client.

use std::collections::HashMap;

use glam::Vec2;
use serde::{Deserialize, Serialize};
use tickwire_server::interest::Grid;
use tickwire_server::world::{EntityKey, World};
use tickwire_server::{AuthError, ClientId, Ctx, Game, InputMeta, LeaveReason};
use tickwire_shared::quantize::{Angle16, QVec2};
use tickwire_shared::{GameProtocol, NetId};

/// The bench's wire types.
pub(crate) struct BenchProto;

impl GameProtocol for BenchProto {
    const NAME: &'static str = "tickwire-bench";
    const VERSION: u32 = 1;
    type Input = ();
    type EntityState = Ent;
    type Event = ();
    type Message = ();

    /// The derived field diff (`room --serde-diff` turns it off).
    fn diff_fields(
        base: &Ent,
        cur: &Ent,
        d: &mut tickwire_shared::diff::Differ<'_>,
    ) -> Result<(), tickwire_shared::patch::PatchError> {
        tickwire_shared::diff::diff_fields(base, cur, d)
    }
}

/// One replicated entity: 5 fields, 12 bytes in memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, tickwire_derive::Patch)]
pub(crate) struct Ent {
    pub(crate) pos: QVec2<16>,
    pub(crate) angle: Angle16,
    pub(crate) kind: u8,
    pub(crate) hp: u8,
}

/// What shapes the world.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WorldParams {
    pub(crate) entities: usize,
    /// Every `stride`-th entity moves each tick (stride 10 = 10 %).
    pub(crate) stride: usize,
    /// `Some(radius)`: clients see entities within `radius` of their
    /// viewpoint; `None`: clients see everything.
    pub(crate) view_radius: Option<f32>,
    /// With a view radius: answer `Game::visible` from a grid.
    pub(crate) grid: bool,
    /// The side of the square world (it wraps around).
    pub(crate) side: f32,
    /// Units per second.
    pub(crate) speed: f32,
    /// Largest turn per tick, in radians.
    pub(crate) max_turn: f32,
}

impl WorldParams {
    /// The side of a square holding `entities` such that a disc of `radius`
    /// holds `in_view` of them on average.
    pub(crate) fn side_for(entities: usize, radius: f32, in_view: f32) -> f32 {
        (core::f32::consts::PI * radius * radius * entities as f32 / in_view.max(1.0)).sqrt()
    }
}

/// A client's view: its viewpoint (in quantized units), the view radius and
/// the world side (quantized), for a wrapped distance check.
pub(crate) struct View {
    center: Vec2,
    x: i64,
    y: i64,
    r2: i64,
    side: i64,
}

/// splitmix64: a small deterministic generator (no dependency needed).
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A float in `[0, 1)`.
fn unit(state: &mut u64) -> f32 {
    (splitmix64(state) >> 40) as f32 / (1u64 << 24) as f32
}

/// The bench game.
pub(crate) struct BenchGame {
    params: WorldParams,
    keys: Vec<EntityKey>,
    pos: Vec<Vec2>,
    angle: Vec<f32>,
    rng: u64,
    views: HashMap<ClientId, (i64, i64)>,
    /// Net ids, in `keys` order.
    ids: Vec<NetId>,
    grid: Option<Grid>,
}

impl BenchGame {
    pub(crate) fn new(params: WorldParams) -> Self {
        Self {
            params,
            keys: Vec::new(),
            pos: Vec::new(),
            angle: Vec::new(),
            rng: 0x7469_636b_7769_7265,
            views: HashMap::new(),
            ids: Vec::new(),
            grid: params
                .view_radius
                .filter(|_| params.grid)
                .map(|r| Grid::new(r / 2.0)),
        }
    }

    fn spawn_all(&mut self, ctx: &mut Ctx<'_, Self>) {
        let side = self.params.side;
        for i in 0..self.params.entities {
            let p = Vec2::new(unit(&mut self.rng) * side, unit(&mut self.rng) * side);
            let a = unit(&mut self.rng) * core::f32::consts::TAU;
            let key = ctx.world.spawn(
                ctx.tick(),
                Ent {
                    pos: QVec2::from_vec2(p),
                    angle: Angle16::from_radians(a),
                    kind: (i % 7) as u8,
                    hp: 100,
                },
            );
            let id = ctx.world.net_id(key).unwrap_or(NetId(0));
            if let Some(g) = &mut self.grid {
                g.set(id, p);
            }
            self.ids.push(id);
            self.keys.push(key);
            self.pos.push(p);
            self.angle.push(a);
        }
    }
}

/// Wrapped (torus) squared distance, in quantized units, for offsets in
/// `(-side, side)` (positions lie in `[0, side)`). No division: this runs
/// once per entity per client per snapshot.
fn wrapped_d2(dx: i64, dy: i64, side: i64) -> i64 {
    let wrap = |d: i64| {
        let d = d.abs();
        d.min(side - d)
    };
    let (dx, dy) = (wrap(dx), wrap(dy));
    dx * dx + dy * dy
}

impl Game for BenchGame {
    type Protocol = BenchProto;
    type User = ();
    type View = View;

    fn on_auth(&mut self, _token: Option<&str>) -> Result<(), AuthError> {
        Ok(())
    }

    fn on_join(&mut self, _ctx: &mut Ctx<'_, Self>, client: ClientId, (): ()) {
        // A viewpoint derived from the client id: stable and spread out.
        let mut s = u64::from(client).wrapping_mul(0x2545_f491_4f6c_dd1d);
        let side = self.params.side;
        let q = QVec2::<16>::from_vec2(Vec2::new(unit(&mut s) * side, unit(&mut s) * side));
        self.views.insert(client, (i64::from(q.x), i64::from(q.y)));
    }

    fn on_input(&mut self, _ctx: &mut Ctx<'_, Self>, _client: ClientId, (): (), _meta: InputMeta) {}

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Self>, dt: f32) {
        if self.keys.len() < self.params.entities {
            self.spawn_all(ctx);
        }
        let side = self.params.side;
        let stride = self.params.stride.max(1);
        for i in (0..self.keys.len()).step_by(stride) {
            let turn = (unit(&mut self.rng) * 2.0 - 1.0) * self.params.max_turn;
            let a = (self.angle[i] + turn).rem_euclid(core::f32::consts::TAU);
            let p = self.pos[i] + Vec2::from_angle(a) * self.params.speed * dt;
            let p = Vec2::new(p.x.rem_euclid(side), p.y.rem_euclid(side));
            self.angle[i] = a;
            self.pos[i] = p;
            if let Some(g) = &mut self.grid {
                g.set(self.ids[i], p);
            }
            if let Some(e) = ctx.world.get_mut(self.keys[i]) {
                e.pos = QVec2::from_vec2(p);
                e.angle = Angle16::from_radians(a);
            }
        }
    }

    fn on_leave(&mut self, _ctx: &mut Ctx<'_, Self>, client: ClientId, _why: LeaveReason) {
        self.views.remove(&client);
    }

    fn view(&self, _world: &World<Ent>, client: ClientId) -> Option<View> {
        let r = self.params.view_radius?;
        let (x, y) = self.views.get(&client).copied().unwrap_or((0, 0));
        let r = (r * 16.0) as i64;
        Some(View {
            center: Vec2::new(x as f32, y as f32) / 16.0,
            x,
            y,
            r2: r * r,
            side: ((self.params.side * 16.0) as i64).max(1),
        })
    }

    /// The grid's cells around the view, and around its copies one world
    /// side away where the view crosses an edge of the torus.
    fn visible(&self, _world: &World<Ent>, view: &View, out: &mut Vec<NetId>) -> bool {
        let (Some(grid), Some(r)) = (&self.grid, self.params.view_radius) else {
            return false;
        };
        let side = self.params.side;
        for dx in [-side, 0.0, side] {
            for dy in [-side, 0.0, side] {
                let c = view.center + Vec2::new(dx, dy);
                let lo = c - Vec2::splat(r);
                let hi = c + Vec2::splat(r);
                if hi.x >= 0.0 && hi.y >= 0.0 && lo.x < side && lo.y < side {
                    // One unit more: positions are quantized to 1/16.
                    grid.query(c, r + 1.0, out);
                }
            }
        }
        true
    }

    fn can_see(view: &View, _id: NetId, state: &Ent) -> bool {
        let dx = i64::from(state.pos.x) - view.x;
        let dy = i64::from(state.pos.y) - view.y;
        wrapped_d2(dx, dy, view.side) <= view.r2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_holds_about_the_target_share_of_entities() {
        let side = WorldParams::side_for(1000, 100.0, 100.0);
        let mut s = 1u64;
        let side_q = (side * 16.0) as i64;
        let r = 100 * 16;
        let inside = (0..20_000)
            .filter(|_| {
                let dx = (unit(&mut s) * side * 16.0) as i64;
                let dy = (unit(&mut s) * side * 16.0) as i64;
                wrapped_d2(dx, dy, side_q) <= r * r
            })
            .count();
        // 10 % of uniformly spread points fall in the disc.
        assert!((1_800..2_200).contains(&inside), "{inside}");
        assert_eq!(wrapped_d2(side_q - 1, 0, side_q), 1);
        assert_eq!(wrapped_d2(1 - side_q, 3, side_q), 10);
    }
}
