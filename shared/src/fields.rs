//! Flattening a serde value into its primitive fields, and back to bincode bytes.
//!
//! The delta encoder compares entity states field by field. A game's
//! `EntityState` is any serde type, so "field" here means each primitive that
//! serde hands to a serializer, in order: every integer, float, bool, char,
//! string, and the structural markers bincode writes (option tags, enum variant
//! indices, sequence and map lengths). Encoding the field list with
//! [`write_fields`] produces exactly the bytes bincode produces for the value
//! (tested below), so a patched field list can be decoded by bincode itself.

use serde::ser::{self, Serialize};

use crate::codec::Writer;

/// One primitive of a flattened value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field {
    Bool(bool),
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    U128(u128),
    I128(i128),
    /// f32 bits.
    F32(u32),
    /// f64 bits.
    F64(u64),
    Char(char),
    /// A string or byte string.
    Bytes(Vec<u8>),
    /// Option tag: 0 = None, 1 = Some.
    OptTag(u8),
    /// Enum variant index.
    Variant(u32),
    /// Sequence or map length.
    Len(u64),
}

impl Field {
    /// True when `self` and `other` are the same kind of field.
    pub(crate) fn same_kind(&self, other: &Self) -> bool {
        core::mem::discriminant(self) == core::mem::discriminant(other)
    }
}

/// Why a value could not be flattened (a local type problem, never peer input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FlattenError(String);

impl ser::Error for FlattenError {
    fn custom<T: core::fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// Appends the fields of `value` to `out`. Fails when the value has more than
/// `max_fields` fields or serde cannot serialize it.
pub(crate) fn flatten<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<Field>,
    max_fields: usize,
) -> Result<(), FlattenError> {
    let start = out.len();
    let mut f = Flattener {
        out,
        limit: start.saturating_add(max_fields),
    };
    value.serialize(&mut f)
}

/// Writes the fields as bincode would write the value they came from.
pub(crate) fn write_fields(fields: &[Field], w: &mut Writer) {
    for f in fields {
        match *f {
            Field::Bool(v) => w.bool(v),
            Field::U8(v) | Field::OptTag(v) => w.u8(v),
            Field::I8(v) => w.u8(v as u8),
            Field::U16(v) => w.u16(v),
            Field::I16(v) => w.i64(i64::from(v)),
            Field::U32(v) | Field::Variant(v) => w.u32(v),
            Field::I32(v) => w.i64(i64::from(v)),
            Field::U64(v) | Field::Len(v) => w.u64(v),
            Field::I64(v) => w.i64(v),
            Field::U128(v) => w.u128(v),
            Field::I128(v) => w.i128(v),
            Field::F32(bits) => w.raw(&bits.to_le_bytes()),
            Field::F64(bits) => w.raw(&bits.to_le_bytes()),
            Field::Char(c) => {
                let mut buf = [0u8; 4];
                w.raw(c.encode_utf8(&mut buf).as_bytes());
            }
            Field::Bytes(ref b) => w.bytes(b),
        }
    }
}

/// The number of bytes [`write_fields`] writes for `fields`, without writing.
pub(crate) fn encoded_len(fields: &[Field]) -> usize {
    fn varint(v: u128) -> usize {
        match v {
            0..=250 => 1,
            251..=0xffff => 3,
            0x1_0000..=0xffff_ffff => 5,
            0x1_0000_0000..=0xffff_ffff_ffff_ffff => 9,
            _ => 17,
        }
    }
    fn zigzag(v: i128) -> u128 {
        ((v << 1) ^ (v >> 127)) as u128
    }
    fields
        .iter()
        .map(|f| match *f {
            Field::Bool(_) | Field::U8(_) | Field::I8(_) | Field::OptTag(_) => 1,
            Field::U16(v) => varint(v.into()),
            Field::U32(v) | Field::Variant(v) => varint(v.into()),
            Field::U64(v) | Field::Len(v) => varint(v.into()),
            Field::U128(v) => varint(v),
            Field::I16(v) => varint(zigzag(v.into())),
            Field::I32(v) => varint(zigzag(v.into())),
            Field::I64(v) => varint(zigzag(v.into())),
            Field::I128(v) => varint(zigzag(v)),
            Field::F32(_) => 4,
            Field::F64(_) => 8,
            Field::Char(c) => c.len_utf8(),
            Field::Bytes(ref b) => varint(b.len() as u128) + b.len(),
        })
        .sum()
}

struct Flattener<'a> {
    out: &'a mut Vec<Field>,
    limit: usize,
}

impl Flattener<'_> {
    #[inline(always)]
    fn push(&mut self, f: Field) -> Result<(), FlattenError> {
        if self.out.len() >= self.limit {
            return Err(FlattenError(format!(
                "value has more fields than the limit of {}",
                self.limit
            )));
        }
        self.out.push(f);
        Ok(())
    }

    fn len(&mut self, len: Option<usize>) -> Result<(), FlattenError> {
        let len = len.ok_or_else(|| {
            FlattenError("sequences and maps must have a known length".to_owned())
        })?;
        self.push(Field::Len(len as u64))
    }
}

