//! The header rewrite of one packet, shared along its fan-out. Consumers of one producer mostly
//! negotiated the same header extensions and have mids of the same length, so they get the same
//! extension block but for the mid's bytes: the first consumer's rewrite is kept, and the next ones
//! copy that header and patch their own fields instead of parsing and rebuilding the block again.
//! The layout a rewrite produces depends on the extension ids and value lengths only, never on the
//! mid's bytes, so the datagrams are exactly those the full rewrite would produce.

use super::consumer::Consumer;
use super::forward::Outgoing;
use super::rtp::packet::{ExtensionIdMap, RtpHeader, RtpPacket};

/// Longest rewritten header kept (fixed header, CSRCs and extension block); longer ones are rare
/// and take the full rewrite every time.
const MAX_SHARED_HEADER: usize = 128;

pub(super) struct SharedRewrite {
    valid: bool,
    extension_ids: ExtensionIdMap,
    mid_ext_id: Option<u8>,
    mid_len: usize,
    header: [u8; MAX_SHARED_HEADER],
    header_len: usize,
    /// Where the payload starts in the packet being fanned out.
    body_start: usize,
    /// Where the mid's value sits in `header`.
    mid_at: Option<usize>,
    /// Where the transport-wide sequence number sits in `header`.
    twcc_at: Option<usize>,
}

impl SharedRewrite {
    pub fn new() -> Self {
        Self {
            valid: false,
            extension_ids: [0; 256],
            mid_ext_id: None,
            mid_len: 0,
            header: [0; MAX_SHARED_HEADER],
            header_len: 0,
            body_start: 0,
            mid_at: None,
            twcc_at: None,
        }
    }

    /// Forgets the kept rewrite (a new packet is being fanned out).
    pub fn clear(&mut self) {
        self.valid = false;
    }

    /// Whether `consumer`'s rewrite of the packet is the kept one but for its own fields.
    pub fn fits(&self, consumer: &Consumer) -> bool {
        self.valid
            && self.mid_ext_id == consumer.mid_ext_id
            && self.mid_len == consumer.mid.len()
            && self.extension_ids == consumer.extension_ids
    }

    /// Writes `packet` (the one the kept header came from) for `consumer` into the empty `buf`;
    /// returns the RTP length. The caller checked [`Self::fits`].
    pub fn write(&self, buf: &mut Vec<u8>, consumer: &Consumer, packet: &[u8], out: &Outgoing) -> usize {
        buf.extend_from_slice(&self.header[..self.header_len]);
        buf.extend_from_slice(&packet[self.body_start..]);
        // The marker bit stays as the packet had it.
        buf[1] = (buf[1] & 0x80) | (consumer.payload_type & 0x7f);
        buf[2..4].copy_from_slice(&out.seq.to_be_bytes());
        buf[4..8].copy_from_slice(&out.ts.to_be_bytes());
        buf[8..12].copy_from_slice(&out.ssrc.to_be_bytes());
        if let Some(at) = self.mid_at {
            buf[at..at + self.mid_len].copy_from_slice(&consumer.mid);
        }
        if let (Some(at), Some(seq)) = (self.twcc_at, out.twcc) {
            buf[at..at + 2].copy_from_slice(&seq.to_be_bytes());
        }
        buf.len()
    }

    /// Keeps `rewritten`, the full rewrite of `packet` for `consumer`, for the next consumers.
    pub fn keep(&mut self, consumer: &Consumer, packet: &[u8], rewritten: &RtpPacket<'_>) {
        self.valid = false;
        let Ok(original) = RtpHeader::parse(packet) else { return };
        let header = rewritten.header();
        let header_len = header.header_len();
        if header_len > MAX_SHARED_HEADER {
            return;
        }
        let mid_at = match consumer.mid_ext_id {
            Some(id) => match header.extension(id) {
                // The value is a slice of the rewritten packet: its offset in it.
                Some(value) => Some(value.as_ptr() as usize - rewritten.as_bytes().as_ptr() as usize),
                None => return,
            },
            None => None,
        };
        // The kept header must have the number's element wherever this consumer sends one, and
        // the next consumer's must be stamped too (the same extension ids mean the same id).
        let twcc_at = match consumer.twcc_ext_id {
            Some(id) => match header.extension(id) {
                Some(value) if value.len() == 2 => {
                    Some(value.as_ptr() as usize - rewritten.as_bytes().as_ptr() as usize)
                }
                _ => return,
            },
            None => None,
        };
        self.header[..header_len].copy_from_slice(&rewritten.as_bytes()[..header_len]);
        self.extension_ids = consumer.extension_ids;
        self.mid_ext_id = consumer.mid_ext_id;
        self.mid_len = consumer.mid.len();
        self.header_len = header_len;
        self.body_start = original.header_len();
        self.mid_at = mid_at;
        self.twcc_at = twcc_at;
        self.valid = true;
    }
}
