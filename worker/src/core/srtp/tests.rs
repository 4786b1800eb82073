//! Known-answer tests (RFC 3711 Appendix B, RFC 7714 §16–17, the libsrtp driver packet) and the
//! context's replay, tamper and bounds behaviour. Cross-checks against rtc-srtp and the allocation
//! count live in `worker/tests/srtp_*.rs`.

use proptest::prelude::*;

use super::kdf::{self, Label};
use super::packet;
use super::replay::{ReplayWindow, estimate_index};
use super::transform::{self, Transform};
use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    s.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap()).collect()
}

// ---- RFC 3711 Appendix B ----

#[test]
fn rfc3711_b3_key_derivation() {
    let key = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
    let salt = hex("0EC675AD498AFEEBB6960B3AABE6");
    let mut cipher_key = [0u8; 16];
    kdf::derive(&key, &salt, Label::RtpEncryption, &mut cipher_key);
    assert_eq!(cipher_key[..], hex("C61E7A93744F39EE10734AFE3FF7A087")[..]);
    let mut cipher_salt = [0u8; 14];
    kdf::derive(&key, &salt, Label::RtpSalt, &mut cipher_salt);
    assert_eq!(cipher_salt[..], hex("30CBBC08863D8C85D49DB34A9AE1")[..]);
    // The RFC lists 94 octets of auth key; SRTP uses the first 20. Deriving all 94 checks the counter.
    let mut auth = [0u8; 94];
    kdf::derive(&key, &salt, Label::RtpAuthentication, &mut auth);
    let expected = hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE
         E049646C43D9327AD175578EF72270986371C10C9A369AC2F94A8C5FBCDDDC25
         6D6E919A48B610EF17C2041E474035766B68642C59BBFC2F34DB60DBDFB2");
    assert_eq!(auth[..], expected[..]);
}

#[test]
fn rfc3711_b2_aes_cm_keystream() {
    let key: [u8; 16] = hex("2B7E151628AED2A6ABF7158809CF4F3C").try_into().unwrap();
    let salt: [u8; 14] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap();
    // Zero plaintext: the output is the keystream. Blocks 0x0000..=0xFF01 of SSRC 0, index 0.
    let mut data = vec![0u8; 0xFF02 * 16];
    transform::cm_keystream_for_test(&key, salt, 0, 0, &mut data);
    let block = |i: usize| &data[i * 16..i * 16 + 16];
    assert_eq!(block(0), &hex("E03EAD0935C95E80E166B16DD92B4EB4")[..]);
    assert_eq!(block(1), &hex("D23513162B02D0F72A43A2FE4A5F97AB")[..]);
    assert_eq!(block(2), &hex("41E95B3BB0A2E8DD477901E4FCA894C0")[..]);
    assert_eq!(block(0xFEFF), &hex("EC8CDF7398607CB0F2D21675EA9EA1E4")[..]);
    assert_eq!(block(0xFF00), &hex("362B7C3C6773516318A077D7FC5073AE")[..]);
    assert_eq!(block(0xFF01), &hex("6A2CC3787889374FBEB4C81B17BA6C44")[..]);
}

/// libsrtp's `srtp_driver` reference packet: the RFC 3711 B.3 master key through the KDF, AES-CM and
/// HMAC-SHA1-80 together.
#[test]
fn libsrtp_aes_cm_hmac_sha1_80_packet() {
    let key = MasterKey::new(
        SrtpProfile::Aes128CmHmacSha1_80,
        &hex("e1f97a0d3e018be0d64fa32c06de4139"),
        &hex("0ec675ad498afeebb6960b3aabe6"),
    )
    .unwrap();
    let plain = hex("800f1234decafbadcafebabeabababababababababababababababab");
    let protected = hex("800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb");
    let mut buf = [0u8; 64];
    buf[..plain.len()].copy_from_slice(&plain);
    let n = SrtpSendContext::new(&key).encrypt_rtp(&mut buf, plain.len()).unwrap();
    assert_eq!(buf[..n], protected[..]);
    let n = SrtpRecvContext::new(&key).decrypt_rtp(&mut buf, n).unwrap();
    assert_eq!(buf[..n], plain[..]);
}

// ---- RFC 7714 §16–17 (session keys given directly) ----

