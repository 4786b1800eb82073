//! A room's members on other nodes (cluster mode), and this node's members as the others see them.
//!
//! A remote member is known by its record; each new record is compared with the one before and
//! the difference becomes the same events a local peer's actions give (`changes`, a pure function).
//! Local members are published after every change of theirs (join, produce, pause, close, leave).
//!
//! Locking as in `room.rs`: the state lock is never held across an await or while emitting.

use std::collections::HashMap;
use std::time::Instant;

use octo_ipc::ProducerId;
use tracing::{info, warn};

use super::copies::Origin;
use super::room::{Room, State, emit};
use super::{EventSink, PeerId, RoomEvent};
use crate::cluster::wire::{DataProducerRecord, MemberRecord, ProducerRecord};

/// A member of the room on another node.
pub(super) struct RemotePeer {
    pub record: MemberRecord,
    /// When its last record arrived: a re-read of the room removes only members older than it.
    pub updated: Instant,
}

/// What changed between two records of one remote member.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Changes {
    /// For the local peers, in order.
    pub events: Vec<RoomEvent>,
    /// Producers and data producers that are gone: their copies here must close.
    pub closed: Vec<Origin>,
    /// Producers paused (true) or resumed: their copies here follow.
    pub paused: Vec<(ProducerId, bool)>,
}

/// The events that take the room from `old` (none: unknown) to `new` (none: gone) for one member.
pub(super) fn changes(old: Option<&MemberRecord>, new: Option<&MemberRecord>) -> Changes {
    let mut c = Changes::default();
    let (peer_id, display_name) = match (old, new) {
        (_, Some(n)) => (n.peer_id.clone(), n.display_name.clone()),
        (Some(o), None) => (o.peer_id.clone(), o.display_name.clone()),
        (None, None) => return c,
    };
    if old.is_none() {
        c.events.push(RoomEvent::PeerJoined { peer_id: peer_id.clone(), display_name: display_name.clone() });
    }
    let empty_p: Vec<ProducerRecord> = Vec::new();
    let empty_d: Vec<DataProducerRecord> = Vec::new();
    let (old_p, new_p) = (old.map_or(&empty_p, |o| &o.producers), new.map_or(&empty_p, |n| &n.producers));
    let (old_d, new_d) = (old.map_or(&empty_d, |o| &o.data_producers), new.map_or(&empty_d, |n| &n.data_producers));
    for p in new_p {
        match old_p.iter().find(|o| o.id == p.id) {
            None => c.events.push(RoomEvent::NewProducer {
                producer_id: p.id,
                peer_id: peer_id.clone(),
                display_name: display_name.clone(),
                kind: p.kind,
                app_data: p.app_data.clone(),
            }),
            Some(o) if o.paused != p.paused => {
                c.paused.push((p.id, p.paused));
                let (producer_id, peer_id) = (p.id, peer_id.clone());
                c.events.push(if p.paused {
                    RoomEvent::ProducerPaused { producer_id, peer_id }
                } else {
                    RoomEvent::ProducerResumed { producer_id, peer_id }
                });
            }
            Some(_) => {}
        }
    }
    for d in new_d.iter().filter(|d| !old_d.iter().any(|o| o.id == d.id)) {
        c.events.push(RoomEvent::NewDataProducer {
            data_producer_id: d.id,
            peer_id: peer_id.clone(),
            label: d.label.clone(),
            protocol: d.protocol.clone(),
            app_data: d.app_data.clone(),
        });
    }
    for o in old_p.iter().filter(|o| !new_p.iter().any(|p| p.id == o.id)) {
        c.closed.push(Origin::Producer(o.id));
        c.events.push(RoomEvent::ProducerClosed { producer_id: o.id, peer_id: peer_id.clone() });
    }
    for o in old_d.iter().filter(|o| !new_d.iter().any(|d| d.id == o.id)) {
        c.closed.push(Origin::Data(o.id));
        c.events.push(RoomEvent::DataProducerClosed { data_producer_id: o.id, peer_id: peer_id.clone() });
    }
    let (old_hand, new_hand) = (old.and_then(|o| o.hand_raised_at), new.and_then(|n| n.hand_raised_at));
    if new.is_some() && old_hand != new_hand {
        c.events.push(RoomEvent::PeerHand { peer_id: peer_id.clone(), raised_at: new_hand });
    }
    if new.is_none() {
        c.events.push(RoomEvent::PeerLeft { peer_id });
    }
    c
}

