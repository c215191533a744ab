//! One player's connection across sockets, without the browser: the
//! protocol session ([`Net`]), when to (re)connect with [`Backoff`], and the
//! [`Status`] a page shows. A driver (the browser's
//! [`crate::socket::GameClient`], or a test) moves bytes and socket
//! events in and out:
//!
//! ```text
//!  connect_due(now)? ─▶ open a socket, connecting(now)     on_open(now)
//!  socket message ─────▶ on_message(now, bytes)
//!  socket close ───────▶ on_close(now, code, reason, random)
//!  timer ──────────────▶ on_timer(now)
//!  after each call ────▶ poll_event(now) until None ─▶ the game
//!                        poll_close() ─▶ close the socket with (code, reason)
//!                        poll_transmit(now) until None ─▶ socket
//! ```
//!
//! ```
//! use tickwire_shared::Hello;
//! # use tickwire_shared::GameProtocol;
//! # #[derive(Debug)] struct Game;
//! # impl GameProtocol for Game {
//! #     const NAME: &'static str = "doc"; const VERSION: u32 = 1;
//! #     type Input = u8; type EntityState = u8; type Event = u8; type Message = ();
//! # }
//! use tickwire_web::connection::{Connection, Status};
//!
//! let mut c = Connection::<Game>::new();
//! c.start(0.0, Hello::new(Game::PROTOCOL_HASH));
//! assert!(c.connect_due(0.0));
//! c.connecting(0.0); // the driver opens a socket
//! c.on_open(5.0);
//! assert!(c.poll_transmit(5.0).is_some()); // the hello
//! assert_eq!(c.status(), &Status::Connecting);
//! ```

use std::collections::VecDeque;

use tickwire_shared::client::{Channel, ClientSession, Event, SendMessageError};
use tickwire_shared::{CloseCode, GameProtocol, Hello};

use crate::net::Net;
use crate::reconnect::{Backoff, Ending};
use crate::transport::TransportKind;

/// Where the connection stands, as a player sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Not started yet.
    Idle,
    /// A socket is opening or the handshake is running.
    Connecting,
    /// Welcomed: playing.
    Connected,
    /// The connection ended; another attempt is due at `retry_at_ms`.
    Waiting {
        /// Why it ended.
        ending: Ending,
        /// When the next attempt starts.
        retry_at_ms: f64,
    },
    /// The connection ended for good (until [`Connection::start`] again).
    Stopped(Ending),
}

impl Status {
    /// A short machine-readable name: `idle`, `connecting`, `connected`,
    /// `waiting` or `stopped`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Waiting { .. } => "waiting",
            Self::Stopped(_) => "stopped",
        }
    }
}

/// The arguments for `WebSocket.close`: browsers accept only 1000 and
/// 3000–4999, and a reason of at most 123 bytes.
#[must_use]
pub fn ws_close_args(code: u16, reason: &str) -> (u16, String) {
    let code = if code == 1000 || (3000..=4999).contains(&code) {
        code
    } else {
        1000
    };
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    (code, reason[..end].to_owned())
}

/// The part of a hello that names a session: a hello that differs in these
/// starts a new session instead of resuming.
fn identity(h: &Hello) -> (&Option<String>, &Option<String>, &Option<String>) {
    (&h.auth_token, &h.room, &h.seat_token)
}

/// One player's connection for game `G`, across reconnects.
pub struct Connection<G: GameProtocol> {
    hello: Option<Hello>,
    net: Option<Net<G>>,
    status: Status,
    /// When the driver should open the next socket.
    connect_at: Option<f64>,
    backoff: Backoff,
    /// Events taken from the session while settling a close.
    pending: VecDeque<Event<G>>,
    /// The transport of the current or last attempt.
    transport: Option<TransportKind>,
}

impl<G: GameProtocol> core::fmt::Debug for Connection<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("net", &self.net)
            .field("status", &self.status)
            .field("connect_at", &self.connect_at)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl<G: GameProtocol> Default for Connection<G> {
    fn default() -> Self {
        Self::new()
    }
}

impl<G: GameProtocol> Connection<G> {
    /// An idle connection: nothing happens before [`Connection::start`].
    #[must_use]
    pub fn new() -> Self {
        Self {
            hello: None,
            net: None,
            status: Status::Idle,
            connect_at: None,
            backoff: Backoff::new(),
            pending: VecDeque::new(),
            transport: None,
        }
    }

