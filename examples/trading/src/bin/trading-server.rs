//! `trading-server`: the trading floor example, serving its page and its
//! WebSocket on one HTTPS origin (`cargo xtask play --game trading`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use tickwire_server::{Server, ServerConfig, TlsMode};
use trading::{Ledger, TradingGame};

/// The page at `/` when no `--static-dir` is given.
const NO_PAGE: &str = "<!doctype html><meta charset=utf-8><title>trading-server</title>\
<p>This server runs without its page. From the repository, run \
<code>cargo xtask play --game trading</code>.";

/// A simulated market: open the printed URL in a browser to trade.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// Address for HTTPS (the page) and WSS (the game) on one port.
    #[arg(long, default_value = "127.0.0.1:8443")]
    addr: SocketAddr,
    /// The built page (`cargo xtask web --game trading` writes target/www-trading).
    #[arg(long)]
    static_dir: Option<PathBuf>,
    /// PEM certificate chain; without --cert/--key a self-signed
    /// development certificate is made and its fingerprint printed.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key for --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Market ticks per second (each one moves every price).
    #[arg(long, default_value_t = 10)]
    tick_rate: u16,
    /// Seed of the market's random walk (one seed, one market).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Players per room; further players go to a new room (a market of its own).
    #[arg(long, default_value_t = 64)]
    max_players_per_room: usize,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let tls = match (args.cert, args.key) {
        (Some(cert), Some(key)) => TlsMode::Files { cert, key },
        _ => TlsMode::SelfSigned,
    };
    let config = ServerConfig::default()
        .with_addr(args.addr)
        .with_tls(tls)
        .with_tick_rate(args.tick_rate)
        .with_static_dir(args.static_dir)
        .with_max_players_per_room(args.max_players_per_room);
    let (seed, ledger) = (args.seed, Ledger::default());
    let server = Server::new(config, move |_room| {
        TradingGame::new(seed).with_ledger(ledger.clone())
    })
    // Without --static-dir the printed URL still answers, with what to run.
    .with_fallback_file("/index.html", NO_PAGE)
    .start()
    .await
    .context("starting the trading server")?;
    if let Some(id) = server.tls_identity() {
        println!(
            "certificate SPKI SHA-256 (base64): {}",
            id.spki_sha256_base64()
        );
    }
    println!("open  {}", server.page_url());
    server.run_until_signal().await;
    Ok(())
}
