//! The worker pool: one `octo-worker` process per slot, each supervised and respawned with backoff.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use octo_ipc::{
    CloseReason, Notification, Request, Response, RouterId, RouterNotification, RouterRequest, Target, WorkerRequest,
};
use serde::Serialize;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::channel::{Channel, ChannelEnd, ChannelError};
use crate::dispatcher::Dispatcher;
use crate::process_usage::CpuMeter;
use crate::worker_process;

/// How often each worker's CPU utilisation is sampled (room placement reads the latest sample).
const CPU_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub workers: usize,
    pub worker_bin: PathBuf,
    /// Pin worker i to the i-th CPU this process may use.
    pub pin_workers: bool,
    pub request_timeout: Duration,
    /// How long `start` waits for every worker to answer.
    pub startup_timeout: Duration,
    pub respawn_backoff_min: Duration,
    pub respawn_backoff_max: Duration,
    /// A live worker that leaves a heartbeat ping unanswered this long is hung (stopped, or stuck
    /// in a loop): it is killed and respawned like a dead one. `None`: never pinged.
    pub hang_timeout: Option<Duration>,
    pub media: MediaListen,
}

/// How often a live worker is pinged (when hang detection is on).
const PING_INTERVAL: Duration = Duration::from_secs(1);

/// Where workers receive WebRTC media: one UDP port per worker and address family.
#[derive(Debug, Clone)]
pub struct MediaListen {
    pub ips: Vec<std::net::IpAddr>,
    /// Worker i listens on `port_base + i`; 0 lets each worker pick a free port.
    pub port_base: u16,
    /// Announced in ICE candidates instead of the listen IP (public address behind NAT).
    pub announced_address: Option<String>,
    /// ICE-TCP beside UDP.
    pub tcp: bool,
    /// Video paced at 2.5× each subscriber's downlink estimate (worker `--pace-video`).
    pub pace_video: bool,
    /// How long a worker's fan-out may wait for a video frame's last packet, µs (worker
    /// `--gather-frames-us`); 0: never.
    pub gather_frames_us: u64,
}

/// A worker's frame gathering unless configured (`--gather-frames-us`): 1 ms.
pub const DEFAULT_GATHER_FRAMES_US: u64 = 1000;

impl Default for MediaListen {
    fn default() -> Self {
        Self {
            ips: vec![[127, 0, 0, 1].into()],
            port_base: 0,
            announced_address: None,
            tcp: true,
            pace_video: false,
            gather_frames_us: DEFAULT_GATHER_FRAMES_US,
        }
    }
}

impl MediaListen {
    /// The command-line arguments of worker `index`.
    pub fn worker_args(&self, index: usize) -> Vec<String> {
        let port = if self.port_base == 0 { 0 } else { self.port_base.saturating_add(index as u16) };
        let mut args = Vec::new();
        for ip in &self.ips {
            args.push("--rtc-listen".to_owned());
            args.push(std::net::SocketAddr::new(*ip, port).to_string());
        }
        if let Some(a) = &self.announced_address {
            args.push("--rtc-announced-address".to_owned());
            args.push(a.clone());
        }
        if self.tcp {
            args.push("--rtc-tcp".to_owned());
        }
        if self.pace_video {
            args.push("--pace-video".to_owned());
        }
        if self.gather_frames_us > 0 {
            args.push("--gather-frames-us".to_owned());
            args.push(self.gather_frames_us.to_string());
        }
        args
    }
}

impl PoolConfig {
    pub fn new(workers: usize, worker_bin: PathBuf) -> Self {
        Self {
            workers,
            worker_bin,
            pin_workers: false,
            request_timeout: Duration::from_secs(5),
            startup_timeout: Duration::from_secs(10),
            respawn_backoff_min: Duration::from_millis(100),
            respawn_backoff_max: Duration::from_secs(10),
            hang_timeout: Some(Duration::from_secs(5)),
            media: MediaListen::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("no worker {0}")]
    NoSuchWorker(usize),
    #[error("worker {0} is down (respawning)")]
    WorkerDown(usize),
    #[error("worker {index}: {source}")]
    Channel {
        index: usize,
        #[source]
        source: ChannelError,
    },
    #[error("workers did not come up within {0:?}; see the log for their errors")]
    Startup(Duration),
    #[error("log filter {filter:?} is invalid: {reason}")]
    InvalidLogFilter { filter: String, reason: String },
    #[error("worker binary {0} not found (build it with `cargo build --release`, or pass --worker-bin)")]
    MissingBinary(PathBuf),
}

/// A live worker process.
pub struct WorkerHandle {
    pub index: usize,
    pub pid: u32,
    channel: Channel,
    routers: Mutex<HashSet<RouterId>>,
}

impl WorkerHandle {
    pub async fn request(&self, request: Request) -> Result<Response, ChannelError> {
        let created = match &request {
            Request::Worker(WorkerRequest::CreateRouter { router_id, .. }) => Some(*router_id),
            _ => None,
        };
        let closed = match &request {
            Request::Router(id, RouterRequest::Close) => Some(*id),
            _ => None,
        };
        let response = self.channel.request(request).await?;
        // The pool remembers which routers live here so that it can report them closed if the
        // process dies.
        let mut routers = self.routers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = created {
            routers.insert(id);
        }
        if let Some(id) = closed {
            routers.remove(&id);
        }
        Ok(response)
    }

