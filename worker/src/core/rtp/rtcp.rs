//! Compound RTCP (RFC 3550, RFC 4585, RFC 5104, REMB) read as typed views and written into caller
//! buffers. Plain RTCP only: SRTCP protection is the caller's.
//!
//! RTCP comes from the network and lies, so every length and count is checked against the bytes that
//! are really there. A packet whose own length field does not fit ends the compound (the next header
//! cannot be found); a packet whose length fits but whose content is wrong is reported as an error and
//! the iterator moves on to the next one. Lists inside packets (report blocks, NACK items, FIR entries,
//! SSRCs) are iterators over the buffer.

use thiserror::Error;

pub const RTCP_HEADER_LEN: usize = 4;
pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;
pub const PT_APP: u8 = 204;
pub const PT_RTPFB: u8 = 205;
pub const PT_PSFB: u8 = 206;
pub const PT_XR: u8 = 207;
pub const FMT_NACK: u8 = 1;
pub const FMT_TRANSPORT_CC: u8 = 15;
pub const FMT_PLI: u8 = 1;
pub const FMT_FIR: u8 = 4;
/// Application layer feedback (RFC 4585 §6.4), which REMB uses.
pub const FMT_AFB: u8 = 15;
const SDES_CNAME: u8 = 1;
const REMB_ID: &[u8; 4] = b"REMB";
const REPORT_BLOCK_LEN: usize = 24;
/// Counts live in a 5-bit field.
const MAX_COUNT: usize = 31;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtcpError {
    #[error("RTCP packet of {0} bytes is shorter than its header or fixed part")]
    TooShort(usize),
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    #[error("RTCP length field says {claimed} bytes but {available} remain")]
    LengthExceedsBuffer { claimed: usize, available: usize },
    #[error("RTCP padding count {0} is zero or longer than the packet")]
    BadPadding(u8),
    #[error("RTCP packet type {packet_type} claims {count} items that do not fit its length")]
    CountExceedsLength { packet_type: u8, count: usize },
    #[error("buffer of {available} bytes cannot hold {needed}")]
    BufferTooSmall { needed: usize, available: usize },
    #[error("{0} items do not fit one RTCP packet")]
    TooManyItems(usize),
    #[error("SDES item of {0} bytes is longer than 255")]
    ItemTooLong(usize),
}

#[inline]
fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

#[inline]
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost: 24-bit signed (duplicates can make it negative).
    pub cumulative_lost: i32,
    pub extended_highest_seq: u32,
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received from this source.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn read(b: &[u8]) -> Option<Self> {
        let lost = u32_at(b, 4)?;
        Some(Self {
            ssrc: u32_at(b, 0)?,
            fraction_lost: (lost >> 24) as u8,
            // Shift the 24-bit field to the top and back to sign-extend it.
            cumulative_lost: ((lost << 8) as i32) >> 8,
            extended_highest_seq: u32_at(b, 8)?,
            jitter: u32_at(b, 12)?,
            last_sr: u32_at(b, 16)?,
            delay_since_last_sr: u32_at(b, 20)?,
        })
    }

    fn write(&self, out: &mut [u8]) {
        // Clamp to the 24-bit signed range rather than wrap into a wrong sign.
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
        out[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        out[4..8].copy_from_slice(&((u32::from(self.fraction_lost) << 24) | lost).to_be_bytes());
        out[8..12].copy_from_slice(&self.extended_highest_seq.to_be_bytes());
        out[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        out[16..20].copy_from_slice(&self.last_sr.to_be_bytes());
        out[20..24].copy_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }
}

/// Report blocks of an SR or RR, read from the buffer as they are iterated.
#[derive(Debug, Clone)]
pub struct ReportBlocks<'a> {
    chunks: std::slice::ChunksExact<'a, u8>,
}

impl<'a> ReportBlocks<'a> {
    fn new(blocks: &'a [u8]) -> Self {
        Self { chunks: blocks.chunks_exact(REPORT_BLOCK_LEN) }
    }
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        ReportBlock::read(self.chunks.next()?)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

/// Sender information of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    pub ssrc: u32,
    /// 64-bit NTP timestamp (32.32 fixed point).
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport<'a> {
    pub info: SenderInfo,
    blocks: &'a [u8],
}

impl<'a> SenderReport<'a> {
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks::new(self.blocks)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    pub ssrc: u32,
    blocks: &'a [u8],
}

impl<'a> ReceiverReport<'a> {
    pub fn report_blocks(&self) -> ReportBlocks<'a> {
        ReportBlocks::new(self.blocks)
    }
}

/// SDES: kept raw; chunks (SSRC and CNAME) are read on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sdes<'a> {
    pub count: u8,
    body: &'a [u8],
}

impl<'a> Sdes<'a> {
    pub fn chunks(&self) -> SdesChunks<'a> {
        SdesChunks { body: self.body, remaining: self.count }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesChunk<'a> {
    pub ssrc: u32,
    pub cname: Option<&'a [u8]>,
}

/// SDES chunks; stops at the first malformed one.
#[derive(Debug, Clone)]
pub struct SdesChunks<'a> {
    body: &'a [u8],
    remaining: u8,
}

impl<'a> Iterator for SdesChunks<'a> {
    type Item = SdesChunk<'a>;

    fn next(&mut self) -> Option<SdesChunk<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let body = std::mem::take(&mut self.body);
        let ssrc = u32_at(body, 0)?;
        let mut pos = 4;
        let mut cname = None;
        loop {
            let &item = body.get(pos)?;
            if item == 0 {
                // END, then null bytes up to the next 32-bit boundary.
                let next = (pos + 1).div_ceil(4) * 4;
                self.body = body.get(next..).unwrap_or_default();
                return Some(SdesChunk { ssrc, cname });
            }
            let len = usize::from(*body.get(pos + 1)?);
            let value = body.get(pos + 2..pos + 2 + len)?;
            if item == SDES_CNAME && cname.is_none() {
                cname = Some(value);
            }
            pos += 2 + len;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bye<'a> {
    ssrcs: &'a [u8],
    rest: &'a [u8],
}

impl<'a> Bye<'a> {
    pub fn ssrcs(&self) -> Ssrcs<'a> {
        Ssrcs { chunks: self.ssrcs.chunks_exact(4) }
    }

