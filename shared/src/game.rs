//! The [`GameProtocol`] trait: how a game plugs its own types into the wire format.

use core::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::Reader;
use crate::diff::Differ;
use crate::limits::Limits;
use crate::patch::PatchError;

/// The tickwire protocol version spoken by this crate (sent in the hello).
pub const PROTOCOL_VERSION: u16 = 1;

/// A game's wire types. The framework never knows the game's structs; it only
/// moves these through the codec.
///
/// `EntityState` is diffed field by field (see [`crate::delta`]): keep it a
/// flat struct of small integers (use [`crate::quantize`]) and it costs only
/// its changed fields in a delta.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use tickwire_shared::GameProtocol;
///
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// struct Input { dx: i8, dy: i8 }
///
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// struct Ball { x: i32, y: i32 }
///
/// struct Pong;
/// impl GameProtocol for Pong {
///     const NAME: &'static str = "pong";
///     const VERSION: u32 = 1;
///     type Input = Input;
///     type EntityState = Ball;
///     type Event = String;
///     type Message = ();
/// }
/// assert_ne!(Pong::PROTOCOL_HASH, 0);
/// ```
pub trait GameProtocol: Send + Sync + 'static {
    /// The game's name, part of the protocol hash.
    const NAME: &'static str;
    /// The game's wire version. Bump it whenever `Input`, `EntityState` or
    /// `Event` change shape: clients with another version are rejected at the
    /// handshake instead of decoding garbage.
    const VERSION: u32;
    /// The hash both ends compare at the handshake. Derived from
    /// [`PROTOCOL_VERSION`], [`Self::NAME`] and [`Self::VERSION`] with
    /// [`protocol_hash`].
    const PROTOCOL_HASH: u64 = protocol_hash(Self::NAME, Self::VERSION);

    /// One tick of player input.
    type Input: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;
    /// The replicated state of one entity.
    type EntityState: Serialize
        + DeserializeOwned
        + Clone
        + PartialEq
        + Debug
        + Send
        + Sync
        + 'static;
    /// A reliable game event (chat line, kill feed, score change…).
    type Event: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;
    /// A reliable client → server message, beside the per-tick
    /// [`Self::Input`]: a chat line, a vote, "buy item 3", "ready". Sent with
    /// [`crate::client::ClientSession::send_message`] on the reliable channel
    /// and handed to the server's game in order, on the room's tick. Use `()`
    /// when the game has none.
    type Message: Serialize + DeserializeOwned + Clone + Debug + Send + Sync + 'static;

    /// The in-place patch path for [`Self::EntityState`] (see
    /// [`crate::patch`]), used by the client's world to apply a delta
    /// without decoding whole states. The default has none, so every patch
    /// takes the serde path. A game whose state implements
    /// [`crate::patch::Patch`] (derive it with `tickwire_derive::Patch`)
    /// overrides it, usually with the three other hooks of the derive at
    /// once ([`crate::derived_patch_hooks`]); by hand:
    ///
    /// ```ignore
    /// fn patch_in_place(s: &mut Self::EntityState, r: &mut Reader<'_>, l: &Limits)
    ///     -> Result<(), PatchError> {
    ///     tickwire_shared::patch::patch_in_place(s, r, l)
    /// }
    /// ```
    ///
    /// On [`PatchError::Layout`] the caller retries the same bytes on an
    /// unmodified copy with the serde path.
    ///
    /// # Errors
    /// [`PatchError::Decode`] for malformed bytes, [`PatchError::Layout`] to
    /// ask for the serde path.
    fn patch_in_place(
        state: &mut Self::EntityState,
        r: &mut Reader<'_>,
        limits: &Limits,
    ) -> Result<(), PatchError> {
        let _ = (state, r, limits);
        Err(PatchError::Layout)
    }

    /// The in-place full-state path for [`Self::EntityState`]: overwrite
    /// `state` (an entity's previous state, or any state of the same layout)
    /// with the whole state encoded at `r`, as full snapshots and a delta's
    /// full section carry it, without serde. The client's world uses it for
    /// full snapshots: it reuses the states' allocations (an equal
    /// `Arc<str>` is kept) and skips serde's per-field visitor. The default
    /// has none, so whole states are decoded with serde. A game whose state
    /// implements [`crate::patch::Patch`] overrides it next to
    /// [`Self::patch_in_place`]:
    ///
    /// ```ignore
    /// fn read_in_place(s: &mut Self::EntityState, r: &mut Reader<'_>, l: &Limits)
    ///     -> Result<(), PatchError> {
    ///     tickwire_shared::patch::read_in_place(s, r, l)
    /// }
    /// ```
    ///
    /// On [`PatchError::Layout`] the caller decodes the same bytes with
    /// serde instead.
    ///
    /// # Errors
    /// [`PatchError::Decode`] for malformed bytes, [`PatchError::Layout`] to
    /// ask for the serde path.
    fn read_in_place(
        state: &mut Self::EntityState,
        r: &mut Reader<'_>,
        limits: &Limits,
    ) -> Result<(), PatchError> {
        let _ = (state, r, limits);
        Err(PatchError::Layout)
    }

    /// The resync path for [`Self::EntityState`]: read the whole state at
    /// `r` if it equals `state`, leaving `state` as it is. A full snapshot
    /// that reaches a client holding the entities (a resync) finds most of
    /// them unchanged; the client's world settles each of those here, with
    /// no copy of its state, and reads the others with
    /// [`Self::read_in_place`]. The default has none (every entity is read
    /// over a copy and compared). A game whose state implements
    /// [`crate::patch::Patch`] overrides it next to [`Self::read_in_place`]:
    ///
    /// ```ignore
    /// fn read_unchanged(s: &mut Self::EntityState, r: &mut Reader<'_>, l: &Limits)
    ///     -> Result<(), PatchError> {
    ///     tickwire_shared::patch::read_unchanged(s, r, l)
    /// }
    /// ```
    ///
    /// # Errors
    /// [`PatchError::Decode`] for malformed bytes; [`PatchError::Layout`]
    /// when the state differs (or to ask for the other path): the caller
    /// rewinds `r`.
    fn read_unchanged(
        state: &mut Self::EntityState,
        r: &mut Reader<'_>,
        limits: &Limits,
    ) -> Result<(), PatchError> {
        let _ = (state, r, limits);
        Err(PatchError::Layout)
    }

    /// Loads what `state` points to (an `Arc`'s reference count, a
    /// string's bytes) and returns a number made from it, which means
    /// nothing. Before decoding a delta, the client's world calls it on the
    /// newest state of each entity the previous snapshot changed (the ones
    /// most likely to be patched again), so that those loads' cache misses
    /// overlap instead of each one waiting behind the decode of the patch
    /// before it: in a process with hundreds of worlds (`arena-bots`), the
    /// reference count of a cloned name was a miss per patched entity. The
    /// default loads nothing. A game whose state implements
    /// [`crate::patch::Patch`] overrides it next to [`Self::patch_in_place`]:
    ///
    /// ```ignore
    /// fn read_ahead(s: &Self::EntityState) -> usize {
    ///     tickwire_shared::patch::Patch::read_ahead(s)
    /// }
    /// ```
    #[inline]
    fn read_ahead(state: &Self::EntityState) -> usize {
        let _ = state;
        0
    }

    /// The field-by-field diff for [`Self::EntityState`] (see
    /// [`crate::diff`]), used by the server to write a delta's patches
    /// without serde's flattener: it compares `base` with `cur` field by
    /// field and writes the patch into `d`. The bytes are the same either
    /// way. The default has none, so every patch is written through serde. A
    /// game whose state implements [`crate::patch::Patch`] overrides it next
    /// to [`Self::patch_in_place`]:
    ///
    /// ```ignore
    /// fn diff_fields(base: &Self::EntityState, cur: &Self::EntityState, d: &mut Differ<'_>)
    ///     -> Result<(), PatchError> {
    ///     tickwire_shared::diff::diff_fields(base, cur, d)
    /// }
    /// ```
    ///
    /// # Errors
    /// [`PatchError::Layout`] when the two states' layouts differ (an option
    /// tag, a length or a variant changed), or to ask for the serde path.
    fn diff_fields(
        base: &Self::EntityState,
        cur: &Self::EntityState,
        d: &mut Differ<'_>,
    ) -> Result<(), PatchError> {
        let _ = (base, cur, d);
        Err(PatchError::Layout)
    }
}

