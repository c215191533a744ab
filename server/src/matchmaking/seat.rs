//! Seat tokens: what the matchmaker gives a player, and what the node that
//! holds the room checks in the handshake.
//!
//! ```text
//!  matchmaker (any node)                       node that holds the room
//!  Seat { identity, room, mode, node, expiry, seat id }
//!    └─ issue(secret) ─▶ "tw1." + base64url(payload ‖ HMAC-SHA256) ─▶ Hello.seat_token
//!                                                                      └─ verify(secret, now) ─▶ Seat
//!                                                                         └─ check(node, room)
//! ```
//!
//! A seat token is signed, not encrypted: anyone holding it can read who it
//! is for. It proves that a node of the fleet (anyone with the fleet secret)
//! seated `identity` in `room` on `node` until `expires_at_ms`. The byte
//! layout is in docs/PROTOCOL.md §13.4.
//!
//! ```
//! use tickwire_server::matchmaking::seat::{FleetSecret, Seat, SeatTokenError};
//!
//! let secret = FleetSecret::new(b"a fleet secret of at least 16 bytes".to_vec()).unwrap();
//! let seat = Seat {
//!     identity: "alice".into(),
//!     room: "lobby".into(),
//!     mode: "ffa".into(),
//!     node: "node-a".into(),
//!     expires_at_ms: 1_000_030_000,
//!     seat_id: [7; 16],
//! };
//! let token = seat.issue(&secret).unwrap();
//! let back = Seat::verify(&secret, &token, 1_000_000_000).unwrap();
//! assert_eq!(back, seat);
//! assert!(back.check("node-a", Some("lobby")).is_ok());
//! assert!(matches!(back.check("node-b", None), Err(SeatTokenError::WrongNode { .. })));
//! assert!(matches!(
//!     Seat::verify(&secret, &token, 1_000_030_000),
//!     Err(SeatTokenError::Expired { .. })
//! ));
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tickwire_shared::RejectCode;

type HmacSha256 = Hmac<Sha256>;

/// The prefix of every seat token of this format.
pub const TOKEN_PREFIX: &str = "tw1.";
/// The longest identity, room, mode or node id a seat token carries, in
/// bytes.
pub const MAX_FIELD_BYTES: usize = 128;
/// The shortest fleet secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;
/// The longest seat token [`Seat::issue`] makes (and [`Seat::verify`]
/// reads), in characters: four fields of at most [`MAX_FIELD_BYTES`] and
/// their lengths, 24 fixed bytes and a 32-byte MAC, in base64url.
pub const MAX_TOKEN_CHARS: usize =
    TOKEN_PREFIX.len() + (MAC_BYTES + FIXED_BYTES + 4 * (1 + MAX_FIELD_BYTES)).div_ceil(3) * 4;

const MAC_BYTES: usize = 32;
/// Expiry (8) and seat id (16).
const FIXED_BYTES: usize = 8 + 16;
/// Domain separation: a MAC made for anything else never verifies here.
const MAC_CONTEXT: &[u8] = b"tickwire seat token v1\0";

/// The fleet's shared secret, which signs seat tokens. Its `Debug` output
/// never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetSecret(Vec<u8>);

impl core::fmt::Debug for FleetSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "FleetSecret({} bytes)", self.0.len())
    }
}

impl FleetSecret {
    /// A secret of at least [`MIN_SECRET_BYTES`] bytes (use 32 random bytes,
    /// e.g. `openssl rand -base64 32`).
    ///
    /// # Errors
    /// [`SeatTokenError::WeakSecret`] when it is shorter.
    pub fn new(bytes: Vec<u8>) -> Result<Self, SeatTokenError> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SeatTokenError::WeakSecret { len: bytes.len() });
        }
        Ok(Self(bytes))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(MAC_CONTEXT);
        mac
    }
}

impl core::str::FromStr for FleetSecret {
    type Err = SeatTokenError;

    /// The UTF-8 bytes of `s`, as given on a command line or in an
    /// environment variable.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s.as_bytes().to_vec())
    }
}

