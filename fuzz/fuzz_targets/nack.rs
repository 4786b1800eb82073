//! NACK parsing, and the NACK generator's requests written and read back (worker/src/fuzzing/rtcp.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    octo_worker::fuzzing::nack(data);
});
