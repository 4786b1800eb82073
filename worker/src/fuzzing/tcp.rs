//! RFC 4571 framing (ICE-TCP): a byte stream cut into reads of fuzzer-chosen sizes.

use crate::core::tcp_framing::{FrameDecoder, encode};

/// The largest frame the worker accepts on a connection (its UDP packet size).
const MAX_FRAME: usize = 1500;

/// Decodes `data[1..]` in reads whose sizes come from `data[0]`, then checks what came out: every
/// packet within bounds, the same packets as one read of the whole stream gives, and re-encoded
/// they are exactly the bytes consumed (nothing invented, dropped or reordered).
pub fn tcp_framing(data: &[u8]) -> bool {
    let Some((&pattern, stream)) = data.split_first() else { return false };
    let chunked = decode(stream, |i| 1 + usize::from(pattern.rotate_left(i as u32 % 8)) % 97);
    let whole = decode(stream, |_| usize::MAX);
    assert_eq!(chunked.0, whole.0, "packets depend on how the stream was cut");
    assert_eq!(chunked.1, whole.1, "the error depends on how the stream was cut");
    let (packets, failed, buffered) = whole;
    let mut again = Vec::new();
    for p in &packets {
        assert!(!p.is_empty() && p.len() <= MAX_FRAME, "a {}-byte packet", p.len());
        encode(p, &mut again).expect("a decoded packet encodes");
    }
    assert!(again.len() <= stream.len() && stream[..again.len()] == again[..], "re-encoded packets differ");
    if !failed {
        assert_eq!(again.len() + buffered, stream.len(), "bytes lost between packets");
    }
    !packets.is_empty()
}

/// (packets, whether framing failed, bytes held for an incomplete packet), reading `stream` in
/// pieces of `size(i)` bytes for the i-th read.
fn decode(stream: &[u8], size: impl Fn(usize) -> usize) -> (Vec<Vec<u8>>, bool, usize) {
    let mut decoder = FrameDecoder::new(MAX_FRAME);
    let mut packets = Vec::new();
    let (mut at, mut i) = (0, 0);
    while at < stream.len() {
        let end = at.saturating_add(size(i)).min(stream.len());
        if decoder.feed(&stream[at..end], |p| packets.push(p.to_vec())).is_err() {
            return (packets, true, 0);
        }
        at = end;
        i += 1;
    }
    let buffered = decoder.buffered();
    (packets, false, buffered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let mut stream = vec![3u8];
        for p in [&b"\x00\x01\x00\x00stun"[..], b"\x80\x60rtp-packet", &[0x16; 300]] {
            encode(p, &mut stream).unwrap();
        }
        stream.extend_from_slice(&[0, 9, 1, 2]); // an incomplete frame at the end
        assert!(tcp_framing(&stream));
        assert!(!tcp_framing(&[7, 0xff, 0xff, 1, 2, 3]), "an oversized prefix: no packet");
        assert!(!tcp_framing(&[]));
    }
}
