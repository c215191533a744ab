//! A per-client byte budget with priority accumulation.
//!
//! A client with a budget (`RoomConfig::client_bytes_per_sec`) is not sent
//! every change of every entity it sees. Each snapshot it gets a share of its
//! budget (a token bucket that holds at most two snapshots' worth); the
//! changes that fit go out, the others wait, and every snapshot a waiting
//! entity's priority (the game's [`crate::Game::priority`], 1 by default) is
//! added to its accumulator, so it climbs until it is sent. Sending resets
//! it. Nothing changes on the wire: a waiting entity is simply left out of
//! the delta, so the client keeps the state it has.
//!
//! # What the client holds
//! The client's world after a snapshot is no longer the server's world at
//! that tick, so the server records, for each snapshot it sends a budgeted
//! client, what that client will hold once it applies it: for each entity,
//! which snapshot of the ring its state comes from ([`Held`]). A later delta
//! against that snapshot diffs against this record. Three rules keep it
//! exact and bounded:
//!
//! * an entity sent since the baseline (in a snapshot the client has not
//!   acknowledged yet) is sent again, as it was sent then, in every delta
//!   until that snapshot is acknowledged: otherwise applying the delta to
//!   the older baseline would take the client back to an older state. (As
//!   it was then, not fresh: a fresh state would be a new unacknowledged
//!   send, and every moving entity once sent would be sent every tick);
//! * an entity whose state equals what the client holds is re-pointed to the
//!   newest snapshot (free);
//! * an entity that has waited half the ring is sent whatever the budget:
//!   its state must stay in the ring, and this bounds staleness.
//!
//! Removals are always sent (a few bytes each).

use std::collections::VecDeque;
use std::sync::Arc;

use serde::Serialize;
use tickwire_shared::delta::write_delta_with;
use tickwire_shared::snapshot::write_full;
use tickwire_shared::{EncodeError, NetId, Snapshot, SnapshotHeader, Writer};

use crate::replication::{ClientReplication, Replication};

/// Where a budgeted client's copy of one entity comes from: the snapshot
/// (by tick) of the replication ring that holds that state, and its
/// position there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The entity.
    pub id: NetId,
    /// The tick of the ring snapshot whose state the client holds.
    pub tick: u32,
    /// The entity's position in that snapshot.
    pub pos: u32,
}

/// What a budgeted client holds after applying one snapshot, sorted by id.
pub type HeldWorld = Arc<[Held]>;

/// One budgeted client's state.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Bytes per snapshot (the budget divided by the snapshot rate).
    per_snapshot: f64,
    /// The tick of the last build.
    last: Option<u32>,
    /// The bucket, in bytes (may go below zero after an overrun).
    tokens: f64,
    /// Estimated bytes per entity sent (moving average).
    per_entity: f64,
    /// Waiting entities, sorted by id: accumulated priority, and the tick
    /// they started waiting.
    acc: Vec<(NetId, f32, u32)>,
    /// For each snapshot sent (oldest first, from the baseline in use on),
    /// what the client holds after applying it.
    pub(crate) held: VecDeque<(u32, HeldWorld)>,
}

/// How one entity of the view fares this snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Sent with its current state.
    Send,
    /// Its state equals what the client holds: re-pointed, nothing sent.
    Same,
    /// Sent since the baseline in a snapshot not acknowledged yet: sent
    /// again as it was then (not fresher, so that resending stops once that
    /// snapshot is acknowledged).
    Carry,
    /// Waits: the client keeps what it holds (or still lacks it).
    Wait,
}

/// A changed entity competing for this snapshot's budget.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// Its index in the caller's list of the view.
    pub index: usize,
    /// Its accumulated priority, this snapshot's included.
    pub priority: f32,
}

impl Budget {
    /// A budget of `bytes_per_sec` for a room sending `snapshots_per_sec`.
    #[must_use]
    pub fn new(bytes_per_sec: u32, snapshots_per_sec: f64) -> Self {
        let per_snapshot = f64::from(bytes_per_sec) / snapshots_per_sec.max(1e-3);
        Self {
            per_snapshot,
            last: None,
            tokens: per_snapshot,
            // A first guess; replaced by what snapshots measure.
            per_entity: 8.0,
            acc: Vec::new(),
            held: VecDeque::new(),
        }
    }

