//! The only contract between the controller (`octo`) and a worker (`octo-worker`).
//!
//! Everything that crosses the Unix socket is one of two message types:
//! [`ControllerMessage`] (controller → worker) and [`WorkerMessage`] (worker → controller),
//! each carried in a length-prefixed bincode frame (see [`frame`]). Requests and notifications are
//! addressed to a typed [`Target`], never to a string.

pub mod error;
pub mod frame;
pub mod fuzzing;
pub mod ids;
pub mod messages;
pub mod rtp_parameters;
pub mod stats;
pub mod transport_parameters;

pub use error::{ErrorCode, RequestError};
pub use frame::{FrameDecoder, FrameError, MAX_FRAME_LEN, decode_frame, encode_frame};
pub use ids::{ConsumerId, DataConsumerId, DataProducerId, IdParseError, ProducerId, RouterId, TransportId};
pub use messages::*;
pub use rtp_parameters::*;
pub use stats::*;
pub use transport_parameters::*;
