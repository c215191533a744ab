use serde::{Deserialize, Serialize};

use super::*;
use crate::handshake::ResumeToken;
use crate::message::{Close, InputFrame, Inputs, Reject, encode_snapshot};
use crate::snapshot::{NetId, Snapshot};

struct TestGame;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Pos {
    x: i32,
    y: i32,
}

impl GameProtocol for TestGame {
    const NAME: &'static str = "test";
    const VERSION: u32 = 1;
    type Input = u8;
    type EntityState = Pos;
    type Event = String;
    type Message = ();
}

type Msg<'a> = ServerMessage<'a, String>;
type Session = ClientSession<TestGame>;

const T0: Duration = Duration::ZERO;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn welcome(resumed: bool) -> Vec<u8> {
    welcome_answering(resumed, None)
}

fn welcome_answering(resumed: bool, implicit_acks: Option<bool>) -> Vec<u8> {
    Msg::Welcome(Welcome {
        client_id: 3,
        tick_rate: 60,
        tick: 100,
        snapshot_interval: 2,
        resume_token: ResumeToken([7; 16]),
        room: "lobby".into(),
        resumed,
        implicit_acks,
    })
    .to_bytes()
    .unwrap()
}

fn view(n: u32, t: i32) -> Snapshot<Pos> {
    Snapshot::from_vec((1..=n).map(|i| (NetId(i), Pos { x: t, y: 0 })).collect()).unwrap()
}

fn snapshot(
    tick: u32,
    last_input: u32,
    base: Option<(u32, &Snapshot<Pos>)>,
    cur: &Snapshot<Pos>,
) -> Vec<u8> {
    encode_snapshot(tick, last_input, base, cur).unwrap()
}

fn sent(s: &mut Session) -> Vec<(ClientMessage<u8>, Channel)> {
    let mut buf = Vec::new();
    std::iter::from_fn(|| {
        let ch = s.poll_transmit(T0, &mut buf)?;
        Some((ClientMessage::decode(&buf, &Limits::default()).unwrap(), ch))
    })
    .collect()
}

fn events(s: &mut Session) -> Vec<Event<TestGame>> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn config() -> ClientConfig {
    ClientConfig::default().with_ping_interval(None)
}

fn established() -> Session {
    let mut s = Session::new(T0, Hello::new(TestGame::PROTOCOL_HASH), config());
    let _ = sent(&mut s);
    s.handle_message(T0, &welcome(false), Channel::Reliable);
    assert!(matches!(events(&mut s).as_slice(), [Event::Welcome(_)]));
    s
}

fn closed(s: &mut Session) -> Closed {
    let evs = events(s);
    match evs.last() {
        Some(Event::Closed(c)) => c.clone(),
        other => panic!("expected Closed, got {other:?} in {evs:?}"),
    }
}

#[test]
fn the_hello_goes_first_and_reliably() {
    let mut hello = Hello::new(TestGame::PROTOCOL_HASH);
    hello.auth_token = Some("ann".into());
    let mut s = Session::new(T0, hello.clone(), config());
    // The session asks for implicit acks (ClientConfig's default).
    hello.implicit_acks = true;
    assert_eq!(
        sent(&mut s),
        vec![(ClientMessage::Hello(hello), Channel::Reliable)]
    );
    assert!(!s.is_established());
    assert_eq!(s.push_input(T0, 1), None, "no inputs before the welcome");
}

fn ack(tick: u32) -> (ClientMessage<u8>, Channel) {
    (
        ClientMessage::Ack {
            snapshot_tick: tick,
        },
        Channel::Unreliable,
    )
}

/// An established session with the delayed ack policy.
fn established_delayed() -> Session {
    let config = config().with_acks(AckPolicy::DELAYED);
    let mut s = Session::new(T0, Hello::new(TestGame::PROTOCOL_HASH), config);
    let _ = sent(&mut s);
    s.handle_message(T0, &welcome(false), Channel::Reliable);
    assert!(matches!(events(&mut s).as_slice(), [Event::Welcome(_)]));
    s
}

