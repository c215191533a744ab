//! Client apply benchmarks: `ClientWorld::apply` with the arena's real state
//! type ([`EntityState`], names included), against the old decode path
//! (`SnapshotFrame::decode`, a whole new `Snapshot` per tick).
//!
//! The world is 1,000 entities (`NetId` 1..=1000) spread uniformly over the
//! arena: every 20th is a named player ("player-<id>"), the others are
//! [`EntityKind::Npc`]s with the shared empty name ([`arena::no_name`]).
//! Every 10th entity (half of them players) walks a small circle (radius 100
//! in 1/16 units, 16 ticks per lap, each with its own phase) and faces along
//! it; the rest stand still. So each tick moves and turns 10 % of the world,
//! and the state of tick `t` only depends on `t mod 16`: the benches can
//! apply an endless stream of ticks from a few precomputed bodies.
//!
//! Before timing, the bench prints the body sizes and the allocations of one
//! apply of each scene (counted with a counting global allocator, in steady
//! state after warm-up, so reusable buffers have grown), and checks that
//! every scene's world equals the server's view.
//!
//! Run with `cargo bench -p arena --no-default-features --bench client_apply`;
//! `BENCHMARKS.md` at the repository root records the results.

use std::alloc::System;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arena::{Arena, ArenaEvent, EntityKind, EntityState, MAX_HEALTH, no_name};
use criterion::{BatchSize, Criterion};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tickwire_shared::client::ClientWorld;
use tickwire_shared::message::encode_snapshot;
use tickwire_shared::quantize::{Angle16, QVec2};
use tickwire_shared::snapshot::{NetId, Snapshot};
use tickwire_shared::{DecodeError, Limits, Reader, ServerMessage, SnapshotFrame, SnapshotHeader};

/// Counts every allocation of the bench binary (atomic counters around the
/// system allocator).
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ENTITIES: u32 = 1_000;
/// Every `MOVE_EVERY`-th entity moves each tick.
const MOVE_EVERY: u32 = 10;
/// Every `PLAYER_EVERY`-th entity is a named player.
const PLAYER_EVERY: u32 = 20;
/// The main world: 1,000 entities, 10 % moving, one in 20 a named player.
const MAIN: Shape = Shape {
    entities: ENTITIES,
    move_every: MOVE_EVERY,
    player_every: PLAYER_EVERY,
    projectiles: false,
};
/// A bot's world in a room of 100 players (`arena-bots`): 96 named players,
/// half of them moving each tick, and 32 projectile ids, each present (and
/// moving) for half of the period: on average two appear and two disappear
/// per tick (eight of each every fourth tick).
const BOT: Shape = Shape {
    entities: 128,
    move_every: 2,
    player_every: 1,
    projectiles: true,
};

/// The make-up of a bench world.
#[derive(Clone, Copy)]
struct Shape {
    entities: u32,
    /// Every `move_every`-th entity moves each tick.
    move_every: u32,
    /// Every `player_every`-th entity is a named player (with
    /// `player_every` 1, every entity but each fourth).
    player_every: u32,
    /// The entities that are not players are projectiles that come and go
    /// (else NPCs, always present).
    projectiles: bool,
}

impl Shape {
    fn is_player(self, id: u32) -> bool {
        if self.player_every == 1 {
            !id.is_multiple_of(4)
        } else {
            id.is_multiple_of(self.player_every)
        }
    }

    fn is_projectile(self, id: u32) -> bool {
        self.projectiles && !self.is_player(id)
    }

    /// Whether entity `id` is present at tick `k` of the period.
    fn present(self, id: u32, k: u32) -> bool {
        !self.is_projectile(id) || (k + id) % PERIOD < PERIOD / 2
    }
}
/// Ticks per lap of a moving entity: the world repeats with this period.
const PERIOD: u32 = 16;
/// Radius of the laps, in 1/16 world units (6.25 units).
const RADIUS: f32 = 100.0;
/// How far the baseline lags the newest tick in the "lagging" scene: about
/// 100 ms of round trip at 60 Hz.
const LAG: u32 = 6;
/// The first applied tick (a multiple of `PERIOD`).
const START: u32 = 10 * PERIOD;
/// Bot-sized worlds applied in turn in the cache-cold scene, as many as
/// `arena-bots` runs on one core.
const COLD_WORLDS: usize = 1024;
/// Kept baselines (the client's default).
const CAPACITY: usize = 64;

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

    fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

