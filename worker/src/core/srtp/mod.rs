//! In-place, allocation-free SRTP and SRTCP (RFC 3711) for the forwarding hot path, with the
//! AES-CM + HMAC-SHA1 profiles and the RFC 7714 AEAD AES-GCM ones, keyed from DTLS-SRTP (RFC 5764).
//!
//! A transport builds one [`SrtpSendContext`] and one [`SrtpRecvContext`] from
//! [`DtlsSrtpKeys::split`] of the DTLS exporter output. Session keys and AES key schedules are made
//! once, there; per packet the contexts work inside the caller's buffer (the tag is appended in the
//! buffer's spare room) and allocate nothing. Receive state (ROC, replay window) is per SSRC, bounded,
//! and committed only after a packet authenticates.
//!
//! Not implemented, because WebRTC does not use them: MKI, key derivation rates other than 0, the
//! AES-256-CM profiles, and NULL ciphers.

mod context;
mod error;
mod kdf;
mod packet;
mod profile;
mod protection;
mod replay;
mod ssrc_table;
mod transform;

#[cfg(test)]
mod tests;

pub use context::{SrtpRecvContext, SrtpSendContext};
pub use error::SrtpError;
pub use profile::{DtlsSrtpKeys, MasterKey, SrtpProfile};
pub use protection::{RecvProtection, SendProtection};
pub use replay::REPLAY_WINDOW;
pub use ssrc_table::{DEFAULT_MAX_SSRCS, MAX_SEND_SSRCS};
