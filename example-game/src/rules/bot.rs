//! Bots: a simple AI that produces the same [`PlayerInput`] a human sends.
//!
//! A bot wanders, re-planning every few hundred milliseconds. When it sees a
//! living player (within [`VIEW_RADIUS`](crate::VIEW_RADIUS) and with a clear
//! line of fire) it aims at the nearest one, with a little deliberate error,
//! fires, and closes in, backs off or strafes depending on the range. It
//! steers around walls by probing ahead before it commits to a direction.
//!
//! Everything is a function of the world, the tick and the seed: the same
//! arguments give the same input.
//!
//! ```
//! use arena::{bot, ArenaSim, BOT_ID_BASE};
//!
//! let mut sim = ArenaSim::new(1);
//! sim.add_player(BOT_ID_BASE, "", 1);
//! let input = bot::bot_input(&sim, BOT_ID_BASE, 0, 1);
//! assert_eq!(input, bot::bot_input(&sim, BOT_ID_BASE, 0, 1));
//! sim.apply_input(BOT_ID_BASE, &input);
//! let _ = sim.step(0, 1.0 / 60.0);
//! ```

use core::f32::consts::FRAC_PI_4;

use glam::Vec2;
use tickwire_shared::quantize::Angle16;

use crate::buttons::{DOWN, FIRE, LEFT, RIGHT, UP};
use crate::rules::collision::{clear_path, position_is_free};
use crate::rules::hash_words;
use crate::{ArenaSim, PLAYER_RADIUS, PROJECTILE_RADIUS, PlayerInput, in_view, movement_dir};

/// Ticks between two plans (wander heading, strafe side, aim error).
const PLAN_TICKS: u32 = 45;
/// How far ahead a bot checks that a direction is free.
const LOOKAHEAD: f32 = 3.0 * PLAYER_RADIUS;
/// The largest aim error, in radians.
const AIM_ERROR: f32 = 0.06;
/// Farther than this from its target a bot closes in.
const CHASE_RANGE: f32 = 420.0;
/// Closer than this to its target a bot backs off.
const RETREAT_RANGE: f32 = 200.0;

/// The eight movement directions, counter-clockwise on screen from +x
/// (y grows down, so index `i` points at angle `i · π/4`).
const DIRECTIONS: [u8; 8] = [
    RIGHT,
    RIGHT | DOWN,
    DOWN,
    DOWN | LEFT,
    LEFT,
    LEFT | UP,
    UP,
    UP | RIGHT,
];

/// The input for bot `bot_client` at `tick`. A bot that is unknown or dead
/// gets an idle input.
#[must_use]
pub fn bot_input(sim: &ArenaSim, bot_client: u32, tick: u32, seed: u64) -> PlayerInput {
    let Some(me) = sim.player(bot_client) else {
        return PlayerInput::default();
    };
    let idle = PlayerInput {
        buttons: 0,
        aim: me.aim,
    };
    if !me.is_alive() {
        return idle;
    }
    let plan = hash_words(&[seed, u64::from(bot_client), u64::from(tick / PLAN_TICKS)]);
    let Some(target) = nearest_visible_enemy(sim, bot_client, me.pos) else {
        // Wander.
        let buttons = steer(me.pos, (plan % 8) as usize, plan);
        if buttons == 0 {
            return idle;
        }
        return PlayerInput {
            buttons,
            aim: angle_of(movement_dir(buttons)),
        };
    };
    let to = target - me.pos;
    let dist = to.length();
    let toward = octant(to);
    let preferred = if dist > CHASE_RANGE {
        toward
    } else if dist < RETREAT_RANGE {
        toward + 4
    } else if plan & 1 == 0 {
        toward + 2
    } else {
        toward + 6
    };
    let error = (((plan >> 8) & 0xffff) as f32 / 65_535.0 * 2.0 - 1.0) * AIM_ERROR;
    PlayerInput {
        buttons: steer(me.pos, preferred, plan) | FIRE,
        aim: Angle16::from_radians(to.y.atan2(to.x) + error),
    }
}

/// The position of the nearest other living player the bot can see and hit.
fn nearest_visible_enemy(sim: &ArenaSim, me: u32, from: Vec2) -> Option<Vec2> {
    sim.players()
        .filter(|&(c, p)| c != me && p.is_alive() && in_view(from, p.pos))
        .filter(|(_, p)| clear_path(from, p.pos, PROJECTILE_RADIUS))
        .map(|(_, p)| p.pos)
        .min_by(|a, b| {
            a.distance_squared(from)
                .total_cmp(&b.distance_squared(from))
        })
}

/// The buttons for the free direction nearest to `DIRECTIONS[preferred % 8]`
/// (turning left or right first as `plan` says), or none when boxed in.
fn steer(pos: Vec2, preferred: usize, plan: u64) -> u8 {
    let mirror = plan & 2 != 0;
    [0, 1, 7, 2, 6, 3, 5, 4]
        .into_iter()
        .map(|offset| if mirror { (8 - offset) % 8 } else { offset })
        .map(|offset| DIRECTIONS[(preferred + offset) % 8])
        .find(|&b| {
            let probe = pos + movement_dir(b) * LOOKAHEAD;
            position_is_free(probe, PLAYER_RADIUS) && clear_path(pos, probe, PLAYER_RADIUS)
        })
        .unwrap_or(0)
}

