use octo_ipc::{MediaKind, RtpCapabilities, RtpCodecCapability};

use super::*;
use crate::core::testing::{chrome_opus_parameters, chrome_vp8_parameters, device_capabilities, media_codecs};

fn counter() -> impl FnMut() -> u32 {
    let mut n = 1000;
    move || {
        n += 1;
        n
    }
}

#[test]
fn router_capabilities_give_payload_types_and_rtx() {
    let caps = router_rtp_capabilities(&media_codecs()).unwrap();
    let names: Vec<(&str, Option<u8>)> =
        caps.codecs.iter().map(|c| (c.mime_type.as_str(), c.preferred_payload_type)).collect();
    assert_eq!(
        names,
        [
            ("audio/opus", Some(100)),
            ("video/VP8", Some(101)),
            ("video/rtx", Some(102)),
            ("video/H264", Some(103)),
            ("video/rtx", Some(104))
        ]
    );
    assert_eq!(caps.codecs[2].parameters.get("apt"), Some(&ParameterValue::Int(101)));
    assert_eq!(caps.codecs[0].channels, Some(2));
    assert!(caps.codecs[1].rtcp_feedback.iter().any(|f| f.kind == "nack" && f.parameter.as_deref() == Some("pli")));
    assert!(caps.header_extensions.iter().any(|e| e.uri == URI_MID && e.kind == MediaKind::Video));
    assert_eq!(caps.codecs[3].parameters.get("profile-level-id").and_then(|v| v.as_str()), Some("42e01f"));
}

