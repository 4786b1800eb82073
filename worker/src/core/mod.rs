//! The sans-IO worker core: `handle_input` in, `poll_output` out, time passed in as an argument.

pub mod ice;
mod router;
pub mod rtp;
pub mod srtp;
mod worker;

pub use router::Router;
pub use worker::{Input, Output, Worker};
