//! Matchmaking: `POST /matchmake` on every node's HTTPS origin answers with
//! the node to connect to and a signed seat token for it.
//!
//! ```text
//!  client ── POST /matchmake {"mode":"ffa","auth":"…"} ──▶ any node's Matchmaker
//!                                                          ├─ MatchmakeAuth hook (off the room tasks) ─▶ identity | 401
//!                                                          ├─ Directory: nodes(), rooms() ─ unavailable ─▶ 503 + Retry-After
//!                                                          ├─ placement: least-loaded room with space, else a new
//!                                                          │   room (claimed atomically) on the least-loaded ready node
//!                                                          └─ 200 {"node","wss_url","quic_url","room","mode","seat_token",…}
//!  client ── Hello { room, seat_token } ─▶ that node: Seat::verify + check(node, room) ─▶ Welcome | Reject 11–15
//! ```
//!
//! Matchmaking is off unless the node has a fleet secret
//! ([`crate::config::FleetConfig::secret`]): then `/matchmake` answers
//! `404`. The HTTP API and the token format are in docs/PROTOCOL.md §13.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_core::{OsRng, TryRngCore};
pub use tickwire_shared::matchmake::{ErrorBody, MatchmakeRequest, Ticket};

use crate::directory::{Claim, Directory, DirectoryError, NodeInfo, RoomInfo, RoomState};
use crate::game::AuthError;
mod placement;
pub mod seat;

pub use seat::{FleetSecret, Seat, SeatTokenError};

use placement::{Pending, Placement};

/// Largest `POST /matchmake` body accepted, in bytes (larger: `413`).
pub const MAX_REQUEST_BYTES: usize = 4096;
/// How long one directory call of a matchmake may take before the directory
/// counts as unavailable.
pub const DIRECTORY_TIMEOUT: Duration = Duration::from_secs(2);
/// `Retry-After` (seconds) of a `503` because the directory is unavailable.
pub const RETRY_AFTER_DIRECTORY_SECS: u32 = 5;
/// `Retry-After` (seconds) of a `503` because no node or room has space.
pub const RETRY_AFTER_CAPACITY_SECS: u32 = 2;
/// Attempts at creating a room before giving up (names taken meanwhile).
const CREATE_ATTEMPTS: usize = 4;

/// Turns a matchmake request's `auth` into the identity its seat token
/// carries. It runs on a blocking-capable thread of the matchmaking node
/// (never on a room's tick), so it may call a database or verify a JWT.
/// The node that admits the player passes the identity to the game's
/// [`crate::Game::on_auth`] as the auth token.
///
/// Any `Fn(Option<&str>) -> Result<String, AuthError>` is one:
///
/// ```no_run
/// # use tickwire_server::{AuthError, Game, Server, ServerConfig};
/// # fn f<G: Game>(factory: impl Fn(&str) -> G + Send + Sync + 'static) {
/// let server = Server::new(ServerConfig::default(), factory).with_matchmake_auth(
///     |auth: Option<&str>| match auth {
///         Some(t) if t.starts_with("player:") => Ok(t["player:".len()..].to_owned()),
///         _ => Err(AuthError::failed("log in first")),
///     },
/// );
/// # }
/// ```
pub trait MatchmakeAuth: Send + Sync + 'static {
    /// The identity for `auth` (at most [`seat::MAX_FIELD_BYTES`] bytes).
    ///
    /// # Errors
    /// An [`AuthError`]: the request is answered `401` with its message.
    fn authenticate(&self, auth: Option<&str>) -> Result<String, AuthError>;
}

impl<F> MatchmakeAuth for F
where
    F: Fn(Option<&str>) -> Result<String, AuthError> + Send + Sync + 'static,
{
    fn authenticate(&self, auth: Option<&str>) -> Result<String, AuthError> {
        self(auth)
    }
}

/// The default [`MatchmakeAuth`]: the identity is the `auth` string itself
/// (empty without one), so the game's `on_auth` hook, on the node that
/// admits the player, sees the same token as without matchmaking.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThroughAuth;

impl MatchmakeAuth for PassThroughAuth {
    fn authenticate(&self, auth: Option<&str>) -> Result<String, AuthError> {
        Ok(auth.unwrap_or_default().to_owned())
    }
}

