//! RTP and RTCP on the wire: in-place packet views, compound RTCP, keyframe detection, feedback.

pub mod nack_generator;
pub mod recv_stats;
pub mod seq_manager;
pub mod twcc;
