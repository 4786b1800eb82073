//! Parameters as real clients send them, for tests and benchmarks.

use octo_ipc::{RtpCapabilities, RtpCodecCapability, RtpParameters};

pub fn media_codecs() -> Vec<RtpCodecCapability> {
    serde_json::from_str(
        r#"[
        {"kind":"audio","mimeType":"audio/opus","clockRate":48000,"channels":2},
        {"kind":"video","mimeType":"video/VP8","clockRate":90000},
        {"kind":"video","mimeType":"video/H264","clockRate":90000,
         "parameters":{"packetization-mode":1,"profile-level-id":"42e01f","level-asymmetry-allowed":1}}
    ]"#,
    )
    .unwrap()
}

/// What Chrome sends through mediasoup-client for a VP8 webcam track.
pub fn chrome_vp8_parameters() -> RtpParameters {
    serde_json::from_str(
        r#"{"mid":"0",
        "codecs":[
          {"mimeType":"video/VP8","payloadType":96,"clockRate":90000,"parameters":{},
           "rtcpFeedback":[{"type":"goog-remb","parameter":""},{"type":"transport-cc","parameter":""},
                           {"type":"ccm","parameter":"fir"},{"type":"nack","parameter":""},{"type":"nack","parameter":"pli"}]},
          {"mimeType":"video/rtx","payloadType":97,"clockRate":90000,"parameters":{"apt":96},"rtcpFeedback":[]}],
        "headerExtensions":[
          {"uri":"urn:ietf:params:rtp-hdrext:sdes:mid","id":4,"encrypt":false,"parameters":{}},
          {"uri":"http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time","id":2,"encrypt":false,"parameters":{}},
          {"uri":"http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01","id":3,"encrypt":false,"parameters":{}},
          {"uri":"urn:3gpp:video-orientation","id":13,"encrypt":false,"parameters":{}},
          {"uri":"urn:ietf:params:rtp-hdrext:toffset","id":14,"encrypt":false,"parameters":{}}],
        "encodings":[{"ssrc":1111,"rtx":{"ssrc":2222},"dtx":false}],
        "rtcp":{"cname":"chrome-cname","reducedSize":true}}"#,
    )
    .unwrap()
}

pub fn chrome_opus_parameters() -> RtpParameters {
    serde_json::from_str(
        r#"{"mid":"1",
        "codecs":[{"mimeType":"audio/opus","payloadType":111,"clockRate":48000,"channels":2,
                   "parameters":{"minptime":10,"useinbandfec":1},"rtcpFeedback":[{"type":"transport-cc","parameter":""}]}],
        "headerExtensions":[
          {"uri":"urn:ietf:params:rtp-hdrext:sdes:mid","id":4},
          {"uri":"urn:ietf:params:rtp-hdrext:ssrc-audio-level","id":1}],
        "encodings":[{"ssrc":3333,"dtx":false}],
        "rtcp":{"cname":"chrome-cname","reducedSize":true}}"#,
    )
    .unwrap()
}

/// A receiving device's capabilities as mediasoup-client derives them from the router's: the
/// same codecs and ids, feedback parameters written as "".
pub fn device_capabilities(router: &RtpCapabilities) -> RtpCapabilities {
    let mut caps = router.clone();
    for codec in &mut caps.codecs {
        for fb in &mut codec.rtcp_feedback {
            fb.parameter.get_or_insert_with(String::new);
        }
    }
    caps
}
