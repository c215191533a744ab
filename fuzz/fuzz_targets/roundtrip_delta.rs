//! Two snapshots built from fuzz input: `apply(b, diff(b, c)) == c`, the
//! delta's size stays within what changed, and full snapshots round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_fuzz::{DeltaCase, Ent, full_body};
use tickwire_shared::codec::{Reader, Writer};
use tickwire_shared::delta::{self, DeltaScratch};
use tickwire_shared::snapshot::read_full;
use tickwire_shared::{Limits, Snapshot};

fn varint_len(v: u64) -> usize {
    match v {
        0..=250 => 1,
        251..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

fuzz_target!(|case: DeltaCase| {
    let limits = Limits::default();
    let DeltaCase { base, cur } = case;
    let mut w = Writer::new();
    let stats = delta::write_delta(
        &mut w,
        base.iter(),
        cur.iter(),
        &mut DeltaScratch::default(),
        limits.max_fields_per_entity,
    )
    .expect("diff of valid snapshots");
    let d = w.into_vec();
    assert_eq!(d, delta::diff(&base, &cur).unwrap());
    assert_eq!(delta::apply(&base, &d, &limits).as_ref(), Ok(&cur));

    // Size: removed entities cost at most their id, changed ones at most their
    // id and state, patched ones strictly less, unchanged ones nothing.
    let removed: usize = base
        .iter()
        .filter(|(id, _)| cur.get(*id).is_none())
        .map(|(id, _)| varint_len(u64::from(id.0)))
        .sum();
    let changed: usize = cur
        .iter()
        .filter(|(id, e)| base.get(*id) != Some(e))
        .map(|(id, e)| {
            let mut w = Writer::new();
            w.value("state", e).unwrap();
            varint_len(u64::from(id.0)) + w.len()
        })
        .sum();
    let counts = varint_len(stats.removed as u64)
        + varint_len(stats.patched as u64)
        + varint_len(stats.full as u64);
    assert!(d.len() + stats.patched <= counts + removed + changed);
    assert_eq!(stats.unchanged + stats.patched + stats.full, cur.len());

    let body = full_body(&cur);
    let back: Snapshot<Ent> = read_full(&mut Reader::new(&body), &limits).unwrap();
    assert_eq!(back, cur);
});
