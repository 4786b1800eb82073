//! RTP packets (RFC 3550) as views over caller buffers, with RFC 8285 header extensions and RFC 4588
//! retransmission (RTX) wrapping.
//!
//! The forwarding path parses a packet once per consumer and rewrites it in place, so a view holds only
//! offsets: no allocation, no copy. A caller buffer longer than the packet is headroom the packet may
//! grow into (a longer `mid`, the RTX original sequence number, an extension element the producer did
//! not send).

use thiserror::Error;

/// Length of the fixed RTP header.
pub const RTP_FIXED_HEADER_LEN: usize = 12;

/// Maps an incoming extension id (the index) to an outgoing id (the value); 0 drops the element.
/// An SFU builds one per producer→consumer pair from the two negotiations.
pub type ExtensionIdMap = [u8; 256];

/// RFC 8285 one-byte form marker in the "defined by profile" field.
const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// RFC 8285 two-byte form: 0x100 followed by four application bits.
const TWO_BYTE_PROFILE: u16 = 0x1000;
const TWO_BYTE_PROFILE_MASK: u16 = 0xFFF0;
/// One-byte form ids run 1..=14: 0 is padding and 15 ends the block.
const ONE_BYTE_MAX_ID: u8 = 14;
const ONE_BYTE_RESERVED_ID: u8 = 15;
/// One-byte form lengths run 1..=16 (the 4-bit field holds length - 1).
const ONE_BYTE_MAX_LEN: usize = 16;

const X_BIT: u8 = 0x10;
const P_BIT: u8 = 0x20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    #[error("RTP packet of {0} bytes is shorter than the fixed header")]
    TooShort(usize),
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    #[error("CSRC list of {0} entries runs past the packet")]
    CsrcOverflow(u8),
    #[error("header extension runs past the packet")]
    ExtensionOverflow,
    #[error("padding length {0} is zero or runs into the header")]
    BadPadding(u8),
    #[error("packet length {len} exceeds its buffer of {capacity} bytes")]
    LengthExceedsBuffer { len: usize, capacity: usize },
    #[error("header extension id {0} cannot be sent")]
    InvalidExtensionId(u8),
    #[error("header extension value of {0} bytes cannot be encoded")]
    InvalidExtensionLength(usize),
    #[error("header extension profile {0:#06x} is not RFC 8285")]
    UnsupportedExtensionProfile(u16),
    #[error("header extension block would exceed the 16-bit length field")]
    ExtensionBlockTooLarge,
    #[error("packet needs {needed} bytes but its buffer holds {capacity}")]
    NoHeadroom { needed: usize, capacity: usize },
    #[error("RTX payload of {0} bytes has no original sequence number")]
    RtxPayloadTooShort(usize),
}

/// The two RFC 8285 element encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionForm {
    /// Profile 0xBEDE: 4-bit id (1..=14), 4-bit length - 1; values of 1..=16 bytes.
    OneByte,
    /// Profile 0x100X: 8-bit id (1..=255), 8-bit length; values of 0..=255 bytes. Needs
    /// `a=extmap-allow-mixed` on the receiving side.
    TwoByte,
}

impl ExtensionForm {
    fn header_size(self) -> usize {
        match self {
            ExtensionForm::OneByte => 1,
            ExtensionForm::TwoByte => 2,
        }
    }
}

/// Audio level (RFC 6464): voice activity flag and level in -dBov (0 loudest, 127 silence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioLevel {
    pub voice: bool,
    pub level: u8,
}

/// Coordination of video orientation (3GPP TS 26.114, `urn:3gpp:video-orientation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoOrientation {
    /// C bit: the back-facing camera.
    pub back_camera: bool,
    /// F bit: horizontally flipped.
    pub flipped: bool,
    /// Clockwise rotation in degrees: 0, 90, 180 or 270.
    pub rotation: u16,
}

/// Where the parts of a packet are. Copy, so a read-only view of a mutable packet is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// End of the CSRC list, where the extension block (if X is set) begins.
    csrc_end: usize,
    /// Start of the payload: the end of the header including the extension block.
    header_len: usize,
    /// Trailing padding bytes (count byte included); 0 when P is clear or padding was not checked.
    padding_len: usize,
    /// Total packet length.
    len: usize,
}

fn parse_layout(pkt: &[u8], check_padding: bool) -> Result<Layout, RtpError> {
    let len = pkt.len();
    let Some(&b0) = pkt.first() else { return Err(RtpError::TooShort(0)) };
    if len < RTP_FIXED_HEADER_LEN {
        return Err(RtpError::TooShort(len));
    }
    if b0 >> 6 != 2 {
        return Err(RtpError::BadVersion(b0 >> 6));
    }
    let csrc_count = b0 & 0x0f;
    let csrc_end = RTP_FIXED_HEADER_LEN + 4 * usize::from(csrc_count);
    if csrc_end > len {
        return Err(RtpError::CsrcOverflow(csrc_count));
    }
    let mut header_len = csrc_end;
    if b0 & X_BIT != 0 {
        let words = read_u16(pkt, csrc_end + 2).ok_or(RtpError::ExtensionOverflow)?;
        header_len = csrc_end + 4 + 4 * usize::from(words);
        if header_len > len {
            return Err(RtpError::ExtensionOverflow);
        }
    }
    let mut padding_len = 0;
    if check_padding && b0 & P_BIT != 0 {
        let count = pkt[len - 1];
        padding_len = usize::from(count);
        if count == 0 || header_len + padding_len > len {
            return Err(RtpError::BadPadding(count));
        }
    }
    Ok(Layout { csrc_end, header_len, padding_len, len })
}

#[inline]
fn read_u16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

#[inline]
fn fits_one_byte(id: u8, len: usize) -> bool {
    (1..=ONE_BYTE_MAX_ID).contains(&id) && (1..=ONE_BYTE_MAX_LEN).contains(&len)
}

/// One extension element, as offsets into the extension data (the block after its 4-byte header).
#[derive(Debug, Clone, Copy)]
struct RawElement {
    start: usize,
    id: u8,
    value_start: usize,
    value_end: usize,
}

/// Steps over padding to the next element; stops (for good) at the reserved id 15 or at an element
/// that claims more bytes than the block holds.
fn next_element(data: &[u8], form: ExtensionForm, pos: &mut usize) -> Option<RawElement> {
    loop {
        let start = *pos;
        let first = *data.get(start)?;
        let (id, value_start, value_len) = match form {
            ExtensionForm::OneByte => {
                let id = first >> 4;
                if id == 0 {
                    // Padding: a single byte whatever its length nibble says.
                    *pos = start + 1;
                    continue;
                }
                if id == ONE_BYTE_RESERVED_ID {
                    *pos = data.len();
                    return None;
                }
                (id, start + 1, usize::from(first & 0x0f) + 1)
            }
            ExtensionForm::TwoByte => {
                if first == 0 {
                    *pos = start + 1;
                    continue;
                }
                let Some(&len) = data.get(start + 1) else {
                    *pos = data.len();
                    return None;
                };
                (first, start + 2, usize::from(len))
            }
        };
        let value_end = value_start + value_len;
        if value_end > data.len() {
            *pos = data.len();
            return None;
        }
        *pos = value_end;
        return Some(RawElement { start, id, value_start, value_end });
    }
}

