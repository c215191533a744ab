//! `arena-bots`: a load generator for the arena. Runs N concurrent native
//! clients (`tickwire-client`) in one process; each plays (random walk, aims
//! at the nearest living player it sees, fires) at 60 inputs/s and applies
//! every snapshot (or, with `--idle`, only applies snapshots). Prints
//! progress each second and a report at the end; any desync (missing
//! baseline, decode error) makes it exit non-zero.
//!
//! Measurements cover the time after `--warmup`: snapshot inter-arrival
//! times, input→ack latency, staleness (see [`STALENESS`]), bytes, and the
//! entities per snapshot (a sample of snapshots is compared with the one
//! before it to count the entities that changed).

#[path = "arena-bots/brain.rs"]
mod brain;
#[path = "arena-bots/measure.rs"]
mod measure;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use arena::cli::parse_duration;
use arena::{Arena, ArenaEvent};
use clap::Parser;
use hdrhistogram::Histogram;
use tickwire_client::matchmake::{MatchmakeRequest, matchmake};
use tickwire_client::{AckPolicy, Client, ClientError, ClientEvent, ConnectOptions, Trust};
use tickwire_shared::CloseCode;
use tickwire_shared::conditioner::ConditionerConfig;
use tokio::sync::Semaphore;
use tokio::time::{Instant, MissedTickBehavior};

use brain::{Brain, Rng};
use measure::{Counters, STALENESS, Watch, measure_snapshot, progress_lines};

/// Load generator for the tickwire arena: N bots over WSS in one process.
#[derive(Parser, Debug, Clone)]
#[command(version, about, long_about = None)]
struct Args {
    /// Server WebSocket URL (wss://, or ws:// for a --plain server).
    #[arg(long, default_value = "wss://127.0.0.1:8443/ws")]
    url: String,

    /// Matchmake through this node of a fleet (`https://host:port`, or
    /// `http://` for a --plain node) instead of connecting to --url: each
    /// bot asks `POST /matchmake` for a room of --mode (or --room), then
    /// connects to the node it names with its seat token. One URL reaches
    /// the whole fleet; --ca-cert must then trust every node.
    #[arg(long)]
    matchmake: Option<String>,

    /// With --matchmake: the game mode to ask for.
    #[arg(long, default_value = "")]
    mode: String,

    /// With --matchmake: a room by name instead of a mode.
    #[arg(long)]
    room: Option<String>,

    /// With --matchmake: a bot whose session ends for any reason but its
    /// own leave (its node died or drained, the connection dropped) or
    /// whose matchmake or connect fails matchmakes again, after a pause
    /// (the matchmaker's `Retry-After` on a 503, else 0.5 s), until the end
    /// of the run: what a game client does to survive the loss of a node.
    #[arg(long, requires = "matchmake", conflicts_with = "churn")]
    rematchmake: bool,

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

    /// Measure only after this long from the start (the ramp and the first
    /// full snapshots are then left out of the report).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    warmup: Duration,

    /// Idle bots: connect and join, then send no inputs; snapshots are still
    /// applied and acknowledged and pings answered (as a connected player
    /// who does nothing).
    #[arg(long, conflicts_with = "churn")]
    idle: bool,

    /// When playing bots write their inputs. `tick`: one write per input,
    /// every 16.7 ms, and one per ack (a 60 Hz client). `with-ack`: a bot
    /// makes one input per server tick and sends those made since the last
    /// snapshot in one message, with that snapshot's ack, in one write (a
    /// client whose send rate is its snapshot rate: fewer messages for the
    /// server, inputs up to a snapshot interval later).
    #[arg(long, value_enum, default_value_t = InputSend::Tick)]
    input_send: InputSend,

    /// 1 (the default): acknowledge every snapshot at once, the default
    /// policy of every tickwire client. N > 1: `AckPolicy::DELAYED` with
    /// this count (a bot that sends no input acks on its own once per N
    /// snapshot intervals, on ticks every such bot shares, or after 50 ms;
    /// a pending ack rides with the next inputs), for comparing the two.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    ack_every: u32,

