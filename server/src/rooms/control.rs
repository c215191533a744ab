//! What the running server and the fleet console ask of the registry:
//! [`RoomsControl`] (drain, shutdown, counts, a snapshot of the open rooms)
//! and [`ConsoleControl`] (room and client rows, kick, close), plus the
//! per-session entries the console reads.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, watch};

use super::{ClientEntry, OpenRoom, RoomCommand, RoomHandle, Rooms};
use crate::console::{ClientRow, ClientStats, ControlError, RoomRow};
use crate::game::{ClientId, Game};
use crate::outbox::Outbox;
use crate::room::Joined;

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
    pub(super) fn console_clients(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<ClientId, ClientEntry>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn room_tx(&self, name: &str) -> Result<mpsc::Sender<RoomCommand<G>>, ControlError> {
        self.lock()
            .rooms
            .get(name)
            .map(|h| h.tx.clone())
            .ok_or_else(|| ControlError::RoomNotFound(name.to_owned()))
    }

    /// Registers a joined session for the console (a resume replaces the
    /// entry of the connection it replaces).
    pub(super) fn register_client(&self, joined: &Joined, outbox: &Arc<Outbox>) {
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
    pub(super) fn unregister_client(&self, client: ClientId, outbox: &Arc<Outbox>) {
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
    pub(super) fn room_outboxes(&self, name: &str) -> Vec<(ClientId, Arc<Outbox>)> {
        self.console_clients()
            .iter()
            .filter(|(_, c)| c.room == name)
            .map(|(id, c)| (*id, Arc::clone(&c.outbox)))
            .collect()
    }
}
