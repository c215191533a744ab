//! The map (walls, spawn points) and the geometry tests against it: circle
//! overlap and push-out for players, swept circles and segments for
//! projectiles and line of sight.

use glam::Vec2;

use crate::{ARENA_SIZE, PLAYER_RADIUS};

/// An axis-aligned rectangular wall.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wall {
    /// The corner with the smallest coordinates.
    pub min: Vec2,
    /// The corner with the largest coordinates.
    pub max: Vec2,
}

impl Wall {
    /// A wall from `(x0, y0)` to `(x1, y1)` (`x0 <= x1`, `y0 <= y1`).
    #[must_use]
    pub const fn new(x0: f32, y0: f32, x1: f32, y1: f32) -> Self {
        Self {
            min: Vec2::new(x0, y0),
            max: Vec2::new(x1, y1),
        }
    }

    /// The point of the wall nearest to `p` (`p` itself when inside).
    #[must_use]
    pub fn closest_point(&self, p: Vec2) -> Vec2 {
        p.clamp(self.min, self.max)
    }

    /// Whether a circle at `center` with `radius` overlaps the wall (touching
    /// is not overlapping).
    #[must_use]
    pub fn overlaps_circle(&self, center: Vec2, radius: f32) -> bool {
        center.distance_squared(self.closest_point(center)) < radius * radius
    }

    /// The smallest translation that moves a circle at `center` out of the
    /// wall, to exactly `radius` from it; `None` when it does not overlap.
    pub(crate) fn push_out(&self, center: Vec2, radius: f32) -> Option<Vec2> {
        let closest = self.closest_point(center);
        let away = center - closest;
        let dist_sq = away.length_squared();
        if dist_sq >= radius * radius {
            return None;
        }
        if dist_sq > 0.0 {
            let dist = dist_sq.sqrt();
            return Some(away * ((radius - dist) / dist));
        }
        // The center is inside: leave through the nearest face.
        let exits = [
            Vec2::new(self.min.x - radius - center.x, 0.0),
            Vec2::new(self.max.x + radius - center.x, 0.0),
            Vec2::new(0.0, self.min.y - radius - center.y),
            Vec2::new(0.0, self.max.y + radius - center.y),
        ];
        exits
            .into_iter()
            .min_by(|a, b| a.length_squared().total_cmp(&b.length_squared()))
    }

    /// Where, as a fraction `t` of `delta`, a circle of `radius` moving from
    /// `from` by `delta` first touches the wall (approximating the rounded
    /// corners by square ones); 0 when it starts inside.
    fn sweep(&self, from: Vec2, delta: Vec2, radius: f32) -> Option<f32> {
        let min = self.min - Vec2::splat(radius);
        let max = self.max + Vec2::splat(radius);
        let (mut t0, mut t1) = (0.0_f32, 1.0_f32);
        for (p, d, lo, hi) in [
            (from.x, delta.x, min.x, max.x),
            (from.y, delta.y, min.y, max.y),
        ] {
            if d == 0.0 {
                if p <= lo || p >= hi {
                    return None;
                }
            } else {
                let (mut a, mut b) = ((lo - p) / d, (hi - p) / d);
                if a > b {
                    core::mem::swap(&mut a, &mut b);
                }
                t0 = t0.max(a);
                t1 = t1.min(b);
                if t0 >= t1 {
                    return None;
                }
            }
        }
        Some(t0)
    }
}

/// Thickness of the boundary walls.
const BORDER: f32 = 20.0;

