//! A real `octo-worker` process and its ipc channel, spoken synchronously.
//!
//! The worker is started by the controller's own `worker_process::spawn` (socketpair on fd 3, no
//! `--rtc-listen`, so it binds 127.0.0.1 on an ephemeral UDP port). A reader thread decodes frames
//! into a channel; requests wait for their response by id (bounded in time) and keep every
//! notification that arrives meanwhile, so a test can drive UDP peers and the ipc from one thread.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use octo_controller::worker_process;
use octo_ipc::{
    ConsumerData, ConsumerId, ConsumerRequest, ControllerMessage, DtlsParameters, DtlsRole, FrameDecoder, MediaKind,
    Notification, ProducerId, Request, RequestError, Response, RouterId, RouterRequest, RtpCapabilities,
    RtpCodecCapability, RtpParameters, RtpType, TransportId, TransportNotification, TransportRequest, TransportStats,
    WebRtcTransportData, WebRtcTransportOptions, WorkerMessage, WorkerNotification, WorkerRequest, encode_frame,
};

/// How long a request may wait for its response (the controller's own timeout).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the reader thread hands over: a decoded message, or why the channel ended.
type Inbound = Result<WorkerMessage, String>;

pub struct WorkerUnderTest {
    // Declared before `runtime`: the child is killed and reaped before the runtime goes.
    child: Option<tokio::process::Child>,
    runtime: tokio::runtime::Runtime,
    writer: UnixStream,
    inbox: Receiver<Inbound>,
    next_request_id: u32,
    notifications: Vec<(Instant, Notification)>,
    /// Set once the reader thread reported the end of the channel.
    channel_end: Option<String>,
    pub pid: u32,
}

