//! The periodic pass that moves simulcast consumers' targets as the client's preferences and the
//! sender's active encodings change, and tells the controller which layers each one forwards.

use std::time::{Duration, Instant};

use octo_ipc::{ConsumerId, ConsumerLayers, ConsumerNotification, Notification};

use super::worker::Worker;

/// How often targets are revisited: a sender that stops an encoding is followed within this plus
/// [`super::producer::STREAM_INACTIVE_AFTER`].
pub const LAYER_UPDATE_INTERVAL: Duration = Duration::from_millis(100);

impl Worker {
    /// Re-targets every simulcast consumer and reports the ones whose forwarded layers changed.
    pub(super) fn update_layers(&mut self, now: Instant) {
        // Transports with a downlink estimate: the allocator sets their consumers' targets.
        let mut transports = std::mem::take(&mut self.bwe_visits);
        transports.clear();
        transports.extend(self.transports.values().filter(|t| t.bwe.is_some()).map(|t| t.id));
        for &id in &transports {
            self.allocate_downlink(now, id);
            self.probe_downlink(now, id);
        }
        self.bwe_visits = transports;
        let mut ids = std::mem::take(&mut self.layer_visits);
        ids.clear();
        ids.extend(self.consumers.values().filter(|c| c.layers.is_some()).map(|c| c.id));
        for &id in &ids {
            self.update_layers_of(now, id);
        }
        self.layer_visits = ids;
    }

    /// Re-targets consumer `id` by its preference and the active encodings (unless its
    /// transport's allocator did), and reports a change of what it forwards.
    pub(super) fn update_layers_of(&mut self, now: Instant, id: ConsumerId) {
        let Some(consumer) = self.consumers.get_mut(&id) else { return };
        let Some(producer) = self.producers.get(&consumer.producer_id) else { return };
        let allocated = self
            .transports
            .get(&consumer.transport_id)
            .and_then(|t| t.bwe.as_ref())
            .is_some_and(|b| b.stats().feedback_received > 0);
        let Some(selector) = consumer.layers.as_mut() else { return };
        let active = producer
            .streams
            .iter()
            .take(8)
            .enumerate()
            .filter(|(_, s)| s.is_active(now))
            .fold(0u8, |mask, (i, _)| mask | (1 << i));
        if !allocated {
            selector.retarget(active);
        }
        if let Some(change) = selector.take_change() {
            tracing::debug!(consumer = %id, target = ?selector.target, current = ?change, "layers changed");
            let layers = change.map(|l| ConsumerLayers { spatial_layer: l.spatial, temporal_layer: Some(l.temporal) });
            self.notify(Notification::Consumer(id, ConsumerNotification::LayersChanged(layers)));
        }
    }
}
