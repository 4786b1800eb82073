//! The per-packet cryptographic transforms, keyed once per session: AES-CM + HMAC-SHA1
//! (RFC 3711 §4.1.1, §4.2) and AEAD AES-GCM (RFC 7714). They work in place on the caller's buffer and
//! know nothing about SSRC state: the context decides the packet index and the transform applies it.
//!
//! A packet that fails authentication leaves the buffer exactly as it was: AES-CM + HMAC verifies
//! before it decrypts; AES-GCM (ring's interleaved CTR + GHASH, which decrypts while it authenticates
//! and zeroes the output on a bad tag) restores the ciphertext from a copy taken before the pass.

use std::cell::Cell;

use aes::Aes128;
use aes::cipher::KeyInit;
use ctr::cipher::{InnerIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use sha1::Sha1;

use super::kdf::{self, Label};
use super::{MasterKey, SrtpError, SrtpProfile};

/// Bytes of the SRTCP `E || index` word.
pub(crate) const SRTCP_TRAILER_LEN: usize = 4;
/// The fixed RTCP header SRTCP leaves in the clear: V/P/RC, PT, length, sender SSRC.
pub(crate) const RTCP_HEADER_LEN: usize = 8;
const E_FLAG: u32 = 0x8000_0000;
const GCM_TAG_LEN: usize = 16;
/// Capacity the GCM ciphertext backup starts with: any single-MTU datagram fits, so it grows only if
/// a caller hands in a larger packet.
const MIN_GCM_BACKUP: usize = 2048;

pub(crate) struct CmHmac {
    aes: Aes128,
    mac: Hmac<Sha1>,
    salt: [u8; 14],
    tag_len: usize,
}

pub(crate) struct Gcm {
    key: LessSafeKey,
    salt: [u8; 12],
    /// The ciphertext of the packet being opened, copied before ring decrypts it in place so a bad tag
    /// can put it back. Allocated on the first open (send transforms never open) and reused after; a
    /// `Cell` because opening is `&self` and this is its only mutable state.
    backup: Cell<Vec<u8>>,
}

/// One direction's keyed transform for either RTP or RTCP.
#[allow(
    clippy::large_enum_variant,
    reason = "four per transport, built once; boxing would cost a pointer hop per packet to save ~300 bytes"
)]
pub(crate) enum Transform {
    CmHmac(CmHmac),
    Gcm(Gcm),
}

/// The two transforms one master key yields.
pub(crate) struct SessionTransforms {
    pub rtp: Transform,
    pub rtcp: Transform,
}

impl SessionTransforms {
    /// Derives the six session keys (RFC 3711 §4.3) and builds their key schedules, once.
    pub fn new(master: &MasterKey) -> Self {
        Self { rtp: Transform::new(master, false), rtcp: Transform::new(master, true) }
    }
}

impl Transform {
    fn new(master: &MasterKey, rtcp: bool) -> Self {
        let profile = master.profile();
        let (enc_label, auth_label, salt_label) = if rtcp {
            (Label::RtcpEncryption, Label::RtcpAuthentication, Label::RtcpSalt)
        } else {
            (Label::RtpEncryption, Label::RtpAuthentication, Label::RtpSalt)
        };
        let derive = |label, out: &mut [u8]| kdf::derive(master.key(), master.salt(), label, out);
        let mut key = [0u8; 32];
        let key = &mut key[..profile.key_len()];
        derive(enc_label, key);
        match profile {
            SrtpProfile::Aes128CmHmacSha1_80 | SrtpProfile::Aes128CmHmacSha1_32 => {
                let mut auth = [0u8; 20];
                derive(auth_label, &mut auth);
                let mut salt = [0u8; 14];
                derive(salt_label, &mut salt);
                let tag_len = if rtcp { profile.rtcp_auth_tag_len() } else { profile.rtp_auth_tag_len() };
                Transform::CmHmac(CmHmac {
                    aes: Aes128::new(key.as_ref().into()),
                    // HMAC accepts keys of any length: this cannot fail.
                    mac: <Hmac<Sha1> as Mac>::new_from_slice(&auth).unwrap_or_else(|_| unreachable!()),
                    salt,
                    tag_len,
                })
            }
            SrtpProfile::AeadAes128Gcm | SrtpProfile::AeadAes256Gcm => {
                let mut salt = [0u8; 12];
                derive(salt_label, &mut salt);
                Transform::Gcm(Gcm::new(key, salt))
            }
        }
    }

