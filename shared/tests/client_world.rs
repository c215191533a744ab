//! `ClientWorld` against the definition: after every applied snapshot the
//! world equals the view the server encoded, whatever baselines the server
//! picks (any kept tick, never going back), with adds, removes and changes.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use tickwire_shared::client::{ApplyError, ClientWorld};
use tickwire_shared::message::encode_snapshot;
use tickwire_shared::{GameProtocol, Limits, NetId, ServerMessage, Snapshot};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct State {
    x: i16,
    hp: u8,
    name: Option<String>,
}

struct G;
impl GameProtocol for G {
    const NAME: &'static str = "world-props";
    const VERSION: u32 = 1;
    type Input = ();
    type EntityState = State;
    type Event = ();
}

fn state() -> impl Strategy<Value = State> {
    (
        -3i16..3,
        prop_oneof![Just(100u8), 0u8..=255],
        prop_oneof![3 => Just(None), 1 => Just(Some("ann".to_owned())), 1 => "[a-z]{0,3}".prop_map(Some)],
    )
        .prop_map(|(x, hp, name)| State { x, hp, name })
}

/// A view: up to 12 entities among ids 0..16.
fn view() -> impl Strategy<Value = Snapshot<State>> {
    proptest::collection::btree_map(0u32..16, state(), 0..12).prop_map(|m| {
        Snapshot::from_vec(m.into_iter().map(|(k, v)| (NetId(k), v)).collect()).unwrap()
    })
}

fn apply(world: &mut ClientWorld<State>, bytes: &[u8]) -> Result<(), ApplyError> {
    let limits = Limits::default();
    let ServerMessage::<()>::Snapshot(f) = ServerMessage::decode(bytes, &limits).unwrap() else {
        unreachable!()
    };
    world.apply::<G>(f.header.tick, f.header.baseline, f.body, &limits)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_world_equals_every_encoded_view(
        views in proptest::collection::vec(view(), 1..24),
        picks in proptest::collection::vec((any::<bool>(), 0usize..8), 24),
    ) {
        let mut world = ClientWorld::new(64);
        // (tick, view) the client applied; the server's baseline only moves forward.
        let mut applied: Vec<(u32, Snapshot<State>)> = Vec::new();
        let mut floor = 0usize;
        for (i, cur) in views.iter().enumerate() {
            let tick = 10 + 2 * i as u32;
            let (full, back) = picks[i];
            let base = if full || applied.len() <= floor {
                None
            } else {
                // Any applied tick at or after the newest baseline used.
                let choices = applied.len() - floor;
                let k = applied.len() - 1 - back % choices;
                floor = k;
                Some(k)
            };
            let bytes = encode_snapshot(tick, 0, base.map(|k| (applied[k].0, &applied[k].1)), cur).unwrap();
            apply(&mut world, &bytes).unwrap();
            prop_assert_eq!(world.to_snapshot(), cur.clone());
            prop_assert_eq!(world.tick(), Some(tick));
            prop_assert_eq!(world.len(), cur.len());
            let changes = world.changes();
            let prev = applied.last().map(|(_, s)| s.clone()).unwrap_or_default();
            for (id, s) in cur.iter() {
                let was = prev.get(id);
                prop_assert_eq!(changes.added.contains(&id), was.is_none());
                prop_assert_eq!(changes.changed.contains(&id), was.is_some_and(|w| w != s));
            }
            for (id, _) in prev.iter() {
                prop_assert_eq!(changes.removed.contains(&id), cur.get(id).is_none());
            }
            applied.push((tick, cur.clone()));
            // Stale: the same tick again is refused and changes nothing.
            let stale = matches!(apply(&mut world, &bytes), Err(ApplyError::Stale { .. }));
            prop_assert!(stale, "a repeated tick must be stale");
            prop_assert_eq!(world.to_snapshot(), cur.clone());
        }
    }

    #[test]
    fn garbage_bodies_never_panic_and_never_change_the_world(
        base in view(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        delta in any::<bool>(),
    ) {
        let mut world = ClientWorld::new(64);
        apply(&mut world, &encode_snapshot(1, 0, None, &base).unwrap()).unwrap();
        let limits = Limits::default();
        if world.apply::<G>(2, delta.then_some(1), &body, &limits).is_err() {
            prop_assert_eq!(world.to_snapshot(), base);
            prop_assert_eq!(world.tick(), Some(1));
        }
    }
}
