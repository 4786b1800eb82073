//! A DataChannel Establishment Protocol message (worker/src/fuzzing/sctp.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    octo_worker::fuzzing::dcep(data);
});
