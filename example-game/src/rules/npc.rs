//! Wandering NPCs: server-side entities that move every tick, so that load
//! tests have a known number of moving entities (`arena-server --npcs N`).
//!
//! They are deliberately cheap: a fixed `Vec`, no allocation per step, one
//! hash per NPC per tick. Each NPC walks at [`NPC_SPEED`], turns by a small
//! pseudo-random angle every tick, and bounces off the arena's outer edge; it
//! ignores the inner walls, the players and the projectiles (nothing collides
//! with it). Its quantized position changes on every step.

use core::f32::consts::{PI, TAU};

use glam::Vec2;
use tickwire_shared::quantize::{Angle16, QVec2};

use crate::rules::{hash_words, mix64};
use crate::{ARENA_SIZE, EntityKind, EntityState, MAX_HEALTH, PLAYER_RADIUS};

/// An NPC's speed, in world units per second (1.5 units per 60 Hz tick:
/// far more than the 1/16 quantization step, so every tick changes it).
pub const NPC_SPEED: f32 = 90.0;
/// The largest turn per tick, in radians (about 1.7°).
pub const NPC_MAX_TURN: f32 = 0.03;

/// One wandering NPC.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Npc {
    /// Center, in world units.
    pub pos: Vec2,
    /// Walking direction, in radians (`0..TAU`).
    pub heading: f32,
}

impl Npc {
    /// The replicated state: kind [`EntityKind::Npc`], no owner, no name (an
    /// empty `String` does not allocate).
    #[must_use]
    pub fn state(&self) -> EntityState {
        EntityState {
            kind: EntityKind::Npc,
            pos: QVec2::from_vec2(self.pos),
            angle: Angle16::from_radians(self.heading),
            health: MAX_HEALTH,
            owner: 0,
            name: crate::no_name(),
            kills: 0,
            deaths: 0,
        }
    }
}

/// A fixed crowd of wandering NPCs, deterministic for a seed.
///
/// ```
/// use arena::Wanderers;
/// let mut npcs = Wanderers::new(3, 7);
/// let before: Vec<_> = npcs.iter().map(|n| n.state()).collect();
/// npcs.step(1, 1.0 / 60.0);
/// assert!(npcs.iter().zip(&before).all(|(n, b)| n.state() != *b));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Wanderers {
    seed: u64,
    npcs: Vec<Npc>,
}

/// The box NPCs stay in: the arena, inset by a player radius.
fn bounds() -> (Vec2, Vec2) {
    let inset = Vec2::splat(PLAYER_RADIUS);
    (inset, ARENA_SIZE - inset)
}

/// A uniform value in `0..1` from a hash.
fn unit(h: u64) -> f32 {
    (h >> 40) as f32 / (1u64 << 24) as f32
}

impl Wanderers {
    /// `count` NPCs spread uniformly over the arena with random headings.
    #[must_use]
    pub fn new(count: usize, seed: u64) -> Self {
        let (lo, hi) = bounds();
        let npcs = (0..count as u64)
            .map(|i| {
                let h = hash_words(&[seed, 0x004e_5043, i]);
                let (a, b, c) = (unit(h), unit(mix64(h)), unit(mix64(h ^ 1)));
                Npc {
                    pos: lo + (hi - lo) * Vec2::new(a, b),
                    heading: c * TAU,
                }
            })
            .collect();
        Self { seed, npcs }
    }

    /// Number of NPCs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.npcs.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.npcs.is_empty()
    }

    /// The NPCs, in a fixed order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Npc> + '_ {
        self.npcs.iter()
    }

    /// Moves every NPC by one step of `dt` seconds at tick `tick`.
    pub fn step(&mut self, tick: u32, dt: f32) {
        let (lo, hi) = bounds();
        let tick_key = mix64(self.seed ^ u64::from(tick));
        for (i, npc) in self.npcs.iter_mut().enumerate() {
            let turn = (unit(mix64(tick_key ^ i as u64)) * 2.0 - 1.0) * NPC_MAX_TURN;
            let mut heading = npc.heading + turn;
            let mut pos = npc.pos + Vec2::from_angle(heading) * (NPC_SPEED * dt);
            // Bounce: mirror the position back inside and the heading with it.
            if pos.x < lo.x || pos.x > hi.x {
                pos.x = if pos.x < lo.x {
                    2.0 * lo.x - pos.x
                } else {
                    2.0 * hi.x - pos.x
                };
                heading = PI - heading;
            }
            if pos.y < lo.y || pos.y > hi.y {
                pos.y = if pos.y < lo.y {
                    2.0 * lo.y - pos.y
                } else {
                    2.0 * hi.y - pos.y
                };
                heading = -heading;
            }
            npc.pos = pos.clamp(lo, hi);
            npc.heading = heading.rem_euclid(TAU);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DT: f32 = 1.0 / 60.0;

    #[test]
    fn every_npc_changes_state_on_every_tick_and_stays_inside() {
        let (lo, hi) = bounds();
        let mut npcs = Wanderers::new(200, 3);
        assert_eq!(npcs.len(), 200);
        let mut states: Vec<EntityState> = npcs.iter().map(Npc::state).collect();
        // 1,200 ticks at 1.5 units per tick cross the arena: bounces happen.
        for tick in 1..=1200 {
            npcs.step(tick, DT);
            for (i, npc) in npcs.iter().enumerate() {
                let s = npc.state();
                assert_ne!(s, states[i], "NPC {i} did not move at tick {tick}");
                assert!(
                    npc.pos.cmpge(lo).all() && npc.pos.cmple(hi).all(),
                    "NPC {i} left the arena at tick {tick}: {}",
                    npc.pos
                );
                let moved = s.pos.to_vec2().distance(states[i].pos.to_vec2());
                assert!(moved <= NPC_SPEED * DT + 0.2, "NPC {i} jumped {moved}");
                states[i] = s;
            }
        }
    }

    #[test]
    fn same_seed_same_walk_other_seed_other_walk() {
        let run = |seed| {
            let mut npcs = Wanderers::new(20, seed);
            for tick in 0..300 {
                npcs.step(tick, DT);
            }
            npcs
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
        assert!(Wanderers::new(0, 1).is_empty());
    }

    #[test]
    fn the_state_is_an_npc_with_no_name() {
        let npcs = Wanderers::new(1, 9);
        let s = npcs.iter().next().unwrap().state();
        assert_eq!(s.kind, EntityKind::Npc);
        assert!(s.name.is_empty());
        assert_eq!((s.owner, s.health), (0, MAX_HEALTH));
    }
}
