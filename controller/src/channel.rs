//! One worker's ipc channel: requests matched to responses by id, notifications handed on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use octo_ipc::{
    ControllerMessage, FrameDecoder, FrameError, Notification, Request, RequestError, Response, WorkerMessage,
    encode_frame,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

type Pending = Arc<Mutex<HashMap<u32, oneshot::Sender<Result<Response, RequestError>>>>>;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("worker did not answer within {0:?}")]
    Timeout(Duration),
    #[error("worker channel closed")]
    Closed,
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("request could not be encoded: {0}")]
    Encode(FrameError),
}

/// How the reading side of a channel ended.
#[derive(Debug)]
pub enum ChannelEnd {
    /// The worker closed its end cleanly.
    Eof,
    /// The worker wrote something that is not a valid frame: it cannot be trusted any more.
    Garbage(FrameError),
    Io(std::io::Error),
}

/// The sending side, shared by everyone who talks to this worker.
pub struct Channel {
    writer: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    next_id: AtomicU32,
    timeout: Duration,
}

impl Channel {
    /// Starts the reader and writer tasks on `stream`. Notifications go to `on_notification`; the
    /// returned receiver says how the reader ended.
    pub fn start(
        stream: UnixStream,
        timeout: Duration,
        on_notification: impl Fn(Notification) + Send + 'static,
    ) -> (Channel, oneshot::Receiver<ChannelEnd>) {
        let (read, write) = stream.into_split();
        let (writer, frames) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let (end_tx, end_rx) = oneshot::channel();
        tokio::spawn(write_frames(write, frames));
        let reader_pending = pending.clone();
        tokio::spawn(async move {
            let end = read_frames(read, &reader_pending, on_notification).await;
            // Dropping the senders makes every waiting request fail with `Closed` at once.
            reader_pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
            let _ = end_tx.send(end);
        });
        (Channel { writer, pending, next_id: AtomicU32::new(1), timeout }, end_rx)
    }

    /// Sends `request` and waits for its response, up to the channel's timeout.
    pub async fn request(&self, request: Request) -> Result<Response, ChannelError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut frame = Vec::new();
        encode_frame(&ControllerMessage::Request { id, request }, &mut frame).map_err(ChannelError::Encode)?;
        let (tx, rx) = oneshot::channel();
        self.lock_pending().insert(id, tx);
        if self.writer.send(frame).is_err() {
            self.lock_pending().remove(&id);
            return Err(ChannelError::Closed);
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(result)) => result.map_err(ChannelError::from),
            Ok(Err(_)) => Err(ChannelError::Closed),
            Err(_) => {
                self.lock_pending().remove(&id);
                Err(ChannelError::Timeout(self.timeout))
            }
        }
    }

    /// Fails every request still waiting (the worker is gone).
    pub fn fail_pending(&self) {
        self.lock_pending().clear();
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<u32, oneshot::Sender<Result<Response, RequestError>>>> {
        // A panic elsewhere while holding the lock leaves the map itself consistent.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn write_frames(mut write: OwnedWriteHalf, mut frames: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(frame) = frames.recv().await {
        if let Err(e) = write.write_all(&frame).await {
            warn!("writing to worker failed: {e}");
            return;
        }
    }
}

async fn read_frames(mut read: OwnedReadHalf, pending: &Pending, on_notification: impl Fn(Notification)) -> ChannelEnd {
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match read.read(&mut buf).await {
            Ok(0) => {
                return match decoder.finish() {
                    Ok(()) => ChannelEnd::Eof,
                    Err(e) => ChannelEnd::Garbage(e),
                };
            }
            Ok(n) => n,
            Err(e) => return ChannelEnd::Io(e),
        };
        decoder.push(&buf[..n]);
        loop {
            match decoder.next_message::<WorkerMessage>() {
                Ok(None) => break,
                Ok(Some(WorkerMessage::Response { id, result })) => {
                    let waiter = pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    match waiter {
                        Some(tx) => {
                            let _ = tx.send(result);
                        }
                        // Late answer to a request that timed out: nothing waits for it.
                        None => warn!(id, "response to an unknown or expired request"),
                    }
                }
                Ok(Some(WorkerMessage::Notification(n))) => on_notification(n),
                Err(e) => return ChannelEnd::Garbage(e),
            }
        }
    }
}
