//! Keeps the node in the cluster: connects to Redis (and reconnects after an outage), heart-beats,
//! reads the other nodes' records and notices the ones that died.
//!
//! After every (re)connection the handler resynchronises: Redis may have lost everything (a
//! restart), or missed this node's changes while it was unreachable. Deaths are not declared for
//! one TTL after connecting, so that a Redis restarted empty does not make every other node look
//! dead before they heart-beat again; for the same reason the resync runs twice: at once (write our
//! state, learn what is there) and once settled (what Redis still lacks then has really gone).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use futures_util::StreamExt;
use tokio::time::Instant;
use tracing::{info, warn};

use super::wire::NodeRecord;
use super::{Cluster, ClusterError, HEARTBEAT, NODE_TTL, keys, link, lock};

/// Pub/sub connections are numbered so that the reader of a replaced one does not mark the link down.
static GENERATION: AtomicU64 = AtomicU64::new(0);

pub async fn run(cluster: Weak<Cluster>) {
    let mut connected_at: Option<Instant> = None;
    let mut was_up = false;
    let mut reconciled = false;
    loop {
        let Some(c) = cluster.upgrade() else { return };
        if !c.is_up() {
            if was_up {
                warn!("cluster: Redis unreachable; serving what this node has, refusing cross-node joins");
                was_up = false;
            }
            match connect(&c).await {
                Ok(()) => {
                    info!(node = c.node_id(), "cluster: connected to Redis");
                    connected_at = Some(Instant::now());
                    was_up = true;
                    reconciled = false;
                    // The table first, so that the resync knows who is alive.
                    if heartbeat(&c).await.is_ok() {
                        let _ = refresh(&c, false).await;
                    }
                    if let Some(handler) = c.handler() {
                        handler.resync(false).await;
                    }
                }
                Err(e) => {
                    tracing::debug!("cluster: connecting failed: {e}");
                    drop(c);
                    tokio::time::sleep(HEARTBEAT).await;
                    continue;
                }
            }
        } else if heartbeat(&c).await.is_ok() {
            let settled = connected_at.is_some_and(|t| t.elapsed() >= NODE_TTL);
            let _ = refresh(&c, settled).await;
            // By now every live node has reconnected and written its state again: what Redis
            // lacks is gone (left while we could not hear it).
            if settled
                && !reconciled
                && let Some(handler) = c.handler()
            {
                handler.resync(true).await;
                reconciled = true;
            }
        }
        drop(c);
        tokio::time::sleep(HEARTBEAT).await;
    }
}

/// A command connection and a pub/sub connection subscribed to this node's inbox and every open
/// room's channel.
async fn connect(c: &Arc<Cluster>) -> Result<(), ClusterError> {
    c.link.connect().await?;
    let pubsub = tokio::time::timeout(link::COMMAND_TIMEOUT * 2, c.link.client().get_async_pubsub())
        .await
        .map_err(|_| ClusterError::Down("pub/sub connection timed out".into()))?
        .map_err(|e| ClusterError::Down(e.to_string()))?;
    let (mut sink, stream) = pubsub.split();
    let mut channels = vec![keys::node_channel(c.node_id())];
    channels.extend(lock(&c.rooms).iter().map(|r| keys::room_channel(r)));
    tokio::time::timeout(link::COMMAND_TIMEOUT, sink.subscribe(&channels))
        .await
        .map_err(|_| ClusterError::Down("subscribing timed out".into()))?
        .map_err(|e| ClusterError::Down(e.to_string()))?;
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed) + 1;
    *lock(&c.pubsub) = Some(sink);
    c.link.mark_up();
    tokio::spawn(read(Arc::downgrade(c), stream, generation));
    Ok(())
}

/// Hands every message of the pub/sub connection to the cluster until the connection ends.
async fn read(cluster: Weak<Cluster>, mut stream: redis::aio::PubSubStream, generation: u64) {
    while let Some(msg) = stream.next().await {
        let Some(c) = cluster.upgrade() else { return };
        c.on_message(msg.get_channel_name(), msg.get_payload_bytes());
    }
    if let Some(c) = cluster.upgrade()
        && GENERATION.load(Ordering::Relaxed) == generation
    {
        warn!("cluster: pub/sub connection to Redis lost");
        c.link.mark_down();
        *lock(&c.pubsub) = None;
    }
}

/// Writes this node's record with its TTL.
async fn heartbeat(c: &Arc<Cluster>) -> Result<(), ClusterError> {
    let Some(handler) = c.handler() else { return Ok(()) };
    let record = handler.node_record();
    let text = serde_json::to_string(&record).expect("node records serialize");
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("SET")
        .arg(keys::node(c.node_id()))
        .arg(text)
        .arg("PX")
        .arg(NODE_TTL.as_millis() as u64)
        .ignore()
        .cmd("SADD")
        .arg(keys::NODES)
        .arg(c.node_id())
        .ignore();
    c.link.run::<()>(&pipe).await
}

/// Reads every node's record; tells the handler the table and, once `settled`, who is gone.
async fn refresh(c: &Arc<Cluster>, settled: bool) -> Result<(), ClusterError> {
    let ids: Vec<String> = c.link.run(redis::cmd("SMEMBERS").arg(keys::NODES)).await?;
    let mut alive = HashMap::new();
    if !ids.is_empty() {
        let node_keys: Vec<String> = ids.iter().map(|id| keys::node(id)).collect();
        let records: Vec<Option<String>> = c.link.run(redis::cmd("MGET").arg(&node_keys)).await?;
        for (id, text) in ids.iter().zip(records) {
            match text.map(|t| serde_json::from_str::<NodeRecord>(&t)) {
                Some(Ok(record)) if &record.id == id => {
                    alive.insert(id.clone(), record);
                }
                Some(_) => warn!(node = id, "unreadable node record in Redis: ignored"),
                // Expired: the node stopped heart-beating. Whoever sees it first tidies the set.
                None if settled => {
                    let _ = c.link.run::<i64>(redis::cmd("SREM").arg(keys::NODES).arg(id)).await;
                }
                None => {}
            }
        }
    }
    let gone: Vec<String> = {
        let mut nodes = lock(&c.nodes);
        let gone = if settled {
            nodes
                .iter()
                .filter(|(id, old)| alive.get(*id).is_none_or(|new| new.epoch != old.epoch))
                .map(|(id, _)| id.clone())
                .collect()
        } else {
            // Not settled: a node missing now may just not have heart-beaten since Redis came
            // back; keep what we knew of it.
            for (id, old) in nodes.iter() {
                alive.entry(id.clone()).or_insert_with(|| old.clone());
            }
            Vec::new()
        };
        *nodes = alive.clone();
        gone
    };
    for id in &gone {
        info!(node = id, "cluster: node gone");
    }
    if let Some(handler) = c.handler() {
        handler.on_nodes(&alive, &gone);
    }
    Ok(())
}
