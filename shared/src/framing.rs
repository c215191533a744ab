//! Length-prefixed framing for byte streams (the QUIC reliable stream).
//!
//! A WebSocket delimits messages itself; a QUIC stream is a plain byte stream,
//! so each message on it is preceded by its length as a **u32, little endian**
//! (4 raw bytes, not a varint; `docs/PROTOCOL.md` §2.2). The receiver checks
//! that length against its message limit *before* it reads or allocates the
//! message.
//!
//! [`FrameDecoder`] is sans-IO: the IO shell asks how many bytes are
//! [`wanted`](FrameDecoder::wanted), reads at most that many, and
//! [`push`](FrameDecoder::push)es them. Because it never asks for more than the
//! rest of the current header or message, the decoder holds at most one
//! message and its 4-byte header, whatever the peer sends.
//!
//! ```
//! use tickwire_shared::framing::{FrameDecoder, frame_header};
//!
//! let mut wire = frame_header(3, 16)?.to_vec();
//! wire.extend_from_slice(b"abc");
//!
//! let mut decoder = FrameDecoder::new(16);
//! let mut rest = &wire[..];
//! let mut messages = Vec::new();
//! while !rest.is_empty() {
//!     let n = decoder.wanted().min(rest.len());
//!     if let Some(m) = decoder.push(&rest[..n])? {
//!         messages.push(m);
//!     }
//!     rest = &rest[n..];
//! }
//! assert_eq!(messages, vec![b"abc".to_vec()]);
//! # Ok::<(), tickwire_shared::framing::FrameError>(())
//! ```

/// The ALPN protocol id of tickwire over QUIC (`docs/PROTOCOL.md` §2.2).
pub const QUIC_ALPN: &[u8] = b"tickwire/1";

/// Bytes of the length prefix.
pub const FRAME_HEADER_LEN: usize = 4;

/// Why framing failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame announced (or a sender tried to send) a message larger than the limit.
    #[error("message of {size} bytes exceeds the limit of {max} bytes")]
    MessageTooLong {
        /// The announced size.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// The caller pushed more bytes than [`FrameDecoder::wanted`] asked for.
    #[error("pushed {pushed} bytes but only {wanted} were wanted")]
    Overrun {
        /// Bytes pushed.
        pushed: usize,
        /// Bytes wanted.
        wanted: usize,
    },
}

/// The 4-byte length prefix of a `len`-byte message, or
/// [`FrameError::MessageTooLong`] when `len` exceeds `max` (or `u32::MAX`).
///
/// # Errors
/// [`FrameError::MessageTooLong`].
pub fn frame_header(len: usize, max: usize) -> Result<[u8; FRAME_HEADER_LEN], FrameError> {
    match u32::try_from(len) {
        Ok(n) if len <= max => Ok(n.to_le_bytes()),
        _ => Err(FrameError::MessageTooLong {
            size: len as u64,
            max,
        }),
    }
}

#[derive(Debug)]
enum State {
    Header {
        bytes: [u8; FRAME_HEADER_LEN],
        have: usize,
    },
    Body {
        message: Vec<u8>,
        len: usize,
    },
}

/// Splits a byte stream into messages; see the [module docs](self).
#[derive(Debug)]
pub struct FrameDecoder {
    max: usize,
    state: State,
}

