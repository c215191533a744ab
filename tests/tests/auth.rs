//! The auth hook off the room task (`Server::with_auth`) over real TLS
//! WebSockets: a slow auth service never delays a tick, a hook that takes
//! longer than `auth_timeout` gets the client a reject with a code and a
//! reason, and the hook sees the request's context.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, ensure};
use tickwire_server::auth::AuthRequest;
use tickwire_server::{AuthError, ServerConfig};
use tickwire_shared::{Hello, RejectCode};
use tickwire_tests::*;
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(10);
/// How long the slow auth service takes.
const SLOW: Duration = Duration::from_secs(2);

/// 20 ticks per second, a snapshot every tick, room for a 2 s auth.
fn config() -> ServerConfig {
    let mut config = test_config()
        .with_tick_rate(20)
        .with_snapshot_interval(1)
        .with_handshake_timeout(Duration::from_secs(6));
    config.session.auth_timeout = Duration::from_secs(4);
    config
}

/// Accepts everyone; the token `slow` takes [`SLOW`], `bad` is refused.
/// Every request is recorded.
fn auth(
    seen: Arc<Mutex<Vec<AuthRequest>>>,
) -> impl Fn(AuthRequest) -> std::pin::Pin<Box<dyn Future<Output = Result<(), AuthError>> + Send>>
+ Send
+ Sync
+ 'static {
    move |req: AuthRequest| {
        seen.lock().unwrap().push(req.clone());
        Box::pin(async move {
            match req.token.as_deref() {
                Some("slow") => {
                    tokio::time::sleep(SLOW).await;
                    Ok(())
                }
                Some("bad") => Err(AuthError::failed("the account service says no")),
                _ => Ok(()),
            }
        })
    }
}

/// A hello for room `busy` with `token`.
fn hello_with(token: &str) -> Hello {
    let mut h = hello();
    h.room = Some("busy".into());
    h.auth_token = Some(token.to_owned());
    h
}

/// While one client's auth sleeps 2 s, the room it joins keeps ticking: a
/// client already in it receives every tick's snapshot (no gap) during the
/// wait, never stalls for anything like the auth's 2 s, and the slow client
/// then joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_auth_never_delays_a_tick() -> Result<()> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = TestServer::start_with_auth(config(), auth(Arc::clone(&seen))).await?;
    let good = server.client(hello_with("fine")).await?;
    let mut good = Watcher::start(good, Arc::clone(&server.history));
    good.wait_snapshots(3, DEADLINE).await?;

    let before = good.snapshots();
    let t0 = Instant::now();
    // Watch the watcher while the join waits: the longest time in which it
    // applied no snapshot.
    let (mut last, mut seen_count, mut stall) = (Instant::now(), before, Duration::ZERO);
    let slow = {
        let join = server.client(hello_with("slow"));
        tokio::pin!(join);
        loop {
            tokio::select! {
                joined = &mut join => break joined?,
                () = tokio::time::sleep(Duration::from_millis(10)) => {
                    let n = good.snapshots();
                    if n != seen_count {
                        (seen_count, last) = (n, Instant::now());
                    }
                    stall = stall.max(last.elapsed());
                    ensure!(t0.elapsed() < DEADLINE, "the slow join never completed");
                }
            }
        }
    };
    let waited = t0.elapsed();
    let during = good.snapshots() - before;
    ensure!(
        waited >= SLOW,
        "the auth hook slept {SLOW:?}; the join took {waited:?}"
    );
    // 2 s at 20 Hz is 40 ticks; the room ran on (no tick waited for the
    // auth). Half of them leaves room for a loaded machine.
    ensure!(
        during >= 20,
        "only {during} snapshots reached the watcher while the auth slept"
    );
    println!(
        "auth slept {waited:?}; the watcher applied {during} snapshots meanwhile, \
         longest stall {stall:?}"
    );
    // A 2 s auth on the room task would stall it for 2 s; 1 s is 20 tick
    // periods of margin for a loaded machine.
    ensure!(
        stall < Duration::from_secs(1),
        "the watcher got no snapshot for {stall:?} while the auth ran"
    );
    ensure!(
        slow.welcome.room == "busy",
        "the slow client joined the busy room"
    );
    ensure!(
        seen.lock().unwrap().len() == 2,
        "the hook ran once per client"
    );
    // The watcher checks that its ticks were consecutive and matched the world.
    let report = good.finish(5).await?;
    ensure!(
        report.last_tick - report.first_tick + 1 == report.snapshots as u32,
        "no gap: {} snapshots from tick {} to {}",
        report.snapshots,
        report.first_tick,
        report.last_tick
    );
    server.server.shutdown().await;
    Ok(())
}

/// An auth that takes longer than `auth_timeout` rejects the client with
/// `AuthTimeout` and a reason, and closes 4005; a refusal by the hook is
/// its code and message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_timeout_and_refusal_are_rejects() -> Result<()> {
    let mut config = config();
    config.session.auth_timeout = Duration::from_millis(300);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = TestServer::start_with_auth(config, auth(Arc::clone(&seen))).await?;

    let mut ws = server.ws_connect(None).await?;
    send_hello(&mut ws, hello_with("slow")).await?;
    let reject = expect_reject(&mut ws, DEADLINE).await?;
    ensure!(reject.code == RejectCode::AuthTimeout, "{reject:?}");
    ensure!(
        reject.message.contains("did not answer within 300ms"),
        "{reject:?}"
    );
    let (code, _) = expect_close(&mut ws, DEADLINE).await?;
    ensure!(code == 4005, "close {code}");

    let mut ws = server.ws_connect(None).await?;
    send_hello(&mut ws, hello_with("bad")).await?;
    let reject = expect_reject(&mut ws, DEADLINE).await?;
    ensure!(reject.code == RejectCode::AuthFailed, "{reject:?}");
    ensure!(
        reject.message == "the account service says no",
        "{reject:?}"
    );

    // A good token still joins.
    server.client(hello_with("fine")).await?;
    server.server.shutdown().await;
    Ok(())
}

/// The hook sees the peer's address, the transport, the `Origin` of the
/// upgrade and the hello's token and room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_sees_the_request_context() -> Result<()> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = TestServer::start_with_auth(config(), auth(Arc::clone(&seen))).await?;
    let origin = format!("https://127.0.0.1:{}", server.server.local_addr().port());
    let ws = server.ws_connect(Some(&origin)).await?;
    let mut h = hello_with("tok3n");
    h.room = Some("lobby".into());
    let c = TestClient::handshake(ws, h).await?;
    ensure!(c.welcome.room == "lobby");
    let req = seen.lock().unwrap().last().cloned().expect("the hook ran");
    ensure!(req.peer.ip().is_loopback(), "{req:?}");
    ensure!(req.transport == "wss", "{req:?}");
    ensure!(req.origin.as_deref() == Some(origin.as_str()), "{req:?}");
    ensure!(req.token.as_deref() == Some("tok3n"), "{req:?}");
    ensure!(req.room.as_deref() == Some("lobby"), "{req:?}");
    ensure!(!req.resuming, "{req:?}");
    server.server.shutdown().await;
    Ok(())
}
