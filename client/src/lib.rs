//! # tickwire-client: the native tickwire client
//!
//! Connects to a tickwire server over WebSocket Secure (rustls with the ring
//! provider + tokio-tungstenite) or QUIC (quinn; snapshots as datagrams),
//! performs the hello/welcome handshake, and then does the bookkeeping every
//! game client needs:
//!
//! * inputs get sequence numbers from 1, and every `Inputs` message resends
//!   all inputs the server has not applied yet (at most the newest 32);
//! * snapshots are decoded against kept baselines (a ring of 64, pruned below
//!   the baseline the server used), stale ones are ignored, applied ones are
//!   acknowledged automatically;
//! * server pings are answered automatically, [`Client::ping`] measures the
//!   round-trip time;
//! * [`Client::reconnect`] resumes the session with the welcome's token.
//!
//! ```text
//!  send_input ─▶ InputBuffer ─▶ Inputs (all unacked) ──┐
//!                                                       ▼
//!                              WebSocket (wss://, ws://) or QUIC (quic://)
//!                                                       │
//!  next_event ◀─ ClientEvent ◀─ BaselineRing ◀─ decode ◀┘ ─▶ Ack / Pong (automatic)
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
//! #     type Event = String;
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
//!         ClientEvent::Snapshot { tick, snapshot, last_input } => {
//!             println!("tick {tick}: {} entities, input {last_input} applied", snapshot.len());
//!         }
//!         ClientEvent::Events(events) => println!("{events:?}"),
//!         ClientEvent::Pong { rtt } => println!("rtt {rtt:?}"),
//!         ClientEvent::Closed { code, reason } => {
//!             println!("closed: {code} {reason}");
//!             break;
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! [`Client::next_event`], [`Client::send_input`] and [`Client::ping`] are
//! cancel-safe: they can be raced in `tokio::select!` (a game loop sends an
//! input on a timer while it waits for snapshots).
#![forbid(unsafe_code)]

pub mod connect;
mod error;
pub mod session;
mod transport;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use tickwire_shared::conditioner::LinkConditioner;
use tickwire_shared::message::SnapshotFrame;
use tickwire_shared::{
    ClientMessage, CloseCode, GameProtocol, Hello, ServerMessage, Snapshot, Welcome,
};
use tokio::time::Instant;

pub use connect::{ConnectOptions, Endpoint, Scheme, Trust};
pub use error::ClientError;
pub use session::{BaselineRing, InputBuffer};
pub use tickwire_shared;

use session::Refusal;
use transport::{ABNORMAL_CLOSURE, Outgoing, Received, Transport};
/// Most pings awaiting their pong.
const MAX_PINGS_IN_FLIGHT: usize = 16;
/// How long [`Client::leave`] waits for the server's close.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Something that happened on the session.
#[derive(Debug, Clone)]
pub enum ClientEvent<P: GameProtocol> {
    /// A snapshot was decoded, kept as a baseline, and acknowledged.
    Snapshot {
        /// The server tick it shows.
        tick: u32,
        /// The entities (shared with the baseline ring, cheap to clone).
        snapshot: Arc<Snapshot<P::EntityState>>,
        /// The last input sequence the server applied (0: none yet).
        last_input: u32,
    },
    /// Reliable game events, in order.
    Events(Vec<P::Event>),
    /// The answer to a [`Client::ping`].
    Pong {
        /// Round-trip time of that ping.
        rtt: Duration,
    },
    /// The session ended (server close, or a dropped connection with code
    /// 1006). Later calls return [`ClientError::Closed`].
    Closed {
        /// The close code.
        code: CloseCode,
        /// The reason given.
        reason: String,
    },
}

/// Byte and message counters of the current connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Message bytes received (WebSocket payloads, QUIC stream messages
    /// and datagrams; without transport overhead).
    pub bytes_received: u64,
    /// Messages that arrived as QUIC datagrams (snapshots that fit the path).
    pub datagrams_received: u64,
    /// Snapshots applied.
    pub snapshots_applied: u64,
    /// Snapshots ignored as stale.
    pub snapshots_stale: u64,
    /// Full (non-delta) snapshots applied.
    pub full_snapshots: u64,
}

