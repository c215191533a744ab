//! The harness tests' game: `DOTS` entities that all move every tick,
//! everyone sees everything. Shared by `falling_behind.rs` and
//! `ack_alignment.rs` (each includes this file with `#[path]`).

use serde::{Deserialize, Serialize};
use tickwire_server::world::EntityKey;
use tickwire_server::{AuthError, ClientId, Ctx, Game, InputMeta, LeaveReason};
use tickwire_shared::GameProtocol;

pub(crate) struct Proto;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Dot {
    x: i32,
    y: i32,
}

impl GameProtocol for Proto {
    const NAME: &'static str = "swarm";
    const VERSION: u32 = 1;
    type Input = ();
    type EntityState = Dot;
    type Event = ();
    type Message = ();
}

/// `DOTS` entities that all move every tick; everyone sees everything.
/// Start it empty: the dots appear with the first join.
#[derive(Default)]
pub(crate) struct Swarm(Vec<EntityKey>);

/// How many dots.
pub(crate) const DOTS: i32 = 200;

impl Game for Swarm {
    type Protocol = Proto;
    type User = ();
    type View = ();

    fn on_auth(&mut self, _: Option<&str>) -> Result<(), AuthError> {
        Ok(())
    }

    fn on_join(&mut self, ctx: &mut Ctx<'_, Self>, _: ClientId, (): ()) {
        if self.0.is_empty() {
            let tick = ctx.tick();
            self.0 = (0..DOTS)
                .map(|i| ctx.world.spawn(tick, Dot { x: i, y: -i }))
                .collect();
        }
    }

    fn on_input(&mut self, _: &mut Ctx<'_, Self>, _: ClientId, (): (), _: InputMeta) {}

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Self>, _: f32) {
        let t = ctx.tick() as i32;
        for (i, key) in self.0.iter().enumerate() {
            if let Some(d) = ctx.world.get_mut(*key) {
                d.x = d.x.wrapping_add(1 + (i as i32 + t) % 5);
                d.y = d.y.wrapping_sub(1);
            }
        }
    }

    fn on_leave(&mut self, _: &mut Ctx<'_, Self>, _: ClientId, _: LeaveReason) {}
}
