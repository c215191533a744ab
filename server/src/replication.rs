//! Per-client delta replication: a ring of world states, deltas against each
//! client's newest acknowledged snapshot, and shared work done once.
//!
//! Every snapshot tick the room pushes the world's state into the ring. For
//! each client it then builds a message: a delta against the newest snapshot
//! the client acknowledged that is still in the ring, or a full snapshot (on
//! join, after a resume, or when the baseline fell out of the ring).
//!
//! Clients that see everything and share a baseline share one encoded body:
//! it is computed once per tick and copied behind each client's header.
//! Clients with a view get their own body, computed from the entities visible
//! to them, so hidden state never enters their bytes.
//!
//! A view arrives as the ids of the visible entities or as their positions
//! in the newest snapshot, and each view sent is kept as a set of ids. A
//! delta for a view given as ids is three sets compared word by word: the
//! view, the baseline's view and the ids changed since the baseline
//! ([`crate::changes`]), so an entity that did not change costs a client
//! nothing but its bit. Views given as positions are walked entity by
//! entity.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use tickwire_shared::delta::{
    DeltaMemo, DeltaScratch, FieldDiff, write_delta_memo, write_delta_memo_sets,
    write_delta_memo_words, write_full_memo,
};
use tickwire_shared::idset::IdSet;
use tickwire_shared::{EncodeError, NetId, Snapshot, SnapshotHeader, Writer};

use crate::changes::ChangeTicks;
use crate::outbox::AckWindow;
use crate::view::ClientView;

/// The ring of recent world states plus the per-tick shared bodies.
#[derive(Debug)]
pub struct Replication<S> {
    pub(crate) ring: VecDeque<(u32, Arc<Snapshot<S>>)>,
    capacity: usize,
    pub(crate) max_fields: usize,
    deltas: bool,
    pub(crate) scratch: DeltaScratch,
    /// Per-entity diffs and encoded states of the current tick, shared by
    /// the clients with a view.
    memo: DeltaMemo,
    body: Writer,
    /// Bodies for see-everything clients of the current tick, by baseline.
    shared: HashMap<Option<u32>, Bytes>,
    /// The game's field-by-field diff, when it has one.
    pub(crate) fast: Option<FieldDiff<S>>,
    /// How many ticks older than its newest ack a client's baseline may be,
    /// to share it with other clients (see [`Replication::with_baseline_snap`]).
    snap: u32,
    /// This tick's votes: (baseline tick, clients that may use it).
    votes: Vec<(u32, u32)>,
    /// The ids of the view being built (for `build_indexed`).
    view_ids: IdSet,
    /// The newest snapshot's ids and when each entity last changed (kept
    /// when deltas are on).
    changes: ChangeTicks,
    /// This tick's ids changed since each baseline tick used, built on first
    /// use (the first `changed_used` are this tick's).
    changed_since: Vec<(u32, IdSet)>,
    changed_used: usize,
    /// Positions of a view given as ids, for the builds that walk positions.
    positions: Vec<u32>,
}

/// The ids of the entities a client could see in a snapshot it was sent
/// (`None`: everything).
pub(crate) type SentView = Option<Arc<Seen>>;

/// The ids of the entities a client could see in a snapshot it was sent.
#[derive(Debug)]
pub(crate) enum Seen {
    /// One bit per id: the ids of a room's [`crate::world::World`] are small
    /// and reused, so the set is a few words and the next delta compares
    /// views word by word.
    Ids(IdSet),
    /// Ascending: the ids of a snapshot too sparse for a set (one not built
    /// from a `World`), where a set would be one bit per id up to the largest.
    List(Box<[NetId]>),
}

impl Seen {
    fn contains(&self, id: NetId) -> bool {
        match self {
            Self::Ids(ids) => ids.contains(id),
            Self::List(ids) => ids.binary_search(&id).is_ok(),
        }
    }
}

/// What replication remembers about one client.
#[derive(Debug, Default)]
pub struct ClientReplication {
    /// The acknowledged ticks (the newest, and which ticks before it).
    acks: Option<AckWindow>,
    /// The newest baseline used: the client keeps every acknowledged tick
    /// from it on (PROTOCOL.md §8.7), and it never decreases.
    used: Option<u32>,
    /// Ticks sent from `used` on, oldest first, with the positions (in that
    /// tick's snapshot) of the entities the client could see (`None`:
    /// everything).
    sent: VecDeque<(u32, SentView)>,
    /// A view as ids that an entry dropped from `sent` held alone, kept for
    /// the next view as ids to be copied into: no allocation per snapshot.
    spare: Option<Arc<Seen>>,
}

impl ClientReplication {
    /// Records an acknowledgement of `tick`. Acks for ticks never sent (or
    /// older than the baseline in use) never become baselines.
    pub fn ack(&mut self, tick: u32) {
        self.acks = Some(AckWindow::add(self.acks, tick));
    }

