//! Running `arena-server` as a process in a test: a guard that kills it,
//! and reading its stdout line by line with a deadline.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a line may take to appear.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// Kills the server if the test fails half-way.
pub(crate) struct Server(pub(crate) Child);

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The first stdout line containing `needle` (already read, or read now;
/// `seen` keeps every line read). Lines of different tasks come in no fixed
/// order, so a line may have been read while waiting for another.
pub(crate) fn until_line(
    lines: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    needle: &str,
) -> String {
    if let Some(line) = seen.iter().find(|l| l.contains(needle)) {
        return line.clone();
    }
    let end = Instant::now() + DEADLINE;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
            Err(e) => panic!(
                "no line with {needle:?} ({e}); output so far:\n{}",
                seen.join("\n")
            ),
        }
    }
}

/// Starts `arena-server` with `args` (logs at info, no colours) and a
/// thread that forwards its stdout lines.
pub(crate) fn start(args: &[&str]) -> (Server, mpsc::Receiver<String>) {
    let child = Command::new(env!("CARGO_BIN_EXE_arena-server"))
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start arena-server");
    let mut server = Server(child);
    let stdout = server.0.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (server, lines)
}
