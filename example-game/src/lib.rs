//! # arena: the tickwire example game
//!
//! A top-down multiplayer shooter. The server is authoritative; the browser
//! client predicts its own player with the very same movement code. This
//! library holds both halves of the contract:
//!
//! * the **wire types** ([`Arena`], [`PlayerInput`], [`EntityState`],
//!   [`ArenaEvent`]) and the game's constants;
//! * the **rules**: [`step_player`] (movement, shared by server and client
//!   prediction), the map ([`walls`], [`spawn_points`]), the authoritative
//!   simulation [`ArenaSim`], the [`bot`] AI, the [`in_view`] interest test
//!   and the wandering NPCs of load tests ([`Wanderers`]).
//!
//! Nothing here does IO, reads a clock or draws unseeded randomness: ticks,
//! `dt` and seeds are arguments, so the same inputs always give the same
//! world, natively and on `wasm32-unknown-unknown`.
//!
//! ```text
//!  client: PlayerInput ──▶ server: ArenaSim::apply_input ─┐
//!          (buttons + aim)                                 ▼
//!                           ArenaSim::step(tick, dt) ──▶ SimEvent (spawns, kills…)
//!                                                          │
//!           EntityState per SimId ◀── ArenaSim::entities() ┘ ──▶ snapshots
//! ```
//!
//! World coordinates: x grows to the right, y grows *down* (screen
//! convention), so [`buttons::UP`] moves towards −y. The arena spans
//! `(0, 0)..ARENA_SIZE`; an angle `a` points along `(cos a, sin a)`.
//!
//! ```
//! use arena::{ArenaSim, PlayerInput, SimEvent, buttons, PLAYER_SPEED, TICK_RATE};
//! use tickwire_shared::quantize::Angle16;
//!
//! let dt = 1.0 / f32::from(TICK_RATE);
//! let mut sim = ArenaSim::new(7);
//! let start = sim.add_player(1, "ada", 42);
//!
//! // Hold RIGHT and FIRE for one tick, aiming right.
//! let input = PlayerInput { buttons: buttons::RIGHT | buttons::FIRE, aim: Angle16(0) };
//! assert!(sim.apply_input(1, &input));
//! let events = sim.step(1, dt);
//!
//! assert!(events.iter().any(|e| matches!(e, SimEvent::Spawned(_))));
//! let moved = sim.player(1).unwrap().pos - start;
//! assert!((moved.x - PLAYER_SPEED * dt).abs() < 1e-3 && moved.y == 0.0);
//! ```
#![forbid(unsafe_code)]

use std::sync::Arc;

use glam::Vec2;
use serde::{Deserialize, Serialize};
use tickwire_derive::Patch;
use tickwire_shared::GameProtocol;
use tickwire_shared::quantize::{Angle16, QVec2};
use tickwire_shared::snapshot::NetId;

mod rules;

/// TypeScript declarations of the quantized types the arena's states use
/// (tsify declares the arena's own types from their Rust definitions).
#[cfg(feature = "js")]
#[wasm_bindgen::prelude::wasm_bindgen(typescript_custom_section)]
const TS_QUANTIZED: &str = r#"
/** A position in 1/16 world units per axis (tickwire's QVec2<16>): divide by 16 for world units. */
export interface QVec2 { x: number; y: number }
/** An angle in 1/65536 turns (tickwire's Angle16): times 2π/65536 is radians. */
export type Angle16 = number;
"#;

#[cfg(feature = "server")]
pub mod cli;
#[cfg(feature = "server")]
pub mod host;

pub use rules::bot;
pub use rules::collision::{Wall, position_is_free, spawn_points, walls};
pub use rules::movement::{movement_dir, step_player};
pub use rules::names::{MAX_CHAT_CHARS, MAX_NAME_CHARS, sanitize_chat, sanitize_name};
pub use rules::npc::{NPC_MAX_TURN, NPC_SPEED, Npc, Wanderers};
pub use rules::visibility::{VIEW_RADIUS, in_view, within};
pub use rules::world::{ArenaSim, MAX_MOVE_BUDGET, Player, Projectile, SimEvent, SimId};

