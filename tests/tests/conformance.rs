//! Conformance with RFC 6455 (closing handshake), RFC 9112 (`Host`) and
//! docs/PROTOCOL.md §2.1 and §10.2, over real TLS on loopback: the defects an
//! external conformance battery found, one test each.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures_util::StreamExt;
use tickwire_server::ServerConfig;
use tickwire_shared::{ClientMessage, Limits, ServerMessage};
use tickwire_tests::*;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

const DEADLINE: Duration = Duration::from_secs(10);

fn config() -> ServerConfig {
    test_config().with_tick_rate(30).with_snapshot_interval(1)
}

/// Reads until the server's close frame and returns it (`None`: an empty
/// close frame). Fails on a reset, an end without a close frame, or the
/// deadline.
async fn close_frame(ws: &mut Ws) -> Result<Option<CloseFrame>> {
    let end = Instant::now() + DEADLINE;
    loop {
        match tokio::time::timeout_at(end, ws.next()).await {
            Err(_) => bail!("no close frame before the deadline"),
            Ok(None) => bail!("the connection ended without a close frame"),
            Ok(Some(Err(e))) => bail!("connection error before a close frame: {e}"),
            Ok(Some(Ok(Message::Close(frame)))) => return Ok(frame),
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// The close frame's code, failing on an empty close frame.
async fn close_code(ws: &mut Ws) -> Result<(u16, String)> {
    match close_frame(ws).await? {
        Some(f) => Ok((u16::from(f.code), f.reason.to_string())),
        None => bail!("an empty close frame, expected a code"),
    }
}

/// After the closing handshake, the server ends the connection cleanly
/// (no reset, no further frames).
async fn expect_clean_end(ws: &mut Ws) -> Result<()> {
    match tokio::time::timeout(DEADLINE, ws.next()).await {
        Err(_) => bail!("the server kept the connection open after the closing handshake"),
        Ok(None) => Ok(()),
        Ok(Some(other)) => bail!("after the closing handshake: {other:?}"),
    }
}

/// One client-to-server WebSocket frame (FIN set, masked), raw.
fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// RFC 6455 §5.5.1: a close frame from the client is answered with a close
/// frame, echoing its code and reason (an empty one with an empty one), and
/// the connection then ends cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_is_echoed() -> Result<()> {
    let server = TestServer::start(config()).await?;
    let cases: [Option<(u16, &str)>; 3] = [Some((1000, "bye")), None, Some((4321, "custom"))];
    for case in cases {
        let mut client = server.client(hello()).await?;
        let sent = case.map(|(code, reason)| CloseFrame {
            code: code.into(),
            reason: reason.into(),
        });
        client.ws.close(sent.clone()).await?;
        let got = close_frame(&mut client.ws)
            .await
            .with_context(|| format!("client close {case:?}"))?;
        ensure!(got == sent, "client close {case:?} answered with {got:?}");
        expect_clean_end(&mut client.ws)
            .await
            .with_context(|| format!("client close {case:?}"))?;
    }
    server.server.shutdown().await;
    Ok(())
}

/// RFC 6455 §7.4: codes that must not appear in a close frame (1005, 1006,
/// 1015, below 1000, unassigned, 5000 and up) are answered with 1002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_close_code_is_answered_with_1002() -> Result<()> {
    let server = TestServer::start(config()).await?;
    for code in [1005u16, 1006, 1015, 999, 2000, 5000] {
        let mut client = server.client(hello()).await?;
        client
            .ws
            .close(Some(CloseFrame {
                code: code.into(),
                reason: "".into(),
            }))
            .await?;
        let (got, reason) = close_code(&mut client.ws)
            .await
            .with_context(|| format!("client close {code}"))?;
        ensure!(
            got == 1002,
            "client close {code} answered with {got} {reason:?}"
        );
    }
    server.server.shutdown().await;
    Ok(())
}

/// RFC 6455 §8.1 and §7.4.1: a close reason that is not UTF-8 is answered
/// with 1007.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_reason_not_utf8_is_answered_with_1007() -> Result<()> {
    let server = TestServer::start(config()).await?;
    let mut client = server.client(hello()).await?;
    let tls = client.ws.get_mut();
    tls.write_all(&masked_frame(0x8, &[0x03, 0xe8, 0xff, 0xfe, 0xfd]))
        .await?;
    tls.flush().await?;
    let (got, reason) = close_code(&mut client.ws).await?;
    ensure!(got == 1007, "answered with {got} {reason:?}, expected 1007");
    server.server.shutdown().await;
    Ok(())
}