#[test]
fn delta_acks_ride_with_inputs_or_wait_for_the_policy() {
    let mut s = established_delayed();
    // The welcome's snapshot interval is 2 ticks: `every: 3` acks on
    // multiples of 6 ticks.
    let worlds: Vec<Snapshot<Pos>> = (0..8).map(|t| view(3, t)).collect();
    let tick = |i: usize| 96 + 2 * i as u32;
    let delta = |s: &mut Session, at: u64, i: usize| {
        s.handle_message(
            ms(at),
            &snapshot(tick(i), 0, Some((96, &worlds[0])), &worlds[i]),
            Channel::Reliable,
        );
    };
    // A full snapshot is acked at once: the server sends full ones until it
    // sees that ack.
    s.handle_message(
        ms(10),
        &snapshot(96, 0, None, &worlds[0]),
        Channel::Reliable,
    );
    assert_eq!(sent(&mut s), vec![ack(96)]);
    // Deltas within the same 6 ticks wait ...
    delta(&mut s, 20, 1);
    delta(&mut s, 21, 2);
    assert_eq!(sent(&mut s), vec![]);
    assert_eq!(
        s.poll_timeout(),
        Some(ms(20 + 50)),
        "the oldest pending ack is due"
    );
    // ... and ride with the next inputs, in the same batch.
    let _ = s.push_input(ms(22), 7);
    let out = sent(&mut s);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(matches!(out[0].0, ClientMessage::Inputs(_)));
    assert_eq!(out[1], ack(100));
    assert!(s.poll_timeout() > Some(ms(1000)), "only the idle timeout");
    // Past a multiple of 6 ticks: at once.
    delta(&mut s, 30, 3);
    assert_eq!(sent(&mut s), vec![ack(102)]);
    // Within the same 6 ticks and no inputs: after max_delay ...
    delta(&mut s, 40, 4);
    s.handle_timeout(ms(89));
    assert_eq!(sent(&mut s), vec![]);
    assert_eq!(s.poll_timeout(), Some(ms(90)));
    s.handle_timeout(ms(90));
    assert_eq!(sent(&mut s), vec![ack(104)]);
    // ... or at the next multiple, whichever comes first.
    delta(&mut s, 100, 5);
    assert_eq!(sent(&mut s), vec![]);
    delta(&mut s, 101, 6);
    assert_eq!(sent(&mut s), vec![ack(108)]);
    assert!(s.poll_timeout() > Some(ms(1000)), "only the idle timeout");
}

/// The ticks a delayed-ack session acknowledges when it applies the
/// snapshots of `ticks` (the first one full), one every 33 ms, with no
/// inputs.
fn acked_ticks(policy: AckPolicy, ticks: &[u32]) -> Vec<u32> {
    let mut s = Session::new(
        T0,
        Hello::new(TestGame::PROTOCOL_HASH),
        config().with_acks(policy),
    );
    let _ = sent(&mut s);
    s.handle_message(T0, &welcome(false), Channel::Reliable);
    let _ = events(&mut s);
    let base = view(3, 0);
    let mut acked = Vec::new();
    for (i, &tick) in ticks.iter().enumerate() {
        let now = ms(33 * i as u64);
        s.handle_timeout(now);
        let msg = if i == 0 {
            snapshot(tick, 0, None, &base)
        } else {
            snapshot(tick, 0, Some((ticks[0], &base)), &view(3, tick as i32))
        };
        s.handle_message(now, &msg, Channel::Reliable);
        for (m, _) in sent(&mut s) {
            if let ClientMessage::Ack { snapshot_tick } = m {
                acked.push(snapshot_tick);
            }
        }
    }
    acked
}

#[test]
fn idle_clients_ack_the_same_ticks_whatever_their_phase() {
    // Snapshots every 2 ticks; `every: 2` with a delay the period never
    // reaches: acks on multiples of 4 ticks.
    let policy = AckPolicy {
        every: 2,
        max_delay: ms(1000),
    };
    let from = |first: u32| -> Vec<u32> { (0..12).map(|i| first + 2 * i).collect() };
    let a = acked_ticks(policy, &from(100));
    let b = acked_ticks(policy, &from(102));
    // Each acks its first (full) snapshot at once, then only multiples of 4.
    assert_eq!(a, vec![100, 104, 108, 112, 116, 120]);
    assert_eq!(b, vec![102, 104, 108, 112, 116, 120, 124]);
    // A client sent every 3rd snapshot (paced by the server) acks the first
    // snapshot past each multiple.
    let paced: Vec<u32> = (0..8).map(|i| 100 + 6 * i).collect();
    assert_eq!(
        acked_ticks(policy, &paced),
        vec![100, 106, 112, 118, 124, 130, 136, 142]
    );
}

