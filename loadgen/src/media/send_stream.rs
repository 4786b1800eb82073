//! A publisher's outgoing stream: VP8-like video (frames at 30 fps split into packets of at most
//! [`MAX_DATAGRAM`] bytes on the wire, a keyframe burst every few seconds and on request) or
//! Opus-like audio (one packet per 20 ms). A simulcast publisher runs one such stream per encoding,
//! each L1T3 ([`super::vp8`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::probe;
use super::vp8::{self, FrameLayers, TEMPORAL_FRAME_WEIGHT_PERCENT};

/// Largest datagram a publisher sends, SRTP tag included.
pub const MAX_DATAGRAM: usize = 1200;
/// RTP header (12) + one-byte extension block with the mid (8).
const RTP_HEADER: usize = 20;
/// AEAD tag (or HMAC tag, which is shorter).
const SRTP_TAG: usize = 16;
/// Payload of every packet but a frame's last.
const MAX_PAYLOAD: usize = MAX_DATAGRAM - RTP_HEADER - SRTP_TAG;
/// The header extension id the load generator declares for the mid in `produce`.
pub const MID_EXTENSION_ID: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Audio,
    Video,
}

#[derive(Debug, Clone)]
pub struct SendStreamConfig {
    pub kind: Kind,
    pub ssrc: u32,
    pub payload_type: u8,
    pub mid: u8,
    /// Video bitrate in bit/s (audio ignores it).
    pub bitrate: u64,
    pub keyframe_interval: Duration,
    /// Video: three temporal layers (L1T3) with picture ids and TL0PICIDX, as a simulcast
    /// encoding; otherwise the plain one-byte descriptor.
    pub temporal_layers: bool,
    /// Video: the width and height a keyframe announces.
    pub resolution: (u16, u16),
}

pub struct SendStream {
    pub config: SendStreamConfig,
    seq: u16,
    counter: u32,
    next_frame: Instant,
    frames: u64,
    start: Instant,
    keyframe_requested: bool,
    last_keyframe: Option<Instant>,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub keyframes_sent: u64,
    pub last_rtp_timestamp: u32,
    paced: VecDeque<Paced>,
    /// L1T3: the last frame's layers and the frames since the last keyframe.
    layers: Option<FrameLayers>,
    frames_since_keyframe: u64,
    /// The pacer's media debt in bytes, as of `debt_at`: what it sent beyond its rate.
    debt: u64,
    debt_at: Instant,
}

/// A packet waiting for its paced send time.
#[derive(Debug, Clone, Copy)]
struct Paced {
    due: Instant,
    timestamp: u32,
    payload_len: usize,
    first: bool,
    keyframe: bool,
    last: bool,
    layers: Option<FrameLayers>,
}

const VIDEO_FPS: u64 = 30;
const AUDIO_PTIME: Duration = Duration::from_millis(20);
/// A keyframe is this many times the size of an average frame (what encoders roughly do).
const KEYFRAME_FACTOR: u64 = 5;
/// Keyframe requests closer together than this are served by one keyframe (as browsers throttle).
const MIN_KEYFRAME_GAP: Duration = Duration::from_millis(300);
/// WebRTC's pacer sends at 2.5 × the target bitrate.
const PACING_FACTOR_PERCENT: u64 = 250;
/// libwebrtc's pacer (`PacingController`, `send_burst_interval` = 40 ms by default since 2023)
/// sends at once as long as its media debt stays below the pacing rate × this: a delta frame leaves
/// in one burst, a keyframe's first ~12 kB (at 1 Mbit/s) too and the rest at the pacing rate.
const BURST_INTERVAL: Duration = Duration::from_millis(40);
/// libwebrtc caps the burst at 63 kB whatever the rate (socket buffers).
const MAX_BURST_BYTES: u64 = 63_000;

impl SendStream {
    pub fn new(config: SendStreamConfig, now: Instant, seed: u32) -> Self {
        Self {
            config,
            seq: seed as u16,
            counter: 0,
            next_frame: now,
            frames: 0,
            start: now,
            keyframe_requested: true,
            last_keyframe: None,
            packets_sent: 0,
            bytes_sent: 0,
            keyframes_sent: 0,
            last_rtp_timestamp: 0,
            paced: VecDeque::new(),
            layers: None,
            frames_since_keyframe: 0,
            debt: 0,
            debt_at: now,
        }
    }

