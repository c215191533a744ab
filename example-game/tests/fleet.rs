//! A fleet of real processes: one `redis-server`, three `arena-server`
//! nodes sharing it, and 200 players (in-process `tickwire-client`s) that
//! matchmake across them. Then, in order:
//!
//! 1. **fill**: every player is in; rooms fill up to capacity and no
//!    further (see [`check_fill`] for the exact criterion); no room name
//!    is held by two nodes;
//! 2. **kill -9** of a node: its entry and the rooms it held leave the
//!    directory within the TTL + 1 s (rooms a matchmaker claimed for it
//!    after the kill, within two TTLs + 1 s), its players see the
//!    connection drop (1006) and matchmake again onto the survivors, and
//!    the survivors' players see no snapshot gap longer than [`GAP_BOUND`]
//!    and no disconnect;
//! 3. **Redis restart** (down until both nodes noticed, then a quick one):
//!    the nodes keep their rooms and players, matchmaking answers
//!    `503 directory_unavailable` while Redis is down and works again
//!    after, and the directory then holds exactly the live nodes and every
//!    room with players, nothing of the dead node;
//! 4. **drain on SIGTERM**: the draining node gets no new room or player,
//!    and its players are closed with 1001 and a reason, then matchmake
//!    again onto the last node.
//!
//! Every wait has a deadline and says what it waited for; every child
//! process is killed when the test ends, panics included ([`Proc`]). The
//! nodes run with a heartbeat of 500 ms and a TTL of 3 s
//! ([`FleetOptions::test`]). About 13 s on a 2-core machine (debug build).
//!
//! Under `cargo xtask test` (which sets `TICKWIRE_REDIS_SERVER`) or CI a
//! missing `redis-server` fails the test; elsewhere it skips, loudly.
//!
//! `fleet_bench` (ignored) runs the same fleet for the figures in
//! BENCHMARKS.md ("Fleet"): `cargo xtask bench fleet`.

mod fleet_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use fleet_support::*;
use tickwire_client::matchmake::MatchmakeRequest;
use tickwire_server::NodeState;
use tickwire_shared::CloseCode;
use tokio::time::Instant;

