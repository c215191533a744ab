//! Delta snapshots: [`diff`] a baseline against the current view, [`apply`]
//! the delta to the same baseline.
//!
//! The body has three sections, each a varint count and then entries sorted by
//! id, ids gap-encoded as in [`crate::snapshot`] (the gap restarts in each
//! section):
//!
//! ```text
//! removed:  count, count × { id }
//! patched:  count, count × { id, field mask, changed field values }
//! full:     count, count × { id, state (bincode) }
//! ```
//!
//! * An entity present and equal in both costs **zero bytes**.
//! * An entity gone from the view is *removed*.
//! * A changed entity whose flattened field layout (PROTOCOL.md §8.4) is
//!   unchanged is *patched*: a mask of `ceil(n / 8)` bytes, where `n` is the
//!   number of fields of the baseline state (bit `i % 8` of byte `i / 8` marks
//!   field `i`), followed by each marked field's value, in field order:
//!
//!   | field kind | payload |
//!   |---|---|
//!   | bool | nothing: a marked bool is flipped |
//!   | u8, i8, option tag | the new byte |
//!   | u16 … u64, i16 … i64 | zigzag varint of `new − old`, wrapping at the field's width and read as signed at that width |
//!   | u128, i128 | zigzag varint (i128) of `new − old`, wrapping |
//!   | f32, f64 | the new value, raw little endian |
//!   | char | varint u32 of the new scalar value |
//!   | string, bytes | varint length and the new bytes |
//!   | variant index | varint u32 of the new index |
//!   | sequence/map length | varint u64 of the new length |
//!
//!   When the patch would not be smaller than the full state, the encoder
//!   sends the entity in the *full* section instead.
//! * New entities, and entities whose field layout changed, are *full*.
//!
//! Ids restart their gap encoding in each section, so splitting interleaved
//! changes into a patched and a full section can lengthen gaps; when that
//! costs more than the patches save, the encoder sends every change in the
//! full section instead (one id sequence). So a delta is never larger than the
//! full snapshot of the same view plus its section counts and the removed ids.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{DecodeError, EncodeError, Reader, Writer};
use crate::diff::{DiffScratch, Differ};
use crate::fields::{Field, encoded_len, flatten, write_fields};
use crate::idset::IdSet;
use crate::limits::Limits;
use crate::patch::PatchError;
use crate::snapshot::{IdDecoder, IdEncoder, NetId, Snapshot};

/// Reusable buffers for [`write_delta`], so the per-tick path does not allocate.
#[derive(Debug, Default)]
pub struct DeltaScratch {
    removed: Writer,
    patched: Writer,
    full: Writer,
    patch: Writer,
    values: Writer,
    /// Every changed or new entity in full: the fallback when splitting the
    /// changes into two sections costs more id bytes than patches save.
    /// Without a memo it is written as the walk goes; with one, only when it
    /// wins, from `changed`.
    all_full: Writer,
    /// With a memo: each changed or new entity and its memo slot, in order.
    /// The merge walk collects it as it goes; the walk over id sets only
    /// when the merged section may win (by a second pass over the view).
    changed: Vec<(NetId, u32)>,
    base_fields: Vec<Field>,
    cur_fields: Vec<Field>,
    /// The full state of the entity being diffed.
    state: Writer,
    /// The field-by-field diff's buffers (see [`FieldDiff`]).
    diff: DiffScratch,
}

impl DeltaScratch {
    /// Empties the section buffers for a new walk (allocations are kept).
    fn clear_sections(&mut self) {
        self.removed.clear();
        self.patched.clear();
        self.full.clear();
        self.all_full.clear();
        self.changed.clear();
    }
}

/// A game's field-by-field diff of two entity states
/// ([`crate::GameProtocol::diff_fields`]): the fast path of the delta
/// encoder, which falls back to the serde flattener for an entity when it
/// reports [`PatchError::Layout`]. Either way the bytes are the same.
pub type FieldDiff<S> = fn(&S, &S, &mut Differ<'_>) -> Result<(), PatchError>;

/// What one delta contained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeltaStats {
    /// Entities equal in baseline and current (zero bytes).
    pub unchanged: usize,
    /// Entities sent as field patches.
    pub patched: usize,
    /// Entities sent whole (new, or layout changed, or patch not smaller).
    pub full: usize,
    /// Entities removed from the view.
    pub removed: usize,
}

/// Encodes the delta from `base` to `cur` into a new buffer.
///
/// ```
/// use tickwire_shared::{delta, Limits, NetId, Snapshot};
/// let base = Snapshot::from_vec(vec![(NetId(1), (10i32, 20i32)), (NetId(2), (0, 0))]).unwrap();
/// let cur = Snapshot::from_vec(vec![(NetId(1), (12i32, 20i32)), (NetId(3), (5, 5))]).unwrap();
/// let bytes = delta::diff(&base, &cur).unwrap();
/// assert_eq!(delta::apply(&base, &bytes, &Limits::default()).unwrap(), cur);
/// ```
///
/// # Errors
/// [`EncodeError`] when a state cannot be serialized.
pub fn diff<S: Serialize + PartialEq>(
    base: &Snapshot<S>,
    cur: &Snapshot<S>,
) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::new();
    write_delta(
        &mut w,
        base.iter(),
        cur.iter(),
        &mut DeltaScratch::default(),
        usize::MAX,
    )?;
    Ok(w.into_vec())
}

/// Decodes `delta` and applies it to `base`.
///
/// # Errors
/// [`DecodeError`] on any malformed delta or one that does not fit `base`.
pub fn apply<S: Serialize + DeserializeOwned + Clone>(
    base: &Snapshot<S>,
    delta: &[u8],
    limits: &Limits,
) -> Result<Snapshot<S>, DecodeError> {
    let mut r = Reader::new(delta);
    let out = read_delta(&mut r, base, limits)?;
    r.finish()?;
    Ok(out)
}

