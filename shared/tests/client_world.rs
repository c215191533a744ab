//! `ClientWorld` against the definition: after every applied snapshot the
//! world equals the view the server encoded, whatever baselines the server
//! picks (any kept tick, never going back), with adds, removes and changes.
//! Each property runs twice: for a game that decodes with serde only, and
//! for one with the derived in-place paths (`patch_in_place` for patches,
//! `read_in_place` for whole states), which must agree with serde on every
//! byte the server can send, layout changes included.

use std::sync::Arc;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use tickwire_derive::Patch;
use tickwire_shared::client::{ApplyError, ClientWorld};
use tickwire_shared::message::encode_snapshot;
use tickwire_shared::patch::PatchError;
use tickwire_shared::{GameProtocol, Limits, NetId, Reader, ServerMessage, Snapshot};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
enum Kind {
    Ship,
    Rock { size: u16 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
struct State {
    x: i16,
    hp: u8,
    name: Option<String>,
    kind: Kind,
    score: i32,
    alive: bool,
    tag: char,
    label: Arc<str>,
}

/// Serde only.
struct G;
impl GameProtocol for G {
    const NAME: &'static str = "world-props";
    const VERSION: u32 = 1;
    type Input = ();
    type EntityState = State;
    type Event = ();
    type Message = ();
}

/// The derived in-place paths.
struct GP;
impl GameProtocol for GP {
    const NAME: &'static str = "world-props";
    const VERSION: u32 = 1;
    type Input = ();
    type EntityState = State;
    type Event = ();
    type Message = ();
    tickwire_shared::derived_patch_hooks!();
}

fn state() -> impl Strategy<Value = State> {
    (
        (
            -3i16..3,
            prop_oneof![Just(100u8), 0u8..=255],
            prop_oneof![3 => Just(None), 1 => Just(Some("ann".to_owned())), 1 => "[a-z]{0,3}".prop_map(Some)],
            prop_oneof![Just(Kind::Ship), (0u16..3).prop_map(|size| Kind::Rock { size }), any::<u16>().prop_map(|size| Kind::Rock { size })],
        ),
        (
            prop_oneof![Just(0i32), -2i32..2, any::<i32>()],
            any::<bool>(),
            prop_oneof![Just('a'), any::<char>()],
            prop_oneof![Just(""), Just("ann"), Just("bob")].prop_map(Arc::<str>::from),
        ),
    )
        .prop_map(|((x, hp, name, kind), (score, alive, tag, label))| State {
            x,
            hp,
            name,
            kind,
            score,
            alive,
            tag,
            label,
        })
}

/// A view: up to 12 entities among ids 0..16.
fn view() -> impl Strategy<Value = Snapshot<State>> {
    proptest::collection::btree_map(0u32..16, state(), 0..12).prop_map(|m| {
        Snapshot::from_vec(m.into_iter().map(|(k, v)| (NetId(k), v)).collect()).unwrap()
    })
}

fn apply<P: GameProtocol<EntityState = State>>(
    world: &mut ClientWorld<State>,
    bytes: &[u8],
) -> Result<(), ApplyError> {
    let limits = Limits::default();
    let ServerMessage::<()>::Snapshot(f) = ServerMessage::decode(bytes, &limits).unwrap() else {
        unreachable!()
    };
    world.apply::<P>(f.header.tick, f.header.baseline, f.body, &limits)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_world_equals_every_encoded_view(
        views in proptest::collection::vec(view(), 1..24),
        picks in proptest::collection::vec((any::<bool>(), 0usize..8), 24),
    ) {
        world_equals_every_view::<G>(&views, &picks)?;
        world_equals_every_view::<GP>(&views, &picks)?;
    }

    #[test]
    fn garbage_bodies_never_panic_and_never_change_the_world(
        base in view(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        delta in any::<bool>(),
    ) {
        garbage_changes_nothing::<G>(&base, &body, delta)?;
        garbage_changes_nothing::<GP>(&base, &body, delta)?;
    }
}

fn world_equals_every_view<P: GameProtocol<EntityState = State>>(
    views: &[Snapshot<State>],
    picks: &[(bool, usize)],
) -> Result<(), TestCaseError> {
    {
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
            let bytes =
                encode_snapshot(tick, 0, base.map(|k| (applied[k].0, &applied[k].1)), cur).unwrap();
            apply::<P>(&mut world, &bytes).unwrap();
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
            let stale = matches!(
                apply::<P>(&mut world, &bytes),
                Err(ApplyError::Stale { .. })
            );
            prop_assert!(stale, "a repeated tick must be stale");
            prop_assert_eq!(world.to_snapshot(), cur.clone());
        }
    }
    Ok(())
}

fn garbage_changes_nothing<P: GameProtocol<EntityState = State>>(
    base: &Snapshot<State>,
    body: &[u8],
    delta: bool,
) -> Result<(), TestCaseError> {
    let mut world = ClientWorld::new(64);
    apply::<P>(&mut world, &encode_snapshot(1, 0, None, base).unwrap()).unwrap();
    let limits = Limits::default();
    if world
        .apply::<P>(2, delta.then_some(1), body, &limits)
        .is_err()
    {
        prop_assert_eq!(&world.to_snapshot(), base);
        prop_assert_eq!(world.tick(), Some(1));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A whole state read in place over any other state (same layout or
    /// not) is what serde decodes from the same bytes, and a mutated or
    /// truncated encoding is refused by both or accepted by both with the
    /// same value.
    #[test]
    fn read_in_place_agrees_with_serde(
        template in state(),
        value in state(),
        flip in proptest::option::of((0usize..64, any::<u8>())),
        cut in proptest::option::of(0usize..64),
    ) {
        let limits = Limits::default();
        let mut w = tickwire_shared::Writer::new();
        w.value("state", &value).unwrap();
        let mut bytes = w.into_vec();
        if let Some((i, b)) = flip && !bytes.is_empty() {
            let i = i % bytes.len();
            bytes[i] = b;
        }
        if let Some(c) = cut {
            bytes.truncate(c.min(bytes.len()));
        }
        let mut serde_reader = Reader::new(&bytes);
        let serde = serde_reader.value::<State>("state").ok();
        let mut fast = template.clone();
        let mut r = Reader::new(&bytes);
        match tickwire_shared::patch::read_in_place(&mut fast, &mut r, &limits) {
            Ok(()) => {
                prop_assert_eq!(Some(&fast), serde.as_ref());
                prop_assert_eq!(r.position(), serde_reader.position());
            }
            // Another layout: the caller falls back to serde.
            Err(PatchError::Layout) => {}
            Err(PatchError::Decode(e)) => {
                prop_assert!(serde.is_none(), "in place refused ({e}) what serde decodes: {serde:?}");
            }
        }
    }
}