const GCM_KEY_128: &str = "000102030405060708090a0b0c0d0e0f";
const GCM_KEY_256: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const GCM_SALT: &str = "517569642070726f2071756f";
const GCM_RTP: &str = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976
                       69736120 696e2070 61727465 73207472 6573";
const GCM_RTCP: &str = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61
                        deadbeef deadbeef deadbeef deadbeef deadbeef";

fn gcm(key: &str) -> Transform {
    transform::gcm_from_session_key(&hex(key), hex(GCM_SALT).try_into().unwrap())
}

fn rtp_vector(key: &str, protected: &str) {
    let t = gcm(key);
    let plain = hex(GCM_RTP);
    let protected = hex(protected);
    let index = 0xf17b; // ROC 0
    let mut buf = [0u8; 128];
    buf[..plain.len()].copy_from_slice(&plain);
    let n = t.protect_rtp(&mut buf, 12, plain.len(), 0x5501_a0b2, index);
    assert_eq!(buf[..n], protected[..]);
    let n = t.unprotect_rtp(&mut buf, 12, n, 0x5501_a0b2, index).unwrap();
    assert_eq!(buf[..n], plain[..]);
}

#[test]
fn rfc7714_16_rtp_aes_128_gcm() {
    rtp_vector(
        GCM_KEY_128,
        "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5 0d294e6f 42a5f47a
         51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce",
    );
}

#[test]
fn rfc7714_16_rtp_aes_256_gcm() {
    rtp_vector(
        GCM_KEY_256,
        "8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa b1801238 9a58e2f3 b50b2a02
         76ffae0f 1ba63799 b87b7aa3 db36dfff d6b0f9bb 7878d7a7 6c13",
    );
}

fn rtcp_decrypts(key: &str, protected: &str) {
    let t = gcm(key);
    let mut buf = hex(protected);
    let len = buf.len();
    let (encrypted, index) = t.rtcp_trailer(&buf, len);
    assert_eq!(index, 0x5d4);
    let n = t.unprotect_rtcp(&mut buf, len, 0x4d61_7273, index, encrypted).unwrap();
    assert_eq!(buf[..n], hex(GCM_RTCP)[..]);
}

#[test]
fn rfc7714_17_rtcp_aes_128_gcm_encrypted() {
    let protected = "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d c676a5f1
                     730d6fda 4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872 45d9eade 800005d4";
    let t = gcm(GCM_KEY_128);
    let plain = hex(GCM_RTCP);
    let mut buf = [0u8; 128];
    buf[..plain.len()].copy_from_slice(&plain);
    let n = t.protect_rtcp(&mut buf, plain.len(), 0x4d61_7273, 0x5d4);
    assert_eq!(buf[..n], hex(protected)[..]);
    rtcp_decrypts(GCM_KEY_128, protected);
}

#[test]
fn rfc7714_17_rtcp_aes_256_gcm_encrypted() {
    rtcp_decrypts(
        GCM_KEY_256,
        "81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d bffe0a50 a2eaa5c1 110555be
         8415f658 c61de047 6f1b6fad 1d1eb30c 4446839f 57ff6f6c b26ac3be 800005d4",
    );
}

#[test]
fn rfc7714_17_rtcp_authenticated_only() {
    // E = 0: the packet stays in the clear, the tag covers it and the trailer.
    rtcp_decrypts(GCM_KEY_128, &format!("{GCM_RTCP} 841dd968 3dd78ec9 2ae58790 125f62b3 000005d4"));
    rtcp_decrypts(GCM_KEY_256, &format!("{GCM_RTCP} 91db4afb feee5a97 8fab4393 ed2615fe 000005d4"));
    // A bad tag is refused and the buffer (which the check rearranges temporarily) is restored.
    let t = gcm(GCM_KEY_128);
    let original = hex(&format!("{GCM_RTCP} 841dd968 3dd78ec9 2ae58790 125f62b4 000005d4"));
    let mut buf = original.clone();
    let len = buf.len();
    assert_eq!(t.unprotect_rtcp(&mut buf, len, 0x4d61_7273, 0x5d4, false), Err(SrtpError::AuthFailed));
    assert_eq!(buf, original);
}

// ---- pieces ----

