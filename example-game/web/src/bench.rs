//! A micro-benchmark of the client's hot path, timed with a caller-supplied
//! clock so that it runs in the browser (`performance.now()`) and on the
//! host alike:
//!
//! * **the path the client uses**: decoding a snapshot message and applying
//!   it to the session's world with `ClientWorld::apply` (a full snapshot
//!   into an empty world, as on connecting; and a delta against the previous
//!   tick with every tenth entity changed, as in steady play);
//! * **the old path**, for comparison: decoding the same messages into a new
//!   `Snapshot` with `SnapshotFrame::decode` (a whole copy of the world per
//!   snapshot).
//!
//! Each figure is sampled the same way on both sides: one untimed batch of
//! `iterations` runs first (a warm-up: in the browser it lets the engine
//! replace its baseline code with optimized code, which happens at function
//! calls, so every run is a call of a non-inlined function as in the real
//! client), then `samples` timed batches of `iterations` runs each. The
//! result is the median of the batch means, plus the fastest batch, so a
//! batch slowed down by another process on the machine does not skew it.

use std::hint::black_box;

use tickwire_shared::client::ClientWorld;
use tickwire_shared::message::encode_snapshot;
use tickwire_shared::{GameProtocol, Limits, NetId, ServerMessage, Snapshot};

/// Timed batches per figure when the caller does not say.
pub const DEFAULT_SAMPLES: u32 = 11;

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// Entities per snapshot.
    pub entities: usize,
    /// Runs per timed batch (and in the warm-up batch).
    pub iterations: u32,
    /// Timed batches of each kind.
    pub samples: u32,
    /// Microseconds to decode a full snapshot and apply it to an empty
    /// `ClientWorld` (median of the batch means).
    pub full_us: f64,
    /// The fastest batch mean of `full_us`.
    pub full_min_us: f64,
    /// Microseconds to decode a delta and apply it to a `ClientWorld`
    /// (baseline: the previous tick; median of the batch means).
    pub delta_us: f64,
    /// The fastest batch mean of `delta_us`.
    pub delta_min_us: f64,
    /// Microseconds to decode the full snapshot into a new `Snapshot` (the
    /// old path; median of the batch means).
    pub decode_full_us: f64,
    /// Microseconds to decode the delta into a new `Snapshot` against its
    /// baseline (the old path; median of the batch means).
    pub decode_delta_us: f64,
    /// Size of the full snapshot message.
    pub full_bytes: usize,
    /// Size of the delta message.
    pub delta_bytes: usize,
}

impl BenchResult {
    /// As a JSON object.
    #[must_use]
    pub fn to_json(&self) -> String {
        format!(
            "{{\"entities\":{},\"iterations\":{},\"samples\":{},\
             \"full_us\":{:.2},\"full_min_us\":{:.2},\"delta_us\":{:.2},\"delta_min_us\":{:.2},\
             \"decode_full_us\":{:.2},\"decode_delta_us\":{:.2},\
             \"full_bytes\":{},\"delta_bytes\":{}}}",
            self.entities,
            self.iterations,
            self.samples,
            self.full_us,
            self.full_min_us,
            self.delta_us,
            self.delta_min_us,
            self.decode_full_us,
            self.decode_delta_us,
            self.full_bytes,
            self.delta_bytes
        )
    }
}

/// Decodes a snapshot message and applies its body to `world` as the
/// snapshot of `tick` against `baseline` (the ticks in the message's own
/// header are ignored, so one message can be applied again and again).
///
/// Never inlined: each run is a call, as each received snapshot is in the
/// client, so the browser's optimized code is used once it is ready (wasm
/// engines switch tiers at calls, not inside a running loop).
#[inline(never)]
fn apply<G: GameProtocol>(
    world: &mut ClientWorld<G::EntityState>,
    bytes: &[u8],
    tick: u32,
    baseline: Option<u32>,
    limits: &Limits,
) -> Result<(), String> {
    match ServerMessage::<G::Event>::decode(bytes, limits).map_err(|e| e.to_string())? {
        ServerMessage::Snapshot(frame) => world
            .apply::<G>(tick, baseline, frame.body, limits)
            .map_err(|e| e.to_string()),
        _ => Err("not a snapshot".to_owned()),
    }
}

