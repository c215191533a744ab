//! Table 6: what one more client costs the server, in the scene where
//! issue 13 compared tickwire with Colyseus 0.18 (1,000 NPCs that all move
//! every tick, 60 Hz, no interest management, idle receiving clients).
//!
//! The slope is a least-squares fit of the server's CPU (µs per second)
//! against the number of clients, over at least three client counts, divided
//! by the snapshot rate: server CPU µs per extra client per snapshot. Each
//! count is run [`Sizes::marginal_rounds`] times, ascending and descending in
//! turn, every run is a point of the fit, and the fit's standard error says
//! how far the slope is from noise. Whether the cost grows with the number of
//! clients is read from two fits, over the lower and the upper half of the
//! counts (they share the middle one).

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::json;

use super::report::{Verdict, f0, f1};
use super::scenario::{self, Ctx, Outcome, args};
use super::tables::{
    FLAG_NOTE, RATE, Section, Sizes, commands, failures, flags, measured, one_room, outcomes_json,
    row_exchange, with,
};

/// The issue's target, over wss://.
const TARGET_US: f64 = 10.0;
/// The NPCs of the scene.
const NPCS: &str = "1000";

/// A least-squares line through `(x, y)` points.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Fit {
    slope: f64,
    /// The slope's standard error (`None` with fewer than three points).
    se: Option<f64>,
    /// The share of `y`'s variance the line explains.
    r2: Option<f64>,
    points: usize,
}