/// A connected session with a tickwire server for game `P`.
pub struct Client<P: GameProtocol> {
    endpoint: Endpoint,
    options: ConnectOptions,
    tls: Option<Arc<ClientConfig>>,
    transport: Transport,
    welcome: Welcome,
    inputs: InputBuffer<P::Input>,
    baselines: BaselineRing<P::EntityState>,
    last_input: u32,
    outbox: VecDeque<Outgoing>,
    pings: VecDeque<(u32, Instant)>,
    next_nonce: u32,
    rtt: Option<Duration>,
    close_message: Option<(CloseCode, String)>,
    closed: Option<(CloseCode, String)>,
    epoch: Instant,
    inbound: Option<LinkConditioner<Vec<u8>>>,
    outbound: Option<LinkConditioner<Vec<u8>>>,
    stats: ClientStats,
}

impl<P: GameProtocol> std::fmt::Debug for Client<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("welcome", &self.welcome)
            .field("last_input", &self.last_input)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
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
        let (transport, welcome) = handshake::<P>(&endpoint, tls.as_ref(), &options).await?;
        let epoch = Instant::now();
        let conditioner = |salt: u64| {
            options
                .conditioner
                .as_ref()
                .map(|(c, seed)| LinkConditioner::new(c.clone(), seed.wrapping_add(salt)))
        };
        Ok(Self {
            inbound: conditioner(0),
            outbound: conditioner(0x9e37_79b9_7f4a_7c15),
            inputs: InputBuffer::new(options.limits.max_inputs_per_message),
            baselines: BaselineRing::new(options.baseline_capacity),
            endpoint,
            options,
            tls,
            transport,
            welcome,
            last_input: 0,
            outbox: VecDeque::new(),
            pings: VecDeque::new(),
            next_nonce: 1,
            rtt: None,
            close_message: None,
            closed: None,
            epoch,
            stats: ClientStats::default(),
        })
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

    /// The newest applied snapshot and its tick.
    #[must_use]
    pub fn latest(&self) -> Option<(u32, &Arc<Snapshot<P::EntityState>>)> {
        self.baselines.newest()
    }

    /// The last input sequence the server applied (from the newest snapshot).
    #[must_use]
    pub fn last_input(&self) -> u32 {
        self.last_input
    }

    /// Inputs sent but not yet applied by the server (to replay for
    /// prediction).
    #[must_use]
    pub fn pending_inputs(&self) -> &InputBuffer<P::Input> {
        &self.inputs
    }

    /// The most recent round-trip time measured by [`Client::ping`].
    #[must_use]
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Counters of the current connection.
    #[must_use]
    pub fn stats(&self) -> ClientStats {
        self.stats
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

    fn queue(&mut self, msg: &ClientMessage<P::Input>) -> Result<(), ClientError> {
        // Acks are cumulative: one lost costs nothing, so it may be a datagram.
        let unreliable = matches!(msg, ClientMessage::Ack { .. });
        self.outbox.push_back(Outgoing {
            bytes: msg.to_bytes()?.into(),
            unreliable,
        });
        Ok(())
    }

    /// Sends `input` with the next sequence number (returned), together with
    /// every input the server has not applied yet. The input's tick is the
    /// newest snapshot's tick (the welcome's before any snapshot).
    ///
    /// # Errors
    /// [`ClientError::Closed`] after the session ended,
    /// [`ClientError::Connection`] when the write fails,
    /// [`ClientError::Encode`] for an input that does not serialize.
    pub async fn send_input(&mut self, input: P::Input) -> Result<u32, ClientError> {
        self.check_open()?;
        let tick = self.latest().map_or(self.welcome.tick, |(t, _)| t);
        let seq = self.inputs.push(tick, input);
        if let Some(inputs) = self.inputs.message() {
            let bytes = ClientMessage::<P::Input>::Inputs(inputs).to_bytes()?;
            let now = self.now();
            match &mut self.outbound {
                Some(link) => link.condition(bytes, now),
                // Inputs are resent until applied: they may be datagrams.
                None => self.outbox.push_back(Outgoing {
                    bytes: bytes.into(),
                    unreliable: true,
                }),
            }
        }
        self.release_outbound();
        self.flush().await?;
        Ok(seq)
    }

    /// Sends a ping; its [`ClientEvent::Pong`] carries the round-trip time,
    /// also kept in [`Client::rtt`].
    ///
    /// # Errors
    /// As [`Client::send_input`].
    pub async fn ping(&mut self) -> Result<(), ClientError> {
        self.check_open()?;
        let nonce = self.next_nonce;
        self.next_nonce = self.next_nonce.wrapping_add(1);
        self.pings.push_back((nonce, Instant::now()));
        while self.pings.len() > MAX_PINGS_IN_FLIGHT {
            self.pings.pop_front();
        }
        self.queue(&ClientMessage::Ping { nonce })?;
        self.flush().await
    }

    /// Waits for the next event, answering pings and acknowledging snapshots
    /// on the way.
    ///
    /// # Errors
    /// [`ClientError::Protocol`] or [`ClientError::BaselineMissing`] when the
    /// server misbehaves (the client then closes with 1002),
    /// [`ClientError::Closed`] when called after [`ClientEvent::Closed`],
    /// [`ClientError::Connection`] when a write fails.
    pub async fn next_event(&mut self) -> Result<ClientEvent<P>, ClientError> {
        loop {
            self.check_open()?;
            self.release_outbound();
            // Conditioned snapshots whose time has come.
            let due = match &mut self.inbound {
                Some(link) => link.poll(self.epoch.elapsed()),
                None => None,
            };
            if let Some(bytes) = due {
                match self.handle_bytes(&bytes, true) {
                    Ok(Some(ev)) => {
                        self.flush().await?;
                        return Ok(ev);
                    }
                    Ok(None) => continue,
                    Err(e) => return Err(self.fail_flush(e).await),
                }
            }
            self.flush().await?;
            let wake = [&self.inbound, &self.outbound]
                .into_iter()
                .filter_map(|l| l.as_ref().and_then(LinkConditioner::poll_timeout))
                .min()
                .map(|d| self.epoch + d);
            let next = tokio::select! {
                next = self.transport.recv() => next,
                () = sleep_until_opt(wake) => continue,
            };
            match next {
                Ok(Received::Message { bytes, datagram }) => {
                    self.stats.bytes_received += bytes.len() as u64;
                    self.stats.datagrams_received += u64::from(datagram);
                    match self.handle_bytes(&bytes, false) {
                        Ok(Some(ev)) => {
                            self.flush().await?;
                            return Ok(ev);
                        }
                        Ok(None) => {
                            if let Some(ev) = self.answer_close_message().await {
                                return Ok(ev);
                            }
                        }
                        Err(e) => return Err(self.fail_flush(e).await),
                    }
                }
                Ok(Received::Closed { code, reason }) => return Ok(self.end(code, reason)),
                Ok(Received::Lost(reason)) => return Ok(self.end(ABNORMAL_CLOSURE, reason)),
                Ok(Received::Nothing) => {}
                Err(e) => return Err(self.fail_flush(e).await),
            }
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
        self.queue(&ClientMessage::Leave)?;
        self.flush().await?;
        let deadline = Instant::now() + LEAVE_TIMEOUT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.transport.recv())
                .await
                .map_err(|_| ClientError::Timeout("waiting for the server's close after Leave"))?;
            match next {
                Ok(Received::Lost(_)) | Err(_) => {
                    let (code, reason) = self
                        .close_message
                        .clone()
                        .unwrap_or((CloseCode::Other(ABNORMAL_CLOSURE), "connection lost".into()));
                    self.closed = Some((code, reason.clone()));
                    return Ok((code, reason));
                }
                Ok(Received::Closed { code, reason }) => {
                    let ClientEvent::<P>::Closed { code, reason } = self.end(code, reason) else {
                        unreachable!("end returns Closed")
                    };
                    // Answer the close (WebSocket).
                    let _ = tokio::time::timeout_at(deadline, self.transport.finish_close()).await;
                    return Ok((code, reason));
                }
                Ok(Received::Message { bytes, .. }) => {
                    // The protocol Close before the transport's close.
                    if let Ok(ServerMessage::Close(c)) =
                        ServerMessage::<P::Event>::decode(&bytes, &self.options.limits)
                    {
                        self.close_message = Some((c.code, c.reason));
                        if let Some(ClientEvent::Closed { code, reason }) =
                            self.answer_close_message().await
                        {
                            return Ok((code, reason));
                        }
                    }
                }
                Ok(Received::Nothing) => {}
            }
        }
    }

    /// Opens a new connection and resumes the session with the welcome's
    /// resume token. The old connection is dropped without a close (as a
    /// lost connection is), input sequences restart at 1 and every kept
    /// baseline is forgotten (PROTOCOL.md §6.6). Returns the new welcome
    /// (`resumed` says whether the server kept the session).
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub async fn reconnect(&mut self) -> Result<&Welcome, ClientError> {
        let mut options = self.options.clone();
        options.resume_token = Some(self.welcome.resume_token);
        let (transport, welcome) =
            handshake::<P>(&self.endpoint, self.tls.as_ref(), &options).await?;
        self.transport = transport;
        self.welcome = welcome;
        self.inputs = InputBuffer::new(self.options.limits.max_inputs_per_message);
        self.baselines.clear();
        self.last_input = 0;
        self.outbox.clear();
        self.pings.clear();
        self.close_message = None;
        self.closed = None;
        self.stats = ClientStats::default();
        if let Some((c, seed)) = &self.options.conditioner {
            let salt = u64::from(self.welcome.client_id) << 32;
            self.inbound = Some(LinkConditioner::new(c.clone(), seed ^ salt));
            self.outbound = Some(LinkConditioner::new(c.clone(), seed ^ salt ^ 1));
        }
        Ok(&self.welcome)
    }

    /// After the server's protocol `Close`, on a transport where the client
    /// closes first (QUIC): closes with the same code and ends the session.
    async fn answer_close_message(&mut self) -> Option<ClientEvent<P>> {
        let (code, _) = self.close_message.as_ref()?;
        if !self.transport.closes_on_close_message() {
            return None;
        }
        let code = code.to_u16();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.transport.close(code, "")).await;
        Some(self.end(code, String::new()))
    }

    /// Records the end of the session.
    fn end(&mut self, code: u16, reason: String) -> ClientEvent<P> {
        let (code, reason) = match self.close_message.take() {
            Some((c, r)) if reason.is_empty() || code == ABNORMAL_CLOSURE => (c, r),
            _ => (CloseCode::from_u16(code), reason),
        };
        self.closed = Some((code, reason.clone()));
        ClientEvent::Closed { code, reason }
    }

    /// A server misbehaved: close with 1002 (best effort), return `e`.
    async fn fail_flush(&mut self, e: ClientError) -> ClientError {
        let reason = match &e {
            ClientError::BaselineMissing { .. } => "baseline missing".to_owned(),
            _ => "protocol error".to_owned(),
        };
        self.outbox.clear();
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            self.transport
                .close(CloseCode::ProtocolError.to_u16(), &reason),
        )
        .await;
        self.closed = Some((CloseCode::ProtocolError, reason));
        e
    }

    /// Moves conditioned outbound messages whose time has come to the outbox.
    fn release_outbound(&mut self) {
        let now = self.epoch.elapsed();
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
    /// the WebSocket has taken it.
    async fn flush(&mut self) -> Result<(), ClientError> {
        let res = self.transport.flush(&mut self.outbox).await;
        res.inspect_err(|e| {
            self.closed = Some((
                CloseCode::Other(ABNORMAL_CLOSURE),
                format!("connection lost: {e}"),
            ));
        })
    }

    /// Handles one server message. `released`: it comes out of the inbound
    /// conditioner (do not condition it again).
    fn handle_bytes(
        &mut self,
        bytes: &[u8],
        released: bool,
    ) -> Result<Option<ClientEvent<P>>, ClientError> {
        let msg = ServerMessage::<P::Event>::decode(bytes, &self.options.limits)?;
        match msg {
            ServerMessage::Snapshot(frame) => {
                if !released && let Some(link) = &mut self.inbound {
                    link.condition(bytes.to_vec(), self.epoch.elapsed());
                    return Ok(None);
                }
                self.apply_snapshot(frame)
            }
            ServerMessage::Events(events) => Ok(Some(ClientEvent::Events(events))),
            ServerMessage::Ping { nonce } => {
                self.queue(&ClientMessage::Pong { nonce })?;
                Ok(None)
            }
            ServerMessage::Pong { nonce } => {
                let Some(i) = self.pings.iter().position(|(n, _)| *n == nonce) else {
                    return Ok(None);
                };
                let (_, sent) = self.pings.remove(i).unwrap_or((nonce, Instant::now()));
                let rtt = sent.elapsed();
                self.rtt = Some(rtt);
                Ok(Some(ClientEvent::Pong { rtt }))
            }
            ServerMessage::Close(c) => {
                self.close_message = Some((c.code, c.reason));
                Ok(None)
            }
            ServerMessage::Welcome(_) | ServerMessage::Reject(_) => Err(ClientError::Protocol(
                "handshake message after the welcome".into(),
            )),
        }
    }

    fn apply_snapshot(
        &mut self,
        frame: SnapshotFrame<'_>,
    ) -> Result<Option<ClientEvent<P>>, ClientError> {
        let h = frame.header;
        let base = match self.baselines.baseline_for(h.tick, h.baseline) {
            Ok(base) => base,
            Err(Refusal::Stale) => {
                self.stats.snapshots_stale += 1;
                return Ok(None);
            }
            Err(Refusal::BaselineMissing(baseline)) => {
                return Err(ClientError::BaselineMissing {
                    tick: h.tick,
                    baseline,
                });
            }
        };
        let snapshot = Arc::new(frame.decode(base, &self.options.limits)?);
        self.baselines
            .insert(h.tick, h.baseline, Arc::clone(&snapshot));
        self.last_input = h.last_input;
        self.inputs.ack(h.last_input);
        self.stats.snapshots_applied += 1;
        if h.baseline.is_none() {
            self.stats.full_snapshots += 1;
        }
        self.queue(&ClientMessage::Ack {
            snapshot_tick: h.tick,
        })?;
        Ok(Some(ClientEvent::Snapshot {
            tick: h.tick,
            snapshot,
            last_input: h.last_input,
        }))
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Opens the transport and runs hello → welcome, within the handshake
/// timeout.
async fn handshake<P: GameProtocol>(
    endpoint: &Endpoint,
    tls: Option<&Arc<ClientConfig>>,
    options: &ConnectOptions,
) -> Result<(Transport, Welcome), ClientError> {
    let run = async {
        let mut transport = connect::open(endpoint, tls, &options.limits).await?;
        let mut hello = Hello::new(P::PROTOCOL_HASH);
        hello.room.clone_from(&options.room);
        hello.auth_token.clone_from(&options.auth_token);
        hello.resume_token = options.resume_token;
        let bytes = ClientMessage::<P::Input>::Hello(hello.clone()).to_bytes()?;
        let mut queue = VecDeque::from([Outgoing {
            bytes: bytes.into(),
            unreliable: false,
        }]);
        transport.flush(&mut queue).await?;
        let hs = tickwire_shared::handshake::ClientHandshake::new(hello);
        let mut close_message = None;
        loop {
            match transport.recv().await? {
                // A snapshot datagram can overtake the welcome on the stream;
                // the server resends full snapshots until one is acked.
                Received::Message { datagram: true, .. } => {}
                Received::Message { bytes, .. } => {
                    let msg = ServerMessage::<P::Event>::decode(&bytes, &options.limits)?;
                    if let ServerMessage::Close(c) = &msg {
                        if transport.closes_on_close_message() {
                            transport.close(c.code.to_u16(), "").await;
                            return Err(ClientError::Closed {
                                code: c.code,
                                reason: c.reason.clone(),
                            });
                        }
                        // Wait for the transport's close that follows.
                        close_message = Some((c.code, c.reason.clone()));
                        continue;
                    }
                    return match hs.handle(msg) {
                        Ok(welcome) => Ok((transport, welcome)),
                        Err(tickwire_shared::handshake::HandshakeError::Rejected {
                            code,
                            message,
                        }) => Err(ClientError::Rejected { code, message }),
                        Err(e) => {
                            transport
                                .close(CloseCode::ProtocolError.to_u16(), "protocol error")
                                .await;
                            Err(ClientError::Protocol(e.to_string()))
                        }
                    };
                }
                Received::Closed { code, reason } => {
                    let (code, reason) =
                        close_message.unwrap_or((CloseCode::from_u16(code), reason));
                    return Err(ClientError::Closed { code, reason });
                }
                Received::Lost(reason) => {
                    return Err(match close_message {
                        Some((code, reason)) => ClientError::Closed { code, reason },
                        None => ClientError::Connection(format!(
                            "connection ended during the handshake: {reason}"
                        )),
                    });
                }
                Received::Nothing => {}
            }
        }
    };
    tokio::time::timeout(options.handshake_timeout, run)
        .await
        .map_err(|_| ClientError::Timeout("connect and handshake"))?
}
