//! Test support, compiled for the crate's own tests and, with the `testing` feature, for its
//! integration tests and benchmarks: client fixtures and an in-memory peer that drives a `Worker`
//! in virtual time.

mod fixtures;
mod harness;

pub use fixtures::*;
pub use harness::*;
