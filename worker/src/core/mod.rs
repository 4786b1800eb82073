//! The sans-IO worker core: `handle_input` in, `poll_output` out, time passed in as an argument.

mod router;
mod worker;

pub use router::Router;
pub use worker::{Input, Output, Worker};
