//! `replication-load clients`: many real WSS clients (rustls +
//! tokio-tungstenite) in one process. Each completes the handshake, decodes
//! and applies every snapshot against its kept baselines, acks it, and
//! answers pings; nothing else. A run measures a window through the server's
//! control port and prints the figures.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tickwire_shared::client::{AckPolicy, Channel, ClientConfig, ClientSession, Event};
use tickwire_shared::{ClientMessage, GameProtocol, Hello, Limits, ServerMessage};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::game::BenchProto;
use crate::procfs;

/// What the clients do.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Join, then receive, apply and ack every snapshot; measure a window.
    Replicate,
    /// TLS + WebSocket upgrade, then idle without sending a hello; measure
    /// the server's resident memory.
    IdleUpgraded,
    /// Join (hello → welcome), then receive, apply and ack snapshots (use a
    /// room with `--entities 0`); measure the server's resident memory.
    IdleJoined,
}

/// The load (shared by `clients` and `run`).
#[derive(Args, Debug, Clone)]
pub(crate) struct Load {
    /// Number of clients.
    #[arg(long, default_value_t = 100)]
    pub(crate) clients: usize,
    /// What the clients do.
    #[arg(long, value_enum, default_value_t = Mode::Replicate)]
    pub(crate) mode: Mode,
    /// Seconds between all clients joined and the start of the window.
    #[arg(long, default_value_t = 3.0)]
    pub(crate) warmup: f64,
    /// Length of the measurement window, seconds.
    #[arg(long, default_value_t = 15.0)]
    pub(crate) duration: f64,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 64)]
    pub(crate) connect_concurrency: usize,
    /// A label printed with the results.
    #[arg(long, default_value = "")]
    pub(crate) label: String,
    /// Ack each snapshot after decoding only its header, without decoding
    /// and applying the body. The server's work is the same (it cannot
    /// tell); this only spares the clients' CPU, for loads where a single
    /// client core cannot apply every snapshot.
    #[arg(long)]
    pub(crate) header_only: bool,
    /// Acknowledge every this many snapshots (with `AckPolicy::DELAYED`'s
    /// 50 ms bound, and at once for a full snapshot). 1, the default, acks
    /// every snapshot at once, the default policy of every tickwire client;
    /// 3 is `AckPolicy::DELAYED`, for comparing the two in one run.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) ack_every: u32,
    /// At the start of the window, this many extra clients join with the
    /// auth token `slow` (the server's `--auth-sleep-ms` hook sleeps for
    /// them) and leave once welcomed: auth in flight while ticks are timed.
    #[arg(long, default_value_t = 0)]
    pub(crate) slow_joins: usize,
}

/// `replication-load clients`.
#[derive(Args, Debug)]
pub(crate) struct ClientArgs {
    #[command(flatten)]
    pub(crate) load: Load,
    /// The server's WebSocket URL (as printed by `server`).
    #[arg(long)]
    pub(crate) url: String,
    /// The server's control address (as printed by `server`).
    #[arg(long)]
    pub(crate) control: SocketAddr,
    /// The server's certificate (PEM, as printed by `server`).
    #[arg(long)]
    pub(crate) cert: PathBuf,
    /// Tell the server to quit at the end.
    #[arg(long)]
    pub(crate) quit_server: bool,
}

/// Counters summed over all clients.
#[derive(Default)]
struct Stats {
    joined: AtomicU64,
    snapshots: AtomicU64,
    full: AtomicU64,
    bytes: AtomicU64,
    entities: AtomicU64,
    errors: AtomicU64,
}

#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    snapshots: u64,
    full: u64,
    bytes: u64,
    entities: u64,
    errors: u64,
    cpu: f64,
}

impl Stats {
    fn sample(&self) -> Result<Sample> {
        Ok(Sample {
            at: Instant::now(),
            snapshots: self.snapshots.load(Ordering::Relaxed),
            full: self.full.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            entities: self.entities.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            cpu: procfs::cpu_seconds(std::process::id())?,
        })
    }
}

type Ws = WebSocketStream<TlsStream<TcpStream>>;

struct Target {
    addr: SocketAddr,
    url: String,
    tls: TlsConnector,
}

