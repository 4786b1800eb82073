//! A STUN message through the parser and every accessor (worker/src/fuzzing/stun.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    octo_worker::fuzzing::stun(data);
});
