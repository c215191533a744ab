//! The room registry: rooms by name, matchmaking, resume tokens, and the
//! room task that drives each [`Room`] on its tick schedule.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tickwire_shared::handshake::Rejection;
use tickwire_shared::{ClientMessage, Hello, RejectCode, ResumeToken};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::auth::{AuthRequest, Authenticator};
use crate::config::ServerConfig;
use crate::console::{ClientStats, RoomStats};
use crate::directory::{Claim, Directory, RoomInfo};
use crate::game::{ClientId, Game, InputOf, LeaveReason, MessageOf};
use crate::matchmaking::seat::{self, unix_ms_now};
use crate::metrics as m;
use crate::outbox::Outbox;
use crate::room::{JoinRequest, Joined, Room};
use crate::room_config::{RoomConfig, RoomConfigError, RoomConfigHook, RoomSpec};
use crate::stats::StatsCollector;

mod control;
mod task;

pub(crate) use control::{ConsoleControl, RoomsControl};
use task::run_room;

/// A command from a session to its room.
pub(crate) enum RoomCommand<G: Game> {
    Join {
        req: JoinRequest,
        reply: oneshot::Sender<Result<Joined, Rejection>>,
        /// The seat [`Rooms::pick`] held for this join; the room task frees it
        /// as it decides the join (it becomes a player or nothing).
        seat: Seat,
        /// The node is draining: only a resume of a client the room still
        /// holds may join; anything else is refused with `ShuttingDown`.
        resume_only: bool,
        /// What the [`Authenticator`] returned (none without one): a fresh
        /// join takes it; a rejected join leaves it for the next attempt.
        user: Arc<Mutex<Option<G::User>>>,
    },
    Message {
        client: ClientId,
        msg: ClientMessage<InputOf<G>, MessageOf<G>>,
    },
    Disconnected {
        client: ClientId,
        outbox: Arc<Outbox>,
        reason: LeaveReason,
    },
    /// Close every session with `ServerShutdown` and this reason.
    Shutdown(Arc<str>),
    /// The console kicks a client: its session closes with `Kicked` and
    /// this reason, and the game sees [`LeaveReason::Kicked`].
    Kick { client: ClientId, reason: String },
    /// The console closes the room: every session closes with `RoomClosed`
    /// and this reason (the game sees [`LeaveReason::Shutdown`]), and the
    /// room closes once empty.
    Close(String),
}

/// A session's way to its room: two bounded channels.
///
/// `control` (joins, leaves, game messages, disconnects, console commands,
/// shutdown) wakes the room task as commands arrive; sessions await it, so
/// nothing sent on it is dropped, and a client's game messages keep their
/// order with its leave or disconnect. `messages` (inputs:
/// [`RoomCommand::Message`]) does not: the room task reads it at the start
/// of each tick, so a room wakes once per tick however many inputs its
/// clients send. (Acks never reach the room task: they go through the
/// session's [`Outbox`].) It holds at least
/// [`crate::RoomConfig::message_capacity`] messages, a tick's worth
/// for a full room at the message rate limit.
pub(crate) struct RoomLink<G: Game> {
    pub(crate) control: mpsc::Sender<RoomCommand<G>>,
    pub(crate) messages: mpsc::Sender<RoomCommand<G>>,
    /// The room's configuration (the session's rate limits are the room's).
    pub(crate) config: Arc<RoomConfig>,
}

impl<G: Game> Clone for RoomLink<G> {
    fn clone(&self) -> Self {
        Self {
            control: self.control.clone(),
            messages: self.messages.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

struct RoomHandle<G: Game> {
    tx: mpsc::Sender<RoomCommand<G>>,
    messages: mpsc::Sender<RoomCommand<G>>,
    /// Clients in the room (attached, or detached within their resume
    /// grace), as the room task last counted them. Only the room task writes
    /// it; it rises only while that task holds the registry lock.
    players: Arc<AtomicUsize>,
    /// Seats held for joins on their way to the room task (see [`Seat`]).
    /// Taken only under the registry lock.
    reserved: Arc<AtomicUsize>,
    /// The room's game mode, as registered in the directory: the seat
    /// token's that opened it, else the node's (`FleetConfig::mode`).
    mode: Arc<str>,
    /// The room's figures for the console, written by its task per tick.
    stats: Arc<RoomStats>,
    /// The configuration the room runs with (its capacity is
    /// `config.max_clients`).
    config: Arc<RoomConfig>,
}

impl<G: Game> Clone for RoomHandle<G> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            messages: self.messages.clone(),
            players: Arc::clone(&self.players),
            reserved: Arc::clone(&self.reserved),
            mode: Arc::clone(&self.mode),
            stats: Arc::clone(&self.stats),
            config: Arc::clone(&self.config),
        }
    }
}

