//! # tickwire-client: the native tickwire client
//!
//! Connects to a tickwire server over WebSocket Secure (rustls with the ring
//! provider + tokio-tungstenite) or QUIC (quinn; snapshots as datagrams) and
//! drives the protocol's client core,
//! [`tickwire_shared::client::ClientSession`], over it. Everything the
//! protocol asks of a client lives in that sans-IO core, shared with the
//! browser SDK, the bots and the tests: input sequences and resending,
//! snapshots applied in place to a [`ClientWorld`] against kept baselines,
//! acks, pings and RTT, leaving, resuming, and which endings may be retried.
//! This crate only moves bytes and reads the clock.
//!
//! ```text
//!  send_input ─▶ ClientSession ─▶ poll_transmit ─▶ WebSocket (wss://, ws://) or QUIC (quic://)
//!                    ▲   │                                              │
//!  next_event ◀─ poll_event ◀─ handle_message ◀─────────────────────────┘
//!                    └── world(): the entities, patched in place
//! ```
//!
//! The same code runs over either transport: pass `quic://127.0.0.1:8444`
//! instead of the `wss://` URL below to use QUIC.
//!
//! ```no_run
//! use tickwire_client::{Client, ClientEvent, ConnectOptions, Trust};
//! # use tickwire_shared::GameProtocol;
//! # struct Dots;
//! # impl GameProtocol for Dots {
//! #     const NAME: &'static str = "dots";
//! #     const VERSION: u32 = 1;
//! #     type Input = (i8, i8);
//! #     type EntityState = (i32, i32);
//! #     type Event = String; type Message = ();
//! # }
//!
//! # async fn run() -> Result<(), tickwire_client::ClientError> {
//! let options = ConnectOptions::new(Trust::PemFile("dev-cert.pem".into()))
//!     .with_auth_token("ada");
//! let mut client = Client::<Dots>::connect("wss://127.0.0.1:8443/ws", options).await?;
//! println!("joined room {} as {}", client.welcome().room, client.welcome().client_id);
//! client.send_input((1, 0)).await?;
//! loop {
//!     match client.next_event().await? {
//!         ClientEvent::Snapshot(applied) => {
//!             let world = client.world();
//!             println!("tick {}: {} entities ({} changed), input {} applied",
//!                 applied.tick, world.len(), world.changes().changed.len(), applied.last_input);
//!         }
//!         ClientEvent::Events(events) => println!("{events:?}"),
//!         ClientEvent::Rtt(rtt) => println!("rtt {rtt:?}"),
//!         ClientEvent::Closed { code, reason } => {
//!             println!("closed: {code} {reason}");
//!             break;
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! [`Client::next_event`] and [`Client::send_input`] are cancel-safe: they
//! can be raced in `tokio::select!` (a game loop sends an input on a timer
//! while it waits for snapshots).
#![forbid(unsafe_code)]

pub mod connect;
mod error;
pub mod matchmake;
mod timer;
mod transport;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rustls::ClientConfig as TlsConfig;
use tickwire_shared::client::{
    Channel, ClientConfig, ClientSession, Closed, Event, SessionStats, SnapshotApplied,
};
use tickwire_shared::conditioner::LinkConditioner;
use tickwire_shared::{CloseCode, GameProtocol, Hello, Welcome};
use tokio::time::Instant;

pub use connect::{ConnectOptions, Endpoint, Scheme, Trust};
pub use error::ClientError;
pub use tickwire_shared;
pub use tickwire_shared::client::{AckPolicy, ClientWorld};

use timer::Timer;
use transport::{Outgoing, Received, Transport};

/// How long [`Client::leave`] waits for the server's close.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long closing the transport may take (best effort).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Something that happened on the session.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent<E> {
    /// A snapshot was applied to [`Client::world`] and acknowledged.
    Snapshot(SnapshotApplied),
    /// Reliable game events, in order.
    Events(Vec<E>),
    /// A round-trip time measurement (the session pings once a second).
    Rtt(Duration),
    /// The session ended (server close, or a dropped connection with code
    /// 1006). Later calls return [`ClientError::Closed`].
    Closed {
        /// The close code.
        code: CloseCode,
        /// The reason given.
        reason: String,
    },
}

/// Counters of the current connection.
pub type ClientStats = SessionStats;

