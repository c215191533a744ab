//! Player movement: the one step function shared by the server's simulation
//! and the client's prediction.
//!
//! It uses only `+ − × ÷ √` on `f32`, which IEEE 754 rounds exactly the same
//! everywhere, so the browser's prediction of its own player matches the
//! server bit for bit given the same inputs.

use core::f32::consts::FRAC_1_SQRT_2;

use glam::Vec2;

use crate::rules::collision::{clamp_to_interior, position_is_free, spawn_points, walls};
use crate::{PLAYER_RADIUS, PLAYER_SPEED, PlayerInput, buttons};

/// The longest `dt` one [`step_player`] call simulates; longer steps are
/// clamped (a stalled client does not teleport).
const MAX_STEP_DT: f32 = 0.25;

/// Movement is split into substeps no longer than this, so a player never
/// skips over a wall (walls are at least 20 units thick), and rounding a
/// wall's corner (a push-out along the corner's radius) lengthens a substep
/// by at most `2r·sin(asin(d/r)/2) / d − 1` ≈ 0.8 % (d = r/4).
const MAX_SUBSTEP: f32 = PLAYER_RADIUS * 0.25;

/// Players are pushed this far beyond touching, so float rounding never
/// leaves them overlapping.
const SKIN: f32 = 1.0 / 64.0;

/// Rounds of push-out against all walls before giving up on a candidate.
const PUSH_ROUNDS: usize = 4;

/// The unit direction the movement buttons ask for (y grows down): zero when
/// none are held or opposing buttons cancel out; diagonals are normalized.
///
/// ```
/// use arena::{buttons, movement_dir};
/// assert_eq!(movement_dir(buttons::UP), glam::Vec2::new(0.0, -1.0));
/// assert_eq!(movement_dir(buttons::LEFT | buttons::RIGHT), glam::Vec2::ZERO);
/// assert!((movement_dir(buttons::DOWN | buttons::RIGHT).length() - 1.0).abs() < 1e-6);
/// ```
#[must_use]
pub fn movement_dir(buttons: u8) -> Vec2 {
    let held = |bit: u8| f32::from(u8::from(buttons & bit != 0));
    let x = held(buttons::RIGHT) - held(buttons::LEFT);
    let y = held(buttons::DOWN) - held(buttons::UP);
    let dir = Vec2::new(x, y);
    if x != 0.0 && y != 0.0 {
        dir * FRAC_1_SQRT_2
    } else {
        dir
    }
}

/// The movement step used by BOTH server and client prediction: from `pos`,
/// apply `input` for `dt` seconds, slide along walls, stay inside the arena.
///
/// On open ground the player moves exactly `PLAYER_SPEED * dt` along
/// [`movement_dir`]. Against a wall the blocked component is dropped and the
/// rest slides along it. `dt` is clamped to `0..=0.25` s (non-finite counts
/// as 0). A `pos` that is not free (outside the arena or inside a wall) is
/// first pushed back out; a non-finite one restarts at the first spawn point.
///
/// ```
/// use arena::{buttons, step_player, PlayerInput, PLAYER_SPEED};
/// use glam::Vec2;
///
/// let input = PlayerInput { buttons: buttons::RIGHT, ..Default::default() };
/// // Open ground: exact speed.
/// let p = step_player(Vec2::new(600.0, 700.0), &input, 0.25);
/// assert!((p.x - (600.0 + PLAYER_SPEED * 0.25)).abs() < 1e-3);
/// // Into the right boundary wall: stopped at the wall.
/// let p = step_player(Vec2::new(1550.0, 700.0), &input, 0.25);
/// assert!(p.x <= 1580.0 - 16.0);
/// ```
#[must_use]
pub fn step_player(pos: Vec2, input: &PlayerInput, dt: f32) -> Vec2 {
    let mut p = if pos.is_finite() {
        pos
    } else {
        spawn_points()[0]
    };
    if !position_is_free(p, PLAYER_RADIUS) {
        p = settle(p);
        if !position_is_free(p, PLAYER_RADIUS) {
            p = nearest_spawn_point(p);
        }
    }
    let delta = movement_dir(input.buttons) * (PLAYER_SPEED * clamp_dt(dt));
    let len = delta.length();
    if len == 0.0 {
        return p;
    }
    // At most MAX_STEP_DT * PLAYER_SPEED / MAX_SUBSTEP (17) substeps; 2 per
    // tick at 60 Hz.
    let substeps = (len / MAX_SUBSTEP).ceil().max(1.0);
    let sub = delta / substeps;
    for _ in 0..substeps as u32 {
        p = substep(p, sub);
    }
    p
}

