//! WebTransport on loopback, from a Rust client that speaks it as a browser
//! does (web-transport-quinn, pinning the certificate by the hash that
//! `GET /webtransport` publishes): the replication guarantees of native
//! QUIC, snapshots as datagrams, a session that resumes over WSS, hostile
//! peers closed with a code and a reason while a good client plays on, and
//! the switch that turns WebTransport off.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine as _;
use bytes::Bytes;
use futures_util::SinkExt;
use tickwire_server::ServerConfig;
use tickwire_shared::client::{Channel, ClientSession, Event};
use tickwire_shared::framing::{FrameDecoder, frame_header};
use tickwire_shared::{ClientMessage, CloseCode};
use tickwire_tests::*;
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::Message;
use web_transport_quinn::proto::ConnectRequest;
use web_transport_quinn::{ClientBuilder, Session, SessionError, WebTransportError};

const DEADLINE: Duration = Duration::from_secs(20);

fn wt_config() -> ServerConfig {
    test_config().with_quic_addr(Some("127.0.0.1:0".parse().unwrap()))
}

/// The discovery document, checked against the server's own figures.
async fn discover(server: &TestServer) -> Result<(String, Vec<Vec<u8>>)> {
    let res = server.https_get("/webtransport").await?;
    ensure!(res.status == 200, "GET /webtransport: {}", res.status);
    ensure!(res.header("content-type") == Some("application/json"));
    let doc: serde_json::Value = serde_json::from_slice(&res.body)?;
    let url = doc["url"].as_str().context("no url")?.to_owned();
    let mut hashes = Vec::new();
    for h in doc["serverCertificateHashes"]
        .as_array()
        .context("no hashes")?
    {
        ensure!(h["algorithm"] == "sha-256", "{h}");
        let value = h["value"].as_str().context("no value")?;
        hashes.push(base64::engine::general_purpose::STANDARD.decode(value)?);
    }
    Ok((url, hashes))
}

/// A WebTransport session to `url` pinning `hashes`, with `origin`.
async fn wt_session(url: &str, hashes: Vec<Vec<u8>>, origin: Option<&str>) -> Result<Session> {
    let client = ClientBuilder::new().with_server_certificate_hashes(hashes)?;
    let mut request = ConnectRequest::new(url::Url::parse(url)?);
    if let Some(origin) = origin {
        request = request.with_header(
            web_transport_quinn::http::header::ORIGIN,
            web_transport_quinn::http::HeaderValue::from_str(origin)?,
        );
    }
    Ok(timeout_at(Instant::now() + DEADLINE, client.connect(request)).await??)
}

/// How the session ended: the WebTransport close code and reason.
async fn closed_with(session: &Session) -> Result<(u32, String)> {
    let e = tokio::time::timeout(DEADLINE, session.closed())
        .await
        .context("the server did not close the session")?;
    match e {
        SessionError::WebTransportError(WebTransportError::Closed(code, reason)) => {
            Ok((code, reason))
        }
        other => bail!("closed without a WebTransport close: {other}"),
    }
}

/// One link of a [`Player`]: WebTransport (a stream plus datagrams) or WSS.
enum Link {
    Wt(Box<WtLink>),
    Ws(Box<Ws>),
}

struct WtLink {
    session: Session,
    send: web_transport_quinn::SendStream,
    recv: web_transport_quinn::RecvStream,
    frames: FrameDecoder,
}

impl Link {
    async fn webtransport(url: &str, hashes: Vec<Vec<u8>>) -> Result<Self> {
        let session = wt_session(url, hashes, None).await?;
        let (send, recv) = session.open_bi().await?;
        Ok(Self::Wt(Box::new(WtLink {
            session,
            send,
            recv,
            frames: FrameDecoder::new(1 << 20),
        })))
    }

    /// The next message and how it came; `Err` when the link ended.
    async fn recv(&mut self) -> Result<(Bytes, Channel)> {
        match self {
            Self::Wt(wt) => loop {
                let WtLink {
                    session,
                    recv,
                    frames,
                    ..
                } = &mut **wt;
                tokio::select! {
                    d = session.read_datagram() => return Ok((d?, Channel::Unreliable)),
                    chunk = recv.read_chunk(frames.wanted(), true) => {
                        let chunk = chunk?.context("the server finished its stream")?;
                        if let Some(m) = frames.push(&chunk.bytes)? {
                            return Ok((m.into(), Channel::Reliable));
                        }
                    }
                }
            },
            Self::Ws(ws) => Ok((next_binary(ws, DEADLINE).await?, Channel::Reliable)),
        }
    }