impl FrameDecoder {
    /// A decoder for messages of at most `max_message_bytes`.
    #[must_use]
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            max: max_message_bytes,
            state: State::Header {
                bytes: [0; FRAME_HEADER_LEN],
                have: 0,
            },
        }
    }

    /// How many bytes the decoder wants next (always at least 1): the rest of
    /// the current length prefix, or the rest of the current message.
    #[must_use]
    pub fn wanted(&self) -> usize {
        match &self.state {
            State::Header { have, .. } => FRAME_HEADER_LEN - have,
            State::Body { message, len } => len - message.len(),
        }
    }

    /// Whether the decoder is between messages (nothing partial is held).
    #[must_use]
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Header { have: 0, .. })
    }

    /// Feeds at most [`wanted`](Self::wanted) bytes; returns the message they
    /// complete, if any.
    ///
    /// # Errors
    /// [`FrameError::MessageTooLong`] when a length prefix exceeds the limit
    /// (the stream cannot be resynchronized: close it), or
    /// [`FrameError::Overrun`] when `data` is longer than wanted.
    pub fn push(&mut self, data: &[u8]) -> Result<Option<Vec<u8>>, FrameError> {
        let wanted = self.wanted();
        if data.len() > wanted {
            return Err(FrameError::Overrun {
                pushed: data.len(),
                wanted,
            });
        }
        match &mut self.state {
            State::Header { bytes, have } => {
                bytes[*have..*have + data.len()].copy_from_slice(data);
                *have += data.len();
                if *have < FRAME_HEADER_LEN {
                    return Ok(None);
                }
                let len = u32::from_le_bytes(*bytes);
                let len = usize::try_from(len).ok().filter(|l| *l <= self.max).ok_or(
                    FrameError::MessageTooLong {
                        size: u64::from(len),
                        max: self.max,
                    },
                )?;
                if len == 0 {
                    self.reset();
                    return Ok(Some(Vec::new()));
                }
                self.state = State::Body {
                    message: Vec::with_capacity(len),
                    len,
                };
                Ok(None)
            }
            State::Body { message, len } => {
                message.extend_from_slice(data);
                if message.len() < *len {
                    return Ok(None);
                }
                let done = std::mem::take(message);
                self.reset();
                Ok(Some(done))
            }
        }
    }

    fn reset(&mut self) {
        self.state = State::Header {
            bytes: [0; FRAME_HEADER_LEN],
            have: 0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(messages: &[&[u8]], max: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        for m in messages {
            wire.extend_from_slice(&frame_header(m.len(), max).unwrap());
            wire.extend_from_slice(m);
        }
        wire
    }

    /// Feeds `wire` in pieces of at most `step` bytes.
    fn decode(wire: &[u8], max: usize, step: usize) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut d = FrameDecoder::new(max);
        let mut out = Vec::new();
        let mut rest = wire;
        while !rest.is_empty() {
            let n = d.wanted().min(rest.len()).min(step);
            if let Some(m) = d.push(&rest[..n])? {
                out.push(m);
            }
            rest = &rest[n..];
        }
        assert!(d.is_idle(), "a partial frame is left");
        Ok(out)
    }

    #[test]
    fn round_trips_in_any_piece_size() {
        let messages: [&[u8]; 4] = [b"hello", b"", b"x", &[7u8; 300]];
        let wire = frames(&messages, 1024);
        for step in [1, 2, 3, 4, 5, 7, 64, 10_000] {
            let got = decode(&wire, 1024, step).unwrap();
            assert_eq!(got, messages.map(<[u8]>::to_vec), "step {step}");
        }
    }

    #[test]
    fn header_is_u32_le() {
        assert_eq!(frame_header(0x0102, 1 << 20).unwrap(), [0x02, 0x01, 0, 0]);
    }

    #[test]
    fn too_long_is_refused_before_allocating() {
        let wire = [0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            decode(&wire, 4096, 4),
            Err(FrameError::MessageTooLong {
                size: u64::from(u32::MAX),
                max: 4096
            })
        );
        assert_eq!(
            frame_header(4097, 4096),
            Err(FrameError::MessageTooLong {
                size: 4097,
                max: 4096
            })
        );
        // Exactly the limit is fine.
        let ok = frames(&[&[1u8; 4096]], 4096);
        assert_eq!(decode(&ok, 4096, 999).unwrap().len(), 1);
    }

    #[test]
    fn overrun_is_an_error_not_a_panic() {
        let mut d = FrameDecoder::new(16);
        assert_eq!(
            d.push(&[1, 0, 0, 0, 9]),
            Err(FrameError::Overrun {
                pushed: 5,
                wanted: 4
            })
        );
    }

    #[test]
    fn wanted_never_exceeds_one_message() {
        let mut d = FrameDecoder::new(100);
        assert_eq!(d.wanted(), 4);
        assert_eq!(d.push(&[100, 0]).unwrap(), None);
        assert_eq!(d.wanted(), 2);
        assert_eq!(d.push(&[0, 0]).unwrap(), None);
        assert_eq!(d.wanted(), 100);
    }
}
