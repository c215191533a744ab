//! The client world's index from entity ids to slots: a vector sorted by
//! id. Lookups are a binary search, or, for the increasing ids of a
//! snapshot section, a cursor whose search is bounded by the id gap (one
//! load when ids are dense); iteration is in id order with no
//! pointer chasing; new ids are merged in one pass from the back (a first
//! snapshot costs one move per entity and no allocation per entity), and
//! removed ids leave in one pass.

use crate::snapshot::NetId;

/// Entity id → slot, sorted by id, ids unique.
#[derive(Debug, Clone, Default)]
pub(super) struct Index {
    entries: Vec<(NetId, u32)>,
}

/// Up to this many removals are done one by one (a binary search and a
/// move of the tail each); more are done in one pass over the index.
const REMOVE_ONE_BY_ONE: usize = 8;

impl Index {
    pub(super) fn get(&self, id: NetId) -> Option<u32> {
        self.entries
            .binary_search_by_key(&id, |e| e.0)
            .ok()
            .map(|i| self.entries[i].1)
    }

    /// Looks up `id` at or after position `*from` and leaves `*from` at the
    /// first entry not below `id`: for a run of strictly increasing ids (a
    /// snapshot section), start at 0 and pass the same cursor each time.
    ///
    /// Ids are unique integers in increasing order, so `id` is at most
    /// `id − first` entries past the entry `first` at the cursor: in a
    /// world whose ids are dense (as servers hand them out) the entry at
    /// that bound is `id` itself, one load instead of a search; otherwise
    /// only the entries up to the bound are searched.
    #[inline]
    pub(super) fn seek(&self, id: NetId, from: &mut usize) -> Option<u32> {
        let e = &self.entries;
        let start = (*from).min(e.len());
        debug_assert!(start == 0 || e[start - 1].0 < id, "ids must increase");
        let first = e.get(start)?.0;
        if id <= first {
            *from = start;
            return (id == first).then(|| e[start].1);
        }
        let span = usize::try_from(id.0 - first.0).unwrap_or(usize::MAX);
        let bound = e.len().min(start.saturating_add(span).saturating_add(1));
        let i = if e[bound - 1].0 == id {
            bound - 1
        } else {
            start + e[start..bound].partition_point(|x| x.0 < id)
        };
        *from = i;
        e.get(i).filter(|x| x.0 == id).map(|x| x.1)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (NetId, u32)> + '_ {
        self.entries.iter().copied()
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.entries.clear();
    }

    /// Adds `fresh` (sorted by id, none of them indexed yet) and empties
    /// it. Costs the entries after the first new id, plus `fresh`.
    pub(super) fn insert_sorted(&mut self, fresh: &mut Vec<(NetId, u32)>) {
        debug_assert!(fresh.windows(2).all(|w| w[0].0 < w[1].0));
        if fresh.is_empty() {
            return;
        }
        if self.entries.is_empty() {
            core::mem::swap(&mut self.entries, fresh);
            fresh.clear();
            return;
        }
        let (old, k) = (self.entries.len(), fresh.len());
        self.entries.resize(old + k, (NetId(0), 0));
        // Merge from the back: `i` old entries and `j` fresh ones remain.
        let (mut i, mut j) = (old, k);
        while j > 0 {
            let w = i + j - 1;
            if i > 0 && self.entries[i - 1].0 > fresh[j - 1].0 {
                self.entries[w] = self.entries[i - 1];
                i -= 1;
            } else {
                debug_assert!(i == 0 || self.entries[i - 1].0 != fresh[j - 1].0);
                self.entries[w] = fresh[j - 1];
                j -= 1;
            }
        }
        fresh.clear();
    }

    /// Removes the ids in `gone` (each indexed once) and empties it.
    pub(super) fn remove_all(&mut self, gone: &mut Vec<NetId>) {
        if gone.len() <= REMOVE_ONE_BY_ONE {
            for id in gone.drain(..) {
                if let Ok(i) = self.entries.binary_search_by_key(&id, |e| e.0) {
                    self.entries.remove(i);
                }
            }
        } else {
            gone.sort_unstable();
            self.entries
                .retain(|(id, _)| gone.binary_search(id).is_err());
            gone.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(index: &Index) -> Vec<u32> {
        index.iter().map(|(id, _)| id.0).collect()
    }

    #[test]
    fn merges_keep_the_order_and_removals_any_count() {
        let mut index = Index::default();
        let mut fresh: Vec<_> = [3, 5, 9].iter().map(|&i| (NetId(i), i * 10)).collect();
        index.insert_sorted(&mut fresh);
        assert!(fresh.is_empty());
        let mut fresh: Vec<_> = [1, 4, 10, 11].iter().map(|&i| (NetId(i), i * 10)).collect();
        index.insert_sorted(&mut fresh);
        assert_eq!(ids(&index), [1, 3, 4, 5, 9, 10, 11]);
        assert_eq!(index.get(NetId(4)), Some(40));
        assert_eq!(index.get(NetId(2)), None);
        let mut gone = vec![NetId(4), NetId(1)];
        index.remove_all(&mut gone);
        assert!(gone.is_empty());
        assert_eq!(ids(&index), [3, 5, 9, 10, 11]);
        let mut fresh: Vec<_> = (20..40).map(|i| (NetId(i), i)).collect();
        index.insert_sorted(&mut fresh);
        let mut gone: Vec<_> = (20..40).rev().step_by(2).map(NetId).collect();
        gone.push(NetId(3));
        index.remove_all(&mut gone);
        let mut want = vec![5, 9, 10, 11];
        want.extend((20..40).step_by(2));
        assert_eq!(ids(&index), want);
        assert_eq!(index.get(NetId(20)), Some(20));
        assert_eq!(index.get(NetId(21)), None);
        assert_eq!(index.len(), want.len());
    }

    #[test]
    fn seeking_increasing_ids_finds_what_get_finds() {
        let mut index = Index::default();
        // Dense ids 1..=100 (found at the bound), then every third id from
        // 103 (searched), then one far id.
        let ids = (1..=100).chain((103..400).step_by(3)).chain([5_000]);
        let mut fresh: Vec<_> = ids.zip(0..).map(|(id, slot)| (NetId(id), slot)).collect();
        index.insert_sorted(&mut fresh);
        let n = index.len();
        // Near ids, far ones, misses, past the end.
        for step in [1, 2, 5, 40, 97, 700] {
            let mut at = 0;
            for id in (0..650).step_by(step).chain([5_000, 6_000]) {
                assert_eq!(index.seek(NetId(id), &mut at), index.get(NetId(id)), "{id}");
            }
        }
        assert_eq!(index.get(NetId(5_000)), Some(n as u32 - 1));
        let mut at = 0;
        assert_eq!(index.seek(NetId(4_000), &mut at), None);
        assert_eq!(at, n - 1);
        assert_eq!(Index::default().seek(NetId(1), &mut 0), None);
    }
}
