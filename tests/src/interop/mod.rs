//! Interop harness: a real `octo-worker` driven over its ipc channel, and str0m — an independent,
//! sans-IO WebRTC implementation this project did not write — publishing to it and subscribing from
//! it over real UDP sockets on 127.0.0.1.
//!
//! There is no SDP: each str0m peer is configured with str0m's direct API from what the worker
//! answers (ICE credentials and candidate, DTLS fingerprint, consumer SSRCs / payload types / mids /
//! header extension ids), the way mediasoup-client configures a browser from the same answers.
//!
//! - [`worker`]: spawning the worker, typed request/response over ipc, collecting notifications.
//! - [`peer`]: a str0m `Rtc` bound to a `UdpSocket`, pumped without blocking; [`peer::drive`]
//!   steps any number of peers and the worker's ipc until a condition holds or time runs out.
//! - [`media`]: the mediasoup-shaped parameters the peers announce and recognisable VP8/Opus payloads.
//! - [`loss`]: seeded datagram loss and targeted RTP drops between a peer and the worker.
//! - [`signaled`]: a str0m peer that gets its transport through Octo's signaling instead, for tests
//!   of the whole server.
//! - [`source`]: a paced VP8 + Opus publisher for those tests.

pub mod loss;
pub mod media;
pub mod peer;
pub mod signaled;
pub mod source;
pub mod worker;
