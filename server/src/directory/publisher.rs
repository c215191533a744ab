//! The task that keeps a node's entry, and its rooms', in the directory:
//! every heartbeat interval (and at once when the node starts draining) it
//! registers the rooms it has not registered yet, removes the ones that
//! closed, and refreshes the node (addresses, capacity, load, state) and
//! its rooms (players, state) for the TTL. On stop it removes the node.
//!
//! It reads the rooms with one short lock ([`RoomsControl::snapshot`]) and
//! awaits only the directory, on its own task: a slow or absent directory
//! delays the next heartbeat, never a tick or a join.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Claim, Directory, DirectoryError, NodeInfo, RoomInfo, RoomState};
use crate::lifecycle::{NodeState, NodeStatus};
use crate::rooms::{OpenRoom, RoomsControl};

/// A node's publisher; [`Publisher::run`] is its task.
pub(crate) struct Publisher {
    pub(crate) directory: Arc<dyn Directory>,
    /// The node's id, addresses and capacity; load and state are filled in
    /// at each heartbeat.
    pub(crate) node: NodeInfo,
    pub(crate) interval: Duration,
    pub(crate) ttl: Duration,
    pub(crate) rooms: Arc<dyn RoomsControl>,
    pub(crate) status: NodeStatus,
}

/// What the publisher remembers between heartbeats.
#[derive(Default)]
struct Registered {
    /// Rooms this node holds in the directory.
    held: BTreeSet<String>,
    /// Rooms whose name another node holds (logged once each).
    conflicts: BTreeSet<String>,
    /// Whether the previous heartbeat failed (to log changes only).
    failing: bool,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Publisher {
    /// Heartbeats until `stop` turns true (or its sender is dropped), then
    /// removes the node from the directory.
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut every = tokio::time::interval(self.interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut state = self.status.subscribe();
        let mut seen = Registered::default();
        loop {
            tokio::select! {
                _ = every.tick() => {}
                // A new state (draining) goes out at once, so that nobody
                // keeps sending players here.
                changed = state.changed() => if changed.is_err() { break },
                changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
            }
            if *stop.borrow() {
                break;
            }
            // Bounded: a hung directory call cannot hold up the next one.
            let beat = tokio::time::timeout(self.interval.max(self.ttl / 2), self.beat(&mut seen));
            let result = match beat.await {
                Ok(r) => r,
                Err(_) => Err(DirectoryError::Unavailable {
                    backend: "directory",
                    reason: "heartbeat timed out".to_owned(),
                }),
            };
            match result {
                Ok(()) if seen.failing => {
                    seen.failing = false;
                    tracing::info!("room directory reachable again");
                }
                Ok(()) => {}
                Err(e) => {
                    if !seen.failing {
                        tracing::warn!(error = %e, "room directory heartbeat failed; rooms run on, retrying");
                    }
                    seen.failing = true;
                    // The directory may have lost our entries (a Redis
                    // restart): register every room again next time.
                    seen.held.clear();
                }
            }
        }
        let bye = tokio::time::timeout(self.interval, self.directory.remove_node(&self.node.id));
        match bye.await {
            Ok(Ok(())) => tracing::info!(node = %self.node.id, "left the room directory"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not leave the room directory; the TTL will")
            }
            Err(_) => tracing::warn!("leaving the room directory timed out; the TTL will"),
        }
    }

    /// One heartbeat.
    async fn beat(&self, seen: &mut Registered) -> Result<(), DirectoryError> {
        let snapshot = self.rooms.snapshot();
        let state = self.status.get();
        let room_state = if state == NodeState::Ready {
            RoomState::Open
        } else {
            RoomState::Closing
        };
        let open: BTreeSet<&str> = snapshot.iter().map(|r| r.name.as_str()).collect();
        // Closed rooms leave.
        let closed: Vec<String> = seen
            .held
            .iter()
            .filter(|n| !open.contains(n.as_str()))
            .cloned()
            .collect();
        for name in closed {
            self.directory.remove_room(&name, &self.node.id).await?;
            seen.held.remove(&name);
        }
        seen.conflicts.retain(|n| open.contains(n.as_str()));
        let mut infos = Vec::with_capacity(snapshot.len());
        for OpenRoom {
            name,
            players,
            capacity,
            mode,
        } in &snapshot
        {
            let info = RoomInfo::new(name.clone(), self.node.id.clone())
                .with_mode(&**mode)
                .with_players(count(*players))
                .with_capacity(count(*capacity))
                .with_state(room_state);
            if !seen.held.contains(name) && !seen.conflicts.contains(name) {
                match self.directory.create_room(&info, self.ttl).await? {
                    Claim::Created => {}
                    Claim::Taken { node } if node == self.node.id => {}
                    Claim::Taken { node } => {
                        tracing::warn!(room = %name, holder = %node, "room name held by another node; not registered");
                        seen.conflicts.insert(name.clone());
                        continue;
                    }
                }
                seen.held.insert(name.clone());
            }
            if seen.held.contains(name) {
                infos.push(info);
            }
        }
        let players: usize = snapshot.iter().map(|r| r.players).sum();
        let node = self
            .node
            .clone()
            .with_load(count(players), count(snapshot.len()))
            .with_state(state);
        self.directory.heartbeat(&node, &infos, self.ttl).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use futures_util::future::{BoxFuture, FutureExt as _};

    use super::*;
    use crate::directory::MemoryDirectory;

    /// A directory that can go down, and come back empty (a Redis restart
    /// that saved nothing).
    #[derive(Default)]
    struct Flaky {
        store: Mutex<Arc<MemoryDirectory>>,
        down: AtomicBool,
    }

    impl Flaky {
        fn store(&self) -> Arc<MemoryDirectory> {
            Arc::clone(&self.store.lock().unwrap())
        }
        fn call<'a, T: Send + 'a>(
            &'a self,
            f: impl FnOnce(Arc<MemoryDirectory>) -> BoxFuture<'a, Result<T, DirectoryError>> + Send + 'a,
        ) -> BoxFuture<'a, Result<T, DirectoryError>> {
            if self.down.load(Ordering::Relaxed) {
                return async {
                    Err(DirectoryError::Unavailable {
                        backend: "flaky",
                        reason: "down".into(),
                    })
                }
                .boxed();
            }
            f(self.store())
        }
    }

    impl Directory for Flaky {
        fn heartbeat<'a>(
            &'a self,
            node: &'a NodeInfo,
            rooms: &'a [RoomInfo],
            ttl: Duration,
        ) -> BoxFuture<'a, Result<(), DirectoryError>> {
            self.call(move |d| async move { d.heartbeat(node, rooms, ttl).await }.boxed())
        }
        fn remove_node<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), DirectoryError>> {
            self.call(move |d| async move { d.remove_node(id).await }.boxed())
        }
        fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeInfo>, DirectoryError>> {
            self.call(|d| async move { d.nodes().await }.boxed())
        }
        fn create_room<'a>(
            &'a self,
            room: &'a RoomInfo,
            ttl: Duration,
        ) -> BoxFuture<'a, Result<Claim, DirectoryError>> {
            self.call(move |d| async move { d.create_room(room, ttl).await }.boxed())
        }
        fn remove_room<'a>(
            &'a self,
            name: &'a str,
            node: &'a str,
        ) -> BoxFuture<'a, Result<bool, DirectoryError>> {
            self.call(move |d| async move { d.remove_room(name, node).await }.boxed())
        }
        fn room<'a>(
            &'a self,
            name: &'a str,
        ) -> BoxFuture<'a, Result<Option<RoomInfo>, DirectoryError>> {
            self.call(move |d| async move { d.room(name).await }.boxed())
        }
        fn rooms(&self) -> BoxFuture<'_, Result<Vec<RoomInfo>, DirectoryError>> {
            self.call(|d| async move { d.rooms().await }.boxed())
        }
    }

    /// Rooms that are whatever the test says.
    #[derive(Default)]
    struct Rooms(Mutex<Vec<OpenRoom>>);

    impl RoomsControl for Rooms {
        fn drain(&self) {}
        fn shutdown(&self, _: &str) {}
        fn open_rooms(&self) -> usize {
            self.0.lock().unwrap().len()
        }
        fn room_count(&self) -> watch::Receiver<usize> {
            watch::Sender::new(self.open_rooms()).subscribe()
        }
        fn snapshot(&self) -> Vec<OpenRoom> {
            self.0.lock().unwrap().clone()
        }
    }

    async fn listed(dir: &MemoryDirectory) -> (Vec<NodeInfo>, Vec<RoomInfo>) {
        (dir.nodes().await.unwrap(), dir.rooms().await.unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn it_rides_out_a_directory_outage_and_registers_again_after_it() {
        let dir = Arc::new(Flaky::default());
        let rooms = Arc::new(Rooms::default());
        *rooms.0.lock().unwrap() = vec![OpenRoom {
            name: "r1".into(),
            players: 2,
            capacity: 8,
            mode: Arc::from("m"),
        }];
        let status = NodeStatus::new();
        status.advance(NodeState::Ready);
        let publisher = Publisher {
            directory: Arc::clone(&dir) as Arc<dyn Directory>,
            node: NodeInfo::new("n").with_capacity(64),
            interval: Duration::from_secs(1),
            ttl: Duration::from_secs(5),
            rooms: Arc::clone(&rooms) as Arc<dyn RoomsControl>,
            status: status.clone(),
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(publisher.run(stopped));

        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (nodes, listed_rooms) = listed(&dir.store()).await;
        assert_eq!(
            nodes,
            [NodeInfo::new("n").with_capacity(64).with_load(2, 1)]
        );
        let r1 = RoomInfo::new("r1", "n")
            .with_mode("m")
            .with_players(2)
            .with_capacity(8);
        assert_eq!(listed_rooms, std::slice::from_ref(&r1));

        // Down for longer than the TTL, then back with nothing in it.
        dir.down.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(6)).await;
        *dir.store.lock().unwrap() = Arc::new(MemoryDirectory::new());
        dir.down.store(false, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (nodes, listed_rooms) = listed(&dir.store()).await;
        assert_eq!(nodes.len(), 1);
        assert_eq!(listed_rooms, [r1], "the room is registered again");

        // Draining shows at once; a closed room leaves.
        status.advance(NodeState::Draining);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let (nodes, listed_rooms) = listed(&dir.store()).await;
        assert_eq!(nodes[0].state, NodeState::Draining);
        assert_eq!(listed_rooms[0].state, RoomState::Closing);
        rooms.0.lock().unwrap().clear();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(dir.store().rooms().await.unwrap().is_empty());

        // Stopping removes the node.
        stop.send_replace(true);
        task.await.unwrap();
        assert!(dir.store().nodes().await.unwrap().is_empty());
    }
}
