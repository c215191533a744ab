//! Bad input over real TLS WebSockets on loopback. Each bad peer loses its own
//! session with a clear close code and reason, while a well-behaved client in
//! the same room keeps receiving every tick's snapshot (no gap) and keeps
//! matching the server's world.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures_util::{SinkExt, StreamExt};
use tickwire_server::{MessageLimits, ServerConfig};
use tickwire_shared::{ClientMessage, GameProtocol, Hello, RejectCode};
use tickwire_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

const DEADLINE: Duration = Duration::from_secs(5);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// 20 ticks per second, a snapshot every tick, short handshake timeout.
fn config() -> ServerConfig {
    test_config()
        .with_tick_rate(20)
        .with_snapshot_interval(1)
        .with_handshake_timeout(HANDSHAKE_TIMEOUT)
}

/// A server with a well-behaved client watching in the background.
struct Scene {
    server: TestServer,
    good: Watcher,
}

impl Scene {
    async fn start(config: ServerConfig) -> Result<Self> {
        Self::start_with(config, hello()).await
    }

    async fn start_with(config: ServerConfig, good_hello: Hello) -> Result<Self> {
        let server = TestServer::start(config).await?;
        let good = server.client(good_hello).await?;
        let mut good = Watcher::start(good, Arc::clone(&server.history));
        good.wait_snapshots(3, DEADLINE).await?;
        Ok(Self { server, good })
    }

    /// A bad client that completed the handshake, once the good client
    /// sees its entity.
    async fn bad_client(&mut self) -> Result<TestClient> {
        let bad = self.server.client(hello()).await?;
        let id = bad.welcome.client_id;
        self.good
            .wait_view(DEADLINE, |w| w.iter().any(|(_, e)| e.owner == id))
            .await
            .context("the good client never saw the bad client's entity")?;
        Ok(bad)
    }

    /// Waits until the good client's world no longer holds anything of
    /// client `id`.
    async fn wait_gone(&mut self, id: u32) -> Result<()> {
        self.good
            .wait_view(DEADLINE, |w| w.iter().all(|(_, e)| e.owner != id))
            .await
            .with_context(|| format!("client {id}'s entity stayed in the room"))?;
        Ok(())
    }

    /// The good client applies `more` snapshots, then everything it saw is
    /// checked: consecutive ticks, each matching the world.
    async fn finish(self) -> Result<()> {
        let before = self.good.snapshots();
        let report = self.good.finish(10).await?;
        ensure!(
            report.snapshots >= before + 10,
            "the good client kept receiving"
        );
        ensure!(
            report.last_tick - report.first_tick + 1 == report.snapshots as u32,
            "no gap: {} snapshots from tick {} to {}",
            report.snapshots,
            report.first_tick,
            report.last_tick
        );
        self.server.server.shutdown().await;
        Ok(())
    }
}

/// Expects the server's close with `code`, and a reason mentioning `what`.
async fn expect_closed(ws: &mut Ws, code: u16, what: &str) -> Result<String> {
    let (got, reason) = expect_close(ws, DEADLINE).await?;
    ensure!(
        got == code,
        "close code {got} ({reason:?}), expected {code}"
    );
    ensure!(
        !reason.is_empty() && reason.to_lowercase().contains(&what.to_lowercase()),
        "close reason {reason:?} should say {what:?}"
    );
    Ok(reason)
}

async fn send_hello(ws: &mut Ws, hello: Hello) -> Result<()> {
    let bytes = ClientMessage::<TestInput>::Hello(hello).to_bytes()?;
    ws.send(Message::Binary(bytes.into())).await?;
    Ok(())
}

