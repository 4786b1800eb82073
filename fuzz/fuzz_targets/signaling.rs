//! A signaling request of Octo's dialect: event name, NUL, JSON payload, through the typed parse and
//! its checks (controller/src/signaling/requests.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    octo_controller::signaling::requests::fuzz_request(data);
});
