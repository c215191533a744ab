//! The child processes of a bench run: `arena-server` and `arena-bots`,
//! each pinned with `taskset` (when installed) and started with its soft
//! `RLIMIT_NOFILE` raised, and stopped when its [`Guard`] drops, on every
//! path out (success, error, or Ctrl-C, which [`Interrupt`] turns into an
//! error).
//!
//! The server runs with `--stats-interval 1s`. A reader thread takes its
//! `STATS` lines and, for each, samples `/proc` for the server and the bots
//! (CPU time, RSS, peak RSS, open descriptors), so that a measurement window
//! is a run of consecutive lines whose CPU and counters cover the same time.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use serde_json::Value;

use super::procfs;

/// The hard `RLIMIT_NOFILE` on the machine this was written for; children
/// ask for this soft limit and fall back to their hard limit.
const NOFILE: u32 = 20_000;
/// How long a child gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Set by Ctrl-C (or SIGTERM); every wait of the bench checks it.
#[derive(Clone, Default)]
pub(crate) struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Installs the handler (once per process).
    pub(crate) fn install() -> Result<Self> {
        let flag = Self::default();
        let f = flag.clone();
        ctrlc::set_handler(move || f.0.store(true, Ordering::SeqCst))
            .context("installing the Ctrl-C handler")?;
        Ok(flag)
    }

    /// An error once interrupted.
    pub(crate) fn check(&self) -> Result<()> {
        if self.0.load(Ordering::SeqCst) {
            bail!("interrupted; stopping every child process");
        }
        Ok(())
    }

    /// Sleeps up to `d`, in short steps, failing once interrupted.
    pub(crate) fn sleep(&self, d: Duration) -> Result<()> {
        let end = Instant::now() + d;
        loop {
            self.check()?;
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
        }
    }
}

/// A child process that is stopped when dropped: SIGTERM, then SIGKILL
/// after [`STOP_GRACE`].
pub(crate) struct Guard {
    child: Child,
    name: String,
}

