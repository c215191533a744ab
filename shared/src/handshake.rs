//! The handshake: hello → welcome or reject, as consuming state transitions.
//!
//! ```text
//!  client                                   server
//!  ClientHandshake::new(hello) ── Hello ──▶ ServerHandshake::new(now, timeout)
//!                                            .handle_hello(hello, game_hash)
//!                                              ├─ Err(Rejection) ── Reject ──▶ closed
//!                                              └─ Ok(HelloReceived)  (auth, room, resume: the server's policy)
//!                                                   ├─ .reject(code, msg) ── Reject ──▶
//!                                                   └─ .accept(welcome) ── Welcome ──▶
//!  .handle(ServerMessage) ─▶ Ok(Welcome) | Err(HandshakeError::Rejected{..})
//! ```
//!
//! Each transition consumes the previous state, so a session cannot, say,
//! accept twice or skip the version check. Time is an argument: the server's
//! state carries a deadline that its driver enforces with
//! [`ServerHandshake::deadline`].

use core::time::Duration;

use crate::codec::{DecodeError, Reader, Writer};
use crate::game::PROTOCOL_VERSION;
use crate::limits::Limits;
use crate::message::{Reject, ServerMessage};

/// 128 random bits that let a client reclaim its session after a dropped
/// connection. The randomness comes from the caller (the server's RNG).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResumeToken(pub [u8; 16]);

impl core::fmt::Debug for ResumeToken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Tokens are secrets: never print them whole.
        write!(f, "ResumeToken({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

impl ResumeToken {
    /// A token from 16 bytes of caller-supplied randomness.
    #[must_use]
    pub fn from_random(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }
}

/// The client's first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The tickwire protocol version ([`PROTOCOL_VERSION`]).
    pub protocol_version: u16,
    /// The game's [`crate::GameProtocol::PROTOCOL_HASH`].
    pub game_hash: u64,
    /// The room to join by name; `None` lets the server match a room with space.
    pub room: Option<String>,
    /// An opaque token for the game's auth hook.
    pub auth_token: Option<String>,
    /// A token from an earlier [`Welcome`], to resume that session.
    pub resume_token: Option<ResumeToken>,
    /// A seat token from a matchmaker (`POST /matchmake`), opaque to the
    /// client. Sent as an optional trailing field: a hello without one
    /// ends after `resume_token`, byte for byte the hello of clients that
    /// predate matchmaking (docs/PROTOCOL.md §6.1).
    pub seat_token: Option<String>,
    /// Asks the server for implicit acks (PROTOCOL.md §8.7): on a
    /// transport that delivers snapshots in order and reliably (WSS), the
    /// server counts a snapshot as acknowledged once it has written it, and
    /// the client sends no `Ack` for it. The server answers in
    /// [`Welcome::implicit_acks`]. Sent as bit 0 of the optional trailing
    /// `options` field; a hello without it is byte for byte the hello of
    /// clients that predate it. [`crate::client::ClientSession`] sets it
    /// from [`crate::client::ClientConfig::implicit_acks`].
    pub implicit_acks: bool,
}

/// Bit 0 of the hello's and the welcome's trailing `options` field:
/// implicit acks (PROTOCOL.md §5.2, §8.7).
const OPTION_IMPLICIT_ACKS: u32 = 1;

