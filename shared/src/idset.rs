//! [`IdSet`]: a set of [`NetId`]s as one bit per id.
//!
//! A server's network ids are small and reused (its world hands out the
//! lowest free ones), so a view of a few hundred entities among a thousand is
//! a few dozen words. Two views compare word by word: the ids a client saw at
//! its baseline and no longer sees are `base & !cur`, with no walk of either
//! list.

use crate::snapshot::NetId;

/// A set of network ids: bit `n % 64` of word `n / 64` is `NetId(n)`. Its
/// memory is one bit per id up to the largest it holds, which suits the
/// server's small, reused ids (not arbitrary ones).
///
/// ```
/// use tickwire_shared::{NetId, idset::IdSet};
/// let mut seen = IdSet::default();
/// seen.insert(NetId(3));
/// seen.insert(NetId(130));
/// assert!(seen.contains(NetId(130)) && !seen.contains(NetId(4)));
/// let mut now = IdSet::default();
/// now.insert(NetId(3));
/// assert_eq!(seen.difference(&now).collect::<Vec<_>>(), [NetId(130)]);
/// ```
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IdSet {
    words: Vec<u64>,
}

impl Clone for IdSet {
    fn clone(&self) -> Self {
        Self {
            words: self.words.clone(),
        }
    }

    /// Copies `source` into this set's allocation (none when it is as long).
    fn clone_from(&mut self, source: &Self) {
        self.words.clone_from(&source.words);
    }
}

impl IdSet {
    /// Empties the set, keeping its allocation.
    pub fn clear(&mut self) {
        self.words.clear();
    }

    /// Empties the set and sizes it for ids up to `max`, so that inserting
    /// them never grows it.
    pub fn reset(&mut self, max: NetId) {
        self.words.clear();
        self.words.resize(max.0 as usize / 64 + 1, 0);
    }

    /// Adds `id` (the set grows to hold it).
    #[inline]
    pub fn insert(&mut self, id: NetId) {
        let w = (id.0 / 64) as usize;
        if w >= self.words.len() {
            self.grow(w);
        }
        self.words[w] |= 1 << (id.0 % 64);
    }

    /// An [`Inserter`] into this set: for many ids in ascending order (a
    /// view being walked), whose bits it gathers in a register and writes
    /// one word at a time.
    pub fn inserter(&mut self) -> Inserter<'_> {
        Inserter {
            set: self,
            word: 0,
            bits: 0,
        }
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, word: usize) {
        self.words.resize(word + 1, 0);
    }

    /// Whether `id` is in the set.
    #[inline]
    #[must_use]
    pub fn contains(&self, id: NetId) -> bool {
        self.words
            .get((id.0 / 64) as usize)
            .is_some_and(|w| w & (1 << (id.0 % 64)) != 0)
    }

    /// The ids in `self` and not in `other`, ascending.
    pub fn difference<'a>(&'a self, other: &'a IdSet) -> Difference<'a> {
        Difference {
            words: &self.words,
            other: &other.words,
            at: 0,
            bits: 0,
        }
    }

    /// The ids in the set, ascending.
    pub fn iter(&self) -> Difference<'_> {
        Difference {
            words: &self.words,
            other: &[],
            at: 0,
            bits: 0,
        }
    }

    /// The set's words: bit `n % 64` of word `n / 64` is `NetId(n)`; ids
    /// past the last word are absent.
    #[must_use]
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// The number of ids in the set.
    #[must_use]
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// True when the set holds no id.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }
}

impl FromIterator<NetId> for IdSet {
    fn from_iter<T: IntoIterator<Item = NetId>>(ids: T) -> Self {
        let mut set = Self::default();
        let mut ins = set.inserter();
        for id in ids {
            ins.insert(id);
        }
        drop(ins);
        set
    }
}

