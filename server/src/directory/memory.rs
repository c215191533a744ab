//! [`MemoryDirectory`]: the directory of a single process, the embedded
//! default (`cargo xtask play` needs nothing else).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt as _};
use tokio::time::Instant;

use super::{Claim, Directory, DirectoryError, NodeInfo, RoomInfo, check_name};

/// A [`Directory`] in this process's memory, with the same semantics as the
/// Redis one (TTLs, atomic room creation), on tokio's clock (so tests may
/// pause it). Cheap: every call takes one lock and never waits.
///
/// ```
/// use std::time::Duration;
/// use tickwire_server::directory::{Directory, MemoryDirectory, NodeInfo};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = MemoryDirectory::new();
/// dir.heartbeat(&NodeInfo::new("solo"), &[], Duration::from_secs(5)).await?;
/// assert_eq!(dir.nodes().await?[0].id, "solo");
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct MemoryDirectory {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    nodes: HashMap<String, (NodeInfo, Instant)>,
    rooms: HashMap<String, (RoomInfo, Instant)>,
}

impl Inner {
    /// Drops every entry whose time is up.
    fn expire(&mut self, now: Instant) {
        self.nodes.retain(|_, (_, until)| *until > now);
        self.rooms.retain(|_, (_, until)| *until > now);
    }
}

impl MemoryDirectory {
    /// An empty directory.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The entries, with the expired ones dropped.
    fn live(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.expire(Instant::now());
        inner
    }

    fn heartbeat_now(
        &self,
        node: &NodeInfo,
        rooms: &[RoomInfo],
        ttl: Duration,
    ) -> Result<(), DirectoryError> {
        check_name(&node.id)?;
        let until = Instant::now() + ttl;
        let mut inner = self.live();
        inner.nodes.insert(node.id.clone(), (node.clone(), until));
        for room in rooms {
            if let Some((held, held_until)) = inner.rooms.get_mut(&room.name)
                && held.node == node.id
                && room.node == node.id
            {
                *held = room.clone();
                *held_until = until;
            }
        }
        Ok(())
    }

    fn create_now(&self, room: &RoomInfo, ttl: Duration) -> Result<Claim, DirectoryError> {
        check_name(&room.name)?;
        check_name(&room.node)?;
        let until = Instant::now() + ttl;
        let mut inner = self.live();
        if let Some((held, _)) = inner.rooms.get(&room.name) {
            return Ok(Claim::Taken {
                node: held.node.clone(),
            });
        }
        inner.rooms.insert(room.name.clone(), (room.clone(), until));
        Ok(Claim::Created)
    }
}