    /// The optional reason for leaving.
    pub fn reason(&self) -> Option<&'a [u8]> {
        let (&len, text) = self.rest.split_first()?;
        text.get(..usize::from(len))
    }
}

/// A list of SSRCs in the buffer.
#[derive(Debug, Clone)]
pub struct Ssrcs<'a> {
    chunks: std::slice::ChunksExact<'a, u8>,
}

impl Iterator for Ssrcs<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        u32_at(self.chunks.next()?, 0)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

/// Generic NACK (RTPFB fmt 1, RFC 4585 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nack<'a> {
    pub sender_ssrc: u32,
    pub media_ssrc: u32,
    fci: &'a [u8],
}

impl<'a> Nack<'a> {
    /// The raw `(PID, BLP)` items.
    pub fn items(&self) -> NackItems<'a> {
        NackItems { chunks: self.fci.chunks_exact(4) }
    }

    /// Every lost sequence number: each PID followed by PID+i for each set bit i-1 of its BLP.
    pub fn lost(&self) -> NackLost<'a> {
        NackLost { items: self.items(), pid: 0, mask: 0, pending_pid: false }
    }
}

#[derive(Debug, Clone)]
pub struct NackItems<'a> {
    chunks: std::slice::ChunksExact<'a, u8>,
}

impl Iterator for NackItems<'_> {
    type Item = (u16, u16);

    fn next(&mut self) -> Option<(u16, u16)> {
        let c = self.chunks.next()?;
        Some((u16_at(c, 0)?, u16_at(c, 2)?))
    }
}

#[derive(Debug, Clone)]
pub struct NackLost<'a> {
    items: NackItems<'a>,
    pid: u16,
    mask: u16,
    pending_pid: bool,
}

impl Iterator for NackLost<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        loop {
            if self.pending_pid {
                self.pending_pid = false;
                return Some(self.pid);
            }
            if self.mask != 0 {
                let bit = self.mask.trailing_zeros() as u16;
                self.mask &= self.mask - 1;
                return Some(self.pid.wrapping_add(bit + 1));
            }
            let (pid, blp) = self.items.next()?;
            self.pid = pid;
            self.mask = blp;
            self.pending_pid = true;
        }
    }
}

/// Transport-wide congestion control feedback (RTPFB fmt 15); the FCI is left raw for the TWCC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportCc<'a> {
    pub sender_ssrc: u32,
    pub media_ssrc: u32,
    pub fci: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pli {
    pub sender_ssrc: u32,
    pub media_ssrc: u32,
}

/// Full intra request (PSFB fmt 4, RFC 5104 §4.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fir<'a> {
    pub sender_ssrc: u32,
    /// Unused by FIR (RFC 5104 says 0); the requested SSRCs are in the entries.
    pub media_ssrc: u32,
    fci: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirEntry {
    pub ssrc: u32,
    pub seq_nr: u8,
}

impl<'a> Fir<'a> {
    pub fn entries(&self) -> FirEntries<'a> {
        FirEntries { chunks: self.fci.chunks_exact(8) }
    }
}

#[derive(Debug, Clone)]
pub struct FirEntries<'a> {
    chunks: std::slice::ChunksExact<'a, u8>,
}

impl Iterator for FirEntries<'_> {
    type Item = FirEntry;

    fn next(&mut self) -> Option<FirEntry> {
        let c = self.chunks.next()?;
        Some(FirEntry { ssrc: u32_at(c, 0)?, seq_nr: *c.get(4)? })
    }
}

/// Receiver estimated maximum bitrate (draft-alvestrand-rmcat-remb, PSFB fmt 15 "REMB").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remb<'a> {
    pub sender_ssrc: u32,
    /// Bits per second; saturates at `u64::MAX` for exponents that overflow.
    pub bitrate: u64,
    ssrcs: &'a [u8],
}

