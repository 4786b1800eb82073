//! This node's inbox: other nodes' requests (served by the handler, answered on the asker's
//! inbox) and the answers to this node's own requests.

use std::sync::Arc;

use tracing::debug;

use super::wire::NodeMessage;
use super::{Cluster, keys, lock};

pub fn handle(cluster: &Arc<Cluster>, message: NodeMessage) {
    match message {
        NodeMessage::Request { from, id, request } => {
            let Some(handler) = cluster.handler() else { return };
            let cluster = cluster.clone();
            cluster.metrics.requests_served.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::spawn(async move {
                let result = handler.serve(from.clone(), request).await;
                let reply = NodeMessage::Reply { from: cluster.node_id().to_owned(), id, result };
                let text = serde_json::to_string(&reply).expect("node messages serialize");
                let publish = redis::cmd("PUBLISH").arg(keys::node_channel(&from)).arg(text).clone();
                if let Err(e) = cluster.link.run::<u64>(&publish).await {
                    debug!(to = from, "cluster: reply not sent: {e}");
                }
            });
        }
        NodeMessage::Reply { id, result, .. } => {
            // An answer nobody waits for any more (timed out) is dropped.
            if let Some(waiter) = lock(&cluster.pending).remove(&id) {
                let _ = waiter.send(result);
            }
        }
    }
}
