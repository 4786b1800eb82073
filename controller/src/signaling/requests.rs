//! The requests of Octo's own dialect, parsed and checked before anything acts on them: each
//! event's JSON payload into its typed request, ids parsed, `appData` an object. Pure (no socket,
//! no room), so hostile payloads are unit-tested and fuzzed (`fuzz/fuzz_targets/signaling.rs`).

use octo_ipc::{
    ConsumerId, ConsumerLayers, DataProducerId, DtlsParameters, MediaKind, ProducerId, RtpCapabilities, RtpParameters,
    SctpStreamParameters, TransportId,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{Code, SignalError};
use super::json::{parse, parse_id};
use crate::rooms::Direction;

/// The version of Octo's dialect this server speaks (PROTOCOL.md); a `joinRoom` naming another is
/// refused with `unsupported_version`.
pub const PROTOCOL_VERSION: u64 = 1;

/// A client request of Octo's dialect, ready to act on.
#[derive(Debug)]
pub enum Request {
    JoinRoom {
        room_id: String,
        display_name: String,
        token: Option<String>,
    },
    LeaveRoom,
    CreateWebRtcTransport {
        direction: Direction,
        sctp_streams: Option<octo_ipc::NumSctpStreams>,
    },
    ConnectWebRtcTransport {
        transport_id: TransportId,
        dtls_parameters: DtlsParameters,
    },
    Produce {
        transport_id: TransportId,
        kind: MediaKind,
        rtp_parameters: RtpParameters,
        app_data: Value,
    },
    Consume {
        transport_id: TransportId,
        producer_id: ProducerId,
        rtp_capabilities: RtpCapabilities,
    },
    SetConsumerPaused {
        consumer_id: ConsumerId,
        paused: bool,
    },
    SetConsumerPreferredLayers {
        consumer_id: ConsumerId,
        layers: ConsumerLayers,
    },
    SetConsumerPriority {
        consumer_id: ConsumerId,
        priority: u8,
    },
    RequestConsumerKeyFrame {
        consumer_id: ConsumerId,
    },
    SetProducerPaused {
        producer_id: ProducerId,
        paused: bool,
    },
    CloseProducer {
        producer_id: ProducerId,
    },
    RestartIce {
        transport_id: TransportId,
    },
    GetStats {
        id: TransportId,
    },
    ProduceData {
        transport_id: TransportId,
        sctp_stream_parameters: SctpStreamParameters,
        label: String,
        protocol: String,
        app_data: Value,
    },
    ConsumeData {
        transport_id: TransportId,
        data_producer_id: DataProducerId,
    },
    /// Raise (`raiseHand`) or lower (`lowerHand`) the caller's hand.
    SetHand {
        raised: bool,
    },
}

impl Request {
    /// `event`'s `payload`, or the error its ack carries (`bad_request`, `unknown_event`).
    pub fn parse(event: &str, payload: Value) -> Result<Self, SignalError> {
        Ok(match event {
            "joinRoom" => {
                let r: JoinRoom = parse(payload)?;
                // A page cached from before an upgrade (or a client built for a newer server) is
                // refused with a code its page can explain: "reload".
                if let Some(v) = r.protocol.filter(|v| *v != PROTOCOL_VERSION) {
                    return Err(SignalError::new(
                        Code::UnsupportedVersion,
                        format!("the page speaks protocol {v}, this server speaks {PROTOCOL_VERSION}"),
                    ));
                }
                Request::JoinRoom {
                    room_id: r.room_id,
                    display_name: r.display_name.unwrap_or_default(),
                    token: r.token,
                }
            }
            "leaveRoom" => Request::LeaveRoom,
            "raiseHand" | "lowerHand" => Request::SetHand { raised: event == "raiseHand" },
            "createWebRtcTransport" => {
                let r: CreateTransport = parse(payload)?;
                Request::CreateWebRtcTransport {
                    direction: r.direction,
                    sctp_streams: r.sctp_capabilities.map(|c| c.num_streams),
                }
            }
            "connectWebRtcTransport" => {
                let r: ConnectTransport = parse(payload)?;
                Request::ConnectWebRtcTransport {
                    transport_id: parse_id(&r.transport_id, "transportId")?,
                    dtls_parameters: r.dtls_parameters,
                }
            }
            "produce" => {
                let r: Produce = parse(payload)?;
                Request::Produce {
                    transport_id: parse_id(&r.transport_id, "transportId")?,
                    kind: r.kind,
                    rtp_parameters: r.rtp_parameters,
                    app_data: app_data_object(r.app_data)?,
                }
            }
            "consume" => {
                let r: Consume = parse(payload)?;
                Request::Consume {
                    transport_id: parse_id(&r.transport_id, "transportId")?,
                    producer_id: parse_id(&r.producer_id, "producerId")?,
                    rtp_capabilities: r.rtp_capabilities,
                }
            }
            "resumeConsumer" | "pauseConsumer" => {
                let r: ConsumerRef = parse(payload)?;
                Request::SetConsumerPaused {
                    consumer_id: parse_id(&r.consumer_id, "consumerId")?,
                    paused: event == "pauseConsumer",
                }
            }
            "setConsumerPreferredLayers" => {
                let r: PreferredLayers = parse(payload)?;
                Request::SetConsumerPreferredLayers {
                    consumer_id: parse_id(&r.consumer_id, "consumerId")?,
                    layers: ConsumerLayers { spatial_layer: r.spatial_layer, temporal_layer: r.temporal_layer },
                }
            }
            "setConsumerPriority" => {
                let r: Priority = parse(payload)?;
                Request::SetConsumerPriority {
                    consumer_id: parse_id(&r.consumer_id, "consumerId")?,
                    priority: r.priority,
                }
            }
            "requestConsumerKeyFrame" => {
                let r: ConsumerRef = parse(payload)?;
                Request::RequestConsumerKeyFrame { consumer_id: parse_id(&r.consumer_id, "consumerId")? }
            }
            "pauseProducer" | "resumeProducer" | "closeProducer" => {
                let r: ProducerRef = parse(payload)?;
                let producer_id = parse_id(&r.producer_id, "producerId")?;
                match event {
                    "closeProducer" => Request::CloseProducer { producer_id },
                    _ => Request::SetProducerPaused { producer_id, paused: event == "pauseProducer" },
                }
            }
            "restartIce" => {
                let r: TransportRef = parse(payload)?;
                Request::RestartIce { transport_id: parse_id(&r.transport_id, "transportId")? }
            }
            "getStats" => {
                let r: StatsRef = parse(payload)?;
                Request::GetStats { id: parse_id(&r.id, "id")? }
            }
            "produceData" => {
                let r: ProduceData = parse(payload)?;
                Request::ProduceData {
                    transport_id: parse_id(&r.transport_id, "transportId")?,
                    sctp_stream_parameters: r.sctp_stream_parameters,
                    label: r.label,
                    protocol: r.protocol,
                    app_data: app_data_object(r.app_data)?,
                }
            }
            "consumeData" => {
                let r: ConsumeData = parse(payload)?;
                Request::ConsumeData {
                    transport_id: parse_id(&r.transport_id, "transportId")?,
                    data_producer_id: parse_id(&r.data_producer_id, "dataProducerId")?,
                }
            }
            other => return Err(SignalError::new(Code::UnknownEvent, format!("unknown event {other:?}"))),
        })
    }
}

// The payloads as they arrive.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JoinRoom {
    room_id: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    token: Option<String>,
    /// The dialect's version the client was written for; absent: any (mediasoup-demo style clients).
    #[serde(default)]
    protocol: Option<u64>,
}

