//! RTP and RTCP on the wire: in-place packet views, compound RTCP, keyframe detection, feedback.

pub mod keyframe;
pub mod nack_generator;
pub mod packet;
pub mod recv_stats;
pub mod rtcp;
pub mod seq_manager;
pub mod twcc;
pub mod vp8;