impl Hello {
    /// A hello for game hash `game_hash`, with no room, auth or resume.
    #[must_use]
    pub fn new(game_hash: u64) -> Self {
        Self {
            protocol_version: PROTOCOL_VERSION,
            game_hash,
            room: None,
            auth_token: None,
            resume_token: None,
            seat_token: None,
            implicit_acks: false,
        }
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u16(self.protocol_version);
        w.raw(&self.game_hash.to_le_bytes());
        w.opt_str(self.room.as_deref());
        w.opt_str(self.auth_token.as_deref());
        match &self.resume_token {
            None => w.u8(0),
            Some(t) => {
                w.u8(1);
                w.raw(&t.0);
            }
        }
        // Optional trailing fields: written only when present, so a hello
        // without a seat token or options is exactly a protocol-1 hello of
        // old. Options after no seat token write the seat token's `00`.
        let options = if self.implicit_acks {
            OPTION_IMPLICIT_ACKS
        } else {
            0
        };
        match &self.seat_token {
            Some(seat) => {
                w.u8(1);
                w.str(seat);
            }
            None if options != 0 => w.u8(0),
            None => {}
        }
        if options != 0 {
            w.u32(options);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, DecodeError> {
        let protocol_version = r.u16("protocol version")?;
        let hash = r.raw(8, "game hash")?;
        let mut h = [0u8; 8];
        h.copy_from_slice(hash);
        let room = r.opt_str("room", limits.max_text_bytes)?.map(str::to_owned);
        let auth_token = r
            .opt_str("auth token", limits.max_text_bytes)?
            .map(str::to_owned);
        let resume_token = if r.bool("resume token")? {
            let mut t = [0u8; 16];
            t.copy_from_slice(r.raw(16, "resume token")?);
            Some(ResumeToken(t))
        } else {
            None
        };
        // The message may end here (no seat token); otherwise an option tag
        // and the token follow, and then it may end or the options follow.
        let seat_token = if r.remaining() == 0 {
            None
        } else {
            r.opt_str("seat token", limits.max_seat_token_bytes)?
                .map(str::to_owned)
        };
        // Bits this version does not know are ignored: the welcome answers
        // only the ones the server knows.
        let options = if r.remaining() == 0 {
            0
        } else {
            r.u32("hello options")?
        };
        Ok(Self {
            protocol_version,
            game_hash: u64::from_le_bytes(h),
            room,
            auth_token,
            resume_token,
            seat_token,
            implicit_acks: options & OPTION_IMPLICIT_ACKS != 0,
        })
    }
}

/// The server's answer to an accepted hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// The client's id, assigned by the server.
    pub client_id: u32,
    /// Ticks per second.
    pub tick_rate: u16,
    /// The server's current tick.
    pub tick: u32,
    /// A snapshot is sent every `snapshot_interval` ticks (1 = every tick).
    pub snapshot_interval: u16,
    /// Present this in a later [`Hello`] to resume.
    pub resume_token: ResumeToken,
    /// The room joined.
    pub room: String,
    /// True when this resumed an earlier session (same client id and entity).
    pub resumed: bool,
    /// The answer to [`Hello::implicit_acks`]: `None` when the hello did
    /// not carry the options field (the welcome then has none either, byte
    /// for byte the welcome of old), `Some(true)` when the server counts
    /// every snapshot it writes on the reliable channel as acknowledged (the
    /// client sends no `Ack` for those), `Some(false)` when it does not (a
    /// QUIC or WebTransport session, or a server configured without them):
    /// then the client acks as usual. Set it with
    /// [`Welcome::answering`].
    pub implicit_acks: Option<bool>,
}

impl Welcome {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u32(self.client_id);
        w.u16(self.tick_rate);
        w.u32(self.tick);
        w.u16(self.snapshot_interval);
        w.raw(&self.resume_token.0);
        w.str(&self.room);
        w.bool(self.resumed);
        // Optional trailing field, only in answer to a hello that had one.
        if let Some(implicit) = self.implicit_acks {
            w.u32(if implicit { OPTION_IMPLICIT_ACKS } else { 0 });
        }
    }