impl Guard {
    pub(crate) fn spawn(mut cmd: Command, name: &str) -> Result<Self> {
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name}: `{}`", crate::util::display(&cmd)))?;
        Ok(Self {
            child,
            name: name.to_owned(),
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the exit until `deadline`; `None` when still running.
    pub(crate) fn wait_until(
        &mut self,
        deadline: Instant,
        stop: &Interrupt,
    ) -> Result<Option<ExitStatus>> {
        loop {
            if let Some(s) = self.child.try_wait()? {
                return Ok(Some(s));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            stop.sleep(Duration::from_millis(50))?;
        }
    }

    pub(crate) fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // No libc here (unsafe is forbidden): `kill` sends the SIGTERM.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let end = Instant::now() + STOP_GRACE;
        while Instant::now() < end {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "{} did not stop within {STOP_GRACE:?}; killing it",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How children are started: pinned to a CPU with `taskset` when it exists,
/// with the soft descriptor limit raised.
#[derive(Clone, Debug)]
pub(crate) struct Launcher {
    pub(crate) taskset: bool,
}

impl Launcher {
    /// `sh -c 'ulimit -Sn N || …; exec "$@"' [taskset -c CPU] program args…`
    /// (the shell and taskset exec, so the pid is the program's).
    pub(crate) fn command(&self, program: &Path, cpu: u32, args: &[String]) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"ulimit -Sn "$0" 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"; exec "$@""#)
            .arg(NOFILE.to_string());
        if self.taskset {
            cmd.args(["taskset", "-c", &cpu.to_string()]);
        }
        cmd.arg(program).args(args);
        cmd
    }
}

/// `/proc` figures of one process at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ProcSample {
    pub(crate) cpu_s: f64,
    pub(crate) rss_kib: u64,
    pub(crate) hwm_kib: u64,
    pub(crate) fds: u64,
    pub(crate) runqueue_s: f64,
}

impl ProcSample {
    pub(crate) fn of(pid: u32) -> Option<Self> {
        Some(Self {
            cpu_s: procfs::cpu_seconds(pid).ok()?,
            rss_kib: procfs::status_kib(pid, "VmRSS").ok()?,
            hwm_kib: procfs::status_kib(pid, "VmHWM").ok()?,
            fds: std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64,
            runqueue_s: procfs::runqueue_wait_seconds(pid).unwrap_or(0.0),
        })
    }
}

/// One `STATS` line of the server, with `/proc` samples taken as it arrived.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub(crate) at: Instant,
    pub(crate) stats: Value,
    pub(crate) hist: Option<Histogram<u64>>,
    pub(crate) server: Option<ProcSample>,
    pub(crate) bots: Option<ProcSample>,
}

impl Sample {
    pub(crate) fn u(&self, key: &str) -> u64 {
        self.stats[key].as_u64().unwrap_or(0)
    }
}

/// Parses the JSON of a `STATS ` line and its histogram.
pub(crate) fn parse_stats(json: &str) -> Result<(Value, Option<Histogram<u64>>)> {
    let v: Value = serde_json::from_str(json).context("a STATS line that is not JSON")?;
    let hist = v["tick_hist"].as_str().and_then(|b64| {
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        Deserializer::new().deserialize(&mut raw.as_slice()).ok()
    });
    Ok((v, hist))
}

/// A running `arena-server`.
pub(crate) struct Server {
    pub(crate) guard: Guard,
    pub(crate) port: u16,
    pub(crate) samples: Arc<Mutex<Vec<Sample>>>,
    /// The pid of the bots, once started (sampled with each line).
    pub(crate) bots_pid: Arc<Mutex<Option<u32>>>,
    /// Ends at the server's EOF, after the guard stopped it.
    _reader: JoinHandle<()>,
}

impl Server {
    /// Starts the server on CPU `cpu` with `args` (plus `--addr 127.0.0.1:0`,
    /// `--stats-interval 1s`, `--drain-grace 0s`, so that the SIGTERM that
    /// stops it does not wait for rooms, and `--cert-out cert`), and waits
    /// (≤ 60 s) for its `open` line. Everything but `STATS` lines goes to
    /// `log`.
    pub(crate) fn start(
        launcher: &Launcher,
        bin: &Path,
        args: &[String],
        cert: &Path,
        log: &Path,
        stop: &Interrupt,
    ) -> Result<Self> {
        let mut all: Vec<String> = [
            "--addr",
            "127.0.0.1:0",
            "--stats-interval",
            "1s",
            "--drain-grace",
            "0s",
            "--cert-out",
        ]
        .map(str::to_owned)
        .into();
        all.push(cert.display().to_string());
        all.extend_from_slice(args);
        let mut cmd = launcher.command(bin, 0, &all);
        let log_file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        writeln!(&log_file, "$ {}", crate::util::display(&cmd))?;
        cmd.env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file.try_clone()?);
        let mut guard = Guard::spawn(cmd, "arena-server")?;
        let pid = guard.pid();
        let stdout = guard.take_stdout().context("server stdout")?;
        let samples = Arc::new(Mutex::new(Vec::new()));
        let bots_pid = Arc::new(Mutex::new(None));
        let (port_tx, port_rx) = mpsc::channel();
        let reader = {
            let (samples, bots_pid) = (Arc::clone(&samples), Arc::clone(&bots_pid));
            let log = OpenOptions::new().append(true).open(log)?;
            std::thread::spawn(move || read_server(stdout, pid, &samples, &bots_pid, log, port_tx))
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            stop.check()?;
            match port_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(port) => break port,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(_) => {
                    let _ = guard.wait_until(Instant::now() + Duration::from_secs(2), stop);
                    bail!(
                        "arena-server did not start; its log ({}):\n{}",
                        log.display(),
                        tail(log, 15)
                    );
                }
            }
        };
        Ok(Self {
            guard,
            port,
            samples,
            bots_pid,
            _reader: reader,
        })
    }

    /// A copy of the lines so far.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The newest line.
    pub(crate) fn last(&self) -> Option<Sample> {
        let s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.last().cloned()
    }
}

fn read_server(
    stdout: std::process::ChildStdout,
    pid: u32,
    samples: &Mutex<Vec<Sample>>,
    bots_pid: &Mutex<Option<u32>>,
    mut log: File,
    port_tx: mpsc::Sender<u16>,
) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(json) = line.strip_prefix("STATS ") {
            let at = Instant::now();
            let bots = *bots_pid.lock().unwrap_or_else(|e| e.into_inner());
            let Ok((stats, hist)) = parse_stats(json) else {
                let _ = writeln!(log, "{line}");
                continue;
            };
            let sample = Sample {
                at,
                stats,
                hist,
                server: ProcSample::of(pid),
                bots: bots.and_then(ProcSample::of),
            };
            samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(sample);
            continue;
        }
        if let Some(port) = open_port(&line) {
            let _ = port_tx.send(port);
        }
        let _ = writeln!(log, "{line}");
    }
}

