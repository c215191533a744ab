//! The JSON bodies of `POST /matchmake` (docs/PROTOCOL.md §13): what a
//! client asks a fleet's matchmaker, and what it answers. Only the types
//! (serde); the server's matchmaker and the clients' HTTP calls use them.
//!
//! ```
//! use tickwire_shared::matchmake::MatchmakeRequest;
//! let req = MatchmakeRequest::mode("ffa").with_auth("ada");
//! assert_eq!(req.mode.as_deref(), Some("ffa"));
//! ```

use serde::{Deserialize, Serialize};

use crate::ResumeToken;

/// The body of `POST /matchmake`. Unknown fields are an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MatchmakeRequest {
    /// A room by name (created when no node holds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// A game mode: the least-loaded room of that mode. With `room`, the
    /// mode a created room gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Opaque, for the fleet's matchmaking auth hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// The session's resume token (32 hex digits), with `room` (required
    /// with it): routes to the node that holds the room, even while it
    /// drains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
}

impl MatchmakeRequest {
    /// The least-loaded room of `mode`.
    #[must_use]
    pub fn mode(mode: impl Into<String>) -> Self {
        Self {
            mode: Some(mode.into()),
            ..Self::default()
        }
    }

    /// Room `name`, wherever it is (created if no node holds it).
    #[must_use]
    pub fn room(name: impl Into<String>) -> Self {
        Self {
            room: Some(name.into()),
            ..Self::default()
        }
    }

    /// Back to the node that holds `room`, to resume the session of `token`.
    #[must_use]
    pub fn resume(room: impl Into<String>, token: ResumeToken) -> Self {
        Self {
            room: Some(room.into()),
            resume: Some(token.0.iter().map(|b| format!("{b:02x}")).collect()),
            ..Self::default()
        }
    }

    /// Sets [`MatchmakeRequest::auth`].
    #[must_use]
    pub fn with_auth(mut self, auth: impl Into<String>) -> Self {
        self.auth = Some(auth.into());
        self
    }
}

/// The answer to a successful `POST /matchmake` (`200`): where to connect,
/// and the seat token to send in the hello (`Hello.seat_token`, with
/// `Hello.room` = `room`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// The node's id.
    pub node: String,
    /// The node's WebSocket URL.
    pub wss_url: String,
    /// The node's QUIC URL, when it has one.
    pub quic_url: Option<String>,
    /// The room to name in the hello.
    pub room: String,
    /// The room's mode.
    pub mode: String,
    /// The seat token for `Hello.seat_token`.
    pub seat_token: String,
    /// The token is refused after this long (milliseconds from the answer).
    pub expires_in_ms: u64,
}

/// The body of every other answer: a stable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorBody {
    /// `bad_request`, `auth_failed`, `room_gone`, `matchmaking_off`,
    /// `room_full`, `too_large`, `draining`, `no_capacity`,
    /// `directory_unavailable`, `internal`.
    pub error: String,
    /// For people.
    pub message: String,
}

impl ErrorBody {
    /// An error body.
    #[must_use]
    pub fn new(error: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            message: message.into(),
        }
    }
}