#[test]
fn every_snapshot_policy_acks_each_delta_at_once() {
    let config = config().with_acks(AckPolicy::EVERY_SNAPSHOT);
    let mut s = Session::new(T0, Hello::new(TestGame::PROTOCOL_HASH), config);
    let _ = sent(&mut s);
    s.handle_message(T0, &welcome(false), Channel::Reliable);
    let a = view(3, 0);
    s.handle_message(ms(1), &snapshot(100, 0, None, &a), Channel::Reliable);
    assert_eq!(sent(&mut s), vec![ack(100)]);
    for tick in 101..104 {
        let b = view(3, tick as i32);
        s.handle_message(
            ms(2),
            &snapshot(tick, 0, Some((100, &a)), &b),
            Channel::Reliable,
        );
        assert_eq!(sent(&mut s), vec![ack(tick)]);
    }
}

#[test]
fn no_delayed_ack_follows_a_leave() {
    let mut s = established_delayed();
    let a = view(3, 0);
    s.handle_message(ms(1), &snapshot(100, 0, None, &a), Channel::Reliable);
    let _ = sent(&mut s);
    s.handle_message(
        ms(2),
        &snapshot(101, 0, Some((100, &a)), &view(3, 1)),
        Channel::Reliable,
    );
    s.leave(ms(3));
    s.handle_timeout(ms(200));
    assert_eq!(
        sent(&mut s),
        vec![(ClientMessage::Leave, Channel::Reliable)]
    );
    assert!(
        s.poll_timeout().is_none_or(|t| t > ms(200)),
        "no ack deadline is left behind to wake the driver in a loop"
    );
}

#[test]
fn every_applied_snapshot_is_acked_once_and_stale_ones_are_not() {
    let mut s = established();
    for tick in [102, 104, 106] {
        s.handle_message(
            ms(1),
            &snapshot(tick, 0, None, &view(3, tick as i32)),
            Channel::Reliable,
        );
        assert!(matches!(events(&mut s).as_slice(), [Event::Snapshot(a)] if a.tick == tick));
        assert_eq!(
            sent(&mut s),
            vec![(
                ClientMessage::Ack {
                    snapshot_tick: tick
                },
                Channel::Unreliable
            )]
        );
    }
    // Two snapshots before the driver sends: one ack, for the newest.
    s.handle_message(
        ms(2),
        &snapshot(108, 0, None, &view(3, 0)),
        Channel::Unreliable,
    );
    s.handle_message(
        ms(2),
        &snapshot(110, 0, None, &view(3, 1)),
        Channel::Unreliable,
    );
    assert_eq!(
        sent(&mut s),
        vec![(
            ClientMessage::Ack { snapshot_tick: 110 },
            Channel::Unreliable
        )]
    );
    // Stale and duplicate: neither applied nor acked.
    let _ = events(&mut s);
    s.handle_message(
        ms(3),
        &snapshot(104, 0, None, &view(3, 9)),
        Channel::Unreliable,
    );
    s.handle_message(
        ms(3),
        &snapshot(110, 0, None, &view(3, 9)),
        Channel::Unreliable,
    );
    assert!(sent(&mut s).is_empty() && events(&mut s).is_empty());
    assert_eq!(s.world().to_snapshot(), view(3, 1));
    assert_eq!(s.stats().snapshots_stale, 2);
}

#[test]
fn deltas_apply_against_kept_baselines_and_a_missing_one_is_a_protocol_error() {
    let mut s = established();
    let views: Vec<_> = (0..5).map(|i| view(4 + i, i as i32)).collect();
    s.handle_message(T0, &snapshot(10, 0, None, &views[0]), Channel::Reliable);
    s.handle_message(
        T0,
        &snapshot(12, 0, Some((10, &views[0])), &views[1]),
        Channel::Reliable,
    );
    // The server still uses 10 (the ack of 12 is in flight).
    s.handle_message(
        T0,
        &snapshot(14, 0, Some((10, &views[0])), &views[2]),
        Channel::Reliable,
    );
    assert_eq!(s.world().to_snapshot(), views[2]);
    s.handle_message(
        T0,
        &snapshot(16, 0, Some((14, &views[2])), &views[3]),
        Channel::Reliable,
    );
    assert_eq!(s.world().kept_ticks().collect::<Vec<_>>(), [14, 16]);
    let _ = events(&mut s);
    s.handle_message(
        T0,
        &snapshot(18, 0, Some((12, &views[1])), &views[4]),
        Channel::Reliable,
    );
    let c = closed(&mut s);
    assert_eq!(
        (c.code, c.local, c.retry),
        (CloseCode::ProtocolError, true, true)
    );
    assert!(s.is_closed());
}

