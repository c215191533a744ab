//! Arbitrary bytes as a client message: never panics, and whatever decodes
//! re-encodes to bytes that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_fuzz::Input;
use tickwire_shared::{ClientMessage, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(msg) = ClientMessage::<Input>::decode(data, &limits) {
        let again = msg.to_bytes().expect("a decoded message encodes");
        assert!(again.len() <= data.len(), "re-encoding grew the message");
        assert_eq!(ClientMessage::<Input>::decode(&again, &limits), Ok(msg));
    }
});