/// Why a seat token was refused, or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SeatTokenError {
    /// Not a seat token: wrong prefix, bad base64, too long or short, or a
    /// payload that does not parse.
    #[error("malformed seat token: {0}")]
    Malformed(&'static str),
    /// The MAC does not verify: forged, altered, or another fleet's.
    #[error("seat token signature does not verify")]
    BadSignature,
    /// The token expired.
    #[error("seat token expired {ago_ms} ms ago")]
    Expired {
        /// How long ago.
        ago_ms: u64,
    },
    /// The token is for another node.
    #[error("seat token is for node {token:?}, this is {this:?}")]
    WrongNode {
        /// The token's node.
        token: String,
        /// This node.
        this: String,
    },
    /// The token is for another room than the hello names.
    #[error("seat token is for room {token:?}, the hello names {hello:?}")]
    WrongRoom {
        /// The token's room.
        token: String,
        /// The hello's room.
        hello: String,
    },
    /// A field is too long to be put in a token.
    #[error("{what} is longer than {MAX_FIELD_BYTES} bytes")]
    FieldTooLong {
        /// Which field.
        what: &'static str,
    },
    /// The fleet secret is too short.
    #[error("fleet secret has {len} bytes; at least {MIN_SECRET_BYTES} are needed")]
    WeakSecret {
        /// Its length.
        len: usize,
    },
}

impl SeatTokenError {
    /// The reject code a node sends for this problem.
    #[must_use]
    pub fn reject_code(&self) -> RejectCode {
        match self {
            Self::Expired { .. } => RejectCode::SeatTokenExpired,
            Self::WrongNode { .. } => RejectCode::SeatTokenWrongNode,
            Self::WrongRoom { .. } => RejectCode::SeatTokenWrongRoom,
            Self::Malformed(_)
            | Self::BadSignature
            | Self::FieldTooLong { .. }
            | Self::WeakSecret { .. } => RejectCode::SeatTokenInvalid,
        }
    }
}

/// What a seat token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    /// Who was seated: what the matchmaker's auth hook returned. The node
    /// passes it to the game's `on_auth` hook as the auth token.
    pub identity: String,
    /// The room.
    pub room: String,
    /// The room's mode (used when the node opens the room).
    pub mode: String,
    /// The id of the node that holds (or opens) the room.
    pub node: String,
    /// When the token stops being accepted, in milliseconds since the Unix
    /// epoch.
    pub expires_at_ms: u64,
    /// Random: makes every token unique.
    pub seat_id: [u8; 16],
}

impl Seat {
    /// Signs the seat with `secret`: `tw1.` and the base64url (no padding)
    /// of the payload followed by its HMAC-SHA256.
    ///
    /// # Errors
    /// [`SeatTokenError::FieldTooLong`] when a field is over
    /// [`MAX_FIELD_BYTES`].
    pub fn issue(&self, secret: &FleetSecret) -> Result<String, SeatTokenError> {
        let mut bytes = Vec::with_capacity(FIXED_BYTES + MAC_BYTES + 64);
        bytes.extend_from_slice(&self.expires_at_ms.to_be_bytes());
        bytes.extend_from_slice(&self.seat_id);
        for (what, field) in [
            ("node", &self.node),
            ("room", &self.room),
            ("mode", &self.mode),
            ("identity", &self.identity),
        ] {
            let len = u8::try_from(field.len())
                .ok()
                .filter(|&l| usize::from(l) <= MAX_FIELD_BYTES)
                .ok_or(SeatTokenError::FieldTooLong { what })?;
            bytes.push(len);
            bytes.extend_from_slice(field.as_bytes());
        }
        let mut mac = secret.mac();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        let mut token = String::with_capacity(MAX_TOKEN_CHARS);
        token.push_str(TOKEN_PREFIX);
        URL_SAFE_NO_PAD.encode_string(&bytes, &mut token);
        Ok(token)
    }

