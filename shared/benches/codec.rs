//! Protocol codec benchmarks: full snapshots, deltas, applying one entity's
//! patch (in place vs through serde) and a bitcode comparison.
//!
//! The world is 1,000 quantized entities (`NetId` 1..=1000) spread over a
//! 2000 × 2000 arena. A "changed" tick moves every 10th entity by at most 4
//! units per axis (64 steps at 1/16 precision) and turns it by at most ±2°.
//! All randomness comes from a seeded xorshift, so every run benches the same
//! bytes.
//!
//! Run with `cargo bench -p tickwire-shared --bench codec`. The sizes are
//! printed once to stderr before the timings; `BENCHMARKS.md` at the repository
//! root records the results.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use serde::{Deserialize, Serialize};
use tickwire_derive::Patch;
use tickwire_shared::delta::{self, DeltaScratch};
use tickwire_shared::patch::{PatchScratch, patch_in_place, patch_with_serde};
use tickwire_shared::quantize::{Angle16, QVec2};
use tickwire_shared::snapshot::{self, NetId, Snapshot};
use tickwire_shared::{Limits, Reader, ServerMessage, SnapshotHeader, Writer};

/// A realistic replicated entity: every field a small integer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Ent {
    kind: u8,
    pos: QVec2<16>,
    angle: Angle16,
    health: u8,
    owner: u32,
}

/// What a player entity kind is (as the arena's `EntityKind`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Patch)]
enum Kind {
    Player,
    Projectile,
}

/// An entity shaped like the arena's `EntityState`: quantized position, an
/// angle, small integers and a shared name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Patch)]
struct Player {
    kind: Kind,
    pos: QVec2<16>,
    angle: Angle16,
    health: u8,
    owner: u32,
    name: Arc<str>,
    kills: u16,
    deaths: u16,
}

/// The patch of one player that moved and turned (a typical tick): the
/// bytes after the delta's id, as `GameProtocol::patch_in_place` gets them.
fn player_patch() -> (Player, Vec<u8>) {
    let base = Player {
        kind: Kind::Player,
        pos: QVec2 {
            x: 12_345,
            y: 6_789,
        },
        angle: Angle16(40_000),
        health: 80,
        owner: 1_000_003,
        name: Arc::from("bot-3"),
        kills: 7,
        deaths: 2,
    };
    let mut cur = base.clone();
    cur.pos.x += 40;
    cur.pos.y -= 12;
    cur.angle.0 += 300;
    let d = delta::diff(
        &Snapshot::from_vec(vec![(NetId(1), base.clone())]).expect("one id"),
        &Snapshot::from_vec(vec![(NetId(1), cur)]).expect("one id"),
    )
    .expect("encodes");
    // removed: 0; patched: 1, id 1, the patch; full: 0.
    assert_eq!(d[..3], [0, 1, 1], "one patched entity");
    (base, d[3..d.len() - 1].to_vec())
}

const ENTITIES: u32 = 1_000;
/// Every `CHANGE_EVERY`-th entity changes between baseline and current.
const CHANGE_EVERY: u32 = 10;
/// Arena side, in world units.
const ARENA: u32 = 2_000;
/// Largest step per axis, in 1/16 units (4 world units).
const MAX_STEP: i32 = 64;
/// Largest turn, in `Angle16` steps: 2° = 65,536 × 2 / 360 ≈ 364.
const MAX_TURN: i32 = 364;

/// xorshift64 (Marsaglia), seeded: deterministic and dependency-free.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n` (the modulo bias is irrelevant here).
    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }

    /// Uniform in `-max..=max`.
    fn symmetric(&mut self, max: i32) -> i32 {
        self.below(2 * max as u32 + 1) as i32 - max
    }
}

/// The baseline world and the current world (10% changed).
fn worlds() -> (Snapshot<Ent>, Snapshot<Ent>) {
    let mut rng = XorShift(0x5eed_1234_abcd_ef01);
    let base: Vec<(NetId, Ent)> = (1..=ENTITIES)
        .map(|id| {
            let ent = Ent {
                kind: rng.below(4) as u8,
                pos: QVec2 {
                    x: rng.below(ARENA * 16) as i32,
                    y: rng.below(ARENA * 16) as i32,
                },
                angle: Angle16(rng.below(65_536) as u16),
                health: rng.below(101) as u8,
                owner: 1 + rng.below(64),
            };
            (NetId(id), ent)
        })
        .collect();
    let cur = base
        .iter()
        .map(|(id, e)| {
            let mut e = e.clone();
            if id.0 % CHANGE_EVERY == 0 {
                e.pos.x += rng.symmetric(MAX_STEP);
                e.pos.y += rng.symmetric(MAX_STEP);
                e.angle.0 = e.angle.0.wrapping_add(rng.symmetric(MAX_TURN) as u16);
            }
            (*id, e)
        })
        .collect();
    (
        Snapshot::from_vec(base).expect("unique ids"),
        Snapshot::from_vec(cur).expect("unique ids"),
    )
}

const HEADER: SnapshotHeader = SnapshotHeader {
    tick: 1_000,
    last_input: 990,
    baseline: None,
};