/// Writes the delta body from `base` to `cur` (both in ascending id order).
///
/// `max_fields` bounds the flattened size of one state (use
/// [`Limits::max_fields_per_entity`] of the receiver).
///
/// # Errors
/// [`EncodeError`] when ids are not strictly increasing or a state cannot be
/// serialized or flattened.
pub fn write_delta<'a, S: Serialize + PartialEq + 'a>(
    w: &mut Writer,
    base: impl IntoIterator<Item = (NetId, &'a S)>,
    cur: impl IntoIterator<Item = (NetId, &'a S)>,
    scratch: &mut DeltaScratch,
    max_fields: usize,
) -> Result<DeltaStats, EncodeError> {
    write_delta_core(w, base, cur, scratch, max_fields, None)
}

/// [`write_delta`] with the game's field-by-field diff (`fast`, see
/// [`crate::GameProtocol::diff_fields`]) where it has one: the same bytes,
/// written without serde's flattener. For a receiver-specific delta that
/// shares no work with other receivers (no [`DeltaMemo`]).
///
/// # Errors
/// As [`write_delta`].
pub fn write_delta_with<'a, S: Serialize + PartialEq + 'a>(
    w: &mut Writer,
    base: impl IntoIterator<Item = (NetId, &'a S)>,
    cur: impl IntoIterator<Item = (NetId, &'a S)>,
    scratch: &mut DeltaScratch,
    max_fields: usize,
    fast: Option<FieldDiff<S>>,
) -> Result<DeltaStats, EncodeError> {
    write_delta_core(w, base, cur, scratch, max_fields, fast)
}

/// What one entity's diff against one baseline came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Unknown,
    Unchanged,
    /// A patch, at this span of the baseline's bytes.
    Patch(Span),
    /// Sent whole (layout changed, or the patch was not smaller).
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    const UNKNOWN: Self = Self {
        start: 0,
        len: u32::MAX,
    };

    #[inline]
    fn get(self, bytes: &[u8]) -> &[u8] {
        &bytes[self.start as usize..self.start as usize + self.len as usize]
    }
}

/// The memo's bytes, always followed by [`Padded::PAD`] zero bytes, so that
/// a span of at most `PAD` bytes (most patches and states) is copied out as
/// one fixed-size block and the writer's length then set: a few
/// instructions inline, where a copy of a variable length is a call.
#[derive(Debug)]
struct Padded(Vec<u8>);

impl Default for Padded {
    fn default() -> Self {
        Self(vec![0; Self::PAD])
    }
}

impl Padded {
    const PAD: usize = 16;

    fn clear(&mut self) {
        self.0.clear();
        self.0.resize(Self::PAD, 0);
    }

    /// The bytes before the padding.
    fn end(&self) -> usize {
        self.0.len() - Self::PAD
    }

    /// Appends `data`; its span.
    #[inline]
    fn push(&mut self, data: &[u8]) -> Span {
        let start = self.open();
        self.0.extend_from_slice(data);
        self.close(start)
    }

    /// Appends what `write` writes; its span, and what `write` returned.
    fn push_with<T>(&mut self, write: impl FnOnce(&mut Writer) -> T) -> (Span, T) {
        let start = self.open();
        let mut w = Writer::from_vec(core::mem::take(&mut self.0));
        let out = write(&mut w);
        self.0 = w.into_vec();
        (self.close(start), out)
    }

    /// Takes the padding off for an append; where the appended bytes start.
    #[inline]
    fn open(&mut self) -> usize {
        let start = self.end();
        self.0.truncate(start);
        start
    }

    /// Puts the padding back after an append from `start`; its span.
    #[inline]
    fn close(&mut self, start: usize) -> Span {
        let len = self.0.len() - start;
        self.0.extend_from_slice(&[0; Self::PAD]);
        Span {
            start: start as u32,
            len: len as u32,
        }
    }

    #[inline]
    fn get(&self, span: Span) -> &[u8] {
        span.get(&self.0)
    }

    /// Appends the bytes of `span` to `w`.
    #[inline(always)]
    fn copy(&self, span: Span, w: &mut Writer) {
        let start = span.start as usize;
        if let Some(block) = self.0.get(start..start + Self::PAD)
            && span.len as usize <= Self::PAD
            && let Ok(block) = <&[u8; Self::PAD]>::try_from(block)
        {
            w.raw_block(block, span.len as usize);
        } else {
            w.raw(self.get(span));
        }
    }
}

#[derive(Debug, Default)]
struct BaselineMemo {
    tick: u32,
    outcomes: Vec<Outcome>,
    bytes: Padded,
}

/// The per-entity work of one snapshot tick, done once and shared by every
/// client: each entity's encoded state, and per baseline tick each entity's
/// diff (unchanged, patch bytes, or whole). With interest management every
/// client's delta has its own set of entities, but an entity's patch from
/// baseline `b` to the current tick is the same bytes for every client that
/// has baseline `b`; only the id gaps differ.
///
/// Contract: between two [`reset`](Self::reset)s, every
/// [`write_delta_memo`] / [`write_full_memo`] call uses the same current
/// snapshot (slots are positions in it), and calls that name the same
/// baseline tick use the same baseline snapshot.
#[derive(Debug, Default)]
pub struct DeltaMemo {
    states: Vec<Span>,
    state_bytes: Padded,
    baselines: Vec<BaselineMemo>,
    used: usize,
}

impl DeltaMemo {
    /// Starts a new tick whose snapshot holds `entities` entities, forgetting
    /// everything (allocations are kept).
    pub fn reset(&mut self, entities: usize) {
        self.states.clear();
        self.states.resize(entities, Span::UNKNOWN);
        self.state_bytes.clear();
        self.used = 0;
    }

    fn baseline(&mut self, tick: u32) -> usize {
        if let Some(i) = self.baselines[..self.used]
            .iter()
            .position(|b| b.tick == tick)
        {
            return i;
        }
        if self.used == self.baselines.len() {
            self.baselines.push(BaselineMemo::default());
        }
        let b = &mut self.baselines[self.used];
        b.tick = tick;
        b.outcomes.clear();
        b.outcomes.resize(self.states.len(), Outcome::Unknown);
        b.bytes.clear();
        self.used += 1;
        self.used - 1
    }

    #[inline]
    fn slot(&self, slot: usize) -> Result<(), EncodeError> {
        if slot < self.states.len() {
            Ok(())
        } else {
            Err(self.outside(slot))
        }
    }

    #[cold]
    fn outside(&self, slot: usize) -> EncodeError {
        EncodeError::Payload {
            what: "delta memo",
            detail: format!(
                "slot {slot} is outside the {} entities it was reset for",
                self.states.len()
            ),
        }
    }

    /// The encoded state of the entity at `slot`, encoding it on first use
    /// (every client after the first of a tick finds it: inline).
    #[inline]
    fn state<S: Serialize>(&mut self, slot: usize, state: &S) -> Result<Span, EncodeError> {
        match self.states.get(slot) {
            Some(&span) if span != Span::UNKNOWN => Ok(span),
            _ => self.encode_state(slot, state),
        }
    }

    #[inline(never)]
    fn encode_state<S: Serialize>(&mut self, slot: usize, state: &S) -> Result<Span, EncodeError> {
        self.slot(slot)?;
        if self.states[slot] == Span::UNKNOWN {
            let (span, encoded) = self
                .state_bytes
                .push_with(|w| w.value("entity state", state));
            encoded?;
            self.states[slot] = span;
        }
        Ok(self.states[slot])
    }
}

/// [`write_delta`] for one client of a tick, sharing per-entity work with the
/// other clients through `memo` (see [`DeltaMemo`]). `cur` yields each
/// entity with its position in the tick's snapshot; `base` comes from the
/// snapshot of `baseline_tick`. The bytes written are exactly those of
/// [`write_delta`].
///
/// Every client after the first of a tick with this baseline finds each
/// entity's outcome in the memo, so its walk only gathers: the id gap and
/// the memo's bytes per changed entity. When the client's views are kept as
/// [`IdSet`]s, [`write_delta_memo_sets`] also skips the walk of the
/// baseline's view.
///
/// # Errors
/// As [`write_delta`], and when a slot is outside the memo.
#[allow(clippy::too_many_arguments)]
pub fn write_delta_memo<'a, S: Serialize + PartialEq + 'a>(
    w: &mut Writer,
    base: impl IntoIterator<Item = (NetId, &'a S)>,
    cur: impl IntoIterator<Item = (NetId, &'a S, usize)>,
    baseline_tick: u32,
    memo: &mut DeltaMemo,
    scratch: &mut DeltaScratch,
    max_fields: usize,
    fast: Option<FieldDiff<S>>,
) -> Result<DeltaStats, EncodeError> {
    let mut walk = Walk::new(baseline_tick, memo, scratch, max_fields, fast, true);
    let (mut base, mut cur) = (base.into_iter(), cur.into_iter());
    let (mut last_base, mut last_cur) = (Sorted::default(), Sorted::default());
    let mut b = last_base.next(&mut base)?;
    let mut c = last_cur.next(&mut cur)?;
    loop {
        match (b, c) {
            (None, None) => break,
            (Some((id, _)), next) if next.is_none_or(|(cid, _, _)| id < cid) => {
                walk.removed(id)?;
                b = last_base.next(&mut base)?;
            }
            (Some((id, old)), Some((cid, state, slot))) if id == cid => {
                walk.kept(id, state, slot, || Some(old))?;
                b = last_base.next(&mut base)?;
                c = last_cur.next(&mut cur)?;
            }
            (_, Some((id, state, slot))) => {
                walk.added(id, state, slot)?;
                c = last_cur.next(&mut cur)?;
            }
            (Some(_), None) => unreachable!("a removal, matched above"),
        }
    }
    walk.finish(w)
}

/// [`write_delta_memo`] for a client whose views are sets of ids: `base_ids`
/// is the view it had at `baseline_tick` (every id in it is in `base`), `cur`
/// yields the entities of its view now, ascending, with their positions in
/// the tick's snapshot, and their ids are added to `cur_ids` (empty: the
/// client's next baseline view). Membership in the baseline's view is one
/// bit per entity and the removed ids come from the two sets word by word,
/// so the walk visits only the current view. The bytes are those of
/// [`write_delta_memo`] for the same views.
///
/// # Errors
/// As [`write_delta_memo`], and when `cur`'s ids do not strictly increase.
#[allow(clippy::too_many_arguments)]
pub fn write_delta_memo_sets<'a, S: Serialize + PartialEq + 'a>(
    w: &mut Writer,
    base: &'a Snapshot<S>,
    base_ids: &IdSet,
    cur: impl IntoIterator<Item = (NetId, &'a S, usize), IntoIter: Clone>,
    cur_ids: &mut IdSet,
    baseline_tick: u32,
    memo: &mut DeltaMemo,
    scratch: &mut DeltaScratch,
    max_fields: usize,
    fast: Option<FieldDiff<S>>,
) -> Result<DeltaStats, EncodeError> {
    let mut walk = Walk::new(baseline_tick, memo, scratch, max_fields, fast, false);
    let mut cur = cur.into_iter();
    let again = cur.clone();
    let mut sorted = Sorted::default();
    {
        let mut ids = cur_ids.inserter();
        while let Some((id, state, slot)) = sorted.next(&mut cur)? {
            ids.insert(id);
            if base_ids.contains(id) {
                walk.kept(id, state, slot, || base_state(base, id, slot))?;
            } else {
                walk.added(id, state, slot)?;
            }
        }
    }
    for id in base_ids.difference(cur_ids) {
        walk.removed(id)?;
    }
    if walk.merged_may_win() {
        // Rare: the changed entities, in order, for `finish` to measure the
        // merged section. Every kept entity's outcome is in the memo now;
        // one still unknown was sent whole (not in the baseline after all).
        let outcomes = &walk.memo.baselines[walk.bi].outcomes;
        for (id, _, slot) in again {
            if !base_ids.contains(id) || outcomes.get(slot) != Some(&Outcome::Unchanged) {
                walk.scratch.changed.push((id, slot as u32));
            }
        }
    }
    walk.finish(w)
}

/// [`write_delta_memo_sets`] word by word, for a server that knows which
/// entities changed: a client's delta costs a few word operations per 64
/// ids, plus what changed in its view, not a visit per entity in view.
///
/// - `view`: the ids the client sees now, each an entity of `cur` (the
///   tick's snapshot) at position `slot_of[id]`;
/// - `base_ids`: the ids it saw at `baseline_tick`, each in `base`;
/// - `changed`: the ids whose state may differ from the one in `base` (a
///   superset is fine: an entity in it is diffed, and found unchanged if it
///   is; one missing from it must have its `base` state).
///
/// Added ids (`view & !base_ids`) are sent whole, removed ones (`base_ids &
/// !view`) listed, and only the kept ones in `changed` diffed, so an
/// unchanged entity is counted by a popcount and never read. The bytes are
/// those of [`write_delta_memo_sets`] for the same views.
///
/// # Errors
/// As [`write_delta_memo`], and when an id of `view` has no entity of that
/// id at its `slot_of` position.
#[allow(clippy::too_many_arguments)]
pub fn write_delta_memo_words<'a, S: Serialize + PartialEq + 'a>(
    w: &mut Writer,
    base: &'a Snapshot<S>,
    base_ids: &IdSet,
    view: &IdSet,
    changed: &IdSet,
    cur: &'a [(NetId, S)],
    slot_of: &[u32],
    baseline_tick: u32,
    memo: &mut DeltaMemo,
    scratch: &mut DeltaScratch,
    max_fields: usize,
    fast: Option<FieldDiff<S>>,
) -> Result<DeltaStats, EncodeError> {
    let mut walk = Walk::new(baseline_tick, memo, scratch, max_fields, fast, false);
    let words = Words::new(view, base_ids, changed);
    for i in 0..words.len() {
        let (v, b, c) = words.at(i);
        walk.stats.unchanged += (v & b & !c).count_ones() as usize;
        // Added, or kept and maybe changed.
        let mut todo = v & !(b & !c);
        while todo != 0 {
            let bit = todo & todo.wrapping_neg();
            let id = bit_id(i, todo);
            todo ^= bit;
            let (slot, state) = entity_at(cur, slot_of, id).ok_or_else(|| not_in_snapshot(id))?;
            if b & bit != 0 {
                walk.kept(id, state, slot, || base_state(base, id, slot))?;
            } else {
                walk.added(id, state, slot)?;
            }
        }
        let mut gone = b & !v;
        while gone != 0 {
            walk.removed(bit_id(i, gone))?;
            gone &= gone - 1;
        }
    }
    if walk.merged_may_win() {
        // Rare: the changed entities, in order (see `write_delta_memo_sets`).
        let outcomes = &walk.memo.baselines[walk.bi].outcomes;
        for i in 0..words.len() {
            let (v, b, c) = words.at(i);
            let mut todo = v & !(b & !c);
            while todo != 0 {
                let id = bit_id(i, todo);
                todo &= todo - 1;
                let (slot, _) = entity_at(cur, slot_of, id).ok_or_else(|| not_in_snapshot(id))?;
                if !base_ids.contains(id) || outcomes.get(slot) != Some(&Outcome::Unchanged) {
                    walk.scratch.changed.push((id, slot as u32));
                }
            }
        }
    }
    walk.finish(w)
}

/// The three id sets of [`write_delta_memo_words`], word by word (a missing
/// word is empty).
struct Words<'s> {
    view: &'s [u64],
    base: &'s [u64],
    changed: &'s [u64],
}

impl<'s> Words<'s> {
    fn new(view: &'s IdSet, base: &'s IdSet, changed: &'s IdSet) -> Self {
        Self {
            view: view.words(),
            base: base.words(),
            changed: changed.words(),
        }
    }

    fn len(&self) -> usize {
        self.view.len().max(self.base.len())
    }

    #[inline]
    fn at(&self, i: usize) -> (u64, u64, u64) {
        let word = |w: &[u64]| w.get(i).copied().unwrap_or(0);
        (word(self.view), word(self.base), word(self.changed))
    }
}

/// The id of the lowest bit of `bits`, in word `word` of an [`IdSet`].
#[inline]
fn bit_id(word: usize, bits: u64) -> NetId {
    NetId(word as u32 * 64 + bits.trailing_zeros())
}

/// The position and state of `id` in `cur`, through `slot_of`.
#[inline]
fn entity_at<'a, S>(cur: &'a [(NetId, S)], slot_of: &[u32], id: NetId) -> Option<(usize, &'a S)> {
    let slot = *slot_of.get(id.0 as usize)? as usize;
    match cur.get(slot) {
        Some((cid, state)) if *cid == id => Some((slot, state)),
        _ => None,
    }
}

#[cold]
fn not_in_snapshot(id: NetId) -> EncodeError {
    EncodeError::Payload {
        what: "delta view",
        detail: format!("id {} of the view is not in the snapshot", id.0),
    }
}

/// The state of `id` in `base`: at position `slot` when no entity came or
/// went between the two snapshots (one comparison), else by binary search.
#[inline]
fn base_state<S>(base: &Snapshot<S>, id: NetId, slot: usize) -> Option<&S> {
    match base.as_slice().get(slot) {
        Some((bid, state)) if *bid == id => Some(state),
        _ => base.get(id),
    }
}

/// One client's delta being written: the sections, their id sequences and
/// the counts, with the memo of the tick's baseline.
struct Walk<'m, S> {
    memo: &'m mut DeltaMemo,
    scratch: &'m mut DeltaScratch,
    /// The three sections, moved out of `scratch` for the walk. Held by the
    /// walk (a local) rather than reached through `scratch`, the appends
    /// per entity compile to fewer loads and stores: 8.7 % fewer
    /// instructions per `Room::tick` in BENCHMARKS.md's scene.
    removed: Writer,
    patched: Writer,
    full: Writer,
    bi: usize,
    max_fields: usize,
    fast: Option<FieldDiff<S>>,
    removed_ids: IdEncoder,
    patched_ids: IdEncoder,
    full_ids: IdEncoder,
    stats: DeltaStats,
    /// Whether each changed entity goes into `scratch.changed` as the walk
    /// goes (else the caller fills it when [`Walk::merged_may_win`]).
    collect: bool,
}

impl<'m, S: Serialize + PartialEq> Walk<'m, S> {
    fn new(
        baseline_tick: u32,
        memo: &'m mut DeltaMemo,
        scratch: &'m mut DeltaScratch,
        max_fields: usize,
        fast: Option<FieldDiff<S>>,
        collect: bool,
    ) -> Self {
        let bi = memo.baseline(baseline_tick);
        scratch.clear_sections();
        Self {
            removed: core::mem::take(&mut scratch.removed),
            patched: core::mem::take(&mut scratch.patched),
            full: core::mem::take(&mut scratch.full),
            memo,
            scratch,
            bi,
            max_fields,
            fast,
            removed_ids: IdEncoder::default(),
            patched_ids: IdEncoder::default(),
            full_ids: IdEncoder::default(),
            stats: DeltaStats::default(),
            collect,
        }
    }

    /// Whether `finish` needs the changed entities (see [`merged_may_win`]).
    fn merged_may_win(&self) -> bool {
        merged_may_win(&self.stats, self.patched_ids.extra + self.full_ids.extra)
    }

    #[inline(always)]
    fn changed(&mut self, id: NetId, slot: usize) {
        if self.collect {
            self.scratch.changed.push((id, slot as u32));
        }
    }

    /// An entity of the baseline's view that left the view.
    #[inline(always)]
    fn removed(&mut self, id: NetId) -> Result<(), EncodeError> {
        self.removed_ids.write(&mut self.removed, id)?;
        self.stats.removed += 1;
        Ok(())
    }

    /// An entity that is in the view and was not in the baseline's: whole.
    #[inline(always)]
    fn added(&mut self, id: NetId, state: &S, slot: usize) -> Result<(), EncodeError> {
        let span = self.memo.state(slot, state)?;
        self.full_ids.write(&mut self.full, id)?;
        self.memo.state_bytes.copy(span, &mut self.full);
        self.changed(id, slot);
        self.stats.full += 1;
        Ok(())
    }

    /// An entity in both views: its outcome against the baseline, from the
    /// memo or resolved (`old` gives its baseline state; `None`: not in the
    /// baseline after all, so it is sent whole).
    #[inline(always)]
    fn kept<'s>(
        &mut self,
        id: NetId,
        state: &'s S,
        slot: usize,
        old: impl FnOnce() -> Option<&'s S>,
    ) -> Result<(), EncodeError>
    where
        S: 's,
    {
        let (memo, scratch, bi) = (&mut *self.memo, &mut *self.scratch, self.bi);
        let outcome = match memo.baselines[bi].outcomes.get(slot) {
            Some(&o) if o != Outcome::Unknown => o,
            Some(_) => match old() {
                Some(old) => resolve(
                    memo,
                    bi,
                    slot,
                    old,
                    state,
                    scratch,
                    self.max_fields,
                    self.fast,
                )?,
                None => return self.added(id, state, slot),
            },
            None => return Err(memo.outside(slot)),
        };
        match outcome {
            Outcome::Unchanged | Outcome::Unknown => self.stats.unchanged += 1,
            Outcome::Patch(span) => {
                self.patched_ids.write(&mut self.patched, id)?;
                memo.baselines[bi].bytes.copy(span, &mut self.patched);
                self.changed(id, slot);
                self.stats.patched += 1;
            }
            Outcome::Full => {
                self.full_ids.write(&mut self.full, id)?;
                memo.state_bytes.copy(memo.states[slot], &mut self.full);
                self.changed(id, slot);
                self.stats.full += 1;
            }
        }
        Ok(())
    }

    /// Puts the sections back into the scratch (a walk that fails drops
    /// them: the next one allocates again) and writes the delta.
    fn finish(self, w: &mut Writer) -> Result<DeltaStats, EncodeError> {
        self.scratch.removed = self.removed;
        self.scratch.patched = self.patched;
        self.scratch.full = self.full;
        finish(
            w,
            self.scratch,
            self.stats,
            self.patched_ids.extra + self.full_ids.extra,
            Some(self.memo),
        )
    }
}

/// The outcome of `base` → `cur` for the entity at memo `slot` against
/// baseline `bi`, computed and remembered: the first client of the tick
/// with this baseline to see the entity pays for the diff.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn resolve<S: Serialize + PartialEq>(
    m: &mut DeltaMemo,
    bi: usize,
    slot: usize,
    base: &S,
    cur: &S,
    scratch: &mut DeltaScratch,
    max_fields: usize,
    fast: Option<FieldDiff<S>>,
) -> Result<Outcome, EncodeError> {
    let outcome = if base == cur {
        Outcome::Unchanged
    } else if let Some(o) = fast_patch(scratch, base, cur, max_fields, fast, Some((&mut *m, slot)))?
    {
        o
    } else if write_patch(scratch, base, cur, max_fields)? {
        Outcome::Patch(Span::UNKNOWN)
    } else {
        Outcome::Full
    };
    let outcome = match outcome {
        Outcome::Patch(_) => Outcome::Patch(m.baselines[bi].bytes.push(scratch.patch.as_slice())),
        o => o,
    };
    // `fast_patch` stored the state; `write_patch` left it in `scratch.state`.
    if outcome != Outcome::Unchanged && m.states[slot] == Span::UNKNOWN {
        m.states[slot] = m.state_bytes.push(scratch.state.as_slice());
    }
    m.baselines[bi].outcomes[slot] = outcome;
    Ok(outcome)
}

/// [`crate::snapshot::write_full`] for one client of a tick, with each
/// entity's state encoded once per tick through `memo`. `entities` yields
/// each entity with its position in the tick's snapshot.
///
/// # Errors
/// As `write_full`, and when a slot is outside the memo.
pub fn write_full_memo<'a, S: Serialize + 'a>(
    w: &mut Writer,
    entities: impl ExactSizeIterator<Item = (NetId, &'a S, usize)>,
    memo: &mut DeltaMemo,
) -> Result<(), EncodeError> {
    w.len_prefix(entities.len());
    let mut ids = IdEncoder::default();
    for (id, state, slot) in entities {
        ids.write(w, id)?;
        let span = memo.state(slot, state)?;
        memo.state_bytes.copy(span, w);
    }
    Ok(())
}

/// The plain walk (no memo): each entity diffed here, and every change also
/// written whole into `scratch.all_full` as it goes, for [`finish`].
fn write_delta_core<'a, S: Serialize + PartialEq + 'a>(
    w: &mut Writer,
    base: impl IntoIterator<Item = (NetId, &'a S)>,
    cur: impl IntoIterator<Item = (NetId, &'a S)>,
    scratch: &mut DeltaScratch,
    max_fields: usize,
    fast: Option<FieldDiff<S>>,
) -> Result<DeltaStats, EncodeError> {
    scratch.clear_sections();
    let mut stats = DeltaStats::default();
    let (mut removed_ids, mut patched_ids, mut full_ids, mut all_full_ids) =
        <[IdEncoder; 4]>::default().into();
    let (mut base, mut cur) = (base.into_iter(), cur.into_iter());
    let (mut last_base, mut last_cur) = (Sorted::default(), Sorted::default());
    let mut b = last_base.next(&mut base)?;
    let mut c = last_cur.next(&mut cur)?;
    loop {
        let (id, patch) = match (b, c) {
            (None, None) => break,
            (Some((id, _)), next) if next.is_none_or(|(cid, _)| id < cid) => {
                removed_ids.write(&mut scratch.removed, id)?;
                stats.removed += 1;
                b = last_base.next(&mut base)?;
                continue;
            }
            (Some((id, old)), Some((cid, state))) if id == cid => {
                b = last_base.next(&mut base)?;
                c = last_cur.next(&mut cur)?;
                if old == state {
                    stats.unchanged += 1;
                    continue;
                }
                let patch = match fast_patch(scratch, old, state, max_fields, fast, None)? {
                    Some(o) => o != Outcome::Full,
                    None => write_patch(scratch, old, state, max_fields)?,
                };
                (id, patch)
            }
            (_, Some((id, state))) => {
                c = last_cur.next(&mut cur)?;
                scratch.state.clear();
                scratch.state.value("entity state", state)?;
                (id, false)
            }
            (Some(_), None) => unreachable!("a removal, matched above"),
        };
        if patch {
            patched_ids.write(&mut scratch.patched, id)?;
            scratch.patched.raw(scratch.patch.as_slice());
            stats.patched += 1;
        } else {
            full_ids.write(&mut scratch.full, id)?;
            scratch.full.raw(scratch.state.as_slice());
            stats.full += 1;
        }
        all_full_ids.write(&mut scratch.all_full, id)?;
        scratch.all_full.raw(scratch.state.as_slice());
    }
    finish(w, scratch, stats, patched_ids.extra + full_ids.extra, None)
}

/// Writes the three sections of a walk's delta into `w`.
///
/// Ids are gap-encoded per section, so interleaved patched and full
/// entities can cost more id bytes than the patches save. Sending every
/// change in full keeps one id sequence, which is never longer than the full
/// snapshot's; send whichever is smaller. With a memo the merged section's
/// entities are in `scratch.changed` and it is built only when it wins;
/// without one the walk wrote it into `scratch.all_full`.
///
/// The merged section is measured only when it can win. Its length minus
/// the split's is the headers' difference (at least −8 bytes: one byte
/// and a count's varint against two counts' varints), plus what
/// each patched entity's whole state adds over its patch (at least one
/// byte each: a patch is used only when shorter), minus the id bytes the
/// one sequence saves, which are at most `id_extra`: the split sections'
/// id bytes beyond one per id. So with `P` patched entities it cannot win
/// when `P ≥ id_extra + 8`, nor with no whole state among the changes.
fn finish(
    w: &mut Writer,
    scratch: &mut DeltaScratch,
    mut stats: DeltaStats,
    id_extra: usize,
    memo: Option<&DeltaMemo>,
) -> Result<DeltaStats, EncodeError> {
    let changed = stats.patched + stats.full;
    let all_full = merged_may_win(&stats, id_extra) && {
        let split = varint_len(stats.patched)
            + scratch.patched.len()
            + varint_len(stats.full)
            + scratch.full.len();
        let mut merged_len = 0usize;
        if let Some(m) = memo {
            let mut ids = IdLen::default();
            for &(id, slot) in &scratch.changed {
                merged_len += ids.len(id) + m.states[slot as usize].len as usize;
            }
        }
        varint_len(0) + varint_len(changed) + scratch.all_full.len() + merged_len < split
    };
    if all_full {
        stats.full = changed;
        stats.patched = 0;
        if let Some(m) = memo {
            // Rare (interleaved patched and new entities): the merged
            // section from the memo's states, in the walk's order.
            let mut ids = IdEncoder::default();
            for &(id, slot) in &scratch.changed {
                ids.write(&mut scratch.all_full, id)?;
                scratch
                    .all_full
                    .raw(m.state_bytes.get(m.states[slot as usize]));
            }
        }
    }
    let (patched, full): (&[u8], &[u8]) = if all_full {
        (&[], scratch.all_full.as_slice())
    } else {
        (scratch.patched.as_slice(), scratch.full.as_slice())
    };
    for (count, section) in [
        (stats.removed, scratch.removed.as_slice()),
        (stats.patched, patched),
        (stats.full, full),
    ] {
        w.len_prefix(count);
        w.raw(section);
    }
    Ok(stats)
}

/// Whether the merged section can be shorter than the split ones (see
/// [`finish`]): only with both patched and whole changes, and fewer patched
/// entities than `id_extra + 8`.
fn merged_may_win(stats: &DeltaStats, id_extra: usize) -> bool {
    stats.patched > 0 && stats.full > 0 && stats.patched < id_extra + 8
}

/// The byte length of the id gaps an [`IdEncoder`] would write (ids come
/// strictly increasing: the walk checks it).
#[derive(Default)]
struct IdLen {
    prev: u32,
}

impl IdLen {
    #[inline]
    fn len(&mut self, id: NetId) -> usize {
        let gap = id.0.wrapping_sub(self.prev);
        self.prev = id.0;
        varint_len(gap as usize)
    }
}

/// Bytes of `n` as a varint (see [`crate::codec`]).
#[inline]
fn varint_len(n: usize) -> usize {
    match n as u64 {
        0..=250 => 1,
        251..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// The ids an iterator has yielded, checked to strictly increase.
#[derive(Default)]
struct Sorted {
    /// One past the last id (0: none yet).
    floor: u64,
}

impl Sorted {
    #[inline]
    fn next<T>(&mut self, it: &mut impl Iterator<Item = T>) -> Result<Option<T>, EncodeError>
    where
        T: Copy + HasId,
    {
        let next = it.next();
        if let Some(item) = next {
            let id = item.id();
            if u64::from(id.0) < self.floor {
                return Err(unsorted(id));
            }
            self.floor = u64::from(id.0) + 1;
        }
        Ok(next)
    }
}

/// An item of a delta walk: it leads with its id.
trait HasId {
    fn id(&self) -> NetId;
}

impl<S> HasId for (NetId, &S) {
    #[inline]
    fn id(&self) -> NetId {
        self.0
    }
}

impl<S> HasId for (NetId, &S, usize) {
    #[inline]
    fn id(&self) -> NetId {
        self.0
    }
}

#[cold]
fn unsorted(id: NetId) -> EncodeError {
    EncodeError::Payload {
        what: "entity ids",
        detail: format!("views must be sorted by strictly increasing id; {id} came late"),
    }
}

/// The game's field-by-field diff of `base` → `cur`, when it has one, the
/// layouts match and the entity has a memo `slot` (whose state bytes give the
/// full length): fills `scratch.patch` and returns whether to send the patch
/// or the full state, as [`write_patch`] would. `None`: use [`write_patch`].
fn fast_patch<S: Serialize>(
    scratch: &mut DeltaScratch,
    base: &S,
    cur: &S,
    max_fields: usize,
    fast: Option<FieldDiff<S>>,
    memo: Option<(&mut DeltaMemo, usize)>,
) -> Result<Option<Outcome>, EncodeError> {
    let Some(diff) = fast else {
        return Ok(None);
    };
    if diff(base, cur, &mut Differ::new(&mut scratch.diff, max_fields)).is_err() {
        return Ok(None);
    }
    // The walk wrote `cur`'s whole encoding too: the memo keeps it (or,
    // without one, `scratch.state`), so the state is never encoded through
    // serde on this path.
    match memo {
        Some((memo, slot)) => {
            memo.slot(slot)?;
            if memo.states[slot] == Span::UNKNOWN {
                memo.states[slot] = memo.state_bytes.push(scratch.diff.state());
            }
        }
        None => {
            scratch.state.clear();
            scratch.state.raw(scratch.diff.state());
        }
    }
    let full_len = scratch.diff.state().len();
    scratch.patch.clear();
    scratch.patch.raw(scratch.diff.patch());
    Ok(Some(if scratch.patch.len() < full_len {
        Outcome::Patch(Span::UNKNOWN)
    } else {
        Outcome::Full
    }))
}

/// Fills `scratch.state` with the full state of `cur` and `scratch.patch` with
/// the patch (mask + values). Returns true when the patch should be sent;
/// otherwise the caller sends `scratch.state`.
fn write_patch<S: Serialize>(
    scratch: &mut DeltaScratch,
    base: &S,
    cur: &S,
    max_fields: usize,
) -> Result<bool, EncodeError> {
    scratch.base_fields.clear();
    scratch.cur_fields.clear();
    scratch.state.clear();
    let flattened = flatten(base, &mut scratch.base_fields, max_fields)
        .and_then(|()| flatten(cur, &mut scratch.cur_fields, max_fields));
    if flattened.is_err() {
        // Too many fields to patch (or not flattenable): send it whole. The
        // receiver's `max_fields_per_entity` would refuse a patch anyway.
        scratch.state.value("entity state", cur)?;
        return Ok(false);
    }
    write_fields(&scratch.cur_fields, &mut scratch.state);
    let (bf, cf) = (&scratch.base_fields, &scratch.cur_fields);
    if bf.len() != cf.len() || bf.iter().zip(cf).any(|(b, c)| !b.same_kind(c)) {
        return Ok(false);
    }
    let p = &mut scratch.patch;
    p.clear();
    let mask_len = bf.len().div_ceil(8);
    let mut mask = [0u8; 32];
    let mut big_mask = Vec::new();
    let mask: &mut [u8] = if mask_len <= mask.len() {
        &mut mask[..mask_len]
    } else {
        big_mask.resize(mask_len, 0);
        &mut big_mask
    };
    let values = &mut scratch.values;
    values.clear();
    for (i, (b, c)) in bf.iter().zip(cf).enumerate() {
        if b != c {
            mask[i / 8] |= 1 << (i % 8);
            write_field_change(values, b, c);
        }
    }
    p.raw(mask);
    p.raw(values.as_slice());
    Ok(p.len() < encoded_len(cf))
}

fn write_field_change(w: &mut Writer, old: &Field, new: &Field) {
    use Field as F;
    match (old, new) {
        (F::Bool(_), F::Bool(_)) => {}
        (F::U8(_), F::U8(n)) | (F::OptTag(_), F::OptTag(n)) => w.u8(*n),
        (F::I8(_), F::I8(n)) => w.u8(*n as u8),
        (F::U16(o), F::U16(n)) => w.i64(i64::from(n.wrapping_sub(*o) as i16)),
        (F::I16(o), F::I16(n)) => w.i64(i64::from(n.wrapping_sub(*o))),
        (F::U32(o), F::U32(n)) => w.i64(i64::from(n.wrapping_sub(*o) as i32)),
        (F::I32(o), F::I32(n)) => w.i64(i64::from(n.wrapping_sub(*o))),
        (F::U64(o), F::U64(n)) => w.i64(n.wrapping_sub(*o) as i64),
        (F::I64(o), F::I64(n)) => w.i64(n.wrapping_sub(*o)),
        (F::U128(o), F::U128(n)) => w.i128(n.wrapping_sub(*o) as i128),
        (F::I128(o), F::I128(n)) => w.i128(n.wrapping_sub(*o)),
        (F::F32(_), F::F32(n)) => w.raw(&n.to_le_bytes()),
        (F::F64(_), F::F64(n)) => w.raw(&n.to_le_bytes()),
        (F::Char(_), F::Char(n)) => w.u32(u32::from(*n)),
        (F::Bytes(_), F::Bytes(n)) => w.bytes(n),
        (F::Variant(_), F::Variant(n)) => w.u32(*n),
        (F::Len(_), F::Len(n)) => w.u64(*n),
        _ => unreachable!("write_patch checked that the kinds match"),
    }
}

pub(crate) fn read_field_change(
    r: &mut Reader<'_>,
    field: &mut Field,
    limits: &Limits,
) -> Result<(), DecodeError> {
    use Field as F;
    fn narrow<T: TryFrom<i64>>(d: i64, what: &'static str) -> Result<T, DecodeError> {
        T::try_from(d).map_err(|_| DecodeError::Invalid {
            what,
            detail: format!("difference {d} does not fit the field's width"),
        })
    }
    const W: &str = "field difference";
    match field {
        F::Bool(v) => *v = !*v,
        F::U8(v) => *v = r.u8("u8 field")?,
        F::OptTag(v) => {
            *v = r.u8("option tag")?;
            if *v > 1 {
                return Err(DecodeError::Invalid {
                    what: "option tag",
                    detail: format!("{v} is neither 0 nor 1"),
                });
            }
        }
        F::I8(v) => *v = r.u8("i8 field")? as i8,
        F::U16(v) => *v = v.wrapping_add(narrow::<i16>(r.i64(W)?, W)? as u16),
        F::I16(v) => *v = v.wrapping_add(narrow::<i16>(r.i64(W)?, W)?),
        F::U32(v) => *v = v.wrapping_add(narrow::<i32>(r.i64(W)?, W)? as u32),
        F::I32(v) => *v = v.wrapping_add(narrow::<i32>(r.i64(W)?, W)?),
        F::U64(v) => *v = v.wrapping_add(r.i64(W)? as u64),
        F::I64(v) => *v = v.wrapping_add(r.i64(W)?),
        F::U128(v) => *v = v.wrapping_add(r.i128(W)? as u128),
        F::I128(v) => *v = v.wrapping_add(r.i128(W)?),
        F::F32(v) => {
            let b = r.raw(4, "f32 field")?;
            *v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        F::F64(v) => {
            let b = r.raw(8, "f64 field")?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            *v = u64::from_le_bytes(a);
        }
        F::Char(v) => {
            let n = r.u32("char field")?;
            *v = char::from_u32(n).ok_or_else(|| DecodeError::Invalid {
                what: "char field",
                detail: format!("{n:#x} is not a Unicode scalar value"),
            })?;
        }
        F::Bytes(v) => {
            let b = r.bytes("string field", limits.max_server_message_bytes)?;
            v.clear();
            v.extend_from_slice(b);
        }
        F::Variant(v) => *v = r.u32("variant index")?,
        F::Len(v) => *v = r.u64("length")?,
    }
    Ok(())
}

/// Reads a delta body written by [`write_delta`] and applies it to `base`.
///
/// # Errors
/// [`DecodeError`] when the delta is malformed, over a limit, or does not fit
/// `base` (removing or patching an entity that is not there, touching one
/// entity twice).
pub fn read_delta<S: Serialize + DeserializeOwned + Clone>(
    r: &mut Reader<'_>,
    base: &Snapshot<S>,
    limits: &Limits,
) -> Result<Snapshot<S>, DecodeError> {
    let max = limits.max_entities_per_snapshot;
    let missing = |id: NetId, what: &'static str| DecodeError::Invalid {
        what,
        detail: format!("entity {id} is not in the baseline"),
    };

    let base_s = base.as_slice();
    // Ids in each section ascend, so each section finds its entities with a
    // cursor that only moves forward: O(base) per section in total, with
    // predictable branches (a binary search per entity costs more).
    let seek = |cursor: &mut usize, id: NetId| -> Option<usize> {
        while base_s.get(*cursor).is_some_and(|(i, _)| *i < id) {
            *cursor += 1;
        }
        base_s
            .get(*cursor)
            .filter(|(i, _)| *i == id)
            .map(|_| *cursor)
    };

    let n_removed = r.count("removed entities", max, 1)?;
    let mut removed = Vec::with_capacity(n_removed);
    let mut ids = IdDecoder::default();
    let mut cursor = 0;
    for _ in 0..n_removed {
        let id = ids.read(r)?;
        seek(&mut cursor, id).ok_or_else(|| missing(id, "removed entity"))?;
        removed.push(id);
    }

    // Each patch takes at least an id byte and a mask byte.
    let n_patched = r.count("patched entities", max, 2)?;
    let mut upserts: Vec<(NetId, S)> = Vec::with_capacity(n_patched);
    let mut ids = IdDecoder::default();
    let mut scratch = crate::patch::PatchScratch::default();
    let mut cursor = 0;
    for _ in 0..n_patched {
        let id = ids.read(r)?;
        let at = seek(&mut cursor, id).ok_or_else(|| missing(id, "patched entity"))?;
        let state = crate::patch::patched_with_serde(&base_s[at].1, r, limits, &mut scratch)?;
        upserts.push((id, state));
    }

    let n_full = r.count("full entities", max, 1)?;
    let mut full: Vec<(NetId, S)> = Vec::with_capacity(n_full);
    let mut ids = IdDecoder::default();
    for _ in 0..n_full {
        let id = ids.read(r)?;
        full.push((id, r.value("entity state")?));
    }

    let upserts = merge_disjoint(upserts, full)?;
    let mut out = Vec::with_capacity(base.len() + upserts.len());
    let mut removed = removed.into_iter().peekable();
    let mut upserts = upserts.into_iter().peekable();
    // Copy the unchanged runs of the baseline in bulk between the edits.
    let mut next = 0;
    loop {
        let edit = match (removed.peek(), upserts.peek()) {
            (None, None) => break,
            (Some(&id), None) => id,
            (None, Some((id, _))) => *id,
            (Some(&a), Some((b, _))) => a.min(*b),
        };
        let at = next + base_s[next..].partition_point(|(id, _)| *id < edit);
        out.extend_from_slice(&base_s[next..at]);
        next = at + usize::from(base_s.get(at).is_some_and(|(id, _)| *id == edit));
        if removed.peek() == Some(&edit) {
            removed.next();
            if upserts.peek().is_some_and(|(u, _)| *u == edit) {
                return Err(DecodeError::Invalid {
                    what: "delta",
                    detail: format!("entity {edit} is both removed and updated"),
                });
            }
        } else {
            out.push(upserts.next().expect("peeked"));
        }
    }
    out.extend_from_slice(&base_s[next..]);
    if out.len() > max {
        return Err(DecodeError::TooMany {
            what: "entities after applying the delta",
            count: out.len() as u64,
            max,
        });
    }
    Ok(Snapshot::from_sorted_unchecked(out))
}

/// Merges two id-sorted lists; an id in both is an error.
fn merge_disjoint<S>(
    a: Vec<(NetId, S)>,
    b: Vec<(NetId, S)>,
) -> Result<Vec<(NetId, S)>, DecodeError> {
    if b.is_empty() {
        return Ok(a);
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((x, _)), Some((y, _))) if x == y => {
                return Err(DecodeError::Invalid {
                    what: "delta",
                    detail: format!("entity {x} is both patched and sent in full"),
                });
            }
            (Some((x, _)), Some((y, _))) => x < y,
        };
        out.push(if take_a { a.next() } else { b.next() }.expect("peeked"));
    }
    Ok(out)
}
