//! The node lifecycle over real TLS on loopback: `/readyz` follows the
//! state, a draining node refuses new players with `ShuttingDown` but lets
//! its rooms run (and its players resume), closes the sessions left after
//! the grace period with 1001 and a reason, and stops early once its rooms
//! are empty. The hooks see ready, allocated, draining and shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures_util::SinkExt;
use tickwire_server::{LifecycleHooks, NodeState, ServerConfig};
use tickwire_shared::{ClientMessage, Hello, RejectCode};
use tickwire_tests::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const DEADLINE: Duration = Duration::from_secs(5);

/// The close reason of sessions still open when a drain's grace period ends.
const DRAINED: &str = "server drained: grace period over; connect again to play elsewhere";

fn config() -> ServerConfig {
    test_config().with_tick_rate(20).with_snapshot_interval(1)
}

fn named(room: &str) -> Hello {
    let mut h = hello();
    h.room = Some(room.to_owned());
    h
}

/// Waits (bounded) until the node reaches `state`.
async fn reach(server: &TestServer, state: NodeState) -> Result<()> {
    tokio::time::timeout(DEADLINE, server.server.status().reached(state))
        .await
        .with_context(|| format!("node never reached {state}"))
}

async fn readyz(server: &TestServer) -> Result<(u16, String)> {
    let res = server.https_get("/readyz").await?;
    Ok((res.status, String::from_utf8(res.body)?))
}

/// Sends `hello` on a new connection and returns the reject's code and
/// message, after checking that the close is 4005.
async fn refused(server: &TestServer, hello: Hello) -> Result<(RejectCode, String)> {
    let mut ws = server.ws_connect(None).await?;
    let bytes = ClientMessage::<TestInput>::Hello(hello).to_bytes()?;
    ws.send(Message::Binary(bytes.into())).await?;
    let reject = expect_reject(&mut ws, DEADLINE).await?;
    let (code, _) = expect_close(&mut ws, DEADLINE).await?;
    ensure!(
        code == 4005,
        "a reject is followed by close 4005, not {code}"
    );
    Ok((reject.code, reject.message))
}

/// Hooks that record their calls in order (health pings counted apart).
#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<&'static str>>>,
    pings: Arc<Mutex<u32>>,
}

