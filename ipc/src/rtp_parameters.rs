//! RTP capabilities and parameters, shaped exactly as mediasoup's so that `mediasoup-client`
//! accepts them unchanged.
//!
//! The same types travel in bincode frames and in Socket.IO JSON. An absent optional field is `None`
//! here; the controller strips the resulting `null`s before JSON reaches a client, because
//! `skip_serializing_if` would break bincode (which is not self-describing).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// A codec `parameters` value: mediasoup allows strings and numbers (`"profile-level-id": "42e01f"`,
/// `"packetization-mode": 1`).
#[derive(Debug, Clone, PartialEq)]
pub enum ParameterValue {
    String(String),
    Int(i64),
    Float(f64),
}

impl ParameterValue {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            ParameterValue::Int(i) => Some(*i),
            ParameterValue::String(s) => s.parse().ok(),
            ParameterValue::Float(_) => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            ParameterValue::String(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for ParameterValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParameterValue::String(s) => f.write_str(s),
            ParameterValue::Int(i) => write!(f, "{i}"),
            ParameterValue::Float(x) => write!(f, "{x}"),
        }
    }
}

/// The tagged form used in binary formats, which cannot ask the input what type comes next.
#[derive(Serialize, Deserialize)]
enum TaggedParameterValue {
    String(String),
    Int(i64),
    Float(f64),
}

impl Serialize for ParameterValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            match self {
                ParameterValue::String(v) => s.serialize_str(v),
                ParameterValue::Int(v) => s.serialize_i64(*v),
                ParameterValue::Float(v) => s.serialize_f64(*v),
            }
        } else {
            match self.clone() {
                ParameterValue::String(v) => TaggedParameterValue::String(v),
                ParameterValue::Int(v) => TaggedParameterValue::Int(v),
                ParameterValue::Float(v) => TaggedParameterValue::Float(v),
            }
            .serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for ParameterValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PlainVisitor;
        impl Visitor<'_> for PlainVisitor {
            type Value = ParameterValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ParameterValue::String(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(ParameterValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v).map(ParameterValue::Int).map_err(|_| E::custom("number out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(ParameterValue::Float(v))
            }
        }
        if d.is_human_readable() {
            d.deserialize_any(PlainVisitor)
        } else {
            Ok(match TaggedParameterValue::deserialize(d)? {
                TaggedParameterValue::String(v) => ParameterValue::String(v),
                TaggedParameterValue::Int(v) => ParameterValue::Int(v),
                TaggedParameterValue::Float(v) => ParameterValue::Float(v),
            })
        }
    }
}

pub type CodecParameters = BTreeMap<String, ParameterValue>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtcpFeedback {
    #[serde(rename = "type")]
    pub kind: String,
    pub parameter: Option<String>,
}

impl RtcpFeedback {
    pub fn new(kind: &str, parameter: Option<&str>) -> Self {
        Self { kind: kind.to_owned(), parameter: parameter.map(str::to_owned) }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpCodecCapability {
    pub kind: MediaKind,
    pub mime_type: String,
    pub preferred_payload_type: Option<u8>,
    pub clock_rate: u32,
    pub channels: Option<u8>,
    #[serde(default)]
    pub parameters: CodecParameters,
    #[serde(default)]
    pub rtcp_feedback: Vec<RtcpFeedback>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RtpHeaderExtensionDirection {
    Sendrecv,
    Sendonly,
    Recvonly,
    Inactive,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpHeaderExtension {
    pub kind: MediaKind,
    pub uri: String,
    pub preferred_id: u8,
    pub preferred_encrypt: Option<bool>,
    pub direction: Option<RtpHeaderExtensionDirection>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpCapabilities {
    #[serde(default)]
    pub codecs: Vec<RtpCodecCapability>,
    #[serde(default)]
    pub header_extensions: Vec<RtpHeaderExtension>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpCodecParameters {
    pub mime_type: String,
    pub payload_type: u8,
    pub clock_rate: u32,
    pub channels: Option<u8>,
    #[serde(default)]
    pub parameters: CodecParameters,
    #[serde(default)]
    pub rtcp_feedback: Vec<RtcpFeedback>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpHeaderExtensionParameters {
    pub uri: String,
    pub id: u8,
    pub encrypt: Option<bool>,
    pub parameters: Option<CodecParameters>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtxParameters {
    pub ssrc: u32,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpEncodingParameters {
    pub ssrc: Option<u32>,
    pub rid: Option<String>,
    pub codec_payload_type: Option<u8>,
    pub rtx: Option<RtxParameters>,
    pub dtx: Option<bool>,
    pub scalability_mode: Option<String>,
    pub scale_resolution_down_by: Option<f64>,
    pub max_bitrate: Option<u32>,
    pub max_framerate: Option<f64>,
    pub adaptive_ptime: Option<bool>,
    pub priority: Option<String>,
    pub network_priority: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtcpParameters {
    pub cname: Option<String>,
    pub reduced_size: Option<bool>,
    pub mux: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpParameters {
    pub mid: Option<String>,
    #[serde(default)]
    pub codecs: Vec<RtpCodecParameters>,
    #[serde(default)]
    pub header_extensions: Vec<RtpHeaderExtensionParameters>,
    #[serde(default)]
    pub encodings: Vec<RtpEncodingParameters>,
    #[serde(default)]
    pub rtcp: RtcpParameters,
}

/// How a producer's streams are laid out, as mediasoup reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RtpType {
    Simple,
    Simulcast,
    Svc,
    Pipe,
}
