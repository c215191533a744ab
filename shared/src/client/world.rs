//! [`ClientWorld`]: the entities a client sees, patched in place by each
//! applied snapshot, with the older ticks the server may still use as delta
//! baselines kept as per-entity versions instead of whole copies.
//!
//! ```text
//!  entity slot:  id  versions [(tick, Some(state) | None = absent), …]  ascending ticks
//!  kept ticks:   [(tick, entity count, slots that got a version at tick), …]  oldest = prune point
//! ```
//!
//! The state of an entity at a kept tick `t` is its last version at or before
//! `t`. Applying a delta of tick `N` against baseline `B`:
//!
//! 1. decodes the three sections against the states at `B` (removed and
//!    patched ids must exist at `B`) into a list of updates, checking every
//!    rule before touching the world, so a bad delta changes nothing;
//! 2. commits each update as a version at `N` (skipped when equal to the
//!    newest state);
//! 3. *reverts* the entities that changed after `B` and that the delta does
//!    not mention: the server says they are as at `B`. They are found through
//!    the kept ticks' change lists, so the cost is what changed, not the
//!    world;
//! 4. drops the kept ticks older than `B` (the server never goes back,
//!    PROTOCOL.md §8.7), trimming those entities' old versions.
//!
//! A patched entity costs a clone of its state at `B` and an in-place patch
//! ([`crate::GameProtocol::patch_in_place`], or the serde path). Nothing is
//! rebuilt: applying a delta costs the changed entities and their bytes.
//!
//! A full snapshot into a world with nothing in it (the first one) skips the
//! list of updates: each entity gets its slot as it is read, its state read
//! in place over a copy of the entity read before it, and a bad body frees
//! those slots again.

use std::collections::VecDeque;

use smallvec::SmallVec;

use super::index::Index;
use crate::codec::{DecodeError, Reader};
use crate::game::GameProtocol;
use crate::limits::Limits;
use crate::patch::{PatchError, PatchScratch, patched_with_serde};
use crate::snapshot::{IdDecoder, NetId, Snapshot};

/// Decodes one whole entity state: in place over a copy of the first of
/// `templates` whose layout fits (any states: the entity's own previous one,
/// or entities decoded just before it) through
/// [`GameProtocol::read_in_place`], or with serde when no template fits or
/// the game has no in-place path. Also returns whether the first template
/// did not fit.
fn read_state<P: GameProtocol>(
    templates: [Option<&P::EntityState>; 2],
    r: &mut Reader<'_>,
    limits: &Limits,
) -> Result<(P::EntityState, bool), DecodeError> {
    let start = r.clone();
    // Written out rather than a loop over the pair (see `read_into`).
    let [first, second] = templates;
    if let Some(template) = first {
        let mut state = template.clone();
        match P::read_in_place(&mut state, r, limits) {
            Ok(()) => return Ok((state, false)),
            Err(PatchError::Decode(e)) => return Err(e),
            Err(PatchError::Layout) => *r = start.clone(),
        }
    }
    let first_misfit = first.is_some();
    if let Some(template) = second {
        let mut state = template.clone();
        match P::read_in_place(&mut state, r, limits) {
            Ok(()) => return Ok((state, first_misfit)),
            Err(PatchError::Decode(e)) => return Err(e),
            Err(PatchError::Layout) => *r = start,
        }
    }
    Ok((r.value("entity state")?, first_misfit))
}

/// The first id in both ascending sequences.
fn first_common(
    mut a: impl Iterator<Item = NetId>,
    mut b: impl Iterator<Item = NetId>,
) -> Option<NetId> {
    let (mut x, mut y) = (a.next()?, b.next()?);
    loop {
        match x.cmp(&y) {
            core::cmp::Ordering::Less => x = a.next()?,
            core::cmp::Ordering::Greater => y = b.next()?,
            core::cmp::Ordering::Equal => return Some(x),
        }
    }
}

/// Picks the templates for [`read_state`] when decoding a run of new
/// entities: the state decoded last, then the last one that did not fit
/// (entities of two layouts, such as two enum variants, often alternate).
#[derive(Debug, Default, Clone, Copy)]
struct Templates {
    /// Where the state decoded last is (an index in `updates`, or a slot).
    last: Option<usize>,
    /// Where the last template that did not fit is.
    other: Option<usize>,
}

impl Templates {
    fn pick<'s, S: 's>(&self, state: impl Fn(usize) -> Option<&'s S>) -> [Option<&'s S>; 2] {
        [self.last.and_then(&state), self.other.and_then(&state)]
    }

    /// Records the state just pushed at `index`, decoded over the picked
    /// templates (`first_misfit`: the first did not fit).
    fn decoded(&mut self, index: usize, first_misfit: bool) {
        if first_misfit {
            self.other = self.last;
        }
        self.last = Some(index);
    }
}

/// At most this many slots are read ahead of a delta ([`ClientWorld::warm`]).
const WARM_SLOTS: usize = 256;

/// One entity's versions, oldest first (never empty). Two are kept inline:
/// a still entity has one version, and a moving one two (its state at the
/// baseline and the newest, see `ClientWorld::set`), so neither allocates
/// nor sends a read of its state through a pointer into another part of the
/// heap. With hundreds of clients' worlds in one process (`arena-bots`) that
/// pointer was a cache miss per changed entity: 12–15 % of a playing bot's
/// CPU in paired runs (BENCHMARKS.md).
#[derive(Debug, Clone)]
struct Slot<S> {
    id: NetId,
    versions: SmallVec<[(u32, Option<S>); 2]>,
    /// The tick of the apply that last visited this slot (dedup of reverts).
    stamp: u32,
}

