//! Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01).
//!
//! The receiving side records the arrival time of every packet carrying the transport-wide sequence
//! number header extension and reports them back in RTCP RTPFB (PT 205) FMT 15 packets. The sender
//! (Chrome's GCC) derives its delay gradient and loss from these reports; without them its estimate
//! never ramps up.
//!
//! ```text
//!  |V=2|P| FMT=15 | PT=205 |          length               |
//!  |                 SSRC of packet sender                  |
//!  |                 SSRC of media source                   |
//!  |  base sequence number   |   packet status count        |
//!  |          reference time (24 bits)       | fb pkt count |
//!  | packet chunk | packet chunk | ... | recv deltas ... | zero padding |
//! ```
//!
//! Times in a report: the reference time counts 64 ms units; each received packet has a receive
//! delta in 250 µs ticks relative to the previous received packet (the first one relative to the
//! reference time). Arrival times are quantised to ticks *before* taking differences, so rounding
//! never accumulates across a report.

use std::time::{Duration, Instant};

use thiserror::Error;

/// RTCP packet type of transport-layer feedback (RFC 4585).
pub const RTCP_PT_RTPFB: u8 = 205;
/// Feedback message type of transport-wide CC inside RTPFB.
pub const TWCC_FMT: u8 = 15;
/// How often the caller should ask for feedback. libwebrtc and mediasoup both default to 100 ms;
/// use [`TwccRecorder::set_interval`] for 50 ms at high bitrates.
pub const TWCC_DEFAULT_INTERVAL: Duration = Duration::from_millis(100);
/// The smallest `out` buffer with which [`TwccRecorder::poll_feedback`] always makes progress: a run
/// of losses, a chunk with the first received packet and its (one-byte) delta, padded. Smaller
/// buffers may return `None` even though something is pending.
pub const TWCC_MIN_PACKET_SIZE: usize = 28;

/// RTCP header (4) + sender SSRC (4) + media SSRC (4).
const RTCP_FB_HEADER_LEN: usize = 12;
/// Base seq (2) + status count (2) + reference time (3) + feedback packet count (1).
const FCI_FIXED_LEN: usize = 8;
const PACKET_FIXED_LEN: usize = RTCP_FB_HEADER_LEN + FCI_FIXED_LEN;
/// Arrival history kept for late (reordered) packets and for not-yet-reported ranges. A power of two
/// so the slot index is a mask. At 100 ms feedback intervals this covers ~40k packets/s.
const HISTORY: usize = 4096;
const TICK_US: i64 = 250;
/// 64 ms in 250 µs ticks.
const TICKS_PER_REFERENCE_UNIT: i64 = 256;
const REFERENCE_UNIT_US: i64 = 64_000;
const MAX_RUN_LENGTH: usize = 0x1FFF;
const ONE_BIT_VECTOR_SYMBOLS: usize = 14;
const TWO_BIT_VECTOR_SYMBOLS: usize = 7;

/// Packet status symbols of the draft (two-bit values).
const SYMBOL_NOT_RECEIVED: u8 = 0;
const SYMBOL_SMALL_DELTA: u8 = 1;
const SYMBOL_LARGE_DELTA: u8 = 2;
const SYMBOL_RESERVED: u8 = 3;

/// A reason a TWCC feedback could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TwccError {
    #[error("transport-cc feedback truncated")]
    Truncated,
    #[error("transport-cc feedback reports no packets")]
    Empty,
    #[error("transport-cc feedback uses the reserved packet status symbol")]
    ReservedSymbol,
    #[error("not an RTCP transport-cc feedback packet")]
    NotTwcc,
    #[error("RTCP length field does not match the packet")]
    BadLength,
    #[error("RTCP padding is invalid")]
    BadPadding,
}

/// Counters for stats and debugging.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TwccRecorderStats {
    pub packets_recorded: u64,
    pub duplicates: u64,
    /// Arrived more than the history window behind the newest packet: ignored.
    pub too_old: u64,
    pub feedback_packets: u64,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Extended sequence number this slot currently describes; `u64::MAX` when empty.
    ext_seq: u64,
    /// Microseconds since the recorder's epoch (first arrival).
    arrival_us: i64,
}

/// Receive side of transport-wide CC for one transport: records arrivals, writes feedback.
///
/// Arrival times are measured from the first recorded arrival; `record` expects them in arrival
/// order (an earlier `Instant` than the first one counts as the first).
#[derive(Debug)]
pub struct TwccRecorder {
    sender_ssrc: u32,
    slots: Box<[Slot]>,
    epoch: Option<Instant>,
    /// Highest extended sequence number received.
    highest: Option<u64>,
    /// First extended sequence number not yet reported.
    next_unreported: u64,
    /// Highest seq the current feedback round reports; `Some` while a round is split over packets.
    round_end: Option<u64>,
    round_started: Option<Instant>,
    interval: Duration,
    fb_pkt_count: u8,
    /// Reused per feedback: status symbols and deltas (ticks) of the candidate range.
    symbols: Vec<u8>,
    deltas: Vec<i16>,
    stats: TwccRecorderStats,
}

