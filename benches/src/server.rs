//! `replication-load server`: the bench game on a real tickwire server (TLS,
//! WSS, rooms), with a `metrics` recorder that times every `Room::tick`, and
//! a line-based control port on loopback for measurement windows.
//!
//! Control protocol (one command per line, one reply line each):
//!
//! | command | reply |
//! |---|---|
//! | `start` | `ok`: resets the tick histogram, CPU and byte counters |
//! | `stop` | `key=value …`: the window's tick stats, CPU seconds, bytes |
//! | `rss` | `rss_kib=… anon_kib=… clients=… connections=…` |
//! | `quit` | `bye`, then the server shuts down |

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use hdrhistogram::Histogram as Hdr;
use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use tickwire_server::auth::AuthRequest;
use tickwire_server::tls::TlsIdentity;
use tickwire_server::{AuthError, Server, ServerConfig, TlsMode};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::game::{BenchGame, WorldParams};
use crate::procfs;

/// What the world and the server look like (shared by `server` and `run`).
#[derive(Args, Debug, Clone)]
pub(crate) struct Scenario {
    /// Entities in the room.
    #[arg(long, default_value_t = 1000)]
    pub(crate) entities: usize,
    /// Fraction of the entities that move every tick.
    #[arg(long, default_value_t = 0.1)]
    pub(crate) moving: f64,
    /// Distance-based visibility (each client sees about `--in-view`
    /// entities) instead of every client seeing everything.
    #[arg(long)]
    pub(crate) visibility: bool,
    /// With `--visibility`: ask `Game::can_see` about every entity for every
    /// client, instead of only about those in the cells of the game's grid
    /// around it (`Game::visible`, `tickwire_server::interest::Grid`).
    #[arg(long)]
    pub(crate) no_grid: bool,
    /// View radius in world units (the world is sized to match `--in-view`).
    #[arg(long, default_value_t = 100.0)]
    pub(crate) view_radius: f32,
    /// Average number of entities within the view radius.
    #[arg(long, default_value_t = 100.0)]
    pub(crate) in_view: f32,
    /// Ticks per second.
    #[arg(long, default_value_t = 60)]
    pub(crate) tick_rate: u16,
    /// A snapshot every this many ticks.
    #[arg(long, default_value_t = 1)]
    pub(crate) snapshot_interval: u16,
    /// Movement speed, units per second.
    #[arg(long, default_value_t = 30.0)]
    pub(crate) speed: f32,
    /// Largest turn per tick of a moving entity, in radians.
    #[arg(long, default_value_t = 0.01)]
    pub(crate) max_turn: f32,
    /// Server handshake timeout, seconds (raise it for idle-upgraded runs).
    #[arg(long, default_value_t = 10)]
    pub(crate) handshake_timeout_secs: u64,
    /// Server idle timeout, seconds.
    #[arg(long, default_value_t = 15)]
    pub(crate) idle_timeout_secs: u64,
    /// Install an auth hook (`Server::with_auth`, off the room task) that
    /// sleeps this long for hellos with the auth token `slow` (see the
    /// clients' `--slow-joins`); 0: no hook.
    #[arg(long, default_value_t = 0)]
    pub(crate) auth_sleep_ms: u64,
}

impl Scenario {
    /// The same scenario as command-line arguments (for a child process).
    pub(crate) fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            format!("--entities={}", self.entities),
            format!("--moving={}", self.moving),
            format!("--view-radius={}", self.view_radius),
            format!("--in-view={}", self.in_view),
            format!("--tick-rate={}", self.tick_rate),
            format!("--snapshot-interval={}", self.snapshot_interval),
            format!("--speed={}", self.speed),
            format!("--max-turn={}", self.max_turn),
            format!("--handshake-timeout-secs={}", self.handshake_timeout_secs),
            format!("--idle-timeout-secs={}", self.idle_timeout_secs),
            format!("--auth-sleep-ms={}", self.auth_sleep_ms),
        ];
        if self.visibility {
            a.push("--visibility".to_owned());
        }
        if self.no_grid {
            a.push("--no-grid".to_owned());
        }
        a
    }

    pub(crate) fn world(&self) -> WorldParams {
        let stride = if self.moving <= 0.0 {
            usize::MAX
        } else {
            (1.0 / self.moving).round().max(1.0) as usize
        };
        WorldParams {
            entities: self.entities,
            stride,
            view_radius: self.visibility.then_some(self.view_radius),
            grid: !self.no_grid,
            side: WorldParams::side_for(self.entities.max(1), self.view_radius, self.in_view),
            speed: self.speed,
            max_turn: self.max_turn,
        }
    }
}

