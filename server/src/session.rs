//! One driver task per connection: owns the WebSocket and the protocol state,
//! talks to its room through bounded channels.
//!
//! ```text
//!  socket ──▶ decode (tickwire-shared, limits) ──▶ rate limit ──▶ room channel (bounded, try_send)
//!  socket ◀── write (timeout) ◀── outbox (snapshot replaceable, reliable bounded) ◀── room tick
//! ```
//!
//! Every way a session ends sends a close frame with a code and a reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use rand_core::{OsRng, TryRngCore};
use tickwire_shared::conditioner::{ConditionerConfig, LinkConditioner, LossModel, PacketSize};
use tickwire_shared::handshake::{Rejection, ServerHandshake};
use tickwire_shared::{
    ClientMessage, CloseCode, DecodeError, GameProtocol, ResumeToken, ServerMessage,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;

use crate::config::ServerConfig;
use crate::game::{ClientId, EventOf, Game, InputOf, LeaveReason};
use crate::metrics as m;
use crate::outbox::Outbox;
use crate::rooms::{RoomCommand, Rooms};

/// What sessions share.
pub(crate) struct Shared<G: Game> {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) rooms: Arc<Rooms<G>>,
    pub(crate) next_client_id: AtomicU32,
    pub(crate) shutdown: watch::Receiver<bool>,
}

type Proto<G> = <G as Game>::Protocol;

/// How a session ended.
struct End {
    code: CloseCode,
    reason: String,
}

