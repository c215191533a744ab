//! Arbitrary bytes as a server message; a snapshot's body is decoded against
//! the fixed baseline and against none.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_fuzz::{Ent, Event, baseline, check_snapshot};
use tickwire_shared::{Limits, ServerMessage};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(msg) = ServerMessage::<Event>::decode(data, &limits) else {
        return;
    };
    let again = msg.to_bytes().expect("a decoded message encodes");
    assert_eq!(
        ServerMessage::<Event>::decode(&again, &limits).as_ref(),
        Ok(&msg)
    );
    if let ServerMessage::Snapshot(frame) = msg {
        let with = frame.decode::<Ent>(Some(baseline()), &limits);
        let without = frame.decode::<Ent>(None, &limits);
        if let Ok(s) = &with {
            check_snapshot(s, &limits);
        }
        if let Ok(s) = &without {
            check_snapshot(s, &limits);
        }
        if frame.header.baseline.is_none() {
            // A full snapshot does not depend on the baseline.
            assert_eq!(with, without);
        } else {
            assert!(without.is_err(), "a delta decoded without its baseline");
        }
    }
});