impl<'a> Remb<'a> {
    pub fn ssrcs(&self) -> Ssrcs<'a> {
        Ssrcs { chunks: self.ssrcs.chunks_exact(4) }
    }
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    SenderReport(SenderReport<'a>),
    ReceiverReport(ReceiverReport<'a>),
    Sdes(Sdes<'a>),
    Bye(Bye<'a>),
    Nack(Nack<'a>),
    TransportCc(TransportCc<'a>),
    Pli(Pli),
    Fir(Fir<'a>),
    Remb(Remb<'a>),
    /// Any other packet type, or an unknown feedback format: the caller counts it and moves on.
    Unknown {
        packet_type: u8,
        count_or_fmt: u8,
    },
}

/// Entry point for reading compound RTCP.
pub struct RtcpCompound;

impl RtcpCompound {
    /// Iterates over the packets of a compound RTCP datagram.
    pub fn iter(buf: &[u8]) -> RtcpIter<'_> {
        RtcpIter { rest: buf }
    }
}

/// Iterator over a compound datagram: `Err` for a bad packet; after a framing error it ends.
#[derive(Debug, Clone)]
pub struct RtcpIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RtcpIter<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let buf = std::mem::take(&mut self.rest);
        let [b0, packet_type, l0, l1, ..] = *buf else { return Some(Err(RtcpError::TooShort(buf.len()))) };
        if b0 >> 6 != 2 {
            return Some(Err(RtcpError::BadVersion(b0 >> 6)));
        }
        let claimed = (usize::from(u16::from_be_bytes([l0, l1])) + 1) * 4;
        let Some(packet) = buf.get(..claimed) else {
            return Some(Err(RtcpError::LengthExceedsBuffer { claimed, available: buf.len() }));
        };
        self.rest = buf.get(claimed..).unwrap_or_default();
        let mut body = packet.get(RTCP_HEADER_LEN..).unwrap_or_default();
        if b0 & 0x20 != 0 {
            let count = body.last().copied().unwrap_or(0);
            match body.len().checked_sub(usize::from(count)).filter(|_| count != 0) {
                Some(end) => body = body.get(..end).unwrap_or_default(),
                None => return Some(Err(RtcpError::BadPadding(count))),
            }
        }
        Some(parse_packet(packet_type, b0 & 0x1f, body))
    }
}

fn parse_packet(packet_type: u8, count: u8, body: &[u8]) -> Result<RtcpPacket<'_>, RtcpError> {
    let too_short = RtcpError::TooShort(body.len() + RTCP_HEADER_LEN);
    let items = |offset: usize, size: usize, n: usize| -> Result<&[u8], RtcpError> {
        body.get(offset..offset + size * n).ok_or(RtcpError::CountExceedsLength { packet_type, count: n })
    };
    let ssrc_at = |at: usize| u32_at(body, at).ok_or(too_short);
    match packet_type {
        PT_SR => {
            let ntp_hi = ssrc_at(4)?;
            let info = SenderInfo {
                ssrc: ssrc_at(0)?,
                ntp: (u64::from(ntp_hi) << 32) | u64::from(ssrc_at(8)?),
                rtp_timestamp: ssrc_at(12)?,
                packet_count: ssrc_at(16)?,
                octet_count: ssrc_at(20)?,
            };
            let blocks = items(24, REPORT_BLOCK_LEN, usize::from(count))?;
            Ok(RtcpPacket::SenderReport(SenderReport { info, blocks }))
        }
        PT_RR => {
            let ssrc = ssrc_at(0)?;
            let blocks = items(4, REPORT_BLOCK_LEN, usize::from(count))?;
            Ok(RtcpPacket::ReceiverReport(ReceiverReport { ssrc, blocks }))
        }
        PT_SDES => Ok(RtcpPacket::Sdes(Sdes { count, body })),
        PT_BYE => {
            let ssrcs = items(0, 4, usize::from(count))?;
            let rest = body.get(ssrcs.len()..).unwrap_or_default();
            Ok(RtcpPacket::Bye(Bye { ssrcs, rest }))
        }
        PT_RTPFB | PT_PSFB => {
            let sender_ssrc = ssrc_at(0)?;
            let media_ssrc = ssrc_at(4)?;
            let fci = body.get(8..).unwrap_or_default();
            Ok(match (packet_type, count) {
                (PT_RTPFB, FMT_NACK) => RtcpPacket::Nack(Nack { sender_ssrc, media_ssrc, fci }),
                (PT_RTPFB, FMT_TRANSPORT_CC) => RtcpPacket::TransportCc(TransportCc { sender_ssrc, media_ssrc, fci }),
                (PT_PSFB, FMT_PLI) => RtcpPacket::Pli(Pli { sender_ssrc, media_ssrc }),
                (PT_PSFB, FMT_FIR) => RtcpPacket::Fir(Fir { sender_ssrc, media_ssrc, fci }),
                (PT_PSFB, FMT_AFB) if fci.starts_with(REMB_ID) => parse_remb(sender_ssrc, fci)?,
                _ => RtcpPacket::Unknown { packet_type, count_or_fmt: count },
            })
        }
        _ => Ok(RtcpPacket::Unknown { packet_type, count_or_fmt: count }),
    }
}

fn parse_remb(sender_ssrc: u32, fci: &[u8]) -> Result<RtcpPacket<'_>, RtcpError> {
    let word = u32_at(fci, 4).ok_or(RtcpError::TooShort(fci.len() + 12))?;
    let num_ssrc = (word >> 24) as usize;
    let exp = (word >> 18) & 0x3f;
    let mantissa = u64::from(word & 0x3_ffff);
    let bitrate = if exp <= mantissa.leading_zeros() { mantissa << exp } else { u64::MAX };
    let ssrcs =
        fci.get(8..8 + 4 * num_ssrc).ok_or(RtcpError::CountExceedsLength { packet_type: PT_PSFB, count: num_ssrc })?;
    Ok(RtcpPacket::Remb(Remb { sender_ssrc, bitrate, ssrcs }))
}

// ---- writers ----

fn room(buf: &mut [u8], needed: usize) -> Result<&mut [u8], RtcpError> {
    let available = buf.len();
    buf.get_mut(..needed).ok_or(RtcpError::BufferTooSmall { needed, available })
}

/// Writes a common header for a packet of `total` bytes (a multiple of 4).
fn header(out: &mut [u8], count: u8, packet_type: u8, total: usize) -> Result<(), RtcpError> {
    let words = u16::try_from(total / 4 - 1).map_err(|_| RtcpError::TooManyItems(total))?;
    out[0] = 0x80 | (count & 0x1f);
    out[1] = packet_type;
    out[2..4].copy_from_slice(&words.to_be_bytes());
    Ok(())
}

fn put_u32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn check_count(n: usize) -> Result<u8, RtcpError> {
    if n > MAX_COUNT { Err(RtcpError::TooManyItems(n)) } else { Ok(n as u8) }
}

/// Sender report with up to 31 report blocks.
pub fn write_sender_report(buf: &mut [u8], info: &SenderInfo, blocks: &[ReportBlock]) -> Result<usize, RtcpError> {
    let count = check_count(blocks.len())?;
    let total = 28 + REPORT_BLOCK_LEN * blocks.len();
    let out = room(buf, total)?;
    header(out, count, PT_SR, total)?;
    put_u32(out, 4, info.ssrc);
    out[8..16].copy_from_slice(&info.ntp.to_be_bytes());
    put_u32(out, 16, info.rtp_timestamp);
    put_u32(out, 20, info.packet_count);
    put_u32(out, 24, info.octet_count);
    for (block, chunk) in blocks.iter().zip(out[28..].chunks_exact_mut(REPORT_BLOCK_LEN)) {
        block.write(chunk);
    }
    Ok(total)
}

/// Receiver report with up to 31 report blocks.
pub fn write_receiver_report(buf: &mut [u8], ssrc: u32, blocks: &[ReportBlock]) -> Result<usize, RtcpError> {
    let count = check_count(blocks.len())?;
    let total = 8 + REPORT_BLOCK_LEN * blocks.len();
    let out = room(buf, total)?;
    header(out, count, PT_RR, total)?;
    put_u32(out, 4, ssrc);
    for (block, chunk) in blocks.iter().zip(out[8..].chunks_exact_mut(REPORT_BLOCK_LEN)) {
        block.write(chunk);
    }
    Ok(total)
}

/// SDES with one chunk carrying a CNAME item.
pub fn write_sdes_cname(buf: &mut [u8], ssrc: u32, cname: &[u8]) -> Result<usize, RtcpError> {
    if cname.len() > usize::from(u8::MAX) {
        return Err(RtcpError::ItemTooLong(cname.len()));
    }
    // SSRC, CNAME type and length, the text, then at least one END byte up to a 32-bit boundary.
    let chunk = (4 + 2 + cname.len() + 1).div_ceil(4) * 4;
    let total = RTCP_HEADER_LEN + chunk;
    let out = room(buf, total)?;
    header(out, 1, PT_SDES, total)?;
    put_u32(out, 4, ssrc);
    out[8] = SDES_CNAME;
    out[9] = cname.len() as u8;
    out[10..10 + cname.len()].copy_from_slice(cname);
    out[10 + cname.len()..total].fill(0);
    Ok(total)
}

/// BYE for up to 31 SSRCs, without a reason.
pub fn write_bye(buf: &mut [u8], ssrcs: &[u32]) -> Result<usize, RtcpError> {
    let count = check_count(ssrcs.len())?;
    let total = RTCP_HEADER_LEN + 4 * ssrcs.len();
    let out = room(buf, total)?;
    header(out, count, PT_BYE, total)?;
    for (i, &ssrc) in ssrcs.iter().enumerate() {
        put_u32(out, 4 + 4 * i, ssrc);
    }
    Ok(total)
}

/// Groups lost sequence numbers into `(PID, BLP)` items. Given a list sorted in sequence order the
/// grouping is minimal; any order still covers every number (an out-of-window number starts an item).
#[derive(Debug, Clone)]
pub struct NackPairs<'a> {
    lost: &'a [u16],
}

impl<'a> NackPairs<'a> {
    pub fn new(lost: &'a [u16]) -> Self {
        Self { lost }
    }
}

impl Iterator for NackPairs<'_> {
    type Item = (u16, u16);

    fn next(&mut self) -> Option<(u16, u16)> {
        let (&pid, mut rest) = self.lost.split_first()?;
        let mut blp = 0u16;
        while let Some((&seq, tail)) = rest.split_first() {
            let distance = seq.wrapping_sub(pid);
            match distance {
                0 => {}
                1..=16 => blp |= 1 << (distance - 1),
                _ => break,
            }
            rest = tail;
        }
        self.lost = rest;
        Some((pid, blp))
    }
}

