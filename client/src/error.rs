//! The client's error type.

use tickwire_shared::{CloseCode, DecodeError, EncodeError, RejectCode};

/// Everything that can go wrong in a [`crate::Client`].
///
/// Kinds are kept apart: local misuse ([`ClientError::InvalidUrl`]), the link ([`ClientError::Connection`],
/// [`ClientError::Tls`], [`ClientError::Timeout`]), an incompatible or refusing
/// server ([`ClientError::Rejected`]), a misbehaving server
/// ([`ClientError::Protocol`], a desync included; the client closes with
/// `1002`), and the end of the session
/// ([`ClientError::Closed`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `wss://host[:port][/path]`, `quic://host[:port]` or `ws://…`.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// TCP, WebSocket or QUIC failure (connect, read, write, upgrade).
    #[error("connection failed: {0}")]
    Connection(String),
    /// TLS setup or handshake failure (untrusted certificate, bad PEM file…).
    #[error("TLS failed: {0}")]
    Tls(String),
    /// The connection or the handshake did not complete in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The server rejected the hello.
    #[error("rejected by the server: {code}: {message}")]
    Rejected {
        /// Why.
        code: RejectCode,
        /// The server's explanation.
        message: String,
    },
    /// The server sent something that does not decode or breaks the protocol
    /// (the client closed the session with `1002`).
    #[error("protocol error from the server: {0}")]
    Protocol(String),
    /// An input could not be encoded (local misuse).
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    /// A game message was refused before sending (local misuse: too large,
    /// too many queued, not encodable, or the session is not established).
    #[error("cannot send the game message: {0}")]
    Message(#[from] tickwire_shared::client::SendMessageError),
    /// The matchmaker refused (`POST /matchmake` answered other than 200).
    #[error("matchmaking refused ({status} {error}): {message}")]
    Matchmake {
        /// The HTTP status (400, 401, 404, 409, 413, 503…).
        status: u16,
        /// The JSON error code (`auth_failed`, `no_capacity`,
        /// `directory_unavailable`, …; docs/PROTOCOL.md §13.3).
        error: String,
        /// For people.
        message: String,
        /// The `Retry-After` of a `503`: wait this long before trying again.
        retry_after: Option<std::time::Duration>,
    },
    /// The session is over: closed by the server (or by [`crate::Client::leave`]).
    /// A dropped connection without a close frame reports
    /// [`CloseCode::Other`]`(1006)`.
    #[error("session closed: {code}: {reason}")]
    Closed {
        /// The close code.
        code: CloseCode,
        /// The reason given.
        reason: String,
    },
}

impl From<DecodeError> for ClientError {
    fn from(e: DecodeError) -> Self {
        Self::Protocol(e.to_string())
    }
}

impl ClientError {
    /// True for a desync or a protocol violation by the server: the errors a
    /// load test must count as failures of the implementation.
    #[must_use]
    pub fn is_desync(&self) -> bool {
        matches!(self, Self::Protocol(_))
    }
}
