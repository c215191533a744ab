//! One driver task per connection: owns the connection (any
//! [`Connection`]: WSS or QUIC) and the protocol state, talks to its room
//! through bounded channels.
//!
//! ```text
//!  socket ──▶ decode (tickwire-shared, limits) ──▶ rate limit ──▶ room channel (bounded, try_send)
//!  socket ◀── write (timeout) ◀── outbox (snapshot replaceable, reliable bounded) ◀── room tick
//! ```
//!
//! Every way a session ends sends a protocol `Close` and the transport's
//! close (WebSocket close frame, QUIC `CONNECTION_CLOSE`) with a code and a
//! reason.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rand_core::{OsRng, TryRngCore};
use tickwire_shared::conditioner::{ConditionerConfig, LinkConditioner, PacketSize};
use tickwire_shared::handshake::{Rejection, ServerHandshake};
use tickwire_shared::{
    ClientMessage, CloseCode, DecodeError, GameProtocol, ResumeToken, ServerMessage,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::auth::AuthRequest;
use crate::config::{ServerConfig, SessionConfig};
use crate::game::{ClientId, EventOf, Game, InputOf, LeaveReason, MessageOf};
use crate::lifecycle::ShutdownSignal;
use crate::messages::MessageRate;
use crate::metrics as m;
use crate::outbox::Outbox;
use crate::rooms::{RoomCommand, RoomLink, Rooms};
use crate::rtt::{Pinger, Rtt};
use crate::transport::{Connection, End, Incoming};

/// What sessions share.
pub(crate) struct Shared<G: Game> {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) rooms: Arc<Rooms<G>>,
    pub(crate) next_client_id: AtomicU32,
    pub(crate) shutdown: ShutdownSignal,
}

type Proto<G> = <G as Game>::Protocol;

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

pub(crate) fn decode_end(e: &DecodeError) -> End {
    match e {
        DecodeError::MessageTooLong { .. } => End::new(CloseCode::MessageTooBig, e.to_string()),
        _ => End::new(CloseCode::ProtocolError, format!("malformed message: {e}")),
    }
}

/// Runs a session on a connection until it ends. `deadline` is when the
/// protocol handshake must be complete.
pub(crate) async fn run<G: Game, C: Connection>(
    mut conn: C,
    shared: Arc<Shared<G>>,
    peer: SocketAddr,
    upgrade: crate::http::UpgradeInfo,
    deadline: Instant,
) {
    let mut request = AuthRequest::new(peer, C::NAME);
    request.origin = upgrade.origin;
    request.user_agent = upgrade.user_agent;
    // The default room's bounds until the room sets its own (at the join).
    let outbox = Arc::new(Outbox::new(
        shared.config.room.max_queued_reliable,
        shared.config.room.max_skipped_snapshots,
    ));
    let joined = match handshake(&mut conn, &shared, &outbox, deadline, request).await {
        Ok(j) => j,
        Err((end, reject)) => {
            if let Some(r) = reject
                && let Ok(bytes) = r.to_message::<EventOf<G>>().to_bytes()
            {
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    conn.send(vec![bytes.into()], None),
                )
                .await;
            }
            tracing::info!(%peer, transport = C::NAME, code = %end.code, reason = %end.reason, "handshake failed");
            close(&mut conn, &end, &shared.config.session).await;
            return;
        }
    };
    let (client, room_tx, rtt) = joined;
    m::clients(1.0);
    shared.rooms.stats().clients(1);
    let end = drive(&mut conn, &shared, &outbox, client, &room_tx, rtt).await;
    m::clients(-1.0);
    shared.rooms.stats().clients(-1);
    tracing::info!(%peer, transport = C::NAME, client, code = %end.code, reason = %end.reason, "session closed");
    // Tell the room, unless the room itself closed this session.
    let reason = match end.code {
        CloseCode::ProtocolError
        | CloseCode::UnsupportedData
        | CloseCode::MessageTooBig
        | CloseCode::InputFlood
        | CloseCode::MessageFlood
        | CloseCode::PolicyViolation => LeaveReason::Misbehaved,
        _ => LeaveReason::TimedOut,
    };
    // Bounded channel: if the room is saturated, wait (this task only).
    let _ = room_tx
        .control
        .send(RoomCommand::Disconnected {
            client,
            outbox: Arc::clone(&outbox),
            reason,
        })
        .await;
    close(&mut conn, &end, &shared.config.session).await;
}

/// The client, its room and its RTT (whether it has implicit acks is
/// recorded in its outbox, [`Outbox::implicit_acks`]).
type Joined<G> = (ClientId, RoomLink<G>, Arc<Rtt>);

