//! The mio loop: one thread, one `Poll`, the controller channel on its own token.

use std::io;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::Instant;

use mio::{Events, Interest, Poll, Token};
use octo_ipc::FrameError;
use tracing::{debug, info};

use super::channel::{ControllerChannel, ReadOutcome};
use crate::core::{Input, Output, Worker};

const CHANNEL: Token = Token(0);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("controller channel i/o: {0}")]
    Io(#[from] io::Error),
    #[error("bad frame from the controller: {0}")]
    Frame(#[from] FrameError),
}

/// Runs the worker until the controller closes the channel or sends `Close`.
pub fn run(stream: StdUnixStream) -> Result<(), RunError> {
    stream.set_nonblocking(true)?;
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(256);
    let mut channel = ControllerChannel::new(mio::net::UnixStream::from_std(stream));
    let mut interest = Interest::READABLE;
    poll.registry().register(channel.source(), CHANNEL, interest)?;

    let mut worker = Worker::new(std::process::id());
    info!("worker running");
    loop {
        while let Some(output) = worker.poll_output() {
            match output {
                Output::Controller(msg) => channel.queue(&msg)?,
            }
        }
        let flushed = channel.flush()?;
        if worker.is_closed() && flushed {
            info!("closed by the controller");
            return Ok(());
        }
        let wanted = if flushed { Interest::READABLE } else { Interest::READABLE | Interest::WRITABLE };
        if wanted != interest {
            poll.registry().reregister(channel.source(), CHANNEL, wanted)?;
            interest = wanted;
        }

        let timeout = worker.poll_timeout().map(|at| at.saturating_duration_since(Instant::now()));
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        let now = Instant::now();
        for event in events.iter() {
            if event.token() != CHANNEL || !(event.is_readable() || event.is_read_closed()) {
                continue;
            }
            let outcome = channel.read_ready()?;
            while let Some(msg) = channel.next_message()? {
                debug!(?msg, "request");
                worker.handle_input(now, Input::Controller(msg));
            }
            if outcome == ReadOutcome::Closed {
                channel.finish()?;
                info!("controller closed the channel");
                return Ok(());
            }
        }
    }
}
