//! `cargo xtask bench wasm`: the client's snapshot decode + apply benchmark
//! in headless Chromium next to its native twin: the same Rust code
//! (`arena_web::bench::arena_snapshot_decode`), the same synthetic world,
//! the same cargo profile, in one invocation.
//!
//! ```text
//!  xtask ── cargo xtask web (profile wasm-release) ──▶ <target>/www
//!    ├── cargo test -p arena-web --profile wasm-release … native_snapshot_bench   (native run)
//!    └── chromium --headless … http://127.0.0.1:PORT/bench.html?…&report=/bench-result  (browser run)
//!          ▲ a small HTTP server in this process serves <target>/www (cross-origin
//!          └ isolated, so performance.now() has 5 µs steps) and takes the POSTed result
//! ```
//!
//! Native and browser runs alternate (`--runs`, default 3); each run is a
//! fresh process, and each reports the median of its timed batches (see
//! `example-game/web/src/bench.rs`). The summary is the median over the runs and
//! the wasm / native ratio, against issue 11's target of at most 3×. Raw
//! results go to `<target>/bench/wasm/results.json`. Every wait has a
//! deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde_json::{Value, json};

use super::report::Machine;
use crate::{setup, util, web};

/// The flags the project runs Chromium with (as the browser e2e test does).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// Where the page POSTs its result.
const REPORT_PATH: &str = "/bench-result";
/// What the native twin prints before its JSON.
const NATIVE_PREFIX: &str = "native decode+apply bench: ";
/// Issue 11's target: the browser within this factor of native.
const TARGET_RATIO: f64 = 3.0;

/// `cargo xtask bench wasm` options.
#[derive(Args, Debug, Clone)]
pub(crate) struct WasmArgs {
    /// Entities in the synthetic arena world.
    #[arg(long, default_value_t = 1000)]
    entities: u32,
    /// Runs per timed batch (one more batch warms up).
    #[arg(long, default_value_t = 200)]
    iterations: u32,
    /// Timed batches per figure; a run reports their median.
    #[arg(long, default_value_t = 11)]
    samples: u32,
    /// Native and browser runs, alternating; the summary is their median.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Seconds a browser run may take, from launch to result.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// An extra Chromium flag (repeatable), e.g. `--chromium-arg=--js-flags=--liftoff-only`.
    #[arg(long = "chromium-arg", allow_hyphen_values = true)]
    chromium_args: Vec<String>,
    /// Measure this already built web client (a folder laid out as
    /// `cargo xtask web` lays out <target>/www) instead of building one; the
    /// native twin, and the bench page copied into DIR, come from this tree.
    #[arg(long, value_name = "DIR")]
    www: Option<PathBuf>,
}

/// One side's figures from one run.
#[derive(Debug, Clone, Copy)]
struct Figures {
    full_us: f64,
    delta_us: f64,
}

impl Figures {
    fn of(bench: &Value) -> Result<Self> {
        let get = |k: &str| {
            bench[k]
                .as_f64()
                .ok_or_else(|| anyhow!("the result has no number `{k}`: {bench}"))
        };
        Ok(Self {
            full_us: get("full_us")?,
            delta_us: get("delta_us")?,
        })
    }
}