/// Inserts ids into an [`IdSet`] ([`IdSet::inserter`]). Consecutive ids in
/// the same word set bits in a register, and the word is written when an id
/// of another word comes or the inserter is dropped, where
/// [`IdSet::insert`] reads and writes memory per id (a chain of dependent
/// stores when the ids are close). Any order is correct; ascending order is
/// the fast one.
///
/// ```
/// use tickwire_shared::{NetId, idset::IdSet};
/// let mut view = IdSet::default();
/// {
///     let mut ins = view.inserter();
///     for id in [1, 2, 70, 3] {
///         ins.insert(NetId(id));
///     }
/// } // written when dropped
/// assert_eq!(view.iter().map(|id| id.0).collect::<Vec<_>>(), [1, 2, 3, 70]);
/// ```
#[derive(Debug)]
pub struct Inserter<'a> {
    set: &'a mut IdSet,
    word: usize,
    bits: u64,
}

impl Inserter<'_> {
    /// Adds `id` (the set grows to hold it).
    #[inline]
    pub fn insert(&mut self, id: NetId) {
        let w = (id.0 / 64) as usize;
        if w != self.word {
            self.flush();
            self.word = w;
        }
        self.bits |= 1 << (id.0 % 64);
    }

    #[inline]
    fn flush(&mut self) {
        if self.bits != 0 {
            if self.word >= self.set.words.len() {
                self.set.grow(self.word);
            }
            self.set.words[self.word] |= self.bits;
            self.bits = 0;
        }
    }
}

impl Drop for Inserter<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The ids of one set that another lacks, ascending ([`IdSet::difference`];
/// [`IdSet::iter`] against no other set).
#[derive(Clone, Debug)]
pub struct Difference<'a> {
    words: &'a [u64],
    other: &'a [u64],
    /// The word after the one in `bits`.
    at: usize,
    bits: u64,
}

impl Iterator for Difference<'_> {
    type Item = NetId;

    #[inline]
    fn next(&mut self) -> Option<NetId> {
        while self.bits == 0 {
            let w = *self.words.get(self.at)?;
            self.bits = w & !self.other.get(self.at).copied().unwrap_or(0);
            self.at += 1;
        }
        let b = self.bits.trailing_zeros();
        self.bits &= self.bits - 1;
        Some(NetId(((self.at - 1) * 64) as u32 + b))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn behaves_like_a_btreeset(
            a in proptest::collection::btree_set(0u32..2_000, 0..200),
            b in proptest::collection::btree_set(0u32..2_000, 0..200),
        ) {
            let sa: IdSet = a.iter().map(|&n| NetId(n)).collect();
            let sb: IdSet = b.iter().map(|&n| NetId(n)).collect();
            prop_assert_eq!(sa.iter().map(|id| id.0).collect::<Vec<_>>(), a.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(sa.len(), a.len());
            // The inserter, in ascending order and in the order of `b`'s
            // ids after `a`'s (a jump back), builds the same set.
            let mut sc = IdSet::default();
            {
                let mut ins = sc.inserter();
                for &n in a.iter().chain(b.iter()) {
                    ins.insert(NetId(n));
                }
            }
            let union: BTreeSet<u32> = a.union(&b).copied().collect();
            prop_assert_eq!(sc.iter().map(|id| id.0).collect::<Vec<_>>(), union.into_iter().collect::<Vec<_>>());
            prop_assert_eq!(sa.is_empty(), a.is_empty());
            for n in 0..2_100 {
                prop_assert_eq!(sa.contains(NetId(n)), a.contains(&n));
            }
            let gone: BTreeSet<u32> = a.difference(&b).copied().collect();
            prop_assert_eq!(
                sa.difference(&sb).map(|id| id.0).collect::<Vec<_>>(),
                gone.into_iter().collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn grows_to_the_largest_id() {
        let mut s = IdSet::default();
        s.insert(NetId(100_000));
        assert!(s.contains(NetId(100_000)));
        assert!(!s.contains(NetId(99_999)) && !s.contains(NetId(1_000_000)));
        assert_eq!(s.iter().collect::<Vec<_>>(), [NetId(100_000)]);
    }
}
