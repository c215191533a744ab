//! Finding and starting a `redis-server` of a test's own, shared by
//! `server/tests/directory_redis.rs` and `example-game/tests/fleet.rs`
//! (each includes this file with `#[path]`).
//!
//! Under `cargo xtask test` (which sets `TICKWIRE_REDIS_SERVER`) or CI
//! (`CI` set), a missing `redis-server` is a failure. Elsewhere the tests
//! skip, loudly, when `redis-server` is not on PATH.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `redis-server` to run: `TICKWIRE_REDIS_SERVER`, else the one on PATH.
/// `None` means skip (only allowed outside xtask and CI); `what` names the
/// tests that then do not run.
pub(crate) fn redis_binary(what: &str) -> Option<PathBuf> {
    let required =
        std::env::var_os("TICKWIRE_REDIS_SERVER").is_some() || std::env::var_os("CI").is_some();
    let found = std::env::var_os("TICKWIRE_REDIS_SERVER")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|dir| dir.join("redis-server"))
                .find(|p| p.is_file())
        })
        .filter(|p| p.is_file());
    match found {
        Some(path) => Some(path),
        None if required => panic!(
            "redis-server not found (TICKWIRE_REDIS_SERVER or PATH) but this run requires it: \
             install it with `apt-get install -y redis-server` (cargo xtask test does this as root)"
        ),
        None => {
            // Straight to stderr: the test harness captures `eprintln!` of
            // passing tests, and this must be seen.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! SKIPPED: redis-server is not on PATH, so {what} did not run.\n\
                 !!! Install it with `apt-get install -y redis-server`, or run `cargo xtask test`.\n"
            );
            None
        }
    }
}

/// The command that runs `binary` on 127.0.0.1:`port`, in the foreground,
/// saving nothing (`--save '' --appendonly no`, files in `dir`): a restart
/// comes back empty, as a Redis without persistence does.
pub(crate) fn redis_command(binary: &Path, port: u16, dir: &Path) -> Command {
    let mut cmd = Command::new(binary);
    cmd.arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--protected-mode", "yes", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir);
    cmd
}

/// A fresh temporary directory for one `redis-server`.
pub(crate) fn redis_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tickwire-redis-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