    pub fn router_count(&self) -> usize {
        self.routers.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// What an operator sees of one slot.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerStatus {
    pub index: usize,
    pub pid: Option<u32>,
    pub alive: bool,
    pub restarts: u64,
    /// Times a worker in this slot was found hung and killed.
    pub hangs: u64,
    pub routers: usize,
    pub last_exit: Option<String>,
    /// The share of one core the process used over the last second (1.0 = a core busy); absent
    /// until it has been sampled twice.
    pub cpu_utilisation: Option<f64>,
}

#[derive(Default)]
struct Slot {
    current: Mutex<Option<Arc<WorkerHandle>>>,
    last_exit: Mutex<Option<String>>,
    restarts: AtomicU64,
    hangs: AtomicU64,
    cpu: Mutex<CpuMeter>,
}

struct Shared {
    config: PoolConfig,
    cpus: Vec<usize>,
    slots: Vec<Slot>,
    dispatcher: Dispatcher,
    shutdown: watch::Sender<bool>,
    changed: Notify,
    /// The log filter set since start (SIGHUP), for workers spawned later.
    log_filter: Mutex<Option<String>>,
    /// The slot index of every worker process that exits, for owners of objects that are not
    /// routers (pipe transports) and so get no `Closed` notification.
    deaths: broadcast::Sender<usize>,
}

pub struct WorkerPool {
    shared: Arc<Shared>,
    supervisors: Mutex<Vec<JoinHandle<()>>>,
}

impl WorkerPool {
    /// Spawns every worker and returns once all of them answer requests.
    pub async fn start(config: PoolConfig) -> Result<Self, PoolError> {
        if !config.worker_bin.is_file() {
            return Err(PoolError::MissingBinary(config.worker_bin.clone()));
        }
        let startup_timeout = config.startup_timeout;
        let shared = Arc::new(Shared {
            cpus: worker_process::allowed_cpus(),
            slots: (0..config.workers).map(|_| Slot::default()).collect(),
            config,
            dispatcher: Dispatcher::default(),
            shutdown: watch::channel(false).0,
            changed: Notify::new(),
            log_filter: Mutex::default(),
            deaths: broadcast::channel(64).0,
        });
        let mut supervisors: Vec<_> =
            (0..shared.slots.len()).map(|i| tokio::spawn(supervise(shared.clone(), i))).collect();
        supervisors.push(tokio::spawn(sample_cpu(shared.clone())));
        let pool = WorkerPool { shared, supervisors: Mutex::new(supervisors) };
        let all_up = async {
            loop {
                let changed = pool.shared.changed.notified();
                if pool.live_count() == pool.len() {
                    return;
                }
                changed.await;
            }
        };
        if tokio::time::timeout(startup_timeout, all_up).await.is_err() {
            pool.close().await;
            return Err(PoolError::Startup(startup_timeout));
        }
        Ok(pool)
    }

    pub fn len(&self) -> usize {
        self.shared.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shared.slots.is_empty()
    }

    /// Workers that are up and answering.
    pub fn live_count(&self) -> usize {
        (0..self.len()).filter(|&i| self.worker(i).is_some()).count()
    }