impl Room {
    /// A record of a member on another node (joined or changed).
    pub(super) async fn apply_member(&self, record: MemberRecord) {
        let peer_id = record.peer_id.clone();
        let found = {
            let mut state = self.lock();
            if state.closed || state.peers.iter().any(|p| p.id == peer_id) {
                // A record for one of our own peers is another node's mistake; ignore it.
                return;
            }
            let old = state.remote.get(&peer_id).map(|r| &r.record);
            let c = changes(old, Some(&record));
            state.remote.insert(peer_id, RemotePeer { record, updated: Instant::now() });
            (local_sinks(&state), c)
        };
        self.follow(found).await;
    }

    /// A member on another node left; only its own node (`from`) can say so.
    pub(super) async fn apply_left(&self, peer_id: &str, from: &str) {
        let found = {
            let mut state = self.lock();
            if state.remote.get(peer_id).is_none_or(|r| r.record.node != from) {
                return;
            }
            let old = state.remote.remove(peer_id).map(|r| r.record);
            (local_sinks(&state), changes(old.as_ref(), None))
        };
        self.follow(found).await;
    }

    /// Node `node` is gone: its members leave the room here, and their records are removed.
    pub(super) async fn drop_node(&self, node: &str) {
        let gone: Vec<MemberRecord> = {
            let mut state = self.lock();
            let ids: Vec<PeerId> =
                state.remote.iter().filter(|(_, r)| r.record.node == node).map(|(id, _)| id.clone()).collect();
            ids.iter().filter_map(|id| state.remote.remove(id)).map(|r| r.record).collect()
        };
        if gone.is_empty() {
            return;
        }
        warn!(room = self.id, node, peers = gone.len(), "a node of the room is gone: its peers leave");
        let cluster = self.cluster();
        for record in gone {
            if let Some(cluster) = &cluster {
                cluster.publish_left(&self.id, &record.peer_id);
            }
            let sinks = local_sinks(&self.lock());
            self.follow((sinks, changes(Some(&record), None))).await;
        }
    }

    /// Redis was re-read after an outage: `members` is what it holds now for other nodes. Members
    /// unknown before are added and changed ones updated; with `gone_before`, those known from
    /// before then that it no longer holds leave (they left while this node could not hear it).
    pub(super) async fn resync_remote(&self, members: Vec<MemberRecord>, gone_before: Option<Instant>) {
        let stale: Vec<(PeerId, String)> = match gone_before {
            None => Vec::new(),
            Some(since) => {
                let state = self.lock();
                state
                    .remote
                    .iter()
                    .filter(|(id, r)| r.updated < since && !members.iter().any(|m| &m.peer_id == *id))
                    .map(|(id, r)| (id.clone(), r.record.node.clone()))
                    .collect()
            }
        };
        for (peer_id, node) in stale {
            self.apply_left(&peer_id, &node).await;
        }
        for record in members {
            self.apply_member(record).await;
        }
    }

    /// Tells the local peers what changed and makes the copies here follow.
    async fn follow(&self, (sinks, c): (Vec<EventSink>, Changes)) {
        for event in &c.events {
            emit(&sinks, event);
        }
        for (producer_id, paused) in c.paused {
            self.set_far_copy_paused(producer_id, paused).await;
        }
        if !c.closed.is_empty() {
            self.close_far_copies(&c.closed).await;
        }
    }

    /// Whether any member of the room is on another node.
    pub fn has_remote_peers(&self) -> bool {
        !self.lock().remote.is_empty()
    }

    /// Publishes local peer `peer_id`'s state to the other nodes.
    pub(super) fn publish_member(&self, peer_id: &str) {
        let Some(cluster) = self.cluster() else { return };
        let worker_pid = self.pid_of(self.worker).unwrap_or(0);
        let record = {
            let state = self.lock();
            let Ok(peer) = state.peer(peer_id) else { return };
            MemberRecord {
                peer_id: peer.id.clone(),
                display_name: peer.display_name.clone(),
                node: cluster.node_id().to_owned(),
                epoch: cluster.epoch(),
                worker: self.worker,
                worker_pid,
                producers: peer
                    .producers
                    .iter()
                    .map(|p| ProducerRecord { id: p.id, kind: p.kind, app_data: p.app_data.clone(), paused: p.paused })
                    .collect(),
                data_producers: peer
                    .data_producers
                    .iter()
                    .map(|d| DataProducerRecord {
                        id: d.id,
                        label: d.label.clone(),
                        protocol: d.protocol.clone(),
                        app_data: d.app_data.clone(),
                    })
                    .collect(),
                hand_raised_at: peer.hand_raised_at,
            }
        };
        cluster.publish_member(&self.id, record);
    }

    /// Publishes that local peer `peer_id` left.
    pub(super) fn publish_left(&self, peer_id: &str) {
        if let Some(cluster) = self.cluster() {
            cluster.publish_left(&self.id, peer_id);
        }
    }

