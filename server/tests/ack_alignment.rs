//! Aligned acks (issue 13, item 1) in the deterministic harness: idle
//! clients that hold their acks and acknowledge the same ticks keep the
//! room's distinct baselines per tick few, on steady links and after a
//! stall.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tickwire_server::ServerConfig;
use tickwire_server::testkit::{Harness, HarnessConfig};
use tickwire_shared::client::{AckPolicy, ClientConfig, Event};
use tickwire_shared::conditioner::ConditionerConfig;

#[path = "support/swarm.rs"]
mod swarm;

use swarm::Swarm;

const CLIENTS: usize = 25;

/// What the room goes through while it is measured.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Trouble {
    /// Nothing.
    None,
    /// A third of the clients stop reading for 200 ms (their outboxes stay
    /// full; the room slows them down and then recovers).
    ReadersStall,
    /// The room does not tick for 100 ms every second (a preempted task).
    RoomStalls,
}

/// Distinct baselines per tick over 6 s of 25 idle clients with round
/// trips from 10 to 58 ms: their mean and maximum, and the full snapshots
/// sent after the warm-up.
struct Spread {
    mean: f64,
    max: usize,
    full: u64,
}

fn spread(policy: AckPolicy, trouble: Trouble) -> Spread {
    let mut h = Harness::new(
        Swarm::default(),
        HarnessConfig::default()
            .with_server(ServerConfig::default().with_tick_rate(60))
            .with_client(
                ClientConfig::default()
                    .with_ping_interval(None)
                    .with_acks(policy),
            )
            .with_seed(5),
    );
    for i in 0..CLIENTS {
        let link = ConditionerConfig::perfect()
            .with_latency(Duration::from_millis(5 + (i as u64 % 13) * 2))
            .with_jitter(Duration::from_millis(2));
        h.connect_with_link(None, &link);
    }
    h.run_for(Duration::from_secs(2));
    let _ = h.take_sent();
    let mut seen: Vec<usize> = h.clients().iter().map(|c| c.events.len()).collect();
    let mut per_tick: BTreeMap<u32, BTreeSet<Option<u32>>> = BTreeMap::new();
    let start = h.now();
    let end = start + Duration::from_secs(6);
    let mut stalls = 0u32;
    while h.now() < end {
        let since = h.now() - start;
        match trouble {
            Trouble::ReadersStall if stalls == 0 && since >= Duration::from_secs(3) => {
                for i in 0..CLIENTS / 3 {
                    h.set_reading(i, false);
                }
                h.run_for(Duration::from_millis(200));
                for i in 0..CLIENTS / 3 {
                    h.set_reading(i, true);
                }
                stalls += 1;
            }
            Trouble::RoomStalls if since >= Duration::from_secs(1) * (stalls + 1) => {
                let ticks = h.room().tick_count();
                h.stall(Duration::from_millis(100));
                assert_eq!(h.room().tick_count(), ticks, "the room ticked in a stall");
                stalls += 1;
            }
            _ => {}
        }
        h.step();
        for (i, c) in h.clients().iter().enumerate() {
            for ev in &c.events[seen[i]..] {
                match ev {
                    Event::Snapshot(a) => {
                        per_tick.entry(a.tick).or_default().insert(a.baseline);
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
    let counts: Vec<usize> = per_tick.values().map(BTreeSet::len).collect();
    Spread {
        mean: counts.iter().sum::<usize>() as f64 / counts.len().max(1) as f64,
        max: counts.iter().copied().max().unwrap_or(0),
        full: h.take_sent().full_snapshots,
    }
}

/// Idle clients that hold their acks (`AckPolicy::DELAYED`: aligned on
/// every third snapshot, or 50 ms) acknowledge the same ticks whatever
/// their round trip, so the room still diffs against about one baseline per
/// tick, as with an ack for every snapshot: on steady links, after a third
/// of them stalled, and with a room that stalls every second. (Acks held at
/// each client's own phase give 3 baselines per tick here.)
#[test]
fn aligned_acks_keep_one_baseline_per_tick() {
    for trouble in [Trouble::None, Trouble::ReadersStall, Trouble::RoomStalls] {
        let every = spread(AckPolicy::EVERY_SNAPSHOT, trouble);
        let aligned = spread(AckPolicy::DELAYED, trouble);
        eprintln!(
            "{trouble:?}: distinct baselines per tick, an ack per snapshot: mean {:.3}, max {}; \
             aligned acks: mean {:.3}, max {}; full snapshots {} / {}",
            every.mean, every.max, aligned.mean, aligned.max, every.full, aligned.full
        );
        assert!(
            aligned.mean <= 1.1 && aligned.mean <= every.mean + 0.05,
            "{trouble:?}: aligned acks spread the baselines: mean {:.3} per tick (max {}), \
             against {:.3} with an ack per snapshot",
            aligned.mean,
            aligned.max,
            every.mean
        );
        assert!(
            aligned.full <= every.full,
            "{trouble:?}: {} full snapshots with aligned acks, {} with an ack per snapshot",
            aligned.full,
            every.full
        );
    }
}
