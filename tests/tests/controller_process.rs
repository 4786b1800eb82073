//! The `octo` binary as an operator runs it: worker processes, respawn, signals.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use octo_tests::*;

fn worker_children(octo: &Octo) -> Vec<u32> {
    children_of(octo.pid()).into_iter().filter(|&p| comm(p).as_deref() == Some("octo-worker")).collect()
}

#[test]
fn starts_the_requested_number_of_worker_processes() {
    let octo = Octo::start(&["--workers", "2"]).unwrap();
    let workers = wait_for(Duration::from_secs(5), || Some(worker_children(&octo)).filter(|w| w.len() == 2));
    assert!(workers.is_some(), "children: {:?}", children_of(octo.pid()));
    let (status, health) = octo.get_json("/healthz").unwrap();
    assert_eq!(status, 200);
    assert_eq!(health["workers"], 2);
    let mut pids: Vec<u32> = octo.worker_pids().unwrap().into_iter().map(Option::unwrap).collect();
    pids.sort_unstable();
    assert_eq!(pids, workers.unwrap());
}

#[test]
fn default_is_one_worker_per_available_core() {
    let octo = Octo::start(&[]).unwrap();
    let cores = std::thread::available_parallelism().unwrap().get();
    let (_, health) = octo.get_json("/healthz").unwrap();
    assert_eq!(health["workers"], cores as u64);
    assert_eq!(worker_children(&octo).len(), cores);
}

#[test]
fn pinned_workers_run_on_their_own_core() {
    let allowed = parse_cpu_list(&proc_status_field(std::process::id(), "Cpus_allowed_list").unwrap());
    let octo = Octo::start(&["--workers", "2", "--pin-workers"]).unwrap();
    for (i, pid) in octo.worker_pids().unwrap().into_iter().enumerate() {
        let list = proc_status_field(pid.unwrap(), "Cpus_allowed_list").unwrap();
        assert_eq!(parse_cpu_list(&list), vec![allowed[i % allowed.len()]], "worker {i}");
    }
}

#[test]
fn sigterm_stops_everything_with_exit_0_and_no_orphans() {
    let octo = Octo::start(&["--workers", "2"]).unwrap();
    let workers = wait_for(Duration::from_secs(5), || Some(worker_children(&octo)).filter(|w| w.len() == 2)).unwrap();
    octo.signal(Signal::SIGTERM);
    let status = octo.wait(Duration::from_secs(10)).unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    for pid in workers {
        assert!(!is_running(pid), "worker {pid} outlived the controller");
    }
}

#[test]
fn sigint_also_stops_cleanly() {
    let octo = Octo::start(&["--workers", "1"]).unwrap();
    let workers = worker_children(&octo);
    octo.signal(Signal::SIGINT);
    assert_eq!(octo.wait(Duration::from_secs(10)).unwrap().code(), Some(0));
    assert!(workers.iter().all(|&p| !is_running(p)));
}

#[test]
fn kill_9_of_a_worker_is_detected_and_respawned_while_the_other_is_untouched() {
    let octo = Octo::start(&["--workers", "2"]).unwrap();
    let before = octo.worker_pids().unwrap();
    let (victim, survivor) = (before[0].unwrap(), before[1].unwrap());
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).unwrap();

    let respawned = wait_for(Duration::from_secs(2), || {
        let pids = octo.worker_pids().ok()?;
        pids[0].filter(|&p| p != victim)
    });
    let respawned = respawned.expect("no new worker within 2 s");
    assert_eq!(comm(respawned).as_deref(), Some("octo-worker"));
    assert_eq!(octo.worker_pids().unwrap()[1], Some(survivor), "the other worker changed");
    let (_, workers) = octo.get_json("/workers").unwrap();
    assert_eq!(workers[0]["restarts"], 1);
    assert_eq!(workers[1]["restarts"], 0);
    assert!(workers[0]["lastExit"].as_str().unwrap().contains("SIGKILL"), "{workers}");
    assert!(!octo.log_lines("killed by signal 9").is_empty());
}