    /// PLI or FIR from the worker.
    pub fn request_keyframe(&mut self) {
        self.keyframe_requested = true;
    }

    fn frame_interval(&self) -> Duration {
        match self.config.kind {
            Kind::Video => Duration::from_nanos(1_000_000_000 / VIDEO_FPS),
            Kind::Audio => AUDIO_PTIME,
        }
    }

    /// The size of the frame due now, whether it is a keyframe, and (L1T3) its layers, if one is
    /// due; advances the schedule (skipping frames a stalled loop missed rather than bursting them
    /// all at once).
    fn next_frame(&mut self, now: Instant) -> Option<(usize, bool, Option<FrameLayers>)> {
        if now < self.next_frame {
            return None;
        }
        let interval = self.frame_interval();
        self.next_frame += interval;
        if self.next_frame + interval < now {
            self.next_frame = now + interval;
        }
        self.frames += 1;
        match self.config.kind {
            Kind::Audio => Some((80, false, None)),
            Kind::Video => {
                let periodic = self.last_keyframe.is_none_or(|t| now >= t + self.config.keyframe_interval);
                let requested =
                    self.keyframe_requested && self.last_keyframe.is_none_or(|t| now >= t + MIN_KEYFRAME_GAP);
                let keyframe = periodic || requested;
                // Frames per keyframe period; delta frames shrink so the average stays at the bitrate.
                let per_period = (self.config.keyframe_interval.as_millis() as u64 * VIDEO_FPS / 1000).max(2);
                let average = self.config.bitrate / 8 / VIDEO_FPS;
                let delta = (average * per_period).saturating_sub(average * KEYFRAME_FACTOR) / (per_period - 1);
                if keyframe {
                    self.frames_since_keyframe = 0;
                }
                let layers =
                    self.config.temporal_layers.then(|| FrameLayers::next(self.layers, self.frames_since_keyframe));
                self.frames_since_keyframe += 1;
                self.layers = layers.or(self.layers);
                let size = if keyframe {
                    self.keyframe_requested = false;
                    self.last_keyframe = Some(now);
                    self.keyframes_sent += 1;
                    average * KEYFRAME_FACTOR
                } else if layers.is_some() {
                    // Each temporal layer's share of the bits (TL0 frames are the big ones).
                    let position = (self.frames_since_keyframe - 1) as usize % TEMPORAL_FRAME_WEIGHT_PERCENT.len();
                    delta * TEMPORAL_FRAME_WEIGHT_PERCENT[position] / 100
                } else {
                    delta
                };
                Some((size.max(100) as usize, keyframe, layers))
            }
        }
    }

    /// Queues the frame due at `now` (if any) and emits, through `emit`, every queued packet
    /// whose paced send time has come, each a plain RTP packet in a buffer with room for the SRTP
    /// tag.
    pub fn poll(&mut self, now: Instant, epoch: Instant, mut emit: impl FnMut(&mut [u8], usize)) {
        if let Some((size, keyframe, layers)) = self.next_frame(now) {
            self.queue_frame(now, size, keyframe, layers);
        }
        // Room for the SRTP tag the caller appends in place.
        let mut buf = [0u8; MAX_DATAGRAM + 64];
        while let Some(p) = self.paced.front().copied() {
            if p.due > now {
                break;
            }
            self.paced.pop_front();
            let len = self.write_packet(&mut buf, now - epoch, &p);
            self.packets_sent += 1;
            self.bytes_sent += len as u64;
            emit(&mut buf, len);
        }
    }

