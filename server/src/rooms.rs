//! The room registry: rooms by name, matchmaking, resume tokens, and the
//! room task that drives each [`Room`] on its tick schedule.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tickwire_shared::handshake::Rejection;
use tickwire_shared::{ClientMessage, Hello, RejectCode, ResumeToken};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::config::ServerConfig;
use crate::game::{ClientId, Game, InputOf, LeaveReason};
use crate::metrics as m;
use crate::outbox::Outbox;
use crate::room::{JoinRequest, Joined, Room};
use crate::stats::StatsCollector;
use crate::tick::TickSchedule;

/// A command from a session to its room.
pub(crate) enum RoomCommand<G: Game> {
    Join {
        req: JoinRequest,
        reply: oneshot::Sender<Result<Joined, Rejection>>,
    },
    Message {
        client: ClientId,
        msg: ClientMessage<InputOf<G>>,
    },
    Disconnected {
        client: ClientId,
        outbox: Arc<Outbox>,
        reason: LeaveReason,
    },
    Shutdown,
}

struct RoomHandle<G: Game> {
    tx: mpsc::Sender<RoomCommand<G>>,
    players: Arc<AtomicUsize>,
}

impl<G: Game> Clone for RoomHandle<G> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            players: Arc::clone(&self.players),
        }
    }
}

struct Inner<G: Game> {
    rooms: HashMap<String, RoomHandle<G>>,
    tokens: HashMap<ResumeToken, String>,
    next_auto: u64,
    closing: bool,
}

/// The set of rooms of one server.
pub(crate) struct Rooms<G: Game> {
    inner: Mutex<Inner<G>>,
    factory: Box<dyn Fn(&str) -> G + Send + Sync>,
    config: Arc<ServerConfig>,
    epoch: Instant,
    stats: Arc<StatsCollector>,
}

/// Longest room name accepted from a client.
const MAX_ROOM_NAME: usize = 32;

fn valid_room_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ROOM_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl<G: Game> Rooms<G> {
    pub(crate) fn new(
        config: Arc<ServerConfig>,
        factory: Box<dyn Fn(&str) -> G + Send + Sync>,
        stats: Arc<StatsCollector>,
    ) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                rooms: HashMap::new(),
                tokens: HashMap::new(),
                next_auto: 1,
                closing: false,
            }),
            factory,
            config,
            epoch: Instant::now(),
            stats,
        })
    }

    /// The server's statistics window.
    pub(crate) fn stats(&self) -> &StatsCollector {
        &self.stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<G>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Time since the registry started: the rooms' clock.
    pub(crate) fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Picks (or creates) the room for `hello` and joins it.
    pub(crate) async fn join(
        self: &Arc<Self>,
        hello: Hello,
        client_id: ClientId,
        new_token: ResumeToken,
        outbox: Arc<Outbox>,
    ) -> Result<(Joined, mpsc::Sender<RoomCommand<G>>), Rejection> {
        // A room may close between lookup and join; try again once.
        for _ in 0..2 {
            let handle = self.pick(&hello)?;
            let (reply, rx) = oneshot::channel();
            let req = JoinRequest {
                hello: hello.clone(),
                client_id,
                new_token,
                outbox: Arc::clone(&outbox),
            };
            if handle
                .tx
                .send(RoomCommand::Join { req, reply })
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
                    return Ok((joined, handle.tx));
                }
                Ok(Err(rejection)) => return Err(rejection),
                Err(_) => continue,
            }
        }
        Err(Rejection {
            code: RejectCode::ServerFull,
            message: "could not join a room; try again".to_owned(),
        })
    }

    fn pick(self: &Arc<Self>, hello: &Hello) -> Result<RoomHandle<G>, Rejection> {
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
                let max = self.config.max_players_per_room;
                // The fullest room that still has space keeps rooms lively.
                let best = inner
                    .rooms
                    .iter()
                    .map(|(n, h)| (n, h.players.load(Ordering::Relaxed)))
                    .filter(|(_, p)| *p < max)
                    .max_by_key(|(n, p)| (*p, core::cmp::Reverse((*n).clone())))
                    .map(|(n, _)| n.clone());
                match best {
                    Some(n) => n,
                    None => loop {
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
            return Ok(h.clone());
        }
        if inner.rooms.len() >= self.config.max_rooms {
            return Err(Rejection {
                code: RejectCode::ServerFull,
                message: format!(
                    "the server hosts its maximum of {} rooms",
                    self.config.max_rooms
                ),
            });
        }
        let (tx, rx) = mpsc::channel(self.config.room_channel_capacity);
        let handle = RoomHandle {
            tx,
            players: Arc::new(AtomicUsize::new(0)),
        };
        inner.rooms.insert(name.clone(), handle.clone());
        drop(inner);
        let room = Room::new(
            name.clone(),
            (self.factory)(&name),
            Arc::clone(&self.config),
        );
        m::rooms(1.0);
        tracing::info!(room = %name, "room opened");
        tokio::spawn(run_room(
            Arc::clone(self),
            room,
            rx,
            Arc::clone(&handle.players),
        ));
        Ok(handle)
    }
}

