//! A client's view for one snapshot: the entities it may see, as their ids
//! (one bit per id) or as their positions in the snapshot's entity list.
//!
//! [`Game::visible`] names the candidates from the game's own spatial index
//! (for example [`crate::interest::Grid`]); each is found in the snapshot
//! through a per-tick id → position table and kept if [`Game::can_see`]
//! says so. The kept ones are marked in a bitmap, of ids (what a delta
//! compares word by word with the client's baseline view, see
//! `Replication::build_view`) or of the snapshot's positions (read out in
//! order: sorted and deduplicated without a sort). A game without an index
//! has `can_see` asked about every entity.
//!
//! A view is derived again for each snapshot, not carried from the last:
//! when entities and viewers move every tick, every candidate needs its
//! `can_see` again (ARCHITECTURE.md, "views").

use tickwire_shared::NetId;
use tickwire_shared::idset::IdSet;

use crate::game::{Game, StateOf};
use crate::world::World;

/// One client's view for one snapshot, as [`Views::build`] made it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ClientView<'v> {
    /// Everything.
    All,
    /// The positions of the visible entities in the snapshot, ascending.
    At(&'v [u32]),
    /// The ids of the visible entities, each at position `slot_of[id]` of
    /// the snapshot: what a delta compares word by word with the client's
    /// baseline view.
    Ids { ids: &'v IdSet, slot_of: &'v [u32] },
}

impl ClientView<'_> {
    /// The positions of the visible entities (`None`: everything),
    /// ascending; for ids, written into `buf`.
    pub(crate) fn positions<'b>(&'b self, buf: &'b mut Vec<u32>) -> Option<&'b [u32]> {
        match *self {
            Self::All => None,
            Self::At(pos) => Some(pos),
            Self::Ids { ids, slot_of } => {
                buf.clear();
                // Ascending ids are ascending positions (a snapshot is
                // sorted by id).
                buf.extend(ids.iter().map(|id| slot_of[id.0 as usize]));
                Some(buf)
            }
        }
    }
}

/// Reusable buffers for the views of one room's clients.
#[derive(Debug, Default)]
pub(crate) struct Views {
    /// Positions of the entities one client sees.
    visible: Vec<u32>,
    /// Ids of the entities one client sees.
    ids: IdSet,
    /// The ids a game's spatial index names for one client.
    near: Vec<NetId>,
    /// One bit per position of the snapshot: the view being built.
    marks: Vec<u64>,
    /// The snapshot's position of each net id (`u32::MAX`: none), built once
    /// per tick when a game's index is used or a view is built as ids; empty
    /// when ids are too sparse for a table (then found by binary search).
    pos_by_id: Vec<u32>,
    pos_by_id_tick: Option<u32>,
}

impl Views {
    /// The entities of `entities` (the snapshot of `tick`, sorted by id)
    /// that `view` sees: as ids when `as_ids` and the ids are dense enough
    /// for a table (as a room's are), else as positions.
    pub(crate) fn build<G: Game>(
        &mut self,
        game: &G,
        world: &World<StateOf<G>>,
        view: &G::View,
        tick: u32,
        entities: &[(NetId, StateOf<G>)],
        as_ids: bool,
    ) -> ClientView<'_> {
        let Self {
            visible,
            ids,
            near,
            marks,
            pos_by_id,
            pos_by_id_tick,
        } = self;
        visible.clear();
        near.clear();
        let indexed = game.visible(world, view, near);
        if (indexed || as_ids) && *pos_by_id_tick != Some(tick) {
            *pos_by_id_tick = Some(tick);
            index_positions(entities, pos_by_id);
        }
        let can_see = |nid, s: &StateOf<G>| G::can_see(view, nid, s);
        if as_ids && !pos_by_id.is_empty() {
            ids.reset(NetId((pos_by_id.len() - 1) as u32));
            if indexed {
                mark(near, entities, pos_by_id, can_see, |_, nid| ids.insert(nid));
            } else {
                let mut ins = ids.inserter();
                for (nid, s) in entities {
                    if can_see(*nid, s) {
                        ins.insert(*nid);
                    }
                }
            }
            return ClientView::Ids {
                ids,
                slot_of: pos_by_id,
            };
        }
        if !indexed {
            visible.resize(entities.len(), 0);
            let mut n = 0;
            for (i, (nid, s)) in entities.iter().enumerate() {
                visible[n] = i as u32;
                n += usize::from(can_see(*nid, s));
            }
            visible.truncate(n);
            return ClientView::At(visible);
        }
        marks.clear();
        marks.resize(entities.len().div_ceil(64), 0);
        mark(near, entities, pos_by_id, can_see, |i, _| {
            marks[i / 64] |= 1 << (i % 64);
        });
        for (w, &word) in marks.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                visible.push((w * 64) as u32 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        ClientView::At(visible)
    }
}

/// Calls `keep` with the position and id of each candidate in `near` that
/// `can_see` accepts (a candidate named twice, twice). The table is a local
/// slice, so the loop keeps it in a register rather than reloading it
/// through the room per candidate (this loop runs once per client per
/// candidate: 15 % of the server's samples with 500 bots in one room).
fn mark<S>(
    near: &[NetId],
    entities: &[(NetId, S)],
    table: &[u32],
    can_see: impl Fn(NetId, &S) -> bool,
    mut keep: impl FnMut(usize, NetId),
) {
    let mut see = |i: usize, nid: NetId| {
        if can_see(nid, &entities[i].1) {
            keep(i, nid);
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
        mark(
            &near,
            entities,
            table,
            |id, ()| id.0 != hidden,
            |i, _| marks[i / 64] |= 1 << (i % 64),
        );
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
