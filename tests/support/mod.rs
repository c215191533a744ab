//! Shared helpers for the integration tests: a small test game, a server
//! launcher on a free loopback port, and a real WSS test client
//! (tokio-tungstenite over rustls, trusting the server's generated
//! certificate) driving the protocol's client core, `ClientSession`.
#![allow(missing_docs)]

pub mod arena_web;
pub mod cdp;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tickwire_server::world::EntityKey;
use tickwire_server::{
    AuthError, ClientId, Ctx, Game, InputMeta, LeaveReason, RunningServer, Server, ServerConfig,
    Target,
};
use tickwire_shared::client::{Channel, ClientConfig, ClientSession, Event};
use tickwire_shared::message::Close;
use tickwire_shared::{
    ClientMessage, GameProtocol, Hello, Limits, NetId, ServerMessage, Snapshot, Welcome,
};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// The test game's wire types.
pub struct TestProto;

impl GameProtocol for TestProto {
    const NAME: &'static str = "tickwire-test";
    const VERSION: u32 = 1;
    type Input = TestInput;
    type EntityState = TestEntity;
    type Event = TestEvent;
    type Message = TestMessage;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TestInput {
    /// Move the player's entity.
    Move { dx: i32, dy: i32 },
    /// Spawn a crate at the player's position.
    SpawnCrate,
    /// Despawn the player's oldest crate.
    DespawnCrate,
    /// Hide the player's entity from everyone but its owner.
    SetSecret(u32),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestEntity {
    pub owner: u32,
    pub x: i32,
    pub y: i32,
    pub crate_: bool,
    /// Visible only to `owner` when non-zero (tests visibility).
    pub secret: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TestEvent {
    Joined(u32),
    YourEntity(NetId),
    /// A game message, echoed to its sender: (sender, text).
    Said(u32, String),
}

/// The test game's reliable client → server message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TestMessage {
    Say(String),
}

/// The test game: one entity per player, crates, a drifting NPC, and an
/// observable copy of the world per tick for assertions.
#[derive(Default)]
pub struct TestGame {
    players: HashMap<ClientId, EntityKey>,
    crates: HashMap<ClientId, Vec<EntityKey>>,
    npc: Option<EntityKey>,
    pub history: Arc<Mutex<WorldHistory>>,
}

/// The server's world after each tick: tick → sorted (id, state).
#[derive(Default)]
pub struct WorldHistory {
    pub ticks: BTreeMap<u32, Vec<(NetId, TestEntity)>>,
}

impl Game for TestGame {
    type Protocol = TestProto;
    type User = ();
    type View = (ClientId, i32, i32);

    fn on_auth(&mut self, token: Option<&str>) -> Result<(), AuthError> {
        match token {
            Some("bad") => Err(AuthError::failed("token \"bad\" is refused")),
            _ => Ok(()),
        }
    }

    fn on_join(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, (): ()) {
        let key = ctx.world.spawn(
            ctx.tick(),
            TestEntity {
                owner: client,
                x: 0,
                y: 0,
                crate_: false,
                secret: 0,
            },
        );
        self.players.insert(client, key);
        let id = ctx.world.net_id(key).expect("just spawned");
        ctx.send(Target::Client(client), TestEvent::YourEntity(id));
        ctx.send(Target::All, TestEvent::Joined(client));
    }

    fn on_resume(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId) {
        if let Some(id) = self.players.get(&client).and_then(|k| ctx.world.net_id(*k)) {
            ctx.send(Target::Client(client), TestEvent::YourEntity(id));
        }
    }

    fn on_input(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        client: ClientId,
        input: TestInput,
        _meta: InputMeta,
    ) {
        let Some(&key) = self.players.get(&client) else {
            return;
        };
        match input {
            TestInput::Move { dx, dy } => {
                if let Some(e) = ctx.world.get_mut(key) {
                    e.x = e.x.wrapping_add(dx.clamp(-100, 100));
                    e.y = e.y.wrapping_add(dy.clamp(-100, 100));
                }
            }
            TestInput::SpawnCrate => {
                let Some(p) = ctx.world.get(key).cloned() else {
                    return;
                };
                let c = ctx.world.spawn(
                    ctx.tick(),
                    TestEntity {
                        owner: client,
                        crate_: true,
                        secret: 0,
                        ..p
                    },
                );
                self.crates.entry(client).or_default().push(c);
            }
            TestInput::DespawnCrate => {
                let list = self.crates.entry(client).or_default();
                if !list.is_empty() {
                    let c = list.remove(0);
                    ctx.world.despawn(ctx.tick(), c);
                }
            }
            TestInput::SetSecret(s) => {
                if let Some(e) = ctx.world.get_mut(key) {
                    e.secret = s;
                }
            }
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, msg: TestMessage) {
        let TestMessage::Say(text) = msg;
        ctx.send(Target::Client(client), TestEvent::Said(client, text));
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Self>, _dt: f32) {
        let npc = *self.npc.get_or_insert_with(|| {
            ctx.world.spawn(
                ctx.tick(),
                TestEntity {
                    owner: 0,
                    x: 0,
                    y: 0,
                    crate_: false,
                    secret: 0,
                },
            )
        });
        if let Some(e) = ctx.world.get_mut(npc) {
            e.x += 1;
        }
        let world: Vec<_> = ctx
            .world
            .iter_by_net_id()
            .map(|(id, s)| (id, s.clone()))
            .collect();
        let mut h = self.history.lock().unwrap();
        h.ticks.insert(ctx.tick(), world);
        // Keep memory bounded.
        while h.ticks.len() > 4096 {
            h.ticks.pop_first();
        }
    }

    fn on_leave(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, _why: LeaveReason) {
        if let Some(k) = self.players.remove(&client) {
            ctx.world.despawn(ctx.tick(), k);
        }
        for c in self.crates.remove(&client).unwrap_or_default() {
            ctx.world.despawn(ctx.tick(), c);
        }
    }

    fn view(
        &self,
        _world: &tickwire_server::world::World<TestEntity>,
        client: ClientId,
    ) -> Option<(ClientId, i32, i32)> {
        Some((client, 0, 0))
    }

    /// Names every entity, as a coarse spatial index would name the ones
    /// nearby: the room must still ask `can_see` about each, so the
    /// byte-level visibility test covers this path.
    fn visible(
        &self,
        world: &tickwire_server::world::World<TestEntity>,
        _view: &(ClientId, i32, i32),
        out: &mut Vec<NetId>,
    ) -> bool {
        out.extend(world.iter_by_net_id().map(|(id, _)| id));
        true
    }

    fn can_see(view: &(ClientId, i32, i32), _id: NetId, state: &TestEntity) -> bool {
        state.secret == 0 || state.owner == view.0
    }
}

/// A server running the test game on a free loopback port with TLS.
pub struct TestServer {
    pub server: RunningServer,
    pub history: Arc<Mutex<WorldHistory>>,
}

/// The server config the tests start from.
pub fn test_config() -> ServerConfig {
    ServerConfig::default()
        .with_addr("127.0.0.1:0".parse().unwrap())
        .with_tick_rate(60)
        .with_handshake_timeout(Duration::from_secs(2))
}

impl TestServer {
    pub async fn start(config: ServerConfig) -> Result<Self> {
        Self::start_with_hooks(config, tickwire_server::LoggingHooks).await
    }

    /// A server whose lifecycle events go to `hooks`.
    pub async fn start_with_hooks(
        config: ServerConfig,
        hooks: impl tickwire_server::LifecycleHooks,
    ) -> Result<Self> {
        let (server, history) = Self::server(config);
        Self::launch(server.with_lifecycle_hooks(hooks), history).await
    }

    /// A server that registers itself and its rooms in `directory`.
    pub async fn start_with_directory(
        config: ServerConfig,
        directory: Arc<dyn tickwire_server::directory::Directory>,
    ) -> Result<Self> {
        let (server, history) = Self::server(config);
        Self::launch(server.with_directory(directory), history).await
    }

    /// A server in `directory` whose `POST /matchmake` authenticates with
    /// `auth` (matchmaking needs `config.fleet.secret`).
    pub async fn start_with_matchmaking(
        config: ServerConfig,
        directory: Arc<dyn tickwire_server::directory::Directory>,
        auth: impl tickwire_server::MatchmakeAuth,
    ) -> Result<Self> {
        let (server, history) = Self::server(config);
        let server = server.with_directory(directory).with_matchmake_auth(auth);
        Self::launch(server, history).await
    }

    /// A server whose joins are decided by `auth`, off the room tasks.
    pub async fn start_with_auth(
        config: ServerConfig,
        auth: impl tickwire_server::auth::Authenticator<()>,
    ) -> Result<Self> {
        let (server, history) = Self::server(config);
        Self::launch(server.with_auth(auth), history).await
    }

    /// A server whose rooms get their own config from `hook` (see
    /// `Server::with_room_config`).
    pub async fn start_with_room_config(
        config: ServerConfig,
        hook: impl Fn(
            &tickwire_server::RoomSpec<'_>,
            &tickwire_server::RoomConfig,
        ) -> tickwire_server::RoomConfig
        + Send
        + Sync
        + 'static,
    ) -> Result<Self> {
        let (server, history) = Self::server(config);
        Self::launch(server.with_room_config(hook), history).await
    }

    fn server(config: ServerConfig) -> (Server<TestGame>, Arc<Mutex<WorldHistory>>) {
        let history = Arc::new(Mutex::new(WorldHistory::default()));
        let h = Arc::clone(&history);
        let server = Server::new(config, move |_room| TestGame {
            history: Arc::clone(&h),
            ..TestGame::default()
        });
        (server, history)
    }

    async fn launch(server: Server<TestGame>, history: Arc<Mutex<WorldHistory>>) -> Result<Self> {
        init_tracing();
        let server = server.start().await?;
        Ok(Self { server, history })
    }

    pub fn ws_url(&self) -> String {
        format!("wss://localhost:{}/ws", self.server.local_addr().port())
    }

    /// The server's world at `tick`.
    pub fn world_at(&self, tick: u32) -> Option<Vec<(NetId, TestEntity)>> {
        self.history.lock().unwrap().ticks.get(&tick).cloned()
    }

    /// A rustls client config trusting this server's certificate.
    pub fn client_tls(&self) -> Arc<rustls::ClientConfig> {
        let id = self.server.tls_identity().expect("TLS server");
        tickwire_server::tls::client_config_trusting(id.leaf(), &[]).expect("client config")
    }

    /// A raw quinn connection to the server's QUIC address with `alpn`
    /// (`tickwire/1` for the native protocol, `h3` for WebTransport), for
    /// tests that speak below the protocol. Keep the endpoint alive as long
    /// as the connection.
    pub async fn raw_quic(&self, alpn: &[&[u8]]) -> Result<(quinn::Endpoint, quinn::Connection)> {
        let id = self.server.tls_identity().context("TLS is off")?;
        let tls = tickwire_server::tls::client_config_trusting(id.leaf(), alpn)?;
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
        let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
        let addr = self.server.quic_addr().context("QUIC is off")?;
        let conn = endpoint
            .connect_with(
                quinn::ClientConfig::new(Arc::new(crypto)),
                addr,
                "localhost",
            )?
            .await?;
        Ok((endpoint, conn))
    }

    /// TLS connection to the server (no WebSocket yet).
    pub async fn tls_connect(&self) -> Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.server.local_addr()).await?;
        let connector = tokio_rustls::TlsConnector::from(self.client_tls());
        let name = rustls_pki_types::ServerName::try_from("localhost")?.to_owned();
        Ok(connector.connect(name, tcp).await?)
    }

    /// A WebSocket over TLS, with optional extra request headers, not yet
    /// handshaken at the protocol level.
    pub async fn ws_connect(&self, origin: Option<&str>) -> Result<Ws> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let tls = self.tls_connect().await?;
        let mut req = self.ws_url().into_client_request()?;
        if let Some(o) = origin {
            req.headers_mut().insert("Origin", o.parse()?);
        }
        let (ws, _) = tokio_tungstenite::client_async(req, tls).await?;
        Ok(ws)
    }