    /// The live process in slot `index`, if it is up.
    pub fn worker(&self, index: usize) -> Option<Arc<WorkerHandle>> {
        self.shared.slots.get(index)?.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub async fn request(&self, index: usize, request: Request) -> Result<Response, PoolError> {
        if index >= self.len() {
            return Err(PoolError::NoSuchWorker(index));
        }
        let worker = self.worker(index).ok_or(PoolError::WorkerDown(index))?;
        worker.request(request).await.map_err(|source| PoolError::Channel { index, source })
    }

    /// Notifications addressed to `target`, including the `Closed { WorkerDied }` the pool sends
    /// for routers whose worker died.
    pub fn subscribe(&self, target: Target) -> mpsc::UnboundedReceiver<Notification> {
        self.shared.dispatcher.subscribe(target)
    }

    pub fn unsubscribe(&self, target: Target) {
        self.shared.dispatcher.unsubscribe(target)
    }

    /// The index of each worker slot whose process exits from now on (sent once the slot no longer
    /// holds it, before its routers are reported closed).
    pub fn subscribe_deaths(&self) -> broadcast::Receiver<usize> {
        self.shared.deaths.subscribe()
    }

    pub fn status(&self) -> Vec<WorkerStatus> {
        self.shared
            .slots
            .iter()
            .enumerate()
            .map(|(index, slot)| {
                let current = slot.current.lock().unwrap_or_else(|p| p.into_inner()).clone();
                WorkerStatus {
                    index,
                    pid: current.as_ref().map(|w| w.pid),
                    alive: current.is_some(),
                    restarts: slot.restarts.load(Ordering::Relaxed),
                    hangs: slot.hangs.load(Ordering::Relaxed),
                    routers: current.as_ref().map_or(0, |w| w.router_count()),
                    last_exit: slot.last_exit.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                    cpu_utilisation: slot.cpu.lock().unwrap_or_else(|p| p.into_inner()).utilisation(),
                }
            })
            .collect()
    }

    /// Gives every live worker the log filter `filter`, and every worker spawned from now on.
    /// Returns each live worker's answer; a filter that does not parse goes nowhere.
    pub async fn set_log_filter(&self, filter: &str) -> Result<Vec<(usize, Result<Response, PoolError>)>, PoolError> {
        tracing_subscriber::EnvFilter::try_new(filter)
            .map_err(|e| PoolError::InvalidLogFilter { filter: filter.to_owned(), reason: e.to_string() })?;
        *self.shared.log_filter.lock().unwrap_or_else(|p| p.into_inner()) = Some(filter.to_owned());
        let mut answers = Vec::new();
        for index in 0..self.len() {
            if self.worker(index).is_some() {
                let request = Request::Worker(WorkerRequest::SetLogFilter { filter: filter.to_owned() });
                answers.push((index, self.request(index, request).await));
            }
        }
        Ok(answers)
    }

    /// Asks every worker to close, kills those that do not, and waits for all supervisors.
    pub async fn close(&self) {
        self.shared.shutdown.send_replace(true);
        let supervisors = std::mem::take(&mut *self.supervisors.lock().unwrap_or_else(|p| p.into_inner()));
        for task in supervisors {
            let _ = task.await;
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        // Supervisors own the children (kill_on_drop); stopping them stops the processes.
        self.shared.shutdown.send_replace(true);
    }
}

/// Samples every slot's CPU utilisation each [`CPU_SAMPLE_INTERVAL`] until the pool shuts down.
async fn sample_cpu(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut tick = tokio::time::interval(CPU_SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped(&mut shutdown) => return,
        }
        let now = Instant::now();
        for slot in &shared.slots {
            let pid = slot.current.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|w| w.pid);
            slot.cpu.lock().unwrap_or_else(|p| p.into_inner()).sample(pid, now);
        }
    }
}

/// Keeps slot `index` filled with a live worker until the pool shuts down.
async fn supervise(shared: Arc<Shared>, index: usize) {
    let config = &shared.config;
    let mut shutdown = shared.shutdown.subscribe();
    let mut backoff = config.respawn_backoff_min;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let started = Instant::now();
        match run_once(&shared, index, &mut shutdown).await {
            Ok(status) => {
                let exit = describe(status);
                if *shutdown.borrow() {
                    info!(worker = index, "worker stopped ({exit})");
                    return;
                }
                error!(worker = index, "worker died ({exit}); respawning in {backoff:?}");
                *shared.slots[index].last_exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(exit);
            }
            Err(e) => error!(worker = index, "could not start worker: {e}; retrying in {backoff:?}"),
        }
        shared.slots[index].restarts.fetch_add(1, Ordering::Relaxed);
        // A worker that ran a while before dying gets a fast respawn; a crash loop backs off.
        if started.elapsed() > Duration::from_secs(30) {
            backoff = config.respawn_backoff_min;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stopped(&mut shutdown) => return,
        }
        backoff = (backoff * 2).min(config.respawn_backoff_max);
    }
}

/// Runs one worker process from spawn to exit. Returns its exit status.
async fn run_once(
    shared: &Arc<Shared>,
    index: usize,
    shutdown: &mut watch::Receiver<bool>,
) -> std::io::Result<ExitStatus> {
    let config = &shared.config;
    let cpu =
        if config.pin_workers && !shared.cpus.is_empty() { Some(shared.cpus[index % shared.cpus.len()]) } else { None };
    let spawned_filter = shared.log_filter.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut args = config.media.worker_args(index);
    // Otherwise the worker inherits the controller's filter, which a SIGHUP may have replaced.
    if let Some(filter) = &spawned_filter {
        args.extend(["--log-filter".to_owned(), filter.clone()]);
    }
    let (mut child, stream) = worker_process::spawn(&config.worker_bin, index, cpu, &args)?;
    let pid = child.id().unwrap_or(0);
    let dispatch_to = shared.clone();
    let (channel, mut channel_end) =
        Channel::start(stream, config.request_timeout, move |n| dispatch_to.dispatcher.dispatch(n));
    let handle = Arc::new(WorkerHandle { index, pid, channel, routers: Mutex::default() });

    // Published only once it answers, so "live" means "answering requests".
    let ping = async {
        match handle.request(Request::Worker(WorkerRequest::Dump)).await {
            Ok(_) => {
                info!(worker = index, pid, ?cpu, "worker up");
                *shared.slots[index].current.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle.clone());
                shared.changed.notify_waiters();
                // A filter set between spawn and now missed this worker both ways: hand it over.
                let current = shared.log_filter.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if current != spawned_filter
                    && let Some(filter) = current
                {
                    let request = Request::Worker(WorkerRequest::SetLogFilter { filter });
                    if let Err(e) = handle.request(request).await {
                        warn!(worker = index, "worker kept its old log filter: {e}");
                    }
                }
            }
            Err(e) => {
                warn!(worker = index, pid, "worker did not answer its first request: {e}");
                return std::future::pending().await;
            }
        }
        heartbeat(&handle, config.hang_timeout).await
    };

