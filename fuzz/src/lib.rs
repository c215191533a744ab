//! Types and fixtures shared by the fuzz targets and the seed-corpus generator
//! (`examples/seed_corpus.rs`): a realistic game's wire types, a fixed
//! baseline snapshot, and the invariants every decoded snapshot must keep.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use serde::{Deserialize, Serialize};
use tickwire_shared::codec::{Reader, Writer};
use tickwire_shared::patch::{Patch, PatchError, Patcher};
use tickwire_shared::diff::Differ;
use tickwire_shared::quantize::{Angle16, QVec2};
use tickwire_shared::snapshot::{read_full, write_full};
use tickwire_shared::{GameProtocol, Limits, NetId, Snapshot, delta, protocol_hash};

/// The game hash the fuzzed server expects.
pub const GAME_HASH: u64 = protocol_hash("fuzz-arena", 1);

/// What an entity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Arbitrary)]
pub enum Kind {
    /// A player's avatar.
    Player,
    /// Something flying.
    Projectile,
    /// Something to pick up.
    Pickup,
}

/// A replicated entity (10 or 11 flattened fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ent {
    /// What it is.
    pub kind: Kind,
    /// Position in 1/16 units.
    pub pos: QVec2<16>,
    /// Heading.
    pub angle: Angle16,
    /// Hit points.
    pub health: u8,
    /// Display name.
    pub name: String,
    /// Owning client, if any.
    pub owner: Option<u32>,
    /// Velocity in 1/16 units per tick.
    pub vel: (i16, i16),
    /// Alive or dead.
    pub alive: bool,
}

/// A short arbitrary string (names stay under 40 bytes, as a game's would).
fn short_string(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let s: &str = u.arbitrary()?;
    let mut end = s.len().min(40);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Ok(s[..end].to_owned())
}

impl<'a> Arbitrary<'a> for Ent {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self {
            kind: u.arbitrary()?,
            pos: QVec2 {
                x: u.arbitrary()?,
                y: u.arbitrary()?,
            },
            angle: Angle16(u.arbitrary()?),
            health: u.arbitrary()?,
            name: short_string(u)?,
            owner: u.arbitrary()?,
            vel: u.arbitrary()?,
            alive: u.arbitrary()?,
        })
    }
}

/// One tick of input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Input {
    /// Button bits.
    pub buttons: u8,
    /// Aim angle.
    pub aim: Angle16,
    /// Stick x.
    pub move_x: i8,
    /// Stick y.
    pub move_y: i8,
    /// Locked target.
    pub target: Option<u32>,
}

/// A reliable event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// A chat line.
    Chat {
        /// Sender.
        from: u32,
        /// Text.
        text: String,
    },
    /// A kill.
    Kill {
        /// Killer.
        killer: NetId,
        /// Victim.
        victim: NetId,
        /// Weapon.
        weapon: u8,
    },
    /// Scores.
    Scores(Vec<(u32, i32)>),
    /// The round ended.
    RoundOver,
}

/// The fixed baseline: 15 entities with every layout (owner or not, names of
/// 0 to 40 bytes, multi-byte UTF-8) and ids from 0 to `u32::MAX`.
pub fn baseline() -> &'static Snapshot<Ent> {
    static BASE: OnceLock<Snapshot<Ent>> = OnceLock::new();
    BASE.get_or_init(|| {
        let ids = [
            0u32,
            1,
            2,
            7,
            200,
            250,
            251,
            252,
            600,
            65_535,
            65_536,
            70_000,
            1 << 24,
            u32::MAX - 1,
            u32::MAX,
        ];
        let kinds = [Kind::Player, Kind::Projectile, Kind::Pickup];
        let long = "x".repeat(40);
        let names = ["", "a", "bob", "Zoë", "😀 rocket", long.as_str()];
        let entities = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                let n = i as i32;
                let ent = Ent {
                    kind: kinds[i % 3],
                    pos: QVec2 {
                        x: n * 1000 - 7000,
                        y: if i % 4 == 0 { i32::MIN + n } else { -n * 33 },
                    },
                    angle: Angle16((i as u16).wrapping_mul(9000)),
                    health: (i * 37) as u8,
                    name: names[i % names.len()].to_owned(),
                    owner: if i % 2 == 0 { None } else { Some(id ^ 0x55) },
                    vel: ((n * 500 - 3000) as i16, (-n * 7) as i16),
                    alive: i % 3 != 0,
                };
                (NetId(id), ent)
            })
            .collect();
        Snapshot::from_vec(entities).expect("unique ids")
    })
}

