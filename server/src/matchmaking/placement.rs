//! Where a player goes: pure functions over the directory's nodes and rooms
//! (and the seats this matchmaker handed out since the last heartbeats), so
//! that placement is tested without a network.
//!
//! * By mode: the least-loaded open room of that mode with space, on a
//!   ready node; else a new room on the least-loaded ready node.
//! * Load of a room: players / capacity; of a node: players / capacity.
//!   Ties go to the fewest players, then the smallest name, so the choice is
//!   deterministic.
//! * A node that is not `ready` (starting, draining) never gets a player
//!   that is not resuming, nor a new room.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::directory::{NodeInfo, RoomInfo, RoomState};
use crate::lifecycle::NodeState;

/// Seats handed out recently, not yet visible in the directory's counts
/// (which lag by up to a heartbeat). Counted for a window, then forgotten.
/// Per-room and per-node totals are kept as seats come and go, so reading
/// them costs the rooms and nodes with recent seats, not the seats.
#[derive(Debug)]
pub(crate) struct Pending {
    window: Duration,
    max: usize,
    inner: Mutex<PendingInner>,
}

#[derive(Debug, Default)]
struct PendingInner {
    seats: VecDeque<(Instant, String, String)>,
    counts: Counts,
}

impl PendingInner {
    fn pop_front(&mut self) {
        if let Some((_, room, node)) = self.seats.pop_front() {
            for (map, key) in [
                (&mut self.counts.rooms, room),
                (&mut self.counts.nodes, node),
            ] {
                if let std::collections::hash_map::Entry::Occupied(mut e) = map.entry(key) {
                    *e.get_mut() -= 1;
                    if *e.get() == 0 {
                        e.remove();
                    }
                }
            }
        }
    }
}

impl Pending {
    /// Remembers seats for `window` (two heartbeats is enough for the
    /// directory to count them), at most `max` at once (the oldest go first).
    pub(crate) fn new(window: Duration, max: usize) -> Self {
        Self {
            window,
            max,
            inner: Mutex::new(PendingInner::default()),
        }
    }

    /// The seats, without those older than the window.
    fn current(&self, now: Instant) -> std::sync::MutexGuard<'_, PendingInner> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while inner
            .seats
            .front()
            .is_some_and(|(at, _, _)| now.saturating_duration_since(*at) >= self.window)
        {
            inner.pop_front();
        }
        inner
    }

    /// Records a seat in `room` on `node`.
    pub(crate) fn add(&self, now: Instant, room: &str, node: &str) {
        let mut inner = self.current(now);
        if inner.seats.len() >= self.max {
            inner.pop_front();
        }
        inner
            .seats
            .push_back((now, room.to_owned(), node.to_owned()));
        *inner.counts.rooms.entry(room.to_owned()).or_default() += 1;
        *inner.counts.nodes.entry(node.to_owned()).or_default() += 1;
    }

    /// Recent seats per room and per node.
    pub(crate) fn counts(&self, now: Instant) -> Counts {
        self.current(now).counts.clone()
    }
}

/// Seats handed out recently, per room and per node.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counts {
    rooms: std::collections::HashMap<String, u32>,
    nodes: std::collections::HashMap<String, u32>,
}

impl Counts {
    fn room(&self, name: &str) -> u32 {
        self.rooms.get(name).copied().unwrap_or(0)
    }
    fn node(&self, id: &str) -> u32 {
        self.nodes.get(id).copied().unwrap_or(0)
    }
}

/// Whether a node takes new players and rooms.
pub(crate) fn takes_players(node: &NodeInfo) -> bool {
    node.state == NodeState::Ready && node.wss_url.is_some() && node.capacity > 0
}

/// Players (with recent seats) of `node`, if it has space for one more.
fn node_players(node: &NodeInfo, counts: &Counts) -> Option<u32> {
    let players = node.players.saturating_add(counts.node(&node.id));
    (players < node.capacity).then_some(players)
}

/// The ready node with the smallest share of its capacity in use (and space
/// left).
pub(crate) fn least_loaded_node<'a>(
    nodes: &'a [NodeInfo],
    counts: &Counts,
) -> Option<&'a NodeInfo> {
    nodes
        .iter()
        .filter(|n| takes_players(n))
        .filter_map(|n| node_players(n, counts).map(|p| (n, p)))
        .min_by(|(a, pa), (b, pb)| {
            // pa / a.capacity < pb / b.capacity, without floats.
            let la = u64::from(*pa) * u64::from(b.capacity);
            let lb = u64::from(*pb) * u64::from(a.capacity);
            la.cmp(&lb).then(pa.cmp(pb)).then(a.id.cmp(&b.id))
        })
        .map(|(n, _)| n)
}

/// Where a player of a mode goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placement<'a> {
    /// An open room with space.
    Room(&'a RoomInfo, &'a NodeInfo),
    /// A new room on this node.
    NewRoom(&'a NodeInfo),
    /// Every room and node is full (or none is ready).
    NoCapacity,
}

/// The capacity of `room`, or `default` while its node has not reported it.
pub(crate) fn room_capacity(room: &RoomInfo, default: u32) -> u32 {
    if room.capacity == 0 {
        default
    } else {
        room.capacity
    }
}

