//! Which packets of a simulcast producer one consumer forwards: mediasoup's `SimulcastConsumer`
//! decisions, as a pure state machine beside the simple consumer (the consumer keeps its numbering;
//! this only says forward, drop or ignore).
//!
//! - Spatial layers are the producer's encodings, lowest first; each is an independent stream, so a
//!   switch happens only at a keyframe of the encoding switched to, and the outgoing sequence
//!   numbers, timestamps and VP8 picture ids are re-based there so the receiver sees one stream.
//! - Temporal layers (VP8 TID) above the target are dropped (a counted drop in the numbering, so no
//!   gap shows); going down happens at the next frame start, going up only at a layer-sync frame
//!   (Y bit), where the higher layer does not reference frames that were not sent.

use std::time::{Duration, Instant};

use super::rtp::vp8::Vp8Descriptor;

/// Spatial and temporal layer indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layers {
    pub spatial: u8,
    pub temporal: u8,
}

/// What the forwarding path knows of a packet of the producer.
#[derive(Debug, Clone, Copy, Default)]
pub struct PacketLayers {
    pub encoding: u8,
    pub keyframe: bool,
    pub vp8: Option<Vp8Descriptor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Another encoding than the one forwarded: not this consumer's stream at all.
    Ignore,
    /// Of the forwarded encoding but a layer not forwarded: the numbering skips it.
    Drop,
    /// Send it; `switched` says the forwarded encoding changed here (re-base the numbering).
    Forward { switched: bool },
}

/// The highest temporal layer a VP8 stream carries (L1T3).
pub const MAX_TEMPORAL: u8 = 2;

#[derive(Debug, Clone)]
pub struct LayerSelector {
    /// What the client asked for at most.
    pub preferred: Layers,
    /// What the consumer should forward now (preferences, active encodings and bandwidth allowing);
    /// `None`: nothing fits.
    pub target: Option<Layers>,
    /// The encoding being forwarded, once a keyframe started it.
    pub current_spatial: Option<u8>,
    pub current_temporal: u8,
    /// The layers last reported to the controller.
    pub reported: Option<Layers>,
    /// How many encodings the producer has (at most 8).
    pub spatial_layers: u8,
}

impl LayerSelector {
    pub fn new(spatial_layers: u8) -> Self {
        let top = Layers { spatial: spatial_layers.saturating_sub(1), temporal: MAX_TEMPORAL };
        Self {
            preferred: top,
            target: Some(top),
            current_spatial: None,
            current_temporal: 0,
            reported: None,
            spatial_layers: spatial_layers.clamp(1, 8),
        }
    }

    /// The client's wish, clamped to what exists; the temporal layer defaults to the highest.
    pub fn set_preferred(&mut self, spatial: u8, temporal: Option<u8>) {
        self.preferred = Layers {
            spatial: spatial.min(self.spatial_layers.saturating_sub(1)),
            temporal: temporal.unwrap_or(MAX_TEMPORAL).min(MAX_TEMPORAL),
        };
    }

    /// Chooses the target from the preference and the encodings the sender sends now (`active`, a
    /// bit each): the preferred encoding, or the highest active one below it, or (none active
    /// below) the lowest active one above; with nothing active the preference stands (nothing
    /// arrives anyway, and the first keyframe starts it).
    pub fn retarget(&mut self, active: u8) {
        let preferred = self.preferred;
        let spatial = (0..=preferred.spatial)
            .rev()
            .find(|&s| active & (1 << s) != 0)
            .or_else(|| (preferred.spatial + 1..self.spatial_layers).find(|&s| active & (1 << s) != 0))
            .unwrap_or(preferred.spatial);
        self.target = Some(Layers { spatial, temporal: preferred.temporal });
    }

    /// The layers being forwarded now.
    pub fn current(&self) -> Option<Layers> {
        self.current_spatial.map(|spatial| Layers { spatial, temporal: self.current_temporal })
    }

    /// Forwarding restarts (resume): the next keyframe of an encoding up to the target starts it.
    pub fn restart(&mut self) {
        self.current_spatial = None;
    }

    /// The encoding whose keyframe the consumer waits for, if any.
    pub fn wants_keyframe(&self) -> Option<u8> {
        let target = self.target?;
        (self.current_spatial != Some(target.spatial)).then_some(target.spatial)
    }

