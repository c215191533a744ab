//! The browser's driver of the protocol: a thin layer around
//! `tickwire_shared::client::ClientSession`, which holds every protocol rule
//! (handshake, input sequencing and resending, acks and baselines, pings,
//! timeouts, leaving, resuming, which endings may be retried).
//!
//! ```text
//!  socket bytes ──▶ Net::on_message(now, bytes, channel) ─┐  bytes counted here (meters)
//!  local input  ──▶ Net::push_input(now, input)    ├─▶ ClientSession ──▶ Net::poll_event(now) ─▶ the game
//!  timer        ──▶ Net::on_timer(now)             │                  ──▶ Net::poll_transmit(now) ─▶ socket
//!  socket close ──▶ Net::on_transport_closed(now) ─┘                  ──▶ Net::poll_close() ─▶ close the socket
//! ```
//!
//! What stays here is driver policy and figures: browser milliseconds to
//! [`Duration`], "send only once the socket is open", byte and snapshot
//! rate meters, a smoothed RTT for the overlay, and the close the driver
//! owes the socket when the session ends first.

use std::time::Duration;

use tickwire_shared::client::{
    ABNORMAL_CLOSURE, Channel, ClientConfig, ClientSession, Closed, Event, SendMessageError,
};
use tickwire_shared::{CloseCode, GameProtocol, Hello};

use crate::meter::RateMeter;

/// Where the current socket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Socket {
    Opening,
    Open,
    Gone,
}

/// Browser time (`performance.now()`, milliseconds) as the session's clock.
/// Negative or non-finite values read as the epoch.
#[must_use]
pub fn to_duration(now_ms: f64) -> Duration {
    Duration::try_from_secs_f64(now_ms.max(0.0) / 1000.0).unwrap_or(Duration::ZERO)
}

/// The hello for game `G` with the player's name as the auth token.
#[must_use]
pub fn hello<G: GameProtocol>(name: &str) -> Hello {
    let mut hello = Hello::new(G::PROTOCOL_HASH);
    hello.auth_token = Some(name.to_owned());
    hello
}

/// One player's connection (across reconnects) for game `G`.
pub struct Net<G: GameProtocol> {
    session: ClientSession<G>,
    buf: Vec<u8>,
    socket: Socket,
    /// The current socket opened at some point.
    opened: bool,
    /// How the session ended, kept until the socket's close is handled.
    closed: Option<Closed>,
    /// The close the driver owes the socket (code, reason).
    close_socket: Option<(u16, String)>,
    srtt_ms: Option<f64>,
    snapshots: RateMeter,
    bytes_in: RateMeter,
    bytes_out: RateMeter,
}