#[test]
fn inputs_resend_exactly_the_unapplied_ones_within_the_limit() {
    let mut s = established();
    let _ = sent(&mut s);
    for i in 0..5u8 {
        assert_eq!(s.push_input(T0, i * 10), Some(u32::from(i) + 1));
    }
    let expect = |first_seq: u32, inputs: &[(u32, u8)]| {
        ClientMessage::Inputs(Inputs {
            first_seq,
            frames: inputs
                .iter()
                .map(|&(tick, input)| InputFrame { tick, input })
                .collect(),
        })
    };
    // One message (coalesced), on the unreliable channel.
    assert_eq!(
        sent(&mut s),
        vec![(
            expect(1, &[(100, 0), (100, 10), (100, 20), (100, 30), (100, 40)]),
            Channel::Unreliable
        )]
    );
    s.handle_message(T0, &snapshot(110, 3, None, &view(1, 0)), Channel::Reliable);
    let _ = sent(&mut s);
    assert_eq!(s.last_input(), 3);
    assert_eq!(
        s.pending_inputs()
            .map(|(seq, _, i)| (seq, *i))
            .collect::<Vec<_>>(),
        [(4, 30), (5, 40)]
    );
    let _ = s.push_input(T0, 50);
    assert_eq!(
        sent(&mut s),
        vec![(
            expect(4, &[(100, 30), (100, 40), (110, 50)]),
            Channel::Unreliable
        )]
    );
    for i in 0..40u8 {
        let _ = s.push_input(T0, i);
    }
    let msgs = sent(&mut s);
    let [(ClientMessage::Inputs(m), _)] = msgs.as_slice() else {
        panic!("{msgs:?}")
    };
    assert_eq!((m.first_seq, m.frames.len()), (15, 32));
}

#[test]
fn an_inputs_tick_is_the_estimated_server_tick() {
    let mut s = established();
    // Welcome at tick 100, 60 Hz: 500 ms later is tick 130.
    assert_eq!(s.estimated_tick(ms(500)), 130);
    let _ = s.push_input(ms(500), 1);
    let msgs = sent(&mut s);
    let [(ClientMessage::Inputs(m), _)] = msgs.as_slice() else {
        panic!("{msgs:?}")
    };
    assert_eq!(m.frames[0].tick, 130);
    s.handle_message(
        ms(1000),
        &snapshot(200, 0, None, &view(1, 0)),
        Channel::Reliable,
    );
    assert_eq!(s.estimated_tick(ms(1100)), 206);
    // Absurd clocks saturate instead of overflowing.
    assert_eq!(s.estimated_tick(Duration::MAX), u32::MAX);
}

#[test]
fn resume_restarts_sequences_and_drops_unapplied_inputs_and_baselines() {
    // PROTOCOL.md §7: the server restarts sequences on every connection.
    // Keeping the old ones would make it apply a resent input twice.
    let mut s = established();
    let _ = s.push_input(T0, 1);
    let _ = s.push_input(T0, 2);
    s.handle_message(T0, &snapshot(102, 1, None, &view(2, 0)), Channel::Reliable);
    let _ = sent(&mut s);
    s.handle_transport_closed(ms(5), None, "");
    let c = closed(&mut s);
    assert_eq!(
        (c.code, c.retry, c.local),
        (CloseCode::Other(1006), true, false)
    );
    s.resume(ms(10));
    let msgs = sent(&mut s);
    let [(ClientMessage::Hello(h), Channel::Reliable)] = msgs.as_slice() else {
        panic!("{msgs:?}")
    };
    assert_eq!(h.resume_token, Some(ResumeToken([7; 16])));
    assert!(s.world().is_empty() && s.world().tick().is_none());
    assert_eq!(s.pending_inputs().len(), 0);
    s.handle_message(ms(20), &welcome(true), Channel::Reliable);
    assert!(matches!(events(&mut s).as_slice(), [Event::Welcome(w)] if w.resumed));
    assert_eq!(s.push_input(ms(20), 3), Some(1));
    assert_eq!(s.last_input(), 0);
}

