//! Matchmaking end to end, over real TLS on loopback: two nodes share one
//! room directory (in memory here; `server/tests/directory_redis.rs` has
//! the Redis variant), and players reach the whole fleet through
//! `POST /matchmake` on any node, with `tickwire-client`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures_util::future::{BoxFuture, FutureExt as _};
use tickwire_client::matchmake::{MatchmakeRequest, Ticket, matchmake};
use tickwire_client::{Client, ClientError, ClientEvent, ConnectOptions, Trust};
use tickwire_server::directory::{
    Claim, Directory, DirectoryError, MemoryDirectory, NodeInfo, RoomInfo,
};
use tickwire_server::{AuthError, FleetConfig, FleetSecret, ServerConfig};
use tickwire_shared::RejectCode;
use tickwire_tests::*;
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(10);

fn secret() -> FleetSecret {
    FleetSecret::new(b"integration-test-fleet-secret".to_vec()).unwrap()
}

fn node_config(id: &str, require: bool) -> ServerConfig {
    test_config()
        .with_tick_rate(20)
        .with_max_players_per_room(4)
        .with_fleet(
            FleetConfig::default()
                .with_node_id(id)
                .with_heartbeat(Duration::from_millis(50), Duration::from_secs(2))
                .with_secret(secret())
                .with_require_seat_token(require),
        )
}

fn trust(node: &TestServer) -> Trust {
    Trust::Certificate(node.server.tls_identity().expect("TLS").leaf().clone())
}

fn https(node: &TestServer) -> String {
    format!("https://localhost:{}", node.server.local_addr().port())
}

/// The node of `nodes` that `ticket` names.
fn holder<'n>(nodes: &'n [(&str, &TestServer)], ticket: &Ticket) -> Result<&'n TestServer> {
    nodes
        .iter()
        .find(|(id, _)| *id == ticket.node)
        .map(|(_, n)| *n)
        .with_context(|| format!("no node {}", ticket.node))
}

async fn connect(node: &TestServer, ticket: &Ticket) -> Result<Client<TestProto>, ClientError> {
    Client::<TestProto>::connect_ticket(ticket, ConnectOptions::new(trust(node))).await
}

