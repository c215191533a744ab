//! The room registry: rooms by name, matchmaking, resume tokens, and the
//! room task that drives each [`Room`] on its tick schedule.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tickwire_shared::handshake::Rejection;
use tickwire_shared::{ClientMessage, CloseCode, Hello, RejectCode, ResumeToken};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::auth::{AuthRequest, Authenticator};
use crate::config::ServerConfig;
use crate::console::{ClientRow, ClientStats, ControlError, RoomRow, RoomStats};
use crate::directory::{Claim, Directory, RoomInfo};
use crate::game::{ClientId, Game, InputOf, LeaveReason, MessageOf};
use crate::matchmaking::seat::{self, unix_ms_now};
use crate::metrics as m;
use crate::outbox::Outbox;
use crate::room::{JoinRequest, Joined, Room};
use crate::room_config::{RoomConfig, RoomConfigError, RoomConfigHook, RoomSpec};
use crate::stats::StatsCollector;
use crate::tick::TickSchedule;

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

/// The type-erased part of [`Rooms`] that the running server needs.
pub(crate) trait RoomsControl: Send + Sync {
    /// Refuses every join that is not a resume into a running room, and
    /// closes rooms as soon as they are empty.
    fn drain(&self);
    /// Tells every room to close its sessions with `ServerShutdown` and
    /// `reason`; refuses new joins.
    fn shutdown(&self, reason: &str);
    /// Number of open rooms.
    fn open_rooms(&self) -> usize;
    /// Number of open rooms, as it changes.
    fn room_count(&self) -> watch::Receiver<usize>;
    /// Every open room's name, players (attached, or detached within
    /// their resume grace), capacity and mode, sorted by name: one short
    /// lock, no waiting.
    fn snapshot(&self) -> Vec<OpenRoom>;
}

/// What the fleet console (crate::console) reads and does, beyond
/// [`RoomsControl`].
pub(crate) trait ConsoleControl: RoomsControl {
    /// Every open room with its console figures, sorted by name.
    fn room_rows(&self, now: std::time::Instant) -> Vec<RoomRow>;
    /// The sessions of room `name`, sorted by id; `None` when no such room
    /// is open here.
    fn client_rows(&self, name: &str, now: std::time::Instant) -> Option<Vec<ClientRow>>;
    /// Asks room `name` to kick `client` with `reason` (the console).
    fn kick(&self, name: &str, client: ClientId, reason: &str) -> Result<(), ControlError>;
    /// Asks room `name` to close every session and then itself.
    fn close_room(&self, name: &str, reason: &str) -> Result<(), ControlError>;
}

impl<G: Game> RoomsControl for Rooms<G> {
    fn drain(&self) {
        let mut inner = self.lock();
        inner.draining = true;
        self.draining.store(true, Ordering::Relaxed);
    }

    fn shutdown(&self, reason: &str) {
        let mut inner = self.lock();
        inner.closing = true;
        let reason: Arc<str> = Arc::from(reason);
        for h in inner.rooms.values() {
            // A full channel means the room is busy; its sessions still see
            // the server's shutdown signal themselves.
            let _ = h.tx.try_send(RoomCommand::Shutdown(Arc::clone(&reason)));
        }
    }

    fn open_rooms(&self) -> usize {
        self.lock().rooms.len()
    }

    fn room_count(&self) -> watch::Receiver<usize> {
        self.room_count.subscribe()
    }

    fn snapshot(&self) -> Vec<OpenRoom> {
        let inner = self.lock();
        let mut rooms: Vec<_> = inner
            .rooms
            .iter()
            .map(|(name, h)| OpenRoom {
                name: name.clone(),
                players: h.players.load(Ordering::Relaxed),
                capacity: h.config.max_clients,
                mode: Arc::clone(&h.mode),
            })
            .collect();
        drop(inner);
        rooms.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        rooms
    }
}

impl<G: Game> ConsoleControl for Rooms<G> {
    fn room_rows(&self, now: std::time::Instant) -> Vec<RoomRow> {
        let handles: Vec<(String, RoomHandle<G>)> = {
            let inner = self.lock();
            inner
                .rooms
                .iter()
                .map(|(n, h)| (n.clone(), h.clone()))
                .collect()
        };
        let mut rows: Vec<RoomRow> = handles
            .into_iter()
            .map(|(name, h)| RoomRow {
                name,
                mode: Arc::clone(&h.mode),
                players: h.players.load(Ordering::Relaxed),
                figures: h.stats.figures(now),
            })
            .collect();
        rows.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        rows
    }

