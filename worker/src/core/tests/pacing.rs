//! The video pacer's drops in the worker's metrics: a subscriber's queue that overflows counts
//! its dropped packets, and the count outlives the transport.

use octo_ipc::*;

use crate::core::pacer::MAX_QUEUED;
use crate::core::testing::{Harness, vp8_payload};

const VP8_PT: u8 = 96;
const VIDEO_SSRC: u32 = 1111;

#[test]
fn a_full_pacer_queue_counts_its_drops_in_the_metrics_even_after_the_transport_closes() {
    let mut h = Harness::new();
    // The consumer negotiates transport-cc, so its transport gets an estimator and is paced
    // (the harness's worker paces video) at 2.5 × the initial 1 Mbit/s.
    let (mut publisher, mut sub) = h.video_call();
    assert_eq!(h.worker.metrics().pacer_packets_dropped, 0);
    // A burst of 1,000-byte packets at one instant: the pacer's budget lets a few through, queues
    // the rest, and beyond its queue drops the oldest.
    let burst = MAX_QUEUED + 100;
    for seq in 1..=burst as u16 {
        publisher.send_rtp(VP8_PT, VIDEO_SSRC, seq, 3000, &vp8_payload(seq == 1, 0xAA).repeat(100)[..1000]);
        h.deliver(&mut publisher);
    }
    // The fan-out runs as datagrams are taken; no time passes, so the queue does not drain.
    h.pump(&mut [&mut publisher, &mut sub]);
    let dropped = h.worker.metrics().pacer_packets_dropped;
    let went = sub.rtp.len();
    assert!(went > 0, "the budget let nothing through");
    assert_eq!(
        dropped as usize,
        burst - went - MAX_QUEUED,
        "{went} went at once, {MAX_QUEUED} wait: the rest were dropped"
    );
    assert_eq!(h.request(Request::Transport(sub.transport, TransportRequest::Close)), Ok(Response::Ok));
    assert_eq!(h.worker.metrics().pacer_packets_dropped, dropped, "the count went with the transport");
}
