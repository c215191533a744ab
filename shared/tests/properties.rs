//! Property tests of the wire protocol, on a realistic game entity type.
//!
//! * deltas: `apply(b, diff(b, c)) == c`, their size against full snapshots,
//!   and the cost of one small move;
//! * messages: every client and server message round-trips, snapshot
//!   messages included (full and delta);
//! * hostile input: arbitrary and mutated bytes never panic any decoder, and
//!   whatever decodes re-encodes to the same value;
//! * regressions found by fuzzing (`fuzz/`) and known bugs.
//!
//! The whole file runs in a few seconds in debug builds; `PROPTEST_CASES=5000`
//! runs every property that many times.

use std::collections::BTreeMap;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::Index;
use serde::{Deserialize, Serialize};
use tickwire_shared::codec::{Reader, Writer};
use tickwire_shared::delta::{self, DeltaMemo, DeltaScratch, DeltaStats};
use tickwire_shared::handshake::{ClientHandshake, HandshakeError, ServerHandshake};
use tickwire_shared::idset::IdSet;
use tickwire_shared::message::{Close, Reject};
use tickwire_shared::quantize::{Angle16, QVec2};
use tickwire_shared::snapshot::{read_full, write_full};
use tickwire_shared::{
    ClientMessage, CloseCode, DecodeError, Hello, InputFrame, Inputs, Limits, NetId,
    PROTOCOL_VERSION, RejectCode, ResumeToken, ServerMessage, Snapshot, SnapshotFrame,
    SnapshotHeader, Welcome,
};

// ---------------------------------------------------------------------------
// The game's types.
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Kind {
    Player,
    Projectile,
    Pickup,
}

/// A replicated entity: flattens to 10 fields (`owner: None`) or 11, so its
/// field mask is 2 bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Ent {
    kind: Kind,
    pos: QVec2<16>,
    angle: Angle16,
    health: u8,
    name: String,
    owner: Option<u32>,
    vel: (i16, i16),
    alive: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Input {
    buttons: u8,
    aim: Angle16,
    move_x: i8,
    move_y: i8,
    target: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Event {
    Chat {
        from: u32,
        text: String,
    },
    Kill {
        killer: NetId,
        victim: NetId,
        weapon: u8,
    },
    Scores(Vec<(u32, i32)>),
    RoundOver,
}

type World = BTreeMap<u32, Ent>;

const GAME_HASH: u64 = 0x5eed_cafe_f00d_0001;

// ---------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------

/// Bytes of a varint as documented in `codec`.
fn varint_len(v: u64) -> usize {
    match v {
        0..=250 => 1,
        251..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// The entities of `b` and of `c` that the masks keep (an entity past a
/// mask's end is kept), the current ones with their positions in `c`.
#[allow(clippy::type_complexity)]
fn masked_views<'a>(
    b: &'a Snapshot<Ent>,
    c: &'a Snapshot<Ent>,
    base_mask: &[bool],
    cur_mask: &[bool],
) -> (Vec<(NetId, &'a Ent)>, Vec<(NetId, &'a Ent, usize)>) {
    let keep = |mask: &[bool], i: usize| mask.get(i).copied().unwrap_or(true);
    let base = b
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(base_mask, *i))
        .map(|(_, e)| e)
        .collect();
    let cur = c
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(cur_mask, *i))
        .map(|(i, (id, e))| (id, e, i))
        .collect();
    (base, cur)
}

/// The three worlds as snapshots, their ids renumbered by rank, in order,
/// to make them dense (as a room's are).
fn dense_snapshots(worlds: [&World; 3]) -> [Snapshot<Ent>; 3] {
    let ranks: BTreeMap<u32, u32> = worlds
        .iter()
        .flat_map(|w| w.keys())
        .copied()
        .collect::<std::collections::BTreeSet<u32>>()
        .into_iter()
        .zip(1..)
        .collect();
    worlds.map(|w| {
        let dense: World = w.iter().map(|(id, e)| (ranks[id], e.clone())).collect();
        snapshot(&dense)
    })
}

/// The plain encoder's delta between two views.
fn plain_delta(
    base: &[(NetId, &Ent)],
    cur: &[(NetId, &Ent, usize)],
    max_fields: usize,
) -> (Writer, DeltaStats) {
    let mut w = Writer::new();
    let stats = delta::write_delta(
        &mut w,
        base.iter().copied(),
        cur.iter().map(|(id, e, _)| (*id, *e)),
        &mut DeltaScratch::default(),
        max_fields,
    )
    .unwrap();
    (w, stats)
}

fn snapshot(world: &World) -> Snapshot<Ent> {
    Snapshot::from_vec(
        world
            .iter()
            .map(|(id, e)| (NetId(*id), e.clone()))
            .collect(),
    )
    .expect("map keys are unique")
}

fn full_body(s: &Snapshot<Ent>) -> Vec<u8> {
    let mut w = Writer::new();
    write_full(&mut w, s.iter()).unwrap();
    w.into_vec()
}

/// The delta body with its stats, through the per-tick entry point.
fn delta_with_stats(b: &Snapshot<Ent>, c: &Snapshot<Ent>) -> (Vec<u8>, DeltaStats) {
    let mut w = Writer::new();
    let stats = delta::write_delta(
        &mut w,
        b.iter(),
        c.iter(),
        &mut DeltaScratch::default(),
        Limits::default().max_fields_per_entity,
    )
    .unwrap();
    (w.into_vec(), stats)
}

fn is_strictly_sorted<S>(s: &Snapshot<S>) -> bool {
    s.as_slice().windows(2).all(|w| w[0].0 < w[1].0)
}

/// Every decoded snapshot must be a valid one: sorted, unique ids, within limits.
fn check_snapshot_invariants(s: &Snapshot<Ent>, limits: &Limits) -> Result<(), TestCaseError> {
    prop_assert!(is_strictly_sorted(s), "ids not strictly increasing");
    prop_assert!(s.len() <= limits.max_entities_per_snapshot);
    // What decoded must encode and decode to itself.
    let body = full_body(s);
    let back: Snapshot<Ent> = read_full(&mut Reader::new(&body), limits).unwrap();
    prop_assert_eq!(&back, s);
    Ok(())
}