#[test]
fn pings_measure_rtt_and_server_pings_are_answered() {
    let mut s = Session::new(
        T0,
        Hello::new(TestGame::PROTOCOL_HASH),
        ClientConfig::default(),
    );
    let _ = sent(&mut s);
    s.handle_message(ms(1000), &welcome(false), Channel::Reliable);
    let _ = events(&mut s);
    assert_eq!(s.poll_timeout(), Some(ms(1000)));
    s.handle_timeout(ms(1000));
    let msgs = sent(&mut s);
    let [(ClientMessage::Ping { nonce }, Channel::Reliable)] = msgs.as_slice() else {
        panic!("{msgs:?}")
    };
    s.handle_timeout(ms(1500));
    assert!(sent(&mut s).is_empty(), "one ping per second");
    assert_eq!(s.poll_timeout(), Some(ms(2000)));
    s.handle_message(
        ms(1080),
        &Msg::Pong { nonce: *nonce }.to_bytes().unwrap(),
        Channel::Reliable,
    );
    assert_eq!(events(&mut s), vec![Event::Rtt(ms(80))]);
    assert_eq!(s.rtt(), Some(ms(80)));
    s.handle_message(
        ms(1100),
        &Msg::Pong { nonce: 999 }.to_bytes().unwrap(),
        Channel::Reliable,
    );
    assert!(events(&mut s).is_empty());
    s.handle_message(
        ms(1200),
        &Msg::Ping { nonce: 42 }.to_bytes().unwrap(),
        Channel::Reliable,
    );
    assert_eq!(
        sent(&mut s),
        vec![(ClientMessage::Pong { nonce: 42 }, Channel::Reliable)]
    );
}

#[test]
fn timeouts_end_the_session_locally() {
    let mut s = Session::new(T0, Hello::new(TestGame::PROTOCOL_HASH), config());
    assert_eq!(s.poll_timeout(), Some(Duration::from_secs(10)));
    s.handle_timeout(Duration::from_secs(10));
    let c = closed(&mut s);
    assert_eq!(
        (c.code, c.local, c.retry),
        (CloseCode::HandshakeTimeout, true, true)
    );
    assert_eq!(s.poll_timeout(), None);

    let mut s = established();
    s.handle_timeout(Duration::from_secs(9));
    assert!(!s.is_closed());
    s.handle_timeout(Duration::from_secs(10));
    assert_eq!(closed(&mut s).code, CloseCode::IdleTimeout);
}

#[test]
fn leave_sends_nothing_after_it_and_ends_on_the_servers_close() {
    let mut s = established();
    let _ = s.push_input(T0, 1);
    s.leave(T0);
    assert_eq!(s.push_input(T0, 2), None);
    // The queued inputs are dropped: nothing of the game follows Leave.
    assert_eq!(
        sent(&mut s),
        vec![(ClientMessage::Leave, Channel::Reliable)]
    );
    s.handle_message(T0, &snapshot(102, 0, None, &view(1, 0)), Channel::Reliable);
    assert!(sent(&mut s).is_empty(), "no ack after Leave");
    let close = Msg::Close(Close {
        code: CloseCode::Normal,
        reason: "goodbye".into(),
    });
    s.handle_message(T0, &close.to_bytes().unwrap(), Channel::Reliable);
    let c = closed(&mut s);
    assert_eq!(
        (c.code, c.local, c.retry),
        (CloseCode::Normal, false, false)
    );
    // The close frame that follows changes nothing.
    s.handle_transport_closed(T0, Some(1000), "goodbye");
    assert!(events(&mut s).is_empty());
}

#[test]
fn rejects_closes_and_events_surface_as_events() {
    let mut s = Session::new(T0, Hello::new(TestGame::PROTOCOL_HASH), config());
    let reject = Msg::Reject(Reject {
        code: RejectCode::ServerFull,
        message: "full".into(),
    });
    s.handle_message(T0, &reject.to_bytes().unwrap(), Channel::Reliable);
    assert_eq!(
        closed(&mut s),
        Closed {
            code: CloseCode::Rejected,
            reason: "full".into(),
            reject: Some(RejectCode::ServerFull),
            local: false,
            retry: true,
        }
    );
    let mut s = Session::new(T0, Hello::new(TestGame::PROTOCOL_HASH), config());
    let reject = Msg::Reject(Reject {
        code: RejectCode::GameMismatch,
        message: "other game".into(),
    });
    s.handle_message(T0, &reject.to_bytes().unwrap(), Channel::Reliable);
    assert!(!closed(&mut s).retry);

    let mut s = established();
    s.handle_message(
        T0,
        &Msg::Events(vec!["hi".into()]).to_bytes().unwrap(),
        Channel::Reliable,
    );
    assert_eq!(events(&mut s), vec![Event::Events(vec!["hi".to_owned()])]);
    let close = Msg::Close(Close {
        code: CloseCode::Kicked,
        reason: "bye".into(),
    });
    s.handle_message(T0, &close.to_bytes().unwrap(), Channel::Reliable);
    let c = closed(&mut s);
    assert_eq!((c.code, c.retry), (CloseCode::Kicked, false));
}