impl<G: Game> RoomHandle<G> {
    /// Players plus seats held for joins not decided yet. Read under the
    /// registry lock, this never counts one client twice: the room task turns
    /// a seat into a player under the same lock.
    fn occupancy(&self) -> usize {
        self.players
            .load(Ordering::Relaxed)
            .saturating_add(self.reserved.load(Ordering::Relaxed))
    }

    /// Whether a fresh join fits (read under the registry lock).
    fn has_space(&self) -> bool {
        self.occupancy() < self.config.max_clients
    }

    fn link(&self) -> RoomLink<G> {
        RoomLink {
            control: self.tx.clone(),
            messages: self.messages.clone(),
            config: Arc::clone(&self.config),
        }
    }

    /// Holds a seat; call under the registry lock.
    fn reserve(&self) -> Seat {
        self.reserved.fetch_add(1, Ordering::Relaxed);
        Seat(Arc::clone(&self.reserved))
    }
}

/// A seat held in one room, taken under the registry lock when a join picks
/// the room, so that concurrent joins see each other and do not all pick the
/// same room. Dropping it frees the seat: the room task drops it once the
/// join is decided (and the client, if it joined, is counted in `players`);
/// a join that never reaches its room drops it on the way.
pub(crate) struct Seat(Arc<AtomicUsize>);

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Attempts at placing one join before giving up with `ServerFull`.
const JOIN_ATTEMPTS: usize = 4;
/// Names tried for a new unnamed room that other nodes already hold.
const CLAIM_ATTEMPTS: usize = 8;
/// How long a join waits for the directory to claim a room name before it
/// opens the room unclaimed (the directory is down; the publisher
/// registers the room when it is back).
const CLAIM_TIMEOUT: Duration = Duration::from_secs(1);

struct Inner<G: Game> {
    rooms: HashMap<String, RoomHandle<G>>,
    tokens: HashMap<ResumeToken, String>,
    next_auto: u64,
    closing: bool,
    /// No new players or rooms; resumes into running rooms only.
    draining: bool,
}

/// A session past its handshake, as the console sees it: registered when
/// its join succeeds, removed when it disconnects (or its room closes).
struct ClientEntry {
    room: String,
    outbox: Arc<Outbox>,
    stats: Arc<ClientStats>,
    since: std::time::Instant,
}

/// The set of rooms of one server.
pub(crate) struct Rooms<G: Game> {
    inner: Mutex<Inner<G>>,
    /// Live sessions by client id, for the console (its own lock: never
    /// taken together with `inner`).
    clients: Mutex<HashMap<ClientId, ClientEntry>>,
    factory: Box<dyn Fn(&str) -> G + Send + Sync>,
    /// Decides joins off the room tasks (else `Game::on_auth` does, on them).
    auth: Option<Arc<dyn Authenticator<G::User>>>,
    config: Arc<ServerConfig>,
    /// `config.room`, shared by the rooms that run with it.
    default_room: Arc<RoomConfig>,
    /// Gives a room its own config (`Server::with_room_config`).
    room_config: Option<Arc<RoomConfigHook>>,
    epoch: Instant,
    stats: Arc<StatsCollector>,
    /// Where room names are claimed before a room opens.
    directory: Arc<dyn Directory>,
    /// Set once the node drains: an empty room closes at once instead of
    /// after `RoomConfig::empty_grace`. Read by room tasks without the lock.
    draining: AtomicBool,
    /// Open rooms, for the lifecycle supervisor. Sent under the registry
    /// lock whenever a room opens or closes.
    room_count: watch::Sender<usize>,
}

/// The rejection for a hello that is not a resume while the node drains
/// (docs/PROTOCOL.md §6.8).
fn draining() -> Rejection {
    Rejection {
        code: RejectCode::ShuttingDown,
        message: "server draining: it takes no new players".to_owned(),
    }
}

