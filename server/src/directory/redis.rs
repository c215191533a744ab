//! [`RedisDirectory`]: the directory of a fleet, in one Redis (or Valkey).
//!
//! # The client crate
//!
//! It uses [`redis`](https://docs.rs/redis) (redis-rs, 1.x), with its tokio
//! [`ConnectionManager`]: one multiplexed connection that reconnects by
//! itself with backoff, so a node keeps one cheap, cloneable handle for its
//! whole life and rides out a Redis restart (the tests restart one). When
//! this was written, crates.io listed redis 1.8.1 as its newest stable
//! release (a 2.0 release candidate was out), maintained in the `redis-rs`
//! GitHub organisation, with an MSRV of 1.88, the workspace's own; its Lua
//! [`Script`] support is what the atomic writes below need. The other
//! candidate, `fred` (10.1.0, also tokio-based), is a fine client too, but
//! brings a larger API and dependency tree for the handful of commands used
//! here.
//!
//! # Layout
//!
//! Every key carries the prefix in a hash tag, `{PREFIX}:…`, so all keys of
//! one fleet live in one Redis Cluster slot and the scripts below may touch
//! several keys atomically.
//!
//! | key | type | TTL | holds |
//! |---|---|---|---|
//! | `{P}:node:ID` | hash | the node's | `id`, `wss`, `quic`, `capacity`, `players`, `rooms`, `state` |
//! | `{P}:node:ID:rooms` | set | the node's | names of the rooms the node created |
//! | `{P}:nodes` | set | none | node ids (an index; stale ids are dropped when listing) |
//! | `{P}:room:NAME` | hash | its node's | `name`, `mode`, `players`, `capacity`, `node`, `state` |
//! | `{P}:rooms` | set | none | room names (an index, as above) |
//!
//! Each write is one Lua script (atomic in Redis): creating a room checks
//! for a live room of that name and writes it in one step, so two nodes
//! never both create it. Costs, in Redis operations: a heartbeat is one
//! script call (`HSET` + `PEXPIRE` + `SADD` for the node, `HGET` + `HSET` +
//! `PEXPIRE` per room), a room creation one, a listing two round trips
//! (`SMEMBERS`, then one `HGETALL` per entry, pipelined).

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt as _};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};

use super::{Claim, Directory, DirectoryError, NodeInfo, RoomInfo, RoomState, check_name};
use crate::lifecycle::NodeState;

const BACKEND: &str = "redis";

/// How to reach Redis, and the namespace of one fleet in it.
///
/// ```
/// use std::time::Duration;
/// use tickwire_server::directory::RedisDirectoryConfig;
/// let config = RedisDirectoryConfig::new("redis://127.0.0.1:6379/0").with_prefix("arena-eu");
/// assert_eq!(config.response_timeout, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisDirectoryConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// The fleet's namespace: every key starts with `{prefix}:`. Default
    /// `tickwire`.
    pub prefix: String,
    /// A command without an answer for this long fails as
    /// [`DirectoryError::Unavailable`]. Default 1 s.
    pub response_timeout: Duration,
    /// A connection attempt that takes longer fails. Default 1 s.
    pub connection_timeout: Duration,
}

impl RedisDirectoryConfig {
    /// The defaults, for the Redis at `url`.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "tickwire".to_owned(),
            response_timeout: Duration::from_secs(1),
            connection_timeout: Duration::from_secs(1),
        }
    }

    /// Sets [`RedisDirectoryConfig::prefix`].
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

/// A [`Directory`] in Redis, shared by every node of a fleet. Cheap to
/// clone (one multiplexed, self-reconnecting connection).
///
/// ```no_run
/// use std::time::Duration;
/// use tickwire_server::directory::{Directory, NodeInfo, RedisDirectory, RedisDirectoryConfig};
/// # async fn f() -> Result<(), tickwire_server::directory::DirectoryError> {
/// let dir = RedisDirectory::connect(&RedisDirectoryConfig::new("redis://127.0.0.1:6379"))?;
/// dir.heartbeat(&NodeInfo::new("node-a"), &[], Duration::from_secs(10)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisDirectory {
    conn: ConnectionManager,
    /// `{prefix}`, the hash tag every key starts with.
    tag: String,
}

