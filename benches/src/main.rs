//! `replication-load`: the per-client replication cost of a tickwire server,
//! measured over real TLS, WebSocket and loopback sockets.
//!
//! The server and the clients run in separate processes so that the server's
//! CPU time (`/proc/<pid>/stat`) is its own:
//!
//! ```text
//!  replication-load clients ──WSS (rustls, tungstenite, 127.0.0.1)──▶ replication-load server
//!      N clients: decode, apply, ack           bench game (1,000 entities, 10 % moving, 60 Hz)
//!      └──────── control port (start / stop / rss / quit) ─────────▶ tick histogram (hdrhistogram),
//!                                                                     CPU time, snapshot bytes, RSS
//! ```
//!
//! `replication-load run …` starts both (each pinned with `taskset` when
//! `--server-cpus`/`--client-cpus` are given) and prints one result block.
//! See `BENCHMARKS.md`, "Server replication (tickwire-server)".

mod client;
mod floor;
mod floor_async;
mod game;
mod procfs;
mod room;
mod server;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(version, about = "tickwire server replication load benchmark")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the bench server (prints a READY line with its URL, control
    /// address and certificate).
    Server(server::ServerArgs),
    /// Run the clients against a running bench server and print results.
    Clients(client::ClientArgs),
    /// Start a server process and a clients process, and print the results.
    Run(RunArgs),
    /// Time `Room::tick` alone, in process, without sockets.
    Room(room::RoomArgs),
    /// Measure this machine's floor: CPU per message of plain blocking
    /// loopback writes (optionally TLS-sealed) and ack reads.
    Floor(floor::FloorArgs),
    /// The peer of `floor` (started by it).
    #[command(hide = true)]
    FloorPeer(floor::PeerArgs),
}

/// `replication-load run`.
#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    scenario: server::Scenario,
    #[command(flatten)]
    load: client::Load,
    /// CPU list for the server process (`taskset -c`), e.g. `0`.
    #[arg(long)]
    server_cpus: Option<String>,
    /// CPU list for the clients process (`taskset -c`), e.g. `1`.
    #[arg(long)]
    client_cpus: Option<String>,
}

fn command(cpus: Option<&str>) -> Result<Command> {
    let exe = std::env::current_exe()?;
    Ok(match cpus {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c).arg(exe);
            cmd
        }
        None => Command::new(exe),
    })
}

/// The value of `key=` in the server's READY line.
fn field<'a>(line: &'a str, key: &str) -> Result<&'a str> {
    line.split_whitespace()
        .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
        .ok_or_else(|| anyhow!("no {key}= in {line:?}"))
}

fn run(args: RunArgs) -> Result<()> {
    let mut server = command(args.server_cpus.as_deref())?
        .arg("server")
        .arg("--exit-on-stdin-eof")
        .args(args.scenario.to_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the server process")?;
    let mut ready = String::new();
    BufReader::new(server.stdout.take().context("server stdout")?).read_line(&mut ready)?;
    if !ready.starts_with("READY") {
        let _ = server.kill();
        bail!("server did not start: {ready:?}");
    }
    eprintln!("{}", ready.trim());
    let l = &args.load;
    let status = command(args.client_cpus.as_deref())?
        .arg("clients")
        .args(["--url", field(&ready, "url")?])
        .args(["--control", field(&ready, "control")?])
        .args(["--cert", field(&ready, "cert")?])
        .arg(format!("--clients={}", l.clients))
        .arg(format!("--mode={}", mode_name(l.mode)))
        .arg(format!("--warmup={}", l.warmup))
        .arg(format!("--duration={}", l.duration))
        .arg(format!("--connect-concurrency={}", l.connect_concurrency))
        .arg(format!("--label={}", l.label))
        .arg(format!("--slow-joins={}", l.slow_joins))
        .arg(format!("--ack-every={}", l.ack_every))
        .args(l.header_only.then_some("--header-only"))
        .arg("--quit-server")
        .status()
        .context("starting the clients process")?;
    // Closing its stdin also stops the server, should `quit` not have.
    drop(server.stdin.take());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while server.try_wait()?.is_none() {
        if std::time::Instant::now() > deadline {
            let _ = server.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = server.wait();
    if !status.success() {
        bail!("clients process failed: {status}");
    }
    Ok(())
}

fn mode_name(m: client::Mode) -> &'static str {
    match m {
        client::Mode::Replicate => "replicate",
        client::Mode::IdleUpgraded => "idle-upgraded",
        client::Mode::IdleJoined => "idle-joined",
    }
}

/// A multi-threaded runtime with `workers` threads, by default one per CPU
/// this process may run on (its `taskset` affinity; tokio's own default
/// counts every CPU of the machine).
fn runtime(workers: Option<usize>) -> Result<tokio::runtime::Runtime> {
    let n = workers
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
        .max(1);
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n)
        .enable_all()
        .build()?)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    match cli.cmd {
        Cmd::Run(args) => run(args),
        Cmd::Server(args) => runtime(args.worker_threads)?.block_on(server::run(args)),
        Cmd::Clients(args) => runtime(None)?.block_on(client::run(args)),
        Cmd::Room(args) => room::run(args),
        Cmd::Floor(args) => floor::run(args),
        Cmd::FloorPeer(args) => floor::peer(args),
    }
}
