//! The worker's end of the controller socket: non-blocking reads into a frame decoder, and an
//! output buffer flushed as far as the socket accepts.

use std::io::{self, Read, Write};

use mio::net::UnixStream;
use octo_ipc::{ControllerMessage, FrameDecoder, FrameError, WorkerMessage, encode_frame};

pub struct ControllerChannel {
    stream: UnixStream,
    decoder: FrameDecoder,
    out: Vec<u8>,
    written: usize,
}

/// What a readable event brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    Open,
    /// The controller closed its end.
    Closed,
}

impl ControllerChannel {
    pub fn new(stream: UnixStream) -> Self {
        Self { stream, decoder: FrameDecoder::new(), out: Vec::new(), written: 0 }
    }

    pub fn source(&mut self) -> &mut UnixStream {
        &mut self.stream
    }

    /// Reads everything the socket holds (edge-triggered readiness needs it drained).
    pub fn read_ready(&mut self) -> io::Result<ReadOutcome> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(ReadOutcome::Closed),
                Ok(n) => self.decoder.push(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadOutcome::Open),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn next_message(&mut self) -> Result<Option<ControllerMessage>, FrameError> {
        self.decoder.next_message()
    }

    /// At end of stream: an unfinished frame means the controller died mid-write.
    pub fn finish(&self) -> Result<(), FrameError> {
        self.decoder.finish()
    }

    pub fn queue(&mut self, msg: &WorkerMessage) -> Result<(), FrameError> {
        encode_frame(msg, &mut self.out)
    }

    /// Writes queued bytes until done or the socket is full. Returns true when nothing is left.
    pub fn flush(&mut self) -> io::Result<bool> {
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.written = 0;
        Ok(true)
    }
}
