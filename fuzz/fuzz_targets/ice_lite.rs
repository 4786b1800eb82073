//! Binding requests from three addresses to one ICE-lite agent (worker/src/fuzzing/stun.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    octo_worker::fuzzing::ice_lite(data);
});
