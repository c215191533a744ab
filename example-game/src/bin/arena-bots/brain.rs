//! A bot's brain: a random walk, re-planned every 0.3–1 s, aiming at and
//! firing on the nearest living player in its applied snapshot, re-aimed at
//! most every [`AIM_INTERVAL`].

use std::time::Duration;

use arena::{EntityKind, EntityState, PlayerInput, buttons};
use tickwire_client::ClientWorld;
use tickwire_shared::NetId;
use tickwire_shared::quantize::Angle16;
use tokio::time::Instant;

/// A tiny deterministic PRNG (xorshift64*), one per bot.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const DIRS: [u8; 8] = [
    buttons::RIGHT,
    buttons::RIGHT | buttons::DOWN,
    buttons::DOWN,
    buttons::DOWN | buttons::LEFT,
    buttons::LEFT,
    buttons::LEFT | buttons::UP,
    buttons::UP,
    buttons::UP | buttons::RIGHT,
];

/// How long an aim is held before the nearest player is looked for again
/// (when a newer snapshot has been applied): about a human's reaction time.
/// The search reads every player in view, each a cache miss among hundreds
/// of bots' worlds; once per snapshot it was a tenth of a playing bot's CPU.
/// Inputs still go out every tick, with the aim held.
pub(crate) const AIM_INTERVAL: Duration = Duration::from_millis(100);

/// See the module documentation.
pub(crate) struct Brain {
    rng: Rng,
    me: Option<NetId>,
    heading: u8,
    replan_at: Instant,
    /// The players in view, kept from each snapshot's changes (so an input
    /// costs the players, not every NPC).
    players: Vec<NetId>,
    /// The aim at the nearest living player, the world tick it was worked
    /// out for, and when. The world changes only when a snapshot is applied,
    /// so the search runs at most once per snapshot, and at most once per
    /// [`AIM_INTERVAL`].
    target: Option<(u32, Instant, Option<Angle16>)>,
}

impl Brain {
    /// A brain whose random walk starts from `rng` and re-plans first at
    /// `now`.
    pub(crate) fn new(rng: Rng, now: Instant) -> Self {
        Self {
            rng,
            me: None,
            heading: 0,
            replan_at: now,
            players: Vec::new(),
            target: None,
        }
    }

    /// The bot's own entity (from the game's `YouAre` event).
    pub(crate) fn set_me(&mut self, me: NetId) {
        self.me = Some(me);
        self.target = None;
    }

    /// Follows the players in view through the newest snapshot's changes.
    pub(crate) fn observe(&mut self, world: &ClientWorld<EntityState>) {
        let changes = world.changes();
        self.players.retain(|id| !changes.removed.contains(id));
        for &id in &changes.added {
            if world.get(id).is_some_and(|s| s.kind == EntityKind::Player) {
                self.players.push(id);
            }
        }
    }

    /// The input for `now`: the walk's heading, and when a living player is
    /// in view, aim at the nearest one and fire.
    pub(crate) fn input(&mut self, now: Instant, world: &ClientWorld<EntityState>) -> PlayerInput {
        if now >= self.replan_at {
            self.heading = DIRS[self.rng.below(8) as usize];
            self.replan_at = now + Duration::from_millis(300 + self.rng.below(700));
        }
        let mut input = PlayerInput {
            buttons: self.heading,
            aim: Angle16(0),
        };
        let aim = match (self.target, world.tick()) {
            (Some((at, when, aim)), Some(tick))
                if at == tick || now.saturating_duration_since(when) < AIM_INTERVAL =>
            {
                aim
            }
            (_, tick) => {
                let aim = self.aim(world);
                self.target = tick.map(|t| (t, now, aim));
                aim
            }
        };
        if let Some(aim) = aim {
            input.aim = aim;
            input.buttons |= buttons::FIRE;
        }
        input
    }

    /// The direction of the nearest living player other than this bot.
    fn aim(&self, world: &ClientWorld<EntityState>) -> Option<Angle16> {
        let me = self.me?;
        let from = world.get(me)?.pos.to_vec2();
        let target = self
            .players
            .iter()
            .filter(|&&id| id != me)
            .filter_map(|&id| world.get(id))
            .filter(|s| s.health > 0)
            .map(|s| s.pos.to_vec2())
            .min_by(|a, b| {
                a.distance_squared(from)
                    .total_cmp(&b.distance_squared(from))
            })?;
        let d = target - from;
        Some(Angle16::from_radians(d.y.atan2(d.x)))
    }
}

#[cfg(test)]
mod tests {
    use arena::Arena;
    use glam::Vec2;
    use tickwire_shared::message::encode_snapshot;
    use tickwire_shared::quantize::QVec2;
    use tickwire_shared::{Limits, ServerMessage, Snapshot};

    use super::*;

    fn player(x: f32, y: f32) -> EntityState {
        EntityState {
            kind: EntityKind::Player,
            pos: QVec2::from_vec2(Vec2::new(x, y)),
            angle: Angle16(0),
            health: 100,
            owner: 0,
            name: "p".into(),
            kills: 0,
            deaths: 0,
        }
    }

    /// Applies the full snapshot `states` at `tick`.
    fn apply(world: &mut ClientWorld<EntityState>, tick: u32, states: Vec<(NetId, EntityState)>) {
        let snapshot = Snapshot::from_vec(states).unwrap();
        let bytes = encode_snapshot(tick, 0, None, &snapshot).unwrap();
        let limits = Limits::default();
        let Ok(ServerMessage::<()>::Snapshot(f)) = ServerMessage::decode(&bytes, &limits) else {
            panic!("not a snapshot");
        };
        world
            .apply::<Arena>(f.header.tick, f.header.baseline, f.body, &limits)
            .unwrap();
    }

    fn aim_of(input: PlayerInput) -> Option<Angle16> {
        (input.buttons & buttons::FIRE != 0).then_some(input.aim)
    }

    #[test]
    fn aims_at_the_nearest_player_of_the_newest_snapshot() {
        let (me, a, b) = (NetId(1), NetId(2), NetId(3));
        let mut world = ClientWorld::new(8);
        let t0 = Instant::now();
        let mut brain = Brain::new(Rng(7), t0);
        // Before `YouAre` the bot has nothing to aim from.
        apply(
            &mut world,
            1,
            vec![(me, player(0.0, 0.0)), (a, player(10.0, 0.0))],
        );
        brain.observe(&world);
        assert_eq!(aim_of(brain.input(t0, &world)), None);
        // Learning its own entity between snapshots counts at once.
        brain.set_me(me);
        let east = Angle16::from_radians(0.0);
        assert_eq!(aim_of(brain.input(t0, &world)), Some(east));
        // A second input on the same snapshot: the same aim.
        assert_eq!(aim_of(brain.input(t0, &world)), Some(east));
        // The next snapshot brings a nearer player to the north.
        apply(
            &mut world,
            2,
            vec![
                (me, player(0.0, 0.0)),
                (a, player(10.0, 0.0)),
                (b, player(0.0, 3.0)),
            ],
        );
        brain.observe(&world);
        // Within the aim interval the aim is held …
        let soon = t0 + AIM_INTERVAL / 2;
        assert_eq!(aim_of(brain.input(soon, &world)), Some(east));
        // … then it follows the new world, not the one it worked out before.
        let north = Angle16::from_radians(std::f32::consts::FRAC_PI_2);
        assert_eq!(aim_of(brain.input(t0 + AIM_INTERVAL, &world)), Some(north));
    }
}