/// `n` players (a tenth of them named, the rest sharing the empty name, as
/// the arena's NPCs), and the same players one tick later: each moved and
/// turned.
fn moving_players(n: u32) -> (Snapshot<Player>, Snapshot<Player>) {
    let mut rng = XorShift(0x5eed_0000_0000_0001);
    let empty: Arc<str> = Arc::from("");
    let base: Vec<(NetId, Player)> = (1..=n)
        .map(|i| {
            let p = Player {
                kind: Kind::Player,
                pos: QVec2 {
                    x: rng.symmetric(30_000),
                    y: rng.symmetric(30_000),
                },
                angle: Angle16(rng.below(65_536) as u16),
                health: 100,
                owner: 1_000_000 + i,
                name: if i % 10 == 0 {
                    Arc::from(format!("bot-{i}"))
                } else {
                    Arc::clone(&empty)
                },
                kills: 0,
                deaths: 0,
            };
            (NetId(i), p)
        })
        .collect();
    let cur = base
        .iter()
        .map(|(id, p)| {
            let mut p = p.clone();
            p.pos.x += rng.symmetric(64);
            p.pos.y += rng.symmetric(64);
            p.angle.0 = p.angle.0.wrapping_add(rng.symmetric(400) as u16);
            (*id, p)
        })
        .collect();
    (
        Snapshot::from_vec(base).expect("unique ids"),
        Snapshot::from_vec(cur).expect("unique ids"),
    )
}

fn encode_full(snap: &Snapshot<Ent>) -> Vec<u8> {
    let mut w = Writer::new();
    snapshot::write_full(&mut w, snap.iter()).expect("encodes");
    w.into_vec()
}

fn encode_delta(base: &Snapshot<Ent>, cur: &Snapshot<Ent>, limits: &Limits) -> Vec<u8> {
    let mut w = Writer::new();
    delta::write_delta(
        &mut w,
        base.iter(),
        cur.iter(),
        &mut DeltaScratch::default(),
        limits.max_fields_per_entity,
    )
    .expect("encodes");
    w.into_vec()
}

fn as_tuples(snap: &Snapshot<Ent>) -> Vec<(u32, Ent)> {
    snap.iter().map(|(id, e)| (id.0, e.clone())).collect()
}

/// Checks that every encoding round-trips and prints the sizes once.
fn report_sizes(base: &Snapshot<Ent>, cur: &Snapshot<Ent>, limits: &Limits) {
    let full = encode_full(cur);
    let back: Snapshot<Ent> = snapshot::read_full(&mut Reader::new(&full), limits).expect("full");
    assert_eq!(&back, cur);
    let d = encode_delta(base, cur, limits);
    assert_eq!(&delta::apply(base, &d, limits).expect("delta"), cur);
    let empty = encode_delta(base, base, limits);
    assert_eq!(empty.len(), 3, "an empty delta is three zero counts");
    let changed = cur
        .iter()
        .zip(base.iter())
        .filter(|((_, c), (_, b))| c != b)
        .count();
    let tuples = as_tuples(cur);
    let bitcode = bitcode::serialize(&tuples).expect("bitcode");
    assert_eq!(
        bitcode::deserialize::<Vec<(u32, Ent)>>(&bitcode).expect("bitcode"),
        tuples
    );
    let mut msg = Writer::new();
    HEADER.encode(&mut msg);
    let header_bytes = msg.len();
    eprintln!("codec sizes ({ENTITIES} entities, {changed} changed):");
    eprintln!(
        "  full snapshot body: {} bytes ({:.2} per entity); as a message: {} bytes",
        full.len(),
        full.len() as f64 / f64::from(ENTITIES),
        full.len() + header_bytes
    );
    eprintln!(
        "  delta body: {} bytes; empty delta: {} bytes; per changed entity: {:.2} bytes",
        d.len(),
        empty.len(),
        (d.len() - empty.len()) as f64 / changed as f64
    );
    eprintln!("  bitcode (serde) Vec<(u32, Ent)>: {} bytes", bitcode.len());
}

