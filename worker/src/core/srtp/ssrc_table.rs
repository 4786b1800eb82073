//! A bounded SSRC → state map, allocated once.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::SrtpError;

/// SSRCs a context tracks unless told otherwise: an inbound transport carries a handful of streams
/// (audio, up to three simulcast layers and their RTX), and a sending transport one per consumer.
pub const DEFAULT_MAX_SSRCS: usize = 64;

/// Multiplicative hash of a 32-bit SSRC. No flooding resistance is needed: entries are only ever
/// created for authenticated packets (or our own sends), and the table is bounded.
#[derive(Default)]
pub(crate) struct SsrcHasher(u64);

impl Hasher for SsrcHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        let h = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 29);
    }
}

pub(crate) struct SsrcTable<T> {
    map: HashMap<u32, T, BuildHasherDefault<SsrcHasher>>,
    max: usize,
}

impl<T> SsrcTable<T> {
    pub fn new(max: usize) -> Self {
        // Twice the bound: with at most `max` live entries the table never grows, and tombstones left
        // by removals are cleared by an in-place rehash rather than a reallocation.
        Self { map: HashMap::with_capacity_and_hasher(max.saturating_mul(2), Default::default()), max }
    }

    pub fn get_mut(&mut self, ssrc: u32) -> Option<&mut T> {
        self.map.get_mut(&ssrc)
    }

    pub fn get(&self, ssrc: u32) -> Option<&T> {
        self.map.get(&ssrc)
    }

    /// Whether a new SSRC could be added now.
    pub fn has_room(&self) -> bool {
        self.map.len() < self.max
    }

    /// Inserts or replaces; refuses a new SSRC beyond the bound.
    pub fn insert(&mut self, ssrc: u32, state: T) -> Result<(), SrtpError> {
        if let Some(slot) = self.map.get_mut(&ssrc) {
            *slot = state;
            return Ok(());
        }
        if !self.has_room() {
            return Err(SrtpError::TooManySsrcs);
        }
        self.map.insert(ssrc, state);
        Ok(())
    }

    pub fn remove(&mut self, ssrc: u32) -> bool {
        self.map.remove(&ssrc).is_some()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
}
