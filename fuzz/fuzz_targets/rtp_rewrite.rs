//! The forwarding path's in-place RTP rewrites, checked to read back (worker/src/fuzzing/media.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    octo_worker::fuzzing::rtp_rewrite(data);
});
