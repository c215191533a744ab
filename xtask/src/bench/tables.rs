//! The five tables of the capacity report: what each one runs, and how its
//! results read, with the issue's targets and a verdict where it gives one.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::report::{Verdict, f0, f1, f2, mib};
use super::scenario::{self, Ctx, Outcome, Plan, Window, args};

/// The nominal snapshot rate of every table but the idle one.
pub(crate) const RATE: f64 = 60.0;
/// A tick period at 60 Hz, in ms.
const TICK_MS: f64 = 1000.0 / 60.0;
/// Issue 13's floor for "at 60 Hz": snapshots per bot per second.
const MIN_SNAPSHOT_RATE: f64 = 57.0;

/// One table, rendered.
pub(crate) struct Section {
    pub(crate) json: Value,
    pub(crate) markdown: String,
    /// Runs that could not be measured (a missing QUIC is not a failure).
    pub(crate) failures: usize,
}

pub(crate) fn failures<'a>(list: impl IntoIterator<Item = &'a Outcome>) -> usize {
    list.into_iter()
        .filter(|o| o.error.is_some() && !quic_missing(o))
        .count()
}

/// Counts and timings, full or quick (smoke).
pub(crate) struct Sizes {
    pub(crate) quick: bool,
    pub(crate) clients: Vec<u32>,
    /// The client-scale row that gets the perf profile.
    pub(crate) perf_at: u32,
    pub(crate) entity_bots: u32,
    pub(crate) npcs: Vec<usize>,
    pub(crate) delta_npcs: usize,
    /// Table 3's bots: few enough that the bots' core applies 60 full
    /// snapshots a second to each, so that both rows send as many snapshots
    /// and their per-snapshot figures compare. With 100, the full row got
    /// 30–43 a second, and the tick's fixed cost was spread over fewer
    /// snapshots than in the deltas row.
    pub(crate) delta_bots: u32,
    pub(crate) transport_bots: u32,
    pub(crate) idle: u32,
    pub(crate) churn_bots: u32,
    /// Table 6's client counts (at least three, for a slope).
    pub(crate) marginal: Vec<u32>,
    /// Table 6 runs its counts this many times, ascending then descending
    /// in turn, so that a drift of the machine over the minutes of the table
    /// does not tilt the slope.
    pub(crate) marginal_rounds: usize,
    /// Table 6's measured window (longer than the others: the slope is a
    /// small difference between large totals).
    pub(crate) marginal_measure: Duration,
    pub(crate) soak: Duration,
    pub(crate) warmup: Duration,
    pub(crate) measure: Duration,
}

impl Sizes {
    pub(crate) fn new(quick: bool, soak: Duration) -> Self {
        let s = Duration::from_secs;
        if quick {
            Self {
                quick,
                clients: vec![20, 50],
                perf_at: 50,
                entity_bots: 20,
                npcs: vec![1000],
                delta_npcs: 500,
                delta_bots: 20,
                transport_bots: 20,
                idle: 500,
                churn_bots: 60,
                marginal: vec![5, 10, 15],
                marginal_rounds: 1,
                marginal_measure: s(4),
                soak: s(20),
                warmup: s(2),
                measure: s(4),
            }
        } else {
            Self {
                quick,
                clients: vec![100, 250, 500, 1000],
                perf_at: 500,
                entity_bots: 100,
                npcs: vec![1000, 5000, 10_000],
                delta_npcs: 1000,
                delta_bots: 40,
                transport_bots: 100,
                idle: 10_000,
                churn_bots: 175,
                marginal: vec![10, 20, 30, 40, 50],
                marginal_rounds: 2,
                marginal_measure: s(30),
                soak,
                warmup: s(5),
                measure: s(20),
            }
        }
    }

    /// Connects spread over about 40 per second (TLS handshakes are CPU).
    fn ramp(&self, bots: u32) -> Duration {
        let min = if self.quick { 1.0 } else { 3.0 };
        Duration::from_secs_f64((f64::from(bots) / 40.0).max(min))
    }

    pub(crate) fn plan(&self, name: String, bots: u32, server: Vec<String>) -> Plan {
        Plan {
            name,
            server_args: server,
            bots_args: Vec::new(),
            bots,
            quic: false,
            ramp: self.ramp(bots),
            warmup: self.warmup,
            measure: self.measure,
            perf: false,
        }
    }
}

/// Server arguments of a one-room run at 60 Hz with a snapshot every tick
/// and no server-side AI players.
pub(crate) fn one_room(players: u32) -> Vec<String> {
    let cap = (players + 100).to_string();
    let mut a = args(&[
        "--tick-rate",
        "60",
        "--snapshot-rate",
        "60",
        "--bots",
        "0",
        "--max-players-per-room",
    ]);
    a.extend([cap.clone(), "--max-connections".into(), cap.clone()]);
    a.extend(["--max-connections-per-ip".into(), cap]);
    a
}

pub(crate) fn with(mut a: Vec<String>, more: &[&str]) -> Vec<String> {
    a.extend(more.iter().map(|s| (*s).to_owned()));
    a
}

/// A row's flags: ¹ the bots' core was ≥ 90 % busy; ² fewer than 90 % of
/// the nominal snapshots per client arrived. See [`FLAG_NOTE`].
pub(crate) fn flags(o: &Outcome) -> &'static str {
    let busy = o
        .window
        .as_ref()
        .and_then(|w| w.bots_cpu_pct())
        .is_some_and(|c| c >= 90.0);
    let slow = o
        .bots_f64(&["snapshots_per_bot_per_s"])
        .is_some_and(|r| r < 0.9 * RATE);
    match (busy, slow) {
        (true, true) => " ¹ ²",
        (true, false) => " ¹",
        (false, true) => " ²",
        (false, false) => "",
    }
}