impl TwccRecorder {
    pub fn new(sender_ssrc: u32) -> Self {
        Self {
            sender_ssrc,
            slots: vec![Slot { ext_seq: u64::MAX, arrival_us: 0 }; HISTORY].into_boxed_slice(),
            epoch: None,
            highest: None,
            next_unreported: 0,
            round_end: None,
            round_started: None,
            interval: TWCC_DEFAULT_INTERVAL,
            fb_pkt_count: 0,
            symbols: Vec::with_capacity(HISTORY),
            deltas: Vec::with_capacity(HISTORY),
            stats: TwccRecorderStats::default(),
        }
    }

    /// Feedback interval (default [`TWCC_DEFAULT_INTERVAL`]).
    pub fn set_interval(&mut self, interval: Duration) {
        self.interval = interval;
    }

    pub fn stats(&self) -> TwccRecorderStats {
        self.stats
    }

    /// Records the arrival of the packet with transport-wide sequence number `transport_seq`.
    pub fn record(&mut self, transport_seq: u16, arrival: Instant) {
        let epoch = *self.epoch.get_or_insert(arrival);
        let arrival_us = i64::try_from(arrival.saturating_duration_since(epoch).as_micros()).unwrap_or(i64::MAX);
        let ext = match self.highest {
            // Start far from zero so that unwrapping backwards can never underflow.
            None => (1u64 << 32) | u64::from(transport_seq),
            Some(highest) => {
                let diff = transport_seq.wrapping_sub(highest as u16) as i16;
                highest.wrapping_add_signed(i64::from(diff))
            }
        };
        let highest = match self.highest {
            None => {
                self.next_unreported = ext;
                ext
            }
            Some(highest) if ext > highest => ext,
            Some(highest) => {
                if highest - ext >= HISTORY as u64 {
                    self.stats.too_old += 1;
                    return;
                }
                highest
            }
        };
        self.highest = Some(highest);
        let slot = &mut self.slots[slot_index(ext)];
        if slot.ext_seq == ext {
            self.stats.duplicates += 1;
            return;
        }
        *slot = Slot { ext_seq: ext, arrival_us };
        self.stats.packets_recorded += 1;
        // A late packet whose seq was already reported as lost: report again from it (as libwebrtc
        // does), so the sender learns it arrived after all.
        if ext < self.next_unreported {
            self.next_unreported = ext;
        }
        // Never keep a pending range longer than the history (slots behind it are overwritten).
        let oldest_kept = highest.saturating_sub(HISTORY as u64 - 1);
        if self.next_unreported < oldest_kept {
            self.next_unreported = oldest_kept;
        }
    }

    /// When the next feedback is due, if anything is waiting to be reported.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let highest = self.highest?;
        if self.next_unreported > highest {
            return None;
        }
        match self.round_started {
            // A split round: the rest is due at once.
            Some(started) if self.round_end.is_some() => Some(started),
            Some(started) => Some(started + self.interval),
            // Never sent: due at the first arrival.
            None => self.epoch,
        }
    }

    /// Writes one complete RTCP transport-cc feedback packet into `out` and returns its length, or
    /// `None` when nothing is due. Call it when [`Self::poll_timeout`] expires and keep calling it
    /// while it returns `Some`: a round that does not fit one packet (the size of `out`, the 16-bit
    /// receive-delta range, or 65535 statuses) continues in further packets.
    pub fn poll_feedback(&mut self, now: Instant, media_ssrc: u32, out: &mut [u8]) -> Option<usize> {
        let highest = self.highest?;
        if self.next_unreported > highest {
            self.round_end = None;
            return None;
        }
        let round_end = match self.round_end {
            Some(end) => end,
            None => {
                if self.round_started.is_some_and(|started| now < started + self.interval) {
                    return None;
                }
                self.round_started = Some(now);
                self.round_end = Some(highest);
                highest
            }
        };
        let start = self.next_unreported;
        if start > round_end {
            self.round_end = None;
            return None;
        }
        let written = self.write_feedback(start, round_end, media_ssrc, out);
        match written {
            Some((len, count)) => {
                self.next_unreported = start + count as u64;
                if self.next_unreported > round_end {
                    self.round_end = None;
                }
                self.fb_pkt_count = self.fb_pkt_count.wrapping_add(1);
                self.stats.feedback_packets += 1;
                Some(len)
            }
            None => None,
        }
    }

    fn arrival(&self, ext: u64) -> Option<i64> {
        let slot = &self.slots[slot_index(ext)];
        (slot.ext_seq == ext).then_some(slot.arrival_us)
    }

    /// Writes a packet reporting `start..` (at most up to `end`); returns (length, statuses).
    fn write_feedback(&mut self, start: u64, end: u64, media_ssrc: u32, out: &mut [u8]) -> Option<(usize, usize)> {
        // Reference time: the 64 ms unit holding the first received packet, so its delta is 0..=255.
        let first_arrival = (start..=end).find_map(|ext| self.arrival(ext))?;
        let reference_units = first_arrival.div_euclid(REFERENCE_UNIT_US);
        let mut previous_ticks = reference_units * TICKS_PER_REFERENCE_UNIT;

        let mut symbols = std::mem::take(&mut self.symbols);
        let mut deltas = std::mem::take(&mut self.deltas);
        symbols.clear();
        deltas.clear();
        let mut ext = start;
        while ext <= end && symbols.len() < usize::from(u16::MAX) {
            match self.arrival(ext) {
                Some(arrival_us) => {
                    let ticks = arrival_us.div_euclid(TICK_US);
                    let Ok(delta) = i16::try_from(ticks - previous_ticks) else {
                        break; // needs a new reference time: next packet
                    };
                    previous_ticks = ticks;
                    symbols.push(if (0..=255).contains(&delta) { SYMBOL_SMALL_DELTA } else { SYMBOL_LARGE_DELTA });
                    deltas.push(delta);
                }
                None => symbols.push(SYMBOL_NOT_RECEIVED),
            }
            ext += 1;
        }

        let count = fitting_statuses(&symbols, out.len());
        let result = if count == 0 {
            None
        } else {
            let header = FeedbackHeader {
                sender_ssrc: self.sender_ssrc,
                media_ssrc,
                base_seq: start as u16,
                reference_time: (reference_units as u32) & 0x00FF_FFFF,
                fb_pkt_count: self.fb_pkt_count,
            };
            write_packet(&header, &symbols[..count], &deltas, out).map(|len| (len, count))
        };
        self.symbols = symbols;
        self.deltas = deltas;
        result
    }
}

