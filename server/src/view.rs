//! A client's view for one snapshot: the positions, in the snapshot's
//! entity list, of the entities it may see, in order.
//!
//! [`Game::visible`] names the candidates from the game's own spatial index
//! (for example [`crate::interest::Grid`]); each is found in the snapshot
//! through a per-tick id → position table and kept if [`Game::can_see`]
//! says so. The kept positions are marked in a bitmap of the snapshot's
//! positions and read out in order: sorted and deduplicated without a sort.
//! A game without an index has `can_see` asked about every entity.
//!
//! A view is derived again for each snapshot, not carried from the last:
//! when entities and viewers move every tick, every candidate needs its
//! `can_see` again (ARCHITECTURE.md, "views").

use tickwire_shared::NetId;

use crate::game::{Game, StateOf};
use crate::world::World;

/// Reusable buffers for the views of one room's clients.
#[derive(Debug, Default)]
pub(crate) struct Views {
    /// Positions of the entities one client sees.
    visible: Vec<u32>,
    /// The ids a game's spatial index names for one client.
    near: Vec<NetId>,
    /// One bit per position of the snapshot: the view being built.
    marks: Vec<u64>,
    /// The snapshot's position of each net id (`u32::MAX`: none), built once
    /// per tick when a game's index is used; empty when ids are too sparse
    /// for a table (then found by binary search).
    pos_by_id: Vec<u32>,
    pos_by_id_tick: Option<u32>,
}

impl Views {
    /// The positions in `entities` (the snapshot of `tick`, sorted by id) of
    /// the entities `view` sees, in increasing order.
    pub(crate) fn build<G: Game>(
        &mut self,
        game: &G,
        world: &World<StateOf<G>>,
        view: &G::View,
        tick: u32,
        entities: &[(NetId, StateOf<G>)],
    ) -> &[u32] {
        let Self {
            visible,
            near,
            marks,
            pos_by_id,
            pos_by_id_tick,
        } = self;
        visible.clear();
        near.clear();
        if !game.visible(world, view, near) {
            visible.resize(entities.len(), 0);
            let mut n = 0;
            for (i, (nid, s)) in entities.iter().enumerate() {
                visible[n] = i as u32;
                n += usize::from(G::can_see(view, *nid, s));
            }
            visible.truncate(n);
            return visible;
        }
        if *pos_by_id_tick != Some(tick) {
            *pos_by_id_tick = Some(tick);
            index_positions(entities, pos_by_id);
        }
        marks.clear();
        marks.resize(entities.len().div_ceil(64), 0);
        mark(near, entities, pos_by_id, marks, |nid, s| {
            G::can_see(view, nid, s)
        });
        for (w, &word) in marks.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                visible.push((w * 64) as u32 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        visible
    }
}

/// Sets the bit of each candidate in `near` that `view` sees. The table and
/// the bitmap are local slices, so the loop keeps them in registers rather
/// than reloading them through the room per candidate (this loop runs once
/// per client per candidate: 15 % of the server's samples with 500 bots in
/// one room).
fn mark<S>(
    near: &[NetId],
    entities: &[(NetId, S)],
    table: &[u32],
    marks: &mut [u64],
    can_see: impl Fn(NetId, &S) -> bool,
) {
    let mut see = |i: usize, nid: NetId| {
        if can_see(nid, &entities[i].1) {
            marks[i / 64] |= 1 << (i % 64);
        }
    };
    if table.is_empty() {
        for &nid in near {
            if let Ok(i) = entities.binary_search_by_key(&nid, |(e, _)| *e) {
                see(i, nid);
            }
        }
    } else {
        for &nid in near {
            if let Some(&p) = table.get(nid.0 as usize)
                && p != u32::MAX
            {
                see(p as usize, nid);
            }
        }
    }
}

/// Fills `table` with each id's position in `entities` (sorted by id), or
/// leaves it empty when the ids are too sparse for a table (more than four
/// slots per entity, plus 1,024).
fn index_positions<S>(entities: &[(NetId, S)], table: &mut Vec<u32>) {
    table.clear();
    let Some(max) = entities.last().map(|(id, _)| id.0 as usize) else {
        return;
    };
    if max > entities.len() * 4 + 1024 {
        return;
    }
    table.resize(max + 1, u32::MAX);
    for (i, (id, _)) in entities.iter().enumerate() {
        table[id.0 as usize] = i as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The positions `mark` sets for `near` (every entity visible but
    /// `hidden`).
    fn marked(entities: &[(NetId, ())], table: &[u32], near: &[u32], hidden: u32) -> Vec<usize> {
        let mut marks = vec![0u64; entities.len().div_ceil(64)];
        let near: Vec<NetId> = near.iter().map(|&i| NetId(i)).collect();
        mark(&near, entities, table, &mut marks, |id, ()| id.0 != hidden);
        (0..entities.len())
            .filter(|i| marks[i / 64] & (1 << (i % 64)) != 0)
            .collect()
    }

    #[test]
    fn candidates_are_found_by_table_or_by_search() {
        let dense: Vec<(NetId, ())> = [1, 2, 5, 9].iter().map(|&i| (NetId(i), ())).collect();
        let sparse: Vec<(NetId, ())> = [3, 70_000, 4_000_000]
            .iter()
            .map(|&i| (NetId(i), ()))
            .collect();
        let mut table = Vec::new();
        index_positions(&dense, &mut table);
        assert_eq!(table.len(), 10);
        // Unknown ids (3, 10,000) are skipped, a duplicate is marked once,
        // and what `can_see` refuses (2) is not marked.
        assert_eq!(marked(&dense, &table, &[9, 3, 5, 10_000, 9, 2], 2), [2, 3]);
        index_positions(&sparse, &mut table);
        assert!(table.is_empty(), "too sparse for a table");
        assert_eq!(marked(&sparse, &table, &[4_000_000, 4, 3], 0), [0, 2]);
        index_positions::<()>(&[], &mut table);
        assert!(table.is_empty());
        // 70 entities: a candidate in the second word of the bitmap.
        let wide: Vec<(NetId, ())> = (1..=70).map(|i| (NetId(i), ())).collect();
        index_positions(&wide, &mut table);
        assert_eq!(marked(&wide, &table, &[70, 1], 0), [0, 69]);
    }
}