/// Why a matchmake failed; each maps to an HTTP status and a JSON error
/// code (docs/PROTOCOL.md §13.3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MatchmakeError {
    /// The request is malformed (`400 bad_request`).
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than [`MAX_REQUEST_BYTES`] (`413 too_large`).
    #[error("request body over {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    /// The auth hook refused (`401 auth_failed`).
    #[error("{}", .0.message)]
    Auth(AuthError),
    /// The named room is full (`409 room_full`).
    #[error("room {0:?} is full")]
    RoomFull(String),
    /// A resume names a room no node holds any more (`404 room_gone`):
    /// matchmake afresh.
    #[error("room {0:?} is gone; matchmake again without resume")]
    RoomGone(String),
    /// The named room's node takes no new players (`503 draining`).
    #[error("room {0:?} is on a node that drains; try again to get another room")]
    Draining(String),
    /// No room or node has space (`503 no_capacity`).
    #[error("no node has space for a player; try again later")]
    NoCapacity,
    /// The directory (Redis) cannot be reached (`503
    /// directory_unavailable`). Running rooms are not affected.
    #[error("matchmaking is unavailable: {0}")]
    Directory(DirectoryError),
    /// This node has no fleet secret (`404 matchmaking_off`).
    #[error("matchmaking is off on this node (no fleet secret)")]
    Off,
    /// The node failed (no randomness) (`500 internal`).
    #[error("internal error: {0}")]
    Internal(String),
}

impl MatchmakeError {
    /// The HTTP status, the JSON `error` code and the `Retry-After`
    /// seconds, if any.
    #[must_use]
    pub fn http(&self) -> (u16, &'static str, Option<u32>) {
        match self {
            Self::BadRequest(_) => (400, "bad_request", None),
            Self::TooLarge => (413, "too_large", None),
            Self::Auth(_) => (401, "auth_failed", None),
            Self::RoomFull(_) => (409, "room_full", None),
            Self::RoomGone(_) => (404, "room_gone", None),
            Self::Draining(_) => (503, "draining", Some(RETRY_AFTER_CAPACITY_SECS)),
            Self::NoCapacity => (503, "no_capacity", Some(RETRY_AFTER_CAPACITY_SECS)),
            Self::Directory(_) => (
                503,
                "directory_unavailable",
                Some(RETRY_AFTER_DIRECTORY_SECS),
            ),
            Self::Off => (404, "matchmaking_off", None),
            Self::Internal(_) => (500, "internal", None),
        }
    }
}

/// An HTTP answer of the matchmaker: status, optional `Retry-After`, JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// `Retry-After` seconds, on `503`.
    pub retry_after: Option<u32>,
    /// The JSON body.
    pub body: String,
}

impl Reply {
    /// The answer for a result.
    #[must_use]
    pub fn from_result(result: &Result<Ticket, MatchmakeError>) -> Self {
        match result {
            Ok(ticket) => Self {
                status: 200,
                retry_after: None,
                body: serde_json::to_string(ticket).unwrap_or_default(),
            },
            Err(e) => {
                let (status, code, retry_after) = e.http();
                let body = ErrorBody::new(code, e.to_string());
                Self {
                    status,
                    retry_after,
                    body: serde_json::to_string(&body).unwrap_or_default(),
                }
            }
        }
    }
}

/// Everything a matchmaker needs. A server makes its own from its
/// [`crate::config::FleetConfig`]; build one by hand only to run a
/// [`Matchmaker`] on its own (a test, a matchmaking-only process).
#[derive(Debug, Clone)]
pub struct MatchmakerConfig {
    /// Signs the seat tokens.
    pub secret: FleetSecret,
    /// How long a seat token is accepted. Default 30 s.
    pub seat_ttl: Duration,
    /// The TTL of a room entry the matchmaker creates (its node refreshes it
    /// once the room opens). Default 10 s.
    pub directory_ttl: Duration,
    /// Players per room, for rooms whose node has not reported a capacity.
    /// Default 64.
    pub room_capacity: u32,
    /// The nodes' heartbeat interval: seats handed out count towards a
    /// room's and a node's load for two of them. Default 2 s.
    pub heartbeat_interval: Duration,
}

impl MatchmakerConfig {
    /// The defaults above, with `secret`.
    #[must_use]
    pub fn new(secret: FleetSecret) -> Self {
        Self {
            secret,
            seat_ttl: Duration::from_secs(30),
            directory_ttl: Duration::from_secs(10),
            room_capacity: 64,
            heartbeat_interval: Duration::from_secs(2),
        }
    }
}

/// The capacity of a room by name and mode, `None` for the default.
pub(crate) type RoomCapacity = Arc<dyn Fn(&str, &str) -> Option<u32> + Send + Sync>;

