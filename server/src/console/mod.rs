//! The fleet console: an operator's page at `/admin/` and its JSON API under
//! `/admin/api/`, on the node's HTTPS origin, behind an admin token.
//!
//! ```text
//!  browser ── GET /admin/ ─────────────────────────▶ the page (no secret in it; asks for the token)
//!          ── GET /admin/api/… + Authorization: Bearer <token> ─▶ Console::handle
//!                                                     ├─ no token configured → 404 console_off
//!                                                     ├─ missing / wrong token → 401 unauthorized (constant-time compare)
//!                                                     ├─ GET  nodes                          → Directory::nodes() + rooms()
//!                                                     ├─ GET  rooms                          → this node's rooms (per-room windows)
//!                                                     ├─ GET  rooms/{name}/clients           → the room's sessions
//!                                                     ├─ POST rooms/{name}/clients/{id}/kick → the room task closes it (Kicked)
//!                                                     ├─ POST rooms/{name}/close             → the room task closes all (RoomClosed)
//!                                                     └─ POST drain                          → as SIGTERM: the node drains
//! ```
//!
//! The console is off unless the server has an [`AdminToken`]
//! ([`crate::ServerConfig::admin_token`]). Nothing reads or writes a room
//! from the HTTP task: figures come from windows the room tasks and sessions
//! update ([`stats`]), and actions are commands on the room's bounded
//! channel, like a session's. The API is documented in docs/CONSOLE.md.
//!
//! # Example
//!
//! ```
//! use tickwire_server::{ServerConfig, console::AdminToken};
//!
//! let token: AdminToken = "a-long-random-admin-token".parse().unwrap();
//! let config = ServerConfig::default().with_admin_token(Some(token));
//! assert!(config.admin_token.is_some());
//! // Short tokens are refused.
//! assert!("short".parse::<AdminToken>().is_err());
//! ```

mod api;
pub(crate) mod stats;

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::directory::Directory;
use crate::lifecycle::NodeStatus;
use crate::rooms::ConsoleControl;

pub(crate) use api::{ApiReply, PAGE_HTML, PAGE_JS};
pub(crate) use stats::{ClientFigures, ClientStats, RoomFigures, RoomStats};

/// Shortest admin token accepted, in bytes.
pub const MIN_TOKEN_BYTES: usize = 16;
/// Largest admin token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 256;
/// Largest request body the API reads, in bytes (larger: `413`).
pub const MAX_BODY_BYTES: usize = 1024;
/// Longest kick or close reason, in bytes (a WebSocket close reason holds
/// at most 123).
pub const MAX_REASON_BYTES: usize = 100;
/// URL path prefix of the console page and its API.
pub const ADMIN_PREFIX: &str = "/admin";
/// How long the API waits for the directory before answering without it.
pub const DIRECTORY_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an admin token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminTokenError {
    /// The token is shorter than [`MIN_TOKEN_BYTES`].
    #[error("the admin token must be at least {MIN_TOKEN_BYTES} bytes (got {len})")]
    TooShort {
        /// The length given.
        len: usize,
    },
    /// The token is longer than [`MAX_TOKEN_BYTES`].
    #[error("the admin token must be at most {MAX_TOKEN_BYTES} bytes (got {len})")]
    TooLong {
        /// The length given.
        len: usize,
    },
    /// The token has a byte that cannot travel in an `Authorization`
    /// header (only visible ASCII is allowed, no spaces).
    #[error("the admin token must be visible ASCII without spaces")]
    InvalidByte,
}

/// The secret that opens the console: `Authorization: Bearer <token>`.
///
/// Its `Debug` shows only its length, and it is compared in constant time
/// (both sides are hashed with SHA-256 first, so neither the content nor
/// the length of the configured token leaks through timing).
///
/// ```
/// use tickwire_server::console::AdminToken;
/// let token = AdminToken::new("0123456789abcdef-admin").unwrap();
/// assert_eq!(format!("{token:?}"), "AdminToken(22 bytes)");
/// assert!(token.matches("0123456789abcdef-admin"));
/// assert!(!token.matches("0123456789abcdef-admiN"));
/// ```
#[derive(Clone)]
pub struct AdminToken(Vec<u8>);

impl core::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "AdminToken({} bytes)", self.0.len())
    }
}

impl PartialEq for AdminToken {
    fn eq(&self, other: &Self) -> bool {
        self.matches_bytes(&other.0)
    }
}

impl Eq for AdminToken {}

impl AdminToken {
    /// A token of [`MIN_TOKEN_BYTES`] to [`MAX_TOKEN_BYTES`] visible ASCII
    /// bytes (use 32 random bytes in base64, e.g. `openssl rand -base64 32`).
    ///
    /// # Errors
    /// An [`AdminTokenError`] for a short, long or unprintable token.
    pub fn new(token: impl Into<String>) -> Result<Self, AdminTokenError> {
        let token = token.into().into_bytes();
        if token.len() < MIN_TOKEN_BYTES {
            return Err(AdminTokenError::TooShort { len: token.len() });
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AdminTokenError::TooLong { len: token.len() });
        }
        if !token.iter().all(|b| b.is_ascii_graphic()) {
            return Err(AdminTokenError::InvalidByte);
        }
        Ok(Self(token))
    }

    /// Whether `candidate` is this token, in constant time.
    #[must_use]
    pub fn matches(&self, candidate: &str) -> bool {
        self.matches_bytes(candidate.as_bytes())
    }

    fn matches_bytes(&self, candidate: &[u8]) -> bool {
        let a = Sha256::digest(&self.0);
        let b = Sha256::digest(candidate);
        a.iter()
            .zip(b.iter())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
    }
}

impl core::str::FromStr for AdminToken {
    type Err = AdminTokenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// One room of this node, as the console lists it.
#[derive(Debug, Clone)]
pub(crate) struct RoomRow {
    pub(crate) name: String,
    pub(crate) mode: Arc<str>,
    pub(crate) players: usize,
    pub(crate) figures: RoomFigures,
}

/// One session of a room, as the console lists it.
#[derive(Debug, Clone)]
pub(crate) struct ClientRow {
    pub(crate) id: u32,
    pub(crate) connected: Duration,
    pub(crate) figures: ClientFigures,
}

/// Why a console action on a room failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ControlError {
    #[error("no room {0:?} on this node")]
    RoomNotFound(String),
    #[error("no client {client} in room {room:?}")]
    ClientNotFound { room: String, client: u32 },
    #[error("room {0:?} is busy (its command queue is full); try again")]
    Busy(String),
}

/// The console of one node: what the API reads and the actions it takes.
/// A [`crate::Server`] makes it when its config has an admin token; it is
/// reachable only through [`crate::http::HttpContext::console`].
pub struct Console {
    token: AdminToken,
    node_id: String,
    directory: Arc<dyn Directory>,
    rooms: Arc<dyn ConsoleControl>,
    status: NodeStatus,
    drain: Box<dyn Fn() + Send + Sync>,
}

impl core::fmt::Debug for Console {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Console")
            .field("token", &self.token)
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

impl Console {
    pub(crate) fn new(
        token: AdminToken,
        node_id: String,
        directory: Arc<dyn Directory>,
        rooms: Arc<dyn ConsoleControl>,
        status: NodeStatus,
        drain: Box<dyn Fn() + Send + Sync>,
    ) -> Self {
        Self {
            token,
            node_id,
            directory,
            rooms,
            status,
            drain,
        }
    }
}
