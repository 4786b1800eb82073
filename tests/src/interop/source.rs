//! A paced publisher for tests through Octo: a VP8 frame every 33 ms (a keyframe first and whenever
//! one is asked for) and an Opus packet every 20 ms, each payload carrying its counter so receivers
//! can check it arrived intact and in sequence (`media::parse_vp8_payload` / `parse_opus_payload`).

use std::time::{Duration, Instant};

use str0m::rtp::ExtensionValues;

use super::media::{opus_payload, vp8_payload};
use super::peer::Str0mPeer;

pub struct Source {
    pub video_ssrc: u32,
    pub audio_ssrc: u32,
    pub started: Instant,
    /// VP8 frames (one packet each) and Opus packets sent so far.
    pub frames: u32,
    pub audio: u32,
    keyframe_requests_seen: usize,
}

impl Source {
    pub fn new(video_ssrc: u32, audio_ssrc: u32) -> Self {
        Self { video_ssrc, audio_ssrc, started: Instant::now(), frames: 0, audio: 0, keyframe_requests_seen: 0 }
    }

    /// Writes whatever is due by now on `publisher`.
    pub fn tick(&mut self, publisher: &mut Str0mPeer) -> anyhow::Result<()> {
        let elapsed = self.started.elapsed();
        if elapsed >= Duration::from_millis(33) * self.frames {
            let requests = publisher.keyframe_requests().len();
            let keyframe = self.frames == 0 || requests > self.keyframe_requests_seen;
            self.keyframe_requests_seen = requests;
            let (pt, n) = (publisher.media.vp8_pt, self.frames);
            let payload = vp8_payload(n, keyframe);
            publisher.write_rtp(
                self.video_ssrc,
                pt,
                7000 + u64::from(n),
                n * 3000,
                true,
                payload,
                Default::default(),
            )?;
            self.frames += 1;
        }
        if elapsed >= Duration::from_millis(20) * self.audio {
            let exts = ExtensionValues { audio_level: Some(-30), voice_activity: Some(true), ..Default::default() };
            let (pt, n) = (publisher.media.opus_pt, self.audio);
            publisher.write_rtp(self.audio_ssrc, pt, 9000 + u64::from(n), n * 960, false, opus_payload(n), exts)?;
            self.audio += 1;
        }
        Ok(())
    }
}