/// `replication-load server`.
#[derive(Args, Debug)]
pub(crate) struct ServerArgs {
    #[command(flatten)]
    pub(crate) scenario: Scenario,
    /// WSS address (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) addr: SocketAddr,
    /// Control address (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) control: SocketAddr,
    /// Where the generated certificate and key are written (default: a new
    /// directory under the system temp dir).
    #[arg(long)]
    pub(crate) cert_dir: Option<PathBuf>,
    /// The server exits by itself after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub(crate) max_runtime_secs: u64,
    /// Exit when standard input closes (set by `run` for its child).
    #[arg(long)]
    pub(crate) exit_on_stdin_eof: bool,
    /// Tokio worker threads (default: the CPUs this process may run on).
    #[arg(long)]
    pub(crate) worker_threads: Option<usize>,
}

/// The tick histogram (nanoseconds) and counters the recorder fills.
#[derive(Default)]
struct Recorded {
    ticks: Mutex<Option<Hdr<u64>>>,
    snapshot_bytes: Arc<AtomicU64>,
    overruns: Arc<AtomicU64>,
    dropped_inputs: Arc<AtomicU64>,
    clients: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
}

impl Recorded {
    fn new_hist() -> Hdr<u64> {
        Hdr::new_with_bounds(1_000, 60_000_000_000, 3).expect("valid histogram bounds")
    }
}

struct TickHist(Arc<Recorded>);

impl HistogramFn for TickHist {
    fn record(&self, secs: f64) {
        let ns = (secs * 1e9) as u64;
        let mut g = self.0.ticks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = g.as_mut() {
            h.saturating_record(ns.max(1_000));
        }
    }
}

/// A `metrics` recorder keeping only what the bench needs.
struct BenchRecorder(Arc<Recorded>);

impl Recorder for BenchRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match key.name() {
            "tickwire_snapshot_bytes_total" => {
                Counter::from_arc(Arc::clone(&self.0.snapshot_bytes))
            }
            "tickwire_tick_overruns_total" => Counter::from_arc(Arc::clone(&self.0.overruns)),
            "tickwire_inputs_dropped_total" => {
                Counter::from_arc(Arc::clone(&self.0.dropped_inputs))
            }
            _ => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        // `metrics` implements gauges on an AtomicU64 holding f64 bits.
        match key.name() {
            "tickwire_connected_clients" => Gauge::from_arc(Arc::clone(&self.0.clients)),
            "tickwire_connections" => Gauge::from_arc(Arc::clone(&self.0.connections)),
            _ => Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        if key.name() == "tickwire_tick_seconds" {
            Histogram::from_arc(Arc::new(TickHist(Arc::clone(&self.0))))
        } else {
            Histogram::noop()
        }
    }
}

/// A measurement window in progress.
struct Window {
    wall: Instant,
    cpu: f64,
    /// Run-queue wait of the server's threads (preemption by other work).
    wait: f64,
    bytes: u64,
    overruns: u64,
    dropped: u64,
}

fn gauge(a: &AtomicU64) -> f64 {
    f64::from_bits(a.load(Ordering::Relaxed))
}

