//! Arbitrary bytes as a delta body, applied to the fixed baseline and to an
//! empty one. Whatever applies is a valid snapshot that round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_fuzz::{Ent, baseline, check_snapshot};
use tickwire_shared::{Limits, Snapshot, delta};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(s) = delta::apply(baseline(), data, &limits) {
        check_snapshot(&s, &limits);
    }
    if let Ok(s) = delta::apply(&Snapshot::<Ent>::new(), data, &limits) {
        check_snapshot(&s, &limits);
    }
});
