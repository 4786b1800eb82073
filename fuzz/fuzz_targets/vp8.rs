//! VP8 payload descriptors through the reader and a consumer's rewriter (worker/src/fuzzing/media.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    octo_worker::fuzzing::vp8(data);
});