impl core::fmt::Debug for RedisDirectory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RedisDirectory")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// Maps a client error: anything about reaching the server is
/// [`DirectoryError::Unavailable`], the rest [`DirectoryError::Backend`].
fn map_err(e: &RedisError) -> DirectoryError {
    let unreachable = e.is_io_error()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error();
    if unreachable {
        DirectoryError::Unavailable {
            backend: BACKEND,
            reason: e.to_string(),
        }
    } else {
        DirectoryError::Backend {
            backend: BACKEND,
            reason: e.to_string(),
        }
    }
}

fn corrupt(what: &str, key: &str) -> DirectoryError {
    DirectoryError::Backend {
        backend: BACKEND,
        reason: format!("{key}: {what}"),
    }
}

/// Registers or refreshes a node, then refreshes the rooms it holds, and
/// registers again those whose entry is gone (Redis restarted without
/// persistence, or an entry expired while Redis was unreachable); a name
/// another node took meanwhile is left to it.
/// KEYS: node, nodes index, node's rooms set, rooms index, then one room key
/// per room.
/// ARGV: ttl ms, id, wss, quic, capacity, players, rooms, state, then per
/// room: name, mode, players, capacity, state.
/// Returns the number of rooms refreshed or registered again.
const HEARTBEAT: &str = r"
local ttl = ARGV[1]
redis.call('HSET', KEYS[1], 'id', ARGV[2], 'wss', ARGV[3], 'quic', ARGV[4],
  'capacity', ARGV[5], 'players', ARGV[6], 'rooms', ARGV[7], 'state', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('SADD', KEYS[2], ARGV[2])
local refreshed = 0
for i = 5, #KEYS do
  local a = 9 + (i - 5) * 5
  local holder = redis.call('HGET', KEYS[i], 'node')
  if holder == ARGV[2] then
    redis.call('HSET', KEYS[i], 'mode', ARGV[a + 1], 'players', ARGV[a + 2],
      'capacity', ARGV[a + 3], 'state', ARGV[a + 4])
    redis.call('PEXPIRE', KEYS[i], ttl)
    refreshed = refreshed + 1
  elseif not holder then
    redis.call('DEL', KEYS[i])
    redis.call('HSET', KEYS[i], 'name', ARGV[a], 'mode', ARGV[a + 1],
      'players', ARGV[a + 2], 'capacity', ARGV[a + 3], 'node', ARGV[2],
      'state', ARGV[a + 4])
    redis.call('PEXPIRE', KEYS[i], ttl)
    redis.call('SADD', KEYS[4], ARGV[a])
    redis.call('SADD', KEYS[3], ARGV[a])
    refreshed = refreshed + 1
  end
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('PEXPIRE', KEYS[3], ttl)
end
return refreshed
";

/// Creates a room unless a live one has the name.
/// KEYS: room, rooms index, owner's rooms set.
/// ARGV: ttl ms, name, mode, players, capacity, node, state.
/// Returns {1, node} when created, {0, holder} when taken.
const CREATE_ROOM: &str = r"
local holder = redis.call('HGET', KEYS[1], 'node')
if holder then
  return {0, holder}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'mode', ARGV[3], 'players', ARGV[4],
  'capacity', ARGV[5], 'node', ARGV[6], 'state', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[2])
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[3], ARGV[1])
end
return {1, ARGV[6]}
";

/// Removes a room if `node` holds it.
/// KEYS: room, rooms index, node's rooms set. ARGV: node, name.
const REMOVE_ROOM: &str = r"
if redis.call('HGET', KEYS[1], 'node') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[2])
  redis.call('SREM', KEYS[3], ARGV[2])
  return 1
end
return 0
";

/// Removes a node and the rooms it holds.
/// KEYS: node, nodes index, node's rooms set, rooms index.
/// ARGV: id, room key prefix (`{P}:room:`).
const REMOVE_NODE: &str = r"
for _, name in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local key = ARGV[2] .. name
  if redis.call('HGET', key, 'node') == ARGV[1] then
    redis.call('DEL', key)
    redis.call('SREM', KEYS[4], name)
  end