/// Generic NACK for `lost` (sorted in sequence order for the fewest items).
pub fn write_nack(buf: &mut [u8], sender_ssrc: u32, media_ssrc: u32, lost: &[u16]) -> Result<usize, RtcpError> {
    let items = NackPairs::new(lost).count();
    let total = 12 + 4 * items;
    let out = room(buf, total)?;
    header(out, FMT_NACK, PT_RTPFB, total)?;
    put_u32(out, 4, sender_ssrc);
    put_u32(out, 8, media_ssrc);
    for ((pid, blp), chunk) in NackPairs::new(lost).zip(out[12..].chunks_exact_mut(4)) {
        chunk[..2].copy_from_slice(&pid.to_be_bytes());
        chunk[2..].copy_from_slice(&blp.to_be_bytes());
    }
    Ok(total)
}

/// Transport-wide CC feedback around an FCI built elsewhere; zero bytes pad it to a 32-bit boundary
/// (the FCI's own counts tell a reader where it ends), so no P bit is needed mid-compound.
pub fn write_transport_cc(buf: &mut [u8], sender_ssrc: u32, media_ssrc: u32, fci: &[u8]) -> Result<usize, RtcpError> {
    let total = 12 + fci.len().div_ceil(4) * 4;
    let out = room(buf, total)?;
    header(out, FMT_TRANSPORT_CC, PT_RTPFB, total)?;
    put_u32(out, 4, sender_ssrc);
    put_u32(out, 8, media_ssrc);
    out[12..12 + fci.len()].copy_from_slice(fci);
    out[12 + fci.len()..total].fill(0);
    Ok(total)
}

pub fn write_pli(buf: &mut [u8], sender_ssrc: u32, media_ssrc: u32) -> Result<usize, RtcpError> {
    let out = room(buf, 12)?;
    header(out, FMT_PLI, PT_PSFB, 12)?;
    put_u32(out, 4, sender_ssrc);
    put_u32(out, 8, media_ssrc);
    Ok(12)
}

