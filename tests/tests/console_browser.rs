//! The fleet console in a real browser: a node with an admin token and a
//! few players, Debian's headless Chromium (trusting the node's self-signed
//! certificate by its SPKI hash) loads `/admin/`, the operator's token is
//! typed into the sign-in form, and the rooms table shows the room with its
//! players, the clients table its clients with their RTT. A screenshot is
//! left under the target directory (`e2e/console.png`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use tickwire_server::{AdminToken, ServerConfig};
use tickwire_shared::Hello;
use tickwire_tests::cdp::Browser;
use tickwire_tests::*;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const TOKEN: &str = "browser-console-token-0123456789";
const DEADLINE: Duration = Duration::from_secs(20);

fn named(room: &str) -> Hello {
    let mut h = hello();
    h.room = Some(room.to_owned());
    h
}

/// Keeps a client's session alive (acks, pongs) until the test ends.
fn drive(mut client: TestClient) -> JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let end = Instant::now() + Duration::from_secs(120);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            ensure!(!left.is_zero(), "client still running at its deadline");
            if let Received::Close(c) = client.recv(left).await? {
                anyhow::bail!("closed: {:?} {}", c.code, c.reason);
            }
        }
    })
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_page_shows_rooms_and_players() -> Result<()> {
    let mut config: ServerConfig = test_config()
        .with_tick_rate(30)
        .with_admin_token(Some(TOKEN.parse::<AdminToken>()?));
    config.session.ping_interval = Duration::from_millis(200);
    let server = TestServer::start(config).await?;
    let mut players = Vec::new();
    for _ in 0..3 {
        players.push(drive(server.client(named("arena")).await?));
    }
    players.push(drive(server.client(named("lobby")).await?));

    let spki = server
        .server
        .tls_identity()
        .context("TLS expected")?
        .spki_sha256_base64();
    let url = format!(
        "https://localhost:{}/admin/",
        server.server.local_addr().port()
    );
    let mut browser = Browser::launch(&spki).await?;
    let page = browser.open(&url).await?;
    browser
        .wait_for(
            &page,
            "document.getElementById('login-form') !== null && document.readyState === 'complete'",
            DEADLINE,
        )
        .await?;
    // The page carries no token: it asks for one.
    let html = browser
        .eval(&page, "document.documentElement.outerHTML")
        .await?;
    ensure!(!html.as_str().unwrap_or_default().contains(TOKEN));

    // A wrong token is refused, and the form comes back.
    browser
        .eval(
            &page,
            "document.getElementById('token').value = 'not-the-token-0123456789'; \
             document.getElementById('login-form').requestSubmit(); true",
        )
        .await?;
    browser
        .wait_for(
            &page,
            "!document.getElementById('login').classList.contains('hidden') && \
             document.getElementById('status').textContent.includes('refused')",
            DEADLINE,
        )
        .await?;

    // The operator types the token.
    browser
        .eval(
            &page,
            &format!(
                "document.getElementById('token').value = '{TOKEN}'; \
                 document.getElementById('login-form').requestSubmit(); true"
            ),
        )
        .await?;
    let players_of = |room: &str| {
        format!(
            "[...document.querySelectorAll('#rooms tr')].some(tr => tr.dataset.room === '{room}' \
             && tr.children[2].textContent === '{}')",
            if room == "arena" { 3 } else { 1 }
        )
    };
    browser
        .wait_for(
            &page,
            &format!("{} && {}", players_of("arena"), players_of("lobby")),
            DEADLINE,
        )
        .await
        .context("the rooms table never showed arena with 3 players and lobby with 1")?;
    // The first room is selected: its clients, each with an RTT, and the
    // node in the nodes table.
    browser
        .wait_for(
            &page,
            "document.querySelectorAll('#clients tr').length === 3 && \
             [...document.querySelectorAll('#clients tr')].every(tr => /^[0-9.]+$/.test(tr.children[1].textContent)) && \
             [...document.querySelectorAll('#nodes tr')].some(tr => tr.textContent.includes('(this node)') && tr.textContent.includes('ready'))",
            DEADLINE,
        )
        .await
        .context("the clients table never showed 3 clients with their RTT")?;
    let token_kept = browser
        .eval(&page, "sessionStorage.getItem('tickwire-admin-token')")
        .await?;
    ensure!(token_kept == TOKEN, "token not in sessionStorage");

    let shot = target_dir().join("e2e/console.png");
    browser.screenshot(&page, &shot).await?;
    println!("screenshot: {}", shot.display());
    for p in players {
        ensure!(!p.is_finished(), "a player's session ended during the test");
        p.abort();
    }
    Ok(())
}