    /// A protocol client that completed the handshake.
    pub async fn client(&self, hello: Hello) -> Result<TestClient> {
        let ws = self.ws_connect(None).await?;
        TestClient::handshake(ws, hello).await
    }

    /// A client with its own session settings (say, implicit acks on).
    pub async fn client_with(&self, hello: Hello, config: ClientConfig) -> Result<TestClient> {
        let ws = self.ws_connect(None).await?;
        TestClient::handshake_with(ws, hello, config).await
    }
}

pub type Ws = WebSocketStream<TlsStream<TcpStream>>;

/// A hello for the test game.
pub fn hello() -> Hello {
    Hello::new(TestProto::PROTOCOL_HASH)
}

/// What a received message was, after the test client processed it.
#[derive(Debug)]
pub enum Received {
    Snapshot { tick: u32, bytes: Vec<u8> },
    Events(Vec<TestEvent>),
    Close(Close),
    Other,
}

/// A real client: a thin driver of the protocol's client core
/// ([`ClientSession`]) over a WebSocket, with test knobs (acks can be
/// withheld, raw messages sent, received snapshot bytes recorded).
pub struct TestClient {
    pub ws: Ws,
    pub welcome: Welcome,
    pub limits: Limits,
    pub session: ClientSession<TestProto>,
    epoch: Instant,
    /// The newest applied snapshot, copied out of the session's world.
    pub latest: Option<(u32, Snapshot<TestEntity>)>,
    pub last_input: u32,
    pub events: Vec<TestEvent>,
    /// When false, the client applies snapshots but sends no acks.
    pub ack: bool,
    /// Raw snapshot bytes received (for "never reaches the client" checks).
    pub raw: Vec<Vec<u8>>,
    /// Acks the session produced (sent, or withheld when `ack` is false).
    pub acks: u64,
}

