//! SRTP throughput: Octo's in-place contexts against rtc-srtp, 1200-byte RTP packets, every profile.
//! `cargo bench -p octo-worker --bench srtp` (release). Bounded: a fixed number of packets per case,
//! best of a few rounds, so it finishes in seconds on a shared machine.

use std::hint::black_box;
use std::time::{Duration, Instant};

use octo_worker::core::srtp::{MasterKey, SrtpProfile, SrtpRecvContext, SrtpSendContext};
use rtc_srtp::context::Context;
use rtc_srtp::option::srtp_replay_protection;
use rtc_srtp::protection_profile::ProtectionProfile;

const PACKET_LEN: usize = 1200;
const PACKETS: u32 = 50_000;
const ROUNDS: u32 = 3;

fn plain_rtp(seq: u16) -> [u8; PACKET_LEN] {
    let mut p = [0x5Au8; PACKET_LEN];
    p[..12].copy_from_slice(&[0x80, 96, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]);
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p
}

fn theirs(profile: SrtpProfile) -> ProtectionProfile {
    match profile {
        SrtpProfile::Aes128CmHmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpProfile::Aes128CmHmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        SrtpProfile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm => ProtectionProfile::AeadAes256Gcm,
    }
}

/// Best-of-`ROUNDS` time for `PACKETS` calls of `f(i)`.
fn best(mut f: impl FnMut(u32)) -> Duration {
    (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for i in 0..PACKETS {
                f(i);
            }
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn report(profile: SrtpProfile, what: &str, who: &str, d: Duration) {
    let ns = d.as_nanos() as f64 / f64::from(PACKETS);
    let pps = 1e9 / ns;
    let gbps = pps * (PACKET_LEN * 8) as f64 / 1e9;
    println!(
        "{:<22} {:<8} {:<9} {:>8.0} ns/pkt {:>10.0} pkt/s {:>6.1} Gbit/s",
        format!("{profile:?}"),
        what,
        who,
        ns,
        pps,
        gbps
    );
}

fn main() {
    let provider = rtc_srtp::crypto::default_provider().expect("ring provider");
    println!("{PACKET_LEN}-byte RTP, {PACKETS} packets, best of {ROUNDS}");
    for profile in SrtpProfile::ALL {
        let key = MasterKey::new(profile, &vec![9; profile.key_len()], &vec![8; profile.salt_len()]).expect("key");

        // Encrypt: ours in place (copying the plaintext in is part of the loop, as forwarding would).
        let mut tx = SrtpSendContext::new(&key);
        let mut buf = [0u8; PACKET_LEN + 16];
        let d = best(|i| {
            buf[..PACKET_LEN].copy_from_slice(&plain_rtp(i as u16));
            black_box(tx.encrypt_rtp(&mut buf, PACKET_LEN).ok());
        });
        report(profile, "encrypt", "octo", d);
        let mut their_tx =
            Context::new(key.key(), key.salt(), theirs(profile), None, None, provider.crypto()).expect("ctx");
        let d = best(|i| {
            black_box(their_tx.encrypt_rtp(&plain_rtp(i as u16)).ok());
        });
        report(profile, "encrypt", "rtc-srtp", d);

        // Decrypt: pre-encrypt a window of packets with fresh sequence numbers per round, so the
        // replay check passes; the copy into the work buffer is in both loops.
        let wires: Vec<Vec<u8>> = {
            let mut tx = SrtpSendContext::new(&key);
            (0..PACKETS * ROUNDS)
                .map(|i| {
                    let mut b = vec![0u8; PACKET_LEN + 16];
                    b[..PACKET_LEN].copy_from_slice(&plain_rtp(i as u16));
                    let n = tx.encrypt_rtp(&mut b, PACKET_LEN).expect("encrypt");
                    b.truncate(n);
                    b
                })
                .collect()
        };
        let mut rx = SrtpRecvContext::new(&key);
        let mut round = 0;
        let d = (0..ROUNDS)
            .map(|_| {
                let base = round * PACKETS;
                round += 1;
                let start = Instant::now();
                for i in 0..PACKETS {
                    let w = &wires[(base + i) as usize];
                    buf[..w.len()].copy_from_slice(w);
                    black_box(rx.decrypt_rtp(&mut buf, w.len()).expect("decrypt"));
                }
                start.elapsed()
            })
            .min()
            .unwrap_or_default();
        report(profile, "decrypt", "octo", d);
        let mut their_rx = Context::new(
            key.key(),
            key.salt(),
            theirs(profile),
            Some(srtp_replay_protection(64)),
            None,
            provider.crypto(),
        )
        .expect("ctx");
        let mut round = 0;
        let d = (0..ROUNDS)
            .map(|_| {
                let base = round * PACKETS;
                round += 1;
                let start = Instant::now();
                for i in 0..PACKETS {
                    black_box(their_rx.decrypt_rtp(&wires[(base + i) as usize]).expect("their decrypt"));
                }
                start.elapsed()
            })
            .min()
            .unwrap_or_default();
        report(profile, "decrypt", "rtc-srtp", d);
    }
}