/// The tick of an encoded `Snapshot` message (its tag, then the tick);
/// `None` for any other message.
fn snapshot_tick(bytes: &Bytes) -> Option<u32> {
    if !tickwire_shared::message::is_snapshot(bytes) {
        return None;
    }
    let mut r = tickwire_shared::Reader::new(&bytes[1..]);
    r.u32("tick").ok()
}

async fn handshake<G: Game, C: Connection>(
    conn: &mut C,
    shared: &Arc<Shared<G>>,
    outbox: &Arc<Outbox>,
    deadline: Instant,
    request: AuthRequest,
) -> Result<Joined<G>, (End, Option<Rejection>)> {
    let timeout = End::new(
        CloseCode::HandshakeTimeout,
        "handshake not completed in time",
    );
    let state = ServerHandshake::new(
        shared.rooms.now(),
        deadline.saturating_duration_since(Instant::now()),
    );
    let hello = loop {
        let bytes = match tokio::time::timeout_at(deadline, conn.recv()).await {
            Err(_) => return Err((timeout, None)),
            Ok(Err(end)) => return Err((end, None)),
            Ok(Ok(Incoming::Control)) => continue,
            // Datagrams are not ordered with the stream: one sent after the
            // hello may arrive first. Before the hello they mean nothing.
            Ok(Ok(Incoming::Message {
                unreliable: true, ..
            })) => continue,
            Ok(Ok(Incoming::Message { bytes, .. })) => bytes,
        };
        match ClientMessage::<InputOf<G>, MessageOf<G>>::decode(&bytes, &shared.config.limits) {
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
    let rtt = Arc::new(Rtt::default());
    let join = shared.rooms.join(
        hello,
        client_id,
        ResumeToken::from_random(token),
        Arc::clone(outbox),
        Arc::clone(&rtt),
        request,
    );
    let (joined, tx) = match tokio::time::timeout_at(deadline, join).await {
        Err(_) => return Err((timeout, None)),
        Ok(Err(r)) => return Err((End::new(CloseCode::Rejected, r.message.clone()), Some(r))),
        Ok(Ok(j)) => j,
    };
    let client = joined.welcome.client_id;
    // Implicit acks (PROTOCOL.md §8.7) need snapshots delivered reliably
    // and in order: WSS, not datagrams. Not with the link conditioner
    // either: it holds snapshots back without the backpressure that paces a
    // slow client, and its queue limit drops what a real stream would keep.
    let allowed = !C::DATAGRAMS
        && shared.config.session.implicit_acks
        && shared.config.session.conditioner.is_none();
    let answer = joined.welcome.answering(pending.hello(), allowed);
    outbox.set_implicit_acks(answer.implicit_acks == Some(true));
    let (_, welcome) = pending.accept::<EventOf<G>>(answer);
    let bytes = welcome
        .to_bytes()
        .map_err(|e| (End::new(CloseCode::InternalError, e.to_string()), None))?;
    let sent = tokio::time::timeout_at(deadline, conn.send(vec![bytes.into()], None)).await;
    if !matches!(sent, Ok(Ok(()))) {
        let _ = tx
            .control
            .send(RoomCommand::Disconnected {
                client,
                outbox: Arc::clone(outbox),
                reason: LeaveReason::TimedOut,
            })
            .await;
        return Err((timeout, None));
    }
    m::session_started(C::NAME);
    Ok((client, tx, rtt))
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

/// The simulated bad network of `SessionConfig::conditioner`, shaped by the
/// transport. What travels on a reliable stream (everything on WSS; the
/// reliable stream of QUIC) goes through a [stream-mode
/// conditioner](LinkConditioner::new_stream): a loss costs a round trip and
/// holds back what follows, as on TCP. What travels as datagrams (QUIC
/// snapshots, and QUIC client datagrams) gets the full model: loss,
/// duplication and reordering.
struct Link {
    epoch: Instant,
    out_stream: LinkConditioner<Pkt>,
    /// `None`: snapshots share the stream (WSS).
    out_datagrams: Option<LinkConditioner<Pkt>>,
    in_stream: LinkConditioner<Pkt>,
    in_datagrams: LinkConditioner<Pkt>,
}

/// What the link releases at one instant.
#[derive(Default)]
struct Released {
    reliable: Vec<Bytes>,
    snapshots: Vec<Bytes>,
    inbound: Vec<Bytes>,
}

impl Link {
    fn new(config: &ConditionerConfig, seed: u64, datagrams: bool) -> Self {
        Self {
            epoch: Instant::now(),
            out_stream: LinkConditioner::new_stream(config.clone(), seed),
            out_datagrams: datagrams.then(|| LinkConditioner::new(config.clone(), seed ^ 0x5eed)),
            in_stream: LinkConditioner::new_stream(config.clone(), seed ^ 0x1b0b),
            in_datagrams: LinkConditioner::new(config.clone(), seed ^ 0xd6),
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// `max_datagram`: the transport's datagram size now; a snapshot that
    /// does not fit travels on the stream, so it is conditioned as such.
    fn outbound(
        &mut self,
        reliable: Vec<Bytes>,
        snapshot: Option<Bytes>,
        max_datagram: Option<usize>,
    ) {
        let now = self.now();
        for b in reliable {
            self.out_stream.condition(Pkt(b), now);
        }
        if let Some(b) = snapshot {
            let fits = max_datagram.is_some_and(|max| b.len() <= max);
            match &mut self.out_datagrams {
                Some(d) if fits => d.condition(Pkt(b), now),
                _ => self.out_stream.condition(Pkt(b), now),
            }
        }
    }

    fn inbound(&mut self, bytes: Bytes, unreliable: bool) {
        let now = self.now();
        if unreliable {
            self.in_datagrams.condition(Pkt(bytes), now);
        } else {
            self.in_stream.condition(Pkt(bytes), now);
        }
    }

    fn release(&mut self) -> Released {
        let now = self.now();
        let mut out = Released::default();
        while let Some(p) = self.out_stream.poll(now) {
            out.reliable.push(p.0);
        }
        if let Some(d) = &mut self.out_datagrams {
            while let Some(p) = d.poll(now) {
                out.snapshots.push(p.0);
            }
        }
        for link in [&mut self.in_stream, &mut self.in_datagrams] {
            while let Some(p) = link.poll(now) {
                out.inbound.push(p.0);
            }
        }
        out
    }

    fn next_wakeup(&self) -> Option<Instant> {
        [
            self.out_stream.poll_timeout(),
            self.out_datagrams
                .as_ref()
                .and_then(LinkConditioner::poll_timeout),
            self.in_stream.poll_timeout(),
            self.in_datagrams.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|d| self.epoch + d)
    }
}

/// Sends with the write timeout.
async fn send<C: Connection>(
    conn: &mut C,
    reliable: Vec<Bytes>,
    snapshot: Option<Bytes>,
    timeout: Duration,
) -> Result<(), End> {
    if reliable.is_empty() && snapshot.is_none() {
        return Ok(());
    }
    match tokio::time::timeout(timeout, conn.send(reliable, snapshot)).await {
        Err(_) => Err(End::new(
            CloseCode::SlowConsumer,
            "not reading; write timed out",
        )),
        Ok(r) => r,
    }
}
/// Per-session protocol state after the handshake.
struct Peer<'a, G: Game> {
    shared: &'a Shared<G>,
    outbox: &'a Outbox,
    room: &'a RoomLink<G>,
    client: ClientId,
    pinger: Pinger,
    rtt: Arc<Rtt>,
    messages: MessageRate,
    /// Console figures (crate::console): RTT and bytes sent.
    stats: Option<Arc<crate::console::ClientStats>>,
}

impl<G: Game> Peer<'_, G> {
    /// Handles one binary message from the client.
    async fn handle(&mut self, bytes: &[u8]) -> Result<(), End> {
        let decoded =
            ClientMessage::<InputOf<G>, MessageOf<G>>::decode(bytes, &self.shared.config.limits);
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
                if let Some(rtt) = self.pinger.pong(nonce, self.shared.rooms.now()) {
                    tracing::trace!(
                        client = self.client,
                        rtt_ms = rtt.as_secs_f64() * 1e3,
                        "rtt"
                    );
                    self.rtt.record(rtt);
                    if let Some(stats) = &self.stats {
                        stats.set_rtt(rtt);
                    }
                }
            }
            Ok(msg @ ClientMessage::GameMessage(_)) => {
                if let Err(e) = self.messages.take(self.shared.rooms.now()) {
                    return Err(End::new(e.close_code(), e.to_string()));
                }
                // Reliable and in order with leaves and disconnects: on the
                // channel those take, awaited (a full channel holds back
                // this session only).
                let cmd = RoomCommand::Message {
                    client: self.client,
                    msg,
                };
                if self.room.control.send(cmd).await.is_err() {
                    return Err(End::new(CloseCode::RoomClosed, "the room closed"));
                }
            }
            Ok(ClientMessage::Ack { snapshot_tick }) => self.outbox.record_ack(snapshot_tick),
            Ok(ClientMessage::Leave) => {
                // The room removes the client and closes the outbox with
                // "goodbye". On the channel that wakes the room: a leave is
                // rare, and its goodbye should not wait for the next tick.
                let msg = ClientMessage::Leave;
                let _ = self
                    .room
                    .control
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
                if let Err(mpsc::error::TrySendError::Full(_)) = self.room.messages.try_send(cmd) {
                    // The room is saturated: drop this message (inputs are
                    // resent until acked) rather than block.
                    m::inputs_dropped(1);
                }
            }
        }
        Ok(())
    }
}

async fn drive<G: Game, C: Connection>(
    conn: &mut C,
    shared: &Arc<Shared<G>>,
    outbox: &Arc<Outbox>,
    client: ClientId,
    room: &RoomLink<G>,
    rtt: Arc<Rtt>,
) -> End {
    match drive_inner(conn, shared, outbox, client, room, rtt).await {
        Ok(()) => End::new(CloseCode::Normal, "closed"),
        Err(end) => end,
    }
}

async fn drive_inner<G: Game, C: Connection>(
    conn: &mut C,
    shared: &Arc<Shared<G>>,
    outbox: &Arc<Outbox>,
    client: ClientId,
    room: &RoomLink<G>,
    rtt: Arc<Rtt>,
) -> Result<(), End> {
    // Implicit acks: each snapshot written counts as acknowledged.
    let implicit = outbox.implicit_acks();
    let config = &shared.config.session;
    // The room's rate limits and snapshot rate, which may be its own.
    let room_config = &*room.config;
    let mut shutdown = shared.shutdown.clone();
    let mut bucket = Bucket::new(room_config.max_messages_per_sec);
    let mut last_heard = Instant::now();
    let mut link = config
        .conditioner
        .as_ref()
        .map(|c| Link::new(c, config.conditioner_seed ^ u64::from(client), C::DATAGRAMS));
    // QuicConfig::redundant_snapshots: a second copy of each snapshot
    // datagram, a quarter of a snapshot interval later.
    let redundancy = (C::DATAGRAMS && shared.config.listener.quic.redundant_snapshots)
        .then(|| room_config.snapshot_period() / 4);
    let mut copy: Option<(Instant, Bytes)> = None;
    let mut peer = Peer {
        shared,
        outbox,
        room,
        client,
        pinger: Pinger::default(),
        rtt,
        messages: MessageRate::new(&room_config.game_messages, shared.rooms.now()),
        stats: shared.rooms.client_stats(client),
    };
    // The first ping goes out at once; then one per ping_interval.
    let mut next_ping = Instant::now();
    // The session waits on three things it keeps across turns, so a turn
    // re-registers nothing: the shutdown signal, the outbox's notification
    // (re-armed only after it fires), and one timer for every deadline
    // (ping, idle timeout, redundant copy, link conditioner), reset only when
    // the earliest one moves. A received message does not touch the timer:
    // when the idle deadline fires early it is re-armed at the deadline the
    // last message set.
    let stop = shutdown.changed();
    tokio::pin!(stop);
    let changed = outbox.changed();
    tokio::pin!(changed);
    // The idle deadline as last armed; it moves on only when it is reached
    // early (a message came meanwhile), not with every message.
    let mut idle_at = last_heard + config.idle_timeout;
    let mut armed = Some(next_ping);
    let timer = tokio::time::sleep_until(next_ping);
    tokio::pin!(timer);
    loop {
        let due = [
            Some(next_ping),
            Some(idle_at),
            copy.as_ref().map(|(at, _)| *at),
            link.as_ref().and_then(Link::next_wakeup),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(next_ping);
        if armed != Some(due) {
            armed = Some(due);
            timer.as_mut().reset(due);
        }
        tokio::select! {
            biased;
            _ = &mut stop => {
                // The room may have closed this session in the same tick (a
                // leave, a kick): its reason wins, after what it queued.
                let batch = outbox.take();
                if let Some((code, reason)) = batch.close {
                    if link.is_none() {
                        let _ = send(conn, batch.reliable, None, config.write_timeout).await;
                    }
                    return Err(End::new(code, reason));
                }
                let reason = shared
                    .shutdown
                    .borrow()
                    .as_deref()
                    .unwrap_or(crate::lifecycle::SHUTDOWN_REASON)
                    .to_owned();
                return Err(End::new(CloseCode::ServerShutdown, reason));
            }
            () = &mut changed => {
                changed.set(outbox.changed());
                let batch = outbox.take();
                if let Some(stats) = &peer.stats {
                    let bytes = batch.reliable.iter().map(Bytes::len).sum::<usize>()
                        + batch.snapshot.as_ref().map_or(0, Bytes::len);
                    let snapshots = u64::from(batch.snapshot.is_some());
                    stats.record_sent(std::time::Instant::now(), snapshots, bytes as u64);
                }
                if let (Some(delay), Some(snapshot)) = (redundancy, &batch.snapshot) {
                    // A newer snapshot supersedes the pending copy.
                    copy = conn
                        .max_datagram_size()
                        .filter(|max| snapshot.len() <= *max)
                        .map(|_| (Instant::now() + delay, snapshot.clone()));
                }
                match &mut link {
                    None => {
                        let written = batch.snapshot.as_ref().filter(|_| implicit).and_then(snapshot_tick);
                        send(conn, batch.reliable, batch.snapshot, config.write_timeout).await?;
                        if let Some(tick) = written {
                            outbox.record_ack(tick);
                        }
                    }
                    Some(link) => {
                        link.outbound(batch.reliable, batch.snapshot, conn.max_datagram_size());
                    }
                }
                if let Some((code, reason)) = batch.close {
                    return Err(End::new(code, reason));
                }
            }
            incoming = conn.recv() => {
                let incoming = incoming?;
                last_heard = Instant::now();
                if !bucket.take(last_heard) {
                    return Err(End::new(
                        CloseCode::InputFlood,
                        format!("more than {} messages per second", room_config.max_messages_per_sec),
                    ));
                }
                if let Incoming::Message { bytes, unreliable } = incoming {
                    match &mut link {
                        Some(link) => link.inbound(bytes, unreliable),
                        None => peer.handle(&bytes).await?,
                    }
                }
            }
            () = &mut timer => {
                let now = Instant::now();
                // Re-armed at the next turn's earliest deadline.
                armed = None;
                if copy.as_ref().is_some_and(|(at, _)| *at <= now)
                    && let Some((_, bytes)) = copy.take()
                {
                    match &mut link {
                        None => send(conn, Vec::new(), Some(bytes), config.write_timeout).await?,
                        Some(link) => {
                            link.outbound(Vec::new(), Some(bytes), conn.max_datagram_size());
                        }
                    }
                }
                if let Some(link) = &mut link
                    && link.next_wakeup().is_some_and(|at| at <= now)
                {
                    let released = link.release();
                    send(conn, released.reliable, None, config.write_timeout).await?;
                    for s in released.snapshots {
                        send(conn, Vec::new(), Some(s), config.write_timeout).await?;
                    }
                    for b in released.inbound {
                        peer.handle(&b).await?;
                    }
                }
                if next_ping <= now {
                    // Missed pings are not made up (a late timer sends one).
                    next_ping = now + config.ping_interval;
                    let nonce = peer.pinger.ping(shared.rooms.now());
                    match server_bytes::<G>(ServerMessage::Ping { nonce }) {
                        Ok(b) => outbox.push_reliable(b.into()),
                        Err(e) => return Err(End::new(CloseCode::InternalError, e.to_string())),
                    }
                }
                if idle_at <= now {
                    idle_at = last_heard + config.idle_timeout;
                }
                if idle_at <= now {
                    return Err(End::new(
                        CloseCode::IdleTimeout,
                        format!("nothing received for {} s", config.idle_timeout.as_secs()),
                    ));
                }
            }
        }
    }
}

/// Sends the protocol close message and the transport's close, then lingers
/// (see [`Connection::linger`]), each bounded in time.
async fn close<C: Connection>(conn: &mut C, end: &End, config: &SessionConfig) {
    m::disconnect(end.code);
    let msg = ServerMessage::<()>::Close(tickwire_shared::message::Close {
        code: end.code,
        reason: end.reason_within(123),
    });
    let last = msg.to_bytes().ok().map(Bytes::from);
    let closed = tokio::time::timeout(
        config.write_timeout.min(Duration::from_secs(2)),
        conn.close(last, end),
    )
    .await;
    if closed.is_ok() {
        let _ =
            tokio::time::timeout(config.close_linger, conn.linger(config.close_linger_bytes)).await;
    }
}

fn server_bytes<G: Game>(
    msg: ServerMessage<'static, EventOf<G>>,
) -> Result<Vec<u8>, tickwire_shared::EncodeError> {
    msg.to_bytes()
}