    /// This welcome answering `hello`'s options: implicit acks are granted
    /// when the hello asked for them and `allowed` (the transport delivers
    /// snapshots reliably and in order, and the server's configuration
    /// permits them).
    ///
    /// ```
    /// use tickwire_shared::{Hello, ResumeToken, Welcome};
    /// let welcome = Welcome {
    ///     client_id: 1, tick_rate: 60, tick: 0, snapshot_interval: 1,
    ///     resume_token: ResumeToken::from_random([7; 16]), room: "lobby".into(),
    ///     resumed: false, implicit_acks: None,
    /// };
    /// let mut hello = Hello::new(0);
    /// assert_eq!(welcome.clone().answering(&hello, true).implicit_acks, None);
    /// hello.implicit_acks = true;
    /// assert_eq!(welcome.clone().answering(&hello, true).implicit_acks, Some(true));
    /// assert_eq!(welcome.answering(&hello, false).implicit_acks, Some(false));
    /// ```
    #[must_use]
    pub fn answering(mut self, hello: &Hello, allowed: bool) -> Self {
        self.implicit_acks = hello.implicit_acks.then_some(allowed);
        self
    }

    pub(crate) fn decode(r: &mut Reader<'_>, limits: &Limits) -> Result<Self, DecodeError> {
        let client_id = r.u32("client id")?;
        let tick_rate = r.u16("tick rate")?;
        let tick = r.u32("tick")?;
        let snapshot_interval = r.u16("snapshot interval")?;
        let mut t = [0u8; 16];
        t.copy_from_slice(r.raw(16, "resume token")?);
        let room = r.str("room", limits.max_text_bytes)?.to_owned();
        let resumed = r.bool("resumed")?;
        let implicit_acks = if r.remaining() == 0 {
            None
        } else {
            Some(r.u32("welcome options")? & OPTION_IMPLICIT_ACKS != 0)
        };
        if tick_rate == 0 || snapshot_interval == 0 {
            return Err(DecodeError::Invalid {
                what: "welcome",
                detail: "tick rate and snapshot interval must be at least 1".to_owned(),
            });
        }
        Ok(Self {
            client_id,
            tick_rate,
            tick,
            snapshot_interval,
            resume_token: ResumeToken(t),
            room,
            resumed,
            implicit_acks,
        })
    }
}

macro_rules! codes {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A code this version does not know.
            Other(u16),
        }

        impl $name {
            /// The numeric code.
            #[must_use]
            pub fn to_u16(self) -> u16 {
                match self {
                    $(Self::$variant => $value,)*
                    Self::Other(v) => v,
                }
            }

            /// The code for a number (unknown numbers become `Other`).
            #[must_use]
            pub fn from_u16(v: u16) -> Self {
                match v {
                    $($value => Self::$variant,)*
                    other => Self::Other(other),
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self {
                    $(Self::$variant => write!(f, "{} ({})", stringify!($variant), $value),)*
                    Self::Other(v) => write!(f, "unknown ({v})"),
                }
            }
        }
    };
}

codes! {
    /// Why a hello was rejected (`Reject.code` on the wire).
    RejectCode {
        /// The tickwire protocol versions differ.
        VersionMismatch = 1,
        /// The game protocol hashes differ (another game, or another version of it).
        GameMismatch = 2,
        /// The game's auth hook refused the token.
        AuthFailed = 3,
        /// The server is at its connection or player limit.
        ServerFull = 4,
        /// The requested room is full.
        RoomFull = 5,
        /// This client or address is banned.
        Banned = 6,
        /// Too many connection attempts.
        RateLimited = 7,
        /// The hello was malformed.
        InvalidHello = 8,
        /// The server is shutting down.
        ShuttingDown = 9,
        /// The room name is not acceptable, or the server cannot open a
        /// room of that name (its configuration for it is invalid).
        InvalidRoom = 10,
        /// The seat token is malformed, or its signature does not verify
        /// with this node's fleet secret (forged, or another fleet's).
        SeatTokenInvalid = 11,
        /// The seat token has expired: matchmake again.
        SeatTokenExpired = 12,
        /// The seat token was issued for another node: connect to the node
        /// the matchmaker named, or matchmake again.
        SeatTokenWrongNode = 13,
        /// The seat token was issued for another room than the hello names.
        SeatTokenWrongRoom = 14,
        /// This node admits players only with a seat token from the
        /// matchmaker (`POST /matchmake`).
        SeatTokenRequired = 15,
        /// The room the hello names is held by another node of the fleet:
        /// matchmake (`POST /matchmake`) to be sent there.
        RoomElsewhere = 16,
        /// The server's auth service did not answer in time: try again
        /// later.
        AuthTimeout = 17,
    }
}