/// The old path: decodes a snapshot message into a new `Snapshot` against
/// `baseline` (not inlined, as [`apply`]).
#[inline(never)]
fn decode_old<G: GameProtocol>(
    bytes: &[u8],
    baseline: &Snapshot<G::EntityState>,
    limits: &Limits,
) -> Result<Snapshot<G::EntityState>, String> {
    match ServerMessage::<G::Event>::decode(bytes, limits).map_err(|e| e.to_string())? {
        ServerMessage::Snapshot(frame) => frame
            .decode::<G::EntityState>(Some(baseline), limits)
            .map_err(|e| e.to_string()),
        _ => Err("not a snapshot".to_owned()),
    }
}

/// The median and the minimum of one figure's batch means.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Figure {
    median_us: f64,
    min_us: f64,
}

/// How many runs each batch has and how many batches are timed, with the
/// clock that times them.
struct Sampler<C> {
    iterations: u32,
    samples: u32,
    now_ms: C,
}

impl<C: FnMut() -> f64> Sampler<C> {
    /// Runs one untimed warm-up batch of `run`, then `samples` timed
    /// batches, and returns the median and minimum batch mean in µs.
    fn time(&mut self, mut run: impl FnMut() -> Result<(), String>) -> Result<Figure, String> {
        for _ in 0..self.iterations {
            run()?;
        }
        let mut means = Vec::with_capacity(self.samples as usize);
        for _ in 0..self.samples {
            let start = (self.now_ms)();
            for _ in 0..self.iterations {
                run()?;
            }
            let end = (self.now_ms)();
            means.push((end - start) * 1000.0 / f64::from(self.iterations));
        }
        means.sort_by(f64::total_cmp);
        let mid = means.len() / 2;
        let median_us = if means.len() % 2 == 0 {
            (means[mid - 1] + means[mid]) / 2.0
        } else {
            means[mid]
        };
        Ok(Figure {
            median_us,
            min_us: means[0],
        })
    }
}

/// Two views of a world and the snapshot messages between them.
struct Views<S> {
    base: Snapshot<S>,
    /// `base` with every `change_every`-th entity changed.
    cur: Snapshot<S>,
    /// `cur` as a full snapshot of tick 1.
    full: Vec<u8>,
    /// `base` (tick 1) → `cur` (tick 2).
    forth: Vec<u8>,
    /// `cur` (tick 2) → `base` (tick 3).
    back: Vec<u8>,
}

fn views<S: serde::Serialize + Clone + PartialEq>(
    base: Vec<(NetId, S)>,
    change: impl Fn(&S) -> S,
    change_every: usize,
) -> Result<Views<S>, String> {
    let base = Snapshot::from_vec(base).map_err(|e| e.to_string())?;
    let cur = Snapshot::from_vec(
        base.iter()
            .enumerate()
            .map(|(i, (id, s))| {
                let s = if i % change_every.max(1) == 0 {
                    change(s)
                } else {
                    s.clone()
                };
                (id, s)
            })
            .collect(),
    )
    .map_err(|e| e.to_string())?;
    let err = |e: tickwire_shared::EncodeError| e.to_string();
    let full = encode_snapshot(1, 0, None, &cur).map_err(err)?;
    let forth = encode_snapshot(2, 0, Some((1, &base)), &cur).map_err(err)?;
    let back = encode_snapshot(3, 0, Some((2, &cur)), &base).map_err(err)?;
    Ok(Views {
        base,
        cur,
        full,
        forth,
        back,
    })
}

