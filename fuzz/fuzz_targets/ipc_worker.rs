//! A byte stream of worker-to-controller ipc frames (ipc/src/fuzzing.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    octo_ipc::fuzzing::worker_frames(data);
});
