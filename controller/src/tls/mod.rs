//! HTTPS and WSS on the controller's listener: browsers grant camera and microphone access only to
//! secure origins (https, or localhost), so anything beyond a laptop trial needs TLS.

mod certificate;
mod listener;

pub use certificate::{Tls, TlsError, fingerprint};
pub use listener::TlsListener;
