//! Log format and filter of the controller and its workers: `--log-format json` makes every line
//! of both a JSON object; SIGHUP re-reads `log` from the config file into every worker, respawned
//! ones included.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use octo_tests::*;

#[test]
fn json_format_makes_every_controller_and_worker_line_json() {
    let octo = Octo::start(&["--workers", "2", "--log-format", "json"]).unwrap();
    assert_eq!(octo.get_json("/readyz").unwrap().0, 200);
    let pids = octo.worker_pids().unwrap();
    octo.signal(Signal::SIGTERM);
    let lines = {
        let log = octo.log_lines("");
        assert_eq!(octo.wait(Duration::from_secs(10)).unwrap().code(), Some(0));
        log
    };
    assert!(lines.len() >= 5, "{lines:?}");
    let parsed: Vec<serde_json::Value> =
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    for line in &parsed {
        assert!(line["level"].is_string() && line["fields"]["message"].is_string(), "{line}");
    }
    // The controller's lines and each worker's own (its span carries its pid).
    assert!(
        parsed.iter().any(|l| l["target"] == "octo" && l["fields"]["message"].as_str().unwrap().contains("listening"))
    );
    for pid in pids.into_iter().map(Option::unwrap) {
        let from_worker =
            parsed.iter().any(|l| l["target"].as_str().unwrap().starts_with("octo_worker") && l["span"]["pid"] == pid);
        assert!(from_worker, "no JSON line from worker {pid}");
    }
}

/// DEBUG lines of the worker with `pid` that log a GetMetrics request.
fn worker_debug_lines(octo: &Octo, pid: u32) -> usize {
    octo.log_lines("GetMetrics")
        .iter()
        .filter(|l| l.contains("DEBUG") && l.contains(&format!("worker{{pid={pid}}}")))
        .count()
}

fn scrape(octo: &Octo) {
    let (status, _) = http_get(octo.metrics_addr.expect("metrics address"), "/metrics").unwrap();
    assert_eq!(status, 200);
}

#[test]
fn sighup_sets_the_workers_log_filter_and_respawned_workers_keep_it() {
    let dir = std::env::temp_dir().join(format!("octo-log-hup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("octo.toml");
    std::fs::write(&path, "log = \"info\"\n").unwrap();
    let octo = Octo::start(&["--workers", "1", "--config", path.to_str().unwrap()]).unwrap();
    let first = octo.worker_pids().unwrap()[0].unwrap();
    // /metrics asks each worker for its counters: a request the worker logs at debug level.
    scrape(&octo);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(worker_debug_lines(&octo, first), 0, "debug lines before the filter allows them");

    std::fs::write(&path, "log = \"info,octo_worker=debug\"\n").unwrap();
    octo.signal(Signal::SIGHUP);
    let applied = wait_for(Duration::from_secs(5), || {
        octo.log_lines("log filter now info,octo_worker=debug").into_iter().find(|l| l.contains("worker{"))
    });
    assert!(applied.is_some(), "the worker did not confirm the new filter");
    scrape(&octo);
    assert!(wait_for(Duration::from_secs(5), || (worker_debug_lines(&octo, first) > 0).then_some(())).is_some());

    // A filter that does not parse changes nothing, anywhere.
    std::fs::write(&path, "log = \"octo_worker=loudest\"\n").unwrap();
    octo.signal(Signal::SIGHUP);
    assert!(wait_for(Duration::from_secs(5), || octo.log_lines("kept the old one").into_iter().next()).is_some());
    assert!(is_running(octo.pid()) && is_running(first));

    // A replacement worker starts with the reloaded filter.
    kill(Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();
    let second = wait_for(Duration::from_secs(5), || octo.worker_pids().ok()?[0].filter(|&p| p != first));
    let second = second.expect("no respawn");
    scrape(&octo);
    assert!(
        wait_for(Duration::from_secs(5), || (worker_debug_lines(&octo, second) > 0).then_some(())).is_some(),
        "the respawned worker logs no debug lines"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
