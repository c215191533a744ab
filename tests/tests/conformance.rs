//! Conformance with RFC 6455 (closing handshake), RFC 9112 (`Host`) and
//! docs/PROTOCOL.md §2.1 and §10.2, over real TLS on loopback: the defects an
//! external conformance battery found, one test each.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures_util::StreamExt;
use tickwire_server::ServerConfig;
use tickwire_tests::*;
use tokio::io::AsyncWriteExt;
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
/// frame, echoing its code and reason (an empty one with an empty one).
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