#[test]
fn roc_estimate_follows_appendix_a() {
    // s_l in the lower half: far-ahead SEQs are from the previous ROC.
    assert_eq!(estimate_index(5, 6), Some(6));
    assert_eq!(estimate_index(5 | 1 << 16, 65000), Some(65000));
    assert_eq!(estimate_index(5, 65000), Some(65000), "ROC would be -1: stays 0");
    // s_l in the upper half: far-behind SEQs are from the next ROC.
    assert_eq!(estimate_index(65530, 3), Some(1 << 16 | 3));
    assert_eq!(estimate_index(65530, 65000), Some(65000));
    assert_eq!(estimate_index(40000, 7000), Some(1 << 16 | 7000));
    assert_eq!(estimate_index(40000, 7233), Some(7233));
    // The ROC may not pass 2^32 - 1.
    assert_eq!(estimate_index(u64::from(u32::MAX) << 16 | 65535, 0), None);
    assert_eq!(estimate_index(u64::from(u32::MAX) << 16 | 100, 101), Some(u64::from(u32::MAX) << 16 | 101));
}

#[test]
fn replay_window_accepts_each_index_once() {
    let mut w = ReplayWindow::new(1000);
    assert_eq!(w.check(1000), Err(SrtpError::Replayed));
    assert_eq!(w.check(999), Ok(()));
    w.accept(999);
    assert_eq!(w.check(999), Err(SrtpError::Replayed));
    w.accept(1100);
    assert_eq!(w.check(1000), Err(SrtpError::Replayed));
    assert_eq!(w.check(1001), Ok(()));
    assert_eq!(w.check(1100 - REPLAY_WINDOW + 1), Ok(()));
    assert_eq!(w.check(1100 - REPLAY_WINDOW), Err(SrtpError::TooOld));
    w.accept(5000);
    assert_eq!(w.check(1100), Err(SrtpError::TooOld));
    assert_eq!(w.check(4999), Ok(()));
    assert_eq!(w.check(5000), Err(SrtpError::Replayed));
}

#[test]
fn rtp_header_length_counts_csrcs_and_extension() {
    let mut p = vec![0x80u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9];
    assert_eq!(packet::rtp_header(&p).unwrap().len, 12);
    p[0] = 0x82; // two CSRCs, missing
    assert_eq!(packet::rtp_header(&p).unwrap_err(), SrtpError::Malformed);
    p.extend_from_slice(&[0; 8]);
    assert_eq!(packet::rtp_header(&p).unwrap().len, 20);
    p[0] = 0x92; // + extension header, missing
    assert_eq!(packet::rtp_header(&p).unwrap_err(), SrtpError::Malformed);
    p.extend_from_slice(&[0xBE, 0xDE, 0, 2]);
    assert_eq!(packet::rtp_header(&p).unwrap_err(), SrtpError::Malformed, "extension words missing");
    p.extend_from_slice(&[0; 8]);
    let h = packet::rtp_header(&p).unwrap();
    assert_eq!((h.len, h.seq, h.ssrc), (32, 1, 9));
    p[0] = 0x40;
    assert_eq!(packet::rtp_header(&p).unwrap_err(), SrtpError::Malformed, "version 1");
    assert_eq!(packet::rtp_header(&p[..11]).unwrap_err(), SrtpError::TooShort);
    assert_eq!(packet::rtp_header(&[]).unwrap_err(), SrtpError::TooShort);
}

#[test]
fn dtls_srtp_keys_split_by_role() {
    for profile in SrtpProfile::ALL {
        let (kl, sl) = (profile.key_len(), profile.salt_len());
        let km: Vec<u8> = (0..profile.keying_material_len() as u8).collect();
        let client = DtlsSrtpKeys::split(profile, &km, true).unwrap();
        assert_eq!(client.local.key(), &km[..kl]);
        assert_eq!(client.remote.key(), &km[kl..2 * kl]);
        assert_eq!(client.local.salt(), &km[2 * kl..2 * kl + sl]);
        assert_eq!(client.remote.salt(), &km[2 * kl + sl..]);
        let server = DtlsSrtpKeys::split(profile, &km, false).unwrap();
        assert_eq!((&server.local, &server.remote), (&client.remote, &client.local));
        assert_eq!(
            DtlsSrtpKeys::split(profile, &km[1..], true),
            Err(SrtpError::KeyingMaterialLength { expected: km.len(), got: km.len() - 1 })
        );
        assert_eq!(SrtpProfile::from_id(profile as u16), Some(profile));
    }
    assert_eq!(SrtpProfile::AeadAes128Gcm.keying_material_len(), 56);
    assert_eq!(SrtpProfile::AeadAes256Gcm.keying_material_len(), 88);
    assert_eq!(SrtpProfile::Aes128CmHmacSha1_80.keying_material_len(), 60);
    assert_eq!(MasterKey::new(SrtpProfile::AeadAes128Gcm, &[0; 16], &[0; 14]), Err(SrtpError::KeyLength));
    assert!(!format!("{:?}", MasterKey::new(SrtpProfile::AeadAes128Gcm, &[7; 16], &[7; 12]).unwrap()).contains('7'));
}