/// A connected session with a tickwire server for game `P`.
pub struct Client<P: GameProtocol> {
    endpoint: Endpoint,
    options: ConnectOptions,
    tls: Option<Arc<TlsConfig>>,
    transport: Transport,
    session: ClientSession<P>,
    welcome: Welcome,
    epoch: Instant,
    inbound: Option<LinkConditioner<Inbound>>,
    outbound: Option<LinkConditioner<Vec<u8>>>,
    outbox: VecDeque<Outgoing>,
    buf: Vec<u8>,
    /// Outgoing messages are copied here and split off as `Bytes`; the
    /// allocation is reclaimed once the transport has written them.
    out: BytesMut,
    /// The session's deadline (see [`timer`]).
    timer: Timer,
    closed: Option<(CloseCode, String)>,
}

impl<P: GameProtocol> std::fmt::Debug for Client<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("session", &self.session)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

fn session_config(options: &ConnectOptions) -> ClientConfig {
    ClientConfig::default()
        .with_limits(options.limits.clone())
        .with_handshake_timeout(options.handshake_timeout)
        .with_baseline_capacity(options.baseline_capacity)
        .with_acks(options.acks)
        // A client-side conditioner drops snapshots the transport delivered:
        // the server must not count them as acknowledged.
        .with_implicit_acks(options.implicit_acks && options.conditioner.is_none())
}

impl<P: GameProtocol> Client<P> {
    /// Connects to `url` (`wss://host:port/path`, `quic://host:port`, or
    /// `ws://` for a server in plain development mode) and completes the
    /// handshake.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`], [`ClientError::Connection`], [`ClientError::Tls`],
    /// [`ClientError::Timeout`], [`ClientError::Rejected`],
    /// [`ClientError::Closed`] (closed during the handshake) or
    /// [`ClientError::Protocol`].
    pub async fn connect(url: &str, options: ConnectOptions) -> Result<Self, ClientError> {
        let endpoint = Endpoint::parse(url)?;
        let tls = match endpoint.scheme {
            Scheme::Wss | Scheme::Quic => Some(connect::tls_config(&options.trust)?),
            _ => None,
        };
        let epoch = Instant::now();
        let mut hello = Hello::new(P::PROTOCOL_HASH);
        hello.room.clone_from(&options.room);
        hello.auth_token.clone_from(&options.auth_token);
        hello.resume_token = options.resume_token;
        hello.seat_token.clone_from(&options.seat_token);
        let session = ClientSession::new(Duration::ZERO, hello, session_config(&options));
        let (inbound, outbound) = match &options.conditioner {
            Some((c, seed)) => (
                Some(LinkConditioner::new(c.clone(), *seed)),
                Some(LinkConditioner::new(
                    c.clone(),
                    seed.wrapping_add(0x9e37_79b9_7f4a_7c15),
                )),
            ),
            None => (None, None),
        };
        let timeout = options.handshake_timeout;
        let run = async {
            let transport = connect::open(&endpoint, tls.as_ref(), &options.limits).await?;
            let mut client = Self {
                endpoint,
                options,
                tls,
                transport,
                session,
                welcome: placeholder_welcome(),
                epoch,
                inbound,
                outbound,
                outbox: VecDeque::new(),
                buf: Vec::new(),
                out: BytesMut::new(),
                timer: Timer::new(),
                closed: None,
            };
            client.handshake().await?;
            Ok(client)
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| ClientError::Timeout("connect and handshake"))?
    }