/// The test client's session settings: no pings (tests count messages),
/// and explicit acks (tests withhold them to see what the server does; the
/// implicit-ack tests turn them on with [`TestServer::client_with`]).
pub fn test_session_config() -> ClientConfig {
    ClientConfig::default()
        .with_ping_interval(None)
        .with_idle_timeout(None)
        .with_implicit_acks(false)
}

impl TestClient {
    pub async fn handshake(ws: Ws, hello: Hello) -> Result<Self> {
        Self::handshake_with(ws, hello, test_session_config()).await
    }

    pub async fn handshake_with(mut ws: Ws, hello: Hello, config: ClientConfig) -> Result<Self> {
        let epoch = Instant::now();
        let mut session = ClientSession::new(Duration::ZERO, hello, config);
        let mut buf = Vec::new();
        while session.poll_transmit(Duration::ZERO, &mut buf).is_some() {
            ws.send(Message::Binary(buf.clone().into())).await?;
        }
        let msg = next_binary(&mut ws, Duration::from_secs(5)).await?;
        session.handle_message(epoch.elapsed(), &msg, Channel::Reliable);
        let welcome = match session.poll_event() {
            Some(Event::Welcome(w)) => w,
            other => bail!("expected welcome, got {other:?}"),
        };
        Ok(Self {
            ws,
            welcome,
            limits: Limits::default(),
            session,
            epoch,
            latest: None,
            last_input: 0,
            events: Vec::new(),
            ack: true,
            raw: Vec::new(),
            acks: 0,
        })
    }