    /// Publishes every local peer again, and removes the records Redis still holds for this node's
    /// peers that are gone (`own`: the peer ids it holds).
    pub(super) fn publish_all(&self, own: &[String]) {
        let local: Vec<PeerId> = self.lock().peers.iter().map(|p| p.id.clone()).collect();
        for peer_id in own.iter().filter(|id| !local.contains(id)) {
            info!(room = self.id, peer = peer_id, "removing a peer Redis kept after it left");
            self.publish_left(peer_id);
        }
        for peer_id in &local {
            self.publish_member(peer_id);
        }
    }
}

fn local_sinks(state: &State) -> Vec<EventSink> {
    state.peers.iter().map(|p| p.sink.clone()).collect()
}

/// The remote members' producers, for placement and lookups: producer id → (paused).
pub(super) fn remote_producers(remote: &HashMap<PeerId, RemotePeer>) -> impl Iterator<Item = &ProducerRecord> {
    remote.values().flat_map(|r| r.record.producers.iter())
}

#[cfg(test)]
mod tests {
    use octo_ipc::{DataProducerId, MediaKind};

    use super::*;

    fn record(producers: &[(u128, bool)], data: &[u128]) -> MemberRecord {
        MemberRecord {
            peer_id: "p".into(),
            display_name: "Ann".into(),
            node: "b".into(),
            epoch: 1,
            worker: 0,
            worker_pid: 10,
            producers: producers
                .iter()
                .map(|&(id, paused)| ProducerRecord {
                    id: ProducerId(id),
                    kind: MediaKind::Audio,
                    app_data: serde_json::json!({}),
                    paused,
                })
                .collect(),
            data_producers: data
                .iter()
                .map(|&id| DataProducerRecord {
                    id: DataProducerId(id),
                    label: "chat".into(),
                    protocol: "octo-chat".into(),
                    app_data: serde_json::json!({}),
                })
                .collect(),
            hand_raised_at: None,
        }
    }

    fn names(c: &Changes) -> Vec<&'static str> {
        c.events
            .iter()
            .map(|e| match e {
                RoomEvent::PeerJoined { .. } => "joined",
                RoomEvent::PeerLeft { .. } => "left",
                RoomEvent::NewProducer { .. } => "new",
                RoomEvent::ProducerClosed { .. } => "closed",
                RoomEvent::ProducerPaused { .. } => "paused",
                RoomEvent::ProducerResumed { .. } => "resumed",
                RoomEvent::NewDataProducer { .. } => "newData",
                RoomEvent::DataProducerClosed { .. } => "closedData",
                RoomEvent::PeerHand { raised_at: Some(_), .. } => "hand",
                RoomEvent::PeerHand { raised_at: None, .. } => "handDown",
                _ => "other",
            })
            .collect()
    }

    #[test]
    fn a_member_seen_first_joins_with_its_producers() {
        let c = changes(None, Some(&record(&[(1, false), (2, true)], &[9])));
        assert_eq!(names(&c), ["joined", "new", "new", "newData"]);
        assert!(c.closed.is_empty() && c.paused.is_empty());
    }

    #[test]
    fn a_changed_record_gives_only_the_difference() {
        let old = record(&[(1, false), (2, false)], &[9]);
        let new = record(&[(1, true), (3, false)], &[]);
        let c = changes(Some(&old), Some(&new));
        assert_eq!(names(&c), ["paused", "new", "closed", "closedData"]);
        assert_eq!(c.closed, [Origin::Producer(ProducerId(2)), Origin::Data(DataProducerId(9))]);
        assert_eq!(c.paused, [(ProducerId(1), true)]);
        // The same record again changes nothing: messages may repeat.
        assert_eq!(changes(Some(&new), Some(&new)), Changes::default());
    }

    #[test]
    fn a_member_that_leaves_closes_everything_then_leaves() {
        let c = changes(Some(&record(&[(1, false)], &[9])), None);
        assert_eq!(names(&c), ["closed", "closedData", "left"]);
        assert_eq!(c.closed.len(), 2);
        assert_eq!(changes(None, None), Changes::default());
    }

    #[test]
    fn a_hand_raised_or_lowered_on_another_node_is_an_event_here() {
        let down = record(&[(1, false)], &[]);
        let up = MemberRecord { hand_raised_at: Some(5), ..down.clone() };
        assert_eq!(names(&changes(None, Some(&up))), ["joined", "new", "hand"]);
        assert_eq!(names(&changes(Some(&down), Some(&up))), ["hand"]);
        assert_eq!(names(&changes(Some(&up), Some(&up))), Vec::<&str>::new());
        assert_eq!(names(&changes(Some(&up), Some(&down))), ["handDown"]);
        // Leaving says so; the hand goes with the peer.
        assert_eq!(names(&changes(Some(&up), None)), ["closed", "left"]);
    }
}