/// What the flags of [`flags`] mean.
pub(crate) const FLAG_NOTE: &str = "\n¹ The bots' core was ≥ 90 % busy: the bots' own figures (bytes/s, \
    snapshot rate and intervals) are limited by the single bots core, not by the server.\n\n\
    ² Fewer than 90 % of the nominal 60 snapshots per client per second arrived. The server \
    replaces a snapshot a client has not taken yet with the newer one, and a tick p99 above \
    16.7 ms means the server itself could not keep 60 Hz; either way the next delta spans \
    several ticks, so per-snapshot figures in that row are not per-tick figures.\n";

pub(crate) fn error_row(o: &Outcome, cols: usize) -> Option<String> {
    let e = o.error.as_ref()?;
    let first = e.lines().next().unwrap_or(e);
    Some(format!(
        "| {} | failed: {} |{}",
        o.name,
        first.replace('|', "\\|"),
        " |".repeat(cols.saturating_sub(2))
    ))
}

/// The runs' command lines. The bench adds `--addr 127.0.0.1:0
/// --stats-interval 1s --cert-out FILE` (and `--quic-addr` for QUIC) to the
/// server's, and `--url --ca-cert --ramp --warmup --duration --json` to the
/// bots'.
/// For one row: writes the error row of a failed run and returns `None`,
/// or returns the window and the row's [`flags`] (noting in `flagged`
/// whether any row had one).
pub(crate) fn measured<'a>(
    md: &mut String,
    o: &'a Outcome,
    cols: usize,
    flagged: &mut bool,
) -> Option<(&'a Window, &'static str)> {
    if let Some(row) = error_row(o, cols) {
        let _ = writeln!(md, "{row}");
        return None;
    }
    let w = o.window.as_ref()?;
    let f = flags(o);
    *flagged |= !f.is_empty();
    Some((w, f))
}

pub(crate) fn commands(out: &mut String, plans: &[&Plan]) {
    let _ = writeln!(
        out,
        "\nRuns (server on CPU 0, bots on CPU 1; the bench adds the address, `--stats-interval 1s`, \
         the certificate and `--no-quic` (WSS runs) or `--quic-addr` (QUIC runs) to the server's \
         arguments, and the URL, trust and timings to the bots'):\n"
    );
    for p in plans {
        let bots: Vec<String> = ["--bots".to_owned(), p.bots.to_string()]
            .into_iter()
            .chain(p.bots_args.iter().cloned())
            .collect();
        let _ = writeln!(
            out,
            "- `{}`: `arena-server {}`; `arena-bots {}`; bots connect over {:.0} s, then {:.0} s of warm-up, then {:.0} s measured",
            p.name,
            p.server_args.join(" "),
            bots.join(" "),
            p.ramp.as_secs_f64(),
            p.warmup.as_secs_f64(),
            p.measure.as_secs_f64()
        );
    }
}

pub(crate) fn outcomes_json(list: &[Outcome]) -> Value {
    Value::Array(list.iter().map(Outcome::to_json).collect())
}

/// The floor ([`super::floor`]) for a row: as many connections as it had
/// clients, messages of its mean snapshot size. `None` (and a line on
/// stderr) when it cannot be measured.
pub(crate) fn floor_for(ctx: &Ctx, o: &Outcome, clients: u64) -> Option<f64> {
    let (conns, size) = row_exchange(o, clients)?;
    match super::floor::measure(ctx, &ctx.floor_bin, conns, size, 10) {
        Ok(us) => Some(us),
        Err(e) => {
            eprintln!("{}: no floor: {e:#}", o.name);
            None
        }
    }
}

/// Table 1's sub-table: the floor's exchange for the `bots`-bot row under
/// the three IO models of `replication-load floor --model`, with acks at
/// once and spread over the round (the peer busy 75 % of the period, as
/// the bots' core is), so that the server's figure can be read against
/// what its IO model alone costs.
/// Returns the markdown and the figures for the JSON.
fn io_models(
    ctx: &Ctx,
    o: &Outcome,
    clients: u64,
    server_us: Option<f64>,
    bots: u32,
) -> (String, Value) {
    let Some((conns, size)) = row_exchange(o, clients) else {
        return (String::new(), Value::Null);
    };
    let mut figures = Vec::new();
    let work = (0.75e6 / (60.0 * f64::from(conns))).round() as u64;
    let mut md = format!(
        "\n**The floor's exchange under other IO models** (right after the {bots}-bot row: {conns} \
         connections, {size}-byte messages; `replication-load floor --tls --model M \
         [--peer-work-us {work}]`), µs of CPU per message. With acks spread, the peer works {work} µs \
         per message before it acks (busy 75 % of the period, as the bots' core is), so acks arrive \
         through the round as the bots' inputs do, not in one burst. The server's {bots}-bot row: {} µs.\n\n\
         | IO model | acks at once (the floor's exchange) | acks spread |\n|---|---|---|\n",
        f1(server_us)
    );
    for (model, what) in [
        ("blocking", "blocking sockets (the floor)"),
        (
            "tasks",
            "tokio, a task per connection woken per message and per ack (the server's sessions)",
        ),
        (
            "pass",
            "tokio, one task writes every connection, then reads every ack",
        ),
    ] {
        let cell = |peer_work_us| {
            let x = super::floor::Exchange {
                conns,
                size,
                secs: 10,
                model,
                peer_work_us,
                ack: true,
            };
            super::floor::measure_as(ctx, &ctx.floor_bin, &x)
                .inspect_err(|e| eprintln!("floor --model {model}: {e:#}"))
                .ok()
        };
        let (at_once, spread) = (cell(0), cell(work));
        let _ = writeln!(md, "| {what} | {} | {} |", f2(at_once), f2(spread));
        figures
            .push(json!({ "model": model, "acks_at_once_us": at_once, "acks_spread_us": spread }));
    }
    let json = json!({ "bots": bots, "connections": conns, "message_bytes": size,
                       "peer_work_us": work, "models": figures });
    (md, json)
}

