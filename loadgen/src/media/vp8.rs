//! The VP8 payload header the load generator writes (RFC 7741 payload descriptor, then on a frame's
//! first packet the RFC 6386 frame tag) and reads back at a subscriber.
//!
//! Two shapes: the plain one (a one-byte descriptor, what a single-encoding publisher sends) and the
//! L1T3 one a simulcast encoding sends: X=1 with a 15-bit picture id, TL0PICIDX and TID/Y, the
//! temporal pattern 0,2,1,2 — what the worker's simulcast consumer reads to drop temporal layers and
//! keep picture ids continuous. A keyframe's header carries the encoding's resolution, which is how
//! a subscriber tells which encoding it is being sent (as a browser's decoder would).

/// The L1T3 temporal layer ids, frame by frame (libwebrtc's three-layer pattern).
pub const TEMPORAL_PATTERN: [u8; 4] = [0, 2, 1, 2];

/// Share of a GOP's bits per frame of the pattern, in percent of an average frame: libwebrtc gives
/// TL0 60 % of the bitrate, TL1 and TL2 20 % each, and TL2 has twice TL1's frames.
pub const TEMPORAL_FRAME_WEIGHT_PERCENT: [u64; 4] = [240, 40, 80, 40];

/// The frame a packet belongs to, as far as the descriptor says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameLayers {
    /// 15-bit picture id.
    pub picture_id: u16,
    pub tl0_pic_idx: u8,
    pub temporal_id: u8,
    /// Y: the frame references only TL0, so a receiver may start a higher temporal layer here.
    pub layer_sync: bool,
}

impl FrameLayers {
    /// The layers of the `index`-th frame since the last keyframe (the keyframe is 0), continuing
    /// `previous` (the last frame's, or `None` for the first frame sent).
    pub fn next(previous: Option<FrameLayers>, index: u64) -> FrameLayers {
        let position = (index % TEMPORAL_PATTERN.len() as u64) as usize;
        let temporal_id = TEMPORAL_PATTERN[position];
        let (picture_id, tl0) = previous.map_or((0x1234, 0x40), |p| ((p.picture_id + 1) & 0x7fff, p.tl0_pic_idx));
        FrameLayers {
            picture_id,
            tl0_pic_idx: if temporal_id == 0 { tl0.wrapping_add(1) } else { tl0 },
            temporal_id,
            // Frames 1 (TL2) and 2 (TL1) reference the TL0 frame before them; frame 3 (TL2)
            // references frame 2, so it is no place to start TL2.
            layer_sync: temporal_id > 0 && position != 3,
        }
    }
}

/// Writes the payload header of one packet into `out` and returns its length: the descriptor
/// (plain or, with `layers`, L1T3) and, on a frame's first packet, the frame tag — with the start
/// code and `resolution` on a keyframe. `out` must hold [`MAX_HEADER_LEN`] bytes.
pub fn write_header(
    out: &mut [u8],
    layers: Option<FrameLayers>,
    first: bool,
    keyframe: bool,
    resolution: (u16, u16),
) -> usize {
    let start = if first { 0x10 } else { 0x00 };
    let mut len = match layers {
        None => {
            out[0] = start;
            1
        }
        Some(l) => {
            // X, then I (M: 15 bits), L and T.
            out[0] = 0x80 | start;
            out[1] = 0xe0;
            out[2..4].copy_from_slice(&(0x8000 | l.picture_id).to_be_bytes());
            out[4] = l.tl0_pic_idx;
            out[5] = (l.temporal_id << 6) | if l.layer_sync { 0x20 } else { 0 };
            6
        }
    };
    if first && keyframe {
        // Frame tag with P=0 (keyframe), the start code, then 14-bit width and height (no scaling).
        let (w, h) = resolution;
        out[len..len + 10].copy_from_slice(&[0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0, 0, 0, 0]);
        out[len + 6..len + 8].copy_from_slice(&(w & 0x3fff).to_le_bytes());
        out[len + 8..len + 10].copy_from_slice(&(h & 0x3fff).to_le_bytes());
        len += 10;
    } else if first {
        // Frame tag with P=1: an interframe.
        out[len..len + 3].copy_from_slice(&[0x01, 0x00, 0x00]);
        len += 3;
    }
    len
}

/// The longest header [`write_header`] writes.
pub const MAX_HEADER_LEN: usize = 16;