/// The arena's [`GameProtocol`]: ties the wire types below to the framework.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Arena;

impl GameProtocol for Arena {
    const NAME: &'static str = "arena";
    /// 2: [`EntityKind::Npc`].
    const VERSION: u32 = 2;
    type Input = PlayerInput;
    type EntityState = EntityState;
    type Event = ArenaEvent;
    type Message = ();

    // Deltas and whole states applied in place, resyncs compared as they
    // are read, and the server's field-by-field diff: all through the
    // derived [`Patch`] on [`EntityState`].
    tickwire_shared::derived_patch_hooks!();
}

/// One tick of a player's input: which buttons are held and where they aim.
///
/// Only intent travels: the server applies its own fixed speed, so a client
/// cannot move faster than [`PLAYER_SPEED`] by sending anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "js", derive(tsify::Tsify))]
pub struct PlayerInput {
    /// A set of [`buttons`] bits; unknown bits are ignored.
    pub buttons: u8,
    /// The aim direction (any angle is valid).
    #[cfg_attr(feature = "js", tsify(type = "Angle16"))]
    pub aim: Angle16,
}

impl PlayerInput {
    /// The input with unknown button bits cleared.
    #[must_use]
    pub fn sanitized(self) -> Self {
        Self {
            buttons: self.buttons & buttons::ALL,
            aim: self.aim,
        }
    }

    /// Whether [`buttons::FIRE`] is held.
    #[must_use]
    pub fn fires(&self) -> bool {
        self.buttons & buttons::FIRE != 0
    }
}

/// The bits of [`PlayerInput::buttons`].
pub mod buttons {
    /// Move up (towards −y).
    pub const UP: u8 = 1;
    /// Move down (towards +y).
    pub const DOWN: u8 = 2;
    /// Move left (towards −x).
    pub const LEFT: u8 = 4;
    /// Move right (towards +x).
    pub const RIGHT: u8 = 8;
    /// Fire along the aim (rate limited to one shot per
    /// [`FIRE_INTERVAL_TICKS`](crate::FIRE_INTERVAL_TICKS)).
    pub const FIRE: u8 = 16;
    /// The four movement bits.
    pub const MOVE: u8 = UP | DOWN | LEFT | RIGHT;
    /// Every known bit; the server clears the others.
    pub const ALL: u8 = MOVE | FIRE;
}

/// What a replicated entity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Patch)]
#[cfg_attr(feature = "js", derive(tsify::Tsify))]
pub enum EntityKind {
    /// A player (human or bot).
    Player,
    /// A flying projectile.
    Projectile,
    /// A server-side wandering NPC ([`Wanderers`], for load tests); it
    /// neither fights nor collides.
    Npc,
}

/// The replicated state of one entity, as sent in snapshots.
///
/// Flat and quantized so that field-level deltas stay small: a moving player
/// costs its position (and aim) change, nothing else.
///
/// It derives [`Patch`], so a client applies a delta's patch to it in place
/// (see [`GameProtocol::patch_in_place`]).
///
/// `Serialize` is derived; `Deserialize` reads exactly the same fields
/// (through a private mirror struct with a derived impl) but gives every
/// empty name the shared [`no_name`] and builds other names straight from
/// the borrowed bytes, so decoding a state allocates nothing for an NPC or a
/// projectile and one `Arc` for a player.
#[derive(Clone, Debug, PartialEq, Serialize, Patch)]
#[cfg_attr(feature = "js", derive(tsify::Tsify))]
pub struct EntityState {
    /// Player or projectile.
    pub kind: EntityKind,
    /// Position in world units, 1/16 precision.
    #[cfg_attr(feature = "js", tsify(type = "QVec2"))]
    pub pos: QVec2<16>,
    /// Aim (players) or heading (projectiles).
    #[cfg_attr(feature = "js", tsify(type = "Angle16"))]
    pub angle: Angle16,
    /// `0..=MAX_HEALTH`; 0 = dead (waiting to respawn). Always 0 for
    /// projectiles.
    pub health: u8,
    /// Client id of the player (players: itself; projectiles: the shooter);
    /// bots use ids `>= BOT_ID_BASE`.
    pub owner: u32,
    /// The player's name; empty for projectiles. Shared (`Arc<str>`, a
    /// string on the wire): snapshots clone every state every tick, and a
    /// reference count is cheaper than a string copy.
    #[cfg_attr(feature = "js", tsify(type = "string"))]
    pub name: Arc<str>,
    /// Scoreboard: kills (players; 0 for projectiles).
    pub kills: u16,
    /// Scoreboard: deaths (players; 0 for projectiles).
    pub deaths: u16,
}

