//! ORTC negotiation: what a router supports, how a producer's payload types and SSRCs map onto the
//! router's, and what a consumer receives. Pure functions over mediasoup-shaped parameters, so the
//! results are exactly what `mediasoup-client` expects.

use std::collections::BTreeMap;

use octo_ipc::{
    CodecParameters, MediaKind, ParameterValue, RtcpFeedback, RtcpParameters, RtpCapabilities, RtpCodecCapability,
    RtpCodecParameters, RtpEncodingParameters, RtpHeaderExtension, RtpHeaderExtensionDirection as Dir,
    RtpHeaderExtensionParameters, RtpParameters, RtxParameters,
};

pub const URI_MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
pub const URI_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
pub const URI_REPAIRED_RID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
pub const URI_ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
pub const URI_TRANSPORT_CC: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
pub const URI_AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
pub const URI_VIDEO_ORIENTATION: &str = "urn:3gpp:video-orientation";
pub const URI_TOFFSET: &str = "urn:ietf:params:rtp-hdrext:toffset";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrtcError {
    #[error("media codec not supported: {0}")]
    UnsupportedCodec(String),
    #[error("invalid rtp parameters: {0}")]
    InvalidParameters(String),
    #[error("no dynamic payload type left")]
    NoPayloadTypeLeft,
    #[error("the rtp capabilities share no codec with the producer")]
    CannotConsume,
}

/// Dynamic payload types handed out to router codecs, in order.
const DYNAMIC_PAYLOAD_TYPES: [u8; 32] = [
    100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122,
    123, 124, 125, 126, 127, 96, 97, 98, 99,
];

fn fb(kind: &str, parameter: Option<&str>) -> RtcpFeedback {
    RtcpFeedback::new(kind, parameter)
}

fn video_feedback() -> Vec<RtcpFeedback> {
    vec![
        fb("nack", None),
        fb("nack", Some("pli")),
        fb("ccm", Some("fir")),
        fb("goog-remb", None),
        fb("transport-cc", None),
    ]
}

fn capability(kind: MediaKind, mime: &str, clock_rate: u32, channels: Option<u8>) -> RtpCodecCapability {
    RtpCodecCapability {
        kind,
        mime_type: mime.to_owned(),
        preferred_payload_type: None,
        clock_rate,
        channels,
        parameters: CodecParameters::new(),
        rtcp_feedback: if kind == MediaKind::Video {
            video_feedback()
        } else {
            vec![fb("nack", None), fb("transport-cc", None)]
        },
    }
}

/// Every codec a router can be built with.
pub fn supported_codecs() -> Vec<RtpCodecCapability> {
    let mut opus = capability(MediaKind::Audio, "audio/opus", 48_000, Some(2));
    opus.preferred_payload_type = Some(111);
    let mut h264 = capability(MediaKind::Video, "video/H264", 90_000, None);
    h264.parameters.insert("packetization-mode".into(), ParameterValue::Int(1));
    h264.parameters.insert("level-asymmetry-allowed".into(), ParameterValue::Int(1));
    vec![
        opus,
        capability(MediaKind::Audio, "audio/PCMU", 8_000, Some(1)),
        capability(MediaKind::Audio, "audio/PCMA", 8_000, Some(1)),
        capability(MediaKind::Audio, "audio/G722", 8_000, Some(1)),
        capability(MediaKind::Video, "video/VP8", 90_000, None),
        capability(MediaKind::Video, "video/VP9", 90_000, None),
        h264,
        capability(MediaKind::Video, "video/AV1", 90_000, None),
    ]
}

/// Every header extension a router offers, with mediasoup's preferred ids.
pub fn supported_header_extensions() -> Vec<RtpHeaderExtension> {
    let ext = |kind, uri: &str, id, direction| RtpHeaderExtension {
        kind,
        uri: uri.to_owned(),
        preferred_id: id,
        preferred_encrypt: Some(false),
        direction: Some(direction),
    };
    use MediaKind::{Audio, Video};
    vec![
        ext(Audio, URI_MID, 1, Dir::Sendrecv),
        ext(Video, URI_MID, 1, Dir::Sendrecv),
        ext(Video, URI_RID, 2, Dir::Recvonly),
        ext(Video, URI_REPAIRED_RID, 3, Dir::Recvonly),
        ext(Audio, URI_ABS_SEND_TIME, 4, Dir::Sendrecv),
        ext(Video, URI_ABS_SEND_TIME, 4, Dir::Sendrecv),
        // Both ways: the SFU sends transport-cc feedback for what it receives, and stamps what it
        // sends so the receiver's feedback drives its downlink estimator (`bwe/`).
        ext(Audio, URI_TRANSPORT_CC, 5, Dir::Sendrecv),
        ext(Video, URI_TRANSPORT_CC, 5, Dir::Sendrecv),
        ext(Audio, URI_AUDIO_LEVEL, 10, Dir::Sendrecv),
        ext(Video, URI_VIDEO_ORIENTATION, 11, Dir::Sendrecv),
        ext(Video, URI_TOFFSET, 12, Dir::Sendrecv),
    ]
}

