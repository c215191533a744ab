//! Shared strings: one `Arc<str>` per distinct string decoded in this
//! process.
//!
//! An `Arc<str>` field of an entity state (a player's name) is cloned with
//! every new version of the entity, and the clone writes the string's
//! reference count. With one `Arc` per decoded copy, a process holding
//! many clients' worlds (a load generator such as `arena-bots`, a thousand
//! worlds on one core) has a reference count per player per world, each in
//! its own cache line, and nearly every clone waits on a cache miss. With
//! one `Arc` per distinct string, all worlds share the same few counts,
//! which stay in the cache. [`crate::patch`] decodes `Arc<str>` fields
//! through [`shared_str`].
//!
//! The table holds a reference to each string it hands out, and drops the
//! strings nobody else holds whenever it has doubled since it last did so:
//! it stays within about twice the strings in use (plus [`MIN_SWEEP`]),
//! whatever a peer sends, at an amortized constant cost per new string.
//!
//! ```
//! use std::sync::Arc;
//! use tickwire_shared::interned::shared_str;
//!
//! let a = shared_str("ann");
//! let b = shared_str(&String::from("ann"));
//! assert!(Arc::ptr_eq(&a, &b));
//! assert_eq!(&*a, "ann");
//! ```

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// The table is not swept below this many strings.
pub const MIN_SWEEP: usize = 1024;

/// The process's shared strings (see the module docs).
#[derive(Debug)]
struct Table {
    strings: HashSet<Arc<str>>,
    /// The size at which the next sweep runs.
    sweep_at: usize,
}

impl Table {
    fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return Arc::clone(a);
        }
        if self.strings.len() >= self.sweep_at {
            self.strings.retain(|a| Arc::strong_count(a) > 1);
            self.sweep_at = (self.strings.len() * 2).max(MIN_SWEEP);
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(Arc::clone(&a));
        a
    }
}

static TABLE: LazyLock<Mutex<Table>> = LazyLock::new(|| {
    Mutex::new(Table {
        strings: HashSet::new(),
        sweep_at: MIN_SWEEP,
    })
});

/// The process's one `Arc<str>` holding `s` (made if there is none).
#[must_use]
pub fn shared_str(s: &str) -> Arc<str> {
    // A panic elsewhere cannot leave the table inconsistent: every change
    // is one `HashSet` call.
    TABLE.lock().unwrap_or_else(PoisonError::into_inner).get(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_share_one_arc_and_unused_ones_are_dropped() {
        let mut t = Table {
            strings: HashSet::new(),
            sweep_at: 4,
        };
        let kept = t.get("kept");
        assert!(Arc::ptr_eq(&kept, &t.get("kept")));
        assert!(!Arc::ptr_eq(&kept, &t.get("other")));
        // Thousands of strings nobody holds: the table stays small.
        for i in 0..10_000 {
            drop(t.get(&i.to_string()));
            assert!(t.strings.len() <= MIN_SWEEP);
        }
        // A held string survives every sweep.
        assert!(Arc::ptr_eq(&kept, &t.get("kept")));
        assert_eq!(Arc::strong_count(&kept), 2, "ours and the table's");
    }
}
