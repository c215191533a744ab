//! One measured run: start the server, start the bots, cut the measurement
//! window out of the server's `STATS` lines, stop both.
//!
//! The bots measure after their `--warmup` (ramp + settling), until the end
//! of their `--duration`. The server's window is the run of `STATS` lines
//! that falls inside that same span (±1 line of 1 s), and the `/proc` samples
//! taken with the first and last of them give the CPU, memory and descriptor
//! figures of the same span.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::procs::{Bots, Guard, Interrupt, Launcher, ProcSample, Sample, Server, tail};

/// What every run needs.
pub(crate) struct Ctx {
    pub(crate) launcher: Launcher,
    pub(crate) server_bin: PathBuf,
    pub(crate) bots_bin: PathBuf,
    /// `replication-load`, for the floor ([`super::floor`]).
    pub(crate) floor_bin: PathBuf,
    /// Where logs, certificates and profiles go.
    pub(crate) out: PathBuf,
    pub(crate) stop: Interrupt,
    /// The `perf` binary, when `--perf` was asked and perf is installed.
    pub(crate) perf: Option<PathBuf>,
    /// Whether `--perf` was asked.
    pub(crate) perf_asked: bool,
}

/// One run to make.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// A file-name-safe id, e.g. `client-100`.
    pub(crate) name: String,
    pub(crate) server_args: Vec<String>,
    /// Extra `arena-bots` arguments (the URL, trust, count and timings are
    /// added here).
    pub(crate) bots_args: Vec<String>,
    pub(crate) bots: u32,
    /// Connect the bots over QUIC (`--quic-addr` on the server).
    pub(crate) quic: bool,
    pub(crate) ramp: Duration,
    pub(crate) warmup: Duration,
    pub(crate) measure: Duration,
    /// Record a perf profile of the server during the window.
    pub(crate) perf: bool,
}

/// Strings, for argument lists.
pub(crate) fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn secs(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// The server's figures over a window.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    pub(crate) secs: f64,
    pub(crate) tick_us: Histogram<u64>,
    pub(crate) overruns: u64,
    pub(crate) over_budget: u64,
    pub(crate) snapshots: u64,
    pub(crate) full_snapshots: u64,
    pub(crate) snapshot_bytes: u64,
    pub(crate) clients_min: u64,
    pub(crate) clients_max: u64,
    pub(crate) server_cpu_s: f64,
    pub(crate) bots_cpu_s: Option<f64>,
    pub(crate) start: ProcSample,
    pub(crate) end: ProcSample,
    pub(crate) rss_max_kib: u64,
    pub(crate) fds_max: u64,
}

impl Window {
    /// The lines whose interval lies in `from..=to`: the first line after
    /// the first sample at or after `from`, up to the last one at or before
    /// `to`. `None` when fewer than one full line fits.
    pub(crate) fn from_samples(samples: &[Sample], from: Instant, to: Instant) -> Option<Self> {
        let first = samples.iter().position(|s| s.at >= from)? + 1;
        let last = samples.iter().rposition(|s| s.at <= to)?;
        if last < first {
            return None;
        }
        let (a, b) = (&samples[first - 1], &samples[last]);
        let (start, end) = (a.server?, b.server?);
        let lines = &samples[first..=last];
        let mut tick_us = Histogram::new_with_bounds(1, 60_000_000, 3).ok()?;
        for s in lines {
            if let Some(h) = &s.hist {
                tick_us.add(h).ok()?;
            }
        }
        let sum = |k: &str| lines.iter().map(|s| s.u(k)).sum::<u64>();
        let clients = lines.iter().map(|s| s.u("clients"));
        let around = &samples[first - 1..=last];
        Some(Self {
            secs: b.at.duration_since(a.at).as_secs_f64(),
            tick_us,
            overruns: sum("overruns"),
            over_budget: sum("over_budget"),
            snapshots: sum("snapshots"),
            full_snapshots: sum("full_snapshots"),
            snapshot_bytes: sum("snapshot_bytes"),
            clients_min: clients.clone().min().unwrap_or(0),
            clients_max: clients.max().unwrap_or(0),
            server_cpu_s: end.cpu_s - start.cpu_s,
            bots_cpu_s: a.bots.zip(b.bots).map(|(x, y)| y.cpu_s - x.cpu_s),
            start,
            end,
            rss_max_kib: around
                .iter()
                .filter_map(|s| s.server.map(|p| p.rss_kib))
                .max()
                .unwrap_or(0),
            fds_max: around
                .iter()
                .filter_map(|s| s.server.map(|p| p.fds))
                .max()
                .unwrap_or(0),
        })
    }