/// Runs the comparison; fails when a run could not be measured (a missed
/// target is reported, not a failure).
pub(crate) fn run(args: &WasmArgs) -> Result<ExitCode> {
    let started = Instant::now();
    setup::ensure_wasm_target()?;
    let chromium = setup::ensure_chromium()?.chromium;
    let www = match &args.www {
        Some(dir) => {
            let dir = dir
                .canonicalize()
                .with_context(|| format!("--www {}", dir.display()))?;
            if !dir.join("pkg").join("arena_web_bg.wasm").is_file() {
                bail!("--www {}: no pkg/arena_web_bg.wasm there", dir.display());
            }
            dir
        }
        None => web::build_web(true)?,
    };
    if args.www.is_some() {
        // The page from this tree: a bundle built elsewhere may lack it or
        // hold another version.
        for page in ["bench.html", "bench.js"] {
            let from = web::static_dir().join(page);
            std::fs::copy(&from, www.join(page))
                .with_context(|| format!("copying {} into {}", from.display(), www.display()))?;
        }
    }
    let out = util::target_dir().join("bench").join("wasm");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    // Build the native twin before anything is timed.
    let mut build = native_command(args);
    build.arg("--no-run");
    util::run(&mut build).context("building the native twin (arena-web's tests)")?;

    let machine = Machine::probe();
    let chromium_version = util::output(Command::new(&chromium).arg("--version"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    let server = Server::start(&www)?;
    let query = format!(
        "entities={}&iterations={}&samples={}&report={REPORT_PATH}",
        args.entities, args.iterations, args.samples
    );
    let url = format!("http://{}/bench.html?{query}", server.addr);

    let mut native_runs = Vec::new();
    let mut wasm_runs = Vec::new();
    for run in 1..=args.runs.max(1) {
        let native = run_native(args)?;
        eprintln!("run {run}: native {native}");
        let browser = run_browser(
            &chromium,
            &args.chromium_args,
            &url,
            &server,
            args,
            &out,
            run,
        )?;
        eprintln!("run {run}: wasm   {}", browser["bench"]);
        native_runs.push(native);
        wasm_runs.push(browser);
    }
    let load_end = loadavg();

    let natives = native_runs
        .iter()
        .map(Figures::of)
        .collect::<Result<Vec<_>>>()?;
    let wasms = wasm_runs
        .iter()
        .map(|r| Figures::of(&r["bench"]))
        .collect::<Result<Vec<_>>>()?;
    let med = |v: &[Figures], f: fn(&Figures) -> f64| median(v.iter().map(f).collect());
    let native = Figures {
        full_us: med(&natives, |f| f.full_us),
        delta_us: med(&natives, |f| f.delta_us),
    };
    let wasm = Figures {
        full_us: med(&wasms, |f| f.full_us),
        delta_us: med(&wasms, |f| f.delta_us),
    };
    let ratio_full = wasm.full_us / native.full_us;
    let ratio_delta = wasm.delta_us / native.delta_us;
    let verdict = |r: f64| if r <= TARGET_RATIO { "met" } else { "not met" };
    let first = &wasm_runs[0];

    println!();
    println!(
        "client apply, native vs wasm: {} entities, {} runs per batch, {} batches per figure, {} runs each side",
        args.entities,
        args.iterations,
        args.samples,
        natives.len()
    );
    println!(
        "machine: nproc {}, CPU {}, {}, {}, load average {} at start, {} at end",
        machine.nproc, machine.cpu, machine.rustc, chromium_version, machine.load, load_end
    );
    println!(
        "browser: cross-origin isolated {}, performance.now() step {} ms",
        first["cross_origin_isolated"], first["timer_step_ms"]
    );
    println!("| run | native full µs | wasm full µs | native delta µs | wasm delta µs |");
    println!("|---|---|---|---|---|");
    for (i, (n, w)) in natives.iter().zip(&wasms).enumerate() {
        println!(
            "| {} | {:.1} | {:.1} | {:.2} | {:.2} |",
            i + 1,
            n.full_us,
            w.full_us,
            n.delta_us,
            w.delta_us
        );
    }
    println!(
        "| **median** | **{:.1}** | **{:.1}** | **{:.2}** | **{:.2}** |",
        native.full_us, wasm.full_us, native.delta_us, wasm.delta_us
    );
    println!(
        "wasm / native: full {ratio_full:.2}× ({} ≤ {TARGET_RATIO}×), delta {ratio_delta:.2}× ({} ≤ {TARGET_RATIO}×)",
        verdict(ratio_full),
        verdict(ratio_delta)
    );

    let results = out.join("results.json");
    let doc = json!({
        "command": format!("cargo xtask {}", std::env::args().skip(1).collect::<Vec<_>>().join(" ")),
        "machine": machine.to_json(),
        "loadavg_end": load_end,
        "chromium": chromium_version,
        "chromium_args": args.chromium_args,
        "www": www,
        "entities": args.entities,
        "iterations": args.iterations,
        "samples": args.samples,
        "native_runs": native_runs,
        "wasm_runs": wasm_runs,
        "median": {
            "native": { "full_us": native.full_us, "delta_us": native.delta_us },
            "wasm": { "full_us": wasm.full_us, "delta_us": wasm.delta_us },
            "ratio": { "full": ratio_full, "delta": ratio_delta },
        },
        "target_ratio": TARGET_RATIO,
    });
    std::fs::write(&results, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("writing {}", results.display()))?;
    eprintln!(
        "\nxtask bench wasm: {} s; results in {}",
        started.elapsed().as_secs(),
        results.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `cargo test` of the native twin with the browser build's profile.
fn native_command(args: &WasmArgs) -> Command {
    let mut cmd = util::cargo();
    cmd.args([
        "test",
        "--quiet",
        "-p",
        web::PACKAGE,
        "--profile",
        web::WASM_PROFILE,
        "--lib",
    ])
    .env(
        "TICKWIRE_BENCH",
        format!("{},{},{}", args.entities, args.iterations, args.samples),
    );
    cmd
}

/// One native run: the ignored test, its JSON line parsed.
fn run_native(args: &WasmArgs) -> Result<Value> {
    let mut cmd = native_command(args);
    cmd.args([
        "--",
        "--ignored",
        "--exact",
        "bench::tests::native_snapshot_bench",
        "--nocapture",
    ]);
    let text = util::output(&mut cmd).context("running the native twin")?;
    native_result(&text)
}

/// The JSON the native twin printed.
fn native_result(text: &str) -> Result<Value> {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(NATIVE_PREFIX))
        .ok_or_else(|| anyhow!("the native twin printed no `{NATIVE_PREFIX}` line:\n{text}"))?;
    serde_json::from_str(line).with_context(|| format!("the native twin's JSON: {line}"))
}

/// One browser run: a fresh Chromium profile, the bench page, its POSTed
/// result within `args.timeout`.
fn run_browser(
    chromium: &Path,
    extra: &[String],
    url: &str,
    server: &Server,
    args: &WasmArgs,
    out: &Path,
    run: u32,
) -> Result<Value> {
    let profile = std::env::temp_dir().join(format!(
        "tickwire-bench-chromium-{}-{run}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).with_context(|| format!("creating {}", profile.display()))?;
    let log_path = out.join(format!("chromium-{run}.log"));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    // Drop anything a previous run posted late.
    while server.results.try_recv().is_ok() {}
    let mut child = Command::new(chromium)
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", chromium.display()))?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let outcome = loop {
        match server.results.recv_timeout(Duration::from_millis(200)) {
            Ok(body) => break Ok(body),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err(anyhow!("the bench page server stopped"));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Err(anyhow!(
                "chromium exited ({status}) before the page reported; see {}",
                log_path.display()
            ));
        }
        if Instant::now() > deadline {
            break Err(anyhow!(
                "no result from the bench page within {} s; see {}",
                args.timeout,
                log_path.display()
            ));
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&profile);
    let body = outcome?;
    let v: Value = serde_json::from_str(&body)
        .with_context(|| format!("the page's result is not JSON: {body}"))?;
    if let Some(err) = v.get("error") {
        bail!("the bench page failed: {err}");
    }
    Ok(v)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 0 => (v[mid - 1] + v[mid]) / 2.0,
        _ => v[mid],
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A static file server on 127.0.0.1 for the bench page: serves `root`
/// cross-origin isolated and hands each POST to [`REPORT_PATH`] to
/// `results`. Its threads end with the process.
struct Server {
    addr: std::net::SocketAddr,
    results: mpsc::Receiver<String>,
}

impl Server {
    fn start(root: &Path) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the bench page server")?;
        let addr = listener.local_addr()?;
        let (tx, results) = mpsc::channel();
        let root = root.to_path_buf();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, tx) = (root.clone(), tx.clone());
                // One thread per connection: Chromium may hold a preconnected
                // socket idle while it requests on another.
                std::thread::spawn(move || {
                    let _ = serve(stream, &root, &tx);
                });
            }
        });
        Ok(Self { addr, results })
    }
}

/// The most a request head or a posted result may take.
const MAX_REQUEST: usize = 1 << 20;

/// Answers one request on `stream`, then closes it.
fn serve(stream: TcpStream, root: &Path, results: &mpsc::Sender<String>) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0usize;
    let mut head = request_line.len();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        head += line.len();
        if head > MAX_REQUEST {
            bail!("request head too long");
        }
        if let Some((k, v)) = line.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().context("bad content-length")?;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let mut stream = stream;
    match method {
        "POST" if path == REPORT_PATH && length <= MAX_REQUEST => {
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            respond(&mut stream, "204 No Content", "text/plain", &[])?;
            let _ = results.send(String::from_utf8_lossy(&body).into_owned());
        }
        "GET" => match file(root, path) {
            Some((bytes, mime)) => respond(&mut stream, "200 OK", mime, &bytes)?,
            None => respond(&mut stream, "404 Not Found", "text/plain", b"not found")?,
        },
        _ => respond(&mut stream, "400 Bad Request", "text/plain", b"bad request")?,
    }
    Ok(())
}