/// A row's connections and mean snapshot size, for the floor.
pub(crate) fn row_exchange(o: &Outcome, clients: u64) -> Option<(u32, usize)> {
    let bytes = o.bots_f64(&["bytes_per_bot_per_s"])?;
    let rate = o
        .bots_f64(&["snapshots_per_bot_per_s"])
        .filter(|r| *r > 0.0)?;
    let conns = u32::try_from(clients).ok().filter(|c| *c > 0)?;
    Some((conns, (bytes / rate).round() as usize))
}

/// Table 1: 100 / 250 / 500 / 1,000 bots in one room.
pub(crate) fn client_scale(ctx: &Ctx, z: &Sizes) -> Result<Section> {
    let plans: Vec<Plan> = z
        .clients
        .iter()
        .map(|&n| {
            let mut p = z.plan(format!("client-{n}"), n, one_room(n));
            p.perf = n == z.perf_at;
            p
        })
        .collect();
    let mut done = Vec::new();
    for p in &plans {
        done.push(scenario::run(ctx, p)?);
    }
    let mut md = String::from(
        "### 1. Client scale\n\nWSS + TLS, all bots in one room, 60 Hz tick, a snapshot every tick \
         (`--snapshot-rate 60`), interest management on, no server-side AI players. The bots play \
         (random walk, aim and fire at the nearest player).\n\n\
         | bots | connected | tick p50 / p99 / max (ms) | overruns | server CPU | server CPU µs / client / snapshot | floor µs (same run) | ÷ floor | server peak RSS (MiB) | bytes / client / s | snapshots / client / s | bots CPU |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut saturated = false;
    let mut ratios = Vec::new();
    for (p, o) in plans.iter().zip(&done) {
        let Some((w, flag)) = measured(&mut md, o, 12, &mut saturated) else {
            continue;
        };
        let us = w.cpu_us_per_snapshot();
        let floor = floor_for(ctx, o, w.clients_max);
        let ratio = us.zip(floor).map(|(a, b)| a / b);
        if let Some(r) = ratio {
            ratios.push((p.bots, r));
        }
        let _ = writeln!(
            md,
            "| {}{flag} | {}–{} | {} / {} / {} | {} | {} % | {} | {} | {} | {} | {} | {} | {} % |",
            p.bots,
            w.clients_min,
            w.clients_max,
            f2(Some(w.tick_ms(0.5))),
            f2(Some(w.tick_ms(0.99))),
            f2(Some(w.tick_ms(1.0))),
            w.overruns,
            f0(Some(w.server_cpu_pct())),
            f1(us),
            f1(floor),
            ratio.map_or_else(|| "—".into(), |r| format!("{r:.2}×")),
            mib(w.end.hwm_kib),
            f0(o.bots_f64(&["bytes_per_bot_per_s"])),
            f1(o.bots_f64(&["snapshots_per_bot_per_s"])),
            f0(w.bots_cpu_pct()),
        );
    }
    if saturated {
        md.push_str(FLAG_NOTE);
    }
    let mut io_json = Value::Null;
    if let Some((p, o)) = plans.iter().zip(&done).find(|(p, _)| p.bots == z.perf_at)
        && let Some(w) = &o.window
    {
        let (text, json) = io_models(ctx, o, w.clients_max, w.cpu_us_per_snapshot(), p.bots);
        md.push_str(&text);
        io_json = json;
    }
    // Targets.
    let thousand = plans.iter().zip(&done).find(|(p, _)| p.bots == 1000);
    let t1 = match thousand {
        Some((_, o)) => match &o.window {
            // The tick keeping its period is not enough: the bots must also
            // receive (nearly) every snapshot.
            Some(w) if w.clients_min >= 1000 => {
                let rate = o.bots_f64(&["snapshots_per_bot_per_s"]);
                Verdict::from_bool(
                    w.tick_ms(0.99) < TICK_MS && rate.is_some_and(|r| r >= MIN_SNAPSHOT_RATE),
                    format!(
                        "p99 {:.2} ms and {} snapshots/s per bot with {} connected",
                        w.tick_ms(0.99),
                        f1(rate),
                        w.clients_min
                    ),
                )
            }
            Some(w) => Verdict::NotMet(format!(
                "only {}–{} of 1,000 bots were connected in the window (p99 {:.2} ms)",
                w.clients_min,
                w.clients_max,
                w.tick_ms(0.99)
            )),
            None => Verdict::NotMeasured(o.error.clone().unwrap_or_default()),
        },
        None => Verdict::NotMeasured("this run has no 1,000-bot row".into()),
    };
    let per: Vec<String> = plans
        .iter()
        .zip(&done)
        .filter_map(|(p, o)| Some((p.bots, o.window.as_ref()?.cpu_us_per_snapshot()?)))
        .map(|(n, us)| format!("{us:.1} µs at {n}"))
        .collect();
    let all_met = plans.iter().zip(&done).all(|(_, o)| {
        o.window
            .as_ref()
            .and_then(|w| w.cpu_us_per_snapshot())
            .is_some_and(|us| us <= 8.0)
    });
    let t2 = if per.is_empty() {
        Verdict::NotMeasured("no row measured".into())
    } else {
        Verdict::from_bool(all_met, per.join(", "))
    };
    md.push_str("\n| target | result | verdict |\n|---|---|---|\n");
    md.push_str(
        &t1.row("1,000 WSS bots at 60 Hz: server tick p99 < 16.7 ms and ≥ 57 snapshots/s per bot"),
    );
    md.push_str(&t2.row("≤ 8 µs of server CPU per client per snapshot (every row)"));
    let t3 = if ratios.is_empty() {
        Verdict::NotMeasured("no row has a floor".into())
    } else {
        Verdict::from_bool(
            ratios.iter().all(|(_, r)| *r <= 1.5),
            ratios
                .iter()
                .map(|(n, r)| format!("{r:.2}× at {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        )
    };
    md.push_str(&t3.row(
        "server CPU per client per snapshot ≤ 1.5× the floor measured in the same run (every row)",
    ));
    md.push_str(
        "\nServer CPU µs per client per snapshot = the server's CPU time over the window \
         (`/proc/<pid>/stat` utime + stime) ÷ the snapshots it queued in that window (one per \
         client per snapshot tick). Tick times are the wall time of the whole room tick, snapshot \
         encoding for every client included; sending happens in the session tasks, outside the tick. \
         The floor is `replication-load floor --tls` run right after the row, pinned the same way: \
         a plain blocking program's CPU per TLS-sealed write of the row's mean snapshot size to as \
         many loopback connections, plus reading a 6-byte ack from each.\n",
    );
    if let Some(perf) = done.iter().find_map(|o| o.perf.as_ref()) {
        let _ = write!(
            md,
            "\nServer profile during the {}-bot window (`perf record -e cpu-clock -g`, \
             `perf report --no-children --sort symbol`, top 25 by self time):\n\n```text\n{perf}\n```\n",
            z.perf_at
        );
    } else if ctx.perf_asked && ctx.perf.is_none() {
        md.push_str("\nNo profile: `--perf` was given, but `perf` is not installed here.\n");
    }
    commands(&mut md, &plans.iter().collect::<Vec<_>>());
    Ok(Section {
        json: json!({ "table": "client-scale", "runs": outcomes_json(&done), "io_models": io_json,
                      "targets": [t1.to_json("tick p99 < 16.7 ms and ≥ 57 snapshots/s per bot at 1,000 bots"), t2.to_json("≤ 8 µs CPU per client per snapshot")] }),
        markdown: md,
        failures: failures(&done),
    })
}

/// Bytes per changed entity per snapshot (an upper bound for the bytes per
/// moving entity in view: every byte received is charged to them).
fn bytes_per_moving(o: &Outcome) -> Option<f64> {
    let per_snapshot = o.bots_f64(&["bytes_per_snapshot"])?;
    let moving = o.bots_f64(&["changed_entities_per_snapshot"])?;
    (moving > 0.0).then(|| per_snapshot / moving)
}

/// Table 2's "small view" row: `arena-server --view-radius` such that a
/// client sees about 300 of 10,000 NPCs in the 1,600 × 1,000 arena, issue
/// 13's entity-scale scene (π · 130² · 10,100 / 1.6 M ≈ 335; 125 measured 284,
/// fewer near the walls).
const SMALL_VIEW_RADIUS: u32 = 130;
/// Issue 13's entity-scale target: tick p99 in ms with about 300 in view…
const ENTITY_SCALE_P99_MS: f64 = 8.0;
/// … of this many moving NPCs.
const ENTITY_SCALE_NPCS: usize = 10_000;

/// What a table-2 client sees.
#[derive(Clone, Copy, PartialEq)]
enum Sight {
    /// Interest on, the arena's own 900-unit view.
    Arena,
    /// Interest on, [`SMALL_VIEW_RADIUS`].
    Small,
    /// `--no-interest`: everything.
    All,
}

impl Sight {
    fn tag(self) -> &'static str {
        match self {
            Sight::Arena => "interest",
            Sight::Small => "small-view",
            Sight::All => "all",
        }
    }

    fn column(self) -> String {
        match self {
            Sight::Arena => "900".into(),
            Sight::Small => SMALL_VIEW_RADIUS.to_string(),
            Sight::All => "all".into(),
        }
    }
}

/// Table 2: bots with 1,000 / 5,000 / 10,000 moving NPCs, interest on and
/// off, and the largest count again with a small view (about 300 in view).
pub(crate) fn entity_scale(ctx: &Ctx, z: &Sizes) -> Result<Section> {
    let mut plans = Vec::new();
    let largest = z.npcs.iter().copied().max().unwrap_or(0);
    for &n in &z.npcs {
        let sights: &[Sight] = if n == largest {
            &[Sight::Arena, Sight::All, Sight::Small]
        } else {
            &[Sight::Arena, Sight::All]
        };
        for &sight in sights {
            let mut server = with(one_room(z.entity_bots), &["--npcs", &n.to_string()]);
            match sight {
                Sight::Arena => {}
                Sight::Small => {
                    server.extend(["--view-radius".into(), SMALL_VIEW_RADIUS.to_string()]);
                }
                Sight::All => server.push("--no-interest".into()),
            }
            plans.push((
                n,
                sight,
                z.plan(format!("entity-{n}-{}", sight.tag()), z.entity_bots, server),
            ));
        }
    }
    let mut done = Vec::new();
    for (_, _, p) in &plans {
        done.push(scenario::run(ctx, p)?);
    }
    let mut md = format!(
        "### 2. Entity scale\n\n{} bots in one room, 60 Hz, a snapshot every tick, with N wandering \
         NPCs (`--npcs N`) that each move every tick, in a 1,600 × 1,000 arena, with interest \
         management (each client gets what is within the view radius of its player: the arena's \
         900 units, or {SMALL_VIEW_RADIUS} units with `--view-radius {SMALL_VIEW_RADIUS}`, about \
         300 of 10,000 NPCs, as in a large world) and without (`--no-interest`, \"all\").\n\n\
         | NPCs | view radius | tick p99 (ms) | bytes / client / s | entities in view / snapshot | changed in view / snapshot | bytes / changed entity / snapshot | snapshots / client / s | server CPU | bots CPU |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        z.entity_bots
    );
    let mut verdicts = Vec::new();
    let mut skipped = Vec::new();
    let mut saturated = false;
    let mut small = Verdict::NotMeasured("this run has no small-view row".into());
    for ((n, sight, _), o) in plans.iter().zip(&done) {
        if *sight == Sight::Small {
            small = small_view_verdict(*n, o);
        }
        let Some((w, flag)) = measured(&mut md, o, 10, &mut saturated) else {
            continue;
        };
        let per = bytes_per_moving(o);
        let row = match sight {
            Sight::All => format!("{n} NPCs, interest off"),
            _ => format!("{n} NPCs, view {}", sight.column()),
        };
        match per {
            // A row where snapshots were skipped has multi-tick deltas.
            Some(_) if flag.contains('²') => skipped.push(row),
            Some(b) => verdicts.push((b, format!("{b:.1} B ({row})"))),
            None => {}
        }
        let _ = writeln!(
            md,
            "| {n}{flag} | {} | {} | {} | {} | {} | {} | {} | {} % | {} % |",
            sight.column(),
            f2(Some(w.tick_ms(0.99))),
            f0(o.bots_f64(&["bytes_per_bot_per_s"])),
            f0(o.bots_f64(&["entities_per_snapshot"])),
            f0(o.bots_f64(&["changed_entities_per_snapshot"])),
            f2(per),
            f1(o.bots_f64(&["snapshots_per_bot_per_s"])),
            f0(Some(w.server_cpu_pct())),
            f0(w.bots_cpu_pct()),
        );
    }
    if saturated {
        md.push_str(FLAG_NOTE);
    }
    let mut text: Vec<String> = verdicts.iter().map(|(_, t)| t.clone()).collect();
    if !skipped.is_empty() {
        text.push(format!(
            "not per tick, snapshots skipped (²): {}",
            skipped.join(", ")
        ));
    }
    let t = if verdicts.is_empty() {
        Verdict::NotMeasured(if text.is_empty() {
            "no row measured".into()
        } else {
            text.join("; ")
        })
    } else {
        Verdict::from_bool(verdicts.iter().all(|(b, _)| *b <= 8.0), text.join("; "))
    };
    md.push_str("\n| target | result | verdict |\n|---|---|---|\n");
    md.push_str(
        &t.row("≤ 8 bytes per moving entity per tick in view (every row that kept 60 snapshots/s)"),
    );
    md.push_str(&small.row(&format!(
        "tick p99 ≤ {ENTITY_SCALE_P99_MS} ms with {ENTITY_SCALE_NPCS} moving NPCs and about 300 in each view, \
         with ≥ {MIN_SNAPSHOT_RATE} snapshots/s per bot (issue 13)"
    )));
    md.push_str(
        "\nHow the per-entity figure is derived: the bots count, in every applied snapshot, the \
         entities it holds (the ones in view), and in a sample of snapshots (1 in 16 per bot) the \
         entities whose state differs from the bot's previous snapshot (the moving ones in view). \
         Bytes per changed entity = bytes received per snapshot ÷ changed entities per snapshot. All \
         bytes received (snapshot headers, players, projectiles, events, pings) are charged to the \
         moving entities, so it is an upper bound. Bytes are WebSocket payload; TLS and WebSocket \
         framing add about 25 bytes per message.\n",
    );
    let list: Vec<&Plan> = plans.iter().map(|(_, _, p)| p).collect();
    commands(&mut md, &list);
    Ok(Section {
        json: json!({
            "table": "entity-scale",
            "runs": outcomes_json(&done),
            "target": t.to_json("≤ 8 B per moving entity in view"),
            "small_view_target": small.to_json("tick p99 ≤ 8 ms, about 300 in view"),
        }),
        markdown: md,
        failures: failures(&done),
    })
}

/// Issue 13's entity-scale verdict from the small-view row: the tick p99,
/// with the bots receiving (nearly) every snapshot and about 300 in view.
fn small_view_verdict(npcs: usize, o: &Outcome) -> Verdict {
    let Some(w) = o.window.as_ref() else {
        return Verdict::NotMeasured(o.error.clone().unwrap_or_default());
    };
    let p99 = w.tick_ms(0.99);
    let rate = o.bots_f64(&["snapshots_per_bot_per_s"]);
    let in_view = o.bots_f64(&["entities_per_snapshot"]);
    let text = format!(
        "p99 {p99:.2} ms, {} in view, {} snapshots/s per bot ({npcs} NPCs, view {SMALL_VIEW_RADIUS})",
        f0(in_view),
        f1(rate)
    );
    if npcs < ENTITY_SCALE_NPCS {
        // A quick run's smaller scene says nothing about the target's.
        return Verdict::NotMeasured(format!(
            "{text}: the target's scene has {ENTITY_SCALE_NPCS} NPCs"
        ));
    }
    if !rate.is_some_and(|r| r >= MIN_SNAPSHOT_RATE) {
        // The bots fell behind: the server sent fewer, multi-tick deltas.
        return Verdict::NotMeasured(format!("{text}: the bots did not keep up"));
    }
    Verdict::from_bool(p99 <= ENTITY_SCALE_P99_MS, text)
}

/// Table 3: the same scene with deltas and with full snapshots.
pub(crate) fn delta_vs_full(ctx: &Ctx, z: &Sizes) -> Result<Section> {
    let n = z.delta_npcs.to_string();
    let base = with(one_room(z.delta_bots), &["--npcs", &n]);
    let plans = [
        z.plan("delta-on".into(), z.delta_bots, base.clone()),
        z.plan(
            "delta-off".into(),
            z.delta_bots,
            with(base, &["--full-snapshots"]),
        ),
    ];
    let mut done = Vec::new();
    for p in &plans {
        done.push(scenario::run(ctx, p)?);
    }
    let mut md = format!(
        "### 3. Delta vs full snapshots\n\n{} bots, {} moving NPCs, interest management on, 60 Hz, a \
         snapshot every tick; deltas on (the default) and off (`--full-snapshots`: every snapshot \
         full). Few enough bots that their core still applies 60 full snapshots a second to \
         each, so both rows send as many snapshots and the per-snapshot figures compare.\n\n\
         | snapshots | bytes / client / s | bytes / client / snapshot | server CPU | server CPU µs / client / snapshot | tick p99 (ms) | bots CPU |\n\
         |---|---|---|---|---|---|---|\n",
        z.delta_bots, z.delta_npcs
    );
    // Per row: bytes per second, bytes per snapshot, CPU, µs per snapshot.
    type Figures = (Option<f64>, Option<f64>, Option<f64>, Option<f64>);
    let mut figures: Vec<Option<Figures>> = Vec::new();
    for (label, o) in ["deltas", "full"].iter().zip(&done) {
        if let Some(row) = error_row(o, 7) {
            let _ = writeln!(md, "{row}");
            figures.push(None);
            continue;
        }
        let w = o.window.as_ref();
        let bytes = o.bots_f64(&["bytes_per_bot_per_s"]);
        let per_snapshot = o.bots_f64(&["bytes_per_snapshot"]);
        let cpu = w.map(|w| w.server_cpu_pct());
        let us = w.and_then(|w| w.cpu_us_per_snapshot());
        figures.push(Some((bytes, per_snapshot, cpu, us)));
        let _ = writeln!(
            md,
            "| {label}{} | {} | {} | {} % | {} | {} | {} % |",
            flags(o),
            f0(bytes),
            f0(per_snapshot),
            f0(cpu),
            f1(us),
            f2(w.map(|w| w.tick_ms(0.99))),
            f0(w.and_then(|w| w.bots_cpu_pct())),
        );
    }
    let r = |a: &Option<f64>, b: &Option<f64>| a.zip(*b).map(|(a, b)| b / a);
    if let [Some((b1, s1, c1, u1)), Some((b2, s2, c2, u2))] = figures.as_slice() {
        let _ = writeln!(
            md,
            "| **full ÷ deltas** | **{}×** | **{}×** | **{}×** | **{}×** | | |",
            f2(r(b1, b2)),
            f2(r(s1, s2)),
            f2(r(c1, c2)),
            f2(r(u1, u2))
        );
    }
    if done.iter().any(|o| !flags(o).is_empty()) {
        md.push_str(FLAG_NOTE);
    }
    // Targets, per snapshot: when the bots' core is saturated the two rows
    // apply different numbers of snapshots, so per-second figures do not
    // compare.
    let (cpu, bytes) = match figures.as_slice() {
        [Some((_, s1, _, u1)), Some((_, s2, _, u2))] => (r(u2, u1), r(s2, s1)),
        _ => (None, None),
    };
    let verdict = |ratio: Option<f64>, max: f64, what: &str| match ratio {
        Some(x) => Verdict::from_bool(x <= max, format!("{x:.2}× the {what} of full snapshots")),
        None => Verdict::NotMeasured("a row has no figures".into()),
    };
    let (cpu, bytes) = (verdict(cpu, 1.0, "CPU"), verdict(bytes, 0.6, "bytes"));
    md.push_str("\n| target | result | verdict |\n|---|---|---|\n");
    md.push_str(
        &cpu.row("deltas ≤ 1.0× the server CPU of full snapshots, per client per snapshot"),
    );
    md.push_str(&bytes.row("deltas ≤ 0.6× the bytes of full snapshots, per client per snapshot"));
    commands(&mut md, &plans.iter().collect::<Vec<_>>());
    Ok(Section {
        json: json!({ "table": "delta-vs-full", "runs": outcomes_json(&done),
                      "targets": [cpu.to_json("deltas ≤ 1.0× CPU of full"), bytes.to_json("deltas ≤ 0.6× bytes of full")] }),
        markdown: md,
        failures: failures(&done),
    })
}

/// Why a QUIC run has no figures, if it is because QUIC is missing.
fn quic_missing(o: &Outcome) -> bool {
    let e = o.error.as_deref().unwrap_or("");
    let bots_errors = o
        .bots
        .as_ref()
        .map(|b| b["errors"].to_string())
        .unwrap_or_default();
    e.contains("quic-addr")
        || e.contains("QUIC")
        || (o.bots_f64(&["snapshots"]) == Some(0.0) && bots_errors.contains("QUIC"))
}

/// Table 4: WSS and QUIC through the server's link conditioner.
pub(crate) fn transport(ctx: &Ctx, z: &Sizes) -> Result<Section> {
    let mut plans = Vec::new();
    for quic in [false, true] {
        for loss in [0, 5] {
            let link = if loss == 0 {
                "latency=50ms".to_owned()
            } else {
                format!("latency=50ms,loss={loss}%")
            };
            let server = with(one_room(z.transport_bots), &["--conditioner", &link]);
            let name = format!("{}-loss{loss}", if quic { "quic" } else { "wss" });
            let mut p = z.plan(name, z.transport_bots, server);
            p.quic = quic;
            plans.push((quic, loss, p));
        }
    }
    let mut done = Vec::new();
    for (_, _, p) in &plans {
        done.push(scenario::run(ctx, p)?);
    }
    let mut md = format!(
        "### 4. WSS vs QUIC under loss\n\n{} bots, one room, 60 Hz, a snapshot every tick, through \
         the server's link conditioner (`--conditioner latency=50ms[,loss=5%]`, in the session \
         layer, so the same settings for both transports, shaped by each: what travels on a \
         reliable stream (everything on WSS) loses a round trip per loss and holds back what \
         follows, as on TCP; QUIC's snapshot datagrams get plain loss, and the server sends a \
         redundant copy a quarter of an interval later unless a newer snapshot supersedes it).\n\n\
         | transport | loss | snapshot interval p50 / p99 (ms) | staleness p50 / p99 (ms) | snapshots / client / s | bots CPU |\n\
         |---|---|---|---|---|---|\n",
        z.transport_bots
    );
    let mut p99 = std::collections::HashMap::new();
    for ((quic, loss, _), o) in plans.iter().zip(&done) {
        let t = if *quic { "QUIC" } else { "WSS" };
        if *quic && quic_missing(o) {
            let _ = writeln!(
                md,
                "| {t} | {loss} % | QUIC not available in this build | | | |"
            );
            continue;
        }
        if let Some(row) = error_row(o, 6) {
            let _ = writeln!(md, "{row}");
            continue;
        }
        p99.insert((*quic, *loss), o.bots_f64(&["snapshot_interval_ms", "p99"]));
        let _ = writeln!(
            md,
            "| {t} | {loss} % | {} / {} | {} / {} | {} | {} % |",
            f2(o.bots_f64(&["snapshot_interval_ms", "p50"])),
            f2(o.bots_f64(&["snapshot_interval_ms", "p99"])),
            f2(o.bots_f64(&["staleness_ms", "p50"])),
            f2(o.bots_f64(&["staleness_ms", "p99"])),
            f1(o.bots_f64(&["snapshots_per_bot_per_s"])),
            f0(o.window.as_ref().and_then(|w| w.bots_cpu_pct())),
        );
    }
    let compare = |quic: bool| match (p99.get(&(quic, 0)), p99.get(&(quic, 5))) {
        (Some(Some(a)), Some(Some(b))) => Some((*a, *b)),
        _ => None,
    };
    let t = match compare(true) {
        Some((a, b)) => Verdict::from_bool(
            b <= 1.5 * a,
            format!("p99 {b:.2} ms at 5 % vs {a:.2} ms at 0 % ({:.2}×)", b / a),
        ),
        None => Verdict::NotMeasured("QUIC not available in this build".into()),
    };
    md.push_str("\n| target | result | verdict |\n|---|---|---|\n");
    md.push_str(
        &t.row("QUIC snapshot interval p99 at 5 % loss ≤ 1.5 × the p99 interval at 0 % loss"),
    );
    if let Some((a, b)) = compare(false) {
        let _ = writeln!(
            md,
            "\nFor comparison, WSS: p99 {b:.2} ms at 5 % vs {a:.2} ms at 0 % ({:.2}×).",
            b / a
        );
    }
    md.push_str(
        "\nSnapshot interval: the time between two snapshots a bot applies. Staleness: for each \
         applied snapshot, (arrival time − tick × tick period) minus the smallest such value of the \
         same connection, i.e. how much older than on the connection's best-case path the state is \
         when the bot applies it (no synchronized clocks needed; the 50 ms of base latency is in \
         the best case and so not in the figure).\n",
    );
    let list: Vec<&Plan> = plans.iter().map(|(_, _, p)| p).collect();
    commands(&mut md, &list);
    Ok(Section {
        json: json!({ "table": "wss-vs-quic", "runs": outcomes_json(&done), "target": t.to_json("QUIC p99 at 5 % ≤ 1.5 × p99 at 0 %") }),
        markdown: md,
        failures: failures(&done),
    })
}

fn pct_change(a: u64, b: u64) -> Option<f64> {
    (a > 0).then(|| (b as f64 - a as f64) / a as f64 * 100.0)
}

/// Table 5: idle connections, and the churn soak.
pub(crate) fn idle_and_churn(ctx: &Ctx, z: &Sizes) -> Result<Section> {
    // Idle: rooms of 100, one snapshot per second.
    let cap = (z.idle + 100).to_string();
    let idle_server = args(&[
        "--bots",
        "0",
        "--snapshot-rate",
        "1",
        "--max-players-per-room",
        "100",
        "--max-connections",
        &cap,
        "--max-connections-per-ip",
        &cap,
    ]);
    let mut idle_plan = z.plan(format!("idle-{}", z.idle), z.idle, idle_server);
    idle_plan.ramp = Duration::from_secs_f64((f64::from(z.idle) / 400.0).max(2.0));
    idle_plan.bots_args = args(&["--max-connecting", "64"]);
    eprintln!("\n--> {} idle connections", z.idle);
    let settle = Duration::from_secs(if z.quick { 3 } else { 10 });
    let idle = match scenario::run_idle(ctx, &idle_plan, settle) {
        Ok(i) => Ok(i),
        Err(e) => {
            ctx.stop.check()?;
            Err(crate::util::chain(&e))
        }
    };
    // Churn: connect, play 2–5 s, leave or drop and resume, again.
    let mut churn = z.plan("churn".into(), z.churn_bots, one_room(z.churn_bots));
    churn.bots_args = args(&["--churn"]);
    churn.warmup = Duration::from_secs(if z.quick { 4 } else { 15 });
    churn.measure = z.soak;
    let soak = scenario::run(ctx, &churn)?;

    let mut md = String::from("### 5. Idle connections and churn\n\n");
    let _ = writeln!(
        md,
        "**Idle.** {} WSS connections, each joined (rooms of 100, `--max-players-per-room 100`, no \
         server AI), then idle: `arena-bots --idle` sends no inputs but still applies and acks the \
         snapshots (one per second, `--snapshot-rate 1`) and answers pings, as a connected player \
         who does nothing; the server's idle timeout (15 s) never fires. RSS per connection = \
         (server RSS after all connected and {} s of settling − RSS before any) ÷ connections.\n",
        z.idle,
        settle.as_secs()
    );
    md.push_str("| connections | server RSS before (MiB) | after (MiB) | KiB / connection | open fds after | all connected after (s, ±1) |\n|---|---|---|---|---|---|\n");
    let idle_json = match &idle {
        Ok(i) => {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                i.connections,
                mib(i.before.rss_kib),
                mib(i.after.rss_kib),
                f1(i.kib_per_connection()),
                i.after.fds,
                f1(Some(i.connect_secs))
            );
            i.to_json()
        }
        Err(e) => {
            let _ = writeln!(
                md,
                "| failed: {} | | | | | |",
                e.lines().next().unwrap_or(e)
            );
            json!({ "error": e })
        }
    };
    let _ = writeln!(
        md,
        "\n**Churn soak.** {} bots in one room, each connecting, playing 2–5 s, then alternately \
         leaving or dropping the connection and resuming it, for {:.0} s after a {:.0} s warm-up. \
         Server RSS (`VmRSS`) and open descriptors (`/proc/<pid>/fd`) at the start and the end of \
         the soak.\n",
        z.churn_bots,
        z.soak.as_secs_f64(),
        (churn.ramp + churn.warmup).as_secs_f64()
    );
    md.push_str("| connects / s | RSS start → end (MiB) | RSS change | peak RSS in soak (MiB) | fds start → end | fds change | failed connects | abnormal closes |\n|---|---|---|---|---|---|---|---|\n");
    let mut targets = Vec::new();
    if let Some(row) = error_row(&soak, 8) {
        let _ = writeln!(md, "{row}");
    }
    if let Some(w) = &soak.window {
        let rss = pct_change(w.start.rss_kib, w.end.rss_kib);
        let fds = pct_change(w.start.fds, w.end.fds);
        let _ = writeln!(
            md,
            "| {} | {} → {} | {} % | {} | {} → {} | {} % | {} | {} |",
            f1(soak.bots_f64(&["connects_per_s"])),
            mib(w.start.rss_kib),
            mib(w.end.rss_kib),
            f1(rss),
            mib(w.rss_max_kib),
            w.start.fds,
            w.end.fds,
            f1(fds),
            f0(soak.bots_f64(&["failed"])),
            f0(soak.bots_f64(&["abnormal_closes"])),
        );
        for (what, v) in [("RSS", rss), ("open fds", fds)] {
            targets.push(match v {
                Some(v) => Verdict::from_bool(v.abs() <= 10.0, format!("{what} {v:+.1} %")),
                None => Verdict::NotMeasured(format!("{what}: no start value")),
            });
        }
    } else {
        targets.push(Verdict::NotMeasured(
            soak.error.clone().unwrap_or_else(|| "no window".into()),
        ));
    }
    md.push_str("\n| target | result | verdict |\n|---|---|---|\n");
    for t in &targets {
        md.push_str(&t.row("memory and fds flat (within 10 %) across the churn soak"));
    }
    let _ = writeln!(
        md,
        "\nRuns: `idle-{n}`: `arena-server {}`; `arena-bots --bots {n} --idle {}`, connects spread \
         over {:.0} s, sampled when all were connected (or 120 s later) plus {} s.",
        idle_plan.server_args.join(" "),
        idle_plan.bots_args.join(" "),
        idle_plan.ramp.as_secs_f64(),
        settle.as_secs(),
        n = z.idle,
    );
    commands(&mut md, &[&churn]);
    Ok(Section {
        json: json!({ "table": "idle-and-churn", "idle": idle_json, "churn": soak.to_json(),
                      "targets": targets.iter().map(|t| t.to_json("flat within 10 %")).collect::<Vec<_>>() }),
        markdown: md,
        failures: failures([&soak]) + usize::from(idle.is_err()),
    })
}
