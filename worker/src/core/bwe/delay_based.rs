//! The delay-based estimate: packets (send time, arrival time) go through the burst grouping and
//! the trendline detector; once per feedback the AIMD controller turns the detector's signal and
//! the acknowledged rate into a rate.

use super::aimd::{Aimd, RateState};
use super::inter_arrival::InterArrival;
use super::trendline::{BandwidthUsage, Trendline};

#[derive(Debug)]
pub(super) struct DelayBased {
    inter_arrival: InterArrival,
    trendline: Trendline,
    aimd: Aimd,
}

impl DelayBased {
    pub fn new(initial_bps: f64, min_bps: f64, max_bps: f64) -> Self {
        Self {
            inter_arrival: InterArrival::default(),
            trendline: Trendline::default(),
            aimd: Aimd::new(initial_bps, min_bps, max_bps),
        }
    }

    /// One received packet, in send order; times in µs (send: sender's clock, arrival: receiver's).
    pub fn on_packet(&mut self, send_us: i64, arrival_us: i64) {
        if let Some(delta) = self.inter_arrival.on_packet(send_us, arrival_us) {
            self.trendline.update(delta.send_delta_ms, delta.arrival_delta_ms, delta.arrival_ms);
        }
    }

    /// Ends one feedback: the controller reacts to what the detector now says (see
    /// [`Aimd::update`] for `probing`).
    pub fn update(&mut self, acked_bps: Option<f64>, now_us: i64, rtt_us: i64, probing: bool) -> f64 {
        self.aimd.update(self.trendline.usage(), acked_bps, now_us, rtt_us, probing)
    }

    pub fn set_rate(&mut self, bps: f64) {
        self.aimd.set_rate(bps);
    }

    pub fn rate_bps(&self) -> f64 {
        self.aimd.rate_bps()
    }

    pub fn usage(&self) -> BandwidthUsage {
        self.trendline.usage()
    }

    pub fn state(&self) -> RateState {
        self.aimd.state()
    }

    pub fn near_capacity(&self) -> bool {
        self.aimd.near_capacity()
    }
}