end
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
";

type Hash = HashMap<String, String>;

fn field<'h>(h: &'h Hash, name: &str, key: &str) -> Result<&'h str, DirectoryError> {
    h.get(name)
        .map(String::as_str)
        .ok_or_else(|| corrupt(&format!("no field {name:?}"), key))
}

fn number(h: &Hash, name: &str, key: &str) -> Result<u32, DirectoryError> {
    field(h, name, key)?
        .parse()
        .map_err(|_| corrupt(&format!("field {name:?} is not a number"), key))
}

fn optional(h: &Hash, name: &str, key: &str) -> Result<Option<String>, DirectoryError> {
    let v = field(h, name, key)?;
    Ok((!v.is_empty()).then(|| v.to_owned()))
}

fn parse_node(h: &Hash, key: &str) -> Result<NodeInfo, DirectoryError> {
    let state = field(h, "state", key)?;
    Ok(NodeInfo {
        id: field(h, "id", key)?.to_owned(),
        wss_url: optional(h, "wss", key)?,
        quic_url: optional(h, "quic", key)?,
        capacity: number(h, "capacity", key)?,
        players: number(h, "players", key)?,
        rooms: number(h, "rooms", key)?,
        state: NodeState::parse(state)
            .ok_or_else(|| corrupt(&format!("unknown node state {state:?}"), key))?,
    })
}

