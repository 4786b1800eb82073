//! Prometheus `/metrics`: valid text exposition, and counters that move with traffic.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use octo_tests::{Octo, http_get, wait_for};

/// Parses Prometheus text format strictly enough to catch a malformed line.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            assert!(rest.starts_with("HELP ") || rest.starts_with("TYPE "), "bad comment: {line}");
            if let Some(t) = rest.strip_prefix("TYPE ") {
                let kind = t.split_whitespace().nth(1).unwrap();
                assert!(["counter", "gauge"].contains(&kind), "{line}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "bad name: {line}");
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels: {line}");
            for label in series[name_end + 1..series.len() - 1].split(',') {
                let (k, v) = label.split_once('=').unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(!k.is_empty() && v.starts_with('"') && v.ends_with('"'), "bad label: {line}");
            }
        }
        samples.insert(series.to_owned(), value.parse::<f64>().unwrap_or_else(|_| panic!("bad value: {line}")));
    }
    samples
}

fn sum(samples: &HashMap<String, f64>, name: &str) -> f64 {
    samples.iter().filter(|(k, _)| k.split('{').next() == Some(name)).map(|(_, v)| v).sum()
}

#[test]
fn metrics_parse_and_count_datagrams() {
    let octo = Octo::start(&["--workers", "2"]).unwrap();
    let metrics = octo.metrics_addr.expect("metrics address logged");
    let (status, body) = http_get(metrics, "/metrics").unwrap();
    assert_eq!(status, 200);
    let before = parse(&body);
    assert_eq!(before["octo_workers_live"], 2.0);
    for name in ["octo_worker_cpu_seconds_total", "octo_worker_resident_memory_bytes", "octo_transports", "octo_peers"]
    {
        assert_eq!(before.keys().filter(|k| k.starts_with(&format!("{name}{{"))).count(), 2, "{name} per worker");
    }
    assert!(sum(&before, "octo_worker_resident_memory_bytes") > 1e6);

    // Datagrams at a worker's media port: counted and dropped (nobody owns them).
    let line = wait_for(Duration::from_secs(5), || octo.log_lines("worker running").into_iter().next()).unwrap();
    let port: u16 =
        line.split("127.0.0.1:").nth(1).unwrap().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
    let media: SocketAddr = ([127, 0, 0, 1], port).into();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..50u8 {
        udp.send_to(&[0x80 | (i & 1), 96, 0, i, 1, 2, 3, 4, 5, 6, 7, 8], media).unwrap();
    }
    let moved = wait_for(Duration::from_secs(5), || {
        let after = parse(&http_get(metrics, "/metrics").ok()?.1);
        (sum(&after, "octo_packets_dropped_total") >= sum(&before, "octo_packets_dropped_total") + 50.0).then_some(())
    });
    assert!(moved.is_some(), "dropped datagrams not counted");
    // The health endpoint stays on the public listener, metrics only on their own.
    assert_eq!(http_get(octo.addr, "/metrics").unwrap().0, 404);
}
