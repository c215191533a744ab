//! Shared helpers for the integration tests: a small test game, a server
//! launcher on a free loopback port, and a real WSS test client
//! (tokio-tungstenite over rustls, trusting the server's generated
//! certificate) that keeps baselines, acks and applies snapshots exactly as a
//! game client must.
#![allow(missing_docs)]

pub mod cdp;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tickwire_server::world::EntityKey;
use tickwire_server::{
    AuthError, ClientId, Ctx, Game, LeaveReason, RunningServer, Server, ServerConfig, Target,
};
use tickwire_shared::message::Close;
use tickwire_shared::{
    ClientMessage, GameProtocol, Hello, InputFrame, Inputs, Limits, NetId, ServerMessage, Snapshot,
    Welcome,
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

    fn on_input(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, input: TestInput) {
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
        init_tracing();
        let history = Arc::new(Mutex::new(WorldHistory::default()));
        let h = Arc::clone(&history);
        let server = Server::new(config, move |_room| TestGame {
            history: Arc::clone(&h),
            ..TestGame::default()
        })
        .start()
        .await?;
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

/// A real client: keeps baselines, acks, applies snapshots.
pub struct TestClient {
    pub ws: Ws,
    pub welcome: Welcome,
    pub limits: Limits,
    /// Snapshots received, by tick (the baselines).
    pub kept: BTreeMap<u32, Snapshot<TestEntity>>,
    pub latest: Option<(u32, Snapshot<TestEntity>)>,
    pub last_input: u32,
    pub events: Vec<TestEvent>,
    pub next_seq: u32,
    pub ack: bool,
    /// Raw snapshot bytes received (for "never reaches the client" checks).
    pub raw: Vec<Vec<u8>>,
}

impl TestClient {
    pub async fn handshake(mut ws: Ws, hello: Hello) -> Result<Self> {
        let bytes = ClientMessage::<TestInput>::Hello(hello).to_bytes()?;
        ws.send(Message::Binary(bytes.into())).await?;
        let limits = Limits::default();
        let msg = next_binary(&mut ws, Duration::from_secs(5)).await?;
        let welcome = match ServerMessage::<TestEvent>::decode(&msg, &limits)? {
            ServerMessage::Welcome(w) => w,
            other => bail!("expected welcome, got {other:?}"),
        };
        Ok(Self {
            ws,
            welcome,
            limits,
            kept: BTreeMap::new(),
            latest: None,
            last_input: 0,
            events: Vec::new(),
            next_seq: 1,
            ack: true,
            raw: Vec::new(),
        })
    }

    pub async fn send(&mut self, msg: ClientMessage<TestInput>) -> Result<()> {
        self.ws
            .send(Message::Binary(msg.to_bytes()?.into()))
            .await?;
        Ok(())
    }

    /// Sends one input with the next sequence number.
    pub async fn input(&mut self, input: TestInput) -> Result<u32> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let tick = self.latest.as_ref().map_or(0, |(t, _)| *t);
        self.send(ClientMessage::Inputs(Inputs {
            first_seq: seq,
            frames: vec![InputFrame { tick, input }],
        }))
        .await?;
        Ok(seq)
    }

    /// Receives and processes one message (decode, apply, ack, pong).
    pub async fn recv(&mut self, timeout: Duration) -> Result<Received> {
        let bytes = next_binary(&mut self.ws, timeout).await?;
        let msg = ServerMessage::<TestEvent>::decode(&bytes, &self.limits)?;
        match msg {
            ServerMessage::Snapshot(frame)
                if self
                    .latest
                    .as_ref()
                    .is_some_and(|(t, _)| frame.header.tick <= *t) =>
            {
                // Stale (reordered): ignore, neither apply nor ack (PROTOCOL.md §8.7).
                Ok(Received::Other)
            }
            ServerMessage::Snapshot(frame) => {
                let base = match frame.header.baseline {
                    Some(t) => Some(self.kept.get(&t).ok_or_else(|| {
                        anyhow!("server used baseline {t} which this client does not have")
                    })?),
                    None => None,
                };
                let snap = frame.decode(base, &self.limits)?;
                let tick = frame.header.tick;
                self.last_input = frame.header.last_input;
                self.raw.push(bytes.to_vec());
                if let Some(b) = frame.header.baseline {
                    // Older baselines can never be used again.
                    self.kept.retain(|t, _| *t >= b);
                }
                self.kept.insert(tick, snap.clone());
                while self.kept.len() > 256 {
                    self.kept.pop_first();
                }
                self.latest = Some((tick, snap));
                if self.ack {
                    self.send(ClientMessage::Ack {
                        snapshot_tick: tick,
                    })
                    .await?;
                }
                Ok(Received::Snapshot {
                    tick,
                    bytes: bytes.to_vec(),
                })
            }
            ServerMessage::Events(e) => {
                self.events.extend(e.iter().cloned());
                Ok(Received::Events(e))
            }
            ServerMessage::Ping { nonce } => {
                self.send(ClientMessage::Pong { nonce }).await?;
                Ok(Received::Other)
            }
            ServerMessage::Close(c) => Ok(Received::Close(c)),
            _ => Ok(Received::Other),
        }
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