fn parse_room(h: &Hash, key: &str) -> Result<RoomInfo, DirectoryError> {
    let state = field(h, "state", key)?;
    Ok(RoomInfo {
        name: field(h, "name", key)?.to_owned(),
        mode: field(h, "mode", key)?.to_owned(),
        players: number(h, "players", key)?,
        capacity: number(h, "capacity", key)?,
        node: field(h, "node", key)?.to_owned(),
        state: RoomState::parse(state)
            .ok_or_else(|| corrupt(&format!("unknown room state {state:?}"), key))?,
    })
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisDirectory {
    /// A directory on the Redis of `config`. It connects lazily: a Redis
    /// that is down now makes the calls fail with
    /// [`DirectoryError::Unavailable`] until it is back, and this only fails
    /// on a malformed URL.
    ///
    /// # Errors
    /// [`DirectoryError::Config`] for a malformed URL or prefix.
    ///
    /// Call it within a tokio runtime (the connection's task runs there).
    pub fn connect(config: &RedisDirectoryConfig) -> Result<Self, DirectoryError> {
        if config.prefix.is_empty() || config.prefix.contains(['{', '}']) {
            return Err(DirectoryError::Config(format!(
                "prefix {:?} must be non-empty, without braces",
                config.prefix
            )));
        }
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| DirectoryError::Config(format!("redis URL: {e}")))?;
        let manager = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(config.connection_timeout))
            // A few quick reconnection attempts per command; the next call
            // tries again, so a Redis restart heals without a restart here.
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(200));
        let conn =
            ConnectionManager::new_lazy_with_config(client, manager).map_err(|e| map_err(&e))?;
        Ok(Self {
            conn,
            tag: format!("{{{}}}", config.prefix),
        })
    }

    /// Asks Redis for a `PONG`: whether the directory is reachable now.
    ///
    /// # Errors
    /// [`DirectoryError::Unavailable`] when it is not.
    pub async fn ping(&self) -> Result<(), DirectoryError> {
        let mut conn = self.conn.clone();
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| map_err(&e))?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(corrupt(&format!("PING answered {pong:?}"), "PING"))
        }
    }

    fn node_key(&self, id: &str) -> String {
        format!("{}:node:{id}", self.tag)
    }

    fn node_rooms_key(&self, id: &str) -> String {
        format!("{}:node:{id}:rooms", self.tag)
    }

    fn nodes_key(&self) -> String {
        format!("{}:nodes", self.tag)
    }

    fn room_prefix(&self) -> String {
        format!("{}:room:", self.tag)
    }

    fn room_key(&self, name: &str) -> String {
        format!("{}:room:{name}", self.tag)
    }

    fn rooms_key(&self) -> String {
        format!("{}:rooms", self.tag)
    }

    async fn heartbeat_now(
        &self,
        node: &NodeInfo,
        rooms: &[RoomInfo],
        ttl: Duration,
    ) -> Result<(), DirectoryError> {
        check_name(&node.id)?;
        let script = Script::new(HEARTBEAT);
        let mut call = script.prepare_invoke();
        call.key(self.node_key(&node.id))
            .key(self.nodes_key())
            .key(self.node_rooms_key(&node.id))
            .key(self.rooms_key());
        call.arg(ttl_ms(ttl))
            .arg(&node.id)
            .arg(node.wss_url.as_deref().unwrap_or(""))
            .arg(node.quic_url.as_deref().unwrap_or(""))
            .arg(node.capacity)
            .arg(node.players)
            .arg(node.rooms)
            .arg(node.state.as_str());
        for room in rooms.iter().filter(|r| r.node == node.id) {
            check_name(&room.name)?;
            call.key(self.room_key(&room.name));
            call.arg(&room.name)
                .arg(&room.mode)
                .arg(room.players)
                .arg(room.capacity)
                .arg(room.state.as_str());
        }
        let mut conn = self.conn.clone();
        let _refreshed: u64 = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| map_err(&e))?;
        Ok(())
    }

    async fn create_now(&self, room: &RoomInfo, ttl: Duration) -> Result<Claim, DirectoryError> {
        check_name(&room.name)?;
        check_name(&room.node)?;
        let script = Script::new(CREATE_ROOM);
        let mut call = script.prepare_invoke();
        call.key(self.room_key(&room.name))
            .key(self.rooms_key())
            .key(self.node_rooms_key(&room.node));
        call.arg(ttl_ms(ttl))
            .arg(&room.name)
            .arg(&room.mode)
            .arg(room.players)
            .arg(room.capacity)
            .arg(&room.node)
            .arg(room.state.as_str());
        let mut conn = self.conn.clone();
        let (created, node): (u8, String) = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| map_err(&e))?;
        Ok(if created == 1 {
            Claim::Created
        } else {
            Claim::Taken { node }
        })
    }

    async fn remove_room_now(&self, name: &str, node: &str) -> Result<bool, DirectoryError> {
        let script = Script::new(REMOVE_ROOM);
        let mut call = script.prepare_invoke();
        call.key(self.room_key(name))
            .key(self.rooms_key())
            .key(self.node_rooms_key(node));
        call.arg(node).arg(name);
        let mut conn = self.conn.clone();
        let removed: u8 = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| map_err(&e))?;
        Ok(removed == 1)
    }

    async fn remove_node_now(&self, id: &str) -> Result<(), DirectoryError> {
        let script = Script::new(REMOVE_NODE);
        let mut call = script.prepare_invoke();
        call.key(self.node_key(id))
            .key(self.nodes_key())
            .key(self.node_rooms_key(id))
            .key(self.rooms_key());
        call.arg(id).arg(self.room_prefix());
        let mut conn = self.conn.clone();
        let _: u8 = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| map_err(&e))?;
        Ok(())
    }

    /// The live entries of the index `index`, each entry's key being
    /// `key_of(member)`; members whose key is gone (expired) are dropped
    /// from the index.
    async fn list(
        &self,
        index: String,
        key_of: impl Fn(&str) -> String,
    ) -> Result<Vec<(String, Hash)>, DirectoryError> {
        let mut conn = self.conn.clone();
        let mut members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&index)
            .query_async(&mut conn)
            .await
            .map_err(|e| map_err(&e))?;
        members.sort_unstable();
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = members.iter().map(|m| key_of(m)).collect();
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.hgetall(key);
        }
        let hashes: Vec<Hash> = pipe.query_async(&mut conn).await.map_err(|e| map_err(&e))?;
        let mut live = Vec::with_capacity(keys.len());
        let mut stale = Vec::new();
        for ((member, key), hash) in members.into_iter().zip(keys).zip(hashes) {
            if hash.is_empty() {
                stale.push(member);
            } else {
                live.push((key, hash));
            }
        }
        if !stale.is_empty() {
            // Only an index entry: if this fails, the next listing retries.
            let dropped: Result<u64, _> = redis::cmd("SREM")
                .arg(&index)
                .arg(&stale)
                .query_async(&mut conn)
                .await;
            if let Err(e) = dropped {
                tracing::debug!(error = %e, "could not drop stale directory entries");
            }
        }
        Ok(live)
    }
}

