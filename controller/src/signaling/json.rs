//! JSON in and out: typed parsing of payloads, and mediasoup-shaped output of ipc types.
//!
//! The ipc types keep absent optional fields as `None` (bincode cannot skip fields), which serde
//! writes as `null`; mediasoup omits them, and mediasoup-client's validators reject some `null`s. So
//! every ipc value is serialized and then stripped of `null` members. Application data (`appData`)
//! is the client's own and is never passed through here.

use std::str::FromStr;

use octo_ipc::{ConsumerData, IceParameters, TransportId, TransportStats, WebRtcTransportData};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::error::SignalError;

/// Parses an event payload into `T`; missing or mistyped fields are `bad_request`.
pub fn parse<T: DeserializeOwned>(payload: Value) -> Result<T, SignalError> {
    serde_json::from_value(payload).map_err(|e| SignalError::bad_request(format!("invalid payload: {e}")))
}

/// A UUID-shaped id from a payload field.
pub fn parse_id<T: FromStr>(s: &str, field: &str) -> Result<T, SignalError> {
    s.parse().map_err(|_| SignalError::bad_request(format!("{field} is not a valid id")))
}

/// Removes every `null` member of every object, recursively (array elements stay in place).
pub fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// `value` as mediasoup-shaped JSON: serialized, then stripped of nulls.
pub fn to_json<T: Serialize>(value: &T) -> Value {
    let mut v = serde_json::to_value(value).unwrap_or(Value::Null);
    strip_nulls(&mut v);
    v
}

/// What `createWebRtcTransport` and `transport-created` carry.
pub fn transport_json(data: &WebRtcTransportData) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("id".into(), json!(data.id.to_string()));
    map.insert("iceParameters".into(), to_json(&data.ice_parameters));
    map.insert("iceCandidates".into(), to_json(&data.ice_candidates));
    map.insert("dtlsParameters".into(), to_json(&data.dtls_parameters));
    if let Some(sctp) = &data.sctp_parameters {
        map.insert("sctpParameters".into(), to_json(sctp));
    }
    map
}

/// Transport statistics; the id is a u128, which JSON numbers cannot carry, so it is written as a UUID.
pub fn transport_stats_json(stats: &TransportStats) -> Value {
    let mut copy = stats.clone();
    copy.transport_id = TransportId(0);
    let mut v = to_json(&copy);
    v["transportId"] = json!(stats.transport_id.to_string());
    v
}

pub fn ice_parameters_json(p: &IceParameters) -> Value {
    to_json(p)
}

/// What `consume` answers: `{id, producerId, kind, rtpParameters, type, producerPaused}`.
pub fn consumer_json(data: &ConsumerData) -> Value {
    json!({
        "id": data.id.to_string(),
        "producerId": data.producer_id.to_string(),
        "kind": data.kind,
        "rtpParameters": to_json(&data.rtp_parameters),
        "type": data.rtp_type,
        "producerPaused": data.producer_paused,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_nulls_at_every_depth_but_keeps_array_slots() {
        let mut v = json!({"a": null, "b": {"c": null, "d": 1}, "e": [null, {"f": null, "g": [1, null]}]});
        strip_nulls(&mut v);
        assert_eq!(v, json!({"b": {"d": 1}, "e": [null, {"g": [1, null]}]}));
    }

    #[test]
    fn router_capabilities_have_no_nulls() {
        let codecs = crate::rooms::default_media_codecs();
        let v = to_json(&codecs);
        assert!(!v.to_string().contains("null"), "{v}");
        assert_eq!(v[0]["mimeType"], "audio/opus");
    }

    #[test]
    fn garbage_payloads_are_bad_requests_not_panics() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct P {
            x: u8,
        }
        for v in [json!(null), json!(1), json!("s"), json!([]), json!({"x": 300}), json!({"x": "1"}), json!({})] {
            let e = parse::<P>(v).unwrap_err();
            assert_eq!(e.code, super::super::error::Code::BadRequest);
        }
        assert!(parse_id::<octo_ipc::TransportId>("nope", "transportId").is_err());
    }
}