/// Longest room name accepted from a client.
pub(crate) const MAX_ROOM_NAME: usize = 32;

/// Whether `name` is a room name a client may ask for (docs/PROTOCOL.md §5.2).
pub(crate) fn valid_room_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ROOM_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One open room as [`RoomsControl::snapshot`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenRoom {
    pub(crate) name: String,
    /// Clients (attached, or detached within their resume grace).
    pub(crate) players: usize,
    /// Its `RoomConfig::max_clients`.
    pub(crate) capacity: usize,
    pub(crate) mode: Arc<str>,
}

impl<G: Game> Rooms<G> {
    pub(crate) fn new(
        config: Arc<ServerConfig>,
        factory: Box<dyn Fn(&str) -> G + Send + Sync>,
        stats: Arc<StatsCollector>,
        directory: Arc<dyn Directory>,
        auth: Option<Arc<dyn Authenticator<G::User>>>,
        room_config: Option<Arc<RoomConfigHook>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                rooms: HashMap::new(),
                tokens: HashMap::new(),
                next_auto: 1,
                closing: false,
                draining: false,
            }),
            clients: Mutex::new(HashMap::new()),
            factory,
            auth,
            default_room: Arc::new(config.room.clone()),
            room_config,
            config,
            epoch: Instant::now(),
            stats,
            directory,
            draining: AtomicBool::new(false),
            room_count: watch::Sender::new(0),
        })
    }

    /// The server's statistics window.
    pub(crate) fn stats(&self) -> &StatsCollector {
        &self.stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<G>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The configuration room `name` of mode `mode` opens with: the
    /// hook's (`Server::with_room_config`), checked, else the default.
    fn config_for(&self, name: &str, mode: &str) -> Result<Arc<RoomConfig>, RoomConfigError> {
        let Some(hook) = &self.room_config else {
            return Ok(Arc::clone(&self.default_room));
        };
        let config = hook(&RoomSpec::new(name, mode), &self.default_room);
        config.validate()?;
        if config == *self.default_room {
            return Ok(Arc::clone(&self.default_room));
        }
        Ok(Arc::new(config))
    }

    /// [`Rooms::config_for`], or the rejection of the join that would open
    /// the room (`InvalidRoom`; the typed error is logged, not sent).
    fn config_or_reject(&self, name: &str, mode: &str) -> Result<Arc<RoomConfig>, Rejection> {
        self.config_for(name, mode).map_err(|e| {
            m::room_config_refused();
            tracing::error!(room = %name, mode, error = %e, "room not opened: the RoomConfig that Server::with_room_config gave it is invalid");
            Rejection {
                code: RejectCode::InvalidRoom,
                message: format!("room {name:?} cannot open here: its configuration is invalid"),
            }
        })
    }

    /// Time since the registry started: the rooms' clock.
    pub(crate) fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Picks (or creates) the room for `hello` and joins it.
    ///
    /// A hello that names a room gets `RoomFull` when that room is full. One
    /// that names none is placed in a room with space, and refused
    /// (`ServerFull`) only when every room is full and no room can be opened.
    pub(crate) async fn join(
        self: &Arc<Self>,
        mut hello: Hello,
        client_id: ClientId,
        new_token: ResumeToken,
        outbox: Arc<Outbox>,
        rtt: Arc<crate::rtt::Rtt>,
        mut request: AuthRequest,
    ) -> Result<(Joined, RoomLink<G>), Rejection> {
        let mode = self.admit(&mut hello)?;
        let user = match &self.auth {
            None => None,
            Some(auth) => {
                request.token.clone_from(&hello.auth_token);
                request.room.clone_from(&hello.room);
                request.mode = mode.to_string();
                request.resuming = hello.resume_token.is_some();
                Some(self.authenticate(auth.as_ref(), request).await?)
            }
        };
        let user = Arc::new(Mutex::new(user));
        let auto = hello.room.is_none();
        // A room may close between lookup and join, and an unnamed join may
        // still meet a full room (a resume that turned into a fresh join):
        // try again, a bounded number of times.
        for _ in 0..JOIN_ATTEMPTS {
            let fresh = self.claim_for(&hello, &mode).await?;
            let (handle, seat, resume_only) = self.pick(&hello, fresh, &mode)?;
            let (reply, rx) = oneshot::channel();
            let req = JoinRequest {
                hello: hello.clone(),
                client_id,
                new_token,
                outbox: Arc::clone(&outbox),
                rtt: Arc::clone(&rtt),
            };
            // On failure the command, and its seat, is dropped.
            if handle
                .tx
                .send(RoomCommand::Join {
                    req,
                    reply,
                    seat,
                    resume_only,
                    user: Arc::clone(&user),
                })
                .await
                .is_err()
            {
                continue;
            }
            match rx.await {
                Ok(Ok(joined)) => {
                    self.lock()
                        .tokens
                        .insert(joined.welcome.resume_token, joined.welcome.room.clone());
                    self.register_client(&joined, &outbox);
                    return Ok((joined, handle.link()));
                }
                // `RoomFull` means "the room you named is full": a join that
                // named none goes elsewhere. Its resume token did not resume
                // (the room treated it as a fresh join), so drop it, or the
                // next pick would choose the same room.
                Ok(Err(rejection)) if auto && rejection.code == RejectCode::RoomFull => {
                    hello.resume_token = None;
                }
                Ok(Err(rejection)) => return Err(rejection),
                Err(_) => {}
            }
        }
        Err(Rejection {
            code: RejectCode::ServerFull,
            message: "could not join a room; try again".to_owned(),
        })
    }

    /// Runs the authenticator, within `auth_timeout`, on this (the
    /// session's) task.
    async fn authenticate(
        &self,
        auth: &dyn Authenticator<G::User>,
        request: AuthRequest,
    ) -> Result<G::User, Rejection> {
        let timeout = self.config.session.auth_timeout;
        match tokio::time::timeout(timeout, auth.authenticate(request)).await {
            Ok(Ok(user)) => Ok(user),
            Ok(Err(e)) => Err(Rejection {
                code: e.code,
                message: truncate_reason(e.message),
            }),
            Err(_) => {
                m::auth_timeout();
                Err(Rejection {
                    code: RejectCode::AuthTimeout,
                    message: format!("the auth service did not answer within {timeout:?}"),
                })
            }
        }
    }

    /// Checks the hello's seat token (docs/PROTOCOL.md §13.5): a valid one
    /// names the room and carries the identity that the game's auth hook
    /// gets as its token. Returns the mode a room opened for it gets.
    fn admit(&self, hello: &mut Hello) -> Result<Arc<str>, Rejection> {
        let fleet = &self.config.fleet;
        let Some(token) = hello.seat_token.take() else {
            if fleet.require_seat_token {
                return Err(Rejection {
                    code: RejectCode::SeatTokenRequired,
                    message:
                        "this node admits players with a seat token only: POST /matchmake first"
                            .to_owned(),
                });
            }
            return Ok(Arc::from(fleet.mode.as_str()));
        };
        let Some(secret) = &fleet.secret else {
            return Err(Rejection {
                code: RejectCode::SeatTokenInvalid,
                message: "this node has no fleet secret and takes no seat tokens".to_owned(),
            });
        };
        let seat = seat::Seat::verify(secret, &token, unix_ms_now())
            .and_then(|seat| {
                seat.check(&fleet.node_id, hello.room.as_deref())
                    .map(|()| seat)
            })
            .map_err(|e| Rejection {
                code: e.reject_code(),
                message: truncate_reason(e.to_string()),
            })?;
        hello.room = Some(seat.room);
        hello.auth_token = (!seat.identity.is_empty()).then_some(seat.identity);
        Ok(Arc::from(seat.mode))
    }

    /// Claims in the directory, before the room opens here, the name of a
    /// room this join would open: the room the hello names if it is not
    /// open here, or, for an unnamed join that finds no room with space, a
    /// fresh `room-N` (returned for [`Rooms::pick`] to use). Two nodes never
    /// open rooms of the same name while the directory is up; while it is
    /// down, the room opens unclaimed (and the publisher registers it, or
    /// logs the conflict, when it is back).
    async fn claim_for(&self, hello: &Hello, mode: &str) -> Result<Option<String>, Rejection> {
        let resuming = |inner: &Inner<G>| {
            hello
                .resume_token
                .and_then(|t| inner.tokens.get(&t))
                .is_some_and(|name| inner.rooms.contains_key(name))
        };
        if let Some(name) = &hello.room {
            let open = {
                let inner = self.lock();
                // A draining or closing node opens no room: `pick` refuses.
                inner.rooms.contains_key(name)
                    || resuming(&inner)
                    || inner.draining
                    || inner.closing
            };
            if open || !valid_room_name(name) {
                return Ok(None);
            }
            let capacity = self.config_or_reject(name, mode)?.max_clients;
            return match self.claim(name, mode, capacity).await {
                Some(holder) => Err(Rejection {
                    code: RejectCode::RoomElsewhere,
                    message: format!(
                        "room {name:?} is held by another node of the fleet ({}); matchmake to reach it",
                        holder.chars().take(64).collect::<String>()
                    ),
                }),
                None => Ok(None),
            };
        }
        for _ in 0..CLAIM_ATTEMPTS {
            let name = {
                let mut inner = self.lock();
                if resuming(&inner)
                    || inner.draining
                    || inner.closing
                    || inner.rooms.values().any(RoomHandle::has_space)
                {
                    return Ok(None);
                }
                loop {
                    let n = format!("room-{}", inner.next_auto);
                    inner.next_auto += 1;
                    if !inner.rooms.contains_key(&n) {
                        break n;
                    }
                }
            };
            let capacity = self.config_or_reject(&name, mode)?.max_clients;
            if self.claim(&name, mode, capacity).await.is_none() {
                return Ok(Some(name));
            }
        }
        Err(Rejection {
            code: RejectCode::ServerFull,
            message: "could not find a free room name in the fleet; try again".to_owned(),
        })
    }

    /// Claims `name` (a room of `capacity` players) for this node;
    /// `Some(holder)` when another node holds it.
    async fn claim(&self, name: &str, mode: &str, capacity: usize) -> Option<String> {
        let fleet = &self.config.fleet;
        let info = RoomInfo::new(name, fleet.node_id.clone())
            .with_mode(mode)
            .with_capacity(u32::try_from(capacity).unwrap_or(u32::MAX));
        match tokio::time::timeout(CLAIM_TIMEOUT, self.directory.create_room(&info, fleet.ttl))
            .await
        {
            Ok(Ok(Claim::Created)) => None,
            Ok(Ok(Claim::Taken { node })) if node == fleet.node_id => None,
            Ok(Ok(Claim::Taken { node })) => Some(node),
            Ok(Err(e)) => {
                tracing::warn!(room = %name, error = %e, "cannot claim the room name in the directory; opening it unclaimed");
                None
            }
            Err(_) => {
                tracing::warn!(room = %name, "the directory did not answer a room claim in time; opening it unclaimed");
                None
            }
        }
    }

    /// The room for `hello`, with a seat held in it, and whether the join
    /// must be a resume (the node drains). A new unnamed room takes the
    /// name `fresh` (claimed by [`Rooms::claim_for`]) when given; a new room
    /// gets mode `mode`.
    fn pick(
        self: &Arc<Self>,
        hello: &Hello,
        fresh: Option<String>,
        mode: &Arc<str>,
    ) -> Result<(RoomHandle<G>, Seat, bool), Rejection> {
        let mut inner = self.lock();
        if inner.closing {
            return Err(Rejection {
                code: RejectCode::ShuttingDown,
                message: "server shutting down".to_owned(),
            });
        }
        let resumed_room = hello
            .resume_token
            .and_then(|t| inner.tokens.get(&t).cloned())
            .filter(|name| inner.rooms.contains_key(name));
        let resuming = resumed_room.is_some();
        if inner.draining && !resuming {
            return Err(draining());
        }
        let resume_only = inner.draining;
        let name = match (resumed_room, &hello.room) {
            (Some(name), _) => name,
            (None, Some(name)) if !valid_room_name(name) => {
                return Err(Rejection {
                    code: RejectCode::InvalidRoom,
                    message: format!(
                        "room names are 1 to {MAX_ROOM_NAME} characters of A-Z, a-z, 0-9, '-' and '_'"
                    ),
                });
            }
            (None, Some(name)) => name.clone(),
            (None, None) => {
                // The fullest room that still has space keeps rooms lively.
                // Seats held by joins in flight count: concurrent joins fill
                // a room, then open the next.
                let best = inner
                    .rooms
                    .iter()
                    .filter(|(_, h)| h.has_space())
                    .map(|(n, h)| (n, h.occupancy()))
                    .max_by_key(|(n, p)| (*p, core::cmp::Reverse((*n).clone())))
                    .map(|(n, _)| n.clone());
                match (best, fresh) {
                    (Some(n), _) | (None, Some(n)) => n,
                    (None, None) => loop {
                        let n = format!("room-{}", inner.next_auto);
                        inner.next_auto += 1;
                        if !inner.rooms.contains_key(&n) {
                            break n;
                        }
                    },
                }
            }
        };
        if let Some(h) = inner.rooms.get(&name) {
            // A resume keeps the seat it has; the seat held for it is freed
            // when the room resumes it.
            if !resuming && !h.has_space() {
                return Err(room_full(&name, h.config.max_clients));
            }
            return Ok((h.clone(), h.reserve(), resume_only));
        }
        if inner.rooms.len() >= self.config.max_rooms {
            let message = if hello.room.is_none() {
                format!(
                    "every room is full and the server hosts its maximum of {} rooms",
                    self.config.max_rooms
                )
            } else {
                format!(
                    "the server hosts its maximum of {} rooms",
                    self.config.max_rooms
                )
            };
            return Err(Rejection {
                code: RejectCode::ServerFull,
                message,
            });
        }
        // Its own config, checked: an invalid one refuses this join, and the
        // room does not open.
        let config = self.config_or_reject(&name, mode)?;
        let (tx, rx) = mpsc::channel(config.channel_capacity);
        let (messages, messages_rx) = mpsc::channel(config.message_capacity());
        let handle = RoomHandle {
            tx,
            messages,
            players: Arc::new(AtomicUsize::new(0)),
            reserved: Arc::new(AtomicUsize::new(0)),
            mode: Arc::clone(mode),
            stats: Arc::new(RoomStats::new(std::time::Instant::now())),
            config: Arc::clone(&config),
        };
        let seat = handle.reserve();
        inner.rooms.insert(name.clone(), handle.clone());
        self.room_count.send_replace(inner.rooms.len());
        drop(inner);
        let room = Room::new(
            name.clone(),
            (self.factory)(&name),
            config,
            &self.config.limits,
        );
        m::rooms(1.0);
        tracing::info!(
            room = %name,
            mode = %mode,
            tick_rate = room.config().tick_rate,
            max_clients = room.config().max_clients,
            "room opened"
        );
        tokio::spawn(run_room(
            Arc::clone(self),
            room,
            rx,
            messages_rx,
            Arc::clone(&handle.players),
            Arc::clone(&handle.reserved),
            Arc::clone(&handle.stats),
        ));
        Ok((handle, seat, resume_only))
    }
}

