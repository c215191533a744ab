//! `arena-server` on SIGTERM: it drains (no rooms, so at once), calls the
//! lifecycle hooks in order and exits with status 0.

use std::process::Command;
use std::time::{Duration, Instant};

mod server_process;

use server_process::{DEADLINE, until_line};

#[test]
fn sigterm_drains_and_exits_cleanly() {
    // A grace far longer than the deadline: with no rooms, the node must
    // stop without waiting for it.
    let (mut server, lines) =
        server_process::start(&["--addr", "127.0.0.1:0", "--no-quic", "--drain-grace", "10m"]);
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
