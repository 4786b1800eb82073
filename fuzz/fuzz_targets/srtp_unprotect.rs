//! SRTP and SRTCP unprotect with fixed keys, all four profiles (worker/src/fuzzing/srtp.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    octo_worker::fuzzing::srtp_unprotect(data);
});