codes! {
    /// Why a session closed. The same number is the WebSocket close code
    /// (1000–1015 are RFC 6455 codes; 4000–4999 are tickwire's own).
    CloseCode {
        /// The client left, or the session ended normally.
        Normal = 1000,
        /// The server is shutting down.
        ServerShutdown = 1001,
        /// The peer sent a malformed message.
        ProtocolError = 1002,
        /// The peer sent a text frame; tickwire speaks binary only.
        UnsupportedData = 1003,
        /// The peer broke a policy (generic).
        PolicyViolation = 1008,
        /// A message exceeded the size limit.
        MessageTooBig = 1009,
        /// The server failed internally.
        InternalError = 1011,
        /// The handshake did not complete in time.
        HandshakeTimeout = 4000,
        /// Nothing was heard from the peer for too long.
        IdleTimeout = 4001,
        /// The peer sent inputs faster than allowed.
        InputFlood = 4002,
        /// The peer stopped reading and fell too far behind.
        SlowConsumer = 4003,
        /// The game kicked the player.
        Kicked = 4004,
        /// The handshake was rejected (see the Reject message).
        Rejected = 4005,
        /// The room closed.
        RoomClosed = 4006,
        /// A newer connection resumed this session.
        Replaced = 4007,
        /// The peer sent game messages faster than allowed, or more than
        /// the room's queue for it holds.
        MessageFlood = 4008,
    }
}

/// A rejection to send: encode it with [`Rejection::to_message`] and close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Why.
    pub code: RejectCode,
    /// For people.
    pub message: String,
}

impl Rejection {
    /// The reject message to send.
    #[must_use]
    pub fn to_message<E>(&self) -> ServerMessage<'static, E> {
        ServerMessage::Reject(Reject {
            code: self.code,
            message: self.message.clone(),
        })
    }
}

/// Server side, waiting for the hello.
#[derive(Debug, Clone)]
pub struct ServerHandshake {
    deadline: Duration,
}

impl ServerHandshake {
    /// Starts waiting at `now`; the hello and the welcome must complete by
    /// `now + timeout`.
    #[must_use]
    pub fn new(now: Duration, timeout: Duration) -> Self {
        Self {
            deadline: now.saturating_add(timeout),
        }
    }

    /// When the driver must give up and close with
    /// [`CloseCode::HandshakeTimeout`].
    #[must_use]
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// True when `now` is past the deadline.
    #[must_use]
    pub fn is_expired(&self, now: Duration) -> bool {
        now >= self.deadline
    }

    /// Checks the protocol version and the game hash.
    ///
    /// # Errors
    /// A [`Rejection`] with [`RejectCode::VersionMismatch`] or
    /// [`RejectCode::GameMismatch`].
    pub fn handle_hello(self, hello: Hello, game_hash: u64) -> Result<HelloReceived, Rejection> {
        if hello.protocol_version != PROTOCOL_VERSION {
            return Err(Rejection {
                code: RejectCode::VersionMismatch,
                message: format!(
                    "client speaks tickwire protocol {}, server speaks {PROTOCOL_VERSION}",
                    hello.protocol_version
                ),
            });
        }
        if hello.game_hash != game_hash {
            return Err(Rejection {
                code: RejectCode::GameMismatch,
                message: format!(
                    "game protocol hash {:016x} does not match the server's {game_hash:016x}; \
                     update the client",
                    hello.game_hash
                ),
            });
        }
        Ok(HelloReceived {
            hello,
            deadline: self.deadline,
        })
    }
}

/// Server side: a compatible hello arrived; the server decides.
#[derive(Debug, Clone)]
pub struct HelloReceived {
    hello: Hello,
    deadline: Duration,
}

