//! `cargo xtask bench`: the capacity report.
//!
//! Builds the release `arena-server` and `arena-bots`, runs them against
//! each other on this machine (loopback only, every run bounded in time),
//! and writes the results: raw JSON and logs in `target/bench/<full|quick>/`,
//! and, for a complete full run, the generated region of `BENCHMARKS.md`
//! (between [`report::BEGIN`] and [`report::END`]).
//!
//! ```text
//!  xtask ── taskset -c 0 ──▶ arena-server --stats-interval 1s ── STATS lines ──▶ reader thread
//!    │                              ▲                                         (+ /proc samples of
//!    └──── taskset -c 1 ──▶ arena-bots --json ── WSS/QUIC (127.0.0.1) ─┘        server and bots)
//! ```
//!
//! Six tables: client scale, entity scale, delta vs full, WSS vs QUIC, idle
//! and churn (see [`tables`]), and the marginal cost of a client (see
//! [`marginal`]).
//!
//! `cargo xtask bench wasm` is a separate, shorter benchmark: the client's
//! snapshot apply in headless Chromium next to its native twin (see
//! [`wasm`]).

// The /proc helpers of the `replication-load` benchmark, shared rather than copied.
mod floor;
mod marginal;
#[path = "../../../benches/src/procfs.rs"]
mod procfs;
mod procs;
mod report;
mod scenario;
mod tables;
mod wasm;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::util;
use procs::{Interrupt, Launcher};
use scenario::Ctx;
use tables::{Section, Sizes};

/// `cargo xtask bench` options.
#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct BenchArgs {
    /// Another benchmark instead of the capacity report.
    #[command(subcommand)]
    other: Option<Other>,

    /// A smoke run (small counts, a few seconds per run, about 2 minutes in
    /// all) to check that the tool works. Writes only to target/bench/quick/.
    #[arg(long)]
    quick: bool,

    /// Only these tables, comma separated: client-scale, entity-scale,
    /// delta, transport, idle-churn, marginal (or 1 to 6). A partial run does not
    /// touch BENCHMARKS.md.
    #[arg(long, value_delimiter = ',', value_parser = parse_table)]
    only: Vec<Table>,

    /// Length of the churn soak, e.g. `10m`, `90s` (the quick run uses 20 s).
    #[arg(long, default_value = "10m", value_parser = parse_secs)]
    soak: Duration,

    /// Record a `perf record -e cpu-clock -g` profile of the server during
    /// the 500-bot client-scale window and add its top symbols.
    #[arg(long)]
    perf: bool,
}

/// The benchmarks other than the capacity report.
#[derive(Subcommand, Debug, Clone)]
enum Other {
    /// The client's snapshot decode + apply (1,000 entities, full and a
    /// 10 %-changed delta) in headless Chromium and natively, same code and
    /// profile, alternating runs; prints both, the ratio and the 3× target
    /// (about 2 minutes after the builds).
    Wasm(wasm::WasmArgs),
    /// The fleet figures: one redis-server, three arena-server nodes (their
    /// defaults: heartbeat 2 s, TTL 10 s) and 200 players on loopback; join
    /// latency, Redis commands per heartbeat and per matchmake, and
    /// matchmaking throughput with p99 (the ignored `fleet_bench` test of
    /// example-game/tests/fleet.rs, release build; about a minute after it).
    Fleet,
}

/// The tables, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Table {
    ClientScale,
    EntityScale,
    Delta,
    Transport,
    IdleChurn,
    Marginal,
}

const ALL: [Table; 6] = [
    Table::ClientScale,
    Table::EntityScale,
    Table::Delta,
    Table::Transport,
    Table::IdleChurn,
    Table::Marginal,
];

fn parse_table(s: &str) -> Result<Table, String> {
    if let Ok(n) = s.trim().parse::<usize>() {
        return n
            .checked_sub(1)
            .and_then(|i| ALL.get(i).copied())
            .ok_or_else(|| format!("table {n}: there are tables 1 to 6"));
    }
    Table::from_str(s.trim(), true).map_err(|_| {
        format!(
            "{s:?}: expected client-scale, entity-scale, delta, transport, idle-churn, marginal or 1-6"
        )
    })
}

/// `90`, `90s` or `10m`.
fn parse_secs(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (n, mult) = match t.strip_suffix('m') {
        Some(n) => (n, 60),
        None => (t.strip_suffix('s').unwrap_or(t), 1),
    };
    n.parse::<u64>()
        .map(|n| Duration::from_secs(n * mult))
        .map_err(|_| format!("{s:?}: expected seconds (`90`, `90s`) or minutes (`10m`)"))
}

