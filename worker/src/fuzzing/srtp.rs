//! SRTP/SRTCP unprotect with fixed keys, as the worker runs it on every received media datagram.

use crate::core::is_rtcp;
use crate::core::srtp::{MasterKey, SrtpProfile, SrtpRecvContext, SrtpSendContext};
use crate::core::transmit::BUFFER_SIZE;

use super::input::records;

/// The fixed master key and salt (cut to each profile's lengths) the seeds were protected with.
pub const SRTP_MASTER_KEY: [u8; 32] = *b"octo fuzzing srtp master key 32b";
pub const SRTP_MASTER_SALT: [u8; 14] = *b"octo salt 14by";

/// The first byte picks the profile; then records (see [`records`]), each a flags byte and a
/// datagram. With flag bit 0 the datagram is taken as plaintext and protected first, so the
/// fuzzer reaches the decryption of valid packets, which must give the plaintext back; otherwise
/// it is unprotected as it came. A failed unprotect must leave the buffer as it was (the worker
/// counts the packet and moves on with the same buffer).
pub fn srtp_unprotect(data: &[u8]) -> bool {
    let Some((&profile, rest)) = data.split_first() else { return false };
    let profile = SrtpProfile::ALL[usize::from(profile) % SrtpProfile::ALL.len()];
    let key = master_key(profile);
    let mut send = SrtpSendContext::new(&key);
    let mut recv = SrtpRecvContext::new(&key);
    let mut buf = vec![0u8; BUFFER_SIZE];
    let mut accepted = false;
    for record in records(rest) {
        let Some((&flags, datagram)) = record.split_first() else { continue };
        let mut len = datagram.len().min(BUFFER_SIZE);
        buf[..len].copy_from_slice(&datagram[..len]);
        let plain = buf[..len].to_vec();
        let rtcp = is_rtcp(&plain);
        if flags & 1 != 0 {
            let protected = if rtcp { send.encrypt_rtcp(&mut buf, len) } else { send.encrypt_rtp(&mut buf, len) };
            match protected {
                Ok(n) => len = n,
                Err(_) => continue,
            }
        }
        let before = buf[..len].to_vec();
        let result = if rtcp { recv.decrypt_rtcp(&mut buf, len) } else { recv.decrypt_rtp(&mut buf, len) };
        match result {
            Ok(n) => {
                accepted = true;
                if flags & 1 != 0 {
                    assert_eq!(&buf[..n], &plain[..], "unprotect(protect(p)) is not p");
                }
            }
            Err(_) => assert_eq!(&buf[..len], &before[..], "a failed unprotect changed the buffer"),
        }
    }
    accepted
}

fn master_key(profile: SrtpProfile) -> MasterKey {
    MasterKey::new(profile, &SRTP_MASTER_KEY[..profile.key_len()], &SRTP_MASTER_SALT[..profile.salt_len()])
        .expect("fixed key lengths match the profile")
}