impl<S> Slot<S> {
    /// The state at `tick`: the last version at or before it.
    fn at(&self, tick: u32) -> Option<&S> {
        self.versions
            .iter()
            .rev()
            .find(|(t, _)| *t <= tick)
            .and_then(|(_, s)| s.as_ref())
    }

    fn newest(&self) -> Option<&S> {
        self.versions.last().and_then(|(_, s)| s.as_ref())
    }

    fn newest_mut(&mut self) -> Option<&mut S> {
        self.versions.last_mut().and_then(|(_, s)| s.as_mut())
    }

    /// Absent at `tick`, with no version after it (once trimmed at `tick`).
    fn freeable(&self, tick: u32) -> bool {
        self.versions.len() == 1 && self.versions[0].1.is_none() && self.versions[0].0 <= tick
    }

    /// Drops the versions before the state at `tick` (keeps that one and
    /// the later ones).
    fn drop_before(&mut self, tick: u32) {
        let at_or_before = self.versions.iter().take_while(|(t, _)| *t <= tick).count();
        match at_or_before {
            0 | 1 => {}
            // The usual case: one version older than `tick`.
            2 => drop(self.versions.remove(0)),
            n => drop(self.versions.drain(..n - 1)),
        }
    }
}

/// An applied tick that may still serve as a baseline.
#[derive(Debug, Clone)]
struct Kept {
    tick: u32,
    /// Entities present at this tick.
    len: usize,
    /// Slots that got a version at this tick.
    changed: Vec<u32>,
}

/// What the newest applied snapshot changed, relative to the one before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Entities that appeared.
    pub added: Vec<NetId>,
    /// Entities whose state changed.
    pub changed: Vec<NetId>,
    /// Entities that disappeared.
    pub removed: Vec<NetId>,
}

impl Changes {
    fn clear(&mut self) {
        self.added.clear();
        self.changed.clear();
        self.removed.clear();
    }

