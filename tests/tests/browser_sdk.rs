//! The browser SDK's JavaScript API in a real browser: `www/sdk.html` uses
//! only the class `TickwireClient` that `tickwire_web::export_js_api!`
//! generates for the arena (no game code), against a real arena server; a
//! native observer checks what the server did. And the generated typings
//! (`pkg/arena_web.d.ts`) declare the game's types.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use arena::buttons;
use serde_json::{Value, json};
use tickwire_server::ServerConfig;
use tickwire_tests::arena_web::{ArenaPage, Observer, player, www_dir};
use tickwire_tests::cdp::Browser;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_js_api_plays_with_plain_objects() -> Result<()> {
    tickwire_tests::init_tracing();
    let ArenaPage {
        server,
        addr,
        spki,
        tls,
    } = ArenaPage::start(ServerConfig::default()).await?;
    let mut observer = Observer::connect(addr, tls).await?;

    let mut browser = Browser::launch(&spki).await?;
    let page = browser
        .open(&format!("https://localhost:{}/sdk.html", addr.port()))
        .await?;
    let t = Duration::from_secs(20);
    browser
        .wait_for(&page, "window.sdk !== undefined", t)
        .await?;
    browser.eval(&page, "window.sdk.start('tsdev')").await?;
    browser
        .wait_for(&page, "window.sdk.status() === 'connected'", t)
        .await
        .context("the JS client never connected")?;
    observer
        .until(Duration::from_secs(10), |w| player(w, "tsdev").is_some())
        .await?;

    // Entities reach JS as plain objects of the game's shape, through the
    // change callbacks; the game's own events too (YouAre names our player).
    let me = browser
        .wait_for(&page, "window.sdk.player('tsdev')", t)
        .await
        .context("the page never saw its player through onSnapshot")?;
    ensure!(me["plain"] == json!(true), "not a plain object: {me}");
    let state = &me["state"];
    ensure!(
        state["kind"] == json!("Player") && state["health"].as_u64().is_some_and(|h| h > 0),
        "{state}"
    );
    let you_are = browser
        .wait_for(&page, "window.sdk.youAre()", t)
        .await
        .context("no YouAre event reached onEvent")?;
    ensure!(
        you_are == me["id"],
        "YouAre {you_are} but the player is {}",
        me["id"]
    );
    let client_id = browser.eval(&page, "window.sdk.clientId()").await?;
    ensure!(
        state["owner"] == client_id,
        "owner {} vs {client_id}",
        state["owner"]
    );

    // Inputs from JS move the player on the server, and the page sees it.
    let start_x = player(observer.world(), "tsdev")
        .map(|p| p.pos.to_vec2().x)
        .unwrap_or_default();
    let seq = browser
        .eval(&page, &format!("window.sdk.hold({})", buttons::RIGHT))
        .await?;
    ensure!(
        seq.as_u64().is_some(),
        "sendInput while connected gave {seq}"
    );
    let moved = observer
        .until(Duration::from_secs(10), |w| {
            player(w, "tsdev").is_some_and(|p| p.pos.to_vec2().x > start_x + 40.0)
        })
        .await;
    browser.eval(&page, "window.sdk.release()").await?;
    moved.context("the player did not move right on the server while JS sent RIGHT")?;
    let start_wire_x = (start_x * 16.0).round();
    browser
        .wait_for(
            &page,
            &format!(
                "window.sdk.player('tsdev').state.pos.x > {} + 40 * 16",
                start_wire_x
            ),
            t,
        )
        .await
        .context("the page did not see its player move")?;

    // The world rebuilt from added/changed/removed equals entities().
    browser
        .wait_for(&page, "window.sdk.callbacksMatchWorld()", t)
        .await
        .context("the change callbacks disagree with entities()")?;
    let counts = browser.eval(&page, "window.sdk.counts()").await?;
    ensure!(counts["changed"].as_u64() > Some(0), "{counts}");
    ensure!(
        counts["badChanges"] == json!(0),
        "onSnapshot's id lists were not arrays: {counts}"
    );
    // A state is built once per version: reading it again gives the same
    // object (and the objects above moved with the player, so a change
    // does replace it).
    let shared = browser.eval(&page, "window.sdk.statesAreShared()").await?;
    ensure!(
        shared == json!(true),
        "entity(id) rebuilt an unchanged state"
    );

    // Inputs are checked against the game's type.
    let err = browser.eval(&page, "window.sdk.badInput()").await?;
    ensure!(
        err.as_str().is_some_and(|e| e.contains("input")),
        "a malformed input was accepted: {err}"
    );

    // Figures, then leaving: the server drops the player.
    let stats: Value = browser.eval(&page, "window.sdk.stats()").await?;
    ensure!(stats["connected"] == json!(true), "{stats}");
    ensure!(stats["snapshotsPerSec"].as_f64() > Some(0.0), "{stats}");
    ensure!(stats["entityCount"].as_u64() >= Some(2), "{stats}");
    println!("JS API stats: {stats}; counts: {counts}");
    browser.eval(&page, "window.sdk.close()").await?;
    observer
        .until(Duration::from_secs(10), |w| player(w, "tsdev").is_none())
        .await
        .context("closing did not leave the game")?;
    let statuses = browser
        .wait_for(
            &page,
            "window.sdk.statuses().includes('stopped') && window.sdk.statuses()",
            t,
        )
        .await?;
    println!("statuses: {statuses}");

    // Figures for the record (printed; not asserted: no timing asserts).
    // First the notification alone (ids), then with every changed state
    // read, one at a time and in one batch, as a page that mirrors them
    // would.
    for read in ["none", "each", "batch"] {
        // The notification alone is about 1 µs: more runs per batch, so
        // that a batch lasts well over the page's coarse clock (100 µs).
        let runs = if read == "none" { 10 } else { 1 };
        for (entities, iterations) in [(1000, 100 * runs), (100, 500 * runs), (20, 2000 * runs)] {
            let cost = browser
                .eval(
                    &page,
                    &format!("window.sdk.bench({entities}, {iterations}, undefined, '{read}')"),
                )
                .await?;
            println!("JS API cost per snapshot (states read: {read}): {cost}");
        }
    }
    server.shutdown().await;
    Ok(())
}

