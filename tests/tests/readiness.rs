//! `/readyz` of the real `octo`: ready when every worker answers; 503 with the reason while a
//! worker is down (until its respawn answers) and while draining after SIGTERM. `/healthz`
//! (liveness) stays 200 meanwhile.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use octo_tests::socketio::PollingClient;
use octo_tests::*;

#[test]
fn not_ready_while_a_killed_worker_respawns() {
    let dir = std::env::temp_dir().join(format!("octo-readyz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("started-once");
    let script = dir.join("slow-respawn-worker");
    // The first worker starts at once; its replacement takes a second, so the gap is observable.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ -e '{m}' ]; then sleep 1; else touch '{m}'; fi\nexec '{real}' \"$@\"\n",
            m = marker.display(),
            real = bin("octo-worker").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let octo = Octo::start(&["--workers", "2", "--worker-bin", script.to_str().unwrap()]).unwrap();

    let (status, ready) = octo.get_json("/readyz").unwrap();
    assert_eq!((status, &ready["status"]), (200, &serde_json::json!("ready")), "{ready}");
    assert_eq!(ready["workers"], 2);

    let victim = octo.worker_pids().unwrap()[1].unwrap();
    kill(Pid::from_raw(victim as i32), Signal::SIGKILL).unwrap();
    let down = wait_for(Duration::from_secs(2), || octo.get_json("/readyz").ok().filter(|(s, _)| *s == 503));
    let (_, down) = down.expect("/readyz stayed 200 with a worker down");
    assert_eq!(down["status"], "degraded", "{down}");
    assert!(down["reason"].as_str().unwrap().contains("[1]"), "{down}");
    assert_eq!(octo.get_json("/healthz").unwrap().0, 200, "liveness must not drop with one worker down");

    let back = wait_for(Duration::from_secs(10), || octo.get_json("/readyz").ok().filter(|(s, _)| *s == 200));
    assert!(back.is_some(), "not ready again after the respawn");
    let respawned = octo.worker_pids().unwrap()[1].unwrap();
    assert_ne!(respawned, victim);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn not_ready_while_draining() {
    let octo = Octo::start(&["--workers", "1", "--drain-timeout-ms", "3000"]).unwrap();
    assert_eq!(octo.get_json("/readyz").unwrap().0, 200);
    let mut peer = PollingClient::connect(octo.addr).unwrap();
    let joined = peer.request("joinRoom", serde_json::json!({"roomId": "readyz", "displayName": "a"})).unwrap();
    assert!(joined.get("data").is_some(), "{joined}");

    octo.signal(Signal::SIGTERM);
    let draining = wait_for(Duration::from_secs(2), || octo.get_json("/readyz").ok().filter(|(s, _)| *s == 503));
    let (_, draining) = draining.expect("/readyz stayed 200 while draining");
    assert_eq!(draining["status"], "draining", "{draining}");
    assert!(is_running(octo.pid()), "octo stopped although a peer is in a room");
    assert_eq!(octo.wait(Duration::from_secs(10)).unwrap().code(), Some(0));
}
