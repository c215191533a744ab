//! Full snapshots: the set of entities one client sees at one tick.
//!
//! A [`Snapshot`] is a list of `(NetId, state)` sorted by id, ids unique. On
//! the wire a full snapshot body is:
//!
//! ```text
//! count: varint            number of entities
//! count × { id: varint (first: the id; then: id − previous id, ≥ 1), state: bincode }
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{DecodeError, EncodeError, Reader, Writer};
use crate::limits::Limits;

/// A small, stable network id for an entity. The server never reuses one
/// while a client could still hold the old entity.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct NetId(pub u32);

impl core::fmt::Display for NetId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The entities one client sees at one tick, sorted by [`NetId`].
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot<S> {
    entities: Vec<(NetId, S)>,
}

impl<S> Default for Snapshot<S> {
    fn default() -> Self {
        Self {
            entities: Vec::new(),
        }
    }
}

/// A list handed to [`Snapshot::from_vec`] repeated an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entity id {0} appears twice")]
pub struct DuplicateId(pub NetId);

impl<S> Snapshot<S> {
    /// An empty snapshot.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a snapshot from entities in any order.
    ///
    /// # Errors
    /// [`DuplicateId`] when an id appears twice.
    pub fn from_vec(mut entities: Vec<(NetId, S)>) -> Result<Self, DuplicateId> {
        entities.sort_unstable_by_key(|(id, _)| *id);
        if let Some(w) = entities.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(DuplicateId(w[0].0));
        }
        Ok(Self { entities })
    }

    /// Builds from a list already sorted by id with unique ids (unchecked in
    /// release builds; the caller guarantees it).
    pub(crate) fn from_sorted_unchecked(entities: Vec<(NetId, S)>) -> Self {
        debug_assert!(entities.windows(2).all(|w| w[0].0 < w[1].0));
        Self { entities }
    }

    /// Number of entities.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// True when there are no entities.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// The state of entity `id`, if present.
    #[must_use]
    pub fn get(&self, id: NetId) -> Option<&S> {
        self.entities
            .binary_search_by_key(&id, |(i, _)| *i)
            .ok()
            .map(|i| &self.entities[i].1)
    }

    /// The entities, sorted by id.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (NetId, &S)> + Clone + '_ {
        self.entities.iter().map(|(id, s)| (*id, s))
    }

    /// The entities as a slice, sorted by id.
    #[must_use]
    pub fn as_slice(&self) -> &[(NetId, S)] {
        &self.entities
    }

    /// Takes the entity list out.
    #[must_use]
    pub fn into_vec(self) -> Vec<(NetId, S)> {
        self.entities
    }
}

/// Writes a full snapshot body for entities given in ascending id order.
///
/// # Errors
/// [`EncodeError`] when ids are not strictly increasing or a state cannot be
/// encoded.
pub fn write_full<'a, S: Serialize + 'a>(
    w: &mut Writer,
    entities: impl ExactSizeIterator<Item = (NetId, &'a S)>,
) -> Result<(), EncodeError> {
    w.len_prefix(entities.len());
    let mut ids = IdEncoder::default();
    for (id, state) in entities {
        ids.write(w, id)?;
        w.value("entity state", state)?;
    }
    Ok(())
}

/// Reads a full snapshot body written by [`write_full`].
///
/// # Errors
/// [`DecodeError`] on any malformed input or a count over
/// [`Limits::max_entities_per_snapshot`].
pub fn read_full<S: DeserializeOwned>(
    r: &mut Reader<'_>,
    limits: &Limits,
) -> Result<Snapshot<S>, DecodeError> {
    // Each entity takes at least one byte (its id; a state may be empty).
    let count = r.count("entities", limits.max_entities_per_snapshot, 1)?;
    let mut entities = Vec::with_capacity(count);
    let mut ids = IdDecoder::default();
    for _ in 0..count {
        let id = ids.read(r)?;
        entities.push((id, r.value("entity state")?));
    }
    Ok(Snapshot::from_sorted_unchecked(entities))
}

/// Gap encoding of strictly increasing ids: the first id as is, then the
/// difference to the previous id (never 0).
#[derive(Default)]
pub(crate) struct IdEncoder {
    prev: Option<NetId>,
    /// Bytes written beyond one per id (gaps of 251 or more).
    pub(crate) extra: usize,
}

impl IdEncoder {
    #[inline]
    pub(crate) fn write(&mut self, w: &mut Writer, id: NetId) -> Result<(), EncodeError> {
        let gap = match self.prev {
            None => id.0,
            Some(prev) if id > prev => id.0 - prev.0,
            Some(prev) => return Err(unordered_ids(prev, id)),
        };
        self.prev = Some(id);
        if gap > 250 {
            // A three- or five-byte varint.
            self.extra += if gap <= 0xffff { 2 } else { 4 };
        }
        w.u32(gap);
        Ok(())
    }
}

/// Ids out of order (out of line: it formats).
#[cold]
fn unordered_ids(prev: NetId, id: NetId) -> EncodeError {
    EncodeError::Payload {
        what: "entity ids",
        detail: format!("ids must be strictly increasing, got {id} after {prev}"),
    }
}

/// Reads ids written by [`IdEncoder`], rejecting zero gaps and overflow.
#[derive(Default)]
pub(crate) struct IdDecoder {
    prev: Option<NetId>,
}

impl IdDecoder {
    #[inline]
    pub(crate) fn read(&mut self, r: &mut Reader<'_>) -> Result<NetId, DecodeError> {
        let gap = r.u32("entity id")?;
        let id = match self.prev {
            None => gap,
            Some(prev) => match prev.0.checked_add(gap) {
                Some(id) if gap != 0 => id,
                _ => return Err(bad_gap(prev, gap)),
            },
        };
        self.prev = Some(NetId(id));
        Ok(NetId(id))
    }
}

/// A gap of 0, or one that overflows (out of line: it formats).
#[cold]
#[inline(never)]
fn bad_gap(prev: NetId, gap: u32) -> DecodeError {
    DecodeError::Invalid {
        what: "entity id",
        detail: if gap == 0 {
            "id gap of 0 (ids must be strictly increasing)".to_owned()
        } else {
            format!("id {prev} + gap {gap} overflows u32")
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_round_trip_and_duplicate_rejection() {
        let snap = Snapshot::from_vec(vec![(NetId(7), 70u32), (NetId(3), 30)]).unwrap();
        let mut w = Writer::new();
        write_full(&mut w, snap.iter()).unwrap();
        // count 2, id 3 state 30, gap 4 state 70
        assert_eq!(w.as_slice(), [2, 3, 30, 4, 70]);
        let mut r = Reader::new(w.as_slice());
        let back: Snapshot<u32> = read_full(&mut r, &Limits::default()).unwrap();
        assert_eq!(back, snap);
        assert_eq!(
            Snapshot::from_vec(vec![(NetId(1), 0u8), (NetId(1), 1)]),
            Err(DuplicateId(NetId(1)))
        );
    }

    #[test]
    fn hostile_full_bodies_are_rejected() {
        let limits = Limits::default();
        // zero gap
        assert!(read_full::<u8>(&mut Reader::new(&[2, 5, 0, 0, 0]), &limits).is_err());
        // count larger than the input can hold
        assert!(read_full::<u8>(&mut Reader::new(&[250, 1, 1]), &limits).is_err());
        // overflowing ids
        let mut w = Writer::new();
        w.u64(2);
        w.u32(u32::MAX);
        w.u8(0);
        w.u32(1);
        w.u8(0);
        assert!(read_full::<u8>(&mut Reader::new(w.as_slice()), &limits).is_err());
    }
}