    /// The bytes this snapshot may spend: the bucket refilled by one
    /// snapshot's share per room snapshot since the last refill (`elapsed`:
    /// more than one when the client is sent fewer snapshots, see
    /// `pace.rs`), holding at most two builds' worth.
    pub fn refill(&mut self, elapsed: u32) -> f64 {
        let gain = self.per_snapshot * f64::from(elapsed.max(1));
        self.tokens = (self.tokens + gain).min(2.0 * gain);
        self.tokens
    }

    /// Charges a sent message of `bytes` that carried `entities` entity
    /// states (patches or whole), and learns the cost per entity.
    pub fn charge(&mut self, bytes: usize, entities: usize, overhead: usize) {
        self.tokens -= bytes as f64;
        if entities > 0 {
            let each = bytes.saturating_sub(overhead) as f64 / entities as f64;
            self.per_entity = 0.75 * self.per_entity + 0.25 * each;
        }
    }

    /// The estimated bytes of one entity sent.
    #[must_use]
    pub fn per_entity(&self) -> f64 {
        self.per_entity.max(1.0)
    }

    /// Adds each waiting entity's priority (`waiting`, sorted by id) to its
    /// accumulator, forgets entities no longer waiting, and returns each
    /// one's accumulated priority and the tick it started waiting, in the
    /// same order.
    pub fn accumulate(&mut self, tick: u32, waiting: &[(NetId, f32)], out: &mut Vec<(f32, u32)>) {
        out.clear();
        let mut next = Vec::with_capacity(waiting.len());
        let mut old = self.acc.iter().peekable();
        for &(id, p) in waiting {
            while old.next_if(|(o, _, _)| *o < id).is_some() {}
            let (before, since) = old
                .next_if(|(o, _, _)| *o == id)
                .map_or((0.0, tick), |(_, a, s)| (*a, *s));
            let a = before + p.max(0.0);
            next.push((id, a, since));
            out.push((a, since));
        }
        self.acc = next;
    }

    /// Resets the accumulators of the entities sent (`ids` sorted).
    pub fn sent(&mut self, ids: &[NetId]) {
        let mut ids = ids.iter().peekable();
        self.acc.retain(|(id, _, _)| {
            while ids.next_if(|s| **s < *id).is_some() {}
            ids.next_if(|s| **s == *id).is_none()
        });
    }

    /// What the client holds after applying the snapshot of `tick`, if it
    /// was sent and is still recorded.
    #[must_use]
    pub fn held_at(&self, tick: u32) -> Option<&HeldWorld> {
        self.held.iter().find(|(t, _)| *t == tick).map(|(_, h)| h)
    }

    /// The newest record, if any.
    #[must_use]
    pub fn newest(&self) -> Option<&HeldWorld> {
        self.held.back().map(|(_, h)| h)
    }

    /// Records what the client holds after the snapshot of `tick`, and
    /// forgets records older than `baseline` (they can never be a baseline
    /// again), keeping at most `max` records.
    pub fn record(&mut self, tick: u32, world: HeldWorld, baseline: Option<u32>, max: usize) {
        if let Some(b) = baseline {
            while self.held.front().is_some_and(|(t, _)| *t < b) {
                self.held.pop_front();
            }
        }
        self.held.push_back((tick, world));
        while self.held.len() > max.max(2) {
            let keep_front = baseline.is_some() && self.held.front().map(|(t, _)| *t) == baseline;
            self.held.remove(usize::from(keep_front));
        }
    }

    /// Forgets every record (the next snapshot is full).
    pub fn reset(&mut self) {
        self.held.clear();
        self.acc.clear();
    }
}

