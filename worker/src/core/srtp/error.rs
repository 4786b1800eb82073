//! Why a packet was refused or a key could not be used.

/// Every way SRTP/SRTCP protection or unprotection can fail. Each is a plain value: no input,
/// however malformed, makes this module panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// The packet is shorter than its fixed header (plus, when unprotecting, the tag and trailer).
    #[error("packet too short")]
    TooShort,
    /// `len` exceeds the buffer, or the buffer has no room for the tag and trailer.
    #[error("buffer too small")]
    BufferTooSmall,
    /// The header is not RTP/RTCP version 2, or its CSRC list or extension runs past the packet.
    #[error("malformed packet header")]
    Malformed,
    /// The authentication tag did not verify. Nothing was changed: buffer and state are untouched.
    #[error("authentication failed")]
    AuthFailed,
    /// This packet index was already accepted for this SSRC.
    #[error("replayed packet")]
    Replayed,
    /// The packet index is older than the replay window reaches.
    #[error("packet older than the replay window")]
    TooOld,
    /// The context already tracks as many SSRCs as it was built for.
    #[error("too many SSRCs")]
    TooManySsrcs,
    /// The 48-bit SRTP index or the 31-bit SRTCP index would wrap: the keys must be replaced.
    #[error("packet index exhausted, rekey")]
    IndexExhausted,
    /// A master key or salt of the wrong length for the profile.
    #[error("master key or salt length does not match the profile")]
    KeyLength,
    /// DTLS-exported keying material of the wrong length for the profile.
    #[error("keying material is {got} bytes, the profile needs {expected}")]
    KeyingMaterialLength {
        /// What the profile needs: 2 × (key + salt).
        expected: usize,
        /// What was given.
        got: usize,
    },
}