/// The port of arena-server's `open  https://localhost:PORT/` line.
pub(crate) fn open_port(line: &str) -> Option<u16> {
    let rest = line.trim().strip_prefix("open")?.trim();
    let after = rest.rsplit_once(':')?.1;
    after.trim_end_matches('/').parse().ok()
}

/// The last `n` lines of a file, for error messages.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A running `arena-bots --json`.
pub(crate) struct Bots {
    pub(crate) guard: Guard,
    pub(crate) started: Instant,
    stdout: Option<JoinHandle<String>>,
    log: PathBuf,
}

impl Bots {
    /// Starts the bots on CPU 1 against the server; tells the server's
    /// reader their pid.
    pub(crate) fn start(
        launcher: &Launcher,
        bin: &Path,
        args: &[String],
        server: &Server,
        log: &Path,
    ) -> Result<Self> {
        let mut cmd = launcher.command(bin, 1, args);
        let log_file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        writeln!(&log_file, "$ {}", crate::util::display(&cmd))?;
        cmd.arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        let mut guard = Guard::spawn(cmd, "arena-bots")?;
        let started = Instant::now();
        *server.bots_pid.lock().unwrap_or_else(|e| e.into_inner()) = Some(guard.pid());
        let mut out = guard.take_stdout().context("bots stdout")?;
        let stdout = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        Ok(Self {
            guard,
            started,
            stdout: Some(stdout),
            log: log.to_path_buf(),
        })
    }

    /// Waits (until `deadline`) for the bots to finish and returns their
    /// JSON report.
    pub(crate) fn finish(mut self, deadline: Instant, stop: &Interrupt) -> Result<Value> {
        let status = self.guard.wait_until(deadline, stop)?;
        let Some(status) = status else {
            bail!(
                "arena-bots did not finish in time; log {}:\n{}",
                self.log.display(),
                tail(&self.log, 10)
            );
        };
        let out = self
            .stdout
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let json = out.find('{').map(|i| &out[i..]).unwrap_or("");
        match serde_json::from_str::<Value>(json) {
            Ok(v) => Ok(v),
            Err(_) => Err(anyhow!(
                "arena-bots exited ({status}) without a report; log {}:\n{}",
                self.log.display(),
                tail(&self.log, 10)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_comes_from_the_open_line() {
        assert_eq!(open_port("open  https://localhost:43211/"), Some(43211));
        assert_eq!(open_port("open  http://127.0.0.1:80/"), Some(80));
        assert_eq!(open_port("certificate written to x"), None);
        assert_eq!(open_port("open  https://localhost:notaport/"), None);
    }

    #[test]
    fn a_stats_line_gives_its_counters_and_histogram() {
        use hdrhistogram::serialization::{Serializer as _, V2Serializer};
        // As arena::cli::stats_line writes it: V2, standard base64.
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        h.record(413).unwrap();
        let mut raw = Vec::new();
        V2Serializer::new().serialize(&h, &mut raw).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
        let line = format!(r#"{{"clients":3,"snapshots":10,"tick_hist":"{b64}","ticks":1}}"#);
        let (v, hist) = parse_stats(&line).unwrap();
        assert_eq!(v["clients"], 3);
        let hist = hist.expect("a histogram");
        assert_eq!(hist.len(), 1);
        assert!(hist.max().abs_diff(413) <= 1, "{}", hist.max());
        assert!(parse_stats("not json").is_err());
    }

    #[test]
    fn the_launcher_raises_the_limit_and_pins() {
        let cmd = Launcher { taskset: true }.command(Path::new("/bin/x"), 1, &["-a".into()]);
        let line = crate::util::display(&cmd);
        assert!(line.starts_with("sh -c ulimit -Sn"), "{line}");
        assert!(line.ends_with("20000 taskset -c 1 /bin/x -a"), "{line}");
        let cmd = Launcher { taskset: false }.command(Path::new("/bin/x"), 0, &[]);
        assert!(crate::util::display(&cmd).ends_with("20000 /bin/x"));
    }
}