    /// Sends what the session wants to send (acks withheld when `ack` is
    /// false).
    async fn flush(&mut self) -> Result<()> {
        let mut buf = Vec::new();
        let now = self.epoch.elapsed();
        // Delayed acks (AckPolicy) fall due here: a test client flushes
        // after every message it reads.
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
        while self.session.poll_transmit(now, &mut buf).is_some() {
            let is_ack = matches!(
                ClientMessage::<TestInput>::decode(&buf, &self.limits),
                Ok(ClientMessage::Ack { .. })
            );
            self.acks += u64::from(is_ack);
            if is_ack && !self.ack {
                continue;
            }
            self.ws.send(Message::Binary(buf.clone().into())).await?;
        }
        Ok(())
    }

    /// Sends a raw message, bypassing the session (for hostile tests).
    pub async fn send(&mut self, msg: ClientMessage<TestInput, TestMessage>) -> Result<()> {
        self.ws
            .send(Message::Binary(msg.to_bytes()?.into()))
            .await?;
        Ok(())
    }

    /// Sends one input with the next sequence number (and every input the
    /// server has not applied yet).
    pub async fn input(&mut self, input: TestInput) -> Result<u32> {
        let seq = self
            .session
            .push_input(self.epoch.elapsed(), input)
            .ok_or_else(|| anyhow!("the session is not established"))?;
        self.flush().await?;
        Ok(seq)
    }