    /// Records the acknowledgements an [`crate::outbox::Outbox`] collected
    /// (a window that only grows: it replaces the one recorded before).
    pub fn ack_window(&mut self, acks: AckWindow) {
        self.acks = Some(acks);
    }

    /// The newest acknowledged tick.
    #[must_use]
    pub fn acked(&self) -> Option<u32> {
        self.acks.map(|w| w.newest)
    }

    /// The ticks this client may be sent a delta against: acknowledged,
    /// sent, not older than the baseline in use, and at most `snap` ticks
    /// older than its newest acknowledgement. Newest first.
    fn candidates(&self, snap: u32) -> impl Iterator<Item = (u32, &SentView)> + '_ {
        let acks = self.acks;
        let floor = acks
            .map_or(0, |w| w.newest.saturating_sub(snap))
            .max(self.used.unwrap_or(0));
        self.sent
            .iter()
            .rev()
            .take_while(move |(t, _)| *t >= floor)
            .filter(move |(t, _)| acks.is_some_and(|w| w.contains(*t)))
            .map(|(t, v)| (*t, v))
    }

    /// Records that the snapshot of `tick` (with the client's view) was sent
    /// against `baseline`, keeping at most `max_sent` entries.
    pub(crate) fn sent(
        &mut self,
        tick: u32,
        view: SentView,
        baseline: Option<u32>,
        max_sent: usize,
    ) {
        if let Some(b) = baseline {
            // Older entries can never be a baseline again.
            self.used = Some(b);
            while self.sent.front().is_some_and(|(t, _)| *t < b) {
                let dropped = self.sent.pop_front();
                self.keep_spare(dropped);
            }
        }
        self.sent.push_back((tick, view));
        // Trim the oldest entries, but keep the baseline in use.
        while self.sent.len() > max_sent.max(2) {
            let keep_front = self.sent.front().map(|(t, _)| *t) == self.used;
            let dropped = self.sent.remove(usize::from(keep_front));
            self.keep_spare(dropped);
        }
    }

    /// [`Self::sent`] with the view as the ids `ids`, copied into the spare
    /// set when there is one.
    pub(crate) fn sent_ids(
        &mut self,
        tick: u32,
        ids: &IdSet,
        baseline: Option<u32>,
        max_sent: usize,
    ) {
        let mut view = self.spare.take();
        match view.as_mut().and_then(Arc::get_mut) {
            Some(Seen::Ids(set)) => set.clone_from(ids),
            _ => view = Some(Arc::new(Seen::Ids(ids.clone()))),
        }
        self.sent(tick, view, baseline, max_sent);
    }

    /// Keeps the view of an entry dropped from `sent` as the spare, if it
    /// is a set of ids nothing else holds.
    fn keep_spare(&mut self, dropped: Option<(u32, SentView)>) {
        if self.spare.is_none()
            && let Some((_, Some(mut view))) = dropped
            && matches!(Arc::get_mut(&mut view), Some(Seen::Ids(_)))
        {
            self.spare = Some(view);
        }
    }

    /// Forgets everything: the next snapshot is full.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Counters from one [`Replication::build`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Built {
    /// Whether it was a delta.
    pub delta: bool,
    /// Whether the body came from the shared cache.
    pub shared: bool,
}

impl<S: Serialize + PartialEq + Clone> Replication<S> {
    /// A ring of `capacity` snapshots; states are flattened with at most
    /// `max_fields` fields.
    #[must_use]
    pub fn new(capacity: usize, max_fields: usize) -> Self {
        Self {
            ring: VecDeque::with_capacity(capacity),
            capacity: capacity.max(2),
            max_fields,
            deltas: true,
            scratch: DeltaScratch::default(),
            memo: DeltaMemo::default(),
            body: Writer::new(),
            shared: HashMap::new(),
            fast: None,
            snap: 0,
            votes: Vec::new(),
            view_ids: IdSet::default(),
            changes: ChangeTicks::default(),
            changed_since: Vec::new(),
            changed_used: 0,
            positions: Vec::new(),
        }
    }

    /// Lets a client's baseline be up to `ticks` ticks older than its newest
    /// acknowledgement when that tick is also the baseline of other clients
    /// (default 0: always the newest). Every distinct baseline of a tick
    /// costs a diff of the world; clients whose acks are spread over a few
    /// ticks (different round trips) then share one. The room calls
    /// [`Replication::vote`] for every client before building.
    #[must_use]
    pub fn with_baseline_snap(mut self, ticks: u32) -> Self {
        self.snap = ticks;
        self
    }

    /// Counts `client`'s possible baselines for this tick's builds: each
    /// client then gets, among its own, the one most clients can use (the
    /// newest on a tie). Without votes every client gets its newest.
    pub fn vote(&mut self, client: &ClientReplication) {
        for (t, _) in client.candidates(self.snap) {
            if self.get(t).is_none() {
                continue;
            }
            match self.votes.iter_mut().find(|(v, _)| *v == t) {
                Some((_, n)) => *n += 1,
                None => self.votes.push((t, 1)),
            }
        }
    }