/// Some views derived from `base`: moves, a despawn, spawns, a layout change,
/// renames. Used for seeds.
pub fn variations(base: &Snapshot<Ent>) -> Vec<Snapshot<Ent>> {
    let world: BTreeMap<NetId, Ent> = base.iter().map(|(id, e)| (id, e.clone())).collect();
    let mut out = Vec::new();
    let edit = |f: &dyn Fn(&mut BTreeMap<NetId, Ent>)| {
        let mut w = world.clone();
        f(&mut w);
        Snapshot::from_vec(w.into_iter().collect()).expect("unique ids")
    };
    out.push(edit(&|_| {}));
    out.push(edit(&|w| {
        for e in w.values_mut() {
            e.pos.x = e.pos.x.wrapping_add(3);
            e.pos.y = e.pos.y.wrapping_sub(2);
            e.angle = Angle16(e.angle.0.wrapping_add(100));
        }
    }));
    out.push(edit(&|w| {
        w.remove(&NetId(7));
        w.remove(&NetId(u32::MAX));
    }));
    out.push(edit(&|w| {
        let mut e = w[&NetId(1)].clone();
        e.name = "newcomer".into();
        w.insert(NetId(3), e.clone());
        w.insert(NetId(100_000), e);
    }));
    out.push(edit(&|w| {
        for (i, e) in w.values_mut().enumerate() {
            if i % 3 == 0 {
                e.owner = e.owner.map_or(Some(9), |_| None);
                e.name.push('!');
                e.kind = Kind::Pickup;
                e.alive = !e.alive;
                e.health = e.health.wrapping_sub(10);
            }
        }
    }));
    out.push(Snapshot::new());
    out
}

/// A baseline and a current view, built from fuzz input: sparse ids, then
/// per-entity keep / despawn / small move / layout change / rename / replace,
/// then spawns.
#[derive(Debug, Clone)]
pub struct DeltaCase {
    /// The baseline.
    pub base: Snapshot<Ent>,
    /// The current view.
    pub cur: Snapshot<Ent>,
}

fn next_id(u: &mut Unstructured<'_>, prev: Option<u32>) -> arbitrary::Result<Option<u32>> {
    let gap = match u.int_in_range(0u8..=3)? {
        0 => u.int_in_range(1..=3)?,
        1 => u.int_in_range(1..=300)?,
        2 => u.int_in_range(1..=70_000)?,
        _ => u.arbitrary::<u32>()?.max(1),
    };
    Ok(match prev {
        None => Some(gap - 1),
        Some(p) => p.checked_add(gap),
    })
}

impl<'a> Arbitrary<'a> for DeltaCase {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut base = BTreeMap::new();
        let mut id = None;
        let n = u.int_in_range(0..=64)?;
        for _ in 0..n {
            match next_id(u, id)? {
                Some(next) => id = Some(next),
                None => break,
            }
            base.insert(id.expect("set"), Ent::arbitrary(u)?);
        }
        let mut cur = BTreeMap::new();
        for (id, e) in &base {
            let mut e = e.clone();
            match u.int_in_range(0u8..=5)? {
                0 => {}
                1 => continue,
                2 => {
                    e.pos.x = e.pos.x.wrapping_add(i32::from(u.arbitrary::<i8>()?));
                    e.pos.y = e.pos.y.wrapping_add(i32::from(u.arbitrary::<i8>()?));
                    e.angle = Angle16(e.angle.0.wrapping_add(u.arbitrary::<i8>()? as u16));
                }
                3 => e.owner = e.owner.map_or(Some(u.arbitrary()?), |_| None),
                4 => e.name = short_string(u)?,
                _ => e = Ent::arbitrary(u)?,
            }
            cur.insert(*id, e);
        }
        let spawns = u.int_in_range(0..=16)?;
        for _ in 0..spawns {
            let id = u.arbitrary::<u32>()?;
            let e = Ent::arbitrary(u)?;
            if !base.contains_key(&id) {
                cur.insert(id, e);
            }
        }
        let snap = |m: BTreeMap<u32, Ent>| {
            Snapshot::from_vec(m.into_iter().map(|(id, e)| (NetId(id), e)).collect())
                .expect("map keys are unique")
        };
        Ok(Self {
            base: snap(base),
            cur: snap(cur),
        })
    }
}

/// The full-snapshot body of `s`.
pub fn full_body(s: &Snapshot<Ent>) -> Vec<u8> {
    let mut w = Writer::new();
    write_full(&mut w, s.iter()).expect("sorted ids and encodable states");
    w.into_vec()
}

/// Panics unless `s` is a valid snapshot: ids strictly increasing, within the
/// entity limit, and it survives a full and a delta round trip from the
/// fixed baseline.
pub fn check_snapshot(s: &Snapshot<Ent>, limits: &Limits) {
    assert!(
        s.as_slice().windows(2).all(|w| w[0].0 < w[1].0),
        "decoded snapshot ids are not strictly increasing"
    );
    assert!(s.len() <= limits.max_entities_per_snapshot);
    let body = full_body(s);
    let back: Snapshot<Ent> =
        read_full(&mut Reader::new(&body), limits).expect("a decoded snapshot re-decodes");
    assert_eq!(&back, s);
    let d = delta::diff(baseline(), s).expect("diff of decoded snapshots");
    assert_eq!(
        delta::apply(baseline(), &d, limits).as_ref(),
        Ok(s),
        "delta round trip of a decoded snapshot"
    );
}