pub fn write_fir(buf: &mut [u8], sender_ssrc: u32, entries: &[FirEntry]) -> Result<usize, RtcpError> {
    let total = 12 + 8 * entries.len();
    let out = room(buf, total)?;
    header(out, FMT_FIR, PT_PSFB, total)?;
    put_u32(out, 4, sender_ssrc);
    put_u32(out, 8, 0);
    for (entry, chunk) in entries.iter().zip(out[12..].chunks_exact_mut(8)) {
        put_u32(chunk, 0, entry.ssrc);
        chunk[4] = entry.seq_nr;
        chunk[5..8].fill(0);
    }
    Ok(total)
}

/// REMB for up to 255 SSRCs. The bitrate is stored as an 18-bit mantissa and 6-bit exponent, so large
/// values lose their low bits (rounded down).
pub fn write_remb(buf: &mut [u8], sender_ssrc: u32, bitrate: u64, ssrcs: &[u32]) -> Result<usize, RtcpError> {
    let num = u8::try_from(ssrcs.len()).map_err(|_| RtcpError::TooManyItems(ssrcs.len()))?;
    let total = 20 + 4 * ssrcs.len();
    let out = room(buf, total)?;
    header(out, FMT_AFB, PT_PSFB, total)?;
    put_u32(out, 4, sender_ssrc);
    put_u32(out, 8, 0);
    out[12..16].copy_from_slice(REMB_ID);
    let exp = (64 - bitrate.leading_zeros()).saturating_sub(18);
    let mantissa = (bitrate >> exp) as u32;
    put_u32(out, 16, (u32::from(num) << 24) | (exp << 18) | mantissa);
    for (i, &ssrc) in ssrcs.iter().enumerate() {
        put_u32(out, 20 + 4 * i, ssrc);
    }
    Ok(total)
}

