//! The arena's browser client in the integration tests: where its build is
//! (`www_dir`), and a native observer client that watches the arena.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use arena::{Arena, EntityKind, EntityState};
use futures_util::{SinkExt, StreamExt};
use tickwire_shared::client::{Channel, ClientConfig, ClientSession, ClientWorld, Event};
use tickwire_shared::{GameProtocol, Hello};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// The built arena page (`cargo xtask web`): `TICKWIRE_WWW_DIR` (set by `cargo xtask test`) or
/// `target/www`. Never skipped: a missing bundle is a failure that says how
/// to build it.
pub fn www_dir() -> Result<PathBuf> {
    let dir = std::env::var_os("TICKWIRE_WWW_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/www"));
    let wasm = dir.join("pkg/arena_web_bg.wasm");
    if !dir.join("index.html").is_file() || !wasm.is_file() {
        bail!(
            "the web client is not built at {} (missing index.html or pkg/arena_web_bg.wasm): \
             run `cargo xtask web` first, or run the whole suite with `cargo xtask test`",
            dir.display()
        );
    }
    Ok(dir)
}

/// A native client that watches the arena (it is also a player, standing
/// still): a thin driver of `ClientSession` over a WebSocket, so the
/// protocol rules it follows are the shared ones.
pub struct Observer {
    ws: tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>,
    session: ClientSession<Arena>,
    epoch: Instant,
    buf: Vec<u8>,
}

impl Observer {
    pub async fn connect(
        addr: std::net::SocketAddr,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Self> {
        let tcp = TcpStream::connect(addr).await?;
        let name = rustls_pki_types::ServerName::try_from("localhost")?.to_owned();
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await?;
        let url = format!("wss://localhost:{}/ws", addr.port());
        let (ws, _) = tokio_tungstenite::client_async(url, stream).await?;
        let mut hello = Hello::new(Arena::PROTOCOL_HASH);
        hello.auth_token = Some("observer".into());
        let session = ClientSession::new(Duration::ZERO, hello, ClientConfig::default());
        let mut me = Self {
            ws,
            session,
            epoch: Instant::now(),
            buf: Vec::new(),
        };
        me.flush().await?;
        let end = Instant::now() + Duration::from_secs(10);
        while me.session.welcome().is_none() {
            me.step(end).await?;
        }
        Ok(me)
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Sends everything the session has to send.
    async fn flush(&mut self) -> Result<()> {
        let now = self.now();
        while self.session.poll_transmit(now, &mut self.buf).is_some() {
            self.ws
                .send(Message::Binary(self.buf.clone().into()))
                .await?;
        }
        Ok(())
    }

    /// Waits for one message (or the session's next timer) until `end`,
    /// feeds it to the session and answers; fails when the session ends.
    async fn step(&mut self, end: Instant) -> Result<()> {
        let wake = self
            .session
            .poll_timeout()
            .map_or(end, |t| (self.epoch + t).min(end));
        match tokio::time::timeout_at(wake, self.ws.next()).await {
            Err(_) if wake >= end => bail!("the observer timed out"),
            Err(_) => self.session.handle_timeout(self.now()),
            Ok(Some(Ok(Message::Binary(b)))) => {
                self.session
                    .handle_message(self.now(), &b, Channel::Reliable);
            }
            Ok(Some(Ok(Message::Close(c)))) => {
                let (code, reason) = c.map_or((None, String::new()), |c| {
                    (Some(u16::from(c.code)), c.reason.to_string())
                });
                self.session
                    .handle_transport_closed(self.now(), code, &reason);
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => self
                .session
                .handle_transport_closed(self.now(), None, "connection ended"),
        }
        while let Some(event) = self.session.poll_event() {
            if let Event::Closed(c) = event {
                bail!("the observer's session ended: {c:?}");
            }
        }
        self.flush().await
    }

    /// The world at the newest applied snapshot.
    pub fn world(&self) -> &ClientWorld<EntityState> {
        self.session.world()
    }

    /// Applies snapshots until `pred` holds on the newest world.
    pub async fn until(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&ClientWorld<EntityState>) -> bool,
    ) -> Result<()> {
        let end = Instant::now() + timeout;
        while !pred(self.world()) {
            self.step(end).await.with_context(|| {
                format!("the observer did not see the expected state in {timeout:?}")
            })?;
        }
        Ok(())
    }
}

/// The player named `name` in `world`, if any.
pub fn player<'a>(world: &'a ClientWorld<EntityState>, name: &str) -> Option<&'a EntityState> {
    world
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.kind == EntityKind::Player && &*s.name == name)
}

/// An arena server on a free loopback port with a self-signed certificate,
/// serving `www` (interest management off, so every player sees every
/// other wherever they spawned), and what a client needs to trust it.
pub struct ArenaPage {
    /// The running server.
    pub server: tickwire_server::RunningServer,
    /// Its address.
    pub addr: std::net::SocketAddr,
    /// The certificate's SPKI hash for Chromium's allow-list.
    pub spki: String,
    /// A rustls client config trusting it.
    pub tls: Arc<rustls::ClientConfig>,
}

impl ArenaPage {
    /// Starts the server on `config`'s other settings (a link conditioner…).
    pub async fn start(config: tickwire_server::ServerConfig) -> Result<Self> {
        use tickwire_server::{Server, TlsMode};
        let config = config
            .with_addr("127.0.0.1:0".parse()?)
            .with_tls(TlsMode::SelfSigned)
            .with_static_dir(Some(www_dir()?))
            .with_snapshot_interval(2);
        let server = Server::new(config, |_room| {
            arena::host::ArenaGame::new(0, 7).with_interest_management(false)
        })
        .start()
        .await?;
        let addr = server.local_addr();
        let identity = server
            .tls_identity()
            .context("the server has no TLS identity")?;
        let spki = identity.spki_sha256_base64();
        let tls = tickwire_server::tls::client_config_trusting(identity.leaf(), &[])?;
        Ok(Self {
            server,
            addr,
            spki,
            tls,
        })
    }
}
