//! What the str0m peers announce to the worker and what they send: mediasoup-shaped RTP parameters
//! built from the same payload types and header extension ids the str0m `Rtc` is configured with,
//! and VP8 / Opus payloads that carry a frame counter so a receiver can check them byte for byte.

use anyhow::{Context, bail, ensure};
use octo_ipc::{
    CodecParameters, MediaKind, ParameterValue, RtcpFeedback, RtcpParameters, RtpCapabilities, RtpCodecCapability,
    RtpCodecParameters, RtpEncodingParameters, RtpHeaderExtensionParameters, RtpParameters, RtxParameters,
};
use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, Pt};
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Rtc, RtcConfig};

pub const URI_MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
pub const URI_ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
pub const URI_TRANSPORT_CC: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
pub const URI_AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
pub const URI_TOFFSET: &str = "urn:ietf:params:rtp-hdrext:toffset";
pub const URI_VIDEO_ORIENTATION: &str = "urn:3gpp:video-orientation";

/// The str0m extension for a URI the peers use; `None` for URIs the harness leaves unmapped.
fn extension_for(uri: &str) -> Option<Extension> {
    Some(match uri {
        URI_MID => Extension::RtpMid,
        URI_ABS_SEND_TIME => Extension::AbsoluteSendTime,
        URI_TRANSPORT_CC => Extension::TransportSequenceNumber,
        URI_AUDIO_LEVEL => Extension::AudioLevel,
        URI_TOFFSET => Extension::TransmissionTimeOffset,
        URI_VIDEO_ORIENTATION => Extension::VideoOrientation,
        _ => return None,
    })
}

/// The router's codecs for these tests: Opus and VP8 (the router adds RTX for VP8).
pub fn router_media_codecs() -> Vec<RtpCodecCapability> {
    let codec = |kind, mime: &str, clock_rate, channels| RtpCodecCapability {
        kind,
        mime_type: mime.into(),
        preferred_payload_type: None,
        clock_rate,
        channels,
        parameters: CodecParameters::new(),
        rtcp_feedback: Vec::new(),
    };
    vec![codec(MediaKind::Audio, "audio/opus", 48_000, Some(2)), codec(MediaKind::Video, "video/VP8", 90_000, None)]
}

/// Payload types and header extension ids of one str0m peer. The `Rtc` is built from it and the
/// parameters announced to the worker are derived from it, so the two cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerMedia {
    pub vp8_pt: u8,
    pub vp8_rtx_pt: u8,
    pub opus_pt: u8,
    /// (id, uri), one id per uri for audio and video alike.
    pub extensions: Vec<(u8, &'static str)>,
}

impl PeerMedia {
    /// A sender laid out as Chrome lays out its offer (VP8 96/97, Opus 111; audio-level 1,
    /// abs-send-time 2, transport-cc 3, mid 4): all different from the router's, so the worker's
    /// payload-type and extension-id mapping is exercised.
    pub fn chrome_like_sender() -> Self {
        PeerMedia {
            vp8_pt: 96,
            vp8_rtx_pt: 97,
            opus_pt: 111,
            extensions: vec![(1, URI_AUDIO_LEVEL), (2, URI_ABS_SEND_TIME), (3, URI_TRANSPORT_CC), (4, URI_MID)],
        }
    }

