//! Octo's own signaling dialect: camelCase events with `{data}` / `{error: {code, message}}` acks and
//! mediasoup-shaped objects.

use std::sync::Arc;

use serde_json::{Value, json};
use socketioxide::extract::SocketRef;

use super::error::{Code, SignalError};
use super::json::{consumer_json, ice_parameters_json, to_json, transport_json, transport_stats_json};
use super::limits::{check_display_name, check_room_id};
use super::requests::Request;
use super::{Dialect, Joined, SessionState, Signaling, SignalingCounters};
use crate::rooms::{EventSink, JoinSnapshot, Peer, RoomError, RoomEvent, StatsTarget};

/// Client → server events of this dialect.
pub const EVENTS: &[&str] = &[
    "joinRoom",
    "createWebRtcTransport",
    "connectWebRtcTransport",
    "produce",
    "consume",
    "resumeConsumer",
    "pauseConsumer",
    "setConsumerPreferredLayers",
    "setConsumerPriority",
    "requestConsumerKeyFrame",
    "pauseProducer",
    "resumeProducer",
    "closeProducer",
    "restartIce",
    "getStats",
    "leaveRoom",
    "produceData",
    "consumeData",
    "raiseHand",
    "lowerHand",
];

pub(super) async fn handle(
    sig: &Arc<Signaling>,
    socket: &SocketRef,
    state: &mut SessionState,
    event: &str,
    payload: Value,
) -> Result<Value, SignalError> {
    match Request::parse(event, payload)? {
        Request::JoinRoom { room_id, display_name, token } => {
            let (peer_id, snap) =
                join(sig, socket, state, &room_id, display_name, token.as_deref(), Dialect::Main).await?;
            let room = state.joined()?.room.clone();
            let mut answer = json!({
                "peerId": peer_id,
                "rtpCapabilities": to_json(&snap.rtp_capabilities),
                "peers": snap.peers.iter().map(|p| json!({
                    "peerId": p.peer_id, "displayName": p.display_name, "handRaisedAt": p.hand_raised_at,
                })).collect::<Vec<_>>(),
                "producers": snap.producers.iter().map(|p| json!({
                    "producerId": p.producer_id.to_string(), "peerId": p.peer_id, "kind": p.kind, "appData": p.app_data,
                })).collect::<Vec<_>>(),
                "dataProducers": room.data_producers_except(&peer_id)?,
            });
            if let Some(turn) = &sig.config.turn {
                answer["iceServers"] = turn.ice_servers(&peer_id, std::time::SystemTime::now());
            }
            // Only a clustered Octo keeps chat (PROTOCOL.md): standalone answers are unchanged.
            if let Some(lines) = room.chat_history().await {
                answer["chatHistory"] = to_json(&lines);
            }
            Ok(answer)
        }
        Request::SetHand { raised } => {
            let j = state.joined()?;
            Ok(json!({ "raisedAt": j.room.set_hand(&j.peer_id, raised)? }))
        }
        Request::LeaveRoom => {
            let j = state.joined.take().ok_or_else(|| SignalError::new(Code::NotJoined, "not in a room"))?;
            j.room.leave(&j.peer_id).await;
            Ok(json!({}))
        }
        Request::CreateWebRtcTransport { direction, sctp_streams } => {
            let j = state.joined()?;
            let data = j.room.create_webrtc_transport(&j.peer_id, direction, sctp_streams).await?;
            Ok(Value::Object(transport_json(&data)))
        }
        Request::ConnectWebRtcTransport { transport_id, dtls_parameters } => {
            let j = state.joined()?;
            j.room.connect_transport(&j.peer_id, transport_id, dtls_parameters).await?;
            Ok(json!({}))
        }
        Request::Produce { transport_id, kind, rtp_parameters, app_data } => {
            let j = state.joined()?;
            let producer_id = j.room.produce(&j.peer_id, Some(transport_id), kind, rtp_parameters, app_data).await?;
            Ok(json!({ "id": producer_id.to_string() }))
        }
        Request::Consume { transport_id, producer_id, rtp_capabilities } => {
            let j = state.joined()?;
            let data = j.room.consume(&j.peer_id, Some(transport_id), producer_id, rtp_capabilities, true).await?;
            Ok(consumer_json(&data))
        }
        Request::SetConsumerPaused { consumer_id, paused } => {
            let j = state.joined()?;
            j.room.set_consumer_paused(&j.peer_id, consumer_id, paused).await?;
            Ok(json!({}))
        }
        Request::SetConsumerPreferredLayers { consumer_id, layers } => {
            let j = state.joined()?;
            j.room.set_consumer_preferred_layers(&j.peer_id, consumer_id, layers).await?;
            Ok(json!({}))
        }
        Request::SetConsumerPriority { consumer_id, priority } => {
            let j = state.joined()?;
            j.room.set_consumer_priority(&j.peer_id, consumer_id, priority).await?;
            Ok(json!({}))
        }
        Request::RequestConsumerKeyFrame { consumer_id } => {
            let j = state.joined()?;
            j.room.request_key_frame(&j.peer_id, consumer_id).await?;
            Ok(json!({}))
        }
        Request::SetProducerPaused { producer_id, paused } => {
            let j = state.joined()?;
            j.room.set_producer_paused(&j.peer_id, producer_id, paused).await?;
            Ok(json!({}))
        }
        Request::CloseProducer { producer_id } => {
            let j = state.joined()?;
            j.room.close_producer(&j.peer_id, producer_id).await?;
            Ok(json!({}))
        }
        Request::RestartIce { transport_id } => {
            let j = state.joined()?;
            let ice = j.room.restart_ice(&j.peer_id, transport_id).await?;
            Ok(json!({ "iceParameters": ice_parameters_json(&ice) }))
        }
        Request::GetStats { id } => {
            let j = state.joined()?;
            Ok(match j.room.get_stats(&j.peer_id, id.0).await? {
                StatsTarget::Transport(s) => json!([transport_stats_json(&s)]),
                StatsTarget::Producer(s) | StatsTarget::Consumer(s) => to_json(&s),
            })
        }
        Request::ProduceData { transport_id, sctp_stream_parameters, label, protocol, app_data } => {
            let j = state.joined()?;
            let data_producer_id = j
                .room
                .produce_data(&j.peer_id, transport_id, sctp_stream_parameters, label, protocol, app_data)
                .await?;
            Ok(json!({ "id": data_producer_id.to_string() }))
        }
        Request::ConsumeData { transport_id, data_producer_id } => {
            let j = state.joined()?;
            let data = j.room.consume_data(&j.peer_id, transport_id, data_producer_id).await?;
            Ok(json!({
                "id": data.id.to_string(),
                "dataProducerId": data.data_producer_id.to_string(),
                "sctpStreamParameters": to_json(&data.sctp_stream_parameters),
                "label": data.label,
                "protocol": data.protocol,
            }))
        }
    }
}

