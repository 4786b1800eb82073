//! What nodes write to Redis and send each other, as JSON: the node record, a room member's
//! record, room messages and node-to-node requests. Everything read back is untrusted input from
//! another process: it is parsed here into typed values or refused with an error, never panicked on.

use std::net::{IpAddr, SocketAddr};

use octo_ipc::{
    ConsumerId, DataConsumerId, DataProducerId, MediaKind, ProducerId, RtpParameters, SctpStreamParameters,
    SrtpParameters,
};
use serde::{Deserialize, Serialize};

/// A node's heartbeat: who it is, where its workers are reached, how loaded and whether it takes
/// joins. Written with a TTL; a node whose record expired is gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRecord {
    pub id: String,
    /// Random at each start: a node that restarted under the same id is another node.
    pub epoch: u64,
    /// Where other nodes reach this node's workers (pipes).
    pub address: IpAddr,
    pub ready: bool,
    pub peers: usize,
    pub rooms: usize,
    /// The pid of the worker process in each slot (`None`: down): a pipe to a worker whose pid
    /// changed is dead.
    pub workers: Vec<Option<u32>>,
    /// Where browsers reach this node (clients reconnect there when theirs dies).
    #[serde(default)]
    pub public_url: Option<String>,
}

/// A peer of a room, as every node sees it: who, on which node and worker, and what it publishes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberRecord {
    pub peer_id: String,
    pub display_name: String,
    pub node: String,
    pub epoch: u64,
    /// The worker slot of the room's main router on `node` (where its producers are), and that
    /// worker's pid.
    pub worker: usize,
    pub worker_pid: u32,
    pub producers: Vec<ProducerRecord>,
    pub data_producers: Vec<DataProducerRecord>,
    /// When the member raised its hand (Unix ms, its node's clock); absent while it is down, and
    /// from nodes older than hands (so their records still read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand_raised_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProducerRecord {
    pub id: ProducerId,
    pub kind: MediaKind,
    pub app_data: serde_json::Value,
    pub paused: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataProducerRecord {
    pub id: DataProducerId,
    pub label: String,
    pub protocol: String,
    pub app_data: serde_json::Value,
}

/// What a node says on a room's channel. State, not deltas: a receiver compares a member's record
/// with what it knew, so a repeated or reordered message does no harm.
///
/// The enums here are externally tagged (`{"member": {...}}`): serde's internally tagged form
/// buffers the content, and its buffer cannot hold the u128 ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RoomMessage {
    /// The member's whole state now (joined, or its producers changed).
    Member { record: MemberRecord },
    /// The member left (or its node put it out).
    Left {
        #[serde(rename = "peerId")]
        peer_id: String,
    },
}

/// A message on a room's channel, with its sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomEnvelope {
    pub from: String,
    pub room: String,
    pub message: RoomMessage,
}

/// A line of a room's chat, as kept in its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatLine {
    pub peer_id: String,
    pub display_name: String,
    pub text: String,
    /// Milliseconds since the Unix epoch.
    pub at: u64,
}

/// One end of a pipe between two nodes' workers, as its node describes it to the other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipeEnd {
    pub worker: usize,
    pub worker_pid: u32,
    pub address: SocketAddr,
    pub srtp: Option<SrtpParameters>,
}

/// What one node asks another (over the other's request channel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NodeRequest {
    /// Open (or find) the pipe between your worker `worker` (pid `worker_pid`) and my end `far`.
    #[serde(rename_all = "camelCase")]
    OpenPipe { worker: usize, worker_pid: u32, far: PipeEnd },
    /// Send `producer_id` of room `room` to me across our pipe (whose end on me is `far`).
    #[serde(rename_all = "camelCase")]
    PipeProducer { room: String, producer_id: ProducerId, far: PipeEnd },
    /// The same for a data producer.
    #[serde(rename_all = "camelCase")]
    PipeDataProducer { room: String, data_producer_id: DataProducerId, far: PipeEnd },
    /// Open the pipe between your worker `worker` and my worker `far_worker` from your side
    /// (pipes are opened by the node whose id sorts first, so that two nodes never open the same
    /// pair at once).
    #[serde(rename_all = "camelCase")]
    PleaseOpenPipe { worker: usize, worker_pid: u32, far_worker: usize, far_worker_pid: u32 },
    /// I no longer need these pipe consumers on your worker `worker` (my copies closed).
    #[serde(rename_all = "camelCase")]
    Unpipe { worker: usize, consumers: Vec<ConsumerId>, data_consumers: Vec<DataConsumerId> },
}