    /// The baseline for `client`: its candidate in the ring with the most
    /// votes, the newest on a tie.
    pub(crate) fn pick(&self, client: &ClientReplication) -> Option<(u32, SentView)> {
        let mut best: Option<(u32, u32, &SentView)> = None;
        for (t, view) in client.candidates(self.snap) {
            if self.get(t).is_none() {
                continue;
            }
            let n = self.votes.iter().find(|(v, _)| *v == t).map_or(0, |v| v.1);
            // Candidates come newest first: only more votes replace.
            if best.is_none_or(|(_, bn, _)| n > bn) {
                best = Some((t, n, view));
            }
        }
        best.map(|(t, _, view)| (t, view.clone()))
    }

    /// Writes patches with the game's field-by-field diff
    /// ([`tickwire_shared::GameProtocol::diff_fields`]) instead of serde's
    /// flattener, falling back to it per entity on a layout change. The
    /// bytes are the same.
    #[must_use]
    pub fn with_field_diff(mut self, diff: FieldDiff<S>) -> Self {
        self.fast = Some(diff);
        self
    }

    /// Whether deltas are on.
    #[must_use]
    pub fn deltas(&self) -> bool {
        self.deltas
    }

    /// Turns deltas off (or back on, the default): without them every
    /// message is a full snapshot, whatever the client acknowledged.
    #[must_use]
    pub fn with_deltas(mut self, on: bool) -> Self {
        self.deltas = on;
        self
    }

    /// Adds the world state of `tick` and starts a new round of builds.
    pub fn push(&mut self, tick: u32, snapshot: Snapshot<S>) {
        if self.deltas {
            let prev = self.ring.back().map(|(t, s)| (*t, &**s));
            self.changes.record(prev, &snapshot, tick);
        } else {
            self.changes.clear();
        }
        self.changed_used = 0;
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.memo.reset(snapshot.len());
        self.ring.push_back((tick, Arc::new(snapshot)));
        self.shared.clear();
        self.votes.clear();
    }

    /// The newest snapshot.
    #[must_use]
    pub fn latest(&self) -> Option<(u32, &Snapshot<S>)> {
        self.ring.back().map(|(t, s)| (*t, &**s))
    }

    /// The newest tick and its snapshot, which every build sends.
    pub(crate) fn newest(&self) -> Result<(u32, Arc<Snapshot<S>>), EncodeError> {
        self.ring
            .back()
            .map(|(t, s)| (*t, Arc::clone(s)))
            .ok_or_else(|| EncodeError::Payload {
                what: "snapshot",
                detail: "no world state pushed yet".to_owned(),
            })
    }

    fn get(&self, tick: u32) -> Option<&Arc<Snapshot<S>>> {
        // Ticks in the ring are increasing; search from the back.
        self.ring
            .iter()
            .rev()
            .find(|(t, _)| *t == tick)
            .map(|(_, s)| s)
    }

    /// Builds the snapshot message of the newest tick for one client.
    ///
    /// `visible` lists the ids the client may see (sorted), or `None` for
    /// everything. Ids missing from the newest snapshot are skipped. The room
    /// uses [`Replication::build_indexed`], which saves the id lookups.
    ///
    /// # Errors
    /// [`EncodeError`] when a state cannot be encoded (a game type problem).
    pub fn build(
        &mut self,
        client: &mut ClientReplication,
        visible: Option<Vec<NetId>>,
        last_input: u32,
        max_sent: usize,
        out: &mut Vec<u8>,
    ) -> Result<Built, EncodeError> {
        let positions = match (&visible, self.ring.back()) {
            (Some(ids), Some((_, cur))) => Some(positions_of(cur, ids)),
            _ => None,
        };
        self.build_indexed(client, positions.as_deref(), last_input, max_sent, out)
    }

    /// [`Replication::build_indexed`] with the view as the room's
    /// [`crate::view::Views`] made it. A view given as ids, for a client
    /// whose baseline view was kept as ids, is compared with it word by
    /// word, and only the entities that changed since the baseline are
    /// looked at ([`write_delta_memo_words`]): a client costs what changed
    /// in its view, not a visit per entity in it. Other builds walk
    /// positions.
    ///
    /// # Errors
    /// [`EncodeError`] when a state cannot be encoded (a game type problem).
    pub(crate) fn build_view(
        &mut self,
        client: &mut ClientReplication,
        view: ClientView<'_>,
        last_input: u32,
        max_sent: usize,
        out: &mut Vec<u8>,
    ) -> Result<Built, EncodeError> {
        if let ClientView::Ids { ids, slot_of } = view
            && let Some(built) =
                self.build_words(client, ids, slot_of, last_input, max_sent, out)?
        {
            return Ok(built);
        }
        let mut positions = core::mem::take(&mut self.positions);
        let built = self.build_indexed(
            client,
            view.positions(&mut positions),
            last_input,
            max_sent,
            out,
        );
        self.positions = positions;
        built
    }

