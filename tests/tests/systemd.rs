//! `octo` under systemd's notify protocol, with a NOTIFY_SOCKET this test creates, and the shipped
//! unit file checked by `systemd-analyze verify`.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use octo_tests::{Octo, bin};

fn receive_until(socket: &UnixDatagram, want: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = msg.lines().any(|l| l == want);
            seen.push(msg);
            if done {
                return seen;
            }
        }
    }
    panic!("no {want} within {timeout:?}; got {seen:?}");
}

#[test]
fn reports_ready_pings_the_watchdog_and_says_stopping() {
    let dir = std::env::temp_dir().join(format!("octo-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    // SAFETY: set before Octo::start spawns the child that inherits it; no other thread of this
    // test binary reads these variables.
    unsafe {
        std::env::set_var("NOTIFY_SOCKET", &path);
        std::env::set_var("WATCHDOG_USEC", "200000");
    }
    let octo = Octo::start(&["--workers", "1"]).unwrap();
    unsafe {
        std::env::remove_var("NOTIFY_SOCKET");
        std::env::remove_var("WATCHDOG_USEC");
    }
    let ready = receive_until(&socket, "READY=1", Duration::from_secs(10));
    assert!(ready.iter().any(|m| m.contains(&format!("MAINPID={}", octo.pid()))), "{ready:?}");
    // Ready means ready: the health endpoint already answers.
    assert_eq!(octo.get_json("/healthz").unwrap().0, 200);
    receive_until(&socket, "WATCHDOG=1", Duration::from_secs(2));
    octo.signal(Signal::SIGTERM);
    receive_until(&socket, "STOPPING=1", Duration::from_secs(5));
    assert_eq!(octo.wait(Duration::from_secs(10)).unwrap().code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_unit_file_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze").arg("--version").stdout(Stdio::null()).status().is_err() {
        eprintln!("systemd-analyze is not installed here: nothing to verify");
        return;
    }
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/octo.service")).unwrap();
    // Point ExecStart at the binary this test was built with, so the check can find it.
    let unit = unit.replace("/usr/local/bin/octo", bin("octo").to_str().unwrap());
    let dir = std::env::temp_dir().join(format!("octo-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("octo.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr.lines().filter(|l| l.contains("octo.service")).collect();
    assert!(out.status.success() && complaints.is_empty(), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
