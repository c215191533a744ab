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

use std::hint::black_box;

use tickwire_shared::client::ClientWorld;
use tickwire_shared::message::encode_snapshot;
use tickwire_shared::{GameProtocol, Limits, NetId, ServerMessage, Snapshot};

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// Entities per snapshot.
    pub entities: usize,
    /// Runs of each kind.
    pub iterations: u32,
    /// Mean microseconds to decode a full snapshot and apply it to an empty
    /// `ClientWorld`.
    pub full_us: f64,
    /// Mean microseconds to decode a delta and apply it to a `ClientWorld`
    /// (baseline: the previous tick).
    pub delta_us: f64,
    /// Mean microseconds to decode the full snapshot into a new `Snapshot`
    /// (the old path).
    pub decode_full_us: f64,
    /// Mean microseconds to decode the delta into a new `Snapshot` against
    /// its baseline (the old path).
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
            "{{\"entities\":{},\"iterations\":{},\"full_us\":{:.2},\"delta_us\":{:.2},\
             \"decode_full_us\":{:.2},\"decode_delta_us\":{:.2},\
             \"full_bytes\":{},\"delta_bytes\":{}}}",
            self.entities,
            self.iterations,
            self.full_us,
            self.delta_us,
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

/// Builds a view `base` and a view in which every `change_every`-th entity
/// was changed by `change`, encodes a full snapshot and the deltas between
/// them, checks that every path reproduces the views, then times
/// `iterations` runs of each with `now_ms`.
///
/// # Errors
/// A description when the synthetic snapshots cannot be encoded, decoded or
/// applied (a bug in the game's types or in the codec).
pub fn snapshot_decode<G: GameProtocol>(
    base: Vec<(NetId, G::EntityState)>,
    change: impl Fn(&G::EntityState) -> G::EntityState,
    change_every: usize,
    iterations: u32,
    mut now_ms: impl FnMut() -> f64,
) -> Result<BenchResult, String> {
    let limits = Limits::default();
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

    // The new path must reproduce the views, delta after delta.
    let mut world = ClientWorld::<G::EntityState>::new(64);
    apply::<G>(&mut world, &full, 1, None, &limits)?;
    let mut check = world.to_snapshot() == cur;
    apply::<G>(&mut world, &back, 2, Some(1), &limits)?;
    check &= world.to_snapshot() == base;
    apply::<G>(&mut world, &forth, 3, Some(2), &limits)?;
    check &= world.to_snapshot() == cur;
    // And so must the old one.
    let decode = |bytes: &[u8], baseline: &Snapshot<G::EntityState>| {
        match ServerMessage::<G::Event>::decode(bytes, &limits).map_err(|e| e.to_string())? {
            ServerMessage::Snapshot(frame) => frame
                .decode::<G::EntityState>(Some(baseline), &limits)
                .map_err(|e| e.to_string()),
            _ => Err("not a snapshot".to_owned()),
        }
    };
    check &= decode(&full, &base)? == cur && decode(&forth, &base)? == cur;
    if !check {
        return Err("a decoded snapshot differs from the encoded one".to_owned());
    }

    let iterations = iterations.max(1);
    let per_run = |start: f64, end: f64| (end - start) * 1000.0 / f64::from(iterations);

    let start = now_ms();
    for _ in 0..iterations {
        world.clear();
        apply::<G>(&mut world, black_box(&full), 1, None, &limits)?;
        black_box(world.len());
    }
    let full_us = per_run(start, now_ms());

    // Steady play: each delta is against the tick before it, alternating
    // between the two views so that every run changes the same entities.
    let deltas = [forth.as_slice(), back.as_slice()];
    world.clear();
    apply::<G>(&mut world, &full, 1, None, &limits)?;
    apply::<G>(&mut world, &back, 2, Some(1), &limits)?;
    let start = now_ms();
    for i in 0..iterations {
        let tick = 3 + i;
        let bytes = deltas[(i % 2) as usize];
        apply::<G>(&mut world, black_box(bytes), tick, Some(tick - 1), &limits)?;
        black_box(world.changes().changed.len());
    }
    let delta_us = per_run(start, now_ms());

    let mut time_decode = |bytes: &[u8]| -> Result<f64, String> {
        let start = now_ms();
        for _ in 0..iterations {
            black_box(decode(black_box(bytes), &base)?);
        }
        Ok(per_run(start, now_ms()))
    };
    let decode_full_us = time_decode(&full)?;
    let decode_delta_us = time_decode(&forth)?;
    Ok(BenchResult {
        entities: cur.len(),
        iterations,
        full_us,
        delta_us,
        decode_full_us,
        decode_delta_us,
        full_bytes: full.len(),
        delta_bytes: forth.len(),
    })
}

/// The arena's synthetic world: `n` players spread over the arena, of which
/// every tenth moves and turns.
///
/// # Errors
/// As [`snapshot_decode`].
pub fn arena_snapshot_decode(
    n: u32,
    iterations: u32,
    now_ms: impl FnMut() -> f64,
) -> Result<BenchResult, String> {
    use arena::{ARENA_SIZE, Arena, EntityKind, EntityState, MAX_HEALTH};
    use glam::Vec2;
    use tickwire_shared::quantize::{Angle16, QVec2};

    let base = (0..n)
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
        .collect();
    snapshot_decode::<Arena>(
        base,
        |s| {
            let mut s = s.clone();
            s.pos.x += 37;
            s.pos.y -= 12;
            s.angle = Angle16(s.angle.0.wrapping_add(300));
            s
        },
        10,
        iterations,
        now_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_measures_with_the_given_clock() {
        let mut t = 0.0;
        let r = arena_snapshot_decode(1000, 3, || {
            t += 1.0;
            t
        })
        .unwrap();
        assert_eq!(r.entities, 1000);
        assert_eq!(r.iterations, 3);
        // The fake clock advances 1 ms per reading: 1 ms over 3 runs.
        for us in [r.full_us, r.delta_us, r.decode_full_us, r.decode_delta_us] {
            assert!((us - 1000.0 / 3.0).abs() < 1e-9, "{r:?}");
        }
        assert!(r.delta_bytes * 5 < r.full_bytes, "{r:?}");
        assert!(
            r.to_json()
                .starts_with("{\"entities\":1000,\"iterations\":3,\"full_us\":")
        );
    }

    /// The same figures natively, for comparison with the browser's
    /// (`window.tickwire.bench(1000, 200)`):
    /// `cargo test -p tickwire-web --release -- --ignored --nocapture native_snapshot_bench`.
    #[test]
    #[ignore = "a timing run, not a check"]
    fn native_snapshot_bench() {
        let epoch = std::time::Instant::now();
        let r =
            arena_snapshot_decode(1000, 200, || epoch.elapsed().as_secs_f64() * 1000.0).unwrap();
        println!("native decode+apply bench: {}", r.to_json());
    }
}
