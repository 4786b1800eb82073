//! SRTP key derivation (RFC 3711 §4.3): the AES-CM PRF keyed with the master key, with a key
//! derivation rate of 0 (the only one DTLS-SRTP uses), so each session key is derived once.

use aes::{Aes128, Aes256};
use ctr::cipher::{KeyIvInit, StreamCipher};

/// The `<label>` values of RFC 3711 §4.3.2 (SRTCP's are 3..=5).
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
pub(crate) enum Label {
    RtpEncryption = 0,
    RtpAuthentication = 1,
    RtpSalt = 2,
    RtcpEncryption = 3,
    RtcpAuthentication = 4,
    RtcpSalt = 5,
}

/// Fills `out` with the PRF output for `label`: AES-CM keystream under the master key with the IV
/// `(master_salt XOR (label << 48)) << 16`. With kdr = 0 the index term is zero, so the label lands on
/// octet 7 of the 14-octet salt. A 12-octet GCM master salt is zero-padded on the right to 112 bits
/// (RFC 7714 §11 keeps the RFC 3711 KDF; this is what libsrtp and rtc-srtp do).
///
/// `master_key` must be 16 or 32 bytes and `master_salt` at most 14 (callers take them from a
/// [`super::MasterKey`], which guarantees both).
pub(crate) fn derive(master_key: &[u8], master_salt: &[u8], label: Label, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    let n = master_salt.len().min(14);
    iv[..n].copy_from_slice(&master_salt[..n]);
    iv[7] ^= label as u8;
    out.fill(0);
    if master_key.len() == 32 {
        if let Ok(mut c) = ctr::Ctr128BE::<Aes256>::new_from_slices(master_key, &iv) {
            c.apply_keystream(out);
        }
    } else if let Ok(mut c) = ctr::Ctr128BE::<Aes128>::new_from_slices(master_key, &iv) {
        c.apply_keystream(out);
    }
}