    /// The word-by-word delta of [`Replication::build_view`]; `None` when
    /// there is none to build (deltas off, no baseline in the ring, a
    /// baseline view not kept as ids, or no record of what changed).
    fn build_words(
        &mut self,
        client: &mut ClientReplication,
        ids: &IdSet,
        slot_of: &[u32],
        last_input: u32,
        max_sent: usize,
        out: &mut Vec<u8>,
    ) -> Result<Option<Built>, EncodeError> {
        let (tick, cur) = self.newest()?;
        if !self.deltas || !self.changes.is_for(tick) {
            return Ok(None);
        }
        let Some((bt, Some(seen))) = self.pick(client) else {
            return Ok(None);
        };
        let (Some(base), Seen::Ids(base_ids)) = (self.get(bt).cloned(), &*seen) else {
            return Ok(None);
        };
        let changed = self.changed_since(bt);
        let header = SnapshotHeader {
            tick,
            last_input,
            baseline: Some(bt),
        };
        let mut w = Writer::from_vec(core::mem::take(out));
        w.clear();
        header.encode(&mut w);
        write_delta_memo_words(
            &mut w,
            &base,
            base_ids,
            ids,
            &self.changed_since[changed].1,
            cur.as_slice(),
            slot_of,
            bt,
            &mut self.memo,
            &mut self.scratch,
            self.max_fields,
            self.fast,
        )?;
        client.sent_ids(tick, ids, Some(bt), max_sent);
        *out = w.into_vec();
        Ok(Some(Built {
            delta: true,
            shared: false,
        }))
    }

    /// The index in `changed_since` of this tick's ids changed since
    /// `baseline`, built on first use.
    fn changed_since(&mut self, baseline: u32) -> usize {
        let used = &self.changed_since[..self.changed_used];
        if let Some(i) = used.iter().position(|(t, _)| *t == baseline) {
            return i;
        }
        if self.changed_used == self.changed_since.len() {
            self.changed_since.push((baseline, IdSet::default()));
        }
        let i = self.changed_used;
        self.changed_used += 1;
        let (t, set) = &mut self.changed_since[i];
        *t = baseline;
        self.changes.changed_since(baseline, set);
        i
    }

    /// [`Replication::build`] with the view given as positions in the newest
    /// snapshot ([`Replication::latest`]), ascending: entity `i` of
    /// `latest().1.as_slice()` is visible when `i` is listed. Positions past
    /// the end are skipped.
    ///
    /// # Errors
    /// [`EncodeError`] when a state cannot be encoded (a game type problem).
    pub fn build_indexed(
        &mut self,
        client: &mut ClientReplication,
        visible: Option<&[u32]>,
        last_input: u32,
        max_sent: usize,
        out: &mut Vec<u8>,
    ) -> Result<Built, EncodeError> {
        let (tick, cur) = self.newest()?;
        // A view's ids are collected as the walk goes (the next baseline's
        // view) when they are dense enough for a set: as a room's are.
        let max_id = cur.as_slice().last().map_or(0, |(id, _)| id.0 as usize);
        let dense = visible.is_some() && max_id <= cur.len() * 4 + 1024;
        if dense {
            self.view_ids.reset(NetId(max_id as u32));
        }
        // A baseline is usable when deltas are on, the ring still holds it
        // and the client's view then is known.
        let baseline = self
            .deltas
            .then(|| self.pick(client))
            .flatten()
            .and_then(|(a, base_view)| Some((a, Arc::clone(self.get(a)?), base_view)));
        let header = SnapshotHeader {
            tick,
            last_input,
            baseline: baseline.as_ref().map(|(t, _, _)| *t),
        };
        let mut w = Writer::from_vec(core::mem::take(out));
        w.clear();
        header.encode(&mut w);
        let mut built = Built {
            delta: baseline.is_some(),
            shared: false,
        };
        match (visible, baseline) {
            (None, Some((bt, base, None))) => {
                let body = self.shared_body(
                    Some(bt),
                    |s, w| {
                        write_delta_memo(
                            w,
                            base.iter(),
                            slot_iter(&cur, None),
                            bt,
                            &mut s.memo,
                            &mut s.scratch,
                            s.max_fields,
                            s.fast,
                        )
                        .map(drop)
                    },
                    &mut built,
                )?;
                w.raw(&body);
            }
            (None, None) => {
                let body = self.shared_body(
                    None,
                    |s, w| {
                        let all = slot_iter(&cur, None);
                        write_full_memo(w, ExactLen(all, cur.len()), &mut s.memo)
                    },
                    &mut built,
                )?;
                w.raw(&body);
            }
            // The common case with interest: both views are id sets.
            (Some(view), Some((bt, base, Some(ref seen))))
                if let (true, Seen::Ids(base_ids)) = (dense, &**seen) =>
            {
                write_delta_memo_sets(
                    &mut w,
                    &base,
                    base_ids,
                    slot_iter(&cur, Some(view)),
                    &mut self.view_ids,
                    bt,
                    &mut self.memo,
                    &mut self.scratch,
                    self.max_fields,
                    self.fast,
                )?;
            }
            // The view switched between everything and a part of it, or
            // the ids are too sparse for sets.
            (view, Some((bt, base, seen))) => {
                let base_iter = base
                    .iter()
                    .filter(|(id, _)| seen.as_ref().is_none_or(|b| b.contains(*id)));
                write_delta_memo(
                    &mut w,
                    base_iter,
                    slot_iter(&cur, view),
                    bt,
                    &mut self.memo,
                    &mut self.scratch,
                    self.max_fields,
                    self.fast,
                )?;
                if dense {
                    let mut ids = self.view_ids.inserter();
                    for (id, _, _) in slot_iter(&cur, view) {
                        ids.insert(id);
                    }
                }
            }
            (Some(view), None) => {
                let n = slot_iter(&cur, Some(view)).count();
                let mut ids = self.view_ids.inserter();
                let cur_iter = slot_iter(&cur, Some(view)).inspect(|(id, _, _)| {
                    if dense {
                        ids.insert(*id);
                    }
                });
                write_full_memo(&mut w, ExactLen(cur_iter, n), &mut self.memo)?;
            }
        }
        match visible {
            Some(_) if dense => client.sent_ids(tick, &self.view_ids, header.baseline, max_sent),
            Some(view) => {
                let ids = slot_iter(&cur, Some(view)).map(|(id, _, _)| id).collect();
                client.sent(
                    tick,
                    Some(Arc::new(Seen::List(ids))),
                    header.baseline,
                    max_sent,
                );
            }
            None => client.sent(tick, None, header.baseline, max_sent),
        }
        *out = w.into_vec();
        Ok(built)
    }