pub fn is_rtx(mime_type: &str) -> bool {
    mime_type.len() > 4 && mime_type[mime_type.len() - 4..].eq_ignore_ascii_case("/rtx")
}

fn param_i64(params: &CodecParameters, key: &str) -> Option<i64> {
    params.get(key).and_then(ParameterValue::as_i64)
}

/// H.264 profiles that must agree between two ends (RFC 6184 profile-level-id, first two bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum H264Profile {
    ConstrainedBaseline,
    Baseline,
    Main,
    ConstrainedHigh,
    High,
    Other(u8),
}

fn h264_profile(params: &CodecParameters) -> H264Profile {
    let plid = params.get("profile-level-id").and_then(ParameterValue::as_str).unwrap_or("42e01f");
    let byte = |i: usize| plid.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok());
    let (Some(idc), Some(iop)) = (byte(0), byte(2)) else {
        return H264Profile::Other(0);
    };
    let (cs0, cs1) = (iop & 0x80 != 0, iop & 0x40 != 0);
    match idc {
        0x42 if cs1 => H264Profile::ConstrainedBaseline,
        0x42 => H264Profile::Baseline,
        0x4d if cs0 => H264Profile::ConstrainedBaseline,
        0x4d => H264Profile::Main,
        0x58 if cs0 && cs1 => H264Profile::ConstrainedBaseline,
        0x58 if cs0 => H264Profile::Baseline,
        0x64 if iop & 0x0c == 0x0c => H264Profile::ConstrainedHigh,
        0x64 => H264Profile::High,
        other => H264Profile::Other(other),
    }
}

/// Whether two codecs are the same codec. `strict` also compares the parameters that make two
/// H.264 or VP9 streams undecodable by each other.
fn codecs_match(
    a: (&str, u32, Option<u8>, &CodecParameters),
    b: (&str, u32, Option<u8>, &CodecParameters),
    kind: MediaKind,
    strict: bool,
) -> bool {
    let (a_mime, a_clock, a_ch, a_params) = a;
    let (b_mime, b_clock, b_ch, b_params) = b;
    if !a_mime.eq_ignore_ascii_case(b_mime) || a_clock != b_clock {
        return false;
    }
    if kind == MediaKind::Audio && a_ch.unwrap_or(1) != b_ch.unwrap_or(1) {
        return false;
    }
    let mime = a_mime.to_ascii_lowercase();
    if mime == "video/h264" {
        if param_i64(a_params, "packetization-mode").unwrap_or(0)
            != param_i64(b_params, "packetization-mode").unwrap_or(0)
        {
            return false;
        }
        if strict && h264_profile(a_params) != h264_profile(b_params) {
            return false;
        }
    }
    if mime == "video/vp9"
        && strict
        && param_i64(a_params, "profile-id").unwrap_or(0) != param_i64(b_params, "profile-id").unwrap_or(0)
    {
        return false;
    }
    true
}

fn kind_of(mime: &str) -> Option<MediaKind> {
    let lower = mime.to_ascii_lowercase();
    if lower.starts_with("audio/") {
        Some(MediaKind::Audio)
    } else if lower.starts_with("video/") {
        Some(MediaKind::Video)
    } else {
        None
    }
}

