//! Clients that fall behind (issue 13, item 3), in the deterministic
//! harness: a client on a slow link is sent fewer snapshots, deltas against
//! baselines the ring still holds, so it never costs the room more than a
//! client that keeps up; one that stops reading is closed as a slow consumer
//! while the others play on.

use std::time::Duration;

use tickwire_server::ServerConfig;
use tickwire_server::stats::SentCounters;
use tickwire_server::testkit::{Harness, HarnessConfig};
use tickwire_shared::CloseCode;
use tickwire_shared::client::Event;
use tickwire_shared::conditioner::ConditionerConfig;

#[path = "support/swarm.rs"]
mod swarm;

use swarm::Swarm;

const TICK_RATE: u16 = 60;
const CLIENTS: usize = 6;

fn link() -> ConditionerConfig {
    ConditionerConfig::perfect().with_latency(Duration::from_millis(20))
}

fn harness(server: ServerConfig) -> Harness<Swarm> {
    Harness::new(
        Swarm::default(),
        HarnessConfig::default()
            .with_server(server.with_tick_rate(TICK_RATE))
            .with_link(link())
            .with_seed(7),
    )
}

/// What one run measured.
struct Run {
    /// The room's snapshot counters over the measured window.
    sent: SentCounters,
    /// Per client: snapshots applied in the window, and the oldest a
    /// snapshot was when applied (its tick to the moment it applied).
    applied: Vec<(usize, Duration)>,
}

/// Connects [`CLIENTS`] clients, `slow` of them over `slow_link`; warms up
/// for 2 s, then measures 20 s.
fn run(server: ServerConfig, slow: usize, slow_link: &ConditionerConfig) -> Run {
    let mut h = harness(server);
    for i in 0..CLIENTS {
        if i < slow {
            h.connect_with_link(None, slow_link);
        } else {
            h.connect(None);
        }
    }
    let period = Duration::from_secs(1) / u32::from(TICK_RATE);
    h.run_for(Duration::from_secs(2));
    let _ = h.take_sent();
    let mut seen: Vec<usize> = h.clients().iter().map(|c| c.events.len()).collect();
    let mut applied = vec![(0usize, Duration::ZERO); CLIENTS];
    let end = h.now() + Duration::from_secs(20);
    while h.now() < end {
        h.step();
        let now = h.now();
        for (i, c) in h.clients().iter().enumerate() {
            for ev in &c.events[seen[i]..] {
                match ev {
                    Event::Snapshot(a) => {
                        let age = now.saturating_sub(period * a.tick);
                        applied[i].0 += 1;
                        applied[i].1 = applied[i].1.max(age);
                    }
                    Event::Closed(closed) => panic!("client {i} closed: {closed:?}"),
                    _ => {}
                }
            }
            seen[i] = c.events.len();
        }
    }
    for (i, c) in h.clients().iter().enumerate() {
        assert!(
            c.mismatches.is_empty(),
            "client {i}: {} worlds differed from the server's, first: {:?}",
            c.mismatches.len(),
            c.mismatches.first()
        );
    }
    Run {
        sent: h.take_sent(),
        applied,
    }
}

/// The bytes per second one prompt client is sent.
fn prompt_rate(r: &Run) -> u64 {
    r.sent.bytes / 20 / CLIENTS as u64
}

#[test]
fn a_third_of_the_clients_on_slow_links_cost_no_more_than_prompt_ones() {
    let prompt = run(ServerConfig::default(), 0, &link());
    // A link that carries a third of what a prompt client is sent.
    let rate = prompt_rate(&prompt);
    let slow_link = link().with_bandwidth(Some(rate / 3));
    let slow = run(ServerConfig::default(), CLIENTS / 3, &slow_link);
    let per_client = |r: &Run| r.sent.bytes as f64 / CLIENTS as f64;
    eprintln!(
        "prompt room: {} snapshots, {} full, {} bytes; with {} slow clients (link {} B/s): \
         {} snapshots, {} full, {} bytes; applied (count, oldest) {:?}",
        prompt.sent.snapshots,
        prompt.sent.full_snapshots,
        prompt.sent.bytes,
        CLIENTS / 3,
        rate / 3,
        slow.sent.snapshots,
        slow.sent.full_snapshots,
        slow.sent.bytes,
        slow.applied
    );
    // The room's work (snapshots built, bytes encoded) per client stays
    // within 10 % of the all-prompt room's.
    assert!(
        per_client(&slow) <= 1.1 * per_client(&prompt),
        "bytes per client: {} with slow clients, {} without",
        per_client(&slow),
        per_client(&prompt)
    );
    assert!(slow.sent.snapshots <= prompt.sent.snapshots);
    // Slow clients are sent deltas: no full snapshot after the joins.
    assert_eq!(prompt.sent.full_snapshots, 0);
    assert_eq!(
        slow.sent.full_snapshots, 0,
        "full snapshots to slow clients"
    );
    // Slow clients keep playing, on snapshots of bounded age.
    for (i, (n, oldest)) in slow.applied.iter().enumerate().take(CLIENTS / 3) {
        assert!(
            *n >= 20 * 5,
            "slow client {i} applied only {n} snapshots in 20 s"
        );
        assert!(
            *oldest <= Duration::from_millis(1500),
            "slow client {i} applied a snapshot {oldest:?} old"
        );
    }
    // Prompt clients get every snapshot, on time.
    for (i, (n, oldest)) in slow.applied.iter().enumerate().skip(CLIENTS / 3) {
        assert!(*n >= 20 * 60 - 2, "prompt client {i} applied {n} snapshots");
        assert!(
            *oldest <= Duration::from_millis(60),
            "prompt client {i}: {oldest:?}"
        );
    }
}

#[test]
fn a_client_that_stops_reading_is_closed_and_costs_nothing_meanwhile() {
    let mut h = harness(ServerConfig::default());
    for _ in 0..3 {
        h.connect(None);
    }
    h.run_for(Duration::from_secs(1));
    h.set_reading(0, false);
    let _ = h.take_sent();
    let t0 = h.now();
    let (mut ticks, mut built) = (0u64, 0u64);
    let closed_after = loop {
        h.step();
        ticks += 1;
        built += h.take_sent().snapshots;
        if let Some(c) = h.client(0).events.iter().find_map(|e| match e {
            Event::Closed(c) => Some(c.clone()),
            _ => None,
        }) {
            assert_eq!(c.code, CloseCode::SlowConsumer, "{c:?}");
            assert!(c.reason.contains("behind"), "{:?}", c.reason);
            break h.now() - t0;
        }
        assert!(h.now() - t0 < Duration::from_secs(10), "never closed");
    };
    // Only the two reading clients were built for, once per tick, plus the
    // stalled one's first snapshot after it stopped (then it stays queued).
    assert!(
        built <= 2 * ticks + 1,
        "{built} snapshots built in {ticks} ticks for 2 reading clients"
    );
    eprintln!("closed after {closed_after:?}");
    // 120 snapshots stalled at the slowest rate (2 s at 60 Hz), reached
    // within 7 snapshots, checked every 8th.
    assert!(closed_after >= Duration::from_secs(2), "{closed_after:?}");
    assert!(
        closed_after <= Duration::from_millis(2500),
        "{closed_after:?}"
    );
    // The others play on.
    h.run_for(Duration::from_secs(1));
    for i in 1..3 {
        assert!(
            !h.client(i)
                .events
                .iter()
                .any(|e| matches!(e, Event::Closed(_))),
            "client {i} closed"
        );
        assert!(h.client(i).mismatches.is_empty());
    }
}
