//! The browser SDK's transport choice in a real Chromium (QUIC left on,
//! unlike the other browser tests): the arena demo plays over WebTransport,
//! which the server's `tickwire_sessions_total{transport}` confirms; with
//! the server's WebTransport off, or its UDP port silent, it plays over
//! WSS; a session interrupted on WebTransport resumes over WSS (or, when
//! WebTransport is not marked failed, over WebTransport again) with the same
//! player; and (figures printed) the snapshot interval under loss.
//!
//! The Prometheus recorder is global to the process, so the tests here run
//! one at a time (a lock) and read the counter's change across each.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use tickwire_server::{QuicConfig, ServerConfig};
use tickwire_shared::conditioner::ConditionerConfig;
use tickwire_tests::arena_web::{ArenaPage, Observer, player};
use tickwire_tests::cdp::{Browser, LaunchOptions, Page};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

const T: Duration = Duration::from_secs(20);

/// One test at a time: the metrics are the process's.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// The process's Prometheus endpoint (installed once).
fn metrics_addr() -> Result<SocketAddr> {
    static ADDR: OnceLock<Result<SocketAddr, String>> = OnceLock::new();
    ADDR.get_or_init(|| {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?;
        // Outside any test's runtime (each test has its own, and the
        // exporter must outlive them): the exporter then runs on a
        // background thread of its own.
        std::thread::spawn(move || tickwire_server::metrics::install(addr))
            .join()
            .map_err(|_| "the metrics installer panicked".to_owned())?
            .map_err(|e| e.to_string())?;
        Ok(addr)
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

/// `tickwire_sessions_total` by transport (`wss`, `quic`, `webtransport`).
async fn sessions(transport: &str) -> Result<u64> {
    let addr = metrics_addr()?;
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = String::new();
    tokio::time::timeout(T, tcp.read_to_string(&mut body)).await??;
    let prefix = format!("tickwire_sessions_total{{transport=\"{transport}\"}} ");
    Ok(body
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(Ok(0), |n| n.trim().parse::<u64>())?)
}

/// Sessions welcomed per transport since `before`.
struct Count {
    wss: u64,
    webtransport: u64,
}

impl Count {
    async fn now() -> Result<Self> {
        Ok(Self {
            wss: sessions("wss").await?,
            webtransport: sessions("webtransport").await?,
        })
    }

    async fn since(&self) -> Result<Self> {
        let now = Self::now().await?;
        Ok(Self {
            wss: now.wss - self.wss,
            webtransport: now.webtransport - self.webtransport,
        })
    }
}

/// An arena server with QUIC on loopback; `webtransport` turns its
/// WebTransport endpoint on or off.
async fn server(webtransport: bool, conditioner: Option<&str>) -> Result<ArenaPage> {
    metrics_addr()?;
    let conditioner = conditioner
        .map(str::parse::<ConditionerConfig>)
        .transpose()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = ServerConfig::default()
        .with_quic_addr(Some("127.0.0.1:0".parse()?))
        .with_quic(
            QuicConfig::default().with_webtransport_path(webtransport.then(|| "/wt".to_owned())),
        )
        .with_conditioner(conditioner);
    ArenaPage::start(config).await
}

/// Opens the arena demo at `page_url`, runs `before_play` there, and plays
/// as `name`; the page's stats once connected.
async fn play_demo(
    browser: &mut Browser,
    page_url: &str,
    name: &str,
    before_play: &str,
) -> Result<(Page, Value)> {
    let page = browser.open(page_url).await?;
    browser
        .wait_for(&page, "window.tickwire !== undefined", T)
        .await?;
    if !before_play.is_empty() {
        browser.eval(&page, before_play).await?;
    }
    browser
        .eval(
            &page,
            &format!("window.playStarted = performance.now(); window.tickwire.play('{name}')"),
        )
        .await?;
    let stats = browser
        .wait_for(
            &page,
            "window.tickwire.stats().connected === true && window.tickwire.stats()",
            T,
        )
        .await
        .context("the demo never connected")?;
    Ok((page, stats))
}

/// Chromium with QUIC on, trusting `page`'s certificate.
async fn chromium(page: &ArenaPage) -> Result<Browser> {
    Browser::launch_with(&page.spki, LaunchOptions { quic: true }).await
}

/// `page`'s SDK page (`sdk.html`) in a Chromium with QUIC on, started as
/// `name` with the connect `options` (JS), and connected over `transport`.
async fn sdk_connected(
    page: &ArenaPage,
    name: &str,
    options: &str,
    transport: &str,
) -> Result<(Browser, Page)> {
    let mut browser = chromium(page).await?;
    let tab = browser
        .open(&format!("https://localhost:{}/sdk.html", page.addr.port()))
        .await?;
    browser
        .wait_for(&tab, "window.sdk !== undefined", T)
        .await?;
    browser
        .eval(
            &tab,
            &format!("window.sdk.start('{name}', undefined, {options})"),
        )
        .await?;
    browser
        .wait_for(
            &tab,
            &format!(
                "window.sdk.status() === 'connected' && window.sdk.transport() === '{transport}'"
            ),
            T,
        )
        .await
        .with_context(|| format!("the JS client did not connect over {transport}"))?;
    Ok((browser, tab))
}

fn screenshot_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("TICKWIRE_SCREENSHOT_DIR").map(|d| PathBuf::from(d).join(name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_plays_over_webtransport() -> Result<()> {
    let _serial = SERIAL.lock().await;
    tickwire_tests::init_tracing();
    let page = server(true, None).await?;
    // Counted from before the observer connects: the server counts a session
    // once its welcome is written, which can be after the observer's connect
    // has returned, so the observer's WSS session is one of those counted.
    let before = Count::now().await?;
    let mut observer = Observer::connect(page.addr, page.tls.clone()).await?;

    let mut browser = chromium(&page).await?;
    let url = format!("https://localhost:{}/", page.addr.port());
    let (tab, stats) = play_demo(&mut browser, &url, "wtdemo", "").await?;
    ensure!(stats["transport"] == json!("webtransport"), "{stats}");
    observer
        .until(Duration::from_secs(10), |w| player(w, "wtdemo").is_some())
        .await?;
    // Snapshots flow over it, and the overlay says which transport.
    let stats = browser
        .wait_for(
            &tab,
            "window.tickwire.stats().snapshots_per_sec > 5 && window.tickwire.stats()",
            T,
        )
        .await
        .context("no snapshots over WebTransport")?;
    let overlay = browser
        .wait_for(
            &tab,
            "document.getElementById('net').textContent.includes('via      webtransport') \
             && document.getElementById('net').textContent",
            T,
        )
        .await
        .context("the net overlay does not name the transport")?;
    let count = before.since().await?;
    ensure!(
        count.webtransport == 1 && count.wss == 1,
        "sessions since the start (the observer's over wss): webtransport {}, wss {}",
        count.webtransport,
        count.wss
    );
    println!(
        "over WebTransport: {stats}\noverlay:\n{}",
        overlay.as_str().unwrap_or_default()
    );
    if let Some(path) = screenshot_path("arena-webtransport.png") {
        browser.screenshot(&tab, &path).await?;
        println!("screenshot: {}", path.display());
    }
    // Leaving over WebTransport: the Leave goes out on the stream before
    // the session closes, so the server drops the player at once rather
    // than holding it for the resume grace (10 s).
    browser.eval(&tab, "window.tickwire.stop()").await?;
    observer
        .until(Duration::from_secs(8), |w| player(w, "wtdemo").is_none())
        .await
        .context("leaving over WebTransport did not remove the player")?;
    page.server.shutdown().await;
    Ok(())
}

/// The server's WebTransport off (discovery answers 404): the demo plays
/// over WSS at once. WebTransport announced but its UDP port silent (a
/// network that drops UDP; the page's discovery answer is replaced by one
/// naming a loopback port that reads and drops everything): the demo plays
/// over WSS once the 2.5 s deadline passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_webtransport_the_demo_plays_over_wss() -> Result<()> {
    let _serial = SERIAL.lock().await;
    tickwire_tests::init_tracing();
    let black_hole = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let silent = black_hole.local_addr()?;
    let drain = tokio::spawn(async move {
        let mut buf = vec![0; 2048];
        while black_hole.recv_from(&mut buf).await.is_ok() {}
    });
    // The SDK says why it fell back on the console: keep its words.
    let udp_dropped = format!(
        "window.warnings = []; const realWarn = console.warn; \
         console.warn = (...a) => {{ window.warnings.push(a.join(' ')); realWarn(...a); }}; \
         const realFetch = window.fetch; \
         window.fetch = (u, o) => String(u).endsWith('/webtransport') \
           ? Promise.resolve(new Response(JSON.stringify({{ url: 'https://{silent}/wt', serverCertificateHashes: [] }}), \
               {{ headers: {{ 'content-type': 'application/json' }} }})) \
           : realFetch(u, o);"
    );
    for (server_wt, before_play, name) in [
        (false, "", "wssonly"),
        (true, udp_dropped.as_str(), "udpdrop"),
    ] {
        let page = server(server_wt, None).await?;
        let before = Count::now().await?;
        let mut browser = Browser::launch_with(&page.spki, LaunchOptions { quic: true }).await?;
        let url = format!("https://localhost:{}/", page.addr.port());
        let (tab, stats) = play_demo(&mut browser, &url, name, before_play).await?;
        ensure!(stats["transport"] == json!("websocket"), "{name}: {stats}");
        // How long the page took from play() until this test saw it
        // connected (polled every 100 ms; printed, not asserted).
        let took = browser
            .eval(&tab, "Math.round(performance.now() - window.playStarted)")
            .await?;
        let count = before.since().await?;
        ensure!(
            count.wss == 1 && count.webtransport == 0,
            "{name}: webtransport {}, wss {}",
            count.webtransport,
            count.wss
        );
        if name == "udpdrop" {
            // It gave up at its own deadline, not when Chromium did.
            let warnings = browser.eval(&tab, "window.warnings").await?;
            ensure!(
                warnings
                    .to_string()
                    .contains("no welcome within the deadline)"),
                "{name}: the fallback was not the deadline's: {warnings}"
            );
        }
        println!("{name}: over WSS within {took} ms of play() ({stats})");
        page.server.shutdown().await;
    }
    drain.abort();
    Ok(())
}

/// A session that began over WebTransport loses its transport (the page's
/// `interruptTransport(true)`: like a network loss, with WebTransport then
/// remembered as failed) and resumes over WSS as the same player.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webtransport_session_resumes_over_wss_as_the_same_player() -> Result<()> {
    resumes_after_a_loss(true).await
}

/// A session that began over WebTransport loses its transport
/// (`interruptTransport(false)`: a plain network loss) and resumes over
/// WebTransport again as the same player.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webtransport_session_resumes_over_webtransport_as_the_same_player() -> Result<()> {
    resumes_after_a_loss(false).await
}

/// Plays over WebTransport, drops the transport (WebTransport remembered as
/// failed when `mark_failed`), and checks that the session resumes, over
/// WSS when `mark_failed` and over WebTransport otherwise, with the same
/// client id and entity.
async fn resumes_after_a_loss(mark_failed: bool) -> Result<()> {
    let _serial = SERIAL.lock().await;
    tickwire_tests::init_tracing();
    // Expected sessions: the page's, and the observer's over WSS.
    let (then, expect_wt, expect_wss) = if mark_failed {
        ("websocket", 1, 2)
    } else {
        ("webtransport", 2, 1)
    };
    let page = server(true, None).await?;
    // From before the observer connects, whose WSS session is counted too
    // (see `the_demo_plays_over_webtransport`).
    let before = Count::now().await?;
    let mut observer = Observer::connect(page.addr, page.tls.clone()).await?;
    let (mut browser, tab) = sdk_connected(&page, "hopper", "{}", "webtransport").await?;
    let me = browser
        .wait_for(&tab, "window.sdk.youAre()", T)
        .await
        .context("no YouAre")?;
    let client_id = browser.eval(&tab, "window.sdk.clientId()").await?;
    observer
        .until(Duration::from_secs(10), |w| player(w, "hopper").is_some())
        .await?;

    browser
        .eval(&tab, &format!("window.sdk.interrupt({mark_failed})"))
        .await?;
    browser
        .wait_for(
            &tab,
            &format!(
                "window.sdk.statuses().includes('waiting') && window.sdk.status() === 'connected' \
                 && window.sdk.transport() === '{then}'"
            ),
            T,
        )
        .await
        .with_context(|| format!("the session did not come back over {then}"))?;
    // The same player: the same client id and entity, seen by the page
    // through fresh snapshots and by the server's other player.
    let mine = "window.sdk.stats().snapshotsPerSec > 0 && window.sdk.entities() \
           .filter((e) => e.state.kind === 'Player' && e.state.name === 'hopper')";
    let again = browser
        .wait_for(&tab, &format!("({mine}).length === 1 && ({mine})[0].id"), T)
        .await
        .context("after resuming, the page's world has no single hopper")?;
    ensure!(
        again == me,
        "after resuming, the page's player is entity {again}, not {me}"
    );
    let client_id_after = browser.eval(&tab, "window.sdk.clientId()").await?;
    ensure!(
        client_id_after == client_id,
        "client id {client_id} became {client_id_after}"
    );
    let owners: Vec<_> = observer
        .world()
        .iter()
        .filter(|(_, s)| &*s.name == "hopper")
        .map(|(id, _)| id.0)
        .collect();
    ensure!(
        owners.len() == 1 && Some(u64::from(owners[0])) == me.as_u64(),
        "the server's world has hopper as {owners:?}, the page had {me}"
    );
    let count = before.since().await?;
    ensure!(
        count.webtransport == expect_wt && count.wss == expect_wss,
        "webtransport {}, wss {}",
        count.webtransport,
        count.wss
    );
    let statuses = browser.eval(&tab, "window.sdk.statuses()").await?;
    println!("resumed over {then} as entity {me} (client {client_id}); statuses {statuses}");
    browser.eval(&tab, "window.sdk.close()").await?;
    page.server.shutdown().await;
    Ok(())
}

/// The page's snapshot interval over `transport` under the server's
/// `conditioner`: `{count, p50, p99, max}` in ms, over `window_ms`.
async fn intervals(transport: &str, conditioner: &str, window_ms: u64) -> Result<Value> {
    let page = server(true, Some(conditioner)).await?;
    let options = format!("{{ transport: '{transport}' }}");
    let (mut browser, tab) = sdk_connected(&page, "loss", &options, transport)
        .await
        .with_context(|| format!("with {conditioner}"))?;
    // Past the first snapshots (a full one, the baseline catching up).
    browser
        .wait_for(&tab, "window.sdk.stats().snapshotsPerSec > 5", T)
        .await?;
    let figures = browser
        .eval(&tab, &format!("window.sdk.snapshotIntervals({window_ms})"))
        .await?;
    page.server.shutdown().await;
    Ok(figures)
}

/// Under the server's link conditioner (50 ms latency, 5 % loss), the
/// page's snapshot interval p99 over WebTransport stays within 1.5x of the
/// same link without loss (datagrams: a lost snapshot is one snapshot
/// late, not a stalled stream). WSS's figures are printed beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_loss_webtransport_keeps_the_snapshot_interval() -> Result<()> {
    let _serial = SERIAL.lock().await;
    tickwire_tests::init_tracing();
    const WINDOW_MS: u64 = 10_000;
    let mut rows = Vec::new();
    for transport in ["webtransport", "websocket"] {
        let lossless = intervals(transport, "latency=50ms", WINDOW_MS).await?;
        let lossy = intervals(transport, "latency=50ms,loss=5%", WINDOW_MS).await?;
        let p99 = |v: &Value| v["p99"].as_f64().unwrap_or(f64::NAN);
        let ratio = p99(&lossy) / p99(&lossless);
        println!(
            "snapshot interval p99 over {transport}: lossless {:.1} ms, 5 % loss {:.1} ms, \
             ratio {ratio:.2} (lossless {lossless}, lossy {lossy})",
            p99(&lossless),
            p99(&lossy)
        );
        rows.push((transport, lossless, lossy, ratio));
    }
    let (_, lossless, lossy, ratio) = &rows[0];
    ensure!(
        lossless["count"].as_u64() > Some(50) && lossy["count"].as_u64() > Some(50),
        "too few snapshots measured: {lossless} {lossy}"
    );
    ensure!(
        *ratio <= 1.5,
        "over WebTransport the p99 grew {ratio:.2}x under 5 % loss ({lossless} -> {lossy})"
    );
    Ok(())
}