impl Target {
    fn new(url: &str, cert: &std::path::Path) -> Result<Self> {
        let port: u16 = url
            .rsplit_once(':')
            .and_then(|(_, rest)| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow!("no port in {url}"))?;
        let cert = CertificateDer::from_pem_file(cert)
            .with_context(|| format!("reading {}", cert.display()))?;
        let tls = tickwire_server::tls::client_config_trusting(&cert, &[])?;
        Ok(Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            url: url.to_owned(),
            tls: TlsConnector::from(tls),
        })
    }

    async fn connect(&self) -> Result<Ws> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from("localhost")?.to_owned();
        let tls = self.tls.connect(name, tcp).await?;
        let req = self.url.as_str().into_client_request()?;
        let config = WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::client_async_with_config(req, tls, Some(config)).await?;
        Ok(ws)
    }
}

/// The bench clients' session settings: no pings, no idle timeout (the
/// server's own policy applies), and explicit acks (`--ack-every` decides
/// them; header-only clients ack by hand), as before implicit acks.
fn session_config(ack_every: u32) -> ClientConfig {
    let acks = AckPolicy {
        every: ack_every,
        ..AckPolicy::DELAYED
    };
    ClientConfig::default()
        .with_acks(acks)
        .with_ping_interval(None)
        .with_idle_timeout(None)
        .with_handshake_timeout(Duration::from_secs(30))
        .with_implicit_acks(false)
}

/// Sends what the session wants to send.
async fn flush(
    ws: &mut Ws,
    session: &mut ClientSession<BenchProto>,
    now: Duration,
    buf: &mut Vec<u8>,
) -> Result<()> {
    if session.poll_timeout().is_some_and(|t| t <= now) {
        session.handle_timeout(now);
    }
    while session.poll_transmit(now, buf).is_some() {
        ws.send(Message::Binary(buf.clone().into())).await?;
    }
    Ok(())
}

/// Hello → welcome, with an optional auth token.
async fn join(
    ws: &mut Ws,
    token: Option<&str>,
    epoch: Instant,
    ack_every: u32,
) -> Result<ClientSession<BenchProto>> {
    let mut hello = Hello::new(BenchProto::PROTOCOL_HASH);
    hello.room = Some("bench".to_owned());
    hello.auth_token = token.map(str::to_owned);
    let now = epoch.elapsed();
    let mut session = ClientSession::new(now, hello, session_config(ack_every));
    let mut buf = Vec::new();
    flush(ws, &mut session, now, &mut buf).await?;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .context("no welcome within 30 s")?
            .ok_or_else(|| anyhow!("closed before the welcome"))??;
        if let Message::Binary(b) = msg {
            session.handle_message(epoch.elapsed(), &b, Channel::Reliable);
            return match session.poll_event() {
                Some(Event::Welcome(_)) => Ok(session),
                other => Err(anyhow!("expected a welcome, got {other:?}")),
            };
        }
    }
}