    /// A receiver configured from the router's capabilities, as mediasoup-client configures a
    /// device: the router's preferred payload types and extension ids.
    pub fn from_router(caps: &RtpCapabilities) -> anyhow::Result<Self> {
        let pt_of = |mime: &str| {
            caps.codecs
                .iter()
                .find(|c| c.mime_type.eq_ignore_ascii_case(mime))
                .and_then(|c| c.preferred_payload_type)
                .with_context(|| format!("router capabilities have no {mime}"))
        };
        let vp8_pt = pt_of("video/VP8")?;
        let opus_pt = pt_of("audio/opus")?;
        let vp8_rtx_pt = caps
            .codecs
            .iter()
            .find(|c| {
                c.mime_type.eq_ignore_ascii_case("video/rtx")
                    && c.parameters.get("apt").and_then(ParameterValue::as_i64) == Some(i64::from(vp8_pt))
            })
            .and_then(|c| c.preferred_payload_type)
            .context("router capabilities have no RTX for VP8")?;
        let mut extensions: Vec<(u8, &'static str)> = Vec::new();
        for ext in &caps.header_extensions {
            let Some(uri) =
                [URI_MID, URI_ABS_SEND_TIME, URI_TRANSPORT_CC, URI_AUDIO_LEVEL, URI_TOFFSET, URI_VIDEO_ORIENTATION]
                    .into_iter()
                    .find(|u| *u == ext.uri)
            else {
                continue;
            };
            match extensions.iter().find(|(_, u)| *u == uri) {
                Some((id, _)) if *id != ext.preferred_id => {
                    bail!("router uses two ids for {uri} ({id} and {}): one str0m map cannot", ext.preferred_id)
                }
                Some(_) => {}
                None => extensions.push((ext.preferred_id, uri)),
            }
        }
        Ok(PeerMedia { vp8_pt, vp8_rtx_pt, opus_pt, extensions })
    }

    pub fn id_of(&self, uri: &str) -> Option<u8> {
        self.extensions.iter().find(|(_, u)| *u == uri).map(|(id, _)| *id)
    }

    /// A str0m `Rtc` in RTP mode (packets in and out, no depacketizing) with raw packet events,
    /// these payload types and these extension ids.
    pub fn build_rtc(&self) -> Rtc {
        let mut exts = ExtensionMap::empty();
        for (id, uri) in &self.extensions {
            if let Some(ext) = extension_for(uri) {
                exts.set(*id, ext);
            }
        }
        let mut config = RtcConfig::new()
            .set_rtp_mode(true)
            .enable_raw_packets(true)
            .clear_codecs()
            .set_extension_map(exts)
            // Stats events are not needed and would only grow the event list.
            .set_stats_interval(None);
        let codecs = config.codec_config();
        codecs.add_config(
            Pt::from(self.vp8_pt),
            Some(Pt::from(self.vp8_rtx_pt)),
            Codec::Vp8,
            Frequency::NINETY_KHZ,
            None,
            FormatParams::default(),
        );
        codecs.add_config(
            Pt::from(self.opus_pt),
            None,
            Codec::Opus,
            Frequency::FORTY_EIGHT_KHZ,
            Some(2),
            FormatParams { min_p_time: Some(10), use_inband_fec: Some(true), ..Default::default() },
        );
        config.build(std::time::Instant::now())
    }

    fn header_extensions(&self, kind: MediaKind) -> Vec<RtpHeaderExtensionParameters> {
        self.extensions
            .iter()
            .filter(|(_, uri)| match kind {
                MediaKind::Audio => *uri != URI_VIDEO_ORIENTATION && *uri != URI_TOFFSET,
                MediaKind::Video => *uri != URI_AUDIO_LEVEL,
            })
            .map(|(id, uri)| RtpHeaderExtensionParameters {
                uri: (*uri).into(),
                id: *id,
                encrypt: Some(false),
                parameters: Some(CodecParameters::new()),
            })
            .collect()
    }

    /// What mediasoup-client would send in `produce()` for a VP8 track with RTX.
    pub fn vp8_parameters(&self, mid: &str, ssrc: u32, rtx_ssrc: u32, cname: &str) -> RtpParameters {
        let fb = ["goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"]
            .iter()
            .map(|f| match f.split_once(' ') {
                Some((kind, param)) => RtcpFeedback::new(kind, Some(param)),
                None => RtcpFeedback::new(f, Some("")),
            })
            .collect();
        let mut apt = CodecParameters::new();
        apt.insert("apt".into(), ParameterValue::Int(i64::from(self.vp8_pt)));
        RtpParameters {
            mid: Some(mid.into()),
            codecs: vec![
                RtpCodecParameters {
                    mime_type: "video/VP8".into(),
                    payload_type: self.vp8_pt,
                    clock_rate: 90_000,
                    channels: None,
                    parameters: CodecParameters::new(),
                    rtcp_feedback: fb,
                },
                RtpCodecParameters {
                    mime_type: "video/rtx".into(),
                    payload_type: self.vp8_rtx_pt,
                    clock_rate: 90_000,
                    channels: None,
                    parameters: apt,
                    rtcp_feedback: Vec::new(),
                },
            ],
            header_extensions: self.header_extensions(MediaKind::Video),
            encodings: vec![RtpEncodingParameters {
                ssrc: Some(ssrc),
                rtx: Some(RtxParameters { ssrc: rtx_ssrc }),
                dtx: Some(false),
                ..Default::default()
            }],
            rtcp: RtcpParameters { cname: Some(cname.into()), reduced_size: Some(true), mux: None },
        }
    }

    /// What mediasoup-client would send in `produce()` for an Opus track.
    pub fn opus_parameters(&self, mid: &str, ssrc: u32, cname: &str) -> RtpParameters {
        let mut params = CodecParameters::new();
        params.insert("minptime".into(), ParameterValue::Int(10));
        params.insert("useinbandfec".into(), ParameterValue::Int(1));
        RtpParameters {
            mid: Some(mid.into()),
            codecs: vec![RtpCodecParameters {
                mime_type: "audio/opus".into(),
                payload_type: self.opus_pt,
                clock_rate: 48_000,
                channels: Some(2),
                parameters: params,
                rtcp_feedback: vec![RtcpFeedback::new("transport-cc", Some(""))],
            }],
            header_extensions: self.header_extensions(MediaKind::Audio),
            encodings: vec![RtpEncodingParameters { ssrc: Some(ssrc), dtx: Some(false), ..Default::default() }],
            rtcp: RtcpParameters { cname: Some(cname.into()), reduced_size: Some(true), mux: None },
        }
    }

    /// Checks that a consumer's parameters fit this receiver: its payload types are ours and every
    /// extension str0m knows carries the id we configured. A mismatch would make str0m drop or
    /// misread packets, which must not be mistaken for a forwarding failure.
    pub fn check_consumer(&self, kind: MediaKind, params: &RtpParameters) -> anyhow::Result<()> {
        let main = params.codecs.first().context("consumer has no codec")?;
        let expected = match kind {
            MediaKind::Video => self.vp8_pt,
            MediaKind::Audio => self.opus_pt,
        };
        if main.payload_type != expected {
            bail!(
                "consumer payload type {} for {}, the receiver expects {expected}",
                main.payload_type,
                main.mime_type
            );
        }
        if let Some(rtx) = params.codecs.iter().find(|c| c.mime_type.eq_ignore_ascii_case("video/rtx"))
            && rtx.payload_type != self.vp8_rtx_pt
        {
            bail!("consumer RTX payload type {}, the receiver expects {}", rtx.payload_type, self.vp8_rtx_pt);
        }
        for ext in &params.header_extensions {
            if extension_for(&ext.uri).is_some() && self.id_of(&ext.uri) != Some(ext.id) {
                bail!("consumer uses id {} for {}, the receiver has {:?}", ext.id, ext.uri, self.id_of(&ext.uri));
            }
        }
        let enc = params.encodings.first().context("consumer has no encoding")?;
        enc.ssrc.context("consumer encoding has no ssrc")?;
        if kind == MediaKind::Video && enc.rtx.is_none() {
            bail!("video consumer without RTX: NACK could not be answered");
        }
        if params.mid.is_none() {
            bail!("consumer has no mid");
        }
        Ok(())
    }
}

const MAGIC_VP8: &[u8; 4] = b"OCTO";
const MAGIC_OPUS: &[u8; 4] = b"OPUS";
/// Bytes after the magic and counter, derived from the counter, so any corruption shows.
const FILLER: usize = 64;

fn filler(counter: u32, out: &mut Vec<u8>) {
    out.extend((0..FILLER).map(|i| (counter as usize).wrapping_mul(7).wrapping_add(i) as u8));
}

/// One VP8 frame in one RTP payload: the payload descriptor (RFC 7741 §4.2, S=1, PID=0), the frame
/// tag (RFC 6386 §9.1, P=0 for a keyframe, then the start code 9d 01 2a and a 320x240 size), then a
/// marker, the counter and filler.
pub fn vp8_payload(counter: u32, keyframe: bool) -> Vec<u8> {
    const FIRST_PART_SIZE: u32 = 16;
    let inter = u32::from(!keyframe);
    // frame tag: bit 0 P (inter frame), bits 1-3 version 0, bit 4 show_frame, bits 5-23 first part size
    let tag = inter | (1 << 4) | (FIRST_PART_SIZE << 5);
    let mut out = vec![0x10, tag as u8, (tag >> 8) as u8, (tag >> 16) as u8];
    if keyframe {
        out.extend_from_slice(&[0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]);
    }
    out.extend_from_slice(MAGIC_VP8);
    out.extend_from_slice(&counter.to_be_bytes());
    filler(counter, &mut out);
    out
}

/// The counter and keyframe flag of a payload made by [`vp8_payload`]; `None` if it is not one
/// byte for byte.
pub fn parse_vp8_payload(payload: &[u8]) -> Option<(u32, bool)> {
    let keyframe = payload.get(1)? & 1 == 0;
    let at = if keyframe { 11 } else { 4 };
    let counter = u32::from_be_bytes(payload.get(at + 4..at + 8)?.try_into().ok()?);
    (vp8_payload(counter, keyframe) == payload).then_some((counter, keyframe))
}

/// An Opus packet (TOC byte of a 20 ms CELT frame) carrying a marker, the counter and filler.
pub fn opus_payload(counter: u32) -> Vec<u8> {
    let mut out = vec![0xfc];
    out.extend_from_slice(MAGIC_OPUS);
    out.extend_from_slice(&counter.to_be_bytes());
    filler(counter, &mut out);
    out
}

pub fn parse_opus_payload(payload: &[u8]) -> Option<u32> {
    let counter = u32::from_be_bytes(payload.get(5..9)?.try_into().ok()?);
    (opus_payload(counter) == payload).then_some(counter)
}

/// Sequence numbers must advance exactly as the sender's counter does: the SFU forwards every
/// packet from its first one on under one continuous offset (one packet per frame / per Opus packet).
pub fn check_sequence_follows_counter(
    what: &str,
    by_counter: &std::collections::BTreeMap<u32, u16>,
) -> anyhow::Result<()> {
    let Some((&c0, &s0)) = by_counter.iter().next() else { return Ok(()) };
    for (&c, &s) in by_counter {
        let expected = s0.wrapping_add(c.wrapping_sub(c0) as u16);
        ensure!(
            s == expected,
            "{what}: packet {c} has sequence number {s}, expected {expected} (packet {c0} had {s0})"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_payloads_round_trip_and_look_like_vp8() {
        let key = vp8_payload(7, true);
        assert_eq!(key[0] & 0x10, 0x10, "S bit");
        assert_eq!(key[0] & 0x07, 0, "PID 0");
        assert_eq!(key[1] & 1, 0, "P bit clear on a keyframe");
        assert_eq!(&key[4..7], &[0x9d, 0x01, 0x2a]);
        assert_eq!(parse_vp8_payload(&key), Some((7, true)));
        let delta = vp8_payload(8, false);
        assert_eq!(delta[1] & 1, 1);
        assert_eq!(parse_vp8_payload(&delta), Some((8, false)));
        let mut bad = delta.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(parse_vp8_payload(&bad), None);
        assert_eq!(parse_vp8_payload(&delta[..10]), None);
        assert_eq!(parse_opus_payload(&opus_payload(9)), Some(9));
        assert_eq!(parse_opus_payload(&[]), None);
    }

    #[test]
    fn parameters_follow_the_peer_layout() {
        let media = PeerMedia::chrome_like_sender();
        let vp8 = media.vp8_parameters("0", 1111, 2222, "cname");
        assert_eq!(vp8.codecs[1].parameters.get("apt"), Some(&ParameterValue::Int(96)));
        assert!(vp8.header_extensions.iter().any(|e| e.uri == URI_MID && e.id == 4));
        assert!(!vp8.header_extensions.iter().any(|e| e.uri == URI_AUDIO_LEVEL));
        let opus = media.opus_parameters("1", 3333, "cname");
        assert!(opus.header_extensions.iter().any(|e| e.uri == URI_AUDIO_LEVEL && e.id == 1));
        assert_eq!(opus.encodings[0].ssrc, Some(3333));
    }
}