    async fn send(&mut self, bytes: &[u8], channel: Channel) -> Result<()> {
        match self {
            Self::Wt(wt) => {
                let WtLink { session, send, .. } = &mut **wt;
                if channel == Channel::Unreliable {
                    session.send_datagram(Bytes::copy_from_slice(bytes))?;
                } else {
                    send.write_all(&frame_header(bytes.len(), 4096)?).await?;
                    send.write_all(bytes).await?;
                }
            }
            Self::Ws(ws) => ws.send(Message::Binary(bytes.to_vec().into())).await?,
        }
        Ok(())
    }
}

/// A player: the protocol's client core driven over a [`Link`].
struct Player {
    session: ClientSession<TestProto>,
    link: Link,
    epoch: Instant,
    datagrams: usize,
}

impl Player {
    async fn join(link: Link) -> Result<Self> {
        let session = ClientSession::new(Duration::ZERO, hello(), test_session_config());
        let mut p = Self {
            session,
            link,
            epoch: Instant::now(),
            datagrams: 0,
        };
        p.flush().await?;
        p.until(|e| matches!(e, Event::Welcome(_))).await?;
        Ok(p)
    }

    async fn flush(&mut self) -> Result<()> {
        let now = self.epoch.elapsed();
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
        let mut buf = Vec::new();
        while let Some(channel) = self.session.poll_transmit(now, &mut buf) {
            self.link.send(&buf, channel).await?;
        }
        Ok(())
    }