fn slot_index(ext: u64) -> usize {
    (ext as usize) & (HISTORY - 1)
}

struct FeedbackHeader {
    sender_ssrc: u32,
    media_ssrc: u32,
    base_seq: u16,
    reference_time: u32,
    fb_pkt_count: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    RunLength { symbol: u8, len: usize },
    OneBit { len: usize },
    TwoBit { len: usize },
}

impl Chunk {
    fn len(self) -> usize {
        match self {
            Chunk::RunLength { len, .. } | Chunk::OneBit { len } | Chunk::TwoBit { len } => len,
        }
    }
}

/// Chooses the chunk encoding the next symbols: a run when it covers at least as many symbols as a
/// vector would, a one-bit vector when no large delta is in reach, a two-bit vector otherwise.
fn plan_chunk(symbols: &[u8]) -> Chunk {
    let Some(&first) = symbols.first() else {
        return Chunk::RunLength { symbol: SYMBOL_NOT_RECEIVED, len: 0 };
    };
    let run = symbols.iter().take(MAX_RUN_LENGTH).take_while(|&&s| s == first).count();
    if run >= ONE_BIT_VECTOR_SYMBOLS || run == symbols.len() {
        return Chunk::RunLength { symbol: first, len: run };
    }
    let window = symbols.len().min(ONE_BIT_VECTOR_SYMBOLS);
    if symbols[..window].iter().all(|&s| s != SYMBOL_LARGE_DELTA) {
        return Chunk::OneBit { len: window };
    }
    if run >= TWO_BIT_VECTOR_SYMBOLS {
        return Chunk::RunLength { symbol: first, len: run };
    }
    Chunk::TwoBit { len: symbols.len().min(TWO_BIT_VECTOR_SYMBOLS) }
}

fn delta_size(symbol: u8) -> usize {
    match symbol {
        SYMBOL_SMALL_DELTA => 1,
        SYMBOL_LARGE_DELTA => 2,
        _ => 0,
    }
}

fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// How many of `symbols` one packet of at most `max_len` bytes can report. The packet must end with a
/// received packet (trailing losses are left for the next packet, which will know more).
fn fitting_statuses(symbols: &[u8], max_len: usize) -> usize {
    let mut size = PACKET_FIXED_LEN;
    let mut fitting = 0;
    let mut last_received_end = 0;
    let mut pos = 0;
    'chunks: while pos < symbols.len() {
        let chunk = plan_chunk(&symbols[pos..]);
        size += 2;
        for &symbol in &symbols[pos..pos + chunk.len()] {
            let with_symbol = size + delta_size(symbol);
            if padded(with_symbol) > max_len {
                break 'chunks;
            }
            size = with_symbol;
            fitting += 1;
            if symbol != SYMBOL_NOT_RECEIVED {
                last_received_end = fitting;
            }
        }
        pos += chunk.len();
    }
    last_received_end
}

fn write_packet(header: &FeedbackHeader, symbols: &[u8], deltas: &[i16], out: &mut [u8]) -> Option<usize> {
    let mut w = Writer { buf: out, pos: PACKET_FIXED_LEN };
    let mut pos = 0;
    while pos < symbols.len() {
        let chunk = plan_chunk(&symbols[pos..]);
        let chunk_symbols = &symbols[pos..pos + chunk.len()];
        let word: u16 = match chunk {
            Chunk::RunLength { symbol, len } => (u16::from(symbol) << 13) | (len as u16),
            Chunk::OneBit { .. } => {
                let mut word = 0x8000u16;
                for (i, &s) in chunk_symbols.iter().enumerate() {
                    word |= u16::from(s & 1) << (13 - i);
                }
                word
            }
            Chunk::TwoBit { .. } => {
                let mut word = 0xC000u16;
                for (i, &s) in chunk_symbols.iter().enumerate() {
                    word |= u16::from(s & 3) << (12 - 2 * i);
                }
                word
            }
        };
        w.put(&word.to_be_bytes())?;
        pos += chunk.len();
    }
    let mut deltas = deltas.iter();
    for &symbol in symbols {
        match symbol {
            SYMBOL_SMALL_DELTA => w.put(&[*deltas.next()? as u8])?,
            SYMBOL_LARGE_DELTA => w.put(&deltas.next()?.to_be_bytes())?,
            _ => {}
        }
    }
    while !w.pos.is_multiple_of(4) {
        w.put(&[0])?;
    }
    let len = w.pos;
    let words = u16::try_from(len / 4 - 1).ok()?;
    let fixed = out.get_mut(..PACKET_FIXED_LEN)?;
    fixed[0] = 0x80 | TWCC_FMT;
    fixed[1] = RTCP_PT_RTPFB;
    fixed[2..4].copy_from_slice(&words.to_be_bytes());
    fixed[4..8].copy_from_slice(&header.sender_ssrc.to_be_bytes());
    fixed[8..12].copy_from_slice(&header.media_ssrc.to_be_bytes());
    fixed[12..14].copy_from_slice(&header.base_seq.to_be_bytes());
    fixed[14..16].copy_from_slice(&(symbols.len() as u16).to_be_bytes());
    fixed[16..19].copy_from_slice(&header.reference_time.to_be_bytes()[1..]);
    fixed[19] = header.fb_pkt_count;
    Some(len)
}

struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.pos.checked_add(bytes.len())?;
        self.buf.get_mut(self.pos..end)?.copy_from_slice(bytes);
        self.pos = end;
        Some(())
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing (the sender side: tests here, the load generator later).

/// A validated transport-cc FCI; iterate [`TwccFeedback::packets`] for the per-packet statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwccFeedback<'a> {
    pub base_seq: u16,
    pub status_count: u16,
    /// 24-bit reference time in 64 ms units (wraps; the sender unwraps across feedbacks).
    pub reference_time: u32,
    pub fb_pkt_count: u8,
    chunks: &'a [u8],
    deltas: &'a [u8],
}

/// One reported packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwccPacketStatus {
    pub seq: u16,
    /// Receive delta in 250 µs ticks; `None` when the packet was not received.
    pub delta_ticks: Option<i16>,
    /// Arrival time in µs on the receiver's clock: reference time × 64 ms + the running sum of deltas.
    pub arrival_us: Option<i64>,
}

/// Parses and validates the FCI of a transport-cc feedback (everything after the media SSRC).
/// Trailing bytes (zero padding) are ignored.
pub fn parse_twcc_fci(fci: &[u8]) -> Result<TwccFeedback<'_>, TwccError> {
    let fixed = fci.get(..FCI_FIXED_LEN).ok_or(TwccError::Truncated)?;
    let base_seq = u16::from_be_bytes([fixed[0], fixed[1]]);
    let status_count = u16::from_be_bytes([fixed[2], fixed[3]]);
    let reference_time = u32::from_be_bytes([0, fixed[4], fixed[5], fixed[6]]);
    let fb_pkt_count = fixed[7];
    if status_count == 0 {
        return Err(TwccError::Empty);
    }
    let body = &fci[FCI_FIXED_LEN..];
    let mut remaining = usize::from(status_count);
    let mut pos = 0;
    let mut delta_bytes = 0usize;
    while remaining > 0 {
        let chunk = read_u16(body, pos).ok_or(TwccError::Truncated)?;
        pos += 2;
        let len = chunk_symbol_count(chunk).min(remaining);
        for i in 0..len {
            let symbol = chunk_symbol(chunk, i);
            if symbol == SYMBOL_RESERVED {
                return Err(TwccError::ReservedSymbol);
            }
            delta_bytes += delta_size(symbol);
        }
        remaining -= len;
    }
    let chunks = &body[..pos];
    let deltas = body.get(pos..pos + delta_bytes).ok_or(TwccError::Truncated)?;
    Ok(TwccFeedback { base_seq, status_count, reference_time, fb_pkt_count, chunks, deltas })
}

/// Parses a whole RTCP transport-cc packet: returns (sender SSRC, media SSRC, feedback).
pub fn parse_twcc_packet(packet: &[u8]) -> Result<(u32, u32, TwccFeedback<'_>), TwccError> {
    let header = packet.get(..RTCP_FB_HEADER_LEN).ok_or(TwccError::Truncated)?;
    if header[0] >> 6 != 2 || header[0] & 0x1F != TWCC_FMT || header[1] != RTCP_PT_RTPFB {
        return Err(TwccError::NotTwcc);
    }
    let len = (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1) * 4;
    // A length field too short for the feedback header lies about the packet.
    if len < RTCP_FB_HEADER_LEN {
        return Err(TwccError::BadLength);
    }
    let mut packet = packet.get(..len).ok_or(TwccError::BadLength)?;
    if header[0] & 0x20 != 0 {
        let padding = usize::from(*packet.last().ok_or(TwccError::BadPadding)?);
        if padding == 0 || padding > len - RTCP_FB_HEADER_LEN {
            return Err(TwccError::BadPadding);
        }
        packet = &packet[..len - padding];
    }
    let sender = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let media = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    Ok((sender, media, parse_twcc_fci(&packet[RTCP_FB_HEADER_LEN..])?))
}