    /// Receives and processes one message (decode, apply, ack, pong).
    pub async fn recv(&mut self, timeout: Duration) -> Result<Received> {
        let bytes = next_binary(&mut self.ws, timeout).await?;
        self.session
            .handle_message(self.epoch.elapsed(), &bytes, Channel::Reliable);
        let mut out = Received::Other;
        while let Some(ev) = self.session.poll_event() {
            match ev {
                Event::Snapshot(a) => {
                    self.last_input = a.last_input;
                    self.raw.push(bytes.to_vec());
                    self.latest = Some((a.tick, self.session.world().to_snapshot()));
                    out = Received::Snapshot {
                        tick: a.tick,
                        bytes: bytes.to_vec(),
                    };
                }
                Event::Events(e) => {
                    self.events.extend(e.iter().cloned());
                    out = Received::Events(e);
                }
                Event::Closed(c) if c.local => {
                    bail!("the client closed the session: {} {}", c.code, c.reason)
                }
                Event::Closed(c) => {
                    out = Received::Close(Close {
                        code: c.code,
                        reason: c.reason,
                    });
                }
                Event::Welcome(_) | Event::Rtt(_) => {}
            }
        }
        self.flush().await?;
        Ok(out)
    }

    /// Processes messages until a snapshot of tick ≥ `tick` was applied.
    pub async fn until_tick(&mut self, tick: u32, deadline: Duration) -> Result<u32> {
        let end = Instant::now() + deadline;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("no snapshot of tick {tick} before the deadline");
            }
            if let Received::Snapshot { tick: t, .. } = self.recv(left).await?
                && t >= tick
            {
                return Ok(t);
            }
        }
    }

    /// Processes messages until `pred` holds, with a deadline.
    pub async fn until(
        &mut self,
        deadline: Duration,
        mut pred: impl FnMut(&Self) -> bool,
    ) -> Result<()> {
        let end = Instant::now() + deadline;
        while !pred(self) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("condition not met before the deadline");
            }
            self.recv(left).await?;
        }
        Ok(())
    }
}

