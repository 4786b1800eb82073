//! A payload through the VP8, VP9, H264 and AV1 keyframe detectors (worker/src/fuzzing/media.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    octo_worker::fuzzing::keyframe(data);
});
