//! The codec: bincode 2 with one explicit configuration, behind one module.
//!
//! Every byte tickwire puts on the wire is produced by [`Writer`] and read back
//! by [`Reader`]. Both use bincode 2 with [`config()`]:
//!
//! * little endian;
//! * variable-length integers ("varint"): an unsigned value `< 251` is one
//!   byte; otherwise a marker byte `251` (u16 follows), `252` (u32), `253`
//!   (u64) or `254` (u128) and the value in little endian. Signed values are
//!   zigzag-mapped first (`0, -1, 1, -2, …` → `0, 1, 2, 3, …`);
//! * `u8`, `i8` and `bool` are one raw byte; `f32`/`f64` are raw little-endian
//!   IEEE 754;
//! * strings and byte strings are a varint length followed by the bytes;
//! * a hard limit of [`MAX_VALUE_BYTES`] per decoded value, so a hostile
//!   length prefix can never make bincode allocate more than that.
//!
//! The message framing (which tag, which counts) is written by hand on top of
//! these primitives so that every count is checked against [`Limits`](crate::Limits)
//! *before* anything is allocated. Game payloads (`Input`, `EntityState`,
//! `Event`) go through serde with the same configuration. Swapping the codec
//! means changing this file only.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Upper bound on the bytes one decoded value may claim (bincode's own limit).
///
/// A length prefix larger than this fails with an error instead of allocating.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

type Config = bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_VALUE_BYTES>,
>;

/// The one bincode configuration tickwire uses. See the module docs.
#[must_use]
pub const fn config() -> Config {
    bincode::config::standard()
        .with_little_endian()
        .with_variable_int_encoding()
        .with_limit::<MAX_VALUE_BYTES>()
}

/// Why bytes could not be decoded. Every variant describes peer input that is
/// malformed or over a limit; none of them is a local bug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message is larger than the configured limit.
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    MessageTooLong {
        /// Size of the message.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The message ended before a field was complete.
    #[error("message truncated while reading {what}")]
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// Bytes were left over after the message was complete.
    #[error("{count} unexpected trailing bytes after the message")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
    /// A message or variant tag that this version does not know.
    #[error("unknown {what} tag {tag}")]
    UnknownTag {
        /// What kind of tag.
        what: &'static str,
        /// The tag value.
        tag: u64,
    },
    /// A count is over its limit.
    #[error("{what}: count {count} exceeds the limit of {max}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The count announced by the peer.
        count: u64,
        /// The limit.
        max: usize,
    },
    /// A value broke a rule of the format (ordering, range, UTF-8, …).
    #[error("invalid {what}: {detail}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// What rule was broken.
        detail: String,
    },
    /// A game payload (serde value) failed to decode.
    #[error("invalid {what} payload: {detail}")]
    Payload {
        /// Which payload (input, entity state, event).
        what: &'static str,
        /// bincode's description.
        detail: String,
    },
}

