//! The mio loop: one thread, one `Poll`; the controller channel on token 0, UDP sockets after it,
//! then the ICE-TCP listeners and their connections.

use std::io;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::time::Instant;

use mio::{Events, Interest, Poll, Token};
use octo_ipc::{
    ControllerMessage, ErrorCode, FrameError, Request, RequestError, Response, WorkerMessage, WorkerRequest,
};
use tracing::{debug, info};

use super::channel::{ControllerChannel, ReadOutcome};
use super::tcp::TcpMedia;
use super::udp::UdpSockets;
use crate::core::rng::Rng;
use crate::core::{Input, ListenSocket, Output, SocketId, Worker, WorkerConfig};

const CHANNEL: Token = Token(0);
const FIRST_UDP: usize = 1;
const FIRST_TCP_LISTENER: usize = 1 << 16;
const FIRST_TCP_CONNECTION: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("controller channel i/o: {0}")]
    Io(#[from] io::Error),
    #[error("bad frame from the controller: {0}")]
    Frame(#[from] FrameError),
    #[error("cannot start the worker core: {0}")]
    Core(#[from] crate::core::dtls::DtlsError),
}

/// Where the worker's WebRTC traffic is received.
#[derive(Debug, Clone, Default)]
pub struct MediaConfig {
    pub listen: Vec<SocketAddr>,
    /// Announced in ICE candidates instead of the bound address (NAT, 0.0.0.0).
    pub announced_address: Option<String>,
    /// ICE-TCP: a TCP listener beside each UDP socket, on the same port when it is free.
    pub tcp: bool,
    /// Video to a subscriber with a downlink estimate paced at 2.5× it (`core/pacer.rs`).
    pub pace_video: bool,
    /// How long the fan-out may wait for the rest of a video frame (`Worker::holds_fan_out`);
    /// zero: never.
    pub gather_frames: std::time::Duration,
}

/// Runs the worker until the controller closes the channel or sends `Close`. `set_log_filter`
/// answers `SetLogFilter` requests: logging belongs to the process, not to the sans-IO core.
pub fn run(
    stream: StdUnixStream,
    media: &MediaConfig,
    set_log_filter: &dyn Fn(&str) -> Result<(), String>,
) -> Result<(), RunError> {
    stream.set_nonblocking(true)?;
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(256);
    let mut channel = ControllerChannel::new(mio::net::UnixStream::from_std(stream));
    let mut interest = Interest::READABLE;
    poll.registry().register(channel.source(), CHANNEL, interest)?;

    let mut udp = UdpSockets::bind(&media.listen)?;
    if udp.is_empty() {
        tracing::warn!("no UDP socket to listen on: transports cannot be created");
    }
    let mut sockets = Vec::with_capacity(udp.len());
    for i in 0..udp.len() {
        poll.registry().register(udp.socket_mut(i), Token(FIRST_UDP + i), Interest::READABLE)?;
        sockets.push(ListenSocket::udp(SocketId(i as u8), udp.local_addr(i)?, media.announced_address.clone()));
    }
    let mut tcp = TcpMedia::new(FIRST_TCP_LISTENER, FIRST_TCP_CONNECTION);
    if media.tcp {
        for i in 0..udp.len() {
            // Ids after the UDP sockets': the send path tells the two apart by id.
            let id = SocketId((udp.len() + i) as u8);
            let local = tcp.listen(poll.registry(), id, udp.local_addr(i)?)?;
            sockets.push(ListenSocket::tcp(id, local, media.announced_address.clone()));
        }
    }
    info!(sockets = ?sockets.iter().map(|s| format!("{:?} {}", s.protocol, s.local)).collect::<Vec<_>>(), "worker running");
    let epoch_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut worker = Worker::new(WorkerConfig {
        pid: std::process::id(),
        rng: Rng::from_os(),
        sockets,
        epoch: Instant::now(),
        epoch_unix,
        pace_video: media.pace_video,
    })?;
    worker.set_frame_gathering(Some(media.gather_frames));

    loop {
        // While a video frame is incomplete (and not for longer than the hold) its packets wait,
        // with whatever else this turn queued, and go out with the frame's last one.
        if !worker.holds_fan_out(Instant::now()) {
            udp.flush(&mut worker, &mut tcp);
        }
        tcp.write_pending(poll.registry());
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

        // Datagrams left unread last turn: look for new events without waiting, then read them.
        let timeout = if udp.has_unread() || tcp.has_unread() {
            Some(std::time::Duration::ZERO)
        } else {
            let at = [worker.poll_timeout(), tcp.poll_timeout(), worker.gather_deadline()].into_iter().flatten().min();
            at.map(|at| at.saturating_duration_since(Instant::now()))
        };
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        let now = Instant::now();
        udp.drain_unread(&mut worker, now)?;
        tcp.drain_unread(poll.registry(), &mut worker, now);
        for event in events.iter() {
            match event.token() {
                CHANNEL => {
                    if !(event.is_readable() || event.is_read_closed()) {
                        continue;
                    }
                    let outcome = channel.read_ready()?;
                    while let Some(msg) = channel.next_message()? {
                        debug!(?msg, "request");
                        match msg {
                            ControllerMessage::Request {
                                id,
                                request: Request::Worker(WorkerRequest::SetLogFilter { filter }),
                            } => {
                                let result = set_log_filter(&filter)
                                    .map(|()| Response::Ok)
                                    .map_err(|e| RequestError::new(ErrorCode::InvalidRequest, e));
                                channel.queue(&WorkerMessage::Response { id, result })?;
                            }
                            // Answered here: the core's figures and the shell's ICE-TCP
                            // connections, which the core never sees.
                            ControllerMessage::Request { id, request: Request::Worker(WorkerRequest::GetMetrics) } => {
                                let mut metrics = worker.metrics();
                                metrics.ice_tcp = tcp.metrics();
                                let result = Ok(Response::WorkerMetrics(metrics));
                                channel.queue(&WorkerMessage::Response { id, result })?;
                            }
                            msg => worker.handle_input(now, Input::Controller(msg)),
                        }
                    }
                    if outcome == ReadOutcome::Closed {
                        channel.finish()?;
                        info!("controller closed the channel");
                        return Ok(());
                    }
                }
                Token(t) if t >= FIRST_UDP && t - FIRST_UDP < udp.len() => {
                    udp.drain(t - FIRST_UDP, &mut worker, now)?;
                }
                token => {
                    tcp.handle_event(
                        poll.registry(),
                        token,
                        event.is_readable() || event.is_read_closed(),
                        event.is_writable(),
                        &mut worker,
                        now,
                    );
                }
            }
        }
        tcp.sweep(poll.registry(), now);
        if worker.poll_timeout().is_some_and(|t| t <= now) {
            worker.handle_timeout(now);
        }
    }
}
