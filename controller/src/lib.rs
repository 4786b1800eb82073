//! Octo's controller: the worker pool, the ipc channels to it, rooms, Socket.IO
//! signaling and the HTTP face.

pub mod channel;
pub mod dispatcher;
pub mod http;
pub mod rooms;
pub mod signaling;
pub mod web_assets;
pub mod worker_pool;
pub mod worker_process;
