//! RTP on the wire: the header view, the in-place rewrites of the forwarding path, and the codec
//! payload readers (VP8 descriptor, keyframe detection).

use super::input::records;
use crate::core::rtp::keyframe::{KeyframeCodec, is_keyframe};
use crate::core::rtp::packet::{ExtensionIdMap, RtpHeader, RtpPacket};
use crate::core::rtp::vp8::{self, Vp8Rewriter};
use crate::core::transmit::BUFFER_SIZE;

/// One packet through the read-only header view and every extension reader.
pub fn rtp_header(data: &[u8]) -> bool {
    let Ok(h) = RtpHeader::parse(data) else { return false };
    let _ = (h.marker(), h.payload_type(), h.sequence_number(), h.timestamp(), h.ssrc(), h.has_padding());
    let _ = (h.csrcs().count(), h.header_len(), h.len(), h.body().len(), h.payload());
    let _ = (h.extension_profile(), h.extension_form(), h.extensions().count());
    for id in 0..=15 {
        let _ = (h.extension(id), h.mid(id), h.rid(id), h.repaired_rid(id), h.abs_send_time(id));
        let _ = (h.transport_wide_cc_seq(id), h.audio_level(id), h.video_orientation(id), h.toffset(id));
    }
    true
}

/// The forwarding path's rewrites on one packet. The first 4 bytes choose the parameters (an
/// extension id and value, an id remap), the rest is the packet, copied into a buffer with the
/// worker's headroom. Each successful rewrite must leave a packet that parses again and carries
/// what was written: a rewrite that corrupts a packet is a bug even when it does not panic.
pub fn rtp_rewrite(data: &[u8]) -> bool {
    let Some((&[id, value_len, remap_from, remap_to], packet)) = data.split_first_chunk::<4>() else { return false };
    let mut buf = vec![0u8; BUFFER_SIZE];
    let len = packet.len().min(BUFFER_SIZE);
    buf[..len].copy_from_slice(&packet[..len]);
    let Ok(mut p) = RtpPacket::parse(&mut buf, len) else { return false };
    let payload = p.payload().to_vec();

    p.set_sequence_number(p.header().sequence_number().wrapping_add(1));
    p.set_timestamp(p.header().timestamp().wrapping_add(3000));
    p.set_marker(!p.header().marker());
    let value: Vec<u8> = (0..value_len % 20).collect();
    if p.set_extension(id, &value).is_ok() {
        assert_eq!(p.header().extension(id), Some(&value[..]), "set_extension lost its value");
        assert_eq!(p.payload(), &payload[..], "set_extension changed the payload");
        assert!(RtpHeader::parse(p.as_bytes()).is_ok(), "set_extension left an unparsable packet");
    }
    let _ = p.set_transport_wide_cc_seq(id.wrapping_add(1), 0x1234);
    let _ = p.set_abs_send_time(id.wrapping_add(2), 0x00ab_cdef);

    let mut map: ExtensionIdMap = std::array::from_fn(|i| i as u8);
    map[usize::from(remap_from)] = remap_to;
    if p.rewrite_extension_ids(&map).is_ok() {
        assert!(RtpHeader::parse(p.as_bytes()).is_ok(), "rewrite_extension_ids left an unparsable packet");
    }

    let before = p.as_bytes().to_vec();
    let (pt, ssrc, seq) = (p.header().payload_type(), p.header().ssrc(), p.header().sequence_number());
    if p.rtx_wrap(97, 0xdead_beef, 7).is_ok() {
        assert_eq!(p.rtx_unwrap(pt, ssrc), Ok(seq), "rtx_unwrap did not return the original sequence number");
        assert_eq!(p.as_bytes(), &before[..], "rtx_wrap then rtx_unwrap changed the packet");
    }
    true
}

/// A stream of VP8 payloads (see [`records`]) through the descriptor reader and a consumer's
/// picture id rewriter; temporal layers above the base are dropped, as a capped consumer does.
/// What is written must read back.
pub fn vp8(data: &[u8]) -> bool {
    let mut rewriter = Vp8Rewriter::default();
    let mut parsed = false;
    for (i, payload) in records(data).enumerate() {
        let Some(d) = vp8::parse(payload) else { continue };
        parsed = true;
        let _ = d.picture_id_modulus();
        if i == 0 {
            rewriter.sync(&d);
        }
        if d.temporal_id > 0 {
            rewriter.drop(&d);
            continue;
        }
        let (picture_id, tl0) = rewriter.forward(&d);
        let mut out = payload.to_vec();
        d.rewrite(&mut out, picture_id, tl0);
        assert_eq!(out.len(), payload.len());
        let again = vp8::parse(&out).expect("a rewritten descriptor must parse");
        let mask = if d.picture_id_15_bits { 0x7fff } else { 0x7f };
        assert_eq!(again.picture_id, d.picture_id.map(|_| picture_id & mask), "picture id not written");
        assert_eq!(again.tl0_pic_idx, d.tl0_pic_idx.map(|_| tl0), "TL0PICIDX not written");
    }
    parsed
}

/// One payload through every codec's keyframe detector, and the bytes as a MIME type.
pub fn keyframe(data: &[u8]) -> bool {
    if let Ok(mime) = std::str::from_utf8(data) {
        let _ = KeyframeCodec::from_mime_type(mime);
    }
    let codecs = [KeyframeCodec::Vp8, KeyframeCodec::Vp9, KeyframeCodec::H264, KeyframeCodec::Av1];
    codecs.iter().filter(|&&c| is_keyframe(c, data)).count() > 0
}
