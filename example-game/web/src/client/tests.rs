use tickwire_shared::message::Reject;
use tickwire_shared::quantize::QVec2;
use tickwire_shared::{
    ClientMessage, Limits, RejectCode, ResumeToken, ServerMessage, Snapshot, Welcome,
};

use tickwire_web::reconnect::Ending;

use super::*;

type Msg<'a> = ServerMessage<'a, ArenaEvent>;

fn player(owner: u32, pos: Vec2, name: &str) -> EntityState {
    EntityState {
        kind: EntityKind::Player,
        pos: QVec2::from_vec2(pos),
        angle: Angle16(0),
        health: MAX_HEALTH,
        owner,
        name: name.into(),
        kills: 0,
        deaths: 0,
    }
}

fn welcome(resumed: bool) -> Vec<u8> {
    Msg::Welcome(Welcome {
        client_id: 5,
        tick_rate: TICK_RATE,
        tick: 1000,
        snapshot_interval: 2,
        resume_token: ResumeToken([4; 16]),
        room: "arena".into(),
        resumed,
        implicit_acks: None,
    })
    .to_bytes()
    .unwrap()
}

fn snapshot_msg(
    tick: u32,
    last_input: u32,
    base: Option<(u32, &Snapshot<EntityState>)>,
    cur: &Snapshot<EntityState>,
) -> Vec<u8> {
    tickwire_shared::message::encode_snapshot(tick, last_input, base, cur).unwrap()
}

fn sent(c: &mut Client, now: f64) -> Vec<ClientMessage<PlayerInput>> {
    let mut out = Vec::new();
    while let Some(b) = c.poll_transmit(now) {
        out.push(ClientMessage::decode(b, &Limits::default()).unwrap());
    }
    out
}

fn connected() -> Client {
    let mut c = Client::new("ada");
    c.play(0.0, "ada");
    assert!(c.connect_due(0.0));
    c.connecting(0.0);
    assert!(
        sent(&mut c, 0.0).is_empty(),
        "nothing before the socket opens"
    );
    c.on_open(1.0);
    let msgs = sent(&mut c, 1.0);
    assert!(
        matches!(&msgs[..], [ClientMessage::Hello(h)] if h.auth_token.as_deref() == Some("ada"))
    );
    assert_eq!(c.on_message(2.0, &welcome(false)), None);
    assert_eq!(c.status(), &Status::Connected);
    c
}

