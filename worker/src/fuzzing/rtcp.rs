//! RTCP from the network: compound packets, NACK and transport-wide-cc feedback, and the state
//! machines that turn received sequence numbers into the feedback the worker sends.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::core::rtp::nack_generator::{NackConfig, NackGenerator};
use crate::core::rtp::rtcp::{RtcpCompound, RtcpPacket, write_nack};
use crate::core::rtp::twcc::{TwccRecorder, parse_twcc_fci, parse_twcc_packet};

/// One datagram through the compound reader, every packet's sub-items walked.
pub fn rtcp_compound(data: &[u8]) -> bool {
    let mut any = false;
    for packet in RtcpCompound::iter(data) {
        let Ok(packet) = packet else { continue };
        any = true;
        // The counts are thrown away: walking the items is what the fuzzer is after.
        let _items = match packet {
            RtcpPacket::SenderReport(sr) => sr.report_blocks().count(),
            RtcpPacket::ReceiverReport(rr) => rr.report_blocks().count(),
            RtcpPacket::Sdes(sdes) => sdes.chunks().count(),
            RtcpPacket::Bye(bye) => bye.ssrcs().count() + bye.reason().map_or(0, <[u8]>::len),
            RtcpPacket::Nack(nack) => nack.items().count() + nack.lost().count(),
            RtcpPacket::TransportCc(tcc) => parse_twcc_fci(tcc.fci).map_or(0, |fb| fb.packets().count()),
            RtcpPacket::Fir(fir) => fir.entries().count(),
            RtcpPacket::Remb(remb) => remb.ssrcs().count(),
            RtcpPacket::Pli(_) | RtcpPacket::Unknown { .. } => 0,
        };
    }
    any
}

/// Two halves. The datagram as a transport-cc packet (what the downlink estimator reads). Then its
/// bytes as (sequence number, arrival step) pairs recorded by the worker's own feedback writer:
/// every packet it writes must parse again with the same reader.
pub fn transport_cc(data: &[u8]) -> bool {
    let parsed = match parse_twcc_packet(data) {
        Ok((_, _, fb)) => {
            let _ = (fb.reference_time_us(), fb.packets().count());
            true
        }
        Err(_) => false,
    };
    let start = Instant::now();
    let mut recorder = TwccRecorder::new(1);
    let mut at = start;
    for pair in data.chunks_exact(3) {
        at += Duration::from_micros(u64::from(pair[2]) * 250);
        recorder.record(u16::from_be_bytes([pair[0], pair[1]]), at);
    }
    let mut out = [0u8; 1200];
    let now = at + Duration::from_secs(1);
    for _ in 0..64 {
        let Some(n) = recorder.poll_feedback(now, 2, &mut out) else { break };
        assert!(parse_twcc_packet(&out[..n]).is_ok(), "our own transport-cc feedback does not parse");
    }
    parsed
}

/// Two halves, as for transport-cc: the datagram as compound RTCP read for NACKs, then its bytes as
/// received sequence numbers fed to the NACK generator; each NACK it asks for is written and read
/// back, and must list exactly the sequence numbers it was given.
pub fn nack(data: &[u8]) -> bool {
    let mut parsed = false;
    for packet in RtcpCompound::iter(data).flatten() {
        if let RtcpPacket::Nack(n) = packet {
            parsed = true;
            let _ = (n.items().count(), n.lost().count());
        }
    }
    let start = Instant::now();
    let mut generator = NackGenerator::new(NackConfig::default());
    let mut lost = [0u16; 256];
    let mut buf = [0u8; 1200];
    for (i, pair) in data.chunks_exact(2).enumerate() {
        let now = start + Duration::from_millis(i as u64 * 5);
        let seq = u16::from_be_bytes([pair[0], pair[1]]);
        let _ = generator.received(now, seq, pair[1] & 0x0f == 0, pair[0] & 0x80 != 0);
        let n = generator.poll_nacks(now, Duration::from_millis(20), &mut lost);
        let _ = (generator.poll_keyframe_request(), generator.poll_timeout(), generator.missing_count());
        if n == 0 {
            continue;
        }
        let Ok(len) = write_nack(&mut buf, 1, 2, &lost[..n]) else { continue };
        let asked: BTreeSet<u16> = lost[..n].iter().copied().collect();
        let written: BTreeSet<u16> = RtcpCompound::iter(&buf[..len])
            .flatten()
            .filter_map(|p| if let RtcpPacket::Nack(n) = p { Some(n) } else { None })
            .flat_map(|n| n.lost().collect::<Vec<_>>())
            .collect();
        assert_eq!(written, asked, "a NACK we write does not list what the generator asked for");
    }
    parsed
}
