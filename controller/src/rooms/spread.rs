//! A room across workers: its routers on other workers than the main one, and what happens when
//! one of those workers dies. The piped copies of its producers there are in `copies.rs`.
//!
//! Locking as in `room.rs`: the state lock is never held across an await. Objects made once per
//! worker (a far router, a piped copy) sit in a `OnceCell` with the pid of the process they were
//! made on, so concurrent callers make one, and one whose worker was replaced since is not used.

use std::collections::HashMap;

use octo_ipc::{Notification, Request, Response, RouterId, RouterNotification, RouterRequest, Target, WorkerRequest};
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{info, warn};

use super::peer::Peer;
use super::room::{OnWorker, Room};
use super::spill::{self, RoomRouter};
use super::{RoomError, RoomEvent};

impl Room {
    /// The worker for a peer's first recv transport (see [`spill`]).
    pub(super) fn choose_recv_worker(&self) -> Result<usize, RoomError> {
        let rooms = self.rooms.upgrade().ok_or(RoomError::RoomClosed)?;
        // Before taking this room's lock: the loads read every room's state.
        let loads = rooms.worker_loads();
        let routers: Vec<RoomRouter> = {
            let state = self.open()?;
            let mut routers = vec![RoomRouter { worker: self.worker, consumers: 0 }];
            routers.extend(state.routers.keys().map(|&worker| RoomRouter { worker, consumers: 0 }));
            for peer in &state.peers {
                let worker = peer.recv_worker.unwrap_or(self.worker);
                if let Some(r) = routers.iter_mut().find(|r| r.worker == worker) {
                    r.consumers += peer.consumers.len();
                }
            }
            routers
        };
        spill::choose_recv_worker(self.worker, &routers, &loads, rooms.config().spill)
            .ok_or_else(|| RoomError::Unavailable("every worker is down".into()))
    }

    pub(super) fn pid_of(&self, worker: usize) -> Option<u32> {
        self.pool.worker(worker).map(|w| w.pid)
    }

    /// The room's router on `worker`, created there on first use.
    pub(super) async fn router_on(&self, worker: usize) -> Result<RouterId, RoomError> {
        if worker == self.worker {
            return Ok(self.router_id);
        }
        // A router found stale on the first round (its worker was replaced) is replaced.
        for _ in 0..2 {
            let cell = self.open()?.routers.entry(worker).or_default().clone();
            let (router_id, pid) = *cell.get_or_try_init(|| self.create_far_router(worker)).await?;
            if self.pid_of(worker) == Some(pid) {
                return Ok(router_id);
            }
            forget_cell(&mut self.lock().routers, &worker, &cell);
        }
        Err(RoomError::Unavailable(format!("worker {worker} keeps restarting")))
    }

    async fn create_far_router(&self, worker: usize) -> Result<(RouterId, u32), RoomError> {
        let rooms = self.rooms.upgrade().ok_or(RoomError::RoomClosed)?;
        let pid = self.pid_of(worker).ok_or_else(|| RoomError::Unavailable(format!("worker {worker} is down")))?;
        let router_id = RouterId(rand::random());
        // Subscribe first: the pool reports a dead worker's routers as soon as it sees the death.
        let notifications = self.pool.subscribe(Target::Router(router_id));
        let media_codecs = rooms.config().media_codecs.clone();
        let request = Request::Worker(WorkerRequest::CreateRouter { router_id, media_codecs });
        match self.request(worker, request).await {
            Ok(Response::RouterCreated { .. }) => {}
            other => {
                self.pool.unsubscribe(Target::Router(router_id));
                return Err(other.err().unwrap_or(RoomError::UnexpectedResponse));
            }
        }
        if self.is_closed() {
            // The room closed meanwhile: whoever closed it may not have seen this router.
            self.pool.unsubscribe(Target::Router(router_id));
            self.close_quietly(worker, Request::Router(router_id, RouterRequest::Close)).await;
            return Err(RoomError::RoomClosed);
        }
        info!(room = self.id, %router_id, worker, "room spilled onto another worker");
        tokio::spawn(watch_far_router(self.me.clone(), worker, router_id, notifications));
        Ok((router_id, pid))
    }

    /// Closes the room's routers on other workers (the room is closing).
    pub(super) async fn close_far_routers(&self, routers: HashMap<usize, OnWorker<RouterId>>) {
        for (worker, cell) in routers {
            // Waits for a creation in progress; one that fails leaves nothing to close.
            let made = cell.get_or_try_init(|| async { Err::<_, ()>(()) }).await;
            if let Ok((router_id, _)) = made {
                self.pool.unsubscribe(Target::Router(*router_id));
                self.close_quietly(worker, Request::Router(*router_id, RouterRequest::Close)).await;
            }
        }
    }

    /// The room's router on `worker` (not the main one) closed under it — the worker died. Its peers
    /// that received there are put out of the room (told `RoomClosed`, so they join again) and
    /// leave as if they had left; everyone else goes on.
    async fn lose_worker(&self, worker: usize, router_id: RouterId) {
        let (expelled, sinks, now_empty) = {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            let ours = state.routers.get(&worker).and_then(|c| c.get()).is_some_and(|(id, _)| *id == router_id);
            if ours {
                state.routers.remove(&worker);
            }
            // The copies died with the worker.
            state.piped.retain(|(_, w), _| *w != worker);
            let (expelled, kept): (Vec<Peer>, Vec<Peer>) =
                std::mem::take(&mut state.peers).into_iter().partition(|p| p.recv_worker == Some(worker));
            state.peers = kept;
            let sinks: Vec<_> = state.peers.iter().map(|p| p.sink.clone()).collect();
            let now_empty = state.peers.is_empty() && !expelled.is_empty();
            (expelled, sinks, now_empty)
        };
        warn!(room = self.id, worker, peers = expelled.len(), "a worker the room spilled onto died");
        for peer in &expelled {
            (peer.sink)(RoomEvent::RoomClosed {
                code: "worker_died",
                message: format!("the media worker receiving for you stopped (worker {worker}); join again"),
            });
        }
        for peer in &expelled {
            self.release(peer, &sinks).await;
        }
        if now_empty {
            self.schedule_close_if_empty();
        }
    }
}

/// Removes `cell` from `map` if it is still the one under `key`.
pub(super) fn forget_cell<K: std::hash::Hash + Eq, V>(
    map: &mut HashMap<K, std::sync::Arc<V>>,
    key: &K,
    cell: &std::sync::Arc<V>,
) {
    if map.get(key).is_some_and(|c| std::sync::Arc::ptr_eq(c, cell)) {
        map.remove(key);
    }
}

/// Turns a far router's `Closed` (its worker died) into the loss of that worker's peers. Its
/// `ActiveSpeaker` notifications are ignored: the far router hears copies of the main router's
/// audio, and only the main router speaks for the room.
async fn watch_far_router(
    room: std::sync::Weak<Room>,
    worker: usize,
    router_id: RouterId,
    mut notifications: UnboundedReceiver<Notification>,
) {
    while let Some(n) = notifications.recv().await {
        if let Notification::Router(_, RouterNotification::Closed { reason }) = n {
            if let Some(room) = room.upgrade() {
                warn!(room = room.id, worker, %router_id, ?reason, "far router closed under the room");
                room.pool.unsubscribe(Target::Router(router_id));
                room.lose_worker(worker, router_id).await;
            }
            return;
        }
    }
}
