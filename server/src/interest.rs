//! A uniform grid of entity positions, for the [`crate::Game::visible`]
//! hook: "which entities does this client see" answered from the cells
//! around it, at a cost that grows with what is near, not with the world.
//!
//! The grid is kept incrementally: [`Grid::set`] moves an entity between
//! cells only when it crosses into another cell, so a game calls it for the
//! entities that moved each tick (or every entity: most calls then change
//! nothing).
//!
//! ```
//! use glam::Vec2;
//! use tickwire_server::interest::Grid;
//! use tickwire_shared::NetId;
//!
//! let mut grid = Grid::new(50.0);
//! grid.set(NetId(1), Vec2::new(10.0, 10.0));
//! grid.set(NetId(2), Vec2::new(400.0, 10.0));
//! grid.set(NetId(1), Vec2::new(12.0, 11.0)); // moved within its cell
//! let mut near = Vec::new();
//! grid.query(Vec2::ZERO, 100.0, &mut near);
//! assert_eq!(near, [NetId(1)]);
//! grid.remove(NetId(1));
//! near.clear();
//! grid.query(Vec2::ZERO, 100.0, &mut near);
//! assert!(near.is_empty());
//! ```

use glam::Vec2;
use rustc_hash::FxHashMap;
use tickwire_shared::NetId;

/// A uniform grid of entity positions (see the module docs).
#[derive(Debug, Clone)]
pub struct Grid {
    cell: f32,
    /// Cells and ids are small integers chosen by the game, not by peers:
    /// a fast hash (Fx) rather than SipHash's flooding resistance.
    cells: FxHashMap<(i32, i32), Vec<NetId>>,
    /// Each entity's cell.
    at: FxHashMap<NetId, (i32, i32)>,
}

impl Grid {
    /// A grid of square cells `cell` units wide. A cell about the size of a
    /// view radius keeps queries to a few cells. Non-positive or non-finite
    /// sizes are taken as 1.
    #[must_use]
    pub fn new(cell: f32) -> Self {
        Self {
            cell: if cell.is_finite() && cell > 0.0 {
                cell
            } else {
                1.0
            },
            cells: FxHashMap::default(),
            at: FxHashMap::default(),
        }
    }

    fn cell_of(&self, p: Vec2) -> (i32, i32) {
        // Saturating casts: far-away or NaN positions land in edge cells.
        (
            (p.x / self.cell).floor() as i32,
            (p.y / self.cell).floor() as i32,
        )
    }

    /// Puts `id` at `p` (inserting it, or moving it if its cell changed).
    pub fn set(&mut self, id: NetId, p: Vec2) {
        let cell = self.cell_of(p);
        match self.at.insert(id, cell) {
            Some(old) if old == cell => {}
            Some(old) => {
                self.take_out(id, old);
                self.cells.entry(cell).or_default().push(id);
            }
            None => self.cells.entry(cell).or_default().push(id),
        }
    }

    /// Removes `id` (nothing if absent).
    pub fn remove(&mut self, id: NetId) {
        if let Some(cell) = self.at.remove(&id) {
            self.take_out(id, cell);
        }
    }

    fn take_out(&mut self, id: NetId, cell: (i32, i32)) {
        if let Some(ids) = self.cells.get_mut(&cell) {
            if let Some(i) = ids.iter().position(|x| *x == id) {
                ids.swap_remove(i);
            }
            if ids.is_empty() {
                self.cells.remove(&cell);
            }
        }
    }

