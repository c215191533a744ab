//! Rooms with configs of their own (`Server::with_room_config`) on one
//! server over real TLS WebSockets: each room announces and runs its own
//! tick rate and snapshot interval, admits its own number of players and
//! applies its own message rate limit; a room whose config cannot work does
//! not open, and the server goes on. (That each room ticks at its own rate,
//! counted against a virtual clock, is `rooms::tests::own_configs` in
//! tickwire-server.)

use std::time::Duration;

use anyhow::{Result, ensure};
use tickwire_server::{RoomConfig, RoomSpec, ServerConfig};
use tickwire_shared::{Hello, RejectCode};
use tickwire_tests::*;

const DEADLINE: Duration = Duration::from_secs(5);

/// `fast`: 60 Hz, 2 players; `slow`: 10 Hz with a snapshot every 2 ticks,
/// 1 player; `strict`: 20 messages per second; `broken`: tick rate 0;
/// others: the default (30 Hz).
fn rooms(room: &RoomSpec<'_>, default: &RoomConfig) -> RoomConfig {
    match room.name {
        "fast" => default.clone().with_tick_rate(60).with_max_clients(2),
        "slow" => default
            .clone()
            .with_tick_rate(10)
            .with_snapshot_interval(2)
            .with_max_clients(1),
        "strict" => default.clone().with_max_messages_per_sec(20),
        "broken" => default.clone().with_tick_rate(0),
        _ => default.clone(),
    }
}

fn config() -> ServerConfig {
    test_config().with_tick_rate(30)
}

fn hello_to(room: &str) -> Hello {
    let mut h = hello();
    h.room = Some(room.to_owned());
    h
}

async fn rejected(server: &TestServer, room: &str) -> Result<RejectCode> {
    let mut ws = server.ws_connect(None).await?;
    send_hello(&mut ws, hello_to(room)).await?;
    Ok(expect_reject(&mut ws, DEADLINE).await?.code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_run_their_own_rates_and_capacities() -> Result<()> {
    let server = TestServer::start_with_room_config(config(), rooms).await?;
    let mut fast = server.client(hello_to("fast")).await?;
    let mut slow = server.client(hello_to("slow")).await?;
    let other = server.client(hello_to("other")).await?;
    let rates = |c: &TestClient| (c.welcome.tick_rate, c.welcome.snapshot_interval);
    ensure!(rates(&fast) == (60, 1), "fast: {:?}", rates(&fast));
    ensure!(rates(&slow) == (10, 2), "slow: {:?}", rates(&slow));
    ensure!(rates(&other) == (30, 1), "other: {:?}", rates(&other));
    // The slow room snapshots every second tick only.
    let mut tick = 0;
    for _ in 0..4 {
        tick = slow.until_tick(tick + 1, DEADLINE).await?;
        ensure!(tick % 2 == 0, "slow room snapshot at odd tick {tick}");
    }
    fast.until_tick(10, DEADLINE).await?;
    // Capacity is per room: slow holds 1, fast 2.
    ensure!(rejected(&server, "slow").await? == RejectCode::RoomFull);
    let _second = server.client(hello_to("fast")).await?;
    ensure!(rejected(&server, "fast").await? == RejectCode::RoomFull);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_room_config_refuses_its_room_only() -> Result<()> {
    let server = TestServer::start_with_room_config(config(), rooms).await?;
    ensure!(rejected(&server, "broken").await? == RejectCode::InvalidRoom);
    ensure!(
        server.server.room_count() == 0,
        "the broken room did not open"
    );
    let mut c = server.client(hello_to("other")).await?;
    c.until_tick(5, DEADLINE).await?;
    ensure!(rejected(&server, "broken").await? == RejectCode::InvalidRoom);
    Ok(())
}

/// The message rate limit is the room's: 40 inputs at once close a
/// session of `strict` (20 per second, burst 10) with 4002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_rate_limit_is_the_rooms() -> Result<()> {
    let server = TestServer::start_with_room_config(config(), rooms).await?;
    let mut strict = server.client(hello_to("strict")).await?;
    for _ in 0..40 {
        if strict
            .input(TestInput::Move { dx: 1, dy: 0 })
            .await
            .is_err()
        {
            break; // closed
        }
    }
    let (code, reason) = expect_close(&mut strict.ws, DEADLINE).await?;
    ensure!(code == 4002, "close {code} {reason:?}, expected 4002");
    ensure!(reason.contains("20 messages per second"), "{reason:?}");
    Ok(())
}
