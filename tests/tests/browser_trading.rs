//! The trading floor (`examples/trading`) end to end: its page, JavaScript
//! on the JS API only, in headless Chromium, and a native `tickwire-client`
//! player, against a real server. The page's ticker moves; a buy clicked on
//! the page fills (a typed message out, a reliable event back) and the
//! position appears for the buyer only (visibility); bad orders come back
//! as typed rejections and change nothing; the server's ledger agrees.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use tickwire_client::{Client, ClientEvent, ConnectOptions, Trust};
use tickwire_server::{Server, ServerConfig, TlsMode};
use tickwire_tests::cdp::Browser;
use tokio::sync::{mpsc, watch};
use trading::{Entity, Ledger, Order, STARTING_CASH, Side, TradeEvent, Trading};

/// The built trading page (`cargo xtask web --game trading`):
/// `TICKWIRE_TRADING_WWW_DIR` (set by `cargo xtask test`), else
/// `www-trading` in `CARGO_TARGET_DIR` or `target/`. A missing build fails
/// with how to make it.
fn www_dir() -> Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = std::env::var_os("TICKWIRE_TRADING_WWW_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target.join("www-trading"));
    if !dir.join("index.html").is_file() || !dir.join("pkg/trading_web_bg.wasm").is_file() {
        bail!(
            "the trading page is not built at {}: run `cargo xtask web --game trading`, \
             or the whole suite with `cargo xtask test`",
            dir.display()
        );
    }
    Ok(dir)
}

/// What the native player saw, published after each snapshot.
#[derive(Clone, Debug, Default)]
struct Seen {
    /// The newest applied tick.
    tick: u32,
    /// Portfolios it could see that were not its own (must stay empty; the
    /// first three are kept).
    foreign: Vec<String>,
    /// Its own portfolio.
    mine: Option<trading::Portfolio>,
    /// Its trade events.
    events: Vec<TradeEvent>,
}

