//! Datagrams into the whole worker core: RFC 7983 demux, STUN, DTLS, SRTP, RTCP and forwarding
//! (worker/src/fuzzing/worker.rs).
#![no_main]

use std::cell::RefCell;

use octo_worker::fuzzing::WorkerFuzzer;

thread_local! {
    // One worker for many inputs: building one costs certificates and two DTLS handshakes.
    static WORKER: RefCell<Option<WorkerFuzzer>> = const { RefCell::new(None) };
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    WORKER.with_borrow_mut(|w| w.get_or_insert_with(WorkerFuzzer::new).feed(data));
});