/// The form of the packet's extension block: `Ok(None)` without one, `Err(profile)` for a block that is
/// not RFC 8285.
fn extension_form(pkt: &[u8], layout: &Layout) -> Result<Option<ExtensionForm>, u16> {
    if pkt.first().is_none_or(|b0| b0 & X_BIT == 0) {
        return Ok(None);
    }
    match read_u16(pkt, layout.csrc_end) {
        Some(ONE_BYTE_PROFILE) => Ok(Some(ExtensionForm::OneByte)),
        Some(p) if p & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE => Ok(Some(ExtensionForm::TwoByte)),
        Some(p) => Err(p),
        None => Ok(None),
    }
}

/// Iterator over RFC 8285 extension elements as `(id, value)`; padding is skipped.
#[derive(Debug, Clone)]
pub struct Extensions<'a> {
    data: &'a [u8],
    form: Option<ExtensionForm>,
    pos: usize,
}

impl<'a> Iterator for Extensions<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let e = next_element(self.data, self.form?, &mut self.pos)?;
        Some((e.id, self.data.get(e.value_start..e.value_end)?))
    }
}

/// A read-only view of an RTP packet. It does not check padding, because in an SRTP packet the padding
/// count is encrypted and the last bytes are the authentication tag: a load generator can read the
/// headers of what it receives without decrypting. [`RtpHeader::payload`] checks padding on demand.
#[derive(Debug, Clone, Copy)]
pub struct RtpHeader<'a> {
    pkt: &'a [u8],
    layout: Layout,
}

impl<'a> RtpHeader<'a> {
    /// Validates version, CSRC count and extension block bounds of the packet `pkt`.
    pub fn parse(pkt: &'a [u8]) -> Result<Self, RtpError> {
        Ok(Self { pkt, layout: parse_layout(pkt, false)? })
    }

    #[inline]
    pub fn marker(&self) -> bool {
        self.pkt[1] & 0x80 != 0
    }

    #[inline]
    pub fn payload_type(&self) -> u8 {
        self.pkt[1] & 0x7f
    }

    #[inline]
    pub fn sequence_number(&self) -> u16 {
        u16::from_be_bytes([self.pkt[2], self.pkt[3]])
    }

    #[inline]
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.pkt[4], self.pkt[5], self.pkt[6], self.pkt[7]])
    }

    #[inline]
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.pkt[8], self.pkt[9], self.pkt[10], self.pkt[11]])
    }

    #[inline]
    pub fn has_padding(&self) -> bool {
        self.pkt[0] & P_BIT != 0
    }

    #[inline]
    pub fn has_extension(&self) -> bool {
        self.pkt[0] & X_BIT != 0
    }

    #[inline]
    pub fn csrc_count(&self) -> u8 {
        self.pkt[0] & 0x0f
    }

    pub fn csrcs(&self) -> impl Iterator<Item = u32> + use<'a> {
        let list = self.pkt.get(RTP_FIXED_HEADER_LEN..self.layout.csrc_end).unwrap_or_default();
        list.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// Fixed header + CSRCs + extension block: the payload offset.
    #[inline]
    pub fn header_len(&self) -> usize {
        self.layout.header_len
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.layout.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.layout.len == 0
    }

    /// Everything after the header, padding (or an SRTP tag) included.
    #[inline]
    pub fn body(&self) -> &'a [u8] {
        self.pkt.get(self.layout.header_len..).unwrap_or_default()
    }

    /// The payload without padding, checking the padding count (meaningful on plain RTP only).
    pub fn payload(&self) -> Result<&'a [u8], RtpError> {
        let body = self.body();
        if !self.has_padding() {
            return Ok(body);
        }
        let count = body.last().copied().unwrap_or(0);
        let end = body.len().checked_sub(usize::from(count)).filter(|_| count != 0);
        end.and_then(|end| body.get(..end)).ok_or(RtpError::BadPadding(count))
    }

    /// The "defined by profile" field of the extension block, if there is one.
    pub fn extension_profile(&self) -> Option<u16> {
        if self.has_extension() { read_u16(self.pkt, self.layout.csrc_end) } else { None }
    }

    /// The RFC 8285 form of the extension block; `None` without a block or with another profile.
    pub fn extension_form(&self) -> Option<ExtensionForm> {
        extension_form(self.pkt, &self.layout).ok().flatten()
    }

    pub fn extensions(&self) -> Extensions<'a> {
        let data = self.pkt.get(self.layout.csrc_end + 4..self.layout.header_len).unwrap_or_default();
        Extensions { data, form: self.extension_form(), pos: 0 }
    }

    /// The value of the first element with `id` (0 never matches: it is padding).
    pub fn extension(&self, id: u8) -> Option<&'a [u8]> {
        if id == 0 {
            return None;
        }
        self.extensions().find(|&(eid, _)| eid == id).map(|(_, v)| v)
    }

    /// `urn:ietf:params:rtp-hdrext:sdes:mid`.
    pub fn mid(&self, id: u8) -> Option<&'a [u8]> {
        self.extension(id)
    }

    /// `urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`.
    pub fn rid(&self, id: u8) -> Option<&'a [u8]> {
        self.extension(id)
    }

    /// `urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id`.
    pub fn repaired_rid(&self, id: u8) -> Option<&'a [u8]> {
        self.extension(id)
    }

    /// abs-send-time: 24-bit 6.18 fixed-point seconds.
    pub fn abs_send_time(&self, id: u8) -> Option<u32> {
        match *self.extension(id)? {
            [a, b, c] => Some(u32::from_be_bytes([0, a, b, c])),
            _ => None,
        }
    }

    /// transport-wide-cc sequence number (draft-holmer-rmcat-transport-wide-cc-extensions).
    pub fn transport_wide_cc_seq(&self, id: u8) -> Option<u16> {
        match *self.extension(id)? {
            [a, b] => Some(u16::from_be_bytes([a, b])),
            _ => None,
        }
    }

    /// ssrc-audio-level (RFC 6464).
    pub fn audio_level(&self, id: u8) -> Option<AudioLevel> {
        let &b = self.extension(id)?.first()?;
        Some(AudioLevel { voice: b & 0x80 != 0, level: b & 0x7f })
    }

    /// urn:3gpp:video-orientation.
    pub fn video_orientation(&self, id: u8) -> Option<VideoOrientation> {
        let &b = self.extension(id)?.first()?;
        Some(VideoOrientation {
            back_camera: b & 0x08 != 0,
            flipped: b & 0x04 != 0,
            rotation: u16::from(b & 0x03) * 90,
        })
    }

    /// Transmission time offset (RFC 5450): 24-bit signed, in RTP timestamp units.
    pub fn toffset(&self, id: u8) -> Option<i32> {
        match *self.extension(id)? {
            // Place the 24 bits high and shift back down to sign-extend.
            [a, b, c] => Some(i32::from_be_bytes([a, b, c, 0]) >> 8),
            _ => None,
        }
    }
}

/// A mutable view of a plain (decrypted) RTP packet occupying `buf[..len]`; `buf[len..]` is headroom.
#[derive(Debug)]
pub struct RtpPacket<'a> {
    buf: &'a mut [u8],
    layout: Layout,
}

