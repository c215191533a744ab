//! Sans-IO session state: unacknowledged inputs and kept baselines.
//!
//! Neither type does IO or reads a clock; [`crate::Client`] drives them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use tickwire_shared::{InputFrame, Inputs, Snapshot};

/// The inputs the server has not acknowledged yet (PROTOCOL.md §7).
///
/// Sequence numbers start at 1 for every connection. Each [`Inputs`] message
/// carries every pending input, oldest first, at most `capacity` of them (the
/// newest); an input pushed out of the window is never resent.
#[derive(Debug, Clone)]
pub struct InputBuffer<I> {
    next_seq: u32,
    pending: VecDeque<(u32, InputFrame<I>)>,
    capacity: usize,
}

impl<I: Clone> InputBuffer<I> {
    /// An empty buffer that resends at most `capacity` inputs (at least 1).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            next_seq: 1,
            pending: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Adds an input made for `tick`; returns its sequence number.
    pub fn push(&mut self, tick: u32, input: I) -> u32 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.pending.push_back((seq, InputFrame { tick, input }));
        while self.pending.len() > self.capacity {
            self.pending.pop_front();
        }
        seq
    }

    /// The server applied every sequence up to `last_input`: forget them.
    pub fn ack(&mut self, last_input: u32) {
        while self.pending.front().is_some_and(|(s, _)| *s <= last_input) {
            self.pending.pop_front();
        }
    }

    /// The message to send: every pending input, oldest first, or `None`
    /// when nothing is pending.
    #[must_use]
    pub fn message(&self) -> Option<Inputs<I>> {
        let first_seq = self.pending.front()?.0;
        Some(Inputs {
            first_seq,
            frames: self.pending.iter().map(|(_, f)| f.clone()).collect(),
        })
    }

    /// How many inputs await acknowledgement.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when every input was acknowledged.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The sequence number the next input gets.
    #[must_use]
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }
}

/// Why a received snapshot was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its tick is not newer than the newest applied one: ignore it.
    Stale,
    /// It is a delta against a tick this ring does not hold (a desync).
    BaselineMissing(u32),
}

/// The snapshots a client keeps as possible delta baselines (PROTOCOL.md
/// §8.7), newest `capacity` at most, shared with the application by [`Arc`].
#[derive(Debug, Clone)]
pub struct BaselineRing<S> {
    kept: BTreeMap<u32, Arc<Snapshot<S>>>,
    newest: Option<u32>,
    capacity: usize,
}

impl<S> BaselineRing<S> {
    /// An empty ring keeping at most `capacity` snapshots (at least 1).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            kept: BTreeMap::new(),
            newest: None,
            capacity: capacity.max(1),
        }
    }

    /// Checks a snapshot header before decoding: returns the baseline to
    /// decode against (`None` for a full snapshot).
    ///
    /// # Errors
    /// [`Refusal::Stale`] for a tick not newer than the newest applied, and
    /// [`Refusal::BaselineMissing`] for a delta whose baseline is not kept.
    pub fn baseline_for(
        &self,
        tick: u32,
        baseline: Option<u32>,
    ) -> Result<Option<&Snapshot<S>>, Refusal> {
        if self.newest.is_some_and(|n| tick <= n) {
            return Err(Refusal::Stale);
        }
        match baseline {
            None => Ok(None),
            Some(b) => self
                .kept
                .get(&b)
                .map(|s| Some(&**s))
                .ok_or(Refusal::BaselineMissing(b)),
        }
    }

    /// Keeps the decoded snapshot of `tick`, which used `baseline`: drops
    /// every kept snapshot older than that baseline (the server never goes
    /// back), then the oldest beyond the capacity.
    pub fn insert(&mut self, tick: u32, baseline: Option<u32>, snapshot: Arc<Snapshot<S>>) {
        if let Some(b) = baseline {
            self.kept = self.kept.split_off(&b);
        }
        self.kept.insert(tick, snapshot);
        while self.kept.len() > self.capacity {
            self.kept.pop_first();
        }
        self.newest = Some(tick);
    }

    /// The newest applied snapshot.
    #[must_use]
    pub fn newest(&self) -> Option<(u32, &Arc<Snapshot<S>>)> {
        self.kept.last_key_value().map(|(t, s)| (*t, s))
    }

    /// The ticks currently kept, oldest first.
    pub fn ticks(&self) -> impl Iterator<Item = u32> + '_ {
        self.kept.keys().copied()
    }

    /// Forgets everything (a new connection: baselines do not survive it).
    pub fn clear(&mut self) {
        self.kept.clear();
        self.newest = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_shared::NetId;

    #[test]
    fn inputs_are_numbered_from_one_and_resent_until_acked() {
        let mut b = InputBuffer::new(32);
        assert!(b.message().is_none());
        assert_eq!(b.push(10, 'a'), 1);
        assert_eq!(b.push(11, 'b'), 2);
        assert_eq!(b.push(12, 'c'), 3);
        let m = b.message().unwrap();
        assert_eq!(m.first_seq, 1);
        assert_eq!(m.frames.iter().map(|f| f.input).collect::<String>(), "abc");
        b.ack(2);
        let m = b.message().unwrap();
        assert_eq!((m.first_seq, m.frames.len()), (3, 1));
        assert_eq!(m.frames[0].tick, 12);
        // An old ack changes nothing; a full ack empties the buffer.
        b.ack(1);
        assert_eq!(b.len(), 1);
        b.ack(3);
        assert!(b.is_empty() && b.message().is_none());
        assert_eq!(b.push(13, 'd'), 4);
    }

    #[test]
    fn at_most_capacity_newest_inputs_are_resent() {
        let mut b = InputBuffer::new(32);
        for i in 0..40u32 {
            b.push(i, i);
        }
        let m = b.message().unwrap();
        assert_eq!(m.first_seq, 9);
        assert_eq!(m.frames.len(), 32);
        assert_eq!(m.frames.last().unwrap().input, 39);
    }

    fn snap(x: u32) -> Arc<Snapshot<u32>> {
        Arc::new(Snapshot::from_vec(vec![(NetId(0), x)]).unwrap())
    }

    #[test]
    fn baselines_are_pruned_below_the_used_one_and_stale_ticks_ignored() {
        let mut r = BaselineRing::new(64);
        assert_eq!(r.baseline_for(5, None), Ok(None));
        r.insert(5, None, snap(5));
        r.insert(6, None, snap(6));
        r.insert(7, None, snap(7));
        assert_eq!(r.baseline_for(7, None), Err(Refusal::Stale));
        assert_eq!(r.baseline_for(4, Some(5)), Err(Refusal::Stale));
        assert_eq!(
            r.baseline_for(8, Some(6)).unwrap().unwrap().get(NetId(0)),
            Some(&6)
        );
        r.insert(8, Some(6), snap(8));
        assert_eq!(r.ticks().collect::<Vec<_>>(), [6, 7, 8]);
        assert_eq!(r.baseline_for(9, Some(5)), Err(Refusal::BaselineMissing(5)));
        assert_eq!(r.newest().unwrap().0, 8);
        r.clear();
        assert!(r.newest().is_none());
        assert_eq!(r.baseline_for(1, None), Ok(None));
    }

    #[test]
    fn the_ring_is_bounded() {
        let mut r = BaselineRing::new(4);
        for t in 1..=10 {
            r.insert(t, None, snap(t));
        }
        assert_eq!(r.ticks().collect::<Vec<_>>(), [7, 8, 9, 10]);
    }
}