/// Runs the server until `quit`, standard input EOF (when asked) or the
/// runtime cap.
pub(crate) async fn run(args: ServerArgs) -> Result<()> {
    anyhow::ensure!(
        args.addr.ip().is_loopback() && args.control.ip().is_loopback(),
        "the bench only listens on loopback addresses"
    );
    let recorded = Arc::new(Recorded::default());
    metrics::set_global_recorder(BenchRecorder(Arc::clone(&recorded)))
        .map_err(|_| anyhow::anyhow!("a metrics recorder is already installed"))?;

    let dir = args.cert_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("tickwire-bench-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    TlsIdentity::self_signed(&["localhost", "127.0.0.1"])?.write_pem_files(&cert, &key)?;

    let s = &args.scenario;
    let mut config = ServerConfig::default()
        .with_addr(args.addr)
        .with_tls(TlsMode::Files {
            cert: cert.clone(),
            key,
        })
        .with_tick_rate(s.tick_rate)
        .with_snapshot_interval(s.snapshot_interval)
        .with_handshake_timeout(Duration::from_secs(s.handshake_timeout_secs))
        .with_idle_timeout(Duration::from_secs(s.idle_timeout_secs));
    // One big room on one IP: lift the caps meant for the internet.
    config.listener.max_connections = 20_000;
    config.listener.max_connections_per_ip = 20_000;
    config.room.max_clients = 20_000;
    let world = s.world();
    let sleep = Duration::from_millis(s.auth_sleep_ms);
    config.session.auth_timeout = sleep + Duration::from_secs(5);
    config.listener.handshake_timeout = config
        .listener
        .handshake_timeout
        .max(sleep + Duration::from_secs(10));
    let server = Server::new(config, move |_room| BenchGame::new(world));
    let server = if sleep.is_zero() {
        server
    } else {
        server.with_auth(move |req: AuthRequest| async move {
            if req.token.as_deref() == Some("slow") {
                tokio::time::sleep(sleep).await;
            }
            Ok::<(), AuthError>(())
        })
    };
    let server = server.start().await?;
    let control = TcpListener::bind(args.control).await?;
    println!(
        "READY url=wss://localhost:{}/ws control={} cert={} pid={} side={:.1}",
        server.local_addr().port(),
        control.local_addr()?,
        cert.display(),
        std::process::id(),
        world.side,
    );

    let quit = Arc::new(tokio::sync::Notify::new());
    let window: Arc<Mutex<Option<Window>>> = Arc::new(Mutex::new(None));
    let ctl = {
        let (recorded, quit, window) = (Arc::clone(&recorded), Arc::clone(&quit), window);
        tokio::spawn(async move {
            while let Ok((sock, _)) = control.accept().await {
                let (recorded, quit, window) = (
                    Arc::clone(&recorded),
                    Arc::clone(&quit),
                    Arc::clone(&window),
                );
                tokio::spawn(async move {
                    let _ = serve_control(sock, &recorded, &quit, &window).await;
                });
            }
        })
    };
    let stdin_eof = async {
        if args.exit_on_stdin_eof {
            let mut lines = BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(_)) = lines.next_line().await {}
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = quit.notified() => {}
        () = stdin_eof => {}
        () = tokio::time::sleep(Duration::from_secs(args.max_runtime_secs)) => {
            eprintln!("server: runtime cap reached; exiting");
        }
    }
    ctl.abort();
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn serve_control(
    sock: tokio::net::TcpStream,
    rec: &Recorded,
    quit: &tokio::sync::Notify,
    window: &Mutex<Option<Window>>,
) -> Result<()> {
    let pid = std::process::id();
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Some(line) = lines.next_line().await? {
        let reply = match line.trim() {
            "start" => {
                *rec.ticks.lock().unwrap_or_else(|e| e.into_inner()) = Some(Recorded::new_hist());
                *window.lock().unwrap_or_else(|e| e.into_inner()) = Some(Window {
                    wall: Instant::now(),
                    cpu: procfs::cpu_seconds(pid)?,
                    wait: procfs::runqueue_wait_seconds(pid)?,
                    bytes: rec.snapshot_bytes.load(Ordering::Relaxed),
                    overruns: rec.overruns.load(Ordering::Relaxed),
                    dropped: rec.dropped_inputs.load(Ordering::Relaxed),
                });
                "ok".to_owned()
            }
            "stop" => {
                let hist = rec.ticks.lock().unwrap_or_else(|e| e.into_inner()).take();
                let win = window.lock().unwrap_or_else(|e| e.into_inner()).take();
                match (hist, win) {
                    (Some(h), Some(win)) => {
                        let us = |ns: u64| ns as f64 / 1e3;
                        format!(
                            "ticks={} tick_mean_us={:.1} tick_p50_us={:.1} tick_p99_us={:.1} \
                             tick_max_us={:.1} cpu_s={:.3} wall_s={:.3} snapshot_bytes={} \
                             overruns={} dropped_inputs={} clients={} rss_kib={} \
                             runqueue_wait_s={:.3}",
                            h.len(),
                            h.mean() / 1e3,
                            us(h.value_at_quantile(0.5)),
                            us(h.value_at_quantile(0.99)),
                            us(h.max()),
                            procfs::cpu_seconds(pid)? - win.cpu,
                            win.wall.elapsed().as_secs_f64(),
                            rec.snapshot_bytes.load(Ordering::Relaxed) - win.bytes,
                            rec.overruns.load(Ordering::Relaxed) - win.overruns,
                            rec.dropped_inputs.load(Ordering::Relaxed) - win.dropped,
                            gauge(&rec.clients),
                            procfs::status_kib(pid, "VmRSS")?,
                            procfs::runqueue_wait_seconds(pid)? - win.wait,
                        )
                    }
                    _ => "error=no-window".to_owned(),
                }
            }
            "rss" => format!(
                "rss_kib={} anon_kib={} clients={} connections={}",
                procfs::status_kib(pid, "VmRSS")?,
                procfs::status_kib(pid, "RssAnon")?,
                gauge(&rec.clients),
                gauge(&rec.connections),
            ),
            "quit" => {
                w.write_all(b"bye\n").await?;
                quit.notify_one();
                return Ok(());
            }
            other => format!("error=unknown-command:{other}"),
        };
        w.write_all(reply.as_bytes()).await?;
        w.write_all(b"\n").await?;
    }
    Ok(())
}
