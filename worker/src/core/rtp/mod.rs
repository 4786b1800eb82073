//! RTP and RTCP on the wire: in-place packet views, compound RTCP, keyframe detection, feedback.