/// Times applying deltas in steady play (each against the tick before,
/// alternating between the two views of [`views`]) with `then` run after
/// each apply on the world and the tick: the Rust path plus what a
/// front-end does with each snapshot. With `alone`, one delta is applied
/// before timing and only `then` is timed, always on that world (tick 2):
/// the front-end's part without the noise of the apply around it. Returns
/// the median and fastest batch means in µs.
///
/// # Errors
/// As [`snapshot_decode`], and what `then` returns.
#[allow(clippy::too_many_arguments)] // a bench's knobs, named at each call
pub fn delta_then<G: GameProtocol>(
    base: Vec<(NetId, G::EntityState)>,
    change: impl Fn(&G::EntityState) -> G::EntityState,
    change_every: usize,
    iterations: u32,
    samples: u32,
    now_ms: impl FnMut() -> f64,
    alone: bool,
    mut then: impl FnMut(&ClientWorld<G::EntityState>, u32) -> Result<(), String>,
) -> Result<(f64, f64), String> {
    let limits = Limits::default();
    let v = views(base, change, change_every)?;
    let mut world = ClientWorld::<G::EntityState>::new(64);
    apply::<G>(&mut world, &v.full, 1, None, &limits)?;
    apply::<G>(&mut world, &v.back, 2, Some(1), &limits)?;
    let deltas = [v.forth.as_slice(), v.back.as_slice()];
    let mut sampler = Sampler {
        iterations: iterations.max(1),
        samples: samples.max(1),
        now_ms,
    };
    let mut tick = 2u32;
    let fig = sampler.time(|| {
        if alone {
            return then(black_box(&world), 2);
        }
        tick += 1;
        let bytes = deltas[usize::from(tick.is_multiple_of(2))];
        apply::<G>(&mut world, black_box(bytes), tick, Some(tick - 1), &limits)?;
        then(&world, tick)
    })?;
    Ok((fig.median_us, fig.min_us))
}

/// Builds a view `base` and a view in which every `change_every`-th entity
/// was changed by `change`, encodes a full snapshot and the deltas between
/// them, checks that every path reproduces the views, then times each path
/// with `now_ms`: a warm-up batch of `iterations` runs, then `samples`
/// timed batches of `iterations` runs (see the module docs).
///
/// # Errors
/// A description when the synthetic snapshots cannot be encoded, decoded or
/// applied (a bug in the game's types or in the codec).
pub fn snapshot_decode<G: GameProtocol>(
    base: Vec<(NetId, G::EntityState)>,
    change: impl Fn(&G::EntityState) -> G::EntityState,
    change_every: usize,
    iterations: u32,
    samples: u32,
    now_ms: impl FnMut() -> f64,
) -> Result<BenchResult, String> {
    let limits = Limits::default();
    let Views {
        base,
        cur,
        full,
        forth,
        back,
    } = views(base, change, change_every)?;

    // The new path must reproduce the views, delta after delta.
    let mut world = ClientWorld::<G::EntityState>::new(64);
    apply::<G>(&mut world, &full, 1, None, &limits)?;
    let mut check = world.to_snapshot() == cur;
    apply::<G>(&mut world, &back, 2, Some(1), &limits)?;
    check &= world.to_snapshot() == base;
    apply::<G>(&mut world, &forth, 3, Some(2), &limits)?;
    check &= world.to_snapshot() == cur;
    // And so must the old one.
    check &= decode_old::<G>(&full, &base, &limits)? == cur
        && decode_old::<G>(&forth, &base, &limits)? == cur;
    if !check {
        return Err("a decoded snapshot differs from the encoded one".to_owned());
    }

    let mut sampler = Sampler {
        iterations: iterations.max(1),
        samples: samples.max(1),
        now_ms,
    };

    let full_fig = sampler.time(|| {
        world.clear();
        apply::<G>(&mut world, black_box(&full), 1, None, &limits)?;
        black_box(world.len());
        Ok(())
    })?;

    // Steady play: each delta is against the tick before it, alternating
    // between the two views so that every run changes the same entities.
    let deltas = [forth.as_slice(), back.as_slice()];
    world.clear();
    apply::<G>(&mut world, &full, 1, None, &limits)?;
    apply::<G>(&mut world, &back, 2, Some(1), &limits)?;
    let mut tick = 2u32;
    let delta_fig = sampler.time(|| {
        tick += 1;
        // The world is at `base` after tick 2: odd ticks apply `forth`,
        // even ones `back`.
        let bytes = deltas[usize::from(tick.is_multiple_of(2))];
        apply::<G>(&mut world, black_box(bytes), tick, Some(tick - 1), &limits)?;
        black_box(world.changes().changed.len());
        Ok(())
    })?;

    let mut time_decode = |bytes: &[u8]| {
        sampler.time(|| {
            black_box(decode_old::<G>(black_box(bytes), &base, &limits)?);
            Ok(())
        })
    };
    let decode_full = time_decode(&full)?;
    let decode_delta = time_decode(&forth)?;
    Ok(BenchResult {
        entities: cur.len(),
        iterations: sampler.iterations,
        samples: sampler.samples,
        full_us: full_fig.median_us,
        full_min_us: full_fig.min_us,
        delta_us: delta_fig.median_us,
        delta_min_us: delta_fig.min_us,
        decode_full_us: decode_full.median_us,
        decode_delta_us: decode_delta.median_us,
        full_bytes: full.len(),
        delta_bytes: forth.len(),
    })
}