#[test]
fn plays_a_session_end_to_end() {
    let mut c = connected();
    let you = Msg::Events(vec![ArenaEvent::YouAre { entity: NetId(9) }])
        .to_bytes()
        .unwrap();
    c.on_message(3.0, &you);
    let start = Vec2::new(600.0, 700.0);
    let s0 = Snapshot::from_vec(vec![
        (NetId(9), player(5, start, "ada")),
        (NetId(11), player(6, Vec2::new(700.0, 700.0), "bob")),
    ])
    .unwrap();
    assert_eq!(c.on_message(4.0, &snapshot_msg(1002, 0, None, &s0)), None);
    assert_eq!(
        sent(&mut c, 4.0).last(),
        Some(&ClientMessage::Ack {
            snapshot_tick: 1002
        })
    );

    // Hold RIGHT for 10 ticks: prediction moves at once.
    c.input.key("KeyD", true);
    let mut now = 4.0;
    c.update(now);
    for _ in 0..10 {
        now += 17.0;
        c.update(now);
    }
    let msgs = sent(&mut c, now);
    let last_inputs = msgs
        .iter()
        .rev()
        .find_map(|m| match m {
            ClientMessage::Inputs(i) => Some(i.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(last_inputs.first_seq, 1);
    assert_eq!(last_inputs.frames.len(), 10);
    let n = last_inputs.frames.len() as u32;
    let predicted = c.predictor.position().unwrap();
    assert!(predicted.x > start.x + 30.0, "{predicted}");

    // The server applied 4 of them and agrees: no correction.
    let mut server = start;
    for f in &last_inputs.frames[..4] {
        server = step_player(server, &f.input, 1.0 / 60.0);
    }
    let s1 = Snapshot::from_vec(vec![
        (NetId(9), player(5, server, "ada")),
        (NetId(11), player(6, Vec2::new(700.0, 710.0), "bob")),
    ])
    .unwrap();
    c.on_message(now, &snapshot_msg(1004, 4, Some((1002, &s0)), &s1));
    assert!(
        c.predictor.last_error() < 0.1,
        "{}",
        c.predictor.last_error()
    );
    c.update(now + 17.0);
    let resend = sent(&mut c, now + 20.0);
    assert!(resend.iter().any(|m| matches!(m, ClientMessage::Inputs(i) if i.first_seq == 5 && i.frames.len() as u32 >= n - 4)));

    let stats = c.stats(now);
    assert!(stats.connected);
    assert_eq!(stats.my_entity, Some(9));
    assert_eq!(stats.visible_players, 2);
    assert_eq!(stats.tick, Some(1004));
    let json = stats.to_json();
    assert!(
        json.starts_with(
            "{\"connected\":true,\"status\":\"playing\",\"name\":\"ada\",\"transport\":null,\"tick\":1004,"
        ),
        "{json}"
    );

    let scene = c.frame(now + 200.0, Vec2::new(1280.0, 800.0));
    assert_eq!(scene.players.len(), 2);
    assert!(scene.players.last().unwrap().is_me);
    assert_eq!(c.scoreboard().len(), 2);
}

#[test]
fn reconnects_with_backoff_and_the_resume_token() {
    let mut c = connected();
    c.on_close(100.0, 1006, "", 0.5);
    assert_eq!(
        c.status(),
        &Status::Waiting {
            ending: Ending::Lost,
            retry_at_ms: 600.0
        }
    );
    assert!(!c.connect_due(599.0) && c.connect_due(600.0));
    assert_eq!(
        c.banner(100.0).unwrap().0,
        "Disconnected — reconnecting in 1 s"
    );
    c.connecting(600.0);
    // The socket never opens: "cannot connect", and the delay doubles.
    c.on_close(700.0, 1006, "", 0.5);
    assert_eq!(
        c.status(),
        &Status::Waiting {
            ending: Ending::CannotConnect,
            retry_at_ms: 1700.0
        }
    );
    c.connecting(1700.0);
    c.on_open(1701.0);
    let msgs = sent(&mut c, 1701.0);
    assert!(
        matches!(&msgs[..], [ClientMessage::Hello(h)] if h.resume_token == Some(ResumeToken([4; 16])))
    );
    c.on_message(1702.0, &welcome(true));
    assert_eq!(c.stats(1702.0).reconnect_attempts, 0);
}

/// A matchmaker's seat goes into the hello: its room and its token; a
/// new seat is a new session.
#[test]
fn a_seat_names_the_room_and_carries_the_token() {
    let mut c = Client::new("ada");
    c.play_seat(0.0, "ada", "mm-1", "tw1.seat");
    c.connecting(0.0);
    c.on_open(1.0);
    let msgs = sent(&mut c, 1.0);
    assert!(
        matches!(&msgs[..], [ClientMessage::Hello(h)]
            if h.room.as_deref() == Some("mm-1")
                && h.seat_token.as_deref() == Some("tw1.seat")
                && h.auth_token.as_deref() == Some("ada")),
        "{msgs:?}"
    );
    c.play_seat(2.0, "ada", "mm-2", "tw1.other");
    c.connecting(2.0);
    c.on_open(3.0);
    let msgs = sent(&mut c, 3.0);
    assert!(
        matches!(&msgs[..], [ClientMessage::Hello(h)]
            if h.room.as_deref() == Some("mm-2") && h.resume_token.is_none()),
        "{msgs:?}"
    );
}

/// The server restarts input sequences on every connection, resumed or
/// not: inputs pending at a drop are dropped, never resent under their
/// old numbers (which the server would apply a second time).
#[test]
fn a_resumed_session_restarts_input_sequences() {
    let mut c = connected();
    let start = Vec2::new(600.0, 700.0);
    let you = Msg::Events(vec![ArenaEvent::YouAre { entity: NetId(9) }])
        .to_bytes()
        .unwrap();
    c.on_message(3.0, &you);
    let s0 = Snapshot::from_vec(vec![(NetId(9), player(5, start, "ada"))]).unwrap();
    c.on_message(4.0, &snapshot_msg(1002, 0, None, &s0));
    c.input.key("KeyD", true);
    let mut now = 4.0;
    c.update(now);
    for _ in 0..5 {
        now += 17.0;
        c.update(now);
    }
    let _ = sent(&mut c, now);
    assert_eq!(c.stats(now).unacked_inputs, 5);

    // The link drops before any of them is acked; the session resumes.
    c.on_close(now, 1006, "", 0.0);
    let retry_at = now + 375.0;
    assert!(c.connect_due(retry_at));
    c.connecting(retry_at);
    c.on_open(retry_at);
    c.update(retry_at);
    let hello = sent(&mut c, retry_at);
    assert!(
        matches!(&hello[..], [ClientMessage::Hello(h)] if h.resume_token == Some(ResumeToken([4; 16]))),
        "{hello:?}"
    );
    assert_eq!(c.on_message(retry_at + 1.0, &welcome(true)), None);
    assert_eq!(c.stats(retry_at + 1.0).unacked_inputs, 0);

    now = retry_at + 1.0;
    c.update(now);
    now += 17.0;
    c.update(now);
    let inputs: Vec<_> = sent(&mut c, now)
        .into_iter()
        .filter_map(|m| match m {
            ClientMessage::Inputs(i) => Some(i),
            _ => None,
        })
        .collect();
    assert_eq!(inputs.len(), 1, "{inputs:?}");
    assert_eq!((inputs[0].first_seq, inputs[0].frames.len()), (1, 1));

    // The server applied that one input on the new connection: nothing
    // is replayed on top of its position.
    let server = step_player(start, &inputs[0].frames[0].input, 1.0 / 60.0);
    let me = player(5, server, "ada");
    let on_the_wire = me.pos.to_vec2();
    let s1 = Snapshot::from_vec(vec![(NetId(9), me)]).unwrap();
    c.on_message(now, &snapshot_msg(1010, 1, None, &s1));
    assert_eq!(c.stats(now).unacked_inputs, 0);
    assert_eq!(c.predictor.position(), Some(on_the_wire));
}

#[test]
fn version_mismatch_stops_and_server_full_retries() {
    let mut c = Client::new("ada");
    c.play(0.0, "ada");
    c.connecting(0.0);
    c.on_open(1.0);
    let reject = |code| {
        Msg::Reject(Reject {
            code,
            message: "nope".into(),
        })
        .to_bytes()
        .unwrap()
    };
    assert!(
        c.on_message(2.0, &reject(RejectCode::GameMismatch))
            .is_some()
    );
    c.on_close(3.0, 4005, "rejected", 0.5);
    assert_eq!(
        c.banner(3.0).unwrap().0,
        "Version mismatch — reload the page"
    );
    assert!(!c.connect_due(1e9));

    c.play(10.0, "ada");
    c.connecting(10.0);
    c.on_open(11.0);
    c.on_message(12.0, &reject(RejectCode::ServerFull));
    c.on_close(13.0, 4005, "rejected", 0.5);
    assert!(
        c.banner(13.0)
            .unwrap()
            .0
            .starts_with("Server full — retrying in")
    );
    assert!(c.connect_due(513.0));
}

#[test]
fn the_sample_copy_follows_the_world_through_changes() {
    let limits = Limits::default();
    let mut world = ClientWorld::<EntityState>::new(64);
    let mut samples = Vec::new();
    let at = |ids: &[u32], x: f32| {
        Snapshot::from_vec(
            ids.iter()
                .map(|&i| (NetId(i), player(i, Vec2::new(x + i as f32, 5.0), "p")))
                .collect(),
        )
        .unwrap()
    };
    let views = [
        at(&[1, 2, 3, 5], 0.0),
        at(&[1, 2, 3, 5], 10.0),
        at(&[2, 4, 5, 7], 10.0),
        at(&[0, 2, 4, 9], 20.0),
    ];
    let mut prev: Option<(u32, &Snapshot<EntityState>)> = None;
    for (k, view) in views.iter().enumerate() {
        let tick = 10 + k as u32;
        let bytes = snapshot_msg(tick, 0, prev, view);
        let Msg::Snapshot(f) = Msg::decode(&bytes, &limits).unwrap() else {
            unreachable!()
        };
        world
            .apply::<Arena>(f.header.tick, f.header.baseline, f.body, &limits)
            .unwrap();
        update_samples(&mut samples, &world);
        let expected: Vec<_> = world.iter().map(|(id, s)| sample(id, s)).collect();
        assert_eq!(samples, expected, "after tick {tick}");
        prev = Some((tick, view));
    }
}

#[test]
fn garbage_closes_with_a_protocol_error() {
    let mut c = connected();
    let (code, reason) = c.on_message(5.0, &[9, 9, 9]).unwrap();
    assert_eq!(code, 1002);
    assert!(reason.contains("unknown server message tag"), "{reason}");
    c.on_close(6.0, 1002, &reason, 0.0);
    assert!(c.banner(6.0).unwrap().0.starts_with("Protocol error"));
    assert!(c.connect_due(1000.0));
}
