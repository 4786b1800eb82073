//! The browser app end to end: `tests/e2e/call.test.mjs` drives three (and more) headless Debian
//! Chromium browsers with fake camera and microphone through the real UI served by the real `octo`
//! (two workers), and checks media, mute, camera off, leaving, hostile or dropped peers, screen
//! share, and the automatic rejoin after the room's worker is killed. `tests/e2e/chat.test.mjs`: chat,
//! reactions and a 200 KiB file over DataChannels through Octo between three pages, the unread
//! badge, garbage on the channel, and a peer leaving and rejoining mid-conversation.
//!
//! `tests/e2e/usability.test.mjs`: what a new user meets (a phone in portrait, Leave turning the
//! camera off, mute kept across a rejoin); `names.test.mjs`: bad room names, an empty room, the
//! same name twice.
//! `tests/e2e/server.test.mjs`: the `octo` process killed under a call and restarted on the same
//! address (tiles kept frozen, then back); `tests/e2e/worker.test.mjs`: the room's worker killed (the
//! same peers' tiles kept); `tests/e2e/drain.test.mjs`: SIGTERM under a call (the
//! people are told; octo exits 0 once they have left).
//!
//! `tests/e2e/ice.test.mjs`: ICE restart — a page in a network namespace loses all UDP for 5 s
//! mid-call and comes back without leaving the room (needs root, `iproute2` and `nftables`).
//!
//! `tests/e2e/turn.test.mjs`: a page whose namespace drops all UDP connects through a real
//! coturn over TCP (needs `coturn` too); `tests/e2e/blocked.test.mjs`: one without UDP and with no
//! TURN to offer is told media cannot get through, which way and why.
//!
//! `tests/e2e/adaptive.test.mjs`: simulcast and the downlink estimator with a page in a network
//! namespace of its own whose downlink is shaped with `tc … tbf` (needs root and `iproute2`), tile
//! sizes and hidden tiles. Not in the default run (`--ignored`): on a 2-core machine it is a test of
//! the machine as much as of Octo.
//!
//! `tests/e2e/access.test.mjs`: invitation links (`--auth-secret`) refused and accepted.
//!
//! `tests/e2e/twelve.test.mjs`: twelve people in one room (grid, list, hands, pin, speaker view) and
//! a thirteenth on a phone; its browsers run at the lowest CPU priority (see the script for why).
//!
//! `tests/e2e/seed.test.mjs` does the same for the seed app's client order of calls (a stand-in page
//! in `tests/e2e/seed-page/`, served by `octo --web-root`), with and without the `transport-created`
//! hold.
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

/// ICE restart (`tests/e2e/ice.test.mjs`): a page in a network namespace of its own loses all UDP
/// mid-call (nftables in the namespace; needs root, `iproute2` and `nftables`) until 5 s after its
/// browser notices; its client restarts ICE and the call comes back both ways without anyone leaving
/// the room.
#[test]
fn ice_restart_after_a_broken_path_in_chromium() {
    needs_nft();
    with_a_page_in_a_netns("ice", 78, "ice.test.mjs", nothing, ns_page);
}

/// TURN (`tests/e2e/turn.test.mjs`): a page in a network namespace that drops every UDP datagram
/// (nftables) reaches Octo's media through a real coturn over TCP, with the per-peer credentials
/// Octo mints from the shared secret; its selected candidate pair is a relay one.
#[test]
fn turn_relays_a_page_without_udp_in_chromium() {
    needs_nft();
    const SECRET: &str = "octo-turn-test-secret";
    let prepare = |ns: &octo_tests::netns::NetNs| {
        let coturn = octo_tests::coturn::Coturn::start(&ns.host_ip, SECRET).expect("coturn starts");
        let url = format!("turn:{}?transport=tcp", coturn.addr);
        (vec!["--turn-url".to_owned(), url, "--turn-secret".to_owned(), SECRET.to_owned()], coturn)
    };
    // The page may reach coturn's TCP port (and the web server's), nothing else by TCP.
    with_a_page_in_a_netns("turn", 79, "turn.test.mjs", prepare, |ns, chromium, coturn| {
        let mut vars = ns_page(ns, chromium, coturn);
        vars.push(("OCTO_TURN_PORT", coturn.addr.port().to_string().into()));
        vars
    });
}