/// The typings wasm-bindgen generated from the arena's Rust types (tsify)
/// and the macro's class: a build that loses them fails here.
#[test]
fn the_typings_declare_the_games_types() -> Result<()> {
    let dts_path = www_dir()?.join("pkg/arena_web.d.ts");
    let dts = std::fs::read_to_string(&dts_path)
        .with_context(|| format!("no typings at {}", dts_path.display()))?;
    for needle in [
        "export interface EntityState {",
        "pos: QVec2;",
        "kind: EntityKind;",
        "export type EntityKind = \"Player\" | \"Projectile\" | \"Npc\";",
        "export interface PlayerInput {",
        "export type ArenaEvent = { YouAre: { entity: number } }",
        "export type TickwireState = EntityState;",
        "export type TickwireInput = PlayerInput;",
        "export type TickwireEvent = ArenaEvent;",
        "export class TickwireClient {",
        "sendInput(input: TickwireInput): number | undefined;",
        "entities(): TickwireEntity<TickwireState>[];",
        "onSnapshot(f: ((changes: TickwireChanges) => void) | undefined): void;",
        "added: number[];",
        "entity(id: number): TickwireState | undefined;",
        "export interface TickwireStats {",
        "transport: \"websocket\" | \"webtransport\" | undefined;",
        "transport?: \"auto\" | \"websocket\" | \"webtransport\";",
        "readonly transport: \"webtransport\" | \"websocket\" | undefined;",
        "interruptTransport(markWebTransportFailed?: boolean | null): void;",
    ] {
        ensure!(
            dts.contains(needle),
            "{} lacks `{needle}`",
            dts_path.display()
        );
    }
    Ok(())
}