    /// Playing bots with `--input-send tick`: acknowledge each snapshot
    /// together with the next input, at most one input period (16.7 ms)
    /// later, instead of in a write of its own (`AckPolicy { every: 2,
    /// max_delay: 16.7 ms }`): two writes per snapshot instead of three. At
    /// up to 30 snapshots/s the ack still reaches the server before it
    /// builds the client's next snapshot, so every bot acks the same ticks.
    #[arg(long, conflicts_with_all = ["ack_every", "idle"])]
    ack_with_input: bool,

    /// Do not ask for implicit acks (PROTOCOL.md §8.7): acknowledge every
    /// snapshot with an `Ack` over WSS too, as clients that predate them
    /// do (for comparing the two, or for a server that predates them). By
    /// default a WSS server grants them and the bots send no acks.
    #[arg(long)]
    explicit_acks: bool,

    /// Runtime threads. 1: tokio's current-thread runtime, every bot on one
    /// thread (nothing is handed between threads; pin the process to one
    /// core with `taskset`). N > 1: the multi-thread runtime with N workers,
    /// for a generator given N cores.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    threads: u32,
}

/// See `--input-send`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum InputSend {
    WithAck,
    Tick,
}

/// The period of the bots' inputs (the arena's tick).
const INPUT_PERIOD: Duration = Duration::from_micros(16_667);

