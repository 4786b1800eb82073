//! The client end of an ICE-TCP connection (RFC 6544) to a worker's passive TCP candidate: a
//! non-blocking mio `TcpStream`, RFC 4571 frames both ways, a bounded write buffer, and whether the
//! connection is still up. What the packets mean is the transport's, exactly as over UDP.

use std::io::{self, Read};
use std::net::SocketAddr;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::counters::Counters;
use super::tcp_framing::{FrameDecoder, FrameEncoder, Frames, FramingError};

/// Room for what the worker has not taken yet: a subscriber sends only RTCP and consent checks,
/// so this fills only if the worker stops reading.
const WRITE_BUFFER: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The non-blocking connect is under way: packets wait in the write buffer.
    Connecting,
    Open,
    Closed(CloseReason),
}

/// Why a connection ended: every one is a failed transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Connect(io::ErrorKind),
    /// The worker closed it (it does so on a first frame that is not a STUN binding request, or
    /// a frame over 1500 bytes).
    ByPeer,
    Io(io::ErrorKind),
    Framing(FramingError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TcpSendError {
    #[error("the connection is closed")]
    Closed,
    #[error(transparent)]
    Framing(#[from] FramingError),
}

pub struct TcpConnection {
    /// `None` once closed (dropping it closes the socket and takes it out of the poll).
    stream: Option<TcpStream>,
    peer: SocketAddr,
    state: State,
    decoder: FrameDecoder,
    outbox: FrameEncoder,
}

impl TcpConnection {
    /// `stream`: connecting (or connected) to the worker's TCP candidate `peer`.
    pub fn new(stream: TcpStream, peer: SocketAddr) -> Self {
        // Each packet is one whole frame written at once: Nagle would hold back a small one
        // (an RTCP report) behind an unacknowledged one, as a datagram never waits.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
        Self {
            stream: Some(stream),
            peer,
            state: State::Connecting,
            decoder: FrameDecoder::new(),
            outbox: FrameEncoder::with_capacity(WRITE_BUFFER),
        }
    }

    /// Readable for the worker's packets; writable for the connect's completion and a write
    /// buffer the socket did not take at once.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        match self.stream.as_mut() {
            Some(stream) => registry.register(stream, token, Interest::READABLE | Interest::WRITABLE),
            None => Ok(()),
        }
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        match self.state {
            State::Closed(reason) => Some(reason),
            _ => None,
        }
    }

    /// Frames `packet` into the write buffer and writes what the socket takes. A full buffer
    /// drops the packet, as a full socket buffer drops a datagram.
    pub fn send(&mut self, packet: &[u8], c: &mut Counters) -> Result<(), TcpSendError> {
        if let State::Closed(_) = self.state {
            return Err(TcpSendError::Closed);
        }
        if let Err(e) = self.outbox.push(packet) {
            if e == FramingError::Full {
                c.tcp_write_drops += 1;
            }
            return Err(e.into());
        }
        if self.state == State::Open {
            self.flush(c);
        }
        Ok(())
    }

    /// On any readiness event: finishes the connect, then writes what waits.
    pub fn on_ready(&mut self, c: &mut Counters) {
        if self.state == State::Connecting {
            let Some(stream) = self.stream.as_ref() else { return };
            // mio's recipe for a non-blocking connect: an error is a refusal; no peer yet is a
            // wakeup before the handshake finished.
            let connected = match stream.take_error() {
                Ok(None) => stream.peer_addr().map(|_| ()),
                Ok(Some(e)) | Err(e) => Err(e),
            };
            match connected {
                Ok(()) => self.state = State::Open,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => {
                    self.close(CloseReason::Connect(e.kind()), c);
                    return;
                }
            }
        }
        if self.state == State::Open && !self.outbox.is_empty() {
            self.flush(c);
        }
    }

    fn flush(&mut self, c: &mut Counters) {
        let Some(stream) = self.stream.as_mut() else { return };
        if let Err(e) = self.outbox.write_to(stream) {
            self.close(CloseReason::Io(e.kind()), c);
        }
    }

    /// One read after the bytes kept from the last: `Some(n)` when `buf[..n]` holds new frames
    /// (whole or not, for [`Frames`]); `None` when nothing more has arrived or the connection is
    /// closed. `buf` must be longer than a frame.
    pub fn read(&mut self, buf: &mut [u8], c: &mut Counters) -> Option<usize> {
        if self.state != State::Open {
            return None;
        }
        let kept = self.decoder.resume(buf);
        let stream = self.stream.as_mut()?;
        let result = loop {
            match stream.read(&mut buf[kept..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        match result {
            Ok(0) => self.close(CloseReason::ByPeer, c),
            Ok(n) => return Some(kept + n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => self.close(CloseReason::Io(e.kind()), c),
        }
        None
    }

    /// After the frames of a read were handed out: keeps the incomplete one it ended with.
    pub fn keep_rest(&mut self, frames: Frames<'_>) {
        frames.keep_rest(&mut self.decoder);
    }

    /// Ends the connection for good (its transport has failed); counted once.
    pub fn close(&mut self, reason: CloseReason, c: &mut Counters) {
        if let State::Closed(_) = self.state {
            return;
        }
        tracing::debug!(peer = %self.peer, ?reason, "ICE-TCP connection closed");
        c.tcp_closed += 1;
        self.state = State::Closed(reason);
        self.stream = None;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::{Duration, Instant};

    use mio::{Events, Poll};

    use super::*;

    /// Polls until `done` or a second has passed.
    fn drive(poll: &mut Poll, mut step: impl FnMut() -> bool) -> bool {
        let mut events = Events::with_capacity(8);
        let end = Instant::now() + Duration::from_secs(1);
        while Instant::now() < end {
            if step() {
                return true;
            }
            poll.poll(&mut events, Some(Duration::from_millis(10))).unwrap();
        }
        step()
    }

    /// The loopback round trip against a plain listener: frames queued while connecting go out
    /// once connected; the listener's frames come back as packets; its close is a failure.
    #[test]
    fn connects_sends_frames_reads_them_and_counts_the_close() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut poll = Poll::new().unwrap();
        let mut c = Counters::default();
        let mut conn = TcpConnection::new(TcpStream::connect(addr).unwrap(), addr);
        conn.register(poll.registry(), Token(0)).unwrap();
        conn.send(&[0, 1, 0, 0], &mut c).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        assert!(drive(&mut poll, || {
            conn.on_ready(&mut c);
            conn.outbox.is_empty()
        }));
        conn.send(b"\x80\x60rtp", &mut c).unwrap();
        let mut got = [0u8; 13];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"\x00\x04\x00\x01\x00\x00\x00\x05\x80\x60rtp");

        server.write_all(b"\x00\x03abc\x00\x02d").unwrap();
        server.write_all(b"e").unwrap();
        let mut buf = vec![0u8; 8192];
        let mut packets = Vec::new();
        assert!(drive(&mut poll, || {
            while let Some(n) = conn.read(&mut buf, &mut c) {
                let mut frames = Frames::new(&mut buf[..n]);
                packets.extend(frames.by_ref().map(|p| p.unwrap().to_vec()));
                conn.keep_rest(frames);
            }
            packets.len() == 2
        }));
        assert_eq!(packets, vec![b"abc".to_vec(), b"de".to_vec()]);

        drop(server);
        assert!(drive(&mut poll, || {
            while conn.read(&mut buf, &mut c).is_some() {}
            conn.close_reason().is_some()
        }));
        assert_eq!(conn.close_reason(), Some(CloseReason::ByPeer));
        assert_eq!(conn.send(b"x", &mut c), Err(TcpSendError::Closed));
        assert_eq!(c.tcp_closed, 1);
    }

    #[test]
    fn a_refused_connect_is_a_failure() {
        // A port nobody listens on: bound, then closed.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut poll = Poll::new().unwrap();
        let mut c = Counters::default();
        let mut conn = TcpConnection::new(TcpStream::connect(addr).unwrap(), addr);
        conn.register(poll.registry(), Token(0)).unwrap();
        assert!(drive(&mut poll, || {
            conn.on_ready(&mut c);
            conn.close_reason().is_some()
        }));
        assert_eq!(conn.close_reason(), Some(CloseReason::Connect(io::ErrorKind::ConnectionRefused)));
        assert_eq!(c.tcp_closed, 1);
    }
}