/// Picks which candidates fit in `bytes` at `per_entity` bytes each, the
/// highest accumulated priority first (ties: the order given). Marks them
/// [`Fate::Send`] in `fates`; the others stay as they are.
pub fn choose(candidates: &mut [Candidate], bytes: f64, per_entity: f64, fates: &mut [Fate]) {
    let fit = if bytes <= 0.0 {
        0
    } else {
        ((bytes / per_entity.max(1.0)) as usize).min(candidates.len())
    };
    if fit == 0 {
        return;
    }
    if fit < candidates.len() {
        candidates.select_nth_unstable_by(fit - 1, |a, b| {
            b.priority
                .total_cmp(&a.priority)
                .then(a.index.cmp(&b.index))
        });
    }
    for c in &candidates[..fit] {
        fates[c.index] = Fate::Send;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_two_snapshots_and_overruns_are_paid_back() {
        let mut b = Budget::new(6_000, 60.0);
        assert!((b.refill(1) - 200.0).abs() < 1e-9);
        assert!(
            (b.refill(1) - 200.0).abs() < 1e-9,
            "capped at two snapshots"
        );
        b.charge(500, 10, 10);
        assert!(b.refill(1) < 0.0, "an overrun is paid back first");
        // A client sent one snapshot in 4 gets 4 snapshots' share.
        assert!((b.refill(4) - 200.0).abs() < 1e-9, "-200 + 4 × 100");
        assert!((b.per_entity() - (0.75 * 8.0 + 0.25 * 49.0)).abs() < 1e-9);
    }

    #[test]
    fn priorities_accumulate_while_waiting_and_reset_when_sent() {
        let mut b = Budget::new(1_000, 10.0);
        let mut out = Vec::new();
        let ids = [(NetId(1), 1.0), (NetId(2), 2.0), (NetId(5), 0.5)];
        let acc = |out: &[(f32, u32)]| out.iter().map(|a| a.0).collect::<Vec<_>>();
        b.accumulate(10, &ids, &mut out);
        b.accumulate(11, &ids, &mut out);
        assert_eq!(acc(&out), [2.0, 4.0, 1.0]);
        assert!(out.iter().all(|a| a.1 == 10), "waiting since tick 10");
        b.sent(&[NetId(2)]);
        b.accumulate(12, &ids, &mut out);
        assert_eq!(acc(&out), [3.0, 2.0, 1.5]);
        assert_eq!(out[1].1, 12, "waiting again since it was sent");
        // An entity that stops waiting is forgotten.
        b.accumulate(13, &[(NetId(5), 0.5)], &mut out);
        b.accumulate(14, &ids, &mut out);
        assert_eq!(acc(&out), [1.0, 2.0, 2.5]);
    }

    #[test]
    fn choose_takes_the_highest_priorities_that_fit() {
        let mut fates = vec![Fate::Wait; 5];
        let mut c: Vec<Candidate> = [1.0, 5.0, 3.0, 5.0, 0.5]
            .iter()
            .enumerate()
            .map(|(index, &priority)| Candidate { index, priority })
            .collect();
        choose(&mut c, 25.0, 10.0, &mut fates);
        assert_eq!(
            fates,
            [Fate::Wait, Fate::Send, Fate::Wait, Fate::Send, Fate::Wait]
        );
        let mut fates = vec![Fate::Wait; 5];
        choose(&mut c, -3.0, 10.0, &mut fates);
        assert!(fates.iter().all(|f| *f == Fate::Wait));
    }

    #[test]
    fn records_are_kept_from_the_baseline_on() {
        let mut b = Budget::new(1_000, 10.0);
        let w: HeldWorld = Arc::from(Vec::new());
        for t in 1..=5 {
            b.record(t, Arc::clone(&w), None, 64);
        }
        b.record(6, Arc::clone(&w), Some(4), 64);
        let ticks: Vec<u32> = b.held.iter().map(|(t, _)| *t).collect();
        assert_eq!(ticks, [4, 5, 6]);
        assert!(b.held_at(4).is_some() && b.held_at(3).is_none());
    }
}

/// What [`Replication::build_budgeted`] sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BudgetedBuild {
    /// Whether it was a delta.
    pub delta: bool,
    /// Entity states in it (patches or whole), waiting ones not counted.
    pub sent: usize,
    /// Entities of the view that waited for a later snapshot.
    pub waiting: usize,
}

/// Looks up states in the ring by tick, remembering the last snapshot found.
struct Resolver<'a, S> {
    ring: &'a VecDeque<(u32, Arc<Snapshot<S>>)>,
}

impl<'a, S> Resolver<'a, S> {
    fn snapshot(&self, tick: u32) -> Option<&'a Snapshot<S>> {
        let i = self.ring.binary_search_by_key(&tick, |(t, _)| *t).ok()?;
        Some(&*self.ring[i].1)
    }

    /// The states of `world`, or `None` when one of them left the ring.
    fn states(&self, world: &[Held]) -> Option<Vec<(NetId, &'a S)>> {
        let mut out = Vec::with_capacity(world.len());
        let mut last: Option<(u32, &'a Snapshot<S>)> = None;
        for h in world {
            let snap = match last {
                Some((t, s)) if t == h.tick => s,
                _ => {
                    let s = self.snapshot(h.tick)?;
                    last = Some((h.tick, s));
                    s
                }
            };
            let (id, state) = snap.as_slice().get(h.pos as usize)?;
            debug_assert_eq!(*id, h.id);
            out.push((h.id, state));
        }
        Some(out)
    }
}