    pub(crate) fn tick_ms(&self, q: f64) -> f64 {
        self.tick_us.value_at_quantile(q) as f64 / 1e3
    }

    pub(crate) fn server_cpu_pct(&self) -> f64 {
        self.server_cpu_s / self.secs * 100.0
    }

    pub(crate) fn bots_cpu_pct(&self) -> Option<f64> {
        self.bots_cpu_s.map(|c| c / self.secs * 100.0)
    }

    /// Server CPU µs per snapshot sent (one snapshot to one client).
    pub(crate) fn cpu_us_per_snapshot(&self) -> Option<f64> {
        (self.snapshots > 0).then(|| self.server_cpu_s * 1e6 / self.snapshots as f64)
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "secs": self.secs,
            "ticks": self.tick_us.len(),
            "tick_ms": { "p50": self.tick_ms(0.5), "p99": self.tick_ms(0.99), "max": self.tick_ms(1.0),
                         "mean": self.tick_us.mean() / 1e3 },
            "overruns": self.overruns,
            "over_budget": self.over_budget,
            "snapshots": self.snapshots,
            "full_snapshots": self.full_snapshots,
            "snapshot_bytes": self.snapshot_bytes,
            "clients": { "min": self.clients_min, "max": self.clients_max },
            "server_cpu_s": self.server_cpu_s,
            "server_cpu_pct": self.server_cpu_pct(),
            "server_cpu_us_per_snapshot": self.cpu_us_per_snapshot(),
            "server_runqueue_wait_s": self.end.runqueue_s - self.start.runqueue_s,
            "bots_cpu_pct": self.bots_cpu_pct(),
            "server_rss_kib": { "start": self.start.rss_kib, "end": self.end.rss_kib, "max": self.rss_max_kib },
            "server_peak_rss_kib": self.end.hwm_kib,
            "server_fds": { "start": self.start.fds, "end": self.end.fds, "max": self.fds_max },
        })
    }
}

/// What a run produced. `error` is set when it could not be measured.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) name: String,
    pub(crate) window: Option<Window>,
    pub(crate) bots: Option<Value>,
    pub(crate) error: Option<String>,
    pub(crate) perf: Option<String>,
}

impl Outcome {
    pub(crate) fn bots_f64(&self, path: &[&str]) -> Option<f64> {
        let mut v = self.bots.as_ref()?;
        for p in path {
            v = v.get(p)?;
        }
        v.as_f64()
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "server": self.window.as_ref().map(Window::to_json),
            "bots": self.bots,
            "error": self.error,
            "perf_top": self.perf,
        })
    }
}

