//! `arena-server`: the tickwire example arena, serving the browser demo and
//! its WebSocket on one HTTPS origin.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use arena::cli::{FleetArgs, LifecycleArgs, parse_duration, parse_view_radius, stats_line};
use arena::host::ArenaGame;
use clap::Parser;
use std::sync::Arc;
use tickwire_server::directory::{RedisDirectory, RedisDirectoryConfig};
use tickwire_server::{ListenerConfig, QuicConfig, RoomConfig, Server, ServerConfig, TlsMode};
use tickwire_shared::conditioner::ConditionerConfig;

/// The tickwire arena: a top-down multiplayer shooter. Open the printed URL
/// in a browser to play.
/// The page at `/` when no `--static-dir` is given: what to run to play in
/// a browser.
const NO_CLIENT_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>tickwire arena server</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;background:#0b0e13;color:#d8dee9}code{background:#18202a;padding:.1em .3em;border-radius:3px}</style>
</head>
<body>
<h1>tickwire arena server</h1>
<p>This server is running, but it was started without the browser client, so there is no game page here.</p>
<p>To play in a browser, run this from the repository instead:</p>
<pre><code>cargo xtask play</code></pre>
<p>It builds the wasm client into <code>target/www</code> and starts <code>arena-server --static-dir target/www</code>, then open the URL it prints.
Or build the client with <code>cargo xtask web</code> and restart this server with <code>--static-dir target/www</code>.</p>
<p>Native clients (<code>arena-bots</code>) connect to <code>/ws</code> (WebSocket) or over QUIC without a page.</p>
</body>
</html>
"#;

