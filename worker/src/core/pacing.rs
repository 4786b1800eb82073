//! Where the forwarding path meets each transport's [`Pacer`]: video to a transport with a downlink
//! estimate goes through it, everything else is sent at once (audio and RTCP paid for in its
//! budget). The transport-cc send time handed to the estimator is when a packet really leaves, not
//! when it was made: time spent in the pacer is not network delay.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::pacer::{PACING_FACTOR, Pacer};
use super::transmit::{SocketId, TransmitQueue};
use super::transport::Transport;
use super::worker::Worker;

/// How often a transport's held packets are looked at while any wait.
pub const PACE_TICK: Duration = Duration::from_millis(5);

/// An encrypted packet waiting in a transport's pacer.
pub struct Paced {
    pub socket: SocketId,
    pub to: SocketAddr,
    pub buf: Vec<u8>,
    /// Its transport-wide sequence number, for the estimator once it leaves.
    pub twcc: Option<u16>,
}

pub type TransportPacer = Pacer<Paced>;

fn pacing_rate(transport: &Transport) -> Option<f64> {
    transport.bwe.as_ref().filter(|_| transport.paced).map(|b| b.estimate_bps() as f64 * PACING_FACTOR)
}

/// Sends `p` now or holds it in its transport's pacer (`video`: it may wait).
pub(super) fn send(now: Instant, transmits: &mut TransmitQueue, transport: &mut Transport, video: bool, p: Paced) {
    let Some(rate) = pacing_rate(transport) else { return leave(now, transmits, transport, p) };
    let bytes = p.buf.len();
    if !video {
        transport.pacer.spend(now, rate, bytes);
        return leave(now, transmits, transport, p);
    }
    if transport.pacer.admit(now, rate, bytes) {
        return leave(now, transmits, transport, p);
    }
    if let Some(dropped) = transport.pacer.push(now, p, bytes) {
        transmits.recycle(dropped.buf);
    }
    if !transport.pacing_listed {
        transport.pacing_listed = true;
        transmits.pacing.push(transport.id);
    }
    let next = now + PACE_TICK;
    transmits.pace_at = Some(transmits.pace_at.map_or(next, |t| t.min(next)));
}

fn leave(now: Instant, transmits: &mut TransmitQueue, transport: &mut Transport, p: Paced) {
    if let (Some(seq), Some(bwe)) = (p.twcc, transport.bwe.as_mut()) {
        bwe.on_packet_sent(now, seq, p.buf.len(), None);
    }
    transmits.push(p.socket, p.to, p.buf);
}

impl Worker {
    /// Sends what the pacers of the transports holding packets allow now; whether any still hold some.
    pub(super) fn pace_media(&mut self, now: Instant) -> bool {
        self.transmits.pace_at = None;
        let mut holding = std::mem::take(&mut self.transmits.pacing);
        holding.retain(|id| {
            let Some(transport) = self.transports.get_mut(id) else { return false };
            let rate = pacing_rate(transport).unwrap_or(f64::MAX);
            while let Some(p) = transport.pacer.next_due(now, rate) {
                leave(now, &mut self.transmits, transport, p);
            }
            transport.pacing_listed = !transport.pacer.is_empty();
            transport.pacing_listed
        });
        holding.append(&mut self.transmits.pacing);
        let any = !holding.is_empty();
        self.transmits.pacing = holding;
        any
    }
}