fn server_frame(bytes: &[u8]) -> SnapshotFrame<'_> {
    match ServerMessage::<Event>::decode(bytes, &Limits::default()) {
        Ok(ServerMessage::Snapshot(f)) => f,
        other => panic!("expected a snapshot message, got {other:?}"),
    }
}

/// A fixed, non-trivial baseline with every layout the entity type has.
fn fixed_world() -> Snapshot<Ent> {
    let ids = [
        0u32,
        1,
        2,
        7,
        200,
        250,
        251,
        252,
        600,
        65_535,
        65_536,
        70_000,
        1 << 24,
        u32::MAX - 1,
        u32::MAX,
    ];
    let kinds = [Kind::Player, Kind::Projectile, Kind::Pickup];
    let names = ["", "a", "bob", "Zoë", "😀 rocket", "x".repeat(40).leak()];
    let world: World = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| {
            let i32i = i as i32;
            let ent = Ent {
                kind: kinds[i % 3],
                pos: QVec2 {
                    x: i32i * 1000 - 7000,
                    y: if i % 4 == 0 {
                        i32::MIN + i32i
                    } else {
                        -i32i * 33
                    },
                },
                angle: Angle16((i as u16).wrapping_mul(9000)),
                health: (i * 37) as u8,
                name: names[i % names.len()].to_owned(),
                owner: if i % 2 == 0 { None } else { Some(id ^ 0x55) },
                vel: ((i32i * 500 - 3000) as i16, -(i32i * 7) as i16),
                alive: i % 3 != 0,
            };
            (id, ent)
        })
        .collect();
    snapshot(&world)
}

// ---------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Player),
        Just(Kind::Projectile),
        Just(Kind::Pickup)
    ]
}

/// Positions in 1/16 units: mostly an arena of ±500 units, sometimes anything.
fn coord() -> impl Strategy<Value = i32> {
    prop_oneof![4 => -8000i32..8000, 1 => any::<i32>()]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z]{0,12}", "\\PC{0,16}"]
}

fn owner() -> impl Strategy<Value = Option<u32>> {
    proptest::option::of(prop_oneof![0u32..300, any::<u32>()])
}

prop_compose! {
    fn ent()(
        kind in kind(),
        x in coord(),
        y in coord(),
        angle in any::<u16>(),
        health in any::<u8>(),
        name in name(),
        owner in owner(),
        vel in any::<(i16, i16)>(),
        alive in any::<bool>(),
    ) -> Ent {
        Ent { kind, pos: QVec2 { x, y }, angle: Angle16(angle), health, name, owner, vel, alive }
    }
}

/// Sparse ids: dense clusters, medium gaps, and anything up to `u32::MAX`.
fn net_id() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0u32..600, 3 => 0u32..100_000, 1 => any::<u32>()]
}

fn world(max: usize) -> impl Strategy<Value = World> {
    btree_map(net_id(), ent(), 0..max)
}

/// What happens to one baseline entity.
#[derive(Debug, Clone)]
enum Op {
    Keep,
    Despawn,
    Change(Change),
}

/// A change of some fields; `owner` and `name` may change the layout or length.
#[derive(Debug, Clone)]
struct Change {
    kind: Option<Kind>,
    step: Option<(i32, i32)>,
    turn: Option<u16>,
    health: Option<u8>,
    name: Option<String>,
    owner: Option<Option<u32>>,
    vel: Option<(i16, i16)>,
    flip_alive: bool,
}

fn change() -> impl Strategy<Value = Change> {
    use proptest::option::weighted;
    let step = prop_oneof![4 => (-64i32..64, -64i32..64), 1 => any::<(i32, i32)>()];
    let turn = prop_oneof![3 => (0u16..500).prop_map(|t| t.wrapping_sub(250)), 1 => any::<u16>()];
    (
        weighted(0.2, kind()),
        weighted(0.6, step),
        weighted(0.5, turn),
        weighted(0.3, any::<u8>()),
        weighted(0.15, name()),
        weighted(0.2, owner()),
        weighted(0.3, any::<(i16, i16)>()),
        proptest::bool::weighted(0.1),
    )
        .prop_map(
            |(kind, step, turn, health, name, owner, vel, flip_alive)| Change {
                kind,
                step,
                turn,
                health,
                name,
                owner,
                vel,
                flip_alive,
            },
        )
}

impl Change {
    fn apply(&self, e: &mut Ent) {
        if let Some(k) = self.kind {
            e.kind = k;
        }
        if let Some((dx, dy)) = self.step {
            e.pos.x = e.pos.x.wrapping_add(dx);
            e.pos.y = e.pos.y.wrapping_add(dy);
        }
        if let Some(t) = self.turn {
            e.angle = Angle16(e.angle.0.wrapping_add(t));
        }
        if let Some(h) = self.health {
            e.health = h;
        }
        if let Some(n) = &self.name {
            e.name.clone_from(n);
        }
        if let Some(o) = self.owner {
            e.owner = o;
        }
        if let Some(v) = self.vel {
            e.vel = v;
        }
        e.alive ^= self.flip_alive;
    }
}

/// A baseline and a current view derived from it by despawns (when
/// `removals`), changes and spawns.
fn derived_pair(removals: bool, max: usize) -> impl Strategy<Value = (World, World)> {
    world(max)
        .prop_flat_map(move |base| {
            let op = if removals {
                prop_oneof![
                    3 => Just(Op::Keep),
                    1 => Just(Op::Despawn),
                    3 => change().prop_map(Op::Change),
                ]
                .boxed()
            } else {
                prop_oneof![
                    1 => Just(Op::Keep),
                    1 => change().prop_map(Op::Change),
                ]
                .boxed()
            };
            let n = base.len();
            (Just(base), vec(op, n), btree_map(net_id(), ent(), 0..40))
        })
        .prop_map(|(base, ops, spawns)| {
            let mut cur = World::new();
            for ((id, e), op) in base.iter().zip(&ops) {
                match op {
                    Op::Keep => {
                        cur.insert(*id, e.clone());
                    }
                    Op::Despawn => {}
                    Op::Change(c) => {
                        let mut e = e.clone();
                        c.apply(&mut e);
                        cur.insert(*id, e);
                    }
                }
            }
            for (id, e) in spawns {
                if !base.contains_key(&id) {
                    cur.insert(id, e);
                }
            }
            (base, cur)
        })
}

