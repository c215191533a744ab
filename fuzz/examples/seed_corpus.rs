//! Writes the seed corpora: a few valid encodings per target into
//! `fuzz/corpus/<target>/seed-NN`. Run from `fuzz/`:
//!
//! ```text
//! cargo run --example seed_corpus
//! ```
//!
//! Deterministic: running it again rewrites the same files.

use std::fs;
use std::path::Path;

use tickwire_fuzz::{Event, GAME_HASH, Input, baseline, full_body, variations};
use tickwire_shared::message::{Close, Reject};
use tickwire_shared::quantize::Angle16;
use tickwire_shared::{
    ClientMessage, CloseCode, Hello, InputFrame, Inputs, NetId, PROTOCOL_VERSION, RejectCode,
    ResumeToken, ServerMessage, SnapshotFrame, SnapshotHeader, Welcome, delta,
};

fn write(target: &str, seeds: &[Vec<u8>]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).expect("create corpus dir");
    for (i, bytes) in seeds.iter().enumerate() {
        fs::write(dir.join(format!("seed-{i:02}")), bytes).expect("write seed");
    }
    println!("{target}: {} seeds", seeds.len());
}

fn hellos() -> Vec<Hello> {
    let mut full = Hello::new(GAME_HASH);
    full.room = Some("lobby-1".into());
    full.auth_token = Some("ok-secret".into());
    full.resume_token = Some(ResumeToken::from_random([0xab; 16]));
    let mut denied = Hello::new(GAME_HASH);
    denied.auth_token = Some("wrong".into());
    denied.room = Some("Zoë's room 😀".into());
    let mut old = Hello::new(GAME_HASH);
    old.protocol_version = PROTOCOL_VERSION.wrapping_add(1);
    vec![Hello::new(GAME_HASH), full, denied, old, Hello::new(1)]
}

fn client_messages() -> Vec<Vec<u8>> {
    let input = |i: u8| Input {
        buttons: i,
        aim: Angle16(u16::from(i) * 1000),
        move_x: -1,
        move_y: 1,
        target: i.is_multiple_of(2).then_some(u32::from(i) * 300),
    };
    let mut msgs: Vec<ClientMessage<Input>> =
        hellos().into_iter().map(ClientMessage::Hello).collect();
    msgs.push(ClientMessage::Inputs(Inputs {
        first_seq: 1,
        frames: (0..4)
            .map(|i| InputFrame {
                tick: 100 + u32::from(i),
                input: input(i),
            })
            .collect(),
    }));
    msgs.push(ClientMessage::Ack {
        snapshot_tick: 70_000,
    });
    msgs.push(ClientMessage::Ping { nonce: 7 });
    msgs.push(ClientMessage::Pong { nonce: u32::MAX });
    msgs.push(ClientMessage::Leave);
    msgs.iter().map(|m| m.to_bytes().unwrap()).collect()
}

fn snapshot_message(tick: u32, baseline_tick: Option<u32>, body: &[u8]) -> Vec<u8> {
    ServerMessage::<Event>::Snapshot(SnapshotFrame {
        header: SnapshotHeader {
            tick,
            last_input: tick / 2,
            baseline: baseline_tick,
        },
        body,
    })
    .to_bytes()
    .unwrap()
}

fn server_messages() -> Vec<Vec<u8>> {
    let base = baseline();
    let mut out = [
        ServerMessage::<Event>::Welcome(Welcome {
            client_id: 42,
            tick_rate: 60,
            tick: 1000,
            snapshot_interval: 2,
            resume_token: ResumeToken::from_random([0xcd; 16]),
            room: "lobby".into(),
            resumed: false,
            implicit_acks: None,
        }),
        ServerMessage::Reject(Reject {
            code: RejectCode::GameMismatch,
            message: "update the client".into(),
        }),
        ServerMessage::Events(vec![
            Event::Chat {
                from: 3,
                text: "gg".into(),
            },
            Event::Kill {
                killer: NetId(1),
                victim: NetId(600),
                weapon: 2,
            },
            Event::Scores(vec![(1, 10), (2, -3)]),
            Event::RoundOver,
        ]),
        ServerMessage::Ping { nonce: 1 },
        ServerMessage::Pong { nonce: 2 },
        ServerMessage::Close(Close {
            code: CloseCode::IdleTimeout,
            reason: "idle".into(),
        }),
    ]
    .iter()
    .map(|m| m.to_bytes().unwrap())
    .collect::<Vec<_>>();
    out.push(snapshot_message(10, None, &full_body(base)));
    for (i, view) in variations(base).iter().enumerate() {
        let body = delta::diff(base, view).unwrap();
        out.push(snapshot_message(20 + i as u32, Some(10), &body));
    }
    out
}

fn deltas() -> Vec<Vec<u8>> {
    let base = baseline();
    variations(base)
        .iter()
        .map(|view| delta::diff(base, view).unwrap())
        .collect()
}

fn handshake() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = hellos()
        .into_iter()
        .map(|h| ClientMessage::<Input>::Hello(h).to_bytes().unwrap())
        .collect();
    out.extend(server_messages().into_iter().take(3));
    out
}

/// Structured input is raw entropy for `arbitrary`: a few deterministic
/// pseudo-random byte strings of different lengths.
fn entropy() -> Vec<Vec<u8>> {
    entropy_of(0x9e37_79b9_7f4a_7c15, &[64, 256, 1024, 4096])
}

/// `client_session` operation sequences: entropy whose first byte picks
/// each game (in-place or serde patches) and setting combination.
fn session_ops() -> Vec<Vec<u8>> {
    entropy_of(
        0x2545_f491_4f6c_dd1d,
        &[128, 512, 512, 1024, 2048, 4096, 4096, 4096],
    )
    .into_iter()
    .enumerate()
    .map(|(i, mut bytes)| {
        bytes[0] = [0x00, 0x01, 0x02, 0x13, 0x26, 0x47, 0x08, 0x79][i];
        bytes
    })
    .collect()
}

fn entropy_of(mut state: u64, lens: &[usize]) -> Vec<Vec<u8>> {
    lens.iter()
        .map(|&len| {
            (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    (state >> 56) as u8
                })
                .collect()
        })
        .collect()
}

fn main() {
    write("client_message", &client_messages());
    write("server_message", &server_messages());
    write("delta_apply", &deltas());
    write("handshake", &handshake());
    write("roundtrip_delta", &entropy());
    write("client_session", &session_ops());
}
