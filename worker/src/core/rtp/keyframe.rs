//! Keyframe detection from the first bytes of an RTP payload: a new or resumed video consumer drops
//! packets until one of these arrives, because forwarding from the middle of a GOP freezes browsers.
//!
//! Each check reads only the payload descriptor / header of one packet; a truncated or malformed
//! descriptor is "not a keyframe", never a panic.

/// The video codecs whose keyframes we recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyframeCodec {
    Vp8,
    Vp9,
    H264,
    Av1,
}

impl KeyframeCodec {
    /// From an RTP codec MIME type such as `video/VP8` (case-insensitive); `None` for audio, RTX and
    /// anything else.
    pub fn from_mime_type(mime_type: &str) -> Option<Self> {
        const CODECS: [(&str, KeyframeCodec); 4] = [
            ("video/VP8", KeyframeCodec::Vp8),
            ("video/VP9", KeyframeCodec::Vp9),
            ("video/H264", KeyframeCodec::H264),
            ("video/AV1", KeyframeCodec::Av1),
        ];
        CODECS.iter().find(|(name, _)| name.eq_ignore_ascii_case(mime_type)).map(|&(_, codec)| codec)
    }
}

/// Whether this packet starts a keyframe (or, for H264, carries an SPS or an IDR slice).
pub fn is_keyframe(codec: KeyframeCodec, payload: &[u8]) -> bool {
    match codec {
        KeyframeCodec::Vp8 => vp8_is_keyframe(payload),
        KeyframeCodec::Vp9 => vp9_is_keyframe(payload),
        KeyframeCodec::H264 => h264_is_keyframe(payload),
        KeyframeCodec::Av1 => av1_is_keyframe(payload),
    }
}

/// VP8 (RFC 7741): the payload descriptor, then on the first packet of partition 0 (S=1, PID=0) the
/// VP8 payload header whose P bit (inverse key frame flag) is 0 for a keyframe. A keyframe's frame tag
/// is followed by the start code 0x9d 0x01 0x2a (RFC 6386 §9.1), which we also require so that garbage
/// with one clear bit is not taken for a keyframe.
fn vp8_is_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else { return false };
    let start_of_partition = b0 & 0x10 != 0;
    let partition_id = b0 & 0x07;
    if !start_of_partition || partition_id != 0 {
        return false;
    }
    let mut pos = 1;
    if b0 & 0x80 != 0 {
        // X: extension byte with I, L, T, K.
        let Some(&x) = payload.get(pos) else { return false };
        pos += 1;
        if x & 0x80 != 0 {
            // I: picture id, 7 bits or (M bit set) 15 bits.
            let Some(&pic) = payload.get(pos) else { return false };
            pos += if pic & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            // L: TL0PICIDX.
            pos += 1;
        }
        if x & 0x30 != 0 {
            // T or K: one byte of TID / Y / KEYIDX.
            pos += 1;
        }
    }
    match payload.get(pos..pos + 6) {
        Some(&[tag, _, _, 0x9d, 0x01, 0x2a]) => tag & 0x01 == 0,
        _ => false,
    }
}

/// VP9 (RFC 9628): the first packet of a picture (B=1) that is not inter-picture predicted (P=0),
/// in the base spatial layer when layer indices are present. The descriptor is walked to its end so a
/// truncated one is rejected rather than misread.
fn vp9_is_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else { return false };
    let picture_id = b0 & 0x80 != 0;
    let inter_predicted = b0 & 0x40 != 0;
    let layer_indices = b0 & 0x20 != 0;
    let flexible = b0 & 0x10 != 0;
    let begin_of_frame = b0 & 0x08 != 0;
    let scalability_structure = b0 & 0x02 != 0;
    if !begin_of_frame || inter_predicted {
        return false;
    }
    let mut pos = 1;
    if picture_id {
        let Some(&pic) = payload.get(pos) else { return false };
        pos += if pic & 0x80 != 0 { 2 } else { 1 };
    }
    if layer_indices {
        let Some(&layers) = payload.get(pos) else { return false };
        let spatial_id = (layers >> 1) & 0x07;
        if spatial_id != 0 {
            return false;
        }
        // Non-flexible mode adds TL0PICIDX.
        pos += if flexible { 1 } else { 2 };
    }
    // Flexible mode P_DIFF bytes exist only when P=1, which was rejected above.
    if scalability_structure {
        let Some(&ss) = payload.get(pos) else { return false };
        pos += 1;
        let spatial_layers = usize::from(ss >> 5) + 1;
        if ss & 0x10 != 0 {
            // Y: width and height (16 bits each) per spatial layer.
            pos += 4 * spatial_layers;
        }
        if ss & 0x08 != 0 {
            // G: picture group description.
            let Some(&groups) = payload.get(pos) else { return false };
            pos += 1;
            for _ in 0..groups {
                let Some(&pg) = payload.get(pos) else { return false };
                pos += 1 + usize::from((pg >> 2) & 0x03);
            }
        }
    }
    // Something of the frame itself must follow the descriptor.
    pos < payload.len()
}