/// Players in the test.
const PLAYERS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_one_redis_and_survive_kill_redis_restart_and_drain() {
    let Some(mut fleet) = Fleet::start(FleetOptions::test()).await else {
        return;
    };
    let t_all = Instant::now();

    // 1. Fill: 200 players matchmake through node-0.
    let bots = Bots::spawn(PLAYERS, fleet.matchmake_urls(&["node-0", "node-1"]));
    let fill = wait_for(
        "every player connected with a snapshot",
        FILL_DEADLINE,
        || async { bots.all_in() },
    )
    .await;
    eprintln!("fill: {PLAYERS} players in after {fill:?}");
    let view = bots.view();
    for (i, b) in view.iter().enumerate() {
        assert!(
            b.losses.is_empty() && b.connects == 1,
            "bot{i} lost its connection while filling: {:?}",
            b.losses
        );
    }
    check_fill(&view, fleet.room_capacity, PLAYERS);
    check_directory_matches(&fleet, &bots, &["node-0", "node-1", "node-2"], &[]).await;

    // 2. kill -9 of node-2 (not the matchmaking entry point).
    let victims: BTreeSet<usize> = bots.on_node("node-2");
    assert!(
        !victims.is_empty(),
        "node-2 got no players: {}",
        bots.summary()
    );
    let before = bots.view();
    bots.reset_gaps();
    let (_, rooms_at_kill) = fleet.directory_listing().await.expect("directory");
    let own: BTreeSet<String> = rooms_at_kill
        .iter()
        .filter(|r| r.node == "node-2")
        .map(|r| r.name.clone())
        .collect();
    let t_kill = Instant::now();
    fleet.kill_node("node-2");
    let ttl = fleet.options.ttl;
    // The node's entry, and the rooms it had registered, expire within the
    // TTL of its last heartbeat.
    let node_gone = wait_for(
        "node-2 and the rooms it held at the kill to leave the directory (TTL + 1 s)",
        ttl + Duration::from_secs(1),
        || async {
            let (nodes, rooms) = fleet.directory_listing().await?;
            let left: Vec<_> = rooms.iter().filter(|r| own.contains(&r.name)).collect();
            if nodes.iter().any(|n| n.id == "node-2") || !left.is_empty() {
                return Err(format!(
                    "node-2 listed: {}; its rooms: {left:?}",
                    nodes.iter().any(|n| n.id == "node-2")
                ));
            }
            Ok(())
        },
    )
    .await;
    // Until node-2's entry expired, a matchmaker could still claim a new
    // room for it (it looked like the least-loaded node): such a claim
    // lives one TTL from when it was made, so every room of node-2 is gone
    // within two TTLs of the kill.
    wait_for(
        "every room of node-2 to leave the directory (2 TTL + 1 s after the kill)",
        (ttl * 2 + Duration::from_secs(1)).saturating_sub(t_kill.elapsed()),
        || async {
            let (_, rooms) = fleet.directory_listing().await?;
            let left: Vec<_> = rooms.iter().filter(|r| r.node == "node-2").collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("rooms of node-2: {left:?}"))
            }
        },
    )
    .await;
    eprintln!(
        "kill: node-2 ({} players, {} rooms) left the directory {node_gone:?} after the kill, \
         all its rooms {:?} after it (TTL {ttl:?})",
        victims.len(),
        own.len(),
        t_kill.elapsed()
    );
    wait_for(
        "node-2's players to matchmake again onto the survivors",
        REJOIN_DEADLINE,
        || async { bots.moved_off(&victims, "node-2") },
    )
    .await;
    let after = bots.view();
    let retries: u32 = victims
        .iter()
        .map(|&i| after[i].failures - before[i].failures)
        .sum();
    eprintln!(
        "kill: all of node-2's players back on the survivors {:?} after the kill \
         ({retries} failed attempts meanwhile, e.g. {:?})",
        victims
            .iter()
            .filter_map(|&i| after[i].connected_at)
            .max()
            .map(|t| t - t_kill),
        victims.iter().find_map(|&i| after[i].last_failure.clone())
    );

    for &i in &victims {
        let loss = &after[i].losses[0];
        assert_eq!(loss.node, "node-2", "bot{i}: {loss:?}");
        // A process killed with -9 sends no close frame: the client reports
        // a dropped connection, 1006, with the transport's reason.
        assert!(
            loss.code == Some(CloseCode::Other(1006)) || loss.what.contains("connection"),
            "bot{i} got no clear error when its node died: {loss:?}"
        );
    }
    check_survivors(&before, &after, &victims, "the kill");
    check_capacity(&after, fleet.room_capacity);
    check_directory_matches(&fleet, &bots, &["node-0", "node-1"], &["node-2"]).await;

    // 3. Redis restart: down, 503s, back, everything re-registered.
    let before = bots.view();
    bots.reset_gaps();
    let redis_down = Instant::now();
    fleet.redis.kill();
    let refused = wait_for(
        "matchmaking to answer 503 directory_unavailable with Redis down",
        Duration::from_secs(10),
        || async {
            let mut answers = Vec::new();
            for node in ["node-0", "node-1"] {
                match fleet.matchmake_once(node).await {
                    Err(Refused {
                        status: 503, error, ..
                    }) if error == "directory_unavailable" => {}
                    other => answers.push(format!("{node}: {other:?}")),
                }
            }
            if answers.is_empty() {
                Ok(())
            } else {
                Err(answers.join("; "))
            }
        },
    )
    .await;
    eprintln!("redis down: matchmaking refused with 503 directory_unavailable after {refused:?}");
    // Both nodes notice (their heartbeat fails) while Redis is down.
    for node in ["node-0", "node-1"] {
        fleet
            .wait_line(
                node,
                "room directory heartbeat failed",
                Duration::from_secs(10),
            )
            .await;
    }
    fleet.assert_running(&["node-0", "node-1"]);
    let down_for = redis_down.elapsed();
    fleet.redis.launch().await;
    let resumed = wait_for(
        "matchmaking to work again after Redis returned",
        Duration::from_secs(15),
        || async { fleet.join_once("node-0").await },
    )
    .await;
    eprintln!(
        "redis back after {down_for:?} down: a new player matchmade and got a snapshot {resumed:?} later"
    );
    wait_for(
        "the survivors and all their rooms to be registered again",
        Duration::from_secs(10),
        || async { directory_matches(&fleet, &bots, &["node-0", "node-1"], &["node-2"]).await },
    )
    .await;
    let after = bots.view();
    check_survivors(&before, &after, &BTreeSet::new(), "the Redis restart");
    fleet.assert_running(&["node-0", "node-1"]);

    // 3b. A quick Redis restart (back within one heartbeat, so a node's
    // heartbeat may never fail): the rooms must be registered again too.
    let before = bots.view();
    bots.reset_gaps();
    fleet.redis.kill();
    fleet.redis.launch().await;
    let back = wait_for(
        "the rooms to be registered again after a quick Redis restart",
        Duration::from_secs(10),
        || async { directory_matches(&fleet, &bots, &["node-0", "node-1"], &["node-2"]).await },
    )
    .await;
    eprintln!("quick redis restart: directory complete again {back:?} after Redis answered");
    check_survivors(
        &before,
        &bots.view(),
        &BTreeSet::new(),
        "the quick Redis restart",
    );

    // 4. SIGTERM node-1: it drains.
    let drained: BTreeSet<usize> = bots.on_node("node-1");
    assert!(
        !drained.is_empty(),
        "node-1 has no players: {}",
        bots.summary()
    );
    let before = bots.view();
    bots.reset_gaps();
    fleet.sigterm("node-1");
    wait_for(
        "node-1 to show as draining in the directory",
        Duration::from_secs(5),
        || async {
            let (nodes, _) = fleet.directory_listing().await?;
            match nodes.iter().find(|n| n.id == "node-1") {
                Some(n) if n.state == NodeState::Draining => Ok(()),
                other => Err(format!("node-1: {other:?}")),
            }
        },
    )
    .await;
    // New players, by mode and into rooms that do not exist yet (so that a
    // new room must be placed), through either node: none on node-1.
    for k in 0..20 {
        let via = if k % 2 == 0 { "node-0" } else { "node-1" };
        let request = if k < 10 {
            MatchmakeRequest::mode("")
        } else {
            MatchmakeRequest::room(format!("drain-probe-{k}"))
        };
        let t = fleet
            .matchmake_with(via, request)
            .await
            .unwrap_or_else(|e| panic!("matchmake {k} via {via} while node-1 drains: {e:?}"));
        assert_eq!(
            t.node, "node-0",
            "matchmake {k} via {via} placed a player on the draining node: {t:?}"
        );
    }
    let grace = fleet.options.drain_grace;
    wait_for(
        "node-1's players to be told why and to move to node-0",
        grace + REJOIN_DEADLINE,
        || async { bots.moved_off(&drained, "node-1") },
    )
    .await;
    let after = bots.view();
    for &i in &drained {
        let loss = after[i].losses.last().expect("a loss");
        assert_eq!(loss.node, "node-1", "bot{i}: {loss:?}");
        assert!(
            loss.code == Some(CloseCode::ServerShutdown) && loss.what.contains("drained"),
            "bot{i} was not told why its node went away: {loss:?}"
        );
    }
    // Everyone else was on node-0 and stays there undisturbed.
    check_survivors(&before, &after, &drained, "the drain");
    let status = fleet
        .wait_exit("node-1", grace + Duration::from_secs(10))
        .await;
    assert!(
        status.success(),
        "node-1 exited with {status} after SIGTERM"
    );
    check_capacity(&after, fleet.room_capacity);
    bots.stop().await;
    eprintln!("fleet test done in {:?}", t_all.elapsed());
}