impl<'a, 'b> ser::Serializer for &'a mut Flattener<'b> {
    type Ok = ();
    type Error = FlattenError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_bool(self, v: bool) -> Result<(), FlattenError> {
        self.push(Field::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<(), FlattenError> {
        self.push(Field::I8(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), FlattenError> {
        self.push(Field::I16(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), FlattenError> {
        self.push(Field::I32(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), FlattenError> {
        self.push(Field::I64(v))
    }
    fn serialize_i128(self, v: i128) -> Result<(), FlattenError> {
        self.push(Field::I128(v))
    }
    fn serialize_u8(self, v: u8) -> Result<(), FlattenError> {
        self.push(Field::U8(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), FlattenError> {
        self.push(Field::U16(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), FlattenError> {
        self.push(Field::U32(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), FlattenError> {
        self.push(Field::U64(v))
    }
    fn serialize_u128(self, v: u128) -> Result<(), FlattenError> {
        self.push(Field::U128(v))
    }
    fn serialize_f32(self, v: f32) -> Result<(), FlattenError> {
        self.push(Field::F32(v.to_bits()))
    }
    fn serialize_f64(self, v: f64) -> Result<(), FlattenError> {
        self.push(Field::F64(v.to_bits()))
    }
    fn serialize_char(self, v: char) -> Result<(), FlattenError> {
        self.push(Field::Char(v))
    }
    fn serialize_str(self, v: &str) -> Result<(), FlattenError> {
        self.push(Field::Bytes(v.as_bytes().to_vec()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), FlattenError> {
        self.push(Field::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<(), FlattenError> {
        self.push(Field::OptTag(0))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), FlattenError> {
        self.push(Field::OptTag(1))?;
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), FlattenError> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), FlattenError> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
    ) -> Result<(), FlattenError> {
        self.push(Field::Variant(index))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), FlattenError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<(), FlattenError> {
        self.push(Field::Variant(index))?;
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, FlattenError> {
        self.len(len)?;
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, FlattenError> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, FlattenError> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, FlattenError> {
        self.push(Field::Variant(index))?;
        Ok(self)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self, FlattenError> {
        self.len(len)?;
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, FlattenError> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, FlattenError> {
        self.push(Field::Variant(index))?;
        Ok(self)
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

macro_rules! compound {
    ($trait:ident, $method:ident $(, $key:ident)?) => {
        impl ser::$trait for &mut Flattener<'_> {
            type Ok = ();
            type Error = FlattenError;
            $(fn $key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), FlattenError> {
                key.serialize(&mut **self)
            })?
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), FlattenError> {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<(), FlattenError> {
                Ok(())
            }
        }
    };
}
compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);
compound!(SerializeMap, serialize_value, serialize_key);

macro_rules! named_fields {
    ($trait:ident) => {
        impl ser::$trait for &mut Flattener<'_> {
            type Ok = ();
            type Error = FlattenError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                _: &'static str,
                value: &T,
            ) -> Result<(), FlattenError> {
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<(), FlattenError> {
                Ok(())
            }
        }
    };
}
named_fields!(SerializeStruct);
named_fields!(SerializeStructVariant);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Dot,
        Circle(f32),
        Rect { w: u16, h: i16 },
        Pair(i8, char),
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Everything {
        b: bool,
        u: (u8, u16, u32, u64, u128),
        i: (i8, i16, i32, i64, i128),
        f: (f32, f64),
        c: char,
        s: String,
        o: Option<u32>,
        v: Vec<Shape>,
        m: BTreeMap<u8, String>,
        unit: (),
    }

    fn shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            Just(Shape::Dot),
            any::<f32>().prop_map(Shape::Circle),
            (any::<u16>(), any::<i16>()).prop_map(|(w, h)| Shape::Rect { w, h }),
            (any::<i8>(), any::<char>()).prop_map(|(a, c)| Shape::Pair(a, c)),
        ]
    }

    prop_compose! {
        fn everything()(
            b in any::<bool>(),
            u in any::<(u8, u16, u32, u64, u128)>(),
            i in any::<(i8, i16, i32, i64, i128)>(),
            f in any::<(f32, f64)>(),
            c in any::<char>(),
            s in ".{0,12}",
            o in any::<Option<u32>>(),
            v in proptest::collection::vec(shape(), 0..5),
            m in proptest::collection::btree_map(any::<u8>(), ".{0,4}", 0..4),
        ) -> Everything {
            Everything { b, u, i, f, c, s, o, v, m, unit: () }
        }
    }

    proptest! {
        /// The flattened fields encode to exactly bincode's bytes.
        #[test]
        fn fields_encode_exactly_like_bincode(value in everything()) {
            let mut fields = Vec::new();
            flatten(&value, &mut fields, 10_000).unwrap();
            let mut via_fields = Writer::new();
            write_fields(&fields, &mut via_fields);
            let mut direct = Writer::new();
            direct.value("everything", &value).unwrap();
            prop_assert_eq!(via_fields.as_slice(), direct.as_slice());
            prop_assert_eq!(encoded_len(&fields), direct.len());
        }
    }

    #[test]
    fn field_limit_is_enforced() {
        let mut fields = Vec::new();
        let err = flatten(&[1u8, 2, 3, 4], &mut fields, 3).unwrap_err();
        assert!(err.to_string().contains("limit of 3"), "{err}");
    }
}
