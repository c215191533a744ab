//! Installing what the checks and the demo need on a fresh machine:
//! rustfmt and clippy, the wasm32 target, Chromium with chromedriver, and
//! `redis-server` (the room directory's Redis tests start their own).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{self, WASM_TARGET};

/// Where the browser end-to-end test expects Chromium (Debian's `chromium` package).
const CHROMIUM: &str = "/usr/bin/chromium";
/// The exact advice given when Chromium is missing and xtask may not install it.
const INSTALL_CHROMIUM: &str = "install Chromium: sudo apt-get install -y chromium chromium-driver";

/// The exact advice given when `redis-server` is missing and xtask may not install it.
const INSTALL_REDIS: &str = "install Redis: sudo apt-get install -y redis-server";

/// The `redis-server` binary the room directory's tests start (Debian's
/// `redis-server` package).
pub(crate) struct RedisServer(PathBuf);

impl RedisServer {
    /// Passes the binary's path to a test run as `TICKWIRE_REDIS_SERVER`;
    /// with it set, the Redis tests must run (they fail rather than skip).
    pub(crate) fn export_to(&self, cmd: &mut Command) {
        cmd.env("TICKWIRE_REDIS_SERVER", &self.0);
    }
}

/// Finds `redis-server` on PATH, installing it with apt when running as
/// root; only when it is missing.
pub(crate) fn ensure_redis() -> Result<RedisServer> {
    if let Some(path) = util::find_on_path("redis-server") {
        return Ok(RedisServer(path));
    }
    if !is_root() {
        eprintln!("redis-server (on PATH) is missing, and xtask installs it only as root");
        bail!(INSTALL_REDIS);
    }
    eprintln!("redis-server is missing; installing it with apt-get");
    util::run(apt_get().arg("update")).context("could not update the apt package lists")?;
    util::run(apt_get().args(["install", "-y", "redis-server"]))
        .context("could not install redis-server with apt-get")?;
    util::find_on_path("redis-server")
        .map(RedisServer)
        .with_context(|| {
            format!("apt-get installed redis-server, but it is not on PATH; {INSTALL_REDIS}")
        })
}

/// The browser the end-to-end test drives.
pub(crate) struct Browser {
    pub(crate) chromium: PathBuf,
    pub(crate) chromedriver: PathBuf,
}

impl Browser {
    /// Passes the browser's paths to a test run as `TICKWIRE_CHROMIUM` and `TICKWIRE_CHROMEDRIVER`.
    pub(crate) fn export_to(&self, cmd: &mut Command) {
        cmd.env("TICKWIRE_CHROMIUM", &self.chromium)
            .env("TICKWIRE_CHROMEDRIVER", &self.chromedriver);
    }
}

/// Adds the `wasm32-unknown-unknown` target through rustup if it is not installed.
pub(crate) fn ensure_wasm_target() -> Result<()> {
    let fix = format!("rustup target add {WASM_TARGET}");
    let installed = rustup(&["target", "list", "--installed"], &fix)?;
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok(());
    }
    eprintln!("the {WASM_TARGET} target is missing; adding it");
    util::run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
        .with_context(|| format!("could not add the wasm target; run `{fix}` and try again"))
}

/// Adds the rustfmt and clippy components through rustup if `cargo fmt` or
/// `cargo clippy` does not run.
pub(crate) fn ensure_lint_components() -> Result<()> {
    let missing: Vec<&str> = [("fmt", "rustfmt"), ("clippy", "clippy")]
        .into_iter()
        .filter(|(subcommand, _)| {
            util::output(util::cargo().args([subcommand, "--version"])).is_err()
        })
        .map(|(_, component)| component)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let fix = format!("rustup component add {}", missing.join(" "));
    eprintln!(
        "missing toolchain components: {}; adding them",
        missing.join(", ")
    );
    let mut add = Command::new("rustup");
    add.args(["component", "add"]).args(&missing);
    match util::run(&mut add) {
        Err(err) if util::is_not_found(&err) => Err(no_rustup(&fix)),
        result => result
            .with_context(|| format!("could not add the components; run `{fix}` and try again")),
    }
}

/// Finds Chromium and chromedriver, installing both with apt when running as root.
pub(crate) fn ensure_chromium() -> Result<Browser> {
    if let Some(browser) = find_browser() {
        return Ok(browser);
    }
    if !is_root() {
        eprintln!(
            "Chromium ({CHROMIUM}) or chromedriver (on PATH) is missing, and xtask installs them only as root"
        );
        bail!(INSTALL_CHROMIUM);
    }
    eprintln!("Chromium or chromedriver is missing; installing them with apt-get");
    util::run(apt_get().arg("update")).context("could not update the apt package lists")?;
    util::run(apt_get().args(["install", "-y", "chromium", "chromium-driver"]))
        .context("could not install Chromium with apt-get")?;
    find_browser().with_context(|| {
        format!("apt-get installed chromium and chromium-driver, but {CHROMIUM} or chromedriver on PATH is still missing; {INSTALL_CHROMIUM}")
    })
}

fn find_browser() -> Option<Browser> {
    let chromium = Path::new(CHROMIUM);
    if !chromium.is_file() {
        return None;
    }
    let chromedriver = util::find_on_path("chromedriver")?;
    Some(Browser {
        chromium: chromium.to_path_buf(),
        chromedriver,
    })
}

/// Whether this process runs as root, asked of `id -u` (no libc, no unsafe).
fn is_root() -> bool {
    util::output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

fn apt_get() -> Command {
    let mut cmd = Command::new("apt-get");
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

/// Runs `rustup <args>` and returns its output; `fix` is the command a person
/// should run instead if rustup is missing or fails.
fn rustup(args: &[&str], fix: &str) -> Result<String> {
    match util::output(Command::new("rustup").args(args)) {
        Ok(out) => Ok(out),
        Err(err) if util::is_not_found(&err) => Err(no_rustup(fix)),
        Err(err) => Err(err.context(format!("rustup failed; run `{fix}` and try again"))),
    }
}

fn no_rustup(fix: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "rustup is not installed, so xtask cannot set up the toolchain; \
         install rustup (https://rustup.rs), then run `{fix}`"
    )
}
