//! What the sender remembers of each packet it stamped with a transport-wide sequence number, so
//! that feedback (which carries only sequence numbers and arrival times) can be matched with send
//! times and sizes.
//!
//! A fixed ring indexed by the low bits of the unwrapped sequence number: no allocation after
//! construction, O(1) insert and lookup. Feedback for a sequence number never sent, or for one so
//! old that its slot has been reused, finds no entry and is ignored.

/// Slots in the ring. A power of two so the index is a mask; at 100 ms feedback intervals 1024
/// packets cover ~10k packets/s (~100 Mbit/s of 1200-byte packets, far above one subscriber's
/// downlink) with room for late feedback, at 32 KiB per transport (a thousand subscribers on a
/// worker are 32 MiB).
const CAPACITY: usize = 1024;
/// Marks a slot that never held a packet (no real unwrapped sequence number reaches it).
const EMPTY: i64 = i64::MIN;

/// What feedback has said about a packet so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reported {
    Not,
    Lost,
    Received,
}

/// One sent packet.
#[derive(Debug, Clone, Copy)]
pub(super) struct SentPacket {
    pub ext_seq: i64,
    /// Microseconds since the estimator's epoch (its first sent packet), on the sender's clock.
    pub send_us: i64,
    pub size: u32,
    /// The probe cluster this packet counts towards: its own cluster for padding, or the cluster
    /// being sent when a media packet went out between a cluster's packets.
    pub cluster: Option<u32>,
    pub reported: Reported,
}

#[derive(Debug)]
pub(super) struct SendHistory {
    slots: Box<[SentPacket]>,
    /// Unwrapped sequence number of the newest sent packet.
    newest: Option<i64>,
}

impl SendHistory {
    pub fn new() -> Self {
        let empty = SentPacket { ext_seq: EMPTY, send_us: 0, size: 0, cluster: None, reported: Reported::Not };
        Self { slots: vec![empty; CAPACITY].into_boxed_slice(), newest: None }
    }

    /// Records a sent packet and returns its unwrapped sequence number. Sequence numbers are
    /// unwrapped against the newest one, so a sender that skips a few (or reorders a few) is fine.
    pub fn on_sent(&mut self, seq: u16, send_us: i64, size: u32, cluster: Option<u32>) -> i64 {
        let ext = self.unwrap(seq).unwrap_or(i64::from(seq));
        if self.newest.is_none_or(|newest| ext > newest) {
            self.newest = Some(ext);
        }
        self.slots[slot(ext)] = SentPacket { ext_seq: ext, send_us, size, cluster, reported: Reported::Not };
        ext
    }

    /// The packet a feedback's sequence number refers to, if it was sent and is still remembered.
    pub fn get_mut(&mut self, seq: u16) -> Option<&mut SentPacket> {
        let ext = self.unwrap(seq)?;
        let newest = self.newest?;
        // Ahead of anything sent, or so far behind that the slot may describe a newer packet.
        if ext > newest || newest - ext >= CAPACITY as i64 {
            return None;
        }
        let entry = &mut self.slots[slot(ext)];
        (entry.ext_seq == ext).then_some(entry)
    }

    fn unwrap(&self, seq: u16) -> Option<i64> {
        let newest = self.newest?;
        let diff = seq.wrapping_sub(newest as u16) as i16;
        Some(newest + i64::from(diff))
    }
}

fn slot(ext: i64) -> usize {
    (ext as usize) & (CAPACITY - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bwe_history_unwraps_across_the_16_bit_boundary() {
        let mut history = SendHistory::new();
        let first = history.on_sent(65_534, 0, 100, None);
        let third = history.on_sent(0, 2, 100, None);
        assert_eq!(third - first, 2);
        assert!(history.get_mut(65_535).is_none(), "skipped by the sender, never sent");
        assert_eq!(history.get_mut(0).map(|p| p.send_us), Some(2));
        assert_eq!(history.get_mut(65_534).map(|p| p.send_us), Some(0));
    }

    #[test]
    fn bwe_history_ignores_unsent_and_forgotten_seqs() {
        let mut history = SendHistory::new();
        assert!(history.get_mut(7).is_none(), "nothing sent yet");
        for i in 0..(CAPACITY as u16 + 10) {
            history.on_sent(i, i64::from(i), 1200, None);
        }
        let newest = CAPACITY as u16 + 9;
        assert!(history.get_mut(newest + 1).is_none(), "never sent");
        assert!(history.get_mut(5).is_none(), "overwritten by a newer packet");
        assert!(history.get_mut(newest).is_some());
        assert!(history.get_mut(newest - (CAPACITY as u16 - 1)).is_some(), "oldest kept");
    }
}