/// A reject message within `max_text_bytes` (256 bytes by default): at most
/// 200 bytes, cut at a character boundary.
fn truncate_reason(mut message: String) -> String {
    let mut end = message.len().min(200);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message
}

/// The rejection for a join to a named room that is full.
fn room_full(name: &str, max: usize) -> Rejection {
    Rejection {
        code: RejectCode::RoomFull,
        message: format!("room {name:?} is full ({max} players)"),
    }
}

impl<G: Game> Rooms<G> {
    fn forget(&self, tokens: Vec<ResumeToken>) {
        if tokens.is_empty() {
            return;
        }
        let mut inner = self.lock();
        for t in tokens {
            inner.tokens.remove(&t);
        }
    }

    /// Removes a room if it is still empty; returns whether it did.
    fn close_if_empty(
        &self,
        name: &str,
        players: &AtomicUsize,
        reserved: &AtomicUsize,
        rx: &mpsc::Receiver<RoomCommand<G>>,
        messages: &mpsc::Receiver<RoomCommand<G>>,
    ) -> bool {
        let mut inner = self.lock();
        // A held seat is a join that picked this room and has not arrived.
        if players.load(Ordering::Relaxed) > 0
            || reserved.load(Ordering::Relaxed) > 0
            || !rx.is_empty()
            || !messages.is_empty()
        {
            return false;
        }
        inner.rooms.remove(name);
        inner.tokens.retain(|_, room| room != name);
        self.room_count.send_replace(inner.rooms.len());
        drop(inner);
        self.console_clients().retain(|_, c| c.room != name);
        true
    }
}

#[cfg(test)]
mod tests;
