//! The game API beyond inputs, in the deterministic harness: reliable game
//! messages (order, per-tick budget, limits against a hostile client), each
//! input's wire tick and sequence, and each client's RTT in `Ctx`.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tickwire_server::testkit::{ClientIndex, Harness, HarnessConfig};
use tickwire_server::{
    AuthError, ClientId, Ctx, Game, InputMeta, LeaveReason, MessageLimits, ServerConfig, Target,
};
use tickwire_shared::client::{Channel, Event, SendMessageError};
use tickwire_shared::conditioner::ConditionerConfig;
use tickwire_shared::{ClientMessage, CloseCode, GameProtocol, Limits};

struct Proto;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Msg {
    Say(String),
    Blob(Vec<u8>),
}

impl GameProtocol for Proto {
    const NAME: &'static str = "game-api";
    const VERSION: u32 = 1;
    type Input = u8;
    type EntityState = u32;
    type Event = String;
    type Message = Msg;
}

/// Records what the hooks saw.
#[derive(Default)]
struct Recorder {
    /// (tick, client, message) in hook order.
    messages: Vec<(u32, ClientId, Msg)>,
    /// (client, input, meta) in hook order.
    inputs: Vec<(ClientId, u8, InputMeta)>,
    /// Per tick, each client's RTT as `Ctx::rtt` said.
    rtts: Vec<(u32, ClientId, Option<Duration>)>,
    left: HashMap<ClientId, LeaveReason>,
}

impl Game for Recorder {
    type Protocol = Proto;
    type User = ();
    type View = ();

    fn on_auth(&mut self, _: Option<&str>) -> Result<(), AuthError> {
        Ok(())
    }