/// Sends `hello`, expects a reject with `code` whose message says `what`,
/// then the close 4005.
async fn expect_rejected(
    server: &TestServer,
    hello: Hello,
    code: RejectCode,
    what: &str,
) -> Result<()> {
    let mut ws = server.ws_connect(None).await?;
    send_hello(&mut ws, hello).await?;
    let reject = expect_reject(&mut ws, DEADLINE).await?;
    ensure!(
        reject.code == code,
        "reject {} ({}), expected {code}",
        reject.code,
        reject.message
    );
    ensure!(
        reject.message.to_lowercase().contains(what),
        "reject message {:?} should say {what:?}",
        reject.message
    );
    expect_closed(&mut ws, 4005, what).await?;
    Ok(())
}

/// Seeded pseudo-random bytes (xorshift64*).
fn junk(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_protocol_version() -> Result<()> {
    let s = Scene::start(config()).await?;
    let mut h = hello();
    h.protocol_version = h.protocol_version.wrapping_add(1);
    expect_rejected(&s.server, h, RejectCode::VersionMismatch, "protocol").await?;
    s.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_game_hash() -> Result<()> {
    let s = Scene::start(config()).await?;
    let h = Hello::new(TestProto::PROTOCOL_HASH ^ 1);
    expect_rejected(&s.server, h, RejectCode::GameMismatch, "hash").await?;
    s.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_rejected() -> Result<()> {
    let s = Scene::start(config()).await?;
    let mut h = hello();
    h.auth_token = Some("bad".into());
    expect_rejected(&s.server, h, RejectCode::AuthFailed, "refused").await?;
    s.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_full() -> Result<()> {
    let mut c = config();
    c.room.max_clients = 1;
    let mut solo = hello();
    solo.room = Some("solo".into());
    let s = Scene::start_with(c, solo.clone()).await?;
    expect_rejected(&s.server, solo, RejectCode::RoomFull, "full").await?;
    s.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes() -> Result<()> {
    let mut s = Scene::start(config()).await?;
    let mut bad = s.bad_client().await?;
    let bytes = junk(64, 0x5eed_1234_abcd_0001);
    ensure!(
        ClientMessage::<TestInput>::decode(&bytes, &bad.limits).is_err(),
        "the junk must not be a valid message"
    );
    bad.ws.send(Message::Binary(bytes.into())).await?;
    expect_closed(&mut bad.ws, 1002, "malformed").await?;
    s.wait_gone(bad.welcome.client_id).await?;
    s.finish().await
}

/// Junk below the WebSocket framing (straight into the TLS stream).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_frame_bytes() -> Result<()> {
    let mut s = Scene::start(config()).await?;
    let mut bad = s.bad_client().await?;
    let mut bytes = junk(64, 0x5eed_1234_abcd_0002);
    bytes[0] = 0xff; // FIN with all three reserved bits set: never valid here
    let tls = bad.ws.get_mut();
    tls.write_all(&bytes).await?;
    tls.flush().await?;
    expect_closed(&mut bad.ws, 1002, "protocol").await?;
    s.wait_gone(bad.welcome.client_id).await?;
    s.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_frame() -> Result<()> {
    let mut s = Scene::start(config()).await?;
    let mut bad = s.bad_client().await?;
    bad.ws.send(Message::text("hello?")).await?;
    expect_closed(&mut bad.ws, 1003, "text").await?;
    s.wait_gone(bad.welcome.client_id).await?;
    s.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame() -> Result<()> {
    let mut s = Scene::start(config()).await?;
    let max = config().listener.max_ws_message_bytes;
    let mut bad = s.bad_client().await?;
    bad.ws.send(Message::binary(vec![1u8; max + 1000])).await?;
    expect_closed(&mut bad.ws, 1009, &max.to_string()).await?;
    s.wait_gone(bad.welcome.client_id).await?;
    s.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_flood() -> Result<()> {
    let mut s = Scene::start(config()).await?;
    let mut bad = s.bad_client().await?;
    let mut sent = 0;
    for _ in 0..5_000 {
        if bad.input(TestInput::Move { dx: 1, dy: 1 }).await.is_err() {
            break; // the server closed the connection
        }
        sent += 1;
    }
    ensure!(sent > 0, "the flood started");
    expect_closed(&mut bad.ws, 4002, "messages per second").await?;
    s.wait_gone(bad.welcome.client_id).await?;
    s.finish().await
}

/// A client that floods game messages (each a valid message, within the
/// overall message rate) is closed with 4008 once over the game-message
/// rate; the good client in the room sees nothing of it. Its messages within
/// the burst reach the game, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn game_message_flood() -> Result<()> {
    let mut config = config();
    config.room.game_messages = MessageLimits::default().with_rate(5, 10);
    let mut s = Scene::start(config).await?;
    let mut bad = s.bad_client().await?;
    let mut sent = 0;
    for k in 0..100 {
        let msg = ClientMessage::GameMessage(TestMessage::Say(format!("spam {k}")));
        if bad.send(msg).await.is_err() {
            break; // the server closed the connection
        }
        sent += 1;
    }
    ensure!(sent > 10, "the flood went past the burst ({sent} sent)");
    expect_closed(&mut bad.ws, 4008, "game messages per second").await?;
    s.wait_gone(bad.welcome.client_id).await?;
    s.finish().await
}

/// A game message over `max_game_message_bytes` (but within the message and
/// frame limits) closes the session with 1009 before it is decoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_game_message() -> Result<()> {
    let mut s = Scene::start(config()).await?;
    let mut bad = s.bad_client().await?;
    let max = bad.limits.max_game_message_bytes;
    let text = "x".repeat(max);
    bad.send(ClientMessage::GameMessage(TestMessage::Say(text)))
        .await?;
    expect_closed(&mut bad.ws, 1009, &max.to_string()).await?;
    s.wait_gone(bad.welcome.client_id).await?;
    s.finish().await
}

/// Game messages from a well-behaved client come back as the game's events,
/// once each and in order, over a real socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn game_messages_arrive_in_order() -> Result<()> {
    let s = Scene::start(config()).await?;
    let mut c = s.server.client(hello()).await?;
    let id = c.welcome.client_id;
    for k in 0..20 {
        c.send(ClientMessage::GameMessage(TestMessage::Say(format!(
            "m{k}"
        ))))
        .await?;
    }
    let want: Vec<_> = (0..20)
        .map(|k| TestEvent::Said(id, format!("m{k}")))
        .collect();
    let deadline = Instant::now() + DEADLINE;
    while c
        .events
        .iter()
        .filter(|e| matches!(e, TestEvent::Said(..)))
        .count()
        < want.len()
    {
        ensure!(Instant::now() < deadline, "events so far: {:?}", c.events);
        c.recv(DEADLINE).await?;
    }
    let said: Vec<_> = c
        .events
        .iter()
        .filter(|e| matches!(e, TestEvent::Said(..)))
        .cloned()
        .collect();
    ensure!(said == want, "{said:?}");
    s.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_finishes_handshake() -> Result<()> {
    let s = Scene::start(config()).await?;
    let t0 = Instant::now();
    let mut ws = s.server.ws_connect(None).await?;
    expect_closed(&mut ws, 4000, "handshake").await?;
    let took = t0.elapsed();
    ensure!(
        took < HANDSHAKE_TIMEOUT + Duration::from_secs(1),
        "closed after {took:?}, the handshake timeout is {HANDSHAKE_TIMEOUT:?}"
    );
    s.finish().await
}

/// Reads until EOF or an error; returns how long that took.
async fn until_dropped(tcp: &mut TcpStream, t0: Instant) -> Result<Duration> {
    let mut buf = [0u8; 1024];
    let deadline = t0 + HANDSHAKE_TIMEOUT + Duration::from_secs(1);
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => bail!("the server kept the connection open past the handshake timeout"),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(t0.elapsed()),
            Ok(Ok(_)) => {} // a TLS alert, say
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_tcp_never_starts_tls() -> Result<()> {
    let s = Scene::start(config()).await?;
    let addr = s.server.server.local_addr();
    // One connection sends nothing at all…
    let t0 = Instant::now();
    let mut silent = TcpStream::connect(addr).await?;
    // …another speaks plain HTTP and junk to the TLS port.
    let t1 = Instant::now();
    let mut junky = TcpStream::connect(addr).await?;
    junky
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await?;
    junky.write_all(&junk(256, 7)).await?;
    let (silent_took, junk_took) = tokio::try_join!(
        until_dropped(&mut silent, t0),
        until_dropped(&mut junky, t1)
    )?;
    ensure!(
        silent_took >= HANDSHAKE_TIMEOUT,
        "the silent connection was dropped by the handshake timeout, not before ({silent_took:?})"
    );
    ensure!(
        junk_took < HANDSHAKE_TIMEOUT,
        "junk is refused at once ({junk_took:?})"
    );
    s.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origin() -> Result<()> {
    let s = Scene::start(config()).await?;
    match s.server.ws_connect(Some("https://evil.example")).await {
        Ok(_) => bail!("a foreign origin was upgraded"),
        Err(e) => match e.downcast_ref::<tungstenite::Error>() {
            Some(tungstenite::Error::Http(res)) => {
                ensure!(res.status() == 403, "status {}", res.status());
            }
            _ => bail!("expected an HTTP 403, got {e:#}"),
        },
    }
    // The server's own origin is accepted on the same server.
    let own = format!("https://localhost:{}", s.server.server.local_addr().port());
    let ws = s.server.ws_connect(Some(&own)).await?;
    TestClient::handshake(ws, hello()).await?;
    s.finish().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_reading() -> Result<()> {
    const CRATES: usize = 10_000;
    let mut c = config();
    c.room.resume_grace = Duration::ZERO;
    c.session.write_timeout = Duration::from_millis(500);
    c.room.max_skipped_snapshots = 5;
    c.room.max_inputs_per_tick = 1024;
    c.room.max_queued_inputs = 2 * CRATES;
    c.room.max_messages_per_sec = 10_000;
    let mut s = Scene::start(c).await?;
    // The slow client's socket holds little; it never reads after the
    // welcome and never acks, so every snapshot it is sent is a full one of
    // a world made large by its own crates.
    let mut slow = s.server.client_small(hello(), 4096).await?;
    let id = slow.welcome.client_id;
    for _ in 0..CRATES / 32 {
        slow.inputs(vec![TestInput::SpawnCrate; 32]).await?;
    }
    let want = CRATES / 32 * 32;
    s.good
        .wait_view(Duration::from_secs(10), |w| {
            w.iter().filter(|(_, e)| e.owner == id && e.crate_).count() == want
        })
        .await
        .context("the crates were spawned")?;
    let t0 = Instant::now();
    // The server cuts the slow client off: its entity and crates leave the
    // room (no resume grace), while the good client sees every tick.
    s.wait_gone(id).await?;
    eprintln!("slow consumer removed after {:?}", t0.elapsed());
    // Reading now, the slow client finds its connection ended: the buffered
    // snapshots, then a 4003 close or the end of the stream.
    let end = Instant::now() + Duration::from_secs(10);
    let mut messages = 0usize;
    let how = loop {
        match tokio::time::timeout_at(end, slow.ws.next()).await {
            Err(_) => bail!("the slow client's connection is still open"),
            Ok(None) => break "end of stream".to_owned(),
            Ok(Some(Err(e))) => break format!("error: {e}"),
            Ok(Some(Ok(Message::Close(frame)))) => {
                if let Some(f) = &frame {
                    let code = u16::from(f.code);
                    ensure!(code == 4003, "close {code} {:?}, expected 4003", f.reason);
                }
                break format!("close frame {frame:?}");
            }
            Ok(Some(Ok(_))) => messages += 1,
        }
    };
    eprintln!("the slow client read {messages} buffered messages, then: {how}");
    s.finish().await
}
