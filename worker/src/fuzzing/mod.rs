//! The bodies of the fuzz targets in `fuzz/`, kept here so that a plain `cargo test` can replay the
//! committed corpora through exactly the code libFuzzer runs (`worker/tests/fuzz_corpus.rs`).
//!
//! Each function takes arbitrary bytes and must never panic; it returns whether the input got past
//! the first parser, so the replay test can check that the seeds really reach the deep paths.

mod input;
mod media;
mod rtcp;
mod sctp;
mod srtp;
mod stun;
mod tcp;
#[cfg(feature = "testing")]
mod worker;

pub use media::{keyframe, rtp_header, rtp_rewrite, vp8};
pub use rtcp::{nack, rtcp_compound, transport_cc};
pub use sctp::{dcep, sctp_association, sctp_seed_packets};
pub use srtp::{SRTP_MASTER_KEY, SRTP_MASTER_SALT, srtp_unprotect};
pub use stun::{ICE_PASSWORD, ICE_UFRAG, ice_lite, stun};
pub use tcp::tcp_framing;
#[cfg(feature = "testing")]
pub use worker::{WorkerFuzzer, worker_datagrams};

pub use input::{crc32c, record, records};