#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address for HTTPS (the page) and WSS (the game) on one port.
    #[arg(long, default_value = "127.0.0.1:8443")]
    addr: SocketAddr,

    /// UDP address for QUIC (native clients and `arena-bots --url quic://…`;
    /// ALPN `tickwire/1`, the same certificate). Off with --no-quic or --plain.
    #[arg(long, default_value = "127.0.0.1:8444")]
    quic_addr: SocketAddr,

    /// Do not listen for QUIC (native clients nor WebTransport).
    #[arg(long)]
    no_quic: bool,

    /// Do not serve WebTransport (browsers then play over WSS). By default
    /// the QUIC address also serves WebTransport at https://HOST:QUIC_PORT/wt
    /// (ALPN h3), and pages find it at GET /webtransport.
    #[arg(long)]
    no_webtransport: bool,

    /// On QUIC, send each snapshot datagram once only (by default a copy
    /// follows a quarter of a snapshot interval later, to mask datagram loss).
    #[arg(long)]
    no_redundant_snapshots: bool,

    /// Simulation ticks per second.
    #[arg(long, default_value_t = arena::TICK_RATE)]
    tick_rate: u16,

    /// Snapshots per second sent to each client (must divide the tick rate).
    #[arg(long, default_value_t = 30)]
    snapshot_rate: u16,

    /// PEM certificate chain. Without --cert/--key a self-signed development
    /// certificate is made and its fingerprints are printed.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,

    /// PEM private key for --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,

    /// Serve plain http:// and ws:// (only behind a TLS-terminating proxy).
    #[arg(long, conflicts_with_all = ["cert", "key"])]
    plain: bool,

    /// A further browser origin allowed to open the WebSocket, besides the
    /// server's own, e.g. `https://play.example.com` behind a proxy
    /// (repeatable).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,

    /// Directory with the built web client (`cargo xtask web` writes target/www).
    #[arg(long)]
    static_dir: Option<PathBuf>,

    /// Address for Prometheus metrics at /metrics (off when absent).
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,

    /// Players per room; further players go to a new room.
    #[arg(long, default_value_t = 16)]
    max_players_per_room: usize,

    /// Server-side AI players per room, so a lone visitor has someone to fight.
    #[arg(long, default_value_t = 3)]
    bots: u32,

    /// Simulate a bad network per client, e.g.
    /// `latency=100ms,jitter=10ms,loss=2%` (keys: latency, jitter, loss,
    /// dup, reorder, reorder-delay, bandwidth, queue). For testing netcode.
    #[arg(long)]
    conditioner: Option<ConditionerConfig>,

    /// Write the server's certificate (PEM) to this file, so native clients
    /// can trust it, e.g. `arena-bots --ca-cert FILE`.
    #[arg(long)]
    cert_out: Option<PathBuf>,

    /// Seed for spawns, bots, NPCs and the conditioner.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Wandering NPCs per room: server-side entities that move every tick
    /// (a known number of moving entities for load tests).
    #[arg(long, default_value_t = 0)]
    npcs: usize,

    /// Turn interest management off: every client receives every entity.
    #[arg(long)]
    no_interest: bool,

    /// With interest management: how far a client sees, in world units. The
    /// default sees most of the 1,600 × 1,000 arena; a smaller radius gives
    /// each client fewer entities, as in a large world (load tests).
    #[arg(long, default_value_t = arena::VIEW_RADIUS, value_parser = parse_view_radius)]
    view_radius: f32,

    /// Send every snapshot full (no deltas), to measure what deltas save.
    #[arg(long)]
    full_snapshots: bool,

    /// Each client's snapshot budget in bytes per second: changes that do
    /// not fit wait, nearer entities first (`RoomConfig::client_bytes_per_sec`).
    /// Default: no budget.
    #[arg(long)]
    client_bytes_per_sec: Option<u32>,

    /// How far a client that falls behind is slowed down: one snapshot in
    /// up to this many (`RoomConfig::max_snapshot_slowdown`; 1: never).
    #[arg(long, default_value_t = RoomConfig::default().max_snapshot_slowdown)]
    max_snapshot_slowdown: u16,

    /// Print one `STATS {json}` line per interval on stdout: tick
    /// percentiles, overruns, clients, snapshots and bytes (see
    /// `arena::cli::stats_line`). E.g. `1s`.
    #[arg(long, value_parser = parse_duration)]
    stats_interval: Option<Duration>,

    /// Total connection cap.
    #[arg(long, default_value_t = ListenerConfig::default().max_connections)]
    max_connections: usize,

    /// Connections per IP address (load tests from one host raise it).
    #[arg(long, default_value_t = ListenerConfig::default().max_connections_per_ip)]
    max_connections_per_ip: usize,

    #[command(flatten)]
    lifecycle: LifecycleArgs,

    #[command(flatten)]
    fleet: FleetArgs,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tickwire_server=info".into()),
        )
        .init();
    let mut args = Args::parse();
    args.fleet
        .secret_or_env()
        .context(arena::cli::FLEET_SECRET_ENV)?;
    args.fleet
        .admin_token_or_env()
        .context(arena::cli::ADMIN_TOKEN_ENV)?;
    // Listen for SIGTERM/Ctrl-C from the start: one that comes while the
    // server starts is kept (and drains it) rather than killing the process.
    let mut signals = tickwire_server::Signals::new();
    if args.snapshot_rate == 0 || args.tick_rate % args.snapshot_rate != 0 {
        bail!(
            "--snapshot-rate {} must divide --tick-rate {}",
            args.snapshot_rate,
            args.tick_rate
        );
    }
    if let Some(dir) = &args.static_dir
        && !dir.join("index.html").is_file()
    {
        bail!(
            "{} has no index.html; build the web client with `cargo xtask web` (or run `cargo xtask play`)",
            dir.display()
        );
    }
    let tls = match (&args.cert, &args.key, args.plain) {
        (Some(cert), Some(key), _) => TlsMode::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        (_, _, true) => TlsMode::Plain,
        _ => TlsMode::SelfSigned,
    };
    let listener = ListenerConfig::default()
        .with_addr(args.addr)
        .with_tls(tls)
        .with_static_dir(args.static_dir.clone())
        .with_metrics_addr(args.metrics_addr)
        .with_quic_addr((!args.no_quic && !args.plain).then_some(args.quic_addr))
        .with_quic(
            QuicConfig::default()
                .with_redundant_snapshots(!args.no_redundant_snapshots)
                .with_webtransport_path((!args.no_webtransport).then(|| "/wt".to_owned())),
        )
        .with_extra_origins(args.allow_origins.clone())
        .with_max_connections(args.max_connections)
        .with_max_connections_per_ip(args.max_connections_per_ip);
    let room = RoomConfig::default()
        .with_tick_rate(args.tick_rate)
        .with_snapshot_interval(args.tick_rate / args.snapshot_rate)
        .with_max_clients(args.max_players_per_room)
        .with_deltas(!args.full_snapshots)
        .with_client_bytes_per_sec(args.client_bytes_per_sec)
        .with_max_snapshot_slowdown(args.max_snapshot_slowdown);
    let mut config = ServerConfig::default()
        .with_listener(listener)
        .with_room(room)
        .with_conditioner(args.conditioner.clone());
    config.session.conditioner_seed = args.seed;
    let config = args.fleet.apply(args.lifecycle.apply(config));
    let (bots, seed, npcs, interest) = (args.bots, args.seed, args.npcs, !args.no_interest);
    let view_radius = args.view_radius;
    let mut server = Server::new(config, move |_room| {
        ArenaGame::new(bots, seed)
            .with_npcs(npcs)
            .with_interest_management(interest)
            .with_view_radius(view_radius)
    })
    // Without --static-dir the printed URL still answers: with how to get
    // the browser client.
    .with_fallback_file("/index.html", NO_CLIENT_PAGE);
    if let Some(url) = &args.fleet.redis_url {
        let redis =
            RedisDirectoryConfig::new(url.clone()).with_prefix(args.fleet.redis_prefix.clone());
        let directory = RedisDirectory::connect(&redis).context("the Redis room directory")?;
        match directory.ping().await {
            Ok(()) => println!("room directory: Redis at {url}"),
            // The node serves its rooms anyway, and registers once Redis answers.
            Err(e) => println!("room directory: Redis at {url} (not reachable yet: {e})"),
        }
        server = server.with_directory(Arc::new(directory));
    }
    let server = server.start().await.context("starting the arena server")?;
    if let Some(id) = server.tls_identity() {
        println!(
            "certificate SHA-256 fingerprint: {}",
            id.sha256_fingerprint()
        );
        println!(
            "certificate SPKI SHA-256 (base64): {}",
            id.spki_sha256_base64()
        );
        if args.cert.is_none() {
            println!(
                "self-signed: accept the certificate warning, or start Chromium with\n  \
                 --ignore-certificate-errors-spki-list={}",
                id.spki_sha256_base64()
            );
        }
    }
    if let (Some(path), Some(id)) = (&args.cert_out, server.tls_identity()) {
        std::fs::write(path, id.cert_pem())
            .with_context(|| format!("writing the certificate to {}", path.display()))?;
        println!("certificate written to {}", path.display());
    }
    if let Some(c) = &args.conditioner {
        println!("simulating a bad network per client: {c}");
    }
    let port = server.local_addr().port();
    let scheme = if server.tls_identity().is_some() {
        "https"
    } else {
        "http"
    };
    let host =
        if server.local_addr().ip().is_unspecified() || server.local_addr().ip().is_loopback() {
            "localhost".to_owned()
        } else {
            server.local_addr().ip().to_string()
        };
    println!("\nopen  {scheme}://{host}:{port}/");
    if args.static_dir.is_none() {
        println!(
            "      (no --static-dir: that page says how to get the browser client: `cargo xtask play`)"
        );
    }
    if let Some(quic) = server.quic_addr() {
        println!(
            "QUIC  quic://{host}:{}  (native clients, arena-bots)",
            quic.port()
        );
        if !args.no_webtransport {
            println!(
                "      https://{host}:{}/wt  (WebTransport: browsers, with WSS as the fallback)",
                quic.port()
            );
        }
    }
    println!();
    let started = std::time::Instant::now();
    {
        let stats = async {
            let Some(every) = args.stats_interval else {
                return std::future::pending().await;
            };
            let mut ticker = tokio::time::interval(every.max(Duration::from_millis(10)));
            ticker.tick().await;
            let _ = server.take_stats();
            loop {
                ticker.tick().await;
                println!("{}", stats_line(&server.take_stats(), started.elapsed()));
            }
        };
        // SIGTERM (or Ctrl-C) drains: no new players, rooms run on for at most
        // --drain-grace, then the node stops. A second signal stops at once.
        tokio::pin!(stats);
        tokio::select! {
            () = &mut stats => {}
            () = signals.recv() => {}
        }
        println!(
            "draining (up to {:?}; a second signal stops at once)",
            args.lifecycle.drain_grace
        );
        server.drain();
        tokio::select! {
            () = &mut stats => {}
            () = server.stopped() => {}
            () = signals.recv() => println!("stopping now"),
        }
    }
    server.shutdown().await;
    println!("stopped");
    Ok(())
}