    fn client_rows(&self, name: &str, now: std::time::Instant) -> Option<Vec<ClientRow>> {
        if !self.lock().rooms.contains_key(name) {
            return None;
        }
        let mut clients = self.console_clients();
        // Sessions whose outbox closed are on their way out.
        clients.retain(|_, c| !c.outbox.is_closed());
        let mut rows: Vec<ClientRow> = clients
            .iter()
            .filter(|(_, c)| c.room == name)
            .map(|(id, c)| ClientRow {
                id: *id,
                connected: now.saturating_duration_since(c.since),
                figures: c.stats.figures(now),
            })
            .collect();
        drop(clients);
        rows.sort_unstable_by_key(|r| r.id);
        Some(rows)
    }

    fn kick(&self, name: &str, client: ClientId, reason: &str) -> Result<(), ControlError> {
        let in_room = self
            .console_clients()
            .get(&client)
            .is_some_and(|c| c.room == name);
        let tx = self.room_tx(name)?;
        if !in_room {
            return Err(ControlError::ClientNotFound {
                room: name.to_owned(),
                client,
            });
        }
        let cmd = RoomCommand::Kick {
            client,
            reason: reason.to_owned(),
        };
        tx.try_send(cmd)
            .map_err(|_| ControlError::Busy(name.to_owned()))
    }

    fn close_room(&self, name: &str, reason: &str) -> Result<(), ControlError> {
        let tx = self.room_tx(name)?;
        tx.try_send(RoomCommand::Close(reason.to_owned()))
            .map_err(|_| ControlError::Busy(name.to_owned()))
    }
}

impl<G: Game> Rooms<G> {
    fn console_clients(&self) -> std::sync::MutexGuard<'_, HashMap<ClientId, ClientEntry>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn room_tx(&self, name: &str) -> Result<mpsc::Sender<RoomCommand<G>>, ControlError> {
        self.lock()
            .rooms
            .get(name)
            .map(|h| h.tx.clone())
            .ok_or_else(|| ControlError::RoomNotFound(name.to_owned()))
    }

    /// Registers a joined session for the console (a resume replaces the
    /// entry of the connection it replaces).
    fn register_client(&self, joined: &Joined, outbox: &Arc<Outbox>) {
        let entry = ClientEntry {
            room: joined.welcome.room.clone(),
            outbox: Arc::clone(outbox),
            stats: Arc::new(ClientStats::new(std::time::Instant::now())),
            since: std::time::Instant::now(),
        };
        self.console_clients()
            .insert(joined.welcome.client_id, entry);
    }

    /// Forgets the session of `client` on `outbox` (not a newer one).
    fn unregister_client(&self, client: ClientId, outbox: &Arc<Outbox>) {
        let mut clients = self.console_clients();
        if clients
            .get(&client)
            .is_some_and(|c| Arc::ptr_eq(&c.outbox, outbox))
        {
            clients.remove(&client);
        }
    }

    /// The console figures a session updates (RTT, bytes sent), once it
    /// joined.
    pub(crate) fn client_stats(&self, client: ClientId) -> Option<Arc<ClientStats>> {
        self.console_clients()
            .get(&client)
            .map(|c| Arc::clone(&c.stats))
    }

    /// The outboxes of room `name`'s sessions, by client id.
    fn room_outboxes(&self, name: &str) -> Vec<(ClientId, Arc<Outbox>)> {
        self.console_clients()
            .iter()
            .filter(|(_, c)| c.room == name)
            .map(|(id, c)| (*id, Arc::clone(&c.outbox)))
            .collect()
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

async fn run_room<G: Game>(
    rooms: Arc<Rooms<G>>,
    mut room: Room<G>,
    mut rx: mpsc::Receiver<RoomCommand<G>>,
    mut messages: mpsc::Receiver<RoomCommand<G>>,
    players: Arc<AtomicUsize>,
    reserved: Arc<AtomicUsize>,
    console: Arc<RoomStats>,
) {
    let max_messages = room.config().message_capacity();
    let period = room.config().tick_period();
    let mut schedule = TickSchedule::new(rooms.now(), period);
    let mut shutting_down = false;
    // One timer for the tick deadline, re-armed once per tick (not once per
    // command).
    let tick_due = tokio::time::sleep_until(rooms.epoch + schedule.next_deadline());
    tokio::pin!(tick_due);
    loop {
        tick_due
            .as_mut()
            .reset(rooms.epoch + schedule.next_deadline());
        // Handle commands as they arrive until the tick is due.
        loop {
            tokio::select! {
                biased;
                () = &mut tick_due => break,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => {
                        rooms.stats.room_woke();
                        if handle_command(&rooms, &mut room, &players, cmd) {
                            shutting_down = true;
                        }
                    }
                    None => {
                        m::rooms(-1.0);
                        return;
                    }
                },
            }
            players.store(room.client_count(), Ordering::Relaxed);
        }
        // The tick's inputs, read now: they never woke the room. Bounded: what arrives meanwhile waits a tick.
        for _ in 0..max_messages {
            let Ok(cmd) = messages.try_recv() else { break };
            if handle_command(&rooms, &mut room, &players, cmd) {
                shutting_down = true;
            }
        }
        let now = rooms.now();
        let start = schedule.start_tick(now);
        if start.overrun {
            m::tick_overrun();
            tracing::warn!(room = %room.name(), late_ms = start.late_by.as_secs_f64() * 1e3, "tick overrun");
        }
        let t0 = std::time::Instant::now();
        room.tick(now);
        let took = t0.elapsed();
        m::tick_seconds(took.as_secs_f64());
        let sent = room.take_sent();
        rooms.stats.record_tick(took, period, start.overrun, sent);
        console.record(std::time::Instant::now(), took, start.overrun, sent);
        rooms.forget(room.take_forgotten_tokens());
        players.store(room.client_count(), Ordering::Relaxed);
        // A draining node closes an empty room at once.
        let grace = if rooms.draining.load(Ordering::Relaxed) {
            Duration::ZERO
        } else {
            room.config().empty_grace
        };
        let idle = room.empty_for(now).is_some_and(|d| d >= grace);
        if (shutting_down || idle)
            && room.client_count() == 0
            && rooms.close_if_empty(room.name(), &players, &reserved, &rx, &messages)
        {
            tracing::info!(room = %room.name(), "room closed");
            m::rooms(-1.0);
            return;
        }
    }
}

