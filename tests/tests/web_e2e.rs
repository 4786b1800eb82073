//! The browser app end to end: `tests/e2e/call.test.mjs` drives three (and more) headless Debian
//! Chromium browsers with fake camera and microphone through the real UI served by the real `octo`
//! (two workers), and checks media, mute, camera off, leaving, hostile or dropped peers, screen
//! share, and the automatic rejoin after the room's worker is killed. `tests/e2e/chat.test.mjs`: chat,
//! reactions and a 200 KiB file over DataChannels through Octo between three pages, the unread
//! badge, garbage on the channel, and a peer leaving and rejoining mid-conversation.
//!
//! Needs Node 20+, `npm ci --prefix tests/e2e` and `apt-get install -y chromium` (or `OCTO_CHROMIUM`
//! naming another Chromium). Saves a screenshot of the call in `tests/artifacts/`.

use std::path::Path;

use std::sync::Mutex;
use std::time::Duration;

use octo_tests::*;

const DEADLINE: Duration = Duration::from_secs(240);

/// One browser test at a time: several Chromiums encoding video on a small CI machine would make the
/// timing bounds (media within 10 s) a test of the machine.
static BROWSERS: Mutex<()> = Mutex::new(());

#[test]
fn three_people_in_chromium_through_the_real_ui() {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let octo = Octo::start(&["--workers", "2"]).expect("octo starts");
    run_e2e(&octo, "call.test.mjs");
    // Hostile and dropped peers cost no worker; the one restart is the worker the script killed.
    let (restarts, workers) = worker_restarts(&octo);
    assert_eq!(restarts, 1, "workers restarted other than the one killed on purpose: {workers}");
}

#[test]
fn chat_reactions_and_files_over_datachannels_in_chromium() {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let octo = Octo::start(&["--workers", "2"]).expect("octo starts");
    run_e2e(&octo, "chat.test.mjs");
    // Garbage on the data channel and a peer leaving cost no worker.
    let (restarts, workers) = worker_restarts(&octo);
    assert_eq!(restarts, 0, "a worker restarted: {workers}");
}

/// The sum of the workers' restarts, and `/workers` for the failure message.
fn worker_restarts(octo: &Octo) -> (u64, serde_json::Value) {
    let (_, workers) = octo.get_json("/workers").expect("/workers");
    let restarts = workers.as_array().expect("array").iter().filter_map(|w| w["restarts"].as_u64()).sum();
    (restarts, workers)
}

#[test]
fn lobby_errors_a_person_understands() {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let octo = Octo::start(&["--workers", "1", "--max-peers-per-room", "1"]).expect("octo starts");
    run_e2e(&octo, "errors.test.mjs");
}

/// Runs `node --test <script>` in `tests/e2e` against `octo`; fails with node's output unless every
/// test passed within the deadline.
fn run_e2e(octo: &Octo, script: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("e2e");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "{}/node_modules is missing: run `npm ci --prefix tests/e2e` (needs Node 20+) before this test",
        dir.display()
    );
    let chromium = std::env::var("OCTO_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is missing: `apt-get install -y chromium` (Debian), or set OCTO_CHROMIUM to a Chromium binary"
    );
    let vars: Vec<(&str, std::ffi::OsString)> = vec![
        ("OCTO_URL", format!("http://{}", octo.addr).into()),
        ("OCTO_CHROMIUM", chromium.clone().into()),
        ("OCTO_ARTIFACTS", root.join("artifacts").into()),
    ];
    octo_tests::node::run_node_test(&dir, script, &vars, DEADLINE);
}