    /// Splits a frame into packets and gives each its send time as WebRTC's pacer would: at once
    /// while the pacer's debt allows a burst, then at 2.5 × the target bitrate (a keyframe of five
    /// average frames takes ~27 ms at 1 Mbit/s). Audio is not paced (nor is it in libwebrtc).
    fn queue_frame(&mut self, now: Instant, size: usize, keyframe: bool, layers: Option<FrameLayers>) {
        let clock = if self.config.kind == Kind::Video { 90_000 } else { 48_000 };
        let timestamp = ((now - self.start).as_micros() as u64 * clock / 1_000_000) as u32;
        self.last_rtp_timestamp = timestamp;
        let packets = size.div_ceil(MAX_PAYLOAD);
        // Bytes per second, and the debt the pacer may run up before it holds packets back.
        let rate = (self.config.bitrate * PACING_FACTOR_PERCENT / 100 / 8).max(1);
        let burst = (rate * BURST_INTERVAL.as_millis() as u64 / 1000).min(MAX_BURST_BYTES);
        let mut due = self.paced.back().map_or(now, |p| p.due.max(now));
        let mut remaining = size;
        for i in 0..packets {
            let payload_len = remaining.min(MAX_PAYLOAD);
            remaining -= payload_len;
            if self.config.kind == Kind::Video {
                self.repay_debt(due, rate);
                if self.debt >= burst {
                    due += Duration::from_nanos((self.debt - burst + 1) * 1_000_000_000 / rate);
                    self.repay_debt(due, rate);
                }
                self.debt += (payload_len + RTP_HEADER + SRTP_TAG) as u64;
            }
            self.paced.push_back(Paced {
                due,
                timestamp,
                payload_len,
                first: i == 0,
                keyframe,
                last: i + 1 == packets,
                layers,
            });
        }
    }

    /// The debt left at `at`, the pacer having paid it off at `rate` bytes per second since `debt_at`.
    fn repay_debt(&mut self, at: Instant, rate: u64) {
        if at <= self.debt_at {
            return;
        }
        let paid = at.duration_since(self.debt_at).as_nanos() as u64 * rate / 1_000_000_000;
        self.debt = self.debt.saturating_sub(paid);
        self.debt_at = at;
    }

    fn write_packet(&mut self, buf: &mut [u8], sent: Duration, p: &Paced) -> usize {
        buf[0] = 0x90; // V=2, X=1
        buf[1] = self.config.payload_type | if p.last { 0x80 } else { 0 };
        buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
        buf[4..8].copy_from_slice(&p.timestamp.to_be_bytes());
        buf[8..12].copy_from_slice(&self.config.ssrc.to_be_bytes());
        // One-byte header extensions (RFC 8285): the mid, one ASCII digit, then padding.
        buf[12..16].copy_from_slice(&[0xBE, 0xDE, 0, 1]);
        buf[16..20].copy_from_slice(&[MID_EXTENSION_ID << 4, b'0' + self.config.mid, 0, 0]);
        self.seq = self.seq.wrapping_add(1);
        let payload = &mut buf[RTP_HEADER..RTP_HEADER + p.payload_len.max(probe::LEN + vp8::MAX_HEADER_LEN)];
        let codec_header = match self.config.kind {
            // Opus TOC: SILK-only 20 ms, mono, one frame; contents are not decoded by anyone.
            Kind::Audio => {
                payload[0] = 0x08;
                1
            }
            // The VP8 payload descriptor and, on a frame's first packet, the frame tag: real VP8
            // structure for the worker's keyframe detection and layer selection.
            Kind::Video => vp8::write_header(payload, p.layers, p.first, p.keyframe, self.config.resolution),
        };
        probe::write(&mut payload[codec_header..], self.counter, sent);
        self.counter = self.counter.wrapping_add(1);
        RTP_HEADER + payload.len()
    }