/// Whether `room` has space for one more (counting recent seats).
pub(crate) fn room_has_space(room: &RoomInfo, counts: &Counts, default_capacity: u32) -> bool {
    room.players.saturating_add(counts.room(&room.name)) < room_capacity(room, default_capacity)
}

/// The least-loaded open room of `mode` with space on a ready node with
/// space; else a new room on the least-loaded ready node.
pub(crate) fn by_mode<'a>(
    nodes: &'a [NodeInfo],
    rooms: &'a [RoomInfo],
    mode: &str,
    counts: &Counts,
    default_capacity: u32,
) -> Placement<'a> {
    let best = rooms
        .iter()
        .filter(|r| r.mode == mode && r.state == RoomState::Open)
        .filter(|r| room_has_space(r, counts, default_capacity))
        .filter_map(|r| {
            let node = nodes.iter().find(|n| n.id == r.node)?;
            (takes_players(node) && node_players(node, counts).is_some()).then_some((r, node))
        })
        .min_by(|(a, _), (b, _)| {
            let (pa, ca) = (
                a.players.saturating_add(counts.room(&a.name)),
                room_capacity(a, default_capacity),
            );
            let (pb, cb) = (
                b.players.saturating_add(counts.room(&b.name)),
                room_capacity(b, default_capacity),
            );
            (u64::from(pa) * u64::from(cb))
                .cmp(&(u64::from(pb) * u64::from(ca)))
                .then(pa.cmp(&pb))
                .then(a.name.cmp(&b.name))
        });
    if let Some((room, node)) = best {
        return Placement::Room(room, node);
    }
    match least_loaded_node(nodes, counts) {
        Some(node) => Placement::NewRoom(node),
        None => Placement::NoCapacity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, players: u32, capacity: u32) -> NodeInfo {
        NodeInfo::new(id)
            .with_wss_url(format!("wss://{id}/ws"))
            .with_capacity(capacity)
            .with_load(players, 0)
    }

    fn room(name: &str, node: &str, players: u32) -> RoomInfo {
        RoomInfo::new(name, node)
            .with_mode("ffa")
            .with_players(players)
            .with_capacity(4)
    }

    #[test]
    fn the_least_loaded_room_with_space_wins() {
        let nodes = [node("a", 5, 100), node("b", 1, 100)];
        let rooms = [room("r1", "a", 3), room("r2", "a", 2), room("r3", "b", 4)];
        let c = Counts::default();
        assert_eq!(
            by_mode(&nodes, &rooms, "ffa", &c, 4),
            Placement::Room(&rooms[1], &nodes[0])
        );
        // Another mode has no room: a new one on the least-loaded node.
        assert_eq!(
            by_mode(&nodes, &rooms, "duel", &c, 4),
            Placement::NewRoom(&nodes[1])
        );
    }

    #[test]
    fn recent_seats_count_until_the_directory_does() {
        let nodes = [node("a", 0, 100), node("b", 0, 100)];
        let rooms = [room("r1", "a", 2), room("r2", "b", 3)];
        let pending = Pending::new(Duration::from_secs(4), 100);
        let t0 = Instant::now();
        pending.add(t0, "r1", "a");
        pending.add(t0, "r1", "a");
        // r1 now counts 4 of 4: full.
        let c = pending.counts(t0);
        assert_eq!(
            by_mode(&nodes, &rooms, "ffa", &c, 4),
            Placement::Room(&rooms[1], &nodes[1])
        );
        // After the window they no longer count.
        let later = pending.counts(t0 + Duration::from_secs(4));
        assert_eq!(
            by_mode(&nodes, &rooms, "ffa", &later, 4),
            Placement::Room(&rooms[0], &nodes[0])
        );
    }

    #[test]
    fn draining_starting_and_full_nodes_get_nothing() {
        let nodes = [
            node("a", 0, 100).with_state(NodeState::Draining),
            node("b", 0, 100).with_state(NodeState::Starting),
            node("c", 10, 10),
            node("d", 90, 100),
        ];
        let rooms = [room("r1", "a", 0), room("r2", "b", 0), room("r3", "c", 0)];
        let c = Counts::default();
        assert_eq!(
            by_mode(&nodes, &rooms, "ffa", &c, 4),
            Placement::NewRoom(&nodes[3])
        );
        assert_eq!(
            by_mode(&nodes[..3], &rooms, "ffa", &c, 4),
            Placement::NoCapacity
        );
        // A closing room (its node drains) is never picked.
        let closing = [room("r4", "d", 0).with_state(RoomState::Closing)];
        assert_eq!(
            by_mode(&nodes, &closing, "ffa", &c, 4),
            Placement::NewRoom(&nodes[3])
        );
    }

    #[test]
    fn node_load_is_relative_to_capacity() {
        let nodes = [node("a", 10, 100), node("b", 3, 10), node("c", 10, 100)];
        let c = Counts::default();
        assert_eq!(
            least_loaded_node(&nodes, &c).map(|n| n.id.as_str()),
            Some("a")
        );
        let pending = Pending::new(Duration::from_secs(4), 2);
        let t0 = Instant::now();
        for _ in 0..3 {
            pending.add(t0, "x", "a");
        }
        // At most 2 remembered: a counts 12, c 10.
        assert_eq!(
            least_loaded_node(&nodes, &pending.counts(t0)).map(|n| n.id.as_str()),
            Some("c")
        );
    }
}