    /// True when the snapshot changed nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// Why a snapshot was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Its tick is not newer than the newest applied one: ignore it.
    #[error("snapshot of tick {tick} is not newer than the applied tick {newest}")]
    Stale {
        /// The snapshot's tick.
        tick: u32,
        /// The newest applied tick.
        newest: u32,
    },
    /// A delta against a tick this world does not keep (the server broke
    /// PROTOCOL.md §8.7).
    #[error("delta of tick {tick} is based on tick {baseline}, which is not kept")]
    BaselineMissing {
        /// The snapshot's tick.
        tick: u32,
        /// Its baseline.
        baseline: u32,
    },
    /// The body is malformed or does not fit its baseline.
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// The entities one client sees, by [`NetId`], at the newest applied tick,
/// plus what the server may still diff against. See the module docs.
///
/// ```
/// use tickwire_shared::client::ClientWorld;
/// use tickwire_shared::{message::encode_snapshot, Limits, NetId, ServerMessage, Snapshot};
/// # use serde::{Serialize, Deserialize};
/// # #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)] struct P(i32);
/// # struct G;
/// # impl tickwire_shared::GameProtocol for G {
/// #     const NAME: &'static str = "g"; const VERSION: u32 = 1;
/// #     type Input = (); type EntityState = P; type Event = (); type Message = ();
/// # }
/// let limits = Limits::default();
/// let mut world = ClientWorld::<P>::new(64);
/// let s1 = Snapshot::from_vec(vec![(NetId(1), P(0)), (NetId(2), P(5))]).unwrap();
/// let s2 = Snapshot::from_vec(vec![(NetId(1), P(3))]).unwrap();
/// for bytes in [
///     encode_snapshot(10, 0, None, &s1).unwrap(),
///     encode_snapshot(11, 0, Some((10, &s1)), &s2).unwrap(),
/// ] {
///     let ServerMessage::<()>::Snapshot(f) = ServerMessage::decode(&bytes, &limits).unwrap()
///     else { unreachable!() };
///     world.apply::<G>(f.header.tick, f.header.baseline, f.body, &limits).unwrap();
/// }
/// assert_eq!(world.get(NetId(1)), Some(&P(3)));
/// assert_eq!(world.changes().removed, [NetId(2)]);
/// ```
#[derive(Debug, Clone)]
pub struct ClientWorld<S> {
    slots: Vec<Slot<S>>,
    /// Slots no entity uses; each holds no versions.
    free: Vec<u32>,
    index: Index,
    kept: VecDeque<Kept>,
    capacity: usize,
    changes: Changes,
    /// Per-apply scratch: (id, slot if known, new state or None = removed).
    updates: Vec<(NetId, Option<u32>, Option<S>)>,
    /// Per-apply scratch: the slots created by the apply, indexed in one
    /// merge at its end.
    fresh: Vec<(NetId, u32)>,
    /// Per-apply scratch: the ids whose slots the apply freed, unindexed in
    /// one pass at its end.
    gone: Vec<NetId>,
    spare_lists: Vec<Vec<u32>>,
    patch: PatchScratch,
}

impl<S: Clone + PartialEq> ClientWorld<S> {
    /// An empty world keeping at most `capacity` ticks as baselines (at
    /// least 1).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            index: Index::default(),
            kept: VecDeque::new(),
            capacity: capacity.max(1),
            changes: Changes::default(),
            updates: Vec::new(),
            fresh: Vec::new(),
            gone: Vec::new(),
            spare_lists: Vec::new(),
            patch: PatchScratch::default(),
        }
    }

    /// The newest applied tick.
    #[must_use]
    pub fn tick(&self) -> Option<u32> {
        self.kept.back().map(|k| k.tick)
    }

    /// Entities present at the newest tick.
    #[must_use]
    pub fn len(&self) -> usize {
        self.kept.back().map_or(0, |k| k.len)
    }

    /// True when no entity is present.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The state of entity `id` at the newest tick.
    #[must_use]
    pub fn get(&self, id: NetId) -> Option<&S> {
        let slot = self.index.get(id)?;
        self.slots[slot as usize].newest()
    }

    /// The entities present at the newest tick, sorted by id.
    pub fn iter(&self) -> impl Iterator<Item = (NetId, &S)> + '_ {
        self.index
            .iter()
            .filter_map(|(id, slot)| self.slots[slot as usize].newest().map(|s| (id, s)))
    }

    /// What the newest applied snapshot changed.
    #[must_use]
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// The ticks kept as possible baselines, oldest first.
    pub fn kept_ticks(&self) -> impl Iterator<Item = u32> + '_ {
        self.kept.iter().map(|k| k.tick)
    }

    /// A copy of the newest state as a [`Snapshot`] (for tests and tools;
    /// it clones every state).
    #[must_use]
    pub fn to_snapshot(&self) -> Snapshot<S> {
        Snapshot::from_sorted_unchecked(self.iter().map(|(id, s)| (id, s.clone())).collect())
    }

    /// Forgets everything (a new connection: baselines do not survive it).
    pub fn clear(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.index.clear();
        self.kept.clear();
        self.changes.clear();
    }

    /// Applies the body of a snapshot of `tick` (a delta against `baseline`,
    /// or full when `None`), as received in a
    /// [`crate::message::SnapshotFrame`]. On any error the world is
    /// unchanged.
    ///
    /// # Errors
    /// [`ApplyError::Stale`] (ignore it), [`ApplyError::BaselineMissing`] and
    /// [`ApplyError::Decode`] (the server misbehaved: close with 1002).
    pub fn apply<P: GameProtocol<EntityState = S>>(
        &mut self,
        tick: u32,
        baseline: Option<u32>,
        body: &[u8],
        limits: &Limits,
    ) -> Result<(), ApplyError>
    where
        S: serde::Serialize + serde::de::DeserializeOwned,
    {
        if let Some(newest) = self.tick()
            && tick <= newest
        {
            return Err(ApplyError::Stale { tick, newest });
        }
        let mut r = Reader::new(body);
        if baseline.is_none() && self.index.is_empty() {
            return Ok(self.apply_first::<P>(tick, &mut r, limits)?);
        }
        let len = match baseline {
            None => self.decode_full::<P>(&mut r, limits),
            Some(b) => {
                let Some(base) = self.kept.iter().position(|k| k.tick == b) else {
                    return Err(ApplyError::BaselineMissing { tick, baseline: b });
                };
                self.warm::<P>();
                self.decode_delta::<P>(&mut r, b, self.kept[base].len, limits)
            }
        };
        let len = match len.and_then(|len| r.finish().map(|()| len)) {
            Ok(len) => len,
            Err(e) => {
                self.updates.clear();
                return Err(e.into());
            }
        };
        self.commit(tick, baseline, len);
        Ok(())
    }

    /// Reads the slots the newest applied tick changed, before a delta is
    /// decoded: entities that moved then most likely move again, and a
    /// world among hundreds (`arena-bots`) is out of the cache. These loads
    /// do not depend on each other, so the CPU overlaps their misses; during
    /// the decode each slot's miss would wait behind the parse of the patch
    /// before it. The same for what each slot's newest state points to
    /// ([`GameProtocol::read_ahead`]: a name's reference count, which the
    /// patch's clone increments). At most [`WARM_SLOTS`] slots.
    fn warm<P: GameProtocol<EntityState = S>>(&self) {
        let Some(k) = self.kept.back() else { return };
        let mut sum = 0usize;
        for &s in k.changed.iter().take(WARM_SLOTS) {
            if let Some(slot) = self.slots.get(s as usize) {
                // Both ends of the slot: its first version and its stamp.
                let first = slot.versions.first().map_or(0, |v| v.0);
                sum = sum.wrapping_add((first ^ slot.stamp) as usize);
                // And what its newest state points to, which the patch's
                // clone touches.
                if let Some(state) = slot.newest() {
                    sum = sum.wrapping_add(P::read_ahead(state));
                }
            }
        }
        core::hint::black_box(sum);
    }

    /// Applies a full body to a world with no entity in it (a first
    /// snapshot, or the next one after every entity left): each state is
    /// decoded once, straight into a new slot, with no list of updates to
    /// fill, sort and commit, no comparison and no index merge. A bad body
    /// frees the slots it made, so the world is unchanged.
    fn apply_first<P: GameProtocol<EntityState = S>>(
        &mut self,
        tick: u32,
        r: &mut Reader<'_>,
        limits: &Limits,
    ) -> Result<(), DecodeError>
    where
        S: serde::de::DeserializeOwned,
    {
        debug_assert!(self.index.is_empty());
        let slots_before = self.slots.len();
        self.fresh.clear();
        let read = self.read_first::<P>(tick, r, limits);
        if let Err(e) = read.and_then(|count| r.finish().map(|()| count)) {
            // Slots taken from the free list go back to it; pushed ones are
            // dropped.
            for &(_, slot) in &self.fresh {
                if (slot as usize) < slots_before {
                    self.slots[slot as usize].versions.clear();
                    self.free.push(slot);
                }
            }
            self.slots.truncate(slots_before);
            self.fresh.clear();
            return Err(e);
        }
        let count = self.fresh.len();
        self.changes.clear();
        self.changes
            .added
            .extend(self.fresh.iter().map(|&(id, _)| id));
        let mut changed = self.spare_lists.pop().unwrap_or_default();
        changed.clear();
        changed.extend(self.fresh.iter().map(|&(_, slot)| slot));
        self.index.insert_sorted(&mut self.fresh);
        self.keep(tick, None, count, changed);
        Ok(())
    }

    /// [`Self::apply_first`]'s decode: a slot per listed entity, listed in
    /// `fresh`. Returns the count.
    fn read_first<P: GameProtocol<EntityState = S>>(
        &mut self,
        tick: u32,
        r: &mut Reader<'_>,
        limits: &Limits,
    ) -> Result<usize, DecodeError>
    where
        S: serde::de::DeserializeOwned,
    {
        let count = r.count("entities", limits.max_entities_per_snapshot, 1)?;
        // Bounded by the limit and the body's length (see `decode_full`).
        self.fresh.reserve(count);
        // The slots the free list cannot give are made in one pass first: a
        // tight loop of stores brings their memory into the cache far faster
        // than a slot at a time between reads (a template's clone may take a
        // locked instruction, such as an `Arc` count's increment, which
        // waits for every store before it).
        let mut vacant = self.slots.len();
        self.slots
            .resize_with(vacant + count.saturating_sub(self.free.len()), || Slot {
                id: NetId(0),
                versions: SmallVec::new(),
                stamp: 0,
            });
        let mut ids = IdDecoder::default();
        let mut templates = Templates::default();
        for _ in 0..count {
            let id = ids.read(r)?;
            let slot = match self.free.pop() {
                Some(i) => i,
                None => {
                    vacant += 1;
                    (vacant - 1) as u32
                }
            };
            // Its versions are set by `read_into`.
            let s = &mut self.slots[slot as usize];
            s.id = id;
            s.stamp = tick;
            self.fresh.push((id, slot));
            let misfit = self.read_into::<P>(slot, tick, templates, r, limits)?;
            templates.decoded(slot as usize, misfit);
        }
        Ok(count)
    }

    /// Gives the new `slot` its state at `tick`, read from `r` as
    /// [`read_state`] does, but in place: a template's copy is put in the
    /// slot and the fields are read into it there, so the state is written
    /// once, where it stays (moving a state just written field by field
    /// stalls on reading those fields back). Returns whether the first
    /// template did not fit.
    fn read_into<P: GameProtocol<EntityState = S>>(
        &mut self,
        slot: u32,
        tick: u32,
        templates: Templates,
        r: &mut Reader<'_>,
        limits: &Limits,
    ) -> Result<bool, DecodeError>
    where
        S: serde::de::DeserializeOwned,
    {
        let start = r.clone();
        // The two templates in turn, written out: an iterator over the pair
        // cost more than the copy itself.
        let first_misfit = match templates.last {
            Some(t) => match self.read_over::<P>(t, slot, tick, r, limits) {
                Some(Ok(())) => return Ok(false),
                Some(Err(PatchError::Decode(e))) => return Err(e),
                Some(Err(PatchError::Layout)) => {
                    *r = start.clone();
                    self.slots[slot as usize].versions.clear();
                    true
                }
                None => false,
            },
            None => false,
        };
        if let Some(t) = templates.other {
            match self.read_over::<P>(t, slot, tick, r, limits) {
                Some(Ok(())) => return Ok(first_misfit),
                Some(Err(PatchError::Decode(e))) => return Err(e),
                Some(Err(PatchError::Layout)) => {
                    *r = start;
                    self.slots[slot as usize].versions.clear();
                }
                None => {}
            }
        }
        let state = r.value("entity state")?;
        let s = &mut self.slots[slot as usize];
        s.versions.clear();
        s.versions.push((tick, Some(state)));
        Ok(first_misfit)
    }

    /// [`Self::read_into`] over the newest state of slot `template`: `None`
    /// when that slot has none (or is `slot`).
    #[inline(always)]
    fn read_over<P: GameProtocol<EntityState = S>>(
        &mut self,
        template: usize,
        slot: u32,
        tick: u32,
        r: &mut Reader<'_>,
        limits: &Limits,
    ) -> Option<Result<(), PatchError>> {
        let [from, to] = self
            .slots
            .get_disjoint_mut([template, slot as usize])
            .ok()?;
        let from = from.newest()?;
        // The copy is made where it stays (an empty version first, then
        // the clone written into it), not on the stack and moved. A new
        // slot has no versions (free slots hold none; `read_into` clears a
        // misfit's).
        debug_assert!(to.versions.is_empty());
        to.versions.push((tick, None));
        let (_, own) = to.versions.last_mut()?;
        Some(P::read_in_place(own.insert(from.clone()), r, limits))
    }

    /// Reads a full body into `updates`: every listed entity, and a removal
    /// for every present entity it does not list. Returns the new count.
    fn decode_full<P: GameProtocol<EntityState = S>>(
        &mut self,
        r: &mut Reader<'_>,
        limits: &Limits,
    ) -> Result<usize, DecodeError>
    where
        S: serde::de::DeserializeOwned,
    {
        self.updates.clear();
        let count = r.count("entities", limits.max_entities_per_snapshot, 1)?;
        // `count` is bounded by the limit and by the body's length (one byte
        // per entity at least), so reserving it up front is safe.
        self.updates.reserve(count);
        let mut ids = IdDecoder::default();
        let mut templates = Templates::default();
        let mut present = self.index.iter().peekable();
        for _ in 0..count {
            let id = ids.read(r)?;
            // Present entities below `id` are not listed: removed.
            while let Some((pid, slot)) = present.next_if(|(pid, _)| *pid < id) {
                if self.slots[slot as usize].newest().is_some() {
                    self.updates.push((pid, Some(slot), None));
                }
            }
            let slot = present.next_if(|(pid, _)| *pid == id).map(|(_, s)| s);
            // A resync finds most entities as the world holds them: settled
            // by comparing as it reads, with no copy of the state.
            if let Some(own) = slot.and_then(|s| self.slots[s as usize].newest_mut()) {
                let start = r.clone();
                match P::read_unchanged(own, r, limits) {
                    Ok(()) => continue,
                    Err(PatchError::Decode(e)) => return Err(e),
                    Err(PatchError::Layout) => *r = start,
                }
            }
            // Decoded over the entity's present state (a resync), or over
            // the entities decoded before it (a first snapshot).
            let own = slot.and_then(|s| self.slots[s as usize].newest());
            let picked = match own {
                Some(own) => [Some(own), None],
                None => templates.pick(|i| self.updates[i].2.as_ref()),
            };
            let (state, misfit) = read_state::<P>(picked, r, limits)?;
            if own == Some(&state) {
                // Unchanged: nothing to commit (a full snapshot reverts
                // nothing, so the slot needs no visit).
                continue;
            }
            templates.decoded(self.updates.len(), misfit && own.is_none());
            self.updates.push((id, slot, Some(state)));
        }
        for (pid, slot) in present {
            if self.slots[slot as usize].newest().is_some() {
                self.updates.push((pid, Some(slot), None));
            }
        }
        Ok(count)
    }

    /// Reads a delta body against the states at tick `base` (which had
    /// `base_len` entities) into `updates`. Returns the new count.
    fn decode_delta<P: GameProtocol<EntityState = S>>(
        &mut self,
        r: &mut Reader<'_>,
        base: u32,
        base_len: usize,
        limits: &Limits,
    ) -> Result<usize, DecodeError>
    where
        S: serde::Serialize + serde::de::DeserializeOwned,
    {
        self.updates.clear();
        let max = limits.max_entities_per_snapshot;
        let missing = |id: NetId, what: &'static str| DecodeError::Invalid {
            what,
            detail: format!("entity {id} is not in the baseline"),
        };
        let mut len = base_len as i64;

        let n_removed = r.count("removed entities", max, 1)?;
        let mut ids = IdDecoder::default();
        // Each section's ids increase: one index cursor per section.
        let mut at = 0;
        for _ in 0..n_removed {
            let id = ids.read(r)?;
            let slot = self
                .index
                .seek(id, &mut at)
                .filter(|&slot| self.slots[slot as usize].at(base).is_some())
                .ok_or_else(|| missing(id, "removed entity"))?;
            self.updates.push((id, Some(slot), None));
            len -= 1;
        }

        let patched_from = self.updates.len();
        let n_patched = r.count("patched entities", max, 2)?;
        let mut ids = IdDecoder::default();
        let mut at = 0;
        for _ in 0..n_patched {
            let id = ids.read(r)?;
            // One index lookup and one version scan per patched entity.
            let (slot, old) = self
                .index
                .seek(id, &mut at)
                .and_then(|slot| Some((slot, self.slots[slot as usize].at(base)?)))
                .ok_or_else(|| missing(id, "patched entity"))?;
            // The copy is made in the update where it stays, then patched
            // there (a copy patched on the stack and moved stalls on reading
            // back what was just written field by field).
            self.updates.push((id, Some(slot), None));
            let last = self.updates.len() - 1;
            let state = self.updates[last].2.insert(old.clone());
            let start = r.clone();
            match P::patch_in_place(state, r, limits) {
                Ok(()) => {}
                Err(PatchError::Decode(e)) => return Err(e),
                Err(PatchError::Layout) => {
                    *r = start;
                    *state = patched_with_serde(old, r, limits, &mut self.patch)?;
                }
            }
        }

        let full_from = self.updates.len();
        let n_full = r.count("full entities", max, 1)?;
        let mut ids = IdDecoder::default();
        let mut templates = Templates::default();
        let mut at = 0;
        for _ in 0..n_full {
            let id = ids.read(r)?;
            let slot = self.index.seek(id, &mut at);
            let own = slot.and_then(|s| self.slots[s as usize].newest());
            let picked = match own {
                Some(own) => [Some(own), None],
                None => templates.pick(|i| self.updates[i].2.as_ref()),
            };
            let (state, misfit) = read_state::<P>(picked, r, limits)?;
            templates.decoded(self.updates.len(), misfit && own.is_none());
            let existed = slot.is_some_and(|s| self.slots[s as usize].at(base).is_some());
            len += i64::from(!existed);
            self.updates.push((id, slot, Some(state)));
        }

        // Sections are each sorted; an id in two of them is an error,
        // found by merging their ids. The updates stay in section order
        // (a sort moved every update, 2-3 % of a playing bot's CPU).
        let ids = |from: usize, to: usize| self.updates[from..to].iter().map(|u| u.0);
        let end = self.updates.len();
        let twice = first_common(ids(0, patched_from), ids(patched_from, full_from))
            .or_else(|| first_common(ids(0, patched_from), ids(full_from, end)))
            .or_else(|| first_common(ids(patched_from, full_from), ids(full_from, end)));
        if let Some(id) = twice {
            return Err(DecodeError::Invalid {
                what: "delta",
                detail: format!("entity {id} is in two sections"),
            });
        }
        let len = usize::try_from(len).unwrap_or(0);
        if len > max {
            return Err(DecodeError::TooMany {
                what: "entities after applying the delta",
                count: len as u64,
                max,
            });
        }
        Ok(len)
    }

    /// A slot for the new entity `id`, listed in `fresh` for
    /// [`Self::commit`] to index.
    fn new_slot(&mut self, id: NetId) -> u32 {
        let slot = Slot {
            id,
            versions: SmallVec::new(),
            stamp: 0,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.fresh.push((id, i));
        i
    }

    /// Writes `updates` (and, for a delta, the reverts) as versions at
    /// `tick`, records the changes, then prunes.
    fn commit(&mut self, tick: u32, baseline: Option<u32>, len: usize) {
        self.changes.clear();
        let mut changed = self.spare_lists.pop().unwrap_or_default();
        changed.clear();
        let mut updates = core::mem::take(&mut self.updates);
        // New entities are indexed in one merge. `fresh` is sorted by id:
        // a full body's updates are, and a delta's new entities all come
        // from its full section, whose ids increase.
        self.fresh.clear();
        if self.index.is_empty() {
            // Every entity is new: size the lists once.
            self.fresh.reserve(updates.len());
            self.slots.reserve(updates.len());
            self.changes.added.reserve(updates.len());
            changed.reserve(updates.len());
        }
        for (id, slot, state) in updates.drain(..) {
            let slot = match slot {
                Some(s) => s,
                None => self.new_slot(id),
            };
            self.set(slot, tick, baseline, state, &mut changed);
        }
        self.updates = updates;
        self.index.insert_sorted(&mut self.fresh);
        if let Some(b) = baseline {
            // Entities that changed after `b` and that the delta did not
            // mention are as they were at `b`.
            if let Some(first) = self.kept.iter().position(|k| k.tick > b) {
                for ki in first..self.kept.len() {
                    for i in 0..self.kept[ki].changed.len() {
                        let slot = self.kept[ki].changed[i];
                        let s = &self.slots[slot as usize];
                        if s.stamp == tick {
                            continue;
                        }
                        let state = s.at(b).cloned();
                        self.set(slot, tick, baseline, state, &mut changed);
                    }
                }
            }
        }
        self.keep(tick, baseline, len, changed);
    }

    /// Keeps the applied `tick` as a baseline, then drops the kept ticks
    /// older than the delta's `baseline` and those past the capacity.
    fn keep(&mut self, tick: u32, baseline: Option<u32>, len: usize, changed: Vec<u32>) {
        self.kept.push_back(Kept { tick, len, changed });
        if let Some(b) = baseline {
            // `set` trimmed the slots this apply wrote down to `b` already.
            self.prune_before(b, Some(tick));
        }
        while self.kept.len() > self.capacity {
            let next = self.kept[1].tick;
            self.prune_before(next, None);
        }
        self.index.remove_all(&mut self.gone);
    }

    /// Makes `state` the slot's state at `tick` unless it already is. With
    /// the delta's `baseline`, first drops the versions that only kept ticks
    /// older than it needed ([`Self::prune_before`] drops those ticks at the
    /// end of this commit): done here, while the slot is in the cache, a
    /// moving entity keeps two versions, both inline, and the prune finds
    /// nothing left to trim.
    fn set(
        &mut self,
        slot: u32,
        tick: u32,
        baseline: Option<u32>,
        state: Option<S>,
        changed: &mut Vec<u32>,
    ) {
        let s = &mut self.slots[slot as usize];
        s.stamp = tick;
        if let Some(b) = baseline {
            s.drop_before(b);
        }
        let before = s.newest();
        if before == state.as_ref() {
            return;
        }
        match (before.is_some(), state.is_some()) {
            (false, true) => self.changes.added.push(s.id),
            (true, false) => self.changes.removed.push(s.id),
            _ => self.changes.changed.push(s.id),
        }
        s.versions.push((tick, state));
        changed.push(slot);
    }

    /// Drops the kept ticks older than `tick`, trimming each entity that got
    /// a version at one of them down to its state at `tick`, except those
    /// whose stamp is `trimmed` (the apply that just trimmed them at `tick`
    /// in [`Self::set`]; none of them can be freed here, as each is present
    /// at `tick` or has a version after it). A moving entity is in every
    /// kept tick's list: it is visited once per apply, not twice.
    fn prune_before(&mut self, tick: u32, trimmed: Option<u32>) {
        while self.kept.front().is_some_and(|k| k.tick < tick) {
            let Some(mut k) = self.kept.pop_front() else {
                break;
            };
            for &slot in &k.changed {
                let s = &self.slots[slot as usize];
                if trimmed.is_some_and(|t| s.stamp == t) {
                    debug_assert!(!s.freeable(tick), "slot {slot} skipped but freeable");
                    continue;
                }
                self.trim(slot, tick);
            }
            k.changed.clear();
            self.spare_lists.push(k.changed);
        }
    }

    /// Keeps only the slot's versions from its state at `tick` on; frees a
    /// slot that is absent at `tick` and has no later version.
    fn trim(&mut self, slot: u32, tick: u32) {
        let s = &mut self.slots[slot as usize];
        s.drop_before(tick);
        if s.freeable(tick) {
            let id = s.id;
            s.versions.clear();
            self.gone.push(id);
            self.free.push(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{ServerMessage, encode_snapshot};
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct P {
        x: i32,
        y: i32,
    }

    struct G;
    impl GameProtocol for G {
        const NAME: &'static str = "world-test";
        const VERSION: u32 = 1;
        type Input = ();
        type EntityState = P;
        type Event = ();
        type Message = ();
    }

    fn snap(entries: &[(u32, i32)]) -> Snapshot<P> {
        Snapshot::from_vec(
            entries
                .iter()
                .map(|&(id, x)| (NetId(id), P { x, y: -x }))
                .collect(),
        )
        .unwrap()
    }

    fn apply(
        w: &mut ClientWorld<P>,
        tick: u32,
        base: Option<(u32, &Snapshot<P>)>,
        cur: &Snapshot<P>,
    ) -> Result<(), ApplyError> {
        let bytes = encode_snapshot(tick, 0, base, cur).unwrap();
        let limits = Limits::default();
        let ServerMessage::<()>::Snapshot(f) = ServerMessage::decode(&bytes, &limits).unwrap()
        else {
            unreachable!()
        };
        w.apply::<G>(f.header.tick, f.header.baseline, f.body, &limits)
    }

    #[test]
    fn deltas_against_older_baselines_revert_what_they_do_not_mention() {
        let mut w = ClientWorld::new(64);
        let s10 = snap(&[(1, 0), (2, 0), (3, 0)]);
        let s11 = snap(&[(1, 1), (2, 0), (4, 4)]);
        let s12 = snap(&[(1, 2), (2, 0), (3, 0), (5, 5)]);
        apply(&mut w, 10, None, &s10).unwrap();
        apply(&mut w, 11, Some((10, &s10)), &s11).unwrap();
        assert_eq!(w.to_snapshot(), s11);
        assert_eq!(w.changes().added, [NetId(4)]);
        assert_eq!(w.changes().removed, [NetId(3)]);
        // The server still diffs against 10: 3 is back, 4 is gone again.
        apply(&mut w, 12, Some((10, &s10)), &s12).unwrap();
        assert_eq!(w.to_snapshot(), s12);
        assert_eq!(w.kept_ticks().collect::<Vec<_>>(), [10, 11, 12]);
        let mut c = w.changes().clone();
        c.added.sort();
        assert_eq!(c.added, [NetId(3), NetId(5)]);
        assert_eq!(c.removed, [NetId(4)]);
        assert_eq!(c.changed, [NetId(1)]);
        // A delta against 12 prunes 10 and 11.
        let s13 = snap(&[(1, 3), (5, 5)]);
        apply(&mut w, 13, Some((12, &s12)), &s13).unwrap();
        assert_eq!(w.to_snapshot(), s13);
        assert_eq!(w.kept_ticks().collect::<Vec<_>>(), [12, 13]);
        assert_eq!(
            apply(&mut w, 14, Some((11, &s11)), &s13),
            Err(ApplyError::BaselineMissing {
                tick: 14,
                baseline: 11
            })
        );
        assert_eq!(
            apply(&mut w, 13, None, &s13),
            Err(ApplyError::Stale {
                tick: 13,
                newest: 13
            })
        );
        // Trimmed: removed entities leave the index once no kept tick has them.
        let s14 = snap(&[(5, 6)]);
        apply(&mut w, 14, Some((13, &s13)), &s14).unwrap();
        apply(&mut w, 15, Some((14, &s14)), &s14).unwrap();
        apply(&mut w, 16, Some((15, &s14)), &s14).unwrap();
        assert_eq!(w.index.len(), 1);
        assert!(w.slots.iter().all(|s| s.versions.len() <= 1));
    }

    #[test]
    fn a_full_snapshot_replaces_the_view_and_a_bad_delta_changes_nothing() {
        let mut w = ClientWorld::new(64);
        let s1 = snap(&[(1, 1), (2, 2)]);
        apply(&mut w, 1, None, &s1).unwrap();
        let s2 = snap(&[(2, 3), (7, 7)]);
        apply(&mut w, 2, None, &s2).unwrap();
        assert_eq!(w.to_snapshot(), s2);
        assert_eq!(w.changes().removed, [NetId(1)]);
        // Patch entity 9, which is not at tick 2.
        let limits = Limits::default();
        let err = w.apply::<G>(3, Some(2), &[0, 1, 9, 1, 2, 0], &limits);
        assert!(matches!(err, Err(ApplyError::Decode(_))), "{err:?}");
        // The same entity in two sections: removed and patched (+1 to x),
        // removed and whole (x = 3, y = -3), patched and whole.
        for body in [
            &[1, 2, 1, 2, 1, 2, 0][..],
            &[1, 2, 0, 1, 2, 6, 5],
            &[0, 1, 2, 1, 2, 1, 2, 6, 5],
        ] {
            let err = w.apply::<G>(3, Some(2), body, &limits);
            assert!(
                matches!(&err, Err(ApplyError::Decode(DecodeError::Invalid { detail, .. }))
                    if detail == "entity #2 is in two sections"),
                "{body:?}: {err:?}"
            );
        }
        assert_eq!(w.to_snapshot(), s2);
        assert_eq!(w.tick(), Some(2));
    }

    #[test]
    fn an_emptied_world_is_indexed_again_by_a_delta_or_a_full_snapshot() {
        let mut w = ClientWorld::new(2);
        let s1 = snap(&[(1, 1), (2, 2)]);
        let empty = snap(&[]);
        let s3 = snap(&[(2, 3), (5, 5), (9, 9)]);
        apply(&mut w, 1, None, &s1).unwrap();
        apply(&mut w, 2, Some((1, &s1)), &empty).unwrap();
        // Tick 1 is pruned: the index is empty, the slots are free.
        apply(&mut w, 3, Some((2, &empty)), &empty).unwrap();
        assert!(w.index.is_empty());
        // The adds of this delta are indexed in bulk, reusing free slots.
        apply(&mut w, 4, Some((3, &empty)), &s3).unwrap();
        assert_eq!(w.to_snapshot(), s3);
        assert_eq!(w.get(NetId(5)), Some(&P { x: 5, y: -5 }));
        assert_eq!(w.changes().added, [NetId(2), NetId(5), NetId(9)]);
        let s5 = snap(&[(1, 1), (9, 8)]);
        apply(&mut w, 5, None, &s5).unwrap();
        assert_eq!(w.to_snapshot(), s5);
        assert_eq!(w.get(NetId(2)), None);
    }

    /// A full snapshot into a world with nothing indexed is decoded straight
    /// into new slots (`apply_first`): cut anywhere, it changes nothing, the
    /// slots it took are free again, and the world applies the next
    /// snapshots (full, then a delta) as if the bad one never came.
    #[test]
    fn a_bad_first_snapshot_frees_the_slots_it_took() {
        let limits = Limits::default();
        let s = snap(&[(1, 1), (2, 2), (4, 4), (7, 7), (8, 8)]);
        let bytes = encode_snapshot(9, 0, None, &s).unwrap();
        let ServerMessage::<()>::Snapshot(f) = ServerMessage::decode(&bytes, &limits).unwrap()
        else {
            unreachable!()
        };
        for emptied in [false, true] {
            for cut in 0..f.body.len() {
                let mut w = ClientWorld::new(2);
                if emptied {
                    // Three entities come and go: their slots are free and
                    // the index is empty when the bad body arrives.
                    let s1 = snap(&[(3, 3), (5, 5), (6, 6)]);
                    let empty = snap(&[]);
                    apply(&mut w, 1, None, &s1).unwrap();
                    apply(&mut w, 2, Some((1, &s1)), &empty).unwrap();
                    apply(&mut w, 3, Some((2, &empty)), &empty).unwrap();
                    assert!(w.index.is_empty());
                    assert_eq!(w.free.len(), 3);
                }
                let (slots, free) = (w.slots.len(), w.free.len());
                let err = w.apply::<G>(9, None, &f.body[..cut], &limits);
                assert!(
                    matches!(err, Err(ApplyError::Decode(_))),
                    "cut {cut}: {err:?}"
                );
                assert_eq!((w.slots.len(), w.free.len()), (slots, free), "cut {cut}");
                assert!(w.index.is_empty() && w.is_empty(), "cut {cut}");
                assert_eq!(w.tick(), emptied.then_some(3), "cut {cut}");
                w.apply::<G>(9, None, f.body, &limits).unwrap();
                assert_eq!(w.to_snapshot(), s, "cut {cut}");
                assert_eq!(w.changes().added.len(), s.len());
                assert_eq!(w.slots.len(), slots.max(s.len()), "free slots are reused");
                let s10 = snap(&[(2, 3), (4, 4), (8, 9), (11, 11)]);
                apply(&mut w, 10, Some((9, &s)), &s10).unwrap();
                assert_eq!(w.to_snapshot(), s10, "cut {cut}");
            }
        }
    }

    /// A moving entity under deltas against the newest tick holds two
    /// versions (the baseline's and the new one) and never a third, not even
    /// during an apply: the old one is dropped before the new one is pushed,
    /// so its versions stay inline.
    #[test]
    fn steady_deltas_keep_two_versions_per_entity() {
        let mut w = ClientWorld::new(64);
        let mut prev = snap(&[(1, 0), (2, 0)]);
        apply(&mut w, 1, None, &prev).unwrap();
        for t in 2..=20 {
            let cur = snap(&[(1, t as i32), (2, 0)]);
            apply(&mut w, t, Some((t - 1, &prev)), &cur).unwrap();
            assert_eq!(w.to_snapshot(), cur);
            let moving = &w.slots[0].versions;
            assert_eq!(moving.len(), 2, "tick {t}");
            assert!(!moving.spilled(), "regrown to {}", moving.capacity());
            assert_eq!(w.slots[1].versions.len(), 1);
            prev = cur;
        }
    }

    #[test]
    fn kept_ticks_are_bounded() {
        let mut w = ClientWorld::new(4);
        let s = snap(&[(1, 1)]);
        apply(&mut w, 1, None, &s).unwrap();
        for t in 2..=10 {
            let cur = snap(&[(1, t as i32)]);
            // Always against tick 1 while it is kept, else a full one.
            let base = w.kept_ticks().next().filter(|&b| b == 1);
            match base {
                Some(_) => apply(&mut w, t, Some((1, &s)), &cur).unwrap(),
                None => apply(&mut w, t, None, &cur).unwrap(),
            }
            assert_eq!(w.to_snapshot(), cur);
        }
        assert_eq!(w.kept_ticks().collect::<Vec<_>>(), [7, 8, 9, 10]);
        assert!(w.slots[0].versions.len() <= 4);
    }
}