/// At most this many inputs go out with one ack: a bot that stalled longer
/// skips the missed ticks instead of sending a burst.
const MAX_INPUTS_PER_ACK: u32 = 8;

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = match args.threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n as usize)
            .enable_all()
            .build(),
    }
    .context("starting the tokio runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    if args.bots == 0 {
        bail!("--bots must be at least 1");
    }
    if args.ack_with_input && args.input_send != InputSend::Tick {
        bail!("--ack-with-input needs --input-send tick");
    }
    let trust = match (&args.ca_cert, args.insecure_dev_cert) {
        (Some(path), _) => Trust::PemFile(path.clone()),
        (None, true) => Trust::InsecureDevCertificate,
        (None, false)
            if args.url.starts_with("ws://")
                || args
                    .matchmake
                    .as_deref()
                    .is_some_and(|u| u.starts_with("http://")) =>
        {
            Trust::InsecureDevCertificate
        }
        (None, false) => bail!(
            "say which certificate to trust: --ca-cert FILE, or --insecure-dev-cert for a local self-signed server"
        ),
    };
    // Fail fast on a bad certificate file or URL before starting N bots.
    tickwire_client::connect::tls_config(&trust).context("TLS configuration")?;
    tickwire_client::Endpoint::parse(&args.url)?;

    let start = Instant::now();
    let stop = start + args.duration;
    if args.warmup >= args.duration {
        bail!("--warmup must be shorter than --duration");
    }
    let counters = Arc::new(Counters::new(start, start + args.warmup));
    let connecting = Arc::new(Semaphore::new(args.max_connecting.max(1)));

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
    for t in tasks {
        t.await.context("bot task panicked")?;
    }
    progress.abort();
    let elapsed = start.elapsed().as_secs_f64();
    let measured = (elapsed - args.warmup.as_secs_f64()).max(1e-9);

    let c = &counters;
    let h = c.hist();
    let (interval, jitter, ack, staleness) = (&h.interval, &h.jitter, &h.ack_latency, &h.staleness);
    let connected_secs = c.connected_us.load(Relaxed) as f64 / 1e6;
    let snapshots = c.snapshots.load(Relaxed);
    let ratio = |a: u64, b: u64| {
        if b > 0 {
            Some(a as f64 / b as f64)
        } else {
            None
        }
    };
    let sampled = c.sampled.load(Relaxed);
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
        "matchmake": args.matchmake,
        "bots": args.bots,
        "duration_s": elapsed,
        "warmup_s": args.warmup.as_secs_f64(),
        "measured_s": measured,
        "churn": args.churn,
        "idle": args.idle,
        "conditioner": args.conditioner.as_ref().map(ToString::to_string),
        "connects": c.connects.load(Relaxed),
        "connects_per_s": c.measured_connects.load(Relaxed) as f64 / measured,
        "resumed": c.resumed.load(Relaxed),
        "rematchmakes": c.rematchmakes.load(Relaxed),
        "failed": c.failed.load(Relaxed),
        "abnormal_closes": c.abnormal_closes.load(Relaxed),
        "desync_errors": c.desyncs.load(Relaxed),
        "snapshots": snapshots,
        "full_snapshots": c.full_snapshots.load(Relaxed),
        "connected_bot_s": connected_secs,
        "snapshots_per_bot_per_s": per_bot_sec(snapshots),
        "bytes_per_bot_per_s": per_bot_sec(c.bytes.load(Relaxed)),
        "bytes_per_snapshot": ratio(c.bytes.load(Relaxed), snapshots),
        "entities_per_snapshot": ratio(c.entities.load(Relaxed), snapshots),
        "sampled_snapshots": sampled,
        "sampled_entities_per_snapshot": ratio(c.sampled_entities.load(Relaxed), sampled),
        "changed_entities_per_snapshot": ratio(c.sampled_changed.load(Relaxed), sampled),
        "npcs_per_snapshot": ratio(c.sampled_npcs.load(Relaxed), sampled),
        "snapshot_interval_ms": { "p50": ms(interval, 0.5), "p99": ms(interval, 0.99), "max": ms(interval, 1.0) },
        "snapshot_jitter_ms": { "p50": ms(jitter, 0.5), "p99": ms(jitter, 0.99) },
        "input_ack_latency_ms": { "p50": ms(ack, 0.5), "p99": ms(ack, 0.99), "samples": ack.len() },
        "staleness_ms": { "p50": ms(staleness, 0.5), "p99": ms(staleness, 0.99), "max": ms(staleness, 1.0), "samples": staleness.len() },
        "staleness_definition": STALENESS,
        "errors": *c.errors.lock().unwrap_or_else(|p| p.into_inner()),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let f = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
        println!(
            "arena-bots report ({elapsed:.1} s, measured the last {measured:.1} s, {} bots)",
            args.bots
        );
        println!(
            "  connects {}  (resumed {}, matchmade again {})  failed {}  abnormal closes {}",
            c.connects.load(Relaxed),
            c.resumed.load(Relaxed),
            c.rematchmakes.load(Relaxed),
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
            f(ms(interval, 0.5)),
            f(ms(interval, 0.99)),
            f(ms(jitter, 0.5)),
            f(ms(jitter, 0.99))
        );
        println!(
            "  input→ack latency p50 {} ms  p99 {} ms  ({} samples)",
            f(ms(ack, 0.5)),
            f(ms(ack, 0.99)),
            ack.len()
        );
        println!(
            "  staleness p50 {} ms  p99 {} ms  ({STALENESS})",
            f(ms(staleness, 0.5)),
            f(ms(staleness, 0.99)),
        );
        println!(
            "  entities per snapshot {}   changed per snapshot {} (sampled)",
            f(ratio(c.entities.load(Relaxed), snapshots)),
            f(ratio(c.sampled_changed.load(Relaxed), sampled)),
        );
        println!("  desync errors {}", c.desyncs.load(Relaxed));
        for e in c.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            println!("  error: {e}");
        }
    }
    if c.desyncs.load(Relaxed) > 0 {
        bail!("{} desync error(s)", c.desyncs.load(Relaxed));
    }
    drop(h);
    Ok(())
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
) {
    tokio::time::sleep_until(start_at).await;
    let seed = args.seed ^ (u64::from(i) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(seed | 1);
    let mut options = ConnectOptions::new(trust)
        .with_auth_token(format!("bot{i}"))
        .with_deferred_acks(!args.idle && args.input_send == InputSend::WithAck)
        .with_implicit_acks(!args.explicit_acks)
        .with_acks(
            if args.ack_with_input && args.input_send == InputSend::Tick {
                AckPolicy {
                    every: 2,
                    max_delay: INPUT_PERIOD,
                }
            } else if args.ack_every == 1 {
                AckPolicy::EVERY_SNAPSHOT
            } else {
                AckPolicy {
                    every: args.ack_every,
                    ..AckPolicy::DELAYED
                }
            },
        );
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
                    None => match &args.matchmake {
                        Some(url) => {
                            let request = match &args.room {
                                Some(room) => MatchmakeRequest::room(room.clone()),
                                None => MatchmakeRequest::mode(args.mode.clone()),
                            }
                            .with_auth(format!("bot{i}"));
                            match matchmake(url, &options.trust, &request).await {
                                Ok(ticket) => {
                                    Client::<Arena>::connect_ticket(&ticket, options.clone()).await
                                }
                                Err(e) => Err(e),
                            }
                        }
                        None => Client::<Arena>::connect(&args.url, options.clone()).await,
                    },
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
                if !args.churn && !args.rematchmake {
                    break;
                }
                let pause = match &e {
                    ClientError::Matchmake {
                        retry_after: Some(after),
                        ..
                    } => (*after).min(Duration::from_secs(5)),
                    _ => Duration::from_millis(500),
                };
                tokio::time::sleep_until(stop.min(Instant::now() + pause)).await;
                continue;
            }
        };
        c.connects.fetch_add(1, Relaxed);
        if c.measuring(Instant::now()) {
            c.measured_connects.fetch_add(1, Relaxed);
        }
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
        let brain = Brain::new(Rng(rng.next() | 1), began);
        let mode = match (args.idle, args.input_send) {
            (true, _) => Inputs::Idle,
            (false, InputSend::Tick) => Inputs::EveryTick,
            (false, InputSend::WithAck) => Inputs::WithAck,
        };
        let alive = play(&mut bot, brain, until, &c, i, mode).await;
        c.connected_now.fetch_sub(1, Relaxed);
        c.connected(began, Instant::now());
        if !alive {
            if args.rematchmake {
                c.rematchmakes.fetch_add(1, Relaxed);
            } else if !args.churn {
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
}

fn note(c: &Counters, e: &ClientError, bot: u32) {
    if e.is_desync() {
        c.desyncs.fetch_add(1, Relaxed);
    }
    c.error(format!("bot{bot}: {e}"));
}

/// How a bot sends inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inputs {
    /// None.
    Idle,
    /// One write per input, every tick.
    EveryTick,
    /// One input per tick, written with each snapshot's ack.
    WithAck,
}

