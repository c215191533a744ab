//! QUIC on loopback: the same replication guarantees as WSS (what a client
//! applies equals the server's world at that tick), through a seeded lossy,
//! delaying, reordering link; and hostile QUIC peers closed with a code and a
//! reason while a good client in the same room plays on.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use bytes::Bytes;
use tickwire_client::{Client, ClientError, ClientEvent, ConnectOptions, Trust};
use tickwire_server::{QuicConfig, RetryPolicy, ServerConfig};
use tickwire_shared::conditioner::ConditionerConfig;
use tickwire_shared::framing::{QUIC_ALPN, frame_header};
use tickwire_shared::{ClientMessage, CloseCode};
use tickwire_tests::*;
use tokio::time::{Instant, timeout_at};

const DEADLINE: Duration = Duration::from_secs(20);

type TestClient = Client<TestProto>;

fn quic_config() -> ServerConfig {
    test_config().with_quic_addr(Some("127.0.0.1:0".parse().unwrap()))
}

fn quic_url(server: &TestServer) -> String {
    let addr = server.server.quic_addr().expect("QUIC is on");
    format!("quic://localhost:{}", addr.port())
}

fn trust(server: &TestServer) -> ConnectOptions {
    let leaf = server.server.tls_identity().expect("TLS").leaf().clone();
    ConnectOptions::new(Trust::Certificate(leaf))
}

/// The client's newest snapshot equals the server's world at that tick, as
/// this client may see it.
fn check(server: &TestServer, c: &TestClient) -> Result<()> {
    let tick = c.world().tick().ok_or_else(|| anyhow!("no snapshot yet"))?;
    let snap = c.world().to_snapshot();
    let want = expected_view(&server.history, tick, c.welcome().client_id)
        .ok_or_else(|| anyhow!("server has no record of tick {tick}"))?;
    ensure!(
        snap.as_slice() == want.as_slice(),
        "client {} at tick {tick}: applied {:?} but the server had {:?}",
        c.welcome().client_id,
        snap.as_slice(),
        want
    );
    Ok(())
}

/// Applies events until a snapshot at tick ≥ `upto`, checking every
/// snapshot; returns how many were checked.
async fn follow(server: &TestServer, c: &mut TestClient, upto: u32) -> Result<usize> {
    let deadline = Instant::now() + DEADLINE;
    let mut checked = 0;
    loop {
        let ev = timeout_at(deadline, c.next_event())
            .await
            .with_context(|| format!("no snapshot at tick {upto} in time"))??;
        match ev {
            ClientEvent::Snapshot(a) => {
                let tick = a.tick;
                check(server, c)?;
                checked += 1;
                if tick >= upto {
                    return Ok(checked);
                }
            }
            ClientEvent::Closed { code, reason } => bail!("closed: {code} {reason}"),
            ClientEvent::Events(_) | ClientEvent::Rtt(_) => {}
        }
    }
}

fn newest(c: &TestClient) -> u32 {
    c.world().tick().unwrap_or(0)
}