/// A node's matchmaker: stateless but for the seats it handed out recently.
pub struct Matchmaker {
    directory: Arc<dyn Directory>,
    config: MatchmakerConfig,
    /// The capacity of a room it registers, by name and mode (the rooms'
    /// own configs, `Server::with_room_config`); `None`: the default.
    capacity_of: Option<RoomCapacity>,
    auth: Arc<dyn MatchmakeAuth>,
    pending: Pending,
}

impl core::fmt::Debug for Matchmaker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Matchmaker")
            .field("seat_ttl", &self.config.seat_ttl)
            .finish_non_exhaustive()
    }
}

/// Bounds a directory call.
async fn bounded<T>(
    call: impl Future<Output = Result<T, DirectoryError>>,
) -> Result<T, MatchmakeError> {
    match tokio::time::timeout(DIRECTORY_TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(MatchmakeError::Directory(e)),
        Err(_) => Err(MatchmakeError::Directory(DirectoryError::Unavailable {
            backend: "directory",
            reason: format!("no answer within {DIRECTORY_TIMEOUT:?}"),
        })),
    }
}

fn random<const N: usize>() -> Result<[u8; N], MatchmakeError> {
    let mut bytes = [0u8; N];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|_| MatchmakeError::Internal("no randomness available".to_owned()))?;
    Ok(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a request asks for, once checked.
enum Want {
    Mode(String),
    Room {
        name: String,
        mode: String,
        resume: bool,
    },
}

fn check_request(req: MatchmakeRequest) -> Result<(Want, Option<String>), MatchmakeError> {
    let bad = |m: String| Err(MatchmakeError::BadRequest(m));
    if let Some(mode) = &req.mode
        && (mode.len() > seat::MAX_FIELD_BYTES || mode.chars().any(char::is_control))
    {
        return bad(format!(
            "mode: at most {} bytes, no control characters",
            seat::MAX_FIELD_BYTES
        ));
    }
    if let Some(resume) = &req.resume
        && (resume.len() != 32 || !resume.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return bad("resume: 32 hexadecimal digits (the 16-byte resume token)".to_owned());
    }
    let want = match (req.room, req.mode) {
        (Some(name), mode) => {
            if !crate::rooms::valid_room_name(&name) {
                return bad(format!(
                    "room: 1 to {} characters of A-Z, a-z, 0-9, '-' and '_'",
                    crate::rooms::MAX_ROOM_NAME
                ));
            }
            Want::Room {
                name,
                mode: mode.unwrap_or_default(),
                resume: req.resume.is_some(),
            }
        }
        (None, _) if req.resume.is_some() => {
            return bad("resume needs room: the room of the session (Welcome.room)".to_owned());
        }
        (None, Some(mode)) => Want::Mode(mode),
        (None, None) => return bad("give room or mode".to_owned()),
    };
    Ok((want, req.auth))
}

impl Matchmaker {
    /// A matchmaker over `directory`, authenticating with `auth`.
    #[must_use]
    pub fn new(
        directory: Arc<dyn Directory>,
        config: MatchmakerConfig,
        auth: Arc<dyn MatchmakeAuth>,
    ) -> Self {
        let window = config.heartbeat_interval.saturating_mul(2);
        Self {
            directory,
            config,
            capacity_of: None,
            auth,
            pending: Pending::new(window, 65_536),
        }
    }

    /// Registers the rooms it creates with `capacity_of(name, mode)` players
    /// (`None`: [`MatchmakerConfig::room_capacity`]), so that seats handed
    /// out before the room's node reports it count against the room's own
    /// capacity.
    pub(crate) fn with_capacity_of(mut self, capacity_of: RoomCapacity) -> Self {
        self.capacity_of = Some(capacity_of);
        self
    }

    /// Answers one `POST /matchmake` body.
    pub async fn reply(&self, body: &[u8]) -> Reply {
        let result = self.matchmake_json(body).await;
        match &result {
            Ok(t) => tracing::debug!(room = %t.room, node = %t.node, "matchmade"),
            Err(e) => tracing::debug!(error = %e, "matchmake refused"),
        }
        Reply::from_result(&result)
    }

    /// Parses and answers one body.
    ///
    /// # Errors
    /// A [`MatchmakeError`].
    pub async fn matchmake_json(&self, body: &[u8]) -> Result<Ticket, MatchmakeError> {
        if body.len() > MAX_REQUEST_BYTES {
            return Err(MatchmakeError::TooLarge);
        }
        let req: MatchmakeRequest = serde_json::from_slice(body)
            .map_err(|e| MatchmakeError::BadRequest(format!("invalid JSON: {e}")))?;
        self.matchmake(req).await
    }

    /// Places a player and signs its seat.
    ///
    /// # Errors
    /// A [`MatchmakeError`].
    pub async fn matchmake(&self, req: MatchmakeRequest) -> Result<Ticket, MatchmakeError> {
        let (want, auth) = check_request(req)?;
        let hook = Arc::clone(&self.auth);
        let identity = tokio::task::spawn_blocking(move || hook.authenticate(auth.as_deref()))
            .await
            .map_err(|e| MatchmakeError::Internal(format!("auth hook failed: {e}")))?
            .map_err(MatchmakeError::Auth)?;
        if identity.len() > seat::MAX_FIELD_BYTES {
            return Err(MatchmakeError::BadRequest(format!(
                "the identity for this auth is over {} bytes",
                seat::MAX_FIELD_BYTES
            )));
        }
        let (room, node) = match want {
            Want::Mode(mode) => self.place_by_mode(&mode).await?,
            Want::Room { name, mode, resume } => self.place_in_room(name, &mode, resume).await?,
        };
        let Some(wss_url) = node.wss_url.clone() else {
            return Err(MatchmakeError::NoCapacity);
        };
        let seat = Seat {
            identity,
            room: room.name.clone(),
            mode: room.mode.clone(),
            node: node.id.clone(),
            expires_at_ms: seat::unix_ms_now().saturating_add(
                u64::try_from(self.config.seat_ttl.as_millis()).unwrap_or(u64::MAX),
            ),
            seat_id: random()?,
        };
        let token = seat
            .issue(&self.config.secret)
            .map_err(|e| MatchmakeError::BadRequest(e.to_string()))?;
        self.pending.add(Instant::now(), &room.name, &node.id);
        Ok(Ticket {
            node: node.id,
            wss_url,
            quic_url: node.quic_url,
            room: room.name,
            mode: room.mode,
            seat_token: token,
            expires_in_ms: u64::try_from(self.config.seat_ttl.as_millis()).unwrap_or(u64::MAX),
        })
    }

    async fn place_by_mode(&self, mode: &str) -> Result<(RoomInfo, NodeInfo), MatchmakeError> {
        for _ in 0..CREATE_ATTEMPTS {
            let nodes = bounded(self.directory.nodes()).await?;
            let rooms = bounded(self.directory.rooms()).await?;
            let counts = self.pending.counts(Instant::now());
            let node = match placement::by_mode(
                &nodes,
                &rooms,
                mode,
                &counts,
                self.config.room_capacity,
            ) {
                Placement::Room(room, node) => return Ok((room.clone(), node.clone())),
                Placement::NoCapacity => return Err(MatchmakeError::NoCapacity),
                Placement::NewRoom(node) => node.clone(),
            };
            let name = format!("mm-{}", hex(&random::<8>()?));
            if let Some(room) = self.create(&name, mode, &node).await? {
                return Ok((room, node));
            }
        }
        Err(MatchmakeError::NoCapacity)
    }

    /// Registers room `name` for `node`; `None` when the name was taken.
    async fn create(
        &self,
        name: &str,
        mode: &str,
        node: &NodeInfo,
    ) -> Result<Option<RoomInfo>, MatchmakeError> {
        let capacity = self
            .capacity_of
            .as_ref()
            .and_then(|f| f(name, mode))
            .unwrap_or(self.config.room_capacity);
        let room = RoomInfo::new(name, node.id.clone())
            .with_mode(mode)
            .with_capacity(capacity);
        match bounded(self.directory.create_room(&room, self.config.directory_ttl)).await? {
            Claim::Created => {
                tracing::info!(room = %name, node = %node.id, "room created by matchmaking");
                Ok(Some(room))
            }
            Claim::Taken { .. } => Ok(None),
        }
    }

    async fn place_in_room(
        &self,
        name: String,
        mode: &str,
        resume: bool,
    ) -> Result<(RoomInfo, NodeInfo), MatchmakeError> {
        for _ in 0..CREATE_ATTEMPTS {
            let nodes = bounded(self.directory.nodes()).await?;
            let counts = self.pending.counts(Instant::now());
            if let Some(room) = bounded(self.directory.room(&name)).await? {
                let Some(node) = nodes.iter().find(|n| n.id == room.node) else {
                    // The room's entry outlives its node by up to a TTL.
                    return Err(if resume {
                        MatchmakeError::RoomGone(name)
                    } else {
                        MatchmakeError::Draining(name)
                    });
                };
                if resume {
                    return Ok((room, node.clone()));
                }
                if !placement::takes_players(node) || room.state == RoomState::Closing {
                    return Err(MatchmakeError::Draining(name));
                }
                if !placement::room_has_space(&room, &counts, self.config.room_capacity) {
                    return Err(MatchmakeError::RoomFull(name));
                }
                return Ok((room, node.clone()));
            }
            if resume {
                return Err(MatchmakeError::RoomGone(name));
            }
            let node = placement::least_loaded_node(&nodes, &counts)
                .ok_or(MatchmakeError::NoCapacity)?
                .clone();
            if let Some(room) = self.create(&name, mode, &node).await? {
                return Ok((room, node));
            }
            // Another matchmaker (or node) created it meanwhile: read it.
        }
        Err(MatchmakeError::NoCapacity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::MemoryDirectory;
    use crate::lifecycle::NodeState;

    fn secret() -> FleetSecret {
        FleetSecret::new(b"0123456789abcdef-test".to_vec()).unwrap()
    }

    fn matchmaker(dir: Arc<MemoryDirectory>, auth: Arc<dyn MatchmakeAuth>) -> Matchmaker {
        Matchmaker::new(
            dir,
            MatchmakerConfig {
                secret: secret(),
                seat_ttl: Duration::from_secs(30),
                directory_ttl: Duration::from_secs(10),
                room_capacity: 2,
                heartbeat_interval: Duration::from_secs(2),
            },
            auth,
        )
    }

    async fn fleet() -> Arc<MemoryDirectory> {
        let dir = Arc::new(MemoryDirectory::new());
        let ttl = Duration::from_secs(10);
        for (id, players) in [("a", 5), ("b", 1)] {
            let node = NodeInfo::new(id)
                .with_wss_url(format!("wss://{id}/ws"))
                .with_capacity(100)
                .with_load(players, 0);
            dir.heartbeat(&node, &[], ttl).await.unwrap();
        }
        dir
    }

    async fn status(m: &Matchmaker, body: &str) -> (u16, String) {
        let r = m.reply(body.as_bytes()).await;
        let code = if r.status == 200 {
            "ok".to_owned()
        } else {
            serde_json::from_str::<ErrorBody>(&r.body).unwrap().error
        };
        (r.status, code)
    }

    #[tokio::test]
    async fn bad_requests_get_400_with_a_json_error() {
        let m = matchmaker(fleet().await, Arc::new(PassThroughAuth));
        for body in [
            "",
            "{",
            "[]",
            "{}",
            r#"{"mode": 3}"#,
            r#"{"mode": "ffa", "extra": 1}"#,
            r#"{"room": "no spaces"}"#,
            r#"{"room": ""}"#,
            r#"{"mode": "ffa", "resume": "00112233445566778899aabbccddeeff"}"#,
            r#"{"room": "r", "resume": "xyz"}"#,
            r#"{"mode": "a\u0000b"}"#,
        ] {
            assert_eq!(
                status(&m, body).await,
                (400, "bad_request".into()),
                "{body}"
            );
        }
        let big = format!(r#"{{"mode": "{}"}}"#, "x".repeat(MAX_REQUEST_BYTES));
        assert_eq!(status(&m, &big).await, (413, "too_large".into()));
    }

    #[tokio::test]
    async fn auth_runs_at_the_matchmaker_and_its_identity_is_in_the_seat() {
        let auth = |auth: Option<&str>| match auth {
            Some("good") => Ok("player-7".to_owned()),
            _ => Err(AuthError::failed("who are you?")),
        };
        let m = matchmaker(fleet().await, Arc::new(auth));
        let r = m.reply(br#"{"mode": "ffa", "auth": "bad"}"#).await;
        assert_eq!(r.status, 401);
        assert!(r.body.contains("who are you?"), "{}", r.body);
        let t = m
            .matchmake_json(br#"{"mode": "ffa", "auth": "good"}"#)
            .await
            .unwrap();
        let seat = Seat::verify(&secret(), &t.seat_token, seat::unix_ms_now()).unwrap();
        assert_eq!(seat.identity, "player-7");
        assert_eq!(
            (seat.room.as_str(), seat.node.as_str()),
            (t.room.as_str(), "b")
        );
    }

    #[tokio::test]
    async fn by_mode_fills_the_least_loaded_room_then_opens_another() {
        let dir = fleet().await;
        let m = matchmaker(Arc::clone(&dir), Arc::new(PassThroughAuth));
        let mode = br#"{"mode": "ffa"}"#;
        let t1 = m.matchmake_json(mode).await.unwrap();
        assert_eq!(t1.node, "b", "the less-loaded node");
        assert!(dir.room(&t1.room).await.unwrap().is_some(), "claimed");
        // Rooms of 2: the seat just handed out counts until heartbeats do.
        let t2 = m.matchmake_json(mode).await.unwrap();
        assert_eq!(t2.room, t1.room);
        let t3 = m.matchmake_json(mode).await.unwrap();
        assert_ne!(t3.room, t1.room);
    }

    /// Rooms with a config of their own are registered with their own
    /// capacity: a 3-seat mode fills 3 seats before opening another room,
    /// the default (2) elsewhere.
    #[tokio::test]
    async fn rooms_it_creates_get_their_own_capacity() {
        let dir = fleet().await;
        let m = matchmaker(Arc::clone(&dir), Arc::new(PassThroughAuth)).with_capacity_of(Arc::new(
            |_name: &str, mode: &str| (mode == "trio").then_some(3),
        ));
        let trio = br#"{"mode": "trio"}"#;
        let t: Vec<Ticket> = [
            m.matchmake_json(trio).await.unwrap(),
            m.matchmake_json(trio).await.unwrap(),
            m.matchmake_json(trio).await.unwrap(),
            m.matchmake_json(trio).await.unwrap(),
        ]
        .into();
        assert!(t[1..3].iter().all(|x| x.room == t[0].room), "3 seats");
        assert_ne!(t[3].room, t[0].room);
        assert_eq!(dir.room(&t[0].room).await.unwrap().unwrap().capacity, 3);
        let duo = m.matchmake_json(br#"{"mode": "duo"}"#).await.unwrap();
        assert_eq!(dir.room(&duo.room).await.unwrap().unwrap().capacity, 2);
    }

    #[tokio::test]
    async fn by_room_routes_to_the_holder_and_creates_at_most_once() {
        let dir = fleet().await;
        let ttl = Duration::from_secs(10);
        dir.create_room(&RoomInfo::new("held", "a").with_capacity(8), ttl)
            .await
            .unwrap();
        let m = matchmaker(Arc::clone(&dir), Arc::new(PassThroughAuth));
        let t = m.matchmake_json(br#"{"room": "held"}"#).await.unwrap();
        assert_eq!((t.node.as_str(), t.room.as_str()), ("a", "held"));
        let other = matchmaker(Arc::clone(&dir), Arc::new(PassThroughAuth));
        let (n1, n2) = tokio::join!(
            m.matchmake_json(br#"{"room": "new-one", "mode": "duel"}"#),
            other.matchmake_json(br#"{"room": "new-one"}"#)
        );
        let (n1, n2) = (n1.unwrap(), n2.unwrap());
        assert_eq!(n1.node, n2.node);
        assert_eq!(dir.rooms().await.unwrap().len(), 2);
        // A resume into a room nobody holds: 404.
        let gone = br#"{"room": "gone", "resume": "00112233445566778899aabbccddeeff"}"#;
        assert_eq!(
            m.matchmake_json(gone).await,
            Err(MatchmakeError::RoomGone("gone".into()))
        );
    }

    #[tokio::test]
    async fn draining_nodes_get_no_new_players_but_resumes() {
        let dir = Arc::new(MemoryDirectory::new());
        let ttl = Duration::from_secs(10);
        let node = NodeInfo::new("a")
            .with_wss_url("wss://a/ws")
            .with_capacity(100)
            .with_state(NodeState::Draining);
        dir.heartbeat(&node, &[], ttl).await.unwrap();
        dir.create_room(&RoomInfo::new("r", "a"), ttl)
            .await
            .unwrap();
        let m = matchmaker(Arc::clone(&dir), Arc::new(PassThroughAuth));
        assert_eq!(
            status(&m, r#"{"mode": ""}"#).await,
            (503, "no_capacity".into())
        );
        assert_eq!(
            status(&m, r#"{"room": "r"}"#).await,
            (503, "draining".into())
        );
        let resume = r#"{"room": "r", "resume": "00112233445566778899AABBCCDDEEFF"}"#;
        assert_eq!(status(&m, resume).await, (200, "ok".into()));
    }
}