    let status = tokio::select! {
        status = child.wait() => status?,
        end = &mut channel_end => {
            match end {
                Ok(ChannelEnd::Garbage(e)) => {
                    error!(worker = index, pid, "worker wrote garbage on its channel ({e}); killing it");
                    let _ = child.start_kill();
                }
                Ok(ChannelEnd::Io(e)) => {
                    error!(worker = index, pid, "worker channel failed ({e}); killing it");
                    let _ = child.start_kill();
                }
                Ok(ChannelEnd::Eof) | Err(_) => {}
            }
            wait_or_kill(&mut child, Duration::from_secs(2)).await?
        }
        _ = stopped(shutdown) => {
            let _ = tokio::time::timeout(Duration::from_secs(1), handle.request(Request::Worker(WorkerRequest::Close))).await;
            wait_or_kill(&mut child, Duration::from_secs(2)).await?
        }
        silent = ping => {
            error!(worker = index, pid, "worker left a ping unanswered for {silent:?}: hung; killing it");
            shared.slots[index].hangs.fetch_add(1, Ordering::Relaxed);
            let _ = child.start_kill();
            wait_or_kill(&mut child, Duration::from_secs(2)).await?
        }
    };

    // The process is gone: take it out of the slot, fail what waited on it, and tell the owners
    // of its routers.
    shared.slots[index].current.lock().unwrap_or_else(|p| p.into_inner()).take();
    shared.changed.notify_waiters();
    handle.channel.fail_pending();
    // Nobody listening is fine: no room has piped anything yet.
    let _ = shared.deaths.send(index);
    let routers: Vec<RouterId> = handle.routers.lock().unwrap_or_else(|p| p.into_inner()).drain().collect();
    for id in routers {
        shared
            .dispatcher
            .dispatch(Notification::Router(id, RouterNotification::Closed { reason: CloseReason::WorkerDied }));
    }
    Ok(status)
}

/// Pings a live worker every [`PING_INTERVAL`]; returns how long it stayed silent once a ping goes
/// unanswered for `timeout`. Never returns without a timeout, nor while the channel is failing
/// for another reason (the process's exit or the channel's end is then what ends the worker).
async fn heartbeat(handle: &WorkerHandle, timeout: Option<Duration>) -> Duration {
    let Some(timeout) = timeout else { return std::future::pending().await };
    let mut tick = tokio::time::interval(PING_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match tokio::time::timeout(timeout, handle.request(Request::Worker(WorkerRequest::Ping))).await {
            Ok(Ok(_)) => {}
            Ok(Err(ChannelError::Timeout(_))) | Err(_) => return timeout,
            Ok(Err(_)) => return std::future::pending().await,
        }
    }
}

/// Resolves once the pool is shutting down.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it here, not across the caller's awaits.
    let _ = shutdown.wait_for(|s| *s).await;
}

async fn wait_or_kill(child: &mut tokio::process::Child, grace: Duration) -> std::io::Result<ExitStatus> {
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            warn!("worker did not exit within {grace:?}; killing it");
            child.start_kill()?;
            child.wait().await
        }
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => {
            let name = nix::sys::signal::Signal::try_from(sig).map(|s| s.as_str()).unwrap_or("unknown");
            format!("killed by signal {sig} ({name})")
        }
        _ => status.to_string(),
    }
}