    /// Reads and applies messages until an event matches `stop`.
    async fn until(
        &mut self,
        mut stop: impl FnMut(&Event<TestProto>) -> bool,
    ) -> Result<Event<TestProto>> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            while let Some(e) = self.session.poll_event() {
                if let Event::Closed(c) = &e
                    && !stop(&e)
                {
                    bail!("closed: {c:?}");
                }
                if stop(&e) {
                    return Ok(e);
                }
            }
            let (bytes, channel) = timeout_at(deadline, self.link.recv())
                .await
                .context("no such event in time")??;
            self.datagrams += usize::from(channel == Channel::Unreliable);
            self.session
                .handle_message(self.epoch.elapsed(), &bytes, channel);
            self.flush().await?;
        }
    }

    /// Follows snapshots up to tick `upto`, checking each against the
    /// server's world; returns how many were checked.
    async fn follow(&mut self, server: &TestServer, upto: u32) -> Result<usize> {
        let mut checked = 0;
        loop {
            let Event::Snapshot(a) = self.until(|e| matches!(e, Event::Snapshot(_))).await? else {
                unreachable!()
            };
            let client = self.session.welcome().context("no welcome")?.client_id;
            let want = expected_view(&server.history, a.tick, client)
                .ok_or_else(|| anyhow!("server has no record of tick {}", a.tick))?;
            let got = self.session.world().to_snapshot();
            ensure!(
                got.as_slice() == want.as_slice(),
                "tick {}: applied {:?}, server had {want:?}",
                a.tick,
                got.as_slice()
            );
            checked += 1;
            if a.tick >= upto {
                return Ok(checked);
            }
        }
    }

    fn tick(&self) -> u32 {
        self.session.world().tick().unwrap_or(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webtransport_replicates_the_world_with_snapshots_as_datagrams() -> Result<()> {
    let server = TestServer::start(wt_config()).await?;
    let (url, hashes) = discover(&server).await?;
    let quic = server.server.quic_addr().context("QUIC is on")?;
    // `https_get` asks for `localhost`; QUIC is bound to 127.0.0.1.
    ensure!(
        url == format!("https://127.0.0.1:{}/wt", quic.port()),
        "{url}"
    );
    let leaf = server.server.tls_identity().context("TLS")?.leaf_sha256();
    ensure!(
        hashes == vec![leaf.to_vec()],
        "the hash is the leaf's SHA-256"
    );

    let mut p = Player::join(Link::webtransport(&url, hashes.clone()).await?).await?;
    let mut wss = server.client(hello()).await?;
    ensure!(
        p.session.welcome().map(|w| w.client_id) != Some(wss.welcome.client_id),
        "two players"
    );
    p.session
        .push_input(p.epoch.elapsed(), TestInput::Move { dx: 3, dy: 0 })
        .context("established")?;
    p.flush().await?;
    wss.input(TestInput::Move { dx: 0, dy: 2 }).await?;
    let t = p.tick();
    let checked = p.follow(&server, t + 30).await?;
    ensure!(checked >= 10, "applied {checked} snapshots");
    ensure!(
        p.datagrams >= 10,
        "snapshots came as datagrams: {}",
        p.datagrams
    );
    let me = p.session.welcome().context("welcome")?.client_id;
    ensure!(
        p.session
            .world()
            .iter()
            .any(|(_, e)| e.owner == me && !e.crate_ && e.x == 3),
        "the input was applied"
    );
    server.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webtransport_session_resumes_over_wss_as_the_same_player() -> Result<()> {
    let server = TestServer::start(wt_config()).await?;
    let (url, hashes) = discover(&server).await?;
    let mut p = Player::join(Link::webtransport(&url, hashes).await?).await?;
    let id = p.session.welcome().context("welcome")?.client_id;
    p.session
        .push_input(p.epoch.elapsed(), TestInput::Move { dx: 5, dy: 0 })
        .context("established")?;
    p.flush().await?;
    let t = p.tick();
    p.follow(&server, t + 10).await?;

    // The WebTransport link drops (no Leave), and the player comes back
    // over WSS with its resume token.
    if let Link::Wt(wt) = &p.link {
        wt.session.close(0, b"network gone");
    }
    p.session
        .handle_transport_closed(p.epoch.elapsed(), None, "network gone");
    let Some(Event::Closed(closed)) = p.session.poll_event() else {
        bail!("no Closed event for the lost link")
    };
    ensure!(closed.retry, "a lost link may be retried: {closed:?}");
    p.session.resume(p.epoch.elapsed());
    p.link = Link::Ws(Box::new(server.ws_connect(None).await?));
    p.flush().await?;
    let Event::Welcome(w) = p.until(|e| matches!(e, Event::Welcome(_))).await? else {
        unreachable!()
    };
    ensure!(w.resumed, "resumed: {w:?}");
    ensure!(
        w.client_id == id,
        "the same player: {} vs {id}",
        w.client_id
    );
    let t = p.tick().max(w.tick);
    p.follow(&server, t + 10).await?;
    ensure!(
        p.session
            .world()
            .iter()
            .any(|(_, e)| e.owner == id && !e.crate_ && e.x == 5),
        "the player kept its position"
    );
    server.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_webtransport_peers_are_closed_with_a_code_and_the_room_plays_on() -> Result<()> {
    let mut config = wt_config();
    config.room.max_messages_per_sec = 100;
    let server = TestServer::start(config).await?;
    let (url, hashes) = discover(&server).await?;
    let mut good = Player::join(Link::webtransport(&url, hashes.clone()).await?).await?;

    // Another path, and a page of another site: refused at the CONNECT.
    let other = url.replace("/wt", "/nope");
    let e = wt_session(&other, hashes.clone(), None).await;
    let e = e.err().context("a CONNECT to another path was accepted")?;
    ensure!(format!("{e:#}").contains("404"), "another path: {e:#}");
    let e = wt_session(&url, hashes.clone(), Some("https://evil.example")).await;
    let e = e.err().context("a foreign origin was accepted")?;
    ensure!(format!("{e:#}").contains("403"), "a foreign origin: {e:#}");
    let own = format!("https://localhost:{}", server.server.local_addr().port());
    let s = wt_session(&url, hashes.clone(), Some(&own)).await?;
    s.close(0, b"");

    // A length prefix over the limit: closed before the server reads it.
    let s = wt_session(&url, hashes.clone(), None).await?;
    let (mut send, _recv) = s.open_bi().await?;
    send.write_all(&u32::MAX.to_le_bytes()).await?;
    let (code, reason) = closed_with(&s).await?;
    ensure!(
        code == u32::from(CloseCode::MessageTooBig.to_u16()),
        "oversized frame: {code} {reason}"
    );
    ensure!(reason.contains("exceeds the limit"), "{reason}");

    // The wrong protocol inside a well-framed message.
    let s = wt_session(&url, hashes.clone(), None).await?;
    let (mut send, _recv) = s.open_bi().await?;
    send.write_all(&frame_header(3, 4096)?).await?;
    send.write_all(&[0xff, 0xff, 0xff]).await?;
    let (code, reason) = closed_with(&s).await?;
    ensure!(
        code == u32::from(CloseCode::ProtocolError.to_u16()),
        "garbage: {code} {reason}"
    );

    // A flood of datagrams after a valid hello.
    let s = wt_session(&url, hashes.clone(), None).await?;
    let (mut send, _recv) = s.open_bi().await?;
    let hello = ClientMessage::<TestInput>::Hello(hello()).to_bytes()?;
    send.write_all(&frame_header(hello.len(), 4096)?).await?;
    send.write_all(&hello).await?;
    let ping = Bytes::from(ClientMessage::<TestInput>::Ping { nonce: 1 }.to_bytes()?);
    let flood = async {
        for _ in 0..5_000 {
            if s.send_datagram(ping.clone()).is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
    };
    let (closed, ()) = tokio::join!(closed_with(&s), flood);
    let (code, reason) = closed?;
    ensure!(
        code == u32::from(CloseCode::InputFlood.to_u16()),
        "datagram flood: {code} {reason}"
    );

    // HTTP/3 without WebTransport: a plain QUIC connection with ALPN h3
    // that never sends SETTINGS is closed when the handshake deadline ends
    // (here: at once, since the peer finishes its control stream).
    let (_endpoint, conn) = server.raw_quic(&[b"h3"]).await?;
    let mut control = conn.open_uni().await?;
    control.write_all(&[0xff, 0xff]).await?;
    control.finish()?;
    let closed = tokio::time::timeout(DEADLINE, conn.closed())
        .await
        .context("a peer that is not WebTransport stayed connected")?;
    match closed {
        quinn::ConnectionError::ApplicationClosed(c) => ensure!(
            c.error_code.into_inner() == u64::from(CloseCode::ProtocolError.to_u16()),
            "not WebTransport: {c:?}"
        ),
        other => bail!("closed without a code: {other}"),
    }

    // Meanwhile the good client kept playing.
    let t = good.tick();
    let checked = good.follow(&server, t + 30).await?;
    ensure!(checked >= 10, "good client applied {checked} snapshots");
    server.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webtransport_can_be_turned_off_and_native_quic_stays() -> Result<()> {
    let mut config = wt_config();
    config.listener.quic.webtransport_path = None;
    let server = TestServer::start(config).await?;
    let res = server.https_get("/webtransport").await?;
    ensure!(
        res.status == 404,
        "discovery with WebTransport off: {}",
        res.status
    );

    let id = server.server.tls_identity().context("TLS")?;
    let quic = server.server.quic_addr().context("QUIC")?;
    let url = format!("https://localhost:{}/wt", quic.port());
    let e = wt_session(&url, vec![id.leaf_sha256().to_vec()], None).await;
    ensure!(e.is_err(), "WebTransport connected while off");
    // Native QUIC still plays.
    let mut c = tickwire_client::Client::<TestProto>::connect(
        &format!("quic://localhost:{}", quic.port()),
        tickwire_client::ConnectOptions::new(tickwire_client::Trust::Certificate(
            id.leaf().clone(),
        )),
    )
    .await?;
    let deadline = Instant::now() + DEADLINE;
    loop {
        match timeout_at(deadline, c.next_event()).await?? {
            tickwire_client::ClientEvent::Snapshot(_) => break,
            tickwire_client::ClientEvent::Closed { code, reason } => bail!("{code} {reason}"),
            _ => {}
        }
    }
    server.server.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webtransport_shares_the_caps_and_the_handshake_deadline() -> Result<()> {
    let mut config = wt_config();
    config.listener.max_connections_per_ip = 2;
    let server = TestServer::start(config).await?;
    let (url, hashes) = discover(&server).await?;

    // A session that never opens its stream is closed at the handshake
    // deadline (2 s in the test config), with the code.
    let idle = wt_session(&url, hashes.clone(), None).await?;
    // One WSS connection takes the second slot of this IP.
    let _wss = server.client(hello()).await?;
    // A third connection, over WebTransport, is over the per-IP cap.
    let third = wt_session(&url, hashes.clone(), None).await;
    ensure!(
        third.is_err(),
        "a third connection from one IP was accepted"
    );

    let (code, reason) = closed_with(&idle).await?;
    ensure!(
        code == u32::from(CloseCode::HandshakeTimeout.to_u16()),
        "no stream: {code} {reason}"
    );
    // Its slot is free again.
    let deadline = Instant::now() + DEADLINE;
    loop {
        match Link::webtransport(&url, hashes.clone()).await {
            Ok(link) => {
                Player::join(link).await?;
                break;
            }
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
