//! End to end in a real browser: the arena server serves the wasm demo, headless
//! Chromium (Debian's, trusting the dev certificate by its SPKI hash) plays it,
//! and a native observer client checks what the server did.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use arena::EntityKind;
use arena::host::ArenaGame;
use serde_json::Value;
use tickwire_server::{Server, ServerConfig};
use tickwire_tests::arena_web::{ArenaPage, Observer, player, www_dir};
use tickwire_tests::cdp::Browser;
use tokio::time::Instant;

async fn stats(browser: &mut Browser, page: &tickwire_tests::cdp::Page) -> Result<Value> {
    browser.eval(page, "window.tickwire.stats()").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_players_move_shoot_and_see_each_other() -> Result<()> {
    tickwire_tests::init_tracing();
    // Interest management off, so every player sees every other wherever
    // they spawned (the visibility itself is covered by lifecycle.rs).
    let ArenaPage {
        server,
        addr,
        spki,
        tls,
    } = ArenaPage::start(ServerConfig::default()).await?;
    let mut observer = Observer::connect(addr, tls).await?;

    let url = format!("https://localhost:{}/", addr.port());
    let mut browser = Browser::launch(&spki).await?;
    let alice = browser.open(&url).await?;
    browser
        .wait_for(
            &alice,
            "window.tickwire !== undefined",
            Duration::from_secs(20),
        )
        .await?;
    browser
        .eval(&alice, "window.tickwire.play('alice')")
        .await?;
    browser
        .wait_for(
            &alice,
            "window.tickwire.stats().connected === true",
            Duration::from_secs(20),
        )
        .await?;

    // The server moves alice when the browser holds D.
    observer
        .until(Duration::from_secs(10), |s| player(s, "alice").is_some())
        .await?;
    let start = player(observer.world(), "alice")
        .map(|p| p.pos.to_vec2())
        .unwrap_or_default();
    browser.key(&alice, "keyDown", "d", "KeyD", 68).await?;
    let moved = observer
        .until(Duration::from_secs(10), |s| {
            player(s, "alice").is_some_and(|p| p.pos.to_vec2().x > start.x + 40.0)
        })
        .await;
    browser.key(&alice, "keyUp", "d", "KeyD", 68).await?;
    moved.context("alice did not move right on the server while D was held")?;

    // Firing with the mouse makes a projectile owned by alice.
    let owner = player(observer.world(), "alice")
        .map(|p| p.owner)
        .unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut saw_projectile = false;
    while Instant::now() < deadline && !saw_projectile {
        browser.mouse(&alice, "mouseMoved", 900.0, 400.0).await?;
        browser.mouse(&alice, "mousePressed", 900.0, 400.0).await?;
        browser.mouse(&alice, "mouseReleased", 900.0, 400.0).await?;
        saw_projectile = observer
            .until(Duration::from_millis(500), |s| {
                s.iter()
                    .any(|(_, e)| e.kind == EntityKind::Projectile && e.owner == owner)
            })
            .await
            .is_ok();
    }
    ensure!(saw_projectile, "no projectile from alice after clicking");
    let seen = browser
        .wait_for(
            &alice,
            "window.tickwire.stats().projectiles > 0 || null",
            Duration::from_secs(5),
        )
        .await;
    ensure!(
        seen.is_ok(),
        "alice's page never showed a projectile: {:?}",
        stats(&mut browser, &alice).await?
    );

    // A second browser player: both see each other (and the observer).
    let bob = browser.open(&url).await?;
    browser
        .wait_for(
            &bob,
            "window.tickwire !== undefined",
            Duration::from_secs(20),
        )
        .await?;
    browser.eval(&bob, "window.tickwire.play('bob')").await?;
    observer
        .until(Duration::from_secs(10), |s| player(s, "bob").is_some())
        .await?;
    for page in [&alice, &bob] {
        browser
            .wait_for(
                page,
                "window.tickwire.stats().visible_players >= 3 || null",
                Duration::from_secs(10),
            )
            .await
            .context("a browser player does not see the others")?;
    }

    // Figures for the record (printed; not asserted: no timing asserts).
    let a = stats(&mut browser, &alice).await?;
    println!("alice stats: {a}");
    let bench = browser
        .eval(&alice, "window.tickwire.bench(1000, 200)")
        .await?;
    println!("wasm decode+apply bench: {bench}");
    let shot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/e2e/arena.png");
    browser.screenshot(&alice, &shot).await?;
    println!("screenshot: {}", shot.display());
    server.shutdown().await;
    Ok(())
}

/// The demo through `--conditioner latency=100ms,jitter=10ms,loss=2%`: the
/// player still moves, and the figures a player would feel are printed
/// (corrections per second, frame rate). Nothing here asserts a timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_netcode_under_a_bad_link() -> Result<()> {
    tickwire_tests::init_tracing();
    let www = www_dir()?;
    let link = "latency=100ms,jitter=10ms,loss=2%".parse()?;
    let config = ServerConfig::default()
        .with_addr("127.0.0.1:0".parse()?)
        .with_static_dir(Some(www))
        .with_snapshot_interval(2)
        .with_conditioner(Some(link));
    let server = Server::new(config, |_room| ArenaGame::new(2, 11))
        .start()
        .await?;
    let identity = server
        .tls_identity()
        .ok_or_else(|| anyhow!("TLS expected"))?;
    let mut browser = Browser::launch(&identity.spki_sha256_base64()).await?;
    let page = browser
        .open(&format!(
            "https://localhost:{}/?name=lagged&autoplay",
            server.local_addr().port()
        ))
        .await?;
    browser
        .wait_for(
            &page,
            "window.tickwire && window.tickwire.stats().connected === true",
            Duration::from_secs(20),
        )
        .await?;
    let start = browser
        .wait_for(
            &page,
            "window.tickwire.stats().my_entity !== null && window.tickwire.stats().tick",
            Duration::from_secs(10),
        )
        .await?;
    // Walk a square for about four seconds, sampling the figures.
    let mut samples = Vec::new();
    for (key, code, kc) in [
        ("d", "KeyD", 68),
        ("s", "KeyS", 83),
        ("a", "KeyA", 65),
        ("w", "KeyW", 87),
    ] {
        browser.key(&page, "keyDown", key, code, kc).await?;
        let until = Instant::now() + Duration::from_millis(1000);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(250)).await;
            samples.push(stats(&mut browser, &page).await?);
        }
        browser.key(&page, "keyUp", key, code, kc).await?;
    }
    let last = samples.last().cloned().unwrap_or_default();
    ensure!(
        last["connected"] == Value::Bool(true),
        "still connected: {last}"
    );
    ensure!(
        last["tick"].as_f64() > start.as_f64(),
        "the game advanced: {last}"
    );
    let mean = |k: &str| {
        let v: Vec<f64> = samples.iter().filter_map(|s| s[k].as_f64()).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    println!(
        "bad link: corrections/s mean {:.2} (max {:.0}), fps mean {:.1}, rtt_ms {:.0}, snapshots/s {:.1}, interp delay {:.0} ms",
        mean("corrections_per_sec"),
        samples
            .iter()
            .filter_map(|s| s["corrections_per_sec"].as_f64())
            .fold(0.0, f64::max),
        mean("fps"),
        mean("rtt_ms"),
        mean("snapshots_per_sec"),
        mean("interp_delay_ms"),
    );
    server.shutdown().await;
    Ok(())
}