fn text() -> impl Strategy<Value = String> {
    // Up to 64 scalar values is up to 256 bytes: the default text limit.
    prop_oneof![4 => "\\PC{0,64}", 1 => "[a-z]{256}"]
}

fn hello() -> impl Strategy<Value = Hello> {
    (
        prop_oneof![3 => Just(PROTOCOL_VERSION), 1 => any::<u16>()],
        prop_oneof![3 => Just(GAME_HASH), 1 => any::<u64>()],
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(any::<[u8; 16]>()),
        proptest::option::of(text()),
        any::<bool>(),
    )
        .prop_map(
            |(protocol_version, game_hash, room, auth_token, token, seat_token, implicit_acks)| {
                Hello {
                    protocol_version,
                    game_hash,
                    room,
                    auth_token,
                    resume_token: token.map(ResumeToken::from_random),
                    seat_token,
                    implicit_acks,
                }
            },
        )
}

prop_compose! {
    fn input()(
        buttons in any::<u8>(),
        aim in any::<u16>(),
        move_x in any::<i8>(),
        move_y in any::<i8>(),
        target in proptest::option::of(any::<u32>()),
    ) -> Input {
        Input { buttons, aim: Angle16(aim), move_x, move_y, target }
    }
}

fn client_message() -> impl Strategy<Value = ClientMessage<Input>> {
    let max_inputs = Limits::default().max_inputs_per_message;
    prop_oneof![
        hello().prop_map(ClientMessage::Hello),
        (
            any::<u32>(),
            vec(
                (any::<u32>(), input()).prop_map(|(tick, input)| InputFrame { tick, input }),
                0..=max_inputs
            )
        )
            .prop_map(|(first_seq, frames)| ClientMessage::Inputs(Inputs { first_seq, frames })),
        any::<u32>().prop_map(|snapshot_tick| ClientMessage::Ack { snapshot_tick }),
        any::<u32>().prop_map(|nonce| ClientMessage::Ping { nonce }),
        any::<u32>().prop_map(|nonce| ClientMessage::Pong { nonce }),
        Just(ClientMessage::Leave),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (any::<u32>(), "\\PC{0,24}").prop_map(|(from, text)| Event::Chat { from, text }),
        (any::<u32>(), any::<u32>(), any::<u8>()).prop_map(|(k, v, weapon)| Event::Kill {
            killer: NetId(k),
            victim: NetId(v),
            weapon
        }),
        vec(any::<(u32, i32)>(), 0..8).prop_map(Event::Scores),
        Just(Event::RoundOver),
    ]
}

/// An owned server message (a snapshot borrows its body).
#[derive(Debug, Clone)]
enum OwnedServerMessage {
    Welcome(Welcome),
    Reject(Reject),
    Snapshot(SnapshotHeader, Vec<u8>),
    Events(Vec<Event>),
    Ping(u32),
    Pong(u32),
    Close(Close),
}

impl OwnedServerMessage {
    fn borrow(&self) -> ServerMessage<'_, Event> {
        match self {
            Self::Welcome(w) => ServerMessage::Welcome(w.clone()),
            Self::Reject(r) => ServerMessage::Reject(r.clone()),
            Self::Snapshot(header, body) => ServerMessage::Snapshot(SnapshotFrame {
                header: *header,
                body,
            }),
            Self::Events(e) => ServerMessage::Events(e.clone()),
            Self::Ping(nonce) => ServerMessage::Ping { nonce: *nonce },
            Self::Pong(nonce) => ServerMessage::Pong { nonce: *nonce },
            Self::Close(c) => ServerMessage::Close(c.clone()),
        }
    }
}

fn header() -> impl Strategy<Value = SnapshotHeader> {
    (
        any::<u32>(),
        any::<u32>(),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(|(tick, last_input, baseline)| SnapshotHeader {
            tick,
            last_input,
            baseline,
        })
}

fn welcome() -> impl Strategy<Value = Welcome> {
    (
        any::<u32>(),
        1u16..,
        any::<u32>(),
        1u16..,
        any::<[u8; 16]>(),
        text(),
        any::<bool>(),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |(
                client_id,
                tick_rate,
                tick,
                snapshot_interval,
                token,
                room,
                resumed,
                implicit_acks,
            )| {
                Welcome {
                    client_id,
                    tick_rate,
                    tick,
                    snapshot_interval,
                    resume_token: ResumeToken::from_random(token),
                    room,
                    resumed,
                    implicit_acks,
                }
            },
        )
}

fn server_message() -> impl Strategy<Value = OwnedServerMessage> {
    let max_events = Limits::default().max_events_per_message;
    prop_oneof![
        welcome().prop_map(OwnedServerMessage::Welcome),
        // Codes are canonical: `from_u16` never yields `Other(1)`.
        (any::<u16>(), text()).prop_map(|(c, message)| OwnedServerMessage::Reject(Reject {
            code: RejectCode::from_u16(c),
            message
        })),
        (header(), vec(any::<u8>(), 0..256))
            .prop_map(|(h, body)| OwnedServerMessage::Snapshot(h, body)),
        vec(event(), 0..=max_events).prop_map(OwnedServerMessage::Events),
        any::<u32>().prop_map(OwnedServerMessage::Ping),
        any::<u32>().prop_map(OwnedServerMessage::Pong),
        (any::<u16>(), text()).prop_map(|(c, reason)| OwnedServerMessage::Close(Close {
            code: CloseCode::from_u16(c),
            reason
        })),
    ]
}

/// One edit of an encoding.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, bit)| Mutation::Flip(i, 1 << bit)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => any::<Index>().prop_map(Mutation::Delete),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let len = bytes.len();
        match m {
            Mutation::Insert(i, b) => bytes.insert(i.index(len + 1), *b),
            _ if len == 0 => {}
            Mutation::Flip(i, mask) => bytes[i.index(len)] ^= mask,
            Mutation::Set(i, b) => bytes[i.index(len)] = *b,
            Mutation::Delete(i) => {
                bytes.remove(i.index(len));
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(len)),
        }
    }
}