/// The server's view at every tick of one period.
fn views(shape: Shape) -> Vec<Snapshot<EntityState>> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    // Centres stay `RADIUS` away from the walls (1600 x 1000 units).
    let margin = RADIUS as u32 + 1;
    let base: Vec<(i32, i32, u16)> = (0..shape.entities)
        .map(|_| {
            (
                (margin + rng.below(1_600 * 16 - 2 * margin)) as i32,
                (margin + rng.below(1_000 * 16 - 2 * margin)) as i32,
                rng.next() as u16,
            )
        })
        .collect();
    (0..PERIOD)
        .map(|k| {
            let entities = (1..=shape.entities)
                .zip(&base)
                .filter(|(id, _)| shape.present(*id, k))
                .map(|(id, &(x, y, angle))| {
                    let player = shape.is_player(id);
                    let (pos, angle) =
                        if id.is_multiple_of(shape.move_every) || shape.is_projectile(id) {
                            let phase = core::f32::consts::TAU
                                * ((k as f32 / PERIOD as f32) + (id as f32 * 0.618).fract());
                            let pos = QVec2 {
                                x: x + (RADIUS * phase.cos()).round() as i32,
                                y: y + (RADIUS * phase.sin()).round() as i32,
                            };
                            (
                                pos,
                                Angle16::from_radians(phase + core::f32::consts::FRAC_PI_2),
                            )
                        } else {
                            (QVec2 { x, y }, Angle16(angle))
                        };
                    let state = EntityState {
                        kind: if player {
                            EntityKind::Player
                        } else if shape.is_projectile(id) {
                            EntityKind::Projectile
                        } else {
                            EntityKind::Npc
                        },
                        pos,
                        angle,
                        health: MAX_HEALTH - (id % 7) as u8 * u8::from(player),
                        owner: if player { id } else { 0 },
                        name: if player {
                            Arc::from(format!("player-{id}"))
                        } else {
                            no_name()
                        },
                        kills: if player { (id % 13) as u16 } else { 0 },
                        deaths: if player { (id % 5) as u16 } else { 0 },
                    };
                    (NetId(id), state)
                })
                .collect();
            Snapshot::from_vec(entities).expect("distinct ids")
        })
        .collect()
}

/// The body of the snapshot message of `cur` (a delta against `base`, or
/// full), as `ClientWorld::apply` gets it.
fn body(base: Option<&Snapshot<EntityState>>, cur: &Snapshot<EntityState>) -> Vec<u8> {
    let bytes = encode_snapshot(1, 0, base.map(|b| (0, b)), cur).expect("encodes");
    let ServerMessage::<ArenaEvent>::Snapshot(f) =
        ServerMessage::decode(&bytes, &Limits::default()).expect("decodes")
    else {
        unreachable!("a snapshot message")
    };
    f.body.to_vec()
}

/// The precomputed stream: the view and bodies of each tick modulo `PERIOD`.
struct Stream {
    views: Vec<Snapshot<EntityState>>,
    /// `steady[k]`: the delta from tick `k - 1` to tick `k`.
    steady: Vec<Vec<u8>>,
    /// `lagging[k]`: the delta from tick `k - LAG` to tick `k`.
    lagging: Vec<Vec<u8>>,
    /// `full[k]`: the full snapshot of tick `k`.
    full: Vec<Vec<u8>>,
    limits: Limits,
}

impl Stream {
    fn new() -> Self {
        Self::of(MAIN)
    }

    fn of(shape: Shape) -> Self {
        let views = views(shape);
        let at = |t: u32| &views[(t % PERIOD) as usize];
        let steady = (0..PERIOD)
            .map(|k| body(Some(at(k + PERIOD - 1)), at(k)))
            .collect();
        let lagging = (0..PERIOD)
            .map(|k| body(Some(at(k + PERIOD - LAG)), at(k)))
            .collect();
        let full = (0..PERIOD).map(|k| body(None, at(k))).collect();
        Self {
            views,
            steady,
            lagging,
            full,
            limits: Limits::default(),
        }
    }

    fn view(&self, t: u32) -> &Snapshot<EntityState> {
        &self.views[(t % PERIOD) as usize]
    }

