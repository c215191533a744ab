//! One end-to-end session against a real `tickwire-server` on 127.0.0.1,
//! over WSS and over QUIC: connect trusting the server's self-signed leaf,
//! send inputs, see them applied and acknowledged, and leave cleanly. Waits have deadlines;
//! there are no fixed sleeps.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tickwire_client::{AckPolicy, Client, ClientError, ClientEvent, ConnectOptions, Trust};
use tickwire_server::world::EntityKey;
use tickwire_server::{
    AuthError, ClientId, Ctx, Game, InputMeta, LeaveReason, Server, ServerConfig, Target,
};
use tickwire_shared::{CloseCode, GameProtocol, RejectCode};
use tokio::time::{Instant, timeout_at};

/// The tutorial game from the server docs: one dot per player.
struct Dots;
impl GameProtocol for Dots {
    const NAME: &'static str = "dots";
    const VERSION: u32 = 1;
    type Input = (i8, i8);
    type EntityState = Dot;
    type Event = String;
    /// A chat line.
    type Message = String;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Dot {
    x: i32,
    y: i32,
}

#[derive(Default)]
struct DotsGame {
    players: HashMap<ClientId, EntityKey>,
}

impl Game for DotsGame {
    type Protocol = Dots;
    type User = String;
    type View = ();

