//! The few header fields SRTP needs, read safely from untrusted bytes.

use super::SrtpError;

/// RTP fixed header length (RFC 3550 §5.1).
pub(crate) const RTP_FIXED_HEADER_LEN: usize = 12;

/// What SRTP needs from an RTP header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtpHeader {
    /// Fixed header + CSRCs + extension: the part SRTP leaves in the clear.
    pub len: usize,
    pub seq: u16,
    pub ssrc: u32,
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]))
}

/// Parses the RTP header of `pkt` (the whole packet, or the whole protected packet). The CSRC count
/// and extension length are attacker-controlled; every offset is checked against `pkt`.
pub(crate) fn rtp_header(pkt: &[u8]) -> Result<RtpHeader, SrtpError> {
    let first = *pkt.first().ok_or(SrtpError::TooShort)?;
    if pkt.len() < RTP_FIXED_HEADER_LEN {
        return Err(SrtpError::TooShort);
    }
    if first >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    let csrc_count = usize::from(first & 0x0f);
    let mut len = RTP_FIXED_HEADER_LEN + 4 * csrc_count;
    if first & 0x10 != 0 {
        // Extension: 16-bit profile, 16-bit length in 32-bit words, then the words.
        let words = be_u16(pkt, len + 2).ok_or(SrtpError::Malformed)?;
        len += 4 + 4 * usize::from(words);
    }
    if len > pkt.len() {
        return Err(SrtpError::Malformed);
    }
    let seq = be_u16(pkt, 2).ok_or(SrtpError::TooShort)?;
    let ssrc = be_u32(pkt, 8).ok_or(SrtpError::TooShort)?;
    Ok(RtpHeader { len, seq, ssrc })
}

/// The sender SSRC of an RTCP packet (the first packet of a compound), after checking the version.
/// The caller has checked `pkt.len() >= 8`.
pub(crate) fn rtcp_sender_ssrc(pkt: &[u8]) -> Result<u32, SrtpError> {
    let first = *pkt.first().ok_or(SrtpError::TooShort)?;
    if first >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    be_u32(pkt, 4).ok_or(SrtpError::TooShort)
}