/// A loopback UDP port that was free a moment ago (for `--quic-addr`).
fn free_udp_port() -> Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Makes one run; failures are recorded in the outcome, except an
/// interruption, which is returned.
pub(crate) fn run(ctx: &Ctx, plan: &Plan) -> Result<Outcome> {
    eprintln!(
        "\n--> {} ({} bots, {:.0} s measured)",
        plan.name,
        plan.bots,
        plan.measure.as_secs_f64()
    );
    let mut outcome = Outcome {
        name: plan.name.clone(),
        ..Outcome::default()
    };
    if let Err(e) = run_inner(ctx, plan, &mut outcome) {
        ctx.stop.check()?;
        let text = crate::util::chain(&e);
        if plan.quic && text.contains("--quic-addr") {
            eprintln!("    QUIC not available in this build (arena-server has no --quic-addr)");
        } else {
            eprintln!("    failed: {text}");
        }
        outcome.error = Some(text);
    }
    if let Some(w) = &outcome.window {
        eprintln!(
            "    tick p99 {:.2} ms, server CPU {:.0} %, {} snapshots, bots CPU {}",
            w.tick_ms(0.99),
            w.server_cpu_pct(),
            w.snapshots,
            w.bots_cpu_pct().map_or("?".into(), |c| format!("{c:.0} %"))
        );
    }
    Ok(outcome)
}

fn run_inner(ctx: &Ctx, plan: &Plan, outcome: &mut Outcome) -> Result<()> {
    let cert = ctx.out.join(format!("{}-cert.pem", plan.name));
    let mut server_args = plan.server_args.clone();
    // WSS runs leave QUIC off (no UDP listener); QUIC runs get a free port.
    let quic_port = if plan.quic {
        let port = free_udp_port()?;
        server_args.extend(["--quic-addr".to_owned(), format!("127.0.0.1:{port}")]);
        Some(port)
    } else {
        server_args.push("--no-quic".to_owned());
        None
    };
    let server = Server::start(
        &ctx.launcher,
        &ctx.server_bin,
        &server_args,
        &cert,
        &ctx.out.join(format!("{}-server.log", plan.name)),
        &ctx.stop,
    )?;
    let url = match quic_port {
        Some(p) => format!("quic://127.0.0.1:{p}"),
        None => format!("wss://127.0.0.1:{}/ws", server.port),
    };
    let total = plan.ramp + plan.warmup + plan.measure;
    let mut bots_args = vec![
        "--url".to_owned(),
        url,
        "--ca-cert".to_owned(),
        cert.display().to_string(),
        "--bots".to_owned(),
        plan.bots.to_string(),
        "--ramp".to_owned(),
        secs(plan.ramp),
        "--warmup".to_owned(),
        secs(plan.ramp + plan.warmup),
        "--duration".to_owned(),
        secs(total),
    ];
    bots_args.extend(plan.bots_args.iter().cloned());
    let bots = Bots::start(
        &ctx.launcher,
        &ctx.bots_bin,
        &bots_args,
        &server,
        &ctx.out.join(format!("{}-bots.log", plan.name)),
    )?;
    let from = bots.started + plan.ramp + plan.warmup;
    let to = bots.started + total;
    let perf = match (&ctx.perf, plan.perf) {
        (Some(perf), true) => {
            ctx.stop
                .sleep(from.saturating_duration_since(Instant::now()))?;
            let data = ctx.out.join(format!("{}-perf.data", plan.name));
            Some((
                perf_record(perf, server.guard.pid(), plan.measure, &data, &ctx.out)?,
                data,
            ))
        }
        _ => None,
    };
    let grace = Duration::from_secs(30 + u64::from(plan.bots / 50));
    let report = bots.finish(to + grace, &ctx.stop);
    outcome.window = Window::from_samples(&server.samples(), from, to);
    if let Some((mut guard, data)) = perf {
        let done = guard.wait_until(Instant::now() + Duration::from_secs(20), &ctx.stop)?;
        outcome.perf = Some(match done {
            Some(s) if s.success() => perf_summary(ctx.perf.as_deref(), &data, 25)
                .unwrap_or_else(|e| format!("perf report failed: {}", crate::util::chain(&e))),
            _ => format!(
                "perf record failed; see {}",
                ctx.out.join("perf-record.log").display()
            ),
        });
    }
    outcome.bots = Some(report?);
    if outcome.window.is_none() {
        bail!(
            "no complete STATS line inside the measurement window ({} lines in all)",
            server.samples().len()
        );
    }
    Ok(())
}