    pub fn sequence_number(&self) -> u16 {
        self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(bitrate: u64) -> SendStreamConfig {
        SendStreamConfig {
            kind: Kind::Video,
            ssrc: 1,
            payload_type: 96,
            mid: 0,
            bitrate,
            keyframe_interval: Duration::from_secs(3),
            temporal_layers: false,
            resolution: (640, 480),
        }
    }

    #[test]
    fn a_keyframe_bursts_up_to_the_pacers_debt_then_is_paced() {
        let start = Instant::now();
        let mut s = SendStream::new(video(1_000_000), start, 0);
        let mut at = Vec::new();
        for ms in 0..60 {
            s.poll(start + Duration::from_millis(ms), start, |_, _| at.push(ms));
        }
        // A ~21 kB keyframe (18 packets): 12.5 kB (40 ms at 2.5 Mbit/s) leave at once, the rest at
        // 2.5 Mbit/s over the next ~27 ms; the next frame (33 ms) queues behind it.
        let at_once = at.iter().filter(|&&ms| ms == 0).count();
        assert!((10..=12).contains(&at_once), "{at:?}");
        let keyframe_end = at[17];
        assert!((20..=32).contains(&keyframe_end), "{at:?}");
        assert!(at.windows(2).all(|w| w[1] >= w[0]));
    }

    #[test]
    fn a_delta_frame_leaves_in_one_burst() {
        let start = Instant::now();
        let mut s = SendStream::new(video(1_000_000), start, 0);
        let mut at = Vec::new();
        for ms in 0..1_000 {
            s.poll(start + Duration::from_millis(ms), start, |_, len| at.push((ms, len)));
        }
        // Past the keyframe, each 30 fps frame (~4.2 kB: four packets) leaves in the millisecond it
        // was made.
        let late: Vec<_> = at.iter().filter(|(ms, _)| *ms > 200).collect();
        let mut frames = late.chunk_by(|a, b| a.0 == b.0).map(<[_]>::len).collect::<Vec<_>>();
        frames.pop();
        assert!(frames.len() > 20 && frames.iter().all(|&n| n == 4), "{frames:?}");
    }

    #[test]
    fn video_keeps_its_bitrate_and_packet_size() {
        let start = Instant::now();
        let mut s = SendStream::new(video(1_000_000), start, 0);
        let mut sizes = Vec::new();
        for ms in 0..9_000 {
            s.poll(start + Duration::from_millis(ms), start, |_, len| sizes.push(len));
        }
        let bits: usize = sizes.iter().map(|l| (l + SRTP_TAG) * 8).sum();
        let rate = bits as f64 / 9.0;
        assert!((850_000.0..1_150_000.0).contains(&rate), "{rate}");
        assert!(sizes.iter().all(|l| l + SRTP_TAG <= MAX_DATAGRAM));
        assert_eq!(s.keyframes_sent, 3);
    }

    #[test]
    fn keyframe_on_request_and_readable_probe() {
        let start = Instant::now();
        let mut s = SendStream::new(video(500_000), start, 0);
        for ms in 0..=390 {
            s.poll(start + Duration::from_millis(ms), start, |_, _| {});
        }
        s.request_keyframe();
        let mut first = None;
        s.poll(start + Duration::from_millis(400), start, |buf, len| {
            first.get_or_insert_with(|| buf[..len].to_vec());
        });
        let first = first.unwrap();
        assert_eq!(&first[20..24], &[0x10, 0x00, 0x00, 0x00]);
        assert_eq!(s.keyframes_sent, 2);
        let sent = probe::read(&first[31..], start).unwrap();
        assert_eq!(sent, start + Duration::from_millis(400));
    }

    #[test]
    fn a_simulcast_encoding_sends_l1t3_with_continuous_picture_ids() {
        let start = Instant::now();
        let config = SendStreamConfig { temporal_layers: true, resolution: (320, 180), ..video(150_000) };
        let mut s = SendStream::new(config, start, 0);
        let mut frames = Vec::new();
        let mut bytes_by_tid = [0usize; 3];
        for ms in 0..3_000 {
            s.poll(start + Duration::from_millis(ms), start, |buf, len| {
                let d = octo_worker::core::rtp::vp8::parse(&buf[RTP_HEADER..len]).unwrap();
                bytes_by_tid[usize::from(d.temporal_id)] += len;
                if d.start_of_frame {
                    frames.push((d.picture_id.unwrap(), d.tl0_pic_idx.unwrap(), d.temporal_id, d.layer_sync));
                }
            });
        }
        let tids: Vec<u8> = frames.iter().map(|f| f.2).take(8).collect();
        assert_eq!(tids, [0, 2, 1, 2, 0, 2, 1, 2]);
        assert!(frames.windows(2).all(|w| w[1].0 == (w[0].0 + 1) & 0x7fff), "picture ids continuous");
        assert!(frames.windows(2).all(|w| w[1].1 == w[0].1.wrapping_add(u8::from(w[1].2 == 0))), "TL0PICIDX");
        // Y on the frames that reference only TL0: the pattern's second and third.
        assert!(frames.iter().enumerate().all(|(i, f)| f.3 == matches!(i % 4, 1 | 2)));
        // TL0 carries most of the bits (60 % of the delta frames', plus the keyframe).
        let total: usize = bytes_by_tid.iter().sum();
        assert!(bytes_by_tid[0] * 100 / total >= 55, "{bytes_by_tid:?}");
        let rate = total as f64 * 8.0 / 3.0;
        assert!((120_000.0..180_000.0).contains(&rate), "{rate}");
    }
}
