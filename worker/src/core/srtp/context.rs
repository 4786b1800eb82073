//! The two SRTP contexts of a transport: one protects what we send, one unprotects what we receive.
//! Each covers every SSRC of its direction (RTX included) and holds small fixed-size per-SSRC state
//! in tables allocated at construction; no call allocates.

use super::packet;
use super::replay::{self, ReplayWindow};
use super::ssrc_table::{DEFAULT_MAX_SSRCS, MAX_SEND_SSRCS, SsrcTable};
use super::transform::{RTCP_HEADER_LEN, SRTCP_TRAILER_LEN, SessionTransforms};
use super::{MasterKey, SrtpError, SrtpProfile};

/// Largest SRTCP index: it is 31 bits and must not wrap under one key (RFC 3711 §9.2).
const MAX_SRTCP_INDEX: u32 = 0x7FFF_FFFF;

/// Protects outgoing RTP and RTCP with the local master key.
pub struct SrtpSendContext {
    profile: SrtpProfile,
    keys: SessionTransforms,
    /// Highest 48-bit SRTP index sent per SSRC (its top bits are the ROC).
    rtp: SsrcTable<u64>,
    /// Next SRTCP index per sender SSRC.
    pub(super) rtcp: SsrcTable<u32>,
}

impl SrtpSendContext {
    /// Derives the session keys for `key` (of `key.profile()`), tracking up to
    /// [`MAX_SEND_SSRCS`] SSRCs (one per consumer on the transport, and their RTX).
    pub fn new(key: &MasterKey) -> Self {
        Self::with_max_ssrcs(key, MAX_SEND_SSRCS)
    }

    /// As [`Self::new`], tracking up to `max_ssrcs` SSRCs for RTP and as many for RTCP.
    pub fn with_max_ssrcs(key: &MasterKey, max_ssrcs: usize) -> Self {
        Self {
            profile: key.profile(),
            keys: SessionTransforms::new(key),
            rtp: SsrcTable::new(max_ssrcs),
            rtcp: SsrcTable::new(max_ssrcs),
        }
    }

    /// The profile the keys belong to.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Encrypts the RTP packet `buf[..len]` in place and appends the tag; returns the SRTP length,
    /// `len + profile().rtp_auth_tag_len()`. The ROC is tracked per SSRC from the sequence numbers
    /// (a wrap from 65535 to 0 increments it; a late packet from before the wrap keeps the old one).
    ///
    /// Re-sending a packet with the same SSRC and sequence number reuses its keystream, which is safe
    /// only for the identical packet (a NACK retransmission without RTX); never reuse a sequence number
    /// for different content.
    pub fn encrypt_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let pkt = buf.get(..len).ok_or(SrtpError::BufferTooSmall)?;
        let header = packet::rtp_header(pkt)?;
        if buf.len() - len < self.keys.rtp.tag_len() {
            return Err(SrtpError::BufferTooSmall);
        }
        // One lookup per packet: the known SSRC's entry is updated through the reference it was read by.
        if let Some(highest) = self.rtp.get_mut(header.ssrc) {
            let index = replay::estimate_index(*highest, header.seq).ok_or(SrtpError::IndexExhausted)?;
            *highest = (*highest).max(index);
            return Ok(self.keys.rtp.protect_rtp(buf, header.len, len, header.ssrc, index));
        }
        let index = u64::from(header.seq);
        self.rtp.insert(header.ssrc, index)?;
        Ok(self.keys.rtp.protect_rtp(buf, header.len, len, header.ssrc, index))
    }

    /// Encrypts the RTCP packet (or compound) `buf[..len]` in place after its first 8 bytes and appends
    /// `E=1 || SRTCP index` and the tag (in the profile's order); returns the SRTCP length,
    /// `len + 4 + profile().rtcp_auth_tag_len()`.
    pub fn encrypt_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let pkt = buf.get(..len).ok_or(SrtpError::BufferTooSmall)?;
        if len < RTCP_HEADER_LEN {
            return Err(SrtpError::TooShort);
        }
        let ssrc = packet::rtcp_sender_ssrc(pkt)?;
        if buf.len() - len < self.keys.rtcp.tag_len() + SRTCP_TRAILER_LEN {
            return Err(SrtpError::BufferTooSmall);
        }
        let index = match self.rtcp.get(ssrc) {
            Some(&next) if next > MAX_SRTCP_INDEX => return Err(SrtpError::IndexExhausted),
            Some(&next) => next,
            None if self.rtcp.has_room() => 0,
            None => return Err(SrtpError::TooManySsrcs),
        };
        let out = self.keys.rtcp.protect_rtcp(buf, len, ssrc, index);
        self.rtcp.insert(ssrc, index + 1)?;
        Ok(out)
    }

    /// Forgets an SSRC's RTP and RTCP state (its consumer closed), freeing its slot.
    pub fn remove_ssrc(&mut self, ssrc: u32) {
        self.rtp.remove(ssrc);
        self.rtcp.remove(ssrc);
    }

    /// How many SSRCs have RTP state.
    pub fn rtp_ssrc_count(&self) -> usize {
        self.rtp.len()
    }
}