    /// Connects to the node a matchmaker named ([`matchmake::matchmake`]),
    /// over its WebSocket URL, with the ticket's room and seat token added
    /// to `options`. For QUIC: `Client::connect(quic_url,
    /// options.with_ticket(&ticket))` with the ticket's `quic_url`.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub async fn connect_ticket(
        ticket: &matchmake::Ticket,
        options: ConnectOptions,
    ) -> Result<Self, ClientError> {
        Self::connect(&ticket.wss_url, options.with_ticket(ticket)).await
    }

    /// Sends the hello and waits for the welcome on the current transport.
    async fn handshake(&mut self) -> Result<(), ClientError> {
        loop {
            self.pump();
            self.flush().await?;
            while let Some(ev) = self.session.poll_event() {
                match ev {
                    Event::Welcome(w) => {
                        self.welcome = w;
                        return Ok(());
                    }
                    Event::Closed(c) => return Err(self.handshake_failed(c).await),
                    // Nothing else comes before the welcome.
                    _ => {}
                }
            }
            let wake = self.session.poll_timeout().map(|d| self.epoch + d);
            self.timer.arm(wake);
            let next = tokio::select! {
                next = self.transport.recv() => next?,
                () = self.timer.sleep(), if self.timer.is_armed() => {
                    self.timer.fired();
                    let now = self.now();
                    self.session.handle_timeout(now);
                    continue;
                }
            };
            let now = self.now();
            match next {
                // Snapshots are not conditioned before the welcome.
                Received::Message { bytes, datagram } => {
                    self.session.handle_message(now, &bytes, channel(datagram));
                }
                Received::Closed { code, reason } => {
                    self.session
                        .handle_transport_closed(now, Some(code), &reason);
                }
                Received::Lost(reason) => {
                    return Err(ClientError::Connection(format!(
                        "connection ended during the handshake: {reason}"
                    )));
                }
                Received::Nothing => {}
            }
        }
    }

    async fn handshake_failed(&mut self, c: Closed) -> ClientError {
        self.end_transport(&c).await;
        self.closed = Some((c.code, c.reason.clone()));
        match (c.reject, c.code) {
            (Some(code), _) => ClientError::Rejected {
                code,
                message: c.reason,
            },
            (None, CloseCode::HandshakeTimeout) => ClientError::Timeout("waiting for the welcome"),
            (None, CloseCode::ProtocolError | CloseCode::MessageTooBig) if c.local => {
                ClientError::Protocol(c.reason)
            }
            (None, code) => ClientError::Closed {
                code,
                reason: c.reason,
            },
        }
    }

    /// The welcome of the current connection.
    #[must_use]
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The server endpoint.
    #[must_use]
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The world at the newest applied snapshot.
    #[must_use]
    pub fn world(&self) -> &ClientWorld<P::EntityState> {
        self.session.world()
    }

    /// The protocol session (pending inputs, RTT, estimated server tick…).
    #[must_use]
    pub fn session(&self) -> &ClientSession<P> {
        &self.session
    }

    /// The last input sequence the server applied (from the newest snapshot).
    #[must_use]
    pub fn last_input(&self) -> u32 {
        self.session.last_input()
    }

    /// The most recent round-trip time.
    #[must_use]
    pub fn rtt(&self) -> Option<Duration> {
        self.session.rtt()
    }

    /// Counters of the current connection.
    #[must_use]
    pub fn stats(&self) -> ClientStats {
        self.session.stats()
    }

    /// `Some((code, reason))` once the session has ended.
    #[must_use]
    pub fn closed(&self) -> Option<&(CloseCode, String)> {
        self.closed.as_ref()
    }

    fn check_open(&self) -> Result<(), ClientError> {
        match &self.closed {
            Some((code, reason)) => Err(ClientError::Closed {
                code: *code,
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Sends `input` with the next sequence number (returned), together with
    /// every input the server has not applied yet (PROTOCOL.md §7).
    ///
    /// # Errors
    /// [`ClientError::Closed`] after the session ended,
    /// [`ClientError::Connection`] when the write fails.
    pub async fn send_input(&mut self, input: P::Input) -> Result<u32, ClientError> {
        let seq = self.queue_input(input)?;
        self.send_pending().await?;
        Ok(seq)
    }

    /// Gives `input` the next sequence number (returned) without writing
    /// it: it goes out with whatever else is pending on the next
    /// [`Client::send_pending`], [`Client::send_input`] or
    /// [`Client::next_event`]. Queue the inputs of several ticks and send
    /// them in one message, or answer a snapshot with its ack and the
    /// inputs in one write (see [`ConnectOptions::defer_acks`]).
    ///
    /// # Errors
    /// [`ClientError::Closed`] after the session ended.
    pub fn queue_input(&mut self, input: P::Input) -> Result<u32, ClientError> {
        self.check_open()?;
        let now = self.now();
        self.session
            .push_input(now, input)
            .ok_or_else(|| ClientError::Closed {
                code: CloseCode::Normal,
                reason: "the session is leaving".into(),
            })
    }

    /// Sends one reliable game message ([`GameProtocol::Message`]): on the
    /// WebSocket, or on the QUIC stream (never a datagram), in order with
    /// the other reliable messages. The server's game gets it in
    /// `Game::on_message` on its next tick. The server rate-limits game
    /// messages and closes a session over the limit with `MessageFlood`
    /// (docs/PROTOCOL.md §5.2).
    ///
    /// # Errors
    /// [`ClientError::Closed`] after the session ended,
    /// [`ClientError::Message`] when the session refuses the message (too
    /// large, too many queued, leaving), [`ClientError::Connection`] when
    /// the write fails.
    pub async fn send_message(&mut self, msg: P::Message) -> Result<(), ClientError> {
        self.check_open()?;
        let now = self.now();
        self.session.send_message(now, msg)?;
        self.send_pending().await
    }

    /// Writes everything pending (queued inputs, acks, pongs) in one go.
    ///
    /// # Errors
    /// [`ClientError::Closed`] after the session ended,
    /// [`ClientError::Connection`] when the write fails.
    pub async fn send_pending(&mut self) -> Result<(), ClientError> {
        self.check_open()?;
        self.pump();
        self.flush().await
    }

    /// Waits for the next event; acks, pongs and pings go out on the way.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] when the server misbehaves (the client then
    /// closes with 1002 or 1009), [`ClientError::Closed`] when called after
    /// [`ClientEvent::Closed`], [`ClientError::Connection`] when a write
    /// fails.
    pub async fn next_event(&mut self) -> Result<ClientEvent<P::Event>, ClientError> {
        loop {
            self.check_open()?;
            if let Some(ev) = self.session.poll_event() {
                match ev {
                    Event::Snapshot(a) => {
                        if !self.options.defer_acks {
                            self.pump();
                            self.flush().await?;
                        }
                        return Ok(ClientEvent::Snapshot(a));
                    }
                    Event::Events(e) => return Ok(ClientEvent::Events(e)),
                    Event::Rtt(rtt) => return Ok(ClientEvent::Rtt(rtt)),
                    Event::Welcome(w) => self.welcome = w,
                    Event::Closed(c) => return self.on_closed(c).await,
                }
                continue;
            }
            self.pump();
            self.flush().await?;
            let now = self.now();
            if let Some(m) = self.inbound.as_mut().and_then(|l| l.poll(now)) {
                self.session
                    .handle_message(now, &m.bytes, channel(m.datagram));
                continue;
            }
            let wake = [
                self.inbound
                    .as_ref()
                    .and_then(LinkConditioner::poll_timeout),
                self.outbound
                    .as_ref()
                    .and_then(LinkConditioner::poll_timeout),
                self.session.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min()
            .map(|d| self.epoch + d);
            self.timer.arm(wake);
            let next = tokio::select! {
                next = self.transport.recv() => next,
                () = self.timer.sleep(), if self.timer.is_armed() => {
                    self.timer.fired();
                    let now = self.now();
                    self.session.handle_timeout(now);
                    continue;
                }
            };
            let now = self.now();
            match next {
                Ok(Received::Message { bytes, datagram }) => match &mut self.inbound {
                    Some(link) if tickwire_shared::message::is_snapshot(&bytes) => {
                        link.condition(Inbound { bytes, datagram }, now);
                    }
                    _ => self.session.handle_message(now, &bytes, channel(datagram)),
                },
                Ok(Received::Closed { code, reason }) => {
                    self.session
                        .handle_transport_closed(now, Some(code), &reason);
                }
                Ok(Received::Lost(reason)) => {
                    self.session.handle_transport_closed(now, None, &reason);
                }
                Ok(Received::Nothing) => {}
                Err(e) => {
                    self.session
                        .handle_transport_closed(now, None, &e.to_string());
                }
            }
        }
    }

    /// The session ended: finish the transport and report it.
    async fn on_closed(&mut self, c: Closed) -> Result<ClientEvent<P::Event>, ClientError> {
        self.end_transport(&c).await;
        self.closed = Some((c.code, c.reason.clone()));
        if c.local && matches!(c.code, CloseCode::ProtocolError | CloseCode::MessageTooBig) {
            return Err(ClientError::Protocol(c.reason));
        }
        Ok(ClientEvent::Closed {
            code: c.code,
            reason: c.reason,
        })
    }

    /// Closes the transport as the ending asks: with the client's code when
    /// it decided to close; on QUIC after the server's `Close` message (the
    /// server waits for that); on WSS by answering the server's close.
    async fn end_transport(&mut self, c: &Closed) {
        self.outbox.clear();
        let code = c.code.to_u16();
        if c.local {
            let reason = truncate(&c.reason, 120);
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.transport.close(code, reason)).await;
        } else if self.transport.closes_on_close_message() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.transport.close(code, "")).await;
        } else {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.transport.finish_close()).await;
        }
    }

    /// Leaves: sends `Leave` and waits (at most 5 s) for the server's close.
    /// Returns the close code and reason (normally [`CloseCode::Normal`]).
    ///
    /// # Errors
    /// [`ClientError::Closed`] when the session had already ended,
    /// [`ClientError::Connection`] when the write fails,
    /// [`ClientError::Timeout`] when the server does not close in time.
    pub async fn leave(&mut self) -> Result<(CloseCode, String), ClientError> {
        self.check_open()?;
        let now = self.now();
        self.session.leave(now);
        self.pump();
        self.flush().await?;
        let deadline = Instant::now() + LEAVE_TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.next_event()).await {
                Err(_) => {
                    return Err(ClientError::Timeout(
                        "waiting for the server's close after Leave",
                    ));
                }
                Ok(Ok(ClientEvent::Closed { code, reason })) => return Ok((code, reason)),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Opens a new connection and resumes the session with the welcome's
    /// resume token. The old connection is dropped without a close (as a
    /// lost connection is); input sequences restart at 1, unapplied inputs
    /// and kept baselines are dropped (PROTOCOL.md §6.6, §7). Returns the new
    /// welcome (`resumed` says whether the server kept the session).
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub async fn reconnect(&mut self) -> Result<&Welcome, ClientError> {
        let timeout = self.options.handshake_timeout;
        let run = async {
            self.transport =
                connect::open(&self.endpoint, self.tls.as_ref(), &self.options.limits).await?;
            let now = self.now();
            self.session.resume(now);
            // Events of the old connection are stale now.
            while self.session.poll_event().is_some() {}
            self.outbox.clear();
            self.closed = None;
            if let Some((c, seed)) = &self.options.conditioner {
                let salt = u64::from(self.welcome.client_id) << 32;
                self.inbound = Some(LinkConditioner::new(c.clone(), seed ^ salt));
                self.outbound = Some(LinkConditioner::new(c.clone(), seed ^ salt ^ 1));
            }
            self.handshake().await
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| ClientError::Timeout("connect and handshake"))??;
        Ok(&self.welcome)
    }

    /// Moves what the session wants to send into the outbox (unreliable
    /// messages through the outbound conditioner when there is one).
    fn pump(&mut self) {
        let now = self.now();
        while let Some(ch) = self.session.poll_transmit(now, &mut self.buf) {
            match (ch, &mut self.outbound) {
                (Channel::Unreliable, Some(link)) => link.condition(self.buf.clone(), now),
                _ => {
                    self.out.extend_from_slice(&self.buf);
                    self.outbox.push_back(Outgoing {
                        bytes: self.out.split().freeze(),
                        unreliable: ch == Channel::Unreliable,
                    });
                }
            }
        }
        if let Some(link) = &mut self.outbound {
            while let Some(bytes) = link.poll(now) {
                self.outbox.push_back(Outgoing {
                    bytes: bytes.into(),
                    unreliable: true,
                });
            }
        }
    }

    /// Writes the outbox. Cancel-safe: a message leaves the outbox only once
    /// the transport has taken it.
    async fn flush(&mut self) -> Result<(), ClientError> {
        let res = self.transport.flush(&mut self.outbox).await;
        res.inspect_err(|e| {
            let now = self.epoch.elapsed();
            self.session
                .handle_transport_closed(now, None, &format!("connection lost: {e}"));
        })
    }
}

/// A received snapshot held by the inbound conditioner.
#[derive(Clone)]
struct Inbound {
    bytes: Bytes,
    datagram: bool,
}

impl tickwire_shared::conditioner::PacketSize for Inbound {
    fn packet_size(&self) -> usize {
        self.bytes.len()
    }
}

fn channel(datagram: bool) -> Channel {
    if datagram {
        Channel::Unreliable
    } else {
        Channel::Reliable
    }
}

/// At most `max` bytes of `s`, cut at a character boundary (close reasons
/// are limited to 123 bytes on WebSocket).
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Replaced by the real welcome before [`Client::connect`] returns.
fn placeholder_welcome() -> Welcome {
    Welcome {
        client_id: 0,
        tick_rate: 1,
        tick: 0,
        snapshot_interval: 1,
        resume_token: tickwire_shared::ResumeToken([0; 16]),
        room: String::new(),
        resumed: false,
        implicit_acks: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client-side conditioner drops snapshots the transport delivered,
    /// so a client with one must ack them itself.
    #[test]
    fn implicit_acks_are_asked_for_unless_a_client_side_conditioner_drops_snapshots() {
        let options = ConnectOptions::new(Trust::InsecureDevCertificate);
        assert!(session_config(&options).implicit_acks);
        assert!(!session_config(&options.clone().with_implicit_acks(false)).implicit_acks);
        let lossy = options.with_conditioner("loss=5%".parse().unwrap(), 1);
        assert!(!session_config(&lossy).implicit_acks);
    }
}
