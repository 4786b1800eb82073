//! An RTP packet through the header view and its extension readers (worker/src/fuzzing/media.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    octo_worker::fuzzing::rtp_header(data);
});