    /// (Re)starts with `hello`; the driver connects at the next
    /// [`Connection::connect_due`]. A hello with another auth token, room or
    /// seat token than the current one is a new session; the same one
    /// resumes the current session (its resume token goes in the hello).
    pub fn start(&mut self, now_ms: f64, hello: Hello) {
        let same = self
            .hello
            .as_ref()
            .is_some_and(|h| identity(h) == identity(&hello));
        if !same {
            self.net = None;
        }
        self.hello = Some(hello);
        self.backoff.reset();
        self.status = Status::Connecting;
        self.connect_at = Some(now_ms);
    }

    /// Leaves: queues a `Leave` and stops reconnecting. The driver sends it,
    /// then closes the socket normally.
    pub fn leave(&mut self, now_ms: f64) {
        if let Some(n) = &mut self.net {
            n.leave(now_ms);
        }
        self.status = Status::Stopped(Ending::Left);
        self.connect_at = None;
    }

    /// True when the driver should open a socket now.
    #[must_use]
    pub fn connect_due(&self, now_ms: f64) -> bool {
        self.connect_at.is_some_and(|t| now_ms >= t)
    }

    /// A socket is opening: a new session says hello, a known one resumes
    /// (a fresh join when it was never welcomed).
    pub fn connecting(&mut self, now_ms: f64) {
        match (&mut self.net, &self.hello) {
            (Some(n), _) => n.reconnect(now_ms),
            (None, Some(hello)) => self.net = Some(Net::new(now_ms, hello.clone())),
            (None, None) => return,
        }
        self.status = Status::Connecting;
        self.connect_at = None;
    }

    /// The socket opened (the hello can go out now).
    pub fn on_open(&mut self, _now_ms: f64) {
        if let Some(n) = &mut self.net {
            n.on_open();
        }
    }

    /// One binary WebSocket frame arrived (a reliable message). Poll
    /// events, then [`Connection::poll_close`]: a session that ended on it
    /// owes the socket a close.
    pub fn on_message(&mut self, now_ms: f64, bytes: &[u8]) {
        self.on_received(now_ms, bytes, Channel::Reliable);
    }

    /// One whole message arrived on `channel` (a WebTransport stream
    /// message is [`Channel::Reliable`], a datagram
    /// [`Channel::Unreliable`]). As [`Connection::on_message`].
    pub fn on_received(&mut self, now_ms: f64, bytes: &[u8], channel: Channel) {
        if let Some(n) = &mut self.net {
            n.on_message(now_ms, bytes, channel);
        }
    }

    /// A text frame arrived: tickwire speaks binary only. Returns the close
    /// the driver owes the socket.
    pub fn on_text_message(&mut self) -> (u16, String) {
        self.on_violation(CloseCode::UnsupportedData, "the server sent a text frame")
    }

    /// The transport saw the server break the protocol below the session
    /// (a text frame, a stream frame announcing more than the limit): the
    /// session ends with `code` and `reason`, which the driver closes the
    /// transport with (returned). The retry rule is the protocol-error
    /// one.
    pub fn on_violation(&mut self, code: CloseCode, reason: &str) -> (u16, String) {
        if let Some(n) = &mut self.net {
            n.fail(code, reason.to_owned());
            let _ = n.poll_close();
        }
        (code.to_u16(), reason.to_owned())
    }

    /// Fires the session's timers that are due (pings, timeouts).
    pub fn on_timer(&mut self, now_ms: f64) {
        if let Some(n) = &mut self.net {
            n.on_timer(now_ms);
        }
    }

    /// The socket closed (or failed to open). `random` is a uniform number
    /// in `[0, 1)` for the backoff jitter. Settles the [`Status`]: waiting
    /// for a retry, or stopped.
    pub fn on_close(&mut self, now_ms: f64, code: u16, reason: &str, random: f64) {
        let Some(n) = &mut self.net else {
            return;
        };
        n.on_transport_closed(now_ms, code, reason);
        while let Some(event) = n.poll_event(now_ms) {
            self.pending.push_back(event);
        }
        let opened = n.opened();
        let Some(closed) = n.take_closed() else {
            return;
        };
        if matches!(self.status, Status::Stopped(_)) {
            return;
        }
        let ending = Ending::from_closed(&closed, opened);
        self.status = if closed.retry {
            let retry_at_ms = now_ms + self.backoff.next_delay_ms(random);
            self.connect_at = Some(retry_at_ms);
            Status::Waiting {
                retry_at_ms,
                ending,
            }
        } else {
            self.connect_at = None;
            Status::Stopped(ending)
        };
    }

    /// Records one tick of local input (sent at the next
    /// [`Connection::poll_transmit`]); its sequence number, or `None` when
    /// not established.
    pub fn push_input(&mut self, now_ms: f64, input: G::Input) -> Option<u32> {
        self.net.as_mut()?.push_input(now_ms, input)
    }

