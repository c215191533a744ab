//! A session's life over real TLS on loopback: graceful shutdown, resume
//! after a dropped connection, visibility on the wire, the HTTP side of the
//! origin, idle timeout, and snapshots larger than the incoming message limit.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use tickwire_server::ServerConfig;
use tickwire_shared::Writer;
use tickwire_tests::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(5);

fn config() -> ServerConfig {
    test_config().with_tick_rate(20).with_snapshot_interval(1)
}

/// Applies `n` snapshots, checking each against the server's world and with
/// `each`.
async fn follow(
    server: &TestServer,
    c: &mut TestClient,
    n: usize,
    mut each: impl FnMut(&TestClient) -> Result<()>,
) -> Result<()> {
    let mut seen = 0;
    while seen < n {
        if let Received::Snapshot { .. } = c.recv(DEADLINE).await? {
            check_matches(&server.history, c)?;
            each(c)?;
            seen += 1;
        }
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown() -> Result<()> {
    let mut c = config();
    c.lifecycle.shutdown_timeout = Duration::from_secs(2);
    let shutdown_timeout = c.lifecycle.shutdown_timeout;
    let server = TestServer::start(c).await?;
    let addr = server.server.local_addr();
    let mut closes = Vec::new();
    for _ in 0..2 {
        let mut client = server.client(hello()).await?;
        client.until_tick(1, DEADLINE).await?;
        closes.push(tokio::spawn(async move {
            expect_close(&mut client.ws, DEADLINE).await
        }));
    }
    let t0 = Instant::now();
    server.server.shutdown().await;
    let took = t0.elapsed();
    ensure!(
        took < shutdown_timeout + Duration::from_secs(1),
        "shutdown took {took:?}"
    );
    for close in closes {
        let (code, reason) = close.await??;
        ensure!(
            code == 1001 && reason == "server shutting down",
            "closed with {code} {reason:?}"
        );
    }
    match tokio::time::timeout(DEADLINE, TcpStream::connect(addr)).await {
        Ok(Err(_)) => Ok(()),
        Ok(Ok(_)) => bail!("a new connection was accepted after shutdown"),
        Err(_) => bail!("connecting after shutdown hung"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_dropped_connection() -> Result<()> {
    const GRACE: Duration = Duration::from_millis(1500);
    let server = TestServer::start(config().with_resume_grace(GRACE)).await?;
    let mut b = server.client(hello()).await?;
    let mut a = server.client(hello()).await?;
    let (id, token) = (a.welcome.client_id, a.welcome.resume_token);
    a.until(DEADLINE, |c| c.my_entity().is_some()).await?;
    let entity = a.my_entity().context("a's entity")?;
    for _ in 0..3 {
        a.input(TestInput::Move { dx: 5, dy: 7 }).await?;
    }
    let moved = |c: &TestClient| c.entity(entity).is_some_and(|e| (e.x, e.y) == (15, 21));
    a.until(DEADLINE, moved).await?;
    b.until(DEADLINE, moved).await?;

    // The connection ends without a WebSocket close: the transport shuts
    // down cleanly (as a TLS-terminating proxy or an exiting process does).
    a.ws.get_mut().shutdown().await?;
    drop(a);
    // Within the grace period the entity stays, unchanged, for everyone.
    follow(&server, &mut b, 8, |c| {
        ensure!(moved(c), "a's entity kept its state while a was away");
        Ok(())
    })
    .await?;

    let mut h = hello();
    h.resume_token = Some(token);
    let mut a = server.client(h).await?;
    ensure!(a.welcome.resumed, "welcome says resumed");
    ensure!(a.welcome.client_id == id, "same client id");
    ensure!(a.welcome.resume_token == token, "same resume token");
    a.until(DEADLINE, |c| c.my_entity().is_some() && c.latest.is_some())
        .await?;
    ensure!(a.my_entity() == Some(entity), "same entity after resume");
    a.until(DEADLINE, |c| c.entity(entity).is_some()).await?;
    let e = a.entity(entity).context("a sees its entity")?;
    ensure!(
        (e.owner, e.x, e.y) == (id, 15, 21),
        "state kept across the resume: {e:?}"
    );
    // The resumed session's inputs count.
    a.input(TestInput::Move { dx: 1, dy: 0 }).await?;
    a.until(DEADLINE, |c| c.entity(entity).is_some_and(|e| e.x == 16))
        .await?;
    b.until(DEADLINE, |c| c.entity(entity).is_some_and(|e| e.x == 16))
        .await?;

    // Dropped again (the TCP connection simply goes away), and not resumed:
    // the entity is despawned once the grace period has run out, not before.
    drop(a);
    let t0 = Instant::now();
    b.until(GRACE + DEADLINE, |c| c.entity(entity).is_none())
        .await
        .context("a's entity was despawned after the grace period")?;
    let took = t0.elapsed();
    ensure!(
        took >= GRACE,
        "despawned after {took:?}, before the grace period"
    );
    check_matches(&server.history, &b)?;
    // The token is spent: presenting it again starts a new session.
    let mut h = hello();
    h.resume_token = Some(token);
    let fresh = server.client(h).await?;
    ensure!(
        !fresh.welcome.resumed && fresh.welcome.client_id != id,
        "an expired token does not resume"
    );
    server.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visibility_hides_state_on_the_wire() -> Result<()> {
    const SECRET: u32 = 0xDEAD_BEEF;
    // How the secret can appear on the wire: in a full state, bincode's
    // varint (a marker byte, then 4 little-endian bytes); in a delta patch
    // from a baseline of 0, the zigzag varint of the difference read as i32.
    let mut w = Writer::new();
    w.u32(SECRET);
    let full = w.into_vec();
    let le = SECRET.to_le_bytes();
    ensure!(
        full.ends_with(&le) && le == [0xEF, 0xBE, 0xAD, 0xDE],
        "u32 {SECRET:#x} is a varint marker then 4 little-endian bytes: {full:02x?}"
    );
    let mut w = Writer::new();
    w.i64(i64::from(SECRET as i32));
    let patch = w.into_vec();
    let needles = [le.to_vec(), full, patch];
    let carries_secret = |m: &[u8]| needles.iter().any(|n| contains(m, n));

    let server = TestServer::start(config()).await?;
    let mut a = server.client(hello()).await?;
    a.until(DEADLINE, |c| c.my_entity().is_some()).await?;
    let entity = a.my_entity().context("a's entity")?;
    a.input(TestInput::SetSecret(SECRET)).await?;
    let secret = |c: &TestClient| c.entity(entity).is_some_and(|e| e.secret == SECRET);
    a.until(DEADLINE, secret).await?;

    // B joins while A's entity is secret: it never gets it.
    let mut b = server.client(hello()).await?;
    let hidden = |c: &TestClient| {
        ensure!(c.entity(entity).is_none(), "b received a's secret entity");
        Ok(())
    };
    follow(&server, &mut b, 20, hidden).await?;

    // Revealed, B sees it (so the check above could fail)…
    a.input(TestInput::SetSecret(0)).await?;
    b.until(DEADLINE, |c| c.entity(entity).is_some()).await?;
    // …and hidden again, it leaves B's world without its secret reaching B.
    a.input(TestInput::SetSecret(SECRET)).await?;
    b.until(DEADLINE, |c| c.entity(entity).is_none()).await?;
    check_matches(&server.history, &b)?;
    follow(&server, &mut b, 20, hidden).await?;

    a.until(DEADLINE, secret).await?;
    ensure!(
        a.raw.iter().any(|m| carries_secret(m)),
        "a received its own secret on the wire (so the byte check can fail)"
    );
    ensure!(b.raw.len() >= 40, "b received snapshots");
    for (i, m) in b.raw.iter().enumerate() {
        ensure!(
            !carries_secret(m),
            "b's snapshot #{i} carries the secret's bytes: {m:02x?}"
        );
    }
    server.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_static_files() -> Result<()> {
    const HTML: &str = "<!doctype html><title>tickwire</title><p>hello</p>\n";
    const WASM: &[u8] = b"\0asm\x01\0\0\0";
    let dir = std::env::temp_dir().join(format!(
        "tickwire-lifecycle-static-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    ));
    std::fs::create_dir_all(dir.join("pkg"))?;
    std::fs::write(dir.join("index.html"), HTML)?;
    std::fs::write(dir.join("pkg/game_bg.wasm"), WASM)?;
    let result = async {
        let server = TestServer::start(config().with_static_dir(Some(dir.clone()))).await?;
        let res = server.https_get("/healthz").await?;
        ensure!(res.status == 200, "healthz: {}", res.status);
        ensure!(res.body == b"ok", "healthz body {:?}", res.body);

        let res = server.https_get("/").await?;
        ensure!(res.status == 200, "/: {}", res.status);
        ensure!(
            res.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "/ is html: {:?}",
            res.header("content-type")
        );
        ensure!(res.body == HTML.as_bytes(), "/ serves index.html");

        let res = server.https_get("/pkg/game_bg.wasm").await?;
        ensure!(res.status == 200, "wasm: {}", res.status);
        ensure!(
            res.header("content-type") == Some("application/wasm"),
            "wasm content type {:?}",
            res.header("content-type")
        );
        ensure!(res.body == WASM, "the wasm bytes");

        let res = server.https_get("/missing.js").await?;
        ensure!(
            res.status == 404,
            "a missing file is 404, got {}",
            res.status
        );
        server.server.shutdown().await;
        Ok(())
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout() -> Result<()> {
    const IDLE: Duration = Duration::from_secs(1);
    let server = TestServer::start(config().with_idle_timeout(IDLE)).await?;
    // A client that keeps sending (acks) is never idle.
    let good = server.client(hello()).await?;
    let mut good = Watcher::start(good, Arc::clone(&server.history));
    good.wait_snapshots(2, DEADLINE).await?;

    let t0 = Instant::now();
    let mut idle = server.client(hello()).await?;
    // Reads everything, sends nothing (no acks, no pongs).
    let (code, reason) = expect_close(&mut idle.ws, IDLE + DEADLINE).await?;
    let took = t0.elapsed();
    ensure!(code == 4001, "closed with {code} {reason:?}, expected 4001");
    ensure!(
        reason.contains("nothing received"),
        "reason {reason:?} says the client was idle"
    );
    ensure!(
        took >= IDLE && took < IDLE + Duration::from_secs(1),
        "closed after {took:?} with an idle timeout of {IDLE:?}"
    );

    let report = good.finish(10).await?;
    ensure!(
        report.snapshots as u32 >= 20 + 10,
        "the good client stayed through the idle timeout ({} snapshots)",
        report.snapshots
    );
    server.server.shutdown().await;
    Ok(())
}

/// Outgoing snapshots are bounded by the clients' `max_server_message_bytes`,
/// not by the (much smaller) incoming WebSocket message limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_gets_a_full_snapshot_larger_than_the_incoming_limit() -> Result<()> {
    const CRATES: usize = 4_000;
    let mut c = config();
    c.room.max_inputs_per_tick = 1024;
    c.room.max_queued_inputs = 2 * CRATES;
    c.room.max_messages_per_sec = 10_000;
    let incoming_limit = c.listener.max_ws_message_bytes;
    let server = TestServer::start(c).await?;
    let mut a = server.client(hello()).await?;
    a.until_tick(1, DEADLINE).await?;
    for _ in 0..CRATES / 32 {
        a.inputs(vec![TestInput::SpawnCrate; 32]).await?;
    }
    let want = CRATES / 32 * 32;
    let crates = |c: &TestClient| {
        c.latest
            .as_ref()
            .map_or(0, |(_, s)| s.iter().filter(|(_, e)| e.crate_).count())
    };
    a.until(DEADLINE, |c| crates(c) == want).await?;

    let mut b = server.client(hello()).await?;
    let (tick, bytes) = loop {
        if let Received::Snapshot { tick, bytes } = b.recv(DEADLINE).await? {
            break (tick, bytes);
        }
    };
    check_matches(&server.history, &b)?;
    ensure!(crates(&b) == want, "the late joiner sees every crate");
    ensure!(
        bytes.len() > 3 * incoming_limit,
        "the first snapshot ({} bytes at tick {tick}) is a large full one",
        bytes.len()
    );
    follow(&server, &mut b, 10, |_| Ok(())).await?;
    server.server.shutdown().await;
    Ok(())
}
