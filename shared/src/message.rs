//! Client ↔ server messages. One message is one WebSocket binary frame (or one
//! QUIC datagram / stream frame): a tag byte, then the fields below, with
//! nothing left over. See `docs/PROTOCOL.md` for the byte-level description.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{DecodeError, EncodeError, Reader, Writer};
use crate::handshake::{CloseCode, Hello, RejectCode, Welcome};
use crate::limits::Limits;
use crate::snapshot::Snapshot;

/// One input for one tick. Sequence numbers are implicit: frame `k` of an
/// [`Inputs`] message has sequence `first_seq + k`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputFrame<I> {
    /// The tick this input was made for.
    pub tick: u32,
    /// The game's input.
    pub input: I,
}

/// A batch of inputs with consecutive sequence numbers, oldest first.
///
/// Clients resend every input the server has not acknowledged yet (see
/// [`SnapshotHeader::last_input`]), so one lost message costs nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs<I> {
    /// Sequence number of the first frame. Sequences start at 1.
    pub first_seq: u32,
    /// The frames, oldest first.
    pub frames: Vec<InputFrame<I>>,
}

/// A message from client to server. `I` is the game's per-tick input and `M`
/// its reliable client → server message ([`crate::GameProtocol::Message`]);
/// `M` defaults to `()` for tools that never send one.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage<I, M = ()> {
    /// Tag 0: the first message of a connection.
    Hello(Hello),
    /// Tag 1: player inputs.
    Inputs(Inputs<I>),
    /// Tag 2: the newest snapshot tick received and applied.
    Ack {
        /// That tick.
        snapshot_tick: u32,
    },
    /// Tag 3: asks for a [`ServerMessage::Pong`] with the same nonce.
    Ping {
        /// Echoed back.
        nonce: u32,
    },
    /// Tag 4: answers a [`ServerMessage::Ping`].
    Pong {
        /// The ping's nonce.
        nonce: u32,
    },
    /// Tag 5: the client leaves; the server closes normally.
    Leave,
    /// Tag 6: one reliable game message ([`crate::GameProtocol::Message`]),
    /// sent on the reliable channel and handed to the game in order. Its
    /// encoded value is at most [`Limits::max_game_message_bytes`].
    GameMessage(M),
}

/// Client message tags.
mod ctag {
    pub(super) const HELLO: u8 = 0;
    pub(super) const INPUTS: u8 = 1;
    pub(super) const ACK: u8 = 2;
    pub(super) const PING: u8 = 3;
    pub(super) const PONG: u8 = 4;
    pub(super) const LEAVE: u8 = 5;
    pub(super) const GAME_MESSAGE: u8 = 6;
}

/// Server message tags.
mod stag {
    pub(super) const WELCOME: u8 = 0;
    pub(super) const REJECT: u8 = 1;
    pub(super) const SNAPSHOT: u8 = 2;
    pub(super) const EVENTS: u8 = 3;
    pub(super) const PING: u8 = 4;
    pub(super) const PONG: u8 = 5;
    pub(super) const CLOSE: u8 = 6;
}

impl<I: Serialize + DeserializeOwned, M: Serialize + DeserializeOwned> ClientMessage<I, M> {
    /// Appends the encoded message to `w`.
    ///
    /// # Errors
    /// When an input or a game message cannot be serialized.
    pub fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        match self {
            Self::Hello(h) => {
                w.u8(ctag::HELLO);
                h.encode(w);
            }
            Self::Inputs(inputs) => {
                w.u8(ctag::INPUTS);
                w.u32(inputs.first_seq);
                w.len_prefix(inputs.frames.len());
                for f in &inputs.frames {
                    w.u32(f.tick);
                    w.value("input", &f.input)?;
                }
            }
            Self::Ack { snapshot_tick } => {
                w.u8(ctag::ACK);
                w.u32(*snapshot_tick);
            }
            Self::Ping { nonce } => {
                w.u8(ctag::PING);
                w.u32(*nonce);
            }
            Self::Pong { nonce } => {
                w.u8(ctag::PONG);
                w.u32(*nonce);
            }
            Self::Leave => w.u8(ctag::LEAVE),
            Self::GameMessage(m) => {
                w.u8(ctag::GAME_MESSAGE);
                w.value("game message", m)?;
            }
        }
        Ok(())
    }

    /// The encoded message as a new buffer.
    ///
    /// # Errors
    /// As [`ClientMessage::encode`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::new();
        self.encode(&mut w)?;
        Ok(w.into_vec())
    }

    /// Decodes one whole message, enforcing `limits`.
    ///
    /// # Errors
    /// [`DecodeError`] describing the first problem found.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        check_size(bytes, limits.max_client_message_bytes)?;
        let mut r = Reader::new(bytes);
        let msg = match r.u8("message tag")? {
            ctag::HELLO => Self::Hello(Hello::decode(&mut r, limits)?),
            ctag::INPUTS => {
                let first_seq = r.u32("first input sequence")?;
                // Each frame is at least its tick (1 byte); an input may be empty.
                let n = r.count("input frames", limits.max_inputs_per_message, 1)?;
                let mut frames = Vec::with_capacity(n);
                for _ in 0..n {
                    let tick = r.u32("input tick")?;
                    frames.push(InputFrame {
                        tick,
                        input: r.value("input")?,
                    });
                }
                Self::Inputs(Inputs { first_seq, frames })
            }
            ctag::ACK => Self::Ack {
                snapshot_tick: r.u32("ack tick")?,
            },
            ctag::PING => Self::Ping {
                nonce: r.u32("ping nonce")?,
            },
            ctag::PONG => Self::Pong {
                nonce: r.u32("pong nonce")?,
            },
            ctag::LEAVE => Self::Leave,
            ctag::GAME_MESSAGE => {
                // Its own size limit, checked before the value is decoded.
                let (size, max) = (r.remaining(), limits.max_game_message_bytes);
                if size > max {
                    return Err(DecodeError::MessageTooLong { size, max });
                }
                Self::GameMessage(r.value("game message")?)
            }
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "client message",
                    tag: u64::from(tag),
                });
            }
        };
        r.finish()?;
        Ok(msg)
    }
}