macro_rules! delegate_to_header {
    ($($(#[$meta:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*) => {
        $(
            $(#[$meta])*
            #[inline]
            pub fn $name(&self $(, $arg: $ty)*) -> $ret {
                self.header().$name($($arg),*)
            }
        )*
    };
}

impl<'a> RtpPacket<'a> {
    /// Validates version 2, the CSRC list, the extension block bounds and the padding count.
    pub fn parse(buf: &'a mut [u8], len: usize) -> Result<Self, RtpError> {
        let Some(pkt) = buf.get(..len) else {
            return Err(RtpError::LengthExceedsBuffer { len, capacity: buf.len() });
        };
        let layout = parse_layout(pkt, true)?;
        Ok(Self { buf, layout })
    }

    /// A read-only view (copies two words of offsets).
    #[inline]
    pub fn header(&self) -> RtpHeader<'_> {
        RtpHeader { pkt: &self.buf[..self.layout.len], layout: self.layout }
    }

    delegate_to_header! {
        fn marker(&self) -> bool;
        fn payload_type(&self) -> u8;
        fn sequence_number(&self) -> u16;
        fn timestamp(&self) -> u32;
        fn ssrc(&self) -> u32;
        fn has_padding(&self) -> bool;
        fn has_extension(&self) -> bool;
        fn csrc_count(&self) -> u8;
        fn header_len(&self) -> usize;
        fn extension_profile(&self) -> Option<u16>;
        fn extension_form(&self) -> Option<ExtensionForm>;
        fn extensions(&self) -> Extensions<'_>;
        fn extension(&self, id: u8) -> Option<&[u8]>;
        fn mid(&self, id: u8) -> Option<&[u8]>;
        fn rid(&self, id: u8) -> Option<&[u8]>;
        fn repaired_rid(&self, id: u8) -> Option<&[u8]>;
        fn abs_send_time(&self, id: u8) -> Option<u32>;
        fn transport_wide_cc_seq(&self, id: u8) -> Option<u16>;
        fn audio_level(&self, id: u8) -> Option<AudioLevel>;
        fn video_orientation(&self, id: u8) -> Option<VideoOrientation>;
        fn toffset(&self, id: u8) -> Option<i32>;
    }

    pub fn csrcs(&self) -> impl Iterator<Item = u32> + '_ {
        self.header().csrcs()
    }

    /// Total packet length (header, payload and padding).
    #[inline]
    pub fn len(&self) -> usize {
        self.layout.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.layout.len == 0
    }

    /// Bytes the packet may still grow by.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.buf.len() - self.layout.len
    }

    #[inline]
    pub fn padding_len(&self) -> usize {
        self.layout.padding_len
    }

    /// The payload without padding.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buf[self.layout.header_len..self.layout.len - self.layout.padding_len]
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.layout.header_len..self.layout.len - self.layout.padding_len]
    }

    /// The whole packet.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.layout.len]
    }

    /// The whole buffer and the packet length, e.g. for in-place SRTP protection that appends a tag.
    pub fn into_buffer(self) -> (&'a mut [u8], usize) {
        (self.buf, self.layout.len)
    }

    #[inline]
    pub fn set_marker(&mut self, marker: bool) {
        self.buf[1] = (self.buf[1] & 0x7f) | if marker { 0x80 } else { 0 };
    }

    /// Sets the 7-bit payload type (the high bit of `pt` is ignored).
    #[inline]
    pub fn set_payload_type(&mut self, pt: u8) {
        self.buf[1] = (self.buf[1] & 0x80) | (pt & 0x7f);
    }

    #[inline]
    pub fn set_sequence_number(&mut self, seq: u16) {
        self.buf[2..4].copy_from_slice(&seq.to_be_bytes());
    }

    #[inline]
    pub fn set_timestamp(&mut self, ts: u32) {
        self.buf[4..8].copy_from_slice(&ts.to_be_bytes());
    }

    #[inline]
    pub fn set_ssrc(&mut self, ssrc: u32) {
        self.buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    }

    fn form(&self) -> Result<Option<ExtensionForm>, RtpError> {
        extension_form(&self.buf[..self.layout.len], &self.layout).map_err(RtpError::UnsupportedExtensionProfile)
    }

    /// Extension data (after the block's 4-byte header) as an absolute range of `buf`.
    #[inline]
    fn extension_data_range(&self) -> (usize, usize) {
        let start = (self.layout.csrc_end + 4).min(self.layout.header_len);
        (start, self.layout.header_len)
    }

    /// Sets the value of extension `id`: in place when an element with that id and length exists,
    /// otherwise by rebuilding the block (the element moves to the end, padding is dropped, the form
    /// switches to two-byte when the id or length needs it and back to one-byte when it no longer does).
    /// Fails without touching the packet when the result does not fit the buffer.
    pub fn set_extension(&mut self, id: u8, value: &[u8]) -> Result<(), RtpError> {
        if id == 0 {
            return Err(RtpError::InvalidExtensionId(id));
        }
        if value.len() > usize::from(u8::MAX) {
            return Err(RtpError::InvalidExtensionLength(value.len()));
        }
        if let Some(form) = self.form()? {
            let (start, end) = self.extension_data_range();
            let data = &self.buf[start..end];
            let mut pos = 0;
            let mut found = None;
            while let Some(e) = next_element(data, form, &mut pos) {
                if e.id == id {
                    found = Some(e);
                    break;
                }
            }
            if let Some(e) = found.filter(|e| e.value_end - e.value_start == value.len()) {
                self.buf[start + e.value_start..start + e.value_end].copy_from_slice(value);
                return Ok(());
            }
        }
        self.rebuild_extensions(None, Some((id, value)))
    }

    /// Sets the transport-wide-cc sequence number (in place when the element is there).
    pub fn set_transport_wide_cc_seq(&mut self, id: u8, seq: u16) -> Result<(), RtpError> {
        self.set_extension(id, &seq.to_be_bytes())
    }

    /// Sets abs-send-time (the low 24 bits of `value`; in place when the element is there).
    pub fn set_abs_send_time(&mut self, id: u8, value: u32) -> Result<(), RtpError> {
        let [_, a, b, c] = value.to_be_bytes();
        self.set_extension(id, &[a, b, c])
    }

    /// Renumbers every extension element through `map` (incoming id → outgoing id, 0 drops it). Ids are
    /// rewritten and dropped elements turned into padding in place; only a one-byte block receiving an
    /// id above 14 is rebuilt in two-byte form. A block with a non-RFC 8285 profile is left alone.
    pub fn rewrite_extension_ids(&mut self, map: &ExtensionIdMap) -> Result<(), RtpError> {
        let Ok(Some(form)) = self.form() else { return Ok(()) };
        let (start, end) = self.extension_data_range();
        if form == ExtensionForm::OneByte {
            let data = &self.buf[start..end];
            let mut pos = 0;
            while let Some(e) = next_element(data, form, &mut pos) {
                if map[usize::from(e.id)] > ONE_BYTE_MAX_ID {
                    return self.rebuild_extensions(Some(map), None);
                }
            }
        }
        let mut pos = 0;
        while let Some(e) = next_element(&self.buf[start..end], form, &mut pos) {
            let id = map[usize::from(e.id)];
            let at = start + e.start;
            if id == 0 {
                self.buf[at..start + e.value_end].fill(0);
            } else if form == ExtensionForm::OneByte {
                self.buf[at] = (id << 4) | (self.buf[at] & 0x0f);
            } else {
                self.buf[at] = id;
            }
        }
        Ok(())
    }

    /// Rewrites the extension block: elements mapped through `map` (0 drops), any element with the id of
    /// `set` replaced by `set` at the end, padding removed, the smallest form that fits. Checks room
    /// before touching anything.
    ///
    /// The block is rewritten in place in steps that each move data in one direction only, so no
    /// scratch buffer is needed: (1) compact the surviving elements to the front in the old form;
    /// (2) if the form changes, convert them (to two-byte: shift the run right by one byte per element
    /// first, then expand forward with the read cursor always ahead of the write cursor; to one-byte:
    /// shrink forward); (3) append `set`. The payload moves right before a growing block is rewritten
    /// and left after a shrinking one.
    fn rebuild_extensions(&mut self, map: Option<&ExtensionIdMap>, set: Option<(u8, &[u8])>) -> Result<(), RtpError> {
        let old_form = self.form()?;
        let Layout { csrc_end, header_len, len, .. } = self.layout;
        let data_start = csrc_end + 4;
        let old_block_len = header_len - csrc_end;
        let map_id = |id: u8| map.map_or(id, |m| m[usize::from(id)]);
        let replaced = |id: u8| set.is_some_and(|(sid, _)| sid == id);

        // Pass 1: what survives, and which form carries it.
        let (mut kept, mut value_bytes, mut needs_two) = (0usize, 0usize, false);
        if let Some(form) = old_form {
            let data = &self.buf[data_start..header_len];
            let mut pos = 0;
            while let Some(e) = next_element(data, form, &mut pos) {
                let id = map_id(e.id);
                if id == 0 || replaced(id) {
                    continue;
                }
                let value_len = e.value_end - e.value_start;
                kept += 1;
                value_bytes += value_len;
                needs_two |= !fits_one_byte(id, value_len);
            }
        }
        let mut count = kept;
        if let Some((sid, value)) = set {
            count += 1;
            value_bytes += value.len();
            needs_two |= !fits_one_byte(sid, value.len());
        }
        let new_form = if needs_two { ExtensionForm::TwoByte } else { ExtensionForm::OneByte };
        let data_len = value_bytes + count * new_form.header_size();
        let padded_len = data_len.div_ceil(4) * 4;
        let words = u16::try_from(padded_len / 4).map_err(|_| RtpError::ExtensionBlockTooLarge)?;
        let new_block_len = if count == 0 { 0 } else { 4 + padded_len };
        let new_header_len = csrc_end + new_block_len;
        let new_len = len - old_block_len + new_block_len;
        if new_len > self.buf.len() {
            return Err(RtpError::NoHeadroom { needed: new_len, capacity: self.buf.len() });
        }

        if new_header_len > header_len {
            self.buf.copy_within(header_len..len, new_header_len);
        }
        if count > 0 {
            let buf = &mut *self.buf;
            let mut w = data_start;
            if let Some(form) = old_form {
                let converting = form != new_form;
                // (1) Compact: every write lands at or before the element being read.
                let mut pos = 0;
                while let Some(e) = next_element(&buf[data_start..header_len], form, &mut pos) {
                    let id = map_id(e.id);
                    if id == 0 || replaced(id) {
                        continue;
                    }
                    // While converting, keep the old id: the new one may not fit the old form yet.
                    let written_id = if converting { e.id } else { id };
                    let value_len = e.value_end - e.value_start;
                    match form {
                        ExtensionForm::OneByte => buf[w] = (written_id << 4) | ((value_len - 1) as u8 & 0x0f),
                        ExtensionForm::TwoByte => {
                            buf[w] = written_id;
                            buf[w + 1] = value_len as u8;
                        }
                    }
                    let hs = form.header_size();
                    buf.copy_within(data_start + e.value_start..data_start + e.value_end, w + hs);
                    w += hs + value_len;
                }
                // (2) Convert.
                if converting {
                    let compact_end = w;
                    w = data_start;
                    match new_form {
                        ExtensionForm::TwoByte => {
                            buf.copy_within(data_start..compact_end, data_start + kept);
                            let mut r = data_start + kept;
                            let end = compact_end + kept;
                            while r < end {
                                let h = buf[r];
                                let value_len = usize::from(h & 0x0f) + 1;
                                // Value first: the new header overwrites bytes at or before `r`.
                                buf.copy_within(r + 1..r + 1 + value_len, w + 2);
                                buf[w] = map_id(h >> 4);
                                buf[w + 1] = value_len as u8;
                                r += 1 + value_len;
                                w += 2 + value_len;
                            }
                        }
                        ExtensionForm::OneByte => {
                            let mut r = data_start;
                            while r < compact_end {
                                let id = map_id(buf[r]);
                                let value_len = usize::from(buf[r + 1]);
                                buf[w] = (id << 4) | (value_len.wrapping_sub(1) as u8 & 0x0f);
                                buf.copy_within(r + 2..r + 2 + value_len, w + 1);
                                r += 2 + value_len;
                                w += 1 + value_len;
                            }
                        }
                    }
                }
            }
            // (3) Append.
            if let Some((sid, value)) = set {
                match new_form {
                    ExtensionForm::OneByte => buf[w] = (sid << 4) | ((value.len() - 1) as u8 & 0x0f),
                    ExtensionForm::TwoByte => {
                        buf[w] = sid;
                        buf[w + 1] = value.len() as u8;
                    }
                }
                w += new_form.header_size();
                buf[w..w + value.len()].copy_from_slice(value);
                w += value.len();
            }
            buf[w..data_start + padded_len].fill(0);
            let profile = match (old_form, new_form) {
                (_, ExtensionForm::OneByte) => ONE_BYTE_PROFILE,
                // Keep the application bits of a block that was two-byte already.
                (Some(ExtensionForm::TwoByte), _) => read_u16(buf, csrc_end).unwrap_or(TWO_BYTE_PROFILE),
                (_, ExtensionForm::TwoByte) => TWO_BYTE_PROFILE,
            };
            buf[csrc_end..csrc_end + 2].copy_from_slice(&profile.to_be_bytes());
            buf[csrc_end + 2..csrc_end + 4].copy_from_slice(&words.to_be_bytes());
            buf[0] |= X_BIT;
        } else {
            self.buf[0] &= !X_BIT;
        }
        if new_header_len < header_len {
            self.buf.copy_within(header_len..len, new_header_len);
        }
        self.layout.header_len = new_header_len;
        self.layout.len = new_len;
        Ok(())
    }

    /// Turns the packet into its RTX form (RFC 4588) in place: the original sequence number becomes the
    /// first two payload bytes, and payload type, SSRC and sequence number become the RTX stream's.
    /// Needs 2 bytes of headroom.
    pub fn rtx_wrap(&mut self, rtx_payload_type: u8, rtx_ssrc: u32, rtx_seq: u16) -> Result<(), RtpError> {
        let Layout { header_len, len, .. } = self.layout;
        let new_len = len + 2;
        if new_len > self.buf.len() {
            return Err(RtpError::NoHeadroom { needed: new_len, capacity: self.buf.len() });
        }
        let osn = self.sequence_number();
        self.buf.copy_within(header_len..len, header_len + 2);
        self.buf[header_len..header_len + 2].copy_from_slice(&osn.to_be_bytes());
        self.layout.len = new_len;
        self.set_payload_type(rtx_payload_type);
        self.set_ssrc(rtx_ssrc);
        self.set_sequence_number(rtx_seq);
        Ok(())
    }

    /// Turns an RTX packet back into the original in place and returns the original sequence number.
    pub fn rtx_unwrap(&mut self, original_payload_type: u8, original_ssrc: u32) -> Result<u16, RtpError> {
        let Layout { header_len, len, .. } = self.layout;
        let osn = match *self.payload() {
            [a, b, ..] => u16::from_be_bytes([a, b]),
            _ => return Err(RtpError::RtxPayloadTooShort(self.payload().len())),
        };
        self.buf.copy_within(header_len + 2..len, header_len);
        self.layout.len = len - 2;
        self.set_payload_type(original_payload_type);
        self.set_ssrc(original_ssrc);
        self.set_sequence_number(osn);
        Ok(osn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEQ: u16 = 0xfffe;
    const TS: u32 = 0x0102_0304;
    const SSRC: u32 = 0xdead_beef;

    /// Encodes extension elements in `form` with `gap` padding bytes after each, padded to 32 bits.
    fn ext_block(form: ExtensionForm, elems: &[(u8, &[u8])], gap: usize) -> Vec<u8> {
        let mut data = Vec::new();
        for &(id, value) in elems {
            match form {
                ExtensionForm::OneByte => data.push((id << 4) | (value.len() as u8 - 1)),
                ExtensionForm::TwoByte => data.extend([id, value.len() as u8]),
            }
            data.extend_from_slice(value);
            data.extend(std::iter::repeat_n(0, gap));
        }
        data.resize(data.len().div_ceil(4) * 4, 0);
        let profile = if form == ExtensionForm::OneByte { ONE_BYTE_PROFILE } else { TWO_BYTE_PROFILE };
        let mut block = profile.to_be_bytes().to_vec();
        block.extend(((data.len() / 4) as u16).to_be_bytes());
        block.extend(data);
        block
    }

    /// A packet with payload type 96, marker set, the given CSRCs, extension block (already encoded),
    /// payload and padding; returns the buffer (with `headroom` spare bytes) and the packet length.
    fn build(csrcs: &[u32], ext: Option<&[u8]>, payload: &[u8], padding: u8, headroom: usize) -> (Vec<u8>, usize) {
        let mut b0 = 0x80 | csrcs.len() as u8;
        if ext.is_some() {
            b0 |= X_BIT;
        }
        if padding > 0 {
            b0 |= P_BIT;
        }
        let mut p = vec![b0, 0x80 | 96];
        p.extend(SEQ.to_be_bytes());
        p.extend(TS.to_be_bytes());
        p.extend(SSRC.to_be_bytes());
        for c in csrcs {
            p.extend(c.to_be_bytes());
        }
        if let Some(e) = ext {
            p.extend_from_slice(e);
        }
        p.extend_from_slice(payload);
        if padding > 0 {
            p.extend(std::iter::repeat_n(0, usize::from(padding) - 1));
            p.push(padding);
        }
        let len = p.len();
        p.resize(len + headroom, 0xaa);
        (p, len)
    }

    fn sorted(mut v: Vec<(u8, Vec<u8>)>) -> Vec<(u8, Vec<u8>)> {
        v.sort();
        v
    }

    fn elems(pkt: &RtpPacket<'_>) -> Vec<(u8, Vec<u8>)> {
        pkt.extensions().map(|(id, v)| (id, v.to_vec())).collect()
    }

    #[test]
    fn reads_fixed_header_csrcs_and_payload() {
        let (mut buf, len) = build(&[1, 2], None, b"hello", 0, 0);
        let pkt = RtpPacket::parse(&mut buf, len).unwrap();
        assert!(pkt.marker());
        assert_eq!(pkt.payload_type(), 96);
        assert_eq!(pkt.sequence_number(), SEQ);
        assert_eq!(pkt.timestamp(), TS);
        assert_eq!(pkt.ssrc(), SSRC);
        assert_eq!(pkt.csrc_count(), 2);
        assert_eq!(pkt.csrcs().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(pkt.header_len(), 20);
        assert_eq!(pkt.payload(), b"hello");
        assert_eq!(pkt.len(), 25);
        assert!(!pkt.has_extension());
        assert_eq!(pkt.extension(1), None);
    }

    #[test]
    fn payload_excludes_padding() {
        let (mut buf, len) = build(&[], None, b"abc", 5, 0);
        let pkt = RtpPacket::parse(&mut buf, len).unwrap();
        assert_eq!(pkt.padding_len(), 5);
        assert_eq!(pkt.payload(), b"abc");
        assert_eq!(pkt.len(), 12 + 3 + 5);
    }

    #[test]
    fn setters_change_only_their_field() {
        let ext = ext_block(ExtensionForm::OneByte, &[(1, b"m")], 0);
        let (mut buf, len) = build(&[7], Some(&ext), b"data", 0, 0);
        let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
        pkt.set_marker(false);
        pkt.set_payload_type(0xff);
        pkt.set_sequence_number(1);
        pkt.set_timestamp(2);
        pkt.set_ssrc(3);
        assert!(!pkt.marker());
        assert_eq!(pkt.payload_type(), 0x7f);
        pkt.set_payload_type(100);
        pkt.set_marker(true);
        assert_eq!((pkt.marker(), pkt.payload_type()), (true, 100));
        assert_eq!((pkt.sequence_number(), pkt.timestamp(), pkt.ssrc()), (1, 2, 3));
        assert_eq!(pkt.csrcs().collect::<Vec<_>>(), [7]);
        assert_eq!(pkt.mid(1), Some(&b"m"[..]));
        assert_eq!(pkt.payload(), b"data");
    }

    #[test]
    fn rejects_malformed_packets() {
        assert_eq!(RtpHeader::parse(&[]).unwrap_err(), RtpError::TooShort(0));
        assert_eq!(RtpHeader::parse(&[0x80; 11]).unwrap_err(), RtpError::TooShort(11));
        let (buf, len) = build(&[], None, b"", 0, 0);
        let mut v1 = buf.clone();
        v1[0] = 0x40;
        assert_eq!(RtpHeader::parse(&v1[..len]).unwrap_err(), RtpError::BadVersion(1));
        let mut cc = buf.clone();
        cc[0] |= 0x01;
        assert_eq!(RtpHeader::parse(&cc[..len]).unwrap_err(), RtpError::CsrcOverflow(1));
        let mut x = buf.clone();
        x[0] |= X_BIT;
        assert_eq!(RtpHeader::parse(&x[..len]).unwrap_err(), RtpError::ExtensionOverflow);
        let ext = ext_block(ExtensionForm::OneByte, &[(1, b"abcd")], 0);
        let (mut long, len2) = build(&[], Some(&ext), b"", 0, 0);
        long[15] = 3; // claims 3 words, has 2
        assert_eq!(RtpHeader::parse(&long[..len2]).unwrap_err(), RtpError::ExtensionOverflow);

        let (mut pad, plen) = build(&[], None, b"ab", 3, 0);
        pad[plen - 1] = 0;
        assert_eq!(RtpPacket::parse(&mut pad, plen).unwrap_err(), RtpError::BadPadding(0));
        pad[plen - 1] = 6; // 2 payload + 3 padding: 6 would eat into the header
        assert_eq!(RtpPacket::parse(&mut pad, plen).unwrap_err(), RtpError::BadPadding(6));
        pad[plen - 1] = 5; // padding may swallow the whole payload
        assert_eq!(RtpPacket::parse(&mut pad, plen).unwrap().payload(), b"");
        let (mut ok, olen) = build(&[], None, b"", 0, 0);
        assert_eq!(
            RtpPacket::parse(&mut ok, olen + 1).unwrap_err(),
            RtpError::LengthExceedsBuffer { len: olen + 1, capacity: olen }
        );
    }

    #[test]
    fn header_view_tolerates_srtp_trailer_and_checks_padding_on_demand() {
        // P set, but the last byte is (as in SRTP) part of an auth tag and says 200.
        let (mut buf, len) = build(&[], None, b"payload", 0, 0);
        buf[0] |= P_BIT;
        buf[len - 1] = 200;
        let h = RtpHeader::parse(&buf[..len]).unwrap();
        assert_eq!(h.sequence_number(), SEQ);
        assert_eq!(h.body(), b"payloa\xc8");
        assert_eq!(h.payload().unwrap_err(), RtpError::BadPadding(200));
        assert!(RtpPacket::parse(&mut buf, len).is_err());
        buf[len - 1] = 2;
        assert_eq!(RtpHeader::parse(&buf[..len]).unwrap().payload().unwrap(), b"paylo");
    }

    #[test]
    fn iterates_one_byte_elements_across_padding() {
        let ext = ext_block(ExtensionForm::OneByte, &[(1, b"a"), (3, b"xyz"), (14, &[9; 16])], 2);
        let (buf, len) = build(&[], Some(&ext), b"p", 0, 0);
        let h = RtpHeader::parse(&buf[..len]).unwrap();
        assert_eq!(h.extension_form(), Some(ExtensionForm::OneByte));
        let got: Vec<_> = h.extensions().collect();
        assert_eq!(got, [(1, &b"a"[..]), (3, &b"xyz"[..]), (14, &[9u8; 16][..])]);
        assert_eq!(h.extension(3), Some(&b"xyz"[..]));
        assert_eq!(h.extension(0), None);
        assert_eq!(h.extension(2), None);
    }

    #[test]
    fn one_byte_id_15_ends_the_block_and_bad_lengths_stop_iteration() {
        let mut ext = ext_block(ExtensionForm::OneByte, &[(1, b"a"), (2, b"b"), (3, b"c")], 0);
        ext[6] = 0xf0; // element 2's header becomes id 15
        let (buf, len) = build(&[], Some(&ext), b"", 0, 0);
        let h = RtpHeader::parse(&buf[..len]).unwrap();
        assert_eq!(h.extensions().map(|(id, _)| id).collect::<Vec<_>>(), [1]);

        let mut ext = ext_block(ExtensionForm::OneByte, &[(1, b"a"), (2, b"b")], 0);
        ext[6] = 0x2f; // element 2 claims 16 bytes in a 4-byte block
        let (buf, len) = build(&[], Some(&ext), b"", 0, 0);
        let h = RtpHeader::parse(&buf[..len]).unwrap();
        assert_eq!(h.extensions().count(), 1);
    }

    #[test]
    fn iterates_two_byte_elements_including_empty_ones() {
        let long = [7u8; 40];
        let ext = ext_block(ExtensionForm::TwoByte, &[(1, b""), (200, &long), (15, b"q")], 1);
        let (buf, len) = build(&[], Some(&ext), b"p", 0, 0);
        let h = RtpHeader::parse(&buf[..len]).unwrap();
        assert_eq!(h.extension_form(), Some(ExtensionForm::TwoByte));
        let got: Vec<_> = h.extensions().collect();
        assert_eq!(got, [(1, &b""[..]), (200, &long[..]), (15, &b"q"[..])]);
    }

    #[test]
    fn unknown_profile_has_no_elements_and_is_left_alone() {
        let mut block = vec![0x12, 0x34, 0, 1];
        block.extend([0x10, 1, 2, 3]);
        let (mut buf, len) = build(&[], Some(&block), b"p", 0, 4);
        let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
        assert_eq!(pkt.extension_profile(), Some(0x1234));
        assert_eq!(pkt.extension_form(), None);
        assert_eq!(pkt.extensions().count(), 0);
        let before = pkt.as_bytes().to_vec();
        pkt.rewrite_extension_ids(&[0; 256]).unwrap();
        assert_eq!(pkt.as_bytes(), before);
        assert_eq!(pkt.set_extension(1, b"x").unwrap_err(), RtpError::UnsupportedExtensionProfile(0x1234));
    }

    #[test]
    fn reads_the_extensions_an_sfu_uses() {
        let ext = ext_block(
            ExtensionForm::OneByte,
            &[
                (1, b"0"),
                (2, b"hi"),
                (3, b"lo"),
                (4, &[0x12, 0x34, 0x56]),
                (5, &[0xab, 0xcd]),
                (6, &[0x80 | 42]),
                (7, &[0x0d]),
                (8, &[0xff, 0xff, 0xfe]),
                (9, &[0x01]),
            ],
            0,
        );
        let (buf, len) = build(&[], Some(&ext), b"", 0, 0);
        let h = RtpHeader::parse(&buf[..len]).unwrap();
        assert_eq!(h.mid(1), Some(&b"0"[..]));
        assert_eq!(h.rid(2), Some(&b"hi"[..]));
        assert_eq!(h.repaired_rid(3), Some(&b"lo"[..]));
        assert_eq!(h.abs_send_time(4), Some(0x12_3456));
        assert_eq!(h.transport_wide_cc_seq(5), Some(0xabcd));
        assert_eq!(h.audio_level(6), Some(AudioLevel { voice: true, level: 42 }));
        assert_eq!(h.video_orientation(7), Some(VideoOrientation { back_camera: true, flipped: true, rotation: 90 }));
        assert_eq!(h.toffset(8), Some(-2));
        // Wrong sizes are not misread.
        assert_eq!(h.abs_send_time(5), None);
        assert_eq!(h.transport_wide_cc_seq(4), None);
        assert_eq!(h.toffset(9), None);
        assert_eq!(h.audio_level(10), None);
    }

    #[test]
    fn same_size_values_are_replaced_in_place() {
        let ext = ext_block(ExtensionForm::OneByte, &[(1, b"a"), (3, &[0, 0]), (4, &[0, 0, 0])], 1);
        let (mut buf, len) = build(&[], Some(&ext), b"payload", 0, 0);
        let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
        let header_len = pkt.header_len();
        pkt.set_extension(1, b"b").unwrap();
        pkt.set_transport_wide_cc_seq(3, 0x0102).unwrap();
        pkt.set_abs_send_time(4, 0xff_a1_b2_c3).unwrap();
        assert_eq!((pkt.len(), pkt.header_len()), (len, header_len));
        assert_eq!(pkt.mid(1), Some(&b"b"[..]));
        assert_eq!(pkt.transport_wide_cc_seq(3), Some(0x0102));
        assert_eq!(pkt.abs_send_time(4), Some(0xa1_b2c3));
        assert_eq!(pkt.payload(), b"payload");
    }

    #[test]
    fn mid_grows_from_one_to_five_bytes_and_shrinks_back() {
        let ext = ext_block(ExtensionForm::OneByte, &[(1, b"0"), (3, &[1, 2])], 0);
        let (mut buf, len) = build(&[9], Some(&ext), b"payload!", 2, 8);
        let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
        // 2 + 3 data bytes → 8.
        assert_eq!(pkt.header_len(), 16 + 4 + 8);
        pkt.set_extension(1, b"video").unwrap();
        assert_eq!(pkt.mid(1), Some(&b"video"[..]));
        assert_eq!(pkt.transport_wide_cc_seq(3), Some(0x0102));
        assert_eq!(pkt.extension_form(), Some(ExtensionForm::OneByte));
        // 3 + 6 = 9 data bytes → 12: the block grew by one word.
        assert_eq!(pkt.header_len(), 16 + 4 + 12);
        assert_eq!(pkt.len(), len + 4);
        assert_eq!(pkt.payload(), b"payload!");
        assert_eq!(pkt.padding_len(), 2);
        assert_eq!(pkt.csrcs().collect::<Vec<_>>(), [9]);

        pkt.set_extension(1, b"1").unwrap();
        assert_eq!(pkt.mid(1), Some(&b"1"[..]));
        assert_eq!(pkt.transport_wide_cc_seq(3), Some(0x0102));
        assert_eq!(pkt.len(), len);
        assert_eq!(pkt.payload(), b"payload!");

        // What we wrote parses back from scratch.
        let (buf, len) = pkt.into_buffer();
        let again = RtpPacket::parse(buf, len).unwrap();
        assert_eq!(again.mid(1), Some(&b"1"[..]));
        assert_eq!(again.payload(), b"payload!");
        assert_eq!(again.sequence_number(), SEQ);
    }

    #[test]
    fn adds_a_block_to_a_packet_without_one() {
        let (mut buf, len) = build(&[], None, b"xyz", 0, 8);
        let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
        pkt.set_transport_wide_cc_seq(5, 77).unwrap();
        assert!(pkt.has_extension());
        assert_eq!(pkt.extension_profile(), Some(ONE_BYTE_PROFILE));
        assert_eq!(pkt.transport_wide_cc_seq(5), Some(77));
        assert_eq!((pkt.len(), pkt.payload()), (len + 8, &b"xyz"[..]));
    }

    #[test]
    fn switches_to_two_byte_form_and_back() {
        let ext = ext_block(ExtensionForm::OneByte, &[(1, b"0"), (2, b"r0"), (3, &[1, 2])], 0);
        let (mut buf, len) = build(&[], Some(&ext), b"payload", 0, 64);
        let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
        let long = [b'm'; 17];
        pkt.set_extension(1, &long).unwrap();
        assert_eq!(pkt.extension_form(), Some(ExtensionForm::TwoByte));
        assert_eq!(sorted(elems(&pkt)), [(1, long.to_vec()), (2, b"r0".to_vec()), (3, vec![1, 2])].to_vec());
        assert_eq!(pkt.payload(), b"payload");

        // An id above 14 also needs the two-byte form; a zero-length value too.
        pkt.set_extension(1, b"0").unwrap();
        assert_eq!(pkt.extension_form(), Some(ExtensionForm::OneByte));
        pkt.set_extension(20, b"z").unwrap();
        assert_eq!(pkt.extension_form(), Some(ExtensionForm::TwoByte));
        assert_eq!(pkt.extension(20), Some(&b"z"[..]));
        assert_eq!(pkt.extension(2), Some(&b"r0"[..]));
        pkt.set_extension(7, b"").unwrap();
        assert_eq!(pkt.extension(7), Some(&b""[..]));
        assert_eq!(pkt.payload(), b"payload");

        // Dropping what needed it returns to one byte.
        let mut map = [0u8; 256];
        map[1] = 1;
        map[2] = 2;
        map[3] = 3;
        let before_len = pkt.len();
        pkt.rewrite_extension_ids(&map).unwrap(); // in place: 20 and 7 become padding
        assert_eq!(pkt.len(), before_len);
        assert_eq!(pkt.extension(20), None);
        pkt.set_extension(1, b"11").unwrap();
        assert_eq!(pkt.extension_form(), Some(ExtensionForm::OneByte));
        assert_eq!(sorted(elems(&pkt)), [(1, b"11".to_vec()), (2, b"r0".to_vec()), (3, vec![1, 2])].to_vec());
        assert_eq!(pkt.payload(), b"payload");
    }

    #[test]
    fn two_byte_application_bits_survive_a_rebuild() {
        let mut ext = ext_block(ExtensionForm::TwoByte, &[(30, b"abc")], 0);
        ext[1] = 0x05;
        let (mut buf, len) = build(&[], Some(&ext), b"p", 0, 16);
        let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
        pkt.set_extension(31, b"defg").unwrap();
        assert_eq!(pkt.extension_profile(), Some(0x1005));
        assert_eq!(pkt.extension(30), Some(&b"abc"[..]));
    }

    #[test]
    fn growing_without_headroom_fails_and_leaves_the_packet_untouched() {
        let ext = ext_block(ExtensionForm::OneByte, &[(1, b"0"), (3, &[1, 2])], 0);
        let (mut buf, len) = build(&[], Some(&ext), b"payload", 0, 3);
        let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
        let before = pkt.as_bytes().to_vec();
        assert_eq!(
            pkt.set_extension(1, b"video").unwrap_err(),
            RtpError::NoHeadroom { needed: len + 4, capacity: len + 3 }
        );
        assert_eq!(pkt.as_bytes(), before);
        assert_eq!(pkt.set_extension(0, b"x").unwrap_err(), RtpError::InvalidExtensionId(0));
        assert_eq!(pkt.set_extension(1, &[0; 256]).unwrap_err(), RtpError::InvalidExtensionLength(256));
        // A change that fits in the existing padding still works.
        pkt.set_extension(1, b"ab").unwrap();
        assert_eq!(pkt.len(), len);
    }

    #[test]
    fn rewrites_ids_in_place_and_drops_unmapped() {
        let ext = ext_block(ExtensionForm::OneByte, &[(1, b"mid"), (2, b"x"), (3, &[1, 2])], 0);
        let (mut buf, len) = build(&[], Some(&ext), b"pay", 0, 0);
        let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
        let mut map = [0u8; 256];
        map[1] = 4;
        map[3] = 1;
        pkt.rewrite_extension_ids(&map).unwrap();
        assert_eq!(pkt.len(), len);
        assert_eq!(elems(&pkt), [(4, b"mid".to_vec()), (1, vec![1, 2])]);
        assert_eq!(pkt.payload(), b"pay");

        let ext = ext_block(ExtensionForm::TwoByte, &[(100, b"a"), (7, b"")], 0);
        let (mut buf, len) = build(&[], Some(&ext), b"pay", 0, 0);
        let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
        let mut map = [0u8; 256];
        map[7] = 200;
        pkt.rewrite_extension_ids(&map).unwrap();
        assert_eq!(elems(&pkt), [(200, vec![])]);
    }

    #[test]
    fn rewrite_to_an_id_above_14_converts_to_two_byte() {
        let ext = ext_block(ExtensionForm::OneByte, &[(1, b"mid"), (2, b"x"), (3, &[1, 2])], 0);
        let (mut buf, len) = build(&[], Some(&ext), b"pay", 1, 8);
        let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
        let mut map = [0u8; 256];
        map[1] = 1;
        map[3] = 20;
        pkt.rewrite_extension_ids(&map).unwrap();
        assert_eq!(pkt.extension_form(), Some(ExtensionForm::TwoByte));
        assert_eq!(elems(&pkt), [(1, b"mid".to_vec()), (20, vec![1, 2])]);
        assert_eq!((pkt.payload(), pkt.padding_len()), (&b"pay"[..], 1));

        let ext = ext_block(ExtensionForm::OneByte, &[(1, b"mid"), (3, &[1, 2])], 0);
        let (mut buf, len) = build(&[], Some(&ext), b"pay", 0, 3);
        let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
        // One-byte: 4 + 3 = 7 → 8; two-byte: 5 + 4 = 9 → 12, one word more than the headroom.
        assert!(matches!(pkt.rewrite_extension_ids(&map), Err(RtpError::NoHeadroom { .. })));
        assert_eq!(pkt.extension(1), Some(&b"mid"[..]));
    }

    #[test]
    fn rtx_wrap_and_unwrap_round_trip() {
        let ext = ext_block(ExtensionForm::OneByte, &[(1, b"0")], 0);
        let (mut buf, len) = build(&[], Some(&ext), b"media", 3, 2);
        let original = buf[..len].to_vec();
        let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
        pkt.rtx_wrap(97, 0x1111, 500).unwrap();
        assert_eq!((pkt.payload_type(), pkt.ssrc(), pkt.sequence_number()), (97, 0x1111, 500));
        assert_eq!(pkt.payload(), [&SEQ.to_be_bytes()[..], b"media"].concat());
        assert_eq!(pkt.len(), len + 2);
        assert!(pkt.marker());

        let (buf, len2) = pkt.into_buffer();
        let mut rtx = RtpPacket::parse(buf, len2).unwrap();
        assert_eq!(rtx.rtx_unwrap(96, SSRC).unwrap(), SEQ);
        assert_eq!(rtx.as_bytes(), original);
    }

    #[test]
    fn rtx_needs_headroom_and_an_osn() {
        let (mut buf, len) = build(&[], None, b"media", 0, 1);
        let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
        assert!(matches!(pkt.rtx_wrap(97, 1, 1), Err(RtpError::NoHeadroom { .. })));
        assert_eq!(pkt.sequence_number(), SEQ);
        let (mut buf, len) = build(&[], None, b"m", 4, 0);
        let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
        assert_eq!(pkt.rtx_unwrap(96, 1).unwrap_err(), RtpError::RtxPayloadTooShort(1));
    }

    fn element_strategy(two_byte: bool) -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
        let (ids, max_len, min_len) = if two_byte { (1u8..=255, 40usize, 0usize) } else { (1u8..=14, 16, 1) };
        proptest::collection::btree_map(ids, proptest::collection::vec(any::<u8>(), min_len..=max_len), 0..6)
            .prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        /// set_extension against a model: the element list with `id` replaced.
        #[test]
        fn set_extension_matches_a_model(
            two_byte in any::<bool>(),
            elements in element_strategy(false),
            wide in element_strategy(true),
            gap in 0usize..3,
            id in 1u8..=255,
            value in proptest::collection::vec(any::<u8>(), 0..=40),
            payload in proptest::collection::vec(any::<u8>(), 0..20),
            padding in 0u8..4,
        ) {
            let elements = if two_byte { wide } else { elements };
            let form = if two_byte { ExtensionForm::TwoByte } else { ExtensionForm::OneByte };
            let refs: Vec<(u8, &[u8])> = elements.iter().map(|(i, v)| (*i, v.as_slice())).collect();
            let ext = ext_block(form, &refs, gap);
            let (mut buf, len) = build(&[5], (!elements.is_empty()).then_some(&ext[..]), &payload, padding, 300);
            let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
            pkt.set_extension(id, &value).unwrap();
            let mut expected: Vec<_> = elements.iter().filter(|(i, _)| *i != id).cloned().collect();
            expected.push((id, value.clone()));
            prop_assert_eq!(sorted(elems(&pkt)), sorted(expected));
            prop_assert_eq!(pkt.payload(), &payload[..]);
            prop_assert_eq!(pkt.padding_len(), usize::from(padding));
            prop_assert_eq!((pkt.sequence_number(), pkt.ssrc()), (SEQ, SSRC));
            let (buf, len) = pkt.into_buffer();
            let again = RtpPacket::parse(buf, len).unwrap();
            prop_assert_eq!(again.payload(), &payload[..]);
        }

        /// rewrite_extension_ids against a model: every element renumbered or gone.
        #[test]
        fn rewrite_matches_a_model(
            elements in element_strategy(false),
            targets in proptest::collection::vec(0u8..=20, 15),
            payload in proptest::collection::vec(any::<u8>(), 0..20),
        ) {
            let refs: Vec<(u8, &[u8])> = elements.iter().map(|(i, v)| (*i, v.as_slice())).collect();
            let ext = ext_block(ExtensionForm::OneByte, &refs, 0);
            let (mut buf, len) = build(&[], Some(&ext), &payload, 0, 200);
            let mut map = [0u8; 256];
            for (i, &t) in targets.iter().enumerate() {
                map[i] = t;
            }
            let mut pkt = RtpPacket::parse(&mut buf, len).unwrap();
            pkt.rewrite_extension_ids(&map).unwrap();
            let expected: Vec<_> = elements.iter().filter_map(|(i, v)| {
                let t = map[usize::from(*i)];
                (t != 0).then(|| (t, v.clone()))
            }).collect();
            prop_assert_eq!(sorted(elems(&pkt)), sorted(expected));
            prop_assert_eq!(pkt.payload(), &payload[..]);
        }

        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..80),
            headroom in 0usize..24,
            id in any::<u8>(),
            value in proptest::collection::vec(any::<u8>(), 0..24),
            map in proptest::collection::vec(any::<u8>(), 256),
        ) {
            exercise(&bytes, headroom, id, &value, &map);
        }

        #[test]
        fn mutated_and_truncated_packets_never_panic(
            elements in element_strategy(false),
            cut in any::<prop::sample::Index>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            headroom in 0usize..24,
            id in any::<u8>(),
            value in proptest::collection::vec(any::<u8>(), 0..24),
            map in proptest::collection::vec(any::<u8>(), 256),
        ) {
            let refs: Vec<(u8, &[u8])> = elements.iter().map(|(i, v)| (*i, v.as_slice())).collect();
            let ext = ext_block(ExtensionForm::OneByte, &refs, 1);
            let (mut bytes, len) = build(&[1], Some(&ext), b"payload", 2, 0);
            for (at, x) in flips {
                let i = at.index(len);
                bytes[i] ^= x;
            }
            exercise(&bytes, headroom, id, &value, &map);
            exercise(&bytes[..cut.index(len + 1)], headroom, id, &value, &map);
        }
    }

    /// Every reader and setter on whatever parses.
    fn exercise(bytes: &[u8], headroom: usize, id: u8, value: &[u8], map: &[u8]) {
        let mut table = [0u8; 256];
        table.copy_from_slice(map);
        if let Ok(h) = RtpHeader::parse(bytes) {
            let _ = (h.csrcs().count(), h.extensions().count(), h.payload(), h.body().len());
            let _ = (h.mid(id), h.abs_send_time(id), h.transport_wide_cc_seq(id), h.audio_level(id));
            let _ = (h.video_orientation(id), h.toffset(id), h.extension_profile());
        }
        let mut buf = bytes.to_vec();
        buf.resize(bytes.len() + headroom, 0);
        if let Ok(mut pkt) = RtpPacket::parse(&mut buf, bytes.len()) {
            let _ = (pkt.payload().len(), pkt.extensions().count(), pkt.csrcs().count());
            pkt.set_sequence_number(1);
            pkt.set_timestamp(2);
            pkt.set_ssrc(3);
            pkt.set_payload_type(id);
            pkt.set_marker(true);
            let _ = pkt.set_extension(id, value);
            let _ = pkt.rewrite_extension_ids(&table);
            let _ = pkt.set_transport_wide_cc_seq(id, 9);
            let _ = pkt.set_abs_send_time(id, 9);
            let _ = pkt.rtx_wrap(id, 4, 5);
            let _ = pkt.rtx_unwrap(id, 6);
            let _ = pkt.extensions().count();
            // Whatever the setters left must parse again with the same length.
            let (buf, len) = pkt.into_buffer();
            let again = RtpPacket::parse(buf, len);
            assert!(again.is_ok(), "{again:?}");
        }
    }
}
