//! Differential tests: the derived in-place path against the serde path, on
//! real patches between random states (PROTOCOL.md §8.5) and on mutated or
//! random patch bytes.

mod common;

use std::sync::Arc;

use common::{Real, check_garbage, check_real, fast, patch_bytes, slow};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use tickwire_derive::Patch;
use tickwire_shared::Limits;
use tickwire_shared::quantize::{Angle16, QVec2};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
enum Shape {
    Dot,
    Circle(u16),
    Rect {
        w: u16,
        h: i16,
    },
    Tagged(String),
    /// Same field kinds as `Circle`: a change between them is a patched
    /// variant index, which the in-place path hands to the serde path.
    Ring(u16),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
struct Item {
    id: u32,
    count: i8,
    label: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
enum Either<L, R> {
    Left(L),
    Right(R),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
struct State {
    shape: Shape,
    pos: QVec2<16>,
    angle: Angle16,
    health: u8,
    name: Arc<str>,
    tag: Option<u64>,
    items: Vec<Item>,
    /// `Some(())` and `None` have the same field kinds: a layout change.
    marker: Option<()>,
    pair: (i64, f64),
    either: Either<u32, u32>,
    flags: [bool; 3],
    letter: char,
    big: u128,
    ratio: f32,
    text: String,
}

const FIELDS: u32 = 15;

/// Every primitive kind the differ has a method for.
type Wide = (
    (u16, u32, u64, i64),
    (u128, i128, f32, f64),
    (i8, Vec<u16>, [u32; 2], Option<u8>),
    (String, Arc<str>, char, bool),
);

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Dot),
        any::<u16>().prop_map(Shape::Circle),
        (any::<u16>(), any::<i16>()).prop_map(|(w, h)| Shape::Rect { w, h }),
        ".{0,6}".prop_map(Shape::Tagged),
        any::<u16>().prop_map(Shape::Ring),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    (
        any::<u32>(),
        any::<i8>(),
        proptest::option::of("[a-z]{0,4}"),
    )
        .prop_map(|(id, count, label)| Item { id, count, label })
}

prop_compose! {
    fn state()(
        shape in shape(),
        pos in any::<(i32, i32)>(),
        angle in any::<u16>(),
        health in any::<u8>(),
        name in ".{0,10}",
        tag in any::<Option<u64>>(),
        items in proptest::collection::vec(item(), 0..3),
        marker in any::<Option<()>>(),
        pair in any::<(i64, f64)>(),
        either in prop_oneof![any::<u32>().prop_map(Either::Left), any::<u32>().prop_map(Either::Right)],
        flags in any::<[bool; 3]>(),
        letter in any::<char>(),
        big in any::<u128>(),
        ratio in any::<f32>(),
        text in "[a-z ]{0,24}",
    ) -> State {
        State {
            shape,
            pos: QVec2 { x: pos.0, y: pos.1 },
            angle: Angle16(angle),
            health,
            name: name.into(),
            tag,
            items,
            marker,
            pair,
            either,
            flags,
            letter,
            big,
            ratio,
            text,
        }
    }
}

/// `base` with the fields whose bit is set in `mask` taken from `other`:
/// most pairs differ in a few fields, as consecutive ticks do.
fn blend(base: &State, other: &State, mask: u32) -> State {
    let mut s = base.clone();
    let pick = |i: u32| mask & (1 << i) != 0;
    if pick(0) {
        s.shape = other.shape.clone();
    }
    if pick(1) {
        s.pos = other.pos;
    }
    if pick(2) {
        s.angle = other.angle;
    }
    if pick(3) {
        s.health = other.health;
    }
    if pick(4) {
        s.name = other.name.clone();
    }
    if pick(5) {
        s.tag = other.tag;
    }
    if pick(6) {
        s.items = other.items.clone();
    }
    if pick(7) {
        s.marker = other.marker;
    }
    if pick(8) {
        s.pair = other.pair;
    }
    if pick(9) {
        s.either = other.either.clone();
    }
    if pick(10) {
        s.flags = other.flags;
    }
    if pick(11) {
        s.letter = other.letter;
    }
    if pick(12) {
        s.big = other.big;
    }
    if pick(13) {
        s.ratio = other.ratio;
    }
    if pick(14) {
        s.text = other.text.clone();
    }
    s
}

/// Which fields change: one to three of them, as between consecutive ticks.
fn changed() -> impl Strategy<Value = u32> {
    proptest::collection::vec(0..FIELDS, 1..4).prop_map(|v| v.iter().fold(0, |m, i| m | 1 << i))
}

/// A change to patch bytes: flip bits of one byte, truncate, insert or
/// append bytes.
#[derive(Clone, Debug)]
enum Mutation {
    Xor(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Mutation::Xor(i, x)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => proptest::collection::vec(any::<u8>(), 1..6).prop_map(Mutation::Append),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    match *m {
        Mutation::Xor(i, x) if !bytes.is_empty() => {
            let i = i % bytes.len();
            bytes[i] ^= x;
        }
        Mutation::Xor(..) => bytes.push(0xff),
        Mutation::Truncate(n) => bytes.truncate(n % (bytes.len() + 1)),
        Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
        Mutation::Append(ref more) => bytes.extend_from_slice(more),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A real patch between two states: the fast path gives `cur`, or asks
    /// for the serde path (layout change), which gives `cur`.
    #[test]
    fn real_patches_apply_in_place_like_serde(
        base in state(),
        other in state(),
        mask in changed(),
    ) {
        let cur = blend(&base, &other, mask);
        check_real(&base, &cur);
        check_real(&cur, &base);
    }

    /// A layout change that keeps the field kinds (variant index, option
    /// tag) is patched by the encoder and refused by the fast path.
    #[test]
    fn same_kind_layout_changes_take_the_serde_path(base in state(), w in any::<u16>()) {
        let mut a = base.clone();
        a.shape = Shape::Circle(w);
        a.marker = Some(());
        let mut b = a.clone();
        b.shape = Shape::Ring(w);
        prop_assert_ne!(check_real(&a, &b), Real::Fast);
        let mut c = a.clone();
        c.marker = None;
        prop_assert_ne!(check_real(&a, &c), Real::Fast);
    }

    /// Mutated real patches: neither path panics, and the fast path never
    /// accepts what the serde path rejects (see `common::check_garbage`).
    #[test]
    fn mutated_patches_never_diverge(
        base in state(),
        other in state(),
        mask in changed(),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let cur = blend(&base, &other, mask);
        if let Some(mut bytes) = patch_bytes(&base, &cur) {
            for m in &mutations {
                mutate(&mut bytes, m);
                check_garbage(&base, &bytes);
            }
        }
    }

    /// The server side: the derived field-by-field diff writes the bytes of
    /// the serde flattener, for small changes (as between ticks), for
    /// unrelated states, and under a small field limit.
    #[test]
    fn derived_diffs_write_the_flattener_bytes(
        base in state(),
        other in state(),
        mask in changed(),
        max_fields in prop_oneof![Just(Limits::default().max_fields_per_entity), 0usize..24],
    ) {
        let cur = blend(&base, &other, mask);
        for (b, c) in [(&base, &cur), (&cur, &base), (&base, &other)] {
            let (plain, fast) = delta_both_ways(b, c, max_fields);
            prop_assert_eq!(plain, fast);
        }
    }

    /// Several entities, each changed in a few fields or in every field
    /// that keeps its layout (so that whole states win over patches): the
    /// delta and then a full snapshot from the same memo, whose states the
    /// field diff wrote, are the flattener's bytes.
    #[test]
    fn derived_diffs_and_their_states_write_the_flattener_bytes(
        ents in proptest::collection::vec((state(), state(), changed(), any::<bool>()), 1..8),
    ) {
        // Every field whose change keeps the layout.
        const SAME_LAYOUT: u32 = 1 << 1 | 1 << 2 | 1 << 3 | 1 << 4 | 1 << 8 | 1 << 10
            | 1 << 11 | 1 << 12 | 1 << 13 | 1 << 14;
        let curs: Vec<State> = ents
            .iter()
            .map(|(b, o, mask, all)| blend(b, o, if *all { SAME_LAYOUT } else { *mask }))
            .collect();
        let pairs: Vec<(&State, &State)> = ents.iter().map(|e| &e.0).zip(&curs).collect();
        let (plain, fast) = deltas_both_ways(&pairs, Limits::default().max_fields_per_entity);
        prop_assert_eq!(plain, fast);
    }

    /// The same with every primitive kind (wide integers, floats by bits,
    /// `-0.0` and NaN included), each kept or replaced.
    #[test]
    fn primitive_diffs_write_the_flattener_bytes(
        base in any::<Wide>(),
        other in any::<Wide>(),
        keep in any::<[bool; 16]>(),
        max_fields in prop_oneof![Just(64usize), 0usize..20],
    ) {
        let k = |i: usize| keep[i];
        let cur: Wide = (
            (
                if k(0) { base.0.0 } else { other.0.0 },
                if k(1) { base.0.1 } else { other.0.1 },
                if k(2) { base.0.2 } else { other.0.2 },
                if k(3) { base.0.3 } else { other.0.3 },
            ),
            (
                if k(4) { base.1.0 } else { other.1.0 },
                if k(5) { base.1.1 } else { other.1.1 },
                if k(6) { base.1.2 } else { other.1.2 },
                if k(7) { base.1.3 } else { other.1.3 },
            ),
            (
                if k(8) { base.2.0 } else { other.2.0 },
                if k(9) { base.2.1.clone() } else { other.2.1.clone() },
                if k(10) { base.2.2 } else { other.2.2 },
                if k(11) { base.2.3 } else { other.2.3 },
            ),
            (
                if k(12) { base.3.0.clone() } else { other.3.0.clone() },
                // An equal name in another allocation: compared by bytes.
                if k(13) { Arc::clone(&base.3.1) } else { Arc::from(&*other.3.1) },
                if k(14) { base.3.2 } else { other.3.2 },
                if k(15) { base.3.3 } else { other.3.3 },
            ),
        );
        let (plain, fast) = delta_both_ways(&base, &cur, max_fields);
        prop_assert_eq!(plain, fast);
    }

    /// Random bytes as a patch, after a mask that marks random fields.
    #[test]
    fn random_patches_never_diverge(
        base in state(),
        body in proptest::collection::vec(any::<u8>(), 0..48),
    ) {
        check_garbage(&base, &body);
    }
}

/// The delta of one entity `base` → `cur` written by the serde flattener
/// and by the derived field-by-field diff.
fn delta_both_ways<S>(base: &S, cur: &S, max_fields: usize) -> (Vec<u8>, Vec<u8>)
where
    S: tickwire_shared::patch::Patch + Serialize + PartialEq,
{
    deltas_both_ways(&[(base, cur)], max_fields)
}

/// [`delta_both_ways`] for several entities (ids 1, 2, …), so that patched
/// and whole entities mix and the "every change in full" fallback can win;
/// then a full snapshot of the current states from the same memo.
fn deltas_both_ways<S>(pairs: &[(&S, &S)], max_fields: usize) -> (Vec<u8>, Vec<u8>)
where
    S: tickwire_shared::patch::Patch + Serialize + PartialEq,
{
    use tickwire_shared::NetId;
    use tickwire_shared::codec::Writer;
    use tickwire_shared::delta::{
        DeltaMemo, DeltaScratch, write_delta, write_delta_memo, write_delta_with, write_full_memo,
    };
    use tickwire_shared::snapshot::write_full;
    let id = |i: usize| NetId(u32::try_from(i).unwrap() + 1);
    let b: Vec<(NetId, &S)> = pairs
        .iter()
        .enumerate()
        .map(|(i, p)| (id(i), p.0))
        .collect();
    let c: Vec<(NetId, &S, usize)> = pairs
        .iter()
        .enumerate()
        .map(|(i, p)| (id(i), p.1, i))
        .collect();
    let mut plain = Writer::new();
    write_delta(
        &mut plain,
        b.iter().copied(),
        c.iter().map(|(id, s, _)| (*id, *s)),
        &mut DeltaScratch::default(),
        max_fields,
    )
    .unwrap();
    write_full(&mut plain, c.iter().map(|(id, s, _)| (*id, *s))).unwrap();
    let mut fast = Writer::new();
    let mut memo = DeltaMemo::default();
    memo.reset(c.len());
    write_delta_memo(
        &mut fast,
        b.iter().copied(),
        c.iter().copied(),
        1,
        &mut memo,
        &mut DeltaScratch::default(),
        max_fields,
        Some(tickwire_shared::diff::diff_fields::<S>),
    )
    .unwrap();
    // The memo now holds the states the diff wrote: a full snapshot from it.
    write_full_memo(&mut fast, c.iter().copied(), &mut memo).unwrap();
    // And the memo-less writer (a budgeted client's own delta) with the
    // field diff: the flattener's delta bytes again.
    let mut single = Writer::new();
    write_delta_with(
        &mut single,
        b.iter().copied(),
        c.iter().map(|(id, s, _)| (*id, *s)),
        &mut DeltaScratch::default(),
        max_fields,
        Some(tickwire_shared::diff::diff_fields::<S>),
    )
    .unwrap();
    let mut plain_delta = Writer::new();
    write_delta(
        &mut plain_delta,
        b.iter().copied(),
        c.iter().map(|(id, s, _)| (*id, *s)),
        &mut DeltaScratch::default(),
        max_fields,
    )
    .unwrap();
    assert_eq!(
        single.as_slice(),
        plain_delta.as_slice(),
        "write_delta_with and the flattener differ"
    );
    (plain.into_vec(), fast.into_vec())
}

/// The one corner where the fast path accepts a patch the serde path
/// rejects: bincode's per-value limit ([`tickwire_shared::codec::MAX_VALUE_BYTES`],
/// 1 MiB), which bincode counts over **all** strings (and byte strings) of
/// the decoded state. The serde path re-decodes the whole patched state, so
/// it fails when the state's strings add up to more than the limit; the
/// fast path only reads the marked strings (each bounded by
/// `Limits::max_server_message_bytes`) and never sees the total. Here the
/// baseline holds a 600 KB string and the patch sets a second one to 600
/// KB. No such state can be sent whole either (its full encoding is over
/// the limit), so it only arises with states larger than 1 MiB.
#[test]
fn corner_the_fast_path_does_not_enforce_bincodes_per_value_limit() {
    let big = "a".repeat(600_000);
    let base = (big.clone(), String::new());
    let cur = (big.clone(), "b".repeat(600_000));
    let patch = patch_bytes(&base, &cur).expect("a patch is smaller than the state");
    let limits = Limits::default();
    let (f, _) = fast(&base, &patch, &limits).unwrap();
    assert_eq!(f, cur);
    let e = slow(&base, &patch, &limits).unwrap_err();
    assert!(e.to_string().to_lowercase().contains("limit"), "{e}");
}