// ---- contexts ----

fn contexts(profile: SrtpProfile) -> (SrtpSendContext, SrtpRecvContext) {
    let key = MasterKey::new(profile, &vec![0x11; profile.key_len()], &vec![0x22; profile.salt_len()]).unwrap();
    (SrtpSendContext::new(&key), SrtpRecvContext::new(&key))
}

fn rtp(seq: u16, ssrc: u32, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 111];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&u32::from(seq).wrapping_mul(960).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..payload_len).map(|i| i as u8));
    p
}

fn rtcp(ssrc: u32) -> Vec<u8> {
    // A receiver report with one block.
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..24).map(|i| i as u8));
    p
}

fn seal_rtp(tx: &mut SrtpSendContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + 16, 0);
    let n = tx.encrypt_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

fn seal_rtcp(tx: &mut SrtpSendContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + 20, 0);
    let n = tx.encrypt_rtcp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

fn open_rtp(rx: &mut SrtpRecvContext, wire: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = wire.to_vec();
    let n = rx.decrypt_rtp(&mut buf, wire.len())?;
    buf.truncate(n);
    Ok(buf)
}

fn open_rtcp(rx: &mut SrtpRecvContext, wire: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = wire.to_vec();
    let n = rx.decrypt_rtcp(&mut buf, wire.len())?;
    buf.truncate(n);
    Ok(buf)
}

#[test]
fn replay_reorder_and_too_old() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = contexts(profile);
        let wires: Vec<Vec<u8>> = (0..300u16).map(|s| seal_rtp(&mut tx, &rtp(s, 7, 50))).collect();
        assert_eq!(wires[10].len(), 62 + profile.rtp_auth_tag_len());
        assert_eq!(open_rtp(&mut rx, &wires[10]).unwrap(), rtp(10, 7, 50));
        assert_eq!(open_rtp(&mut rx, &wires[10]), Err(SrtpError::Replayed));
        // Out of order within the window.
        assert_eq!(open_rtp(&mut rx, &wires[12]).unwrap(), rtp(12, 7, 50));
        assert_eq!(open_rtp(&mut rx, &wires[11]).unwrap(), rtp(11, 7, 50));
        assert_eq!(open_rtp(&mut rx, &wires[11]), Err(SrtpError::Replayed));
        assert_eq!(open_rtp(&mut rx, &wires[299]).unwrap(), rtp(299, 7, 50));
        assert_eq!(open_rtp(&mut rx, &wires[299 - 127]).unwrap(), rtp(299 - 127, 7, 50));
        assert_eq!(open_rtp(&mut rx, &wires[299 - 128]), Err(SrtpError::TooOld));
        assert_eq!(open_rtp(&mut rx, &wires[13]), Err(SrtpError::TooOld));

        let r: Vec<Vec<u8>> = (0..3).map(|_| seal_rtcp(&mut tx, &rtcp(9))).collect();
        assert_eq!(r[0].len(), 32 + 4 + profile.rtcp_auth_tag_len());
        assert_eq!(open_rtcp(&mut rx, &r[1]).unwrap(), rtcp(9));
        assert_eq!(open_rtcp(&mut rx, &r[0]).unwrap(), rtcp(9));
        assert_eq!(open_rtcp(&mut rx, &r[1]), Err(SrtpError::Replayed));
        assert_eq!(open_rtcp(&mut rx, &r[2]).unwrap(), rtcp(9));
    }
}