/// `cases` unless `PROPTEST_CASES` asks for another count (for long local runs).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // Failures become explicit regression tests at the end of this file.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Deltas.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(96))]

    #[test]
    fn apply_of_diff_restores_a_derived_view((base, cur) in derived_pair(true, 300)) {
        let (b, c) = (snapshot(&base), snapshot(&cur));
        let bytes = delta::diff(&b, &c).unwrap();
        let (via_scratch, stats) = delta_with_stats(&b, &c);
        prop_assert_eq!(&bytes, &via_scratch, "diff and write_delta disagree");
        prop_assert_eq!(
            stats.unchanged + stats.patched + stats.full,
            c.len(),
            "every current entity is counted once: {:?}", stats
        );
        prop_assert_eq!(
            stats.removed,
            b.iter().filter(|(id, _)| c.get(*id).is_none()).count()
        );
        prop_assert_eq!(
            stats.unchanged,
            c.iter().filter(|(id, e)| b.get(*id) == Some(e)).count()
        );
        prop_assert_eq!(delta::apply(&b, &bytes, &Limits::default()).unwrap(), c);
    }

    /// The server shares per-entity work between clients through a
    /// `DeltaMemo`: whatever the views, the baselines and the order of the
    /// clients, the bytes are exactly those of the plain encoders.
    #[test]
    fn memoized_deltas_and_full_snapshots_equal_the_plain_ones(
        (base, cur) in derived_pair(true, 300),
        other in world(300),
        clients in vec((vec(any::<bool>(), 340), vec(any::<bool>(), 340), any::<bool>()), 1..6),
    ) {
        let (b1, c, b2) = (snapshot(&base), snapshot(&cur), snapshot(&other));
        let max = Limits::default().max_fields_per_entity;
        let mut memo = DeltaMemo::default();
        memo.reset(c.len());
        let mut scratch = DeltaScratch::default();
        for (cur_mask, base_mask, second) in clients {
            let (tick, b) = if second { (2, &b2) } else { (1, &b1) };
            let (base_view, cur_view) = masked_views(b, &c, &base_mask, &cur_mask);
            let (plain, plain_stats) = plain_delta(&base_view, &cur_view, max);
            let mut memoized = Writer::new();
            let memo_stats = delta::write_delta_memo(
                &mut memoized,
                base_view.iter().copied(),
                cur_view.iter().copied(),
                tick,
                &mut memo,
                &mut scratch,
                max,
                None,
            )
            .unwrap();
            prop_assert_eq!(plain.as_slice(), memoized.as_slice());
            prop_assert_eq!(plain_stats, memo_stats);
            let (mut plain, mut memoized) = (Writer::new(), Writer::new());
            write_full(&mut plain, cur_view.iter().map(|(id, e, _)| (*id, *e))).unwrap();
            delta::write_full_memo(&mut memoized, cur_view.iter().copied(), &mut memo).unwrap();
            prop_assert_eq!(plain.as_slice(), memoized.as_slice());
        }
    }

    /// The server's walk over id sets (views as one bit per id, for a room's
    /// small, reused ids) writes the plain encoder's bytes too. The worlds'
    /// ids are renumbered by rank, in order, to make them dense.
    #[test]
    fn deltas_from_id_sets_equal_the_plain_ones(
        (base, cur) in derived_pair(true, 300),
        other in world(300),
        clients in vec((vec(any::<bool>(), 340), vec(any::<bool>(), 340), any::<bool>()), 1..6),
    ) {
        let (b1, c, b2) = dense_snapshots([&base, &cur, &other]).into();
        let max = Limits::default().max_fields_per_entity;
        let mut memo = DeltaMemo::default();
        memo.reset(c.len());
        let mut scratch = DeltaScratch::default();
        let mut cur_ids = IdSet::default();
        for (cur_mask, base_mask, second) in clients {
            let (tick, b) = if second { (2, &b2) } else { (1, &b1) };
            let (base_view, cur_view) = masked_views(b, &c, &base_mask, &cur_mask);
            let (plain, plain_stats) = plain_delta(&base_view, &cur_view, max);
            let base_ids: IdSet = base_view.iter().map(|(id, _)| *id).collect();
            let mut sets = Writer::new();
            cur_ids.clear();
            let sets_stats = delta::write_delta_memo_sets(
                &mut sets,
                b,
                &base_ids,
                cur_view.iter().copied(),
                &mut cur_ids,
                tick,
                &mut memo,
                &mut scratch,
                max,
                None,
            )
            .unwrap();
            prop_assert_eq!(plain.as_slice(), sets.as_slice());
            prop_assert_eq!(plain_stats, sets_stats);
            prop_assert_eq!(
                cur_ids.iter().collect::<Vec<_>>(),
                cur_view.iter().map(|(id, _, _)| *id).collect::<Vec<_>>()
            );
        }
    }

    /// The word-by-word walk (views, baseline views and changed entities as
    /// id sets) writes the plain encoder's bytes too, told exactly which
    /// entities changed or told every entity changed.
    #[test]
    fn deltas_word_by_word_equal_the_plain_ones(
        (base, cur) in derived_pair(true, 300),
        other in world(300),
        clients in vec((vec(any::<bool>(), 340), vec(any::<bool>(), 340), any::<bool>(), any::<bool>()), 1..6),
    ) {
        let (b1, c, b2) = dense_snapshots([&base, &cur, &other]).into();
        let max = Limits::default().max_fields_per_entity;
        let mut slot_of = vec![u32::MAX; c.as_slice().last().map_or(0, |(id, _)| id.0 as usize + 1)];
        for (i, (id, _)) in c.iter().enumerate() {
            slot_of[id.0 as usize] = i as u32;
        }
        let mut memo = DeltaMemo::default();
        memo.reset(c.len());
        let mut scratch = DeltaScratch::default();
        for (cur_mask, base_mask, second, all_changed) in clients {
            let (tick, b) = if second { (2, &b2) } else { (1, &b1) };
            let (base_view, cur_view) = masked_views(b, &c, &base_mask, &cur_mask);
            let (plain, plain_stats) = plain_delta(&base_view, &cur_view, max);
            let base_ids: IdSet = base_view.iter().map(|(id, _)| *id).collect();
            let view: IdSet = cur_view.iter().map(|(id, _, _)| *id).collect();
            let changed: IdSet = c
                .iter()
                .filter(|(id, e)| all_changed || b.get(*id) != Some(e))
                .map(|(id, _)| id)
                .collect();
            let mut words = Writer::new();
            let stats = delta::write_delta_memo_words(
                &mut words,
                b,
                &base_ids,
                &view,
                &changed,
                c.as_slice(),
                &slot_of,
                tick,
                &mut memo,
                &mut scratch,
                max,
                None,
            )
            .unwrap();
            prop_assert_eq!(plain.as_slice(), words.as_slice());
            prop_assert_eq!(plain_stats, stats);
        }
    }

    #[test]
    fn apply_of_diff_restores_an_independent_view(base in world(300), cur in world(300)) {
        let (b, c) = (snapshot(&base), snapshot(&cur));
        let bytes = delta::diff(&b, &c).unwrap();
        prop_assert_eq!(delta::apply(&b, &bytes, &Limits::default()).unwrap(), c);
    }

    /// Without removals a delta is at most 3 bytes larger than the full
    /// snapshot of the same view.
    ///
    /// Why (`delta.rs`): unchanged entities cost 0 bytes, a patch is sent only
    /// when strictly smaller than the state, and a full entry carries the same
    /// state bytes as in the full snapshot. The delta has three counts where
    /// the full body has one; with at most 340 entities (300 + 40 spawns) the
    /// extra counts cost at most 2 bytes (`0` is one byte, only one of
    /// `patched`/`full` can reach 251, and then the full count is 3 bytes too).
    /// So `+ 3` holds as long as the id bytes do not grow.
    ///
    /// They can today: ids are gap-encoded *per section*, so interleaved
    /// patched and full entities turn 1-byte gaps into 3-byte gaps, while a
    /// busy patch may save just 1 byte. On this generator's traffic the bytes
    /// patches save always pay for it (0 failures in 5,000 cases), but it is
    /// not a theorem of the current encoder:
    /// `known_bug_interleaved_sections_make_a_delta_larger_than_full` breaks
    /// it with 4 entities of this type. With the proposed fix (fall back to
    /// one full section when that is smaller) it is. What always holds today
    /// is `delta_is_bounded_by_ids_and_states_of_what_changed`.
    #[test]
    fn delta_without_removals_is_at_most_full_plus_3((base, cur) in derived_pair(false, 300)) {
        let (b, c) = (snapshot(&base), snapshot(&cur));
        let (bytes, stats) = delta_with_stats(&b, &c);
        prop_assert_eq!(stats.removed, 0);
        let full = full_body(&c);
        prop_assert!(
            bytes.len() <= full.len() + 3,
            "delta {} > full {} + 3 ({:?})", bytes.len(), full.len(), stats
        );
    }

    /// The bound that holds today, on any pair: each removed entity costs at
    /// most its id, each changed or new entity at most its id and its state,
    /// and a patched one strictly less (a patch is sent only when smaller than
    /// the state). An id costs at most its absolute varint: a gap within a
    /// section is never larger than the id itself. Unchanged entities cost 0.
    #[test]
    fn delta_is_bounded_by_ids_and_states_of_what_changed(
        (base, cur) in derived_pair(true, 300)
    ) {
        let (b, c) = (snapshot(&base), snapshot(&cur));
        let (bytes, stats) = delta_with_stats(&b, &c);
        let counts = varint_len(stats.removed as u64)
            + varint_len(stats.patched as u64)
            + varint_len(stats.full as u64);
        let removed: usize = b
            .iter()
            .filter(|(id, _)| c.get(*id).is_none())
            .map(|(id, _)| varint_len(u64::from(id.0)))
            .sum();
        let changed: usize = c
            .iter()
            .filter(|(id, e)| b.get(*id) != Some(e))
            .map(|(id, e)| {
                let mut w = Writer::new();
                w.value("state", e).unwrap();
                varint_len(u64::from(id.0)) + w.len()
            })
            .sum();
        prop_assert!(
            bytes.len() + stats.patched <= counts + removed + changed,
            "delta {} bytes, bound {} ({:?})",
            bytes.len(),
            counts + removed + changed - stats.patched,
            stats
        );
    }

    #[test]
    fn an_unchanged_view_costs_exactly_three_bytes(base in world(300)) {
        let b = snapshot(&base);
        let bytes = delta::diff(&b, &b.clone()).unwrap();
        prop_assert_eq!(bytes, vec![0u8, 0, 0]);
        let (_, stats) = delta_with_stats(&b, &b);
        prop_assert_eq!(stats.unchanged, b.len());
    }

    /// One entity moves at most 4/16 unit per axis and turns at most ±2°.
    ///
    /// Patch: 2 mask bytes, 1 byte per moved axis (zigzag of ±4), and up to 3
    /// bytes for the turn (±2° is ±364 steps, zigzag ≤ 728: a 3-byte varint):
    /// at most 7 bytes. The entity's id comes first; as the only entry of its
    /// section it is absolute, so the whole cost is 7 + the id's varint:
    /// at most 8 bytes for ids below 251, 10 or 12 for larger ids.
    #[test]
    fn a_small_move_and_turn_costs_at_most_eight_bytes_plus_long_id_bytes(
        base in world(300).prop_filter("non-empty", |w| !w.is_empty()),
        pick in any::<Index>(),
        dx in -4i32..=4,
        dy in -4i32..=4,
        turn in -364i32..=364,
    ) {
        let b = snapshot(&base);
        let (id, old) = b.as_slice()[pick.index(b.len())].clone();
        let mut moved = old.clone();
        moved.pos.x = moved.pos.x.wrapping_add(dx);
        moved.pos.y = moved.pos.y.wrapping_add(dy);
        moved.angle = Angle16(moved.angle.0.wrapping_add(turn as u16));
        let mut cur = base.clone();
        cur.insert(id.0, moved);
        let c = snapshot(&cur);
        let none = delta::diff(&b, &b).unwrap().len();
        let one = delta::diff(&b, &c).unwrap();
        let cost = one.len() - none;
        let id_bytes = varint_len(u64::from(id.0));
        prop_assert!(cost <= 7 + id_bytes, "cost {} for id {}", cost, id);
        if id.0 < 251 {
            prop_assert!(cost <= 8, "cost {} for id {}", cost, id);
        }
        let (_, stats) = delta_with_stats(&b, &c);
        if (dx, dy, turn) != (0, 0, 0) {
            prop_assert_eq!(stats.patched, 1, "a small move is a patch: {:?}", stats);
        }
        prop_assert_eq!(delta::apply(&b, &one, &Limits::default()).unwrap(), c);
    }
}