/// ICE-TCP (`tests/e2e/tcp.test.mjs`): a page in a network namespace that drops every UDP datagram
/// (nftables), against an Octo without TURN, reaches the worker's passive TCP candidate; its selected
/// pair is TCP, and video and audio flow both ways with a page on UDP in the same room.
#[test]
fn ice_tcp_carries_a_page_without_udp_in_chromium() {
    needs_nft();
    with_a_page_in_a_netns("tcp", 83, "tcp.test.mjs", nothing, ns_page);
}

/// Clear errors (`tests/e2e/blocked.test.mjs`): a page whose namespace drops all UDP and all TCP but
/// signaling's, against an Octo without TURN, is told within seconds that media cannot get through, which way, and why.
#[test]
fn a_page_without_udp_or_turn_is_told_why_in_chromium() {
    needs_nft();
    with_a_page_in_a_netns("blocked", 80, "blocked.test.mjs", nothing, ns_page);
}

/// A lossy path (`tests/e2e/loss.test.mjs`): a page whose namespace drops 5 % of UDP each way keeps
/// decoding video both ways for 20 s; its NACKs are answered with retransmissions; the figures are
/// printed.
#[test]
fn five_percent_loss_each_way_in_chromium() {
    needs_nft();
    with_a_page_in_a_netns("loss", 81, "loss.test.mjs", nothing, ns_page);
}

/// A link at half the stream's rate (`tests/e2e/shaped.test.mjs`): a page whose downlink is shaped
/// with `tc … tbf` to half of what it received unshaped of a 720p camera (video and audio) is kept
/// below the top simulcast layer and keeps decoding (at least 5 frames/s).
#[test]
#[ignore = "depends on what a loaded runner's Chromium encodes: on the 2-core CI runner Bea's 720p encoder gave 369 kbit/s (not ~760), and half of that leaves too little beside audio (3.9 fps); passes alone (8-15 fps in 9 runs): scripts/chaos.sh shaped, or cargo test -p octo-tests --test web_e2e -- --ignored a_downlink_at_half"]
fn a_downlink_at_half_the_rate_in_chromium() {
    with_a_page_in_a_netns("shaped", 82, "shaped.test.mjs", nothing, |ns, chromium, _| {
        vec![("OCTO_NS_CHROMIUM", chromium.into()), ("OCTO_SHAPE_DEV", ns.host_dev.clone().into())]
    });
}

/// Adaptive video (`tests/e2e/adaptive.test.mjs`): a subscriber page in a network namespace of its
/// own, whose downlink is shaped with `tc … tbf`, steps down to the lowest simulcast layer and back;
/// an unshaped page keeps 720p; a small tile gets the low layer, a hidden one is paused.
#[test]
#[ignore = "three Chromiums and a 720p simulcast encoder overload a 2-core runner (joins and the climb to 720p time out now and then); run it alone: cargo test -p octo-tests --test web_e2e -- --ignored adaptive"]
fn adaptive_video_under_a_shaped_downlink_in_chromium() {
    with_a_page_in_a_netns("adapt", 77, "adaptive.test.mjs", nothing, |ns, chromium, _| {
        vec![("OCTO_SHAPED_CHROMIUM", chromium.into()), ("OCTO_SHAPE_DEV", ns.host_dev.clone().into())]
    });
}