/// The router's capabilities for the media codecs it was created with: each codec gets a payload
/// type, each video codec an RTX companion, and all supported header extensions are offered.
pub fn router_rtp_capabilities(media_codecs: &[RtpCodecCapability]) -> Result<RtpCapabilities, OrtcError> {
    let supported = supported_codecs();
    let mut taken: Vec<u8> = media_codecs.iter().filter_map(|c| c.preferred_payload_type).collect();
    let mut next_dynamic = DYNAMIC_PAYLOAD_TYPES.iter().copied();
    let mut take_dynamic = |taken: &mut Vec<u8>| -> Result<u8, OrtcError> {
        let pt = next_dynamic.by_ref().find(|pt| !taken.contains(pt)).ok_or(OrtcError::NoPayloadTypeLeft)?;
        taken.push(pt);
        Ok(pt)
    };
    let mut codecs = Vec::new();
    for media in media_codecs {
        if is_rtx(&media.mime_type) {
            return Err(OrtcError::UnsupportedCodec(format!("{}: RTX is added by the router", media.mime_type)));
        }
        if kind_of(&media.mime_type) != Some(media.kind) {
            return Err(OrtcError::InvalidParameters(format!(
                "{} is not of kind {}",
                media.mime_type,
                media.kind.as_str()
            )));
        }
        let base = supported
            .iter()
            .find(|s| {
                codecs_match(
                    (&s.mime_type, s.clock_rate, s.channels, &s.parameters),
                    (&media.mime_type, media.clock_rate, media.channels, &media.parameters),
                    media.kind,
                    false,
                )
            })
            .ok_or_else(|| OrtcError::UnsupportedCodec(format!("{}/{}", media.mime_type, media.clock_rate)))?;
        let pt = match media.preferred_payload_type {
            Some(pt) if (96..=127).contains(&pt) => pt,
            Some(pt) => return Err(OrtcError::InvalidParameters(format!("payload type {pt} is not dynamic"))),
            None => take_dynamic(&mut taken)?,
        };
        let mut parameters = base.parameters.clone();
        parameters.extend(media.parameters.clone());
        codecs.push(RtpCodecCapability {
            kind: media.kind,
            mime_type: base.mime_type.clone(),
            preferred_payload_type: Some(pt),
            clock_rate: base.clock_rate,
            channels: if media.kind == MediaKind::Audio { Some(media.channels.unwrap_or(1)) } else { None },
            parameters,
            rtcp_feedback: base.rtcp_feedback.clone(),
        });
        if media.kind == MediaKind::Video {
            let rtx_pt = take_dynamic(&mut taken)?;
            codecs.push(RtpCodecCapability {
                kind: MediaKind::Video,
                mime_type: "video/rtx".into(),
                preferred_payload_type: Some(rtx_pt),
                clock_rate: base.clock_rate,
                channels: None,
                parameters: BTreeMap::from([("apt".to_owned(), ParameterValue::Int(pt.into()))]),
                rtcp_feedback: Vec::new(),
            });
        }
    }
    Ok(RtpCapabilities { codecs, header_extensions: supported_header_extensions() })
}

/// How one producer's stream is translated into the router's numbering at ingress.
#[derive(Debug, Clone, PartialEq)]
pub struct RtpMapping {
    /// (producer payload type, router payload type), media and RTX codecs alike.
    pub codecs: Vec<(u8, u8)>,
    /// One per producer encoding, in order: the SSRC the router uses for it downstream.
    pub mapped_ssrcs: Vec<u32>,
}