#[test]
fn a_small_move_with_a_short_id_costs_at_most_eight_bytes() {
    let b = fixed_world();
    for (id, old) in b.iter().filter(|(id, _)| id.0 < 251) {
        for (dx, dy, turn) in [(4, -4, 364), (-4, 4, -364), (1, 0, 0), (0, 0, -1)] {
            let mut moved = old.clone();
            moved.pos.x = moved.pos.x.wrapping_add(dx);
            moved.pos.y = moved.pos.y.wrapping_add(dy);
            moved.angle = Angle16(moved.angle.0.wrapping_add(turn as u16));
            let cur = Snapshot::from_vec(
                b.iter()
                    .map(|(i, e)| (i, if i == id { moved.clone() } else { e.clone() }))
                    .collect(),
            )
            .unwrap();
            let cost = delta::diff(&b, &cur).unwrap().len() - 3;
            assert!(cost <= 8, "id {id}: cost {cost} for {dx},{dy},{turn}");
        }
    }
}

// ---------------------------------------------------------------------------
// Messages.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn client_messages_round_trip(msg in client_message()) {
        let limits = Limits::default();
        let bytes = msg.to_bytes().unwrap();
        prop_assert!(bytes.len() <= limits.max_client_message_bytes);
        prop_assert_eq!(ClientMessage::<Input>::decode(&bytes, &limits).unwrap(), msg);
    }

    #[test]
    fn server_messages_round_trip(msg in server_message()) {
        let limits = Limits::default();
        let msg = msg.borrow();
        let bytes = msg.to_bytes().unwrap();
        prop_assert_eq!(ServerMessage::<Event>::decode(&bytes, &limits).unwrap(), msg);
    }

    /// A hello goes through the server's checks; a rejection reaches the client
    /// with its code (its message fits the text limit).
    #[test]
    fn handshake_over_the_wire(hello in hello()) {
        let limits = Limits::default();
        let bytes = ClientMessage::<Input>::Hello(hello.clone()).to_bytes().unwrap();
        let ClientMessage::Hello(received) = ClientMessage::<Input>::decode(&bytes, &limits).unwrap()
        else {
            return Err(TestCaseError::fail("not a hello"));
        };
        prop_assert_eq!(&received, &hello);
        let server = ServerHandshake::new(std::time::Duration::ZERO, std::time::Duration::from_secs(5));
        let client = ClientHandshake::new(hello.clone());
        let reply = match server.handle_hello(received, GAME_HASH) {
            Ok(pending) => {
                prop_assert!(hello.protocol_version == PROTOCOL_VERSION && hello.game_hash == GAME_HASH);
                let welcome = Welcome {
                    client_id: 9,
                    tick_rate: 30,
                    tick: 1,
                    snapshot_interval: 1,
                    resume_token: ResumeToken::from_random([7; 16]),
                    room: hello.room.clone().unwrap_or_else(|| "lobby".into()),
                    resumed: hello.resume_token.is_some(),
                    implicit_acks: None,
                };
                pending.accept::<Event>(welcome).1.to_bytes().unwrap()
            }
            Err(rejection) => {
                let expected = if hello.protocol_version != PROTOCOL_VERSION {
                    RejectCode::VersionMismatch
                } else {
                    RejectCode::GameMismatch
                };
                prop_assert_eq!(rejection.code, expected);
                rejection.to_message::<Event>().to_bytes().unwrap()
            }
        };
        let got = ServerMessage::<Event>::decode(&reply, &limits).unwrap();
        match client.handle(got) {
            Ok(w) => prop_assert_eq!(Some(w.room), hello.room.or(Some("lobby".into()))),
            Err(HandshakeError::Rejected { code, .. }) => prop_assert!(matches!(
                code,
                RejectCode::VersionMismatch | RejectCode::GameMismatch
            )),
            Err(e) => return Err(TestCaseError::fail(format!("unexpected {e}"))),
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn snapshot_messages_round_trip(
        (base, cur) in derived_pair(true, 300),
        h in header(),
    ) {
        let limits = Limits::default();
        let (b, c) = (snapshot(&base), snapshot(&cur));
        for baseline in [None, Some(h.tick.wrapping_sub(3))] {
            let header = SnapshotHeader { baseline, ..h };
            let mut w = Writer::new();
            header.encode(&mut w);
            let body = match baseline {
                None => full_body(&c),
                Some(_) => delta::diff(&b, &c).unwrap(),
            };
            w.raw(&body);
            let bytes = w.into_vec();
            let frame = server_frame(&bytes);
            prop_assert_eq!(frame.header, header);
            prop_assert_eq!(frame.body, &body[..]);
            prop_assert_eq!(&frame.decode::<Ent>(Some(&b), &limits).unwrap(), &c);
            match baseline {
                None => prop_assert_eq!(&frame.decode::<Ent>(None, &limits).unwrap(), &c),
                Some(_) => {
                    let r = frame.decode::<Ent>(None, &limits);
                    prop_assert!(matches!(r, Err(DecodeError::Invalid { .. })), "{:?}", r);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Hostile input.
// ---------------------------------------------------------------------------

/// Decodes `bytes` as everything a peer can send; never panics, and what
/// decodes re-encodes to the same value.
fn decode_everything(bytes: &[u8], base: &Snapshot<Ent>) -> Result<(), TestCaseError> {
    let limits = Limits::default();
    if let Ok(msg) = ClientMessage::<Input>::decode(bytes, &limits) {
        let again = msg.to_bytes().unwrap();
        prop_assert_eq!(
            ClientMessage::<Input>::decode(&again, &limits).unwrap(),
            msg
        );
    }
    if let Ok(msg) = ServerMessage::<Event>::decode(bytes, &limits) {
        let again = msg.to_bytes().unwrap();
        prop_assert_eq!(
            &ServerMessage::<Event>::decode(&again, &limits).unwrap(),
            &msg
        );
        if let ServerMessage::Snapshot(frame) = msg {
            for baseline in [None, Some(base)] {
                if let Ok(s) = frame.decode::<Ent>(baseline, &limits) {
                    check_snapshot_invariants(&s, &limits)?;
                }
            }
        }
    }
    for baseline in [None, Some(7)] {
        let frame = SnapshotFrame {
            header: SnapshotHeader {
                tick: 8,
                last_input: 0,
                baseline,
            },
            body: bytes,
        };
        for b in [None, Some(base)] {
            if let Ok(s) = frame.decode::<Ent>(b, &limits) {
                check_snapshot_invariants(&s, &limits)?;
            }
        }
    }
    if let Ok(s) = delta::apply(base, bytes, &limits) {
        check_snapshot_invariants(&s, &limits)?;
    }
    if let Ok(s) = delta::apply(&Snapshot::<Ent>::new(), bytes, &limits) {
        check_snapshot_invariants(&s, &limits)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes, &fixed_world())?;
    }

    /// Arbitrary bodies behind a valid tag get past the first byte.
    #[test]
    fn arbitrary_bodies_behind_valid_tags_never_panic(
        tag in 0u8..8,
        rest in vec(any::<u8>(), 0..512),
    ) {
        let mut bytes = vec![tag];
        bytes.extend(rest);
        decode_everything(&bytes, &fixed_world())?;
    }

    #[test]
    fn mutated_messages_never_panic(
        client in client_message(),
        server in server_message(),
        mutations in vec(mutation(), 1..5),
    ) {
        let base = fixed_world();
        for mut bytes in [client.to_bytes().unwrap(), server.borrow().to_bytes().unwrap()] {
            mutate(&mut bytes, &mutations);
            decode_everything(&bytes, &base)?;
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// Mutated delta bodies reach the patch decoder: masks, field changes,
    /// option tags, variant indices, strings.
    #[test]
    fn mutated_deltas_and_snapshots_never_panic(
        (base, cur) in derived_pair(true, 40),
        mutations in vec(mutation(), 1..4),
    ) {
        let limits = Limits::default();
        let (b, c) = (snapshot(&base), snapshot(&cur));
        let mut d = delta::diff(&b, &c).unwrap();
        mutate(&mut d, &mutations);
        if let Ok(s) = delta::apply(&b, &d, &limits) {
            check_snapshot_invariants(&s, &limits)?;
        }
        let mut f = full_body(&c);
        mutate(&mut f, &mutations);
        if let Ok(s) = read_full::<Ent>(&mut Reader::new(&f), &limits) {
            check_snapshot_invariants(&s, &limits)?;
        }
        for (baseline, body) in [(Some(1), &d), (None, &f)] {
            let mut w = Writer::new();
            SnapshotHeader { tick: 2, last_input: 0, baseline }.encode(&mut w);
            w.raw(body);
            let mut bytes = w.into_vec();
            mutate(&mut bytes, &mutations);
            decode_everything(&bytes, &b)?;
        }
    }

    /// Mutations of deltas against the fixed baseline, which has every layout.
    #[test]
    fn mutated_deltas_against_the_fixed_baseline_never_panic(
        changes in vec((any::<Index>(), change()), 1..6),
        mutations in vec(mutation(), 1..4),
    ) {
        let b = fixed_world();
        let mut cur: Vec<(NetId, Ent)> = b.as_slice().to_vec();
        for (i, ch) in &changes {
            let k = i.index(cur.len());
            ch.apply(&mut cur[k].1);
        }
        let c = Snapshot::from_vec(cur).unwrap();
        let mut d = delta::diff(&b, &c).unwrap();
        prop_assert_eq!(delta::apply(&b, &d, &Limits::default()).unwrap(), c);
        mutate(&mut d, &mutations);
        decode_everything(&d, &b)?;
    }
}

proptest! {
    #![proptest_config(config(32))]

    #[test]
    fn oversized_messages_are_message_too_long(
        extra in 1usize..64,
        fill in any::<u8>(),
        tag in 0u8..8,
    ) {
        let limits = Limits::default();
        let max = limits.max_client_message_bytes;
        let mut bytes = vec![fill; max + extra];
        bytes[0] = tag;
        prop_assert_eq!(
            ClientMessage::<Input>::decode(&bytes, &limits),
            Err(DecodeError::MessageTooLong { size: max + extra, max })
        );
        // At the limit the size check passes (and the content decides; a
        // `GameMessage`'s own, smaller limit is part of the content).
        let at_limit = ClientMessage::<Input>::decode(&bytes[..max], &limits);
        let game_max = limits.max_game_message_bytes;
        prop_assert!(
            match at_limit {
                Err(DecodeError::MessageTooLong { size, max: m }) => {
                    tag == 6 && m == game_max && size == max - 1
                }
                _ => true,
            },
            "{:?}",
            at_limit
        );
        let max = limits.max_server_message_bytes;
        let mut bytes = vec![fill; max + extra];
        bytes[0] = tag;
        prop_assert_eq!(
            ServerMessage::<Event>::decode(&bytes, &limits),
            Err(DecodeError::MessageTooLong { size: max + extra, max })
        );
        let at_limit = ServerMessage::<Event>::decode(&bytes[..max], &limits);
        prop_assert!(
            !matches!(at_limit, Err(DecodeError::MessageTooLong { .. })),
            "{:?}",
            at_limit
        );
        // Custom limits apply too, to valid messages.
        let mut small = Limits::default();
        small.max_client_message_bytes = 4;
        small.max_server_message_bytes = 4;
        let hello = ClientMessage::<Input>::Hello(Hello::new(GAME_HASH)).to_bytes().unwrap();
        prop_assert_eq!(
            ClientMessage::<Input>::decode(&hello, &small),
            Err(DecodeError::MessageTooLong { size: hello.len(), max: 4 })
        );
        let close = ServerMessage::<Event>::Close(Close {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })
        .to_bytes()
        .unwrap();
        prop_assert_eq!(
            ServerMessage::<Event>::decode(&close, &small),
            Err(DecodeError::MessageTooLong { size: close.len(), max: 4 })
        );
    }
}

// ---------------------------------------------------------------------------
// Fuzz corpora as regression inputs.
// ---------------------------------------------------------------------------

/// Replays `fuzz/corpus/<target>/*` (seeds and what the fuzzers kept) through
/// every decoder. The fuzz crate's types encode exactly like this file's, and
/// its fixed baseline is `fixed_world()`, so the seeds must decode.
#[test]
fn fuzz_corpora_replay_without_panics() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    if !root.is_dir() {
        return; // a packaged crate has no fuzz folder
    }
    let limits = Limits::default();
    let base = fixed_world();
    let mut seeds = 0;
    for target in [
        "client_message",
        "server_message",
        "delta_apply",
        "handshake",
    ] {
        let Ok(dir) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in dir {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            if let Err(e) = decode_everything(&bytes, &base) {
                panic!("{}: {e}", path.display());
            }
            if !path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-")
            {
                continue;
            }
            seeds += 1;
            let ok = match target {
                "client_message" => ClientMessage::<Input>::decode(&bytes, &limits).is_ok(),
                "server_message" => match ServerMessage::<Event>::decode(&bytes, &limits) {
                    Ok(ServerMessage::Snapshot(f)) => f.decode::<Ent>(Some(&base), &limits).is_ok(),
                    other => other.is_ok(),
                },
                "delta_apply" => delta::apply(&base, &bytes, &limits).is_ok(),
                _ => {
                    ClientMessage::<Input>::decode(&bytes, &limits).is_ok()
                        || ServerMessage::<Event>::decode(&bytes, &limits).is_ok()
                }
            };
            assert!(ok, "seed {} does not decode", path.display());
        }
    }
    assert!(seeds > 0, "no seeds under {}", root.display());
}

// ---------------------------------------------------------------------------
// Known bugs in shared/src (ignored until fixed; run with `--ignored`).
// ---------------------------------------------------------------------------

/// `delta.rs` promises "a delta is never larger than the full snapshot of the
/// same view plus its section counts and the removed ids". Ids restart their
/// gap encoding in each section, so interleaving patched and full entities
/// turns 1-byte gaps (200) into 3-byte gaps (400), while a busy patch saves
/// only 1 byte. Four entities, no removals: full body 55 bytes, delta 61.
#[test]
fn interleaved_sections_never_make_a_delta_larger_than_full() {
    let calm = |owner: Option<u32>| Ent {
        kind: Kind::Player,
        pos: QVec2 { x: 0, y: 0 },
        angle: Angle16(0),
        health: 100,
        name: "ab".into(),
        owner,
        vel: (0, 0),
        alive: true,
    };
    // Everything but health and owner changes: an 11-byte patch for a
    // 12-byte state.
    let busy = Ent {
        kind: Kind::Pickup,
        pos: QVec2 { x: 100, y: -100 },
        angle: Angle16(100),
        health: 100,
        name: "cd".into(),
        owner: None,
        vel: (50, -50),
        alive: false,
    };
    let base = Snapshot::from_vec((1..=4).map(|i| (NetId(200 * i), calm(None))).collect()).unwrap();
    // 200 and 600 are patched; 400 and 800 gain an owner (layout change) and
    // are sent in full.
    let cur = Snapshot::from_vec(
        (1..=4)
            .map(|i| {
                let e = if i % 2 == 1 {
                    busy.clone()
                } else {
                    calm(Some(1))
                };
                (NetId(200 * i), e)
            })
            .collect(),
    )
    .unwrap();
    let full = full_body(&cur);
    let (d, stats) = delta_with_stats(&base, &cur);
    // Today 2 patched and 2 full; a fixed encoder may send all 4 in full.
    assert_eq!((stats.patched + stats.full, stats.removed), (4, 0));
    assert_eq!(delta::apply(&base, &d, &Limits::default()).unwrap(), cur);
    // No removals; the delta carries two more (1-byte) counts than the full body.
    assert!(
        d.len() <= full.len() + 2,
        "delta {} bytes > full {} bytes + 2 section counts",
        d.len(),
        full.len()
    );
}

/// A zero-sized payload (`type Event = ()`, a marker entity state) encodes to
/// nothing, but the decoders assume each counted item takes at least one byte
/// (events) or two (entities: id and state), so valid messages are refused
/// as truncated.
#[test]
fn zero_sized_payloads_round_trip() {
    let limits = Limits::default();
    let events = ServerMessage::<()>::Events(vec![(), ()])
        .to_bytes()
        .unwrap();
    assert_eq!(
        ServerMessage::<()>::decode(&events, &limits),
        Ok(ServerMessage::Events(vec![(), ()]))
    );
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Marker;
    let s = Snapshot::from_vec(vec![(NetId(1), Marker), (NetId(5), Marker)]).unwrap();
    let mut w = Writer::new();
    write_full(&mut w, s.iter()).unwrap();
    assert_eq!(
        read_full::<Marker>(&mut Reader::new(w.as_slice()), &limits),
        Ok(s.clone())
    );
    let d = delta::diff(&Snapshot::new(), &s).unwrap();
    assert_eq!(delta::apply(&Snapshot::new(), &d, &limits), Ok(s));
}
