//! An ICE-TCP byte stream through the RFC 4571 decoder in reads of every size
//! (worker/src/fuzzing/tcp.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    octo_worker::fuzzing::tcp_framing(data);
});
