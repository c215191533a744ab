//! The entity store: slotmap keys for the game, small stable [`NetId`]s for the wire.

use std::collections::VecDeque;

use slotmap::{SlotMap, new_key_type};
use tickwire_shared::NetId;

new_key_type! {
    /// A generational handle to an entity, for game code. A stale key (of a
    /// despawned entity) never finds a newer entity.
    pub struct EntityKey;
}

#[derive(Debug)]
struct Entry<S> {
    id: NetId,
    state: S,
}

/// The entities of one room.
///
/// Each entity has a game-facing [`EntityKey`] and a [`NetId`] that clients
/// see. Network ids are small (reused), but an id is only reused after
/// `reuse_after_ticks` ticks, longer than any baseline a client can still
/// hold, so no client ever mistakes a new entity for an old one.
///
/// ```
/// use tickwire_server::world::World;
/// let mut world = World::new(64);
/// let key = world.spawn(0, "hello".to_string());
/// assert_eq!(world.get(key).map(String::as_str), Some("hello"));
/// *world.get_mut(key).unwrap() = "bye".into();
/// world.despawn(0, key);
/// assert!(world.get(key).is_none());
/// ```
#[derive(Debug)]
pub struct World<S> {
    entities: SlotMap<EntityKey, Entry<S>>,
    /// `by_id[n]` is the key of the entity with `NetId(n)`.
    by_id: Vec<Option<EntityKey>>,
    /// Released ids with the tick they were released at, oldest first.
    released: VecDeque<(u32, NetId)>,
    reuse_after_ticks: u32,
}

impl<S> World<S> {
    /// An empty world whose network ids are reused only after
    /// `reuse_after_ticks` ticks.
    #[must_use]
    pub fn new(reuse_after_ticks: u32) -> Self {
        Self {
            entities: SlotMap::with_key(),
            // Id 0 is never used, so ids start at 1.
            by_id: vec![None],
            released: VecDeque::new(),
            reuse_after_ticks,
        }
    }

    /// Spawns an entity at tick `tick`.
    pub fn spawn(&mut self, tick: u32, state: S) -> EntityKey {
        let id = match self.released.front() {
            Some(&(at, id)) if tick.wrapping_sub(at) > self.reuse_after_ticks => {
                self.released.pop_front();
                id
            }
            _ => {
                let n = u32::try_from(self.by_id.len()).unwrap_or(u32::MAX);
                self.by_id.push(None);
                NetId(n)
            }
        };
        let key = self.entities.insert(Entry { id, state });
        self.by_id[id.0 as usize] = Some(key);
        key
    }

    /// Despawns an entity at tick `tick`; returns its state.
    pub fn despawn(&mut self, tick: u32, key: EntityKey) -> Option<S> {
        let entry = self.entities.remove(key)?;
        self.by_id[entry.id.0 as usize] = None;
        self.released.push_back((tick, entry.id));
        Some(entry.state)
    }

    /// The state of an entity.
    #[must_use]
    pub fn get(&self, key: EntityKey) -> Option<&S> {
        self.entities.get(key).map(|e| &e.state)
    }

    /// The state of an entity, mutably.
    pub fn get_mut(&mut self, key: EntityKey) -> Option<&mut S> {
        self.entities.get_mut(key).map(|e| &mut e.state)
    }

    /// The network id of an entity.
    #[must_use]
    pub fn net_id(&self, key: EntityKey) -> Option<NetId> {
        self.entities.get(key).map(|e| e.id)
    }

    /// The key of the entity with network id `id`.
    #[must_use]
    pub fn key_of(&self, id: NetId) -> Option<EntityKey> {
        self.by_id.get(id.0 as usize).copied().flatten()
    }

    /// Number of entities.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// True when empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// All entities, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (EntityKey, &S)> + '_ {
        self.entities.iter().map(|(k, e)| (k, &e.state))
    }

    /// All entities, mutably, in no particular order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (EntityKey, &mut S)> + '_ {
        self.entities.iter_mut().map(|(k, e)| (k, &mut e.state))
    }

    /// All entities in ascending network id order (the wire order).
    pub fn iter_by_net_id(&self) -> impl Iterator<Item = (NetId, &S)> + '_ {
        self.by_id.iter().enumerate().filter_map(move |(n, key)| {
            let key = (*key)?;
            Some((NetId(n as u32), &self.entities[key].state))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_not_reused_until_the_quarantine_passed() {
        let mut w = World::new(10);
        let a = w.spawn(0, 'a');
        let id_a = w.net_id(a).unwrap();
        assert_eq!(id_a, NetId(1));
        w.despawn(5, a);
        let b = w.spawn(15, 'b');
        assert_ne!(w.net_id(b), Some(id_a), "reused within the quarantine");
        let c = w.spawn(16, 'c');
        assert_eq!(w.net_id(c), Some(id_a), "reused after the quarantine");
        assert!(
            w.get(a).is_none(),
            "a stale key must not find the new entity"
        );
        assert_eq!(w.key_of(id_a), Some(c));
    }

    #[test]
    fn iteration_by_net_id_is_sorted() {
        let mut w = World::new(0);
        let keys: Vec<_> = (0..5).map(|i| w.spawn(0, i)).collect();
        w.despawn(0, keys[1]);
        w.spawn(2, 9);
        let ids: Vec<_> = w.iter_by_net_id().map(|(id, _)| id.0).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
    }
}
