//! A compound RTCP datagram, every packet's items walked (worker/src/fuzzing/rtcp.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    octo_worker::fuzzing::rtcp_compound(data);
});