/// `dt` limited to `0..=MAX_STEP_DT`; non-finite counts as 0.
pub(crate) fn clamp_dt(dt: f32) -> f32 {
    if dt.is_finite() {
        dt.clamp(0.0, MAX_STEP_DT)
    } else {
        0.0
    }
}

/// One short move from a free position: the whole move if it can be
/// resolved, else its x or y component alone (sliding out of corners), else
/// no move. The result is always free when `p` is.
fn substep(p: Vec2, sub: Vec2) -> Vec2 {
    [sub, Vec2::new(sub.x, 0.0), Vec2::new(0.0, sub.y)]
        .into_iter()
        .filter(|d| *d != Vec2::ZERO)
        .map(|d| settle(p + d))
        .find(|&q| position_is_free(q, PLAYER_RADIUS))
        .unwrap_or(p)
}

/// Pushes a player's circle into the arena and out of the walls it overlaps
/// (a few rounds, for corners).
fn settle(mut q: Vec2) -> Vec2 {
    for _ in 0..PUSH_ROUNDS {
        q = clamp_to_interior(q);
        let mut pushed = false;
        for wall in walls() {
            if let Some(push) = wall.push_out(q, PLAYER_RADIUS + SKIN) {
                q += push;
                pushed = true;
            }
        }
        if !pushed {
            break;
        }
    }
    clamp_to_interior(q)
}