/// Plays until `until`. Returns false when the session ended or failed.
async fn play(
    client: &mut Client<Arena>,
    mut brain: Brain,
    until: Instant,
    c: &Counters,
    i: u32,
    mode: Inputs,
) -> bool {
    let w = client.welcome();
    let mut watch = Watch {
        nominal: Duration::from_secs_f64(f64::from(w.snapshot_interval) / f64::from(w.tick_rate)),
        tick_period_us: 1e6 / f64::from(w.tick_rate.max(1)),
        last_snapshot: None,
        staleness: Vec::new(),
        best: f64::INFINITY,
        applied: 0,
    };
    let alive = play_loop(client, &mut brain, until, c, i, mode, &mut watch).await;
    watch.finish(c);
    alive
}

#[allow(clippy::too_many_arguments)]
async fn play_loop(
    client: &mut Client<Arena>,
    brain: &mut Brain,
    until: Instant,
    c: &Counters,
    i: u32,
    mode: Inputs,
    watch: &mut Watch,
) -> bool {
    let mut inputs = tokio::time::interval(INPUT_PERIOD);
    inputs.set_missed_tick_behavior(MissedTickBehavior::Skip);
    // With acks: the time the next input is due.
    let mut next_input = Instant::now();
    let mut sent: VecDeque<(u32, Instant)> = VecDeque::new();
    let (mut bytes_seen, mut full_seen) = (0, 0);
    let end = tokio::time::sleep_until(until);
    tokio::pin!(end);
    loop {
        tokio::select! {
            () = &mut end => return true,
            _ = inputs.tick(), if mode == Inputs::EveryTick => {
                let input = brain.input(Instant::now(), client.world());
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
                let measuring = c.measuring(now);
                let stats = client.stats();
                let b = stats.bytes_received;
                c.all_bytes.fetch_add(b - bytes_seen, Relaxed);
                if measuring {
                    c.bytes.fetch_add(b - bytes_seen, Relaxed);
                    c.full_snapshots.fetch_add(stats.full_snapshots - full_seen, Relaxed);
                }
                (bytes_seen, full_seen) = (b, stats.full_snapshots);
                match ev {
                    Ok(ClientEvent::Snapshot(applied)) => {
                        let (tick, last_input) = (applied.tick, applied.last_input);
                        if mode != Inputs::Idle {
                            brain.observe(client.world());
                        }
                        c.all_snapshots.fetch_add(1, Relaxed);
                        watch.applied += 1;
                        let age = (now - c.epoch).as_secs_f64() * 1e6
                            - f64::from(tick) * watch.tick_period_us;
                        watch.best = watch.best.min(age);
                        if measuring {
                            measure_snapshot(c, i, watch, now, age, client.world(), last_input, &mut sent);
                        } else {
                            while sent.front().is_some_and(|&(seq, _)| seq <= last_input) {
                                sent.pop_front();
                            }
                        }
                        watch.last_snapshot = Some(now);
                        if mode == Inputs::WithAck {
                            let due = inputs_due(&mut next_input, now);
                            for _ in 0..due {
                                let input = brain.input(now, client.world());
                                match client.queue_input(input) {
                                    Ok(seq) => sent.push_back((seq, now)),
                                    Err(e) => {
                                        note(c, &e, i);
                                        return false;
                                    }
                                }
                            }
                            while sent.len() > 256 {
                                sent.pop_front();
                            }
                            // The ack and the inputs, in one write.
                            if let Err(e) = client.send_pending().await {
                                note(c, &e, i);
                                c.abnormal_closes.fetch_add(1, Relaxed);
                                return false;
                            }
                        }
                    }
                    Ok(ClientEvent::Events(events)) => {
                        for e in events {
                            if let ArenaEvent::YouAre { entity } = e {
                                brain.set_me(entity);
                            }
                        }
                    }
                    Ok(ClientEvent::Rtt(_)) => {}
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

/// How many ticks' inputs are due at `now`, moving `next` past them (at most
/// [`MAX_INPUTS_PER_ACK`]; after a longer stall the missed ticks are
/// skipped).
fn inputs_due(next: &mut Instant, now: Instant) -> u32 {
    let mut due = 0;
    while *next <= now && due < MAX_INPUTS_PER_ACK {
        due += 1;
        *next += INPUT_PERIOD;
    }
    if *next <= now {
        *next = now + INPUT_PERIOD;
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_due_counts_ticks_and_skips_a_long_stall() {
        let t0 = Instant::now();
        let mut next = t0;
        assert_eq!(inputs_due(&mut next, t0), 1);
        assert_eq!(inputs_due(&mut next, t0), 0);
        // Two ticks later: two inputs (one per tick, none lost).
        assert_eq!(inputs_due(&mut next, t0 + INPUT_PERIOD * 2), 2);
        assert_eq!(next, t0 + INPUT_PERIOD * 3);
        // A stall of a second: a bounded batch, then the rest is skipped.
        let late = t0 + Duration::from_secs(1);
        assert_eq!(inputs_due(&mut next, late), MAX_INPUTS_PER_ACK);
        assert_eq!(next, late + INPUT_PERIOD);
        assert_eq!(inputs_due(&mut next, late), 0);
    }
}