/// The empty name of projectiles and NPCs, shared (no allocation per state).
#[must_use]
pub fn no_name() -> Arc<str> {
    static EMPTY: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from(""));
    Arc::clone(&EMPTY)
}

/// What [`EntityState`]'s derived `Serialize` writes, field for field (same
/// names, types and order), read with a derived `Deserialize`; only the name
/// goes through [`SharedName`]. The wire is unchanged.
#[derive(Deserialize)]
#[serde(rename = "EntityState")]
struct EntityStateWire {
    kind: EntityKind,
    pos: QVec2<16>,
    angle: Angle16,
    health: u8,
    owner: u32,
    name: SharedName,
    kills: u16,
    deaths: u16,
}

impl<'de> Deserialize<'de> for EntityState {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Destructured in full: a field added to one struct and not to the
        // other does not compile.
        let EntityStateWire {
            kind,
            pos,
            angle,
            health,
            owner,
            name: SharedName(name),
            kills,
            deaths,
        } = EntityStateWire::deserialize(d)?;
        Ok(Self {
            kind,
            pos,
            angle,
            health,
            owner,
            name,
            kills,
            deaths,
        })
    }
}

/// An `Arc<str>` read as a string (as serde reads `Arc<str>`), without the
/// intermediate `String`: shared when empty, else the process's one copy of
/// the name ([`tickwire_shared::interned::shared_str`], as the patch path
/// decodes it).
struct SharedName(Arc<str>);

impl<'de> Deserialize<'de> for SharedName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SharedName;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SharedName, E> {
                Ok(SharedName(if v.is_empty() {
                    no_name()
                } else {
                    tickwire_shared::interned::shared_str(v)
                }))
            }

            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<SharedName, E> {
                match std::str::from_utf8(v) {
                    Ok(s) => self.visit_str(s),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Bytes(v), &self)),
                }
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// A reliable game event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "js", derive(tsify::Tsify))]
pub enum ArenaEvent {
    /// Sent to a client after join/respawn-resume: its player entity.
    YouAre {
        #[cfg_attr(feature = "js", tsify(type = "number"))]
        /// The network id of the client's player entity.
        entity: NetId,
    },
    /// Someone was killed (kill feed).
    Killed {
        /// The shooter's client id.
        killer: u32,
        /// The victim's client id.
        victim: u32,
        /// The shooter's name (empty when the shooter has left).
        killer_name: String,
        /// The victim's name.
        victim_name: String,
    },
    /// A dead player is back in the game.
    Respawned {
        /// The player's client id.
        client: u32,
    },
    /// A chat line (see [`sanitize_chat`]).
    Chat {
        /// The sender's name.
        from: String,
        /// The message.
        text: String,
    },
}

