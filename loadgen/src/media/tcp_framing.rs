//! RFC 4571 framing, as ICE-TCP (RFC 6544) carries STUN, DTLS, RTP and RTCP: every packet on the
//! byte stream is a 2-byte big-endian length and then the packet.
//!
//! Incoming, [`Frames`] cuts the bytes of one read into packets in place, in the caller's read
//! buffer (a packet is then decrypted where it lies, as a datagram is), and [`FrameDecoder`] keeps
//! across reads only the frame a read ended inside. Outgoing, [`FrameEncoder`] is the connection's
//! bounded write buffer: whole frames in, as many bytes out as the socket takes. Neither allocates
//! after it is made.

use std::io::{self, Write};

/// The 2-byte big-endian length in front of every packet.
pub const LENGTH_PREFIX: usize = 2;
/// The longest packet in a frame: the worker closes a connection whose frame is longer, so this
/// client neither sends nor accepts one.
pub const MAX_PACKET: usize = 1500;
/// The longest frame, and so the most a read can end inside of.
pub const MAX_FRAME: usize = LENGTH_PREFIX + MAX_PACKET;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A length prefix above [`MAX_PACKET`]: the stream is not (or no longer) RFC 4571 frames.
    #[error("a frame of {0} bytes is longer than {MAX_PACKET}")]
    TooLong(usize),
    /// The write buffer has no room for the frame: the packet is dropped whole, so the stream
    /// stays framed.
    #[error("the write buffer is full")]
    Full,
}

/// The incomplete frame the last read ended with.
pub struct FrameDecoder {
    kept: [u8; MAX_FRAME],
    len: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    pub const fn new() -> Self {
        Self { kept: [0; MAX_FRAME], len: 0 }
    }

    /// Copies the kept bytes to the front of `buf` and returns their count: the next read goes
    /// after them. They stay kept until [`Frames::keep_rest`] replaces them, so a read that brings
    /// nothing loses nothing. `buf` must be longer than [`MAX_FRAME`].
    pub fn resume(&self, buf: &mut [u8]) -> usize {
        buf[..self.len].copy_from_slice(&self.kept[..self.len]);
        self.len
    }

    fn keep(&mut self, rest: &[u8]) {
        // Shorter than a frame by construction (see `Frames::next`); cut rather than panic.
        let len = rest.len().min(MAX_FRAME);
        self.kept[..len].copy_from_slice(&rest[..len]);
        self.len = len;
    }
}

/// The whole frames of a read buffer, each packet handed out in place (mutable: SRTP decrypts
/// where the packet lies). Once one is too long the rest of the buffer is dropped.
pub struct Frames<'a> {
    rest: &'a mut [u8],
}

impl<'a> Frames<'a> {
    /// `buf`: the kept bytes [`FrameDecoder::resume`] put at its front and the read's after them.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { rest: buf }
    }

    /// Keeps what follows the last whole frame (an incomplete one) for the next read.
    pub fn keep_rest(self, decoder: &mut FrameDecoder) {
        decoder.keep(self.rest);
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<&'a mut [u8], FramingError>;

    fn next(&mut self) -> Option<Self::Item> {
        let prefix = self.rest.get(..LENGTH_PREFIX)?;
        let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
        if len > MAX_PACKET {
            self.rest = &mut [];
            return Some(Err(FramingError::TooLong(len)));
        }
        if self.rest.len() < LENGTH_PREFIX + len {
            // Incomplete, so shorter than LENGTH_PREFIX + MAX_PACKET: what `keep_rest` keeps.
            return None;
        }
        let (frame, rest) = std::mem::take(&mut self.rest).split_at_mut(LENGTH_PREFIX + len);
        self.rest = rest;
        Some(Ok(&mut frame[LENGTH_PREFIX..]))
    }
}