/// Receives until the connection ends: the session applies snapshots, acks
/// and pongs. `header_only` acks snapshots after reading their header
/// alone (a measurement knob that spares the clients' CPU; the server's
/// work is the same), every `ack_every` snapshots and each full one at once
/// like the session's policy (the 50 ms bound is left out: the bench's
/// snapshot rates reach `ack_every` first).
async fn replicate(
    mut ws: Ws,
    mut session: ClientSession<BenchProto>,
    stats: &Stats,
    header_only: bool,
    epoch: Instant,
    ack_every: u32,
) -> Result<()> {
    let limits = Limits::default();
    let mut buf = Vec::new();
    let mut unacked = 0;
    loop {
        // The session's timers (delayed acks) run between messages too.
        let wake = session
            .poll_timeout()
            .map(|t| tokio::time::Instant::from_std(epoch + t));
        let msg = tokio::select! {
            m = ws.next() => m,
            () = sleep_until(wake) => {
                flush(&mut ws, &mut session, epoch.elapsed(), &mut buf).await?;
                continue;
            }
        };
        let Some(msg) = msg else { break };
        let Message::Binary(b) = msg? else { continue };
        if header_only
            && let Ok(ServerMessage::<()>::Snapshot(frame)) = ServerMessage::decode(&b, &limits)
        {
            let tick = frame.header.tick;
            if frame.header.baseline.is_none() {
                stats.full.fetch_add(1, Ordering::Relaxed);
            }
            stats.snapshots.fetch_add(1, Ordering::Relaxed);
            stats.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
            unacked += 1;
            if frame.header.baseline.is_some() && unacked < ack_every {
                continue;
            }
            unacked = 0;
            let ack = ClientMessage::<()>::Ack {
                snapshot_tick: tick,
            };
            ws.send(Message::Binary(ack.to_bytes()?.into())).await?;
            continue;
        }
        let now = epoch.elapsed();
        session.handle_message(now, &b, Channel::Reliable);
        while let Some(ev) = session.poll_event() {
            match ev {
                Event::Snapshot(a) => {
                    if a.baseline.is_none() {
                        stats.full.fetch_add(1, Ordering::Relaxed);
                    }
                    stats.snapshots.fetch_add(1, Ordering::Relaxed);
                    stats.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                    stats
                        .entities
                        .fetch_add(session.world().len() as u64, Ordering::Relaxed);
                }
                Event::Closed(c) => bail!("session closed: {} {}", c.code, c.reason),
                _ => {}
            }
        }
        flush(&mut ws, &mut session, now, &mut buf).await?;
    }
    Ok(())
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One client for its whole life.
async fn client(
    target: Arc<Target>,
    load: (Mode, bool, u32),
    gate: Arc<Semaphore>,
    stats: Arc<Stats>,
) -> Result<()> {
    let (mode, header_only, ack_every) = load;
    let epoch = Instant::now();
    let permit = gate.acquire_owned().await?;
    let mut ws = target.connect().await?;
    let session = if mode == Mode::IdleUpgraded {
        None
    } else {
        Some(join(&mut ws, None, epoch, ack_every).await?)
    };
    drop(permit);
    stats.joined.fetch_add(1, Ordering::Relaxed);
    match mode {
        Mode::IdleUpgraded => {
            // Nothing arrives before a hello; wait for the end.
            while let Some(m) = ws.next().await {
                m?;
            }
            Ok(())
        }
        Mode::Replicate | Mode::IdleJoined => {
            let session = session.ok_or_else(|| anyhow!("joined modes have a session"))?;
            replicate(ws, session, &stats, header_only, epoch, ack_every).await
        }
    }
}

/// A line-based connection to the server's control port.
struct Control {
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Control {
    async fn connect(addr: SocketAddr) -> Result<Self> {
        let (r, w) = TcpStream::connect(addr).await?.into_split();
        Ok(Self {
            lines: BufReader::new(r).lines(),
            w,
        })
    }

    async fn call(&mut self, cmd: &str) -> Result<String> {
        self.w.write_all(format!("{cmd}\n").as_bytes()).await?;
        self.lines
            .next_line()
            .await?
            .ok_or_else(|| anyhow!("control connection closed"))
    }
}

/// Parses `key=value key=value` into a lookup.
fn kv(line: &str) -> impl Fn(&str) -> f64 + '_ {
    move |key| {
        line.split_whitespace()
            .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }
}

/// Runs the clients and prints the results.
pub(crate) async fn run(args: ClientArgs) -> Result<()> {
    let load = &args.load;
    let target = Arc::new(Target::new(&args.url, &args.cert)?);
    let mut control = Control::connect(args.control).await?;
    let stats = Arc::new(Stats::default());
    let gate = Arc::new(Semaphore::new(load.connect_concurrency.max(1)));
    let before = control.call("rss").await?;
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..load.clients {
        let (target, gate, stats) = (Arc::clone(&target), Arc::clone(&gate), Arc::clone(&stats));
        let how = (load.mode, load.header_only, load.ack_every);
        tasks.spawn(async move {
            if let Err(e) = client(target, how, gate, Arc::clone(&stats)).await
                && stats.errors.fetch_add(1, Ordering::Relaxed) < 5
            {
                eprintln!("client: {e:#}");
            }
        });
    }
    // Wait (bounded) for everyone to join.
    let deadline = t0 + Duration::from_secs(120);
    let n = load.clients as u64;
    while stats.joined.load(Ordering::Relaxed) + stats.errors.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            bail!(
                "only {} of {n} clients connected in 120 s",
                stats.joined.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let joined = stats.joined.load(Ordering::Relaxed);
    eprintln!(
        "{joined} clients connected in {:.1} s ({} errors)",
        t0.elapsed().as_secs_f64(),
        stats.errors.load(Ordering::Relaxed)
    );
    tokio::time::sleep(Duration::from_secs_f64(load.warmup)).await;

    match load.mode {
        Mode::Replicate => {
            control.call("start").await?;
            let a = stats.sample()?;
            for _ in 0..load.slow_joins {
                let (target, ack_every) = (Arc::clone(&target), load.ack_every);
                tasks.spawn(async move {
                    let t = Instant::now();
                    let joined = async {
                        let mut ws = target.connect().await?;
                        join(&mut ws, Some("slow"), t, ack_every).await
                    };
                    match joined.await {
                        Ok(_) => eprintln!("slow join welcomed after {:?}", t.elapsed()),
                        Err(e) => eprintln!("slow join failed: {e:#}"),
                    }
                });
            }
            tokio::time::sleep(Duration::from_secs_f64(load.duration)).await;
            let b = stats.sample()?;
            let server = control.call("stop").await?;
            report_replication(load, joined, &a, &b, &server);
        }
        Mode::IdleUpgraded | Mode::IdleJoined => {
            tokio::time::sleep(Duration::from_secs_f64(load.duration)).await;
            let after = control.call("rss").await?;
            let a = stats.sample()?;
            report_idle(load, joined, &before, &after, &a);
        }
    }
    if args.quit_server {
        let _ = control.call("quit").await;
    }
    tasks.abort_all();
    Ok(())
}

fn report_replication(load: &Load, joined: u64, a: &Sample, b: &Sample, server: &str) {
    let s = kv(server);
    let wall = b.at.duration_since(a.at).as_secs_f64();
    let snaps = (b.snapshots - a.snapshots) as f64;
    let bytes = (b.bytes - a.bytes) as f64;
    let server_cpu = s("cpu_s");
    let client_cpu = b.cpu - a.cpu;
    let per_client_tick = bytes / snaps;
    let us_per_snapshot = server_cpu / snaps * 1e6;
    println!("== {} ({joined} clients, {:.1} s window)", load.label, wall);
    println!("server: {server}");
    println!(
        "clients: snapshots={} ({:.1}/s per client) full={} bytes={} entities/snapshot={:.1} errors={} \
         header_only={}",
        snaps,
        snaps / wall / joined as f64,
        b.full - a.full,
        bytes,
        (b.entities - a.entities) as f64 / snaps,
        b.errors,
        load.header_only,
    );
    println!(
        "| {} | {joined} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} % | {:.0} % | {:.1} | {:.0} |",
        load.label,
        s("tick_mean_us"),
        s("tick_p99_us"),
        s("tick_max_us"),
        per_client_tick,
        us_per_snapshot,
        server_cpu / s("wall_s") * 100.0,
        client_cpu / wall * 100.0,
        (b.entities - a.entities) as f64 / snaps,
        s("runqueue_wait_s") * 1e3,
    );
    println!(
        "  (columns: label | clients | tick mean µs | p99 µs | max µs | bytes/client/tick | \
         server CPU µs/client/snapshot | server CPU | clients CPU | entities/snapshot | \
         server run-queue wait ms)"
    );
}

fn report_idle(load: &Load, joined: u64, before: &str, after: &str, a: &Sample) {
    let (b, f) = (kv(before), kv(after));
    let d_rss = f("rss_kib") - b("rss_kib");
    let d_anon = f("anon_kib") - b("anon_kib");
    println!("== {} ({joined} connections, {:?})", load.label, load.mode);
    println!("server before: {before}");
    println!("server after:  {after}");
    println!(
        "| {} | {joined} | {:.0} | {:.0} | {:.1} | {:.1} | {} |",
        load.label,
        b("rss_kib"),
        f("rss_kib"),
        d_rss / joined as f64,
        d_anon / joined as f64,
        a.errors,
    );
    println!(
        "  (columns: label | connections | server RSS before KiB | after KiB | \
         ΔRSS KiB/connection | ΔRssAnon KiB/connection | client errors)"
    );
}