fn benches(c: &mut Criterion) {
    let limits = Limits::default();
    let (base, cur) = worlds();
    // A separate allocation equal to `base`, so "nothing changed" really
    // compares every entity.
    let base_copy = Snapshot::from_vec(base.as_slice().to_vec()).expect("unique ids");
    report_sizes(&base, &cur, &limits);

    let full = encode_full(&cur);
    let mut full_msg = Writer::new();
    HEADER.encode(&mut full_msg);
    full_msg.raw(&full);
    let full_msg = full_msg.into_vec();
    let delta_bytes = encode_delta(&base, &cur, &limits);

    let mut g = c.benchmark_group("full_1000");
    let mut w = Writer::new();
    g.bench_function("encode write_full", |b| {
        b.iter(|| {
            w.clear();
            snapshot::write_full(&mut w, black_box(&cur).iter()).expect("encodes");
            black_box(w.len())
        });
    });
    g.bench_function("decode read_full", |b| {
        b.iter(|| {
            let mut r = Reader::new(black_box(&full));
            let s: Snapshot<Ent> = snapshot::read_full(&mut r, &limits).expect("decodes");
            s
        });
    });
    g.bench_function("encode message (header + body)", |b| {
        b.iter(|| {
            w.clear();
            HEADER.encode(&mut w);
            snapshot::write_full(&mut w, black_box(&cur).iter()).expect("encodes");
            black_box(w.len())
        });
    });
    g.bench_function("decode message (ServerMessage + SnapshotFrame)", |b| {
        b.iter(|| {
            let msg = ServerMessage::<()>::decode(black_box(&full_msg), &limits).expect("decodes");
            let ServerMessage::Snapshot(frame) = msg else {
                unreachable!("a snapshot message")
            };
            let s: Snapshot<Ent> = frame.decode(None, &limits).expect("decodes");
            s
        });
    });
    g.finish();

    let mut g = c.benchmark_group("delta_1000_10pct");
    let mut scratch = DeltaScratch::default();
    g.bench_function("diff + encode (write_delta)", |b| {
        b.iter(|| {
            w.clear();
            delta::write_delta(
                &mut w,
                black_box(&base).iter(),
                black_box(&cur).iter(),
                &mut scratch,
                limits.max_fields_per_entity,
            )
            .expect("encodes");
            black_box(w.len())
        });
    });
    g.bench_function("decode + apply (delta::apply)", |b| {
        b.iter(|| {
            delta::apply(black_box(&base), black_box(&delta_bytes), &limits).expect("applies")
        });
    });
    g.bench_function("diff, nothing changed (write_delta)", |b| {
        b.iter(|| {
            w.clear();
            delta::write_delta(
                &mut w,
                black_box(&base).iter(),
                black_box(&base_copy).iter(),
                &mut scratch,
                limits.max_fields_per_entity,
            )
            .expect("encodes");
            black_box(w.len())
        });
    });
    g.bench_function("compare only (1000 x PartialEq)", |b| {
        b.iter(|| {
            black_box(&base)
                .iter()
                .zip(black_box(&base_copy).iter())
                .filter(|((_, x), (_, y))| x != y)
                .count()
        });
    });
    g.finish();

    // The server's delta encoder on 1,000 arena-like players that all moved
    // and turned (the "1,000 moving NPCs" scene): one baseline of a
    // tick, through serde's flattener and through the derived field diff.
    let (pbase, pcur) = moving_players(1000);
    let pslots: Vec<(NetId, &Player, usize)> = pcur
        .iter()
        .enumerate()
        .map(|(i, (id, s))| (id, s, i))
        .collect();
    let mut memo = delta::DeltaMemo::default();
    let mut g = c.benchmark_group("server_delta_1000_all_moving");
    for (name, fast) in [
        ("serde flattener (write_delta_memo)", None),
        (
            "derived diff (write_delta_memo + diff_fields)",
            Some(tickwire_shared::diff::diff_fields::<Player> as delta::FieldDiff<Player>),
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                w.clear();
                memo.reset(pslots.len());
                delta::write_delta_memo(
                    &mut w,
                    black_box(&pbase).iter(),
                    black_box(&pslots).iter().copied(),
                    1,
                    &mut memo,
                    &mut scratch,
                    limits.max_fields_per_entity,
                    fast,
                )
                .expect("encodes");
                black_box(w.len())
            });
        });
    }
    g.finish();

    // Applying one entity's patch: the patch adds the same differences each
    // time, so repeated application keeps a valid (drifting) state.
    let (player, patch) = player_patch();
    let mut g = c.benchmark_group("patch_one_entity");
    let mut state = player.clone();
    g.bench_function("patch_in_place (derived Patch)", |b| {
        b.iter(|| {
            let mut r = Reader::new(black_box(&patch));
            patch_in_place(&mut state, &mut r, &limits).expect("applies");
        });
    });
    g.bench_function("clone baseline + patch_in_place", |b| {
        b.iter(|| {
            let mut s = black_box(&player).clone();
            let mut r = Reader::new(black_box(&patch));
            patch_in_place(&mut s, &mut r, &limits).expect("applies");
            s
        });
    });
    let mut state = player.clone();
    let mut scratch = PatchScratch::default();
    g.bench_function("patch_with_serde", |b| {
        b.iter(|| {
            let mut r = Reader::new(black_box(&patch));
            patch_with_serde(&mut state, &mut r, &limits, &mut scratch).expect("applies");
        });
    });
    g.finish();

    let tuples = as_tuples(&cur);
    let bitcode_bytes = bitcode::serialize(&tuples).expect("bitcode");
    let mut g = c.benchmark_group("bitcode_serde_full_1000");
    g.bench_function("encode bitcode::serialize", |b| {
        b.iter(|| bitcode::serialize(black_box(&tuples)).expect("bitcode"));
    });
    g.bench_function("decode bitcode::deserialize", |b| {
        b.iter(|| {
            bitcode::deserialize::<Vec<(u32, Ent)>>(black_box(&bitcode_bytes)).expect("bitcode")
        });
    });
    g.finish();
}

fn main() {
    // What `criterion_group!`/`criterion_main!` expand to, written out so
    // the group function needs no doc comment.
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    benches(&mut c);
    c.final_summary();
}