    /// Entities in the grid.
    #[must_use]
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether the grid is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// Pushes onto `out` every entity in the cells that the disc of `radius`
    /// around `center` touches: a superset of those within `radius` (filter
    /// exactly with [`crate::Game::can_see`], which the room does). A cell
    /// in the square around the disc but wholly outside it (toward the
    /// square's corners) is skipped. Unordered.
    pub fn query(&self, center: Vec2, radius: f32, out: &mut Vec<NetId>) {
        let radius = radius.max(0.0);
        let r = Vec2::splat(radius);
        let (x0, y0) = self.cell_of(center - r);
        let (x1, y1) = self.cell_of(center + r);
        // A cell is skipped when its nearest point is farther than the
        // radius, with a margin for the rounding of `cell_of` and of the
        // cell's corners (a few steps of an `f32` at these magnitudes), so
        // an entity within the radius is never in a skipped cell. NaN skips
        // nothing.
        let magnitude = center.abs().max_element() + radius + self.cell;
        let reach = radius + self.cell * 1e-3 + magnitude * 4e-6;
        let reach2 = reach * reach;
        let touches = |x: i32, y: i32| {
            let lo = Vec2::new(x as f32, y as f32) * self.cell;
            let hi = lo + Vec2::splat(self.cell);
            let d = (lo - center).max(center - hi).max(Vec2::ZERO);
            d.length_squared().partial_cmp(&reach2) != Some(std::cmp::Ordering::Greater)
        };
        // A query wider than the grid's occupied cells walks the cells.
        let span = i64::from(x1) - i64::from(x0) + 1;
        let area = span.saturating_mul(i64::from(y1) - i64::from(y0) + 1);
        if area > self.cells.len() as i64 {
            for (&(x, y), ids) in &self.cells {
                if (x0..=x1).contains(&x) && (y0..=y1).contains(&y) && touches(x, y) {
                    out.extend_from_slice(ids);
                }
            }
            return;
        }
        for x in x0..=x1 {
            for y in y0..=y1 {
                if let Some(ids) = self.cells.get(&(x, y))
                    && touches(x, y)
                {
                    out.extend_from_slice(ids);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// After random inserts, moves and removals, a query returns every
        /// entity within the radius, each once, near the origin and far from
        /// it (where an `f32` is coarse).
        #[test]
        fn queries_cover_the_radius(
            moves in proptest::collection::vec((0u32..40, -500f32..500.0, -500f32..500.0, any::<bool>()), 1..300),
            center in (-600f32..600.0, -600f32..600.0),
            radius in 0f32..300.0,
            cell in 5f32..200.0,
            offset in prop_oneof![Just(0f32), Just(1.0e6), Just(-3.0e7)],
        ) {
            let moves: Vec<_> = moves.into_iter().map(|(id, x, y, r)| (id, x + offset, y + offset, r)).collect();
            let center = (center.0 + offset, center.1 + offset);
            let mut grid = Grid::new(cell);
            let mut truth: HashMap<NetId, Vec2> = HashMap::new();
            for (id, x, y, remove) in moves {
                let id = NetId(id);
                if remove {
                    grid.remove(id);
                    truth.remove(&id);
                } else {
                    grid.set(id, Vec2::new(x, y));
                    truth.insert(id, Vec2::new(x, y));
                }
            }
            prop_assert_eq!(grid.len(), truth.len());
            let c = Vec2::new(center.0, center.1);
            let mut got = Vec::new();
            grid.query(c, radius, &mut got);
            let mut sorted = got.clone();
            sorted.sort_unstable();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), got.len(), "an entity twice");
            for (id, p) in &truth {
                if p.distance(c) <= radius {
                    prop_assert!(got.contains(id), "{:?} at {} missed", id, p);
                }
            }
            for id in &got {
                prop_assert!(truth.contains_key(id), "{:?} was removed", id);
                // Only cells the disc touches: nothing farther than the
                // radius plus a cell's diagonal.
                let far = truth[id].distance(c) - radius - cell * std::f32::consts::SQRT_2;
                prop_assert!(far <= 0.01 + offset.abs() * 1e-5, "{:?} at {} is {} past the disc's cells", id, truth[id], far);
            }
        }
    }

    /// Entities just inside the edge of the disc, far from the origin where
    /// an `f32` is coarse (its step 2 units at 3e7), on cells of odd sizes:
    /// none is in a skipped cell.
    #[test]
    fn the_edge_of_the_disc_is_covered_far_from_the_origin() {
        for cell in [3.0, 5.0, 7.0, 13.0, 50.0] {
            for base in [1.0e5f32, 3.0e6, 3.0e7] {
                let center = Vec2::new(base, -base);
                let radius = 40.0;
                let mut grid = Grid::new(cell);
                let mut inside = Vec::new();
                for i in 0..4_000u32 {
                    let a = i as f32 * 0.0157;
                    let r = radius - (i % 7) as f32 * 0.25;
                    let p = center + Vec2::new(a.cos(), a.sin()) * r;
                    grid.set(NetId(i), p);
                    if p.distance(center) <= radius {
                        inside.push(NetId(i));
                    }
                }
                let mut got = Vec::new();
                grid.query(center, radius, &mut got);
                for id in &inside {
                    assert!(got.contains(id), "cell {cell}, at {base}: {id:?} missed");
                }
            }
        }
    }

    #[test]
    fn cells_beyond_the_disc_are_skipped() {
        let mut g = Grid::new(10.0);
        g.set(NetId(1), Vec2::new(70.0, 70.0)); // 99 from the center
        g.set(NetId(2), Vec2::new(95.0, 95.0)); // its cell's nearest point is 127 away
        g.set(NetId(3), Vec2::new(-99.0, 5.0));
        // More occupied cells than the query's square (21 x 21), far away:
        // the query looks its cells up one by one.
        for i in 0..500 {
            g.set(NetId(100 + i), Vec2::new(5_000.0 + 10.0 * i as f32, 0.0));
        }
        let mut out = Vec::new();
        g.query(Vec2::ZERO, 100.0, &mut out);
        out.sort_unstable();
        assert_eq!(out, [NetId(1), NetId(3)]);
        // The same through the walk of occupied cells (a query wider than
        // the grid's cells).
        out.clear();
        let mut small = Grid::new(10.0);
        small.set(NetId(2), Vec2::new(95.0, 95.0));
        small.set(NetId(1), Vec2::new(70.0, 70.0));
        small.query(Vec2::ZERO, 100.0, &mut out);
        assert_eq!(out, [NetId(1)]);
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let mut g = Grid::new(f32::NAN);
        g.set(NetId(1), Vec2::new(f32::NAN, f32::INFINITY));
        g.set(NetId(2), Vec2::new(-1e30, 1e30));
        let mut out = Vec::new();
        g.query(Vec2::ZERO, f32::INFINITY, &mut out);
        g.query(Vec2::new(f32::NAN, 0.0), 10.0, &mut out);
        g.remove(NetId(1));
        g.remove(NetId(7));
        assert_eq!(g.len(), 1);
    }
}
