//! Octo's media worker.
//!
//! [`core`] holds every decision and never touches a socket, a clock or mio; [`io`] is the thin shell
//! that owns the file descriptors and feeds the core. See `DESIGN.md` ("Inside the worker").

pub mod core;
pub mod fuzzing;
pub mod io;
pub mod logging;