/// Polls the directory until `done` holds, for at most [`DEADLINE`].
async fn until_directory(
    dir: &dyn Directory,
    what: &str,
    done: impl Fn(&[NodeInfo]) -> bool,
) -> Result<()> {
    let end = Instant::now() + DEADLINE;
    loop {
        let nodes = dir.nodes().await.unwrap_or_default();
        if done(&nodes) {
            return Ok(());
        }
        ensure!(
            Instant::now() < end,
            "{what}: not within {DEADLINE:?}: {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads events until a snapshot arrives, for at most [`DEADLINE`].
async fn snapshot(client: &mut Client<TestProto>) -> Result<u32> {
    let end = Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, client.next_event()).await {
            Err(_) => bail!("no snapshot within {DEADLINE:?}"),
            Ok(Ok(ClientEvent::Snapshot(s))) => return Ok(s.tick),
            Ok(Ok(ClientEvent::Closed { code, reason })) => bail!("closed: {code} {reason}"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
        }
    }
}

fn rejected(r: Result<Client<TestProto>, ClientError>) -> Option<RejectCode> {
    match r {
        Err(ClientError::Rejected { code, .. }) => Some(code),
        _ => None,
    }
}

fn mode(m: &str) -> MatchmakeRequest {
    MatchmakeRequest::mode(m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_one_fleet_placed_by_load_and_by_room_name() -> Result<()> {
    let dir: Arc<dyn Directory> = Arc::new(MemoryDirectory::new());
    let a = TestServer::start_with_directory(node_config("node-a", false), dir.clone()).await?;
    let b = TestServer::start_with_directory(node_config("node-b", false), dir.clone()).await?;
    let nodes = [("node-a", &a), ("node-b", &b)];

    // Node A gets three players the old way (a hello without a seat token:
    // a node with a fleet secret that does not require tokens admits it).
    let mut direct = Vec::new();
    for _ in 0..3 {
        let mut h = hello();
        h.room = Some("busy".into());
        direct.push(a.client(h).await?);
    }
    until_directory(&*dir, "loads published", |n| {
        n.iter().any(|n| n.id == "node-a" && n.players == 3)
            && n.iter().any(|n| n.id == "node-b" && n.players == 0)
    })
    .await?;

    // By mode, through node A: the less-loaded node B gets the room.
    let t = matchmake(&https(&a), &trust(&a), &mode("ffa")).await?;
    ensure!(t.node == "node-b", "by mode: {t:?}");
    ensure!(t.wss_url == b.ws_url(), "{} vs {}", t.wss_url, b.ws_url());
    let mut first = connect(&b, &t).await?;
    ensure!(first.welcome().room == t.room, "{:?}", first.welcome());
    snapshot(&mut first).await?;

    // By room name, once through each node at the same time: both land in
    // the same room on the same node.
    let duel = MatchmakeRequest::room("duel");
    let (url_a, url_b, trust_a, trust_b) = (https(&a), https(&b), trust(&a), trust(&b));
    let (ta, tb) = tokio::join!(
        matchmake(&url_a, &trust_a, &duel),
        matchmake(&url_b, &trust_b, &duel),
    );
    let (ta, tb) = (ta?, tb?);
    ensure!(
        (&ta.node, &ta.room) == (&tb.node, &tb.room),
        "{ta:?} vs {tb:?}"
    );
    let host = holder(&nodes, &ta)?;
    let mut p1 = connect(host, &ta).await?;
    let mut p2 = connect(host, &tb).await?;
    ensure!(p1.welcome().room == "duel" && p2.welcome().room == "duel");
    ensure!(
        p1.welcome().client_id != p2.welcome().client_id,
        "two players of one node"
    );
    snapshot(&mut p1).await?;
    snapshot(&mut p2).await?;
    let held: Vec<RoomInfo> = dir
        .rooms()
        .await?
        .into_iter()
        .filter(|r| r.name == "duel")
        .collect();
    ensure!(held.len() == 1 && held[0].node == ta.node, "{held:?}");

    // A ticket presented to the other node is misrouted.
    let other = if ta.node == "node-a" { &b } else { &a };
    let wrong = Client::<TestProto>::connect(
        &other.ws_url(),
        ConnectOptions::new(trust(other)).with_ticket(&ta),
    )
    .await;
    ensure!(
        rejected(wrong) == Some(RejectCode::SeatTokenWrongNode),
        "wrong node"
    );
    // A token with one character changed is forged.
    let mut forged = ta.clone();
    let last = forged.seat_token.pop().context("token")?;
    forged.seat_token.push(if last == 'A' { 'B' } else { 'A' });
    ensure!(rejected(connect(host, &forged).await) == Some(RejectCode::SeatTokenInvalid));
    // The room a hello names must be the ticket's.
    let mut moved = ta.clone();
    moved.room = "busy".into();
    ensure!(rejected(connect(host, &moved).await) == Some(RejectCode::SeatTokenWrongRoom));

    // A resume is routed to the node that holds the session's room.
    let resume = MatchmakeRequest::resume("duel", p1.welcome().resume_token);
    let via_other = matchmake(&https(other), &trust(other), &resume).await?;
    ensure!(
        via_other.node == ta.node && via_other.room == "duel",
        "{via_other:?}"
    );

    // A named room on another node is not opened here by a plain hello.
    let mut h = hello();
    h.room = Some("duel".into());
    let mut ws = other.ws_connect(None).await?;
    send_hello(&mut ws, h).await?;
    let reject = expect_reject(&mut ws, DEADLINE).await?;
    ensure!(reject.code == RejectCode::RoomElsewhere, "{reject:?}");

    for c in [&mut first, &mut p1, &mut p2] {
        c.leave().await?;
    }
    drop(direct);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_answers_hostile_requests_with_json_errors() -> Result<()> {
    let dir: Arc<dyn Directory> = Arc::new(MemoryDirectory::new());
    // Players log in as `player:NAME`; NAME is their identity.
    let auth = |auth: Option<&str>| match auth.and_then(|a| a.strip_prefix("player:")) {
        Some(name) => Ok(name.to_owned()),
        None => Err(AuthError::failed("log in as player:NAME")),
    };
    let a =
        TestServer::start_with_matchmaking(node_config("node-a", true), dir.clone(), auth).await?;
    let post = |body: &str| {
        format!(
            "POST /matchmake HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    for (body, status, code) in [
        ("{", 400, "bad_request"),
        (r#"{"mode": 1}"#, 400, "bad_request"),
        (r#"{"mode": "x", "admin": true}"#, 400, "bad_request"),
        (r#"{"room": "../etc"}"#, 400, "bad_request"),
    ] {
        let res = a.https_raw(&post(body)).await?;
        ensure!(res.status == status, "{body}: {res:?}");
        ensure!(
            res.header("content-type") == Some("application/json"),
            "{res:?}"
        );
        let json: serde_json::Value = serde_json::from_slice(&res.body)?;
        ensure!(json["error"] == code, "{body}: {json}");
    }
    let big = format!(
        "POST /matchmake HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\
         Connection: close\r\n\r\n{}",
        "x".repeat(100)
    );
    ensure!(a.https_raw(&big).await?.status == 413);
    ensure!(a.https_get("/matchmake").await?.status == 405);

    // A node that requires seat tokens refuses a plain hello.
    let mut ws = a.ws_connect(None).await?;
    send_hello(&mut ws, hello()).await?;
    let reject = expect_reject(&mut ws, DEADLINE).await?;
    ensure!(reject.code == RejectCode::SeatTokenRequired, "{reject:?}");
    // The auth hook runs at the matchmaker: a refusal is a 401 with its
    // message.
    until_directory(&*dir, "registered", |n| n.iter().any(|n| n.id == "node-a")).await?;
    match matchmake(&https(&a), &trust(&a), &mode("").with_auth("guest")).await {
        Err(ClientError::Matchmake {
            status: 401,
            error,
            message,
            ..
        }) => ensure!(
            error == "auth_failed" && message.contains("player:NAME"),
            "{message}"
        ),
        other => bail!("expected 401, got {other:?}"),
    }
    // An accepted one is admitted by the node; the identity in the seat
    // token is what the game's own auth hook sees (the test game refuses
    // "bad").
    let t = matchmake(&https(&a), &trust(&a), &mode("").with_auth("player:ann")).await?;
    let mut c = connect(&a, &t).await?;
    snapshot(&mut c).await?;
    let t = matchmake(&https(&a), &trust(&a), &mode("").with_auth("player:bad")).await?;
    ensure!(rejected(connect(&a, &t).await) == Some(RejectCode::AuthFailed));

    // Without a fleet secret, matchmaking is off.
    let plain = TestServer::start(test_config()).await?;
    let res = plain.https_raw(&post(r#"{"mode": ""}"#)).await?;
    ensure!(res.status == 404, "{res:?}");
    ensure!(String::from_utf8_lossy(&res.body).contains("matchmaking_off"));
    Ok(())
}

/// A directory that can be switched off, like a Redis that went away.
struct Switchable {
    inner: MemoryDirectory,
    down: AtomicBool,
}

impl Switchable {
    fn call<'a, T: Send + 'a>(
        &'a self,
        f: impl FnOnce(&'a MemoryDirectory) -> BoxFuture<'a, Result<T, DirectoryError>>,
    ) -> BoxFuture<'a, Result<T, DirectoryError>> {
        if self.down.load(Ordering::Relaxed) {
            return async {
                Err(DirectoryError::Unavailable {
                    backend: "test",
                    reason: "switched off".into(),
                })
            }
            .boxed();
        }
        f(&self.inner)
    }
}

impl Directory for Switchable {
    fn heartbeat<'a>(
        &'a self,
        node: &'a NodeInfo,
        rooms: &'a [RoomInfo],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), DirectoryError>> {
        self.call(move |d| d.heartbeat(node, rooms, ttl))
    }
    fn remove_node<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), DirectoryError>> {
        self.call(move |d| d.remove_node(id))
    }
    fn nodes(&self) -> BoxFuture<'_, Result<Vec<NodeInfo>, DirectoryError>> {
        self.call(|d| d.nodes())
    }
    fn create_room<'a>(
        &'a self,
        room: &'a RoomInfo,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Claim, DirectoryError>> {
        self.call(move |d| d.create_room(room, ttl))
    }
    fn remove_room<'a>(
        &'a self,
        name: &'a str,
        node: &'a str,
    ) -> BoxFuture<'a, Result<bool, DirectoryError>> {
        self.call(move |d| d.remove_room(name, node))
    }
    fn room<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<RoomInfo>, DirectoryError>> {
        self.call(move |d| d.room(name))
    }
    fn rooms(&self) -> BoxFuture<'_, Result<Vec<RoomInfo>, DirectoryError>> {
        self.call(|d| d.rooms())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_down_refuses_matchmaking_while_rooms_play_on() -> Result<()> {
    let dir = Arc::new(Switchable {
        inner: MemoryDirectory::new(),
        down: AtomicBool::new(false),
    });
    let a = TestServer::start_with_directory(node_config("node-a", false), dir.clone()).await?;
    until_directory(&*dir, "registered", |n| n.iter().any(|n| n.id == "node-a")).await?;
    let t = matchmake(&https(&a), &trust(&a), &mode("ffa")).await?;
    let mut player = connect(&a, &t).await?;
    let before = snapshot(&mut player).await?;

    dir.down.store(true, Ordering::Relaxed);
    match matchmake(&https(&a), &trust(&a), &mode("ffa")).await {
        Err(ClientError::Matchmake {
            status: 503,
            error,
            retry_after,
            ..
        }) => {
            ensure!(error == "directory_unavailable", "{error}");
            ensure!(
                retry_after == Some(Duration::from_secs(5)),
                "{retry_after:?}"
            );
        }
        other => bail!("expected a 503 while the directory is down, got {other:?}"),
    }
    // The room plays on: snapshots keep coming, ticks move forward.
    let mut last = before;
    for _ in 0..5 {
        let tick = snapshot(&mut player).await?;
        ensure!(tick > last, "tick {tick} after {last}");
        last = tick;
    }
    // A plain hello still gets a room (opened unclaimed while the directory
    // is away).
    let mut h = hello();
    h.room = Some("offline".into());
    let _offline = a.client(h).await?;

    dir.down.store(false, Ordering::Relaxed);
    let end = Instant::now() + DEADLINE;
    loop {
        match matchmake(&https(&a), &trust(&a), &mode("ffa")).await {
            Ok(t) => {
                ensure!(t.node == "node-a");
                break;
            }
            Err(ClientError::Matchmake { status: 503, .. }) if Instant::now() < end => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => bail!("matchmaking did not resume: {e}"),
        }
    }
    // And the room opened while it was away is registered again.
    let end = Instant::now() + DEADLINE;
    while dir.room("offline").await?.is_none() {
        ensure!(
            Instant::now() < end,
            "the offline room was never registered"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    player.leave().await?;
    Ok(())
}
