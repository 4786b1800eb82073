//! Octo's load generator: simulated browsers that signal through Octo's real Socket.IO API and run
//! ICE, DTLS and SRTP against its workers, all media on one event loop, and the figures that
//! follow (see BENCHMARKS.md).

pub mod cluster;
pub mod compare;
pub mod downlink_figures;
pub mod figures;
pub mod flood;
pub mod http;
pub mod janus;
pub mod media;
pub mod octo;
pub mod proc_stat;
pub mod raw_send;
pub mod report;
pub mod scenario;
pub mod session;
pub mod signaling;
pub mod soak;