const UPGRADE_HEADERS: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// RFC 9112 §3.2 and RFC 6455 §4.2.1: a request without `Host`, or with two,
/// gets 400 with a short text body (an upgrade request as well as a plain
/// one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_repeated_host_is_400() -> Result<()> {
    let server = TestServer::start(config()).await?;
    let requests = [
        format!("GET /ws HTTP/1.1\r\n{UPGRADE_HEADERS}\r\n"),
        format!(
            "GET /ws HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n{UPGRADE_HEADERS}\r\n"
        ),
        "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n".to_owned(),
        "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n".to_owned(),
    ];
    for req in &requests {
        let res = server
            .https_raw(req)
            .await
            .with_context(|| format!("request {req:?}"))?;
        ensure!(res.status == 400, "{req:?}: status {}", res.status);
        ensure!(
            res.header("content-type")
                .is_some_and(|t| t.starts_with("text/plain")),
            "{req:?}: a text body, got {:?}",
            res.header("content-type")
        );
        let body = String::from_utf8_lossy(&res.body).to_lowercase();
        ensure!(body.contains("host"), "{req:?}: body {body:?} names Host");
    }
    // One Host is fine.
    let res = server.https_get("/healthz").await?;
    ensure!(res.status == 200, "healthz: {}", res.status);
    server.server.shutdown().await;
    Ok(())
}

/// PROTOCOL.md §10.2: after `Leave` every session gets the protocol `Close`
/// (1000) and then the close frame with the same code, even while
/// snapshots are in flight at a high tick rate (full snapshots into small
/// client receive buffers keep some queued on the server) and acks sent
/// after the `Leave` are still unread when the session ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_sends_close_message_before_close_frame() -> Result<()> {
    const CLIENTS: usize = 40;
    let mut config = test_config()
        .with_tick_rate(120)
        .with_snapshot_interval(1)
        .with_handshake_timeout(Duration::from_secs(10))
        // Full snapshots: more bytes in flight than the clients' buffers hold.
        .with_deltas(false);
    // The first clients do not read while the others connect; that is not
    // what this test is about.
    config.room.max_skipped_snapshots = 100_000;
    // 40 clients, their sessions and the other tests of this file share the
    // machine: under `cargo xtask test` on 2 cores a client was seen to take
    // more than the default 1 s linger to read up to the close frame, and a
    // socket closed with the client's late acks unread sends a reset, which
    // makes the client's kernel drop the unread close. The linger is what
    // this test relies on, not its length.
    config.session.close_linger = Duration::from_secs(5);
    let server = TestServer::start(config).await?;
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let mut c = server.client_small(hello(), 4096).await?;
        // Crates make every snapshot larger, so more of them are in flight.
        c.inputs(vec![TestInput::SpawnCrate; 8]).await?;
        clients.push(c);
    }
    let go = std::sync::Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut tasks = JoinSet::new();
    for mut c in clients {
        let go = std::sync::Arc::clone(&go);
        tasks.spawn(async move {
            let id = c.welcome.client_id;
            let result = async {
                c.until(DEADLINE, |c| c.latest.is_some()).await?;
                go.wait().await;
                c.send(ClientMessage::Leave).await?;
                // Acks still on their way when the server closes.
                let tick = c.latest.as_ref().map_or(0, |(t, _)| *t);
                for _ in 0..16 {
                    c.send(ClientMessage::Ack {
                        snapshot_tick: tick,
                    })
                    .await?;
                }
                let end = Instant::now() + DEADLINE;
                let mut protocol_close = None;
                let mut late_acks = 8;
                loop {
                    let next = tokio::time::timeout_at(end, c.ws.next())
                        .await
                        .context("no close before the deadline")?;
                    match next {
                        None => bail!("the connection ended without a close frame"),
                        Some(Err(e)) => bail!("connection error before the close frame: {e}"),
                        Some(Ok(Message::Binary(b))) => {
                            match ServerMessage::<TestEvent>::decode(&b, &Limits::default())? {
                                ServerMessage::Close(close) => {
                                    ensure!(
                                        protocol_close.is_none(),
                                        "two protocol Close messages"
                                    );
                                    protocol_close = Some(close.code.to_u16());
                                }
                                // A few more acks, as a client that has not
                                // seen the Close yet sends (a bounded number:
                                // the server's linger after its close is
                                // bounded too).
                                ServerMessage::Snapshot(s) if late_acks > 0 => {
                                    late_acks -= 1;
                                    let _ = c
                                        .send(ClientMessage::Ack {
                                            snapshot_tick: s.header.tick,
                                        })
                                        .await;
                                }
                                _ => {}
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let code = frame.as_ref().map(|f| u16::from(f.code));
                            ensure!(
                                protocol_close == Some(1000),
                                "close frame {frame:?} after protocol Close {protocol_close:?}"
                            );
                            ensure!(code == Some(1000), "close frame {frame:?}");
                            return Ok(());
                        }
                        Some(Ok(_)) => {}
                    }
                }
            }
            .await;
            result.with_context(|| format!("client {id}"))
        });
    }
    let mut failures = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r? {
            failures.push(format!("{e:#}"));
        }
    }
    ensure!(
        failures.is_empty(),
        "{} of {CLIENTS} sessions: {failures:#?}",
        failures.len()
    );
    server.server.shutdown().await;
    Ok(())
}

/// The client's receive buffer in the close-code tests: small, so that the
/// server's answers (pongs) back up in the server's send queue, where a TCP
/// reset would destroy the close frame queued behind them.
const SMALL_RECV_BUFFER: u32 = 4096;