/// Runs the bench; the exit code fails when a run could not be measured.
pub(crate) fn run(args: &BenchArgs) -> Result<ExitCode> {
    if let Some(Other::Wasm(wasm)) = &args.other {
        return wasm::run(wasm);
    }
    if let Some(Other::Fleet) = &args.other {
        return fleet();
    }
    let stop = Interrupt::install()?;
    let started = Instant::now();
    util::run(util::cargo().args([
        "build",
        "--release",
        "-p",
        "arena",
        "--bin",
        "arena-server",
        "--bin",
        "arena-bots",
        "-p",
        "tickwire-benches",
        "--bin",
        "replication-load",
    ]))
    .context("building the release arena-server, arena-bots and replication-load (the floor)")?;
    let bin = util::target_dir().join("release");
    let kind = if args.quick { "quick" } else { "full" };
    let out = util::target_dir().join("bench").join(kind);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let taskset = util::find_on_path("taskset").is_some();
    if !taskset {
        eprintln!("taskset is not installed: the server and the bots will not be pinned");
    }
    let perf = if args.perf {
        let p = util::find_on_path("perf");
        if p.is_none() {
            eprintln!("perf is not installed: no profile will be recorded");
        }
        p
    } else {
        None
    };
    let ctx = Ctx {
        launcher: Launcher { taskset },
        server_bin: bin.join("arena-server"),
        bots_bin: bin.join("arena-bots"),
        floor_bin: bin.join("replication-load"),
        out: out.clone(),
        stop,
        perf,
        perf_asked: args.perf,
    };
    let machine = report::Machine::probe();
    let command = format!(
        "cargo xtask {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    let sizes = Sizes::new(args.quick, args.soak);
    let chosen: Vec<Table> = ALL
        .into_iter()
        .filter(|t| args.only.is_empty() || args.only.contains(t))
        .collect();

    let results = out.join("results.json");
    let mut sections: Vec<Section> = Vec::new();
    for table in &chosen {
        let section = match table {
            Table::ClientScale => tables::client_scale(&ctx, &sizes),
            Table::EntityScale => tables::entity_scale(&ctx, &sizes),
            Table::Delta => tables::delta_vs_full(&ctx, &sizes),
            Table::Transport => tables::transport(&ctx, &sizes),
            Table::IdleChurn => tables::idle_and_churn(&ctx, &sizes),
            Table::Marginal => marginal::marginal(&ctx, &sizes),
        }?;
        sections.push(section);
        write_json(&results, &machine, &command, args, &sections)?;
    }

    let load_end = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let md: Vec<String> = sections.iter().map(|s| s.markdown.clone()).collect();
    let text = report::section(
        &machine, &command, args.quick, taskset, &load_end, &results, &md,
    );
    let section_path = out.join("section.md");
    std::fs::write(&section_path, &text)?;
    println!("{text}");
    let failures: usize = sections.iter().map(|s| s.failures).sum();
    eprintln!(
        "\nxtask bench: {} table(s) in {:.0} s; results in {} and {}",
        sections.len(),
        started.elapsed().as_secs_f64(),
        results.display(),
        section_path.display()
    );
    if args.quick || chosen.len() < ALL.len() {
        eprintln!("BENCHMARKS.md not changed: only a complete full run writes it");
    } else if failures > 0 {
        eprintln!("BENCHMARKS.md not changed: {failures} run(s) could not be measured");
    } else {
        let path = util::repo_root().join("BENCHMARKS.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, report::replace_region(&doc, &text)?)?;
        eprintln!("BENCHMARKS.md updated");
    }
    if failures > 0 {
        eprintln!(
            "{failures} run(s) could not be measured; see the logs in {}",
            out.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn write_json(
    path: &Path,
    machine: &report::Machine,
    command: &str,
    args: &BenchArgs,
    sections: &[Section],
) -> Result<()> {
    let v = json!({
        "machine": machine.to_json(),
        "command": command,
        "quick": args.quick,
        "tables": sections.iter().map(|s| s.json.clone()).collect::<Vec<Value>>(),
    });
    let text = serde_json::to_string_pretty(&v)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `cargo xtask bench fleet`: runs the ignored `fleet_bench` test (release)
/// with the `redis-server` that `cargo xtask test` uses.
fn fleet() -> Result<ExitCode> {
    let redis = crate::setup::ensure_redis()?;
    let mut cmd = util::cargo();
    cmd.args(["test", "--release", "-p", "arena", "--test", "fleet", "--"])
        .args(["--ignored", "--exact", "fleet_bench", "--nocapture"]);
    redis.export_to(&mut cmd);
    util::run(&mut cmd).context("the fleet benchmark failed")?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_by_name_or_number() {
        assert_eq!(parse_table("2"), Ok(Table::EntityScale));
        assert_eq!(parse_table("idle-churn"), Ok(Table::IdleChurn));
        assert_eq!(parse_table(" Delta "), Ok(Table::Delta));
        assert_eq!(parse_table("6"), Ok(Table::Marginal));
        assert!(parse_table("7").is_err());
        assert!(parse_table("0").is_err());
        assert!(parse_table("speed").is_err());
    }

    #[test]
    fn soak_lengths() {
        assert_eq!(parse_secs("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_secs("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_secs("45"), Ok(Duration::from_secs(45)));
        assert!(parse_secs("1h").is_err());
    }
}
