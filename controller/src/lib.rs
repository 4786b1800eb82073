//! Octo's controller: the worker pool, the ipc channels to it, rooms, Socket.IO
//! signaling and the HTTP face.

pub mod channel;
pub mod config;
pub mod dispatcher;
pub mod http;
pub mod metrics;
pub mod process_usage;
pub mod rooms;
pub mod signaling;
pub mod systemd;
pub mod web_assets;
pub mod worker_pool;
pub mod worker_process;