/// `n` WebSocket pings of 125 bytes each, raw.
fn pings(n: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let mut payload = [0u8; 125];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        out.extend_from_slice(&masked_frame(0x9, &payload));
    }
    out
}

/// A close code must survive a peer that is still sending: a 100 KiB hello
/// (in one frame, in one write, after pings) gets 1009, not a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_hello_close_code_arrives() -> Result<()> {
    let server = TestServer::start(config()).await?;
    let tls = server.tls_connect_small(SMALL_RECV_BUFFER).await?;
    let (mut ws, _) = tokio_tungstenite::client_async(server.ws_url(), tls).await?;
    let mut frame = pings(200);
    frame.extend_from_slice(&masked_frame(0x2, &vec![0u8; 100 * 1024]));
    // The server stops reading the frame at its header; the write may fail
    // once it closed, and that is not the point of the test.
    let tls = ws.get_mut();
    let _ = tokio::time::timeout(DEADLINE, async {
        tls.write_all(&frame).await?;
        tls.flush().await
    })
    .await;
    let (code, reason) = expect_close(&mut ws, DEADLINE).await?;
    ensure!(code == 1009, "close {code} {reason:?}, expected 1009");
    server.server.shutdown().await;
    Ok(())
}

/// A close code must survive a peer that is still sending: a burst of
/// WebSocket pings in one write gets 4002 (InputFlood), not a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_burst_close_code_arrives() -> Result<()> {
    let server = TestServer::start(config()).await?;
    let mut client = server.client_small(hello(), SMALL_RECV_BUFFER).await?;
    let burst = pings(1000);
    let tls = client.ws.get_mut();
    let _ = tokio::time::timeout(DEADLINE, async {
        tls.write_all(&burst).await?;
        tls.flush().await
    })
    .await;
    let (code, reason) = expect_close(&mut client.ws, DEADLINE).await?;
    ensure!(code == 4002, "close {code} {reason:?}, expected 4002");
    server.server.shutdown().await;
    Ok(())
}

/// Checks a refused connection's answer: 503 with `Retry-After`.
fn expect_503(res: &HttpResponse, which: &str) -> Result<()> {
    ensure!(res.status == 503, "{which}: status {}", res.status);
    ensure!(
        res.header("retry-after")
            .is_some_and(|v| v.parse::<u32>().is_ok_and(|s| s > 0)),
        "{which}: Retry-After {:?}",
        res.header("retry-after")
    );
    Ok(())
}

/// Over a connection cap, a client learns that the server is full: HTTP
/// 503 with `Retry-After`, not a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_connection_caps_is_503() -> Result<()> {
    let upgrade = format!("GET /ws HTTP/1.1\r\nHost: localhost\r\n{UPGRADE_HEADERS}\r\n");
    for (which, mut cfg) in [("per-IP cap", config()), ("total cap", config())] {
        if which == "per-IP cap" {
            cfg.listener.max_connections_per_ip = 2;
        } else {
            cfg.listener.max_connections = 2;
        }
        let server = TestServer::start(cfg).await?;
        let a = server.client(hello()).await?;
        let b = server.client(hello()).await?;
        let res = server.https_raw(&upgrade).await.context(which)?;
        expect_503(&res, which)?;
        let res = server.https_get("/healthz").await.context(which)?;
        expect_503(&res, which)?;
        drop((a, b));
        server.server.shutdown().await;
    }
    Ok(())
}

/// A symbolic link inside the static directory that points outside it is
/// not served; one that stays inside is.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_symlink_out_of_root_is_not_served() -> Result<()> {
    let base = std::env::temp_dir().join(format!(
        "tickwire-conformance-static-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    ));
    let root = base.join("www");
    let outside = base.join("private");
    std::fs::create_dir_all(&root)?;
    std::fs::create_dir_all(&outside)?;
    std::fs::write(root.join("index.html"), "<!doctype html>")?;
    std::fs::write(root.join("inside.txt"), "inside")?;
    std::fs::write(outside.join("secret.txt"), "secret")?;
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("leak.txt"))?;
    std::os::unix::fs::symlink("../private/secret.txt", root.join("leak2.txt"))?;
    std::os::unix::fs::symlink("inside.txt", root.join("alias.txt"))?;
    let result = async {
        let server = TestServer::start(config().with_static_dir(Some(root.clone()))).await?;
        for path in ["/leak.txt", "/leak2.txt"] {
            let res = server.https_get(path).await?;
            ensure!(
                res.status == 404,
                "{path}: status {}, body {:?}",
                res.status,
                String::from_utf8_lossy(&res.body)
            );
        }
        let res = server.https_get("/alias.txt").await?;
        ensure!(
            res.status == 200 && res.body == b"inside",
            "a link inside the root is served: {}",
            res.status
        );
        server.server.shutdown().await;
        Ok(())
    }
    .await;
    let _ = std::fs::remove_dir_all(&base);
    result
}