/// Writes packets one after another into one datagram. Every writer here emits whole 32-bit words and
/// no padding, so concatenating them is already a valid compound packet.
#[derive(Debug)]
pub struct RtcpCompoundWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> RtcpCompoundWriter<'a> {
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Appends one packet written by `write` (one of the `write_*` functions) into the remaining space.
    /// On error nothing is appended.
    pub fn push(&mut self, write: impl FnOnce(&mut [u8]) -> Result<usize, RtcpError>) -> Result<usize, RtcpError> {
        let rest = self.buf.get_mut(self.len..).unwrap_or_default();
        let n = write(rest)?;
        // A writer cannot report more than it was given; clamp in case a custom one does.
        self.len = (self.len + n).min(self.buf.len());
        Ok(n)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn block(i: u32) -> ReportBlock {
        ReportBlock {
            ssrc: 0x1000 + i,
            fraction_lost: 25,
            cumulative_lost: -3 - i as i32,
            extended_highest_seq: 0x0001_fffe + i,
            jitter: 77,
            last_sr: 0xabcd_0123,
            delay_since_last_sr: 65536 + i,
        }
    }

    fn only(buf: &[u8]) -> RtcpPacket<'_> {
        let mut it = RtcpCompound::iter(buf);
        let p = it.next().expect("one packet").expect("valid");
        assert!(it.next().is_none());
        p
    }

    fn nack_round_trip(lost: &[u16]) -> (Vec<(u16, u16)>, Vec<u16>) {
        let mut buf = [0u8; 256];
        let n = write_nack(&mut buf, 1, 2, lost).unwrap();
        let RtcpPacket::Nack(nack) = only(&buf[..n]) else { panic!("not a NACK") };
        assert_eq!((nack.sender_ssrc, nack.media_ssrc), (1, 2));
        (nack.items().collect(), nack.lost().collect())
    }

    #[test]
    fn sender_report_round_trip() {
        let info =
            SenderInfo { ssrc: 9, ntp: 0x0102_0304_0506_0708, rtp_timestamp: 3, packet_count: 4, octet_count: 5 };
        let blocks = [block(0), block(1)];
        let mut buf = [0u8; 100];
        let n = write_sender_report(&mut buf, &info, &blocks).unwrap();
        assert_eq!(n, 28 + 48);
        assert_eq!(buf[0], 0x82);
        let RtcpPacket::SenderReport(sr) = only(&buf[..n]) else { panic!() };
        assert_eq!(sr.info, info);
        assert_eq!(sr.report_blocks().collect::<Vec<_>>(), blocks);
    }

    #[test]
    fn receiver_report_round_trip_with_signed_cumulative_loss() {
        let mut blocks = [block(0), block(1), block(2)];
        blocks[1].cumulative_lost = 0x7f_ffff;
        blocks[2].cumulative_lost = -0x80_0000;
        let mut buf = [0u8; 100];
        let n = write_receiver_report(&mut buf, 7, &blocks).unwrap();
        let RtcpPacket::ReceiverReport(rr) = only(&buf[..n]) else { panic!() };
        assert_eq!(rr.ssrc, 7);
        assert_eq!(rr.report_blocks().collect::<Vec<_>>(), blocks);
        // Out-of-range values clamp instead of changing sign.
        let mut big = block(0);
        big.cumulative_lost = i32::MAX;
        let n = write_receiver_report(&mut buf, 7, &[big]).unwrap();
        let RtcpPacket::ReceiverReport(rr) = only(&buf[..n]) else { panic!() };
        assert_eq!(rr.report_blocks().next().unwrap().cumulative_lost, 0x7f_ffff);
        // An empty RR is 8 bytes.
        assert_eq!(write_receiver_report(&mut buf, 7, &[]).unwrap(), 8);
        assert_eq!(write_receiver_report(&mut buf, 7, &[block(0); 32]).unwrap_err(), RtcpError::TooManyItems(32));
    }

    #[test]
    fn sdes_cname_round_trip_at_every_alignment() {
        for len in 0..10 {
            let cname: Vec<u8> = (0..len).map(|i| b'a' + i as u8).collect();
            let mut buf = [0xffu8; 64];
            let n = write_sdes_cname(&mut buf, 0x55, &cname).unwrap();
            assert_eq!(n % 4, 0);
            let RtcpPacket::Sdes(sdes) = only(&buf[..n]) else { panic!() };
            let chunks: Vec<_> = sdes.chunks().collect();
            assert_eq!(chunks, [SdesChunk { ssrc: 0x55, cname: Some(&cname[..]) }]);
        }
        let mut buf = [0u8; 300];
        assert_eq!(write_sdes_cname(&mut buf, 1, &[b'x'; 256]).unwrap_err(), RtcpError::ItemTooLong(256));
    }

    #[test]
    fn sdes_with_two_chunks_and_other_items() {
        // Chunk 1: NAME item then CNAME; chunk 2: CNAME only.
        let mut p = vec![0x82, PT_SDES, 0, 0];
        p.extend(1u32.to_be_bytes());
        // Items take bytes 4..11 of the chunk; END at 11 reaches the 32-bit boundary at 12.
        p.extend([2, 1, b'n', 1, 2, b'c', b'1', 0]);
        p.extend(2u32.to_be_bytes());
        p.extend([1, 1, b'z', 0]);
        let words = (p.len() / 4 - 1) as u16;
        p[2..4].copy_from_slice(&words.to_be_bytes());
        let RtcpPacket::Sdes(sdes) = only(&p) else { panic!() };
        let chunks: Vec<_> = sdes.chunks().collect();
        assert_eq!(
            chunks,
            [SdesChunk { ssrc: 1, cname: Some(&b"c1"[..]) }, SdesChunk { ssrc: 2, cname: Some(&b"z"[..]) }]
        );
    }

    #[test]
    fn bye_round_trip_and_reason() {
        let mut buf = [0u8; 64];
        let n = write_bye(&mut buf, &[1, 2, 3]).unwrap();
        let RtcpPacket::Bye(bye) = only(&buf[..n]) else { panic!() };
        assert_eq!(bye.ssrcs().collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(bye.reason(), None);
        let p = [0x81, PT_BYE, 0, 2, 0, 0, 0, 9, 3, b'b', b'y', b'e'];
        let RtcpPacket::Bye(bye) = only(&p) else { panic!() };
        assert_eq!((bye.ssrcs().collect::<Vec<_>>(), bye.reason()), (vec![9], Some(&b"bye"[..])));
    }

    #[test]
    fn nack_single_loss() {
        assert_eq!(nack_round_trip(&[100]), (vec![(100, 0)], vec![100]));
    }

    #[test]
    fn nack_run_fills_one_item() {
        let lost: Vec<u16> = (100..=116).collect();
        assert_eq!(nack_round_trip(&lost), (vec![(100, 0xffff)], lost.clone()));
        let lost: Vec<u16> = (100..=117).collect();
        assert_eq!(nack_round_trip(&lost), (vec![(100, 0xffff), (117, 0)], lost.clone()));
    }

    #[test]
    fn nack_gaps() {
        let lost = [10, 12, 26, 27, 60, 1000];
        let (items, back) = nack_round_trip(&lost);
        assert_eq!(items, [(10, 0b10 | 1 << 15), (27, 0), (60, 0), (1000, 0)]);
        assert_eq!(back, lost);
        // Distance exactly 17 needs a new item.
        assert_eq!(nack_round_trip(&[5, 22]).0, [(5, 0), (22, 0)]);
    }

    #[test]
    fn nack_across_the_sequence_wrap_and_with_duplicates() {
        let lost = [65534, 65535, 0, 3];
        let (items, back) = nack_round_trip(&lost);
        assert_eq!(items, [(65534, 0b1_0011)]);
        assert_eq!(back, lost);
        assert_eq!(nack_round_trip(&[7, 7, 8]).1, [7, 8]);
        assert_eq!(nack_round_trip(&[]).0, []);
        // Unsorted input still covers every number.
        let (_, mut back) = nack_round_trip(&[50, 3, 51, 4]);
        back.sort();
        assert_eq!(back, [3, 4, 50, 51]);
    }

    #[test]
    fn pli_fir_remb_round_trip() {
        let mut buf = [0u8; 64];
        let n = write_pli(&mut buf, 1, 2).unwrap();
        assert_eq!(only(&buf[..n]), RtcpPacket::Pli(Pli { sender_ssrc: 1, media_ssrc: 2 }));

        let entries = [FirEntry { ssrc: 5, seq_nr: 1 }, FirEntry { ssrc: 6, seq_nr: 255 }];
        let n = write_fir(&mut buf, 3, &entries).unwrap();
        let RtcpPacket::Fir(fir) = only(&buf[..n]) else { panic!() };
        assert_eq!((fir.sender_ssrc, fir.media_ssrc), (3, 0));
        assert_eq!(fir.entries().collect::<Vec<_>>(), entries);

        for bitrate in [0u64, 1, 0x3_ffff, 300_000, 2_500_000, 1 << 40] {
            let n = write_remb(&mut buf, 4, bitrate, &[7, 8]).unwrap();
            let RtcpPacket::Remb(remb) = only(&buf[..n]) else { panic!() };
            assert_eq!(remb.sender_ssrc, 4);
            assert_eq!(remb.ssrcs().collect::<Vec<_>>(), [7, 8]);
            // 18 significant bits survive; the rest round down.
            assert!(remb.bitrate <= bitrate && bitrate - remb.bitrate < (bitrate >> 17).max(1), "{bitrate}");
        }
        assert_eq!(write_remb(&mut buf, 4, 300_000, &[0; 256]).unwrap_err(), RtcpError::TooManyItems(256));
    }

    #[test]
    fn remb_with_an_overflowing_exponent_saturates() {
        let mut p = vec![0x8f, PT_PSFB, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0];
        p.extend(b"REMB");
        p.extend([0, 0xff, 0xff, 0xff]); // exp 63, mantissa 0x3ffff
        let RtcpPacket::Remb(remb) = only(&p) else { panic!() };
        assert_eq!(remb.bitrate, u64::MAX);
        p[16] = 3; // three SSRCs claimed, none present
        assert_eq!(
            RtcpCompound::iter(&p).next(),
            Some(Err(RtcpError::CountExceedsLength { packet_type: PT_PSFB, count: 3 }))
        );
    }

    #[test]
    fn transport_cc_is_passed_through_raw_and_padded() {
        let mut buf = [0xeeu8; 64];
        let n = write_transport_cc(&mut buf, 1, 2, &[1, 2, 3, 4, 5]).unwrap();
        assert_eq!(n, 20);
        let RtcpPacket::TransportCc(cc) = only(&buf[..n]) else { panic!() };
        assert_eq!((cc.sender_ssrc, cc.media_ssrc, cc.fci), (1, 2, &[1, 2, 3, 4, 5, 0, 0, 0][..]));
    }

    #[test]
    fn compound_of_every_writer_parses_in_order() {
        let mut buf = [0u8; 1024];
        let mut w = RtcpCompoundWriter::new(&mut buf);
        let info = SenderInfo { ssrc: 1, ..Default::default() };
        w.push(|b| write_sender_report(b, &info, &[block(0)])).unwrap();
        w.push(|b| write_sdes_cname(b, 1, b"octo")).unwrap();
        w.push(|b| write_receiver_report(b, 1, &[])).unwrap();
        w.push(|b| write_nack(b, 1, 2, &[5, 6])).unwrap();
        w.push(|b| write_pli(b, 1, 2)).unwrap();
        w.push(|b| write_fir(b, 1, &[FirEntry { ssrc: 2, seq_nr: 3 }])).unwrap();
        w.push(|b| write_remb(b, 1, 1_000_000, &[2])).unwrap();
        w.push(|b| write_transport_cc(b, 1, 2, &[9])).unwrap();
        w.push(|b| write_bye(b, &[1])).unwrap();
        let kinds: Vec<_> = RtcpCompound::iter(w.as_bytes())
            .map(|p| match p.unwrap() {
                RtcpPacket::SenderReport(_) => "sr",
                RtcpPacket::ReceiverReport(_) => "rr",
                RtcpPacket::Sdes(_) => "sdes",
                RtcpPacket::Bye(_) => "bye",
                RtcpPacket::Nack(_) => "nack",
                RtcpPacket::TransportCc(_) => "twcc",
                RtcpPacket::Pli(_) => "pli",
                RtcpPacket::Fir(_) => "fir",
                RtcpPacket::Remb(_) => "remb",
                RtcpPacket::Unknown { .. } => "unknown",
            })
            .collect();
        assert_eq!(kinds, ["sr", "sdes", "rr", "nack", "pli", "fir", "remb", "twcc", "bye"]);
    }

    #[test]
    fn compound_writer_reports_a_full_buffer_and_keeps_what_fit() {
        let mut buf = [0u8; 20];
        let mut w = RtcpCompoundWriter::new(&mut buf);
        assert_eq!(w.push(|b| write_pli(b, 1, 2)), Ok(12));
        assert_eq!(w.push(|b| write_pli(b, 1, 2)), Err(RtcpError::BufferTooSmall { needed: 12, available: 8 }));
        assert_eq!(w.len(), 12);
        let mut tiny = [0u8; 10];
        assert!(write_sender_report(&mut tiny, &SenderInfo::default(), &[]).is_err());
        assert!(write_nack(&mut tiny, 1, 2, &[1]).is_err());
        assert!(write_sdes_cname(&mut tiny, 1, b"abc").is_err());
        assert!(write_bye(&mut tiny, &[1, 2, 3]).is_err());
        assert!(write_fir(&mut tiny, 1, &[]).is_err());
        assert!(write_remb(&mut tiny, 1, 1, &[]).is_err());
        assert!(write_transport_cc(&mut tiny, 1, 1, &[]).is_err());
    }

    #[test]
    fn unknown_types_and_formats_are_reported_and_skipped() {
        let mut p = Vec::new();
        p.extend([0x80, PT_APP, 0, 2, 0, 0, 0, 1, b'n', b'a', b'm', b'e']);
        p.extend([0x80, PT_XR, 0, 1, 0, 0, 0, 1]);
        p.extend([0x8f, PT_PSFB, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, b'A', b'B', b'C', b'D']);
        p.extend([0x83, PT_RTPFB, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
        p.extend([0x81, PT_PSFB, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
        let got: Vec<_> = RtcpCompound::iter(&p).collect();
        assert_eq!(
            got,
            [
                Ok(RtcpPacket::Unknown { packet_type: PT_APP, count_or_fmt: 0 }),
                Ok(RtcpPacket::Unknown { packet_type: PT_XR, count_or_fmt: 0 }),
                Ok(RtcpPacket::Unknown { packet_type: PT_PSFB, count_or_fmt: 15 }),
                Ok(RtcpPacket::Unknown { packet_type: PT_RTPFB, count_or_fmt: 3 }),
                Ok(RtcpPacket::Pli(Pli { sender_ssrc: 1, media_ssrc: 2 })),
            ]
        );
    }

    #[test]
    fn lying_lengths_and_counts_are_errors() {
        // Length says 3 words but only 2 are there: the compound ends.
        let p = [0x80, PT_RR, 0, 2, 0, 0, 0, 1];
        assert_eq!(
            RtcpCompound::iter(&p).collect::<Vec<_>>(),
            [Err(RtcpError::LengthExceedsBuffer { claimed: 12, available: 8 })]
        );
        // RR claims one report block but has none; the next packet is still read.
        let mut p = vec![0x81, PT_RR, 0, 1, 0, 0, 0, 1];
        p.extend([0x81, PT_PSFB, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
        let got: Vec<_> = RtcpCompound::iter(&p).collect();
        assert_eq!(got[0], Err(RtcpError::CountExceedsLength { packet_type: PT_RR, count: 1 }));
        assert!(matches!(got[1], Ok(RtcpPacket::Pli(_))));
        // SR too short for its sender info.
        assert_eq!(RtcpCompound::iter(&[0x80, PT_SR, 0, 1, 0, 0, 0, 1]).next(), Some(Err(RtcpError::TooShort(8))));
        // Feedback without its two SSRCs.
        assert_eq!(RtcpCompound::iter(&[0x81, PT_PSFB, 0, 1, 0, 0, 0, 1]).next(), Some(Err(RtcpError::TooShort(8))));
        // BYE claiming more SSRCs than it has.
        assert!(matches!(RtcpCompound::iter(&[0x83, PT_BYE, 0, 1, 0, 0, 0, 1]).next(), Some(Err(_))));
        // Wrong version, and trailing bytes shorter than a header.
        assert_eq!(RtcpCompound::iter(&[0x40, PT_RR, 0, 1, 0, 0, 0, 1]).next(), Some(Err(RtcpError::BadVersion(1))));
        let got: Vec<_> = RtcpCompound::iter(&[0x80, PT_RR, 0, 1, 0, 0, 0, 1, 0x80]).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], Err(RtcpError::TooShort(1)));
    }

    #[test]
    fn padding_is_checked_and_stripped() {
        // PLI padded by 4 bytes (count 4 in the last byte).
        let p = [0xa1, PT_PSFB, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 4];
        assert_eq!(only(&p), RtcpPacket::Pli(Pli { sender_ssrc: 1, media_ssrc: 2 }));
        let mut bad = p;
        bad[15] = 0;
        assert_eq!(RtcpCompound::iter(&bad).next(), Some(Err(RtcpError::BadPadding(0))));
        bad[15] = 13;
        assert_eq!(RtcpCompound::iter(&bad).next(), Some(Err(RtcpError::BadPadding(13))));
        // Padding that eats the SSRCs leaves a packet too short.
        bad[15] = 12;
        assert_eq!(RtcpCompound::iter(&bad).next(), Some(Err(RtcpError::TooShort(4))));
    }

    /// Walks everything a packet offers.
    fn exercise(buf: &[u8]) {
        for p in RtcpCompound::iter(buf).take(1000) {
            match p {
                Ok(RtcpPacket::SenderReport(sr)) => assert!(sr.report_blocks().count() <= 31),
                Ok(RtcpPacket::ReceiverReport(rr)) => assert!(rr.report_blocks().count() <= 31),
                Ok(RtcpPacket::Sdes(s)) => {
                    let _ = s.chunks().count();
                }
                Ok(RtcpPacket::Bye(b)) => {
                    let _ = (b.ssrcs().count(), b.reason());
                }
                Ok(RtcpPacket::Nack(n)) => {
                    let _ = (n.items().count(), n.lost().count());
                }
                Ok(RtcpPacket::Fir(f)) => {
                    let _ = f.entries().count();
                }
                Ok(RtcpPacket::Remb(r)) => {
                    let _ = r.ssrcs().count();
                }
                Ok(RtcpPacket::TransportCc(_) | RtcpPacket::Pli(_) | RtcpPacket::Unknown { .. }) | Err(_) => {}
            }
        }
    }

    fn valid_compound() -> Vec<u8> {
        let mut buf = vec![0u8; 512];
        let mut w = RtcpCompoundWriter::new(&mut buf);
        let info = SenderInfo { ssrc: 1, ..Default::default() };
        w.push(|b| write_sender_report(b, &info, &[block(0), block(1)])).unwrap();
        w.push(|b| write_sdes_cname(b, 1, b"cname")).unwrap();
        w.push(|b| write_nack(b, 1, 2, &[1, 2, 40])).unwrap();
        w.push(|b| write_fir(b, 1, &[FirEntry { ssrc: 2, seq_nr: 3 }])).unwrap();
        w.push(|b| write_remb(b, 1, 5_000_000, &[2, 3])).unwrap();
        w.push(|b| write_bye(b, &[1])).unwrap();
        let n = w.len();
        buf.truncate(n);
        buf
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            exercise(&bytes);
        }

        #[test]
        fn random_bytes_behind_a_valid_header_never_panic(
            pt in 200u8..=207,
            count in 0u8..32,
            body in proptest::collection::vec(any::<u8>(), 0..120),
        ) {
            let words = (body.len() / 4) as u16;
            let mut p = vec![0x80 | count, pt];
            p.extend(words.to_be_bytes());
            p.extend(&body[..body.len() / 4 * 4]);
            exercise(&p);
        }

        #[test]
        fn mutated_and_truncated_compounds_never_panic(
            cut in any::<prop::sample::Index>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let mut p = valid_compound();
            exercise(&p[..cut.index(p.len() + 1)]);
            for (at, x) in flips {
                let i = at.index(p.len());
                p[i] ^= x;
            }
            exercise(&p);
        }

        #[test]
        fn nack_encoding_round_trips(mut lost in proptest::collection::btree_set(any::<u16>(), 0..60)) {
            let lost: Vec<u16> = std::mem::take(&mut lost).into_iter().collect();
            let mut buf = vec![0u8; 12 + 4 * lost.len()];
            let n = write_nack(&mut buf, 1, 2, &lost).unwrap();
            let RtcpPacket::Nack(nack) = only(&buf[..n]) else { panic!() };
            prop_assert_eq!(nack.lost().collect::<Vec<_>>(), lost);
        }
    }
}
