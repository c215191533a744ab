//! Authenticating a joining client off the room task: an [`Authenticator`]
//! runs in the client's session task, may await (a database, an identity
//! service), sees the request's context ([`AuthRequest`]), and is bounded by
//! `SessionConfig::auth_timeout`. A slow auth service delays only the clients
//! it is checking, never a room's tick.
//!
//! ```text
//!  hello ─▶ version/hash ─▶ seat token (matchmaking) ─▶ Authenticator (session task, ≤ auth_timeout)
//!                                                          │ Ok(user)            │ Err / timeout
//!                                                          ▼                     ▼
//!                                    room task: Room::join(user) ─▶ on_join     Reject (AuthFailed… / AuthTimeout)
//! ```
//!
//! Without an authenticator, [`crate::Game::on_auth`] decides, synchronously
//! on the room task (fine for checks that take microseconds). With one,
//! `on_auth` is not called. The matchmaker's hook
//! ([`crate::MatchmakeAuth`]) runs before a seat token is issued; a node
//! then sees the identity it returned as [`AuthRequest::token`].

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use crate::game::AuthError;

/// What an [`Authenticator`] knows about a joining client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthRequest {
    /// The client's address (as the listener saw it: behind a proxy, the
    /// proxy's).
    pub peer: SocketAddr,
    /// `"wss"` or `"quic"`.
    pub transport: &'static str,
    /// The WebSocket upgrade's `Origin` header (browsers send one; native
    /// clients and QUIC none). It already passed the origin allowlist.
    pub origin: Option<String>,
    /// The WebSocket upgrade's `User-Agent` header, if any.
    pub user_agent: Option<String>,
    /// The hello's auth token; for a hello with a valid seat token, the
    /// identity the matchmaker's [`crate::MatchmakeAuth`] returned.
    pub token: Option<String>,
    /// The room the hello names (for a seat token: the seat's room).
    pub room: Option<String>,
    /// The game mode a room opened for this client gets (the seat token's,
    /// else the node's `FleetConfig::mode`).
    pub mode: String,
    /// The hello carries a resume token. If the room still holds that
    /// session, the client resumes it and the value returned here is
    /// dropped; otherwise it joins afresh with it.
    pub resuming: bool,
}

impl AuthRequest {
    /// A request from `peer` over `transport` with nothing else known.
    #[must_use]
    pub fn new(peer: SocketAddr, transport: &'static str) -> Self {
        Self {
            peer,
            transport,
            origin: None,
            user_agent: None,
            token: None,
            room: None,
            mode: String::new(),
            resuming: false,
        }
    }
}

/// The future an [`Authenticator`] returns.
pub type AuthFuture<U> = Pin<Box<dyn Future<Output = Result<U, AuthError>> + Send + 'static>>;

/// Decides whether a client may join, and who it is (`U` is the game's
/// [`crate::Game::User`]), off the room task. Set it with
/// [`crate::Server::with_auth`]. Any `Fn(AuthRequest) -> impl Future` that is
/// `Send + Sync` is one:
///
/// ```no_run
/// # use std::time::Duration;
/// # use tickwire_server::{AuthError, Game, Server, ServerConfig};
/// use tickwire_server::auth::AuthRequest;
/// # fn f<G: Game<User = String>>(factory: impl Fn(&str) -> G + Send + Sync + 'static) {
/// let server = Server::new(ServerConfig::default(), factory).with_auth(|req: AuthRequest| async move {
///     let token = req.token.ok_or_else(|| AuthError::failed("log in first"))?;
///     // e.g. ask the account service (this task only waits; rooms tick on).
///     tokio::time::sleep(Duration::from_millis(50)).await;
///     Ok::<String, AuthError>(format!("player {token} from {}", req.peer.ip()))
/// });
/// # }
/// ```
pub trait Authenticator<U>: Send + Sync + 'static {
    /// Accepts (with the user) or refuses (with an [`AuthError`], sent to
    /// the client as a reject) the client described by `req`.
    fn authenticate(&self, req: AuthRequest) -> AuthFuture<U>;
}

impl<U, F, Fut> Authenticator<U> for F
where
    F: Fn(AuthRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<U, AuthError>> + Send + 'static,
{
    fn authenticate(&self, req: AuthRequest) -> AuthFuture<U> {
        Box::pin(self(req))
    }
}
