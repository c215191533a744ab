//! The QUIC stream framing on arbitrary bytes fed in arbitrary piece sizes:
//! `FrameDecoder` never panics, never buffers more than one message, and
//! yields exactly what a straightforward reference parser yields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_shared::framing::{FRAME_HEADER_LEN, FrameDecoder, FrameError};

const MAX: usize = 4096;

/// The obvious parser over the whole input: messages until an error or the end.
fn reference(mut wire: &[u8]) -> (Vec<Vec<u8>>, Option<FrameError>) {
    let mut out = Vec::new();
    while wire.len() >= FRAME_HEADER_LEN {
        let len = u32::from_le_bytes([wire[0], wire[1], wire[2], wire[3]]);
        if len as usize > MAX {
            return (
                out,
                Some(FrameError::MessageTooLong {
                    size: u64::from(len),
                    max: MAX,
                }),
            );
        }
        let len = len as usize;
        if wire.len() < FRAME_HEADER_LEN + len {
            break;
        }
        out.push(wire[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len].to_vec());
        wire = &wire[FRAME_HEADER_LEN + len..];
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the piece sizes the "network" delivers.
    let Some((&step, wire)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let mut decoder = FrameDecoder::new(MAX);
    let mut got = Vec::new();
    let mut error = None;
    let mut rest = wire;
    while !rest.is_empty() {
        let wanted = decoder.wanted();
        assert!(wanted >= 1 && wanted <= MAX.max(FRAME_HEADER_LEN));
        let n = wanted.min(step).min(rest.len());
        match decoder.push(&rest[..n]) {
            Ok(Some(m)) => got.push(m),
            Ok(None) => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        rest = &rest[n..];
    }
    let (want, want_error) = reference(wire);
    assert_eq!(got, want);
    assert_eq!(error, want_error);
});