/// The fixed part of a snapshot message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// The server tick this snapshot shows.
    pub tick: u32,
    /// The last input sequence the server applied for this client (0: none
    /// yet). Prediction replays the inputs after it.
    pub last_input: u32,
    /// `None` for a full snapshot; otherwise the acknowledged snapshot tick
    /// the delta is based on.
    pub baseline: Option<u32>,
}

impl SnapshotHeader {
    /// Writes the tag and header; the body ([`crate::snapshot::write_full`] or
    /// [`crate::delta::write_delta`]) follows.
    pub fn encode(&self, w: &mut Writer) {
        w.u8(stag::SNAPSHOT);
        w.u32(self.tick);
        w.u32(self.last_input);
        match self.baseline {
            None => w.u8(0),
            Some(b) => {
                w.u8(1);
                w.u32(b);
            }
        }
    }
}

/// A received snapshot whose body has not been decoded yet: decoding a delta
/// needs the baseline, which the receiver looks up by `header.baseline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotFrame<'a> {
    /// The header.
    pub header: SnapshotHeader,
    /// The encoded body.
    pub body: &'a [u8],
}

impl SnapshotFrame<'_> {
    /// Decodes the body. A delta needs `baseline`: the snapshot of tick
    /// `header.baseline` that this receiver kept.
    ///
    /// # Errors
    /// [`DecodeError`] for a malformed body, or a delta without its baseline.
    pub fn decode<S: Serialize + DeserializeOwned + Clone>(
        &self,
        baseline: Option<&Snapshot<S>>,
        limits: &Limits,
    ) -> Result<Snapshot<S>, DecodeError> {
        let mut r = Reader::new(self.body);
        let snap = match (self.header.baseline, baseline) {
            (None, _) => crate::snapshot::read_full(&mut r, limits)?,
            (Some(_), Some(base)) => crate::delta::read_delta(&mut r, base, limits)?,
            (Some(tick), None) => {
                return Err(DecodeError::Invalid {
                    what: "delta baseline",
                    detail: format!("no snapshot of tick {tick} is kept"),
                });
            }
        };
        r.finish()?;
        Ok(snap)
    }
}

/// A handshake rejection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Why.
    pub code: RejectCode,
    /// For people.
    pub message: String,
}

/// The server closes the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// Why (also the WebSocket close code).
    pub code: CloseCode,
    /// For people.
    pub reason: String,
}

/// A message from server to client. Snapshots borrow their body from the
/// received bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage<'a, E> {
    /// Tag 0: the handshake succeeded.
    Welcome(Welcome),
    /// Tag 1: the handshake failed; the server closes after it.
    Reject(Reject),
    /// Tag 2: a full or delta snapshot.
    Snapshot(SnapshotFrame<'a>),
    /// Tag 3: reliable game events, in order.
    Events(Vec<E>),
    /// Tag 4: asks for a [`ClientMessage::Pong`].
    Ping {
        /// Echoed back.
        nonce: u32,
    },
    /// Tag 5: answers a [`ClientMessage::Ping`].
    Pong {
        /// The ping's nonce.
        nonce: u32,
    },
    /// Tag 6: the server closes the session.
    Close(Close),
}

