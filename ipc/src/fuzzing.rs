//! The bodies of the ipc fuzz targets (`fuzz/`), here so `cargo test` can replay their corpora
//! through the same code: a byte stream as either side's reader sees it.

use crate::frame::{FrameDecoder, FrameKind, decode_frame, encode_frame};
use crate::messages::{ControllerMessage, WorkerMessage};

/// The stream a worker reads from the controller.
pub fn controller_frames(data: &[u8]) -> bool {
    frames::<ControllerMessage>(data)
}

/// The stream the controller reads from a worker.
pub fn worker_frames(data: &[u8]) -> bool {
    frames::<WorkerMessage>(data)
}

/// Decodes `data` as back-to-back frames, and again through a [`FrameDecoder`] fed in pieces (the
/// first byte sets their size): both readers must agree on how many messages there are and where
/// the stream goes bad. Every decoded message must encode and decode again. Returns whether at
/// least one message decoded.
fn frames<M: FrameKind>(data: &[u8]) -> bool {
    let mut whole = 0usize;
    let mut rest = data;
    let whole_end = loop {
        match decode_frame::<M>(rest) {
            Ok(Some((msg, used))) => {
                whole += 1;
                rest = &rest[used..];
                let mut again = Vec::new();
                if encode_frame(&msg, &mut again).is_ok() {
                    assert!(
                        matches!(decode_frame::<M>(&again), Ok(Some((_, n))) if n == again.len()),
                        "a re-encoded {} does not decode",
                        M::NAME
                    );
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };

    let piece = usize::from(data.first().copied().unwrap_or(0) % 64) + 1;
    let mut decoder = FrameDecoder::new();
    let mut pieces = 0usize;
    let mut pieces_end = Ok(());
    'feed: for chunk in data.chunks(piece) {
        decoder.push(chunk);
        loop {
            match decoder.next_message::<M>() {
                Ok(Some(_)) => pieces += 1,
                Ok(None) => break,
                Err(e) => {
                    pieces_end = Err(e);
                    break 'feed;
                }
            }
        }
    }
    assert_eq!(pieces, whole, "the stream decoder and the frame decoder count different messages");
    assert_eq!(pieces_end, whole_end, "the stream decoder and the frame decoder fail differently");
    whole > 0
}
