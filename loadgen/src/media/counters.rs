//! What the media loop counts; a [`Snapshot`] of it is taken at each edge of a measurement window.

use std::time::{Duration, Instant};

use super::bottleneck::LinkCounters;
use super::downlink::DownlinkCounters;
use super::histogram::Histogram;

#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Datagrams, or ICE-TCP frames, the transports received.
    pub datagrams_received: u64,
    /// Reads that returned them: fewer when runs arrive coalesced (GRO) or several frames come in
    /// one read of a TCP stream.
    pub reads: u64,
    pub datagrams_sent: u64,
    pub send_errors: u64,
    /// Packets an ICE-TCP connection's full write buffer dropped (among `send_errors`).
    pub tcp_write_drops: u64,
    /// ICE-TCP connections that ended (refused, reset, closed by the worker, a bad frame): each is
    /// a failed transport.
    pub tcp_closed: u64,
    pub stun_sent: u64,
    pub stun_errors: u64,
    pub ice_failures: u64,
    pub consent_lost: u64,
    pub dtls_errors: u64,
    /// Datagrams that are none of STUN, DTLS, RTP or RTCP (the raw-send baseline's among them).
    pub foreign: u64,
    pub rtp_sent: u64,
    pub rtcp_sent: u64,
    pub rtp_received: u64,
    pub rtp_bytes_received: u64,
    pub rtx_received: u64,
    /// Padding-only RTX packets (the worker's bandwidth probes).
    pub padding_received: u64,
    /// Transport-wide CC feedback packets the subscribers sent.
    pub twcc_feedback_sent: u64,
    /// Datagrams the simulated bottlenecks delivered and dropped.
    pub link_delivered: u64,
    pub link_dropped: u64,
    pub unknown_ssrc: u64,
    pub rtcp_received: u64,
    pub pli_sent: u64,
    pub nack_sent: u64,
    pub nacked_packets: u64,
    pub nack_received: u64,
    pub keyframe_requests_received: u64,
    /// Sampled packets decrypted whose probe was intact, and those that failed.
    pub decrypted: u64,
    pub decrypt_failures: u64,
    pub corrupt: u64,
    /// Added latency (send → receive) of the decrypted samples.
    pub latency: Histogram,
    /// `consume` request → first RTP packet, per consumer.
    pub first_packet: Vec<Duration>,
}

/// The loop's state at one moment.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub at: Instant,
    pub counters: Counters,
    pub transports: usize,
    pub transports_connected: usize,
    pub transports_failed: usize,
    pub consumers: usize,
    pub consumers_flowing: usize,
    /// Sums over every consumer's primary stream.
    pub expected: u64,
    pub received: u64,
    /// Subscriber transports no longer read (`--read-every`): their streams are not in
    /// `expected`/`received`.
    pub sinks: usize,
    /// The kernel's count of UDP datagrams dropped at a full socket (all of this machine's).
    pub udp_rcvbuf_errors: u64,
    /// CPU time of the media loop's thread.
    pub loop_cpu: Duration,
    /// Which profile the transports negotiated (the first connected one's).
    pub srtp_profile: Option<String>,
    /// Every subscriber transport's downlink, by transport key.
    pub downlinks: Vec<DownlinkSnapshot>,
}

/// One subscriber transport's downlink at a snapshot.
#[derive(Clone, Debug)]
pub struct DownlinkSnapshot {
    pub key: usize,
    pub counters: DownlinkCounters,
    /// Its simulated bottleneck's rate and counters, if it has one.
    pub link: Option<(u64, LinkCounters)>,
}