static WALLS: [Wall; 15] = [
    // Boundary.
    Wall::new(0.0, 0.0, ARENA_SIZE.x, BORDER),
    Wall::new(0.0, ARENA_SIZE.y - BORDER, ARENA_SIZE.x, ARENA_SIZE.y),
    Wall::new(0.0, BORDER, BORDER, ARENA_SIZE.y - BORDER),
    Wall::new(
        ARENA_SIZE.x - BORDER,
        BORDER,
        ARENA_SIZE.x,
        ARENA_SIZE.y - BORDER,
    ),
    // The central block, and spurs from the top and bottom walls that split
    // the middle into lanes.
    Wall::new(740.0, 440.0, 860.0, 560.0),
    Wall::new(785.0, BORDER, 815.0, 200.0),
    Wall::new(785.0, 800.0, 815.0, ARENA_SIZE.y - BORDER),
    // Two L-shaped bunkers in opposite corners.
    Wall::new(280.0, 200.0, 480.0, 230.0),
    Wall::new(280.0, 230.0, 310.0, 380.0),
    Wall::new(1120.0, 770.0, 1320.0, 800.0),
    Wall::new(1290.0, 620.0, 1320.0, 770.0),
    // Pillars in the other two corners.
    Wall::new(1150.0, 150.0, 1190.0, 330.0),
    Wall::new(410.0, 670.0, 450.0, 850.0),
    // Low cover at both flanks.
    Wall::new(150.0, 470.0, 230.0, 530.0),
    Wall::new(1370.0, 470.0, 1450.0, 530.0),
];

static SPAWN_POINTS: [Vec2; 10] = [
    Vec2::new(100.0, 100.0),
    Vec2::new(1500.0, 100.0),
    Vec2::new(100.0, 900.0),
    Vec2::new(1500.0, 900.0),
    Vec2::new(400.0, 500.0),
    Vec2::new(1200.0, 500.0),
    Vec2::new(600.0, 110.0),
    Vec2::new(1000.0, 890.0),
    Vec2::new(640.0, 620.0),
    Vec2::new(960.0, 380.0),
];

/// The arena's walls: its four boundary walls, then the obstacles. The same
/// on every call and every platform.
#[must_use]
pub fn walls() -> &'static [Wall] {
    &WALLS
}

/// Where players (re)spawn: points well clear of every wall.
#[must_use]
pub fn spawn_points() -> &'static [Vec2] {
    &SPAWN_POINTS
}

/// Whether a circle at `pos` with `radius` lies inside the arena without
/// overlapping any wall (touching is allowed).
#[must_use]
pub fn position_is_free(pos: Vec2, radius: f32) -> bool {
    pos.is_finite()
        && pos.cmpge(Vec2::ZERO).all()
        && pos.cmple(ARENA_SIZE).all()
        && walls().iter().all(|w| !w.overlaps_circle(pos, radius))
}

/// Clamps a player's center into the walkable interior of the boundary.
pub(crate) fn clamp_to_interior(pos: Vec2) -> Vec2 {
    let margin = Vec2::splat(BORDER + PLAYER_RADIUS);
    pos.clamp(margin, ARENA_SIZE - margin)
}

/// The earliest fraction `t` of `delta` at which a circle of `radius`
/// moving from `from` touches a wall.
pub(crate) fn sweep_walls(from: Vec2, delta: Vec2, radius: f32) -> Option<f32> {
    walls()
        .iter()
        .filter_map(|w| w.sweep(from, delta, radius))
        .min_by(f32::total_cmp)
}

/// Whether a circle of `radius` can travel in a straight line from `a` to
/// `b` without touching a wall.
pub(crate) fn clear_path(a: Vec2, b: Vec2, radius: f32) -> bool {
    sweep_walls(a, b - a, radius).is_none()
}

