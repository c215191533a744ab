//! This machine's floor, measured in the same run as the tables that
//! compare with it: `replication-load floor --tls`, the CPU a plain
//! program spends per message to write one TLS-sealed message of a given
//! size to each of N loopback connections and read a 6-byte ack back
//! (blocking IO, no framework, no WebSocket framing). Issue 13's target is
//! a server CPU per client per snapshot within 1.5× of it.

use std::path::Path;

use anyhow::{Result, anyhow};

use super::scenario::Ctx;

/// The floor's CPU per message, in µs, for `conns` connections and
/// messages of `size` bytes at 60 Hz for `secs` seconds (the writer on CPU
/// 0, its peer on CPU 1, like the server and the bots).
pub(crate) fn measure(ctx: &Ctx, bin: &Path, conns: u32, size: usize, secs: u32) -> Result<f64> {
    measure_as(ctx, bin, &Exchange::floor(conns, size, secs))
}

/// One `replication-load floor` run: the floor itself, or the same
/// exchange under another IO model (`--model`) or with the peer's acks
/// spread over the round (`--peer-work-us`).
pub(crate) struct Exchange {
    pub(crate) conns: u32,
    pub(crate) size: usize,
    pub(crate) secs: u32,
    /// `blocking`, `tasks` or `pass`.
    pub(crate) model: &'static str,
    /// The peer's busy time per message before it acks.
    pub(crate) peer_work_us: u64,
    /// Whether the peer acks each message (and the writer reads the ack).
    pub(crate) ack: bool,
}

impl Exchange {
    /// The floor: blocking IO, acks at once.
    pub(crate) fn floor(conns: u32, size: usize, secs: u32) -> Self {
        Self {
            conns,
            size,
            secs,
            model: "blocking",
            peer_work_us: 0,
            ack: true,
        }
    }
}

/// The writer's CPU per message, in µs, for `x`.
pub(crate) fn measure_as(ctx: &Ctx, bin: &Path, x: &Exchange) -> Result<f64> {
    let mut args = vec![
        "floor".to_owned(),
        "--tls".to_owned(),
        format!("--conns={}", x.conns),
        format!("--size={}", x.size.max(1)),
        format!("--duration={}", x.secs),
        "--rate=60".to_owned(),
        "--peer-cpus=1".to_owned(),
        format!("--model={}", x.model),
        format!("--peer-work-us={}", x.peer_work_us),
    ];
    if !x.ack {
        args.push("--no-ack".to_owned());
    }
    let stdout = crate::util::output(&mut ctx.launcher.command(bin, 0, &args))?;
    parse(&stdout).ok_or_else(|| anyhow!("no figure in the floor's output: {stdout:?}"))
}

/// `… : 9.67 µs CPU per message (…` → 9.67.
fn parse(out: &str) -> Option<f64> {
    let line = out.lines().find(|l| l.starts_with("floor:"))?;
    let before = line.split(" µs CPU per message").next()?;
    before.rsplit(' ').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_figure_is_read_from_the_line() {
        let line = "floor: 100 conns × 1024 B at 60 Hz, tls=true, model=Tasks: 9.67 µs CPU per message \
                    (write + ack read), 6 % CPU over 10.0 s";
        assert_eq!(parse(line), Some(9.67));
        assert_eq!(parse("nothing"), None);
    }
}