/// The five [`GameProtocol`] hooks of a game whose entity state implements
/// [`crate::patch::Patch`] (derived with `#[derive(tickwire_derive::Patch)]`),
/// written inside its `impl GameProtocol`: deltas applied in place
/// ([`GameProtocol::patch_in_place`]), whole states read in place
/// ([`GameProtocol::read_in_place`]) and compared as they are read on a
/// resync ([`GameProtocol::read_unchanged`]), the server's field-by-field
/// diff ([`GameProtocol::diff_fields`]), and the read-ahead of what states
/// point to before a delta ([`GameProtocol::read_ahead`]). The bytes on the wire
/// are the same as without them; a state whose layout changes (an option
/// tag, a variant, a length) takes the serde path for that entity.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use tickwire_shared::GameProtocol;
///
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, tickwire_derive::Patch)]
/// struct Ship {
///     x: i32,
///     y: i32,
///     name: String,
/// }
///
/// struct Space;
///
/// impl GameProtocol for Space {
///     const NAME: &'static str = "space";
///     const VERSION: u32 = 1;
///     type Input = ();
///     type EntityState = Ship;
///     type Event = ();
///     type Message = ();
///     tickwire_shared::derived_patch_hooks!();
/// }
/// ```
#[macro_export]
macro_rules! derived_patch_hooks {
    () => {
        #[inline]
        fn patch_in_place(
            state: &mut Self::EntityState,
            r: &mut $crate::Reader<'_>,
            limits: &$crate::Limits,
        ) -> ::core::result::Result<(), $crate::patch::PatchError> {
            $crate::patch::patch_in_place(state, r, limits)
        }

        #[inline]
        fn read_in_place(
            state: &mut Self::EntityState,
            r: &mut $crate::Reader<'_>,
            limits: &$crate::Limits,
        ) -> ::core::result::Result<(), $crate::patch::PatchError> {
            $crate::patch::read_in_place(state, r, limits)
        }

        #[inline]
        fn read_unchanged(
            state: &mut Self::EntityState,
            r: &mut $crate::Reader<'_>,
            limits: &$crate::Limits,
        ) -> ::core::result::Result<(), $crate::patch::PatchError> {
            $crate::patch::read_unchanged(state, r, limits)
        }

        fn diff_fields(
            base: &Self::EntityState,
            cur: &Self::EntityState,
            d: &mut $crate::diff::Differ<'_>,
        ) -> ::core::result::Result<(), $crate::patch::PatchError> {
            $crate::diff::diff_fields(base, cur, d)
        }

        #[inline]
        fn read_ahead(state: &Self::EntityState) -> usize {
            $crate::patch::Patch::read_ahead(state)
        }
    };
}

