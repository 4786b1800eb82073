//! SCTP packets from a connected peer into the worker's association (worker/src/fuzzing/sctp.rs).
#![no_main]

use std::sync::Once;

static QUIET_PANICS: Once = Once::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The worker's association catches rtc-sctp's panics (and fails that association), so a caught
    // one is the behaviour under test, not a crash; libfuzzer-sys's panic hook would abort on it.
    // A panic outside the worker's catch still unwinds to libfuzzer-sys and is reported.
    QUIET_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    octo_worker::fuzzing::sctp_association(data);
});