/// The answer to a [`NodeRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NodeResponse {
    PipeOpened {
        end: PipeEnd,
    },
    #[serde(rename_all = "camelCase")]
    ProducerPiped {
        consumer_id: ConsumerId,
        kind: MediaKind,
        rtp_parameters: RtpParameters,
        paused: bool,
    },
    #[serde(rename_all = "camelCase")]
    DataProducerPiped {
        data_consumer_id: DataConsumerId,
        sctp_stream_parameters: SctpStreamParameters,
        label: String,
        protocol: String,
    },
    Done,
}

/// A request or its answer, on the receiving node's channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NodeMessage {
    Request { from: String, id: u64, request: NodeRequest },
    Reply { from: String, id: u64, result: Result<NodeResponse, String> },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> MemberRecord {
        MemberRecord {
            peer_id: "p1".into(),
            display_name: "Ann".into(),
            node: "node-a".into(),
            epoch: 7,
            worker: 1,
            worker_pid: 4242,
            producers: vec![ProducerRecord {
                id: ProducerId(0xabc),
                kind: MediaKind::Video,
                app_data: serde_json::json!({"share": true}),
                paused: true,
            }],
            data_producers: vec![DataProducerRecord {
                id: DataProducerId(9),
                label: "chat".into(),
                protocol: "octo-chat".into(),
                app_data: serde_json::json!({}),
            }],
            hand_raised_at: Some(1_765_000_000_000),
        }
    }

    #[test]
    fn a_member_record_without_a_hand_reads_as_hand_down() {
        // A node from before hands sends no `handRaisedAt`; a lowered hand is not sent either.
        let mut record = member();
        record.hand_raised_at = None;
        let text = serde_json::to_string(&record).unwrap();
        assert!(!text.contains("handRaisedAt"), "{text}");
        assert_eq!(serde_json::from_str::<MemberRecord>(&text).unwrap(), record);
    }

    fn end() -> PipeEnd {
        PipeEnd { worker: 1, worker_pid: 77, address: "127.0.0.1:4000".parse().unwrap(), srtp: None }
    }

    #[test]
    fn messages_round_trip_through_json() {
        let request = NodeMessage::Request {
            from: "b".into(),
            id: 1,
            request: NodeRequest::PipeProducer { room: "r".into(), producer_id: ProducerId(u128::MAX), far: end() },
        };
        let text = serde_json::to_string(&request).unwrap();
        assert_eq!(serde_json::from_str::<NodeMessage>(&text).unwrap(), request, "{text}");
        let envelope =
            RoomEnvelope { from: "node-a".into(), room: "r".into(), message: RoomMessage::Member { record: member() } };
        let text = serde_json::to_string(&envelope).unwrap();
        assert_eq!(serde_json::from_str::<RoomEnvelope>(&text).unwrap(), envelope);
        let left =
            RoomEnvelope { from: "b".into(), room: "r".into(), message: RoomMessage::Left { peer_id: "p".into() } };
        let text = serde_json::to_string(&left).unwrap();
        assert!(text.contains(r#"{"left":{"peerId":"p"}}"#), "{text}");
        assert_eq!(serde_json::from_str::<RoomEnvelope>(&text).unwrap(), left);
        let reply = NodeMessage::Reply { from: "a".into(), id: 3, result: Err("no such room".into()) };
        let text = serde_json::to_string(&reply).unwrap();
        assert_eq!(serde_json::from_str::<NodeMessage>(&text).unwrap(), reply);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let cases = [
            "",
            "{",
            "null",
            "[]",
            r#"{"from":"a","room":"r","message":{"member":{}}}"#,
            r#"{"from":"a","room":"r","message":{"nope":{}}}"#,
            r#"{"request":{"from":"a","id":-1,"request":{"openPipe":{}}}}"#,
            r#"{"reply":{"from":"a","id":1,"result":{"Ok":{"producerPiped":{}}}}}"#,
        ];
        for case in cases {
            assert!(serde_json::from_str::<RoomEnvelope>(case).is_err(), "{case}");
            assert!(serde_json::from_str::<NodeMessage>(case).is_err(), "{case}");
        }
        let bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        assert!(serde_json::from_slice::<MemberRecord>(&bytes).is_err());
    }
}