#[test]
fn tampering_is_refused_without_changing_state() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = contexts(profile);
        let wire = seal_rtp(&mut tx, &rtp(4242, 7, 40));
        // Header (the SSRC and the sequence number too), payload and tag.
        for at in [1, 3, 9, 11, 20, wire.len() - 1] {
            let mut bad = wire.clone();
            bad[at] ^= 0x01;
            let mut buf = bad.clone();
            let err = rx.decrypt_rtp(&mut buf, bad.len()).unwrap_err();
            assert_eq!(err, SrtpError::AuthFailed, "{profile:?} byte {at}");
            assert_eq!(buf, bad, "buffer untouched on failure");
        }
        assert_eq!(rx.rtp_ssrc_count(), 0, "forged packets create no state");
        assert_eq!(open_rtp(&mut rx, &wire).unwrap(), rtp(4242, 7, 40));
        let next = seal_rtp(&mut tx, &rtp(4243, 7, 40));
        let mut bad = next.clone();
        bad[15] ^= 0x80;
        assert_eq!(open_rtp(&mut rx, &bad), Err(SrtpError::AuthFailed));
        assert_eq!(open_rtp(&mut rx, &next).unwrap(), rtp(4243, 7, 40), "failure did not burn the index");

        let wire = seal_rtcp(&mut tx, &rtcp(9));
        for at in [1, 5, 10, wire.len() - 5, wire.len() - 1] {
            let mut bad = wire.clone();
            bad[at] ^= 0x01;
            assert_eq!(open_rtcp(&mut rx, &bad), Err(SrtpError::AuthFailed), "{profile:?} rtcp byte {at}");
        }
        assert_eq!(open_rtcp(&mut rx, &wire).unwrap(), rtcp(9));
    }
}

#[test]
fn gcm_failure_restores_ciphertext_at_any_size() {
    // ring decrypts while it authenticates and zeroes its output on a bad tag; the transform must put
    // the ciphertext back, also for packets past the backup's initial 2048 bytes (which it then grows).
    for profile in [SrtpProfile::AeadAes128Gcm, SrtpProfile::AeadAes256Gcm] {
        let (mut tx, mut rx) = contexts(profile);
        for (seq, payload_len) in [(1u16, 1), (2, 1000), (3, 5000), (4, 300)] {
            let wire = seal_rtp(&mut tx, &rtp(seq, 7, payload_len));
            for at in [2, 12, wire.len() / 2, wire.len() - 1] {
                let mut bad = wire.clone();
                bad[at] ^= 0x40;
                let mut buf = bad.clone();
                assert_eq!(rx.decrypt_rtp(&mut buf, bad.len()), Err(SrtpError::AuthFailed), "{profile:?} {at}");
                assert_eq!(buf, bad, "{profile:?} {payload_len}-byte payload, byte {at}");
            }
            assert_eq!(open_rtp(&mut rx, &wire).unwrap(), rtp(seq, 7, payload_len));
        }
        let wire = seal_rtcp(&mut tx, &rtcp(9));
        for at in [9, 20, wire.len() - 5, wire.len() - 1] {
            let mut bad = wire.clone();
            bad[at] ^= 0x40;
            let mut buf = bad.clone();
            assert_eq!(rx.decrypt_rtcp(&mut buf, bad.len()), Err(SrtpError::AuthFailed), "{profile:?} {at}");
            assert_eq!(buf, bad, "{profile:?} rtcp byte {at}");
        }
        assert_eq!(open_rtcp(&mut rx, &wire).unwrap(), rtcp(9));
    }
}

#[test]
fn sequence_wrap_advances_the_roc() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = contexts(profile);
        let seqs: Vec<u16> = (65530..=65535).chain(0..5).collect();
        let wires: Vec<Vec<u8>> = seqs.iter().map(|&s| seal_rtp(&mut tx, &rtp(s, 3, 20))).collect();
        // Deliver with a reorder across the wrap.
        for i in [0, 1, 2, 3, 6, 4, 5, 7, 8, 9, 10] {
            assert_eq!(open_rtp(&mut rx, &wires[i]).unwrap(), rtp(seqs[i], 3, 20), "{profile:?} {i}");
        }
        assert_eq!(rx.rtp_roc(3), Some(1));
        assert_eq!(open_rtp(&mut rx, &wires[5]), Err(SrtpError::Replayed));
        // A late retransmission from before the wrap is encrypted with ROC 0 by the sender.
        let late = seal_rtp(&mut tx, &rtp(65529, 3, 20));
        assert_eq!(open_rtp(&mut rx, &late).unwrap(), rtp(65529, 3, 20));
    }
}