/// Validates a producer's parameters and maps them onto the router's capabilities. `next_ssrc`
/// supplies fresh SSRCs for the router side.
pub fn producer_rtp_mapping(
    kind: MediaKind,
    params: &RtpParameters,
    caps: &RtpCapabilities,
    mut next_ssrc: impl FnMut() -> u32,
) -> Result<RtpMapping, OrtcError> {
    if params.codecs.is_empty() {
        return Err(OrtcError::InvalidParameters("no codecs".into()));
    }
    if params.encodings.is_empty() {
        return Err(OrtcError::InvalidParameters("no encodings".into()));
    }
    let mut codecs = Vec::new();
    for codec in params.codecs.iter().filter(|c| !is_rtx(&c.mime_type)) {
        if kind_of(&codec.mime_type) != Some(kind) {
            return Err(OrtcError::InvalidParameters(format!("{} in a {} producer", codec.mime_type, kind.as_str())));
        }
        let router = caps
            .codecs
            .iter()
            .find(|c| {
                c.kind == kind
                    && codecs_match(
                        (&codec.mime_type, codec.clock_rate, codec.channels, &codec.parameters),
                        (&c.mime_type, c.clock_rate, c.channels, &c.parameters),
                        kind,
                        true,
                    )
            })
            .ok_or_else(|| {
                OrtcError::UnsupportedCodec(format!("{} is not in the router's capabilities", codec.mime_type))
            })?;
        let router_pt = router.preferred_payload_type.ok_or(OrtcError::NoPayloadTypeLeft)?;
        codecs.push((codec.payload_type, router_pt));
    }
    for rtx in params.codecs.iter().filter(|c| is_rtx(&c.mime_type)) {
        let apt = param_i64(&rtx.parameters, "apt")
            .and_then(|a| u8::try_from(a).ok())
            .ok_or_else(|| OrtcError::InvalidParameters("RTX codec without a valid apt".into()))?;
        let Some(&(_, router_apt)) = codecs.iter().find(|(p, _)| *p == apt) else {
            return Err(OrtcError::InvalidParameters(format!("RTX apt {apt} names no codec")));
        };
        let router_rtx = caps
            .codecs
            .iter()
            .find(|c| is_rtx(&c.mime_type) && param_i64(&c.parameters, "apt") == Some(router_apt.into()))
            .and_then(|c| c.preferred_payload_type)
            .ok_or_else(|| OrtcError::UnsupportedCodec("no router RTX codec for the producer's".into()))?;
        codecs.push((rtx.payload_type, router_rtx));
    }
    if codecs.is_empty() {
        return Err(OrtcError::InvalidParameters("only RTX codecs".into()));
    }
    for enc in &params.encodings {
        if enc.ssrc.is_none() && enc.rid.is_none() {
            return Err(OrtcError::InvalidParameters("an encoding needs an ssrc or a rid".into()));
        }
        if let Some(pt) = enc.codec_payload_type
            && !params.codecs.iter().any(|c| c.payload_type == pt)
        {
            return Err(OrtcError::InvalidParameters(format!("encoding names unknown payload type {pt}")));
        }
    }
    let mapped_ssrcs = params.encodings.iter().map(|_| next_ssrc()).collect();
    Ok(RtpMapping { codecs, mapped_ssrcs })
}

/// What every consumer of a producer can be offered: the router's codecs the producer uses, with
/// the router's payload types, SSRCs and header extension ids.
pub fn consumable_rtp_parameters(
    kind: MediaKind,
    params: &RtpParameters,
    caps: &RtpCapabilities,
    mapping: &RtpMapping,
) -> RtpParameters {
    let mut codecs = Vec::new();
    for codec in &params.codecs {
        let Some(&(_, router_pt)) = mapping.codecs.iter().find(|(p, _)| *p == codec.payload_type) else {
            continue;
        };
        let Some(cap) = caps.codecs.iter().find(|c| c.preferred_payload_type == Some(router_pt)) else {
            continue;
        };
        codecs.push(RtpCodecParameters {
            mime_type: cap.mime_type.clone(),
            payload_type: router_pt,
            clock_rate: cap.clock_rate,
            channels: cap.channels,
            // The producer's own parameters describe its stream (profile-level-id and the like).
            parameters: if is_rtx(&cap.mime_type) { cap.parameters.clone() } else { codec.parameters.clone() },
            rtcp_feedback: cap.rtcp_feedback.clone(),
        });
    }
    let header_extensions = caps
        .header_extensions
        .iter()
        .filter(|e| e.kind == kind && matches!(e.direction, Some(Dir::Sendrecv | Dir::Sendonly) | None))
        .map(|e| RtpHeaderExtensionParameters {
            uri: e.uri.clone(),
            id: e.preferred_id,
            encrypt: Some(false),
            parameters: None,
        })
        .collect();
    let encodings = params
        .encodings
        .iter()
        .zip(&mapping.mapped_ssrcs)
        .map(|(enc, &ssrc)| RtpEncodingParameters {
            ssrc: Some(ssrc),
            scalability_mode: enc.scalability_mode.clone(),
            max_bitrate: enc.max_bitrate,
            dtx: enc.dtx,
            ..Default::default()
        })
        .collect();
    RtpParameters {
        mid: None,
        codecs,
        header_extensions,
        encodings,
        rtcp: RtcpParameters { cname: params.rtcp.cname.clone(), reduced_size: Some(true), mux: Some(true) },
    }
}

/// Browsers write a parameter-less feedback as `""`, mediasoup as an absent field.
fn same_feedback(a: &RtcpFeedback, b: &RtcpFeedback) -> bool {
    a.kind == b.kind && a.parameter.as_deref().unwrap_or("") == b.parameter.as_deref().unwrap_or("")
}