fn my_entity_count(c: &TestClient, owner: u32) -> usize {
    c.world()
        .iter()
        .filter(|(_, e)| e.owner == owner && e.crate_)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_replication_matches_the_world_with_a_wss_player_in_the_same_room() -> Result<()> {
    let server = TestServer::start(quic_config()).await?;
    let mut a = TestClient::connect(&quic_url(&server), trust(&server)).await?;
    let mut w = TestClient::connect(&server.ws_url(), trust(&server)).await?;
    ensure!(
        a.welcome().room == w.welcome().room,
        "QUIC and WSS players share a room"
    );

    // Moves, spawns and despawns, every snapshot checked.
    let me = a.welcome().client_id;
    for _ in 0..3 {
        a.send_input(TestInput::Move { dx: 3, dy: -2 }).await?;
        a.send_input(TestInput::SpawnCrate).await?;
    }
    let t = newest(&a);
    follow(&server, &mut a, t + 20).await?;
    ensure!(my_entity_count(&a, me) == 3, "three crates replicated");
    a.send_input(TestInput::DespawnCrate).await?;
    let t = newest(&a);
    follow(&server, &mut a, t + 20).await?;
    ensure!(my_entity_count(&a, me) == 2, "a despawn replicated");

    // The WSS player sees the QUIC player's crates too.
    let t = newest(&a);
    follow(&server, &mut w, t).await?;

    // A late QUIC joiner starts from a full snapshot and then follows deltas.
    let mut late = TestClient::connect(&quic_url(&server), trust(&server)).await?;
    let t = newest(&a);
    let checked = follow(&server, &mut late, t + 30).await?;
    ensure!(checked >= 10, "late joiner applied {checked} snapshots");
    let stats = late.stats();
    ensure!(
        stats.full_snapshots >= 1 && stats.snapshots_applied > stats.full_snapshots,
        "deltas after the first full snapshot: {stats:?}"
    );
    ensure!(
        stats.datagrams_received > 0,
        "snapshots travel as QUIC datagrams: {stats:?}"
    );
    ensure!(
        w.stats().datagrams_received == 0,
        "WSS has no datagrams: {:?}",
        w.stats()
    );

    // Leave is clean over QUIC: the close code arrives.
    let (code, _) = a.leave().await?;
    ensure!(code == CloseCode::Normal, "leave closed with {code}");
    server.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_converges_through_10_percent_loss_50ms_latency_and_reordering() -> Result<()> {
    lossy_link(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_redundant_snapshots_mask_most_of_a_10_percent_loss() -> Result<()> {
    lossy_link(true).await
}

/// 180 ticks through a seeded 10 % datagram loss, 50 ms latency and
/// reordering, with or without `QuicConfig::redundant_snapshots`.
async fn lossy_link(redundant: bool) -> Result<()> {
    let link: ConditionerConfig = "latency=50ms,jitter=5ms,loss=10%,reorder=5%".parse()?;
    let mut config = quic_config()
        .with_conditioner(Some(link))
        .with_quic(QuicConfig::default().with_redundant_snapshots(redundant));
    config.session.conditioner_seed = 42;
    let server = TestServer::start(config).await?;
    let mut c = TestClient::connect(&quic_url(&server), trust(&server)).await?;
    let start = newest(&c);
    let deadline = Instant::now() + DEADLINE;
    let mut first = None;
    let mut last = 0;
    // 180 ticks (3 s) of play with inputs every snapshot; every snapshot that
    // arrives must decode against a kept baseline (a BaselineMissing error
    // fails the test) and equal the world.
    while last < start + 180 {
        let ev = timeout_at(deadline, c.next_event())
            .await
            .context("the lossy link stalled")?;
        match ev {
            Ok(ClientEvent::Snapshot(a)) => {
                let tick = a.tick;
                check(&server, &c)?;
                first.get_or_insert(tick);
                last = tick;
                c.send_input(TestInput::Move { dx: 1, dy: 0 }).await?;
            }
            Ok(ClientEvent::Closed { code, reason }) => bail!("closed: {code} {reason}"),
            Ok(_) => {}
            Err(e @ ClientError::Protocol(_)) => bail!("protocol or baseline error: {e}"),
            Err(e) => return Err(e.into()),
        }
    }
    let stats = c.stats();
    let span = u64::from(last - first.unwrap_or(last)) + 1;
    if redundant {
        // Copies arrived (and were ignored once applied); with two chances
        // per snapshot at 10 % loss, about 1 % of ticks are missed.
        ensure!(
            stats.snapshots_stale > 0,
            "no redundant copy arrived: {stats:?}"
        );
        ensure!(
            stats.snapshots_applied * 100 >= span * 95,
            "redundancy did not mask the loss: {stats:?} over {span} ticks"
        );
    } else {
        // Loss happened (not every tick arrived), yet most did.
        ensure!(
            stats.snapshots_applied < span,
            "no snapshot was lost: {stats:?} over {span} ticks"
        );
        ensure!(
            stats.snapshots_applied * 10 >= span * 7,
            "too few snapshots arrived: {stats:?} over {span} ticks"
        );
    }
    // Deltas kept being used against acknowledged baselines.
    ensure!(
        stats.full_snapshots * 4 < stats.snapshots_applied,
        "deltas were used: {stats:?}"
    );
    ensure!(stats.datagrams_received > 0, "datagrams used: {stats:?}");
    // The player's inputs (sent over lossy datagrams, resent until applied)
    // moved its entity on the server.
    let mine = c
        .world()
        .iter()
        .find(|(_, e)| e.owner == c.welcome().client_id && !e.crate_)
        .map_or(0, |(_, e)| e.x);
    ensure!(mine > 50, "inputs applied: x = {mine}");
    server.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_connects_through_a_retry() -> Result<()> {
    let config = quic_config().with_quic(QuicConfig::default().with_retry(RetryPolicy::Always));
    let server = TestServer::start(config).await?;
    let mut c = TestClient::connect(&quic_url(&server), trust(&server)).await?;
    let t = newest(&c);
    follow(&server, &mut c, t + 5).await?;
    server.server.shutdown().await;
    Ok(())
}

/// Waits for the server to close `conn`; returns its code and reason.
async fn closed_with(conn: &quinn::Connection) -> Result<(u64, String)> {
    let e = tokio::time::timeout(DEADLINE, conn.closed())
        .await
        .context("the server did not close the connection")?;
    match e {
        quinn::ConnectionError::ApplicationClosed(c) => Ok((
            c.error_code.into_inner(),
            String::from_utf8_lossy(&c.reason).into_owned(),
        )),
        other => bail!("closed without an application code: {other}"),
    }
}

/// Opens the stream and sends a valid hello.
async fn hello_stream(conn: &quinn::Connection) -> Result<(quinn::SendStream, quinn::RecvStream)> {
    let (mut send, recv) = conn.open_bi().await?;
    let hello = ClientMessage::<TestInput>::Hello(hello()).to_bytes()?;
    send.write_all(&frame_header(hello.len(), 4096)?).await?;
    send.write_all(&hello).await?;
    Ok((send, recv))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_quic_peers_are_closed_with_a_code_and_the_room_plays_on() -> Result<()> {
    let mut config = quic_config();
    config.room.max_messages_per_sec = 100;
    let server = TestServer::start(config).await?;
    let mut good = TestClient::connect(&quic_url(&server), trust(&server)).await?;

    // A length prefix over the limit: closed before the server reads it.
    let (_e1, conn) = server.raw_quic(&[QUIC_ALPN]).await?;
    let (mut send, _recv) = conn.open_bi().await?;
    send.write_all(&u32::MAX.to_le_bytes()).await?;
    let (code, reason) = closed_with(&conn).await?;
    ensure!(
        code == u64::from(CloseCode::MessageTooBig.to_u16()),
        "oversized frame: {code} {reason}"
    );
    ensure!(reason.contains("exceeds the limit"), "{reason}");

    // Garbage inside a well-framed message.
    let (_e2, conn) = server.raw_quic(&[QUIC_ALPN]).await?;
    let (mut send, _recv) = conn.open_bi().await?;
    send.write_all(&frame_header(3, 4096)?).await?;
    send.write_all(&[0xff, 0xff, 0xff]).await?;
    let (code, reason) = closed_with(&conn).await?;
    ensure!(
        code == u64::from(CloseCode::ProtocolError.to_u16()),
        "garbage: {code} {reason}"
    );

    // A flood of datagrams after a valid hello.
    let (_e3, conn) = server.raw_quic(&[QUIC_ALPN]).await?;
    let (_send, _recv) = hello_stream(&conn).await?;
    let ping = Bytes::from(ClientMessage::<TestInput>::Ping { nonce: 1 }.to_bytes()?);
    let flood = async {
        for _ in 0..5_000 {
            if conn.send_datagram(ping.clone()).is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
    };
    let (closed, ()) = tokio::join!(closed_with(&conn), flood);
    let (code, reason) = closed?;
    ensure!(
        code == u64::from(CloseCode::InputFlood.to_u16()),
        "datagram flood: {code} {reason}"
    );

    // The wrong ALPN fails the TLS handshake.
    let wrong = server.raw_quic(&[b"h2"]).await;
    ensure!(wrong.is_err(), "a wrong ALPN was accepted");

    // Meanwhile the good client kept playing.
    let t = newest(&good);
    let checked = follow(&server, &mut good, t + 30).await?;
    ensure!(checked >= 10, "good client applied {checked} snapshots");
    ensure!(good.closed().is_none());
    server.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_shutdown_sends_the_close_code() -> Result<()> {
    let server = TestServer::start(quic_config()).await?;
    let mut c = TestClient::connect(&quic_url(&server), trust(&server)).await?;
    let t = newest(&c);
    follow(&server, &mut c, t + 2).await?;
    let stop = tokio::spawn(server.server.shutdown());
    let deadline = Instant::now() + DEADLINE;
    loop {
        match timeout_at(deadline, c.next_event()).await?? {
            ClientEvent::Closed { code, reason } => {
                ensure!(
                    code == CloseCode::ServerShutdown,
                    "closed with {code} {reason}"
                );
                break;
            }
            _ => continue,
        }
    }
    stop.await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_reconnect_resumes_the_same_player() -> Result<()> {
    let server = TestServer::start(quic_config()).await?;
    let mut c = TestClient::connect(&quic_url(&server), trust(&server)).await?;
    let id = c.welcome().client_id;
    c.send_input(TestInput::Move { dx: 7, dy: 0 }).await?;
    let t = newest(&c);
    follow(&server, &mut c, t + 10).await?;
    let welcome = c.reconnect().await?.clone();
    ensure!(welcome.resumed, "the session resumed: {welcome:?}");
    ensure!(welcome.client_id == id, "same client id");
    // The new connection starts from a full snapshot that still holds the
    // player's entity where it was.
    let t = newest(&c).max(welcome.tick);
    follow(&server, &mut c, t + 10).await?;
    let x = c
        .world()
        .iter()
        .find(|(_, e)| e.owner == id && !e.crate_)
        .map(|(_, e)| e.x);
    ensure!(x == Some(7), "the entity kept its position: {x:?}");
    server.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_without_a_stream_times_out_and_caps_are_shared_with_wss() -> Result<()> {
    let mut config = quic_config();
    config.listener.max_connections_per_ip = 2;
    let server = TestServer::start(config).await?;

    // A connection that never opens its stream is closed at the handshake
    // deadline (2 s in the test config), with the code.
    let (_e1, idle) = server.raw_quic(&[QUIC_ALPN]).await?;
    // One WSS connection takes the second slot of this IP.
    let _wss = TestClient::connect(&server.ws_url(), trust(&server)).await?;
    // A third connection, over QUIC, is over the per-IP cap: refused.
    let third = server.raw_quic(&[QUIC_ALPN]).await;
    ensure!(
        third.is_err(),
        "a third connection from one IP was accepted"
    );

    let (code, reason) = closed_with(&idle).await?;
    ensure!(
        code == u64::from(CloseCode::HandshakeTimeout.to_u16()),
        "no stream: {code} {reason}"
    );
    // Its slot is free again.
    let deadline = Instant::now() + DEADLINE;
    loop {
        match TestClient::connect(&quic_url(&server), trust(&server)).await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(error = %e, "slot not free yet");
                tokio::task::yield_now().await;
            }
            Err(e) => bail!("the slot was not released: {e}"),
        }
    }
    server.server.shutdown().await;
    Ok(())
}