/// The arena's synthetic world: `n` entities (every fourth a projectile)
/// spread over the arena.
fn arena_world(n: u32) -> Vec<(NetId, arena::EntityState)> {
    use arena::{ARENA_SIZE, EntityKind, EntityState, MAX_HEALTH};
    use glam::Vec2;
    use tickwire_shared::quantize::{Angle16, QVec2};

    (0..n)
        .map(|i| {
            let f = i as f32;
            let state = EntityState {
                kind: if i % 4 == 3 {
                    EntityKind::Projectile
                } else {
                    EntityKind::Player
                },
                pos: QVec2::from_vec2(Vec2::new(
                    (f * 37.0) % ARENA_SIZE.x,
                    (f * 91.0) % ARENA_SIZE.y,
                )),
                angle: Angle16((i * 997 % 65_536) as u16),
                health: MAX_HEALTH,
                owner: i,
                name: if i % 4 == 3 {
                    arena::no_name()
                } else {
                    format!("player-{i}").into()
                },
                kills: (i % 13) as u16,
                deaths: (i % 7) as u16,
            };
            (NetId(i + 1), state)
        })
        .collect()
}

/// One tick of movement and turning for a changed entity.
fn arena_change(s: &arena::EntityState) -> arena::EntityState {
    let mut s = s.clone();
    s.pos.x += 37;
    s.pos.y -= 12;
    s.angle = tickwire_shared::quantize::Angle16(s.angle.0.wrapping_add(300));
    s
}

/// The arena's synthetic world of `n` entities, of which every tenth moves
/// and turns.
///
/// # Errors
/// As [`snapshot_decode`].
pub fn arena_snapshot_decode(
    n: u32,
    iterations: u32,
    samples: u32,
    now_ms: impl FnMut() -> f64,
) -> Result<BenchResult, String> {
    snapshot_decode::<arena::Arena>(
        arena_world(n),
        arena_change,
        10,
        iterations,
        samples,
        now_ms,
    )
}

/// What a front-end adds per snapshot to the Rust path, in the arena's
/// synthetic world of `n` entities with every tenth changed.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontEndCost {
    /// Entities per snapshot.
    pub entities: u32,
    /// Entities a delta changes.
    pub changed: u32,
    /// µs to decode and apply a delta (median batch mean).
    pub rust_us: f64,
    /// µs to decode and apply it, then run the front-end's part (median).
    pub with_front_end_us: f64,
    /// The fastest batch means of the two.
    pub rust_min_us: f64,
    /// See `rust_min_us`.
    pub with_front_end_min_us: f64,
    /// µs of the front-end's part timed alone, after one applied delta
    /// (median batch mean; no apply around it, so less noise than
    /// [`FrontEndCost::extra_us`]).
    pub alone_us: f64,
    /// The fastest batch mean of `alone_us`.
    pub alone_min_us: f64,
}