    fn on_join(&mut self, _: &mut Ctx<'_, Self>, _: ClientId, (): ()) {}

    fn on_input(&mut self, _: &mut Ctx<'_, Self>, client: ClientId, input: u8, meta: InputMeta) {
        self.inputs.push((client, input, meta));
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, client: ClientId, msg: Msg) {
        if let Msg::Say(s) = &msg {
            ctx.send(Target::All, format!("{client}: {s}"));
        }
        self.messages.push((ctx.tick(), client, msg));
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, Self>, _: f32) {
        for &c in ctx.clients() {
            self.rtts.push((ctx.tick(), c, ctx.rtt(c)));
        }
    }

    fn on_leave(&mut self, _: &mut Ctx<'_, Self>, client: ClientId, reason: LeaveReason) {
        self.left.insert(client, reason);
    }
}

fn harness(server: ServerConfig) -> Harness<Recorder> {
    Harness::new(
        Recorder::default(),
        HarnessConfig::default().with_server(server),
    )
}

fn server() -> ServerConfig {
    ServerConfig::default()
        .with_tick_rate(60)
        .with_snapshot_interval(1)
}

/// Connects `n` clients and runs until all are established.
fn join(h: &mut Harness<Recorder>, n: usize) -> Vec<ClientIndex> {
    let ids: Vec<_> = (0..n).map(|_| h.connect(None)).collect();
    for _ in 0..60 {
        if ids.iter().all(|&i| h.client(i).session.is_established()) {
            return ids;
        }
        h.step();
    }
    panic!("clients did not join");
}

fn closed_with(h: &Harness<Recorder>, i: ClientIndex) -> Option<(CloseCode, String)> {
    h.client(i).events.iter().find_map(|e| match e {
        Event::Closed(c) => Some((c.code, c.reason.clone())),
        _ => None,
    })
}

fn events_of(h: &Harness<Recorder>, i: ClientIndex) -> Vec<String> {
    h.client(i)
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Events(ev) => Some(ev.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn messages_reach_the_game_in_order_within_the_per_tick_budget() {
    let mut config = server();
    config.room.game_messages = MessageLimits::default().with_queue(64, 3);
    let mut h = harness(config);
    let [a, b] = join(&mut h, 2)[..] else {
        unreachable!()
    };
    let ida = h.client_id(a).unwrap();
    for k in 0..10 {
        h.send_message(a, Msg::Say(format!("a{k}"))).unwrap();
    }
    h.send_message(b, Msg::Say("b0".into())).unwrap();
    let first = h.room().tick_count() + 1;
    h.run_for(Duration::from_millis(200));

    let game = h.room().game();
    let from_a: Vec<_> = game.messages.iter().filter(|m| m.1 == ida).collect();
    let said: Vec<_> = from_a
        .iter()
        .map(|m| match &m.2 {
            Msg::Say(s) => s.clone(),
            Msg::Blob(_) => unreachable!(),
        })
        .collect();
    let want: Vec<_> = (0..10).map(|k| format!("a{k}")).collect();
    assert_eq!(said, want, "every message, once, in order");
    // Three per tick: ticks first, first+1, first+2 get 3 each, first+3 gets 1.
    let per_tick: Vec<u32> = from_a.iter().map(|m| m.0 - first).collect();
    assert_eq!(per_tick, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]);
    // The hook's events reached both clients, in order.
    let seen = events_of(&h, b);
    let lines: Vec<_> = seen
        .iter()
        .filter(|e| e.starts_with(&format!("{ida}:")))
        .collect();
    assert_eq!(lines.len(), 10, "{seen:?}");
    assert!(seen.iter().any(|e| e.ends_with(": b0")));
}

#[test]
fn messages_survive_a_lossy_reordering_network_in_order() {
    let link = ConditionerConfig::perfect()
        .with_latency(Duration::from_millis(40))
        .with_jitter(Duration::from_millis(30))
        .with_uniform_loss(0.2)
        .with_duplicate(0.1)
        .with_reorder(0.2)
        .with_reorder_delay(Duration::from_millis(20));
    let mut h = Harness::new(
        Recorder::default(),
        HarnessConfig::default()
            .with_server(server())
            .with_link(link)
            .with_seed(7),
    );
    let [a] = join(&mut h, 1)[..] else {
        unreachable!()
    };
    for k in 0..30u8 {
        h.send_message(a, Msg::Blob(vec![k])).unwrap();
        h.input(a, k);
        h.step();
    }
    h.run_for(Duration::from_secs(3));
    let got: Vec<_> = h
        .room()
        .game()
        .messages
        .iter()
        .map(|m| m.2.clone())
        .collect();
    let want: Vec<_> = (0..30u8).map(|k| Msg::Blob(vec![k])).collect();
    assert_eq!(got, want);
}

#[test]
fn a_message_flood_closes_only_that_session() {
    let mut config = server();
    config.room.game_messages = MessageLimits::default().with_rate(10, 5);
    let mut h = harness(config);
    let [good, bad] = join(&mut h, 2)[..] else {
        unreachable!()
    };
    let bad_id = h.client_id(bad).unwrap();
    // Within the limits: the burst, then the rate.
    for _ in 0..5 {
        h.send_message(good, Msg::Say("ok".into())).unwrap();
    }
    h.run_for(Duration::from_millis(200));
    h.send_message(good, Msg::Say("ok".into())).unwrap();
    // Six at once: one over the burst.
    for _ in 0..6 {
        h.send_message(bad, Msg::Say("spam".into())).unwrap();
    }
    h.run_for(Duration::from_millis(200));
    let (code, reason) = closed_with(&h, bad).expect("the flooder is closed");
    assert_eq!(code, CloseCode::MessageFlood);
    assert!(reason.contains("10 game messages per second"), "{reason}");
    assert_eq!(
        h.room().game().left.get(&bad_id),
        Some(&LeaveReason::Misbehaved)
    );
    assert_eq!(closed_with(&h, good), None);
    let applied_before = h.client(good).checked;
    h.run_for(Duration::from_millis(200));
    assert!(
        h.client(good).checked > applied_before + 5,
        "good keeps going"
    );
    assert!(h.client(good).mismatches.is_empty());
    let from_good = h
        .room()
        .game()
        .messages
        .iter()
        .filter(|m| Some(m.1) == h.client_id(good))
        .count();
    assert_eq!(from_good, 6);
}

#[test]
fn a_full_room_queue_closes_the_session() {
    let mut config = server();
    // A rate that allows anything; a queue of 4 drained one per tick.
    config.room.game_messages = MessageLimits::default()
        .with_rate(10_000, 10_000)
        .with_queue(4, 1);
    let mut h = harness(config);
    let [a] = join(&mut h, 1)[..] else {
        unreachable!()
    };
    for _ in 0..5 {
        h.send_message(a, Msg::Blob(vec![])).unwrap();
    }
    h.run_for(Duration::from_millis(100));
    let (code, reason) = closed_with(&h, a).expect("closed");
    assert_eq!(code, CloseCode::MessageFlood);
    assert!(
        reason.contains("more than 4 game messages queued"),
        "{reason}"
    );
}

#[test]
fn an_oversized_message_is_refused_locally_and_closed_by_the_server() {
    let mut h = harness(server());
    let [a] = join(&mut h, 1)[..] else {
        unreachable!()
    };
    let max = Limits::default().max_game_message_bytes;
    // A `Blob` of n ≥ 251 bytes encodes as 1 (variant) + 3 (length) + n.
    assert!(h.send_message(a, Msg::Blob(vec![7; max - 4])).is_ok());
    assert_eq!(
        h.send_message(a, Msg::Blob(vec![7; max - 3])),
        Err(SendMessageError::TooLarge { size: max + 1, max })
    );
    h.run_for(Duration::from_millis(50));
    assert_eq!(h.room().game().messages.len(), 1);
    // A hostile client sends it anyway.
    let raw = ClientMessage::<u8, Msg>::GameMessage(Msg::Blob(vec![7; max - 3]))
        .to_bytes()
        .unwrap();
    h.send_raw(a, raw, Channel::Reliable);
    h.run_for(Duration::from_millis(50));
    let (code, _) = closed_with(&h, a).expect("closed");
    assert_eq!(code, CloseCode::MessageTooBig);
    assert_eq!(h.room().game().messages.len(), 1);
}

#[test]
fn inputs_carry_their_wire_tick_and_sequence() {
    let link = ConditionerConfig::perfect().with_latency(Duration::from_millis(30));
    let mut h = Harness::new(
        Recorder::default(),
        HarnessConfig::default()
            .with_server(server())
            .with_link(link),
    );
    let [a] = join(&mut h, 1)[..] else {
        unreachable!()
    };
    let id = h.client_id(a).unwrap();
    let mut sent = Vec::new();
    for k in 0..20u8 {
        let seq = h.input(a, k).unwrap();
        let (s, tick, _) = h.client(a).session.pending_inputs().last().unwrap();
        assert_eq!(s, seq);
        sent.push((id, k, InputMeta::new(seq, tick)));
        h.step();
    }
    h.run_for(Duration::from_millis(300));
    assert_eq!(h.room().game().inputs, sent);
    // The client estimates the server's tick from snapshots 30 ms old: the
    // input ticks trail the server's by about two ticks, and advance.
    let ticks: Vec<u32> = sent.iter().map(|s| s.2.tick).collect();
    assert!(ticks.windows(2).all(|w| w[1] >= w[0]), "{ticks:?}");
    assert!(ticks[19] > ticks[0], "{ticks:?}");
}

#[test]
fn ctx_reports_each_clients_round_trip() {
    let link = ConditionerConfig::perfect().with_latency(Duration::from_millis(50));
    let mut config = server();
    config.session.ping_interval = Duration::from_millis(500);
    let mut h = Harness::new(
        Recorder::default(),
        HarnessConfig::default().with_server(config).with_link(link),
    );
    let [a] = join(&mut h, 1)[..] else {
        unreachable!()
    };
    let id = h.client_id(a).unwrap();
    h.run_for(Duration::from_secs(2));
    let rtts: Vec<_> = h
        .room()
        .game()
        .rtts
        .iter()
        .filter(|r| r.1 == id)
        .map(|r| r.2)
        .collect();
    assert_eq!(rtts.first(), Some(&None), "no pong yet at first");
    // 50 ms each way on a virtual clock: exactly 100 ms.
    assert_eq!(rtts.last(), Some(&Some(Duration::from_millis(100))));
    // Detached within its grace period: no RTT.
    h.drop_connection(a);
    h.step();
    let last = h.room().game().rtts.last().copied();
    assert_eq!(last, Some((h.room().tick_count(), id, None)));
}
