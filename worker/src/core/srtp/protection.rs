//! What a transport does to the RTP and RTCP it sends and receives: SRTP, or nothing for a pipe
//! between two workers of one host that was created without it (the packets never leave the
//! machine, and a second AES pass per piped packet would buy nothing there).

use super::{MAX_SEND_SSRCS, MasterKey, SrtpError, SrtpRecvContext, SrtpSendContext};

// Inline rather than boxed: the SRTP variant is what nearly every transport holds, and it is read
// for every packet.
#[allow(clippy::large_enum_variant)]
pub enum SendProtection {
    Srtp(SrtpSendContext),
    /// Packets go as they are.
    Clear,
}

impl SendProtection {
    pub fn srtp(key: &MasterKey) -> Self {
        Self::Srtp(SrtpSendContext::new(key))
    }

    /// As [`SrtpSendContext::encrypt_rtp`]; the length unchanged in the clear.
    pub fn encrypt_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        match self {
            Self::Srtp(srtp) => srtp.encrypt_rtp(buf, len),
            Self::Clear => clear_len(buf, len),
        }
    }

    /// As [`SrtpSendContext::encrypt_rtcp`]; the length unchanged in the clear.
    pub fn encrypt_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        match self {
            Self::Srtp(srtp) => srtp.encrypt_rtcp(buf, len),
            Self::Clear => clear_len(buf, len),
        }
    }
}

#[allow(clippy::large_enum_variant)]
pub enum RecvProtection {
    Srtp(SrtpRecvContext),
    /// Packets are taken as they come (only from the pipe's configured far end).
    Clear,
}

impl RecvProtection {
    pub fn srtp(key: &MasterKey) -> Self {
        Self::Srtp(SrtpRecvContext::new(key))
    }

    /// For a pipe, which receives every producer piped to this worker rather than one browser's
    /// few streams.
    pub fn srtp_for_pipe(key: &MasterKey) -> Self {
        Self::Srtp(SrtpRecvContext::with_max_ssrcs(key, MAX_SEND_SSRCS))
    }

    /// Forgets an SSRC whose producer closed (its replay state is of no further use: packets of an
    /// SSRC no producer has are dropped before they reach SRTP), freeing the slot.
    pub fn remove_ssrc(&mut self, ssrc: u32) {
        if let Self::Srtp(srtp) = self {
            srtp.remove_ssrc(ssrc);
        }
    }

    /// As [`SrtpRecvContext::decrypt_rtp`]; the length unchanged in the clear.
    pub fn decrypt_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        match self {
            Self::Srtp(srtp) => srtp.decrypt_rtp(buf, len),
            Self::Clear => clear_len(buf, len),
        }
    }

    /// As [`SrtpRecvContext::decrypt_rtcp`]; the length unchanged in the clear.
    pub fn decrypt_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        match self {
            Self::Srtp(srtp) => srtp.decrypt_rtcp(buf, len),
            Self::Clear => clear_len(buf, len),
        }
    }
}

fn clear_len(buf: &[u8], len: usize) -> Result<usize, SrtpError> {
    if len > buf.len() { Err(SrtpError::BufferTooSmall) } else { Ok(len) }
}
