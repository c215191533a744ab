//! `arena-bots`: a load generator for the arena. Runs N concurrent native
//! clients (`tickwire-client`) in one process; each plays (random walk, aims
//! at the nearest living player it sees, fires) at 60 inputs/s and applies
//! every snapshot. Prints progress each second and a report at the end; any
//! desync (missing baseline, decode error) makes it exit non-zero.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use arena::cli::parse_duration;
use arena::{Arena, ArenaEvent, EntityKind, EntityState, PlayerInput, buttons};
use clap::Parser;
use hdrhistogram::Histogram;
use tickwire_client::{Client, ClientError, ClientEvent, ConnectOptions, Trust};
use tickwire_shared::conditioner::ConditionerConfig;
use tickwire_shared::quantize::Angle16;
use tickwire_shared::{CloseCode, NetId, Snapshot};
use tokio::sync::Semaphore;
use tokio::time::{Instant, MissedTickBehavior};

/// Load generator for the tickwire arena: N bots over WSS in one process.
#[derive(Parser, Debug, Clone)]
#[command(version, about, long_about = None)]
struct Args {
    /// Server WebSocket URL (wss://, or ws:// for a --plain server).
    #[arg(long, default_value = "wss://127.0.0.1:8443/ws")]
    url: String,

    /// Number of concurrent bots.
    #[arg(long, default_value_t = 10)]
    bots: u32,

    /// How long to run, e.g. `30s`, `500ms`, `2m`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,

    /// Spread the bots' connects over this long.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    ramp: Duration,

    /// Trust the server certificate(s) in this PEM file.
    #[arg(long, conflicts_with = "insecure_dev_cert")]
    ca_cert: Option<PathBuf>,

    /// Accept ANY server certificate. Local development only: the
    /// connection is not authenticated.
    #[arg(long)]
    insecure_dev_cert: bool,

    /// Simulate a bad network on the bots' side, e.g.
    /// `latency=50ms,jitter=5ms,loss=2%`: applied to inbound snapshots
    /// (before decoding) and outbound inputs (before sending). Reliable
    /// messages (events, acks, pings) are not conditioned.
    #[arg(long)]
    conditioner: Option<ConditionerConfig>,

    /// Print the final report as JSON (on stdout).
    #[arg(long)]
    json: bool,

    /// Soak mode: each bot plays 2–5 s, then alternately leaves and connects
    /// anew, or drops the connection and resumes; repeat until the end.
    #[arg(long)]
    churn: bool,

    /// At most this many connects (TCP + TLS + handshake) in flight.
    #[arg(long, default_value_t = 32)]
    max_connecting: usize,