    /// Queues one reliable game message (sent at the next
    /// [`Connection::poll_transmit`]).
    ///
    /// # Errors
    /// [`SendMessageError::NotEstablished`] without a session (idle,
    /// waiting to reconnect, stopped), or what `ClientSession::send_message`
    /// refuses; nothing was queued.
    pub fn send_message(&mut self, now_ms: f64, msg: G::Message) -> Result<(), SendMessageError> {
        match self.net.as_mut() {
            Some(net) => net.send_message(now_ms, msg),
            None => Err(SendMessageError::NotEstablished),
        }
    }

    /// The next event for the game. A welcome marks the connection
    /// [`Status::Connected`] and resets the backoff.
    pub fn poll_event(&mut self, now_ms: f64) -> Option<Event<G>> {
        let event = match self.pending.pop_front() {
            Some(e) => e,
            None => self.net.as_mut()?.poll_event(now_ms)?,
        };
        if let Event::Welcome(_) = &event {
            self.status = Status::Connected;
            self.backoff.reset();
        }
        Some(event)
    }

    /// The next message for the socket, while it is open (a WebSocket
    /// sends every message reliably).
    pub fn poll_transmit(&mut self, now_ms: f64) -> Option<&[u8]> {
        self.poll_transmit_on(now_ms).map(|(bytes, _)| bytes)
    }

    /// The next message for the transport, while it is open, and how it
    /// may travel: a transport with datagrams (WebTransport) sends
    /// [`Channel::Unreliable`] ones as datagrams when they fit.
    pub fn poll_transmit_on(&mut self, now_ms: f64) -> Option<(&[u8], Channel)> {
        self.net.as_mut()?.poll_transmit(now_ms)
    }

    /// Records the transport the driver opened for the current attempt
    /// ([`Connection::transport`]).
    pub fn set_transport(&mut self, kind: TransportKind) {
        self.transport = Some(kind);
    }

    /// The transport of the current (or, while waiting, the last) attempt;
    /// `None` before the first.
    #[must_use]
    pub fn transport(&self) -> Option<TransportKind> {
        self.transport
    }

    /// The close the driver owes the socket, as `(code, reason)`: the
    /// session ended (a protocol error, a timeout, the server's close).
    pub fn poll_close(&mut self) -> Option<(u16, String)> {
        self.net.as_mut()?.poll_close()
    }

    /// The arguments for `WebSocket.close`: browsers accept only 1000 and
    /// 3000–4999, and a reason of at most 123 bytes.
    #[must_use]
    pub fn ws_close_args(code: u16, reason: &str) -> (u16, String) {
        ws_close_args(code, reason)
    }

    /// The connection status.
    #[must_use]
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The driver's layer (meters, RTT) of the current session, if any.
    #[must_use]
    pub fn net(&self) -> Option<&Net<G>> {
        self.net.as_ref()
    }

    /// As [`Connection::net`], mutably (the rate meters advance on reading).
    pub fn net_mut(&mut self) -> Option<&mut Net<G>> {
        self.net.as_mut()
    }

    /// The protocol session, once established (welcomed and not ended).
    #[must_use]
    pub fn established(&self) -> Option<&ClientSession<G>> {
        self.net
            .as_ref()
            .map(Net::session)
            .filter(|s| s.is_established())
    }