#[test]
fn router_refuses_unknown_and_misdeclared_codecs() {
    let bad: Vec<RtpCodecCapability> =
        serde_json::from_str(r#"[{"kind":"video","mimeType":"video/H265X","clockRate":90000}]"#).unwrap();
    assert!(matches!(router_rtp_capabilities(&bad), Err(OrtcError::UnsupportedCodec(_))));
    let wrong_kind: Vec<RtpCodecCapability> =
        serde_json::from_str(r#"[{"kind":"audio","mimeType":"video/VP8","clockRate":90000}]"#).unwrap();
    assert!(router_rtp_capabilities(&wrong_kind).is_err());
    let static_pt: Vec<RtpCodecCapability> = serde_json::from_str(
        r#"[{"kind":"audio","mimeType":"audio/opus","clockRate":48000,"channels":2,"preferredPayloadType":8}]"#,
    )
    .unwrap();
    assert!(router_rtp_capabilities(&static_pt).is_err());
}

#[test]
fn producer_payload_types_map_onto_the_routers() {
    let caps = router_rtp_capabilities(&media_codecs()).unwrap();
    let mapping = producer_rtp_mapping(MediaKind::Video, &chrome_vp8_parameters(), &caps, counter()).unwrap();
    assert_eq!(mapping.codecs, [(96, 101), (97, 102)]);
    assert_eq!(mapping.mapped_ssrcs, [1001]);
    let consumable = consumable_rtp_parameters(MediaKind::Video, &chrome_vp8_parameters(), &caps, &mapping);
    assert_eq!(consumable.codecs.iter().map(|c| c.payload_type).collect::<Vec<_>>(), [101, 102]);
    assert_eq!(consumable.encodings[0].ssrc, Some(1001));
    // The router's own extension ids, sendable ones only (rid is receive-only).
    let ids: Vec<(String, u8)> = consumable.header_extensions.iter().map(|e| (e.uri.clone(), e.id)).collect();
    assert!(ids.contains(&(URI_MID.to_owned(), 1)));
    assert!(ids.contains(&(URI_ABS_SEND_TIME.to_owned(), 4)));
    assert!(!ids.iter().any(|(u, _)| u == URI_RID));
    assert_eq!(consumable.rtcp.cname.as_deref(), Some("chrome-cname"));
}

#[test]
fn producer_parameters_are_validated() {
    let caps = router_rtp_capabilities(&media_codecs()).unwrap();
    let mut p = chrome_vp8_parameters();
    p.encodings.clear();
    assert!(producer_rtp_mapping(MediaKind::Video, &p, &caps, counter()).is_err());
    let mut p = chrome_vp8_parameters();
    p.encodings[0].ssrc = None;
    assert!(producer_rtp_mapping(MediaKind::Video, &p, &caps, counter()).is_err());
    let mut p = chrome_vp8_parameters();
    p.codecs[1].parameters.insert("apt".into(), ParameterValue::Int(55));
    assert!(producer_rtp_mapping(MediaKind::Video, &p, &caps, counter()).is_err());
    // VP8 parameters in an audio producer.
    assert!(producer_rtp_mapping(MediaKind::Audio, &chrome_vp8_parameters(), &caps, counter()).is_err());
    // A codec the router was not built with.
    let vp9_only = router_rtp_capabilities(
        &serde_json::from_str::<Vec<RtpCodecCapability>>(
            r#"[{"kind":"video","mimeType":"video/VP9","clockRate":90000}]"#,
        )
        .unwrap(),
    )
    .unwrap();
    assert!(matches!(
        producer_rtp_mapping(MediaKind::Video, &chrome_vp8_parameters(), &vp9_only, counter()),
        Err(OrtcError::UnsupportedCodec(_))
    ));
}

#[test]
fn consumer_gets_the_first_decodable_codec_with_rtx_and_fresh_ssrcs() {
    let caps = router_rtp_capabilities(&media_codecs()).unwrap();
    let params = chrome_vp8_parameters();
    let mapping = producer_rtp_mapping(MediaKind::Video, &params, &caps, counter()).unwrap();
    let consumable = consumable_rtp_parameters(MediaKind::Video, &params, &caps, &mapping);
    let device = device_capabilities(&caps);
    assert!(can_consume(&consumable, &device, MediaKind::Video));
    let consumer = consumer_rtp_parameters(MediaKind::Video, &consumable, &device, counter()).unwrap();
    assert_eq!(consumer.codecs.len(), 2);
    assert_eq!((consumer.codecs[0].mime_type.as_str(), consumer.codecs[0].payload_type), ("video/VP8", 101));
    assert_eq!(consumer.codecs[1].payload_type, 102);
    assert_eq!(consumer.encodings[0].ssrc, Some(1001));
    assert_eq!(consumer.encodings[0].rtx.map(|r| r.ssrc), Some(1002));
    // Consumers carry the transport-cc extension (the downlink estimator's input), so its
    // feedback replaces REMB.
    let fb: Vec<&str> = consumer.codecs[0].rtcp_feedback.iter().map(|f| f.kind.as_str()).collect();
    assert!(!fb.contains(&"goog-remb") && fb.contains(&"transport-cc"), "{fb:?}");
    assert_eq!(consumer.rtcp.reduced_size, Some(true));
}

#[test]
fn incompatible_capabilities_cannot_consume() {
    let caps = router_rtp_capabilities(&media_codecs()).unwrap();
    let params = chrome_vp8_parameters();
    let mapping = producer_rtp_mapping(MediaKind::Video, &params, &caps, counter()).unwrap();
    let consumable = consumable_rtp_parameters(MediaKind::Video, &params, &caps, &mapping);
    let mut h264_only = device_capabilities(&caps);
    h264_only.codecs.retain(|c| !c.mime_type.eq_ignore_ascii_case("video/VP8"));
    assert!(!can_consume(&consumable, &h264_only, MediaKind::Video));
    assert_eq!(
        consumer_rtp_parameters(MediaKind::Video, &consumable, &h264_only, counter()),
        Err(OrtcError::CannotConsume)
    );
    assert!(!can_consume(&consumable, &RtpCapabilities::default(), MediaKind::Video));
}

#[test]
fn h264_profiles_must_agree() {
    let mut a = CodecParameters::new();
    a.insert("packetization-mode".into(), ParameterValue::Int(1));
    a.insert("profile-level-id".into(), ParameterValue::String("42e01f".into()));
    let mut b = a.clone();
    b.insert("profile-level-id".into(), ParameterValue::String("640032".into()));
    let h = |p| ("video/H264", 90_000, None, p);
    assert!(codecs_match(h(&a), h(&a), MediaKind::Video, true));
    assert!(!codecs_match(h(&a), h(&b), MediaKind::Video, true));
    assert!(codecs_match(h(&a), h(&b), MediaKind::Video, false));
    let mut c = a.clone();
    c.insert("packetization-mode".into(), ParameterValue::Int(0));
    assert!(!codecs_match(h(&a), h(&c), MediaKind::Video, false));
}

#[test]
fn parameters_keep_their_json_types_and_survive_bincode() {
    let params = chrome_opus_parameters();
    let json = serde_json::to_value(&params).unwrap();
    assert_eq!(json["codecs"][0]["parameters"]["useinbandfec"], 1);
    let mut frame = Vec::new();
    let msg = octo_ipc::ControllerMessage::Request {
        id: 1,
        request: octo_ipc::Request::Transport(
            octo_ipc::TransportId(1),
            octo_ipc::TransportRequest::Produce {
                producer_id: octo_ipc::ProducerId(2),
                kind: MediaKind::Audio,
                rtp_parameters: params.clone(),
                paused: false,
            },
        ),
    };
    octo_ipc::encode_frame(&msg, &mut frame).unwrap();
    let (back, _) = octo_ipc::decode_frame::<octo_ipc::ControllerMessage>(&frame).unwrap().unwrap();
    assert_eq!(back, msg);
}
