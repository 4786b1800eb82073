//! The whole worker core: datagrams from a connected publisher's address (and from strangers)
//! through the RFC 7983 demux into STUN, DTLS, SRTP, RTCP and the forwarding path to a consumer.

use std::net::SocketAddr;
use std::time::Duration;

use octo_ipc::{ConsumerRequest, MediaKind, Request, Response};

use super::input::records;
use crate::core::SocketId;
use crate::core::is_rtcp;
use crate::core::testing::{Harness, Peer};
use crate::core::transmit::BUFFER_SIZE;

/// A worker with a VP8 publisher and a resumed consumer on another transport, both through ICE and
/// DTLS. Building one costs two certificates and a handshake, so a fuzzer keeps one and feeds it
/// input after input ([`Self::feed`]), starting afresh every [`Self::FRESH_EVERY`] inputs so
/// state a run piles up cannot hide the paths a new call takes.
pub struct WorkerFuzzer {
    harness: Harness,
    publisher: Peer,
    inputs: u32,
}

impl Default for WorkerFuzzer {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerFuzzer {
    pub const FRESH_EVERY: u32 = 5000;

    pub fn new() -> Self {
        let mut harness = Harness::new();
        let (publisher, subscriber) = harness.publisher_and_subscriber();
        let producer = harness.produce(&publisher, 100, MediaKind::Video);
        let consumer = harness.consume(&subscriber, 200, producer);
        let resumed = harness.request(Request::Consumer(consumer.id, ConsumerRequest::Resume));
        assert_eq!(resumed, Ok(Response::Ok), "the fuzzing worker's consumer did not resume");
        Self { harness, publisher, inputs: 0 }
    }

    /// One input: records (see [`records`]), each a mode byte and a datagram. Mode 0 sends the
    /// datagram as is from the publisher's address, 1 from an address the worker never saw, 2
    /// protects it first with the publisher's SRTP/SRTCP keys (so plaintext RTP and RTCP reach
    /// the parsers behind the decryption), and 3 lets 0–2.5 s of virtual time pass (the datagram's
    /// first byte, in 10 ms) with the worker's timers. Returns whether any datagram was sent
    /// protected, i.e. got as far as the media path.
    pub fn feed(&mut self, data: &[u8]) -> bool {
        self.inputs += 1;
        if self.inputs.is_multiple_of(Self::FRESH_EVERY) {
            *self = Self::new();
        }
        let stranger = SocketAddr::from(([127, 0, 0, 1], 60000));
        let mut protected = false;
        for record in records(data) {
            let Some((&mode, datagram)) = record.split_first() else { continue };
            match mode % 4 {
                0 => self.harness.datagram(self.publisher.addr, datagram),
                1 => self.harness.datagram(stranger, datagram),
                2 => protected |= self.protect_and_send(datagram),
                _ => self.advance(Duration::from_millis(10 * u64::from(datagram.first().copied().unwrap_or(2)))),
            }
            self.drain();
        }
        protected
    }

    /// The publisher's view of the worker's ICE credentials (ufrag, password), for seeds that
    /// answer ICE.
    pub fn ice_credentials(&self) -> (&str, &str) {
        (&self.publisher.remote_ufrag, &self.publisher.remote_password)
    }

    fn protect_and_send(&mut self, plain: &[u8]) -> bool {
        let Some(srtp) = self.publisher.srtp_send.as_mut() else { return false };
        let mut buf = vec![0u8; BUFFER_SIZE];
        let len = plain.len().min(BUFFER_SIZE);
        buf[..len].copy_from_slice(&plain[..len]);
        let protected = if is_rtcp(plain) { srtp.encrypt_rtcp(&mut buf, len) } else { srtp.encrypt_rtp(&mut buf, len) };
        let Ok(n) = protected else { return false };
        let from = self.publisher.addr;
        self.harness.worker.handle_datagram(self.harness.now, SocketId(0), from, &mut buf, n);
        true
    }

    fn advance(&mut self, by: Duration) {
        let end = self.harness.now + by;
        while self.harness.now < end {
            self.harness.now += Duration::from_millis(20).min(end - self.harness.now);
            let now = self.harness.now;
            if self.harness.worker.poll_timeout().is_some_and(|t| t <= now) {
                self.harness.worker.handle_timeout(now);
            }
            self.drain();
        }
    }

    /// Drops what the worker sends and says: the peers are not driven, as a fuzzed peer would not be.
    fn drain(&mut self) {
        while let Some(t) = self.harness.worker.poll_transmit() {
            self.harness.worker.recycle(t.buf);
        }
        while self.harness.worker.poll_output().is_some() {}
        self.harness.notifications.clear();
    }
}

/// One input to a fresh [`WorkerFuzzer`] (the corpus replay; libFuzzer keeps one across inputs).
pub fn worker_datagrams(data: &[u8]) -> bool {
    WorkerFuzzer::new().feed(data)
}