    /// Connection attempts since the last established session.
    #[must_use]
    pub fn reconnect_attempts(&self) -> u32 {
        self.backoff.attempts()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Game;
    impl GameProtocol for Game {
        const NAME: &'static str = "test";
        const VERSION: u32 = 1;
        type Input = u8;
        type EntityState = u8;
        type Event = u8;
        type Message = ();
    }

    use tickwire_shared::message::{ClientMessage, ServerMessage};
    use tickwire_shared::snapshot::Snapshot;
    use tickwire_shared::{Limits, NetId, ResumeToken, Welcome};

    fn welcome(resumed: bool) -> Vec<u8> {
        ServerMessage::<u8>::Welcome(Welcome {
            client_id: 5,
            tick_rate: 30,
            tick: 1000,
            snapshot_interval: 1,
            resume_token: ResumeToken([4; 16]),
            room: "r".into(),
            resumed,
            implicit_acks: None,
        })
        .to_bytes()
        .unwrap()
    }

    fn sent(c: &mut Connection<Game>, now: f64) -> Vec<(ClientMessage<u8>, Channel)> {
        let mut out = Vec::new();
        while let Some((b, ch)) = c.poll_transmit_on(now) {
            out.push((ClientMessage::decode(b, &Limits::default()).unwrap(), ch));
        }
        out
    }

    /// A connection welcomed over `kind` at 10 ms.
    fn welcomed_over(c: &mut Connection<Game>, kind: TransportKind, now: f64) {
        assert!(c.connect_due(now));
        c.connecting(now);
        c.set_transport(kind);
        c.on_open(now);
        let hello = sent(c, now);
        assert!(
            matches!(&hello[..], [(ClientMessage::Hello(_), Channel::Reliable)]),
            "{hello:?}"
        );
        c.on_received(
            now + 1.0,
            &welcome(c.net().is_some_and(|n| n.session().welcome().is_some())),
            Channel::Reliable,
        );
        while c.poll_event(now + 1.0).is_some() {}
        assert_eq!(c.status(), &Status::Connected);
        assert_eq!(c.transport(), Some(kind));
    }

    #[test]
    fn datagrams_feed_the_session_and_inputs_may_travel_as_datagrams() {
        let mut c = Connection::<Game>::new();
        c.start(0.0, Hello::new(Game::PROTOCOL_HASH));
        welcomed_over(&mut c, TransportKind::WebTransport, 0.0);
        // A snapshot as a datagram is applied like one on the stream.
        let snap = Snapshot::from_vec(vec![(NetId(3), 42u8)]).unwrap();
        let bytes = tickwire_shared::message::encode_snapshot(1001, 0, None, &snap).unwrap();
        c.on_received(20.0, &bytes, Channel::Unreliable);
        while c.poll_event(20.0).is_some() {}
        let world = c.established().unwrap().world();
        assert_eq!(world.tick(), Some(1001));
        assert_eq!(world.get(NetId(3)), Some(&42));
        assert_eq!(c.established().unwrap().stats().datagrams_received, 1);
        // The input (and the ack) may go as datagrams.
        assert_eq!(c.push_input(21.0, 7), Some(1));
        let out = sent(&mut c, 21.0);
        assert!(
            out.iter()
                .any(|(m, ch)| matches!(m, ClientMessage::Inputs(_)) && *ch == Channel::Unreliable),
            "{out:?}"
        );
        // The WebSocket view of the same queue drops the channel only.
        assert_eq!(c.push_input(22.0, 8), Some(2));
        assert!(c.poll_transmit(22.0).is_some());
    }

    #[test]
    fn a_session_resumes_on_the_other_transport_with_its_token() {
        let mut c = Connection::<Game>::new();
        c.start(0.0, Hello::new(Game::PROTOCOL_HASH));
        welcomed_over(&mut c, TransportKind::WebTransport, 0.0);
        c.on_close(100.0, crate::net::LOST, "", 0.5);
        let Status::Waiting { retry_at_ms, .. } = *c.status() else {
            panic!("{:?}", c.status());
        };
        assert_eq!(c.transport(), Some(TransportKind::WebTransport));
        // The driver picks WebSocket this time: the same session resumes.
        c.connecting(retry_at_ms);
        c.set_transport(TransportKind::WebSocket);
        c.on_open(retry_at_ms);
        let hello = sent(&mut c, retry_at_ms);
        assert!(
            matches!(&hello[..], [(ClientMessage::Hello(h), Channel::Reliable)]
                if h.resume_token == Some(ResumeToken([4; 16]))),
            "{hello:?}"
        );
        c.on_message(retry_at_ms + 1.0, &welcome(true));
        while c.poll_event(retry_at_ms + 1.0).is_some() {}
        assert_eq!(c.status(), &Status::Connected);
        assert!(c.established().unwrap().welcome().unwrap().resumed);
        assert_eq!(c.transport(), Some(TransportKind::WebSocket));
    }

    #[test]
    fn a_violation_ends_the_session_with_its_code() {
        let mut c = Connection::<Game>::new();
        c.start(0.0, Hello::new(Game::PROTOCOL_HASH));
        welcomed_over(&mut c, TransportKind::WebTransport, 0.0);
        let (code, reason) = c.on_violation(CloseCode::MessageTooBig, "frame too long");
        assert_eq!((code, reason.as_str()), (1009, "frame too long"));
        // The driver closes the transport with it; its close settles the status.
        assert_eq!(c.poll_close(), None);
        c.on_close(50.0, code, &reason, 0.5);
        assert!(
            matches!(c.status(), Status::Waiting { ending: Ending::ProtocolError(r), .. } if r == "frame too long"),
            "{:?}",
            c.status()
        );
    }

    #[test]
    fn close_arguments_are_ones_a_browser_accepts() {
        type C = Connection<Game>;
        assert_eq!(C::ws_close_args(1002, "bad"), (1000, "bad".to_owned()));
        assert_eq!(C::ws_close_args(4005, ""), (4005, String::new()));
        let (_, long) = C::ws_close_args(1000, &"é".repeat(100));
        assert_eq!(long.len(), 122);
    }
}
