//! Whole-core tests in virtual time: in-memory peers built from Octo's own protocol pieces talk
//! to a `Worker` through `handle_datagram` / `poll_transmit`, with no sockets and no sleeping.

mod adaptive;
mod control;
mod data_channels;
mod forwarding;
mod gathering;
mod hostile;
mod ice_tcp;
mod pacing;
mod pipes;
mod simulcast;
