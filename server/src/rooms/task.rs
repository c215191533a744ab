//! The room task: drives one [`Room`] on its tick schedule, takes the
//! sessions' commands (joins, leaves, messages, kicks, shutdown) between
//! ticks, and closes the room when it has stayed empty past its grace.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tickwire_shared::CloseCode;
use tokio::sync::mpsc;

use super::{RoomCommand, Rooms, draining};
use crate::console::RoomStats;
use crate::game::{Game, LeaveReason};
use crate::metrics as m;
use crate::room::Room;
use crate::tick::TickSchedule;

pub(super) async fn run_room<G: Game>(
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