    /// The decision for one packet of the producer.
    pub fn select(&mut self, p: &PacketLayers) -> Verdict {
        let Some(target) = self.target else {
            // Nothing fits: stop, and start again at a keyframe (no gap a receiver would NACK).
            self.current_spatial = None;
            return Verdict::Ignore;
        };
        let mut switched = false;
        if self.current_spatial != Some(p.encoding) {
            if !p.keyframe || !self.better(p.encoding, target.spatial) {
                return Verdict::Ignore;
            }
            self.current_spatial = Some(p.encoding);
            // A keyframe resets every temporal dependency: all layers up to the target may start.
            self.current_temporal = target.temporal;
            switched = true;
        }
        let Some(vp8) = p.vp8 else { return Verdict::Forward { switched } };
        if vp8.start_of_frame && !switched {
            if self.current_temporal > target.temporal {
                self.current_temporal = target.temporal;
            } else if vp8.temporal_id > self.current_temporal && vp8.temporal_id <= target.temporal && vp8.layer_sync {
                self.current_temporal = vp8.temporal_id;
            }
        }
        if vp8.temporal_id > self.current_temporal {
            return Verdict::Drop;
        }
        Verdict::Forward { switched }
    }

    /// Whether a keyframe of `encoding` is worth switching to while `target` is wanted: anything up
    /// to the target while nothing is forwarded (start fast, climb later), then only a step closer
    /// to the target.
    fn better(&self, encoding: u8, target: u8) -> bool {
        if encoding > target {
            return false;
        }
        match self.current_spatial {
            None => true,
            Some(current) if current > target => encoding == target,
            Some(current) => encoding > current,
        }
    }

    /// The current layers if they changed since last reported (the caller tells the controller).
    pub fn take_change(&mut self) -> Option<Option<Layers>> {
        let current = self.current();
        (current != self.reported).then(|| {
            self.reported = current;
            current
        })
    }
}

/// Hysteresis in time for a consumer's spatial layer under the downlink allocator: a step down soon
/// after a step up means the step up did not fit (its keyframe's burst, or an estimate that was
/// optimistic), so the next step up waits, twice as long each time it happens again; a layer that
/// holds for a while forgets that. Without it a consumer at a boundary climbs and falls every
/// second, and each climb costs a keyframe.
#[derive(Debug, Clone, Default)]
pub struct UpgradeHold {
    until: Option<Instant>,
    backoff: Duration,
    last_up: Option<Instant>,
}

/// The first wait after a failed step up, and the longest.
pub const UPGRADE_HOLD_MIN: Duration = Duration::from_secs(2);
pub const UPGRADE_HOLD_MAX: Duration = Duration::from_secs(16);
/// A step down this soon after a step up counts the step up as failed.
const FAILED_UP_WITHIN: Duration = Duration::from_secs(5);

