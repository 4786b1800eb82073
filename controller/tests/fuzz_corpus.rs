//! Replays the committed signaling fuzz corpus (`fuzz/corpus/signaling/`) through the function the
//! fuzz target calls, without libFuzzer (as `worker/tests/fuzz_corpus.rs` does for the worker's
//! targets): a crash once found and saved there stays fixed, and the seeds must still parse.

use std::path::Path;

use octo_controller::signaling::requests::fuzz_request;

#[test]
fn the_signaling_corpus_replays_and_its_seeds_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/signaling");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let parsed = fuzz_request(&std::fs::read(&path).expect("corpus file"));
        let is_seed = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("seed-"));
        assert!(parsed || !is_seed, "{}: a seed no longer parses", path.display());
        files += 1;
    }
    assert!(files >= 10, "{files} files in {}", dir.display());
}