/// Runs `script` against an `octo` listening on the host end of a new network namespace's veth
/// pair. `prepare` may start what the test needs beside it (kept until the script ends) and names
/// more arguments for `octo`; `env` names, for the script, a Chromium that runs inside the namespace
/// (a wrapper script) and whatever else of the namespace it needs.
fn with_a_page_in_a_netns<G>(
    tag: &str,
    net: u8,
    script: &str,
    prepare: impl FnOnce(&octo_tests::netns::NetNs) -> (Vec<String>, G),
    env: impl FnOnce(&octo_tests::netns::NetNs, std::path::PathBuf, &G) -> Vec<(&'static str, std::ffi::OsString)>,
) {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let ns = octo_tests::netns::NetNs::create(tag, net).expect("a network namespace for the page");
    let (extra, guard) = prepare(&ns);
    let listen = format!("{}:0", ns.host_ip);
    let mut args = vec!["--workers", "1", "--listen", &listen, "--rtc-listen-ip", &ns.host_ip];
    args.extend(extra.iter().map(String::as_str));
    let octo = Octo::start(&args).expect("octo starts");
    let dir = std::env::temp_dir().join(format!("octo-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let chromium = std::env::var("OCTO_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    let wrapper = ns.wrapper(&dir, &chromium).expect("wrapper script");
    let vars = env(&ns, wrapper, &guard);
    run_e2e(&octo, script, &vars);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The tests that drop a namespace's packets use nftables' `nft`.
fn needs_nft() {
    assert!(
        std::process::Command::new("nft").arg("--version").output().is_ok(),
        "`nft` is missing: apt-get install -y nftables"
    );
}

/// The script's Chromium inside the namespace, and the namespace's name (for `ip netns exec … nft`).
fn ns_page<G>(
    ns: &octo_tests::netns::NetNs,
    chromium: std::path::PathBuf,
    _: &G,
) -> Vec<(&'static str, std::ffi::OsString)> {
    vec![("OCTO_NS_CHROMIUM", chromium.into()), ("OCTO_NS", ns.name.clone().into())]
}

/// Nothing to start beside `octo`.
fn nothing(_: &octo_tests::netns::NetNs) -> (Vec<String>, ()) {
    (Vec::new(), ())
}

#[test]
fn three_people_in_chromium_through_the_real_ui() {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let octo = Octo::start(&["--workers", "2"]).expect("octo starts");
    run_e2e(&octo, "call.test.mjs", &[]);
    // Hostile and dropped peers cost no worker; the one restart is the worker the script killed.
    let (restarts, workers) = worker_restarts(&octo);
    assert_eq!(restarts, 1, "workers restarted other than the one killed on purpose: {workers}");
}

#[test]
fn chat_reactions_and_files_over_datachannels_in_chromium() {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let octo = Octo::start(&["--workers", "2"]).expect("octo starts");
    run_e2e(&octo, "chat.test.mjs", &[]);
    // Garbage on the data channel and a peer leaving cost no worker.
    let (restarts, workers) = worker_restarts(&octo);
    assert_eq!(restarts, 0, "a worker restarted: {workers}");
}

/// A room over both workers (`tests/e2e/spill.test.mjs`): the third page's receiving side is
/// spilled onto the other worker and gets everything over a pipe.
#[test]
fn three_people_in_one_room_over_two_workers_in_chromium() {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let octo = Octo::start(&["--workers", "2", "--room-spill-consumers", "1"]).expect("octo starts");
    let metrics = octo.metrics_addr.expect("metrics address");
    run_e2e(&octo, "spill.test.mjs", &[("OCTO_METRICS_URL", format!("http://{metrics}").into())]);
    let (restarts, workers) = worker_restarts(&octo);
    assert_eq!(restarts, 0, "a worker restarted: {workers}");
}

/// A cluster of two nodes (`tests/e2e/cluster.test.mjs`): a page on each calls the other through
/// the pipe between the nodes, and a later joiner gets the chat history from Redis.
#[test]
fn two_pages_on_two_nodes_of_a_cluster_in_chromium() {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let redis = octo_tests::redis::RedisServer::start().expect("redis-server starts");
    let a = Octo::start_node(&redis.url(), "node-a", &[]).expect("node a starts");
    let b = Octo::start_node(&redis.url(), "node-b", &[]).expect("node b starts");
    run_e2e(
        &a,
        "cluster.test.mjs",
        &[("OCTO_URL_B", format!("http://{}", b.addr).into()), ("OCTO_PID_A", a.pid().to_string().into())],
    );
    assert!(!a.log_lines("pipe to node opened").is_empty(), "no pipe between the nodes");
}

/// People (`tests/e2e/people.test.mjs`): the participant list, raised hands in order on every page
/// and for a late joiner, join and leave toasts, the microphone meter and the muted hint.
#[test]
fn people_hands_and_the_microphone_meter_in_chromium() {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let octo = Octo::start(&["--workers", "1"]).expect("octo starts");
    run_e2e(&octo, "people.test.mjs", &[]);
}

/// Twelve people in one room (`tests/e2e/twelve.test.mjs`, issue #19's acceptance): the grid of
/// twelve, the list with their states, a hand on every page, pin and speaker view, a phone joining.
/// Twelve browsers join one after the other and share the runner with the server: ~5 minutes here.
#[test]
fn twelve_people_in_one_room_in_chromium() {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let octo = Octo::start(&["--workers", "1"]).expect("octo starts");
    run_e2e_within(&octo, "twelve.test.mjs", &[], Duration::from_secs(540));
}

#[test]
fn what_a_new_user_meets_in_chromium() {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let octo = Octo::start(&["--workers", "1"]).expect("octo starts");
    // Two files: node bounds each file (not each test) by its --test-timeout.
    run_e2e(&octo, "usability.test.mjs", &[]);
    run_e2e(&octo, "names.test.mjs", &[]);
}

/// The `octo` process killed under a call and started again on the same address (by the script,
/// which gets this one's pid and the binary).
#[test]
fn server_killed_and_restarted_under_a_call_in_chromium() {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let octo = Octo::start(&["--workers", "1"]).expect("octo starts");
    run_e2e(&octo, "server.test.mjs", &[("OCTO_PID", octo.pid().to_string().into()), ("OCTO_BIN", bin("octo").into())]);
}

/// The room's worker killed under a call (by the script): the same peers get their tiles back.
#[test]
fn worker_killed_tiles_kept_in_chromium() {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let octo = Octo::start(&["--workers", "1"]).expect("octo starts");
    run_e2e(&octo, "worker.test.mjs", &[]);
}

/// A hung worker (`tests/e2e/hung.test.mjs`): the room's worker SIGSTOPped under a call is found by
/// the heartbeat within `--worker-hang-timeout-ms`, killed and respawned, and the pages' call comes
/// back by itself.
#[test]
fn hung_worker_replaced_under_a_call_in_chromium() {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let timeout = "2000";
    let octo = Octo::start(&["--workers", "1", "--worker-hang-timeout-ms", timeout]).expect("octo starts");
    run_e2e(&octo, "hung.test.mjs", &[("OCTO_HANG_TIMEOUT_MS", timeout.into())]);
    assert_eq!(octo.log_lines("hung; killing it").len(), 1, "the controller did not log the hang once");
}

/// SIGTERM (sent by the script) while people are in a call: they are told, and `octo` exits 0 once
/// they have left, long before the drain deadline.
#[test]
fn server_drained_under_a_call_in_chromium() {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let drain_ms = "60000";
    let octo = Octo::start(&["--workers", "1", "--drain-timeout-ms", drain_ms]).expect("octo starts");
    run_e2e(
        &octo,
        "drain.test.mjs",
        &[("OCTO_PID", octo.pid().to_string().into()), ("OCTO_DRAIN_MS", drain_ms.into())],
    );
    assert_eq!(octo.log_lines("told the connected clients that the server drains").len(), 1);
    let status = octo.wait(Duration::from_secs(10)).expect("octo exits after the drain");
    assert!(status.success(), "octo exited with {status} after the drain");
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
    run_e2e(&octo, "errors.test.mjs", &[]);
}

/// Invitation links (`tests/e2e/access.test.mjs`): an octo with `--auth-secret` tells a page without
/// a token, with an expired one, one for another room or a forged one why it cannot join, and lets
/// in a page with a good one under the token's name.
#[test]
fn invitation_links_in_chromium() {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let secret = "access-test-secret-4f1c";
    let octo = Octo::start(&["--workers", "1", "--auth-secret", secret]).expect("octo starts");
    run_e2e(&octo, "access.test.mjs", &[("OCTO_AUTH_SECRET", secret.into())]);
}

/// `octo --web-root` serving the seed page (built by the script into a fresh directory), with
/// `--seed-transport-hold-ms hold_ms` (none: the default, 300 ms); the page's `device.load()` slowed by
/// `slow_load_ms`.
fn seed_pages(hold_ms: Option<u64>, slow_load_ms: u64) {
    let _one = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
    let hold = hold_ms.unwrap_or(300).to_string();
    let web_root = std::env::temp_dir().join(format!("octo-seed-page-{}-{hold}", std::process::id()));
    let _ = std::fs::remove_dir_all(&web_root);
    let mut args = vec!["--workers", "1", "--web-root", web_root.to_str().expect("utf-8 temp dir")];
    if hold_ms.is_some() {
        args.extend(["--seed-transport-hold-ms", &hold]);
    }
    let octo = Octo::start(&args).expect("octo starts");
    run_e2e(
        &octo,
        "seed.test.mjs",
        &[
            ("OCTO_SEED_WEB_ROOT", web_root.clone().into()),
            ("OCTO_SEED_HOLD_MS", hold.clone().into()),
            ("OCTO_SEED_SLOW_LOAD_MS", slow_load_ms.to_string().into()),
        ],
    );
    drop(octo);
    let _ = std::fs::remove_dir_all(&web_root);
}

/// Two seed pages, the seed client's order of calls, the default hold: both calls start, media both
/// ways, `leave-room` seen as `peer-left`.
#[test]
fn seed_app_client_order_calls_in_chromium_with_the_default_hold() {
    seed_pages(None, 0);
}

/// The negative: the same page, made slow to load (certain to lose the race), with the hold off
/// (`seed_transport_hold_ms = 0`) throws `not loaded`.
#[test]
fn seed_app_client_order_fails_not_loaded_without_the_hold() {
    seed_pages(Some(0), 1000);
}

/// And that slow page under a hold longer than its load calls: the hold is what makes it work.
#[test]
fn seed_app_client_order_with_a_slow_load_calls_under_a_longer_hold() {
    seed_pages(Some(2500), 1000);
}

/// Runs `node --test <script>` in `tests/e2e` against `octo`, with `env` added to its environment;
/// fails with node's output unless every test passed within the deadline.
fn run_e2e(octo: &Octo, script: &str, env: &[(&'static str, std::ffi::OsString)]) {
    run_e2e_within(octo, script, env, DEADLINE);
}

/// `run_e2e` with a deadline of its own.
fn run_e2e_within(octo: &Octo, script: &str, env: &[(&'static str, std::ffi::OsString)], deadline: Duration) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("e2e");
    assert!(
        dir.join("node_modules/playwright-core").is_dir() && dir.join("node_modules/mediasoup-client").is_dir(),
        "{}/node_modules is missing: run `npm ci --prefix tests/e2e` (needs Node 20+) before this test",
        dir.display()
    );
    let chromium = std::env::var("OCTO_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        Path::new(&chromium).is_file(),
        "{chromium} is missing: `apt-get install -y chromium` (Debian), or set OCTO_CHROMIUM to a Chromium binary"
    );
    let mut vars: Vec<(&str, std::ffi::OsString)> = vec![
        ("OCTO_URL", format!("http://{}", octo.addr).into()),
        ("OCTO_CHROMIUM", chromium.clone().into()),
        ("OCTO_ARTIFACTS", root.join("artifacts").into()),
    ];
    vars.extend(env.iter().cloned());
    octo_tests::node::run_node_test(&dir, script, &vars, deadline);
}
