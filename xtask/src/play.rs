//! `cargo xtask play [--game NAME]`: build a game's browser page and run the
//! game's server serving it.

use std::process::{Command, ExitCode};

use anyhow::Result;

use crate::setup;
use crate::util;
use crate::web::{self, Game};

/// Builds `game`'s page in release mode, then hands over to
/// `cargo run --release -p <package> --bin <server> -- --static-dir <target>/<www> <args>`
/// (`arena-server` serving `target/www`, `trading-server` serving
/// `target/www-trading`).
pub(crate) fn run(game: Game, server_args: &[String]) -> Result<ExitCode> {
    setup::ensure_wasm_target()?;
    let www = web::build_game(game, true)?;
    let (package, bin) = game.files().server;
    let mut cmd = util::cargo();
    cmd.args([
        "run",
        "--release",
        "-p",
        package,
        "--bin",
        bin,
        "--",
        "--static-dir",
    ])
    .arg(&www)
    .args(server_args);
    eprintln!("$ {}", util::display(&cmd));
    hand_over(cmd)
}

/// Replaces this process with the server, so that Ctrl-C reaches it alone and its
/// exit code is ours.
#[cfg(unix)]
fn hand_over(mut cmd: Command) -> Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    Err(anyhow::Error::new(err).context(format!("could not start `{}`", util::display(&cmd))))
}

/// Runs the server with inherited stdio and returns its exit code.
#[cfg(not(unix))]
fn hand_over(mut cmd: Command) -> Result<ExitCode> {
    use anyhow::Context;
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{}`", util::display(&cmd)))?;
    let code = status.code().and_then(|code| u8::try_from(code).ok());
    Ok(code.map_or(ExitCode::FAILURE, ExitCode::from))
}