impl<G: GameProtocol> core::fmt::Debug for Net<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Net")
            .field("session", &self.session)
            .field("socket", &self.socket)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<G: GameProtocol> Net<G> {
    /// A session for a socket that is opening: it says `hello` once the
    /// socket is open.
    #[must_use]
    pub fn new(now_ms: f64, hello: Hello) -> Self {
        Self {
            session: ClientSession::new(to_duration(now_ms), hello, ClientConfig::default()),
            buf: Vec::new(),
            socket: Socket::Opening,
            opened: false,
            closed: None,
            close_socket: None,
            srtt_ms: None,
            snapshots: RateMeter::new(),
            bytes_in: RateMeter::new(),
            bytes_out: RateMeter::new(),
        }
    }

    /// A new socket is opening after a drop: the session resumes (input
    /// sequences restart at 1, pending inputs and baselines are dropped).
    pub fn reconnect(&mut self, now_ms: f64) {
        self.session.resume(to_duration(now_ms));
        self.socket = Socket::Opening;
        self.opened = false;
        self.closed = None;
        self.close_socket = None;
    }

    /// The socket opened.
    pub fn on_open(&mut self) {
        self.socket = Socket::Open;
        self.opened = true;
    }

    /// True when the current socket opened at some point.
    #[must_use]
    pub fn opened(&self) -> bool {
        self.opened
    }

    /// One whole message arrived on `channel`: a WebSocket binary frame or
    /// a message of the WebTransport stream ([`Channel::Reliable`]), or a
    /// WebTransport datagram ([`Channel::Unreliable`]).
    pub fn on_message(&mut self, now_ms: f64, bytes: &[u8], channel: Channel) {
        self.bytes_in.add(now_ms, bytes.len() as f64);
        self.session
            .handle_message(to_duration(now_ms), bytes, channel);
    }

    /// Fires the session's timers that are due (pings, handshake and idle
    /// timeouts).
    pub fn on_timer(&mut self, now_ms: f64) {
        let now = to_duration(now_ms);
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
    }

    /// Records one tick of local input (sent at the next
    /// [`Net::poll_transmit`]); its sequence number, or `None` when not
    /// established.
    pub fn push_input(&mut self, now_ms: f64, input: G::Input) -> Option<u32> {
        self.session.push_input(to_duration(now_ms), input)
    }

    /// Queues one reliable game message (sent at the next
    /// [`Net::poll_transmit`]; see `ClientSession::send_message`).
    ///
    /// # Errors
    /// A [`SendMessageError`] (not established, too large, queue full);
    /// nothing was queued.
    pub fn send_message(&mut self, now_ms: f64, msg: G::Message) -> Result<(), SendMessageError> {
        self.session.send_message(to_duration(now_ms), msg)
    }

    /// Leaves: the `Leave` goes out at the next [`Net::poll_transmit`].
    pub fn leave(&mut self, now_ms: f64) {
        self.session.leave(to_duration(now_ms));
    }

    /// The driver ends the session itself for a reason the session cannot
    /// see (a text frame, a stream frame over the limit): the retry rule is
    /// the protocol-error one.
    pub fn fail(&mut self, code: CloseCode, reason: String) {
        if self.closed.is_none() {
            let retry = Closed::may_retry(CloseCode::ProtocolError, None, false);
            self.close_socket = Some((code.to_u16(), reason.clone()));
            self.closed = Some(Closed {
                code,
                reason,
                reject: None,
                local: true,
                retry,
            });
        }
    }

    /// The socket closed (or never opened): `code` and `reason` of its close
    /// event. The session's [`Event::Closed`] follows from
    /// [`Net::poll_event`] unless it ended before.
    pub fn on_transport_closed(&mut self, now_ms: f64, code: u16, reason: &str) {
        self.socket = Socket::Gone;
        self.close_socket = None;
        self.session
            .handle_transport_closed(to_duration(now_ms), Some(code), reason);
    }

    /// How the session ended (taken once): the first [`Event::Closed`], or
    /// the driver's own [`Net::fail`].
    pub fn take_closed(&mut self) -> Option<Closed> {
        self.closed.take()
    }

    /// The next event for the game, after the driver's own bookkeeping.
    pub fn poll_event(&mut self, now_ms: f64) -> Option<Event<G>> {
        let event = self.session.poll_event()?;
        match &event {
            Event::Snapshot(_) => self.snapshots.add(now_ms, 1.0),
            Event::Rtt(rtt) => {
                let rtt = rtt.as_secs_f64() * 1000.0;
                // RFC 6298 style, α = 1/8.
                self.srtt_ms = Some(self.srtt_ms.map_or(rtt, |s| s + (rtt - s) / 8.0));
            }
            Event::Closed(c) if self.closed.is_none() => {
                let code = if c.reject.is_some() {
                    CloseCode::Normal
                } else {
                    c.code
                };
                let reason = if c.local {
                    c.reason.clone()
                } else {
                    String::new()
                };
                if self.socket != Socket::Gone {
                    self.close_socket = Some((code.to_u16(), reason));
                }
                self.closed = Some(c.clone());
            }
            _ => {}
        }
        Some(event)
    }

    /// The next message for the socket, while it is open, and how it may
    /// travel: a transport without datagrams (WebSocket) sends both
    /// channels reliably.
    pub fn poll_transmit(&mut self, now_ms: f64) -> Option<(&[u8], Channel)> {
        if self.socket != Socket::Open {
            return None;
        }
        let channel = self
            .session
            .poll_transmit(to_duration(now_ms), &mut self.buf)?;
        self.bytes_out.add(now_ms, self.buf.len() as f64);
        Some((&self.buf, channel))
    }

    /// The close the driver owes the socket (code, reason), once: the
    /// session ended while the socket is opening or open.
    pub fn poll_close(&mut self) -> Option<(u16, String)> {
        self.close_socket.take()
    }

    /// The protocol session.
    #[must_use]
    pub fn session(&self) -> &ClientSession<G> {
        &self.session
    }

    /// Smoothed round-trip time in milliseconds.
    #[must_use]
    pub fn rtt_ms(&self) -> Option<f64> {
        self.srtt_ms
    }

    /// Snapshots applied during the last second.
    pub fn snapshots_per_sec(&mut self, now_ms: f64) -> f64 {
        self.snapshots.per_second(now_ms)
    }

    /// Bytes received during the last second.
    pub fn bytes_in_per_sec(&mut self, now_ms: f64) -> f64 {
        self.bytes_in.per_second(now_ms)
    }

    /// Bytes sent during the last second.
    pub fn bytes_out_per_sec(&mut self, now_ms: f64) -> f64 {
        self.bytes_out.per_second(now_ms)
    }
}

/// The close code of a socket that dropped (or never opened) without one.
pub const LOST: u16 = ABNORMAL_CLOSURE;
