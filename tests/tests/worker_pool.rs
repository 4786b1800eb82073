//! The controller's worker pool against real `octo-worker` processes.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use octo_controller::channel::ChannelError;
use octo_controller::worker_pool::{PoolConfig, PoolError, WorkerPool};
use octo_ipc::*;
use octo_tests::bin;

async fn pool(workers: usize) -> WorkerPool {
    WorkerPool::start(PoolConfig::new(workers, bin("octo-worker"))).await.expect("pool starts")
}

async fn create_router(pool: &WorkerPool, index: usize, id: u128) -> RouterId {
    let id = RouterId(id);
    let request = Request::Worker(WorkerRequest::CreateRouter { router_id: id, media_codecs: Vec::new() });
    let resp = pool.request(index, request).await.unwrap();
    assert!(matches!(resp, Response::RouterCreated { .. }), "{resp:?}");
    id
}

async fn dump_router(pool: &WorkerPool, index: usize, id: RouterId) -> Result<Response, PoolError> {
    pool.request(index, Request::Router(id, RouterRequest::Dump)).await
}

#[tokio::test]
async fn a_router_is_created_on_each_worker_and_dumped_back() {
    let pool = pool(2).await;
    for index in 0..2 {
        let id = create_router(&pool, index, 100 + index as u128).await;
        match dump_router(&pool, index, id).await.unwrap() {
            Response::RouterDump(d) => assert_eq!(d.id, id),
            other => panic!("{other:?}"),
        }
        match pool.request(index, Request::Worker(WorkerRequest::Dump)).await.unwrap() {
            Response::WorkerDump(d) => {
                assert_eq!(d.router_ids, vec![id]);
                assert_eq!(Some(d.pid), pool.worker(index).map(|w| w.pid));
            }
            other => panic!("{other:?}"),
        }
    }
    // A router lives on one worker only.
    assert!(dump_router(&pool, 1, RouterId(100)).await.is_err());
    pool.close().await;
}