impl HelloReceived {
    /// The hello.
    #[must_use]
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The handshake deadline.
    #[must_use]
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Accepts: returns the welcome message to send.
    #[must_use]
    pub fn accept<E>(self, welcome: Welcome) -> (Established, ServerMessage<'static, E>) {
        let est = Established {
            client_id: welcome.client_id,
            resume_token: welcome.resume_token,
        };
        (est, ServerMessage::Welcome(welcome))
    }

    /// Rejects with a code and a message for people.
    #[must_use]
    pub fn reject(self, code: RejectCode, message: impl Into<String>) -> Rejection {
        Rejection {
            code,
            message: message.into(),
        }
    }
}

/// Server side: the session is established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Established {
    /// The client's id.
    pub client_id: u32,
    /// The token it can resume with.
    pub resume_token: ResumeToken,
}

/// Why the client's handshake failed. Separates an incompatible or refusing
/// server from one that misbehaved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The server rejected the hello.
    #[error("rejected by the server: {code}: {message}")]
    Rejected {
        /// Why.
        code: RejectCode,
        /// The server's explanation.
        message: String,
    },
    /// The server closed the session during the handshake.
    #[error("closed by the server during the handshake: {code}: {reason}")]
    Closed {
        /// Why.
        code: CloseCode,
        /// The server's explanation.
        reason: String,
    },
    /// The server sent something other than a welcome or reject.
    #[error("server misbehaved: expected welcome or reject, got {got}")]
    UnexpectedMessage {
        /// What came instead.
        got: &'static str,
    },
}

/// Client side, waiting for the welcome.
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    hello: Hello,
}

impl ClientHandshake {
    /// Starts a handshake; send [`ClientHandshake::hello`] first.
    #[must_use]
    pub fn new(hello: Hello) -> Self {
        Self { hello }
    }

