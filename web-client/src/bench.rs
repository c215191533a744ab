//! A micro-benchmark of the client's hot path: decoding a snapshot message
//! and applying it (a full snapshot, and a delta against a baseline), timed
//! with a caller-supplied clock so that it runs in the browser
//! (`performance.now()`) and on the host alike.

use std::hint::black_box;

use tickwire_shared::delta::{DeltaScratch, write_delta};
use tickwire_shared::{
    GameProtocol, Limits, NetId, ServerMessage, Snapshot, SnapshotHeader, Writer, snapshot,
};

/// What one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// Entities per snapshot.
    pub entities: usize,
    /// Runs of each kind.
    pub iterations: u32,
    /// Mean microseconds to decode and apply the full snapshot.
    pub full_us: f64,
    /// Mean microseconds to decode and apply the delta.
    pub delta_us: f64,
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
             \"full_bytes\":{},\"delta_bytes\":{}}}",
            self.entities,
            self.iterations,
            self.full_us,
            self.delta_us,
            self.full_bytes,
            self.delta_bytes
        )
    }
}

/// Builds a baseline of `base` entities and a current view in which every
/// `change_every`-th entity was changed by `change`, then times `iterations`
/// decodes of each message with `now_ms`.
///
/// # Errors
/// A description when the synthetic snapshot cannot be encoded or decoded
/// (a bug in the game's types).
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

    let mut full = Writer::new();
    SnapshotHeader {
        tick: 2,
        last_input: 0,
        baseline: None,
    }
    .encode(&mut full);
    snapshot::write_full(&mut full, cur.iter()).map_err(|e| e.to_string())?;
    let mut delta = Writer::new();
    SnapshotHeader {
        tick: 2,
        last_input: 0,
        baseline: Some(1),
    }
    .encode(&mut delta);
    write_delta(
        &mut delta,
        base.iter(),
        cur.iter(),
        &mut DeltaScratch::default(),
        limits.max_fields_per_entity,
    )
    .map_err(|e| e.to_string())?;

    let decode_apply = |bytes: &[u8]| -> Result<Snapshot<G::EntityState>, String> {
        match ServerMessage::<G::Event>::decode(bytes, &limits).map_err(|e| e.to_string())? {
            ServerMessage::Snapshot(frame) => frame
                .decode::<G::EntityState>(Some(&base), &limits)
                .map_err(|e| e.to_string()),
            _ => Err("not a snapshot".to_owned()),
        }
    };
    // Both must reproduce the current view.
    for bytes in [full.as_slice(), delta.as_slice()] {
        if decode_apply(bytes)? != cur {
            return Err("a decoded snapshot differs from the encoded one".to_owned());
        }
    }
    let iterations = iterations.max(1);
    let mut time = |bytes: &[u8]| -> Result<f64, String> {
        let start = now_ms();
        for _ in 0..iterations {
            black_box(decode_apply(black_box(bytes))?);
        }
        Ok((now_ms() - start) * 1000.0 / f64::from(iterations))
    };
    let full_us = time(full.as_slice())?;
    let delta_us = time(delta.as_slice())?;
    Ok(BenchResult {
        entities: cur.len(),
        iterations,
        full_us,
        delta_us,
        full_bytes: full.len(),
        delta_bytes: delta.len(),
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
        assert!((r.full_us - 1000.0 / 3.0).abs() < 1e-9);
        assert!(r.delta_bytes * 5 < r.full_bytes, "{r:?}");
        assert!(
            r.to_json()
                .starts_with("{\"entities\":1000,\"iterations\":3,")
        );
    }
}