/// The earliest fraction `t` of `delta` at which a point moving from `from`
/// comes within `radius` of `center`; 0 when it starts within.
pub(crate) fn sweep_circle(from: Vec2, delta: Vec2, center: Vec2, radius: f32) -> Option<f32> {
    let f = from - center;
    let c = f.length_squared() - radius * radius;
    if c <= 0.0 {
        return Some(0.0);
    }
    let a = delta.length_squared();
    let b = f.dot(delta);
    let disc = b * b - a * c;
    if a == 0.0 || b >= 0.0 || disc < 0.0 {
        return None;
    }
    let t = (-b - disc.sqrt()) / a;
    (t <= 1.0).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(a: &Wall, b: &Wall) -> f32 {
        let dx = (a.min.x - b.max.x).max(b.min.x - a.max.x).max(0.0);
        let dy = (a.min.y - b.max.y).max(b.min.y - a.max.y).max(0.0);
        Vec2::new(dx, dy).length()
    }

    #[test]
    fn walls_are_well_formed_and_leave_no_pinch_gaps() {
        for (i, a) in walls().iter().enumerate() {
            assert!(a.min.cmplt(a.max).all(), "wall {i} is empty");
            assert!(a.min.cmpge(Vec2::ZERO).all() && a.max.cmple(ARENA_SIZE).all());
            // Thick enough that a projectile's per-tick step cannot skip it
            // even without the sweep, and a substep of movement cannot either.
            assert!((a.max - a.min).min_element() >= BORDER);
            for b in &walls()[i + 1..] {
                let g = gap(a, b);
                // Either joined, or a player fits through with room to spare:
                // no gap a player could wedge into from both sides.
                assert!(g == 0.0 || g > 4.0 * PLAYER_RADIUS, "{a:?} {b:?}: gap {g}");
            }
        }
    }

    #[test]
    fn spawn_points_are_free_with_clearance() {
        for &p in spawn_points() {
            assert!(position_is_free(p, PLAYER_RADIUS * 3.0), "{p}");
        }
    }

    #[test]
    fn boundary_encloses_the_arena() {
        let inner = clamp_to_interior(Vec2::new(-1e6, 1e6));
        assert!(position_is_free(inner, PLAYER_RADIUS));
        assert!(!position_is_free(Vec2::new(10.0, 500.0), PLAYER_RADIUS));
        assert!(!position_is_free(Vec2::new(-100.0, 500.0), PLAYER_RADIUS));
        assert!(!position_is_free(Vec2::new(f32::NAN, 500.0), PLAYER_RADIUS));
        // Touching is allowed.
        assert!(position_is_free(Vec2::new(36.0, 500.0), PLAYER_RADIUS));
    }

    #[test]
    fn push_out_resolves_overlap_and_inside_points() {
        let w = Wall::new(0.0, 0.0, 100.0, 100.0);
        let p = Vec2::new(110.0, 50.0);
        let out = p + w.push_out(p, 16.0).unwrap();
        assert!((out - Vec2::new(116.0, 50.0)).length() < 1e-4);
        let inside = Vec2::new(90.0, 50.0);
        let out = inside + w.push_out(inside, 16.0).unwrap();
        assert_eq!(out, Vec2::new(116.0, 50.0));
        assert!(w.push_out(Vec2::new(116.0, 50.0), 16.0).is_none());
    }

    #[test]
    fn sweeps_do_not_tunnel() {
        // A point crossing a 20-unit wall in one big step still hits it.
        let w = Wall::new(100.0, 0.0, 120.0, 100.0);
        let t = w
            .sweep(Vec2::new(0.0, 50.0), Vec2::new(300.0, 0.0), 4.0)
            .unwrap();
        assert!((t * 300.0 - 96.0).abs() < 1e-3);
        assert!(
            w.sweep(Vec2::new(0.0, 150.0), Vec2::new(300.0, 0.0), 4.0)
                .is_none()
        );
        assert_eq!(w.sweep(Vec2::new(110.0, 50.0), Vec2::ZERO, 4.0), Some(0.0));
        // Circle sweep: the first contact, not the closest approach.
        let t = sweep_circle(
            Vec2::ZERO,
            Vec2::new(100.0, 0.0),
            Vec2::new(50.0, 0.0),
            20.0,
        );
        assert!((t.unwrap() - 0.3).abs() < 1e-5);
        assert!(
            sweep_circle(Vec2::ZERO, Vec2::new(20.0, 0.0), Vec2::new(50.0, 0.0), 20.0).is_none()
        );
        assert!(
            sweep_circle(
                Vec2::ZERO,
                Vec2::new(-100.0, 0.0),
                Vec2::new(50.0, 0.0),
                20.0
            )
            .is_none()
        );
        assert!(!clear_path(
            Vec2::new(700.0, 500.0),
            Vec2::new(900.0, 500.0),
            0.0
        ));
        assert!(clear_path(
            Vec2::new(400.0, 500.0),
            Vec2::new(700.0, 500.0),
            4.0
        ));
    }
}