/// Drives the native player: applies snapshots, checks each for foreign
/// portfolios, sends the orders it is given; stops when `orders` closes.
async fn native_player(
    mut client: Client<Trading>,
    mut orders: mpsc::Receiver<Order>,
    seen: watch::Sender<Seen>,
) -> Result<()> {
    let me = client.welcome().client_id;
    loop {
        tokio::select! {
            order = orders.recv() => match order {
                Some(order) => client.send_message(order).await?,
                None => return Ok(()),
            },
            event = client.next_event() => match event? {
                ClientEvent::Snapshot(applied) => {
                    let world = client.world();
                    seen.send_modify(|s| {
                        s.tick = applied.tick;
                        for (_, state) in world.iter() {
                            if let Entity::Portfolio(p) = state {
                                if p.owner == me {
                                    s.mine = Some(p.clone());
                                } else if s.foreign.len() < 3 {
                                    s.foreign.push(format!("tick {}: {p:?}", applied.tick));
                                }
                            }
                        }
                    });
                }
                ClientEvent::Events(events) => seen.send_modify(|s| s.events.extend(events)),
                ClientEvent::Rtt(_) => {}
                ClientEvent::Closed { code, reason } => bail!("bob's session ended: {code} {reason}"),
            },
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trading_page_trades_privately() -> Result<()> {
    tickwire_tests::init_tracing();
    let ledger = Ledger::default();
    let config = ServerConfig::default()
        .with_addr("127.0.0.1:0".parse()?)
        .with_tls(TlsMode::SelfSigned)
        .with_static_dir(Some(www_dir()?))
        .with_tick_rate(20);
    let server = Server::new(config, {
        let ledger = ledger.clone();
        move |_room| trading::TradingGame::new(5).with_ledger(ledger.clone())
    })
    .start()
    .await?;
    let port = server.local_addr().port();
    let identity = server.tls_identity().context("no TLS identity")?;
    let (spki, leaf) = (identity.spki_sha256_base64(), identity.leaf().clone());
    let t = Duration::from_secs(20);

    // Bob: a native client in the same room.
    let options = ConnectOptions::new(Trust::Certificate(leaf)).with_auth_token("bob");
    let bob = Client::<Trading>::connect(&format!("wss://localhost:{port}/ws"), options).await?;
    let bob_id = bob.welcome().client_id;
    let (orders, orders_rx) = mpsc::channel(8);
    let (seen_tx, mut seen) = watch::channel(Seen::default());
    let bob_task = tokio::spawn(native_player(bob, orders_rx, seen_tx));

    // Ann: the page.
    let mut browser = Browser::launch(&spki).await?;
    let page = browser
        .open(&format!("https://localhost:{port}/index.html?name=ann"))
        .await?;
    browser
        .wait_for(&page, "window.trading?.status() === 'connected'", t)
        .await
        .context("the page never connected")?;
    let ann_id = browser.eval(&page, "window.trading.clientId()").await?;
    let ann_id = u32::try_from(ann_id.as_u64().context("no client id")?)?;

    // The ticker: every instrument, and prices that move.
    let first = browser
        .wait_for(
            &page,
            "window.trading.market().length === 6 && JSON.stringify(window.trading.market())",
            t,
        )
        .await?;
    browser
        .wait_for(
            &page,
            &format!("JSON.stringify(window.trading.market()) !== {first}"),
            t,
        )
        .await
        .context("the ticker never moved")?;
    let rows = browser
        .eval(&page, "document.querySelectorAll('#ticker tr').length")
        .await?;
    ensure!(rows == json!(6), "{rows} ticker rows");

    // sendMessage refuses, with a code, what cannot go.
    let offline = browser.eval(&page, "window.trading.offlineError()").await?;
    ensure!(offline == json!("NotConnected"), "offline: {offline}");
    let huge = browser
        .eval(&page, "window.trading.order('X'.repeat(5000), 'Buy', 1)")
        .await?;
    ensure!(huge == json!("TooLarge"), "oversized: {huge}");
    let invalid = browser
        .eval(&page, "window.trading.order('TICK', 'Hold', 1)")
        .await?;
    ensure!(invalid == json!("Invalid"), "not an Order: {invalid}");

    // A buy clicked on the page fills, for Ann only.
    browser
        .eval(
            &page,
            "document.getElementById('qty').value = '25';\
             document.querySelector('button[data-symbol=\"TICK\"][data-side=\"Buy\"]').click(); true",
        )
        .await?;
    let fill = browser
        .wait_for(
            &page,
            "window.trading.events().find((e) => e.Filled)?.Filled",
            t,
        )
        .await
        .context("no fill reached the page")?;
    ensure!(
        fill["symbol"] == json!("TICK") && fill["qty"] == json!(25),
        "{fill}"
    );
    let price = fill["price"].as_i64().context("no price")?;
    let mine = browser
        .wait_for(
            &page,
            "window.trading.portfolio()?.holdings.some((h) => h.symbol === 'TICK' && h.qty === 25) \
             && window.trading.portfolio()",
            t,
        )
        .await
        .context("the position never appeared on the page")?;
    ensure!(mine["cash"] == json!(STARTING_CASH - 25 * price), "{mine}");
    browser
        .wait_for(
            &page,
            "document.querySelector('#holdings tr[data-symbol=\"TICK\"]')",
            t,
        )
        .await
        .context("the holdings table does not show the position")?;
    let server_side = ledger.get(ann_id).context("Ann has no account")?;
    ensure!(
        serde_json::to_value(&server_side)? == mine,
        "server {server_side:?} vs page {mine}"
    );

    // Bob buys too; each sees its own portfolio only.
    orders
        .send(Order {
            symbol: "WIRE".into(),
            side: Side::Buy,
            qty: 7,
        })
        .await?;
    let fill_tick = u32::try_from(fill["tick"].as_u64().context("no tick")?)?;
    let bob_seen = tokio::time::timeout(
        t,
        seen.wait_for(|s| {
            s.tick > fill_tick + 10
                && s.mine
                    .as_ref()
                    .is_some_and(|p| p.holdings.iter().any(|h| h.symbol == "WIRE"))
        }),
    )
    .await
    .context("Bob's buy never showed in his portfolio")??
    .clone();
    ensure!(
        bob_seen.foreign.is_empty(),
        "Bob saw: {:?}",
        bob_seen.foreign
    );
    ensure!(matches!(bob_seen.events.as_slice(), [TradeEvent::Filled(f)] if f.symbol == "WIRE"));
    ensure!(ledger.get(bob_id).is_some_and(|p| p.holdings.len() == 1));
    let page_view = browser
        .eval(&page, "[window.trading.portfolios(), window.trading.portfolio().holdings.map((h) => h.symbol)]")
        .await?;
    ensure!(
        page_view == json!([1, ["TICK"]]),
        "the page sees {page_view}"
    );

    // Bad orders from the page: typed rejections, nothing changes.
    browser
        .eval(
            &page,
            "window.trading.order('NOPE', 'Buy', 5);\
             document.getElementById('qty').value = '0';\
             document.querySelector('button[data-symbol=\"TICK\"][data-side=\"Buy\"]').click(); true",
        )
        .await?;
    let rejected = browser
        .wait_for(
            &page,
            "(() => { const r = window.trading.events().filter((e) => e.Rejected).map((e) => e.Rejected.reason);\
             return r.length === 2 && r; })()",
            t,
        )
        .await
        .context("the bad orders were not rejected")?;
    ensure!(
        rejected == json!(["UnknownInstrument", "ZeroQuantity"]),
        "{rejected}"
    );
    let events = browser
        .eval(&page, "window.trading.events().length")
        .await?;
    ensure!(events == json!(3), "{events} events on the page");
    ensure!(
        ledger.get(ann_id).as_ref() == Some(&server_side),
        "Ann's account changed"
    );
    let after = browser.eval(&page, "window.trading.portfolio()").await?;
    ensure!(after == mine, "the page's portfolio changed: {after}");

    if let Some(dir) = std::env::var_os("TICKWIRE_SCREENSHOT_DIR") {
        let path = PathBuf::from(dir).join("trading.png");
        browser.screenshot(&page, &path).await?;
        println!("screenshot: {}", path.display());
    }
    let stats: Value = browser
        .eval(&page, "document.getElementById('net').textContent")
        .await?;
    println!("page status line: {stats}");

    drop(orders);
    bob_task.await??;
    ensure!(
        seen.borrow().foreign.is_empty(),
        "Bob saw: {:?}",
        seen.borrow().foreign
    );
    server.shutdown().await;
    Ok(())
}

/// The typings of the trading page: the game's types (tsify) and the
/// class with `sendMessage`, typed by the game's `Order`; the arena, which
/// names no message type, has no `sendMessage`.
#[test]
fn the_typings_type_send_message_by_the_games_order() -> Result<()> {
    let path = www_dir()?.join("pkg/trading_web.d.ts");
    let dts = std::fs::read_to_string(&path)
        .with_context(|| format!("no typings at {}", path.display()))?;
    for needle in [
        "export interface Order {",
        "export type Side = \"Buy\" | \"Sell\";",
        "export type Entity = { Instrument: Instrument } | { Portfolio: Portfolio };",
        "export type TradeEvent = { Filled: Fill } | { Rejected: { order: Order; reason: Rejection } };",
        "export type TickwireMessage = Order;",
        "export type TickwireInput = never;",
        "sendMessage(message: TickwireMessage): void;",
    ] {
        ensure!(dts.contains(needle), "{} lacks `{needle}`", path.display());
    }
    let arena = tickwire_tests::arena_web::www_dir()?.join("pkg/arena_web.d.ts");
    let arena = std::fs::read_to_string(&arena)
        .with_context(|| format!("no typings at {}", arena.display()))?;
    ensure!(
        arena.contains("export class TickwireClient {") && !arena.contains("sendMessage"),
        "the arena's class must not have sendMessage (it names no message type)"
    );
    Ok(())
}