    fn shared_body(
        &mut self,
        key: Option<u32>,
        make: impl FnOnce(&mut Self, &mut Writer) -> Result<(), EncodeError>,
        built: &mut Built,
    ) -> Result<Bytes, EncodeError> {
        if let Some(b) = self.shared.get(&key) {
            built.shared = true;
            return Ok(b.clone());
        }
        let mut body = core::mem::take(&mut self.body);
        body.clear();
        let result = make(self, &mut body);
        let bytes = Bytes::copy_from_slice(body.as_slice());
        self.body = body;
        result?;
        self.shared.insert(key, bytes.clone());
        Ok(bytes)
    }
}

/// The entities of `snap`, restricted to the positions in `view` when given,
/// with each entity's position in `snap` (its slot in the tick's
/// [`DeltaMemo`]).
fn slot_iter<'a, S>(snap: &'a Snapshot<S>, view: Option<&'a [u32]>) -> Slots<'a, S> {
    let entities = snap.as_slice();
    match view {
        None => Slots::All(entities.iter().enumerate()),
        Some(pos) => Slots::At {
            entities,
            pos: pos.iter(),
        },
    }
}

/// The iterator of [`slot_iter`]: one match per item, where a chain of two
/// flattened options cost a few branches more per entity per client.
enum Slots<'a, S> {
    All(core::iter::Enumerate<core::slice::Iter<'a, (NetId, S)>>),
    /// Positions past the end are skipped.
    At {
        entities: &'a [(NetId, S)],
        pos: core::slice::Iter<'a, u32>,
    },
}

impl<S> Clone for Slots<'_, S> {
    fn clone(&self) -> Self {
        match self {
            Self::All(it) => Self::All(it.clone()),
            Self::At { entities, pos } => Self::At {
                entities,
                pos: pos.clone(),
            },
        }
    }
}

impl<'a, S> Iterator for Slots<'a, S> {
    type Item = (NetId, &'a S, usize);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::All(it) => it.next().map(|(i, (id, s))| (*id, s, i)),
            Self::At { entities, pos } => loop {
                let i = *pos.next()? as usize;
                if let Some((id, s)) = entities.get(i) {
                    return Some((*id, s, i));
                }
            },
        }
    }
}

/// The positions in `snap` of `ids` (both ascending), by one merge walk.
fn positions_of<S>(snap: &Snapshot<S>, ids: &[NetId]) -> Vec<u32> {
    let mut out = Vec::with_capacity(ids.len());
    let mut ids = ids.iter().peekable();
    for (i, (id, _)) in snap.iter().enumerate() {
        while ids.next_if(|want| **want < id).is_some() {}
        if ids.next_if(|want| **want == id).is_some() {
            out.push(i as u32);
        }
        if ids.peek().is_none() {
            break;
        }
    }
    out
}