/// The type-erased part of [`Rooms`] that the running server needs.
pub(crate) trait RoomsControl: Send + Sync {
    /// Tells every room to close its sessions; refuses new joins.
    fn shutdown(&self);
    /// Number of open rooms.
    fn room_count(&self) -> usize;
}

impl<G: Game> RoomsControl for Rooms<G> {
    fn shutdown(&self) {
        let mut inner = self.lock();
        inner.closing = true;
        for h in inner.rooms.values() {
            // A full channel means the room is busy; its sessions still see
            // the server's shutdown signal themselves.
            let _ = h.tx.try_send(RoomCommand::Shutdown);
        }
    }

    fn room_count(&self) -> usize {
        self.lock().rooms.len()
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
        rx: &mpsc::Receiver<RoomCommand<G>>,
    ) -> bool {
        let mut inner = self.lock();
        if players.load(Ordering::Relaxed) > 0 || !rx.is_empty() {
            return false;
        }
        inner.rooms.remove(name);
        inner.tokens.retain(|_, room| room != name);
        true
    }
}

async fn run_room<G: Game>(
    rooms: Arc<Rooms<G>>,
    mut room: Room<G>,
    mut rx: mpsc::Receiver<RoomCommand<G>>,
    players: Arc<AtomicUsize>,
) {
    let period = rooms.config.tick_period();
    let mut schedule = TickSchedule::new(rooms.now(), period);
    let mut shutting_down = false;
    loop {
        let deadline = rooms.epoch + schedule.next_deadline();
        // Handle commands as they arrive until the tick is due.
        loop {
            tokio::select! {
                biased;
                () = tokio::time::sleep_until(deadline) => break,
                cmd = rx.recv() => match cmd {
                    Some(cmd) => {
                        if handle_command(&rooms, &mut room, cmd) {
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
        rooms
            .stats
            .record_tick(took, period, start.overrun, room.take_sent());
        rooms.forget(room.take_forgotten_tokens());
        players.store(room.client_count(), Ordering::Relaxed);
        let idle = room
            .empty_for(now)
            .is_some_and(|d| d >= rooms.config.empty_room_grace);
        if (shutting_down || idle)
            && room.client_count() == 0
            && rooms.close_if_empty(room.name(), &players, &rx)
        {
            tracing::info!(room = %room.name(), "room closed");
            m::rooms(-1.0);
            return;
        }
    }
}

/// Returns true on shutdown.
fn handle_command<G: Game>(rooms: &Rooms<G>, room: &mut Room<G>, cmd: RoomCommand<G>) -> bool {
    let now = rooms.now();
    match cmd {
        RoomCommand::Join { req, reply } => {
            let outbox = Arc::clone(&req.outbox);
            let result = room.join(now, req);
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
        } => room.disconnect(now, client, &outbox, reason),
        RoomCommand::Shutdown => {
            room.shutdown(now);
            return true;
        }
    }
    false
}