    /// Applies tick `t` against `baseline` (`None`: full) to `w`.
    fn apply(&self, w: &mut ClientWorld<EntityState>, t: u32, baseline: Option<u32>) {
        let k = (t % PERIOD) as usize;
        let body = match baseline {
            None => &self.full[k],
            Some(b) if b + 1 == t => &self.steady[k],
            Some(b) if b + LAG == t => &self.lagging[k],
            Some(b) => &body(Some(self.view(b)), self.view(t)),
        };
        w.apply::<Arena>(t, baseline, body, &self.limits)
            .expect("applies");
    }

    /// A world that applied the full snapshot of `START`, then the ticks up
    /// to `START + warm` against baselines `lag` ticks back (or `START`).
    fn world(&self, lag: u32, warm: u32) -> (ClientWorld<EntityState>, u32) {
        let mut w = ClientWorld::new(CAPACITY);
        self.apply(&mut w, START, None);
        for t in START + 1..=START + warm {
            self.apply(&mut w, t, Some(t.saturating_sub(lag).max(START)));
        }
        let t = START + warm;
        assert_eq!(&w.to_snapshot(), self.view(t), "world at tick {t}");
        (w, t)
    }
}

/// Allocations (fresh ones plus reallocations) made by `f`; frees are not
/// counted. `f`'s result is dropped by the caller, outside the count.
///
/// Never inlined, so that `valgrind --tool=callgrind
/// --toggle-collect='*client_apply::allocations*'` counts the instructions
/// of exactly the counted applies.
#[inline(never)]
fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let region = Region::new(GLOBAL);
    let out = f();
    let s = region.change();
    (s.allocations + s.reallocations, out)
}

/// The most and the mean allocations of `n` consecutive calls.
fn allocations_of<R>(n: u32, mut f: impl FnMut() -> R) -> (usize, f64) {
    let counts: Vec<usize> = (0..n)
        .map(|_| {
            let (count, out) = allocations(&mut f);
            drop(out);
            count
        })
        .collect();
    let max = counts.iter().copied().max().unwrap_or(0);
    (max, counts.iter().sum::<usize>() as f64 / f64::from(n))
}

/// Prints the sizes and the allocations per apply of each scene. With
/// `CLIENT_APPLY_SCENE` set, only the scenes whose label contains it run
/// (for profiling one scene).
fn report(stream: &Stream) {
    let changed = ENTITIES / MOVE_EVERY;
    eprintln!("client_apply: {ENTITIES} arena entities, {changed} move per tick");
    eprintln!(
        "  sizes: full body {} B, delta body (baseline = newest) {} B, delta body (baseline {LAG} back) {} B",
        stream.full[0].len(),
        stream.steady[1].len(),
        stream.lagging[1].len()
    );
    let n = 4 * PERIOD;
    eprintln!("  allocations per apply (max / mean over {n} consecutive applies, after warm-up):");
    let only = std::env::var("CLIENT_APPLY_SCENE").unwrap_or_default();
    let scene = |what: &str, run: &mut dyn FnMut() -> (usize, f64)| {
        if what.contains(only.as_str()) {
            let (max, mean) = run();
            eprintln!("    {what:<52} {max:>5} / {mean:.1}");
        }
    };

    scene("delta 10 %, baseline = newest", &mut || {
        let (mut w, mut t) = stream.world(1, 4 * PERIOD);
        let counts = allocations_of(n, || {
            t += 1;
            stream.apply(&mut w, t, Some(t - 1));
        });
        assert_eq!(&w.to_snapshot(), stream.view(t));
        counts
    });

    scene("delta 10 %, baseline lags 6 ticks", &mut || {
        let (mut w, mut t) = stream.world(LAG, 4 * PERIOD);
        let counts = allocations_of(n, || {
            t += 1;
            stream.apply(&mut w, t, Some(t - LAG));
        });
        assert_eq!(&w.to_snapshot(), stream.view(t));
        counts
    });

    scene("bot world (128), baseline = newest", &mut || {
        let bots = Stream::of(BOT);
        let (mut w, mut t) = bots.world(1, 4 * PERIOD);
        let counts = allocations_of(n, || {
            t += 1;
            bots.apply(&mut w, t, Some(t - 1));
        });
        assert_eq!(&w.to_snapshot(), bots.view(t));
        counts
    });

    scene("full 1,000 into an empty world", &mut || {
        allocations_of(n, || {
            let mut w = ClientWorld::new(CAPACITY);
            stream.apply(&mut w, START, None);
            w
        })
    });

    scene("full 1,000 into a world holding them (resync)", &mut || {
        let (mut w, mut t) = stream.world(1, 4 * PERIOD);
        let mut counts = Vec::new();
        for _ in 0..n {
            t += 1;
            counts.push(allocations(|| stream.apply(&mut w, t, None)).0);
            t += 1;
            stream.apply(&mut w, t, Some(t - 1));
        }
        assert_eq!(&w.to_snapshot(), stream.view(t));
        (
            counts.iter().copied().max().unwrap_or(0),
            counts.iter().sum::<usize>() as f64 / f64::from(n),
        )
    });

    scene("old: SnapshotFrame::decode delta (read_delta)", &mut || {
        let base = stream.view(0);
        let frame = frame(Some(0), &stream.steady[1]);
        allocations_of(n, || {
            frame.decode(Some(base), &stream.limits).expect("decodes")
        })
    });

    scene(
        "reference: full decode by hand, no serde, no world",
        &mut || {
            let mut out = Vec::new();
            decode_full_by_hand(&stream.full[0], &mut out, &stream.limits).expect("decodes");
            assert_eq!(out.as_slice(), stream.view(0).as_slice());
            allocations_of(n, || {
                decode_full_by_hand(&stream.full[0], &mut out, &stream.limits).expect("decodes");
            })
        },
    );

    scene("old: SnapshotFrame::decode full (read_full)", &mut || {
        let frame = frame(None, &stream.full[0]);
        allocations_of(n, || {
            frame
                .decode::<EntityState>(None, &stream.limits)
                .expect("decodes")
        })
    });
}