/// The spawn point nearest to `p`: the last resort for a position that
/// cannot be pushed free.
fn nearest_spawn_point(p: Vec2) -> Vec2 {
    spawn_points()
        .iter()
        .copied()
        .min_by(|a, b| a.distance_squared(p).total_cmp(&b.distance_squared(p)))
        .unwrap_or(spawn_points()[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ARENA_SIZE;
    use proptest::prelude::*;

    const DT: f32 = 1.0 / 60.0;

    fn input(buttons: u8) -> PlayerInput {
        PlayerInput {
            buttons,
            ..PlayerInput::default()
        }
    }

    #[test]
    fn movement_dir_is_normalized_and_cancels_opposites() {
        use buttons::*;
        assert_eq!(movement_dir(0), Vec2::ZERO);
        assert_eq!(movement_dir(FIRE), Vec2::ZERO);
        assert_eq!(movement_dir(UP | DOWN), Vec2::ZERO);
        assert_eq!(movement_dir(MOVE), Vec2::ZERO);
        assert_eq!(movement_dir(RIGHT), Vec2::X);
        assert_eq!(movement_dir(LEFT), Vec2::NEG_X);
        assert_eq!(movement_dir(DOWN), Vec2::Y);
        assert_eq!(movement_dir(UP | LEFT | RIGHT), Vec2::NEG_Y);
        for b in 0..=u8::MAX {
            let d = movement_dir(b);
            assert!(
                d == Vec2::ZERO || (d.length() - 1.0).abs() < 1e-6,
                "{b}: {d}"
            );
        }
        let diag = movement_dir(UP | RIGHT);
        assert!(diag.x > 0.0 && diag.y < 0.0 && (diag.x + diag.y).abs() < 1e-7);
    }

    #[test]
    fn open_ground_speed_is_exact() {
        let start = Vec2::new(600.0, 700.0);
        for b in [
            buttons::UP,
            buttons::DOWN,
            buttons::LEFT,
            buttons::RIGHT,
            buttons::UP | buttons::LEFT,
            buttons::DOWN | buttons::RIGHT,
        ] {
            for dt in [DT, 0.1, MAX_STEP_DT] {
                let end = step_player(start, &input(b), dt);
                let moved = end - start;
                assert!(
                    (moved.length() - PLAYER_SPEED * dt).abs() < 1e-3,
                    "{b} {dt}"
                );
                assert!(moved.normalize().distance(movement_dir(b)) < 1e-5);
            }
        }
        // No buttons, fire only, or opposing buttons: no movement.
        for b in [0, buttons::FIRE, buttons::LEFT | buttons::RIGHT] {
            assert_eq!(step_player(start, &input(b), DT), start);
        }
    }

    #[test]
    fn bad_dt_and_positions_are_contained() {
        let start = Vec2::new(600.0, 700.0);
        let right = input(buttons::RIGHT);
        assert_eq!(step_player(start, &right, 0.0), start);
        assert_eq!(step_player(start, &right, -1.0), start);
        assert_eq!(step_player(start, &right, f32::NAN), start);
        assert_eq!(step_player(start, &right, f32::INFINITY), start);
        let long = step_player(start, &right, 100.0);
        assert!((long.x - start.x - PLAYER_SPEED * MAX_STEP_DT).abs() < 1e-3);
        for bad in [
            Vec2::new(f32::NAN, 3.0),
            Vec2::new(-1e30, 1e30),
            Vec2::new(800.0, 500.0), // inside the central block
            Vec2::new(5.0, 5.0),     // inside the boundary
        ] {
            let p = step_player(bad, &input(0), DT);
            assert!(position_is_free(p, PLAYER_RADIUS), "{bad} -> {p}");
        }
    }

    #[test]
    fn walls_block_and_slide() {
        // The central block spans x 740..860, y 440..560.
        let left_of_block = Vec2::new(740.0 - PLAYER_RADIUS - 1.0, 500.0);
        // Straight into the face: blocked at contact.
        let p = step_player(left_of_block, &input(buttons::RIGHT), 0.2);
        assert!((p.x - (740.0 - PLAYER_RADIUS)).abs() < 0.1, "{p}");
        assert_eq!(p.y, 500.0);
        // Diagonally into the face: the y part survives in full.
        let p = step_player(left_of_block, &input(buttons::RIGHT | buttons::DOWN), 0.2);
        assert!((p.x - (740.0 - PLAYER_RADIUS)).abs() < 0.1, "{p}");
        assert!(
            (p.y - (500.0 + PLAYER_SPEED * 0.2 * FRAC_1_SQRT_2)).abs() < 0.1,
            "{p}"
        );
        // Holding into the wall while sliding along it, for many ticks: the
        // player passes the corner and continues.
        let mut p = left_of_block;
        for _ in 0..60 {
            p = step_player(p, &input(buttons::RIGHT | buttons::DOWN), DT);
            assert!(position_is_free(p, PLAYER_RADIUS));
        }
        assert!(p.y > 560.0 && p.x > 740.0, "{p}");
        // The concave corner of the top-left bunker (x 280..480 at y 200..230
        // over x 280..310 at y 230..380) stops a diagonal move in both axes.
        let mut p = Vec2::new(340.0, 260.0);
        for _ in 0..120 {
            p = step_player(p, &input(buttons::UP | buttons::LEFT), DT);
        }
        assert!((p - Vec2::new(310.0, 230.0) - Vec2::splat(PLAYER_RADIUS)).length() < 0.1);
    }

    #[test]
    fn boundary_walls_hold() {
        let mut p = Vec2::new(100.0, 100.0);
        for _ in 0..600 {
            p = step_player(p, &input(buttons::UP | buttons::LEFT), DT);
        }
        assert!(
            (p - Vec2::splat(20.0 + PLAYER_RADIUS)).length() < 0.1,
            "{p}"
        );
        for _ in 0..600 {
            p = step_player(p, &input(buttons::DOWN | buttons::RIGHT), DT);
        }
        assert!(
            p.cmple(ARENA_SIZE - Vec2::splat(20.0 + PLAYER_RADIUS))
                .all()
        );
        assert!(position_is_free(p, PLAYER_RADIUS));
    }

    fn free_position() -> impl Strategy<Value = Vec2> {
        (0.0f32..ARENA_SIZE.x, 0.0f32..ARENA_SIZE.y)
            .prop_map(|(x, y)| Vec2::new(x, y))
            .prop_filter("must start free", |p| position_is_free(*p, PLAYER_RADIUS))
    }

    proptest! {
        #[test]
        fn never_leaves_the_arena_or_enters_a_wall(
            start in free_position(),
            steps in prop::collection::vec((any::<u8>(), 0.0f32..0.3), 1..40),
        ) {
            let mut p = start;
            for (b, dt) in steps {
                let next = step_player(p, &input(b), dt);
                prop_assert!(position_is_free(next, PLAYER_RADIUS), "{p} + {b} for {dt} -> {next}");
                // Never faster than the speed limit, give or take the skin and
                // the hair a push-out adds when rounding a corner (see
                // MAX_SUBSTEP).
                let limit = PLAYER_SPEED * dt.min(MAX_STEP_DT);
                prop_assert!(next.distance(p) <= limit * 1.01 + SKIN, "{p} -> {next}: over {limit}");
                p = next;
            }
        }

        #[test]
        fn any_start_ends_up_free(x in -1e5f32..1e5, y in -1e5f32..1e5, b in any::<u8>()) {
            let p = step_player(Vec2::new(x, y), &input(b), DT);
            prop_assert!(position_is_free(p, PLAYER_RADIUS), "{x},{y} -> {p}");
        }
    }
}
