//! A byte stream of controller-to-worker ipc frames (ipc/src/fuzzing.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    octo_ipc::fuzzing::controller_frames(data);
});