/// Least-squares fit of `y` over `x`; `None` with fewer than two distinct
/// `x`.
fn fit(points: &[(f64, f64)]) -> Option<Fit> {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let syy: f64 = points.iter().map(|(_, y)| (y - my).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let residual = (syy - slope * sxy).max(0.0);
    Some(Fit {
        slope,
        se: (points.len() > 2).then(|| (residual / (n - 2.0) / sxx).sqrt()),
        r2: (syy > 0.0).then(|| 1.0 - residual / syy),
        points: points.len(),
    })
}

impl Fit {
    /// µs per second per client → µs per client per snapshot.
    fn per_snapshot(self) -> Self {
        Self {
            slope: self.slope / RATE,
            se: self.se.map(|e| e / RATE),
            ..self
        }
    }

    fn text(self) -> String {
        match self.se {
            Some(se) => format!("{:.1} ± {se:.1} µs", self.slope),
            None => format!("{:.1} µs", self.slope),
        }
    }

    fn json(self) -> serde_json::Value {
        json!({
            "slope_us_per_client_per_snapshot": self.slope,
            "standard_error_us": self.se,
            "r2": self.r2,
            "points": self.points,
        })
    }
}

/// The counts of each round: ascending in even rounds, descending in odd
/// ones.
fn schedule(counts: &[u32], rounds: usize) -> Vec<(u32, usize)> {
    (0..rounds)
        .flat_map(|r| {
            let mut c: Vec<u32> = counts.to_vec();
            if r % 2 == 1 {
                c.reverse();
            }
            c.into_iter().map(move |n| (n, r + 1))
        })
        .collect()
}

/// The points whose client count is in the lower (`upper` false) or upper
/// half of `counts`, the middle count in both.
fn half(points: &[(f64, f64)], counts: &[u32], upper: bool) -> Vec<(f64, f64)> {
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    let Some(&mid) = sorted.get(sorted.len() / 2) else {
        return Vec::new();
    };
    let mid = f64::from(mid);
    points
        .iter()
        .copied()
        .filter(|&(x, _)| if upper { x >= mid } else { x <= mid })
        .collect()
}

/// Table 6: the marginal cost of a client.
pub(crate) fn marginal(ctx: &Ctx, z: &Sizes) -> Result<Section> {
    let plans: Vec<_> = schedule(&z.marginal, z.marginal_rounds)
        .into_iter()
        .map(|(n, round)| {
            let server = with(one_room(n), &["--npcs", NPCS, "--no-interest"]);
            let name = if round == 1 {
                format!("marginal-{n}")
            } else {
                format!("marginal-{n}-r{round}")
            };
            let mut p = z.plan(name, n, server);
            p.bots_args = args(&["--idle"]);
            p.measure = z.marginal_measure;
            p
        })
        .collect();
    let mut done: Vec<Outcome> = Vec::new();
    for p in &plans {
        done.push(scenario::run(ctx, p)?);
    }
    let mut md = format!(
        "### 6. Marginal cost of a client\n\nThe scene in which issue 13 compared tickwire with \
         Colyseus 0.18: {NPCS} NPCs that all move every tick, 60 Hz, a snapshot every tick, \
         interest management off (`--no-interest`: every client sees every NPC), WSS + TLS, and \
         idle bots that only receive and apply (`arena-bots --idle`; they ask for implicit acks, \
         PROTOCOL.md §8.7, so they send nothing back but pongs). The slope is the \
         least-squares fit of the server's CPU against the number of connected clients, per \
         snapshot: what one more client costs. Each count is run {}, ascending and descending \
         in turn (the row's round), and every run is a point of the fit; ± is the slope's \
         standard error.\n\n\
         | clients | round | connected | server CPU | server CPU µs / s | bytes / client / s | bytes / moving entity / snapshot | snapshots / client / s | tick p99 (ms) | bots CPU |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        match z.marginal_rounds {
            1 => "once".to_owned(),
            2 => "twice".to_owned(),
            n => format!("{n} times"),
        }
    );
    let mut flagged = false;
    let mut points = Vec::new();
    for o in &done {
        let Some((w, f)) = measured(&mut md, o, 10, &mut flagged) else {
            continue;
        };
        let clients = w.clients_max as f64;
        let cpu_us_per_s = w.server_cpu_s / w.secs * 1e6;
        let bytes = o.bots_f64(&["bytes_per_bot_per_s"]);
        let per_entity = bytes.map(|b| b / RATE / 1000.0);
        points.push((clients, cpu_us_per_s));
        let _ = writeln!(
            md,
            "| {}{f} | {} | {} | {} % | {} | {} | {} | {} | {} | {} % |",
            o.name
                .trim_start_matches("marginal-")
                .split('-')
                .next()
                .unwrap_or_default(),
            o.name.split("-r").nth(1).unwrap_or("1"),
            w.clients_max,
            f0(Some(w.server_cpu_pct())),
            f0(Some(cpu_us_per_s)),
            f0(bytes),
            f1(per_entity),
            f1(o.bots_f64(&["snapshots_per_bot_per_s"])),
            f1(Some(w.tick_ms(0.99))),
            f0(w.bots_cpu_pct()),
        );
    }
    let fit_of = |pts: &[(f64, f64)]| fit(pts).map(Fit::per_snapshot);
    let all = (points.len() >= 3).then(|| fit_of(&points)).flatten();
    // Whether it grows with the clients: the lower half's slope against the
    // upper half's.
    let lower = fit_of(&half(&points, &z.marginal, false));
    let upper = fit_of(&half(&points, &z.marginal, true));
    let mut sorted = z.marginal.clone();
    sorted.sort_unstable();
    let mid = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    let (lo, hi) = (
        sorted.first().copied().unwrap_or_default(),
        sorted.last().copied().unwrap_or_default(),
    );
    let _ = writeln!(
        md,
        "\n**Slope: {} of server CPU per extra client per snapshot** (least squares over {} runs, \
         R² {}); {lo} → {mid} clients: {}; {mid} → {hi} clients: {}.\n",
        all.map_or_else(|| "—".into(), Fit::text),
        points.len(),
        all.and_then(|f| f.r2)
            .map_or_else(|| "—".into(), |r| format!("{r:.2}")),
        lower.map_or_else(|| "—".into(), Fit::text),
        upper.map_or_else(|| "—".into(), Fit::text),
    );
    let fit = all.map(|f| f.slope);
    // The floor at each count: its own slope is what the machine's writes
    // cost per extra client, and whether they grow with the clients.
    let floors = floor_per_count(ctx, &done, &sorted);
    let floor_pts = floor_points(&floors);
    let floor_fit = fit_of(&floor_pts);
    let floor_half = |upper| fit_of(&half(&floor_pts, &z.marginal, upper));
    let floor = floors.last().filter(|(n, _)| *n == hi).map(|(_, us)| *us);
    let _ = writeln!(
        md,
        "This machine's floor in the same run, once per count (`replication-load floor --tls \
         --no-ack`: a blocking program's TLS-sealed writes of the same mean message size and no \
         read, as the idle bots send nothing back): {}. Its own slope: **{}** per extra client \
         per snapshot ({lo} → {mid} clients: {}; {mid} → {hi} clients: {}); the server's slope \
         is {} the floor's, and {} the floor's cost per message at {hi} clients.\n",
        if floors.is_empty() {
            "—".to_owned()
        } else {
            floors
                .iter()
                .map(|(n, us)| format!("{us:.1} µs per message at {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        floor_fit.map_or_else(|| "—".into(), Fit::text),
        floor_half(false).map_or_else(|| "—".into(), Fit::text),
        floor_half(true).map_or_else(|| "—".into(), Fit::text),
        fit.zip(floor_fit)
            .map_or_else(|| "—".into(), |(s, f)| format!("{:.2}×", s / f.slope)),
        fit.zip(floor)
            .map_or_else(|| "—".into(), |(s, f)| format!("{:.2}×", s / f)),
    );
    let verdict = match fit {
        Some(s) => Verdict::from_bool(
            s <= TARGET_US,
            format!("{s:.1} µs per extra client per snapshot"),
        ),
        None => Verdict::NotMeasured("fewer than three rows were measured".into()),
    };
    md.push_str("| target | result | verdict |\n|---|---|---|\n");
    md.push_str(&verdict.row(
        "marginal cost ≤ 10 µs per extra client per snapshot over wss:// (Colyseus, ws://: 6–21 µs)",
    ));
    if flagged || done.iter().any(|o| !flags(o).is_empty()) {
        md.push_str(FLAG_NOTE);
    }
    commands(&mut md, &plans.iter().collect::<Vec<_>>());
    Ok(Section {
        json: json!({
            "table": "marginal",
            "runs": outcomes_json(&done),
            "slope_us_per_client_per_snapshot": fit,
            "fit": all.map(Fit::json),
            "lower_half": lower.map(Fit::json),
            "upper_half": upper.map(Fit::json),
            "floor_us": floor,
            "floor_per_count_us": floors.iter().map(|(n, us)| json!({"clients": n, "us_per_message": us})).collect::<Vec<_>>(),
            "floor_fit": floor_fit.map(Fit::json),
            "verdict": verdict.to_json("marginal cost per extra client per snapshot ≤ 10 µs"),
        }),
        markdown: md,
        failures: failures(&done),
    })
}

/// The floor's CPU per message (write only) at each of `counts`, with the
/// mean message size of the last measured run (every client sees every
/// NPC, so the size is the same at each count); counts it could not
/// measure are left out (and said on stderr).
fn floor_per_count(ctx: &Ctx, done: &[Outcome], counts: &[u32]) -> Vec<(u32, f64)> {
    let Some(size) = done
        .iter()
        .rev()
        .find_map(|o| row_exchange(o, o.window.as_ref()?.clients_max))
        .map(|(_, size)| size)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for &n in counts {
        let x = super::floor::Exchange {
            ack: false,
            ..super::floor::Exchange::floor(n, size, 10)
        };
        match super::floor::measure_as(ctx, &ctx.floor_bin, &x) {
            Ok(us) => out.push((n, us)),
            Err(e) => eprintln!("marginal: no floor at {n} connections: {e:#}"),
        }
    }
    out
}

/// The floor's points for a fit in the server's units: CPU µs per second
/// against connections (µs per message × messages per second).
fn floor_points(floors: &[(u32, f64)]) -> Vec<(f64, f64)> {
    floors
        .iter()
        .map(|&(n, us)| (f64::from(n), us * f64::from(n) * RATE))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_is_least_squares_with_its_error() {
        let exact = fit(&[(10.0, 100.0), (20.0, 300.0), (30.0, 500.0)]).unwrap();
        assert_eq!(exact.slope, 20.0);
        assert_eq!(exact.se, Some(0.0));
        assert_eq!(exact.r2, Some(1.0));
        // Noise around y = 2x + 1.
        let noisy = fit(&[(1.0, 3.1), (2.0, 4.9), (3.0, 7.0), (4.0, 9.0)]).unwrap();
        assert!((noisy.slope - 1.97).abs() < 0.01, "{noisy:?}");
        // The line 1.05 + 1.98x leaves residuals 0.07, -0.11, 0.01, 0.03:
        // se = sqrt(0.018 / (4 - 2) / 5).
        let se = noisy.se.unwrap();
        assert!((se - 0.0424).abs() < 0.001, "{se}");
        assert!(noisy.r2.unwrap() > 0.99);
        assert_eq!(fit(&[(5.0, 1.0), (5.0, 2.0)]), None);
        assert_eq!(fit(&[(1.0, 1.0), (2.0, 3.0)]).unwrap().se, None);
    }

    #[test]
    fn the_floors_slope_is_in_the_servers_units() {
        // The same cost per message at every count: that cost per extra
        // client per snapshot.
        let flat = fit(&floor_points(&[(10, 9.0), (30, 9.0), (50, 9.0)]))
            .unwrap()
            .per_snapshot();
        assert!((flat.slope - 9.0).abs() < 1e-9, "{flat:?}");
        // A cost per message that grows with the count: a steeper slope.
        let growing = fit(&floor_points(&[(10, 9.0), (30, 10.0), (50, 11.0)]))
            .unwrap()
            .per_snapshot();
        assert!(growing.slope > 11.0, "{growing:?}");
    }

    #[test]
    fn rounds_alternate_and_halves_share_the_middle() {
        assert_eq!(
            schedule(&[10, 20, 30], 2),
            [(10, 1), (20, 1), (30, 1), (30, 2), (20, 2), (10, 2)]
        );
        let pts = [
            (10.0, 1.0),
            (20.0, 2.0),
            (30.0, 3.0),
            (40.0, 4.0),
            (50.0, 5.0),
        ];
        let xs = |v: Vec<(f64, f64)>| v.into_iter().map(|p| p.0).collect::<Vec<_>>();
        let counts = [10, 20, 30, 40, 50];
        assert_eq!(xs(half(&pts, &counts, false)), [10.0, 20.0, 30.0]);
        assert_eq!(xs(half(&pts, &counts, true)), [30.0, 40.0, 50.0]);
    }
}