/// `perf record -e cpu-clock -g -p PID -o DATA -- sleep SECS` (software
/// clock: it works without hardware counters, as in a VM).
fn perf_record(perf: &Path, pid: u32, d: Duration, data: &Path, out: &Path) -> Result<Guard> {
    let log = std::fs::File::create(out.join("perf-record.log"))?;
    let mut cmd = Command::new(perf);
    cmd.args([
        "record",
        "-e",
        "cpu-clock",
        "-g",
        "-p",
        &pid.to_string(),
        "-o",
    ])
    .arg(data)
    .args(["--", "sleep", &format!("{:.1}", d.as_secs_f64())])
    .stdin(Stdio::null())
    .stdout(log.try_clone()?)
    .stderr(log);
    Guard::spawn(cmd, "perf record")
}

/// The top `n` symbols by self time:
/// `perf report --no-children --sort symbol --stdio -g none`.
pub(crate) fn perf_summary(perf: Option<&Path>, data: &Path, n: usize) -> Result<String> {
    let perf = perf.context("perf is not installed")?;
    let text = crate::util::output(
        Command::new(perf)
            .args([
                "report",
                "--no-children",
                "--sort",
                "symbol",
                "--stdio",
                "-g",
                "none",
                "-i",
            ])
            .arg(data),
    )?;
    Ok(top_symbols(&text, n))
}

/// The first `n` `  12.34%  [.] symbol` lines of a perf report, condensed.
pub(crate) fn top_symbols(report: &str, n: usize) -> String {
    let mut out = Vec::new();
    for line in report.lines() {
        let t = line.trim();
        if t.starts_with('#') || !t.contains('%') {
            continue;
        }
        let Some((pct, sym)) = t.split_once('%') else {
            continue;
        };
        if pct.trim().parse::<f64>().is_err() {
            continue;
        }
        // perf pads the symbol column and may add columns after it.
        let sym = sym.trim();
        let sym = sym.split("  ").next().unwrap_or(sym);
        let mut short: String = sym.chars().take(110).collect();
        if short.len() < sym.len() {
            short.push('…');
        }
        let sym = short;
        out.push(format!("{:>6}%  {sym}", pct.trim()));
        if out.len() == n {
            break;
        }
    }
    out.join("\n")
}

/// The idle-connection measurement: server RSS before any connection and
/// after `n` idle bots connected and settled.
pub(crate) struct Idle {
    pub(crate) connections: u64,
    pub(crate) before: ProcSample,
    pub(crate) after: ProcSample,
    pub(crate) connect_secs: f64,
}

impl Idle {
    pub(crate) fn kib_per_connection(&self) -> Option<f64> {
        (self.connections > 0).then(|| {
            (self.after.rss_kib as f64 - self.before.rss_kib as f64) / self.connections as f64
        })
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "connections": self.connections,
            "rss_before_kib": self.before.rss_kib,
            "rss_after_kib": self.after.rss_kib,
            "fds_after": self.after.fds,
            "kib_per_connection": self.kib_per_connection(),
            "connect_secs": self.connect_secs,
        })
    }
}