/// Simulation ticks per second.
pub const TICK_RATE: u16 = 60;
/// The arena's extent in world units: it spans `(0, 0)..ARENA_SIZE`,
/// boundary walls included.
pub const ARENA_SIZE: Vec2 = Vec2::new(1600.0, 1000.0);
/// A player's collision radius, in world units.
pub const PLAYER_RADIUS: f32 = 16.0;
/// A player's speed, in world units per second (diagonals included).
pub const PLAYER_SPEED: f32 = 260.0;
/// A projectile's speed, in world units per second.
pub const PROJECTILE_SPEED: f32 = 900.0;
/// A projectile's collision radius, in world units.
pub const PROJECTILE_RADIUS: f32 = 4.0;
/// A projectile flies at most this many ticks (1.5 s) before it fizzles out.
pub const PROJECTILE_LIFETIME_TICKS: u32 = 90;
/// Minimum ticks between two shots of one player (5 shots per second).
pub const FIRE_INTERVAL_TICKS: u32 = 12;
/// A fresh player's health.
pub const MAX_HEALTH: u8 = 100;
/// Health one projectile takes (five hits kill).
pub const PROJECTILE_DAMAGE: u8 = 20;
/// Ticks a dead player waits before respawning (3 s).
pub const RESPAWN_TICKS: u32 = 180;
/// Client ids from here up are bots.
pub const BOT_ID_BASE: u32 = 1_000_000;

