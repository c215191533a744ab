//! `#[derive(Patch)]` on each shape of type: the derived impl counts and
//! visits the fields serde serializes, so real patches apply in place to the
//! value the serde path builds.

mod common;

use std::marker::PhantomData;
use std::sync::Arc;

use common::{Real, bytes, check_real, fast, patch_bytes, slow};
use serde::{Deserialize, Serialize};
use tickwire_derive::Patch;
use tickwire_shared::Limits;
use tickwire_shared::patch::{Patch as _, PatchError};
use tickwire_shared::quantize::{Angle16, QVec2, Unorm8};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
#[serde(rename_all = "camelCase")]
struct Named {
    small: u8,
    #[serde(rename = "b", default)]
    big_int: i32,
    text: String,
    name: Arc<str>,
    maybe: Option<u16>,
    list: Vec<i64>,
    ratio: f32,
    flag: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
struct Tuple(u8, i16, String);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
struct Newtype(u32);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
struct Unit;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
struct EmptyTuple();

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
struct EmptyNamed {}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
#[serde(transparent)]
struct Transparent {
    inner: u16,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
enum Kind {
    Plain,
    Byte(u8),
    #[serde(rename = "shape")]
    Shape {
        x: i32,
        label: String,
    },
    Pair(Newtype, Unit),
    Other,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
struct Nested {
    tuple: Tuple,
    newtype: Newtype,
    unit: Unit,
    empty: (EmptyTuple, EmptyNamed),
    transparent: Transparent,
    named: Named,
    kind: Kind,
    kinds: Vec<Kind>,
    quantized: (QVec2<16>, Angle16, Unorm8),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
struct Generic<T> {
    items: [T; 2],
    extra: Option<T>,
    marker: PhantomData<T>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
struct Scaled<const S: u32> {
    pos: QVec2<S>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Patch)]
enum Either<L, R> {
    Left(L),
    Right { value: R },
}

fn named(i: i32) -> Named {
    Named {
        small: i as u8,
        big_int: i * 1000,
        text: format!("text {i}"),
        name: Arc::from(format!("name {i}")),
        maybe: Some(i as u16),
        list: vec![1, 2, i64::from(i)],
        ratio: i as f32 / 3.0,
        flag: i % 2 == 0,
    }
}

fn nested(i: i32) -> Nested {
    Nested {
        tuple: Tuple(i as u8, -(i as i16), "t".repeat(i as usize % 4)),
        newtype: Newtype(i as u32 * 7),
        unit: Unit,
        empty: (EmptyTuple(), EmptyNamed {}),
        transparent: Transparent { inner: i as u16 },
        named: named(i),
        kind: Kind::Shape {
            x: i,
            label: "s".into(),
        },
        kinds: vec![
            Kind::Plain,
            Kind::Byte(i as u8),
            Kind::Pair(Newtype(3), Unit),
        ],
        quantized: (QVec2 { x: i, y: -i }, Angle16(i as u16), Unorm8(i as u8)),
    }
}

#[test]
fn field_counts_are_serdes_flattened_counts() {
    // small, big_int, text, name, tag + value, len + 3 items, ratio, flag.
    assert_eq!(named(1).field_count(), 12);
    assert_eq!(
        Named {
            maybe: None,
            list: vec![],
            ..named(1)
        }
        .field_count(),
        8
    );
    assert_eq!(Tuple(1, 2, String::new()).field_count(), 3);
    assert_eq!(Newtype(1).field_count(), 1);
    assert_eq!(Unit.field_count(), 0);
    assert_eq!(EmptyTuple().field_count(), 0);
    assert_eq!(EmptyNamed {}.field_count(), 0);
    assert_eq!(Transparent { inner: 1 }.field_count(), 1);
    assert_eq!(Kind::Plain.field_count(), 1);
    assert_eq!(Kind::Byte(1).field_count(), 2);
    assert_eq!(
        Kind::Shape {
            x: 1,
            label: String::new()
        }
        .field_count(),
        3
    );
    assert_eq!(Kind::Pair(Newtype(1), Unit).field_count(), 2);
    // 3 + 1 + 0 + 0 + 1 + 12 + 3 + (1 + 1 + 2 + 2) + (2 + 1 + 1).
    assert_eq!(nested(1).field_count(), 30);
    let g = Generic::<u8> {
        items: [1, 2],
        extra: Some(4),
        marker: PhantomData,
    };
    assert_eq!(g.field_count(), 4);
    assert_eq!(
        Scaled::<4> {
            pos: QVec2 { x: 1, y: 2 }
        }
        .field_count(),
        2
    );
    assert_eq!(Either::<u8, Tuple>::Left(1).field_count(), 2);
    assert_eq!(
        Either::<u8, Tuple>::Right {
            value: Tuple(1, 2, String::new())
        }
        .field_count(),
        4
    );
}

#[test]
fn named_struct_with_strings_options_and_vecs_patches_in_place() {
    let base = named(1);
    for cur in [
        Named {
            small: 9,
            ..base.clone()
        },
        Named {
            big_int: -7,
            ratio: f32::NAN,
            ..base.clone()
        },
        Named {
            text: "changed".into(),
            name: "also".into(),
            ..base.clone()
        },
        Named {
            maybe: Some(u16::MAX),
            flag: false,
            ..base.clone()
        },
        Named {
            list: vec![1, -2, i64::MIN],
            ..base.clone()
        },
        named(2),
    ] {
        assert_eq!(check_real(&base, &cur), Real::Fast, "{cur:?}");
    }
}

#[test]
fn tuple_newtype_and_empty_structs_patch_in_place() {
    // (Each patch must be smaller than the state, or the delta sends it whole.)
    let tail = String::from("an unchanged tail");
    assert_eq!(
        check_real(&Tuple(1, 2, tail.clone()), &Tuple(3, -4, tail)),
        Real::Fast
    );
    assert_eq!(
        check_real(&Newtype(5_000_000), &Newtype(5_000_001)),
        Real::Fast
    );
    assert_eq!(
        check_real(
            &(
                Unit,
                Transparent { inner: 1000 },
                EmptyTuple(),
                EmptyNamed {}
            ),
            &(
                Unit,
                Transparent { inner: 1001 },
                EmptyTuple(),
                EmptyNamed {}
            )
        ),
        Real::Fast
    );
}

#[test]
fn nested_structs_and_enums_patch_in_place() {
    assert_eq!(check_real(&nested(1), &nested(2)), Real::Fast);
    assert_eq!(check_real(&nested(3), &nested(200)), Real::Fast);
    let base = nested(4);
    let mut cur = base.clone();
    cur.kinds[1] = Kind::Byte(77);
    cur.kind = Kind::Shape {
        x: -1,
        label: "other".into(),
    };
    assert_eq!(check_real(&base, &cur), Real::Fast);
}

#[test]
fn generics_patch_in_place() {
    let a = Generic::<Either<u8, Tuple>> {
        items: [
            Either::Left(1),
            Either::Right {
                value: Tuple(1, 2, "x".into()),
            },
        ],
        extra: Some(Either::Left(3)),
        marker: PhantomData,
    };
    let mut b = a.clone();
    b.items[0] = Either::Left(9);
    b.items[1] = Either::Right {
        value: Tuple(1, 5, "xyz".into()),
    };
    b.extra = Some(Either::Left(200));
    assert_eq!(check_real(&a, &b), Real::Fast);
    assert_eq!(
        check_real(
            &Scaled::<4> {
                pos: QVec2 { x: 100_000, y: 2 }
            },
            &Scaled::<4> {
                pos: QVec2 { x: 100_001, y: 2 }
            }
        ),
        Real::Fast
    );
}

#[test]
fn a_variant_change_with_the_same_field_kinds_asks_for_the_serde_path() {
    // Plain and Other are both one variant index: the encoder patches the
    // index, which the in-place path cannot apply.
    let limits = Limits::default();
    let tail = String::from("an unchanged tail");
    let base = (Kind::Plain, tail.clone());
    let cur = (Kind::Other, tail.clone());
    let patch = patch_bytes(&base, &cur).unwrap();
    assert_eq!(
        fast(&base, &patch, &limits).unwrap_err(),
        PatchError::Layout
    );
    let (s, _) = slow(&base, &patch, &limits).unwrap();
    assert_eq!(s, cur);
    assert_eq!(check_real(&base, &cur), Real::Layout);
    // Left(u8) and Right { u8 } alike.
    let l = (Either::<u8, u8>::Left(1), tail.clone());
    let r = (Either::<u8, u8>::Right { value: 1 }, tail);
    assert_eq!(check_real(&l, &r), Real::Layout);
    // A new variant with other fields is sent whole: no patch at all.
    assert_eq!(patch_bytes(&Kind::Plain, &Kind::Byte(1)), None);
}

#[test]
fn unchanged_structural_fields_marked_in_a_patch_are_no_ops() {
    // A hand-made patch marking the variant index and the option tag with
    // their current values (the encoder never does, a peer may).
    let base = (Kind::Byte(5), Some(7u8));
    assert_eq!(base.field_count(), 4);
    let limits = Limits::default();
    // mask 0b1111: variant 1, byte 6, tag 1, byte 8.
    let patch = [0b1111, 1, 6, 1, 8];
    let (f, n) = fast(&base, &patch, &limits).unwrap();
    let (s, m) = slow(&base, &patch, &limits).unwrap();
    assert_eq!((n, m), (5, 5));
    assert_eq!(f, (Kind::Byte(6), Some(8)));
    assert_eq!(bytes(&f), bytes(&s));
}

#[test]
fn read_ahead_folds_what_each_field_points_to() {
    // `Named`: the text's first byte, the name's reference count, and
    // nothing for the numbers, the option of a number or the list of numbers.
    let n = named(1);
    assert_eq!(n.read_ahead(), usize::from(b't') + 1);
    let shared = n.name.clone();
    assert_eq!(n.read_ahead(), usize::from(b't') + 2, "the count is read");
    drop(shared);
    let empty = Named {
        text: String::new(),
        ..named(1)
    };
    assert_eq!(empty.read_ahead(), 1, "an empty string loads nothing");
    // Tuples, newtypes and units; enum variants read their own fields.
    assert_eq!(Tuple(1, 2, "ab".into()).read_ahead(), usize::from(b'a'));
    assert_eq!((Unit, Newtype(5), EmptyTuple()).read_ahead(), 0);
    let shape = Kind::Shape {
        x: 3,
        label: "z".into(),
    };
    assert_eq!(shape.read_ahead(), usize::from(b'z'));
    assert_eq!(Kind::Plain.read_ahead(), 0);
    // A vector reads its first item's; an option its value's.
    let kinds = vec![shape.clone(), Kind::Byte(1)];
    assert_eq!(kinds.read_ahead(), usize::from(b'z'));
    assert_eq!(Some(shape).read_ahead(), usize::from(b'z'));
    // Generic fields and arrays fold every item.
    let g = Generic {
        items: [String::from("a"), String::from("b")],
        extra: Some(String::from("c")),
        marker: PhantomData,
    };
    assert_eq!(
        g.read_ahead(),
        usize::from(b'a') + usize::from(b'b') + usize::from(b'c')
    );
}