/// Returns true on shutdown.
fn handle_command<G: Game>(
    rooms: &Rooms<G>,
    room: &mut Room<G>,
    players: &AtomicUsize,
    cmd: RoomCommand<G>,
) -> bool {
    let now = rooms.now();
    match cmd {
        RoomCommand::Join {
            req,
            reply,
            seat,
            resume_only,
            user,
        } => {
            let outbox = Arc::clone(&req.outbox);
            let holds = req.hello.resume_token.is_some_and(|t| room.holds(t));
            let result = if resume_only && !holds {
                Err(draining())
            } else {
                let mut user = user.lock().unwrap_or_else(|e| e.into_inner());
                room.join_as(now, req, &mut user)
            };
            {
                // The held seat becomes a player (or nothing: a resume, a
                // rejection) in one step as `pick` sees it.
                let _registry = rooms.lock();
                players.store(room.client_count(), Ordering::Relaxed);
                drop(seat);
            }
            if let Err(Ok(joined)) = reply.send(result) {
                // The session gave up waiting: it is gone.
                room.disconnect(
                    now,
                    joined.welcome.client_id,
                    &outbox,
                    LeaveReason::Misbehaved,
                );
            }
        }
        RoomCommand::Message { client, msg } => room.handle(now, client, msg),
        RoomCommand::Disconnected {
            client,
            outbox,
            reason,
        } => {
            rooms.unregister_client(client, &outbox);
            room.disconnect(now, client, &outbox, reason);
        }
        RoomCommand::Shutdown(reason) => {
            room.shutdown_because(now, &reason);
            return true;
        }
        RoomCommand::Kick { client, reason } => {
            let outbox = rooms
                .room_outboxes(room.name())
                .into_iter()
                .find(|(id, _)| *id == client);
            if let Some((_, outbox)) = outbox {
                // The first close wins: the session closes with this reason.
                outbox.close(CloseCode::Kicked, reason.as_str());
                room.disconnect(now, client, &outbox, LeaveReason::Kicked);
                tracing::info!(room = %room.name(), client, %reason, "console: client kicked");
            }
        }
        RoomCommand::Close(reason) => {
            for (client, outbox) in rooms.room_outboxes(room.name()) {
                outbox.close(CloseCode::RoomClosed, reason.as_str());
                room.disconnect(now, client, &outbox, LeaveReason::Shutdown);
            }
            // Clients detached within their resume grace have no session.
            room.shutdown_because(now, &reason);
            tracing::info!(room = %room.name(), %reason, "console: room closed");
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tickwire_shared::GameProtocol;

    use super::*;
    use crate::game::{AuthError, Ctx};

    struct Proto;
    impl GameProtocol for Proto {
        const NAME: &'static str = "rooms-test";
        const VERSION: u32 = 1;
        type Input = u8;
        type EntityState = u8;
        type Event = u8;
        type Message = ();
    }

    struct Nop;
    impl Game for Nop {
        type Protocol = Proto;
        type User = ();
        type View = ();
        fn on_auth(&mut self, token: Option<&str>) -> Result<(), AuthError> {
            match token {
                Some("bad") => Err(AuthError::failed("refused")),
                _ => Ok(()),
            }
        }
        fn on_join(&mut self, _: &mut Ctx<'_, Self>, _: ClientId, (): ()) {}
        fn on_input(&mut self, _: &mut Ctx<'_, Self>, _: ClientId, _: u8, _: crate::InputMeta) {}
        fn on_tick(&mut self, _: &mut Ctx<'_, Self>, _: f32) {}
        fn on_leave(&mut self, _: &mut Ctx<'_, Self>, _: ClientId, _: LeaveReason) {}
    }

    fn rooms(per_room: usize, max_rooms: usize) -> Arc<Rooms<Nop>> {
        let config = ServerConfig::default()
            .with_max_players_per_room(per_room)
            .with_max_rooms(max_rooms);
        rooms_with(config, Arc::new(crate::directory::MemoryDirectory::new()))
    }

    fn rooms_with(config: ServerConfig, directory: Arc<dyn Directory>) -> Arc<Rooms<Nop>> {
        Rooms::new(
            Arc::new(config),
            Box::new(|_| Nop),
            Arc::new(StatsCollector::new(std::time::Instant::now())),
            directory,
            None,
            None,
        )
    }

    fn hello(room: Option<&str>, auth: Option<&str>) -> Hello {
        let mut h = Hello::new(Proto::PROTOCOL_HASH);
        h.room = room.map(str::to_owned);
        h.auth_token = auth.map(str::to_owned);
        h
    }

    type Join = Result<(Joined, RoomLink<Nop>, Arc<Outbox>), Rejection>;
    type Joins = Vec<Join>;

    /// `n` joins started together (all of them pick a room before any room
    /// task runs: the test runtime has one thread), awaited together.
    async fn burst(rooms: &Arc<Rooms<Nop>>, n: u32, first_id: u32, h: &Hello) -> Joins {
        let mut tasks = Vec::new();
        for i in 0..n {
            let rooms = Arc::clone(rooms);
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                let outbox = Arc::new(Outbox::new(16, 16));
                let id = first_id + i;
                let mut token = [0u8; 16];
                token[..4].copy_from_slice(&id.to_le_bytes());
                rooms
                    .join(
                        h,
                        id,
                        ResumeToken::from_random(token),
                        Arc::clone(&outbox),
                        Arc::default(),
                        AuthRequest::new(([127, 0, 0, 1], 9).into(), "test"),
                    )
                    .await
                    .map(|(j, tx)| (j, tx, outbox))
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("join task"));
        }
        out
    }

    fn per_room(joins: &Joins) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for (j, _, _) in joins.iter().flatten() {
            *m.entry(j.welcome.room.clone()).or_default() += 1;
        }
        m
    }

    fn refusals(joins: &Joins) -> Vec<String> {
        joins
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|r| format!("{:?}: {}", r.code, r.message))
            .collect()
    }

    #[tokio::test]
    async fn a_burst_of_200_unnamed_joins_fills_rooms_of_16_without_refusals() {
        let rooms = rooms(16, 1000);
        let joins = burst(&rooms, 200, 1, &hello(None, None)).await;
        let refused = refusals(&joins);
        assert!(
            refused.is_empty(),
            "{} of 200 refused, first: {:?}",
            refused.len(),
            refused.first()
        );
        let mut sizes: Vec<usize> = per_room(&joins).into_values().collect();
        sizes.sort_unstable();
        let mut want = vec![16; 12];
        want.insert(0, 8);
        assert_eq!(sizes, want, "12 full rooms of 16 and one of 8");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_parallel_burst_of_200_unnamed_joins_fills_rooms_of_16_without_refusals() {
        let rooms = rooms(16, 1000);
        let joins = burst(&rooms, 200, 1, &hello(None, None)).await;
        assert_eq!(refusals(&joins), Vec::<String>::new());
        let mut sizes: Vec<usize> = per_room(&joins).into_values().collect();
        sizes.sort_unstable();
        assert_eq!(sizes.iter().sum::<usize>(), 200);
        assert_eq!(sizes.len(), 13, "rooms: {sizes:?}");
        assert!(sizes[1..].iter().all(|&n| n == 16), "rooms: {sizes:?}");
    }

    /// Players plus held seats of room `name`, once the room tasks have
    /// caught up (bounded: the test runtime has one thread, so yielding lets
    /// them run).
    async fn settled_occupancy(rooms: &Rooms<Nop>, name: &str) -> Option<(usize, usize)> {
        for _ in 0..1000 {
            let seen = {
                let inner = rooms.lock();
                inner.rooms.get(name).map(|h| {
                    (
                        h.players.load(Ordering::Relaxed),
                        h.reserved.load(Ordering::Relaxed),
                    )
                })
            };
            if seen.is_none_or(|(_, held)| held == 0) {
                return seen;
            }
            tokio::task::yield_now().await;
        }
        panic!("seats still held in {name}");
    }

    async fn until_players(rooms: &Rooms<Nop>, name: &str, want: usize) {
        for _ in 0..1000 {
            if settled_occupancy(rooms, name).await.map(|(p, _)| p) == Some(want) {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("{name} never had {want} players");
    }

    fn code(r: &Join) -> RejectCode {
        r.as_ref()
            .err()
            .map_or(RejectCode::InvalidHello, |e| e.code)
    }

    /// Inputs travel on the message channel, which the room reads at tick
    /// time: a burst of them wakes the room task not once, and the room
    /// still applies them (the next snapshot acknowledges the last one).
    #[tokio::test]
    async fn inputs_never_wake_the_room_and_are_applied_at_the_tick() {
        let rooms = rooms(4, 1);
        let joined = burst(&rooms, 1, 1, &hello(None, None)).await;
        let (j, link, outbox) = joined.into_iter().next().expect("one").expect("joined");
        let client = j.welcome.client_id;
        let _ = rooms.stats().take(std::time::Instant::now());
        for seq in 1..=100u32 {
            let msg = ClientMessage::Inputs(tickwire_shared::Inputs {
                first_seq: seq,
                frames: vec![tickwire_shared::InputFrame {
                    tick: 0,
                    input: 1u8,
                }],
            });
            link.messages
                .send(RoomCommand::Message { client, msg })
                .await
                .expect("room open");
        }
        // Wait (bounded) for a snapshot acknowledging an input.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let last_input = loop {
            let batch = outbox.take();
            if let Some(bytes) = batch.snapshot {
                let limits = tickwire_shared::Limits::default();
                if let Ok(tickwire_shared::ServerMessage::<()>::Snapshot(f)) =
                    tickwire_shared::ServerMessage::decode(&bytes, &limits)
                    && f.header.last_input > 0
                {
                    break f.header.last_input;
                }
            }
            assert!(std::time::Instant::now() < deadline, "no input was applied");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        };
        assert!(last_input >= 1);
        let stats = rooms.stats().take(std::time::Instant::now());
        assert!(stats.ticks() >= 1);
        assert_eq!(stats.room_wakeups, 0, "100 inputs woke the room");
    }

    #[tokio::test]
    async fn seats_follow_rejections_leaves_and_resumes() {
        // One room of 4 on the whole server.
        let rooms = rooms(4, 1);
        // Auth failures hold no seat once decided (while undecided, they
        // do: a fifth join in this burst would get `ServerFull`).
        for round in 0..3 {
            let bad = burst(&rooms, 4, 100 + 10 * round, &hello(None, Some("bad"))).await;
            assert!(bad.iter().all(|r| code(r) == RejectCode::AuthFailed));
            assert_eq!(settled_occupancy(&rooms, "room-1").await, Some((0, 0)));
        }

        let mut joined = burst(&rooms, 4, 1, &hello(None, None)).await;
        assert!(refusals(&joined).is_empty(), "{:?}", refusals(&joined));
        assert_eq!(settled_occupancy(&rooms, "room-1").await, Some((4, 0)));

        // The server is full: an unnamed join is `ServerFull`, a join naming
        // the full room `RoomFull`.
        let more = burst(&rooms, 3, 10, &hello(None, None)).await;
        assert!(more.iter().all(|r| code(r) == RejectCode::ServerFull));
        let named = burst(&rooms, 1, 20, &hello(Some("room-1"), None)).await;
        assert_eq!(code(&named[0]), RejectCode::RoomFull);
        assert_eq!(settled_occupancy(&rooms, "room-1").await, Some((4, 0)));

        // A dropped client keeps its seat through its resume grace, and a
        // resume (with no room named) takes that seat, not a new one.
        let (j, tx, outbox) = joined.pop().expect("4 joined").expect("joined");
        tx.control
            .send(RoomCommand::Disconnected {
                client: j.welcome.client_id,
                outbox,
                reason: LeaveReason::TimedOut,
            })
            .await
            .expect("room open");
        assert_eq!(settled_occupancy(&rooms, "room-1").await, Some((4, 0)));
        let mut resume = hello(None, None);
        resume.resume_token = Some(j.welcome.resume_token);
        let resumed = burst(&rooms, 1, 30, &resume).await;
        let (r, _, _) = resumed[0].as_ref().expect("resumed");
        assert!(r.welcome.resumed);
        assert_eq!(r.welcome.client_id, j.welcome.client_id);
        assert_eq!(settled_occupancy(&rooms, "room-1").await, Some((4, 0)));

        // A leave frees its seat for the next unnamed join.
        let (j, tx, _) = joined.pop().expect("3 left").expect("joined");
        tx.messages
            .send(RoomCommand::Message {
                client: j.welcome.client_id,
                msg: ClientMessage::Leave,
            })
            .await
            .expect("room open");
        until_players(&rooms, "room-1", 3).await;
        let next = burst(&rooms, 2, 40, &hello(None, None)).await;
        assert_eq!(code(&next[1]), RejectCode::ServerFull);
        let (n, _, _) = next[0].as_ref().expect("a seat was free");
        assert_eq!(n.welcome.room, "room-1");
        assert_eq!(settled_occupancy(&rooms, "room-1").await, Some((4, 0)));
    }

    mod seats {
        use std::time::Duration;

        use super::*;
        use crate::config::FleetConfig;
        use crate::directory::MemoryDirectory;
        use crate::matchmaking::FleetSecret;
        use crate::matchmaking::seat::{Seat, unix_ms_now};

        fn secret() -> FleetSecret {
            FleetSecret::new(b"0123456789abcdef-rooms".to_vec()).unwrap()
        }

        fn seat(identity: &str, room: &str, node: &str, ttl_ms: i64) -> String {
            Seat {
                identity: identity.into(),
                room: room.into(),
                mode: "ffa".into(),
                node: node.into(),
                expires_at_ms: unix_ms_now().saturating_add_signed(ttl_ms),
                seat_id: [1; 16],
            }
            .issue(&secret())
            .unwrap()
        }

        fn node(
            require: bool,
            secret: Option<FleetSecret>,
            dir: Arc<dyn Directory>,
        ) -> Arc<Rooms<Nop>> {
            let mut fleet = FleetConfig::default()
                .with_node_id("node-a")
                .with_require_seat_token(require);
            fleet.secret = secret;
            rooms_with(ServerConfig::default().with_fleet(fleet), dir)
        }

        fn seated(room: Option<&str>, token: String) -> Hello {
            let mut h = hello(room, None);
            h.seat_token = Some(token);
            h
        }

        async fn one(rooms: &Arc<Rooms<Nop>>, h: Hello) -> Join {
            burst(rooms, 1, 1, &h).await.pop().expect("one join")
        }

        #[tokio::test]
        async fn each_bad_seat_token_has_its_own_reject_code() {
            let dir = Arc::new(MemoryDirectory::new());
            let rooms = node(true, Some(secret()), dir.clone());
            let good = one(&rooms, seated(None, seat("ann", "lobby", "node-a", 30_000))).await;
            let (j, _, _) = good.as_ref().expect("a valid seat joins");
            assert_eq!(j.welcome.room, "lobby", "the token names the room");
            let lobby = dir
                .room("lobby")
                .await
                .unwrap()
                .expect("claimed before it opened");
            assert_eq!(
                (lobby.node.as_str(), lobby.mode.as_str()),
                ("node-a", "ffa")
            );
            let cases = [
                (
                    seated(None, "tw1.AAAA".into()),
                    RejectCode::SeatTokenInvalid,
                ),
                (
                    seated(None, {
                        let other = FleetSecret::new(b"another fleet secret".to_vec()).unwrap();
                        let mut s = Seat::verify(
                            &secret(),
                            &seat("ann", "lobby", "node-a", 30_000),
                            unix_ms_now(),
                        )
                        .unwrap();
                        s.identity = "mallory".into();
                        s.issue(&other).unwrap()
                    }),
                    RejectCode::SeatTokenInvalid,
                ),
                (
                    seated(None, seat("ann", "lobby", "node-a", -1)),
                    RejectCode::SeatTokenExpired,
                ),
                (
                    seated(None, seat("ann", "lobby", "node-b", 30_000)),
                    RejectCode::SeatTokenWrongNode,
                ),
                (
                    seated(Some("other"), seat("ann", "lobby", "node-a", 30_000)),
                    RejectCode::SeatTokenWrongRoom,
                ),
                (hello(Some("lobby"), None), RejectCode::SeatTokenRequired),
                // The identity reaches the game's auth hook as its token.
                (
                    seated(None, seat("bad", "lobby", "node-a", 30_000)),
                    RejectCode::AuthFailed,
                ),
            ];
            for (h, want) in cases {
                let got = one(&rooms, h).await;
                assert_eq!(code(&got), want, "{:?}", got.as_ref().err());
                let message = &got.as_ref().err().unwrap().message;
                assert!(message.len() <= 256, "{message}");
            }
        }

        #[tokio::test]
        async fn without_a_secret_old_hellos_join_and_seat_tokens_are_refused() {
            let rooms = node(false, None, Arc::new(MemoryDirectory::new()));
            assert!(one(&rooms, hello(Some("lobby"), None)).await.is_ok());
            let got = one(&rooms, seated(None, seat("ann", "lobby", "node-a", 30_000))).await;
            assert_eq!(code(&got), RejectCode::SeatTokenInvalid);
            // With a secret but not required, a hello without a token still joins.
            let rooms = node(false, Some(secret()), Arc::new(MemoryDirectory::new()));
            assert!(one(&rooms, hello(Some("lobby"), None)).await.is_ok());
        }

        #[tokio::test]
        async fn room_names_held_by_other_nodes_are_not_opened_here() {
            let dir = Arc::new(MemoryDirectory::new());
            let ttl = Duration::from_secs(10);
            for name in ["taken", "room-1", "room-2"] {
                dir.create_room(&RoomInfo::new(name, "node-b"), ttl)
                    .await
                    .unwrap();
            }
            let rooms = node(false, None, dir.clone());
            let got = one(&rooms, hello(Some("taken"), None)).await;
            assert_eq!(code(&got), RejectCode::RoomElsewhere);
            // Unnamed joins skip the auto names other nodes hold.
            let (j, _, _) = one(&rooms, hello(None, None)).await.expect("joined");
            assert_eq!(j.welcome.room, "room-3");
            assert_eq!(dir.room("room-3").await.unwrap().unwrap().node, "node-a");
        }
    }

    /// Rooms with configs of their own: each ticks at its own rate (counted
    /// against tokio's paused, virtual clock), admits its own number of
    /// clients, and a config that cannot work refuses the join that would
    /// open its room, with its typed error, while the others go on.
    mod own_configs {
        use std::sync::atomic::AtomicU32;

        use super::*;
        use crate::RoomConfig;

        /// Counts its room's ticks and remembers the `dt` it was given.
        struct Ticking {
            ticks: Arc<AtomicU32>,
            dt_micros: Arc<AtomicU32>,
        }

        impl Game for Ticking {
            type Protocol = Proto;
            type User = ();
            type View = ();
            fn on_auth(&mut self, _: Option<&str>) -> Result<(), AuthError> {
                Ok(())
            }
            fn on_join(&mut self, _: &mut Ctx<'_, Self>, _: ClientId, (): ()) {}
            fn on_input(&mut self, _: &mut Ctx<'_, Self>, _: ClientId, _: u8, _: crate::InputMeta) {
            }
            fn on_tick(&mut self, _: &mut Ctx<'_, Self>, dt: f32) {
                self.ticks.fetch_add(1, Ordering::Relaxed);
                self.dt_micros
                    .store((dt * 1e6).round() as u32, Ordering::Relaxed);
            }
            fn on_leave(&mut self, _: &mut Ctx<'_, Self>, _: ClientId, _: LeaveReason) {}
        }

        type Counters = Arc<Mutex<HashMap<String, (Arc<AtomicU32>, Arc<AtomicU32>)>>>;

        /// `duel`: 60 Hz, 2 clients; `lobby` (mode `ffa`): 10 Hz, 3 clients,
        /// a snapshot every 2 ticks; `broken`: tick rate 0; any other room:
        /// the default (30 Hz, 4 clients).
        fn node() -> (Arc<Rooms<Ticking>>, Counters) {
            let counters: Counters = Arc::default();
            let made = Arc::clone(&counters);
            let factory = move |name: &str| {
                let mut made = made.lock().unwrap();
                let (ticks, dt) = made.entry(name.to_owned()).or_default();
                Ticking {
                    ticks: Arc::clone(ticks),
                    dt_micros: Arc::clone(dt),
                }
            };
            let config = ServerConfig::default()
                .with_room(RoomConfig::default().with_tick_rate(30).with_max_clients(4))
                .with_fleet(crate::FleetConfig::default().with_mode("ffa"));
            let hook = |room: &RoomSpec<'_>, default: &RoomConfig| match (room.name, room.mode) {
                ("duel", _) => default.clone().with_tick_rate(60).with_max_clients(2),
                ("lobby", "ffa") => default
                    .clone()
                    .with_tick_rate(10)
                    .with_snapshot_interval(2)
                    .with_max_clients(3),
                ("broken", _) => default.clone().with_tick_rate(0),
                _ => default.clone(),
            };
            let rooms = Rooms::new(
                Arc::new(config),
                Box::new(factory),
                Arc::new(StatsCollector::new(std::time::Instant::now())),
                Arc::new(crate::directory::MemoryDirectory::new()),
                None,
                Some(Arc::new(hook)),
            );
            (rooms, counters)
        }

        async fn join(
            rooms: &Arc<Rooms<Ticking>>,
            id: u32,
            room: Option<&str>,
        ) -> Result<(Joined, RoomLink<Ticking>, Arc<Outbox>), Rejection> {
            let outbox = Arc::new(Outbox::new(16, 16));
            let mut token = [0u8; 16];
            token[..4].copy_from_slice(&id.to_le_bytes());
            rooms
                .join(
                    hello(room, None),
                    id,
                    ResumeToken::from_random(token),
                    Arc::clone(&outbox),
                    Arc::default(),
                    AuthRequest::new(([127, 0, 0, 1], 9).into(), "test"),
                )
                .await
                .map(|(j, link)| (j, link, outbox))
        }

        fn ticks(counters: &Counters, room: &str) -> (u32, u32) {
            let counters = counters.lock().unwrap();
            let (ticks, dt) = counters.get(room).expect("room opened");
            (ticks.load(Ordering::Relaxed), dt.load(Ordering::Relaxed))
        }

        #[tokio::test(start_paused = true)]
        async fn each_room_ticks_at_its_own_rate() {
            let (rooms, counters) = node();
            let mut links = Vec::new();
            for (id, room) in [(1, "duel"), (2, "lobby"), (3, "other")] {
                let (j, link, _) = join(&rooms, id, Some(room)).await.expect("joined");
                // The welcome announces the room's own rates.
                let want = match room {
                    "duel" => (60, 1),
                    "lobby" => (10, 2),
                    _ => (30, 1),
                };
                assert_eq!((j.welcome.tick_rate, j.welcome.snapshot_interval), want);
                // The session gets the room's config (its rate limits).
                assert_eq!(link.config.tick_rate, want.0);
                links.push(link);
            }
            let before: Vec<u32> = ["duel", "lobby", "other"]
                .iter()
                .map(|r| ticks(&counters, r).0)
                .collect();
            // Ten seconds of virtual time.
            tokio::time::sleep(Duration::from_secs(10)).await;
            for (i, (room, rate)) in [("duel", 60u32), ("lobby", 10), ("other", 30)]
                .into_iter()
                .enumerate()
            {
                let (after, dt_micros) = ticks(&counters, room);
                let ran = after - before[i];
                assert!(
                    (10 * rate - 1..=10 * rate + 1).contains(&ran),
                    "{room}: {ran} ticks in 10 s at {rate} Hz"
                );
                let want = (1e6 / f64::from(rate)).round() as u32;
                assert_eq!(dt_micros, want, "{room}: dt");
            }
            drop(links);
        }

        #[tokio::test]
        async fn each_room_admits_its_own_capacity() {
            let (rooms, _) = node();
            for (room, capacity) in [("duel", 2), ("lobby", 3)] {
                for id in 0..capacity {
                    let joined = join(&rooms, 10 * capacity + id, Some(room)).await;
                    assert!(joined.is_ok(), "{room}: join {id}: {:?}", joined.err());
                }
                let full = join(&rooms, 99, Some(room)).await;
                let refused = full.as_ref().err().expect("full");
                assert_eq!(refused.code, RejectCode::RoomFull, "{room}");
                assert!(
                    refused.message.contains(&format!("({capacity} players)")),
                    "{room}: {}",
                    refused.message
                );
            }
            let open = rooms.snapshot();
            let capacities: Vec<(&str, usize, usize)> = open
                .iter()
                .map(|r| (r.name.as_str(), r.players, r.capacity))
                .collect();
            assert_eq!(capacities, [("duel", 2, 2), ("lobby", 3, 3)]);
            // Unnamed joins skip the full rooms and open one with the
            // default config.
            let (j, link, _) = join(&rooms, 50, None).await.expect("joined");
            assert_eq!(j.welcome.room, "room-1");
            assert_eq!(link.config.max_clients, 4);
        }

        #[tokio::test]
        async fn an_invalid_room_config_is_refused_with_its_typed_error() {
            let (rooms, _) = node();
            assert_eq!(
                rooms.config_for("broken", "ffa").err(),
                Some(RoomConfigError::TickRate(0))
            );
            let refused = join(&rooms, 1, Some("broken")).await;
            let refused = refused.as_ref().err().expect("refused");
            assert_eq!(refused.code, RejectCode::InvalidRoom);
            assert_eq!(rooms.open_rooms(), 0, "the room did not open");
            // The server goes on: other rooms open and take players.
            assert!(join(&rooms, 2, Some("duel")).await.is_ok());
            let (j, _, _) = join(&rooms, 3, None).await.expect("joined");
            assert_eq!(j.welcome.room, "duel", "the fullest room with space");
            assert_eq!(rooms.open_rooms(), 1);
        }
    }
}