impl<S: Serialize + PartialEq + Clone> Replication<S> {
    /// Builds the newest tick's snapshot for a client with a byte budget
    /// (see the module docs): changes that fit in its budget, the highest
    /// accumulated priority first, plus what must go (entities sent since
    /// its baseline, entities that waited `max_wait` ticks, removals).
    /// `visible`: positions of the entities it sees in the newest snapshot
    /// (`None`: all). `priority`: the game's priority of an entity for this
    /// client.
    ///
    /// # Errors
    /// [`EncodeError`] when a state cannot be encoded (a game type problem).
    #[allow(clippy::too_many_arguments)]
    pub fn build_budgeted(
        &mut self,
        client: &mut ClientReplication,
        budget: &mut Budget,
        visible: Option<&[u32]>,
        priority: impl Fn(NetId, &S) -> f32,
        max_wait: u32,
        last_input: u32,
        max_sent: usize,
        out: &mut Vec<u8>,
    ) -> Result<BudgetedBuild, EncodeError> {
        let (tick, cur) = self.newest()?;
        // The room's snapshot interval, from the two newest ring entries.
        let interval = match self.ring.len() {
            n if n >= 2 => tick.saturating_sub(self.ring[n - 2].0).max(1),
            _ => 1,
        };
        let resolver = Resolver { ring: &self.ring };
        // The baseline: an acked snapshot whose record (and every state in
        // it) is still at hand.
        let baseline = self
            .pick(client)
            .and_then(|(bt, _)| Some((bt, Arc::clone(budget.held_at(bt)?))))
            .and_then(|(bt, world)| Some((bt, resolver.states(&world)?, world)));
        // Without one the snapshot is full and the client's world becomes
        // what it holds; the records of earlier snapshots stay (their acks
        // may still come, and then they are baselines).
        let newest = baseline
            .as_ref()
            .and_then(|_| budget.newest().map(Arc::clone));
        let entities = cur.as_slice();
        let view: Vec<u32> = match visible {
            Some(v) => v
                .iter()
                .copied()
                .filter(|&i| (i as usize) < entities.len())
                .collect(),
            None => (0..entities.len() as u32).collect(),
        };
        let empty: &[Held] = &[];
        let base_world: &[Held] = baseline.as_ref().map_or(empty, |(_, _, w)| w);
        let newest_world: &[Held] = newest.as_deref().unwrap_or(empty);
        let (base_states, newest_states) = match &baseline {
            Some((_, states, _)) => {
                let newest_states = resolver.states(newest_world).unwrap_or_default();
                (states.as_slice(), newest_states)
            }
            None => (&[][..], Vec::new()),
        };
        // Each entity of the view: its fate, and what the client holds.
        let mut fates = vec![Fate::Wait; view.len()];
        let mut held_base: Vec<Option<Held>> = vec![None; view.len()];
        let mut held_newest: Vec<Option<Held>> = vec![None; view.len()];
        let mut waiting: Vec<(NetId, f32)> = Vec::new();
        let mut waiting_index: Vec<usize> = Vec::new();
        let (mut b, mut l) = (0usize, 0usize);
        let mut mandatory = 0usize;
        for (k, &pos) in view.iter().enumerate() {
            let (id, state) = &entities[pos as usize];
            while b < base_world.len() && base_world[b].id < *id {
                b += 1;
            }
            while l < newest_world.len() && newest_world[l].id < *id {
                l += 1;
            }
            let in_base = (b < base_world.len() && base_world[b].id == *id).then_some(b);
            let in_newest = (l < newest_world.len() && newest_world[l].id == *id).then_some(l);
            let base_state = in_base.map(|i| base_states[i].1);
            let newest_state = in_newest.and_then(|i| newest_states.get(i).map(|s| s.1));
            held_base[k] = in_base.map(|i| base_world[i]);
            held_newest[k] = in_newest.map(|i| newest_world[i]);
            let sent_since = baseline.is_some() && base_state != newest_state;
            if sent_since {
                fates[k] = Fate::Carry;
                mandatory += 1;
            } else if base_state == Some(state) {
                fates[k] = Fate::Same;
            } else if in_base.is_some_and(|i| tick.saturating_sub(base_world[i].tick) >= max_wait) {
                fates[k] = Fate::Send;
                mandatory += 1;
            } else {
                waiting.push((*id, priority(*id, state)));
                waiting_index.push(k);
            }
        }
        let mut acc = Vec::new();
        budget.accumulate(tick, &waiting, &mut acc);
        // A new entity that waited `max_wait` goes whatever the budget too.
        let mut candidates: Vec<Candidate> = Vec::with_capacity(acc.len());
        for (&index, &(priority, since)) in waiting_index.iter().zip(&acc) {
            if tick.saturating_sub(since) + 1 >= max_wait {
                fates[index] = Fate::Send;
                mandatory += 1;
            } else {
                candidates.push(Candidate { index, priority });
            }
        }
        let elapsed = budget
            .last
            .map_or(1, |l| tick.saturating_sub(l) / interval.max(1));
        budget.last = Some(tick);
        let tokens = budget.refill(elapsed);
        let per_entity = budget.per_entity();
        choose(
            &mut candidates,
            tokens - mandatory as f64 * per_entity - HEADER_BYTES,
            per_entity,
            &mut fates,
        );
        // What the client holds after this snapshot.
        let mut world: Vec<Held> = Vec::with_capacity(view.len());
        let mut sent_ids = Vec::new();
        for (k, &pos) in view.iter().enumerate() {
            let id = entities[pos as usize].0;
            match fates[k] {
                Fate::Send | Fate::Same => {
                    if fates[k] == Fate::Send {
                        sent_ids.push(id);
                    }
                    world.push(Held { id, tick, pos });
                }
                Fate::Carry => world.extend(held_newest[k]),
                Fate::Wait => world.extend(held_base[k]),
            }
        }
        budget.sent(&sent_ids);
        let header = SnapshotHeader {
            tick,
            last_input,
            baseline: baseline.as_ref().map(|(t, _, _)| *t),
        };
        let mut w = Writer::from_vec(core::mem::take(out));
        w.clear();
        header.encode(&mut w);
        let overhead = w.len();
        let cur_states = resolver
            .states(&world)
            .ok_or_else(|| EncodeError::Payload {
                what: "snapshot",
                detail: "a held state left the ring".to_owned(),
            })?;
        let sent = match &baseline {
            Some((_, base, _)) => {
                let stats = write_delta_with(
                    &mut w,
                    base.iter().copied(),
                    cur_states.iter().copied(),
                    &mut self.scratch,
                    self.max_fields,
                    self.fast,
                )?;
                stats.patched + stats.full
            }
            None => {
                write_full(&mut w, cur_states.iter().copied())?;
                cur_states.len()
            }
        };
        budget.charge(w.len(), sent, overhead);
        client.sent(tick, None, header.baseline, max_sent);
        budget.record(tick, world.into(), header.baseline, max_sent);
        *out = w.into_vec();
        Ok(BudgetedBuild {
            delta: header.baseline.is_some(),
            sent,
            waiting: fates.iter().filter(|f| **f == Fate::Wait).count(),
        })
    }
}

/// Bytes a snapshot spends besides its entities (header and section
/// lengths), reserved before choosing.
const HEADER_BYTES: f64 = 16.0;

#[cfg(test)]
mod build_tests {
    use tickwire_shared::{NetId, Snapshot};

    use super::*;

    fn world(tick: i32, n: u32) -> Snapshot<i32> {
        Snapshot::from_vec((1..=n).map(|i| (NetId(i), tick * 100 + i as i32)).collect()).unwrap()
    }

    #[test]
    fn deltas_follow_acks_within_the_budget() {
        let mut r: Replication<i32> = Replication::new(64, 64);
        let mut c = ClientReplication::default();
        let mut b = Budget::new(600, 60.0);
        let mut out = Vec::new();
        let mut deltas = 0;
        for t in 1..=40u32 {
            r.push(t, world(t as i32, 100));
            let built = r
                .build_budgeted(&mut c, &mut b, None, |_, _| 1.0, 30, 0, 64, &mut out)
                .unwrap();
            deltas += usize::from(built.delta);
            // Acks arrive three snapshots late.
            if t > 3 {
                c.ack(t - 3);
            }
        }
        assert_eq!(
            deltas,
            40 - 4,
            "every snapshot after the first ack is a delta"
        );
    }
}