/// An iterator with a known length (for `write_full`).
#[derive(Clone)]
struct ExactLen<I>(I, usize);

impl<I: Iterator> Iterator for ExactLen<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let item = self.0.next()?;
        self.1 = self.1.saturating_sub(1);
        Some(item)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.1, Some(self.1))
    }
}

impl<I: Iterator> ExactSizeIterator for ExactLen<I> {}

#[cfg(test)]
mod tests {
    use tickwire_shared::{Limits, ServerMessage};

    use super::*;

    fn snap(items: &[(u32, i32)]) -> Snapshot<i32> {
        Snapshot::from_vec(items.iter().map(|&(id, v)| (NetId(id), v)).collect()).unwrap()
    }

    /// A view as ids is copied into the set of an entry dropped before (no
    /// allocation once a client's baselines move on), and the set recorded
    /// is the view, not what the reused set held.
    #[test]
    fn views_as_ids_reuse_the_set_of_a_dropped_entry() {
        let set = |ids: &[u32]| {
            let mut s = IdSet::default();
            for &i in ids {
                s.insert(NetId(i));
            }
            s
        };
        let view_at = |c: &ClientReplication, tick: u32| {
            c.sent
                .iter()
                .find(|(t, _)| *t == tick)
                .and_then(|(_, v)| v.clone())
                .unwrap()
        };
        let mut c = ClientReplication::default();
        c.sent_ids(1, &set(&[1, 2, 70]), None, 8);
        let first = Arc::as_ptr(&view_at(&c, 1));
        c.sent_ids(2, &set(&[2]), Some(1), 8);
        // Acknowledging 2 drops 1: its set is the spare, which 4 is copied
        // into. 2 is still held (a build in progress) when 4 drops it: not
        // kept, and not changed.
        let held = view_at(&c, 2);
        c.sent_ids(3, &set(&[5, 9]), Some(2), 8);
        c.sent_ids(4, &set(&[1, 64]), Some(3), 8);
        let fourth = view_at(&c, 4);
        assert_eq!(Arc::as_ptr(&fourth), first);
        assert!(matches!(&*fourth, Seen::Ids(s) if *s == set(&[1, 64])));
        c.sent_ids(5, &set(&[3]), Some(4), 8);
        assert!(matches!(&*held, Seen::Ids(s) if *s == set(&[2])));
        assert!(matches!(&*view_at(&c, 5), Seen::Ids(s) if *s == set(&[3])));
    }

    /// Decodes a built message as a client would, with its kept baselines.
    fn receive(bytes: &[u8], kept: &HashMap<u32, Snapshot<i32>>) -> (u32, Snapshot<i32>) {
        let limits = Limits::default();
        let ServerMessage::<()>::Snapshot(frame) = ServerMessage::decode(bytes, &limits).unwrap()
        else {
            panic!("not a snapshot")
        };
        let base = frame.header.baseline.map(|t| &kept[&t]);
        (frame.header.tick, frame.decode(base, &limits).unwrap())
    }

    /// A view given as ids (a delta word by word, looking only at what
    /// changed) and the same view given as positions (a walk of every
    /// entity in it) make the same bytes, tick after tick, as entities
    /// stay still, move, leave the view, leave the world and arrive; and a
    /// client decodes every one of them against what it kept.
    #[test]
    fn a_view_as_ids_is_sent_as_the_same_view_as_positions() {
        let mut repl = Replication::new(8, 64);
        let (mut by_ids, mut by_pos) = (ClientReplication::default(), ClientReplication::default());
        let mut kept = HashMap::new();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut deltas = 0;
        for tick in 1..=40u32 {
            // Entity n moves every n-th tick; 9 leaves at tick 20; 12
            // arrives at tick 25.
            let items: Vec<(u32, i32)> = (1..=12)
                .filter(|&n| (n != 9 || tick < 20) && (n != 12 || tick >= 25))
                .map(|n| (n, (tick / n) as i32))
                .collect();
            repl.push(tick, snap(&items));
            let cur = repl.latest().unwrap().1.clone();
            // Even ids are seen on even ticks, odd ids always; every tick
            // some of the view changes, most of it does not.
            let visible: Vec<(usize, NetId)> = cur
                .iter()
                .enumerate()
                .filter(|(_, (id, _))| id.0 % 2 == 1 || tick % 2 == 0)
                .map(|(i, (id, _))| (i, id))
                .collect();
            let positions: Vec<u32> = visible.iter().map(|&(i, _)| i as u32).collect();
            let ids: IdSet = visible.iter().map(|&(_, id)| id).collect();
            let mut slot_of = vec![u32::MAX; 13];
            for (i, (id, _)) in cur.iter().enumerate() {
                slot_of[id.0 as usize] = i as u32;
            }
            let view = ClientView::Ids {
                ids: &ids,
                slot_of: &slot_of,
            };
            let built = repl.build_view(&mut by_ids, view, 0, 8, &mut a).unwrap();
            repl.build_indexed(&mut by_pos, Some(&positions), 0, 8, &mut b)
                .unwrap();
            assert_eq!(a, b, "tick {tick}");
            deltas += usize::from(built.delta);
            let (t, got) = receive(&a, &kept);
            let want: Vec<(NetId, i32)> = visible.iter().map(|&(i, _)| cur.as_slice()[i]).collect();
            assert_eq!(got.as_slice(), want, "tick {tick}");
            kept.insert(t, got);
            by_ids.ack(tick);
            by_pos.ack(tick);
        }
        assert_eq!(deltas, 39, "every snapshot after the first is a delta");
    }

