//! The frame codec: a u32 big-endian length, one kind byte, then a bincode body.
//!
//! The kind byte tells the two directions apart: bincode is not self-describing, so a controller
//! frame fed to the controller's own decoder could otherwise decode "successfully" into nonsense.
//! Every failure is an [`FrameError`] value; no input can make this module panic or allocate more
//! than [`MAX_FRAME_LEN`] for one frame.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::messages::{ControllerMessage, WorkerMessage};

/// The largest frame (kind byte + body) either side accepts.
pub const MAX_FRAME_LEN: usize = 4 * 1024 * 1024;

const LEN_PREFIX: usize = 4;

/// A message type that travels in frames of its own kind.
pub trait FrameKind: Serialize + DeserializeOwned {
    const KIND: u8;
    const NAME: &'static str;
}

impl FrameKind for ControllerMessage {
    const KIND: u8 = 0xC7;
    const NAME: &'static str = "controller message";
}

impl FrameKind for WorkerMessage {
    const KIND: u8 = 0x3E;
    const NAME: &'static str = "worker message";
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    Oversized { len: usize, max: usize },
    #[error("frame of length zero")]
    Empty,
    #[error("frame kind {found:#04x} is not a {expected}")]
    WrongKind { expected: &'static str, found: u8 },
    #[error("undecodable frame body: {0}")]
    Decode(String),
    #[error("frame body has {0} trailing bytes")]
    TrailingBytes(usize),
    #[error("stream ended inside a frame ({0} bytes buffered)")]
    Truncated(usize),
    #[error("message could not be encoded: {0}")]
    Encode(String),
}

fn config() -> impl bincode::config::Config {
    // The limit stops a garbage length inside the body (a Vec or String header) from asking for
    // gigabytes before the decoder notices the input is short.
    bincode::config::standard().with_limit::<MAX_FRAME_LEN>()
}

/// Appends one frame holding `msg` to `out`. On error `out` is left as it was.
pub fn encode_frame<M: FrameKind>(msg: &M, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; LEN_PREFIX]);
    out.push(M::KIND);
    if let Err(e) = bincode::serde::encode_into_std_write(msg, out, config()) {
        out.truncate(start);
        return Err(FrameError::Encode(e.to_string()));
    }
    let len = out.len() - start - LEN_PREFIX;
    if len > MAX_FRAME_LEN {
        out.truncate(start);
        return Err(FrameError::Oversized { len, max: MAX_FRAME_LEN });
    }
    out[start..start + LEN_PREFIX].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Decodes the frame at the start of `buf`. `Ok(None)` means more bytes are needed; on success
/// the message comes with the number of bytes the frame took.
pub fn decode_frame<M: FrameKind>(buf: &[u8]) -> Result<Option<(M, usize)>, FrameError> {
    let Some(prefix) = buf.first_chunk::<LEN_PREFIX>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*prefix) as usize;
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > MAX_FRAME_LEN {
        return Err(FrameError::Oversized { len, max: MAX_FRAME_LEN });
    }
    let Some(frame) = buf.get(LEN_PREFIX..LEN_PREFIX + len) else {
        return Ok(None);
    };
    let (&kind, body) = frame.split_first().ok_or(FrameError::Empty)?;
    if kind != M::KIND {
        return Err(FrameError::WrongKind { expected: M::NAME, found: kind });
    }
    let (msg, used) =
        bincode::serde::decode_from_slice::<M, _>(body, config()).map_err(|e| FrameError::Decode(e.to_string()))?;
    if used != body.len() {
        return Err(FrameError::TrailingBytes(body.len() - used));
    }
    Ok(Some((msg, LEN_PREFIX + len)))
}

/// Reassembles frames from a byte stream that arrives in arbitrary pieces.
///
/// After an error the stream is out of step and cannot be trusted again: the caller closes it.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, if one is buffered.
    pub fn next_message<M: FrameKind>(&mut self) -> Result<Option<M>, FrameError> {
        match decode_frame::<M>(&self.buf[self.start..])? {
            Some((msg, used)) => {
                self.start += used;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                Ok(Some(msg))
            }
            None => Ok(None),
        }
    }

    /// Bytes received but not yet part of a complete frame.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Call at end of stream: an incomplete frame left over is an error.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.buffered() {
            0 => Ok(()),
            n => Err(FrameError::Truncated(n)),
        }
    }
}
