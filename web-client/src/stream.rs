//! The WebTransport stream's framing, without the browser: a bidirectional
//! stream is a plain byte stream, so each reliable message on it is
//! preceded by its length (u32, little endian), exactly as on native QUIC
//! (`docs/PROTOCOL.md` §2.2, [`tickwire_shared::framing`]). The browser
//! hands over chunks cut anywhere; [`StreamFrames::push`] turns them into
//! whole messages, checking each announced length against the limit before
//! reading the message.
//!
//! ```
//! use tickwire_web::stream::StreamFrames;
//!
//! let frames = StreamFrames::new(64, 64);
//! let mut wire = Vec::new();
//! frames.frame(b"hello", &mut wire)?;
//! let mut rx = StreamFrames::new(64, 64);
//! let mut got = Vec::new();
//! // Cut anywhere: the message comes out whole, once.
//! rx.push(&wire[..3], |m| got.push(m.to_vec()))?;
//! rx.push(&wire[3..], |m| got.push(m.to_vec()))?;
//! assert_eq!(got, vec![b"hello".to_vec()]);
//! # Ok::<(), tickwire_shared::framing::FrameError>(())
//! ```

use tickwire_shared::framing::{FrameDecoder, FrameError, frame_header};

/// Splits a received stream into messages and frames messages to send.
#[derive(Debug)]
pub struct StreamFrames {
    decoder: FrameDecoder,
    max_out: usize,
}

impl StreamFrames {
    /// Receives messages of at most `max_in` bytes (the client's
    /// `Limits::max_server_message_bytes`) and sends messages of at most
    /// `max_out` (`Limits::max_client_message_bytes`).
    #[must_use]
    pub fn new(max_in: usize, max_out: usize) -> Self {
        Self {
            decoder: FrameDecoder::new(max_in),
            max_out,
        }
    }

    /// Feeds one received chunk, calling `on_message` with every message it
    /// completes, in order. A message split across chunks is held (at most
    /// one message and its header).
    ///
    /// # Errors
    /// [`FrameError::MessageTooLong`] when a frame announces more than
    /// `max_in` bytes: the stream cannot be resynchronized, close the
    /// session ([`tickwire_shared::CloseCode::MessageTooBig`]). Messages
    /// completed before the bad header were delivered.
    pub fn push(
        &mut self,
        mut chunk: &[u8],
        mut on_message: impl FnMut(&[u8]),
    ) -> Result<(), FrameError> {
        while !chunk.is_empty() {
            let n = self.decoder.wanted().min(chunk.len());
            if let Some(message) = self.decoder.push(&chunk[..n])? {
                on_message(&message);
            }
            chunk = &chunk[n..];
        }
        Ok(())
    }

    /// Writes `message` with its length prefix into `out` (replacing its
    /// contents), ready for one stream write.
    ///
    /// # Errors
    /// [`FrameError::MessageTooLong`] when `message` exceeds `max_out` (the
    /// session never builds one; nothing is written).
    pub fn frame(&self, message: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
        let header = frame_header(message.len(), self.max_out)?;
        out.clear();
        out.reserve(header.len() + message.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(message);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(messages: &[&[u8]]) -> Vec<u8> {
        let f = StreamFrames::new(1024, 1024);
        let mut all = Vec::new();
        let mut one = Vec::new();
        for m in messages {
            f.frame(m, &mut one).unwrap();
            all.extend_from_slice(&one);
        }
        all
    }

    #[test]
    fn messages_come_out_whole_whatever_the_chunking() {
        let sent: [&[u8]; 4] = [b"a", b"", &[7; 300], b"last one"];
        let bytes = wire(&sent);
        for step in [1, 2, 3, 4, 5, 7, 64, 1000, bytes.len()] {
            let mut rx = StreamFrames::new(1024, 1024);
            let mut got: Vec<Vec<u8>> = Vec::new();
            for chunk in bytes.chunks(step) {
                rx.push(chunk, |m| got.push(m.to_vec())).unwrap();
            }
            let want: Vec<Vec<u8>> = sent.iter().map(|m| m.to_vec()).collect();
            assert_eq!(got, want, "chunks of {step}");
        }
    }

    #[test]
    fn an_oversized_frame_is_refused_before_its_body() {
        let mut bytes = wire(&[b"ok"]);
        bytes.extend_from_slice(&(1_000_000u32).to_le_bytes());
        let mut rx = StreamFrames::new(1024, 1024);
        let mut got = Vec::new();
        let err = rx.push(&bytes, |m| got.push(m.to_vec())).unwrap_err();
        assert_eq!(
            err,
            FrameError::MessageTooLong {
                size: 1_000_000,
                max: 1024
            }
        );
        assert_eq!(got, vec![b"ok".to_vec()]);
    }

    #[test]
    fn sending_more_than_the_limit_writes_nothing() {
        let f = StreamFrames::new(8, 4);
        let mut out = vec![9];
        assert!(f.frame(b"12345", &mut out).is_err());
        assert_eq!(out, vec![9]);
        f.frame(b"1234", &mut out).unwrap();
        assert_eq!(out, [4, 0, 0, 0, b'1', b'2', b'3', b'4']);
    }
}