    /// Bytes of tag this transform appends.
    pub fn tag_len(&self) -> usize {
        match self {
            Transform::CmHmac(t) => t.tag_len,
            Transform::Gcm(_) => GCM_TAG_LEN,
        }
    }

    /// Encrypts `buf[header_len..len]` and writes the tag at `buf[len..]`; returns the new length.
    /// The caller guarantees `header_len <= len` and `len + tag_len() <= buf.len()`.
    pub fn protect_rtp(&self, buf: &mut [u8], header_len: usize, len: usize, ssrc: u32, index: u64) -> usize {
        let roc = (index >> 16) as u32;
        match self {
            Transform::CmHmac(t) => {
                t.keystream(ssrc, index, &mut buf[header_len..len]);
                let tag = t.rtp_mac(&buf[..len], roc);
                buf[len..len + t.tag_len].copy_from_slice(&tag[..t.tag_len]);
                len + t.tag_len
            }
            Transform::Gcm(g) => g.seal(buf, header_len, len, rtp_nonce(&g.salt, ssrc, index), None),
        }
    }

    /// Verifies the tag at the end of `buf[..len]`, then decrypts in place; returns the plaintext
    /// length. The caller guarantees `header_len + tag_len() <= len <= buf.len()`.
    pub fn unprotect_rtp(
        &self,
        buf: &mut [u8],
        header_len: usize,
        len: usize,
        ssrc: u32,
        index: u64,
    ) -> Result<usize, SrtpError> {
        let roc = (index >> 16) as u32;
        let body_end = len - self.tag_len();
        match self {
            Transform::CmHmac(t) => {
                let mut mac = t.mac.clone();
                mac.update(&buf[..body_end]);
                mac.update(&roc.to_be_bytes());
                mac.verify_truncated_left(&buf[body_end..len]).map_err(|_| SrtpError::AuthFailed)?;
                t.keystream(ssrc, index, &mut buf[header_len..body_end]);
            }
            Transform::Gcm(g) => g.open(buf, header_len, len, rtp_nonce(&g.salt, ssrc, index), None)?,
        }
        Ok(body_end)
    }

    /// Encrypts `buf[8..len]` and appends the tag and the `E=1 || index` trailer in the order the
    /// profile wants (RFC 3711 §3.4: trailer then tag; RFC 7714 §9: tag then trailer). The caller
    /// guarantees `8 <= len`, `index < 2^31` and room for `tag_len() + 4` more bytes.
    pub fn protect_rtcp(&self, buf: &mut [u8], len: usize, ssrc: u32, index: u32) -> usize {
        let trailer = (E_FLAG | index).to_be_bytes();
        match self {
            Transform::CmHmac(t) => {
                t.keystream(ssrc, u64::from(index), &mut buf[RTCP_HEADER_LEN..len]);
                buf[len..len + SRTCP_TRAILER_LEN].copy_from_slice(&trailer);
                let end = len + SRTCP_TRAILER_LEN;
                let mut mac = t.mac.clone();
                mac.update(&buf[..end]);
                let tag = mac.finalize().into_bytes();
                buf[end..end + t.tag_len].copy_from_slice(&tag[..t.tag_len]);
                end + t.tag_len
            }
            Transform::Gcm(g) => g.seal_rtcp(buf, len, ssrc, index, trailer),
        }
    }

    /// Reads the `E` flag and SRTCP index of a protected packet. The caller guarantees
    /// `len >= 8 + tag_len() + 4` and `len <= buf.len()`.
    pub fn rtcp_trailer(&self, buf: &[u8], len: usize) -> (bool, u32) {
        let at = match self {
            Transform::CmHmac(t) => len - t.tag_len - SRTCP_TRAILER_LEN,
            Transform::Gcm(_) => len - SRTCP_TRAILER_LEN,
        };
        let word = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        (word & E_FLAG != 0, word & !E_FLAG)
    }

    /// Verifies and (when `E` is set) decrypts a protected SRTCP packet in place; returns the
    /// plaintext RTCP length. The caller guarantees what [`Self::rtcp_trailer`] needs.
    pub fn unprotect_rtcp(
        &self,
        buf: &mut [u8],
        len: usize,
        ssrc: u32,
        index: u32,
        encrypted: bool,
    ) -> Result<usize, SrtpError> {
        let body_end = len - self.tag_len() - SRTCP_TRAILER_LEN;
        match self {
            Transform::CmHmac(t) => {
                let tag_at = len - t.tag_len;
                let mut mac = t.mac.clone();
                mac.update(&buf[..tag_at]);
                mac.verify_truncated_left(&buf[tag_at..len]).map_err(|_| SrtpError::AuthFailed)?;
                if encrypted {
                    t.keystream(ssrc, u64::from(index), &mut buf[RTCP_HEADER_LEN..body_end]);
                }
            }
            Transform::Gcm(g) => g.open_rtcp(buf, len, ssrc, index, encrypted)?,
        }
        Ok(body_end)
    }
}