/// Reference, not a tickwire API: the full body decoded field by field with
/// `Reader`'s bincode-compatible primitives (what a derived, non-serde state
/// decoder could do), into a reused `Vec`, with no world. It shows how much
/// of a full apply is the serde decode of the states.
fn decode_full_by_hand(
    body: &[u8],
    out: &mut Vec<(NetId, EntityState)>,
    limits: &Limits,
) -> Result<(), DecodeError> {
    out.clear();
    let mut r = Reader::new(body);
    let count = r.count("entities", limits.max_entities_per_snapshot, 1)?;
    let mut prev: Option<u32> = None;
    for _ in 0..count {
        let gap = r.u32("entity id")?;
        let id = prev.map_or(Some(gap), |p| p.checked_add(gap).filter(|_| gap > 0));
        let id = id.ok_or(DecodeError::Invalid {
            what: "entity id",
            detail: String::new(),
        })?;
        prev = Some(id);
        let kind = match r.u32("kind")? {
            0 => EntityKind::Player,
            1 => EntityKind::Projectile,
            2 => EntityKind::Npc,
            _ => {
                return Err(DecodeError::Invalid {
                    what: "kind",
                    detail: String::new(),
                });
            }
        };
        let narrow = |v: i64| {
            i32::try_from(v).map_err(|_| DecodeError::Invalid {
                what: "position",
                detail: String::new(),
            })
        };
        let pos = QVec2 {
            x: narrow(r.i64("x")?)?,
            y: narrow(r.i64("y")?)?,
        };
        let angle = Angle16(r.u16("angle")?);
        let health = r.u8("health")?;
        let owner = r.u32("owner")?;
        let name = r.str("name", limits.max_server_message_bytes)?;
        let name = if name.is_empty() {
            no_name()
        } else {
            Arc::from(name)
        };
        let kills = r.u16("kills")?;
        let deaths = r.u16("deaths")?;
        out.push((
            NetId(id),
            EntityState {
                kind,
                pos,
                angle,
                health,
                owner,
                name,
                kills,
                deaths,
            },
        ));
    }
    r.finish()
}

fn frame(baseline: Option<u32>, body: &[u8]) -> SnapshotFrame<'_> {
    SnapshotFrame {
        header: SnapshotHeader {
            tick: 1,
            last_input: 0,
            baseline,
        },
        body,
    }
}