impl UpgradeHold {
    /// The target to apply at `now`: `proposed` unless it climbs to a higher encoding while held.
    pub fn filter(&mut self, now: Instant, current: Option<Layers>, proposed: Option<Layers>) -> Option<Layers> {
        let spatial = |l: Option<Layers>| l.map(|l| i16::from(l.spatial)).unwrap_or(-1);
        let (from, to) = (spatial(current), spatial(proposed));
        if to > from {
            if self.until.is_some_and(|t| now < t) {
                return current;
            }
            self.last_up = Some(now);
        } else if to < from {
            let failed_up = self.last_up.is_some_and(|t| now.saturating_duration_since(t) < FAILED_UP_WITHIN);
            self.backoff =
                if failed_up { (self.backoff * 2).clamp(UPGRADE_HOLD_MIN, UPGRADE_HOLD_MAX) } else { UPGRADE_HOLD_MIN };
            self.until = Some(now + self.backoff);
        }
        proposed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vp8(tid: u8, sync: bool, start: bool) -> Option<Vp8Descriptor> {
        Some(Vp8Descriptor {
            picture_id: Some(1),
            picture_id_15_bits: true,
            temporal_id: tid,
            layer_sync: sync,
            start_of_frame: start,
            ..Default::default()
        })
    }

    fn packet(encoding: u8, keyframe: bool, tid: u8, sync: bool) -> PacketLayers {
        PacketLayers { encoding, keyframe, vp8: vp8(tid, sync, true) }
    }

    #[test]
    fn starts_on_any_keyframe_up_to_the_target_then_climbs_to_it() {
        let mut s = LayerSelector::new(3);
        assert_eq!(s.wants_keyframe(), Some(2));
        assert_eq!(s.select(&packet(0, false, 0, false)), Verdict::Ignore);
        assert_eq!(s.select(&packet(0, true, 0, false)), Verdict::Forward { switched: true });
        assert_eq!(s.current(), Some(Layers { spatial: 0, temporal: 2 }));
        // Encoding 2's delta frames are not a way in; its keyframe is.
        assert_eq!(s.select(&packet(2, false, 0, false)), Verdict::Ignore);
        assert_eq!(s.select(&packet(1, true, 0, false)), Verdict::Forward { switched: true });
        assert_eq!(s.select(&packet(0, false, 0, false)), Verdict::Ignore);
        assert_eq!(s.select(&packet(2, true, 0, false)), Verdict::Forward { switched: true });
        assert_eq!(s.wants_keyframe(), None);
        assert_eq!(s.select(&packet(1, true, 0, false)), Verdict::Ignore, "nothing below once at the target");
    }

    #[test]
    fn going_down_waits_for_the_lower_keyframe_and_keeps_the_current_meanwhile() {
        let mut s = LayerSelector::new(3);
        s.select(&packet(2, true, 0, false));
        s.target = Some(Layers { spatial: 0, temporal: 2 });
        assert_eq!(s.wants_keyframe(), Some(0));
        assert_eq!(s.select(&packet(2, false, 0, false)), Verdict::Forward { switched: false });
        assert_eq!(s.select(&packet(1, true, 0, false)), Verdict::Ignore, "not the target");
        assert_eq!(s.select(&packet(0, true, 0, false)), Verdict::Forward { switched: true });
        assert_eq!(s.select(&packet(2, false, 0, false)), Verdict::Ignore);
    }

    #[test]
    fn temporal_layers_drop_at_a_frame_start_and_rise_at_layer_sync() {
        let mut s = LayerSelector::new(1);
        s.select(&packet(0, true, 0, false));
        s.target = Some(Layers { spatial: 0, temporal: 0 });
        // Mid-frame packets of a TL2 frame already being sent keep going until the frame ends.
        assert_eq!(
            s.select(&PacketLayers { encoding: 0, keyframe: false, vp8: vp8(2, false, false) }),
            Verdict::Forward { switched: false }
        );
        assert_eq!(s.select(&packet(0, false, 2, false)), Verdict::Drop);
        assert_eq!(s.select(&packet(0, false, 1, false)), Verdict::Drop);
        assert_eq!(s.select(&packet(0, false, 0, false)), Verdict::Forward { switched: false });
        s.target = Some(Layers { spatial: 0, temporal: 2 });
        assert_eq!(s.select(&packet(0, false, 2, false)), Verdict::Drop, "TL2 without sync");
        assert_eq!(s.select(&packet(0, false, 1, true)), Verdict::Forward { switched: false });
        assert_eq!(s.current_temporal, 1);
        assert_eq!(s.select(&packet(0, false, 2, true)), Verdict::Forward { switched: false });
        assert_eq!(s.current_temporal, 2);
    }

    #[test]
    fn the_target_follows_the_preference_and_the_active_encodings() {
        let mut s = LayerSelector::new(3);
        s.set_preferred(9, Some(1));
        assert_eq!(s.preferred, Layers { spatial: 2, temporal: 1 });
        s.retarget(0b111);
        assert_eq!(s.target, Some(Layers { spatial: 2, temporal: 1 }));
        // The sender stopped its top encoding.
        s.retarget(0b011);
        assert_eq!(s.target.map(|t| t.spatial), Some(1));
        s.set_preferred(0, None);
        s.retarget(0b110);
        assert_eq!(s.target.map(|t| t.spatial), Some(1), "the lowest active above when none below");
        s.retarget(0);
        assert_eq!(s.target.map(|t| t.spatial), Some(0));
    }

    #[test]
    fn a_step_up_that_fails_waits_longer_each_time() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let l = |spatial| Some(Layers { spatial, temporal: 2 });
        let mut hold = UpgradeHold::default();
        assert_eq!(hold.filter(at(0), l(0), l(1)), l(1), "nothing held at first");
        assert_eq!(hold.filter(at(1000), l(1), l(0)), l(0), "down: always at once");
        assert_eq!(hold.filter(at(2500), l(0), l(1)), l(0), "held for 2 s");
        assert_eq!(hold.filter(at(3100), l(0), l(1)), l(1));
        assert_eq!(hold.filter(at(3500), l(1), l(0)), l(0), "failed again");
        assert_eq!(hold.filter(at(6000), l(0), l(1)), l(0), "now 4 s");
        assert_eq!(hold.filter(at(7600), l(0), l(1)), l(1));
        // Holds for a long while, then falls: not a failed step up, the wait starts short again.
        assert_eq!(hold.filter(at(30_000), l(1), l(0)), l(0));
        assert_eq!(hold.filter(at(32_100), l(0), l(1)), l(1));
        // Temporal changes on one encoding are never held.
        let t = |temporal| Some(Layers { spatial: 1, temporal });
        assert_eq!(hold.filter(at(32_200), t(2), t(0)), t(0));
        assert_eq!(hold.filter(at(32_300), t(0), t(2)), t(2));
    }

    #[test]
    fn no_target_forwards_nothing_and_changes_are_reported_once() {
        let mut s = LayerSelector::new(2);
        assert_eq!(s.take_change(), None);
        s.select(&packet(1, true, 0, false));
        assert_eq!(s.take_change(), Some(Some(Layers { spatial: 1, temporal: 2 })));
        assert_eq!(s.take_change(), None);
        s.target = None;
        assert_eq!(s.select(&packet(1, false, 0, false)), Verdict::Ignore);
        assert_eq!(s.take_change(), Some(None));
    }
}
