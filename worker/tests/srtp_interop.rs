//! Cross-checks Octo's SRTP against an independent implementation, rtc-srtp (webrtc-rs): ours
//! encrypts and theirs decrypts, and the other way round, for every profile both implement, RTP and
//! RTCP, several SSRCs, a sequence-number wrap, header extensions and CSRCs. For RTP the two must
//! also produce identical bytes.

use octo_worker::core::srtp::{DtlsSrtpKeys, MasterKey, SrtpError, SrtpProfile, SrtpRecvContext, SrtpSendContext};
use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

fn theirs(profile: SrtpProfile) -> ProtectionProfile {
    match profile {
        SrtpProfile::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpProfile::Aes128CmHmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        SrtpProfile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
    }
}

fn their_context(key: &MasterKey, receiving: bool) -> Context {
    let provider = rtc_srtp::crypto::default_provider().expect("ring provider");
    let (srtp, srtcp) =
        if receiving { (Some(srtp_replay_protection(64)), Some(srtcp_replay_protection(64))) } else { (None, None) };
    Context::new(key.key(), key.salt(), theirs(key.profile()), srtp, srtcp, provider.crypto())
        .expect("rtc-srtp context")
}

/// Keys as a DTLS handshake would export them, split the same way by both libraries.
fn keys(profile: SrtpProfile) -> DtlsSrtpKeys {
    let km: Vec<u8> = (0..profile.keying_material_len()).map(|i| (i as u8).wrapping_mul(37).wrapping_add(11)).collect();
    let ours = DtlsSrtpKeys::split(profile, &km, true).unwrap();
    let mut cfg = rtc_srtp::config::Config { profile: theirs(profile), ..Default::default() };
    cfg.set_session_keys_from_keying_material(&km, true).unwrap();
    assert_eq!(ours.local.key(), &cfg.keys.local_master_key[..]);
    assert_eq!(ours.local.salt(), &cfg.keys.local_master_salt[..]);
    assert_eq!(ours.remote.key(), &cfg.keys.remote_master_key[..]);
    assert_eq!(ours.remote.salt(), &cfg.keys.remote_master_salt[..]);
    ours
}

/// An RTP packet: `csrcs` CSRCs, a one-byte-header extension (RFC 8285) when `ext`, then payload.
fn rtp(seq: u16, ssrc: u32, csrcs: u8, ext: bool, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80 | csrcs | if ext { 0x10 } else { 0 }, 0x60 | 0x80];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    for c in 0..u32::from(csrcs) {
        p.extend_from_slice(&(0x1000 + c).to_be_bytes());
    }
    if ext {
        // Two elements: id 1 (3 bytes: abs-send-time), id 3 (2 bytes: transport-wide seq), padding.
        p.extend_from_slice(&[0xBE, 0xDE, 0, 2, 0x12, 0xAA, 0xBB, 0xCC, 0x31, 0x01, 0x02, 0x00]);
    }
    p.extend((0..payload_len).map(|i| (i as u8) ^ (seq as u8)));
    p
}

fn rtcp(ssrc: u32, extra: usize) -> Vec<u8> {
    // Sender report with no report blocks, then `extra` bytes' worth of an APP packet to vary sizes.
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    let words = extra / 4;
    p.extend_from_slice(&[0x80, 204]);
    p.extend_from_slice(&(2 + words as u16).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(b"octo");
    p.extend((0..words * 4).map(|i| i as u8));
    p
}

fn our_seal_rtp(tx: &mut SrtpSendContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; plain.len() + 16];
    buf[..plain.len()].copy_from_slice(plain);
    let n = tx.encrypt_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

fn our_seal_rtcp(tx: &mut SrtpSendContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; plain.len() + 20];
    buf[..plain.len()].copy_from_slice(plain);
    let n = tx.encrypt_rtcp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

fn our_open(rx: &mut SrtpRecvContext, wire: &[u8], rtcp: bool) -> Result<Vec<u8>, SrtpError> {
    let mut buf = wire.to_vec();
    let n = if rtcp { rx.decrypt_rtcp(&mut buf, wire.len())? } else { rx.decrypt_rtp(&mut buf, wire.len())? };
    buf.truncate(n);
    Ok(buf)
}

/// The packets of the scenario, in sending order: three SSRCs interleaved, one of them wrapping its
/// sequence number (ROC 0 → 1), with and without CSRCs and extensions.
fn scenario() -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    for i in 0..40u16 {
        packets.push(rtp(65520u16.wrapping_add(i), 0x1111_1111, 0, i % 2 == 0, 100 + usize::from(i)));
        packets.push(rtp(1000 + i, 0x2222_2222, (i % 4) as u8, i % 3 == 0, 1200));
        packets.push(rtp(30000 + i * 10, 0xCAFE_BABE, 15, true, usize::from(i)));
    }
    packets
}