impl FrontEndCost {
    /// The front-end's part per snapshot, µs (difference of the medians).
    #[must_use]
    pub fn extra_us(&self) -> f64 {
        self.with_front_end_us - self.rust_us
    }

    /// As a JSON object (with `extra_us` and `extra_per_changed_us`).
    #[must_use]
    pub fn to_json(&self) -> String {
        format!(
            "{{\"entities\":{},\"changed\":{},\"rust_us\":{:.2},\"with_front_end_us\":{:.2},\
             \"rust_min_us\":{:.2},\"with_front_end_min_us\":{:.2},\"extra_us\":{:.2},\
             \"extra_per_changed_us\":{:.3},\"alone_us\":{:.3},\"alone_min_us\":{:.3}}}",
            self.entities,
            self.changed,
            self.rust_us,
            self.with_front_end_us,
            self.rust_min_us,
            self.with_front_end_min_us,
            self.extra_us(),
            self.extra_us() / f64::from(self.changed.max(1)),
            self.alone_us,
            self.alone_min_us,
        )
    }
}

/// What a front-end does after each applied snapshot (world, tick).
type FrontEnd<'a> = dyn FnMut(&ClientWorld<arena::EntityState>, u32) -> Result<(), String> + 'a;

/// Times the arena's deltas (`n` entities, every tenth changed) through the
/// Rust path alone, then with `front_end(world, tick)` after each apply
/// (for the JS API: building the `onSnapshot` object and calling the
/// listener), each as [`delta_then`] does.
///
/// # Errors
/// As [`delta_then`].
pub fn arena_front_end_cost(
    n: u32,
    iterations: u32,
    samples: u32,
    mut now_ms: impl FnMut() -> f64,
    mut front_end: impl FnMut(&ClientWorld<arena::EntityState>, u32) -> Result<(), String>,
) -> Result<FrontEndCost, String> {
    let mut time = |alone: bool, then: &mut FrontEnd<'_>| {
        delta_then::<arena::Arena>(
            arena_world(n),
            arena_change,
            10,
            iterations,
            samples,
            &mut now_ms,
            alone,
            then,
        )
    };
    let (rust_us, rust_min_us) = time(false, &mut |w, _| {
        black_box(w.changes().changed.len());
        Ok(())
    })?;
    let (with_front_end_us, with_front_end_min_us) = time(false, &mut front_end)?;
    let (alone_us, alone_min_us) = time(true, &mut front_end)?;
    Ok(FrontEndCost {
        alone_us,
        alone_min_us,
        entities: n,
        changed: n.div_ceil(10),
        rust_us,
        with_front_end_us,
        rust_min_us,
        with_front_end_min_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_measures_with_the_given_clock() {
        let mut t = 0.0;
        let r = arena_snapshot_decode(1000, 3, 5, || {
            t += 1.0;
            t
        })
        .unwrap();
        assert_eq!(r.entities, 1000);
        assert_eq!(r.iterations, 3);
        assert_eq!(r.samples, 5);
        // The fake clock advances 1 ms per reading: every batch takes 1 ms
        // over 3 runs.
        for us in [
            r.full_us,
            r.full_min_us,
            r.delta_us,
            r.delta_min_us,
            r.decode_full_us,
            r.decode_delta_us,
        ] {
            assert!((us - 1000.0 / 3.0).abs() < 1e-9, "{r:?}");
        }
        // 4 figures × 5 batches × 2 readings, none in the warm-up.
        assert_eq!(t, 40.0);
        assert!(r.delta_bytes * 5 < r.full_bytes, "{r:?}");
        assert!(r.to_json().starts_with(
            "{\"entities\":1000,\"iterations\":3,\"samples\":5,\"full_us\":333.33,\"full_min_us\":333.33,"
        ));
    }

    #[test]
    fn a_figure_is_the_median_and_the_fastest_batch_after_an_untimed_warm_up() {
        let check = |readings: &[f64], median_us: f64, min_us: f64| {
            let mut clock = readings.iter().copied();
            let mut runs = 0;
            let mut sampler = Sampler {
                iterations: 2,
                samples: (readings.len() / 2) as u32,
                now_ms: || clock.next().unwrap(),
            };
            let fig = sampler
                .time(|| {
                    runs += 1;
                    Ok(())
                })
                .unwrap();
            assert_eq!(fig, Figure { median_us, min_us }, "{readings:?}");
            assert_eq!(runs, 2 + readings.len(), "warm-up + batches of 2");
        };
        // Batches of 2 runs taking 2, 6 and 4 ms: 1000, 3000, 2000 µs a run.
        check(&[0.0, 2.0, 2.0, 8.0, 8.0, 12.0], 2000.0, 1000.0);
        // An even count: the mean of the middle two.
        check(&[0.0, 2.0, 2.0, 8.0, 8.0, 12.0, 20.0, 30.0], 2500.0, 1000.0);
        check(&[5.0, 5.5], 250.0, 250.0);
    }

    #[test]
    fn the_front_end_runs_after_each_delta_with_its_changes() {
        let mut t = 0.0;
        let mut calls = 0;
        let mut ticks = Vec::new();
        let cost = arena_front_end_cost(
            100,
            2,
            3,
            || {
                t += 1.0;
                t
            },
            |world, tick| {
                calls += 1;
                ticks.push(tick);
                assert_eq!(world.changes().changed.len(), 10);
                Ok(())
            },
        )
        .unwrap();
        // A warm-up batch and 3 timed ones of 2 runs, each on the next tick;
        // then as many on one applied delta, alone (tick 2).
        assert_eq!(calls, 16);
        let (after_deltas, alone) = ticks.split_at(8);
        assert!(
            after_deltas.windows(2).all(|w| w[1] == w[0] + 1),
            "{ticks:?}"
        );
        assert!(alone.iter().all(|&t| t == 2), "{ticks:?}");
        assert_eq!((cost.entities, cost.changed), (100, 10));
        assert!(
            cost.to_json().contains("\"extra_us\":0.00"),
            "{}",
            cost.to_json()
        );
        assert_eq!(
            arena_front_end_cost(10, 1, 1, || 0.0, |_, _| Err("no".to_owned())),
            Err("no".to_owned())
        );
    }

    #[test]
    fn a_failing_run_fails_the_figure() {
        let mut sampler = Sampler {
            iterations: 3,
            samples: 2,
            now_ms: || 0.0,
        };
        assert_eq!(
            sampler.time(|| Err("bad".to_owned())),
            Err("bad".to_owned())
        );
    }

    /// The same figures natively, for comparison with the browser's
    /// (`window.tickwire.bench(1000, 200)`):
    /// `cargo test -p arena-web --release -- --ignored --nocapture native_snapshot_bench`.
    /// `TICKWIRE_BENCH=entities,iterations,samples` overrides the defaults
    /// (as `cargo xtask bench-wasm` does, to match its browser run).
    #[test]
    #[ignore = "a timing run, not a check"]
    fn native_snapshot_bench() {
        let (entities, iterations, samples) = std::env::var("TICKWIRE_BENCH")
            .ok()
            .and_then(|v| {
                let n: Vec<u32> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
                (n.len() == 3).then(|| (n[0], n[1], n[2]))
            })
            .unwrap_or((1000, 200, DEFAULT_SAMPLES));
        let epoch = std::time::Instant::now();
        let r = arena_snapshot_decode(entities, iterations, samples, || {
            epoch.elapsed().as_secs_f64() * 1000.0
        })
        .unwrap();
        println!("native decode+apply bench: {}", r.to_json());
    }
}