#[test]
fn a_worker_that_writes_garbage_is_killed_and_replaced() {
    let dir = std::env::temp_dir().join(format!("octo-garbage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("spoke-garbage");
    let _ = std::fs::remove_file(&marker);
    let script = dir.join("garbage-worker");
    // The first process writes bytes that are no ipc frame and stays alive; every respawn is real.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ -e '{m}' ]; then exec '{real}' \"$@\"; fi\ntouch '{m}'\nprintf 'this is not an ipc frame' >&3\nexec sleep 30\n",
            m = marker.display(),
            real = bin("octo-worker").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let octo = Octo::start(&["--workers", "1", "--worker-bin", script.to_str().unwrap()]).unwrap();
    assert!(marker.exists(), "the garbage worker never ran");
    let (status, health) = octo.get_json("/healthz").unwrap();
    assert_eq!((status, health["workers"].as_u64()), (200, Some(1)));
    let (_, workers) = octo.get_json("/workers").unwrap();
    assert_eq!(workers[0]["restarts"], 1, "{workers}");
    assert!(!octo.log_lines("wrote garbage on its channel").is_empty());
    let pid = workers[0]["pid"].as_u64().unwrap() as u32;
    assert_eq!(comm(pid).as_deref(), Some("octo-worker"));
    octo.signal(Signal::SIGTERM);
    assert_eq!(octo.wait(Duration::from_secs(10)).unwrap().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_worker_binary_is_a_clear_startup_error() {
    let err = Octo::start(&["--workers", "1", "--worker-bin", "/nonexistent/octo-worker"]).err().unwrap();
    assert!(err.to_string().contains("did not start"), "{err}");
}

#[test]
fn octo_worker_started_by_hand_explains_itself() {
    let out = std::process::Command::new(bin("octo-worker")).arg("--channel-fd").arg("97").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{:?}", out.status.signal());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not open"));
}

#[test]
fn sigterm_does_not_wait_for_an_open_socket_io_long_poll() {
    use std::io::{Read, Write};
    let octo = Octo::start(&["--workers", "1"]).unwrap();
    // Engine.IO v4 polling handshake, then a long poll that the server holds open.
    let (status, body) = http_get(octo.addr, "/socket.io/?EIO=4&transport=polling").unwrap();
    assert_eq!(status, 200, "{body}");
    let sid = body.split("\"sid\":\"").nth(1).and_then(|s| s.split('"').next()).unwrap().to_owned();
    let mut poll = std::net::TcpStream::connect(octo.addr).unwrap();
    write!(poll, "GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let started = std::time::Instant::now();
    octo.signal(Signal::SIGTERM);
    let status = octo.wait(Duration::from_secs(10)).unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(6), "shutdown took {:?}", started.elapsed());
    let mut rest = Vec::new();
    let _ = poll.read_to_end(&mut rest);
}

#[test]
fn sigterm_drains_rooms_until_they_finish_or_the_deadline() {
    use octo_tests::socketio::PollingClient;
    let octo = Octo::start(&["--workers", "1", "--drain-timeout-ms", "2500"]).unwrap();
    let mut peer = PollingClient::connect(octo.addr).unwrap();
    let joined = peer.request("joinRoom", serde_json::json!({"roomId": "drain", "displayName": "a"})).unwrap();
    assert!(joined.get("data").is_some(), "{joined}");
    let started = std::time::Instant::now();
    octo.signal(Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(700));
    assert!(is_running(octo.pid()), "octo exited with a room still in progress");
    // No new joins while draining.
    let mut late = PollingClient::connect(octo.addr).unwrap();
    let refused = late.request("joinRoom", serde_json::json!({"roomId": "other", "displayName": "b"})).unwrap();
    assert_eq!(refused["error"]["code"], "unavailable", "{refused}");
    let status = octo.wait(Duration::from_secs(10)).unwrap();
    assert_eq!(status.code(), Some(0));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(2400) && took < Duration::from_secs(8), "drain took {took:?}");
}

#[test]
fn sighup_reloads_the_log_filter_from_the_config_file() {
    let dir = std::env::temp_dir().join(format!("octo-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("octo.toml");
    std::fs::write(&path, "log = \"info\"\n").unwrap();
    let octo = Octo::start(&["--workers", "1", "--config", path.to_str().unwrap()]).unwrap();
    std::fs::write(&path, "log = \"debug\"\n").unwrap();
    octo.signal(Signal::SIGHUP);
    let reloaded = wait_for(Duration::from_secs(5), || octo.log_lines("log filter now debug").into_iter().next());
    assert!(reloaded.is_some(), "no reload confirmation");
    // Debug lines now appear (each /healthz request logs at debug level in tower/axum or ours).
    assert!(is_running(octo.pid()), "SIGHUP must not stop octo");
    let _ = std::fs::remove_dir_all(&dir);
}