impl WorkerUnderTest {
    /// Starts `octo-worker` (from the target dir the tests were built into) and waits for `Running`.
    pub fn spawn() -> anyhow::Result<Self> {
        let bin = crate::bin("octo-worker");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        // tokio's process and net types register with the runtime they are created in.
        let (child, stream) = {
            let _guard = runtime.enter();
            let (child, stream) = worker_process::spawn(&bin, 0, None, &[]).context("spawning octo-worker")?;
            (child, stream.into_std().context("ipc stream into std")?)
        };
        stream.set_nonblocking(false)?;
        let mut reader = stream.try_clone()?;
        let (tx, inbox) = mpsc::channel();
        std::thread::Builder::new().name("octo-worker-ipc".into()).spawn(move || {
            let mut decoder = FrameDecoder::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                loop {
                    match decoder.next_message::<WorkerMessage>() {
                        Ok(Some(m)) => {
                            if tx.send(Ok(m)).is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            let _ = tx.send(Err(format!("bad frame from the worker: {e}")));
                            return;
                        }
                    }
                }
                match reader.read(&mut buf) {
                    Ok(0) => {
                        let _ = tx.send(Err("the worker closed its channel".into()));
                        return;
                    }
                    Ok(n) => decoder.push(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(format!("reading the channel: {e}")));
                        return;
                    }
                }
            }
        })?;
        let pid = child.id().context("worker has no pid")?;
        let mut worker = WorkerUnderTest {
            child: Some(child),
            runtime,
            writer: stream,
            inbox,
            next_request_id: 1,
            notifications: Vec::new(),
            channel_end: None,
            pid,
        };
        let running = Notification::Worker(WorkerNotification::Running { pid });
        if !worker.wait_notification(REQUEST_TIMEOUT, |n| *n == running) {
            bail!("octo-worker did not report Running within {REQUEST_TIMEOUT:?}: {:?}", worker.channel_end);
        }
        Ok(worker)
    }

    /// Sends `request` and waits for its answer. The outer error is the channel failing (a harness or
    /// worker-process problem); the inner one is the worker refusing the request.
    pub fn request(&mut self, request: Request) -> anyhow::Result<Result<Response, RequestError>> {
        let id = self.next_request_id;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        let mut frame = Vec::new();
        let what = format!("{request:?}");
        encode_frame(&ControllerMessage::Request { id, request }, &mut frame)?;
        self.writer.write_all(&frame).with_context(|| format!("writing {what}"))?;
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left) {
                Some(WorkerMessage::Response { id: got, result }) if got == id => return Ok(result),
                Some(WorkerMessage::Response { id: got, .. }) => {
                    bail!("response to unknown request {got} while waiting for {id}")
                }
                Some(WorkerMessage::Notification(n)) => self.notifications.push((Instant::now(), n)),
                None => bail!("no response to {what} within {REQUEST_TIMEOUT:?} ({:?})", self.channel_end),
            }
        }
    }

    /// [`Self::request`] for requests that must succeed.
    pub fn ok(&mut self, request: Request) -> anyhow::Result<Response> {
        let what = format!("{request:?}");
        self.request(request)?.map_err(|e| anyhow::anyhow!("worker refused {what}: {e}"))
    }

    fn recv(&mut self, timeout: Duration) -> Option<WorkerMessage> {
        if self.channel_end.is_some() {
            return None;
        }
        match self.inbox.recv_timeout(timeout) {
            Ok(Ok(m)) => Some(m),
            Ok(Err(end)) => {
                self.channel_end = Some(end);
                None
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.channel_end.get_or_insert_with(|| "reader thread ended".into());
                None
            }
        }
    }

    /// Moves every message already received into the notification list, without waiting.
    pub fn pump(&mut self) -> anyhow::Result<()> {
        while let Some(m) = self.recv(Duration::ZERO) {
            match m {
                WorkerMessage::Notification(n) => self.notifications.push((Instant::now(), n)),
                WorkerMessage::Response { id, .. } => bail!("unsolicited response {id}"),
            }
        }
        match &self.channel_end {
            Some(end) => bail!("worker channel ended: {end}"),
            None => Ok(()),
        }
    }

    /// Waits until a notification matching `pred` has arrived (or had arrived before).
    pub fn wait_notification(&mut self, timeout: Duration, mut pred: impl FnMut(&Notification) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.notifications.iter().any(|(_, n)| pred(n)) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.recv(left.min(Duration::from_millis(50))) {
                Some(WorkerMessage::Notification(n)) => self.notifications.push((Instant::now(), n)),
                Some(WorkerMessage::Response { .. }) | None => {
                    if self.channel_end.is_some() {
                        return false;
                    }
                }
            }
        }
    }

    pub fn notifications(&self) -> impl Iterator<Item = &Notification> {
        self.notifications.iter().map(|(_, n)| n)
    }

    /// The notifications about one transport, in arrival order.
    pub fn transport_notifications(&self, id: TransportId) -> Vec<TransportNotification> {
        self.notifications()
            .filter_map(|n| match n {
                Notification::Transport(t, n) if *t == id => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether the worker process is still running.
    pub fn is_alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    // Typed requests of the flow mediasoup-client follows.

    pub fn create_router(
        &mut self,
        router_id: RouterId,
        media_codecs: Vec<RtpCodecCapability>,
    ) -> anyhow::Result<RtpCapabilities> {
        match self.ok(Request::Worker(WorkerRequest::CreateRouter { router_id, media_codecs }))? {
            Response::RouterCreated { rtp_capabilities } => Ok(rtp_capabilities),
            other => bail!("CreateRouter answered {other:?}"),
        }
    }

    pub fn create_webrtc_transport(
        &mut self,
        router_id: RouterId,
        transport_id: TransportId,
    ) -> anyhow::Result<WebRtcTransportData> {
        let options = WebRtcTransportOptions::default();
        match self.ok(Request::Router(router_id, RouterRequest::CreateWebRtcTransport { transport_id, options }))? {
            Response::WebRtcTransportCreated(data) => Ok(data),
            other => bail!("CreateWebRtcTransport answered {other:?}"),
        }
    }

    /// `Connect` with the peer's DTLS parameters; returns the worker's own DTLS role.
    pub fn connect(&mut self, transport_id: TransportId, dtls_parameters: DtlsParameters) -> anyhow::Result<DtlsRole> {
        match self.ok(Request::Transport(transport_id, TransportRequest::Connect { dtls_parameters }))? {
            Response::TransportConnected { dtls_local_role } => Ok(dtls_local_role),
            other => bail!("Connect answered {other:?}"),
        }
    }

    pub fn produce(
        &mut self,
        transport_id: TransportId,
        producer_id: ProducerId,
        kind: MediaKind,
        rtp_parameters: RtpParameters,
    ) -> anyhow::Result<RtpType> {
        let req = TransportRequest::Produce { producer_id, kind, rtp_parameters, paused: false };
        match self.ok(Request::Transport(transport_id, req))? {
            Response::ProducerCreated { rtp_type } => Ok(rtp_type),
            other => bail!("Produce answered {other:?}"),
        }
    }

    /// `Consume`, paused as mediasoup-client's flow has it (resume once the receiver is ready).
    pub fn consume(
        &mut self,
        transport_id: TransportId,
        consumer_id: ConsumerId,
        producer_id: ProducerId,
        rtp_capabilities: RtpCapabilities,
    ) -> anyhow::Result<ConsumerData> {
        let req = TransportRequest::Consume { consumer_id, producer_id, rtp_capabilities, paused: true };
        match self.ok(Request::Transport(transport_id, req))? {
            Response::ConsumerCreated(data) => Ok(data),
            other => bail!("Consume answered {other:?}"),
        }
    }

    pub fn resume_consumer(&mut self, consumer_id: ConsumerId) -> anyhow::Result<()> {
        match self.ok(Request::Consumer(consumer_id, ConsumerRequest::Resume))? {
            Response::Ok => Ok(()),
            other => bail!("Resume answered {other:?}"),
        }
    }

    pub fn transport_stats(&mut self, transport_id: TransportId) -> anyhow::Result<TransportStats> {
        match self.ok(Request::Transport(transport_id, TransportRequest::GetStats))? {
            Response::TransportStats(stats) => Ok(stats),
            other => bail!("GetStats answered {other:?}"),
        }
    }
}

impl Drop for WorkerUnderTest {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = self.runtime.block_on(async { tokio::time::timeout(Duration::from_secs(5), child.wait()).await });
        }
    }
}