/// H264 (RFC 6184): an IDR slice (NAL type 5) or an SPS (7), alone, inside a STAP-A (24) or at the
/// start of an FU-A (28).
fn h264_is_keyframe(payload: &[u8]) -> bool {
    const IDR: u8 = 5;
    const SPS: u8 = 7;
    const STAP_A: u8 = 24;
    const FU_A: u8 = 28;
    let is_key_type = |t: u8| t == IDR || t == SPS;
    let Some(&nal) = payload.first() else { return false };
    match nal & 0x1f {
        STAP_A => {
            let mut rest = payload.get(1..).unwrap_or_default();
            while let [hi, lo, tail @ ..] = rest {
                let size = usize::from(u16::from_be_bytes([*hi, *lo]));
                let Some(unit) = tail.get(..size) else { return false };
                if unit.first().is_some_and(|&h| is_key_type(h & 0x1f)) {
                    return true;
                }
                rest = tail.get(size..).unwrap_or_default();
            }
            false
        }
        FU_A => payload.get(1).is_some_and(|&fu| fu & 0x80 != 0 && is_key_type(fu & 0x1f)),
        t => is_key_type(t),
    }
}

/// AV1 (RTP payload format for AV1, §4.4): the N bit of the aggregation header marks the first packet
/// of a coded video sequence, which starts with a keyframe.
fn av1_is_keyframe(payload: &[u8]) -> bool {
    payload.first().is_some_and(|&h| h & 0x08 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// VP8 keyframe header: frame tag with P=0, then the start code and 4 bytes of dimensions.
    const VP8_KEY: [u8; 10] = [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01];

    fn vp8(descriptor: &[u8], header: &[u8]) -> Vec<u8> {
        [descriptor, header].concat()
    }

    #[test]
    fn mime_types() {
        assert_eq!(KeyframeCodec::from_mime_type("video/VP8"), Some(KeyframeCodec::Vp8));
        assert_eq!(KeyframeCodec::from_mime_type("VIDEO/vp9"), Some(KeyframeCodec::Vp9));
        assert_eq!(KeyframeCodec::from_mime_type("video/h264"), Some(KeyframeCodec::H264));
        assert_eq!(KeyframeCodec::from_mime_type("video/Av1"), Some(KeyframeCodec::Av1));
        for other in ["audio/opus", "video/rtx", "video/VP8X", "VP8", ""] {
            assert_eq!(KeyframeCodec::from_mime_type(other), None, "{other}");
        }
    }

    #[test]
    fn vp8_minimal_descriptor() {
        assert!(is_keyframe(KeyframeCodec::Vp8, &vp8(&[0x10], &VP8_KEY)));
        // Interframe: P bit set.
        let mut inter = VP8_KEY;
        inter[0] |= 0x01;
        assert!(!is_keyframe(KeyframeCodec::Vp8, &vp8(&[0x10], &inter)));
        // Not the start of a partition, or not partition 0.
        assert!(!is_keyframe(KeyframeCodec::Vp8, &vp8(&[0x00], &VP8_KEY)));
        assert!(!is_keyframe(KeyframeCodec::Vp8, &vp8(&[0x11], &VP8_KEY)));
        // No start code.
        let mut no_code = VP8_KEY;
        no_code[3] = 0;
        assert!(!is_keyframe(KeyframeCodec::Vp8, &vp8(&[0x10], &no_code)));
    }

    #[test]
    fn vp8_extended_descriptor_fields_are_skipped() {
        // X with I (15-bit picture id, M set), L and T/K.
        let d = [0x90, 0xf0, 0x80 | 0x12, 0x34, 0x07, 0x20];
        assert!(is_keyframe(KeyframeCodec::Vp8, &vp8(&d, &VP8_KEY)));
        // 7-bit picture id only.
        assert!(is_keyframe(KeyframeCodec::Vp8, &vp8(&[0x90, 0x80, 0x12], &VP8_KEY)));
        // K only (no T) still takes one byte.
        assert!(is_keyframe(KeyframeCodec::Vp8, &vp8(&[0x90, 0x10, 0x05], &VP8_KEY)));
        // Misreading the 15-bit picture id as 7-bit would land on 0x34, not the frame tag.
        let mut inter = VP8_KEY;
        inter[0] |= 0x01;
        assert!(!is_keyframe(KeyframeCodec::Vp8, &vp8(&d, &inter)));
    }

    #[test]
    fn vp8_truncated() {
        let full = vp8(&[0x90, 0xf0, 0x80, 0x34, 0x07, 0x20], &VP8_KEY);
        for cut in 0..12 {
            assert!(!is_keyframe(KeyframeCodec::Vp8, &full[..cut]), "{cut}");
        }
        assert!(is_keyframe(KeyframeCodec::Vp8, &full[..12]));
    }

    #[test]
    fn vp9_flags() {
        // B=1, P=0, no optional fields.
        assert!(is_keyframe(KeyframeCodec::Vp9, &[0x08, 0x82]));
        // P=1.
        assert!(!is_keyframe(KeyframeCodec::Vp9, &[0x48, 0x82]));
        // Not the beginning of a frame.
        assert!(!is_keyframe(KeyframeCodec::Vp9, &[0x04, 0x82]));
        // I with a 15-bit picture id, L in non-flexible mode (layer byte + TL0PICIDX), SID 0.
        assert!(is_keyframe(KeyframeCodec::Vp9, &[0xa8, 0x81, 0x23, 0x00, 0x05, 0x82]));
        // Same but spatial layer 1: not where a keyframe starts.
        assert!(!is_keyframe(KeyframeCodec::Vp9, &[0xa8, 0x81, 0x23, 0x02, 0x05, 0x82]));
        // Flexible mode: the layer byte has no TL0PICIDX.
        assert!(is_keyframe(KeyframeCodec::Vp9, &[0xb8, 0x01, 0x00, 0x82]));
        // Descriptor with nothing after it.
        assert!(!is_keyframe(KeyframeCodec::Vp9, &[0xb8, 0x01, 0x00]));
        assert!(!is_keyframe(KeyframeCodec::Vp9, &[]));
    }

    #[test]
    fn vp9_scalability_structure() {
        // V: N_S = 2 layers, Y (2 × 4 bytes of sizes), G with 2 picture groups: one with R=1, one R=0.
        let mut p = vec![0x8a, 0x01, 0x30 | 0x08 | 0x20];
        p.extend([0x01, 0x40, 0x00, 0xf0, 0x02, 0x80, 0x01, 0xe0]);
        p.extend([2, 0x04, 0x01, 0x00]);
        p.push(0x82);
        assert!(is_keyframe(KeyframeCodec::Vp9, &p));
        for cut in 0..p.len() {
            assert!(!is_keyframe(KeyframeCodec::Vp9, &p[..cut]), "{cut}");
        }
    }

    #[test]
    fn h264_single_nal_units() {
        assert!(is_keyframe(KeyframeCodec::H264, &[0x65, 0x88]));
        assert!(is_keyframe(KeyframeCodec::H264, &[0x67, 0x42]));
        assert!(!is_keyframe(KeyframeCodec::H264, &[0x68, 0xce])); // PPS
        assert!(!is_keyframe(KeyframeCodec::H264, &[0x41, 0x9a])); // non-IDR slice
        assert!(!is_keyframe(KeyframeCodec::H264, &[]));
    }

    #[test]
    fn h264_stap_a() {
        // STAP-A: SPS (3 bytes), PPS (2 bytes).
        let stap = [0x78, 0x00, 0x03, 0x67, 0x42, 0x00, 0x00, 0x02, 0x68, 0xce];
        assert!(is_keyframe(KeyframeCodec::H264, &stap));
        // IDR as the second unit.
        let stap2 = [0x78, 0x00, 0x02, 0x68, 0xce, 0x00, 0x02, 0x65, 0x88];
        assert!(is_keyframe(KeyframeCodec::H264, &stap2));
        // Only non-key units.
        let stap3 = [0x78, 0x00, 0x02, 0x68, 0xce, 0x00, 0x02, 0x41, 0x9a];
        assert!(!is_keyframe(KeyframeCodec::H264, &stap3));
        // A size that runs past the packet hides the unit behind it.
        let lying = [0x78, 0x00, 0x09, 0x68, 0xce, 0x00, 0x02, 0x65, 0x88];
        assert!(!is_keyframe(KeyframeCodec::H264, &lying));
        for cut in 0..stap2.len() - 1 {
            assert!(!is_keyframe(KeyframeCodec::H264, &stap2[..cut]), "{cut}");
        }
    }

    #[test]
    fn h264_fu_a() {
        assert!(is_keyframe(KeyframeCodec::H264, &[0x7c, 0x85, 0xb8]));
        assert!(is_keyframe(KeyframeCodec::H264, &[0x7c, 0x87]));
        // Middle and end fragments of an IDR are not where to start.
        assert!(!is_keyframe(KeyframeCodec::H264, &[0x7c, 0x05, 0xb8]));
        assert!(!is_keyframe(KeyframeCodec::H264, &[0x7c, 0x45, 0xb8]));
        // Start of a non-IDR slice.
        assert!(!is_keyframe(KeyframeCodec::H264, &[0x7c, 0x81, 0xb8]));
        assert!(!is_keyframe(KeyframeCodec::H264, &[0x7c]));
    }

    #[test]
    fn av1_new_coded_video_sequence() {
        assert!(is_keyframe(KeyframeCodec::Av1, &[0x18, 0x0a]));
        assert!(!is_keyframe(KeyframeCodec::Av1, &[0x10, 0x32]));
        assert!(!is_keyframe(KeyframeCodec::Av1, &[]));
    }

    proptest! {
        #[test]
        fn random_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            for codec in [KeyframeCodec::Vp8, KeyframeCodec::Vp9, KeyframeCodec::H264, KeyframeCodec::Av1] {
                let _ = is_keyframe(codec, &bytes);
            }
        }
    }
}
