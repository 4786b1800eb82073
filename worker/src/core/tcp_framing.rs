//! RFC 4571 framing for ICE-TCP: every STUN, DTLS, RTP and RTCP packet on a TCP connection is
//! preceded by its length as two big-endian bytes. Sans-IO: bytes in, whole packets out, so that
//! split and coalesced reads are tested without a socket.

/// The length prefix.
pub const HEADER_LEN: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The peer announced a packet longer than any the worker accepts (no WebRTC packet is):
    /// garbage, or an attempt to make the worker buffer without bound.
    #[error("a {len}-byte frame is longer than the {max} bytes accepted")]
    Oversized { len: usize, max: usize },
    /// A zero-length frame carries no packet; no WebRTC stack sends one.
    #[error("an empty frame")]
    Empty,
    /// RFC 4571's prefix cannot say more than 65,535.
    #[error("a {0}-byte packet cannot be framed (at most 65535)")]
    TooLong(usize),
}

/// Cuts a connection's byte stream into packets. Only an incomplete packet is copied (kept until the
/// rest arrives); whole packets are handed out straight from the bytes read.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame: usize,
    partial: Vec<u8>,
}

impl FrameDecoder {
    /// Frames longer than `max_frame` are an error.
    pub fn new(max_frame: usize) -> Self {
        Self { max_frame, partial: Vec::with_capacity(HEADER_LEN + max_frame) }
    }

    /// Bytes held back waiting for the rest of their packet.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    /// Feeds bytes read from the connection; `on_packet` gets each complete packet in order. After
    /// an error the connection is beyond repair (the stream's boundaries are lost): close it.
    pub fn feed(&mut self, mut input: &[u8], mut on_packet: impl FnMut(&[u8])) -> Result<(), FramingError> {
        // First finish the packet a previous read left incomplete.
        if !self.partial.is_empty() {
            if self.partial.len() < HEADER_LEN {
                let take = (HEADER_LEN - self.partial.len()).min(input.len());
                self.partial.extend_from_slice(&input[..take]);
                input = &input[take..];
                if self.partial.len() < HEADER_LEN {
                    return Ok(());
                }
            }
            let len = self.check(u16::from_be_bytes([self.partial[0], self.partial[1]]))?;
            let have = self.partial.len() - HEADER_LEN;
            let take = (len - have).min(input.len());
            self.partial.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.partial.len() < HEADER_LEN + len {
                return Ok(());
            }
            on_packet(&self.partial[HEADER_LEN..]);
            self.partial.clear();
        }
        while input.len() >= HEADER_LEN {
            let len = self.check(u16::from_be_bytes([input[0], input[1]]))?;
            if input.len() < HEADER_LEN + len {
                break;
            }
            on_packet(&input[HEADER_LEN..HEADER_LEN + len]);
            input = &input[HEADER_LEN + len..];
        }
        self.partial.extend_from_slice(input);
        Ok(())
    }

    fn check(&self, len: u16) -> Result<usize, FramingError> {
        match usize::from(len) {
            0 => Err(FramingError::Empty),
            len if len > self.max_frame => Err(FramingError::Oversized { len, max: self.max_frame }),
            len => Ok(len),
        }
    }
}

/// Appends `packet` with its length prefix to `out`.
pub fn encode(packet: &[u8], out: &mut Vec<u8>) -> Result<(), FramingError> {
    let len = u16::try_from(packet.len()).map_err(|_| FramingError::TooLong(packet.len()))?;
    if len == 0 {
        return Err(FramingError::Empty);
    }
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(packet);
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn framed(packets: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in packets {
            encode(p, &mut out).unwrap();
        }
        out
    }

    fn decode_in_chunks(stream: &[u8], chunk: usize, max: usize) -> Result<Vec<Vec<u8>>, FramingError> {
        let mut d = FrameDecoder::new(max);
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            d.feed(piece, |p| got.push(p.to_vec()))?;
        }
        assert_eq!(d.buffered(), 0, "nothing left over after whole frames");
        Ok(got)
    }

    #[test]
    fn coalesced_frames_come_out_one_by_one_in_order() {
        let stream = framed(&[b"stun", &[0x80; 1200], b"dtls!"]);
        let got = decode_in_chunks(&stream, stream.len(), 1500).unwrap();
        assert_eq!(got, vec![b"stun".to_vec(), vec![0x80; 1200], b"dtls!".to_vec()]);
    }

    #[test]
    fn frames_split_anywhere_even_inside_the_prefix_come_out_whole() {
        let packets: Vec<Vec<u8>> = (1..40u8).map(|i| vec![i; usize::from(i) * 31]).collect();
        let refs: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
        let stream = framed(&refs);
        for chunk in [1, 2, 3, 7, 100, 1499, 4096] {
            assert_eq!(decode_in_chunks(&stream, chunk, 1500).unwrap(), packets, "chunks of {chunk}");
        }
    }

    #[test]
    fn an_oversized_frame_is_an_error_as_soon_as_its_prefix_is_read() {
        let mut d = FrameDecoder::new(1500);
        let mut n = 0;
        // The largest prefix there is: no waiting for 64 KiB of body before saying no.
        assert_eq!(d.feed(&[0xFF, 0xFF, 1, 2, 3], |_| n += 1), Err(FramingError::Oversized { len: 65_535, max: 1500 }));
        let mut d = FrameDecoder::new(1500);
        d.feed(&[0x05], |_| n += 1).unwrap();
        assert_eq!(d.feed(&[0xDD], |_| n += 1), Err(FramingError::Oversized { len: 0x05DD, max: 1500 }));
        assert_eq!(n, 0);
    }

    #[test]
    fn the_largest_accepted_frame_passes_and_one_byte_more_does_not() {
        let stream = framed(&[&[7; 1500]]);
        assert_eq!(decode_in_chunks(&stream, 10, 1500).unwrap(), vec![vec![7; 1500]]);
        assert!(matches!(decode_in_chunks(&framed(&[&[7; 1501]]), 10, 1500), Err(FramingError::Oversized { .. })));
    }

    #[test]
    fn an_empty_frame_is_an_error() {
        let mut d = FrameDecoder::new(1500);
        assert_eq!(d.feed(&[0, 0], |_| ()), Err(FramingError::Empty));
        assert_eq!(encode(&[], &mut Vec::new()), Err(FramingError::Empty));
    }

    #[test]
    fn a_packet_over_64_kib_cannot_be_framed() {
        let mut out = Vec::new();
        assert_eq!(encode(&vec![0; 70_000], &mut out), Err(FramingError::TooLong(70_000)));
        assert!(out.is_empty(), "nothing half-written");
        encode(&vec![0; 65_535], &mut out).unwrap();
        assert_eq!(&out[..2], &[0xFF, 0xFF]);
    }

    proptest! {
        /// Garbage never panics, and whatever comes out is a packet of an accepted length.
        #[test]
        fn garbage_in_any_chunking_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4000), chunk in 1usize..600) {
            let mut d = FrameDecoder::new(1500);
            for piece in bytes.chunks(chunk) {
                let mut ok = true;
                let r = d.feed(piece, |p| ok &= !p.is_empty() && p.len() <= 1500);
                prop_assert!(ok);
                if r.is_err() {
                    break;
                }
            }
            prop_assert!(d.buffered() <= HEADER_LEN + 1500);
        }

        /// Any packets, any chunking: out come the same packets.
        #[test]
        fn round_trip(packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..1500), 0..20), chunk in 1usize..3000) {
            let refs: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(decode_in_chunks(&framed(&refs), chunk, 1500).unwrap(), packets);
        }
    }
}
