//! Octo's controller: the worker pool, the ipc channels to it, rooms, Socket.IO
//! signaling and the HTTP face.

pub mod channel;
pub mod cluster;
pub mod config;
pub mod dispatcher;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod process_usage;
pub mod readiness;
pub mod rooms;
pub mod signaling;
pub mod systemd;
pub mod tls;
pub mod turn;
pub mod web_assets;
pub mod worker_pool;
pub mod worker_process;