/// Connects `plan.bots` idle bots (`--idle`), waits until all are connected
/// (at most ramp + 120 s) and `settle` more, and samples the server.
pub(crate) fn run_idle(ctx: &Ctx, plan: &Plan, settle: Duration) -> Result<Idle> {
    let cert = ctx.out.join(format!("{}-cert.pem", plan.name));
    let mut server_args = plan.server_args.clone();
    server_args.push("--no-quic".to_owned());
    let server = Server::start(
        &ctx.launcher,
        &ctx.server_bin,
        &server_args,
        &cert,
        &ctx.out.join(format!("{}-server.log", plan.name)),
        &ctx.stop,
    )?;
    ctx.stop.sleep(Duration::from_secs(2))?;
    let pid = server.guard.pid();
    let before = ProcSample::of(pid).context("reading the server's /proc")?;
    let wait = plan.ramp + Duration::from_secs(120);
    let mut bots_args = args(&["--idle", "--ca-cert"]);
    bots_args.push(cert.display().to_string());
    bots_args.extend([
        "--url".to_owned(),
        format!("wss://127.0.0.1:{}/ws", server.port),
        "--bots".to_owned(),
        plan.bots.to_string(),
        "--ramp".to_owned(),
        secs(plan.ramp),
        "--duration".to_owned(),
        secs(wait + settle + Duration::from_secs(30)),
    ]);
    bots_args.extend(plan.bots_args.iter().cloned());
    let log = ctx.out.join(format!("{}-bots.log", plan.name));
    let bots = Bots::start(&ctx.launcher, &ctx.bots_bin, &bots_args, &server, &log)?;
    let deadline = bots.started + wait;
    let target = u64::from(plan.bots);
    let connected = loop {
        let now = server.last().map_or(0, |s| s.u("clients"));
        if now >= target || Instant::now() >= deadline {
            break Instant::now();
        }
        ctx.stop.sleep(Duration::from_millis(250))?;
    };
    ctx.stop.sleep(settle)?;
    let after = ProcSample::of(pid).context("reading the server's /proc")?;
    let connections = server.last().map_or(0, |s| s.u("clients"));
    if connections < target {
        eprintln!(
            "    only {connections} of {target} idle bots connected; bots log:\n{}",
            tail(&log, 5)
        );
    }
    drop(bots);
    Ok(Idle {
        connections,
        before,
        after,
        connect_secs: connected.duration_since(deadline - wait).as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: Instant, cpu: f64, clients: u64, snapshots: u64) -> Sample {
        Sample {
            at,
            stats: json!({ "clients": clients, "snapshots": snapshots, "overruns": 1 }),
            hist: None,
            server: Some(ProcSample {
                cpu_s: cpu,
                rss_kib: 1000 + clients,
                ..ProcSample::default()
            }),
            bots: None,
        }
    }

    #[test]
    fn the_window_takes_the_lines_inside_it() {
        let t0 = Instant::now();
        let s = |i: u64| t0 + Duration::from_secs(i);
        let samples: Vec<_> = (0..10)
            .map(|i| sample(s(i), i as f64 * 0.5, i, 100))
            .collect();
        // From 2.5 s to 7.2 s: the lines at 4..=7 (each covers the second
        // before it), measured from the sample at 3.
        let w = Window::from_samples(
            &samples,
            s(2) + Duration::from_millis(500),
            s(7) + Duration::from_millis(200),
        )
        .unwrap();
        assert_eq!(w.secs, 4.0);
        assert_eq!(w.snapshots, 400);
        assert_eq!(w.overruns, 4);
        assert_eq!((w.clients_min, w.clients_max), (4, 7));
        assert!((w.server_cpu_s - 2.0).abs() < 1e-9);
        assert!((w.server_cpu_pct() - 50.0).abs() < 1e-9);
        assert_eq!(w.cpu_us_per_snapshot(), Some(5_000.0));
        assert_eq!(
            (w.start.rss_kib, w.end.rss_kib, w.rss_max_kib),
            (1003, 1007, 1007)
        );
        assert!(w.bots_cpu_pct().is_none());
        // Too short for a whole line.
        assert!(Window::from_samples(&samples, s(3) + Duration::from_millis(100), s(4)).is_none());
    }

    #[test]
    fn perf_lines_are_condensed() {
        let report = "# Samples: 1K of event 'cpu-clock'\n#\n    31.50%  [k] tcp_sendmsg          \n     2.00%  [.] tickwire_server::room::Room<G>::tick        -      -   \n\n     1.00%  [.] c\n";
        let top = top_symbols(report, 2);
        assert_eq!(
            top,
            " 31.50%  [k] tcp_sendmsg\n  2.00%  [.] tickwire_server::room::Room<G>::tick"
        );
    }
}
