//! The layer allocator: a pure function from a transport's estimate and its consumers to each
//! consumer's target layer.
//!
//! Policy, in order:
//! 1. audio: always allocated unless paused, its bitrate reserved first (it is cheap and losing it
//!    breaks the call; it is given even when the estimate does not cover it);
//! 2. screen shares, by priority, each to the highest layer up to its preference that fits;
//! 3. video, by priority: first every consumer gets its lowest layer (so that everyone is seen
//!    before anyone is sharp), then rounds in priority order move each one layer up towards its
//!    preference, until a round changes nothing.
//!
//! Hysteresis: a layer above the consumer's current one must fit with [`UPGRADE_MARGIN`] over its
//! bitrate, while the current layer (or a lower one) needs only its bitrate. An estimate hovering
//! around a layer's bitrate therefore keeps the current layer instead of switching on every call (a
//! spatial switch costs a keyframe; a temporal one is a visible frame-rate jump). The margin is
//! applied to layers above the current one in (spatial, temporal) order, temporal included, for
//! the same reason.

/// Upgrading needs the new layer's bitrate × 1.15 to fit.
pub const UPGRADE_MARGIN_PERCENT: u64 = 115;
/// The margin as a factor, for documentation.
pub const UPGRADE_MARGIN: f64 = UPGRADE_MARGIN_PERCENT as f64 / 100.0;

pub const MAX_SPATIAL: usize = 3;
pub const MAX_TEMPORAL: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
    Screen,
}

/// A (spatial, temporal) layer; ordered spatial first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Layer {
    pub spatial: u8,
    pub temporal: u8,
}

impl Layer {
    pub const fn new(spatial: u8, temporal: u8) -> Self {
        Self { spatial, temporal }
    }
}

/// One consumer as the allocator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerDemand {
    /// The caller's index for this consumer (ties in priority are broken by it, lowest first).
    pub id: usize,
    pub kind: MediaKind,
    /// 1..=255, higher first.
    pub priority: u8,
    pub paused: bool,
    /// The highest layer the client wants.
    pub preferred: Layer,
    /// The layer it receives now, if any.
    pub current: Option<Layer>,
    /// `layer_bitrates[s][t]`: bit/s of spatial layer `s` with temporal layers up to `t`; 0 when
    /// the layer does not exist. Audio uses `[0][0]`.
    pub layer_bitrates: [[u64; MAX_TEMPORAL]; MAX_SPATIAL],
}

/// The allocator's answer for one consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    pub id: usize,
    /// `None`: paused, or nothing fits.
    pub target: Option<Layer>,
    pub bitrate_bps: u64,
}

/// Allocates `estimate_bps` over `consumers`; one allocation per consumer, in input order.
pub fn allocate(estimate_bps: u64, consumers: &[ConsumerDemand]) -> Vec<Allocation> {
    let mut out: Vec<Allocation> =
        consumers.iter().map(|c| Allocation { id: c.id, target: None, bitrate_bps: 0 }).collect();
    let mut remaining = estimate_bps;

    let mut order: Vec<usize> = (0..consumers.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(consumers[i].priority), consumers[i].id));
    let active =
        |kind: MediaKind| order.iter().copied().filter(move |&i| consumers[i].kind == kind && !consumers[i].paused);

    for i in active(MediaKind::Audio) {
        let bitrate = consumers[i].layer_bitrates[0][0];
        out[i] = Allocation { id: consumers[i].id, target: Some(Layer::new(0, 0)), bitrate_bps: bitrate };
        remaining = remaining.saturating_sub(bitrate);
    }

    for i in active(MediaKind::Screen) {
        let consumer = &consumers[i];
        let ladder = Ladder::of(consumer);
        if let Some(&layer) = ladder.layers().iter().rev().find(|&&layer| fits(consumer, layer, 0, remaining)) {
            out[i] = allocation(consumer, layer);
            remaining -= out[i].bitrate_bps;
        }
    }

    // Fairness: everyone's lowest layer first. `rung[i]` is consumer i's position on its ladder.
    let ladders: Vec<Ladder> = consumers.iter().map(Ladder::of).collect();
    let mut rung: Vec<Option<usize>> = vec![None; consumers.len()];
    // The lowest layer is a floor, given even when it does not fit: a tile that keeps moving at a
    // few frames a second is a call, a frozen one is not (and the lowest layers are a small part of
    // any downlink that carries the audio).
    for i in active(MediaKind::Video) {
        if let Some(&lowest) = ladders[i].layers().first() {
            out[i] = allocation(&consumers[i], lowest);
            remaining = remaining.saturating_sub(out[i].bitrate_bps);
            rung[i] = Some(0);
        }
    }
    // Then one rung up per consumer per round, in priority order, until a round changes nothing.
    loop {
        let mut changed = false;
        for i in active(MediaKind::Video) {
            let Some(at) = rung[i] else { continue };
            let Some(&next) = ladders[i].layers().get(at + 1) else { continue };
            if fits(&consumers[i], next, out[i].bitrate_bps, remaining) {
                let upgraded = allocation(&consumers[i], next);
                remaining -= upgraded.bitrate_bps - out[i].bitrate_bps;
                out[i] = upgraded;
                rung[i] = Some(at + 1);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    out
}

/// A consumer's usable layers up to its preference, cheapest first (equal bitrates in layer
/// order). Bitrates are cumulative, so a rung never costs less than the one below it.
struct Ladder {
    layers: [Layer; MAX_SPATIAL * MAX_TEMPORAL],
    len: usize,
}

impl Ladder {
    fn of(consumer: &ConsumerDemand) -> Self {
        let max_s = usize::from(consumer.preferred.spatial).min(MAX_SPATIAL - 1);
        let max_t = usize::from(consumer.preferred.temporal).min(MAX_TEMPORAL - 1);
        let mut ladder = Self { layers: [Layer::new(0, 0); MAX_SPATIAL * MAX_TEMPORAL], len: 0 };
        for s in 0..=max_s {
            for t in 0..=max_t {
                if consumer.layer_bitrates[s][t] > 0 {
                    ladder.layers[ladder.len] = Layer::new(s as u8, t as u8);
                    ladder.len += 1;
                }
            }
        }
        ladder.layers[..ladder.len].sort_by_key(|&layer| (bitrate_of(consumer, layer), layer));
        ladder
    }

    fn layers(&self) -> &[Layer] {
        &self.layers[..self.len]
    }
}

fn allocation(consumer: &ConsumerDemand, layer: Layer) -> Allocation {
    Allocation { id: consumer.id, target: Some(layer), bitrate_bps: bitrate_of(consumer, layer) }
}

fn bitrate_of(consumer: &ConsumerDemand, layer: Layer) -> u64 {
    consumer.layer_bitrates[usize::from(layer.spatial)][usize::from(layer.temporal)]
}

/// Whether moving `consumer` from an allocation of `allocated` bit/s to `layer` fits in
/// `remaining`, with the upgrade margin when `layer` is above the consumer's current layer.
fn fits(consumer: &ConsumerDemand, layer: Layer, allocated: u64, remaining: u64) -> bool {
    let bitrate = bitrate_of(consumer, layer);
    let is_upgrade = consumer.current.is_none_or(|current| layer > current);
    let needed = if is_upgrade { bitrate.saturating_mul(UPGRADE_MARGIN_PERCENT) / 100 } else { bitrate };
    needed.saturating_sub(allocated) <= remaining
}
