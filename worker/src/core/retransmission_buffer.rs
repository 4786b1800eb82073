//! The last packets of a producer's video stream, kept once per producer (not per consumer) so any
//! consumer's NACK can be answered. Slots are allocated on first use and then reused.

use super::transmit::BUFFER_SIZE;

/// Packets kept: at 30 fps and ~10 packets a frame, about 3 s of 1 Mbit/s video.
pub const RETRANSMISSION_SLOTS: usize = 1024;

#[derive(Default)]
struct Slot {
    seq: u16,
    valid: bool,
    data: Vec<u8>,
}

#[derive(Default)]
pub struct RetransmissionBuffer {
    slots: Vec<Slot>,
}

impl RetransmissionBuffer {
    pub fn with_slots(n: usize) -> Self {
        Self { slots: (0..n).map(|_| Slot::default()).collect() }
    }

    /// Keeps a copy of the packet with sequence number `seq`, replacing the one `n` packets older.
    pub fn store(&mut self, seq: u16, packet: &[u8]) {
        if self.slots.is_empty() || packet.len() > BUFFER_SIZE {
            return;
        }
        let len = self.slots.len();
        let slot = &mut self.slots[usize::from(seq) % len];
        if slot.data.capacity() < BUFFER_SIZE {
            slot.data = Vec::with_capacity(BUFFER_SIZE);
        }
        slot.data.clear();
        slot.data.extend_from_slice(packet);
        slot.seq = seq;
        slot.valid = true;
    }

    pub fn get(&self, seq: u16) -> Option<&[u8]> {
        if self.slots.is_empty() {
            return None;
        }
        let slot = &self.slots[usize::from(seq) % self.slots.len()];
        (slot.valid && slot.seq == seq).then_some(slot.data.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_copy_per_slot() {
        let mut b = RetransmissionBuffer::with_slots(4);
        b.store(1, b"one");
        b.store(2, b"two");
        assert_eq!(b.get(1), Some(&b"one"[..]));
        b.store(5, b"five");
        assert_eq!(b.get(1), None, "slot reused by a newer packet");
        assert_eq!(b.get(5), Some(&b"five"[..]));
        assert_eq!(b.get(3), None);
        assert_eq!(RetransmissionBuffer::default().get(1), None);
    }
}
