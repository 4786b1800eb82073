//! Transport-cc feedback parsing, and the worker's own feedback reading back (worker/src/fuzzing/rtcp.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    octo_worker::fuzzing::transport_cc(data);
});