fn read_u16(buf: &[u8], pos: usize) -> Option<u16> {
    let bytes = buf.get(pos..pos.checked_add(2)?)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

fn chunk_symbol_count(chunk: u16) -> usize {
    if chunk & 0x8000 == 0 {
        usize::from(chunk & 0x1FFF)
    } else if chunk & 0x4000 == 0 {
        ONE_BIT_VECTOR_SYMBOLS
    } else {
        TWO_BIT_VECTOR_SYMBOLS
    }
}

fn chunk_symbol(chunk: u16, i: usize) -> u8 {
    if chunk & 0x8000 == 0 {
        ((chunk >> 13) & 3) as u8
    } else if chunk & 0x4000 == 0 {
        ((chunk >> (13 - (i % ONE_BIT_VECTOR_SYMBOLS))) & 1) as u8
    } else {
        ((chunk >> (12 - 2 * (i % TWO_BIT_VECTOR_SYMBOLS))) & 3) as u8
    }
}

impl<'a> TwccFeedback<'a> {
    /// Reference time in µs on the receiver's clock (not unwrapped).
    pub fn reference_time_us(&self) -> i64 {
        i64::from(self.reference_time) * REFERENCE_UNIT_US
    }

    /// The statuses of packets `base_seq ..` in order, `status_count` of them.
    pub fn packets(&self) -> TwccPackets<'a> {
        TwccPackets {
            chunks: self.chunks,
            deltas: self.deltas,
            chunk_pos: 0,
            chunk: 0,
            chunk_len: 0,
            in_chunk: 0,
            delta_pos: 0,
            index: 0,
            count: self.status_count,
            seq: self.base_seq,
            arrival_us: self.reference_time_us(),
        }
    }
}

/// Iterator over the statuses of a validated [`TwccFeedback`].
#[derive(Debug, Clone)]
pub struct TwccPackets<'a> {
    chunks: &'a [u8],
    deltas: &'a [u8],
    chunk_pos: usize,
    chunk: u16,
    chunk_len: usize,
    in_chunk: usize,
    delta_pos: usize,
    index: u16,
    count: u16,
    seq: u16,
    arrival_us: i64,
}

