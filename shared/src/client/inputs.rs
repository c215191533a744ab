//! The inputs the server has not applied yet, and the rule for resending
//! them (PROTOCOL.md §7).

use std::collections::VecDeque;

use crate::message::{InputFrame, Inputs};

/// Unapplied inputs, oldest first, with their sequence numbers.
///
/// Sequences start at 1 on every connection. Every `Inputs` message carries
/// the newest `max_per_message` pending inputs, oldest first; at most
/// `capacity` are kept (the oldest are forgotten: the server could not use
/// inputs that old).
#[derive(Debug, Clone)]
pub(crate) struct InputWindow<I> {
    next_seq: u32,
    pending: VecDeque<(u32, InputFrame<I>)>,
    capacity: usize,
}

impl<I: Clone> InputWindow<I> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            next_seq: 1,
            pending: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// A new connection: sequences restart at 1 and nothing is pending.
    pub(crate) fn restart(&mut self) {
        self.next_seq = 1;
        self.pending.clear();
    }

    /// Adds an input made for `tick`; returns its sequence number.
    pub(crate) fn push(&mut self, tick: u32, input: I) -> u32 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        if self.pending.len() == self.capacity {
            self.pending.pop_front();
        }
        self.pending.push_back((seq, InputFrame { tick, input }));
        seq
    }

    /// The server applied every sequence up to `last_input`.
    pub(crate) fn ack(&mut self, last_input: u32) {
        while self.pending.front().is_some_and(|(s, _)| *s <= last_input) {
            self.pending.pop_front();
        }
    }

    /// The message to send: the newest `max` pending inputs, or `None`.
    pub(crate) fn message(&self, max: usize) -> Option<Inputs<I>> {
        let skip = self.pending.len().saturating_sub(max.max(1));
        let first_seq = self.pending.get(skip)?.0;
        Some(Inputs {
            first_seq,
            frames: self
                .pending
                .iter()
                .skip(skip)
                .map(|(_, f)| f.clone())
                .collect(),
        })
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = (u32, &InputFrame<I>)> + '_ {
        self.pending.iter().map(|(s, f)| (*s, f))
    }

    #[cfg(test)]
    pub(crate) fn next_seq(&self) -> u32 {
        self.next_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_numbered_from_one_resent_until_acked_and_bounded() {
        let mut w = InputWindow::new(128);
        assert!(w.message(32).is_none());
        for i in 0..5u8 {
            assert_eq!(w.push(200 + u32::from(i), i), u32::from(i) + 1);
        }
        let m = w.message(32).unwrap();
        assert_eq!((m.first_seq, m.frames.len()), (1, 5));
        w.ack(3);
        let m = w.message(32).unwrap();
        assert_eq!(
            (m.first_seq, m.frames[0].input, m.frames[0].tick),
            (4, 3, 203)
        );
        w.ack(1); // an old ack changes nothing
        assert_eq!(w.iter().len(), 2);
        for i in 0..200u32 {
            w.push(i, 0);
        }
        assert_eq!(w.iter().len(), 128);
        let m = w.message(32).unwrap();
        assert_eq!((m.first_seq, m.frames.len()), (w.next_seq() - 32, 32));
        w.restart();
        assert!(w.message(32).is_none());
        assert_eq!(w.push(0, 0), 1);
    }
}
