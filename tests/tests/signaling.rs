//! Signaling against the real `octo` binary with real clients: the npm `socket.io-client` and
//! `mediasoup-client` (its Device with the fake handler) run the scripts in `tests/node/` under
//! `node --test`. Each test starts its own `octo` with the options its script needs.
//!
//! Needs Node 20+ and `npm ci --prefix tests/node` (CI does both).

use std::path::{Path, PathBuf};

use std::time::Duration;

use octo_tests::*;

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Runs `node --test <script>` against a fresh `octo <args>`; fails with node's output unless every
/// test in the script passed.
fn run_node(script: &str, octo_args: &[&str], env: &[(&str, &str)]) {
    let dir = node_dir();
    assert!(
        dir.join("node_modules/socket.io-client").is_dir() && dir.join("node_modules/mediasoup-client").is_dir(),
        "{}/node_modules is missing: run `npm ci --prefix tests/node` (needs Node 20+) before these tests",
        dir.display()
    );
    let octo = Octo::start(octo_args).expect("octo starts");
    let mut vars: Vec<(&str, std::ffi::OsString)> = vec![("OCTO_URL", format!("http://{}", octo.addr).into())];
    vars.extend(env.iter().map(|(k, v)| (*k, std::ffi::OsString::from(v))));
    octo_tests::node::run_node_test(&dir, script, &vars, Duration::from_secs(120));
    drop(octo);
}

#[test]
fn main_protocol_two_peers_and_mediasoup_client_device() {
    run_node(
        "main.test.mjs",
        &["--workers", "2", "--empty-room-grace-ms", "300"],
        &[("OCTO_EMPTY_ROOM_GRACE_MS", "300")],
    );
}

#[test]
fn seed_app_dialect_with_the_transport_hold() {
    run_node("seed.test.mjs", &["--workers", "1"], &[("OCTO_SEED_HOLD_MS", "300")]);
}

#[test]
fn seed_app_dialect_honours_a_configured_hold() {
    run_node("seed.test.mjs", &["--workers", "1", "--seed-transport-hold-ms", "150"], &[("OCTO_SEED_HOLD_MS", "150")]);
}

#[test]
fn data_channels_are_produced_consumed_and_closed() {
    run_node("data.test.mjs", &["--workers", "1"], &[]);
}

#[test]
fn hostile_signaling_gets_documented_errors() {
    run_node(
        "hostile.test.mjs",
        &[
            "--workers",
            "1",
            "--max-payload",
            "16384",
            "--requests-per-second",
            "20",
            "--request-burst",
            "40",
            "--max-peers-per-room",
            "3",
        ],
        &[],
    );
}

#[test]
fn tokens_guard_rooms() {
    run_node(
        "auth.test.mjs",
        &["--workers", "1", "--auth-secret", "test-secret"],
        &[("OCTO_TEST_SECRET", "test-secret")],
    );
}

#[test]
fn worker_death_closes_rooms_and_rejoin_lands_on_a_live_worker() {
    run_node("worker-death.test.mjs", &["--workers", "2"], &[]);
}

#[test]
fn web_root_is_served_same_origin_with_signaling() {
    let dir = std::env::temp_dir().join(format!("octo-web-root-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>seed app</h1>").unwrap();
    std::fs::write(dir.join("client.js"), "console.log('hi')").unwrap();
    let octo = Octo::start(&["--workers", "1", "--web-root", dir.to_str().unwrap()]).unwrap();
    let (status, body) = http_get(octo.addr, "/").unwrap();
    assert_eq!((status, body.as_str()), (200, "<h1>seed app</h1>"));
    assert_eq!(http_get(octo.addr, "/client.js").unwrap(), (200, "console.log('hi')".to_owned()));
    assert_eq!(http_get(octo.addr, "/missing.js").unwrap().0, 404);
    // The other routes still answer.
    assert_eq!(octo.get_json("/healthz").unwrap().0, 200);
    let (status, caps) = octo.get_json("/getRtpCapabilities?roomId=web").unwrap();
    assert_eq!(status, 200);
    assert!(caps["codecs"].as_array().is_some_and(|c| !c.is_empty()), "{caps}");
    // Socket.IO's handshake (engine.io v4 polling) is answered on the same listener.
    let (status, body) = http_get(octo.addr, "/socket.io/?EIO=4&transport=polling").unwrap();
    assert_eq!(status, 200);
    assert!(body.starts_with('0') && body.contains("\"sid\""), "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_web_root_unknown_paths_are_404() {
    let octo = Octo::start(&["--workers", "1"]).unwrap();
    assert_eq!(http_get(octo.addr, "/no-such-file.html").unwrap().0, 404);
}