/// The 64-bit FNV-1a hash of the UTF-8 string
/// `"tickwire/{PROTOCOL_VERSION}/{name}/{version}"`.
///
/// ```
/// assert_eq!(
///     tickwire_shared::protocol_hash("arena", 1),
///     tickwire_shared::game::fnv1a64(b"tickwire/1/arena/1"),
/// );
/// ```
#[must_use]
pub const fn protocol_hash(name: &str, version: u32) -> u64 {
    let mut h = fnv1a64_update(FNV_OFFSET, b"tickwire/");
    h = fnv1a64_decimal(h, PROTOCOL_VERSION as u64);
    h = fnv1a64_update(h, b"/");
    h = fnv1a64_update(h, name.as_bytes());
    h = fnv1a64_update(h, b"/");
    fnv1a64_decimal(h, version as u64)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a of `bytes`.
#[must_use]
pub const fn fnv1a64(bytes: &[u8]) -> u64 {
    fnv1a64_update(FNV_OFFSET, bytes)
}

const fn fnv1a64_update(mut h: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    h
}

/// Feeds the decimal digits of `v` (no leading zeros) to the hash.
const fn fnv1a64_decimal(h: u64, v: u64) -> u64 {
    let mut digits = [0u8; 20];
    let mut n = 0;
    let mut v = v;
    loop {
        digits[19 - n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut h = h;
    let mut i = 20 - n;
    while i < 20 {
        h ^= digits[i] as u64;
        h = h.wrapping_mul(FNV_PRIME);
        i += 1;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_fnv1a_of_the_documented_string() {
        assert_eq!(fnv1a64(b""), FNV_OFFSET);
        // Reference value of FNV-1a 64 for "a".
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(protocol_hash("arena", 12), fnv1a64(b"tickwire/1/arena/12"));
        assert_eq!(protocol_hash("x", 0), fnv1a64(b"tickwire/1/x/0"));
        assert_ne!(protocol_hash("arena", 1), protocol_hash("arena", 2));
    }
}
