//! Groups packets into send-time bursts and reports, per completed group, how much longer (or
//! shorter) the network took to deliver it than the sender took to send it (GCC §5.2).
//!
//! A single packet's delay is noisy (pacing, frame sizes, receiver scheduling); a group of
//! packets sent within 5 ms is what the delay-gradient filter compares.

/// Packets sent within this span of a group's first packet belong to the group.
const GROUP_SPAN_US: i64 = 5_000;
/// A packet arriving within this of the group's last one, and sooner than its send gap predicts,
/// was held up and released in a burst (Wi-Fi aggregation, a cross-traffic gap): it joins the group
/// rather than reporting a delay drop that the path did not have.
const BURST_SPAN_US: i64 = 5_000;
/// An arrival gap this much larger than its send gap is not queueing: the receiver's clock jumped
/// or the feedback lies. Start over instead of feeding it to the filter.
const ARRIVAL_JUMP_RESET_US: i64 = 3_000_000;

#[derive(Debug, Clone, Copy)]
struct Group {
    first_send_us: i64,
    last_send_us: i64,
    first_arrival_us: i64,
    last_arrival_us: i64,
}

/// The difference between two consecutive groups.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct GroupDelta {
    pub send_delta_ms: f64,
    pub arrival_delta_ms: f64,
    /// Arrival time of the newer group, ms on the receiver's clock.
    pub arrival_ms: f64,
}

#[derive(Debug, Default)]
pub(super) struct InterArrival {
    current: Option<Group>,
    previous: Option<Group>,
}

impl InterArrival {
    /// Feeds one received packet (in send order); returns a delta when it closes a group.
    pub fn on_packet(&mut self, send_us: i64, arrival_us: i64) -> Option<GroupDelta> {
        let Some(current) = self.current.as_mut() else {
            self.current = Some(Group::new(send_us, arrival_us));
            return None;
        };
        // Sent before the group being built: reordered beyond a group, useless for the gradient.
        if send_us < current.first_send_us {
            return None;
        }
        if current.contains(send_us, arrival_us) {
            current.last_send_us = current.last_send_us.max(send_us);
            current.last_arrival_us = current.last_arrival_us.max(arrival_us);
            return None;
        }
        let closed = *current;
        self.current = Some(Group::new(send_us, arrival_us));
        let delta = self.previous.and_then(|previous| {
            let send_delta = closed.last_send_us - previous.last_send_us;
            let arrival_delta = closed.last_arrival_us.saturating_sub(previous.last_arrival_us);
            (arrival_delta >= 0 && arrival_delta.saturating_sub(send_delta) < ARRIVAL_JUMP_RESET_US).then(|| {
                GroupDelta {
                    send_delta_ms: send_delta as f64 / 1000.0,
                    arrival_delta_ms: arrival_delta as f64 / 1000.0,
                    arrival_ms: closed.last_arrival_us as f64 / 1000.0,
                }
            })
        });
        // After a jump or a negative arrival gap the previous group is no reference: restart from
        // the group just closed.
        self.previous = Some(closed);
        delta
    }
}

impl Group {
    fn new(send_us: i64, arrival_us: i64) -> Self {
        Self {
            first_send_us: send_us,
            last_send_us: send_us,
            first_arrival_us: arrival_us,
            last_arrival_us: arrival_us,
        }
    }

    fn contains(&self, send_us: i64, arrival_us: i64) -> bool {
        if send_us - self.first_send_us <= GROUP_SPAN_US {
            return true;
        }
        let arrival_gap = arrival_us.saturating_sub(self.last_arrival_us);
        let send_gap = send_us - self.last_send_us;
        let in_burst = (0..=BURST_SPAN_US).contains(&arrival_gap) && arrival_gap < send_gap;
        in_burst && arrival_us.saturating_sub(self.first_arrival_us) < 100_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bwe_groups_by_send_time_and_reports_the_gradient() {
        let mut ia = InterArrival::default();
        // Three groups 10 ms apart, two packets each; the network adds 1 ms per group.
        let mut deltas = Vec::new();
        for g in 0..4i64 {
            for p in 0..2i64 {
                let send = g * 10_000 + p * 1_000;
                let arrival = 50_000 + send + g * 1_000;
                deltas.extend(ia.on_packet(send, arrival));
            }
        }
        assert_eq!(deltas.len(), 2, "{deltas:?}");
        for d in deltas {
            assert!((d.send_delta_ms - 10.0).abs() < 1e-9);
            assert!((d.arrival_delta_ms - 11.0).abs() < 1e-9);
        }
    }

    #[test]
    fn bwe_a_clock_jump_resets_instead_of_reporting() {
        let mut ia = InterArrival::default();
        let mut out = Vec::new();
        for (send, arrival) in [(0, 0), (10_000, 10_000), (20_000, 20_000), (30_000, 9_000_000), (40_000, 9_010_000)] {
            out.extend(ia.on_packet(send, arrival));
        }
        assert!(out.iter().all(|d| d.arrival_delta_ms - d.send_delta_ms < 3_000.0), "{out:?}");
    }
}