/// "Rooms fill evenly up to capacity": seen from the players' welcomes,
/// (a) no room holds more than its capacity; (b) there are at most
/// ceil(players / capacity) + 1 rooms (the placement fills a room before
/// it opens another; one spare room is allowed for the window in which a
/// room's count in the directory lags its seats); (c) the nodes' player
/// counts differ by at most one room's capacity (new rooms go to the
/// least-loaded node).
fn check_fill(view: &[BotView], capacity: usize, players: usize) {
    check_capacity(view, capacity);
    let rooms = rooms_of(view);
    let most = players.div_ceil(capacity) + 1;
    assert!(
        rooms.len() <= most,
        "{} rooms for {players} players of {capacity} per room (at most {most}): {rooms:?}",
        rooms.len()
    );
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    for b in view {
        *per_node
            .entry(b.node.as_deref().unwrap_or("?"))
            .or_default() += 1;
    }
    let (min, max) = (
        per_node.values().min().copied().unwrap_or(0),
        per_node.values().max().copied().unwrap_or(0),
    );
    assert!(
        per_node.len() == 3 && max - min <= capacity,
        "players per node not within one room of each other: {per_node:?}"
    );
    eprintln!("fill: {} rooms, players per node {per_node:?}", rooms.len());
}

/// The fleet figures of BENCHMARKS.md ("Fleet"), with `arena-server`'s
/// defaults (heartbeat 2 s, TTL 10 s): `cargo xtask bench fleet`, or
/// `cargo test --release -p arena --test fleet -- --ignored --exact fleet_bench --nocapture`.
/// Its measuring windows are fixed lengths of time (a benchmark, not a
/// synchronisation); every wait for a state still has a deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: cargo xtask bench fleet"]
async fn fleet_bench() {
    let Some(fleet) = Fleet::start(FleetOptions::defaults()).await else {
        panic!("fleet_bench needs redis-server");
    };
    let beat = fleet.options.heartbeat;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;

    // Join latency under a ramp: 200 players, one every 20 ms, at most 8
    // matchmaking or connecting at once; matchmake request sent -> first
    // snapshot applied.
    let bots = Bots::spawn(
        PLAYERS,
        fleet.matchmake_urls(&["node-0", "node-1", "node-2"]),
    );
    wait_for(
        "every player connected with a snapshot",
        FILL_DEADLINE,
        || async { bots.all_in() },
    )
    .await;
    let mut joins: Vec<Duration> = bots
        .view()
        .iter()
        .flat_map(|b| b.join_latency.clone())
        .collect();
    let (join_p50, join_p99) = (quantile(&mut joins, 0.5), quantile(&mut joins, 0.99));

    // Join latency one at a time (no queueing): 50 players in a row.
    let mut solo = Vec::new();
    let (mut solo_mm, mut solo_welcome) = (Vec::new(), Vec::new());
    for _ in 0..50 {
        let [mm, welcome, snapshot] = fleet.join_timed("node-0").await.expect("a join");
        solo_mm.push(mm);
        solo_welcome.push(welcome);
        solo.push(snapshot);
    }
    let (solo_p50, solo_p99) = (quantile(&mut solo, 0.5), quantile(&mut solo, 0.99));
    let parts = format!(
        "matchmake answered p50 {:.1} ms / p99 {:.1} ms, welcome p50 {:.1} / p99 {:.1} ms",
        ms(quantile(&mut solo_mm, 0.5)),
        ms(quantile(&mut solo_mm, 0.99)),
        ms(quantile(&mut solo_welcome, 0.5)),
        ms(quantile(&mut solo_welcome, 0.99))
    );
    let (_, rooms) = fleet.directory_listing().await.expect("directory");
    let rooms_at_rest = rooms.len();

    // Redis commands per heartbeat: nothing but the nodes' heartbeats for
    // five intervals.
    fleet.redis.reset_stats();
    let window = beat * 5;
    tokio::time::sleep(window).await;
    let hb_stats = fleet.redis.commandstats();
    let hb_total: u64 = hb_stats.values().sum();
    // One script call (EVALSHA, or EVAL when the script is not cached yet)
    // per heartbeat.
    let heartbeats =
        hb_stats.get("evalsha").copied().unwrap_or(0) + hb_stats.get("eval").copied().unwrap_or(0);
    let per_heartbeat = hb_total as f64 / heartbeats.max(1) as f64;
    let hb_per_sec = hb_total as f64 / window.as_secs_f64();

    // Redis commands per matchmake: 200 in a row through node-0, minus the
    // heartbeats' share of the window.
    fleet.redis.reset_stats();
    let t0 = Instant::now();
    for _ in 0..200 {
        fleet.matchmake_once("node-0").await.expect("a matchmake");
    }
    let took = t0.elapsed();
    let mm_stats = fleet.redis.commandstats();
    let mm_total: u64 = mm_stats.values().sum();
    let per_matchmake = (mm_total as f64 - hb_per_sec * took.as_secs_f64()) / 200.0;

    // Throughput: 32 concurrent requesters, round robin over the 3 nodes,
    // for 10 s; each request a new TLS connection (as a player's is).
    let (_, rooms) = fleet.directory_listing().await.expect("directory");
    let rooms_before_load = rooms.len();
    let urls = fleet.matchmake_urls(&["node-0", "node-1", "node-2"]);
    let end = Instant::now() + Duration::from_secs(10);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..32usize {
        let urls = urls.clone();
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors, mut n) = (Vec::new(), Vec::new(), k);
            while Instant::now() < end {
                let t = Instant::now();
                let request =
                    tickwire_client::matchmake::MatchmakeRequest::mode("").with_auth("load");
                match tickwire_client::matchmake::matchmake(
                    &urls[n % urls.len()],
                    &tickwire_client::Trust::InsecureDevCertificate,
                    &request,
                )
                .await
                {
                    Ok(_) => lat.push(t.elapsed()),
                    Err(e) => errors.push(e.to_string()),
                }
                n += 1;
            }
            (lat, errors)
        }));
    }
    let (mut lat, mut errors) = (Vec::new(), Vec::new());
    for t in tasks {
        let (l, e) = t.await.expect("requester");
        lat.extend(l);
        errors.extend(e);
    }
    let load_secs = started.elapsed().as_secs_f64();
    let ok = lat.len();
    let (mm_p50, mm_p99) = (quantile(&mut lat, 0.5), quantile(&mut lat, 0.99));
    let (_, rooms) = fleet.directory_listing().await.expect("directory");
    bots.stop().await;

    let stats = |s: &std::collections::BTreeMap<String, u64>| {
        s.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "fleet bench: 3 nodes, {PLAYERS} players, heartbeat {beat:?}, TTL {:?}",
        fleet.options.ttl
    );
    println!(
        "join latency (matchmake request -> first snapshot), {PLAYERS} players ramped over 4 s, 8 at once: p50 {:.1} ms, p99 {:.1} ms",
        ms(join_p50),
        ms(join_p99)
    );
    println!(
        "join latency, one player at a time (50): p50 {:.1} ms, p99 {:.1} ms ({parts})",
        ms(solo_p50),
        ms(solo_p99)
    );
    println!(
        "redis commands per heartbeat ({rooms_at_rest} rooms on 3 nodes): {per_heartbeat:.1} ({hb_total} for {heartbeats} heartbeats in {window:?}: {})",
        stats(&hb_stats)
    );
    println!(
        "redis commands per matchmake (sequential, {rooms_at_rest}+ rooms listed): {per_matchmake:.1} ({mm_total} for 200 in {took:?}: {})",
        stats(&mm_stats)
    );
    println!(
        "matchmake throughput, 32 concurrent, 3 nodes: {:.0} req/s ({ok} ok, {} errors{}), p50 {:.1} ms, p99 {:.1} ms; rooms in the directory {rooms_before_load} before, {} after",
        ok as f64 / load_secs,
        errors.len(),
        errors
            .first()
            .map(|e| format!(", e.g. {e}"))
            .unwrap_or_default(),
        ms(mm_p50),
        ms(mm_p99),
        rooms.len()
    );
}