fn benches(c: &mut Criterion, stream: &Stream) {
    let mut g = c.benchmark_group("client_apply_1000");

    let (mut w, mut t) = stream.world(1, 4 * PERIOD);
    g.bench_function("delta 10%, baseline = newest", |b| {
        b.iter(|| {
            t += 1;
            stream.apply(&mut w, t, Some(t - 1));
        });
    });

    // A bot's world (see `BOT`), alone and then as one of many applied in
    // turn, as in `arena-bots` (hundreds of bots on one core): there each
    // apply finds its world evicted from the caches by the others, so the
    // second measures the apply's memory accesses more than its
    // instructions.
    let bots = Stream::of(BOT);
    let (mut w, mut t) = bots.world(1, 4 * PERIOD);
    g.bench_function("bot world, baseline = newest", |b| {
        b.iter(|| {
            t += 1;
            bots.apply(&mut w, t, Some(t - 1));
        });
    });
    // Built side by side, tick by tick, as the bots' worlds grow: each
    // world's allocations are spread over the heap among the others'.
    let mut worlds: Vec<_> = (0..COLD_WORLDS).map(|_| bots.world(1, 0)).collect();
    for _ in 0..4 * PERIOD {
        for (w, t) in &mut worlds {
            *t += 1;
            bots.apply(w, *t, Some(*t - 1));
        }
    }
    let mut next = 0;
    g.bench_function("bot world, 1,024 worlds in turn (cache-cold)", |b| {
        b.iter(|| {
            let (w, t) = &mut worlds[next];
            next = (next + 1) % COLD_WORLDS;
            *t += 1;
            bots.apply(w, *t, Some(*t - 1));
        });
    });
    // The same, and then every entity's state is read, as a renderer (or a
    // bot looking for the nearest player) does after each snapshot.
    g.bench_function(
        "bot world, 1,024 worlds in turn (cache-cold), apply and read",
        |b| {
            b.iter(|| {
                let (w, t) = &mut worlds[next];
                next = (next + 1) % COLD_WORLDS;
                *t += 1;
                bots.apply(w, *t, Some(*t - 1));
                w.iter().map(|(_, s)| s.pos.x).fold(0i32, i32::wrapping_add)
            });
        },
    );
    drop(worlds);

    let (mut w, mut t) = stream.world(LAG, 4 * PERIOD);
    g.bench_function("delta 10%, baseline lags 6 ticks", |b| {
        b.iter(|| {
            t += 1;
            stream.apply(&mut w, t, Some(t - LAG));
        });
    });

    // A first snapshot into a new world. With `SmallInput`, criterion keeps
    // a batch of worlds alive (a tenth of a sample's iterations, up to
    // dozens here), so each apply writes its ~120 KB of slots to memory that
    // is cold in the caches, like a new process's first snapshot. One at a
    // time, each world is dropped before the next is made, and its slots
    // reuse memory just freed.
    for (name, batch) in [
        ("full into an empty world", BatchSize::SmallInput),
        (
            "full into a new world, one at a time",
            BatchSize::PerIteration,
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || ClientWorld::new(CAPACITY),
                |mut w| {
                    stream.apply(&mut w, START, None);
                    w
                },
                batch,
            );
        });
    }

    // Only the full snapshot is timed; a delta against it follows each one,
    // as after a real resync.
    let (mut w, mut t) = stream.world(1, 4 * PERIOD);
    g.bench_function("full into a world holding them (resync)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                t += 1;
                let start = Instant::now();
                stream.apply(&mut w, t, None);
                total += start.elapsed();
                t += 1;
                stream.apply(&mut w, t, Some(t - 1));
            }
            total
        });
    });

    let base = stream.view(0);
    let frame = frame(Some(0), &stream.steady[1]);
    g.bench_function("old: SnapshotFrame::decode delta (read_delta)", |b| {
        b.iter(|| {
            frame
                .decode(black_box(Some(base)), &stream.limits)
                .expect("decodes")
        });
    });
    let frame = self::frame(None, &stream.full[0]);
    g.bench_function("old: SnapshotFrame::decode full (read_full)", |b| {
        b.iter(|| {
            frame
                .decode::<EntityState>(black_box(None), &stream.limits)
                .expect("decodes")
        });
    });
    let mut out = Vec::new();
    g.bench_function("reference: full decode by hand, no serde, no world", |b| {
        b.iter(|| decode_full_by_hand(black_box(&stream.full[0]), &mut out, &stream.limits));
    });
    g.finish();
}

fn main() {
    let stream = Stream::new();
    report(&stream);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    benches(&mut c, &stream);
    c.final_summary();
}
