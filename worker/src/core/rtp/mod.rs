//! RTP and RTCP on the wire: in-place packet views, compound RTCP, keyframe detection, feedback.

pub mod keyframe;
pub mod packet;
pub mod rtcp;