    fn on_auth(&mut self, token: Option<&str>) -> Result<String, AuthError> {
        token
            .map(str::to_owned)
            .ok_or_else(|| AuthError::failed("send a name"))
    }
    fn on_join(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, name: String) {
        let key = ctx.world.spawn(ctx.tick(), Dot { x: 0, y: 0 });
        self.players.insert(client, key);
        ctx.send(Target::All, format!("{name} joined"));
    }
    fn on_input(
        &mut self,
        ctx: &mut Ctx<'_, Self>,
        client: ClientId,
        (dx, dy): (i8, i8),
        _meta: InputMeta,
    ) {
        if let Some(dot) = self
            .players
            .get(&client)
            .and_then(|k| ctx.world.get_mut(*k))
        {
            dot.x += i32::from(dx.clamp(-1, 1));
            dot.y += i32::from(dy.clamp(-1, 1));
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, line: String) {
        ctx.send(Target::Client(client), format!("said {line}"));
    }
    fn on_tick(&mut self, _ctx: &mut Ctx<'_, Self>, _dt: f32) {}
    fn on_leave(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, _why: LeaveReason) {
        if let Some(key) = self.players.remove(&client) {
            ctx.world.despawn(ctx.tick(), key);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_wss_inputs_are_applied_acked_and_leave_is_clean() {
    inputs_are_applied_acked_and_leave_is_clean(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_quic_inputs_are_applied_acked_and_leave_is_clean() {
    inputs_are_applied_acked_and_leave_is_clean(true).await;
}

async fn inputs_are_applied_acked_and_leave_is_clean(quic: bool) {
    let config = ServerConfig::default()
        .with_addr("127.0.0.1:0".parse().unwrap())
        .with_quic_addr(Some("127.0.0.1:0".parse().unwrap()))
        .with_tick_rate(60);
    let server = Server::new(config, |_room| DotsGame::default())
        .start()
        .await
        .expect("server starts");
    let leaf = server.tls_identity().expect("TLS").leaf().clone();
    let url = if quic {
        format!(
            "quic://127.0.0.1:{}",
            server.quic_addr().expect("QUIC on").port()
        )
    } else {
        format!("wss://127.0.0.1:{}/ws", server.local_addr().port())
    };

    // The auth hook wants a name: without one the hello is rejected.
    let err = Client::<Dots>::connect(&url, ConnectOptions::new(Trust::Certificate(leaf.clone())))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Rejected {
                code: RejectCode::AuthFailed,
                ..
            }
        ),
        "{err:?}"
    );
    // A server that does not answer is a clear error, not a hang or a panic.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let err = Client::<Dots>::connect(
        &format!("quic://{}", silent.local_addr().unwrap()),
        ConnectOptions::new(Trust::InsecureDevCertificate)
            .with_handshake_timeout(Duration::from_millis(500)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");

    let options = ConnectOptions::new(Trust::Certificate(leaf)).with_auth_token("ada");
    let mut client = Client::<Dots>::connect(&url, options)
        .await
        .expect("connects");
    assert!(!client.welcome().resumed);

    const N: u32 = 10;
    for k in 1..=N {
        assert_eq!(client.send_input((1, 0)).await.unwrap(), k);
        // Reliable game messages beside the inputs (on QUIC: the stream).
        client.send_message(format!("m{k}")).await.unwrap();
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut joined, mut ponged, mut applied) = (false, false, None);
    let mut said = Vec::new();
    while !(joined && ponged && applied.is_some() && said.len() == N as usize) {
        let ev = timeout_at(deadline, client.next_event())
            .await
            .expect("inputs applied before the deadline")
            .expect("no error");
        match ev {
            ClientEvent::Events(e) => {
                joined |= e.iter().any(|s| s == "ada joined");
                said.extend(e.into_iter().filter(|s| s.starts_with("said ")));
            }
            ClientEvent::Rtt(rtt) => {
                ponged = true;
                assert_eq!(client.rtt(), Some(rtt));
            }
            ClientEvent::Snapshot(a) => {
                let (tick, last_input) = (a.tick, a.last_input);
                let world = client.world();
                assert_eq!(world.len(), 1);
                let dot = world.iter().next().unwrap().1;
                // The snapshot shows exactly the inputs it acknowledges.
                assert_eq!(dot.x, last_input as i32, "tick {tick}");
                if last_input == N {
                    applied = Some(tick);
                }
            }
            ClientEvent::Closed { code, reason } => panic!("closed: {code} {reason}"),
        }
    }
    assert_eq!(
        client.session().pending_inputs().len(),
        0,
        "every input acked"
    );
    let want: Vec<_> = (1..=N).map(|k| format!("said m{k}")).collect();
    assert_eq!(said, want, "every game message once, in order");
    let stats = client.stats();
    assert!(stats.full_snapshots >= 1 && stats.snapshots_applied > stats.full_snapshots);

    let (code, _) = client.leave().await.expect("clean leave");
    assert_eq!(code, CloseCode::Normal);
    assert!(matches!(
        client.next_event().await,
        Err(ClientError::Closed {
            code: CloseCode::Normal,
            ..
        })
    ));
    server.shutdown().await;
}

/// With deferred acks, a snapshot's ack is not written when `next_event`
/// returns the snapshot, but with the next write: queued inputs and the ack
/// leave together on `send_pending`, and the inputs are applied. Without,
/// the ack is written before the snapshot is returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_acks_leave_with_the_next_write() {
    let config = ServerConfig::default()
        .with_addr("127.0.0.1:0".parse().unwrap())
        .with_quic_addr(None)
        .with_tick_rate(60);
    let server = Server::new(config, |_room| DotsGame::default())
        .start()
        .await
        .expect("server starts");
    let leaf = server.tls_identity().expect("TLS").leaf().clone();
    let url = format!("wss://127.0.0.1:{}/ws", server.local_addr().port());
    let deadline = Instant::now() + Duration::from_secs(10);

    async fn next_snapshot(client: &mut Client<Dots>, deadline: Instant) {
        loop {
            let ev = timeout_at(deadline, client.next_event())
                .await
                .expect("a snapshot in time")
                .expect("no error");
            if matches!(ev, ClientEvent::Snapshot(_)) {
                return;
            }
        }
    }

    for defer in [false, true] {
        let options = ConnectOptions::new(Trust::Certificate(leaf.clone()))
            .with_auth_token("ada")
            .with_deferred_acks(defer)
            // Every snapshot's ack is queued at once, so each one tests the
            // deferral (the default policy queues some of them only with
            // the next inputs: shared's client tests cover that).
            .with_acks(AckPolicy::EVERY_SNAPSHOT)
            // Explicit acks: with implicit ones (the default over WSS)
            // there is no ack to defer.
            .with_implicit_acks(false);
        let mut client = Client::<Dots>::connect(&url, options)
            .await
            .expect("connects");
        for _ in 0..3 {
            next_snapshot(&mut client, deadline).await;
            // Deferred, the snapshot's ack is still pending; otherwise it
            // was written (with anything else pending) before the return.
            let before = client.stats().bytes_sent;
            client.send_pending().await.unwrap();
            let pending = client.stats().bytes_sent - before;
            if defer {
                assert!(pending > 0, "the deferred ack waits for a write");
            } else {
                assert_eq!(pending, 0, "the ack was written before the return");
            }
            let before = client.stats().bytes_sent;
            client.queue_input((1, 0)).unwrap();
            client.queue_input((1, 0)).unwrap();
            assert_eq!(client.stats().bytes_sent, before, "queued inputs wait");
            client.send_pending().await.unwrap();
            assert!(client.stats().bytes_sent > before, "and leave together");
        }
        // The inputs were applied: the dot moved.
        let applied = loop {
            next_snapshot(&mut client, deadline).await;
            if client.last_input() >= 6 {
                break client.world().iter().map(|(_, d)| d.x).max();
            }
            client.send_pending().await.unwrap();
        };
        assert_eq!(applied, Some(6), "defer = {defer}");
        client.leave().await.unwrap();
    }
}
