//! A bot's brain: a random walk, re-planned every 0.3–1 s, aiming at and
//! firing on the nearest living player in its applied snapshot, re-aimed at
//! most every [`AIM_INTERVAL`].

use std::time::Duration;

use arena::{EntityKind, EntityState, PlayerInput, buttons};
use glam::Vec2;
use rustc_hash::FxHashMap;
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
/// Inputs still go out every tick, with the aim held.
pub(crate) const AIM_INTERVAL: Duration = Duration::from_millis(100);

/// See the module documentation.
pub(crate) struct Brain {
    rng: Rng,
    me: Option<NetId>,
    heading: u8,
    replan_at: Instant,
    /// The players in view, as the brain last saw them: kept from each
    /// snapshot's changes (see [`Roster`]).
    players: Roster,
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
            players: Roster::default(),
            target: None,
        }
    }

    /// The bot's own entity (from the game's `YouAre` event).
    pub(crate) fn set_me(&mut self, me: NetId) {
        self.me = Some(me);
        self.target = None;
    }

    /// Follows the players in view through the newest snapshot's changes.
    /// Called after every applied snapshot (a brain lives as long as its
    /// connection's world), so the roster is the world's players.
    pub(crate) fn observe(&mut self, world: &ClientWorld<EntityState>) {
        let changes = world.changes();
        for &id in &changes.removed {
            self.players.forget(id);
        }
        for &id in &changes.added {
            if let Some(s) = world.get(id).filter(|s| s.kind == EntityKind::Player) {
                self.players.see(id, s);
            }
        }
        // Only players need reading again: an id keeps its entity for as
        // long as a client sees it (the server reuses an id only after
        // twice its baseline ring, so a client is told of the removal
        // first), and an entity keeps its kind.
        for &id in &changes.changed {
            if let Some(i) = self.players.index(id) {
                match world.get(id).filter(|s| s.kind == EntityKind::Player) {
                    Some(s) => self.players.seen[i] = Seen::new(id, s),
                    None => self.players.forget(id),
                }
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
        let target = self.players.nearest_living(from, me)?;
        let d = target - from;
        Some(Angle16::from_radians(d.y.atan2(d.x)))
    }
}

/// A player in view as the brain last saw it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    id: NetId,
    pos: Vec2,
    alive: bool,
}

impl Seen {
    fn new(id: NetId, state: &EntityState) -> Self {
        Self {
            id,
            pos: state.pos.to_vec2(),
            alive: state.health > 0,
        }
    }
}

/// The players in view, with what aiming needs of each (position, alive)
/// copied out of the world into one small array.
///
/// The nearest-player search reads every player in view; reading them
/// through the world was a cache miss per player among a thousand bots'
/// worlds (a fifth of a playing bot's CPU with 1,000 bots in one room), and
/// dropping the removed ones was a search of the removed list per player.
/// Here a snapshot costs a lookup per change, and a search is a scan of
/// 16 bytes per player.
#[derive(Debug, Default)]
struct Roster {
    seen: Vec<Seen>,
    /// Each player's index in `seen`.
    at: FxHashMap<NetId, usize>,
}

impl Roster {
    /// Records player `id` as `state` shows it (adding it if new).
    fn see(&mut self, id: NetId, state: &EntityState) {
        let seen = Seen::new(id, state);
        match self.at.get(&id) {
            Some(&i) => self.seen[i] = seen,
            None => {
                self.at.insert(id, self.seen.len());
                self.seen.push(seen);
            }
        }
    }

    /// Where player `id` is in `seen`, if it is a player in view.
    fn index(&self, id: NetId) -> Option<usize> {
        self.at.get(&id).copied()
    }

    /// Stops following `id` (nothing if it is not a player in view).
    fn forget(&mut self, id: NetId) {
        let Some(i) = self.at.remove(&id) else {
            return;
        };
        self.seen.swap_remove(i);
        if let Some(moved) = self.seen.get(i) {
            self.at.insert(moved.id, i);
        }
    }

