//! The Redis room directory against a real `redis-server`, which each test
//! starts on a free loopback port (`--save '' --appendonly no`, in a temp
//! dir) and kills when it ends.
//!
//! Under `cargo xtask test` (which sets `TICKWIRE_REDIS_SERVER`) or CI
//! (`CI` set), a missing `redis-server` is a failure. Elsewhere these tests
//! skip, loudly, when `redis-server` is not on PATH.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tickwire_server::directory::{
    Claim, Directory, DirectoryError, NodeInfo, RedisDirectory, RedisDirectoryConfig, RoomInfo,
};
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(10);

#[path = "support/redis_server.rs"]
mod redis_server;
use redis_server::{redis_binary, redis_command, redis_dir};

/// A `redis-server` of our own, killed (and its directory removed) on drop.
struct Redis {
    child: Option<Child>,
    binary: PathBuf,
    addr: SocketAddr,
    dir: PathBuf,
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr")
}

impl Redis {
    /// Starts one, or `None` when the tests skip.
    async fn start(tag: &str) -> Option<Self> {
        let binary = redis_binary("the Redis directory tests")?;
        let dir = redis_dir(tag);
        let mut redis = Self {
            child: None,
            binary,
            addr: free_port(),
            dir,
        };
        redis.launch().await;
        Some(redis)
    }