#[test]
fn datagrams_before_the_welcome_are_ignored() {
    let mut s = Session::new(T0, Hello::new(TestGame::PROTOCOL_HASH), config());
    let _ = sent(&mut s);
    s.handle_message(T0, &snapshot(1, 0, None, &view(1, 0)), Channel::Unreliable);
    assert!(events(&mut s).is_empty() && !s.is_closed());
    // The same message on the stream is a protocol error (PROTOCOL.md §6.2).
    s.handle_message(T0, &snapshot(1, 0, None, &view(1, 0)), Channel::Reliable);
    assert_eq!(closed(&mut s).code, CloseCode::ProtocolError);
}

#[test]
fn hostile_bytes_close_the_session_and_never_panic() {
    let mut s = established();
    s.handle_message(T0, &[0xff, 1, 2], Channel::Reliable);
    assert_eq!(closed(&mut s).code, CloseCode::ProtocolError);
    let mut s = established();
    s.handle_message(T0, &vec![2; (1 << 20) + 1], Channel::Reliable);
    assert_eq!(closed(&mut s).code, CloseCode::MessageTooBig);
    let mut s = established();
    s.handle_message(T0, &welcome(false), Channel::Reliable);
    assert_eq!(closed(&mut s).code, CloseCode::ProtocolError);
    // Deterministic pseudo-random garbage, on fresh and used sessions.
    let mut x = 0x9e37_79b9_u32;
    for len in 0..3000usize {
        let bytes: Vec<u8> = (0..len % 64)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x & 0xff) as u8
            })
            .collect();
        let mut s = established();
        s.handle_message(T0, &snapshot(101, 0, None, &view(3, 1)), Channel::Reliable);
        s.handle_message(T0, &bytes, Channel::Reliable);
        let mut with_tag = vec![2, 102, 0, 1, 101];
        with_tag.extend_from_slice(&bytes);
        s.handle_message(T0, &with_tag, Channel::Unreliable);
        let _ = events(&mut s);
    }
}

/// Where the server grants implicit acks, snapshots on the reliable channel
/// are not acknowledged (the server counted them when it wrote them);
/// datagram snapshots still are, and without the grant every one is.
#[test]
fn implicit_acks_send_no_ack_for_reliable_snapshots_once_granted() {
    let v1 = view(3, 1);
    let v2 = view(3, 2);
    for (answer, config) in [
        (Some(true), config()),
        (Some(false), config()),
        (None, config()),
        (Some(true), config().with_implicit_acks(false)),
    ] {
        let mut s = Session::new(T0, Hello::new(TestGame::PROTOCOL_HASH), config.clone());
        let hello = sent(&mut s);
        assert!(
            matches!(&hello[..], [(ClientMessage::Hello(h), _)] if h.implicit_acks == config.implicit_acks),
            "{hello:?}"
        );
        s.handle_message(T0, &welcome_answering(false, answer), Channel::Reliable);
        let _ = events(&mut s);
        s.handle_message(ms(1), &snapshot(102, 0, None, &v1), Channel::Reliable);
        s.handle_message(
            ms(2),
            &snapshot(104, 0, Some((102, &v1)), &v2),
            Channel::Reliable,
        );
        s.handle_timeout(ms(500));
        let acks = sent(&mut s);
        if answer == Some(true) {
            assert_eq!(acks, vec![], "{answer:?}");
            // A datagram snapshot is acknowledged as usual.
            s.handle_message(
                ms(3),
                &snapshot(106, 0, Some((104, &v2)), &v1),
                Channel::Unreliable,
            );
            assert_eq!(sent(&mut s), vec![ack(106)]);
        } else {
            // One queued ack names the newest applied tick.
            assert_eq!(acks, vec![ack(104)], "{answer:?}");
        }
        assert_eq!(
            s.world().to_snapshot(),
            if answer == Some(true) {
                v1.clone()
            } else {
                v2.clone()
            }
        );
    }
}