    /// The position of the living player nearest to `from`, other than `me`.
    fn nearest_living(&self, from: Vec2, me: NetId) -> Option<Vec2> {
        self.seen
            .iter()
            .filter(|p| p.alive && p.id != me)
            .map(|p| p.pos)
            .min_by(|a, b| {
                a.distance_squared(from)
                    .total_cmp(&b.distance_squared(from))
            })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arena::Arena;
    use proptest::prelude::*;
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

    fn dead(x: f32, y: f32) -> EntityState {
        EntityState {
            health: 0,
            ..player(x, y)
        }
    }

    #[test]
    fn follows_players_through_deltas_moves_deaths_and_removals() {
        let (me, a, b, npc) = (NetId(1), NetId(2), NetId(3), NetId(4));
        let mut world = ClientWorld::new(8);
        let t0 = Instant::now();
        let mut brain = Brain::new(Rng(7), t0);
        brain.set_me(me);
        let npc_state = EntityState {
            kind: EntityKind::Npc,
            ..player(1.0, 0.0)
        };
        let mut tick = 0;
        let mut aim_after = |world: &mut ClientWorld<EntityState>, states| {
            tick += 1;
            apply(world, tick, states);
            brain.observe(world);
            // A new snapshot and a lapsed interval: aimed afresh.
            aim_of(brain.input(t0 + AIM_INTERVAL * tick, world))
        };
        let (east, north, south) = (
            Angle16::from_radians(0.0),
            Angle16::from_radians(std::f32::consts::FRAC_PI_2),
            Angle16::from_radians(-std::f32::consts::FRAC_PI_2),
        );
        // The nearer NPC is not a player.
        let all = |a_state, b_state| {
            vec![
                (me, player(0.0, 0.0)),
                (a, a_state),
                (b, b_state),
                (npc, npc_state.clone()),
            ]
        };
        assert_eq!(
            aim_after(&mut world, all(player(10.0, 0.0), player(0.0, 20.0))),
            Some(east)
        );
        // `a` moves away: `b` is nearer.
        assert_eq!(
            aim_after(&mut world, all(player(50.0, 0.0), player(0.0, 20.0))),
            Some(north)
        );
        // `b` dies: `a` again.
        assert_eq!(
            aim_after(&mut world, all(player(50.0, 0.0), dead(0.0, 20.0))),
            Some(east)
        );
        // `a` leaves the view, `b` is dead: nobody to aim at.
        assert_eq!(
            aim_after(
                &mut world,
                vec![(me, player(0.0, 0.0)), (b, dead(0.0, 20.0))]
            ),
            None
        );
        // `b` respawns to the south.
        assert_eq!(
            aim_after(
                &mut world,
                vec![(me, player(0.0, 0.0)), (b, player(0.0, -5.0))]
            ),
            Some(south)
        );
    }

    proptest! {
        /// After any sequence of sightings and removals, the roster's
        /// nearest living player is the one a search of everything it was
        /// told finds, and each player is found where it is.
        #[test]
        fn roster_finds_what_a_full_search_finds(
            ops in prop::collection::vec((0u32..24, any::<bool>(), -50i16..50, -50i16..50, any::<bool>()), 0..200),
        ) {
            let mut roster = Roster::default();
            let mut model: BTreeMap<NetId, (Vec2, bool)> = BTreeMap::new();
            let me = NetId(0);
            let from = Vec2::new(0.5, 0.25);
            for (id, keep, x, y, alive) in ops {
                let id = NetId(id);
                if keep {
                    let pos = Vec2::new(f32::from(x), f32::from(y));
                    let state = if alive { player(pos.x, pos.y) } else { dead(pos.x, pos.y) };
                    roster.see(id, &state);
                    model.insert(id, (state.pos.to_vec2(), alive));
                } else {
                    roster.forget(id);
                    model.remove(&id);
                }
                prop_assert_eq!(roster.seen.len(), model.len());
                for &id in model.keys() {
                    let at = roster.index(id).map(|i| roster.seen[i].id);
                    prop_assert_eq!(at, Some(id));
                }
                let want = model
                    .iter()
                    .filter(|&(&i, &(_, alive))| alive && i != me)
                    .map(|(_, &(p, _))| p.distance_squared(from))
                    .min_by(f32::total_cmp);
                let got = roster.nearest_living(from, me).map(|p| p.distance_squared(from));
                prop_assert_eq!(got, want);
            }
        }
    }
}
