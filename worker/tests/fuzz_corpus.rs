//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the functions the fuzz
//! targets call, without libFuzzer: a crash the fuzzer once found, saved into the corpus, stays
//! fixed. Each target must also have seeds, and at least one must get past its first parser, so
//! a corpus that no longer reaches the code it was made for fails here. A hang is a crash too
//! (the worker has one thread): each file must be done within [`SLOW`].

use std::path::Path;
use std::time::{Duration, Instant};

/// Far above what any corpus file takes in a debug build (milliseconds), far below a hang such as
/// the FORWARD-TSN walk `fuzz/corpus/sctp_association/regression-*` once caused (half a minute).
const SLOW: Duration = Duration::from_secs(5);

use octo_ipc::fuzzing::{controller_frames, worker_frames};
use octo_worker::fuzzing::*;

type Body = fn(&[u8]) -> bool;

const TARGETS: &[(&str, Body)] = &[
    ("stun", stun),
    ("ice_lite", ice_lite),
    ("rtp_header", rtp_header),
    ("rtp_rewrite", rtp_rewrite),
    ("vp8", vp8),
    ("keyframe", keyframe),
    ("rtcp_compound", rtcp_compound),
    ("transport_cc", transport_cc),
    ("nack", nack),
    ("srtp_unprotect", srtp_unprotect),
    ("sctp_association", sctp_association),
    ("dcep", dcep),
    ("ipc_controller", controller_frames),
    ("ipc_worker", worker_frames),
    ("worker", worker_datagrams),
    ("tcp_framing", tcp_framing),
];

fn replay(target: &str, body: Body) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let (mut files, mut accepted) = (0, 0);
    for entry in entries {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        files += 1;
        let start = Instant::now();
        if body(&data) {
            accepted += 1;
        }
        let took = start.elapsed();
        assert!(took < SLOW, "{}: took {took:?}", path.display());
    }
    assert!(files > 0, "{target}: empty corpus");
    assert!(accepted > 0, "{target}: none of {files} corpus files got past the first parser");
}

#[test]
fn every_corpus_replays_without_a_panic() {
    for &(target, body) in TARGETS {
        replay(target, body);
    }
}

#[test]
fn every_fuzz_target_has_a_corpus_and_a_replay() {
    let targets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/fuzz_targets");
    let mut names: Vec<String> = std::fs::read_dir(targets)
        .expect("fuzz/fuzz_targets")
        .map(|e| e.expect("entry").path().file_stem().expect("name").to_string_lossy().into_owned())
        // The controller's target is replayed by controller/tests/fuzz_corpus.rs.
        .filter(|n| n != "signaling")
        .collect();
    names.sort();
    let mut replayed: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    replayed.sort();
    assert_eq!(names, replayed, "a fuzz target without a corpus replay here, or the reverse");
}