impl<'a, E: Serialize + DeserializeOwned> ServerMessage<'a, E> {
    /// Appends the encoded message to `w`.
    ///
    /// # Errors
    /// When an event cannot be serialized.
    pub fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        match self {
            Self::Welcome(m) => {
                w.u8(stag::WELCOME);
                m.encode(w);
            }
            Self::Reject(m) => {
                w.u8(stag::REJECT);
                w.u16(m.code.to_u16());
                w.str(&m.message);
            }
            Self::Snapshot(f) => {
                f.header.encode(w);
                w.raw(f.body);
            }
            Self::Events(events) => {
                w.u8(stag::EVENTS);
                w.len_prefix(events.len());
                for e in events {
                    w.value("event", e)?;
                }
            }
            Self::Ping { nonce } => {
                w.u8(stag::PING);
                w.u32(*nonce);
            }
            Self::Pong { nonce } => {
                w.u8(stag::PONG);
                w.u32(*nonce);
            }
            Self::Close(c) => {
                w.u8(stag::CLOSE);
                w.u16(c.code.to_u16());
                w.str(&c.reason);
            }
        }
        Ok(())
    }

    /// The encoded message as a new buffer.
    ///
    /// # Errors
    /// As [`ServerMessage::encode`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::new();
        self.encode(&mut w)?;
        Ok(w.into_vec())
    }

    /// Decodes one whole message, enforcing `limits`. A snapshot's body is
    /// checked later by [`SnapshotFrame::decode`].
    ///
    /// # Errors
    /// [`DecodeError`] describing the first problem found.
    pub fn decode(bytes: &'a [u8], limits: &Limits) -> Result<Self, DecodeError> {
        check_size(bytes, limits.max_server_message_bytes)?;
        let mut r = Reader::new(bytes);
        let msg = match r.u8("message tag")? {
            stag::WELCOME => Self::Welcome(Welcome::decode(&mut r, limits)?),
            stag::REJECT => Self::Reject(Reject {
                code: RejectCode::from_u16(r.u16("reject code")?),
                message: r.str("reject message", limits.max_text_bytes)?.to_owned(),
            }),
            stag::SNAPSHOT => {
                let tick = r.u32("snapshot tick")?;
                let last_input = r.u32("last input")?;
                let baseline = match r.u8("snapshot kind")? {
                    0 => None,
                    1 => Some(r.u32("baseline tick")?),
                    k => {
                        return Err(DecodeError::UnknownTag {
                            what: "snapshot kind",
                            tag: u64::from(k),
                        });
                    }
                };
                let body = r.raw(r.remaining(), "snapshot body")?;
                Self::Snapshot(SnapshotFrame {
                    header: SnapshotHeader {
                        tick,
                        last_input,
                        baseline,
                    },
                    body,
                })
            }
            stag::EVENTS => {
                // An event may encode to zero bytes (a unit type).
                let n = r.count("events", limits.max_events_per_message, 0)?;
                let mut events = Vec::with_capacity(n);
                for _ in 0..n {
                    events.push(r.value("event")?);
                }
                Self::Events(events)
            }
            stag::PING => Self::Ping {
                nonce: r.u32("ping nonce")?,
            },
            stag::PONG => Self::Pong {
                nonce: r.u32("pong nonce")?,
            },
            stag::CLOSE => Self::Close(Close {
                code: CloseCode::from_u16(r.u16("close code")?),
                reason: r.str("close reason", limits.max_text_bytes)?.to_owned(),
            }),
            tag => {
                return Err(DecodeError::UnknownTag {
                    what: "server message",
                    tag: u64::from(tag),
                });
            }
        };
        r.finish()?;
        Ok(msg)
    }
}

/// True when `bytes` start with the snapshot tag: lets a driver treat
/// snapshots apart (a link simulator, a datagram path) without decoding.
#[must_use]
pub fn is_snapshot(bytes: &[u8]) -> bool {
    bytes.first() == Some(&stag::SNAPSHOT)
}

fn check_size(bytes: &[u8], max: usize) -> Result<(), DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::MessageTooLong {
            size: bytes.len(),
            max,
        });
    }
    Ok(())
}

/// Encodes a whole snapshot message for one receiver: a delta from `base`
/// (its tick and state) when given, else a full snapshot. Servers with many
/// receivers share bodies instead (see `tickwire-server`'s replication);
/// this is for tools, tests and single-receiver links.
///
/// ```
/// use tickwire_shared::{message::encode_snapshot, Limits, NetId, ServerMessage, Snapshot};
/// let cur = Snapshot::from_vec(vec![(NetId(1), 5u32)]).unwrap();
/// let bytes = encode_snapshot(9, 0, None, &cur).unwrap();
/// let ServerMessage::<()>::Snapshot(f) = ServerMessage::decode(&bytes, &Limits::default()).unwrap()
/// else { unreachable!() };
/// assert_eq!(f.decode(None, &Limits::default()).unwrap(), cur);
/// ```
///
/// # Errors
/// When a state cannot be encoded.
pub fn encode_snapshot<S: Serialize + PartialEq>(
    tick: u32,
    last_input: u32,
    base: Option<(u32, &Snapshot<S>)>,
    cur: &Snapshot<S>,
) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer::new();
    SnapshotHeader {
        tick,
        last_input,
        baseline: base.map(|(t, _)| t),
    }
    .encode(&mut w);
    match base {
        None => crate::snapshot::write_full(&mut w, cur.iter())?,
        Some((_, b)) => {
            let mut scratch = crate::delta::DeltaScratch::default();
            crate::delta::write_delta(&mut w, b.iter(), cur.iter(), &mut scratch, usize::MAX)?;
        }
    }
    Ok(w.into_vec())
}