#[test]
fn ssrc_bound_and_removal() {
    let key = MasterKey::new(SrtpProfile::AeadAes128Gcm, &[1; 16], &[2; 12]).unwrap();
    let mut tx = SrtpSendContext::with_max_ssrcs(&key, 2);
    let mut rx = SrtpRecvContext::with_max_ssrcs(&key, 2);
    let a = seal_rtp(&mut tx, &rtp(1, 1, 10));
    let b = seal_rtp(&mut tx, &rtp(1, 2, 10));
    let mut buf = rtp(1, 3, 10);
    buf.resize(60, 0);
    assert_eq!(tx.encrypt_rtp(&mut buf, 22), Err(SrtpError::TooManySsrcs));
    tx.remove_ssrc(1);
    let c = seal_rtp(&mut tx, &rtp(1, 3, 10));
    open_rtp(&mut rx, &a).unwrap();
    open_rtp(&mut rx, &b).unwrap();
    assert_eq!(open_rtp(&mut rx, &c), Err(SrtpError::TooManySsrcs));
    rx.remove_ssrc(2);
    open_rtp(&mut rx, &c).unwrap();
    assert_eq!(rx.rtp_ssrc_count(), 2);
}

#[test]
fn buffer_and_length_errors() {
    for profile in SrtpProfile::ALL {
        let (mut tx, mut rx) = contexts(profile);
        let plain = rtp(1, 1, 10);
        let mut exact = plain.clone();
        assert_eq!(tx.encrypt_rtp(&mut exact, plain.len()), Err(SrtpError::BufferTooSmall));
        assert_eq!(tx.encrypt_rtp(&mut exact, plain.len() + 1), Err(SrtpError::BufferTooSmall));
        let mut short = rtcp(1);
        assert_eq!(tx.encrypt_rtcp(&mut short, 32), Err(SrtpError::BufferTooSmall));
        assert_eq!(tx.encrypt_rtcp(&mut short, 7), Err(SrtpError::TooShort));
        assert_eq!(rx.decrypt_rtp(&mut [0x80; 12], 12), Err(SrtpError::TooShort));
        assert_eq!(rx.decrypt_rtp(&mut [0x80; 12], 13), Err(SrtpError::BufferTooSmall));
        assert_eq!(rx.decrypt_rtcp(&mut [0x80; 21], 21), Err(SrtpError::TooShort));
        assert_eq!(rx.decrypt_rtcp(&mut [0x40; 40], 40), Err(SrtpError::Malformed));
        assert_eq!(rx.decrypt_rtcp(&mut [0x80; 40], 40), Err(SrtpError::AuthFailed));
        // The tail of the buffer past `len` is not part of the packet.
        let wire = seal_rtp(&mut tx, &plain);
        let mut padded = wire.clone();
        padded.extend_from_slice(&[0xAA; 30]);
        assert_eq!(rx.decrypt_rtp(&mut padded, wire.len()), Ok(plain.len()));
        assert_eq!(padded[..plain.len()], plain[..]);
    }
}

#[test]
fn srtcp_index_exhaustion() {
    let (mut tx, _) = contexts(SrtpProfile::Aes128CmHmacSha1_80);
    seal_rtcp(&mut tx, &rtcp(5));
    tx.rtcp.insert(5, 0x7FFF_FFFF).unwrap();
    seal_rtcp(&mut tx, &rtcp(5));
    let mut buf = rtcp(5);
    buf.resize(60, 0);
    assert_eq!(tx.encrypt_rtcp(&mut buf, 32), Err(SrtpError::IndexExhausted));
}

// ---- never a panic ----

fn profile_strategy() -> impl Strategy<Value = SrtpProfile> {
    prop::sample::select(SrtpProfile::ALL.to_vec())
}