/// `spatialLayer` 0 is the lowest encoding; the temporal layer defaults to the highest.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PreferredLayers {
    consumer_id: String,
    spatial_layer: u8,
    #[serde(default)]
    temporal_layer: Option<u8>,
}

/// 1–255, higher first.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Priority {
    consumer_id: String,
    priority: u8,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateTransport {
    direction: Direction,
    /// With it, the transport also carries an SCTP association for DataChannels.
    #[serde(default)]
    sctp_capabilities: Option<octo_ipc::SctpCapabilities>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProduceData {
    transport_id: String,
    sctp_stream_parameters: SctpStreamParameters,
    #[serde(default)]
    label: String,
    #[serde(default)]
    protocol: String,
    #[serde(default)]
    app_data: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsumeData {
    transport_id: String,
    data_producer_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnectTransport {
    transport_id: String,
    dtls_parameters: DtlsParameters,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Produce {
    transport_id: String,
    kind: MediaKind,
    rtp_parameters: RtpParameters,
    #[serde(default)]
    app_data: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Consume {
    transport_id: String,
    producer_id: String,
    rtp_capabilities: RtpCapabilities,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProducerRef {
    producer_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsumerRef {
    consumer_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransportRef {
    transport_id: String,
}

#[derive(Deserialize)]
struct StatsRef {
    id: String,
}

/// `appData` is the client's own: any JSON object, `{}` when absent.
fn app_data_object(app_data: Option<Value>) -> Result<Value, SignalError> {
    match app_data {
        None => Ok(json!({})),
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err(SignalError::bad_request("appData must be an object")),
    }
}

/// The fuzz target's body (`fuzz/fuzz_targets/signaling.rs`): an event name, a NUL byte, then its
/// JSON payload (a name Octo's dialect does not know must be refused cleanly too). Must never
/// panic; a request that parses must pass or fail the room-id and name limits cleanly, and its
/// mediasoup-shaped objects must read back what they write. Returns whether the payload parsed
/// into a request.
pub fn fuzz_request(data: &[u8]) -> bool {
    let Some(nul) = data.iter().position(|&b| b == 0) else { return false };
    let (Ok(event), json) = (std::str::from_utf8(&data[..nul]), &data[nul + 1..]) else { return false };
    let Ok(payload) = serde_json::from_slice::<Value>(json) else { return false };
    let Ok(request) = Request::parse(event, payload) else { return false };
    match &request {
        Request::JoinRoom { room_id, display_name, .. } => {
            let _ = super::limits::check_room_id(room_id);
            let _ = super::limits::check_display_name(display_name);
        }
        Request::Produce { rtp_parameters, .. } => round_trip(rtp_parameters),
        Request::Consume { rtp_capabilities, .. } => round_trip(rtp_capabilities),
        _ => {}
    }
    true
}

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let json = serde_json::to_value(value).expect("a parsed object serializes");
    let back: T = serde_json::from_value(json).expect("what was written reads back");
    assert_eq!(&back, value, "an object changed through its JSON");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(event: &str, payload: Value) -> Result<Request, SignalError> {
        Request::parse(event, payload)
    }

    #[test]
    fn a_join_naming_another_protocol_version_is_refused_with_its_own_code() {
        let join = |extra: Value| {
            let mut p = json!({ "roomId": "r", "displayName": "A" });
            p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            parse("joinRoom", p)
        };
        assert!(matches!(join(json!({})), Ok(Request::JoinRoom { .. })), "no version: any client");
        assert!(matches!(join(json!({ "protocol": PROTOCOL_VERSION })), Ok(Request::JoinRoom { .. })));
        let e = join(json!({ "protocol": PROTOCOL_VERSION + 1 })).unwrap_err();
        assert_eq!(e.code, Code::UnsupportedVersion);
        assert_eq!(e.message, "the page speaks protocol 2, this server speaks 1");
        assert_eq!(join(json!({ "protocol": "1" })).unwrap_err().code, Code::BadRequest, "a version is a number");
        assert_eq!(join(json!({ "protocol": -1 })).unwrap_err().code, Code::BadRequest);
    }

    #[test]
    fn payloads_are_typed_and_ids_checked_before_anything_acts() {
        let id = "1b6a2f5e-3c43-4d1e-9a57-0a3e2f1c9b88";
        assert!(matches!(parse("restartIce", json!({ "transportId": id })), Ok(Request::RestartIce { .. })));
        assert!(matches!(
            parse("pauseConsumer", json!({ "consumerId": id })),
            Ok(Request::SetConsumerPaused { paused: true, .. })
        ));
        for (event, payload) in [
            ("restartIce", json!({ "transportId": "not-an-id" })),
            ("restartIce", json!({})),
            ("restartIce", json!([1, 2])),
            ("produce", json!({ "transportId": id, "kind": "video", "rtpParameters": {}, "appData": 5 })),
            ("setConsumerPriority", json!({ "consumerId": id, "priority": 256 })),
            ("setConsumerPreferredLayers", json!({ "consumerId": id, "spatialLayer": 0, "extra": 1 })),
        ] {
            let e = parse(event, payload.clone()).unwrap_err();
            assert_eq!(e.code, Code::BadRequest, "{event} {payload}: {e:?}");
        }
        assert_eq!(parse("noSuchEvent", json!({})).unwrap_err().code, Code::UnknownEvent);
        assert!(matches!(parse("leaveRoom", json!("anything")), Ok(Request::LeaveRoom)));
    }

    #[test]
    fn garbage_never_panics() {
        for data in [&b""[..], b"\x00", b"\x00{}", b"produce\x00{\"rtpParameters\":[]}", b"\xff\xfe\x00{}", b"joinRoom"]
        {
            assert!(!fuzz_request(data), "{data:?}");
        }
        assert!(fuzz_request(b"createWebRtcTransport\x00{\"direction\":\"recv\"}"));
        assert!(
            fuzz_request(b"joinRoom\x00{\"roomId\":\"\\u0000\",\"displayName\":\"x\"}"),
            "parsed, then refused by the limits"
        );
    }
}