/// Whether `client` is a bot id (`>= BOT_ID_BASE`).
#[must_use]
pub const fn is_bot(client: u32) -> bool {
    client >= BOT_ID_BASE
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_shared::patch::PatchError;
    use tickwire_shared::{Limits, Reader, Writer, protocol_hash};

    #[test]
    fn protocol_identity() {
        assert_eq!(Arena::NAME, "arena");
        assert_eq!(Arena::VERSION, 2);
        assert_eq!(Arena::PROTOCOL_HASH, protocol_hash("arena", 2));
    }

    #[test]
    fn wire_types_round_trip_through_the_codec() {
        let state = EntityState {
            kind: EntityKind::Player,
            pos: QVec2::from_vec2(Vec2::new(812.5, 33.0625)),
            angle: Angle16(12_345),
            health: MAX_HEALTH,
            owner: BOT_ID_BASE + 3,
            name: "bot-3".into(),
            kills: 7,
            deaths: 2,
        };
        let input = PlayerInput {
            buttons: buttons::UP | buttons::FIRE,
            aim: Angle16(65_535),
        };
        let events = vec![
            ArenaEvent::YouAre { entity: NetId(9) },
            ArenaEvent::Killed {
                killer: 1,
                victim: 2,
                killer_name: "a".into(),
                victim_name: "b".into(),
            },
            ArenaEvent::Respawned { client: 2 },
            ArenaEvent::Chat {
                from: "a".into(),
                text: "gg".into(),
            },
        ];
        let mut w = Writer::new();
        w.value("state", &state).unwrap();
        w.value("input", &input).unwrap();
        w.value("events", &events).unwrap();
        let bytes = w.into_vec();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.value::<EntityState>("state").unwrap(), state);
        assert_eq!(r.value::<PlayerInput>("input").unwrap(), input);
        assert_eq!(r.value::<Vec<ArenaEvent>>("events").unwrap(), events);
        r.finish().unwrap();
    }

    #[test]
    fn decoded_empty_names_are_shared_and_other_names_are_kept() {
        let mut state = EntityState {
            kind: EntityKind::Npc,
            pos: QVec2 { x: -3, y: 70_000 },
            angle: Angle16(1),
            health: 1,
            owner: 0,
            name: no_name(),
            kills: 0,
            deaths: u16::MAX,
        };
        let mut w = Writer::new();
        w.value("npc", &state).unwrap();
        state.name = "zoë".into();
        w.value("player", &state).unwrap();
        let bytes = w.into_vec();
        let mut r = Reader::new(&bytes);
        let npc = r.value::<EntityState>("npc").unwrap();
        assert!(Arc::ptr_eq(&npc.name, &no_name()));
        assert_eq!(r.value::<EntityState>("player").unwrap(), state);
        r.finish().unwrap();

        // Not UTF-8: refused, as serde's own `Arc<str>` refuses it.
        let at = bytes.len() - 2 - 1 - "zoë".len();
        let mut bad = bytes.clone();
        bad[at + 1] = 0xff;
        let mut r = Reader::new(&bad);
        r.value::<EntityState>("npc").unwrap();
        assert!(r.value::<EntityState>("player").is_err());
    }

    #[test]
    fn sanitized_input_keeps_only_known_buttons() {
        let input = PlayerInput {
            buttons: 0xff,
            aim: Angle16(5),
        };
        assert_eq!(input.sanitized().buttons, buttons::ALL);
        assert_eq!(input.sanitized().aim, Angle16(5));
        assert!(input.fires());
        assert!(!PlayerInput::default().fires());
    }

    mod patch {
        //! The derived in-place patch of [`EntityState`] against the serde
        //! path, on real deltas between random valid states and on mutated
        //! patch bytes.
        use proptest::prelude::*;
        use tickwire_shared::delta;
        use tickwire_shared::patch::{PatchScratch, patch_with_serde};

        use super::*;

        fn kind() -> impl Strategy<Value = EntityKind> {
            prop_oneof![
                Just(EntityKind::Player),
                Just(EntityKind::Projectile),
                Just(EntityKind::Npc),
            ]
        }

        prop_compose! {
            fn state()(
                kind in kind(),
                x in 0.0f32..ARENA_SIZE.x,
                y in 0.0f32..ARENA_SIZE.y,
                angle in any::<u16>(),
                health in 0..=MAX_HEALTH,
                owner in prop_oneof![1..100u32, BOT_ID_BASE..BOT_ID_BASE + 100],
                name in prop_oneof![Just(String::new()), ".{1,20}".prop_map(|n| sanitize_name(&n))],
                kills in any::<u16>(),
                deaths in any::<u16>(),
            ) -> EntityState {
                EntityState {
                    kind,
                    pos: QVec2::from_vec2(Vec2::new(x, y)),
                    angle: Angle16(angle),
                    health,
                    owner,
                    name: name.into(),
                    kills,
                    deaths,
                }
            }
        }

        /// `base` with one to three fields (bits of `mask`) from `other`.
        fn blend(base: &EntityState, other: &EntityState, mask: u8) -> EntityState {
            let mut s = base.clone();
            let pick = |i: u8| mask & (1 << i) != 0;
            if pick(0) {
                s.kind = other.kind;
            }
            if pick(1) {
                s.pos.x = other.pos.x;
            }
            if pick(2) {
                s.pos.y = other.pos.y;
            }
            if pick(3) {
                s.angle = other.angle;
            }
            if pick(4) {
                s.health = other.health;
            }
            if pick(5) {
                s.owner = other.owner;
            }
            if pick(6) {
                s.name = other.name.clone();
            }
            if pick(7) {
                (s.kills, s.deaths) = (other.kills, other.deaths);
            }
            s
        }

        fn fast(base: &EntityState, patch: &[u8]) -> Result<(EntityState, usize), PatchError> {
            let mut s = base.clone();
            let mut r = Reader::new(patch);
            Arena::patch_in_place(&mut s, &mut r, &Limits::default())?;
            Ok((s, r.position()))
        }

        fn slow(
            base: &EntityState,
            patch: &[u8],
        ) -> Result<(EntityState, usize), tickwire_shared::DecodeError> {
            let mut s = base.clone();
            let mut r = Reader::new(patch);
            patch_with_serde(
                &mut s,
                &mut r,
                &Limits::default(),
                &mut PatchScratch::default(),
            )?;
            Ok((s, r.position()))
        }

        /// The patch of the single entity of the delta `base` → `cur`, if
        /// it was sent as one.
        fn patch_bytes(base: &EntityState, cur: &EntityState) -> Option<Vec<u8>> {
            use tickwire_shared::Snapshot;
            let b = Snapshot::from_vec(vec![(NetId(1), base.clone())]).unwrap();
            let c = Snapshot::from_vec(vec![(NetId(1), cur.clone())]).unwrap();
            let d = delta::diff(&b, &c).unwrap();
            (d[..3] == [0, 1, 1]).then(|| d[3..d.len() - 1].to_vec())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            /// Every real patch of an arena state applies in place, to the
            /// state the serde path builds; except a change of
            /// [`EntityKind`] (a patched variant index, which the arena
            /// never sends: an entity keeps its kind), where the fast path
            /// asks for the serde path.
            #[test]
            fn real_patches_apply_in_place_like_serde(
                base in state(),
                other in state(),
                bits in proptest::collection::vec(0..8u8, 1..4),
            ) {
                let cur = blend(&base, &other, bits.iter().fold(0, |m, i| m | 1 << i));
                if let Some(patch) = patch_bytes(&base, &cur) {
                    let (s, m) = slow(&base, &patch).unwrap();
                    prop_assert_eq!(&s, &cur);
                    prop_assert_eq!(m, patch.len());
                    match fast(&base, &patch) {
                        Ok((f, n)) => {
                            prop_assert_eq!(&f, &cur);
                            prop_assert_eq!(n, patch.len());
                        }
                        Err(PatchError::Layout) => prop_assert_ne!(base.kind, cur.kind),
                        Err(e) => prop_assert!(false, "fast path refused a real patch: {e}"),
                    }
                }
            }

            /// The hand-written `Deserialize` reads what the derived
            /// `Serialize` writes.
            #[test]
            fn states_round_trip_through_the_codec(state in state()) {
                let mut w = Writer::new();
                w.value("state", &state).unwrap();
                let bytes = w.into_vec();
                let mut r = Reader::new(&bytes);
                prop_assert_eq!(r.value::<EntityState>("state").unwrap(), state);
                prop_assert!(r.finish().is_ok());
            }

            /// Mutated patches: no panic; a patch the fast path accepts is
            /// accepted by the serde path with the same result and length,
            /// and one it finds malformed is refused by the serde path.
            #[test]
            fn mutated_patches_never_diverge(
                base in state(),
                other in state(),
                bits in proptest::collection::vec(0..8u8, 1..4),
                edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0..3u8), 1..4),
            ) {
                let cur = blend(&base, &other, bits.iter().fold(0, |m, i| m | 1 << i));
                let Some(mut patch) = patch_bytes(&base, &cur) else {
                    return Ok(());
                };
                for (at, byte, op) in edits {
                    match op {
                        0 if !patch.is_empty() => {
                            let i = at % patch.len();
                            patch[i] ^= byte.max(1);
                        }
                        1 => patch.truncate(at % (patch.len() + 1)),
                        _ => patch.insert(at % (patch.len() + 1), byte),
                    }
                    match (fast(&base, &patch), slow(&base, &patch)) {
                        (Ok(f), Ok(s)) => prop_assert_eq!(f, s),
                        (Ok(f), Err(e)) => prop_assert!(false, "fast accepted {f:?}, serde: {e}"),
                        (Err(PatchError::Decode(e)), Ok(s)) => {
                            prop_assert!(false, "fast refused ({e}), serde accepted {s:?}")
                        }
                        (Err(_), _) => {}
                    }
                }
            }
        }

        #[test]
        fn a_name_change_patches_in_place() {
            let base = EntityState {
                kind: EntityKind::Player,
                pos: QVec2::from_vec2(Vec2::new(100.0, 200.0)),
                angle: Angle16(7),
                health: MAX_HEALTH,
                owner: 3,
                name: "ann".into(),
                kills: 1,
                deaths: 2,
            };
            let cur = EntityState {
                name: "annabel".into(),
                kills: 2,
                ..base.clone()
            };
            let patch = patch_bytes(&base, &cur).unwrap();
            assert_eq!(fast(&base, &patch).unwrap(), (cur.clone(), patch.len()));
            assert_eq!(slow(&base, &patch).unwrap(), (cur, patch.len()));
        }
    }

    #[test]
    fn bot_ids() {
        assert!(!is_bot(BOT_ID_BASE - 1));
        assert!(is_bot(BOT_ID_BASE));
    }
}