    /// Four clients whose acks trail by 0–3 ticks (different round trips),
    /// every client acking every snapshot it gets: with a snap window of 4
    /// they share one baseline per tick, and every delta decodes against a
    /// snapshot that client acknowledged; without it each has its own.
    #[test]
    fn spread_acks_share_one_baseline_within_the_snap_window() {
        for (window, most) in [(4, 1), (0, 4)] {
            let mut repl = Replication::new(16, 64).with_baseline_snap(window);
            let mut clients: Vec<ClientReplication> =
                (0..4).map(|_| ClientReplication::default()).collect();
            // What each client received, by tick (what it may keep).
            let mut kept: Vec<HashMap<u32, Snapshot<i32>>> = vec![HashMap::new(); 4];
            let mut out = Vec::new();
            for tick in 1..=20u32 {
                repl.push(tick, snap(&[(1, tick as i32), (2, 7), (3, -(tick as i32))]));
                // Client i's acks arrive i ticks late.
                for (i, c) in clients.iter_mut().enumerate() {
                    if let Some(t) = tick.checked_sub(1 + i as u32).filter(|t| *t > 0) {
                        c.ack(t);
                    }
                    repl.vote(c);
                }
                let mut bases = std::collections::BTreeSet::new();
                for (i, c) in clients.iter_mut().enumerate() {
                    repl.build(c, None, 0, 16, &mut out).unwrap();
                    let ServerMessage::<()>::Snapshot(f) =
                        ServerMessage::decode(&out, &Limits::default()).unwrap()
                    else {
                        panic!("not a snapshot")
                    };
                    if let Some(b) = f.header.baseline {
                        assert!(c.acks.unwrap().contains(b), "window {window}: unacked {b}");
                        bases.insert(b);
                    }
                    let (t, got) = receive(&out, &kept[i]);
                    kept[i].insert(t, got);
                }
                if tick > 8 {
                    assert_eq!(bases.len(), most, "window {window}, tick {tick}: {bases:?}");
                }
            }
        }
    }

    #[test]
    fn deltas_follow_acks_and_fall_back_to_full() {
        let mut repl = Replication::new(3, 64);
        let mut client = ClientReplication::default();
        let mut kept = HashMap::new();
        let mut out = Vec::new();
        let worlds = [
            snap(&[(1, 10), (2, 20)]),
            snap(&[(1, 11), (2, 20), (3, 30)]),
            snap(&[(2, 21), (3, 30)]),
        ];
        for (i, world) in worlds.iter().enumerate() {
            let tick = i as u32 + 1;
            repl.push(tick, world.clone());
            let built = repl.build(&mut client, None, 0, 8, &mut out).unwrap();
            assert_eq!(built.delta, i > 0, "tick {tick}");
            let (t, got) = receive(&out, &kept);
            assert_eq!(&got, world);
            kept.insert(t, got);
            client.ack(t);
        }
        // The client stops acking; the ring (3) drops its baseline (tick 3).
        for tick in 4..=7 {
            repl.push(tick, worlds[2].clone());
            let built = repl.build(&mut client, None, 0, 8, &mut out).unwrap();
            assert_eq!(built.delta, tick < 6, "tick {tick}");
        }
    }

    #[test]
    fn without_deltas_every_message_is_full_and_decodes_to_the_world() {
        let mut repl = Replication::new(8, 64).with_deltas(false);
        let (mut all, mut viewer) = (ClientReplication::default(), ClientReplication::default());
        let mut out = Vec::new();
        for tick in 1..=5u32 {
            let v = tick as i32;
            let world = snap(&[(1, v), (2, 20), (3, 30 + v)]);
            repl.push(tick, world.clone());
            let built = repl.build(&mut all, None, 0, 8, &mut out).unwrap();
            assert!(!built.delta, "tick {tick}");
            let (t, got) = receive(&out, &HashMap::new());
            assert_eq!((t, &got), (tick, &world));
            all.ack(tick);
            let built = repl
                .build(&mut viewer, Some(vec![NetId(1), NetId(3)]), 0, 8, &mut out)
                .unwrap();
            assert!(!built.delta, "tick {tick}");
            let (_, got) = receive(&out, &HashMap::new());
            assert_eq!(got, snap(&[(1, v), (3, 30 + v)]));
            viewer.ack(tick);
        }
        // Switched back on, the acknowledged snapshot is a baseline again.
        let mut repl = repl.with_deltas(true);
        repl.push(6, snap(&[(1, 6), (2, 20), (3, 36)]));
        assert!(repl.build(&mut all, None, 0, 8, &mut out).unwrap().delta);
    }