/// A bounded write buffer of frames, made once at its full size.
pub struct FrameEncoder {
    buf: Box<[u8]>,
    /// The unwritten bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

impl FrameEncoder {
    pub fn with_capacity(bytes: usize) -> Self {
        Self { buf: vec![0; bytes.max(MAX_FRAME)].into_boxed_slice(), start: 0, end: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Bytes waiting for the socket.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Appends `packet` as one frame, or drops it whole if it does not fit.
    pub fn push(&mut self, packet: &[u8]) -> Result<(), FramingError> {
        let len = u16::try_from(packet.len()).ok().filter(|&l| usize::from(l) <= MAX_PACKET);
        let Some(len) = len else { return Err(FramingError::TooLong(packet.len())) };
        let frame = LENGTH_PREFIX + packet.len();
        if self.buf.len() - self.end < frame && self.start > 0 {
            // Room is at the front, behind what the socket already took.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < frame {
            return Err(FramingError::Full);
        }
        self.buf[self.end..self.end + LENGTH_PREFIX].copy_from_slice(&len.to_be_bytes());
        self.buf[self.end + LENGTH_PREFIX..self.end + frame].copy_from_slice(packet);
        self.end += frame;
        Ok(())
    }

    /// Writes until the buffer is empty or the writer would block (a partial write keeps the
    /// rest, to go on where the socket stopped); any other error is the caller's to act on.
    pub fn write_to(&mut self, w: &mut impl Write) -> io::Result<()> {
        while self.start < self.end {
            match w.write(&self.buf[self.start..self.end]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.start += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        self.start = 0;
        self.end = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(packet: &[u8]) -> Vec<u8> {
        let mut out = (packet.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(packet);
        out
    }

    /// Feeds `stream` to a decoder in reads of the given sizes (the last one repeated), as a
    /// socket would hand it over; returns every packet, or the first error.
    fn decode(stream: &[u8], read_sizes: &[usize]) -> Result<Vec<Vec<u8>>, FramingError> {
        let mut decoder = FrameDecoder::new();
        let mut buf = vec![0u8; 4 * MAX_FRAME];
        let mut packets = Vec::new();
        let mut at = 0;
        let mut sizes = read_sizes.iter().copied().chain(std::iter::repeat(*read_sizes.last().unwrap()));
        while at < stream.len() {
            let kept = decoder.resume(&mut buf);
            let n = sizes.next().unwrap().min(stream.len() - at).min(buf.len() - kept);
            buf[kept..kept + n].copy_from_slice(&stream[at..at + n]);
            at += n;
            let mut frames = Frames::new(&mut buf[..kept + n]);
            for packet in frames.by_ref() {
                packets.push(packet?.to_vec());
            }
            frames.keep_rest(&mut decoder);
        }
        Ok(packets)
    }

    fn packet(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    #[test]
    fn several_frames_in_one_read() {
        let packets = [packet(20, 1), packet(1200, 2), packet(100, 3)];
        let stream: Vec<u8> = packets.iter().flat_map(|p| frame(p)).collect();
        assert_eq!(decode(&stream, &[stream.len()]).unwrap(), packets);
    }

    #[test]
    fn frames_split_across_reads_anywhere() {
        let packets = [packet(1500, 1), packet(1, 2), packet(700, 3), packet(1200, 4)];
        let stream: Vec<u8> = packets.iter().flat_map(|p| frame(p)).collect();
        // One byte at a time (the length prefix itself split), and sizes that cut frames at
        // every kind of place, including reads that end right after a prefix.
        for sizes in [&[1][..], &[2], &[3], &[1501, 1], &[1502, 3, 700], &[7, 4000], &[1000]] {
            assert_eq!(decode(&stream, sizes).unwrap(), packets, "reads of {sizes:?}");
        }
    }

    #[test]
    fn a_read_that_brings_nothing_keeps_the_partial_frame() {
        let mut decoder = FrameDecoder::new();
        let mut buf = vec![0u8; 2 * MAX_FRAME];
        let stream = frame(&packet(10, 9));
        buf[..5].copy_from_slice(&stream[..5]);
        let mut frames = Frames::new(&mut buf[..5]);
        assert!(frames.next().is_none());
        frames.keep_rest(&mut decoder);
        // A read that would block: resumed, nothing added, not re-kept.
        assert_eq!(decoder.resume(&mut buf), 5);
        let kept = decoder.resume(&mut buf);
        buf[kept..kept + stream.len() - 5].copy_from_slice(&stream[5..]);
        let got: Vec<_> = Frames::new(&mut buf[..stream.len()]).map(|p| p.unwrap().to_vec()).collect();
        assert_eq!(got, vec![packet(10, 9)]);
    }

    #[test]
    fn a_zero_length_frame_is_an_empty_packet() {
        let stream: Vec<u8> = [frame(&[]), frame(&[0x80, 1]), frame(&[])].concat();
        assert_eq!(decode(&stream, &[1]).unwrap(), vec![vec![], vec![0x80, 1], vec![]]);
    }

    #[test]
    fn an_over_long_frame_is_an_error() {
        let stream: Vec<u8> = [frame(&packet(30, 1)), 1501u16.to_be_bytes().to_vec(), packet(1501, 2)].concat();
        assert_eq!(decode(&stream, &[stream.len()]), Err(FramingError::TooLong(1501)));
        // Known from its prefix alone, before the rest arrives.
        assert_eq!(decode(&stream[..34], &[1]), Err(FramingError::TooLong(1501)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        // An HTTP request where frames belong: "GE" reads as a length of 18245.
        assert_eq!(decode(b"GET / HTTP/1.1\r\n\r\n", &[64]), Err(FramingError::TooLong(0x4745)));
        assert_eq!(decode(&[0xff; 3000], &[3]), Err(FramingError::TooLong(0xffff)));
    }

    /// A socket that takes `accept` bytes per write, then would block once every `block_every`.
    struct Socket {
        written: Vec<u8>,
        accept: usize,
        calls: usize,
        block_every: usize,
    }

    impl Write for Socket {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(self.block_every) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = data.len().min(self.accept);
            self.written.extend_from_slice(&data[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_go_on_where_the_socket_stopped() {
        let mut out = FrameEncoder::with_capacity(64 * 1024);
        let mut socket = Socket { written: Vec::new(), accept: 333, calls: 0, block_every: 3 };
        let packets: Vec<Vec<u8>> = (0..40).map(|i| packet(50 + i * 37, i as u8)).collect();
        for p in &packets {
            out.push(p).unwrap();
            out.write_to(&mut socket).unwrap();
        }
        while !out.is_empty() {
            out.write_to(&mut socket).unwrap();
        }
        let expected: Vec<u8> = packets.iter().flat_map(|p| frame(p)).collect();
        assert_eq!(socket.written, expected);
        assert_eq!(decode(&socket.written, &[1000]).unwrap(), packets);
    }

    #[test]
    fn a_full_buffer_drops_whole_packets_and_takes_more_once_written() {
        let mut out = FrameEncoder::with_capacity(MAX_FRAME + 100);
        out.push(&packet(1400, 1)).unwrap();
        assert_eq!(out.push(&packet(200, 2)), Err(FramingError::Full));
        assert_eq!(out.len(), 1402);
        let mut socket = Socket { written: Vec::new(), accept: 1000, calls: 0, block_every: 2 };
        out.write_to(&mut socket).unwrap();
        // 1000 bytes written, 402 left at the back: the room at the front is reused.
        assert_eq!(out.len(), 402);
        out.push(&packet(1000, 3)).unwrap();
        while !out.is_empty() {
            out.write_to(&mut socket).unwrap();
        }
        assert_eq!(decode(&socket.written, &[4096]).unwrap(), vec![packet(1400, 1), packet(1000, 3)]);
    }

    #[test]
    fn an_over_long_packet_is_not_sent() {
        let mut out = FrameEncoder::with_capacity(64 * 1024);
        assert_eq!(out.push(&packet(1501, 0)), Err(FramingError::TooLong(1501)));
        assert!(out.is_empty());
    }

    #[test]
    fn a_failing_socket_is_the_callers_error() {
        struct Reset;
        impl Write for Reset {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::ConnectionReset.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut out = FrameEncoder::with_capacity(4096);
        out.push(b"x").unwrap();
        assert_eq!(out.write_to(&mut Reset).unwrap_err().kind(), io::ErrorKind::ConnectionReset);
    }
}