impl End {
    fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

/// A token bucket for incoming messages.
struct Bucket {
    tokens: f64,
    capacity: f64,
    rate: f64,
    last: Instant,
}

impl Bucket {
    fn new(per_sec: u32) -> Self {
        let rate = f64::from(per_sec.max(1));
        Self {
            tokens: rate / 2.0,
            capacity: rate / 2.0,
            rate,
            last: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn decode_end(e: &DecodeError) -> End {
    match e {
        DecodeError::MessageTooLong { .. } => End::new(CloseCode::MessageTooBig, e.to_string()),
        _ => End::new(CloseCode::ProtocolError, format!("malformed message: {e}")),
    }
}

/// Runs a session on an upgraded WebSocket until it ends. `deadline` is when
/// the protocol handshake must be complete.
pub(crate) async fn run<G: Game, S>(
    mut ws: WebSocketStream<S>,
    shared: Arc<Shared<G>>,
    peer: SocketAddr,
    deadline: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let outbox = Arc::new(Outbox::new(
        shared.config.max_queued_reliable,
        shared.config.max_skipped_snapshots,
    ));
    let joined = match handshake(&mut ws, &shared, &outbox, deadline).await {
        Ok(j) => j,
        Err((end, reject)) => {
            if let Some(r) = reject
                && let Ok(bytes) = r.to_message::<EventOf<G>>().to_bytes()
            {
                {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        ws.send(Message::Binary(bytes.into())),
                    )
                    .await;
                }
            }
            tracing::info!(%peer, code = %end.code, reason = %end.reason, "handshake failed");
            close(&mut ws, &end, &shared.config).await;
            return;
        }
    };
    let (client, room_tx) = joined;
    m::clients(1.0);
    shared.rooms.stats().clients(1);
    let end = drive(&mut ws, &shared, &outbox, client, &room_tx).await;
    m::clients(-1.0);
    shared.rooms.stats().clients(-1);
    tracing::info!(%peer, client, code = %end.code, reason = %end.reason, "session closed");
    // Tell the room, unless the room itself closed this session.
    let reason = match end.code {
        CloseCode::ProtocolError
        | CloseCode::UnsupportedData
        | CloseCode::MessageTooBig
        | CloseCode::InputFlood
        | CloseCode::PolicyViolation => LeaveReason::Misbehaved,
        _ => LeaveReason::TimedOut,
    };
    // Bounded channel: if the room is saturated, wait (this task only).
    let _ = room_tx
        .send(RoomCommand::Disconnected {
            client,
            outbox: Arc::clone(&outbox),
            reason,
        })
        .await;
    close(&mut ws, &end, &shared.config).await;
}

type Joined<G> = (ClientId, mpsc::Sender<RoomCommand<G>>);

async fn handshake<G: Game, S>(
    ws: &mut WebSocketStream<S>,
    shared: &Arc<Shared<G>>,
    outbox: &Arc<Outbox>,
    deadline: Instant,
) -> Result<Joined<G>, (End, Option<Rejection>)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let timeout = End::new(
        CloseCode::HandshakeTimeout,
        "handshake not completed in time",
    );
    let state = ServerHandshake::new(
        shared.rooms.now(),
        deadline.saturating_duration_since(Instant::now()),
    );
    let hello = loop {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err((timeout, None)),
            Ok(None) => return Err((End::new(CloseCode::Normal, "closed during handshake"), None)),
            Ok(Some(Err(e))) => return Err((ws_error_end(&e), None)),
            Ok(Some(Ok(m))) => m,
        };
        match msg {
            Message::Binary(b) => {
                match ClientMessage::<InputOf<G>>::decode(&b, &shared.config.limits) {
                    Ok(ClientMessage::Hello(h)) => break h,
                    Ok(_) => {
                        return Err((
                            End::new(
                                CloseCode::ProtocolError,
                                "the first message must be a hello",
                            ),
                            None,
                        ));
                    }
                    Err(e) => return Err((decode_end(&e), None)),
                }
            }
            Message::Text(_) => {
                return Err((
                    End::new(
                        CloseCode::UnsupportedData,
                        "text frames are not supported; send binary",
                    ),
                    None,
                ));
            }
            Message::Close(_) => {
                return Err((End::new(CloseCode::Normal, "closed during handshake"), None));
            }
            _ => {}
        }
    };
    let pending = state
        .handle_hello(hello, Proto::<G>::PROTOCOL_HASH)
        .map_err(|r| (End::new(CloseCode::Rejected, r.message.clone()), Some(r)))?;
    let mut token = [0u8; 16];
    if OsRng.try_fill_bytes(&mut token).is_err() {
        return Err((
            End::new(CloseCode::InternalError, "no randomness available"),
            None,
        ));
    }
    let client_id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
    let hello = pending.hello().clone();
    let join = shared.rooms.join(
        hello,
        client_id,
        ResumeToken::from_random(token),
        Arc::clone(outbox),
    );
    let (joined, tx) = match tokio::time::timeout_at(deadline, join).await {
        Err(_) => return Err((timeout, None)),
        Ok(Err(r)) => return Err((End::new(CloseCode::Rejected, r.message.clone()), Some(r))),
        Ok(Ok(j)) => j,
    };
    let client = joined.welcome.client_id;
    let (_, welcome) = pending.accept::<EventOf<G>>(joined.welcome);
    let bytes = welcome
        .to_bytes()
        .map_err(|e| (End::new(CloseCode::InternalError, e.to_string()), None))?;
    let sent = tokio::time::timeout_at(deadline, ws.send(Message::Binary(bytes.into()))).await;
    if !matches!(sent, Ok(Ok(()))) {
        let _ = tx
            .send(RoomCommand::Disconnected {
                client,
                outbox: Arc::clone(outbox),
                reason: LeaveReason::TimedOut,
            })
            .await;
        return Err((timeout, None));
    }
    Ok((client, tx))
}

/// A message a session processes (after the optional link conditioner).
struct Pkt(Bytes);

impl PacketSize for Pkt {
    fn packet_size(&self) -> usize {
        self.0.len()
    }
}

impl Clone for Pkt {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// The simulated bad network of `ServerConfig::conditioner`: snapshots and
/// client messages get the full model (latency, jitter, loss, duplication,
/// reordering); reliable server messages get only the delays, as on TCP.
struct Link {
    epoch: Instant,
    snapshots: LinkConditioner<Pkt>,
    reliable: LinkConditioner<Pkt>,
    inbound: LinkConditioner<Pkt>,
}

impl Link {
    fn new(config: &ConditionerConfig, seed: u64) -> Self {
        let delay_only = config
            .clone()
            .with_loss(LossModel::None)
            .with_duplicate(0.0)
            .with_reorder(0.0);
        Self {
            epoch: Instant::now(),
            snapshots: LinkConditioner::new(config.clone(), seed),
            reliable: LinkConditioner::new(delay_only, seed ^ 0x5eed),
            inbound: LinkConditioner::new(config.clone(), seed ^ 0x1b0b),
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn next_wakeup(&self) -> Option<Instant> {
        [
            self.snapshots.poll_timeout(),
            self.reliable.poll_timeout(),
            self.inbound.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|d| self.epoch + d)
    }
}

/// Writes messages with the write timeout.
async fn write_all<S>(
    ws: &mut WebSocketStream<S>,
    items: Vec<Bytes>,
    timeout: Duration,
) -> Result<(), End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if items.is_empty() {
        return Ok(());
    }
    let write = async {
        for b in items {
            ws.feed(Message::Binary(b)).await?;
        }
        ws.flush().await
    };
    match tokio::time::timeout(timeout, write).await {
        Err(_) => Err(End::new(
            CloseCode::SlowConsumer,
            "not reading; write timed out",
        )),
        Ok(Err(e)) => Err(ws_error_end(&e)),
        Ok(Ok(())) => Ok(()),
    }
}

/// Per-session protocol state after the handshake.
struct Peer<'a, G: Game> {
    shared: &'a Shared<G>,
    outbox: &'a Outbox,
    room: &'a mpsc::Sender<RoomCommand<G>>,
    client: ClientId,
    ping_sent: Option<(u32, Instant)>,
}

impl<G: Game> Peer<'_, G> {
    /// Handles one binary message from the client.
    async fn handle(&mut self, bytes: &[u8]) -> Result<(), End> {
        let decoded = ClientMessage::<InputOf<G>>::decode(bytes, &self.shared.config.limits);
        match decoded {
            Err(e) => return Err(decode_end(&e)),
            Ok(ClientMessage::Hello(_)) => {
                return Err(End::new(
                    CloseCode::ProtocolError,
                    "unexpected second hello",
                ));
            }
            Ok(ClientMessage::Ping { nonce }) => {
                match server_bytes::<G>(ServerMessage::Pong { nonce }) {
                    Ok(b) => self.outbox.push_reliable(b.into()),
                    Err(e) => return Err(End::new(CloseCode::InternalError, e.to_string())),
                }
            }
            Ok(ClientMessage::Pong { nonce }) => {
                if let Some((sent, at)) = self.ping_sent
                    && sent == nonce
                {
                    tracing::trace!(
                        client = self.client,
                        rtt_ms = at.elapsed().as_secs_f64() * 1e3,
                        "rtt"
                    );
                    self.ping_sent = None;
                }
            }
            Ok(ClientMessage::Leave) => {
                // The room removes the client and closes the outbox with "goodbye".
                let msg = ClientMessage::Leave;
                let _ = self
                    .room
                    .send(RoomCommand::Message {
                        client: self.client,
                        msg,
                    })
                    .await;
            }
            Ok(msg) => {
                let cmd = RoomCommand::Message {
                    client: self.client,
                    msg,
                };
                if let Err(mpsc::error::TrySendError::Full(_)) = self.room.try_send(cmd) {
                    // The room is saturated: drop this message (inputs are
                    // resent until acked) rather than block.
                    m::inputs_dropped(1);
                }
            }
        }
        Ok(())
    }
}

async fn drive<G: Game, S>(
    ws: &mut WebSocketStream<S>,
    shared: &Arc<Shared<G>>,
    outbox: &Arc<Outbox>,
    client: ClientId,
    room: &mpsc::Sender<RoomCommand<G>>,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match drive_inner(ws, shared, outbox, client, room).await {
        Ok(()) => End::new(CloseCode::Normal, "closed"),
        Err(end) => end,
    }
}

async fn drive_inner<G: Game, S>(
    ws: &mut WebSocketStream<S>,
    shared: &Arc<Shared<G>>,
    outbox: &Arc<Outbox>,
    client: ClientId,
    room: &mpsc::Sender<RoomCommand<G>>,
) -> Result<(), End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = &shared.config;
    let mut shutdown = shared.shutdown.clone();
    let mut bucket = Bucket::new(config.max_messages_per_sec);
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(config.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut nonce = 0u32;
    let mut link = config
        .conditioner
        .as_ref()
        .map(|c| Link::new(c, config.conditioner_seed ^ u64::from(client)));
    let mut peer = Peer {
        shared,
        outbox,
        room,
        client,
        ping_sent: None,
    };
    loop {
        let idle_deadline = last_heard + config.idle_timeout;
        let link_wakeup = link.as_ref().and_then(Link::next_wakeup);
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                return Err(End::new(CloseCode::ServerShutdown, "server shutting down"));
            }
            () = outbox.changed() => {
                let batch = outbox.take();
                match &mut link {
                    None => {
                        let mut items = batch.reliable;
                        items.extend(batch.snapshot);
                        write_all(ws, items, config.write_timeout).await?;
                    }
                    Some(link) => {
                        let now = link.now();
                        for b in batch.reliable {
                            link.reliable.condition(Pkt(b), now);
                        }
                        if let Some(b) = batch.snapshot {
                            link.snapshots.condition(Pkt(b), now);
                        }
                    }
                }
                if let Some((code, reason)) = batch.close {
                    return Err(End::new(code, reason));
                }
            }
            () = async {
                match link_wakeup {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some(link) = &mut link {
                    let now = link.now();
                    let mut items = Vec::new();
                    while let Some(p) = link.reliable.poll(now) {
                        items.push(p.0);
                    }
                    while let Some(p) = link.snapshots.poll(now) {
                        items.push(p.0);
                    }
                    let mut inbound = Vec::new();
                    while let Some(p) = link.inbound.poll(now) {
                        inbound.push(p.0);
                    }
                    write_all(ws, items, config.write_timeout).await?;
                    for b in inbound {
                        peer.handle(&b).await?;
                    }
                }
            }
            msg = ws.next() => {
                let msg = match msg {
                    None => return Err(End::new(CloseCode::Normal, "connection closed")),
                    Some(Err(e)) => return Err(ws_error_end(&e)),
                    Some(Ok(m)) => m,
                };
                last_heard = Instant::now();
                if !bucket.take(last_heard) {
                    return Err(End::new(
                        CloseCode::InputFlood,
                        format!("more than {} messages per second", config.max_messages_per_sec),
                    ));
                }
                match msg {
                    Message::Binary(b) => match &mut link {
                        Some(link) => {
                            let now = link.now();
                            link.inbound.condition(Pkt(b), now);
                        }
                        None => peer.handle(&b).await?,
                    },
                    Message::Text(_) => {
                        return Err(End::new(
                            CloseCode::UnsupportedData,
                            "text frames are not supported; send binary",
                        ));
                    }
                    Message::Close(_) => {
                        return Err(End::new(CloseCode::Normal, "client closed the connection"));
                    }
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                }
            }
            _ = ping.tick() => {
                nonce = nonce.wrapping_add(1);
                peer.ping_sent = Some((nonce, Instant::now()));
                match server_bytes::<G>(ServerMessage::Ping { nonce }) {
                    Ok(b) => outbox.push_reliable(b.into()),
                    Err(e) => return Err(End::new(CloseCode::InternalError, e.to_string())),
                }
            }
            () = tokio::time::sleep_until(idle_deadline) => {
                return Err(End::new(
                    CloseCode::IdleTimeout,
                    format!("nothing received for {} s", config.idle_timeout.as_secs()),
                ));
            }
        }
    }
}