    /// Reads `token`, checks its signature (in constant time) and its expiry
    /// against `now_ms` (milliseconds since the Unix epoch). Never panics,
    /// whatever `token` holds; checks its length before decoding.
    ///
    /// # Errors
    /// [`SeatTokenError::Malformed`], [`SeatTokenError::BadSignature`] or
    /// [`SeatTokenError::Expired`], in that order of checking.
    pub fn verify(secret: &FleetSecret, token: &str, now_ms: u64) -> Result<Self, SeatTokenError> {
        let body = token
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(SeatTokenError::Malformed("not a tw1 seat token"))?;
        if token.len() > MAX_TOKEN_CHARS {
            return Err(SeatTokenError::Malformed("too long"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SeatTokenError::Malformed("not base64url"))?;
        let split = bytes
            .len()
            .checked_sub(MAC_BYTES)
            .filter(|&n| n >= FIXED_BYTES)
            .ok_or(SeatTokenError::Malformed("too short"))?;
        let (payload, tag) = bytes.split_at(split);
        let mut mac = secret.mac();
        mac.update(payload);
        mac.verify_slice(tag)
            .map_err(|_| SeatTokenError::BadSignature)?;
        let seat = Self::parse(payload)?;
        if now_ms >= seat.expires_at_ms {
            return Err(SeatTokenError::Expired {
                ago_ms: now_ms - seat.expires_at_ms,
            });
        }
        Ok(seat)
    }

    /// Parses a payload whose MAC verified.
    fn parse(payload: &[u8]) -> Result<Self, SeatTokenError> {
        let (fixed, mut rest) = payload
            .split_at_checked(FIXED_BYTES)
            .ok_or(SeatTokenError::Malformed("too short"))?;
        let (expiry, id) = fixed.split_at(8);
        let mut e = [0u8; 8];
        e.copy_from_slice(expiry);
        let mut seat_id = [0u8; 16];
        seat_id.copy_from_slice(id);
        let mut field = || -> Result<String, SeatTokenError> {
            let (&len, tail) = rest
                .split_first()
                .ok_or(SeatTokenError::Malformed("truncated"))?;
            let (text, tail) = tail
                .split_at_checked(usize::from(len))
                .ok_or(SeatTokenError::Malformed("truncated"))?;
            rest = tail;
            if text.len() > MAX_FIELD_BYTES {
                return Err(SeatTokenError::Malformed("field too long"));
            }
            String::from_utf8(text.to_vec()).map_err(|_| SeatTokenError::Malformed("not UTF-8"))
        };
        let node = field()?;
        let room = field()?;
        let mode = field()?;
        let identity = field()?;
        if !rest.is_empty() {
            return Err(SeatTokenError::Malformed("trailing bytes"));
        }
        Ok(Self {
            identity,
            room,
            mode,
            node,
            expires_at_ms: u64::from_be_bytes(e),
            seat_id,
        })
    }

    /// Checks that the seat is for node `node` and, when the hello names a
    /// room, for that room.
    ///
    /// # Errors
    /// [`SeatTokenError::WrongNode`] or [`SeatTokenError::WrongRoom`].
    pub fn check(&self, node: &str, hello_room: Option<&str>) -> Result<(), SeatTokenError> {
        if self.node != node {
            return Err(SeatTokenError::WrongNode {
                token: self.node.clone(),
                this: node.to_owned(),
            });
        }
        if let Some(room) = hello_room
            && room != self.room
        {
            return Err(SeatTokenError::WrongRoom {
                token: self.room.clone(),
                hello: room.to_owned(),
            });
        }
        Ok(())
    }
}

/// Milliseconds since the Unix epoch, by the system clock (0 before 1970).
#[must_use]
pub fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn secret() -> FleetSecret {
        FleetSecret::new(b"0123456789abcdef-fleet".to_vec()).unwrap()
    }

    fn seat() -> Seat {
        Seat {
            identity: "alice".into(),
            room: "lobby".into(),
            mode: "ffa".into(),
            node: "node-a".into(),
            expires_at_ms: NOW + 30_000,
            seat_id: [3; 16],
        }
    }

    #[test]
    fn round_trip() {
        let token = seat().issue(&secret()).unwrap();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert!(
            token[TOKEN_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(Seat::verify(&secret(), &token, NOW).unwrap(), seat());
        assert_eq!(seat().check("node-a", Some("lobby")), Ok(()));
        assert_eq!(seat().check("node-a", None), Ok(()));
    }

    #[test]
    fn the_longest_seat_fits_the_documented_bounds() {
        let long = "x".repeat(MAX_FIELD_BYTES);
        let s = Seat {
            identity: long.clone(),
            room: long.clone(),
            mode: long.clone(),
            node: long,
            ..seat()
        };
        let token = s.issue(&secret()).unwrap();
        assert!(token.len() <= MAX_TOKEN_CHARS, "{}", token.len());
        assert!(MAX_TOKEN_CHARS <= tickwire_shared::Limits::default().max_seat_token_bytes);
        assert_eq!(Seat::verify(&secret(), &token, NOW).unwrap(), s);
        let too_long = Seat {
            identity: "x".repeat(MAX_FIELD_BYTES + 1),
            ..seat()
        };
        assert_eq!(
            too_long.issue(&secret()),
            Err(SeatTokenError::FieldTooLong { what: "identity" })
        );
    }

    #[test]
    fn a_forged_or_altered_token_is_refused() {
        let token = seat().issue(&secret()).unwrap();
        let other = FleetSecret::new(b"another fleet's secret!!".to_vec()).unwrap();
        assert_eq!(
            Seat::verify(&other, &token, NOW),
            Err(SeatTokenError::BadSignature)
        );
        // Every single-character change is caught (by the MAC or the decoder).
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for i in TOKEN_PREFIX.len()..token.len() {
            let c = token.as_bytes()[i] as char;
            let swap = alphabet.chars().find(|&a| a != c).unwrap();
            let mut altered = token.clone();
            altered.replace_range(i..=i, &swap.to_string());
            let err = Seat::verify(&secret(), &altered, NOW).unwrap_err();
            assert_eq!(
                err.reject_code(),
                RejectCode::SeatTokenInvalid,
                "at {i}: {err}"
            );
        }
        // A forger who re-signs with a guessed key gets nowhere either.
        let forged = Seat {
            identity: "admin".into(),
            ..seat()
        }
        .issue(&other)
        .unwrap();
        assert_eq!(
            Seat::verify(&secret(), &forged, NOW),
            Err(SeatTokenError::BadSignature)
        );
    }

    #[test]
    fn an_expired_token_is_refused() {
        let token = seat().issue(&secret()).unwrap();
        assert!(Seat::verify(&secret(), &token, NOW + 29_999).is_ok());
        let err = Seat::verify(&secret(), &token, NOW + 30_000).unwrap_err();
        assert_eq!(err, SeatTokenError::Expired { ago_ms: 0 });
        assert_eq!(err.reject_code(), RejectCode::SeatTokenExpired);
        assert_eq!(
            Seat::verify(&secret(), &token, NOW + 45_000),
            Err(SeatTokenError::Expired { ago_ms: 15_000 })
        );
    }

    #[test]
    fn a_token_for_another_node_or_room_is_misrouted() {
        let s = Seat::verify(&secret(), &seat().issue(&secret()).unwrap(), NOW).unwrap();
        let node = s.check("node-b", Some("lobby")).unwrap_err();
        assert_eq!(node.reject_code(), RejectCode::SeatTokenWrongNode);
        let room = s.check("node-a", Some("other")).unwrap_err();
        assert_eq!(room.reject_code(), RejectCode::SeatTokenWrongRoom);
    }

    #[test]
    fn malformed_tokens_are_refused_without_panicking() {
        let token = seat().issue(&secret()).unwrap();
        for bad in [
            "",
            "tw1.",
            "tw1",
            "tw2.AAAA",
            "tw1.!!!!",
            "tw1.AAAA",
            "tw1.A",
            &token[..token.len() - 1],
            &token[..TOKEN_PREFIX.len() + 10],
            &format!("{token}A"),
            &format!("tw1.{}", "A".repeat(MAX_TOKEN_CHARS)),
        ] {
            let err = Seat::verify(&secret(), bad, NOW).unwrap_err();
            assert_eq!(
                err.reject_code(),
                RejectCode::SeatTokenInvalid,
                "{bad:?}: {err}"
            );
        }
        // A payload that verifies but does not parse (signed by the fleet,
        // so this is about robustness, not security).
        for payload in [
            vec![0u8; FIXED_BYTES],
            [vec![0u8; FIXED_BYTES], vec![5, b'a']].concat(),
            [vec![0u8; FIXED_BYTES], vec![1, 0xff, 0, 0, 0]].concat(),
            [vec![0u8; FIXED_BYTES], vec![0, 0, 0, 0, 9]].concat(),
        ] {
            let mut mac = secret().mac();
            mac.update(&payload);
            let mut bytes = payload.clone();
            bytes.extend_from_slice(&mac.finalize().into_bytes());
            let t = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert!(matches!(
                Seat::verify(&secret(), &t, 0),
                Err(SeatTokenError::Malformed(_))
            ));
        }
    }

    #[test]
    fn secrets_are_long_enough_and_never_printed() {
        assert_eq!(
            FleetSecret::new(b"short".to_vec()),
            Err(SeatTokenError::WeakSecret { len: 5 })
        );
        let s: FleetSecret = "0123456789abcdef-printed?".parse().unwrap();
        assert_eq!(format!("{s:?}"), "FleetSecret(25 bytes)");
    }

    proptest! {
        #[test]
        fn random_strings_never_panic(s in "\\PC{0,700}") {
            prop_assert!(Seat::verify(&secret(), &s, NOW).is_err());
        }

        #[test]
        fn random_tw1_tokens_never_panic(s in "[A-Za-z0-9_-]{0,700}") {
            let t = format!("{TOKEN_PREFIX}{s}");
            prop_assert!(Seat::verify(&secret(), &t, NOW).is_err());
        }

        #[test]
        fn any_seat_round_trips(
            identity in "\\PC{0,30}",
            room in "[a-z0-9-]{1,32}",
            node in "[a-z0-9-]{1,40}",
            seat_id in any::<[u8; 16]>(),
            ttl in 1u64..100_000,
        ) {
            let s = Seat { identity, room, mode: "m".into(), node, expires_at_ms: NOW + ttl, seat_id };
            let token = s.issue(&secret()).unwrap();
            prop_assert_eq!(Seat::verify(&secret(), &token, NOW).unwrap(), s);
        }
    }
}