    #[test]
    fn clients_on_the_same_baseline_share_the_body() {
        let mut repl = Replication::new(8, 64);
        let (mut a, mut b) = (ClientReplication::default(), ClientReplication::default());
        let mut out = Vec::new();
        repl.push(1, snap(&[(1, 1)]));
        assert!(!repl.build(&mut a, None, 0, 8, &mut out).unwrap().shared);
        assert!(repl.build(&mut b, None, 5, 8, &mut out).unwrap().shared);
    }

    #[test]
    fn positions_and_ids_give_the_same_bytes() {
        let world = snap(&[(2, 20), (5, 50), (9, 90), (11, 110)]);
        assert_eq!(
            positions_of(&world, &[NetId(1), NetId(5), NetId(11), NetId(12)]),
            [1, 3]
        );
        let (mut by_id, mut by_pos) = (Replication::new(8, 64), Replication::new(8, 64));
        let (mut a, mut b) = (ClientReplication::default(), ClientReplication::default());
        let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
        for tick in 1..=3 {
            let w = snap(&[(2, 20 + tick as i32), (5, 50), (9, 90), (11, 110)]);
            by_id.push(tick, w.clone());
            by_pos.push(tick, w);
            let ids = if tick == 2 {
                vec![NetId(2), NetId(9)]
            } else {
                vec![NetId(5), NetId(9)]
            };
            let pos = if tick == 2 { [0u32, 2] } else { [1, 2] };
            by_id.build(&mut a, Some(ids), 0, 8, &mut out_a).unwrap();
            by_pos
                .build_indexed(&mut b, Some(&pos), 0, 8, &mut out_b)
                .unwrap();
            assert_eq!(out_a, out_b, "tick {tick}");
            a.ack(tick);
            b.ack(tick);
        }
    }

    /// Views kept as id sets (a room's dense ids) and as id lists (ids too
    /// sparse for a set) give deltas that decode to the view, through
    /// entities entering and leaving it and a tick that sees everything.
    #[test]
    fn deltas_follow_changing_views_with_dense_and_sparse_ids() {
        let views: [Option<&[u32]>; 7] = [
            Some(&[1, 2]),
            Some(&[2, 3]),
            Some(&[1, 2, 3, 4]),
            None,
            Some(&[4]),
            Some(&[]),
            Some(&[1, 4]),
        ];
        for scale in [1, 1_000_000] {
            let mut repl = Replication::new(8, 64);
            let mut client = ClientReplication::default();
            let mut kept = HashMap::new();
            let mut out = Vec::new();
            let mut deltas = 0;
            for (tick, view) in (1..).zip(views) {
                let world: Vec<(u32, i32)> = (1..=4)
                    .map(|i| (i * scale, i as i32 * 10 + tick as i32 % 3))
                    .collect();
                repl.push(tick, snap(&world));
                let ids = view.map(|v| v.iter().map(|&i| NetId(i * scale)).collect());
                deltas += usize::from(repl.build(&mut client, ids, 0, 8, &mut out).unwrap().delta);
                let (t, got) = receive(&out, &kept);
                let want: Vec<(u32, i32)> = world
                    .iter()
                    .filter(|(id, _)| view.is_none_or(|v| v.contains(&(id / scale))))
                    .copied()
                    .collect();
                assert_eq!(got, snap(&want), "scale {scale}, tick {tick}");
                kept.insert(t, got);
                client.ack(tick);
            }
            assert_eq!(deltas, views.len() - 1, "scale {scale}");
        }
    }

    #[test]
    fn a_view_hides_entities_from_the_bytes() {
        let mut repl = Replication::new(8, 64);
        let mut client = ClientReplication::default();
        let mut kept = HashMap::new();
        let mut out = Vec::new();
        repl.push(1, snap(&[(1, 111_111), (2, 222_222)]));
        repl.build(&mut client, Some(vec![NetId(1)]), 0, 8, &mut out)
            .unwrap();
        let (t, got) = receive(&out, &kept);
        assert_eq!(got, snap(&[(1, 111_111)]));
        kept.insert(t, got);
        client.ack(1);
        // Entity 2 comes into view, entity 1 leaves it.
        repl.push(2, snap(&[(1, 111_112), (2, 222_222)]));
        repl.build(&mut client, Some(vec![NetId(2)]), 0, 8, &mut out)
            .unwrap();
        let (_, got) = receive(&out, &kept);
        assert_eq!(got, snap(&[(2, 222_222)]));
    }
}