// ---------------------------------------------------------------------------
// The `client_session` target's game.
// ---------------------------------------------------------------------------

/// The entity state of the `client_session` target's game: a few ints, an
/// option (its tag changes the field layout) and a string (a patch
/// reallocates it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// Position x.
    pub x: i32,
    /// Position y.
    pub y: i32,
    /// Hit points.
    pub hp: u16,
    /// Owning client, if any.
    pub owner: Option<u32>,
    /// Display name.
    pub name: String,
}

impl<'a> Arbitrary<'a> for Unit {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self {
            x: u.arbitrary()?,
            y: u.arbitrary()?,
            hp: u.arbitrary()?,
            owner: u.arbitrary()?,
            name: short_string(u)?,
        })
    }
}

/// The in-place patch path for [`Unit`], written as `#[derive(Patch)]` would
/// generate it: the fields in serde order.
impl Patch for Unit {
    fn field_count(&self) -> usize {
        3 + self.owner.field_count() + 1
    }

    fn patch(&mut self, p: &mut Patcher<'_, '_>) -> Result<(), PatchError> {
        p.i32(&mut self.x)?;
        p.i32(&mut self.y)?;
        p.u16(&mut self.hp)?;
        self.owner.patch(p)?;
        p.string(&mut self.name)
    }

    fn diff(&self, base: &Self, d: &mut Differ<'_>) -> Result<(), PatchError> {
        d.i32(self.x, base.x)?;
        d.i32(self.y, base.y)?;
        d.u16(self.hp, base.hp)?;
        self.owner.diff(&base.owner, d)?;
        d.string(&self.name, &base.name)
    }
}

/// The `client_session` game whose client world patches entities in place
/// ([`Unit`]'s [`Patch`] impl, falling back to serde on layout changes).
#[derive(Debug)]
pub struct PatchGame;

impl GameProtocol for PatchGame {
    const NAME: &'static str = "fuzz-units";
    const VERSION: u32 = 1;
    type Input = Input;
    type EntityState = Unit;
    type Event = Event;
    type Message = ();

    // The derived in-place paths and the field-by-field diff.
    tickwire_shared::derived_patch_hooks!();
}

/// The same game without the in-place path: every patch takes serde's.
#[derive(Debug)]
pub struct SerdeGame;

impl GameProtocol for SerdeGame {
    const NAME: &'static str = "fuzz-units";
    const VERSION: u32 = 1;
    type Input = Input;
    type EntityState = Unit;
    type Event = Event;
    type Message = ();
}

/// A view of up to 24 units with ids mostly below 40 (so later views reuse
/// them), sometimes anywhere.
pub fn unit_view(u: &mut Unstructured<'_>) -> arbitrary::Result<Snapshot<Unit>> {
    let mut m = BTreeMap::new();
    let n = u.int_in_range(0..=24)?;
    for _ in 0..n {
        let id = if u.ratio(1, 8)? {
            u.arbitrary()?
        } else {
            u.int_in_range(0..=40)?
        };
        m.insert(NetId(id), Unit::arbitrary(u)?);
    }
    Ok(Snapshot::from_vec(m.into_iter().collect()).expect("map keys are unique"))
}

/// A view derived from `base`: per unit keep / despawn / small move / owner
/// toggle (layout change) / rename / replace, then a few spawns.
pub fn derive_unit_view(
    u: &mut Unstructured<'_>,
    base: &Snapshot<Unit>,
) -> arbitrary::Result<Snapshot<Unit>> {
    let mut m = BTreeMap::new();
    for (id, e) in base.iter() {
        let mut e = e.clone();
        match u.int_in_range(0u8..=6)? {
            0 | 1 => {}
            2 => continue,
            3 => {
                e.x = e.x.wrapping_add(i32::from(u.arbitrary::<i8>()?));
                e.hp = e.hp.wrapping_sub(u16::from(u.arbitrary::<u8>()?));
            }
            4 => e.owner = e.owner.map_or(Some(u.arbitrary()?), |_| None),
            5 => e.name = short_string(u)?,
            _ => e = Unit::arbitrary(u)?,
        }
        m.insert(id, e);
    }
    for _ in 0..u.int_in_range(0..=4)? {
        let id = NetId(u.int_in_range(0..=48)?);
        let e = Unit::arbitrary(u)?;
        m.entry(id).or_insert(e);
    }
    Ok(Snapshot::from_vec(m.into_iter().collect()).expect("map keys are unique"))
}
