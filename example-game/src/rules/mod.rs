//! The game rules: pure, deterministic, wasm-safe. Time and seeds are
//! arguments; nothing here reads a clock or the OS.

pub mod bot;
pub(crate) mod collision;
pub(crate) mod combat;
pub(crate) mod movement;
pub(crate) mod names;
pub(crate) mod npc;
pub(crate) mod visibility;
pub(crate) mod world;

/// SplitMix64's finalizer: a cheap, well-mixed 64-bit hash. Every "random"
/// choice in the rules is `mix64` of a seed combined with ticks and ids.
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Hashes several words into one, order-sensitively.
pub(crate) fn hash_words(words: &[u64]) -> u64 {
    words.iter().fold(0, |h, &w| mix64(h ^ w))
}