    /// Seed for the bots' random walks and the conditioner.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Counters shared by all bots (the progress line reads them).
#[derive(Default)]
struct Counters {
    connected_now: AtomicU64,
    connects: AtomicU64,
    failed: AtomicU64,
    snapshots: AtomicU64,
    bytes: AtomicU64,
    desyncs: AtomicU64,
    abnormal_closes: AtomicU64,
    resumed: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Counters {
    fn error(&self, msg: String) {
        let mut e = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        if e.len() < 10 {
            e.push(msg);
        }
    }
}

/// What one bot measured.
struct BotResult {
    /// Snapshot inter-arrival time, µs.
    interval: Histogram<u64>,
    /// |inter-arrival − nominal interval|, µs.
    jitter: Histogram<u64>,
    /// Input sent → first snapshot acknowledging it, µs.
    ack_latency: Histogram<u64>,
    /// Time spent connected.
    connected_for: Duration,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// A tiny deterministic PRNG (xorshift64*), one per bot.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The bot's brain: a random walk, re-planned every 0.3–1 s, aiming at and
/// firing on the nearest living player in its applied snapshot.
struct Brain {
    rng: Rng,
    me: Option<NetId>,
    heading: u8,
    replan_at: Instant,
}

const DIRS: [u8; 8] = [
    buttons::RIGHT,
    buttons::RIGHT | buttons::DOWN,
    buttons::DOWN,
    buttons::DOWN | buttons::LEFT,
    buttons::LEFT,
    buttons::LEFT | buttons::UP,
    buttons::UP,
    buttons::UP | buttons::RIGHT,
];

impl Brain {
    fn input(&mut self, now: Instant, world: Option<&Snapshot<EntityState>>) -> PlayerInput {
        if now >= self.replan_at {
            self.heading = DIRS[self.rng.below(8) as usize];
            self.replan_at = now + Duration::from_millis(300 + self.rng.below(700));
        }
        let mut input = PlayerInput {
            buttons: self.heading,
            aim: Angle16(0),
        };
        let (Some(world), Some(me)) = (world, self.me) else {
            return input;
        };
        let Some(mine) = world.get(me) else {
            return input;
        };
        let from = mine.pos.to_vec2();
        let target = world
            .iter()
            .filter(|&(id, s)| id != me && s.kind == EntityKind::Player && s.health > 0)
            .map(|(_, s)| s.pos.to_vec2())
            .min_by(|a, b| {
                a.distance_squared(from)
                    .total_cmp(&b.distance_squared(from))
            });
        if let Some(t) = target {
            let d = t - from;
            input.aim = Angle16::from_radians(d.y.atan2(d.x));
            input.buttons |= buttons::FIRE;
        }
        input
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.bots == 0 {
        bail!("--bots must be at least 1");
    }
    let trust = match (&args.ca_cert, args.insecure_dev_cert) {
        (Some(path), _) => Trust::PemFile(path.clone()),
        (None, true) => Trust::InsecureDevCertificate,
        (None, false) if args.url.starts_with("ws://") => Trust::InsecureDevCertificate,
        (None, false) => bail!(
            "say which certificate to trust: --ca-cert FILE, or --insecure-dev-cert for a local self-signed server"
        ),
    };
    // Fail fast on a bad certificate file or URL before starting N bots.
    tickwire_client::connect::tls_config(&trust).context("TLS configuration")?;
    tickwire_client::Endpoint::parse(&args.url)?;

    let counters = Arc::new(Counters::default());
    let connecting = Arc::new(Semaphore::new(args.max_connecting.max(1)));
    let start = Instant::now();
    let stop = start + args.duration;

    let progress = tokio::spawn(progress_lines(Arc::clone(&counters), start, stop));
    let mut tasks = Vec::with_capacity(args.bots as usize);
    for i in 0..args.bots {
        let at = start + args.ramp.mul_f64(f64::from(i) / f64::from(args.bots));
        tasks.push(tokio::spawn(run_bot(
            i,
            args.clone(),
            trust.clone(),
            Arc::clone(&counters),
            Arc::clone(&connecting),
            at,
            stop,
        )));
    }
    let (mut interval, mut jitter, mut ack) = (histogram(), histogram(), histogram());
    let mut connected_secs = 0.0;
    for t in tasks {
        let r = t.await.context("bot task panicked")?;
        interval.add(&r.interval).ok();
        jitter.add(&r.jitter).ok();
        ack.add(&r.ack_latency).ok();
        connected_secs += r.connected_for.as_secs_f64();
    }
    progress.abort();
    let elapsed = start.elapsed().as_secs_f64();

    let c = &counters;
    let per_bot_sec = |v: u64| {
        if connected_secs > 0.0 {
            v as f64 / connected_secs
        } else {
            0.0
        }
    };
    let ms = |h: &Histogram<u64>, q: f64| {
        if h.is_empty() {
            None
        } else {
            Some(h.value_at_quantile(q) as f64 / 1000.0)
        }
    };
    let report = serde_json::json!({
        "url": args.url,
        "bots": args.bots,
        "duration_s": elapsed,
        "churn": args.churn,
        "conditioner": args.conditioner.as_ref().map(ToString::to_string),
        "connects": c.connects.load(Relaxed),
        "resumed": c.resumed.load(Relaxed),
        "failed": c.failed.load(Relaxed),
        "abnormal_closes": c.abnormal_closes.load(Relaxed),
        "desync_errors": c.desyncs.load(Relaxed),
        "snapshots": c.snapshots.load(Relaxed),
        "snapshots_per_bot_per_s": per_bot_sec(c.snapshots.load(Relaxed)),
        "bytes_per_bot_per_s": per_bot_sec(c.bytes.load(Relaxed)),
        "snapshot_interval_ms": { "p50": ms(&interval, 0.5), "p99": ms(&interval, 0.99) },
        "snapshot_jitter_ms": { "p50": ms(&jitter, 0.5), "p99": ms(&jitter, 0.99) },
        "input_ack_latency_ms": { "p50": ms(&ack, 0.5), "p99": ms(&ack, 0.99), "samples": ack.len() },
        "errors": *c.errors.lock().unwrap_or_else(|p| p.into_inner()),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let f = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
        println!("arena-bots report ({elapsed:.1} s, {} bots)", args.bots);
        println!(
            "  connects {}  (resumed {})  failed {}  abnormal closes {}",
            c.connects.load(Relaxed),
            c.resumed.load(Relaxed),
            c.failed.load(Relaxed),
            c.abnormal_closes.load(Relaxed)
        );
        println!(
            "  snapshots/s per bot {:.1}   bytes/s per bot {:.0}",
            per_bot_sec(c.snapshots.load(Relaxed)),
            per_bot_sec(c.bytes.load(Relaxed))
        );
        println!(
            "  snapshot interval p50 {} ms  p99 {} ms;  jitter p50 {} ms  p99 {} ms",
            f(ms(&interval, 0.5)),
            f(ms(&interval, 0.99)),
            f(ms(&jitter, 0.5)),
            f(ms(&jitter, 0.99))
        );
        println!(
            "  input→ack latency p50 {} ms  p99 {} ms  ({} samples)",
            f(ms(&ack, 0.5)),
            f(ms(&ack, 0.99)),
            ack.len()
        );
        println!("  desync errors {}", c.desyncs.load(Relaxed));
        for e in c.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            println!("  error: {e}");
        }
    }
    if c.desyncs.load(Relaxed) > 0 {
        bail!("{} desync error(s)", c.desyncs.load(Relaxed));
    }
    Ok(())
}

async fn progress_lines(c: Arc<Counters>, start: Instant, stop: Instant) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let (mut snaps, mut bytes) = (0, 0);
    loop {
        tick.tick().await;
        let (s, b) = (c.snapshots.load(Relaxed), c.bytes.load(Relaxed));
        eprintln!(
            "[{:>4.0}s] connected {:>5}  failed {:>4}  snapshots/s {:>7}  KB/s {:>9.1}{}",
            start
                .elapsed()
                .as_secs_f64()
                .min((stop - start).as_secs_f64()),
            c.connected_now.load(Relaxed),
            c.failed.load(Relaxed),
            s - snaps,
            (b - bytes) as f64 / 1024.0,
            match c.desyncs.load(Relaxed) {
                0 => String::new(),
                n => format!("  DESYNC {n}"),
            }
        );
        (snaps, bytes) = (s, b);
    }
}

/// One bot: connect (bounded), play until `stop` (or, churning, for 2–5 s
/// and again), and measure.
async fn run_bot(
    i: u32,
    args: Args,
    trust: Trust,
    c: Arc<Counters>,
    connecting: Arc<Semaphore>,
    start_at: Instant,
    stop: Instant,
) -> BotResult {
    tokio::time::sleep_until(start_at).await;
    let mut result = BotResult {
        interval: histogram(),
        jitter: histogram(),
        ack_latency: histogram(),
        connected_for: Duration::ZERO,
    };
    let seed = args.seed ^ (u64::from(i) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(seed | 1);
    let mut options = ConnectOptions::new(trust).with_auth_token(format!("bot{i}"));
    if let Some(cfg) = &args.conditioner {
        options = options.with_conditioner(cfg.clone(), seed);
    }
    let mut client: Option<Client<Arena>> = None;
    let mut cycle = 0u64;
    while Instant::now() < stop {
        // Connect: fresh, or (churn, odd cycles) resume the previous session.
        let resume = client.is_some();
        let connected = {
            let Ok(_permit) = connecting.acquire().await else {
                break;
            };
            let budget = stop.saturating_duration_since(Instant::now());
            let attempt = async {
                match client.take() {
                    Some(mut old) => match old.reconnect().await {
                        Ok(_) => Ok(old),
                        Err(e) => Err(e),
                    },
                    None => Client::<Arena>::connect(&args.url, options.clone()).await,
                }
            };
            match tokio::time::timeout(budget, attempt).await {
                Ok(r) => r,
                Err(_) => break,
            }
        };
        let mut bot = match connected {
            Ok(b) => b,
            Err(e) => {
                c.failed.fetch_add(1, Relaxed);
                note(&c, &e, i);
                if !args.churn {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        c.connects.fetch_add(1, Relaxed);
        if resume && bot.welcome().resumed {
            c.resumed.fetch_add(1, Relaxed);
        }
        c.connected_now.fetch_add(1, Relaxed);
        let began = Instant::now();
        let until = if args.churn {
            stop.min(began + Duration::from_millis(2000 + rng.below(3000)))
        } else {
            stop
        };
        let brain = Brain {
            rng: Rng(rng.next() | 1),
            me: None,
            heading: 0,
            replan_at: began,
        };
        let alive = play(&mut bot, brain, until, &c, &mut result, i).await;
        c.connected_now.fetch_sub(1, Relaxed);
        result.connected_for += began.elapsed();
        if !alive {
            if !args.churn {
                break;
            }
            continue;
        }
        cycle += 1;
        if args.churn && Instant::now() < stop && cycle % 2 == 1 {
            // Drop the connection and resume it next.
            client = Some(bot);
        } else if let Err(e) = bot.leave().await {
            note(&c, &e, i);
        }
        if !args.churn {
            break;
        }
    }
    result
}

fn note(c: &Counters, e: &ClientError, bot: u32) {
    if e.is_desync() {
        c.desyncs.fetch_add(1, Relaxed);
    }
    c.error(format!("bot{bot}: {e}"));
}

/// Plays until `until`. Returns false when the session ended or failed.
async fn play(
    client: &mut Client<Arena>,
    mut brain: Brain,
    until: Instant,
    c: &Counters,
    r: &mut BotResult,
    i: u32,
) -> bool {
    let w = client.welcome();
    let nominal = Duration::from_secs_f64(f64::from(w.snapshot_interval) / f64::from(w.tick_rate));
    let mut inputs = tokio::time::interval(Duration::from_micros(16_667));
    inputs.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut sent: VecDeque<(u32, Instant)> = VecDeque::new();
    let mut world: Option<Arc<Snapshot<EntityState>>> = None;
    let mut last_snapshot: Option<Instant> = None;
    let mut bytes_seen = 0;
    let end = tokio::time::sleep_until(until);
    tokio::pin!(end);
    loop {
        tokio::select! {
            () = &mut end => return true,
            _ = inputs.tick() => {
                let input = brain.input(Instant::now(), world.as_deref());
                match client.send_input(input).await {
                    Ok(seq) => {
                        sent.push_back((seq, Instant::now()));
                        while sent.len() > 256 {
                            sent.pop_front();
                        }
                    }
                    Err(e) => {
                        note(c, &e, i);
                        c.abnormal_closes.fetch_add(1, Relaxed);
                        return false;
                    }
                }
            }
            ev = client.next_event() => {
                let now = Instant::now();
                let b = client.stats().bytes_received;
                c.bytes.fetch_add(b - bytes_seen, Relaxed);
                bytes_seen = b;
                match ev {
                    Ok(ClientEvent::Snapshot { snapshot, last_input, .. }) => {
                        c.snapshots.fetch_add(1, Relaxed);
                        if let Some(prev) = last_snapshot {
                            let dt = now - prev;
                            let us = |d: Duration| (d.as_micros() as u64).max(1);
                            r.interval.saturating_record(us(dt));
                            r.jitter.saturating_record(us(dt.abs_diff(nominal)));
                        }
                        last_snapshot = Some(now);
                        while let Some(&(seq, at)) = sent.front() {
                            if seq > last_input {
                                break;
                            }
                            r.ack_latency.saturating_record(((now - at).as_micros() as u64).max(1));
                            sent.pop_front();
                        }
                        world = Some(snapshot);
                    }
                    Ok(ClientEvent::Events(events)) => {
                        for e in events {
                            if let ArenaEvent::YouAre { entity } = e {
                                brain.me = Some(entity);
                            }
                        }
                    }
                    Ok(ClientEvent::Pong { .. }) => {}
                    Ok(ClientEvent::Closed { code, reason }) => {
                        if code != CloseCode::Normal {
                            c.abnormal_closes.fetch_add(1, Relaxed);
                            c.error(format!("bot{i}: closed by the server: {code}: {reason}"));
                        }
                        return false;
                    }
                    Err(e) => {
                        note(c, &e, i);
                        return false;
                    }
                }
            }
        }
    }
}
