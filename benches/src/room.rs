//! `replication-load room`: `Room::tick` alone, in process, without sockets.
//!
//! N clients join a [`Room`] through real [`Outbox`]es; after every tick each
//! client's snapshot is taken out of its outbox and acknowledged, so the next
//! tick builds deltas against a one-tick-old baseline, as on loopback. Ticks
//! run back to back (no 60 Hz pacing): the figures are the CPU cost of a
//! tick, for profiling the room apart from TLS, sockets and the runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use clap::Args;
use hdrhistogram::Histogram;
use tickwire_server::RoomConfig;
use tickwire_server::outbox::Outbox;
use tickwire_server::room::{JoinRequest, Room};
use tickwire_shared::{ClientMessage, GameProtocol, Hello, Limits, ResumeToken, ServerMessage};

use crate::game::{BenchGame, BenchProto};
use crate::server::Scenario;

/// `replication-load room`.
#[derive(Args, Debug)]
pub(crate) struct RoomArgs {
    #[command(flatten)]
    scenario: Scenario,
    /// Clients in the room.
    #[arg(long, default_value_t = 500)]
    clients: usize,
    /// Ticks measured (after 60 warm-up ticks).
    #[arg(long, default_value_t = 600)]
    ticks: u32,
    /// Spread the clients' acknowledgements over this many ticks: client
    /// `i` acknowledges the snapshot of `i % spread` ticks ago, so the room
    /// diffs against `spread` distinct baselines per tick (1: every client
    /// acknowledges the newest snapshot).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=32))]
    ack_spread: u32,
    /// Write patches through serde's flattener instead of the game's
    /// derived field diff (`RoomConfig::field_diff` off).
    #[arg(long)]
    serde_diff: bool,
    /// Send every snapshot full (`RoomConfig::deltas` off).
    #[arg(long)]
    full_snapshots: bool,
    /// `RoomConfig::baseline_snap`: how many snapshots older than its
    /// newest ack a client's baseline may be, to share it (0: always the
    /// newest).
    #[arg(long, default_value_t = RoomConfig::default().baseline_snap)]
    baseline_snap: u16,
    /// Clients that read slowly, as a fraction of `--clients` (the first
    /// ones): each takes what its outbox holds only every `--slow-every`
    /// ticks, as a session whose socket drains that often.
    #[arg(long, default_value_t = 0.0)]
    slow_fraction: f64,
    /// How often (ticks) a slow client reads.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    slow_every: u32,
    /// `RoomConfig::max_snapshot_slowdown` (1: clients that fall behind
    /// are not slowed down).
    #[arg(long, default_value_t = RoomConfig::default().max_snapshot_slowdown)]
    max_slowdown: u16,
}

pub(crate) fn run(args: RoomArgs) -> Result<()> {
    let config = RoomConfig::default()
        .with_tick_rate(args.scenario.tick_rate)
        .with_snapshot_interval(args.scenario.snapshot_interval)
        .with_field_diff(!args.serde_diff)
        .with_deltas(!args.full_snapshots)
        .with_baseline_snap(args.baseline_snap)
        .with_max_snapshot_slowdown(args.max_slowdown)
        .with_max_clients(args.clients.max(1));
    let period = config.tick_period();
    let game = BenchGame::new(args.scenario.world());
    let mut room = Room::new("bench", game, Arc::new(config), &Limits::default());
    let mut outboxes = Vec::with_capacity(args.clients);
    let mut now = Duration::ZERO;
    for i in 0..args.clients {
        let outbox = Arc::new(Outbox::new(256, 1_000_000));
        let id = u32::try_from(i + 1)?;
        let mut token = [0u8; 16];
        token[..4].copy_from_slice(&id.to_le_bytes());
        let req = JoinRequest {
            hello: Hello::new(BenchProto::PROTOCOL_HASH),
            client_id: id,
            new_token: ResumeToken::from_random(token),
            outbox: Arc::clone(&outbox),
            rtt: Arc::default(),
        };
        room.join(now, req)
            .map_err(|r| anyhow!("join refused: {}", r.message))?;
        outboxes.push((id, outbox));
    }
    let mut limits = Limits::default();
    limits.max_server_message_bytes = usize::MAX;
    let slow = (args.clients as f64 * args.slow_fraction.clamp(0.0, 1.0)).round() as usize;
    let mut hist = Histogram::<u64>::new_with_bounds(100, 60_000_000_000, 3)?;
    let (mut bytes, mut snaps) = (0u64, 0u64);
    let t0 = Instant::now();
    for n in 0..60 + args.ticks {
        now += period;
        let start = Instant::now();
        room.tick(now);
        let took = start.elapsed();
        let tick = room.tick_count();
        for (i, (id, outbox)) in outboxes.iter().enumerate() {
            if i < slow && !n.is_multiple_of(args.slow_every) {
                continue;
            }
            let batch = outbox.take();
            let lag = u32::try_from(i)? % args.ack_spread;
            if let Some(s) = batch.snapshot {
                if n >= 60 {
                    bytes += s.len() as u64;
                    snaps += 1;
                }
                // A slow reader acknowledges the snapshot it took, which
                // may be older than this tick.
                let took = match ServerMessage::<()>::decode(&s, &limits) {
                    Ok(ServerMessage::Snapshot(f)) => f.header.tick,
                    _ => return Err(anyhow!("the outbox held something else than a snapshot")),
                };
                room.handle(
                    now,
                    *id,
                    ClientMessage::Ack {
                        snapshot_tick: took.min(tick.saturating_sub(lag)),
                    },
                );
            }
        }
        if n >= 60 {
            hist.saturating_record(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let us = |ns: u64| ns as f64 / 1e3;
    println!(
        "room: {} clients ({slow} reading every {} ticks, slowdown up to {}), visibility={}, {}, \
         ack spread {}, baseline snap {}, {} diff, {} ticks in {wall:.2} s",
        args.clients,
        args.slow_every,
        args.max_slowdown,
        args.scenario.visibility,
        if args.full_snapshots {
            "full snapshots"
        } else {
            "deltas"
        },
        args.ack_spread,
        args.baseline_snap,
        if args.serde_diff { "serde" } else { "derived" },
        args.ticks
    );
    println!(
        "tick mean={:.1} µs p50={:.1} µs p99={:.1} µs max={:.1} µs; {:.2} µs per client per tick; \
         {:.0} bytes per client per snapshot",
        hist.mean() / 1e3,
        us(hist.value_at_quantile(0.5)),
        us(hist.value_at_quantile(0.99)),
        us(hist.max()),
        hist.mean() / 1e3 / args.clients.max(1) as f64,
        bytes as f64 / snaps.max(1) as f64,
    );
    Ok(())
}
