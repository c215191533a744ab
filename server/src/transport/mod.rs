//! Transports: how bytes reach a session.
//!
//! A session ([`crate::session`]) is written once against [`Connection`]; each
//! transport adapts its socket to it:
//!
//! | transport | reliable messages | snapshots | close |
//! |---|---|---|---|
//! | [`wss`] | WebSocket binary messages | WebSocket binary messages | close frame |
//! | [`quic`] | length-prefixed on one bidirectional stream | datagrams (stream when too large) | `CONNECTION_CLOSE` |
//! | [`webtransport`] | as `quic`, inside a WebTransport session | as `quic` | `CLOSE_WEBTRANSPORT_SESSION` |
//!
//! The game code cannot tell them apart.

use std::future::Future;

use bytes::Bytes;
use tickwire_shared::CloseCode;

pub(crate) mod caps;
pub(crate) mod quic;
pub(crate) mod webtransport;
pub(crate) mod wss;

/// How a session ended: the close code and a readable reason.
#[derive(Debug, Clone)]
pub(crate) struct End {
    pub(crate) code: CloseCode,
    pub(crate) reason: String,
}

impl End {
    pub(crate) fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }

    /// The reason cut to `max` bytes on a character boundary (a WebSocket
    /// close frame holds 123).
    pub(crate) fn reason_within(&self, max: usize) -> String {
        let mut reason = self.reason.clone();
        while reason.len() > max {
            reason.pop();
        }
        reason
    }
}

/// One thing received from the client.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A tickwire message. `unreliable`: it came as a datagram.
    Message { bytes: Bytes, unreliable: bool },
    /// Transport-level traffic (a WebSocket ping): the peer is alive.
    Control,
}

/// A client connection after the transport handshake (TLS, upgrade).
pub(crate) trait Connection: Send {
    /// Which transport this is, for logs.
    const NAME: &'static str;
    /// Whether snapshots can travel as unreliable datagrams.
    const DATAGRAMS: bool;

    /// The largest snapshot that travels as one datagram now (`None`: no
    /// datagrams; snapshots share the reliable path).
    fn max_datagram_size(&self) -> Option<usize>;

    /// Receives the next message. Cancel-safe: it is polled in `select!`.
    ///
    /// # Errors
    /// The [`End`] of the session: the peer closed, the connection broke, or
    /// the peer broke the transport's rules (too large, wrong frame type).
    fn recv(&mut self) -> impl Future<Output = Result<Incoming, End>> + Send;

    /// Sends `reliable` in order, then `snapshot` (unreliably where the
    /// transport can, so that a lost snapshot never delays the next one).
    /// The caller bounds it with the write timeout.
    ///
    /// # Errors
    /// The [`End`] of the session when the connection broke.
    fn send(
        &mut self,
        reliable: Vec<Bytes>,
        snapshot: Option<Bytes>,
    ) -> impl Future<Output = Result<(), End>> + Send;

    /// Sends `last` (the protocol `Close` message) if any, then closes the
    /// transport with `end`'s code and reason. Best effort; the caller bounds
    /// it in time.
    fn close(&mut self, last: Option<Bytes>, end: &End) -> impl Future<Output = ()> + Send;

    /// After [`Connection::close`]: stops writing and discards what the
    /// peer still sends, up to `max_bytes`, until the peer closes too, so
    /// that the close is not lost to a reset. Best effort; the caller bounds
    /// it in time. Default: nothing to do.
    fn linger(&mut self, max_bytes: u64) -> impl Future<Output = ()> + Send {
        let _ = max_bytes;
        async {}
    }
}
