//! Table 6: what one more client costs the server, in the scene where
//! issue 13 compared tickwire with Colyseus 0.18 (1,000 NPCs that all move
//! every tick, 60 Hz, no interest management, idle receiving clients).
//!
//! The slope is a least-squares fit of the server's CPU (µs per second)
//! against the number of clients, over at least three client counts, divided
//! by the snapshot rate: server CPU µs per extra client per snapshot.

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::json;

use super::report::{Verdict, f0, f1};
use super::scenario::{self, Ctx, Outcome, args};
use super::tables::{
    FLAG_NOTE, RATE, Section, Sizes, commands, failures, flags, floor_for, measured, one_room,
    outcomes_json, with,
};

/// The target, over wss://.
const TARGET_US: f64 = 10.0;
/// The NPCs of the scene.
const NPCS: &str = "1000";

/// Least-squares slope of `y` over `x`; `None` with fewer than two
/// distinct `x`.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Table 6: the marginal cost of a client.
pub(crate) fn marginal(ctx: &Ctx, z: &Sizes) -> Result<Section> {
    let plans: Vec<_> = z
        .marginal
        .iter()
        .map(|&n| {
            let server = with(one_room(n), &["--npcs", NPCS, "--no-interest"]);
            let mut p = z.plan(format!("marginal-{n}"), n, server);
            p.bots_args = args(&["--idle"]);
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
         idle bots that only receive, apply and ack (`arena-bots --idle`). The slope is the \
         least-squares fit of the server's CPU against the number of connected clients, per \
         snapshot: what one more client costs.\n\n\
         | clients | connected | server CPU | server CPU µs / s | bytes / client / s | bytes / moving entity / snapshot | snapshots / client / s | tick p99 (ms) | bots CPU |\n\
         |---|---|---|---|---|---|---|---|---|\n"
    );
    let mut flagged = false;
    let mut points = Vec::new();
    for o in &done {
        let Some((w, f)) = measured(&mut md, o, 9, &mut flagged) else {
            continue;
        };
        let clients = w.clients_max as f64;
        let cpu_us_per_s = w.server_cpu_s / w.secs * 1e6;
        let bytes = o.bots_f64(&["bytes_per_bot_per_s"]);
        let per_entity = bytes.map(|b| b / RATE / 1000.0);
        points.push((clients, cpu_us_per_s));
        let _ = writeln!(
            md,
            "| {}{f} | {} | {} % | {} | {} | {} | {} | {} | {} % |",
            o.name.trim_start_matches("marginal-"),
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
    let per_snapshot = |pts: &[(f64, f64)]| slope(pts).map(|s| s / RATE);
    let fit = (points.len() >= 3).then(|| per_snapshot(&points)).flatten();
    // Whether it grows with the clients: the slope of the first pair
    // against that of the last.
    let pairs: Vec<Option<f64>> = points.windows(2).map(per_snapshot).collect();
    let pair_text = pairs
        .iter()
        .zip(points.windows(2))
        .map(|(s, w)| format!("{:.0} → {:.0}: {} µs", w[0].0, w[1].0, f1(*s)))
        .collect::<Vec<_>>()
        .join("; ");
    let _ = writeln!(
        md,
        "\n**Slope: {} µs of server CPU per extra client per snapshot** (least squares over {} \
         counts); pairwise: {}.\n",
        f1(fit),
        points.len(),
        if pair_text.is_empty() {
            "—".into()
        } else {
            pair_text
        },
    );
    // The floor at the largest count, for scale.
    let floor = done
        .iter()
        .rev()
        .find_map(|o| Some((o, o.window.as_ref()?.clients_max)))
        .and_then(|(o, n)| floor_for(ctx, o, n));
    let _ = writeln!(
        md,
        "This machine's floor in the same run (`replication-load floor --tls`, the largest count, \
         the same mean message size): {} µs per message; the slope is {} the floor.\n",
        f1(floor),
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
            "pairwise": pairs,
            "floor_us": floor,
            "verdict": verdict.to_json("marginal cost per extra client per snapshot ≤ 10 µs"),
        }),
        markdown: md,
        failures: failures(&done),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_is_least_squares() {
        assert_eq!(
            slope(&[(10.0, 100.0), (20.0, 300.0), (30.0, 500.0)]),
            Some(20.0)
        );
        // Noise around y = 2x + 1.
        let s = slope(&[(1.0, 3.1), (2.0, 4.9), (3.0, 7.0), (4.0, 9.0)]).unwrap();
        assert!((s - 1.97).abs() < 0.01, "{s}");
        assert_eq!(slope(&[(5.0, 1.0), (5.0, 2.0)]), None);
    }
}