    /// The hello to send.
    #[must_use]
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Handles the server's first message.
    ///
    /// # Errors
    /// [`HandshakeError`] for a reject, a close, or any other message.
    pub fn handle<E>(self, msg: ServerMessage<'_, E>) -> Result<Welcome, HandshakeError> {
        match msg {
            ServerMessage::Welcome(w) => Ok(w),
            ServerMessage::Reject(r) => Err(HandshakeError::Rejected {
                code: r.code,
                message: r.message,
            }),
            ServerMessage::Close(c) => Err(HandshakeError::Closed {
                code: c.code,
                reason: c.reason,
            }),
            ServerMessage::Snapshot(_) => {
                Err(HandshakeError::UnexpectedMessage { got: "snapshot" })
            }
            ServerMessage::Events(_) => Err(HandshakeError::UnexpectedMessage { got: "events" }),
            ServerMessage::Ping { .. } => Err(HandshakeError::UnexpectedMessage { got: "ping" }),
            ServerMessage::Pong { .. } => Err(HandshakeError::UnexpectedMessage { got: "pong" }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::ClientMessage;

    const HASH: u64 = 0x1234_5678_9abc_def0;

    fn welcome() -> Welcome {
        Welcome {
            client_id: 7,
            tick_rate: 60,
            tick: 1000,
            snapshot_interval: 2,
            resume_token: ResumeToken([9; 16]),
            room: "lobby".into(),
            resumed: false,
            implicit_acks: None,
        }
    }

    /// Runs a whole handshake over encoded bytes, as the two ends would.
    #[test]
    fn hello_welcome_over_bytes() {
        let limits = Limits::default();
        let mut hello = Hello::new(HASH);
        hello.room = Some("lobby".into());
        hello.auth_token = Some("secret".into());
        let client = ClientHandshake::new(hello);
        let bytes = ClientMessage::<()>::Hello(client.hello().clone())
            .to_bytes()
            .unwrap();

        let server = ServerHandshake::new(Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(server.deadline(), Duration::from_secs(11));
        let ClientMessage::Hello(received) = ClientMessage::<()>::decode(&bytes, &limits).unwrap()
        else {
            panic!("not a hello");
        };
        let pending = server.handle_hello(received, HASH).unwrap();
        assert_eq!(pending.hello().auth_token.as_deref(), Some("secret"));
        let (est, msg) = pending.accept::<()>(welcome());
        assert_eq!(est.client_id, 7);
        let wire = msg.to_bytes().unwrap();
        let got = ServerMessage::<()>::decode(&wire, &limits).unwrap();
        assert_eq!(client.handle(got).unwrap(), welcome());
    }

    #[test]
    fn mismatches_are_rejected_with_their_codes() {
        let server = || ServerHandshake::new(Duration::ZERO, Duration::from_secs(10));
        let mut old = Hello::new(HASH);
        old.protocol_version = 0;
        assert_eq!(
            server().handle_hello(old, HASH).unwrap_err().code,
            RejectCode::VersionMismatch
        );
        assert_eq!(
            server().handle_hello(Hello::new(1), HASH).unwrap_err().code,
            RejectCode::GameMismatch
        );
        let rejection = server()
            .handle_hello(Hello::new(HASH), HASH)
            .unwrap()
            .reject(RejectCode::AuthFailed, "bad token");
        let err = ClientHandshake::new(Hello::new(HASH))
            .handle(rejection.to_message::<()>())
            .unwrap_err();
        assert_eq!(
            err,
            HandshakeError::Rejected {
                code: RejectCode::AuthFailed,
                message: "bad token".into()
            }
        );
    }

    /// The seat token is an optional trailing field: a hello without one is
    /// byte for byte an old hello, and both forms decode.
    #[test]
    fn seat_token_is_an_optional_trailing_field() {
        let limits = Limits::default();
        let mut old = Hello::new(HASH);
        old.room = Some("r".into());
        let old_bytes = ClientMessage::<()>::Hello(old.clone()).to_bytes().unwrap();
        // tag, version, hash, room, auth none, resume none: nothing more.
        assert_eq!(old_bytes.len(), 1 + 1 + 8 + 3 + 1 + 1);
        assert_eq!(
            ClientMessage::<()>::decode(&old_bytes, &limits).unwrap(),
            ClientMessage::Hello(old.clone())
        );

        let mut seated = old.clone();
        seated.seat_token = Some("tw1.x".into());
        let bytes = ClientMessage::<()>::Hello(seated.clone())
            .to_bytes()
            .unwrap();
        assert_eq!(&bytes[..old_bytes.len()], &old_bytes[..]);
        assert_eq!(&bytes[old_bytes.len()..], b"\x01\x05tw1.x");
        assert_eq!(
            ClientMessage::<()>::decode(&bytes, &limits).unwrap(),
            ClientMessage::Hello(seated)
        );

        // An explicit "none" is accepted; a bad tag, a truncated token, a
        // token over the limit and bytes after the options are errors.
        let mut none = old_bytes.clone();
        none.push(0);
        assert_eq!(
            ClientMessage::<()>::decode(&none, &limits).unwrap(),
            ClientMessage::Hello(old)
        );
        for tail in [&b"\x02"[..], b"\x01\x05tw1", b"\x01\x01x\x00\x00"] {
            let mut bad = old_bytes.clone();
            bad.extend_from_slice(tail);
            assert!(
                ClientMessage::<()>::decode(&bad, &limits).is_err(),
                "{tail:?}"
            );
        }
        let mut long = old_bytes.clone();
        let mut w = Writer::new();
        w.u8(1);
        w.str(&"x".repeat(limits.max_seat_token_bytes + 1));
        long.extend_from_slice(w.as_slice());
        assert!(ClientMessage::<()>::decode(&long, &limits).is_err());
    }

    #[test]
    fn implicit_acks_are_an_optional_trailing_field_of_hello_and_welcome() {
        let limits = Limits::default();
        let old = Hello::new(HASH);
        let old_bytes = ClientMessage::<()>::Hello(old.clone()).to_bytes().unwrap();
        let mut asking = old.clone();
        asking.implicit_acks = true;
        let bytes = ClientMessage::<()>::Hello(asking.clone())
            .to_bytes()
            .unwrap();
        // No seat token: its `00`, then the options (bit 0).
        assert_eq!(&bytes[..old_bytes.len()], &old_bytes[..]);
        assert_eq!(&bytes[old_bytes.len()..], b"\x00\x01");
        assert_eq!(
            ClientMessage::<()>::decode(&bytes, &limits).unwrap(),
            ClientMessage::Hello(asking.clone())
        );
        let mut seated = asking.clone();
        seated.seat_token = Some("s".into());
        let bytes = ClientMessage::<()>::Hello(seated.clone())
            .to_bytes()
            .unwrap();
        assert_eq!(&bytes[old_bytes.len()..], b"\x01\x01s\x01");
        assert_eq!(
            ClientMessage::<()>::decode(&bytes, &limits).unwrap(),
            ClientMessage::Hello(seated)
        );
        // Options of 0, or only bits this version does not know: no
        // implicit acks.
        for tail in [&b"\x00\x00"[..], b"\x00\x06"] {
            let mut other = old_bytes.clone();
            other.extend_from_slice(tail);
            assert_eq!(
                ClientMessage::<()>::decode(&other, &limits).unwrap(),
                ClientMessage::Hello(old.clone()),
                "{tail:?}"
            );
        }

        // The welcome carries the answer only when asked.
        let plain = welcome();
        let plain_bytes = ServerMessage::<()>::Welcome(plain.clone())
            .to_bytes()
            .unwrap();
        assert_eq!(plain.clone().answering(&old, true), plain);
        for (allowed, tail) in [(true, 1u8), (false, 0)] {
            let answer = plain.clone().answering(&asking, allowed);
            assert_eq!(answer.implicit_acks, Some(allowed));
            let bytes = ServerMessage::<()>::Welcome(answer.clone())
                .to_bytes()
                .unwrap();
            assert_eq!(&bytes[..plain_bytes.len()], &plain_bytes[..]);
            assert_eq!(&bytes[plain_bytes.len()..], [tail]);
            assert_eq!(
                ServerMessage::<()>::decode(&bytes, &limits).unwrap(),
                ServerMessage::Welcome(answer)
            );
        }
        let mut extra = plain_bytes.clone();
        extra.extend_from_slice(b"\x01\x00");
        assert!(ServerMessage::<()>::decode(&extra, &limits).is_err());
    }

    /// A seat-token reject is not retried with the same hello: the client
    /// matchmakes again (docs/PROTOCOL.md §13.5).
    #[test]
    fn seat_token_rejects_are_not_retried() {
        use crate::client::Closed;
        for v in 11..=16 {
            let code = RejectCode::from_u16(v);
            assert!(!matches!(code, RejectCode::Other(_)), "{v} is known");
            assert!(
                !Closed::may_retry(CloseCode::Rejected, Some(code), false),
                "{code}"
            );
        }
    }

    #[test]
    fn codes_round_trip_and_unknown_codes_survive() {
        for v in [
            1000u16, 1001, 1002, 1003, 1008, 1009, 1011, 4000, 4007, 4999,
        ] {
            assert_eq!(CloseCode::from_u16(v).to_u16(), v);
        }
        assert_eq!(CloseCode::from_u16(4999), CloseCode::Other(4999));
        assert_eq!(RejectCode::from_u16(3), RejectCode::AuthFailed);
        assert_eq!(RejectCode::ServerFull.to_string(), "ServerFull (4)");
    }

    #[test]
    fn expiry_is_by_the_injected_clock() {
        let hs = ServerHandshake::new(Duration::from_millis(500), Duration::from_secs(1));
        assert!(!hs.is_expired(Duration::from_millis(1499)));
        assert!(hs.is_expired(Duration::from_millis(1500)));
    }
}