impl Directory for RedisDirectory {
    fn heartbeat<'a>(
        &'a self,
        node: &'a NodeInfo,
        rooms: &'a [RoomInfo],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), DirectoryError>> {
        self.heartbeat_now(node, rooms, ttl).boxed()
    }

    fn remove_node<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), DirectoryError>> {
        self.remove_node_now(id).boxed()
    }

    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeInfo>, DirectoryError>> {
        async move {
            let entries = self.list(self.nodes_key(), |id| self.node_key(id)).await?;
            entries.iter().map(|(k, h)| parse_node(h, k)).collect()
        }
        .boxed()
    }

    fn create_room<'a>(
        &'a self,
        room: &'a RoomInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Claim, DirectoryError>> {
        self.create_now(room, ttl).boxed()
    }

    fn remove_room<'a>(
        &'a self,
        name: &'a str,
        node: &'a str,
    ) -> BoxFuture<'a, Result<bool, DirectoryError>> {
        self.remove_room_now(name, node).boxed()
    }

    fn room<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<RoomInfo>, DirectoryError>> {
        async move {
            let key = self.room_key(name);
            let mut conn = self.conn.clone();
            let hash: Hash = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .map_err(|e| map_err(&e))?;
            if hash.is_empty() {
                return Ok(None);
            }
            parse_room(&hash, &key).map(Some)
        }
        .boxed()
    }

    fn rooms(&self) -> BoxFuture<'_, Result<Vec<RoomInfo>, DirectoryError>> {
        async move {
            let entries = self.list(self.rooms_key(), |n| self.room_key(n)).await?;
            entries.iter().map(|(k, h)| parse_room(h, k)).collect()
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(pairs: &[(&str, &str)]) -> Hash {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_stored_node_parses_and_a_broken_one_is_a_typed_error() {
        let h = hash(&[
            ("id", "a"),
            ("wss", "wss://a:8443/ws"),
            ("quic", ""),
            ("capacity", "64"),
            ("players", "3"),
            ("rooms", "1"),
            ("state", "draining"),
        ]);
        let node = parse_node(&h, "k").unwrap();
        let want = NodeInfo::new("a")
            .with_wss_url("wss://a:8443/ws")
            .with_capacity(64)
            .with_load(3, 1)
            .with_state(NodeState::Draining);
        assert_eq!(node, want);
        let mut bad = h.clone();
        bad.insert("players".into(), "many".into());
        assert!(matches!(
            parse_node(&bad, "k"),
            Err(DirectoryError::Backend { .. })
        ));
        bad.remove("state");
        assert!(matches!(
            parse_node(&bad, "k"),
            Err(DirectoryError::Backend { .. })
        ));
    }

    #[test]
    fn a_stored_room_parses() {
        let h = hash(&[
            ("name", "r"),
            ("mode", "ffa"),
            ("players", "2"),
            ("capacity", "16"),
            ("node", "a"),
            ("state", "open"),
        ]);
        let want = RoomInfo::new("r", "a")
            .with_mode("ffa")
            .with_players(2)
            .with_capacity(16);
        assert_eq!(parse_room(&h, "k").unwrap(), want);
    }

    #[test]
    fn bad_urls_and_prefixes_are_config_errors() {
        for config in [
            RedisDirectoryConfig::new("http://nope"),
            RedisDirectoryConfig::new("redis://127.0.0.1:1").with_prefix(""),
            RedisDirectoryConfig::new("redis://127.0.0.1:1").with_prefix("a}b"),
        ] {
            assert!(
                matches!(
                    RedisDirectory::connect(&config),
                    Err(DirectoryError::Config(_))
                ),
                "{config:?}"
            );
        }
    }

    #[test]
    fn ttls_are_whole_milliseconds_and_never_zero() {
        assert_eq!(ttl_ms(Duration::from_secs(2)), 2000);
        assert_eq!(ttl_ms(Duration::ZERO), 1);
    }
}