fn ws_error_end(e: &tokio_tungstenite::tungstenite::Error) -> End {
    use tokio_tungstenite::tungstenite::Error as E;
    use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
    match e {
        E::Capacity(CapacityError::MessageTooLong { size, max_size }) => End::new(
            CloseCode::MessageTooBig,
            format!("message of {size} bytes exceeds the limit of {max_size}"),
        ),
        E::Capacity(c) => End::new(CloseCode::MessageTooBig, c.to_string()),
        // The transport ended cleanly (TCP FIN, or TLS close_notify) without a
        // WebSocket close: a lost connection, as when a proxy in front drops
        // it or a client process exits, not a protocol violation. It must stay
        // resumable like any other dropped connection.
        E::Protocol(ProtocolError::ResetWithoutClosingHandshake) => End::new(
            CloseCode::Normal,
            "connection lost without a closing handshake",
        ),
        E::Protocol(p) => End::new(
            CloseCode::ProtocolError,
            format!("websocket protocol error: {p}"),
        ),
        E::ConnectionClosed | E::AlreadyClosed => End::new(CloseCode::Normal, "connection closed"),
        other => End::new(CloseCode::Normal, format!("connection lost: {other}")),
    }
}

/// Sends the protocol close message and the WebSocket close frame, bounded in time.
async fn close<S>(ws: &mut WebSocketStream<S>, end: &End, config: &ServerConfig)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    m::disconnect(end.code);
    let mut reason = end.reason.clone();
    // A close frame's reason is at most 123 bytes.
    while reason.len() > 123 {
        reason.pop();
    }
    let msg = ServerMessage::<()>::Close(tickwire_shared::message::Close {
        code: end.code,
        reason: reason.clone(),
    });
    let frame = CloseFrame {
        code: WsCloseCode::from(end.code.to_u16()),
        reason: reason.into(),
    };
    let send = async {
        if let Ok(bytes) = msg.to_bytes() {
            ws.feed(Message::Binary(bytes.into())).await?;
        }
        ws.close(Some(frame)).await
    };
    let _ = tokio::time::timeout(config.write_timeout.min(Duration::from_secs(2)), send).await;
}

fn server_bytes<G: Game>(
    msg: ServerMessage<'static, EventOf<G>>,
) -> Result<Vec<u8>, tickwire_shared::EncodeError> {
    msg.to_bytes()
}