/// What a subscriber reads from a packet's payload header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadHeader {
    /// Where the load generator's probe starts.
    pub len: usize,
    pub temporal_id: u8,
    /// A keyframe's width and height.
    pub keyframe_resolution: Option<(u16, u16)>,
}

/// Reads a payload header [`write_header`] wrote; `None` when it is truncated.
pub fn read_header(payload: &[u8]) -> Option<ReadHeader> {
    let &b0 = payload.first()?;
    let mut pos = 1;
    let mut temporal_id = 0;
    if b0 & 0x80 != 0 {
        let &x = payload.get(1)?;
        pos = 2;
        if x & 0x80 != 0 {
            pos += if payload.get(pos)? & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            pos += 1;
        }
        if x & 0x30 != 0 {
            temporal_id = payload.get(pos)? >> 6;
            pos += 1;
        }
    }
    let first = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    if !first {
        return Some(ReadHeader { len: pos, temporal_id, keyframe_resolution: None });
    }
    let tag = payload.get(pos..pos + 3)?;
    if tag[0] & 0x01 != 0 {
        return Some(ReadHeader { len: pos + 3, temporal_id, keyframe_resolution: None });
    }
    let key = payload.get(pos + 3..pos + 10)?;
    let w = u16::from_le_bytes([key[3], key[4]]) & 0x3fff;
    let h = u16::from_le_bytes([key[5], key[6]]) & 0x3fff;
    Some(ReadHeader { len: pos + 10, temporal_id, keyframe_resolution: Some((w, h)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use octo_worker::core::rtp::keyframe::{KeyframeCodec, is_keyframe};
    use octo_worker::core::rtp::vp8;

    #[test]
    fn the_l1t3_pattern_counts_tl0_and_marks_sync_frames() {
        let mut previous = None;
        let mut frames = Vec::new();
        for i in 0..8 {
            let f = FrameLayers::next(previous, i);
            frames.push((f.temporal_id, f.tl0_pic_idx, f.layer_sync));
            previous = Some(f);
        }
        let tl0 = frames[0].1;
        assert_eq!(frames[..4], [(0, tl0, false), (2, tl0, true), (1, tl0, true), (2, tl0, false)]);
        assert_eq!(frames[4], (0, tl0.wrapping_add(1), false));
        assert_eq!(previous.unwrap().picture_id, 0x1234 + 7);
    }

    #[test]
    fn the_worker_reads_what_the_load_generator_writes() {
        let layers = FrameLayers { picture_id: 0x7ffe, tl0_pic_idx: 9, temporal_id: 1, layer_sync: true };
        let mut buf = [0u8; 32];
        let n = write_header(&mut buf, Some(layers), true, true, (1280, 720));
        assert!(is_keyframe(KeyframeCodec::Vp8, &buf[..n + 4]));
        let d = vp8::parse(&buf[..n]).unwrap();
        assert_eq!(d.picture_id, Some(0x7ffe));
        assert!(d.picture_id_15_bits && d.start_of_frame && d.layer_sync);
        assert_eq!((d.tl0_pic_idx, d.temporal_id), (Some(9), 1));
        let read = read_header(&buf[..n]).unwrap();
        assert_eq!(read, ReadHeader { len: n, temporal_id: 1, keyframe_resolution: Some((1280, 720)) });

        let n = write_header(&mut buf, Some(layers), true, false, (1280, 720));
        assert!(!is_keyframe(KeyframeCodec::Vp8, &buf[..n + 4]));
        assert_eq!(read_header(&buf[..n]).unwrap().len, n);
        let n = write_header(&mut buf, Some(layers), false, false, (1280, 720));
        assert_eq!((n, vp8::parse(&buf[..n]).unwrap().start_of_frame), (6, false));
    }

    #[test]
    fn the_plain_header_is_unchanged() {
        let mut buf = [0u8; 32];
        let n = write_header(&mut buf, None, true, true, (640, 480));
        assert_eq!(&buf[..n], &[0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]);
        assert_eq!(write_header(&mut buf, None, true, false, (640, 480)), 4);
        assert_eq!(&buf[..4], &[0x10, 0x01, 0x00, 0x00]);
        assert_eq!(write_header(&mut buf, None, false, false, (640, 480)), 1);
        assert_eq!(read_header(&[0x10, 0x01, 0, 0]).unwrap().len, 4);
    }
}