impl Recorder {
    fn calls(&self) -> Vec<&'static str> {
        self.calls.lock().expect("lock").clone()
    }

    /// Polls `done` until it holds, for at most [`DEADLINE`] (the hooks
    /// run on the server's supervisor task).
    async fn until(&self, what: &str, done: impl Fn() -> bool) -> Result<()> {
        let deadline = Instant::now() + DEADLINE;
        while !done() {
            ensure!(
                Instant::now() < deadline,
                "{what}: not within {DEADLINE:?}; calls {:?}",
                self.calls()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }
}

impl LifecycleHooks for Recorder {
    fn ready(&self) {
        self.calls.lock().expect("lock").push("ready");
    }
    fn allocated(&self) {
        self.calls.lock().expect("lock").push("allocated");
    }
    fn health(&self) {
        *self.pings.lock().expect("lock") += 1;
    }
    fn draining(&self) {
        self.calls.lock().expect("lock").push("draining");
    }
    fn shutdown(&self) {
        self.calls.lock().expect("lock").push("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_node_refuses_newcomers_lets_rooms_run_then_closes_with_a_reason() -> Result<()>
{
    const GRACE: Duration = Duration::from_millis(2500);
    let c = config()
        .with_drain_grace(GRACE)
        .with_resume_grace(Duration::from_secs(10));
    let server = TestServer::start(c).await?;
    reach(&server, NodeState::Ready).await?;
    ensure!(readyz(&server).await? == (200, "ready".into()));

    let mut a = server.client(named("arena")).await?;
    let mut b = server.client(named("arena")).await?;
    let token = b.welcome.resume_token;
    a.until(DEADLINE, |c| c.my_entity().is_some()).await?;
    let entity = a.my_entity().context("a's entity")?;

    let t0 = Instant::now();
    server.server.drain();
    reach(&server, NodeState::Draining).await?;
    ensure!(readyz(&server).await? == (503, "draining".into()));
    let health = server.https_get("/healthz").await?;
    ensure!(
        health.status == 200 && health.body == b"ok",
        "liveness holds"
    );

    // New players are refused, whether they name the running room, another
    // one, or none; the room they would have opened does not open.
    for h in [named("arena"), named("elsewhere"), hello()] {
        let (code, message) = refused(&server, h).await?;
        ensure!(
            code == RejectCode::ShuttingDown && message.contains("draining"),
            "refused with {code:?} {message:?}"
        );
    }
    ensure!(server.server.room_count() == 1, "no new room opened");

    // The running room goes on: a's inputs still move its entity.
    a.input(TestInput::Move { dx: 3, dy: 4 }).await?;
    a.until(DEADLINE, |c| {
        c.entity(entity).is_some_and(|e| (e.x, e.y) == (3, 4))
    })
    .await?;

    // A player whose connection drops may come back while the node drains.
    b.ws.get_mut().shutdown().await?;
    drop(b);
    let mut h = named("arena");
    h.resume_token = Some(token);
    let mut b = server.client(h).await?;
    ensure!(b.welcome.resumed, "a resume is welcome while draining");
    b.until(DEADLINE, |c| c.latest.is_some()).await?;
    // A token the node does not know is a newcomer.
    let mut h = named("arena");
    h.resume_token = Some(tickwire_shared::ResumeToken::from_random([7; 16]));
    let (code, _) = refused(&server, h).await?;
    ensure!(code == RejectCode::ShuttingDown, "unknown token: {code:?}");

    // The grace period runs out with both players still in: they are told.
    for client in [&mut a, &mut b] {
        let (code, reason) = expect_close(&mut client.ws, GRACE + DEADLINE).await?;
        ensure!(
            code == 1001 && reason == DRAINED,
            "closed with {code} {reason:?}"
        );
    }
    let took = t0.elapsed();
    ensure!(
        took >= GRACE,
        "closed after {took:?}, before the grace period"
    );
    reach(&server, NodeState::Stopped).await?;
    let addr = server.server.local_addr();
    match tokio::time::timeout(DEADLINE, TcpStream::connect(addr)).await {
        Ok(Err(_)) => Ok(()),
        Ok(Ok(_)) => bail!("a new connection was accepted after the node stopped"),
        Err(_) => bail!("connecting after the stop hung"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_stops_the_node_once_its_rooms_are_empty_and_the_hooks_follow() -> Result<()> {
    // A grace far longer than the test: the node must stop because its last
    // room closed, not because time ran out.
    let c = config()
        .with_drain_grace(Duration::from_secs(600))
        .with_health_interval(Duration::from_millis(50));
    c.validate()?;
    let hooks = Recorder::default();
    let server = TestServer::start_with_hooks(c, hooks.clone()).await?;
    reach(&server, NodeState::Ready).await?;
    hooks
        .until("two health pings", || {
            *hooks.pings.lock().expect("lock") >= 2
        })
        .await?;
    ensure!(hooks.calls() == ["ready"], "calls: {:?}", hooks.calls());

    let mut a = server.client(hello()).await?;
    hooks
        .until("allocated", || hooks.calls() == ["ready", "allocated"])
        .await?;

    let t0 = Instant::now();
    server.server.drain();
    reach(&server, NodeState::Draining).await?;
    a.send(ClientMessage::Leave).await?;
    let (code, _) = expect_close(&mut a.ws, DEADLINE).await?;
    ensure!(code == 1000, "leave closes with 1000, not {code}");
    reach(&server, NodeState::Stopped).await?;
    ensure!(t0.elapsed() < DEADLINE, "stopped after {:?}", t0.elapsed());
    ensure!(
        hooks.calls() == ["ready", "allocated", "draining", "shutdown"],
        "calls: {:?}",
        hooks.calls()
    );
    // The handle's shutdown after a stop returns at once.
    tokio::time::timeout(DEADLINE, server.server.shutdown())
        .await
        .context("shutdown after stop")?;
    Ok(())
}