    /// Starts the server process on `self.addr` and waits until it answers.
    async fn launch(&mut self) {
        let child = redis_command(&self.binary, self.addr.port(), &self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let probe = RedisDirectory::connect(&self.config()).expect("config");
        let end = Instant::now() + DEADLINE;
        while let Err(e) = probe.ping().await {
            assert!(Instant::now() < end, "redis-server never answered: {e}");
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("redis-server exited at start: {status}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn config(&self) -> RedisDirectoryConfig {
        let mut c = RedisDirectoryConfig::new(format!("redis://{}/", self.addr));
        c.response_timeout = Duration::from_millis(500);
        c.connection_timeout = Duration::from_millis(500);
        c
    }

    fn directory(&self) -> RedisDirectory {
        RedisDirectory::connect(&self.config()).expect("connect")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_for_the_same_room_names_never_both_win() {
    let Some(redis) = Redis::start("race").await else {
        return;
    };
    // Two nodes, each with its own connection.
    let a = Arc::new(redis.directory());
    let b = Arc::new(redis.directory());
    let ttl = Duration::from_secs(30);
    const ROUNDS: usize = 100;
    let mut wins = [0usize; 2];
    for round in 0..ROUNDS {
        let name = format!("room-{round}");
        let (ra, rb) = tokio::join!(
            {
                let (a, name) = (Arc::clone(&a), name.clone());
                tokio::spawn(
                    async move { a.create_room(&RoomInfo::new(name, "node-a"), ttl).await },
                )
            },
            {
                let (b, name) = (Arc::clone(&b), name.clone());
                tokio::spawn(
                    async move { b.create_room(&RoomInfo::new(name, "node-b"), ttl).await },
                )
            }
        );
        let (ra, rb) = (ra.unwrap().unwrap(), rb.unwrap().unwrap());
        let winner = match (&ra, &rb) {
            (Claim::Created, Claim::Taken { node }) => {
                assert_eq!(node, "node-a", "{name}");
                wins[0] += 1;
                "node-a"
            }
            (Claim::Taken { node }, Claim::Created) => {
                assert_eq!(node, "node-b", "{name}");
                wins[1] += 1;
                "node-b"
            }
            other => panic!("{name}: not exactly one winner: {other:?}"),
        };
        let held = a.room(&name).await.unwrap().expect("registered");
        assert_eq!(held.node, winner, "{name}");
    }
    assert_eq!(wins[0] + wins[1], ROUNDS);
    let rooms = b.rooms().await.unwrap();
    assert_eq!(rooms.len(), ROUNDS, "one entry per name");
    // A name held by a live room stays taken, for either node.
    let again = a
        .create_room(&RoomInfo::new("room-0", "node-a"), ttl)
        .await
        .unwrap();
    assert!(matches!(again, Claim::Taken { .. }), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_heartbeating_leaves_within_its_ttl() {
    let Some(redis) = Redis::start("ttl").await else {
        return;
    };
    let dir = redis.directory();
    const TTL: Duration = Duration::from_millis(1500);
    let a = NodeInfo::new("node-a")
        .with_wss_url("wss://a.test:8443/ws")
        .with_capacity(64);
    let b = NodeInfo::new("node-b").with_quic_url("quic://b.test:8444");
    let room = RoomInfo::new("lobby", "node-a")
        .with_mode("ffa")
        .with_capacity(16);
    dir.heartbeat(&a, &[], TTL).await.unwrap();
    assert_eq!(dir.create_room(&room, TTL).await.unwrap(), Claim::Created);

    // Both beat for a while, past one TTL: the heartbeat keeps a's node and
    // room alive and updates the room's player count.
    let beat = TTL / 4;
    let until = Instant::now() + TTL * 2;
    while Instant::now() < until {
        let a_now = a.clone().with_load(3, 1);
        let room_now = room.clone().with_players(3);
        dir.heartbeat(&a_now, std::slice::from_ref(&room_now), TTL)
            .await
            .unwrap();
        dir.heartbeat(&b, &[], TTL).await.unwrap();
        tokio::time::sleep(beat).await;
    }
    let nodes = dir.nodes().await.unwrap();
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert_eq!(nodes[0], a.clone().with_load(3, 1));
    assert_eq!(nodes[1], b);
    assert_eq!(dir.room("lobby").await.unwrap().map(|r| r.players), Some(3));

    // a stops (as after kill -9); b goes on. a's node and room are gone
    // within the TTL of a's last heartbeat, and b is untouched.
    let a_last = Instant::now();
    dir.heartbeat(&a.clone().with_load(3, 1), std::slice::from_ref(&room), TTL)
        .await
        .unwrap();
    loop {
        dir.heartbeat(&b, &[], TTL).await.unwrap();
        let nodes = dir.nodes().await.unwrap();
        let room_left = dir.room("lobby").await.unwrap();
        let gone = nodes.iter().all(|n| n.id != "node-a") && room_left.is_none();
        if gone {
            assert_eq!(nodes, std::slice::from_ref(&b), "b stays");
            assert!(dir.rooms().await.unwrap().is_empty());
            break;
        }
        let waited = a_last.elapsed();
        assert!(
            waited <= TTL + Duration::from_millis(500),
            "node-a still listed {waited:?} after its last heartbeat (TTL {TTL:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(a_last.elapsed() >= TTL / 2, "gone too early");
    // The name is free for another node.
    let theirs = RoomInfo::new("lobby", "node-b");
    assert_eq!(dir.create_room(&theirs, TTL).await.unwrap(), Claim::Created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_removes_the_node_and_its_rooms_only() {
    let Some(redis) = Redis::start("stop").await else {
        return;
    };
    let dir = redis.directory();
    let ttl = Duration::from_secs(30);
    for (node, room) in [("node-a", "a1"), ("node-a", "a2"), ("node-b", "b1")] {
        dir.heartbeat(&NodeInfo::new(node), &[], ttl).await.unwrap();
        dir.create_room(&RoomInfo::new(room, node), ttl)
            .await
            .unwrap();
    }
    assert!(!dir.remove_room("b1", "node-a").await.unwrap(), "not a's");
    dir.remove_node("node-a").await.unwrap();
    let nodes: Vec<_> = dir
        .nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    let rooms: Vec<_> = dir
        .rooms()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(nodes, ["node-b"]);
    assert_eq!(rooms, ["b1"]);
    assert!(dir.remove_room("b1", "node-b").await.unwrap());
    assert!(dir.rooms().await.unwrap().is_empty());
}

fn is_unavailable<T: std::fmt::Debug>(r: &Result<T, DirectoryError>) -> bool {
    matches!(
        r,
        Err(DirectoryError::Unavailable {
            backend: "redis",
            ..
        })
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_is_a_typed_error_and_its_return_heals() {
    let Some(mut redis) = Redis::start("away").await else {
        return;
    };
    let dir = redis.directory();
    let ttl = Duration::from_secs(30);
    let node = NodeInfo::new("node-a");
    dir.heartbeat(&node, &[], ttl).await.unwrap();

    redis.kill();
    // Every call fails with `Unavailable`, promptly (bounded by the
    // response and connection timeouts), and nothing panics.
    let t0 = Instant::now();
    let r = dir.heartbeat(&node, &[], ttl).await;
    assert!(is_unavailable(&r), "{r:?}");
    let r = dir.create_room(&RoomInfo::new("r", "node-a"), ttl).await;
    assert!(is_unavailable(&r), "{r:?}");
    let r = dir.nodes().await;
    assert!(is_unavailable(&r), "{r:?}");
    let r = dir.rooms().await;
    assert!(is_unavailable(&r), "{r:?}");
    assert!(t0.elapsed() < DEADLINE, "errors took {:?}", t0.elapsed());

    // Redis comes back (empty: it saved nothing): the same handle works
    // again, without a restart of the node.
    redis.launch().await;
    let end = Instant::now() + DEADLINE;
    loop {
        match dir.heartbeat(&node, &[], ttl).await {
            Ok(()) => break,
            Err(e) => {
                assert!(
                    matches!(e, DirectoryError::Unavailable { .. }),
                    "while reconnecting: {e:?}"
                );
                assert!(Instant::now() < end, "never reconnected: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let ids: Vec<_> = dir
        .nodes()
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert_eq!(ids, ["node-a"]);
}

#[tokio::test]
async fn a_redis_that_is_not_there_is_a_typed_error_from_the_start() {
    // Nothing listens on this port: connecting is lazy, the calls fail.
    let mut config = RedisDirectoryConfig::new(format!("redis://{}/", free_port()));
    config.connection_timeout = Duration::from_millis(300);
    let dir = RedisDirectory::connect(&config).expect("a well-formed URL");
    let r = dir.ping().await;
    assert!(is_unavailable(&r), "{r:?}");
    let r = dir.rooms().await;
    assert!(is_unavailable(&r), "{r:?}");
}

/// Matchmaking over a shared Redis, as two nodes' matchmakers see it: by
/// mode to the less-loaded node, by name to one room however many
/// matchmakers ask at once, and a clear `503` (with `Retry-After`) while
/// Redis is away, healed when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matchmaking_over_redis_places_by_load_and_refuses_while_redis_is_away() {
    use tickwire_server::matchmaking::{
        FleetSecret, MatchmakeError, MatchmakeRequest, Matchmaker, MatchmakerConfig,
        PassThroughAuth, Seat, seat::unix_ms_now,
    };
    let Some(mut redis) = Redis::start("matchmaking").await else {
        return;
    };
    let ttl = Duration::from_secs(30);
    let secret = FleetSecret::new(b"redis-test-fleet-secret".to_vec()).unwrap();
    let heartbeat = redis.directory();
    for (id, players) in [("node-a", 40), ("node-b", 10)] {
        let node = NodeInfo::new(id)
            .with_wss_url(format!("wss://{id}.test/ws"))
            .with_capacity(100)
            .with_load(players, 0);
        heartbeat.heartbeat(&node, &[], ttl).await.unwrap();
    }
    let matchmaker = |dir: RedisDirectory| {
        let mut config = MatchmakerConfig::new(secret.clone());
        config.room_capacity = 8;
        Matchmaker::new(Arc::new(dir), config, Arc::new(PassThroughAuth))
    };
    let (a, b) = (matchmaker(redis.directory()), matchmaker(redis.directory()));

    let mut by_mode = MatchmakeRequest::default();
    by_mode.mode = Some("ffa".into());
    let t = a.matchmake(by_mode.clone()).await.unwrap();
    assert_eq!(t.node, "node-b", "the less-loaded node");
    let seat = Seat::verify(&secret, &t.seat_token, unix_ms_now()).unwrap();
    assert_eq!(
        (seat.node.as_str(), seat.room.as_str()),
        ("node-b", t.room.as_str())
    );

    for round in 0..20 {
        let mut req = MatchmakeRequest::default();
        req.room = Some(format!("duel-{round}"));
        let (ta, tb) = tokio::join!(a.matchmake(req.clone()), b.matchmake(req));
        let (ta, tb) = (ta.unwrap(), tb.unwrap());
        assert_eq!((&ta.node, &ta.room), (&tb.node, &tb.room), "round {round}");
    }
    assert_eq!(heartbeat.rooms().await.unwrap().len(), 21, "each room once");

    redis.kill();
    let t0 = Instant::now();
    let refused = a.reply(br#"{"mode": "ffa"}"#).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(
        refused.body.contains("directory_unavailable"),
        "{refused:?}"
    );
    assert_eq!(refused.retry_after, Some(5));
    assert!(t0.elapsed() < DEADLINE, "refusal took {:?}", t0.elapsed());
    assert!(matches!(
        b.matchmake(by_mode.clone()).await,
        Err(MatchmakeError::Directory(_))
    ));

    redis.launch().await;
    let node = NodeInfo::new("node-a")
        .with_wss_url("wss://node-a.test/ws")
        .with_capacity(100);
    let end = Instant::now() + DEADLINE;
    while heartbeat.heartbeat(&node, &[], ttl).await.is_err() {
        assert!(Instant::now() < end, "Redis never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let end = Instant::now() + DEADLINE;
    let t = loop {
        match a.matchmake(by_mode.clone()).await {
            Ok(t) => break t,
            Err(e) => {
                assert!(matches!(e, MatchmakeError::Directory(_)), "{e:?}");
                assert!(Instant::now() < end, "matchmaking never resumed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(t.node, "node-a", "the only node registered again");
}

/// Redis restarts empty between two heartbeats (no failed heartbeat in
/// between): the next heartbeat registers the node's rooms again, and leaves
/// a name that another node took meanwhile to that node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_after_an_empty_restart_registers_the_rooms_again() {
    let Some(mut redis) = Redis::start("restart").await else {
        return;
    };
    let dir = redis.directory();
    let ttl = Duration::from_secs(30);
    let node = NodeInfo::new("node-a");
    let rooms = [
        RoomInfo::new("kept", "node-a")
            .with_mode("duel")
            .with_players(2),
        RoomInfo::new("taken", "node-a"),
    ];
    dir.heartbeat(&node, &[], ttl).await.unwrap();
    for r in &rooms {
        assert!(matches!(
            dir.create_room(r, ttl).await.unwrap(),
            Claim::Created
        ));
    }

    redis.kill();
    redis.launch().await;
    let end = Instant::now() + DEADLINE;
    // Another node claims one of the names first.
    loop {
        match dir
            .create_room(&RoomInfo::new("taken", "node-b"), ttl)
            .await
        {
            Ok(c) => {
                assert!(matches!(c, Claim::Created), "{c:?}");
                break;
            }
            Err(e) => {
                assert!(Instant::now() < end, "never reconnected: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    dir.heartbeat(&node, &rooms, ttl).await.unwrap();
    let mut listed: Vec<(String, String, String, u32)> = dir
        .rooms()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.name, r.node, r.mode, r.players))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            ("kept".into(), "node-a".into(), "duel".into(), 2),
            ("taken".into(), "node-b".into(), String::new(), 0),
        ]
    );
}