impl Directory for MemoryDirectory {
    fn heartbeat<'a>(
        &'a self,
        node: &'a NodeInfo,
        rooms: &'a [RoomInfo],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), DirectoryError>> {
        let result = self.heartbeat_now(node, rooms, ttl);
        async move { result }.boxed()
    }

    fn remove_node<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), DirectoryError>> {
        let mut inner = self.live();
        inner.nodes.remove(id);
        inner.rooms.retain(|_, (room, _)| room.node != id);
        drop(inner);
        async { Ok(()) }.boxed()
    }

    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeInfo>, DirectoryError>> {
        let mut nodes: Vec<NodeInfo> = self.live().nodes.values().map(|(n, _)| n.clone()).collect();
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        async move { Ok(nodes) }.boxed()
    }

    fn create_room<'a>(
        &'a self,
        room: &'a RoomInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Claim, DirectoryError>> {
        let result = self.create_now(room, ttl);
        async move { result }.boxed()
    }

    fn remove_room<'a>(
        &'a self,
        name: &'a str,
        node: &'a str,
    ) -> BoxFuture<'a, Result<bool, DirectoryError>> {
        let mut inner = self.live();
        let owned = inner.rooms.get(name).is_some_and(|(r, _)| r.node == node);
        if owned {
            inner.rooms.remove(name);
        }
        drop(inner);
        async move { Ok(owned) }.boxed()
    }

    fn room<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<RoomInfo>, DirectoryError>> {
        let room = self.live().rooms.get(name).map(|(r, _)| r.clone());
        async move { Ok(room) }.boxed()
    }

    fn rooms(&self) -> BoxFuture<'_, Result<Vec<RoomInfo>, DirectoryError>> {
        let mut rooms: Vec<RoomInfo> = self.live().rooms.values().map(|(r, _)| r.clone()).collect();
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        async move { Ok(rooms) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::directory::RoomState;

    const TTL: Duration = Duration::from_secs(3);

    #[tokio::test(start_paused = true)]
    async fn entries_live_for_their_ttl_unless_refreshed() {
        let dir = MemoryDirectory::new();
        let a = NodeInfo::new("a").with_capacity(10);
        let b = NodeInfo::new("b");
        dir.heartbeat(&a, &[], TTL).await.unwrap();
        dir.heartbeat(&b, &[], TTL).await.unwrap();
        let room = RoomInfo::new("r", "a").with_capacity(4);
        assert_eq!(dir.create_room(&room, TTL).await.unwrap(), Claim::Created);
        // `a` keeps beating (with a new player count); `b` stops.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let a = a.clone().with_load(1, 1);
            let room = room.clone().with_players(1);
            dir.heartbeat(&a, std::slice::from_ref(&room), TTL)
                .await
                .unwrap();
        }
        let nodes = dir.nodes().await.unwrap();
        assert_eq!(nodes.len(), 1, "{nodes:?}");
        assert_eq!(nodes[0].id, "a");
        assert_eq!(nodes[0].players, 1);
        assert_eq!(dir.room("r").await.unwrap().map(|r| r.players), Some(1));
        // `a` stops too: its node and its room go within the TTL.
        tokio::time::sleep(TTL).await;
        assert!(dir.nodes().await.unwrap().is_empty());
        assert!(dir.rooms().await.unwrap().is_empty());
        // The name is free again.
        let again = RoomInfo::new("r", "b");
        assert_eq!(dir.create_room(&again, TTL).await.unwrap(), Claim::Created);
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_owner_refreshes_or_removes_a_room() {
        let dir = MemoryDirectory::new();
        let mine = RoomInfo::new("r", "a");
        dir.create_room(&mine, TTL).await.unwrap();
        let theirs = RoomInfo::new("r", "b")
            .with_players(9)
            .with_state(RoomState::Closing);
        dir.heartbeat(&NodeInfo::new("b"), std::slice::from_ref(&theirs), TTL)
            .await
            .unwrap();
        assert_eq!(dir.room("r").await.unwrap(), Some(mine.clone()));
        assert!(!dir.remove_room("r", "b").await.unwrap());
        assert!(dir.remove_room("r", "a").await.unwrap());
        assert_eq!(dir.room("r").await.unwrap(), None);
        // A node's clean stop removes its rooms.
        dir.create_room(&mine, TTL).await.unwrap();
        dir.create_room(&RoomInfo::new("s", "b"), TTL)
            .await
            .unwrap();
        dir.remove_node("a").await.unwrap();
        let names: Vec<_> = dir
            .rooms()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["s"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_many_racing_creators_exactly_one_wins() {
        let dir = Arc::new(MemoryDirectory::new());
        let mut tasks = Vec::new();
        for i in 0..16 {
            let dir = Arc::clone(&dir);
            tasks.push(tokio::spawn(async move {
                let room = RoomInfo::new("contested", format!("node-{i}"));
                dir.create_room(&room, TTL).await
            }));
        }
        let mut winners = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            if t.await.unwrap().unwrap() == Claim::Created {
                winners.push(format!("node-{i}"));
            }
        }
        assert_eq!(winners.len(), 1, "{winners:?}");
        let held = dir.room("contested").await.unwrap().unwrap();
        assert_eq!(held.node, winners[0]);
    }

    #[tokio::test]
    async fn bad_names_are_typed_errors() {
        let dir = MemoryDirectory::new();
        let err = dir.create_room(&RoomInfo::new("", "a"), TTL).await;
        assert!(matches!(err, Err(DirectoryError::InvalidName { .. })));
        let err = dir.heartbeat(&NodeInfo::new(""), &[], TTL).await;
        assert!(matches!(err, Err(DirectoryError::InvalidName { .. })));
    }
}
