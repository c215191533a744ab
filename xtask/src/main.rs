//! tickwire build tasks, run as `cargo xtask <task>` from anywhere in the workspace.

mod bench;
mod play;
mod setup;
mod test;
mod util;
mod web;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "tickwire build tasks",
    long_about = "tickwire build tasks. Installs what it needs on a fresh machine: \
                  the wasm32 target through rustup, and Chromium through apt when run as root."
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run every check CI runs, in order, stopping at the first failure.
    ///
    /// Steps: prerequisites (rustfmt, clippy, the wasm32 target, Chromium and chromedriver),
    /// `cargo fmt --check`, clippy with `-D warnings`, a check that tickwire-shared pulls in
    /// no tokio, mio or socket2, the wasm32 builds of tickwire-shared and the arena rules,
    /// the web client, and `cargo test --workspace`. The last line reads
    /// `xtask test: N passed, N failed`.
    Test {
        /// Skip the wasm32 builds and the web client build.
        #[arg(long)]
        quick: bool,
    },
    /// Build the games' browser pages (wasm32 + wasm-bindgen + static files): the arena's
    /// into target/www/, the trading floor's into target/www-trading/.
    Web {
        /// Build only this game's page (default: every game's).
        #[arg(long, value_enum)]
        game: Option<web::Game>,
        /// Build with the release profile (the default).
        #[arg(long, conflicts_with = "dev")]
        release: bool,
        /// Build with the dev profile: faster to compile, larger and slower.
        #[arg(long)]
        dev: bool,
    },
    /// Measure capacity: run arena-server against arena-bots on this machine and
    /// write the five tables (client scale, entity scale, delta vs full, WSS vs QUIC,
    /// idle and churn).
    ///
    /// Builds the release binaries, pins the server to CPU 0 and the bots to CPU 1
    /// (taskset), loopback only. Raw results and logs go to target/bench/; a complete
    /// full run also rewrites the generated region of BENCHMARKS.md. A full run takes
    /// about 12 minutes plus the soak (default 10 minutes); `--quick` about 2.
    ///
    /// `cargo xtask bench wasm` instead compares the client's snapshot apply in
    /// headless Chromium with its native twin.
    Bench(bench::BenchArgs),
    /// Build a game's browser page and run its server serving it: `arena-server` from
    /// target/www/ (the default), or `trading-server` from target/www-trading/.
    Play {
        /// Which game.
        #[arg(long, value_enum, default_value = "arena")]
        game: web::Game,
        /// Arguments passed on to the game's server, after `--`.
        #[arg(last = true, value_name = "SERVER ARGS")]
        server_args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.task {
        Task::Test { quick } => Ok(test::run(quick)),
        Task::Web {
            game,
            release: _,
            dev,
        } => setup::ensure_wasm_target().and_then(|()| {
            game.map_or(web::Game::ALL.to_vec(), |g| vec![g])
                .into_iter()
                .try_for_each(|g| web::build_game(g, !dev).map(drop))
                .map(|()| ExitCode::SUCCESS)
        }),
        Task::Play { game, server_args } => play::run(game, &server_args),
        Task::Bench(args) => bench::run(&args),
    };
    outcome.unwrap_or_else(|err| {
        eprintln!("error: {}", util::chain(&err));
        ExitCode::FAILURE
    })
}
