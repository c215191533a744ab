//! Combat: firing (rate limited), projectile flight, hits, kills and scores.

use std::collections::BTreeMap;

use glam::Vec2;

use crate::rules::collision::{sweep_circle, sweep_walls};
use crate::rules::movement::clamp_dt;
use crate::rules::world::{ArenaSim, Player, Projectile, SimEvent, SimId};
use crate::{
    FIRE_INTERVAL_TICKS, PLAYER_RADIUS, PROJECTILE_DAMAGE, PROJECTILE_LIFETIME_TICKS,
    PROJECTILE_RADIUS, PROJECTILE_SPEED, PlayerInput, RESPAWN_TICKS,
};

impl ArenaSim {
    /// Fires for every living player that holds or tapped FIRE and whose
    /// last shot is at least [`FIRE_INTERVAL_TICKS`] old; other presses are
    /// dropped. The projectile starts at the shooter's center.
    pub(crate) fn fire_weapons(&mut self, tick: u32, events: &mut Vec<SimEvent>) {
        for (&client, p) in &mut self.players {
            let wants = core::mem::take(&mut p.fire_latched) || p.input.fires();
            let cooled = p
                .last_fire_tick
                .is_none_or(|last| tick.wrapping_sub(last) >= FIRE_INTERVAL_TICKS);
            if !(wants && cooled && p.is_alive()) {
                continue;
            }
            p.last_fire_tick = Some(tick);
            let id = self.next_projectile;
            self.next_projectile += 1;
            self.projectiles.insert(
                id,
                Projectile {
                    pos: p.pos,
                    vel: p.aim.to_unit_vec2() * PROJECTILE_SPEED,
                    heading: p.aim,
                    owner: client,
                    spawn_tick: tick,
                },
            );
            events.push(SimEvent::Spawned(SimId::Projectile(id)));
        }
    }

    /// Moves every projectile along its path for `dt`. Whatever it touches
    /// first ends it: a wall, or a living player other than its shooter
    /// (who takes [`PROJECTILE_DAMAGE`]). Old projectiles fizzle out.
    pub(crate) fn fly_projectiles(&mut self, tick: u32, dt: f32, events: &mut Vec<SimEvent>) {
        let dt = clamp_dt(dt);
        let players = &mut self.players;
        let by_x = ByX::new(players);
        self.projectiles.retain(|&id, shot| {
            let delta = shot.vel * dt;
            let wall = sweep_walls(shot.pos, delta, PROJECTILE_RADIUS);
            let victim = first_victim(players, by_x.near(shot.pos, delta), shot, delta);
            let ends = match (victim, wall) {
                (Some((t, victim)), wall) if wall.is_none_or(|w| t <= w) => {
                    hit(players, shot.owner, victim, tick, events);
                    true
                }
                (_, Some(_)) => true,
                _ => {
                    shot.pos += delta;
                    tick.wrapping_sub(shot.spawn_tick) >= PROJECTILE_LIFETIME_TICKS
                }
            };
            if ends {
                events.push(SimEvent::Despawned(SimId::Projectile(id)));
            }
            !ends
        });
    }
}

/// The players living at the start of a step, by ascending x: each
/// projectile tests only those whose x is within reach of its path, not
/// every player (with hundreds of both, a sweep per pair was 2 % of the
/// server's CPU). Positions do not change while projectiles fly; health
/// does, so [`first_victim`] checks it again.
struct ByX(Vec<(f32, u32)>);

impl ByX {
    fn new(players: &BTreeMap<u32, Player>) -> Self {
        let mut by_x: Vec<(f32, u32)> = players
            .iter()
            .filter(|(_, p)| p.is_alive() && p.pos.is_finite())
            .map(|(&c, p)| (p.pos.x, c))
            .collect();
        by_x.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        Self(by_x)
    }

