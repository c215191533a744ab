//! The room directory: the fleet's shared view of which nodes are up, how
//! loaded they are, and which node holds which room.
//!
//! ```text
//!  node A ── heartbeat(node, rooms, ttl) ──▶ ┌───────────────────────────┐ ◀── nodes() / rooms() ── matchmaking
//!  node B ── create_room(room, ttl) ───────▶ │ Directory                 │
//!            (atomic: one node wins a name)  │  MemoryDirectory (default)│
//!                                            │  RedisDirectory (a fleet) │
//!                                            └───────────────────────────┘
//! ```
//!
//! Every entry has a time to live: a node's entry, and the entries of the
//! rooms it holds, vanish unless its heartbeat refreshes them, so a node
//! that dies (even `kill -9`) leaves the directory within its TTL.
//!
//! A directory is only ever called from tasks of its own (a node's
//! heartbeat task, a join that claims a room name), never from a room's
//! tick: a slow or absent Redis delays those, not the game. Every failure is
//! a typed [`DirectoryError`], never a panic.
//!
//! ```
//! use std::time::Duration;
//! use tickwire_server::directory::{Claim, Directory, MemoryDirectory, NodeInfo, RoomInfo};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = MemoryDirectory::new();
//! let ttl = Duration::from_secs(10);
//! let node = NodeInfo::new("node-a").with_wss_url("wss://a.example:8443/ws").with_capacity(256);
//! dir.heartbeat(&node, &[], ttl).await?;
//! let room = RoomInfo::new("lobby", "node-a").with_mode("ffa").with_capacity(16);
//! assert_eq!(dir.create_room(&room, ttl).await?, Claim::Created);
//! // Another node asking for the same name learns who holds it.
//! let theirs = RoomInfo::new("lobby", "node-b");
//! assert_eq!(dir.create_room(&theirs, ttl).await?, Claim::Taken { node: "node-a".into() });
//! assert_eq!(dir.rooms().await?.len(), 1);
//! # Ok(()) }
//! ```

use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::lifecycle::NodeState;

pub mod memory;
pub(crate) mod publisher;
pub mod redis;

pub use memory::MemoryDirectory;
pub use redis::{RedisDirectory, RedisDirectoryConfig};

/// A node of the fleet, as it registers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeInfo {
    /// Unique in the fleet (a pod name, a host name).
    pub id: String,
    /// The public WebSocket URL clients use (`wss://host:port/ws`), if any.
    pub wss_url: Option<String>,
    /// The public QUIC address clients use (`quic://host:port`), if any.
    pub quic_url: Option<String>,
    /// Players the node takes at most.
    pub capacity: u32,
    /// Players on the node now (its load).
    pub players: u32,
    /// Rooms open on the node now.
    pub rooms: u32,
    /// The node's lifecycle state.
    pub state: NodeState,
}

impl NodeInfo {
    /// A ready node with no address, no capacity and no load.
    #[must_use]
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            wss_url: None,
            quic_url: None,
            capacity: 0,
            players: 0,
            rooms: 0,
            state: NodeState::Ready,
        }
    }

    /// Sets [`NodeInfo::wss_url`].
    #[must_use]
    pub fn with_wss_url(mut self, url: impl Into<String>) -> Self {
        self.wss_url = Some(url.into());
        self
    }

    /// Sets [`NodeInfo::quic_url`].
    #[must_use]
    pub fn with_quic_url(mut self, url: impl Into<String>) -> Self {
        self.quic_url = Some(url.into());
        self
    }

    /// Sets [`NodeInfo::capacity`].
    #[must_use]
    pub fn with_capacity(mut self, players: u32) -> Self {
        self.capacity = players;
        self
    }

    /// Sets [`NodeInfo::players`] and [`NodeInfo::rooms`].
    #[must_use]
    pub fn with_load(mut self, players: u32, rooms: u32) -> Self {
        self.players = players;
        self.rooms = rooms;
        self
    }

    /// Sets [`NodeInfo::state`].
    #[must_use]
    pub fn with_state(mut self, state: NodeState) -> Self {
        self.state = state;
        self
    }
}

/// Whether a room takes players.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RoomState {
    /// Running and taking players (while it has space).
    Open,
    /// Running, but taking no new players (its node drains).
    Closing,
}

impl RoomState {
    /// The lower-case name, as stored.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closing => "closing",
        }
    }

    /// The state named `s` ([`RoomState::as_str`]).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "closing" => Some(Self::Closing),
            _ => None,
        }
    }
}

/// A room of the fleet, as its node registers it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomInfo {
    /// The room's name, unique in the fleet.
    pub name: String,
    /// The game mode (free text; matchmaking by mode compares it exactly).
    pub mode: String,
    /// Players in the room now.
    pub players: u32,
    /// Players the room takes at most.
    pub capacity: u32,
    /// The id of the node that holds the room.
    pub node: String,
    /// Whether it takes players.
    pub state: RoomState,
}