#[tokio::test]
async fn kill_9_is_reported_and_a_new_worker_answers_within_2s() {
    let pool = pool(2).await;
    let doomed = create_router(&pool, 0, 1).await;
    let safe = create_router(&pool, 1, 2).await;
    let mut doomed_events = pool.subscribe(Target::Router(doomed));
    let mut safe_events = pool.subscribe(Target::Router(safe));
    let victim = pool.worker(0).unwrap().pid;
    let survivor = pool.worker(1).unwrap().pid;

    let killed_at = Instant::now();
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).unwrap();

    let event =
        tokio::time::timeout(Duration::from_secs(2), doomed_events.recv()).await.expect("router closed in time");
    assert_eq!(
        event,
        Some(Notification::Router(doomed, RouterNotification::Closed { reason: CloseReason::WorkerDied }))
    );
    let new_pid = loop {
        if let Ok(Response::WorkerDump(d)) = pool.request(0, Request::Worker(WorkerRequest::Dump)).await {
            break d.pid;
        }
        assert!(killed_at.elapsed() < Duration::from_secs(2), "no worker answered within 2 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(killed_at.elapsed() < Duration::from_secs(2));
    assert_ne!(new_pid, victim);

    // The other worker and its router are untouched.
    assert_eq!(pool.worker(1).unwrap().pid, survivor);
    assert!(matches!(dump_router(&pool, 1, safe).await, Ok(Response::RouterDump(_))));
    assert!(safe_events.try_recv().is_err(), "the surviving router got an event");
    // The dead worker's router is gone with it.
    match dump_router(&pool, 0, doomed).await {
        Err(PoolError::Channel { source: ChannelError::Request(e), .. }) => assert_eq!(e.code, ErrorCode::NotFound),
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.status()[0].restarts, 1);
    pool.close().await;
}

/// A SIGSTOPped worker is alive but answers nothing: the heartbeat finds it hung within the
/// configured timeout, kills it and a fresh worker takes its slot; the other worker is untouched.
#[tokio::test]
async fn a_stopped_worker_is_found_hung_killed_and_respawned() {
    let mut config = PoolConfig::new(2, bin("octo-worker"));
    config.hang_timeout = Some(Duration::from_millis(1500));
    let pool = WorkerPool::start(config).await.expect("pool starts");
    let doomed = create_router(&pool, 0, 1).await;
    let mut doomed_events = pool.subscribe(Target::Router(doomed));
    let (victim, survivor) = (pool.worker(0).unwrap().pid, pool.worker(1).unwrap().pid);

    let stopped_at = Instant::now();
    kill(Pid::from_raw(victim as i32), Signal::SIGSTOP).unwrap();
    // Detected after at most one ping interval (1 s) plus the timeout, then respawned.
    let event =
        tokio::time::timeout(Duration::from_secs(6), doomed_events.recv()).await.expect("router closed in time");
    assert_eq!(
        event,
        Some(Notification::Router(doomed, RouterNotification::Closed { reason: CloseReason::WorkerDied }))
    );
    let detected = stopped_at.elapsed();
    assert!(detected >= Duration::from_millis(1500), "killed before its timeout: {detected:?}");
    let new_pid = loop {
        if let Ok(Response::WorkerDump(d)) = pool.request(0, Request::Worker(WorkerRequest::Dump)).await {
            break d.pid;
        }
        assert!(stopped_at.elapsed() < Duration::from_secs(8), "no worker answered after the hang");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_ne!(new_pid, victim);
    // The stopped process is gone (killed, not left stopped), and the other worker kept running.
    assert!(kill(Pid::from_raw(victim as i32), None).is_err(), "the hung worker still exists");
    assert_eq!(pool.worker(1).unwrap().pid, survivor);
    let status = pool.status();
    assert_eq!((status[0].hangs, status[0].restarts), (1, 1));
    assert_eq!((status[1].hangs, status[1].restarts), (0, 0));
    pool.close().await;
}

/// A busy but healthy worker is not taken for hung: with hang detection at its default, a pool
/// left alone for several ping intervals keeps its processes.
#[tokio::test]
async fn a_healthy_worker_answers_its_pings_and_stays() {
    let pool = pool(1).await;
    let pid = pool.worker(0).unwrap().pid;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(pool.worker(0).map(|w| w.pid), Some(pid));
    assert_eq!((pool.status()[0].hangs, pool.status()[0].restarts), (0, 0));
    pool.close().await;
}

#[tokio::test]
async fn an_unknown_target_gets_an_error_naming_it() {
    let pool = pool(1).await;
    let targets = [
        Request::Router(RouterId(0xdead), RouterRequest::Dump),
        Request::Transport(TransportId(0xbeef), TransportRequest::Close),
        Request::Producer(ProducerId(1), ProducerRequest::Dump),
        Request::Consumer(ConsumerId(2), ConsumerRequest::Dump),
    ];
    for request in targets {
        let target = request.target();
        match pool.request(0, request).await {
            Err(PoolError::Channel { source: ChannelError::Request(e), .. }) => {
                assert_eq!(e.code, ErrorCode::NotFound);
                assert!(e.message.contains(&target.to_string()), "{e} does not name {target}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(pool.request(7, Request::Worker(WorkerRequest::Dump)).await, Err(PoolError::NoSuchWorker(7))));
    pool.close().await;
}

#[tokio::test]
async fn close_ends_every_worker_process() {
    let pool = pool(2).await;
    let pids: Vec<u32> = (0..2).map(|i| pool.worker(i).unwrap().pid).collect();
    pool.close().await;
    assert_eq!(pool.live_count(), 0);
    for pid in pids {
        assert!(!octo_tests::is_running(pid), "worker {pid} still runs");
    }
}

#[tokio::test]
async fn a_log_filter_that_does_not_parse_is_refused_and_the_worker_goes_on() {
    let pool = pool(2).await;
    let pids: Vec<u32> = (0..2).map(|i| pool.worker(i).unwrap().pid).collect();
    for garbage in ["octo_worker=loudest", "info,[{=", "=debug", "a[b]c=trace", "\u{0}\u{ffff}=info"] {
        // Straight to each worker, past the pool's own check.
        for index in 0..2 {
            let request = Request::Worker(WorkerRequest::SetLogFilter { filter: garbage.to_owned() });
            match pool.request(index, request).await {
                Err(PoolError::Channel { source: ChannelError::Request(e), .. }) => {
                    assert_eq!(e.code, ErrorCode::InvalidRequest, "{garbage:?}");
                    assert!(e.message.contains("invalid"), "worker {index}: {e}");
                }
                other => panic!("worker {index} accepted {garbage:?}: {other:?}"),
            }
        }
        let refused = pool.set_log_filter(garbage).await;
        assert!(matches!(refused, Err(PoolError::InvalidLogFilter { .. })), "{garbage:?}: {refused:?}");
    }
    for (index, answer) in pool.set_log_filter("warn,octo_worker=debug").await.unwrap() {
        assert!(matches!(answer, Ok(Response::Ok)), "worker {index}: {answer:?}");
    }
    // Same processes, still answering.
    for (index, pid) in pids.into_iter().enumerate() {
        assert_eq!(pool.worker(index).unwrap().pid, pid);
        assert!(matches!(pool.request(index, Request::Worker(WorkerRequest::Dump)).await, Ok(Response::WorkerDump(_))));
    }
    pool.close().await;
}