/// The file at URL path `path` under `root`, and its media type; `None` for
/// a missing file or a path that would leave `root`.
fn file(root: &Path, path: &str) -> Option<(Vec<u8>, &'static str)> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    if rel
        .split('/')
        .any(|part| part.is_empty() || part == ".." || part.contains('\\'))
    {
        return None;
    }
    let full: PathBuf = root.join(rel);
    let mime = match full.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    std::fs::read(&full).ok().map(|b| (b, mime))
}

fn respond(stream: &mut TcpStream, status: &str, mime: &str, body: &[u8]) -> Result<()> {
    // Cross-origin isolated: performance.now() steps by 5 µs instead of 100 µs.
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {mime}\r\nContent-Length: {}\r\n\
         Cross-Origin-Opener-Policy: same-origin\r\nCross-Origin-Embedder-Policy: require-corp\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_native_line_is_found_among_the_test_output() {
        let text = "\nrunning 1 test\nnative decode+apply bench: {\"full_us\":300.5,\"delta_us\":12.25}\ntest bench::tests::native_snapshot_bench ... ok\n";
        let v = native_result(text).unwrap();
        let f = Figures::of(&v).unwrap();
        assert_eq!((f.full_us, f.delta_us), (300.5, 12.25));
        assert!(native_result("running 0 tests\n").is_err());
        assert!(Figures::of(&json!({ "full_us": 1.0 })).is_err());
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn files_stay_under_the_root() {
        let root = web::static_dir();
        let (page, mime) = file(&root, "/bench.html").unwrap();
        assert!(String::from_utf8_lossy(&page).contains("bench.js"));
        assert_eq!(mime, "text/html; charset=utf-8");
        assert!(file(&root, "/").is_some(), "index.html");
        assert!(file(&root, "/../Cargo.toml").is_none());
        assert!(file(&root, "/pkg//x.js").is_none());
        assert!(file(&root, "/missing.js").is_none());
    }

    #[test]
    fn the_server_serves_isolated_pages_and_takes_a_result() {
        let root = web::static_dir();
        let server = Server::start(&root).unwrap();
        let ask = |req: String| {
            let mut s = TcpStream::connect(server.addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(req.as_bytes()).unwrap();
            let mut text = String::new();
            s.read_to_string(&mut text).unwrap();
            text
        };
        let page = ask("GET /bench.html?x=1 HTTP/1.1\r\nHost: a\r\n\r\n".into());
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        assert!(page.contains("Cross-Origin-Embedder-Policy: require-corp"));
        assert!(ask("GET /nope HTTP/1.1\r\n\r\n".into()).starts_with("HTTP/1.1 404"));
        let body = "{\"bench\":{}}";
        let posted = ask(format!(
            "POST {REPORT_PATH} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        assert!(posted.starts_with("HTTP/1.1 204"), "{posted}");
        assert_eq!(
            server
                .results
                .recv_timeout(Duration::from_secs(10))
                .unwrap(),
            body
        );
    }
}
