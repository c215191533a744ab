//! Replication over real TLS WebSockets on loopback: what every client applies
//! equals the server's world (as that client may see it), tick after tick.

use std::time::Duration;

use anyhow::{Result, ensure};
use tickwire_shared::NetId;
use tickwire_tests::*;

const DEADLINE: Duration = Duration::from_secs(20);

/// The server's world at `tick` as `client` may see it.
fn expected(server: &TestServer, tick: u32, client: u32) -> Option<Vec<(NetId, TestEntity)>> {
    let world = server.world_at(tick)?;
    Some(
        world
            .into_iter()
            .filter(|(_, e)| e.secret == 0 || e.owner == client)
            .collect(),
    )
}

fn check(server: &TestServer, c: &TestClient) -> Result<()> {
    let (tick, snap) = c.latest.as_ref().expect("a snapshot");
    let want = expected(server, *tick, c.welcome.client_id)
        .ok_or_else(|| anyhow::anyhow!("server has no record of tick {tick}"))?;
    ensure!(
        snap.as_slice() == want.as_slice(),
        "client {} at tick {tick}: applied {:?} but the server had {:?}",
        c.welcome.client_id,
        snap.as_slice(),
        want
    );
    Ok(())
}

/// Receives snapshots until tick `upto`, checking each one.
async fn follow(server: &TestServer, c: &mut TestClient, upto: u32) -> Result<u32> {
    let mut checked = 0;
    loop {
        if let Received::Snapshot { tick, .. } = c.recv(DEADLINE).await? {
            check(server, c)?;
            checked += 1;
            if tick >= upto {
                return Ok(checked);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_matches_the_world_through_spawns_lost_acks_late_join_and_resume() -> Result<()>
{
    let server =
        TestServer::start(test_config().with_resume_grace(Duration::from_secs(10))).await?;
    let mut a = server.client(hello()).await?;
    let mut b = server.client(hello()).await?;
    ensure!(a.welcome.client_id != b.welcome.client_id);

    // Spawns, moves and despawns, checked on every snapshot.
    let start = a.until_tick(1, DEADLINE).await?;
    for i in 0..40 {
        a.input(TestInput::Move { dx: 3, dy: -2 }).await?;
        b.input(TestInput::Move { dx: -1, dy: 5 }).await?;
        if i % 5 == 0 {
            a.input(TestInput::SpawnCrate).await?;
        }
        if i % 7 == 6 {
            a.input(TestInput::DespawnCrate).await?;
        }
        follow(&server, &mut a, start + i + 1).await?;
        follow(&server, &mut b, start + i + 1).await?;
    }
    ensure!(a.last_input > 0, "the server reports applied inputs");
    let crates = a
        .latest
        .as_ref()
        .unwrap()
        .1
        .iter()
        .filter(|(_, e)| e.crate_)
        .count();
    ensure!(crates > 0, "crates were spawned");

    // Lost acknowledgements: b stops acking, the server's baseline for b
    // falls back (first to b's last ack, then to a full snapshot once it
    // leaves the ring), and b still matches.
    b.ack = false;
    let now = b.latest.as_ref().unwrap().0;
    let mut baselines = Vec::new();
    for _ in 0..80 {
        if let Received::Snapshot { bytes, .. } = b.recv(DEADLINE).await? {
            check(&server, &b)?;
            let Ok(tickwire_shared::ServerMessage::<TestEvent>::Snapshot(f)) =
                tickwire_shared::ServerMessage::decode(&bytes, &b.limits)
            else {
                unreachable!()
            };
            baselines.push(f.header.baseline);
        }
    }
    ensure!(
        baselines.iter().any(|bl| bl.is_some_and(|t| t <= now)),
        "deltas kept using the last acked baseline: {baselines:?}"
    );
    ensure!(
        baselines.last() == Some(&None),
        "once the baseline left the ring, snapshots were full: {baselines:?}"
    );
    b.ack = true;
    let t = b.latest.as_ref().unwrap().0;
    follow(&server, &mut b, t + 10).await?;

    // A late joiner gets a full snapshot and then matches too.
    let mut c = server.client(hello()).await?;
    let t = c.until_tick(1, DEADLINE).await?;
    check(&server, &c)?;
    follow(&server, &mut c, t + 20).await?;
    ensure!(
        c.latest.as_ref().unwrap().1.len() >= 3,
        "the late joiner sees the other players"
    );

    // A dropped connection resumes: same id, same entity.
    let token = a.welcome.resume_token;
    let id = a.welcome.client_id;
    let entity = a.events.iter().find_map(|e| match e {
        TestEvent::YourEntity(n) => Some(*n),
        _ => None,
    });
    drop(a);
    let mut h = hello();
    h.resume_token = Some(token);
    let mut a2 = server.client(h).await?;
    ensure!(a2.welcome.resumed, "welcome says resumed");
    ensure!(a2.welcome.client_id == id, "same client id after resume");
    a2.until(DEADLINE, |c| {
        c.events
            .iter()
            .any(|e| matches!(e, TestEvent::YourEntity(_)))
    })
    .await?;
    let entity2 = a2.events.iter().find_map(|e| match e {
        TestEvent::YourEntity(n) => Some(*n),
        _ => None,
    });
    ensure!(
        entity.is_some() && entity == entity2,
        "same entity after resume"
    );
    let t = a2.until_tick(1, DEADLINE).await?;
    follow(&server, &mut a2, t + 20).await?;
    a2.input(TestInput::Move { dx: 7, dy: 7 }).await?;
    let t = a2.latest.as_ref().unwrap().0;
    follow(&server, &mut a2, t + 10).await?;
    ensure!(
        a2.last_input >= 1,
        "inputs of the resumed session are applied"
    );

    server.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_entities_cost_nothing_on_the_wire() -> Result<()> {
    let server = TestServer::start(test_config()).await?;
    let mut a = server.client(hello()).await?;
    let t = a.until_tick(1, DEADLINE).await?;
    // Fewer than `max_queued_inputs` at once, so none is dropped.
    for _ in 0..12 {
        a.input(TestInput::SpawnCrate).await?;
    }
    follow(&server, &mut a, t + 30).await?;
    // Only the NPC moves now: the delta carries one patched entity.
    let Received::Snapshot { bytes, .. } = ({
        loop {
            let r = a.recv(DEADLINE).await?;
            if matches!(r, Received::Snapshot { .. }) {
                break r;
            }
        }
    }) else {
        unreachable!()
    };
    check(&server, &a)?;
    let entities = a.latest.as_ref().unwrap().1.len();
    ensure!(entities == 14, "{entities} entities");
    ensure!(
        bytes.len() <= 16,
        "a delta with {entities} entities where one moved took {} bytes",
        bytes.len()
    );
    server.server.shutdown().await;
    Ok(())
}

/// The baseline of a received snapshot message (`None`: full).
fn baseline_of(c: &TestClient, bytes: &[u8]) -> Option<u32> {
    match tickwire_shared::ServerMessage::<TestEvent>::decode(bytes, &c.limits) {
        Ok(tickwire_shared::ServerMessage::Snapshot(f)) => f.header.baseline,
        other => panic!("not a snapshot: {other:?}"),
    }
}

/// Receives the snapshots of `ticks` ticks, checking each; returns their
/// baselines.
async fn baselines(
    server: &TestServer,
    c: &mut TestClient,
    ticks: u32,
) -> Result<Vec<Option<u32>>> {
    let end = c.latest.as_ref().map_or(0, |l| l.0) + ticks;
    let mut out = Vec::new();
    while c.latest.as_ref().is_none_or(|(t, _)| *t < end) {
        c.input(TestInput::Move { dx: 1, dy: -1 }).await?;
        if let Received::Snapshot { bytes, .. } = c.recv(DEADLINE).await? {
            check(server, c)?;
            out.push(baseline_of(c, &bytes));
        }
    }
    Ok(out)
}

/// PROTOCOL.md §8.7: a WSS client granted implicit acks sends no `Ack`,
/// yet gets deltas against the snapshot before; without the grant, a client
/// that sends no acks gets only full snapshots, so the acks the server
/// counts are its own writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_acks_over_wss_keep_deltas_without_a_single_ack() -> Result<()> {
    let server = TestServer::start(test_config()).await?;
    let implicit = test_session_config().with_implicit_acks(true);
    let mut a = server.client_with(hello(), implicit.clone()).await?;
    ensure!(a.welcome.implicit_acks == Some(true), "{:?}", a.welcome);
    a.ack = false;
    let seen = baselines(&server, &mut a, 60).await?;
    ensure!(a.acks == 0, "the session produced {} acks", a.acks);
    ensure!(seen.len() >= 55, "{} snapshots in 60 ticks", seen.len());
    ensure!(seen[0].is_none(), "the first snapshot is full: {seen:?}");
    // Every later snapshot is a delta against the snapshot just before it.
    for (i, w) in seen.windows(2).enumerate().skip(1) {
        ensure!(w[1].is_some(), "snapshot {} was full: {seen:?}", i + 1);
    }

    // The same client without implicit acks, withholding its acks: full
    // snapshots only (the test above would fail if the server counted
    // writes as acks for everyone).
    let mut b = server.client(hello()).await?;
    ensure!(b.welcome.implicit_acks.is_none(), "{:?}", b.welcome);
    b.ack = false;
    let seen = baselines(&server, &mut b, 30).await?;
    ensure!(seen.iter().all(Option::is_none), "{seen:?}");
    ensure!(b.acks > 0);
    server.server.shutdown().await;

    // A server that turns them off says so, and the client acks.
    let server = TestServer::start(test_config().with_implicit_acks(false)).await?;
    let mut c = server.client_with(hello(), implicit).await?;
    ensure!(c.welcome.implicit_acks == Some(false), "{:?}", c.welcome);
    let seen = baselines(&server, &mut c, 30).await?;
    ensure!(c.acks > 0, "no acks without the grant");
    ensure!(seen.iter().skip(5).all(Option::is_some), "{seen:?}");
    server.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_converges_through_a_lossy_reordering_link() -> Result<()> {
    converges_through_a_lossy_link(test_session_config()).await
}

/// The server's link conditioner holds snapshots back with no backpressure
/// (and drops them when its queue is full): a server with one grants no
/// implicit acks, and a client that asked acks as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conditioned_server_grants_no_implicit_acks() -> Result<()> {
    converges_through_a_lossy_link(test_session_config().with_implicit_acks(true)).await
}

async fn converges_through_a_lossy_link(
    config: tickwire_shared::client::ClientConfig,
) -> Result<()> {
    let link: tickwire_shared::conditioner::ConditionerConfig =
        "latency=30ms,jitter=10ms,loss=10%,reorder=5%,dup=2%".parse()?;
    let server = TestServer::start(test_config().with_conditioner(Some(link))).await?;
    let asked = config.implicit_acks;
    let mut a = server.client_with(hello(), config).await?;
    ensure!(
        a.welcome.implicit_acks == asked.then_some(false),
        "{:?}",
        a.welcome
    );
    let t = a.until_tick(1, DEADLINE).await?;
    let mut applied = 0;
    let mut deltas = 0;
    let end = t + 120;
    while a.latest.as_ref().is_none_or(|(t, _)| *t < end) {
        // Keep the world changing; lost inputs are simply not applied.
        a.input(TestInput::Move { dx: 1, dy: 1 }).await?;
        if let Received::Snapshot { bytes, .. } = a.recv(DEADLINE).await? {
            // Every snapshot that arrives decodes against a baseline the
            // client kept (recv fails otherwise) and equals the world.
            check(&server, &a)?;
            applied += 1;
            if let Ok(tickwire_shared::ServerMessage::<TestEvent>::Snapshot(f)) =
                tickwire_shared::ServerMessage::decode(&bytes, &a.limits)
                && f.header.baseline.is_some()
            {
                deltas += 1;
            }
        }
    }
    ensure!(
        applied >= 60,
        "only {applied} snapshots arrived in 120 ticks"
    );
    ensure!(deltas > 0, "deltas were used");
    ensure!(a.acks > 0, "the client acked");
    server.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_deltas_off_every_snapshot_is_full_and_clients_still_converge() -> Result<()> {
    let server = TestServer::start(test_config().with_deltas(false)).await?;
    let _ = server.server.take_stats();
    let mut a = server.client(hello()).await?;
    let t = a.until_tick(1, DEADLINE).await?;
    let mut full = 0;
    for i in 0..30 {
        a.input(TestInput::Move { dx: 2, dy: 1 }).await?;
        if i % 10 == 0 {
            a.input(TestInput::SpawnCrate).await?;
        }
        let Received::Snapshot { bytes, .. } = a.recv(DEADLINE).await? else {
            continue;
        };
        check(&server, &a)?;
        let Ok(tickwire_shared::ServerMessage::<TestEvent>::Snapshot(f)) =
            tickwire_shared::ServerMessage::decode(&bytes, &a.limits)
        else {
            unreachable!("recv returned a snapshot")
        };
        ensure!(
            f.header.baseline.is_none(),
            "tick {}: a delta against {:?} although deltas are off",
            f.header.tick,
            f.header.baseline
        );
        full += 1;
    }
    follow(&server, &mut a, t + 40).await?;
    ensure!(
        a.last_input > 0,
        "inputs were applied while snapshots were full"
    );
    ensure!(full > 0, "snapshots arrived");
    // The statistics window saw the same: every snapshot queued was full.
    let stats = server.server.take_stats();
    ensure!(stats.ticks() > 0, "ticks were recorded");
    ensure!(
        stats.sent.snapshots >= full && stats.sent.full_snapshots == stats.sent.snapshots,
        "stats: {:?}",
        stats.sent
    );
    ensure!(stats.sent.bytes > 0 && stats.connected_clients == 1);
    server.server.shutdown().await;
    Ok(())
}