fn matching_cap<'a>(
    codec: &RtpCodecParameters,
    caps: &'a RtpCapabilities,
    kind: MediaKind,
) -> Option<&'a RtpCodecCapability> {
    caps.codecs.iter().find(|c| {
        codecs_match(
            (&codec.mime_type, codec.clock_rate, codec.channels, &codec.parameters),
            (&c.mime_type, c.clock_rate, c.channels, &c.parameters),
            kind,
            true,
        )
    })
}

pub fn can_consume(consumable: &RtpParameters, caps: &RtpCapabilities, kind: MediaKind) -> bool {
    consumable.codecs.iter().filter(|c| !is_rtx(&c.mime_type)).any(|c| matching_cap(c, caps, kind).is_some())
}

/// The parameters one consumer receives: the first codec the remote end can decode (and its RTX if
/// the remote supports RTX), the header extensions both sides know, feedback reduced to what the
/// remote understands, and one encoding with fresh SSRCs.
pub fn consumer_rtp_parameters(
    kind: MediaKind,
    consumable: &RtpParameters,
    caps: &RtpCapabilities,
    mut next_ssrc: impl FnMut() -> u32,
) -> Result<RtpParameters, OrtcError> {
    let (codec, cap) = consumable
        .codecs
        .iter()
        .filter(|c| !is_rtx(&c.mime_type))
        .find_map(|c| matching_cap(c, caps, kind).map(|cap| (c, cap)))
        .ok_or(OrtcError::CannotConsume)?;
    let header_extensions: Vec<RtpHeaderExtensionParameters> = consumable
        .header_extensions
        .iter()
        .filter(|e| caps.header_extensions.iter().any(|c| c.uri == e.uri && c.preferred_id == e.id && c.kind == kind))
        .cloned()
        .collect();
    let has = |uri: &str| header_extensions.iter().any(|e| e.uri == uri);
    let mut feedback: Vec<RtcpFeedback> =
        codec.rtcp_feedback.iter().filter(|f| cap.rtcp_feedback.iter().any(|c| same_feedback(c, f))).cloned().collect();
    // Bandwidth feedback: transport-cc when its extension is on, REMB with abs-send-time, else none.
    if has(URI_TRANSPORT_CC) {
        feedback.retain(|f| f.kind != "goog-remb");
    } else if has(URI_ABS_SEND_TIME) {
        feedback.retain(|f| f.kind != "transport-cc");
    } else {
        feedback.retain(|f| f.kind != "transport-cc" && f.kind != "goog-remb");
    }
    let mut codecs = vec![RtpCodecParameters { rtcp_feedback: feedback, ..codec.clone() }];
    let remote_has_rtx = caps.codecs.iter().any(|c| is_rtx(&c.mime_type) && c.kind == kind);
    let rtx = consumable
        .codecs
        .iter()
        .find(|c| is_rtx(&c.mime_type) && param_i64(&c.parameters, "apt") == Some(codec.payload_type.into()));
    let mut encoding = RtpEncodingParameters { ssrc: Some(next_ssrc()), ..Default::default() };
    if let (true, Some(rtx)) = (remote_has_rtx, rtx) {
        codecs.push(rtx.clone());
        encoding.rtx = Some(RtxParameters { ssrc: next_ssrc() });
    }
    if let Some(first) = consumable.encodings.first() {
        encoding.scalability_mode = first.scalability_mode.clone();
        // One outgoing stream of a simulcast producer: its encodings show as spatial layers (as
        // mediasoup does), the temporal layers as the sender declared them.
        if consumable.encodings.len() > 1 {
            let temporal = consumable
                .encodings
                .iter()
                .find_map(|e| e.scalability_mode.as_deref())
                .and_then(|m| m.split_once('T'))
                .and_then(|(_, t)| t.chars().take_while(char::is_ascii_digit).collect::<String>().parse::<u8>().ok())
                .unwrap_or(1);
            encoding.scalability_mode = Some(format!("L{}T{temporal}", consumable.encodings.len()));
        }
        encoding.max_bitrate = consumable.encodings.iter().filter_map(|e| e.max_bitrate).max();
    }
    Ok(RtpParameters { mid: None, codecs, header_extensions, encodings: vec![encoding], rtcp: consumable.rtcp.clone() })
}

#[cfg(test)]
pub(crate) mod tests;