/// Joins `room_id` as this socket, in `dialect`. Shared by both dialects.
pub(super) async fn join(
    sig: &Arc<Signaling>,
    socket: &SocketRef,
    state: &mut SessionState,
    room_id: &str,
    display_name: String,
    token: Option<&str>,
    dialect: Dialect,
) -> Result<(String, JoinSnapshot), SignalError> {
    check_room_id(room_id)?;
    check_display_name(&display_name)?;
    if let Some(j) = &state.joined {
        if !j.room.is_closed() && j.room.has_peer(&j.peer_id) {
            return Err(SignalError::new(Code::AlreadyJoined, format!("already in room {:?}", j.room.id())));
        }
        state.joined = None;
    }
    let mut display_name = display_name;
    if let Some(auth) = &sig.auth {
        let claims = auth.check(token, room_id)?;
        if let Some(name) = claims.name {
            display_name = name;
        }
    }
    let peer_id = socket.id.to_string();
    // An empty room may close (grace period over) between lookup and join: then look up again,
    // which creates it anew.
    let mut attempts = 0;
    loop {
        let room = sig.rooms.get_or_create(room_id).await?;
        let peer = Peer::new(peer_id.clone(), display_name.clone(), sink(socket.clone(), dialect, sig.counters_arc()));
        match room.join(peer, sig.rooms.config().max_peers_per_room) {
            Ok(snapshot) => {
                state.joined = Some(Joined { room, peer_id: peer_id.clone(), dialect });
                return Ok((peer_id, snapshot));
            }
            Err(RoomError::RoomClosed) if attempts < 2 => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// How room events reach this socket, shaped for its dialect.
fn sink(socket: SocketRef, dialect: Dialect, counters: Arc<SignalingCounters>) -> EventSink {
    Arc::new(move |event: RoomEvent| {
        let emitted = match dialect {
            Dialect::Main => main_event(&event),
            Dialect::Seed => super::seed::event(&event),
        };
        if let Some((name, payload)) = emitted {
            counters.sent(socket.emit(name, &payload));
        }
    })
}

/// A room event as this dialect's server → client event.
fn main_event(event: &RoomEvent) -> Option<(&'static str, Value)> {
    Some(match event {
        RoomEvent::PeerJoined { peer_id, display_name } => {
            ("peerJoined", json!({ "peerId": peer_id, "displayName": display_name }))
        }
        RoomEvent::PeerLeft { peer_id } => ("peerLeft", json!({ "peerId": peer_id })),
        RoomEvent::NewProducer { producer_id, peer_id, kind, app_data, .. } => (
            "newProducer",
            json!({ "producerId": producer_id.to_string(), "peerId": peer_id, "kind": kind, "appData": app_data }),
        ),
        RoomEvent::ProducerClosed { producer_id, peer_id } => {
            ("producerClosed", json!({ "producerId": producer_id.to_string(), "peerId": peer_id }))
        }
        RoomEvent::NewDataProducer { data_producer_id, peer_id, label, protocol, app_data } => (
            "newDataProducer",
            json!({
                "dataProducerId": data_producer_id.to_string(),
                "peerId": peer_id,
                "label": label,
                "protocol": protocol,
                "appData": app_data,
            }),
        ),
        RoomEvent::DataProducerClosed { data_producer_id, peer_id } => {
            ("dataProducerClosed", json!({ "dataProducerId": data_producer_id.to_string(), "peerId": peer_id }))
        }
        RoomEvent::ProducerPaused { producer_id, peer_id } => {
            ("producerPaused", json!({ "producerId": producer_id.to_string(), "peerId": peer_id }))
        }
        RoomEvent::ProducerResumed { producer_id, peer_id } => {
            ("producerResumed", json!({ "producerId": producer_id.to_string(), "peerId": peer_id }))
        }
        RoomEvent::ConsumerClosed { consumer_id, producer_id } => {
            ("consumerClosed", json!({ "consumerId": consumer_id.to_string(), "producerId": producer_id.to_string() }))
        }
        RoomEvent::ConsumerPaused { consumer_id, producer_id } => {
            ("consumerPaused", json!({ "consumerId": consumer_id.to_string(), "producerId": producer_id.to_string() }))
        }
        RoomEvent::ConsumerResumed { consumer_id, producer_id } => {
            ("consumerResumed", json!({ "consumerId": consumer_id.to_string(), "producerId": producer_id.to_string() }))
        }
        RoomEvent::ConsumerScore { consumer_id, score } => {
            ("consumerScore", json!({ "consumerId": consumer_id.to_string(), "score": score }))
        }
        RoomEvent::ConsumerLayersChanged { consumer_id, layers } => (
            "consumerLayersChanged",
            json!({
                "consumerId": consumer_id.to_string(),
                "spatialLayer": layers.map(|l| l.spatial_layer),
                "temporalLayer": layers.and_then(|l| l.temporal_layer),
            }),
        ),
        RoomEvent::RoomClosed { code, message } => ("roomError", json!({ "code": code, "message": message })),
        RoomEvent::ActiveSpeaker { peer_id } => ("activeSpeaker", json!({ "peerId": peer_id })),
        RoomEvent::PeerHand { peer_id, raised_at } => ("peerHand", json!({ "peerId": peer_id, "raisedAt": raised_at })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signaling::{Dialect, dialect_of};
    use octo_ipc::MediaKind;

    #[test]
    fn shared_event_names_follow_the_joined_dialect_or_the_payload() {
        let seedish = json!({"roomId": "r"});
        let mainish = json!({"transportId": "t"});
        assert_eq!(dialect_of("produce", &seedish, None), Some(Dialect::Seed));
        assert_eq!(dialect_of("produce", &mainish, None), Some(Dialect::Main));
        assert_eq!(dialect_of("consume", &seedish, Some(Dialect::Main)), Some(Dialect::Main));
        assert_eq!(dialect_of("consume", &mainish, Some(Dialect::Seed)), Some(Dialect::Seed));
        assert_eq!(dialect_of("joinRoom", &seedish, Some(Dialect::Seed)), Some(Dialect::Main));
        assert_eq!(dialect_of("leave-room", &Value::Null, None), Some(Dialect::Seed));
        assert_eq!(dialect_of("nope", &Value::Null, None), None);
    }

    #[test]
    fn every_room_event_has_a_main_dialect_name() {
        let p = octo_ipc::ProducerId(1);
        let c = octo_ipc::ConsumerId(2);
        let events = [
            RoomEvent::PeerJoined { peer_id: "a".into(), display_name: "A".into() },
            RoomEvent::PeerLeft { peer_id: "a".into() },
            RoomEvent::NewProducer {
                producer_id: p,
                peer_id: "a".into(),
                display_name: "A".into(),
                kind: MediaKind::Audio,
                app_data: json!({"k": null}),
            },
            RoomEvent::ProducerClosed { producer_id: p, peer_id: "a".into() },
            RoomEvent::ProducerPaused { producer_id: p, peer_id: "a".into() },
            RoomEvent::ProducerResumed { producer_id: p, peer_id: "a".into() },
            RoomEvent::ConsumerClosed { consumer_id: c, producer_id: p },
            RoomEvent::ConsumerPaused { consumer_id: c, producer_id: p },
            RoomEvent::ConsumerResumed { consumer_id: c, producer_id: p },
            RoomEvent::ConsumerScore { consumer_id: c, score: 9 },
            RoomEvent::ConsumerLayersChanged {
                consumer_id: c,
                layers: Some(octo_ipc::ConsumerLayers { spatial_layer: 1, temporal_layer: Some(2) }),
            },
            RoomEvent::RoomClosed { code: "worker_died", message: "m".into() },
            RoomEvent::PeerHand { peer_id: "a".into(), raised_at: Some(7) },
        ];
        let names: Vec<_> = events.iter().map(|e| main_event(e).expect("named").0).collect();
        assert_eq!(
            names,
            [
                "peerJoined",
                "peerLeft",
                "newProducer",
                "producerClosed",
                "producerPaused",
                "producerResumed",
                "consumerClosed",
                "consumerPaused",
                "consumerResumed",
                "consumerScore",
                "consumerLayersChanged",
                "roomError",
                "peerHand"
            ]
        );
        // appData passes through with its nulls.
        assert_eq!(main_event(&events[2]).unwrap().1["appData"], json!({"k": null}));
        assert_eq!(main_event(&events[3]).unwrap().1["producerId"], "00000000-0000-0000-0000-000000000001");
    }
}
