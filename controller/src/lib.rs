//! Octo's controller: the worker pool, the ipc channels to it, and the HTTP face.

pub mod channel;
pub mod dispatcher;
pub mod http;
pub mod worker_pool;
pub mod worker_process;
