//! What a load-generator RTP payload carries after its codec header: a magic word, the sender's
//! packet counter and send time, then bytes derived from the counter so a receiver that decrypts
//! the packet can check it arrived intact.

use std::time::{Duration, Instant};

pub const MAGIC: u32 = 0x4f43_544f; // "OCTO"
pub const LEN: usize = 16;

/// Writes the probe and the fill into `out` (at least [`LEN`] bytes).
pub fn write(out: &mut [u8], counter: u32, sent: Duration) {
    out[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    out[4..8].copy_from_slice(&counter.to_be_bytes());
    out[8..16].copy_from_slice(&(sent.as_nanos() as u64).to_be_bytes());
    for (i, b) in out[LEN..].iter_mut().enumerate() {
        *b = fill_byte(counter, i);
    }
}

fn fill_byte(counter: u32, i: usize) -> u8 {
    (counter as usize).wrapping_mul(31).wrapping_add(i) as u8
}

/// The send time (as an `Instant` against `epoch`) of an intact probe; `None` if any byte is off.
pub fn read(payload: &[u8], epoch: Instant) -> Option<Instant> {
    if payload.len() < LEN || payload[0..4] != MAGIC.to_be_bytes() {
        return None;
    }
    let counter = u32::from_be_bytes(payload[4..8].try_into().ok()?);
    let nanos = u64::from_be_bytes(payload[8..16].try_into().ok()?);
    let intact = payload[LEN..].iter().enumerate().all(|(i, b)| *b == fill_byte(counter, i));
    intact.then(|| epoch + Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let epoch = Instant::now();
        let mut buf = [0u8; 100];
        write(&mut buf, 77, Duration::from_micros(1234));
        assert_eq!(read(&buf, epoch), Some(epoch + Duration::from_micros(1234)));
        buf[60] ^= 1;
        assert_eq!(read(&buf, epoch), None);
        assert_eq!(read(&buf[..8], epoch), None);
    }
}