impl Iterator for TwccPackets<'_> {
    type Item = TwccPacketStatus;

    fn next(&mut self) -> Option<TwccPacketStatus> {
        if self.index >= self.count {
            return None;
        }
        while self.in_chunk >= self.chunk_len {
            self.chunk = read_u16(self.chunks, self.chunk_pos)?;
            self.chunk_pos += 2;
            self.chunk_len = chunk_symbol_count(self.chunk);
            self.in_chunk = 0;
        }
        let symbol = chunk_symbol(self.chunk, self.in_chunk);
        self.in_chunk += 1;
        let delta_ticks = match symbol {
            SYMBOL_SMALL_DELTA => {
                let byte = *self.deltas.get(self.delta_pos)?;
                self.delta_pos += 1;
                Some(i16::from(byte))
            }
            SYMBOL_LARGE_DELTA => {
                let delta = read_u16(self.deltas, self.delta_pos)? as i16;
                self.delta_pos += 2;
                Some(delta)
            }
            _ => None,
        };
        let arrival_us = delta_ticks.map(|ticks| {
            self.arrival_us += i64::from(ticks) * TICK_US;
            self.arrival_us
        });
        let status = TwccPacketStatus { seq: self.seq, delta_ticks, arrival_us };
        self.index += 1;
        self.seq = self.seq.wrapping_add(1);
        Some(status)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::from(self.count - self.index);
        (0, Some(left))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_length_field_shorter_than_the_header_is_an_error() {
        // V=2, FMT=15, PT=205, length 0 (4 bytes) but 16 bytes present.
        let mut packet = [0u8; 16];
        packet[..4].copy_from_slice(&[0x8F, 205, 0, 0]);
        assert_eq!(super::parse_twcc_packet(&packet).unwrap_err(), super::TwccError::BadLength);
        packet[0] |= 0x20; // with the padding bit too
        assert_eq!(super::parse_twcc_packet(&packet).unwrap_err(), super::TwccError::BadLength);
    }

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    const SENDER: u32 = 0x0102_0304;
    const MEDIA: u32 = 0x0506_0708;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// Polls every packet of one feedback round, checking each packet's framing.
    fn drain(recorder: &mut TwccRecorder, now: Instant, buf_len: usize) -> Vec<Vec<u8>> {
        let mut packets = Vec::new();
        let mut buf = vec![0u8; buf_len];
        while let Some(len) = recorder.poll_feedback(now, MEDIA, &mut buf) {
            assert!(len <= buf_len && len % 4 == 0, "bad length {len}");
            assert_eq!(usize::from(u16::from_be_bytes([buf[2], buf[3]])), len / 4 - 1);
            packets.push(buf[..len].to_vec());
            assert!(packets.len() < 10_000, "feedback never ends");
        }
        packets
    }

    /// (seq, arrival µs) of every status of every packet, in order.
    fn statuses(packets: &[Vec<u8>]) -> Vec<(u16, Option<i64>)> {
        let mut all = Vec::new();
        for packet in packets {
            let (sender, media, feedback) = parse_twcc_packet(packet).expect("own feedback parses");
            assert_eq!((sender, media), (SENDER, MEDIA));
            let before = all.len();
            all.extend(feedback.packets().map(|p| (p.seq, p.arrival_us)));
            assert_eq!(all.len() - before, usize::from(feedback.status_count));
            assert!(all.last().is_some_and(|(_, a)| a.is_some()), "a packet must end with a received one");
        }
        all
    }

    fn assert_close(seq: u16, got: Option<i64>, expected_us: i64) {
        let got = got.unwrap_or_else(|| panic!("seq {seq} reported lost"));
        assert!(
            got <= expected_us && expected_us - got < TICK_US,
            "seq {seq}: got {got} µs, expected {expected_us} µs"
        );
    }

    #[test]
    fn hand_computed_packet() {
        let t0 = Instant::now();
        let mut recorder = TwccRecorder::new(SENDER);
        recorder.record(100, t0);
        recorder.record(101, t0 + ms(1));
        recorder.record(103, t0 + us(2_500));
        recorder.record(104, t0 + ms(70)); // 270 ticks after 103: a large delta
        let packets = drain(&mut recorder, t0 + ms(70), 1500);
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            0x8F, 205, 0x00, 0x06,          // V=2 FMT=15, PT=205, length 7 words - 1
            0x01, 0x02, 0x03, 0x04,         // sender SSRC
            0x05, 0x06, 0x07, 0x08,         // media SSRC
            0x00, 100, 0x00, 0x05,          // base seq 100, 5 statuses
            0x00, 0x00, 0x00, 0x00,         // reference time 0, feedback packet count 0
            0xD4, 0x60,                     // two-bit vector: small small lost small large
            0x00, 0x04, 0x06, 0x01, 0x0E,   // deltas 0, 4, 6 (1 byte), 270 (2 bytes)
            0x00,                           // zero padding
        ];
        assert_eq!(packets, vec![expected]);

        // The next round: new reference time (64 ms units) and feedback packet count 1.
        recorder.record(105, t0 + ms(200));
        let packets = drain(&mut recorder, t0 + ms(200), 1500);
        assert_eq!(packets.len(), 1);
        #[rustfmt::skip]
        assert_eq!(packets[0][12..], [
            0x00, 105, 0x00, 0x01,          // base seq 105, 1 status
            0x00, 0x00, 0x03, 0x01,         // 200 ms -> reference 3 (192 ms), count 1
            0x20, 0x01,                     // run length: small delta × 1
            32, 0x00,                       // 8 ms = 32 ticks, padding
        ]);
    }

    #[test]
    fn losses_reordering_wraparound_and_long_gaps_round_trip() {
        let t0 = Instant::now();
        let mut recorder = TwccRecorder::new(SENDER);
        let mut expected: BTreeMap<u16, i64> = BTreeMap::new();
        let mut record = |recorder: &mut TwccRecorder, seq: u16, at_us: u64| {
            recorder.record(seq, t0 + us(at_us));
            expected.entry(seq).or_insert(at_us as i64);
        };
        // 65530..=65535, 0..=20 with 65533, 3 and 4 lost, 8 before 7, 12 a second after 11
        // (two-byte delta), 14 arriving 300 ms *before* 13 would have (negative delta).
        let mut t = 0;
        for seq in [65530u16, 65531, 65532, 65534, 65535, 0, 1, 2, 5, 6, 8, 7, 9, 10, 11] {
            record(&mut recorder, seq, t);
            t += 1_234;
        }
        t += 1_000_000;
        record(&mut recorder, 12, t);
        record(&mut recorder, 14, t + 1_000);
        record(&mut recorder, 13, t + 301_000);
        record(&mut recorder, 15, t + 302_000);
        record(&mut recorder, 15, t + 303_000); // duplicate: first arrival counts
        let packets = drain(&mut recorder, t0 + ms(1500), 1500);
        assert_eq!(packets.len(), 1);
        let all = statuses(&packets);
        let seqs: Vec<u16> = all.iter().map(|(s, _)| *s).collect();
        let want: Vec<u16> = (65530u16..=65535).chain(0..=15).collect();
        assert_eq!(seqs, want);
        for (seq, arrival) in all {
            match expected.get(&seq) {
                Some(&at) => assert_close(seq, arrival, at),
                None => assert_eq!(arrival, None, "seq {seq} was lost"),
            }
        }
        assert_eq!(recorder.stats().duplicates, 1);

        // Nothing new: nothing to send, even after the interval.
        assert!(drain(&mut recorder, t0 + ms(5000), 1500).is_empty());

        // A lost packet arriving late is reported again, together with what follows it.
        recorder.record(3, t0 + ms(5000));
        recorder.record(16, t0 + ms(5001));
        let all = statuses(&drain(&mut recorder, t0 + ms(5001), 1500));
        assert_eq!(all.first().map(|s| s.0), Some(3));
        assert_eq!(all.last().map(|s| s.0), Some(16));
        assert_close(3, all[0].1, 5_000_000);
        assert_close(16, all.last().unwrap().1, 5_001_000);
    }

    #[test]
    fn chunk_selection() {
        const S: u8 = SYMBOL_SMALL_DELTA;
        const L: u8 = SYMBOL_LARGE_DELTA;
        const N: u8 = SYMBOL_NOT_RECEIVED;
        assert_eq!(plan_chunk(&[S; 20]), Chunk::RunLength { symbol: S, len: 20 });
        assert_eq!(plan_chunk(&[N; 9000]), Chunk::RunLength { symbol: N, len: MAX_RUN_LENGTH });
        assert_eq!(plan_chunk(&[S, N, S, S, N, S, S, S, S, S, S, S, S, S, S]), Chunk::OneBit { len: 14 });
        assert_eq!(plan_chunk(&[S, N, S]), Chunk::OneBit { len: 3 });
        assert_eq!(plan_chunk(&[S, S, S]), Chunk::RunLength { symbol: S, len: 3 });
        assert_eq!(plan_chunk(&[S, L, S, N, S, S, S, S, S]), Chunk::TwoBit { len: 7 });
        assert_eq!(plan_chunk(&[L, L, L, L, L, L, L, L, S]), Chunk::RunLength { symbol: L, len: 8 });
        assert_eq!(plan_chunk(&[S, S, S, S, S, S, S, S, S, S, L]), Chunk::RunLength { symbol: S, len: 10 });

        // Through the wire: 20 back-to-back packets are one run-length chunk.
        let t0 = Instant::now();
        let mut recorder = TwccRecorder::new(SENDER);
        for seq in 0..20u16 {
            recorder.record(seq, t0 + us(u64::from(seq) * 250));
        }
        let packets = drain(&mut recorder, t0 + ms(10), 1500);
        assert_eq!(packets[0][20..22], [0x20, 20]);
        // Every other packet lost: one-bit vectors of 14 (1010...) then the rest.
        for seq in (20..48u16).step_by(2) {
            recorder.record(seq, t0 + ms(200));
        }
        let packets = drain(&mut recorder, t0 + ms(200), 1500);
        // Statuses 20..=46: a first vector of 14, a second covering the other 13.
        assert_eq!(packets[0][20..24], [0b1010_1010, 0b1010_1010, 0b1010_1010, 0b1010_1010]);
        assert_eq!(statuses(&packets).len(), 27);
    }

    #[test]
    fn splits_into_packets_that_fit_the_buffer() {
        let t0 = Instant::now();
        let mut recorder = TwccRecorder::new(SENDER);
        let mut expected = BTreeMap::new();
        for i in 0..300u64 {
            if i % 3 == 1 {
                continue; // lost
            }
            let at = i * 1_700 + (i % 5) * 90_000; // jumps around: small, large and negative deltas
            recorder.record(i as u16, t0 + us(at));
            expected.insert(i as u16, at as i64);
        }
        let packets = drain(&mut recorder, t0 + ms(2000), 48);
        assert!(packets.len() > 5, "only {} packets", packets.len());
        for (i, packet) in packets.iter().enumerate() {
            assert!(packet.len() <= 48);
            assert_eq!(packet[19], i as u8, "feedback packet count");
        }
        let all = statuses(&packets);
        let seqs: Vec<u16> = all.iter().map(|s| s.0).collect();
        assert_eq!(seqs, (0..300u16).collect::<Vec<_>>());
        for (seq, arrival) in all {
            match expected.get(&seq) {
                Some(&at) => assert_close(seq, arrival, at),
                None => assert_eq!(arrival, None),
            }
        }
        // Too small to hold anything.
        recorder.record(300, t0 + ms(3000));
        let mut tiny = [0u8; 23];
        assert_eq!(recorder.poll_feedback(t0 + ms(3000), MEDIA, &mut tiny), None);
        let mut smallest = [0u8; 24];
        assert_eq!(recorder.poll_feedback(t0 + ms(3000), MEDIA, &mut smallest), Some(24));
    }

    #[test]
    fn delta_out_of_range_starts_a_new_packet() {
        let t0 = Instant::now();
        let mut recorder = TwccRecorder::new(SENDER);
        recorder.record(1, t0);
        recorder.record(2, t0 + ms(10_000)); // beyond the ±8.19 s of a two-byte delta
        recorder.record(3, t0 + ms(10_001));
        let packets = drain(&mut recorder, t0 + ms(10_001), 1500);
        assert_eq!(packets.len(), 2);
        let all = statuses(&packets);
        assert_eq!(all.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_close(2, all[1].1, 10_000_000);
        assert_close(3, all[2].1, 10_001_000);
    }

    #[test]
    fn interval_and_timeout() {
        let t0 = Instant::now();
        let mut recorder = TwccRecorder::new(SENDER);
        let mut buf = [0u8; 1500];
        assert_eq!(recorder.poll_timeout(), None);
        assert_eq!(recorder.poll_feedback(t0, MEDIA, &mut buf), None);
        recorder.record(7, t0);
        assert_eq!(recorder.poll_timeout(), Some(t0));
        assert!(recorder.poll_feedback(t0, MEDIA, &mut buf).is_some());
        assert_eq!(recorder.poll_timeout(), None);
        recorder.record(8, t0 + ms(10));
        assert_eq!(recorder.poll_timeout(), Some(t0 + TWCC_DEFAULT_INTERVAL));
        assert_eq!(recorder.poll_feedback(t0 + ms(10), MEDIA, &mut buf), None, "not due yet");
        assert!(recorder.poll_feedback(t0 + ms(100), MEDIA, &mut buf).is_some());
        recorder.set_interval(ms(50));
        recorder.record(9, t0 + ms(120));
        assert_eq!(recorder.poll_timeout(), Some(t0 + ms(150)));
    }

    #[test]
    fn far_too_old_packets_are_ignored() {
        let t0 = Instant::now();
        let mut recorder = TwccRecorder::new(SENDER);
        recorder.record(10_000, t0);
        recorder.record(10_000 + HISTORY as u16 + 10, t0 + ms(1));
        recorder.record(10_001, t0 + ms(2)); // more than the history behind
        assert_eq!(recorder.stats().too_old, 1);
        let all = statuses(&drain(&mut recorder, t0 + ms(2), 1500));
        // The pending range was clamped to the history.
        assert_eq!(all.len(), HISTORY);
        assert_eq!(all.last().map(|s| s.0), Some(10_000 + HISTORY as u16 + 10));
    }

    #[test]
    fn parser_rejects_garbage() {
        assert_eq!(parse_twcc_fci(&[]), Err(TwccError::Truncated));
        assert_eq!(parse_twcc_fci(&[0, 1, 0, 0, 0, 0, 0, 0]), Err(TwccError::Empty));
        assert_eq!(parse_twcc_fci(&[0, 1, 0, 1, 0, 0, 0, 0]), Err(TwccError::Truncated));
        assert_eq!(parse_twcc_fci(&[0, 1, 0, 1, 0, 0, 0, 0, 0x20, 1]), Err(TwccError::Truncated));
        assert_eq!(parse_twcc_fci(&[0, 1, 0, 1, 0, 0, 0, 0, 0x60, 1, 0, 0]), Err(TwccError::ReservedSymbol));
        let ok = parse_twcc_fci(&[0, 1, 0, 1, 0, 0, 1, 9, 0x20, 1, 4, 0]).unwrap();
        assert_eq!((ok.base_seq, ok.status_count, ok.reference_time, ok.fb_pkt_count), (1, 1, 1, 9));
        let statuses: Vec<_> = ok.packets().collect();
        assert_eq!(statuses, vec![TwccPacketStatus { seq: 1, delta_ticks: Some(4), arrival_us: Some(65_000) }]);
        assert_eq!(parse_twcc_packet(&[0x81, 205, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]), Err(TwccError::NotTwcc));
        assert_eq!(parse_twcc_packet(&[0x8F, 205, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0]), Err(TwccError::BadLength));
    }

    proptest! {
        #[test]
        fn parser_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(feedback) = parse_twcc_fci(&bytes) {
                prop_assert_eq!(feedback.packets().count(), usize::from(feedback.status_count));
            }
            if let Ok((_, _, feedback)) = parse_twcc_packet(&bytes) {
                prop_assert_eq!(feedback.packets().count(), usize::from(feedback.status_count));
            }
        }

        #[test]
        fn parser_never_panics_on_mutated_feedback(
            gaps in proptest::collection::vec((0u16..4, 0u64..200_000), 1..80),
            mutations in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
        ) {
            let t0 = Instant::now();
            let mut recorder = TwccRecorder::new(SENDER);
            let (mut seq, mut at) = (0u16, 0u64);
            for (gap, dt) in gaps {
                seq = seq.wrapping_add(gap);
                at += dt;
                recorder.record(seq, t0 + us(at));
            }
            let mut buf = [0u8; 1500];
            let len = recorder.poll_feedback(t0 + us(at), MEDIA, &mut buf).unwrap();
            let mut packet = buf[..len].to_vec();
            for (pos, byte) in mutations {
                let i = pos % packet.len();
                packet[i] = byte;
            }
            packet.truncate(cut % (packet.len() + 1));
            if let Ok((_, _, feedback)) = parse_twcc_packet(&packet) {
                prop_assert_eq!(feedback.packets().count(), usize::from(feedback.status_count));
            }
            if let Some(fci) = packet.get(12..) {
                let _ = parse_twcc_fci(fci).map(|f| f.packets().count());
            }
        }

        #[test]
        fn every_arrival_round_trips(
            arrivals in proptest::collection::vec((-8i16..12, 0u64..3_000_000), 1..300),
            buf_len in TWCC_MIN_PACKET_SIZE..200,
        ) {
            let t0 = Instant::now();
            let mut recorder = TwccRecorder::new(SENDER);
            let mut expected: BTreeMap<u16, i64> = BTreeMap::new();
            let (mut seq, mut at) = (65_500u16, 0u64);
            for (step, dt) in arrivals {
                seq = seq.wrapping_add_signed(step);
                // Arrival times only move forward (they are taken as packets arrive): mostly small
                // steps, some pauses beyond the two-byte delta range. Negative deltas come from the
                // reordered sequence numbers.
                at += if dt > 2_900_000 { dt * 3 } else { dt / 100 };
                recorder.record(seq, t0 + us(at));
                expected.entry(seq).or_insert(at as i64);
            }
            // The receiver's clock starts at its first arrival.
            let first = expected.values().copied().min().unwrap_or(0);
            expected.values_mut().for_each(|v| *v -= first);
            let now = t0 + us(at) + ms(10_000);
            let packets = drain(&mut recorder, now, buf_len);
            let mut reported: BTreeMap<u16, i64> = BTreeMap::new();
            for packet in &packets {
                prop_assert!(packet.len() <= buf_len);
                let (_, _, feedback) = parse_twcc_packet(packet).unwrap();
                for status in feedback.packets() {
                    if let Some(got) = status.arrival_us {
                        reported.insert(status.seq, got);
                    }
                }
            }
            // Late packets can be reported again (same value); every received packet is reported.
            prop_assert_eq!(reported.len(), expected.len());
            for (seq, got) in reported {
                let want = expected[&seq];
                prop_assert!(got <= want && want - got < TICK_US, "seq {} got {} want {}", seq, got, want);
            }
        }
    }
}
