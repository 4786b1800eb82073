//! The IO shell: the only part of the worker that owns file descriptors.

mod channel;
mod event_loop;
pub mod recv_batch;
mod send_batch;
pub mod tcp;
mod udp;

pub use channel::ControllerChannel;
pub use event_loop::{MediaConfig, RunError, run};
pub use udp::UdpSockets;