/// The next binary message; errors on close or timeout.
pub async fn next_binary(ws: &mut Ws, timeout: Duration) -> Result<bytes::Bytes> {
    let end = Instant::now() + timeout;
    loop {
        let msg = tokio::time::timeout_at(end, ws.next())
            .await
            .context("timed out waiting for a message")?
            .ok_or_else(|| anyhow!("connection ended"))??;
        match msg {
            Message::Binary(b) => return Ok(b),
            Message::Close(c) => bail!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// Reads until the server's close frame; returns its code and reason.
/// The protocol `Close` message before it is checked to carry the same code.
pub async fn expect_close(ws: &mut Ws, timeout: Duration) -> Result<(u16, String)> {
    let end = Instant::now() + timeout;
    let mut protocol_close: Option<Close> = None;
    loop {
        let next = tokio::time::timeout_at(end, ws.next())
            .await
            .context("timed out waiting for the close")?;
        match next {
            None => bail!("connection ended without a close frame"),
            Some(Err(e)) => bail!("connection error before a close frame: {e}"),
            Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                let code = u16::from(code);
                if let Some(c) = &protocol_close
                    && c.code.to_u16() != code
                {
                    bail!(
                        "close message code {} differs from frame code {code}",
                        c.code
                    );
                }
                return Ok((code, reason.to_string()));
            }
            Some(Ok(Message::Close(None))) => bail!("close frame without a code"),
            Some(Ok(Message::Binary(b))) => {
                if let Ok(ServerMessage::<TestEvent>::Close(c)) =
                    ServerMessage::<TestEvent>::decode(&b, &Limits::default())
                {
                    protocol_close = Some(c);
                }
            }
            Some(Ok(_)) => {}
        }
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

// ---------------------------------------------------------------------------
// Helpers for the hostile-input and lifecycle tests.
// ---------------------------------------------------------------------------

/// The server's world at `tick` as `client` may see it (the test game's
/// visibility rule: secret entities only for their owner).
pub fn expected_view(
    history: &Mutex<WorldHistory>,
    tick: u32,
    client: ClientId,
) -> Option<Vec<(NetId, TestEntity)>> {
    let h = history.lock().unwrap();
    let world = h.ticks.get(&tick)?;
    Some(
        world
            .iter()
            .filter(|(_, e)| e.secret == 0 || e.owner == client)
            .cloned()
            .collect(),
    )
}

/// Checks that the client's latest applied snapshot equals the server's
/// world at that tick, as this client may see it.
pub fn check_matches(history: &Mutex<WorldHistory>, c: &TestClient) -> Result<()> {
    let (tick, snap) = c
        .latest
        .as_ref()
        .ok_or_else(|| anyhow!("no snapshot applied yet"))?;
    let want = expected_view(history, *tick, c.welcome.client_id)
        .ok_or_else(|| anyhow!("server has no record of tick {tick}"))?;
    if snap.as_slice() != want.as_slice() {
        bail!(
            "client {} at tick {tick}: applied {} entities, the server had {} ({:?} vs {:?})",
            c.welcome.client_id,
            snap.len(),
            want.len(),
            snap.as_slice().iter().take(8).collect::<Vec<_>>(),
            want.iter().take(8).collect::<Vec<_>>()
        );
    }
    Ok(())
}

impl TestClient {
    /// The id of this client's own entity (from `TestEvent::YourEntity`).
    pub fn my_entity(&self) -> Option<NetId> {
        self.events.iter().rev().find_map(|e| match e {
            TestEvent::YourEntity(n) => Some(*n),
            _ => None,
        })
    }

    /// The state of entity `id` in the latest applied snapshot.
    pub fn entity(&self, id: NetId) -> Option<&TestEntity> {
        let (_, snap) = self.latest.as_ref()?;
        snap.iter().find(|(n, _)| *n == id).map(|(_, e)| e)
    }

    /// Pushes `inputs` and sends them in one `Inputs` message (with any
    /// input the server has not applied yet); returns the last sequence
    /// number.
    pub async fn inputs(&mut self, inputs: Vec<TestInput>) -> Result<u32> {
        let now = self.epoch.elapsed();
        let mut last = 0;
        for input in inputs {
            last = self
                .session
                .push_input(now, input)
                .ok_or_else(|| anyhow!("the session is not established"))?;
        }
        self.flush().await?;
        Ok(last)
    }
}

/// What a [`Watcher`] saw.
#[derive(Debug)]
pub struct WatchReport {
    /// The client, to keep using it.
    pub client: TestClient,
    /// Snapshots applied while watching (each checked against the world).
    pub snapshots: usize,
    /// First and last snapshot tick seen.
    pub first_tick: u32,
    pub last_tick: u32,
}

/// A snapshot tick and the entities applied at it.
pub type TickView = (u32, Vec<(NetId, TestEntity)>);

/// A well-behaved client running in the background: it applies and acks
/// every snapshot, checks that snapshot ticks are consecutive (no gap; the
/// server must use `snapshot_interval` 1) and that each snapshot matches the
/// server's world. Its latest view is published for the test to wait on.
pub struct Watcher {
    stop_after: Arc<std::sync::atomic::AtomicUsize>,
    count: Arc<std::sync::atomic::AtomicUsize>,
    view: tokio::sync::watch::Receiver<Option<TickView>>,
    task: tokio::task::JoinHandle<Result<WatchReport>>,
}

impl std::fmt::Debug for TestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestClient")
            .field("client_id", &self.welcome.client_id)
            .field("latest_tick", &self.latest.as_ref().map(|(t, _)| *t))
            .finish_non_exhaustive()
    }
}

impl Watcher {
    /// Starts watching with `client`, checking against `history`.
    pub fn start(mut client: TestClient, history: Arc<Mutex<WorldHistory>>) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let stop_after = Arc::new(AtomicUsize::new(usize::MAX));
        let count = Arc::new(AtomicUsize::new(0));
        let (tx, view) = tokio::sync::watch::channel(None);
        let (stop, n) = (Arc::clone(&stop_after), Arc::clone(&count));
        let task = tokio::spawn(async move {
            let mut first: Option<u32> = None;
            let mut last: Option<u32> = None;
            let mut seen = 0usize;
            while seen < stop.load(Ordering::SeqCst) {
                // A snapshot is due every tick; seconds without one is a failure.
                match client.recv(Duration::from_secs(3)).await? {
                    Received::Snapshot { tick, .. } => {
                        if let Some(prev) = last
                            && tick != prev.wrapping_add(1)
                        {
                            bail!("the well-behaved client saw a gap: snapshot {prev} then {tick}");
                        }
                        check_matches(&history, &client)?;
                        first.get_or_insert(tick);
                        last = Some(tick);
                        seen += 1;
                        n.store(seen, Ordering::SeqCst);
                        let snap = client
                            .latest
                            .as_ref()
                            .map(|(t, s)| (*t, s.as_slice().to_vec()));
                        tx.send_replace(snap);
                    }
                    Received::Close(c) => {
                        bail!(
                            "the well-behaved client was closed: {} {}",
                            c.code,
                            c.reason
                        )
                    }
                    _ => {}
                }
            }
            Ok(WatchReport {
                client,
                snapshots: seen,
                first_tick: first.unwrap_or(0),
                last_tick: last.unwrap_or(0),
            })
        });
        Self {
            stop_after,
            count,
            view,
            task,
        }
    }

    /// Snapshots applied so far.
    pub fn snapshots(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until the watcher's latest view satisfies `pred`; returns the
    /// tick of that view.
    pub async fn wait_view(
        &mut self,
        deadline: Duration,
        mut pred: impl FnMut(&[(NetId, TestEntity)]) -> bool,
    ) -> Result<u32> {
        let r = tokio::time::timeout(
            deadline,
            self.view
                .wait_for(|v| v.as_ref().is_some_and(|(_, s)| pred(s))),
        )
        .await;
        match r {
            Ok(Ok(v)) => Ok(v.as_ref().map_or(0, |(t, _)| *t)),
            // The watcher task ended (a gap, a mismatch, a close): say why.
            Ok(Err(_)) => match (&mut self.task).await {
                Ok(Err(e)) => Err(e.context("the watcher failed")),
                Ok(Ok(_)) => bail!("the watcher stopped"),
                Err(e) => bail!("the watcher task panicked: {e}"),
            },
            Err(_) => bail!("the watcher's view did not reach the condition in time"),
        }
    }

    /// Waits until at least `n` snapshots were applied in total.
    pub async fn wait_snapshots(&mut self, n: usize, deadline: Duration) -> Result<()> {
        let count = Arc::clone(&self.count);
        self.wait_view(deadline, move |_| {
            count.load(std::sync::atomic::Ordering::SeqCst) >= n
        })
        .await
        .map(|_| ())
    }

    /// Lets the watcher apply `more` further snapshots, then stops it and
    /// returns its report. Fails on any gap, mismatch, close or timeout.
    pub async fn finish(self, more: usize) -> Result<WatchReport> {
        use std::sync::atomic::Ordering;
        let target = self.count.load(Ordering::SeqCst) + more;
        self.stop_after.store(target, Ordering::SeqCst);
        let report = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .context("the watcher did not finish in time")?
            .context("the watcher task panicked")??;
        if report.snapshots < target {
            bail!(
                "the watcher applied {} snapshots, wanted {target}",
                report.snapshots
            );
        }
        Ok(report)
    }
}

/// Sends `hello` as the first message of `ws` (no handshake state kept),
/// for tests that expect a `Reject`.
pub async fn send_hello(ws: &mut Ws, hello: Hello) -> Result<()> {
    let bytes = ClientMessage::<TestInput>::Hello(hello).to_bytes()?;
    ws.send(Message::Binary(bytes.into())).await?;
    Ok(())
}

/// Reads the server's `Reject` message (the handshake's answer to a refused
/// hello).
pub async fn expect_reject(
    ws: &mut Ws,
    timeout: Duration,
) -> Result<tickwire_shared::message::Reject> {
    let bytes = next_binary(ws, timeout).await?;
    match ServerMessage::<TestEvent>::decode(&bytes, &Limits::default())? {
        ServerMessage::Reject(r) => Ok(r),
        other => bail!("expected a reject, got {other:?}"),
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl TestServer {
    /// A TLS connection from a socket whose receive buffer was set to
    /// `recv_buffer` bytes before connecting (so a client that stops
    /// reading fills up quickly).
    pub async fn tls_connect_small(&self, recv_buffer: u32) -> Result<TlsStream<TcpStream>> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(recv_buffer)?;
        let tcp = socket.connect(self.server.local_addr()).await?;
        let connector = tokio_rustls::TlsConnector::from(self.client_tls());
        let name = rustls_pki_types::ServerName::try_from("localhost")?.to_owned();
        Ok(connector.connect(name, tcp).await?)
    }

    /// A protocol client over a socket with a small receive buffer.
    pub async fn client_small(&self, hello: Hello, recv_buffer: u32) -> Result<TestClient> {
        let tls = self.tls_connect_small(recv_buffer).await?;
        let (ws, _) = tokio_tungstenite::client_async(self.ws_url(), tls).await?;
        TestClient::handshake(ws, hello).await
    }

    /// `GET path` over TLS (one request, `Connection: close`).
    pub async fn https_get(&self, path: &str) -> Result<HttpResponse> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        self.https_raw(&req).await
    }

    /// Sends `request` (raw bytes, which should ask for `Connection: close`)
    /// on a new TLS connection and reads the response until the server
    /// ends the connection.
    pub async fn https_raw(&self, request: &str) -> Result<HttpResponse> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tls = self.tls_connect().await?;
        tls.write_all(request.as_bytes()).await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let read_all = async {
            loop {
                match tls.read(&mut chunk).await {
                    Ok(0) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    // Some peers end TLS without close_notify; the length
                    // check below decides whether the response is whole.
                    Err(_) => break,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), read_all)
            .await
            .context("timed out reading the HTTP response")?;
        let end = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| anyhow!("no HTTP head in {} bytes", buf.len()))?;
        let head = std::str::from_utf8(&buf[..end])?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?
            .parse()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let body = buf[end + 4..].to_vec();
        let res = HttpResponse {
            status,
            headers,
            body,
        };
        if let Some(len) = res.header("content-length") {
            let len: usize = len.parse()?;
            if res.body.len() != len {
                bail!("body of {} bytes, content-length {len}", res.body.len());
            }
        }
        Ok(res)
    }
}
