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
/// packets get past those checks to the chunk parsers. Whatever the worker answers goes back to
/// the client and time moves on, so retransmission and SACK timers run. Returns whether the
/// worker reported anything (a channel, a message, a stream reset) from the input's packets.
pub fn sctp_association(data: &[u8]) -> bool {
    let Some((&flags, rest)) = data.split_first() else { return false };
    let mut now = Instant::now();
    let mut client = SctpAssociation::new(SctpRole::Client, STREAMS, STREAMS, MAX_MESSAGE_SIZE);
    let mut server = SctpAssociation::new(SctpRole::Server, STREAMS, STREAMS, MAX_MESSAGE_SIZE);
    server.start(now);
    client.start(now);
    let Some(tag) = exchange(now, &mut client, &mut server) else { return false };
    while server.poll_event().is_some() {}
    let mut reported = false;
    for packet in records(rest) {
        let mut packet = packet.to_vec();
        if flags & 1 != 0
            && let Some(vtag) = packet.get_mut(4..8)
        {
            vtag.copy_from_slice(&tag);
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
/// settle). Returns the last verification tag the client wrote, which is the server's.
fn exchange(now: Instant, client: &mut SctpAssociation, server: &mut SctpAssociation) -> Option<[u8; 4]> {
    let mut tag = None;
    for _ in 0..32 {
        let mut moved = false;
        while let Some(packet) = client.poll_transmit(now) {
            moved = true;
            tag = packet.get(4..8).and_then(|t| t.try_into().ok()).or(tag);
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
    tag
}

/// What a browser sends once connected: a DCEP OPEN for a reliable ordered channel and a string
/// message on it, as the client association writes them (a seed for [`sctp_association`]; the
/// tags and checksums are rewritten by the target's flags, so they need not match a later run).
pub fn sctp_seed_packets() -> Vec<Vec<u8>> {
    let now = Instant::now();
    let mut client = SctpAssociation::new(SctpRole::Client, STREAMS, STREAMS, MAX_MESSAGE_SIZE);
    let mut server = SctpAssociation::new(SctpRole::Server, STREAMS, STREAMS, MAX_MESSAGE_SIZE);
    server.start(now);
    client.start(now);
    exchange(now, &mut client, &mut server);
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
    packets
}
