//! Virtual-time tests of the estimator against a simulated bottleneck, closed loop through the real
//! transport-cc recorder and parser, plus garbage feedback and the allocator's tables.

mod allocator;
mod convergence;
mod garbage;
mod harness;
pub(crate) mod link;