impl CmHmac {
    /// XORs the AES-CM keystream for (SSRC, index) into `data` (RFC 3711 §4.1.1): the IV is
    /// `(salt << 16) XOR (SSRC << 64) XOR (index << 16)`, the low 16 bits count blocks.
    fn keystream(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (d, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *d ^= s;
        }
        for (d, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *d ^= s;
        }
        // Cloning the expanded key schedule is a copy, not an allocation or a re-expansion.
        let core = ctr::CtrCore::<Aes128, ctr::flavors::Ctr128BE>::inner_iv_init(self.aes.clone(), &iv.into());
        let mut c = ctr::Ctr128BE::<Aes128>::from_core(core);
        c.apply_keystream(data);
    }

    /// HMAC-SHA1 over `authenticated_portion || ROC` (RFC 3711 §4.2).
    fn rtp_mac(&self, authenticated: &[u8], roc: u32) -> [u8; 20] {
        let mut mac = self.mac.clone();
        mac.update(authenticated);
        mac.update(&roc.to_be_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// RFC 7714 §8.1: `(0x0000 || SSRC || ROC || SEQ) XOR salt`; `index` is `ROC << 16 | SEQ`, so its
/// 48 bits fill octets 6..12.
fn rtp_nonce(salt: &[u8; 12], ssrc: u32, index: u64) -> [u8; 12] {
    let mut iv = *salt;
    for (d, s) in iv[2..6].iter_mut().zip(ssrc.to_be_bytes()) {
        *d ^= s;
    }
    for (d, s) in iv[6..12].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *d ^= s;
    }
    iv
}

/// RFC 7714 §9.1: `(0x0000 || SSRC || 0x0000 || 0 || SRTCP index) XOR salt`; the E flag is not in it.
fn rtcp_nonce(salt: &[u8; 12], ssrc: u32, index: u32) -> [u8; 12] {
    let mut iv = *salt;
    for (d, s) in iv[2..6].iter_mut().zip(ssrc.to_be_bytes()) {
        *d ^= s;
    }
    for (d, s) in iv[8..12].iter_mut().zip((index & !E_FLAG).to_be_bytes()) {
        *d ^= s;
    }
    iv
}

impl Gcm {
    /// Keys AES-128-GCM or AES-256-GCM by the session key's length (16 or 32 bytes).
    fn new(key: &[u8], salt: [u8; 12]) -> Self {
        let algorithm = if key.len() == 32 { &AES_256_GCM } else { &AES_128_GCM };
        // The profiles only yield 16- and 32-byte keys, the lengths these algorithms take.
        let key = UnboundKey::new(algorithm, key).unwrap_or_else(|_| unreachable!("GCM session key length"));
        Self { key: LessSafeKey::new(key), salt, backup: Cell::new(Vec::new()) }
    }

    /// Encrypts `buf[aad_len..len]` with `buf[..aad_len]` (or `extra_aad`, if given) as associated
    /// data, and writes the tag at `buf[len..len + 16]`.
    fn seal(&self, buf: &mut [u8], aad_len: usize, len: usize, nonce: [u8; 12], extra_aad: Option<&[u8]>) -> usize {
        let (aad, rest) = buf.split_at_mut(aad_len);
        let (payload, tail) = rest.split_at_mut(len - aad_len);
        let aad = extra_aad.unwrap_or(aad);
        let tag = &mut tail[..GCM_TAG_LEN];
        match self.key.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), payload) {
            Ok(t) => tag.copy_from_slice(t.as_ref()),
            // ring refuses only plaintexts of 2^36 bytes or more, which no datagram reaches; a zero
            // tag would then make the peer drop the packet.
            Err(_) => tag.fill(0),
        }
        len + GCM_TAG_LEN
    }

