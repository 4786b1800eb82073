//! ICE-lite: STUN binding checks with short-term credentials, tuples and consent.
//!
//! [`stun`] is the wire codec (views over received datagrams, writers into caller buffers);
//! [`IceLite`] is the per-transport agent that answers the browser's checks.

mod ice_lite;
pub mod stun;
#[cfg(test)]
mod tests;

pub use ice_lite::{CONSENT_TIMEOUT, IceError, IceEvent, IceLite, IceState, MAX_TUPLES, Tuple};
pub use stun::{BindingRequest, ErrorCode, StunClass, StunError, StunMessage, StunMethod, is_stun};