impl RoomInfo {
    /// An open, empty room `name` held by `node`, with no mode and no
    /// capacity.
    #[must_use]
    pub fn new(name: impl Into<String>, node: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            mode: String::new(),
            players: 0,
            capacity: 0,
            node: node.into(),
            state: RoomState::Open,
        }
    }

    /// Sets [`RoomInfo::mode`].
    #[must_use]
    pub fn with_mode(mut self, mode: impl Into<String>) -> Self {
        self.mode = mode.into();
        self
    }

    /// Sets [`RoomInfo::capacity`].
    #[must_use]
    pub fn with_capacity(mut self, players: u32) -> Self {
        self.capacity = players;
        self
    }

    /// Sets [`RoomInfo::players`].
    #[must_use]
    pub fn with_players(mut self, players: u32) -> Self {
        self.players = players;
        self
    }

    /// Sets [`RoomInfo::state`].
    #[must_use]
    pub fn with_state(mut self, state: RoomState) -> Self {
        self.state = state;
        self
    }
}

/// The outcome of [`Directory::create_room`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The name was free; the room is registered to the caller's node.
    Created,
    /// Another node (or this one) already holds a room of that name.
    Taken {
        /// The node that holds it.
        node: String,
    },
}

/// Why a directory call failed. None of these is a panic, and none of them
/// stops a running room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The backend cannot be reached (connection refused or dropped, a
    /// timeout). Retrying later may work.
    #[error("room directory unavailable ({backend}): {reason}")]
    Unavailable {
        /// `memory` or `redis`.
        backend: &'static str,
        /// What failed.
        reason: String,
    },
    /// The backend answered, but not as expected (an error reply, an entry
    /// that does not parse: another program's data under our prefix).
    #[error("room directory ({backend}) answered unexpectedly: {reason}")]
    Backend {
        /// `memory` or `redis`.
        backend: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The directory's own configuration cannot work (a malformed Redis
    /// URL).
    #[error("room directory configuration: {0}")]
    Config(String),
    /// A node id or room name that the directory cannot store (empty, or
    /// longer than [`MAX_NAME_BYTES`]).
    #[error("invalid directory name {name:?}: 1 to {MAX_NAME_BYTES} bytes")]
    InvalidName {
        /// The name.
        name: String,
    },
}

/// The longest node id or room name the directory accepts, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

pub(crate) fn check_name(name: &str) -> Result<(), DirectoryError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(DirectoryError::InvalidName {
            name: name.chars().take(MAX_NAME_BYTES).collect(),
        });
    }
    Ok(())
}

/// The fleet's directory of nodes and rooms. Implementations:
/// [`MemoryDirectory`] (one process; the default) and [`RedisDirectory`]
/// (a fleet of nodes sharing one Redis).
///
/// Every entry lives for the `ttl` its last write gave it; see the
/// [module docs](self) for an example.
pub trait Directory: Send + Sync + 'static {
    /// Registers `node`, or refreshes it, for `ttl`; refreshes the rooms in
    /// `rooms` that `node` holds (their player counts and states, and their
    /// TTL). A room of `rooms` that is not registered, or held by another
    /// node, is left alone.
    fn heartbeat<'a>(
        &'a self,
        node: &'a NodeInfo,
        rooms: &'a [RoomInfo],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), DirectoryError>>;

    /// Removes node `id` and every room it holds (a clean stop).
    fn remove_node<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), DirectoryError>>;

    /// The live nodes, sorted by id.
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeInfo>, DirectoryError>>;

    /// Registers `room` for `ttl` if no live room has its name, atomically
    /// across every node that shares the directory: of two nodes creating
    /// the same name at once, exactly one gets [`Claim::Created`].
    fn create_room<'a>(
        &'a self,
        room: &'a RoomInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Claim, DirectoryError>>;

    /// Removes room `name` if `node` holds it; returns whether it did.
    fn remove_room<'a>(
        &'a self,
        name: &'a str,
        node: &'a str,
    ) -> BoxFuture<'a, Result<bool, DirectoryError>>;

    /// Room `name`, if it is live.
    fn room<'a>(&'a self, name: &'a str)
    -> BoxFuture<'a, Result<Option<RoomInfo>, DirectoryError>>;

    /// The live rooms, sorted by name.
    fn rooms(&self) -> BoxFuture<'_, Result<Vec<RoomInfo>, DirectoryError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("node-1").is_ok());
        assert!(matches!(
            check_name(""),
            Err(DirectoryError::InvalidName { .. })
        ));
        assert!(check_name(&"x".repeat(MAX_NAME_BYTES)).is_ok());
        assert!(check_name(&"x".repeat(MAX_NAME_BYTES + 1)).is_err());
    }

    #[test]
    fn room_states_round_trip_through_their_names() {
        for s in [RoomState::Open, RoomState::Closing] {
            assert_eq!(RoomState::parse(s.as_str()), Some(s));
        }
        assert_eq!(RoomState::parse("full"), None);
    }
}