    /// Authenticates and decrypts `buf[aad_len..len - 16]` in place against the tag at
    /// `buf[len - 16..len]`, with `buf[..aad_len]` (or `extra_aad`) as associated data. On a bad tag
    /// the ciphertext is put back, so `buf` is unchanged.
    fn open(
        &self,
        buf: &mut [u8],
        aad_len: usize,
        len: usize,
        nonce: [u8; 12],
        extra_aad: Option<&[u8]>,
    ) -> Result<(), SrtpError> {
        let body_end = len - GCM_TAG_LEN;
        let (aad, rest) = buf.split_at_mut(aad_len);
        let (ciphertext, tail) = rest.split_at_mut(body_end - aad_len);
        let mut tag = [0u8; GCM_TAG_LEN];
        tag.copy_from_slice(&tail[..GCM_TAG_LEN]);
        let aad = extra_aad.unwrap_or(aad);

        let mut backup = self.backup.take();
        backup.clear();
        if backup.capacity() < ciphertext.len() {
            backup.reserve_exact(ciphertext.len().max(MIN_GCM_BACKUP));
        }
        backup.extend_from_slice(ciphertext);
        let opened = self
            .key
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                Tag::from(tag),
                ciphertext,
                0..,
            )
            .is_ok();
        if !opened {
            ciphertext.copy_from_slice(&backup);
        }
        self.backup.set(backup);
        if opened { Ok(()) } else { Err(SrtpError::AuthFailed) }
    }

    /// RFC 7714 §9: AAD is the 8-byte header followed by `E || index`; layout
    /// `header | ciphertext | tag | E || index`.
    fn seal_rtcp(&self, buf: &mut [u8], len: usize, ssrc: u32, index: u32, trailer: [u8; 4]) -> usize {
        let aad = rtcp_aad(buf, trailer);
        let end = self.seal(buf, RTCP_HEADER_LEN, len, rtcp_nonce(&self.salt, ssrc, index), Some(&aad));
        buf[end..end + SRTCP_TRAILER_LEN].copy_from_slice(&trailer);
        end + SRTCP_TRAILER_LEN
    }

    fn open_rtcp(&self, buf: &mut [u8], len: usize, ssrc: u32, index: u32, encrypted: bool) -> Result<(), SrtpError> {
        let nonce = rtcp_nonce(&self.salt, ssrc, index);
        let tag_end = len - SRTCP_TRAILER_LEN;
        let mut trailer = [0u8; SRTCP_TRAILER_LEN];
        trailer.copy_from_slice(&buf[tag_end..len]);
        if encrypted {
            let aad = rtcp_aad(buf, trailer);
            return self.open(buf, RTCP_HEADER_LEN, tag_end, nonce, Some(&aad));
        }
        // E = 0 (RFC 7714 §9.2): the whole packet and the trailer are AAD, the plaintext is empty.
        // The AAD must be contiguous and the tag sits between packet and trailer, so slide the
        // trailer over the tag's first bytes for the check and put the tag back afterwards. Nothing
        // is decrypted, so there is nothing for a bad tag to clobber.
        let body_end = tag_end - GCM_TAG_LEN;
        let mut tag = [0u8; GCM_TAG_LEN];
        tag.copy_from_slice(&buf[body_end..tag_end]);
        buf[body_end..body_end + SRTCP_TRAILER_LEN].copy_from_slice(&trailer);
        let result = self
            .key
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&buf[..body_end + SRTCP_TRAILER_LEN]),
                Tag::from(tag),
                &mut [],
                0..,
            )
            .map(|_| ())
            .map_err(|_| SrtpError::AuthFailed);
        buf[body_end..tag_end].copy_from_slice(&tag);
        result
    }
}

fn rtcp_aad(buf: &[u8], trailer: [u8; 4]) -> [u8; RTCP_HEADER_LEN + SRTCP_TRAILER_LEN] {
    let mut aad = [0u8; RTCP_HEADER_LEN + SRTCP_TRAILER_LEN];
    aad[..RTCP_HEADER_LEN].copy_from_slice(&buf[..RTCP_HEADER_LEN]);
    aad[RTCP_HEADER_LEN..].copy_from_slice(&trailer);
    aad
}

/// Builds transforms straight from session keys, for the RFC 7714 vectors (which give session,
/// not master, keys).
#[cfg(test)]
pub(crate) fn gcm_from_session_key(key: &[u8], salt: [u8; 12]) -> Transform {
    Transform::Gcm(Gcm::new(key, salt))
}

#[cfg(test)]
pub(crate) fn cm_keystream_for_test(key: &[u8; 16], salt: [u8; 14], ssrc: u32, index: u64, data: &mut [u8]) {
    let t = CmHmac {
        aes: Aes128::new(key.into()),
        mac: <Hmac<Sha1> as Mac>::new_from_slice(&[0u8; 20]).unwrap_or_else(|_| unreachable!()),
        salt,
        tag_len: 10,
    };
    t.keystream(ssrc, index, data);
}
