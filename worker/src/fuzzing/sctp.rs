//! SCTP and DCEP as they arrive inside DTLS: through the worker's own [`SctpAssociation`], which
//! wraps rtc-sctp and contains its panics, so the target tests what the worker does with a
//! hostile peer's packets, not the library alone.

use std::time::{Duration, Instant};

use crate::core::sctp::{ChannelType, DcepMessage, Reliability, SctpAssociation, SctpEvent, SctpRole, ppid};

use super::input::{crc32c, records};

/// Stream counts and message size as a browser offers them.
const STREAMS: u16 = 1024;
const MAX_MESSAGE_SIZE: u32 = 262_144;

/// One DataChannel control message through the DCEP parser; an OPEN that parses must write back
/// to the same message.
pub fn dcep(data: &[u8]) -> bool {
    let Ok(msg) = DcepMessage::parse(data) else { return false };
    if let DcepMessage::Open(open) = msg {
        let mut out = vec![0u8; open.len()];
        open.write(&mut out).expect("a parsed DCEP OPEN fits its own length");
        assert_eq!(DcepMessage::parse(&out), Ok(msg), "DCEP OPEN write does not read back");
    }
    true
}

/// A worker-side (server) association, connected in memory to a client like a browser's, then
/// given the input's packets (see [`records`]) as if from that client. The first input byte's bit
/// 0 writes the association's verification tag and bit 1 the CRC-32C into each packet, so mutated
/// packets get past those checks to the chunk parsers; bit 2 takes the TSNs of DATA and
/// FORWARD-TSN chunks as offsets from the client's initial TSN, which rtc-sctp draws at random. Whatever the worker answers goes back to
/// the client and time moves on, so retransmission and SACK timers run. Returns whether the
/// worker reported anything (a channel, a message, a stream reset) from the input's packets.
pub fn sctp_association(data: &[u8]) -> bool {
    let Some((&flags, rest)) = data.split_first() else { return false };
    let mut now = Instant::now();
    let mut client = SctpAssociation::new(SctpRole::Client, STREAMS, STREAMS, MAX_MESSAGE_SIZE);
    let mut server = SctpAssociation::new(SctpRole::Server, STREAMS, STREAMS, MAX_MESSAGE_SIZE);
    server.start(now);
    client.start(now);
    let (Some(tag), Some(initial_tsn)) = exchange(now, &mut client, &mut server) else { return false };
    while server.poll_event().is_some() {}
    let mut reported = false;
    for packet in records(rest) {
        let mut packet = packet.to_vec();
        if flags & 1 != 0
            && let Some(vtag) = packet.get_mut(4..8)
        {
            vtag.copy_from_slice(&tag);
        }
        if flags & 4 != 0 {
            shift_tsns(&mut packet, initial_tsn, u32::wrapping_add);
        }
        if flags & 2 != 0 && packet.len() >= 12 {
            packet[8..12].fill(0);
            let crc = crc32c(&packet);
            packet[8..12].copy_from_slice(&crc.to_le_bytes());
        }
        server.handle_packet(now, &packet);
        now += Duration::from_millis(50);
        server.handle_timeout(now);
        client.handle_timeout(now);
        exchange(now, &mut client, &mut server);
        while let Some(event) = server.poll_event() {
            reported |= !matches!(event, SctpEvent::StateChanged(_));
        }
        let _ = (server.state(), server.counters(), server.poll_timeout());
    }
    server.close(now);
    while server.poll_transmit(now).is_some() {}
    reported
}

/// Moves packets both ways until both sides are quiet (bounded: a hostile exchange may never
/// settle). Returns the last verification tag the client wrote, which is the server's, and the
/// initial TSN of the client's INIT.
fn exchange(
    now: Instant,
    client: &mut SctpAssociation,
    server: &mut SctpAssociation,
) -> (Option<[u8; 4]>, Option<u32>) {
    let (mut tag, mut initial_tsn) = (None, None);
    for _ in 0..32 {
        let mut moved = false;
        while let Some(packet) = client.poll_transmit(now) {
            moved = true;
            tag = packet.get(4..8).and_then(|t| t.try_into().ok()).or(tag);
            if packet.get(12) == Some(&INIT) {
                initial_tsn = u32_at(&packet, 28).or(initial_tsn);
            }
            server.handle_packet(now, &packet);
        }
        while let Some(packet) = server.poll_transmit(now) {
            moved = true;
            client.handle_packet(now, &packet);
        }
        if !moved {
            break;
        }
    }
    (tag, initial_tsn)
}

const INIT: u8 = 1;
const DATA: u8 = 0;
const FORWARD_TSN: u8 = 192;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|v| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
}

/// Rewrites the TSN of each DATA and FORWARD-TSN chunk of `packet` with `op(tsn, base)`.
fn shift_tsns(packet: &mut [u8], base: u32, op: fn(u32, u32) -> u32) {
    let mut pos = 12;
    while let Some(len) = packet.get(pos + 2..pos + 4).map(|l| usize::from(u16::from_be_bytes([l[0], l[1]]))) {
        if matches!(packet[pos], DATA | FORWARD_TSN)
            && let Some(tsn) = u32_at(packet, pos + 4)
        {
            packet[pos + 4..pos + 8].copy_from_slice(&op(tsn, base).to_be_bytes());
        }
        pos += len.next_multiple_of(4).max(4);
    }
}

/// What a browser sends once connected: a DCEP OPEN for a reliable ordered channel and a string
/// message on it, as the client association writes them, TSNs made relative to its initial TSN
/// (a seed for [`sctp_association`] with flags 7: tags, checksums and TSNs are fitted to each run).
pub fn sctp_seed_packets() -> Vec<Vec<u8>> {
    let now = Instant::now();
    let mut client = SctpAssociation::new(SctpRole::Client, STREAMS, STREAMS, MAX_MESSAGE_SIZE);
    let mut server = SctpAssociation::new(SctpRole::Server, STREAMS, STREAMS, MAX_MESSAGE_SIZE);
    server.start(now);
    client.start(now);
    let (_, initial_tsn) = exchange(now, &mut client, &mut server);
    let initial_tsn = initial_tsn.expect("the client sent INIT");
    let reliable = ChannelType { ordered: true, reliability: Reliability::Reliable };
    client.open_channel(now, 1, reliable, "chat", "").expect("client connected");
    let mut packets = Vec::new();
    while let Some(p) = client.poll_transmit(now) {
        packets.push(p.to_vec());
    }
    client.send(now, 1, ppid::STRING, b"hello from the fuzzer's seed").expect("client connected");
    while let Some(p) = client.poll_transmit(now) {
        packets.push(p.to_vec());
    }
    for p in &mut packets {
        shift_tsns(p, initial_tsn, u32::wrapping_sub);
    }
    packets
}