proptest! {
    #[test]
    fn random_bytes_never_panic(profile in profile_strategy(), bytes in prop::collection::vec(any::<u8>(), 0..200),
                                extra in 0usize..4) {
        let (_, mut rx) = contexts(profile);
        let mut buf = bytes.clone();
        let len = bytes.len().saturating_sub(extra);
        prop_assert!(rx.decrypt_rtp(&mut buf, len).is_err());
        prop_assert!(rx.decrypt_rtcp(&mut buf, len).is_err());
        // A `len` past the buffer is an error, not a panic.
        prop_assert_eq!(rx.decrypt_rtp(&mut buf, bytes.len() + 1), Err(SrtpError::BufferTooSmall));
        let (mut tx, _) = contexts(profile);
        let _ = tx.encrypt_rtp(&mut buf, len);
        let _ = tx.encrypt_rtcp(&mut buf, len);
    }

    #[test]
    fn mutated_and_truncated_packets_are_refused(profile in profile_strategy(), seq in any::<u16>(),
            ssrc in any::<u32>(), payload in 0usize..100, cut in 0usize..130, at in any::<prop::sample::Index>(),
            flip in 1u8..=255) {
        let (mut tx, mut rx) = contexts(profile);
        let wire = seal_rtp(&mut tx, &rtp(seq, ssrc, payload));
        let mut bad = wire.clone();
        let i = at.index(bad.len());
        bad[i] ^= flip;
        let mut buf = bad.clone();
        prop_assert!(rx.decrypt_rtp(&mut buf, bad.len()).is_err());
        let cut = cut.min(wire.len() - 1);
        let mut buf = wire.clone();
        prop_assert!(rx.decrypt_rtp(&mut buf, cut).is_err());
        prop_assert_eq!(rx.rtp_ssrc_count(), 0);

        let wire = seal_rtcp(&mut tx, &rtcp(ssrc));
        let mut bad = wire.clone();
        let i = at.index(bad.len());
        bad[i] ^= flip;
        let mut buf = bad.clone();
        prop_assert!(rx.decrypt_rtcp(&mut buf, bad.len()).is_err());
        let mut buf = wire.clone();
        prop_assert!(rx.decrypt_rtcp(&mut buf, cut.min(wire.len() - 1)).is_err());
    }

    #[test]
    fn round_trip(profile in profile_strategy(), seqs in prop::collection::vec(any::<u16>(), 1..5),
                  ssrc in any::<u32>(), payload in prop::collection::vec(any::<u8>(), 0..300),
                  csrcs in 0u8..16, ext_words in prop::option::of(0u16..8)) {
        let (mut tx, mut rx) = contexts(profile);
        // Consecutive sequence numbers from a random start, with CSRCs and an extension.
        for (i, start) in seqs.iter().enumerate() {
            let seq = start.wrapping_add(i as u16);
            let mut plain = vec![0x80 | csrcs | if ext_words.is_some() { 0x10 } else { 0 }, 96];
            plain.extend_from_slice(&seq.to_be_bytes());
            plain.extend_from_slice(&[0, 0, 0, 1]);
            plain.extend_from_slice(&ssrc.to_be_bytes());
            plain.extend((0..4 * usize::from(csrcs)).map(|i| i as u8));
            if let Some(words) = ext_words {
                plain.extend_from_slice(&[0xBE, 0xDE]);
                plain.extend_from_slice(&words.to_be_bytes());
                plain.extend((0..4 * usize::from(words)).map(|i| i as u8 ^ 0x5a));
            }
            plain.extend_from_slice(&payload);
            let (mut tx2, mut rx2) = contexts(profile);
            let wire = seal_rtp(&mut tx2, &plain);
            prop_assert_eq!(open_rtp(&mut rx2, &wire).unwrap(), plain.clone());
            let wire = seal_rtp(&mut tx, &plain);
            // In order, the receiver's estimate mirrors the sender's: each packet decrypts, unless
            // the random starts repeated an index.
            match open_rtp(&mut rx, &wire) {
                Ok(got) => prop_assert_eq!(got, plain),
                Err(e) => prop_assert!(matches!(e, SrtpError::Replayed | SrtpError::TooOld), "{:?}", e),
            }
        }
        let mut r = rtcp(ssrc);
        r.extend_from_slice(&payload);
        let wire = seal_rtcp(&mut tx, &r);
        prop_assert_eq!(open_rtcp(&mut rx, &wire).unwrap(), r);
    }
}
