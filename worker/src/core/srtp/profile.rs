//! The DTLS-SRTP protection profiles (RFC 5764 §4.1.2, RFC 7714 §14.2), master keys, and the split of
//! the DTLS exporter output into the two directions' master keys (RFC 5764 §4.2).

use std::fmt;

use super::SrtpError;

/// Longest master key of any profile (AES-256).
pub(crate) const MAX_KEY_LEN: usize = 32;
/// Longest master salt of any profile (AES-CM's 112 bits).
pub(crate) const MAX_SALT_LEN: usize = 14;

/// A negotiated SRTP protection profile. The discriminants are the IANA profile ids from the DTLS
/// `use_srtp` extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpProfile {
    /// `SRTP_AES128_CM_HMAC_SHA1_80`: AES-128 counter mode, 80-bit HMAC-SHA1 tag.
    Aes128CmHmacSha1_80 = 0x0001,
    /// `SRTP_AES128_CM_HMAC_SHA1_32`: as above with a 32-bit SRTP tag (SRTCP keeps 80 bits).
    Aes128CmHmacSha1_32 = 0x0002,
    /// `SRTP_AEAD_AES_128_GCM` (RFC 7714).
    AeadAes128Gcm = 0x0007,
    /// `SRTP_AEAD_AES_256_GCM` (RFC 7714).
    AeadAes256Gcm = 0x0008,
}

impl SrtpProfile {
    /// Every profile this module implements, in Octo's order of preference.
    pub const ALL: [SrtpProfile; 4] =
        [Self::AeadAes128Gcm, Self::AeadAes256Gcm, Self::Aes128CmHmacSha1_80, Self::Aes128CmHmacSha1_32];

    /// The profile for an IANA DTLS-SRTP profile id, if we implement it.
    pub fn from_id(id: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|p| *p as u16 == id)
    }

    /// Master (and session) key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 | Self::Aes128CmHmacSha1_32 | Self::AeadAes128Gcm => 16,
            Self::AeadAes256Gcm => 32,
        }
    }

    /// Master (and session) salt length in bytes: 112 bits for AES-CM, 96 bits for GCM.
    pub const fn salt_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 | Self::Aes128CmHmacSha1_32 => 14,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 12,
        }
    }

    /// Bytes appended to an SRTP packet: the HMAC tag, or the GCM tag.
    pub const fn rtp_auth_tag_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 => 10,
            Self::Aes128CmHmacSha1_32 => 4,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 16,
        }
    }

    /// Bytes of tag on an SRTCP packet (the 4-byte E flag and index come on top). RFC 5764 §4.1.2:
    /// the `_32` profile still uses an 80-bit tag for SRTCP.
    pub const fn rtcp_auth_tag_len(self) -> usize {
        match self {
            Self::Aes128CmHmacSha1_80 | Self::Aes128CmHmacSha1_32 => 10,
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 16,
        }
    }

    /// How many bytes to ask the DTLS exporter (label `EXTRACTOR-dtls_srtp`) for: 2 × (key + salt).
    pub const fn keying_material_len(self) -> usize {
        2 * (self.key_len() + self.salt_len())
    }

    /// Whether this is one of the RFC 7714 AEAD profiles.
    pub const fn is_aead(self) -> bool {
        matches!(self, Self::AeadAes128Gcm | Self::AeadAes256Gcm)
    }
}

/// One direction's master key and master salt, sized for a profile. `Debug` does not print them.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    profile: SrtpProfile,
    key: [u8; MAX_KEY_LEN],
    salt: [u8; MAX_SALT_LEN],
}

impl MasterKey {
    /// A master key for `profile`; the lengths must be exactly the profile's.
    pub fn new(profile: SrtpProfile, key: &[u8], salt: &[u8]) -> Result<Self, SrtpError> {
        if key.len() != profile.key_len() || salt.len() != profile.salt_len() {
            return Err(SrtpError::KeyLength);
        }
        let mut k = [0u8; MAX_KEY_LEN];
        let mut s = [0u8; MAX_SALT_LEN];
        k[..key.len()].copy_from_slice(key);
        s[..salt.len()].copy_from_slice(salt);
        Ok(Self { profile, key: k, salt: s })
    }

    /// The profile the key was sized for.
    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// The master key, `profile().key_len()` bytes.
    pub fn key(&self) -> &[u8] {
        &self.key[..self.profile.key_len()]
    }

    /// The master salt, `profile().salt_len()` bytes.
    pub fn salt(&self) -> &[u8] {
        &self.salt[..self.profile.salt_len()]
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("profile", &self.profile).finish_non_exhaustive()
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        // Best effort: keys should not linger in freed memory; `black_box` keeps the stores alive.
        self.key.fill(0);
        self.salt.fill(0);
        std::hint::black_box((&self.key, &self.salt));
    }
}

/// The two master keys of one DTLS-SRTP association, by direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DtlsSrtpKeys {
    /// What we protect with (build the [`super::SrtpSendContext`] from it).
    pub local: MasterKey,
    /// What the peer protects with (build the [`super::SrtpRecvContext`] from it).
    pub remote: MasterKey,
}

impl DtlsSrtpKeys {
    /// Splits the exporter output, laid out per RFC 5764 §4.2 as
    /// `client_key | server_key | client_salt | server_salt`. The DTLS client sends with the
    /// client half, so `we_are_dtls_client` decides which half is ours.
    pub fn split(profile: SrtpProfile, keying_material: &[u8], we_are_dtls_client: bool) -> Result<Self, SrtpError> {
        let expected = profile.keying_material_len();
        if keying_material.len() != expected {
            return Err(SrtpError::KeyingMaterialLength { expected, got: keying_material.len() });
        }
        let (kl, sl) = (profile.key_len(), profile.salt_len());
        let (client_key, rest) = keying_material.split_at(kl);
        let (server_key, rest) = rest.split_at(kl);
        let (client_salt, server_salt) = rest.split_at(sl);
        let client = MasterKey::new(profile, client_key, client_salt)?;
        let server = MasterKey::new(profile, server_key, server_salt)?;
        Ok(if we_are_dtls_client {
            Self { local: client, remote: server }
        } else {
            Self { local: server, remote: client }
        })
    }
}