/// Authenticates and decrypts incoming SRTP and SRTCP with the remote master key, with per-SSRC ROC
/// estimation and replay protection. State changes only after a packet authenticates, so forged
/// packets can neither create SSRC state nor move a window.
pub struct SrtpRecvContext {
    profile: SrtpProfile,
    keys: SessionTransforms,
    rtp: SsrcTable<ReplayWindow>,
    rtcp: SsrcTable<ReplayWindow>,
}

impl SrtpRecvContext {
    /// Derives the session keys for `key` (of `key.profile()`), tracking up to
    /// [`DEFAULT_MAX_SSRCS`] SSRCs.
    pub fn new(key: &MasterKey) -> Self {
        Self::with_max_ssrcs(key, DEFAULT_MAX_SSRCS)
    }

    /// As [`Self::new`], tracking up to `max_ssrcs` SSRCs for RTP and as many for RTCP. Packets from
    /// further SSRCs are refused with [`SrtpError::TooManySsrcs`] until [`Self::remove_ssrc`].
    pub fn with_max_ssrcs(key: &MasterKey, max_ssrcs: usize) -> Self {
        Self {
            profile: key.profile(),
            keys: SessionTransforms::new(key),
            rtp: SsrcTable::new(max_ssrcs),
            rtcp: SsrcTable::new(max_ssrcs),
        }
    }

    /// The profile the keys belong to.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Authenticates the SRTP packet `buf[..len]`, then decrypts it in place; returns the RTP length
    /// (`len` minus the tag). On any error `buf` and the context are unchanged.
    pub fn decrypt_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let pkt = buf.get(..len).ok_or(SrtpError::BufferTooSmall)?;
        let header = packet::rtp_header(pkt)?;
        let tag_len = self.keys.rtp.tag_len();
        if len < header.len + tag_len {
            return Err(SrtpError::TooShort);
        }
        match self.rtp.get_mut(header.ssrc) {
            Some(window) => {
                let index = replay::estimate_index(window.highest(), header.seq).ok_or(SrtpError::IndexExhausted)?;
                window.check(index)?;
                let out = self.keys.rtp.unprotect_rtp(buf, header.len, len, header.ssrc, index)?;
                window.accept(index);
                Ok(out)
            }
            None => {
                if !self.rtp.has_room() {
                    return Err(SrtpError::TooManySsrcs);
                }
                // RFC 3711 §3.3.1: a new stream starts with ROC 0 and s_l = its first SEQ.
                let index = u64::from(header.seq);
                let out = self.keys.rtp.unprotect_rtp(buf, header.len, len, header.ssrc, index)?;
                self.rtp.insert(header.ssrc, ReplayWindow::new(index))?;
                Ok(out)
            }
        }
    }

    /// Authenticates the SRTCP packet `buf[..len]`, checks its index against the sender SSRC's replay
    /// window, then decrypts in place (if its E flag is set); returns the RTCP length. On any error
    /// `buf` and the context are unchanged.
    pub fn decrypt_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let pkt = buf.get(..len).ok_or(SrtpError::BufferTooSmall)?;
        let tag_len = self.keys.rtcp.tag_len();
        if len < RTCP_HEADER_LEN + SRTCP_TRAILER_LEN + tag_len {
            return Err(SrtpError::TooShort);
        }
        let ssrc = packet::rtcp_sender_ssrc(pkt)?;
        let (encrypted, index) = self.keys.rtcp.rtcp_trailer(pkt, len);
        match self.rtcp.get_mut(ssrc) {
            Some(window) => {
                window.check(u64::from(index))?;
                let out = self.keys.rtcp.unprotect_rtcp(buf, len, ssrc, index, encrypted)?;
                window.accept(u64::from(index));
                Ok(out)
            }
            None => {
                if !self.rtcp.has_room() {
                    return Err(SrtpError::TooManySsrcs);
                }
                let out = self.keys.rtcp.unprotect_rtcp(buf, len, ssrc, index, encrypted)?;
                self.rtcp.insert(ssrc, ReplayWindow::new(u64::from(index)))?;
                Ok(out)
            }
        }
    }

    /// Forgets an SSRC's RTP and RTCP state (its producer closed), freeing its slot.
    pub fn remove_ssrc(&mut self, ssrc: u32) {
        self.rtp.remove(ssrc);
        self.rtcp.remove(ssrc);
    }

    /// How many SSRCs have RTP state.
    pub fn rtp_ssrc_count(&self) -> usize {
        self.rtp.len()
    }

    /// The rollover counter last accepted for `ssrc`, if it has state (for stats and tests).
    pub fn rtp_roc(&self, ssrc: u32) -> Option<u32> {
        self.rtp.get(ssrc).map(|w| (w.highest() >> 16) as u32)
    }
}
