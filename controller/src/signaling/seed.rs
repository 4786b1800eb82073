//! The seed app's dialect ("scalable-zoom-clone"): kebab-case events, room ids in every payload,
//! string errors, and an HTTP endpoint for the router's capabilities. Its browser client works
//! against Octo unchanged; this module only translates to and from the room operations.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use octo_ipc::{DtlsParameters, MediaKind, ProducerId, RtpCapabilities, RtpParameters, TransportId};
use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::extract::{AckSender, SocketRef};
use tracing::debug;

use super::counters::{DialectLabel, GET_RTP_CAPABILITIES};
use super::error::{Code, SignalError};
use super::json::{parse, parse_id, to_json, transport_json};
use super::limits::check_room_id;
use super::protocol::join;
use super::{Dialect, Joined, SessionState, Signaling, client_ip};
use crate::rooms::{Direction, RoomEvent};

/// Client → server events of this dialect.
pub const EVENTS: &[&str] = &[
    "join",
    "create-transport",
    "connect-transport",
    "produce",
    "consume",
    "request-existing-producers",
    "leave-room",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Join {
    room_id: String,
    #[serde(default)]
    peer_name: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateTransport {
    room_id: String,
    direction: Direction,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnectTransport {
    room_id: String,
    transport_id: String,
    dtls_parameters: DtlsParameters,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Produce {
    room_id: String,
    kind: MediaKind,
    rtp_parameters: RtpParameters,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Consume {
    room_id: String,
    producer_id: String,
    rtp_capabilities: RtpCapabilities,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoomRef {
    room_id: String,
}

/// The failure ack of `event` in this dialect's shape: `{error: "<message>", code}` (plus
/// `params: null` for `consume` and `params: []` for `request-existing-producers`, as the seed
/// server answered).
pub(super) fn error_ack(event: &str, e: &SignalError) -> Value {
    let mut v = json!({ "error": e.message, "code": e.code.as_str() });
    match event {
        "consume" => v["params"] = Value::Null,
        "request-existing-producers" => v["params"] = json!([]),
        _ => {}
    }
    v
}

/// The session's room, which must be the one the payload names.
fn in_room<'a>(state: &'a mut SessionState, room_id: &str) -> Result<&'a Joined, SignalError> {
    let j = state.joined()?;
    if j.room.id() != room_id {
        return Err(SignalError::new(Code::Forbidden, format!("not in room {room_id:?}")));
    }
    Ok(j)
}

pub(super) async fn handle(
    sig: &Arc<Signaling>,
    socket: &SocketRef,
    state: &mut SessionState,
    event: &str,
    payload: Value,
    ack: AckSender,
    arrived: Instant,
) {
    let result = match event {
        "join" => on_join(sig, socket, state, payload, arrived).await,
        "create-transport" => on_create_transport(sig, socket, state, payload).await,
        "connect-transport" => on_connect_transport(state, payload).await,
        "produce" => on_produce(state, payload).await,
        "consume" => return on_consume(sig, state, payload, ack).await,
        "request-existing-producers" => on_existing_producers(state, payload),
        "leave-room" => on_leave(state).await,
        other => Err(SignalError::new(Code::UnknownEvent, format!("unknown event {other:?}"))),
    };
    let reply = match result {
        Ok(v) => v,
        Err(e) => {
            debug!(sid = %socket.id, event, "{e}");
            sig.counters.error(DialectLabel::Seed, event, e.code);
            // The seed server reported these two failures as `error` events; its client has no ack.
            let tag = match event {
                "join" => Some("join-failed"),
                "create-transport" => Some("transport-failed"),
                _ => None,
            };
            if let Some(tag) = tag {
                sig.counters().sent(
                    socket.emit("error", &json!({ "message": tag, "detail": e.message, "code": e.code.as_str() })),
                );
            }
            error_ack(event, &e)
        }
    };
    sig.counters().sent(ack.send(&reply));
}

async fn on_join(
    sig: &Arc<Signaling>,
    socket: &SocketRef,
    state: &mut SessionState,
    payload: Value,
    arrived: Instant,
) -> Result<Value, SignalError> {
    let req: Join = parse(payload)?;
    let name = req.peer_name.unwrap_or_default();
    let (peer_id, _) = join(sig, socket, state, &req.room_id, name, req.token.as_deref(), Dialect::Seed).await?;
    state.seed_joined_at = Some(arrived);
    socket.join(super::SEED_SOCKETS);
    Ok(json!({ "success": true, "peerId": peer_id }))
}

/// Creates the transport now, but emits `transport-created` no earlier than the hold after this
/// client got its `/getRtpCapabilities` answer (see `Signaling::seed_release_time`): the seed client
/// calls `device.load()` without awaiting it, and a transport that arrives before the load finishes
/// makes it throw.
async fn on_create_transport(
    sig: &Arc<Signaling>,
    socket: &SocketRef,
    state: &mut SessionState,
    payload: Value,
) -> Result<Value, SignalError> {
    let req: CreateTransport = parse(payload)?;
    let j = in_room(state, &req.room_id)?;
    let data = j.room.create_webrtc_transport(&j.peer_id, req.direction, None).await?;
    let mut info = transport_json(&data);
    info.insert("direction".into(), json!(if req.direction == Direction::Send { "send" } else { "recv" }));
    let release = sig.seed_release_time(client_ip(socket.req_parts()), &req.room_id, state.seed_joined_at);
    let socket = socket.clone();
    tokio::spawn(async move {
        if let Some(at) = release {
            tokio::time::sleep_until(at.into()).await;
        }
        let _ = socket.emit("transport-created", &Value::Object(info));
    });
    Ok(json!({ "success": true }))
}

async fn on_connect_transport(state: &mut SessionState, payload: Value) -> Result<Value, SignalError> {
    let req: ConnectTransport = parse(payload)?;
    let id: TransportId = parse_id(&req.transport_id, "transportId")?;
    let j = in_room(state, &req.room_id)?;
    j.room.connect_transport(&j.peer_id, id, req.dtls_parameters).await?;
    Ok(json!({ "success": true }))
}

/// The seed client does not name the transport: the peer's send transport is used.
async fn on_produce(state: &mut SessionState, payload: Value) -> Result<Value, SignalError> {
    let req: Produce = parse(payload)?;
    let j = in_room(state, &req.room_id)?;
    let app_data = json!({ "peerId": j.peer_id });
    let id = j.room.produce(&j.peer_id, None, req.kind, req.rtp_parameters, app_data).await?;
    Ok(json!({ "id": id.to_string() }))
}

/// Answers `{params}` and then resumes the consumer and asks for a keyframe, as the seed server did:
/// its client never sends a resume.
async fn on_consume(sig: &Signaling, state: &mut SessionState, payload: Value, ack: AckSender) {
    let result = async {
        let req: Consume = parse(payload)?;
        let producer_id: ProducerId = parse_id(&req.producer_id, "producerId")?;
        let j = in_room(state, &req.room_id)?;
        let data = j.room.consume(&j.peer_id, None, producer_id, req.rtp_capabilities, true).await?;
        Ok::<_, SignalError>((j.room.clone(), j.peer_id.clone(), data))
    }
    .await;
    match result {
        Ok((room, peer_id, data)) => {
            let params = json!({
                "id": data.id.to_string(),
                "producerId": data.producer_id.to_string(),
                "kind": data.kind,
                "rtpParameters": to_json(&data.rtp_parameters),
            });
            sig.counters().sent(ack.send(&json!({ "params": params })));
            if let Err(e) = room.set_consumer_paused(&peer_id, data.id, false).await {
                debug!(consumer = %data.id, "resume after consume failed: {e}");
            }
            if data.kind == MediaKind::Video
                && let Err(e) = room.request_key_frame(&peer_id, data.id).await
            {
                debug!(consumer = %data.id, "keyframe request failed: {e}");
            }
        }
        Err(e) => {
            sig.counters.error(DialectLabel::Seed, "consume", e.code);
            sig.counters().sent(ack.send(&error_ack("consume", &e)));
        }
    }
}

fn on_existing_producers(state: &mut SessionState, payload: Value) -> Result<Value, SignalError> {
    let req: RoomRef = parse(payload)?;
    let j = in_room(state, &req.room_id)?;
    let list: Vec<Value> = j
        .room
        .producers_except(&j.peer_id)?
        .into_iter()
        .map(|p| json!({ "producerId": p.producer_id.to_string(), "peerId": p.peer_id, "peerName": p.display_name }))
        .collect();
    Ok(json!({ "params": list }))
}

/// The seed client sends `leave-room` with or without a payload; the room is the session's.
async fn on_leave(state: &mut SessionState) -> Result<Value, SignalError> {
    let j = state.joined.take().ok_or_else(|| SignalError::new(Code::NotJoined, "not in a room"))?;
    j.room.leave(&j.peer_id).await;
    Ok(json!({ "success": true }))
}

/// A room event as this dialect's server → client event; events the seed app has no name for are
/// not sent.
pub(super) fn event(event: &RoomEvent) -> Option<(&'static str, Value)> {
    Some(match event {
        RoomEvent::PeerJoined { peer_id, display_name } => {
            ("peer-joined", json!({ "peerId": peer_id, "peerName": display_name }))
        }
        RoomEvent::PeerLeft { peer_id } => ("peer-left", json!({ "peerId": peer_id })),
        RoomEvent::NewProducer { producer_id, peer_id, display_name, .. } => (
            "new-producer",
            json!({ "producerId": producer_id.to_string(), "peerId": peer_id, "peerName": display_name }),
        ),
        RoomEvent::RoomClosed { code, message } => {
            ("error", json!({ "message": "room-closed", "detail": message, "code": code }))
        }
        _ => return None,
    })
}

/// `GET /getRtpCapabilities?roomId=R` (and `&token=T` when the server requires tokens): the room's
/// router capabilities, creating the room. Records the time for the `transport-created` hold.
pub async fn get_rtp_capabilities(
    State(sig): State<Arc<Signaling>>,
    Query(query): Query<HashMap<String, String>>,
    parts: Parts,
) -> Response {
    sig.counters.request(DialectLabel::Seed, GET_RTP_CAPABILITIES);
    let fail = |status: StatusCode, e: SignalError| {
        sig.counters.error(DialectLabel::Seed, GET_RTP_CAPABILITIES, e.code);
        (status, Json(json!({ "error": e.message, "code": e.code.as_str() }))).into_response()
    };
    let Some(room_id) = query.get("roomId") else {
        return fail(StatusCode::BAD_REQUEST, SignalError::bad_request("roomId is required"));
    };
    if let Err(e) = check_room_id(room_id) {
        return fail(StatusCode::BAD_REQUEST, e);
    }
    if let Some(auth) = &sig.auth
        && let Err(e) = auth.check(query.get("token").map(String::as_str), room_id)
    {
        return fail(StatusCode::UNAUTHORIZED, e);
    }
    match sig.rooms.get_or_create(room_id).await {
        Ok(room) => {
            let caps = to_json(room.rtp_capabilities());
            if let Some(ip) = client_ip(&parts) {
                sig.record_seed_fetch(ip, room_id);
            }
            Json(caps).into_response()
        }
        Err(e) => fail(StatusCode::SERVICE_UNAVAILABLE, e.into()),
    }
}