/// The index in [`DIRECTIONS`] closest to the direction of `v`.
fn octant(v: Vec2) -> usize {
    ((v.y.atan2(v.x) / FRAC_PI_4).round() as i32).rem_euclid(8) as usize
}

fn angle_of(v: Vec2) -> Angle16 {
    Angle16::from_radians(v.y.atan2(v.x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BOT_ID_BASE, MAX_HEALTH, SimEvent, SimId};

    const DT: f32 = 1.0 / 60.0;
    const BOT: u32 = BOT_ID_BASE;
    const PLAYER_SPEED_PER_TICK: f32 = crate::PLAYER_SPEED * DT;

    #[test]
    fn directions_match_octants() {
        for (i, &b) in DIRECTIONS.iter().enumerate() {
            assert_eq!(octant(movement_dir(b)), i);
        }
    }

    #[test]
    fn unknown_or_dead_bots_idle() {
        let mut sim = ArenaSim::new(1);
        assert_eq!(bot_input(&sim, BOT, 0, 0), PlayerInput::default());
        sim.add_player(BOT, "", 0);
        sim.players.get_mut(&BOT).unwrap().health = 0;
        assert_eq!(bot_input(&sim, BOT, 0, 0).buttons, 0);
    }

    #[test]
    fn lone_bot_wanders_without_hugging_walls() {
        let mut sim = ArenaSim::new(5);
        sim.add_player(BOT, "", 5);
        let mut moved = 0;
        let mut last = sim.player(BOT).unwrap().pos;
        for tick in 0..1800 {
            let input = bot_input(&sim, BOT, tick, 5);
            assert_eq!(input.buttons & FIRE, 0, "nobody to shoot at");
            assert_ne!(input.buttons, 0, "boxed in at {last}");
            sim.apply_input(BOT, &input);
            let _ = sim.step(tick, DT);
            let pos = sim.player(BOT).unwrap().pos;
            // Steering ahead of walls: it never runs into one.
            if pos.distance(last) > PLAYER_SPEED_PER_TICK - 1e-3 {
                moved += 1;
            }
            last = pos;
        }
        assert!(moved > 1700, "moved at full speed on {moved} of 1800 ticks");
    }

    #[test]
    fn bot_shoots_a_visible_player_and_eventually_hits() {
        let mut sim = ArenaSim::new(2);
        sim.add_player(1, "human", 0);
        sim.add_player(BOT, "", 0);
        sim.place(1, Vec2::new(600.0, 650.0));
        sim.place(BOT, Vec2::new(300.0, 650.0));
        let mut first_shot = None;
        let mut hits = 0;
        for tick in 0..600 {
            let input = bot_input(&sim, BOT, tick, 77);
            sim.apply_input(BOT, &input);
            for e in sim.step(tick, DT) {
                match e {
                    SimEvent::Spawned(SimId::Projectile(id)) => {
                        assert_eq!(sim.projectiles.get(&id).unwrap().owner, BOT);
                        first_shot.get_or_insert(tick);
                    }
                    SimEvent::Hit {
                        shooter, victim, ..
                    } => {
                        assert_eq!((shooter, victim), (BOT, 1));
                        hits += 1;
                    }
                    _ => {}
                }
            }
        }
        assert_eq!(first_shot, Some(0), "the target is in plain view");
        assert!(hits >= 3, "{hits} hits on a standing target");
        let human = sim.player(1).unwrap();
        assert!(human.deaths > 0 || human.health < MAX_HEALTH);
    }

    #[test]
    fn bot_holds_fire_without_line_of_sight() {
        let mut sim = ArenaSim::new(2);
        sim.add_player(1, "human", 0);
        sim.add_player(BOT, "", 0);
        // The central block (x 740..860, y 440..560) between them.
        sim.place(1, Vec2::new(900.0, 500.0));
        sim.place(BOT, Vec2::new(700.0, 500.0));
        assert_eq!(bot_input(&sim, BOT, 0, 3).buttons & FIRE, 0);
        // Out of view range: no shot either.
        sim.place(1, Vec2::new(1500.0, 100.0));
        sim.place(BOT, Vec2::new(100.0, 900.0));
        assert_eq!(bot_input(&sim, BOT, 0, 3).buttons & FIRE, 0);
    }

    #[test]
    fn bots_are_deterministic() {
        let run = |seed: u64| {
            let mut sim = ArenaSim::new(seed);
            for b in 0..4 {
                sim.add_player(BOT + b, "", seed + u64::from(b));
            }
            for tick in 0..900 {
                for b in 0..4 {
                    let input = bot_input(&sim, BOT + b, tick, seed);
                    sim.apply_input(BOT + b, &input);
                }
                let _ = sim.step(tick, DT);
            }
            sim
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
    }
}
