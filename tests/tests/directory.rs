//! A node in the room directory, over real TLS on loopback: it registers
//! itself (address, capacity, load, state) and its rooms (players, state)
//! on its heartbeat, claims a room's name before it opens it (so it opens
//! no room whose name another node holds), shows
//! `draining` when it drains, and removes itself when it stops.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use tickwire_server::directory::{
    Claim, Directory, MemoryDirectory, NodeInfo, RoomInfo, RoomState,
};
use tickwire_server::{FleetConfig, NodeState, ServerConfig};
use tickwire_shared::{ClientMessage, Hello, RejectCode};
use tickwire_tests::*;
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(5);

fn config() -> ServerConfig {
    test_config()
        .with_tick_rate(20)
        .with_max_players_per_room(8)
        .with_drain_grace(Duration::from_secs(600))
        .with_fleet(
            FleetConfig::default()
                .with_node_id("node-t")
                .with_mode("test")
                .with_heartbeat(Duration::from_millis(50), Duration::from_secs(2)),
        )
}

fn named(room: &str) -> Hello {
    let mut h = hello();
    h.room = Some(room.to_owned());
    h
}

/// Polls the directory until `done` holds for this node's entry and the
/// rooms, for at most [`DEADLINE`].
async fn until(
    dir: &MemoryDirectory,
    what: &str,
    done: impl Fn(Option<&NodeInfo>, &[RoomInfo]) -> bool,
) -> Result<(Option<NodeInfo>, Vec<RoomInfo>)> {
    let end = Instant::now() + DEADLINE;
    loop {
        let node = dir.nodes().await?.into_iter().find(|n| n.id == "node-t");
        let rooms = dir.rooms().await?;
        if done(node.as_ref(), &rooms) {
            return Ok((node, rooms));
        }
        ensure!(
            Instant::now() < end,
            "{what}: not within {DEADLINE:?}; node {node:?}, rooms {rooms:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn room<'r>(rooms: &'r [RoomInfo], name: &str) -> Option<&'r RoomInfo> {
    rooms.iter().find(|r| r.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_publishes_itself_and_its_rooms_and_leaves_when_it_stops() -> Result<()> {
    let dir = Arc::new(MemoryDirectory::new());
    // Another node already holds "beta".
    let theirs = RoomInfo::new("beta", "node-other");
    ensure!(dir.create_room(&theirs, Duration::from_secs(600)).await? == Claim::Created);
    let server = TestServer::start_with_directory(config(), dir.clone()).await?;
    let port = server.server.local_addr().port();

    let (node, _) = until(&dir, "registered", |n, _| {
        n.is_some_and(|n| n.state == NodeState::Ready)
    })
    .await?;
    let node = node.context("node")?;
    ensure!(
        node.wss_url.as_deref() == Some(format!("wss://localhost:{port}/ws").as_str()),
        "address: {node:?}"
    );
    ensure!(node.capacity > 0 && node.players == 0, "{node:?}");

    let mut a = server.client(named("alpha")).await?;
    // "beta" is another node's: this node does not open it.
    let mut ws = server.ws_connect(None).await?;
    send_hello(&mut ws, named("beta")).await?;
    let reject = expect_reject(&mut ws, DEADLINE).await?;
    ensure!(reject.code == RejectCode::RoomElsewhere, "{reject:?}");
    let (node, rooms) = until(&dir, "rooms registered", |n, r| {
        n.is_some_and(|n| n.players == 1 && n.rooms == 1)
            && room(r, "alpha").is_some_and(|r| r.players == 1)
    })
    .await?;
    let alpha = room(&rooms, "alpha").context("alpha")?;
    ensure!(
        alpha.node == "node-t"
            && alpha.mode == "test"
            && alpha.capacity == 8
            && alpha.state == RoomState::Open,
        "{alpha:?}"
    );
    // Beta's name stays the other node's.
    ensure!(
        room(&rooms, "beta") == Some(&theirs),
        "beta left alone: {rooms:?} (node {node:?})"
    );

    server.server.drain();
    until(&dir, "draining published", |n, r| {
        n.is_some_and(|n| n.state == NodeState::Draining)
            && room(r, "alpha").is_some_and(|r| r.state == RoomState::Closing)
    })
    .await?;

    a.send(ClientMessage::Leave).await?;
    expect_close(&mut a.ws, DEADLINE).await?;
    tokio::time::timeout(DEADLINE, server.server.stopped())
        .await
        .context("the node stops once its rooms are empty")?;
    let (node, rooms) = until(&dir, "left", |n, r| {
        n.is_none() && room(r, "alpha").is_none()
    })
    .await?;
    ensure!(node.is_none());
    ensure!(
        rooms == [theirs],
        "only the other node's room is left: {rooms:?}"
    );
    Ok(())
}
