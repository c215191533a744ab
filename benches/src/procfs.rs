//! Process CPU time and resident memory from `/proc`.

use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};

/// Clock ticks per second for `/proc/<pid>/stat` times (`getconf CLK_TCK`,
/// 100 on Linux in practice).
fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// `utime + stime` of a `/proc/<pid>/stat` line, in clock ticks.
fn parse_stat_cpu_ticks(stat: &str) -> Result<u64> {
    // The command name may hold spaces and parentheses: fields restart after
    // the last ')'. Field 3 (state) is then index 0; utime (14) is index 11.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("malformed stat line"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11).context("no utime")?.parse()?;
    let stime: u64 = f.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

/// User + system CPU seconds used so far by process `pid` (all its threads,
/// including exited ones). Resolution: one clock tick (10 ms).
pub(crate) fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    Ok(parse_stat_cpu_ticks(&stat)? as f64 / clk_tck())
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `RssAnon`, `VmHWM`…).
pub(crate) fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| {
            let v = l.strip_prefix(field)?.strip_prefix(':')?;
            v.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .ok_or_else(|| anyhow!("no {field} in /proc/{pid}/status"))
}

/// Time the threads of `pid` spent waiting on a run queue (runnable but
/// not running: preempted by other work on their CPU), in seconds, from
/// `/proc/<pid>/task/*/schedstat` (threads alive now).
pub(crate) fn runqueue_wait_seconds(pid: u32) -> Result<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        if let Ok(s) = std::fs::read_to_string(path) {
            ns += s
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(ns as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_fields_are_found_after_the_command_name() {
        let line = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 1 0 0 0 \
                    123 45 0 0 20 0 3 0 100 1000 200 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(line).unwrap(), 168);
        assert!(cpu_seconds(std::process::id()).is_ok());
        assert!(status_kib(std::process::id(), "VmRSS").unwrap() > 0);
        assert!(runqueue_wait_seconds(std::process::id()).is_ok());
    }
}