/// Why a value could not be encoded. This is local misuse (a game value that
/// serde cannot encode, or a value over a limit), never a peer's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// serde/bincode refused the value.
    #[error("cannot encode {what}: {detail}")]
    Payload {
        /// Which payload.
        what: &'static str,
        /// bincode's description.
        detail: String,
    },
    /// A count or size is over a limit that the receiver enforces.
    #[error("{what}: {count} exceeds the limit of {max}")]
    TooMany {
        /// What was counted.
        what: &'static str,
        /// The count.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// Appends bincode-encoded primitives to a byte buffer.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer that appends to `buf` (whose contents are kept).
    #[must_use]
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Self { buf }
    }

    /// The bytes written so far.
    #[must_use]
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// Number of bytes written so far.
    #[must_use]
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing was written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Clears the buffer, keeping its capacity.
    #[inline]
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Takes the bytes out.
    #[must_use]
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// Appends raw bytes, with no length prefix.
    #[inline]
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Appends `n` zero bytes.
    #[inline]
    pub(crate) fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    /// ORs `bits` into the byte written at `at` (a patch's mask, written
    /// before the payloads it describes).
    ///
    /// # Panics
    /// When `at` is not below [`Writer::len`].
    #[inline(always)]
    pub(crate) fn or_at(&mut self, at: usize, bits: u8) {
        self.buf[at] |= bits;
    }

    /// Appends the first `len` bytes of `block` (all of it when `len` is
    /// larger): one fixed-size copy, then the length set back.
    #[inline(always)]
    pub(crate) fn raw_block<const N: usize>(&mut self, block: &[u8; N], len: usize) {
        let n = self.buf.len();
        self.buf.extend_from_slice(block);
        self.buf.truncate(n + len.min(N));
    }

    /// One raw byte.
    #[inline]
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// A bool as one byte, 0 or 1.
    #[inline]
    pub fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    /// A varint `u16`.
    #[inline]
    pub fn u16(&mut self, v: u16) {
        self.u64(u64::from(v));
    }

    /// A varint `u32`.
    #[inline]
    pub fn u32(&mut self, v: u32) {
        self.u64(u64::from(v));
    }

    /// A varint `u64` (bincode's encoding: see the module docs).
    #[inline(always)]
    pub fn u64(&mut self, v: u64) {
        // bincode's varint, written directly (the same bytes whatever the
        // declared width; checked against bincode by the tests). The one-
        // and three-byte forms (ids' gaps, lengths, quantized values) inline,
        // the wider ones out of line.
        if v <= 250 {
            self.buf.push(v as u8);
        } else if v <= u64::from(u16::MAX) {
            let [a, b] = (v as u16).to_le_bytes();
            self.buf.extend_from_slice(&[251, a, b]);
        } else {
            self.u64_wide(v);
        }
    }

    #[inline(never)]
    fn u64_wide(&mut self, v: u64) {
        if v <= u64::from(u32::MAX) {
            self.buf.push(252);
            self.buf.extend_from_slice(&(v as u32).to_le_bytes());
        } else {
            self.buf.push(253);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A varint `u128`.
    pub fn u128(&mut self, v: u128) {
        self.primitive(&v);
    }

    /// A zigzag varint `i64`.
    #[inline]
    pub fn i64(&mut self, v: i64) {
        // zigzag: 0, -1, 1, -2, … → 0, 1, 2, 3, …
        self.u64(((v << 1) ^ (v >> 63)) as u64);
    }

    /// A zigzag varint `i128`.
    pub fn i128(&mut self, v: i128) {
        self.primitive(&v);
    }

    /// A length (varint `u64`).
    #[inline]
    pub fn len_prefix(&mut self, n: usize) {
        self.u64(n as u64);
    }

    /// A byte string: varint length then the bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.len_prefix(v.len());
        self.raw(v);
    }

    /// A UTF-8 string: varint length then the bytes.
    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    /// An optional string: tag byte 0 (none) or 1 followed by the string.
    pub fn opt_str(&mut self, v: Option<&str>) {
        match v {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }

    /// A serde value (a game payload) with the codec's configuration.
    ///
    /// # Errors
    /// [`EncodeError::Payload`] when serde or bincode refuses the value
    /// (for example a sequence without a known length).
    pub fn value<T: Serialize + ?Sized>(
        &mut self,
        what: &'static str,
        v: &T,
    ) -> Result<(), EncodeError> {
        bincode::serde::encode_into_std_write(v, &mut self.buf, config()).map_err(|e| {
            EncodeError::Payload {
                what,
                detail: e.to_string(),
            }
        })?;
        Ok(())
    }

    fn primitive<T: bincode::Encode>(&mut self, v: &T) {
        // Writing a primitive into a Vec cannot fail: bincode only fails on
        // writer errors (none for Vec) and on limits (none when encoding).
        if let Err(e) = bincode::encode_into_std_write(v, &mut self.buf, config()) {
            unreachable!("encoding a primitive into a Vec failed: {e}");
        }
    }
}

/// Reads bincode-encoded primitives from a byte slice, with typed errors.
///
/// Nothing here panics or allocates beyond what the input can justify: every
/// length is checked against the remaining input before anything is allocated.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet read.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// How many bytes were read so far.
    #[must_use]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless all input was read.
    ///
    /// # Errors
    /// When bytes remain.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    /// `n` raw bytes.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] when fewer than `n` bytes remain.
    #[inline]
    pub fn raw(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated { what });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// One raw byte.
    ///
    /// # Errors
    /// When the input is exhausted.
    #[inline]
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.raw(1, what)?[0])
    }

    /// A bool byte (0 or 1; anything else is an error).
    ///
    /// # Errors
    /// When truncated or not 0/1.
    #[inline]
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(DecodeError::Invalid {
                what,
                detail: format!("bool byte {other} is neither 0 nor 1"),
            }),
        }
    }

    /// A varint `u16`.
    ///
    /// # Errors
    /// When truncated or out of range.
    #[inline]
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let v = self.varint(what, 251)?;
        Ok(v as u16)
    }

    /// A varint `u32`.
    ///
    /// # Errors
    /// When truncated or out of range.
    #[inline]
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let v = self.varint(what, 252)?;
        Ok(v as u32)
    }

    /// A varint `u64`.
    ///
    /// # Errors
    /// When truncated.
    #[inline]
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let v = self.varint(what, 253)?;
        Ok(v)
    }

    /// A varint `u128`.
    ///
    /// # Errors
    /// When truncated.
    pub fn u128(&mut self, what: &'static str) -> Result<u128, DecodeError> {
        self.primitive(what)
    }

    /// A zigzag varint `i64`.
    ///
    /// # Errors
    /// When truncated.
    #[inline]
    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let n = self.varint(what, 253)?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    /// A zigzag varint `i16` (bincode's encoding of an `i16`).
    ///
    /// # Errors
    /// When truncated or out of range.
    #[inline]
    pub fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        let n = self.varint(what, 251)? as u16;
        Ok(((n >> 1) as i16) ^ -((n & 1) as i16))
    }

    /// A zigzag varint `i32` (bincode's encoding of an `i32`).
    ///
    /// # Errors
    /// When truncated or out of range.
    #[inline]
    pub fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let n = self.varint(what, 252)? as u32;
        Ok(((n >> 1) as i32) ^ -((n & 1) as i32))
    }

    /// A `char` as bincode encodes it (its UTF-8 bytes).
    ///
    /// # Errors
    /// When truncated or not a valid UTF-8 scalar value.
    pub fn char(&mut self, what: &'static str) -> Result<char, DecodeError> {
        self.primitive(what)
    }

    /// bincode's unsigned varint, accepting width markers up to `max_marker`
    /// (251: u16, 252: u32, 253: u64), exactly as bincode's decoder does.
    /// The one- and three-byte forms are inlined (every field accepts the
    /// u16 marker); the wider ones are not.
    #[inline]
    fn varint(&mut self, what: &'static str, max_marker: u8) -> Result<u64, DecodeError> {
        match self.buf[self.pos..] {
            [first, ..] if first <= 250 => {
                self.pos += 1;
                Ok(u64::from(first))
            }
            [251, a, b, ..] => {
                self.pos += 3;
                Ok(u64::from(u16::from_le_bytes([a, b])))
            }
            _ => self.wide_varint(what, max_marker),
        }
    }

    /// [`Self::varint`] past its one-byte form.
    fn wide_varint(&mut self, what: &'static str, max_marker: u8) -> Result<u64, DecodeError> {
        let rest = &self.buf[self.pos..];
        let Some(&first) = rest.first() else {
            return Err(DecodeError::Truncated { what });
        };
        if first > max_marker {
            return Err(too_wide(what, first));
        }
        let (value, width) = match first {
            251 => match rest.get(1..3) {
                Some(&[a, b]) => (u64::from(u16::from_le_bytes([a, b])), 2),
                _ => return Err(DecodeError::Truncated { what }),
            },
            252 => match rest.get(1..5) {
                Some(&[a, b, c, d]) => (u64::from(u32::from_le_bytes([a, b, c, d])), 4),
                _ => return Err(DecodeError::Truncated { what }),
            },
            _ => match rest.get(1..9) {
                Some(&[a, b, c, d, e, f, g, h]) => {
                    (u64::from_le_bytes([a, b, c, d, e, f, g, h]), 8)
                }
                _ => return Err(DecodeError::Truncated { what }),
            },
        };
        self.pos += 1 + width;
        Ok(value)
    }

    /// A zigzag varint `i128`.
    ///
    /// # Errors
    /// When truncated.
    pub fn i128(&mut self, what: &'static str) -> Result<i128, DecodeError> {
        self.primitive(what)
    }

    /// A count, checked against `max` and against the remaining input
    /// (each counted item takes at least `min_item_bytes` bytes) before
    /// the caller allocates anything for it.
    ///
    /// # Errors
    /// [`DecodeError::TooMany`] or [`DecodeError::Truncated`].
    #[inline]
    pub fn count(
        &mut self,
        what: &'static str,
        max: usize,
        min_item_bytes: usize,
    ) -> Result<usize, DecodeError> {
        let count = self.u64(what)?;
        if count > max as u64 {
            return Err(DecodeError::TooMany { what, count, max });
        }
        // `count <= max` fits in usize.
        let count = count as usize;
        if count.saturating_mul(min_item_bytes) > self.remaining() {
            return Err(DecodeError::Truncated { what });
        }
        Ok(count)
    }

    /// A length-prefixed byte string of at most `max` bytes.
    ///
    /// # Errors
    /// When over `max` or truncated.
    #[inline]
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.count(what, max, 1)?;
        self.raw(len, what)
    }

    /// A length-prefixed UTF-8 string of at most `max` bytes.
    ///
    /// # Errors
    /// When over `max`, truncated or not UTF-8.
    pub fn str(&mut self, what: &'static str, max: usize) -> Result<&'a str, DecodeError> {
        let bytes = self.bytes(what, max)?;
        core::str::from_utf8(bytes).map_err(|e| DecodeError::Invalid {
            what,
            detail: e.to_string(),
        })
    }

    /// An optional string (tag byte 0/1, then the string).
    ///
    /// # Errors
    /// As [`Reader::str`], or a bad tag.
    pub fn opt_str(
        &mut self,
        what: &'static str,
        max: usize,
    ) -> Result<Option<&'a str>, DecodeError> {
        if self.bool(what)? {
            Ok(Some(self.str(what, max)?))
        } else {
            Ok(None)
        }
    }

    /// A serde value (a game payload).
    ///
    /// # Errors
    /// [`DecodeError::Payload`] with bincode's description.
    pub fn value<T: DeserializeOwned>(&mut self, what: &'static str) -> Result<T, DecodeError> {
        let rest = &self.buf[self.pos..];
        let (v, n) = bincode::serde::decode_from_slice::<T, _>(rest, config()).map_err(|e| {
            DecodeError::Payload {
                what,
                detail: e.to_string(),
            }
        })?;
        self.pos += n;
        Ok(v)
    }

    fn primitive<T: bincode::Decode<()>>(&mut self, what: &'static str) -> Result<T, DecodeError> {
        let rest = &self.buf[self.pos..];
        match bincode::decode_from_slice::<T, _>(rest, config()) {
            Ok((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            Err(bincode::error::DecodeError::UnexpectedEnd { .. }) => {
                Err(DecodeError::Truncated { what })
            }
            Err(e) => Err(DecodeError::Invalid {
                what,
                detail: e.to_string(),
            }),
        }
    }
}

/// The error for a varint whose width marker is too wide for its field
/// (out of line: it formats).
#[cold]
#[inline(never)]
fn too_wide(what: &'static str, marker: u8) -> DecodeError {
    DecodeError::Invalid {
        what,
        detail: format!("varint width marker {marker} is too wide for this field"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut w = Writer::new();
        f(&mut w);
        w.into_vec()
    }

    #[test]
    fn varint_boundaries_match_the_documented_format() {
        let cases: &[(u64, &[u8])] = &[
            (0, &[0]),
            (250, &[250]),
            (251, &[251, 251, 0]),
            (65_535, &[251, 0xff, 0xff]),
            (65_536, &[252, 0, 0, 1, 0]),
            (u64::from(u32::MAX) + 1, &[253, 0, 0, 0, 0, 1, 0, 0, 0]),
        ];
        for &(v, bytes) in cases {
            assert_eq!(enc(|w| w.u64(v)), bytes, "encoding {v}");
            assert_eq!(Reader::new(bytes).u64("v"), Ok(v));
        }
        assert_eq!(enc(|w| w.i64(-1)), [1]);
        assert_eq!(enc(|w| w.i64(1)), [2]);
        assert_eq!(enc(|w| w.i64(-126)), [251, 251, 0]);
    }

    proptest::proptest! {
        /// The hand-written varints accept and produce exactly bincode's bytes.
        #[test]
        fn varints_match_bincode(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..10),
            v in proptest::prelude::any::<u64>(),
            shift in 0u32..64,
        ) {
            fn reference<T: bincode::Decode<()>>(b: &[u8]) -> Option<(T, usize)> {
                bincode::decode_from_slice::<T, _>(b, config()).ok()
            }
            fn ours<T>(b: &[u8], f: impl Fn(&mut Reader<'_>) -> Result<T, DecodeError>) -> Option<(T, usize)> {
                let mut r = Reader::new(b);
                f(&mut r).ok().map(|v| (v, r.position()))
            }
            proptest::prop_assert_eq!(ours(&bytes, |r| r.u16("x")), reference::<u16>(&bytes));
            proptest::prop_assert_eq!(ours(&bytes, |r| r.u32("x")), reference::<u32>(&bytes));
            proptest::prop_assert_eq!(ours(&bytes, |r| r.u64("x")), reference::<u64>(&bytes));
            proptest::prop_assert_eq!(ours(&bytes, |r| r.i64("x")), reference::<i64>(&bytes));
            proptest::prop_assert_eq!(ours(&bytes, |r| r.i16("x")), reference::<i16>(&bytes));
            proptest::prop_assert_eq!(ours(&bytes, |r| r.i32("x")), reference::<i32>(&bytes));
            proptest::prop_assert_eq!(ours(&bytes, |r| r.char("x")), reference::<char>(&bytes));
            proptest::prop_assert_eq!(ours(&bytes, |r| r.bool("x")), reference::<bool>(&bytes));
            let v = v >> shift;
            let mut direct = Vec::new();
            bincode::encode_into_std_write(v, &mut direct, config()).unwrap();
            proptest::prop_assert_eq!(enc(|w| w.u64(v)), direct.clone());
            let s = v as i64;
            direct.clear();
            bincode::encode_into_std_write(s, &mut direct, config()).unwrap();
            proptest::prop_assert_eq!(enc(|w| w.i64(s)), direct);
        }
    }

    #[test]
    fn hostile_lengths_fail_before_allocating() {
        // A string that claims u64::MAX bytes.
        let bytes = [253, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            Reader::new(&bytes).str("name", 64),
            Err(DecodeError::TooMany { .. })
        ));
        // A count that fits the limit but not the input.
        assert_eq!(
            Reader::new(&[10, 1, 2]).count("items", 100, 1),
            Err(DecodeError::Truncated { what: "items" })
        );
        // A serde String in a game payload that claims 2^40 bytes.
        let bytes = [253, 0, 0, 0, 0, 0, 1, 0, 0];
        assert!(matches!(
            Reader::new(&bytes).value::<String>("event"),
            Err(DecodeError::Payload { .. })
        ));
    }

    #[test]
    fn truncated_and_out_of_range_input_is_an_error() {
        assert_eq!(
            Reader::new(&[251, 1]).u32("x"),
            Err(DecodeError::Truncated { what: "x" })
        );
        assert!(Reader::new(&[2]).bool("b").is_err());
        assert!(
            Reader::new(&[253, 0, 0, 0, 0, 1, 0, 0, 0])
                .u32("x")
                .is_err()
        );
        let r = Reader::new(&[1, 2]);
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes { count: 2 }));
    }
}
