//! # tickwire-shared: the tickwire wire protocol
//!
//! Everything the server, the native client and the browser client agree on,
//! and nothing else: no sockets, no async runtime, no clock reads and no
//! unseeded randomness. Time and seeds are arguments. It builds for
//! `wasm32-unknown-unknown`.
//!
//! ```text
//!  game types (serde) ──▶ codec (bincode 2, limits) ──▶ message ──▶ bytes ──▶ transport
//!                          ▲                            ▲
//!  snapshot / delta ───────┘   handshake (state machine)┘
//! ```
//!
//! * [`codec`]: the bincode configuration and the [`Writer`]/[`Reader`]
//!   primitives; every decode is bounded and returns a typed [`DecodeError`].
//! * [`message`]: [`ClientMessage`] and [`ServerMessage`].
//! * [`handshake`]: hello → welcome/reject as consuming state transitions.
//! * [`snapshot`] and [`delta`]: full snapshots and field-level deltas.
//! * [`quantize`]: glam helpers that make snapshots small.
//! * [`conditioner`]: a seeded link simulator for tests and bots.
//! * [`framing`]: the length prefix of messages on a byte stream (QUIC).
//! * [`game`]: the [`GameProtocol`] trait that plugs a game's types in.
//! * [`matchmake`]: the JSON bodies of `POST /matchmake`.
//!
//! The byte-level format is specified in `docs/PROTOCOL.md`.
#![forbid(unsafe_code)]

pub mod client;
pub mod codec;
pub mod conditioner;
pub mod delta;
pub mod diff;
mod fields;
pub mod framing;
pub mod game;
pub mod handshake;
pub mod idset;
pub mod interned;
pub mod limits;
pub mod matchmake;
pub mod message;
pub mod patch;
pub mod quantize;
pub mod snapshot;

pub use codec::{DecodeError, EncodeError, Reader, Writer};
pub use game::{GameProtocol, PROTOCOL_VERSION, protocol_hash};
pub use handshake::{CloseCode, Hello, RejectCode, ResumeToken, Welcome};
pub use limits::Limits;
pub use message::{
    ClientMessage, InputFrame, Inputs, ServerMessage, SnapshotFrame, SnapshotHeader,
};
pub use snapshot::{NetId, Snapshot};
