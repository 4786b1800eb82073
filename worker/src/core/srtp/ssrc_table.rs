//! A bounded SSRC → state map, allocated once. A transport carries a handful of SSRCs (audio, video,
//! their RTX, a few simulcast layers), so the keys are searched linearly: one or two cache lines of
//! `u32`s and no hashing on every packet, which a hash map's probe (control bytes, then the bucket)
//! cannot beat at this size.

use super::SrtpError;

/// SSRCs a receiving context tracks unless told otherwise: an inbound transport carries a handful
/// of streams (audio, up to three simulcast layers and their RTX). The remote picks them, so the
/// bound is tight.
pub const DEFAULT_MAX_SSRCS: usize = 64;

/// SSRCs a sending context tracks: ours, one per consumer (and its RTX) on the transport, so a
/// peer in a large meeting has hundreds (a 50-person call: 49 × audio + video).
pub const MAX_SEND_SSRCS: usize = 1024;

pub(crate) struct SsrcTable<T> {
    /// Where the last lookup found its SSRC: a consumer's packets come in runs, so the next lookup
    /// is usually for the same one, however many the table holds.
    hint: usize,
    ssrcs: Vec<u32>,
    /// `states[i]` belongs to `ssrcs[i]`.
    states: Vec<T>,
    max: usize,
}

impl<T> SsrcTable<T> {
    /// An empty table that never holds more than `max` SSRCs. Room for a few is reserved now; the
    /// rest grows once, on first use.
    pub fn new(max: usize) -> Self {
        let reserve = max.min(8);
        Self { hint: 0, ssrcs: Vec::with_capacity(reserve), states: Vec::with_capacity(reserve), max }
    }

    fn position(&self, ssrc: u32) -> Option<usize> {
        if self.ssrcs.get(self.hint) == Some(&ssrc) {
            return Some(self.hint);
        }
        self.ssrcs.iter().position(|&s| s == ssrc)
    }

    pub fn get_mut(&mut self, ssrc: u32) -> Option<&mut T> {
        let i = self.position(ssrc)?;
        self.hint = i;
        Some(&mut self.states[i])
    }

    pub fn get(&self, ssrc: u32) -> Option<&T> {
        self.position(ssrc).map(|i| &self.states[i])
    }

    /// Whether a new SSRC could be added now.
    pub fn has_room(&self) -> bool {
        self.ssrcs.len() < self.max
    }

    /// Inserts or replaces; refuses a new SSRC beyond the bound.
    pub fn insert(&mut self, ssrc: u32, state: T) -> Result<(), SrtpError> {
        if let Some(i) = self.position(ssrc) {
            self.states[i] = state;
            return Ok(());
        }
        if !self.has_room() {
            return Err(SrtpError::TooManySsrcs);
        }
        self.ssrcs.push(ssrc);
        self.states.push(state);
        Ok(())
    }

    pub fn remove(&mut self, ssrc: u32) -> bool {
        let Some(i) = self.position(ssrc) else { return false };
        self.ssrcs.swap_remove(i);
        self.states.swap_remove(i);
        true
    }

    pub fn len(&self) -> usize {
        self.ssrcs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_state_per_ssrc_within_its_bound() {
        let mut t = SsrcTable::new(3);
        for ssrc in [7, 0, u32::MAX] {
            t.insert(ssrc, u64::from(ssrc) + 1).unwrap();
        }
        assert!(!t.has_room());
        assert_eq!(t.insert(8, 0), Err(SrtpError::TooManySsrcs));
        t.insert(0, 42).unwrap();
        assert_eq!(t.get(0), Some(&42), "replacing a known SSRC is always allowed");
        *t.get_mut(7).unwrap() += 1;
        assert_eq!(t.get(7), Some(&9));
        assert!(t.remove(7));
        assert!(!t.remove(7));
        assert_eq!((t.len(), t.get(7), t.get(u32::MAX)), (2, None, Some(&(u64::from(u32::MAX) + 1))));
        t.insert(8, 1).unwrap();
        assert_eq!(t.get(8), Some(&1));
    }

    #[test]
    fn a_sending_transport_holds_a_large_meetings_ssrcs() {
        let mut t = SsrcTable::new(MAX_SEND_SSRCS);
        for ssrc in 0..200u32 {
            t.insert(ssrc * 7919, ssrc).unwrap();
        }
        for ssrc in (0..200u32).rev() {
            assert_eq!(t.get_mut(ssrc * 7919).copied(), Some(ssrc));
            assert_eq!(t.get(ssrc * 7919).copied(), Some(ssrc), "found again through the hint");
        }
        assert!(t.remove(0));
        assert_eq!(t.get_mut(0), None);
        assert_eq!(t.get_mut(199 * 7919).copied(), Some(199), "moved by the removal, still found");
    }
}
