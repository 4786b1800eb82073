//! The sans-IO worker core: `handle_input` / `handle_datagram` in, `poll_output` / `poll_transmit`
//! out, time passed in as an argument.

mod active_speaker;
pub mod bwe;
mod consumer;
mod control;
mod data_consumer;
mod data_control;
mod data_path;
mod data_producer;
mod data_tap;
mod downlink;
pub mod dtls;
mod fan_out;
mod forward;
pub mod ice;
mod id_map;
mod layer_updates;
mod layers;
mod media;
pub mod ortc;
mod pacer;
mod pacing;
mod pipe;
mod producer;
mod retransmission_buffer;
pub mod rng;
mod router;
mod rtcp_feedback;
pub mod rtp;
mod rtx_guard;
pub mod sctp;
mod shared_rewrite;
pub mod srtp;
pub mod tcp_framing;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
pub mod transmit;
mod transport;
mod webrtc_server;
mod worker;

pub use forward::is_rtcp;
pub use router::Router;
pub use transmit::{SocketId, Transmit};
pub use webrtc_server::ListenSocket;
pub use worker::{Input, Output, TICK, Worker, WorkerConfig, WorkerCounters};