#[test]
fn ours_encrypt_theirs_decrypt() {
    for profile in SrtpProfile::ALL {
        let k = keys(profile);
        let mut ours = SrtpSendContext::new(&k.local);
        let mut their_tx = their_context(&k.local, false);
        let mut their_rx = their_context(&k.local, true);
        for plain in scenario() {
            let wire = our_seal_rtp(&mut ours, &plain);
            let reference = their_tx.encrypt_rtp(&plain).unwrap();
            assert_eq!(wire, &reference[..], "{profile:?}: identical SRTP bytes");
            assert_eq!(&their_rx.decrypt_rtp(&wire).unwrap()[..], &plain[..], "{profile:?}");
            assert!(their_rx.decrypt_rtp(&wire).is_err(), "{profile:?}: they refuse our replay");
        }
        for (i, ssrc) in [0x1111_1111u32, 0x2222_2222, 0x1111_1111, 0xCAFE_BABE].into_iter().enumerate() {
            let plain = rtcp(ssrc, i * 52);
            let wire = our_seal_rtcp(&mut ours, &plain);
            assert_eq!(wire.len(), plain.len() + 4 + profile.rtcp_auth_tag_len());
            assert_eq!(&their_rx.decrypt_rtcp(&wire).unwrap()[..], &plain[..], "{profile:?} rtcp");
            assert!(their_rx.decrypt_rtcp(&wire).is_err(), "{profile:?}: they refuse our SRTCP replay");
        }
    }
}

#[test]
fn theirs_encrypt_ours_decrypt() {
    for profile in SrtpProfile::ALL {
        let k = keys(profile);
        let mut their_tx = their_context(&k.remote, false);
        let mut ours = SrtpRecvContext::new(&k.remote);
        let wires: Vec<(Vec<u8>, Vec<u8>)> =
            scenario().into_iter().map(|p| (their_tx.encrypt_rtp(&p).unwrap().to_vec(), p)).collect();
        for (wire, plain) in &wires {
            assert_eq!(our_open(&mut ours, wire, false).as_ref(), Ok(plain), "{profile:?}");
        }
        assert_eq!(ours.rtp_roc(0x1111_1111), Some(1), "{profile:?}: the wrap was followed");
        assert_eq!(ours.rtp_roc(0x2222_2222), Some(0));
        for (wire, _) in wires.iter().rev().take(30) {
            assert_eq!(our_open(&mut ours, wire, false), Err(SrtpError::Replayed), "{profile:?}");
        }
        let rtcps: Vec<(Vec<u8>, Vec<u8>)> = (0..6)
            .map(|i| {
                let plain = rtcp(if i % 2 == 0 { 0x1111_1111 } else { 0xCAFE_BABE }, i * 12);
                (their_tx.encrypt_rtcp(&plain).unwrap().to_vec(), plain)
            })
            .collect();
        // Out of order, then replays.
        for i in [1, 0, 3, 2, 5, 4] {
            assert_eq!(our_open(&mut ours, &rtcps[i].0, true).as_ref(), Ok(&rtcps[i].1), "{profile:?} rtcp {i}");
        }
        for (wire, _) in &rtcps {
            assert_eq!(our_open(&mut ours, wire, true), Err(SrtpError::Replayed), "{profile:?}");
        }
    }
}

/// The receive side picks up a stream mid-wrap from rtc-srtp, with reordering across the wrap.
#[test]
fn reordered_wrap_from_theirs() {
    for profile in SrtpProfile::ALL {
        let k = keys(profile);
        let mut their_tx = their_context(&k.remote, false);
        let mut ours = SrtpRecvContext::new(&k.remote);
        let seqs: Vec<u16> = (65500..=65535).chain(0..40).collect();
        let wires: Vec<Vec<u8>> =
            seqs.iter().map(|&s| their_tx.encrypt_rtp(&rtp(s, 77, 0, false, 60)).unwrap().to_vec()).collect();
        // Swap neighbours pairwise so that packets straddle the wrap in both orders.
        let mut order: Vec<usize> = (0..wires.len()).collect();
        for pair in order.chunks_mut(2) {
            pair.reverse();
        }
        for i in order {
            assert_eq!(our_open(&mut ours, &wires[i], false), Ok(rtp(seqs[i], 77, 0, false, 60)), "{profile:?} {i}");
        }
        assert_eq!(ours.rtp_roc(77), Some(1));
    }
}