    /// The players a projectile moving by `delta` from `from` may touch: a
    /// touched player's center is within `PLAYER_RADIUS +
    /// PROJECTILE_RADIUS` of the path, so within that of it along x (one
    /// unit more for rounding).
    fn near(&self, from: Vec2, delta: Vec2) -> impl Iterator<Item = u32> + '_ {
        let reach = PLAYER_RADIUS + PROJECTILE_RADIUS + 1.0;
        let (lo, hi) = (
            from.x.min(from.x + delta.x) - reach,
            from.x.max(from.x + delta.x) + reach,
        );
        let first = self.0.partition_point(|&(x, _)| x < lo);
        self.0[first..]
            .iter()
            .take_while(move |&&(x, _)| x <= hi)
            .map(|&(_, c)| c)
    }
}

/// The living player among `candidates` that the projectile `shot`, moving
/// by `delta`, touches first (other than its shooter), with the fraction of
/// `delta` at which it does; equal fractions go to the lowest client id.
fn first_victim(
    players: &BTreeMap<u32, Player>,
    candidates: impl Iterator<Item = u32>,
    shot: &Projectile,
    delta: Vec2,
) -> Option<(f32, u32)> {
    candidates
        .filter(|&c| c != shot.owner)
        .filter_map(|c| {
            let p = players.get(&c).filter(|p| p.is_alive())?;
            sweep_circle(shot.pos, delta, p.pos, PLAYER_RADIUS + PROJECTILE_RADIUS).map(|t| (t, c))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
}

/// Applies one projectile hit; on a kill, counts the scores and schedules
/// the respawn.
fn hit(
    players: &mut BTreeMap<u32, Player>,
    shooter: u32,
    victim: u32,
    tick: u32,
    events: &mut Vec<SimEvent>,
) {
    let Some(v) = players.get_mut(&victim) else {
        return;
    };
    v.health = v.health.saturating_sub(PROJECTILE_DAMAGE);
    events.push(SimEvent::Hit {
        shooter,
        victim,
        health: v.health,
    });
    if v.is_alive() {
        return;
    }
    v.deaths = v.deaths.saturating_add(1);
    v.respawn_at = Some(tick.wrapping_add(RESPAWN_TICKS));
    v.input = PlayerInput::default();
    v.fire_latched = false;
    let victim_name = v.name.to_string();
    let killer_name = match players.get_mut(&shooter) {
        Some(k) => {
            k.kills = k.kills.saturating_add(1);
            k.name.to_string()
        }
        None => String::new(),
    };
    events.push(SimEvent::Killed {
        killer: shooter,
        victim,
        killer_name,
        victim_name,
    });
}

#[cfg(test)]
mod tests {
    use core::f32::consts::PI;

    use glam::Vec2;
    use tickwire_shared::quantize::Angle16;

    use super::*;
    use crate::rules::collision::position_is_free;
    use crate::{MAX_HEALTH, SimEvent, buttons};

    const DT: f32 = 1.0 / 60.0;

    fn aim(radians: f32) -> Angle16 {
        Angle16::from_radians(radians)
    }

    fn fire_at(a: Angle16) -> PlayerInput {
        PlayerInput {
            buttons: buttons::FIRE,
            aim: a,
        }
    }

    /// Two players on the open line y = 650 (x 500 and 900), facing each
    /// other.
    fn duel() -> ArenaSim {
        let mut sim = ArenaSim::new(9);
        sim.add_player(1, "ada", 0);
        sim.add_player(2, "bob", 0);
        sim.place(1, Vec2::new(500.0, 650.0));
        sim.place(2, Vec2::new(900.0, 650.0));
        sim
    }

    fn count(events: &[SimEvent], f: impl Fn(&SimEvent) -> bool) -> usize {
        events.iter().filter(|e| f(e)).count()
    }

    proptest::proptest! {
        /// The broad phase by x finds the victim that testing every player
        /// finds (the same player, at the same fraction; of equal
        /// fractions, the lowest client id), with crowds, dead players, the
        /// shooter in the way, and long or short paths.
        #[test]
        fn the_broad_phase_finds_the_victim_a_test_of_every_player_finds(
            crowd in proptest::collection::vec((0f32..300.0, 0f32..200.0, proptest::bool::weighted(0.8)), 0..60),
            shots in proptest::collection::vec((0f32..300.0, 0f32..200.0, -PI..PI, 0f32..4.0, 0u32..60), 1..40),
        ) {
            let mut sim = ArenaSim::new(1);
            for (c, &(x, y, alive)) in crowd.iter().enumerate() {
                let c = c as u32;
                sim.add_player(c, "p", 0);
                sim.place(c, Vec2::new(x, y));
                if !alive {
                    sim.players.get_mut(&c).unwrap().health = 0;
                }
            }
            let by_x = ByX::new(&sim.players);
            for (x, y, angle, speed, owner) in shots {
                let shot = Projectile {
                    pos: Vec2::new(x, y),
                    vel: Vec2::from_angle(angle) * PROJECTILE_SPEED * speed,
                    heading: aim(angle),
                    owner,
                    spawn_tick: 0,
                };
                let delta = shot.vel * DT;
                let near = first_victim(&sim.players, by_x.near(shot.pos, delta), &shot, delta);
                // Every player, as the step tested them before the broad
                // phase (the first of equal fractions, by client id).
                let all = sim
                    .players
                    .iter()
                    .filter(|&(&c, p)| c != shot.owner && p.is_alive())
                    .filter_map(|(&c, p)| {
                        sweep_circle(shot.pos, delta, p.pos, PLAYER_RADIUS + PROJECTILE_RADIUS)
                            .map(|t| (t, c))
                    })
                    .min_by(|a, b| a.0.total_cmp(&b.0));
                proptest::prop_assert_eq!(near, all);
            }
        }
    }

    #[test]
    fn projectile_hits_a_player_in_its_path() {
        let mut sim = duel();
        sim.apply_input(1, &fire_at(aim(0.0)));
        let mut events = sim.step(0, DT);
        sim.apply_input(1, &PlayerInput::default());
        // 400 units at 15 per tick: under 30 ticks.
        for tick in 1..30 {
            events.extend(sim.step(tick, DT));
        }
        let hits: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, SimEvent::Hit { .. }))
            .collect();
        assert_eq!(
            hits,
            vec![&SimEvent::Hit {
                shooter: 1,
                victim: 2,
                health: MAX_HEALTH - PROJECTILE_DAMAGE
            }]
        );
        assert_eq!(
            sim.player(2).unwrap().health,
            MAX_HEALTH - PROJECTILE_DAMAGE
        );
        assert_eq!(sim.player(1).unwrap().health, MAX_HEALTH);
        assert!(events.contains(&SimEvent::Despawned(SimId::Projectile(0))));
        assert_eq!(sim.projectiles().count(), 0);
    }

    #[test]
    fn projectile_that_misses_flies_on() {
        let mut sim = duel();
        sim.apply_input(1, &fire_at(aim(-0.3)));
        let events = sim.step(0, DT);
        assert_eq!(count(&events, |e| matches!(e, SimEvent::Spawned(_))), 1);
        let (_, shot) = sim.projectiles().next().unwrap();
        let expected = Vec2::new(500.0, 650.0) + aim(-0.3).to_unit_vec2() * PROJECTILE_SPEED * DT;
        assert!(shot.pos.distance(expected) < 1e-3);
        let mut events = Vec::new();
        for tick in 1..60 {
            events.extend(sim.step(tick, DT));
        }
        assert_eq!(count(&events, |e| matches!(e, SimEvent::Hit { .. })), 0);
    }

    #[test]
    fn kill_scores_and_respawns() {
        let mut sim = duel();
        let mut events = Vec::new();
        let mut death_tick = None;
        for tick in 0..600 {
            sim.apply_input(1, &fire_at(aim(0.0)));
            let step = sim.step(tick, DT);
            if step.iter().any(|e| matches!(e, SimEvent::Killed { .. })) {
                death_tick = Some(tick);
            }
            events.extend(step);
            if death_tick.is_some() {
                break;
            }
        }
        let death_tick = death_tick.expect("five hits kill");
        let hits = u32::from(MAX_HEALTH.div_ceil(PROJECTILE_DAMAGE));
        assert_eq!(
            count(&events, |e| matches!(e, SimEvent::Hit { victim: 2, .. })),
            hits as usize
        );
        assert!(events.contains(&SimEvent::Killed {
            killer: 1,
            victim: 2,
            killer_name: "ada".into(),
            victim_name: "bob".into(),
        }));
        let bob = sim.player(2).unwrap();
        assert_eq!((bob.health, bob.deaths, bob.kills), (0, 1, 0));
        assert_eq!(bob.respawn_at, Some(death_tick + RESPAWN_TICKS));
        assert_eq!(sim.player(1).unwrap().kills, 1);
        let state = sim.state_of(SimId::Player(2)).unwrap();
        assert_eq!((state.health, state.deaths), (0, 1));

        // Dead: no movement, no shots, not a target.
        sim.apply_input(
            2,
            &PlayerInput {
                buttons: buttons::LEFT | buttons::FIRE,
                aim: aim(PI),
            },
        );
        let mut events = Vec::new();
        for tick in death_tick + 1..death_tick + RESPAWN_TICKS {
            sim.apply_input(1, &fire_at(aim(0.0)));
            events.extend(sim.step(tick, DT));
        }
        assert_eq!(sim.player(2).unwrap().pos, Vec2::new(900.0, 650.0));
        assert_eq!(count(&events, |e| matches!(e, SimEvent::Hit { .. })), 0);
        assert!(sim.projectiles().all(|(_, p)| p.owner == 1));

        // Respawn exactly RESPAWN_TICKS later, whole, at a spawn point away
        // from the shooter.
        let events = sim.step(death_tick + RESPAWN_TICKS, DT);
        let Some(SimEvent::Respawned { client: 2, pos }) = events.first().cloned() else {
            panic!("no respawn first: {events:?}");
        };
        assert!(position_is_free(pos, PLAYER_RADIUS));
        assert!(pos.distance(sim.player(1).unwrap().pos) >= 300.0);
        let bob = sim.player(2).unwrap();
        assert_eq!(
            (bob.health, bob.respawn_at, bob.deaths),
            (MAX_HEALTH, None, 1)
        );
        assert_eq!(
            events[0].to_arena_event(),
            Some(crate::ArenaEvent::Respawned { client: 2 })
        );
    }

    #[test]
    fn fire_rate_is_enforced() {
        let mut sim = duel();
        // Aim away from bob, into the open.
        let hold = fire_at(aim(PI));
        let mut shots = 0;
        for tick in 0..120 {
            // Spam: many fire inputs per tick.
            for _ in 0..10 {
                sim.apply_input(1, &hold);
            }
            shots += count(&sim.step(tick, DT), |e| matches!(e, SimEvent::Spawned(_)));
        }
        assert_eq!(shots, (120 / FIRE_INTERVAL_TICKS) as usize);

        // A tap (press and release between two ticks) still fires once the
        // cooldown allows; a tap during the cooldown is dropped.
        let mut sim = duel();
        let release = PlayerInput {
            buttons: 0,
            aim: aim(PI),
        };
        sim.apply_input(1, &hold);
        sim.apply_input(1, &release);
        assert_eq!(
            count(&sim.step(0, DT), |e| matches!(e, SimEvent::Spawned(_))),
            1
        );
        sim.apply_input(1, &hold);
        sim.apply_input(1, &release);
        assert_eq!(
            count(&sim.step(1, DT), |e| matches!(e, SimEvent::Spawned(_))),
            0
        );
        assert_eq!(
            count(&sim.step(FIRE_INTERVAL_TICKS, DT), |e| matches!(
                e,
                SimEvent::Spawned(_)
            )),
            0
        );
    }

    #[test]
    fn players_cannot_shoot_themselves() {
        let mut sim = ArenaSim::new(3);
        sim.add_player(1, "solo", 0);
        sim.place(1, Vec2::new(600.0, 650.0));
        // Run around in circles while firing in every direction.
        let mut events = Vec::new();
        for tick in 0..300 {
            let input = PlayerInput {
                buttons: buttons::FIRE
                    | [buttons::UP, buttons::LEFT, buttons::DOWN][tick as usize / 20 % 3],
                aim: Angle16((tick * 7919) as u16),
            };
            sim.apply_input(1, &input);
            events.extend(sim.step(tick, DT));
        }
        assert!(count(&events, |e| matches!(e, SimEvent::Spawned(_))) > 20);
        assert_eq!(count(&events, |e| matches!(e, SimEvent::Hit { .. })), 0);
        assert_eq!(sim.player(1).unwrap().health, MAX_HEALTH);
    }

    #[test]
    fn projectiles_die_on_walls() {
        let mut sim = ArenaSim::new(3);
        sim.add_player(1, "ada", 0);
        // West of the central block (x 740..860, y 440..560), firing east.
        sim.place(1, Vec2::new(600.0, 500.0));
        sim.apply_input(1, &fire_at(aim(0.0)));
        let mut events = sim.step(0, DT);
        sim.apply_input(1, &PlayerInput::default());
        let mut gone = None;
        for tick in 1..30 {
            let step = sim.step(tick, DT);
            if step.contains(&SimEvent::Despawned(SimId::Projectile(0))) {
                gone = Some(tick);
            }
            events.extend(step);
        }
        // 140 − 4 units at 15 per tick: gone on the tenth step (tick 9).
        assert_eq!(gone, Some(9));
        assert_eq!(sim.projectiles().count(), 0);

        // Hugging a wall and firing into it: gone on the first step, never
        // through it.
        sim.place(1, Vec2::new(740.0 - PLAYER_RADIUS, 500.0));
        sim.apply_input(1, &fire_at(aim(0.0)));
        let events = sim.step(100, DT);
        assert!(events.contains(&SimEvent::Spawned(SimId::Projectile(1))));
        assert!(events.contains(&SimEvent::Despawned(SimId::Projectile(1))));
    }

    #[test]
    fn projectiles_fizzle_out() {
        let mut sim = ArenaSim::new(3);
        sim.add_player(1, "ada", 0);
        sim.place(1, Vec2::new(600.0, 650.0));
        sim.apply_input(1, &fire_at(aim(0.0)));
        let _ = sim.step(0, DT);
        sim.apply_input(1, &PlayerInput::default());
        // A slow-motion world (tiny dt): the projectile cannot reach a wall.
        for tick in 1..PROJECTILE_LIFETIME_TICKS {
            assert!(sim.step(tick, DT / 100.0).is_empty());
        }
        let events = sim.step(PROJECTILE_LIFETIME_TICKS, DT / 100.0);
        assert_eq!(events, vec![SimEvent::Despawned(SimId::Projectile(0))]);
    }

    #[test]
    fn the_nearest_victim_takes_the_hit() {
        let mut sim = duel();
        sim.add_player(3, "cy", 0);
        sim.place(3, Vec2::new(700.0, 650.0));
        sim.apply_input(1, &fire_at(aim(0.0)));
        let mut events = sim.step(0, DT);
        sim.apply_input(1, &PlayerInput::default());
        for tick in 1..40 {
            events.extend(sim.step(tick, DT));
        }
        assert_eq!(
            count(&events, |e| matches!(e, SimEvent::Hit { victim: 3, .. })),
            1
        );
        assert_eq!(count(&events, |e| matches!(e, SimEvent::Hit { .. })), 1);
        assert_eq!(sim.player(2).unwrap().health, MAX_HEALTH);
    }

    #[test]
    fn a_kill_by_a_departed_shooter_still_counts_for_the_victim() {
        let mut sim = duel();
        sim.players.get_mut(&2).unwrap().health = PROJECTILE_DAMAGE;
        sim.apply_input(1, &fire_at(aim(0.0)));
        let mut events = sim.step(0, DT);
        assert!(sim.remove_player(1));
        for tick in 1..30 {
            events.extend(sim.step(tick, DT));
        }
        assert!(events.contains(&SimEvent::Killed {
            killer: 1,
            victim: 2,
            killer_name: String::new(),
            victim_name: "bob".into(),
        }));
        assert_eq!(sim.player(2).unwrap().deaths, 1);
    }
}
