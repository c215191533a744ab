//! Which entities of the newest snapshot changed since which tick, so that a
//! client's delta looks only at what changed since its baseline.
//!
//! When a snapshot is pushed, each entity's state is compared once with its
//! state in the snapshot pushed before (one merge walk by id): equal, it
//! keeps the tick of its last change; different or new, its last change is
//! this tick. The ids that changed after a baseline tick are then one set
//! per baseline per tick ([`ChangeTicks::changed_since`]), and a client's
//! delta is its view, its baseline view and that set compared word by word
//! (`shared::delta::write_delta_memo_words`): an entity that did not change
//! is never read for any client. That is one comparison per entity per tick
//! for the room, where each client's walk visited every entity of its view.

use tickwire_shared::idset::IdSet;
use tickwire_shared::{NetId, Snapshot};

/// The newest snapshot's ids and the tick of each entity's last change, by
/// position in that snapshot.
#[derive(Debug, Default)]
pub(crate) struct ChangeTicks {
    /// The tick of the snapshot recorded last.
    tick: Option<u32>,
    /// The snapshot's ids by position, copied while its states are read
    /// anyway: a changed set per baseline then reads 4 bytes per entity,
    /// not the entity's line.
    ids: Vec<NetId>,
    /// The tick of each entity's last change, by position.
    at: Vec<u32>,
    /// `at` of the snapshot before (reused buffer).
    before: Vec<u32>,
}

impl ChangeTicks {
    /// Records `cur`, pushed at `tick`, after `prev`: the tick and snapshot
    /// pushed just before it (`None`: none, so everything changed now). The
    /// ticks of `prev` are used only if it is the snapshot recorded last;
    /// otherwise everything counts as changed now.
    pub(crate) fn record<S: PartialEq>(
        &mut self,
        prev: Option<(u32, &Snapshot<S>)>,
        cur: &Snapshot<S>,
        tick: u32,
    ) {
        core::mem::swap(&mut self.at, &mut self.before);
        self.ids.clear();
        self.at.clear();
        let prev = match prev {
            Some((t, p)) if Some(t) == self.tick && p.len() == self.before.len() => p.as_slice(),
            _ => &[],
        };
        self.tick = Some(tick);
        let before = &self.before[..];
        let cur = cur.as_slice();
        self.ids.extend(cur.iter().map(|(id, _)| *id));
        self.at.resize(cur.len(), tick);
        let mut j = 0;
        for ((id, state), last) in cur.iter().zip(&mut self.at) {
            while prev.get(j).is_some_and(|(p, _)| p < id) {
                j += 1;
            }
            if let (Some((p, old)), Some(&t)) = (prev.get(j), before.get(j))
                && p == id
                && old == state
            {
                *last = t;
            }
        }
    }

    /// Whether the snapshot recorded last is the one of `tick`.
    pub(crate) fn is_for(&self, tick: u32) -> bool {
        self.tick == Some(tick)
    }

    /// Fills `set` with the ids of the newest snapshot whose state changed
    /// after `tick`: every other entity has the state it had at `tick`.
    pub(crate) fn changed_since(&self, tick: u32, set: &mut IdSet) {
        set.reset(self.ids.last().copied().unwrap_or(NetId(0)));
        let mut ins = set.inserter();
        for (&id, &at) in self.ids.iter().zip(&self.at) {
            if at > tick {
                ins.insert(id);
            }
        }
    }

    /// Forgets everything (the next snapshot counts as all changed).
    pub(crate) fn clear(&mut self) {
        self.tick = None;
        self.ids.clear();
        self.at.clear();
        self.before.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(entities: &[(u32, u8)]) -> Snapshot<u8> {
        Snapshot::from_vec(entities.iter().map(|&(id, s)| (NetId(id), s)).collect()).unwrap()
    }

    /// The tick of each entity's last change (by id), as `changed_since`
    /// reports it.
    fn last_changes(c: &ChangeTicks, upto: u32) -> Vec<(u32, u32)> {
        let mut last: Vec<(u32, u32)> = Vec::new();
        let mut set = IdSet::default();
        for t in (0..=upto).rev() {
            c.changed_since(t, &mut set);
            for id in set.iter() {
                if !last.iter().any(|(i, _)| *i == id.0) {
                    last.push((id.0, t + 1));
                }
            }
        }
        last.sort_unstable();
        last
    }

    #[test]
    fn an_entity_keeps_the_tick_of_its_last_change() {
        let mut c = ChangeTicks::default();
        let s1 = snap(&[(1, 10), (2, 20), (5, 50)]);
        c.record(None, &s1, 1);
        assert!(c.is_for(1));
        assert_eq!(last_changes(&c, 9), [(1, 1), (2, 1), (5, 1)]);
        // 2 changes, 5 leaves, 3 arrives, 1 stays.
        let s2 = snap(&[(1, 10), (2, 21), (3, 30)]);
        c.record(Some((1, &s1)), &s2, 2);
        assert_eq!(last_changes(&c, 9), [(1, 1), (2, 2), (3, 2)]);
        // Nothing changes: the ticks carry over.
        let s3 = snap(&[(1, 10), (2, 21), (3, 30)]);
        c.record(Some((2, &s2)), &s3, 3);
        assert_eq!(last_changes(&c, 9), [(1, 1), (2, 2), (3, 2)]);
        let mut set = IdSet::default();
        c.changed_since(1, &mut set);
        assert_eq!(set.iter().collect::<Vec<_>>(), [NetId(2), NetId(3)]);
        c.changed_since(2, &mut set);
        assert!(set.is_empty());
        // 2 leaves and 3 changes.
        let s4 = snap(&[(1, 10), (3, 31)]);
        c.record(Some((3, &s3)), &s4, 4);
        assert_eq!(last_changes(&c, 9), [(1, 1), (3, 4)]);
    }

    #[test]
    fn without_the_snapshot_recorded_last_everything_changed() {
        let mut c = ChangeTicks::default();
        let s1 = snap(&[(1, 10), (2, 20)]);
        c.record(None, &s1, 1);
        // The snapshot before is not the one recorded last (another tick):
        // its ticks are not used.
        c.record(Some((7, &s1)), &s1, 2);
        assert_eq!(last_changes(&c, 9), [(1, 2), (2, 2)]);
        // The right one: carried over.
        c.record(Some((2, &s1)), &s1, 3);
        assert_eq!(last_changes(&c, 9), [(1, 2), (2, 2)]);
        c.clear();
        assert!(!c.is_for(3));
        c.record(Some((3, &s1)), &s1, 4);
        assert_eq!(last_changes(&c, 9), [(1, 4), (2, 4)]);
    }
}
