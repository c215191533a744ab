//! `arena-server` on SIGTERM: it drains (no rooms, so at once), calls the
//! lifecycle hooks in order and exits with status 0.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(20);

/// Kills the server if the test fails half-way.
struct Server(Child);

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
fn until_line(lines: &mpsc::Receiver<String>, seen: &mut Vec<String>, needle: &str) -> String {
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

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let child = Command::new(env!("CARGO_BIN_EXE_arena-server"))
        // A grace far longer than the deadline: with no rooms, the node
        // must stop without waiting for it.
        .args(["--addr", "127.0.0.1:0", "--no-quic", "--drain-grace", "10m"])
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
    let mut seen = Vec::new();
    until_line(&lines, &mut seen, "lifecycle: ready");
    until_line(&lines, &mut seen, "open  https://");

    let pid = server.0.id().to_string();
    // No libc (unsafe is forbidden): `kill` sends the signal.
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -TERM {pid}: {sent}");
    let t0 = Instant::now();
    until_line(&lines, &mut seen, "lifecycle: draining");
    until_line(&lines, &mut seen, "lifecycle: shutdown");
    until_line(&lines, &mut seen, "stopped");
    let status = loop {
        if let Some(status) = server.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            t0.elapsed() < DEADLINE,
            "arena-server still running {DEADLINE:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    let text = seen.join("\n");
    let ready = text.find("lifecycle: ready").expect("ready");
    let draining = text.find("lifecycle: draining").expect("draining");
    let shutdown = text.find("lifecycle: shutdown").expect("shutdown");
    assert!(ready < draining && draining < shutdown, "order:\n{text}");
}
