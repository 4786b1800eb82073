//! A zero-allocation STUN codec (RFC 5389 / RFC 8489) with the ICE attributes of RFC 8445.
//!
//! [`StunMessage`] is a view over the received datagram: `parse` walks the attributes once, checks
//! every bound and remembers where the interesting ones are. The writers fill a caller-provided
//! buffer and return the length written. Only what an ICE-lite agent needs is decoded; other
//! attributes are bounds-checked and skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, Mac};
use sha1::Sha1;
use thiserror::Error;

/// The fixed value in bytes 4..8 of every RFC 5389 message; it also keys the XOR address encoding.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
pub const HEADER_LEN: usize = 20;
/// The FINGERPRINT value is the CRC-32 of the message XOR this constant ("STUN" in ASCII), so that
/// a STUN message inside another protocol's packet is unlikely to pass by accident.
const FINGERPRINT_XOR: u32 = 0x5354_554E;
const INTEGRITY_LEN: usize = 20;
/// RFC 8489 §14.8: the reason phrase is at most 128 characters, 763 bytes of UTF-8.
const MAX_REASON_LEN: usize = 763;

const METHOD_BINDING: u16 = 0x001;

/// Attribute types (IANA "STUN Attributes" registry).
pub mod attr {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    pub const PASSWORD_ALGORITHM: u16 = 0x001D;
    pub const USERHASH: u16 = 0x001E;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const PRIORITY: u16 = 0x0024;
    pub const USE_CANDIDATE: u16 = 0x0025;
    pub const SOFTWARE: u16 = 0x8022;
    pub const FINGERPRINT: u16 = 0x8028;
    pub const ICE_CONTROLLED: u16 = 0x8029;
    pub const ICE_CONTROLLING: u16 = 0x802A;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StunError {
    #[error("datagram of {0} bytes is shorter than a STUN header")]
    TooShort(usize),
    #[error("not a STUN message (first two bits or magic cookie)")]
    NotStun,
    #[error("header says {header} body bytes but the datagram carries {actual}")]
    LengthMismatch { header: usize, actual: usize },
    #[error("message length {0} is not a multiple of 4")]
    Unaligned(usize),
    #[error("attribute {attr_type:#06x} at offset {offset} runs past the end of the message")]
    AttributeOverflow { attr_type: u16, offset: usize },
    #[error("attribute {attr_type:#06x} has an invalid value")]
    InvalidAttribute { attr_type: u16 },
    #[error("attribute {attr_type:#06x} follows FINGERPRINT, which must be last")]
    AttributeAfterFingerprint { attr_type: u16 },
    #[error("output buffer too small: {needed} bytes needed")]
    BufferTooSmall { needed: usize },
    #[error("message body would exceed 65535 bytes")]
    MessageTooLong,
    #[error("error code {0} is outside 300..=699")]
    InvalidErrorCode(u16),
    #[error("reason phrase of {0} bytes exceeds 763")]
    ReasonTooLong(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunClass {
    Request,
    Indication,
    SuccessResponse,
    ErrorResponse,
}

impl StunClass {
    /// The class bits C1 C0, spread into the message type at bits 8 and 4.
    fn type_bits(self) -> u16 {
        match self {
            StunClass::Request => 0x0000,
            StunClass::Indication => 0x0010,
            StunClass::SuccessResponse => 0x0100,
            StunClass::ErrorResponse => 0x0110,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunMethod {
    Binding,
    /// Any other 12-bit method (TURN's Allocate, Refresh, …): parsed, never answered by ICE-lite.
    Other(u16),
}

/// An ERROR-CODE attribute: the code (class × 100 + number) and the raw reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode<'a> {
    pub code: u16,
    pub reason: &'a [u8],
}

/// True when `buf` looks like an RFC 5389 STUN message: the first byte is 0..=3 (RFC 7983
/// demultiplexing), there is room for a header, and the magic cookie is in place.
pub fn is_stun(buf: &[u8]) -> bool {
    match buf.get(..HEADER_LEN) {
        Some(h) => h[0] <= 3 && u32::from_be_bytes([h[4], h[5], h[6], h[7]]) == MAGIC_COOKIE,
        None => false,
    }
}

/// A parsed, validated view over one STUN message.
#[derive(Debug, Clone, Copy)]
pub struct StunMessage<'a> {
    buf: &'a [u8],
    class: StunClass,
    method: StunMethod,
    username: Option<&'a [u8]>,
    priority: Option<u32>,
    ice_controlling: Option<u64>,
    ice_controlled: Option<u64>,
    use_candidate: bool,
    error_code: Option<ErrorCode<'a>>,
    xor_mapped_address: Option<SocketAddr>,
    /// Offset of the MESSAGE-INTEGRITY attribute header.
    integrity_at: Option<usize>,
    /// Offset of the FINGERPRINT attribute header.
    fingerprint_at: Option<usize>,
    unknown_required: Option<u16>,
}

impl<'a> StunMessage<'a> {
    /// Validates the header (top bits, cookie, length equal to the datagram, 4-byte alignment) and
    /// every attribute's bounds. The first occurrence of an attribute wins (RFC 8489 §14);
    /// attributes after MESSAGE-INTEGRITY other than FINGERPRINT are ignored (§14.5), and nothing
    /// may follow FINGERPRINT (§14.7).
    pub fn parse(buf: &'a [u8]) -> Result<Self, StunError> {
        let header = buf.get(..HEADER_LEN).ok_or(StunError::TooShort(buf.len()))?;
        if !is_stun(buf) {
            return Err(StunError::NotStun);
        }
        let message_type = u16::from_be_bytes([header[0], header[1]]);
        let body_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let actual = buf.len() - HEADER_LEN;
        if body_len != actual {
            return Err(StunError::LengthMismatch { header: body_len, actual });
        }
        if body_len % 4 != 0 {
            return Err(StunError::Unaligned(body_len));
        }
        let mut transaction_id = [0u8; 12];
        transaction_id.copy_from_slice(&header[8..HEADER_LEN]);

        let mut msg = StunMessage {
            buf,
            class: class_of(message_type),
            method: method_of(message_type),
            username: None,
            priority: None,
            ice_controlling: None,
            ice_controlled: None,
            use_candidate: false,
            error_code: None,
            xor_mapped_address: None,
            integrity_at: None,
            fingerprint_at: None,
            unknown_required: None,
        };

        let mut pos = HEADER_LEN;
        while pos < buf.len() {
            let (attr_type, value_len) = match buf.get(pos..pos + 4) {
                Some(h) => (u16::from_be_bytes([h[0], h[1]]), usize::from(u16::from_be_bytes([h[2], h[3]]))),
                None => return Err(StunError::AttributeOverflow { attr_type: 0, offset: pos }),
            };
            let value_start = pos + 4;
            let next = value_start + padded(value_len);
            let value = match buf.get(value_start..value_start + value_len) {
                Some(v) if next <= buf.len() => v,
                _ => return Err(StunError::AttributeOverflow { attr_type, offset: pos }),
            };
            if msg.fingerprint_at.is_some() {
                return Err(StunError::AttributeAfterFingerprint { attr_type });
            }
            if attr_type == attr::FINGERPRINT {
                if value_len != 4 {
                    return Err(StunError::InvalidAttribute { attr_type });
                }
                msg.fingerprint_at = Some(pos);
            } else if msg.integrity_at.is_none() {
                msg.read_attribute(attr_type, value, pos, &transaction_id)?;
            }
            pos = next;
        }
        Ok(msg)
    }

    fn read_attribute(&mut self, attr_type: u16, value: &'a [u8], pos: usize, tid: &[u8; 12]) -> Result<(), StunError> {
        let invalid = StunError::InvalidAttribute { attr_type };
        match attr_type {
            attr::USERNAME => {
                self.username.get_or_insert(value);
            }
            attr::MESSAGE_INTEGRITY => {
                if value.len() != INTEGRITY_LEN {
                    return Err(invalid);
                }
                self.integrity_at = Some(pos);
            }
            attr::PRIORITY => {
                let v: [u8; 4] = value.try_into().map_err(|_| invalid)?;
                self.priority.get_or_insert(u32::from_be_bytes(v));
            }
            attr::ICE_CONTROLLING => {
                let v: [u8; 8] = value.try_into().map_err(|_| invalid)?;
                self.ice_controlling.get_or_insert(u64::from_be_bytes(v));
            }
            attr::ICE_CONTROLLED => {
                let v: [u8; 8] = value.try_into().map_err(|_| invalid)?;
                self.ice_controlled.get_or_insert(u64::from_be_bytes(v));
            }
            attr::USE_CANDIDATE => {
                if !value.is_empty() {
                    return Err(invalid);
                }
                self.use_candidate = true;
            }
            attr::ERROR_CODE => {
                let (head, reason) = value.split_at_checked(4).ok_or(invalid)?;
                let code = u16::from(head[2] & 0x07) * 100 + u16::from(head[3]);
                self.error_code.get_or_insert(ErrorCode { code, reason });
            }
            attr::XOR_MAPPED_ADDRESS => {
                let address = decode_xor_address(value, tid).ok_or(invalid)?;
                self.xor_mapped_address.get_or_insert(address);
            }
            attr::MAPPED_ADDRESS
            | attr::UNKNOWN_ATTRIBUTES
            | attr::REALM
            | attr::NONCE
            | attr::MESSAGE_INTEGRITY_SHA256
            | attr::PASSWORD_ALGORITHM
            | attr::USERHASH => {}
            // 0x0000..=0x7FFF are comprehension-required: a request carrying one we do not know
            // must be answered 420 (RFC 8489 §7.3.1), so remember the first one.
            t if t < 0x8000 => {
                self.unknown_required.get_or_insert(t);
            }
            // Comprehension-optional (SOFTWARE, GOOG-NETWORK-INFO, …): skipped.
            _ => {}
        }
        Ok(())
    }

    /// The whole message as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    pub fn class(&self) -> StunClass {
        self.class
    }

    pub fn method(&self) -> StunMethod {
        self.method
    }

    pub fn transaction_id(&self) -> [u8; 12] {
        let mut tid = [0u8; 12];
        tid.copy_from_slice(&self.buf[8..HEADER_LEN]);
        tid
    }

    pub fn username(&self) -> Option<&'a [u8]> {
        self.username
    }

    pub fn priority(&self) -> Option<u32> {
        self.priority
    }

    pub fn ice_controlling(&self) -> Option<u64> {
        self.ice_controlling
    }

    pub fn ice_controlled(&self) -> Option<u64> {
        self.ice_controlled
    }

    pub fn use_candidate(&self) -> bool {
        self.use_candidate
    }

    pub fn has_message_integrity(&self) -> bool {
        self.integrity_at.is_some()
    }

    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint_at.is_some()
    }

    pub fn error_code(&self) -> Option<ErrorCode<'a>> {
        self.error_code
    }

    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        self.xor_mapped_address
    }

    /// The first comprehension-required attribute type this codec does not know, if any.
    pub fn unknown_comprehension_required(&self) -> Option<u16> {
        self.unknown_required
    }

    /// Checks MESSAGE-INTEGRITY with a short-term key (the ICE password). The HMAC covers the
    /// message up to the attribute, with the header length counting up to and including it
    /// (RFC 8489 §14.5) — so a FINGERPRINT appended later does not change it. Constant-time compare.
    pub fn verify_integrity(&self, key: &[u8]) -> bool {
        let Some(at) = self.integrity_at else { return false };
        let (Some(covered), Some(tag)) = (self.buf.get(..at), self.buf.get(at + 4..at + 4 + INTEGRITY_LEN)) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else { return false };
        let Ok(length) = u16::try_from(at + 4 + INTEGRITY_LEN - HEADER_LEN) else { return false };
        mac.update(&covered[..2]);
        mac.update(&length.to_be_bytes());
        mac.update(&covered[4..]);
        mac.verify_slice(tag).is_ok()
    }

    /// Checks FINGERPRINT: CRC-32 of everything before it, XOR 0x5354554e.
    pub fn verify_fingerprint(&self) -> bool {
        let Some(at) = self.fingerprint_at else { return false };
        let (Some(covered), Some(value)) = (self.buf.get(..at), self.buf.get(at + 4..at + 8)) else {
            return false;
        };
        let Ok(length) = u16::try_from(at + 8 - HEADER_LEN) else { return false };
        let mut crc = crc32fast::Hasher::new();
        crc.update(&covered[..2]);
        crc.update(&length.to_be_bytes());
        crc.update(&covered[4..]);
        let expected = crc.finalize() ^ FINGERPRINT_XOR;
        value == expected.to_be_bytes()
    }
}

/// The class bits are C1 at bit 8 and C0 at bit 4 of the message type (RFC 8489 §5).
fn class_of(message_type: u16) -> StunClass {
    match ((message_type >> 7) & 0x2) | ((message_type >> 4) & 0x1) {
        0 => StunClass::Request,
        1 => StunClass::Indication,
        2 => StunClass::SuccessResponse,
        _ => StunClass::ErrorResponse,
    }
}

/// The 12 method bits are the message type with the two class bits squeezed out.
fn method_of(message_type: u16) -> StunMethod {
    let method = (message_type & 0x000F) | ((message_type >> 1) & 0x0070) | ((message_type >> 2) & 0x0F80);
    if method == METHOD_BINDING { StunMethod::Binding } else { StunMethod::Other(method) }
}

fn padded(len: usize) -> usize {
    (len + 3) & !3
}

fn decode_xor_address(value: &[u8], tid: &[u8; 12]) -> Option<SocketAddr> {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let family = *value.get(1)?;
    let port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]) ^ (MAGIC_COOKIE >> 16) as u16;
    match (family, value.len()) {
        (0x01, 8) => {
            let mut ip = [0u8; 4];
            for (i, b) in ip.iter_mut().enumerate() {
                *b = value[4 + i] ^ cookie[i];
            }
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        (0x02, 20) => {
            let mut ip = [0u8; 16];
            for (i, b) in ip.iter_mut().enumerate() {
                let mask = if i < 4 { cookie[i] } else { tid[i - 4] };
                *b = value[4 + i] ^ mask;
            }
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }
        _ => None,
    }
}

/// XOR-MAPPED-ADDRESS value: reserved byte, family, port ^ cookie-high, address ^ (cookie ‖ tid).
/// Returns the bytes and how many of them are used (8 for IPv4, 20 for IPv6).
fn encode_xor_address(addr: SocketAddr, tid: &[u8; 12]) -> ([u8; 20], usize) {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let mut v = [0u8; 20];
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    v[2..4].copy_from_slice(&port.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => {
            v[1] = 0x01;
            for (i, b) in ip.octets().iter().enumerate() {
                v[4 + i] = b ^ cookie[i];
            }
            (v, 8)
        }
        IpAddr::V6(ip) => {
            v[1] = 0x02;
            for (i, b) in ip.octets().iter().enumerate() {
                let mask = if i < 4 { cookie[i] } else { tid[i - 4] };
                v[4 + i] = b ^ mask;
            }
            (v, 20)
        }
    }
}

/// What a client puts in an ICE connectivity check; used by tests and the load generator.
#[derive(Debug, Clone, Copy)]
pub struct BindingRequest<'r> {
    pub transaction_id: [u8; 12],
    /// `<remote ufrag>:<local ufrag>` from the sender's point of view.
    pub username: &'r [u8],
    /// The receiver's ICE password: the MESSAGE-INTEGRITY key.
    pub password: &'r [u8],
    pub priority: u32,
    pub use_candidate: bool,
    pub ice_controlling: Option<u64>,
    pub ice_controlled: Option<u64>,
}

/// Writes a Binding request with USERNAME, PRIORITY, the role attributes, USE-CANDIDATE,
/// MESSAGE-INTEGRITY and FINGERPRINT.
pub fn write_binding_request(buf: &mut [u8], req: &BindingRequest<'_>) -> Result<usize, StunError> {
    let mut w = Writer::new(buf, StunClass::Request, &req.transaction_id)?;
    w.attr(attr::USERNAME, req.username)?;
    w.attr(attr::PRIORITY, &req.priority.to_be_bytes())?;
    if let Some(tie_breaker) = req.ice_controlling {
        w.attr(attr::ICE_CONTROLLING, &tie_breaker.to_be_bytes())?;
    }
    if let Some(tie_breaker) = req.ice_controlled {
        w.attr(attr::ICE_CONTROLLED, &tie_breaker.to_be_bytes())?;
    }
    if req.use_candidate {
        w.attr(attr::USE_CANDIDATE, &[])?;
    }
    w.message_integrity(req.password)?;
    w.fingerprint()?;
    Ok(w.len)
}

/// Writes a Binding success response with XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY and FINGERPRINT.
pub fn write_binding_success(
    buf: &mut [u8],
    transaction_id: [u8; 12],
    xor_mapped: SocketAddr,
    integrity_key: &[u8],
) -> Result<usize, StunError> {
    let mut w = Writer::new(buf, StunClass::SuccessResponse, &transaction_id)?;
    let (value, len) = encode_xor_address(xor_mapped, &transaction_id);
    w.attr(attr::XOR_MAPPED_ADDRESS, &value[..len])?;
    w.message_integrity(integrity_key)?;
    w.fingerprint()?;
    Ok(w.len)
}

/// Writes a Binding error response with ERROR-CODE, MESSAGE-INTEGRITY when a key is given (omit it
/// when the request could not be authenticated, e.g. 400 and 401) and FINGERPRINT.
pub fn write_binding_error(
    buf: &mut [u8],
    transaction_id: [u8; 12],
    code: u16,
    reason: &str,
    integrity_key: Option<&[u8]>,
) -> Result<usize, StunError> {
    write_error(buf, transaction_id, code, reason, None, integrity_key)
}

/// A 420 Unknown Attribute response, which must list the attribute it did not understand.
pub(crate) fn write_unknown_attribute_error(
    buf: &mut [u8],
    transaction_id: [u8; 12],
    unknown: u16,
    integrity_key: &[u8],
) -> Result<usize, StunError> {
    write_error(buf, transaction_id, 420, "Unknown Attribute", Some(unknown), Some(integrity_key))
}

fn write_error(
    buf: &mut [u8],
    transaction_id: [u8; 12],
    code: u16,
    reason: &str,
    unknown: Option<u16>,
    integrity_key: Option<&[u8]>,
) -> Result<usize, StunError> {
    if !(300..=699).contains(&code) {
        return Err(StunError::InvalidErrorCode(code));
    }
    if reason.len() > MAX_REASON_LEN {
        return Err(StunError::ReasonTooLong(reason.len()));
    }
    let mut w = Writer::new(buf, StunClass::ErrorResponse, &transaction_id)?;
    let value = w.begin_attr(attr::ERROR_CODE, 4 + reason.len())?;
    // The code is split into a class (hundreds, 3 bits) and a number (0..=99).
    value[2] = (code / 100) as u8;
    value[3] = (code % 100) as u8;
    value[4..].copy_from_slice(reason.as_bytes());
    if let Some(unknown) = unknown {
        w.attr(attr::UNKNOWN_ATTRIBUTES, &unknown.to_be_bytes())?;
    }
    if let Some(key) = integrity_key {
        w.message_integrity(key)?;
    }
    w.fingerprint()?;
    Ok(w.len)
}

/// Appends attributes to a message in a caller buffer, keeping the header length current.
struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Writer<'b> {
    fn new(buf: &'b mut [u8], class: StunClass, transaction_id: &[u8; 12]) -> Result<Self, StunError> {
        let header = buf.get_mut(..HEADER_LEN).ok_or(StunError::BufferTooSmall { needed: HEADER_LEN })?;
        let message_type = METHOD_BINDING | class.type_bits();
        header[0..2].copy_from_slice(&message_type.to_be_bytes());
        header[2..4].copy_from_slice(&0u16.to_be_bytes());
        header[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        header[8..20].copy_from_slice(transaction_id);
        Ok(Self { buf, len: HEADER_LEN })
    }

    /// Reserves an attribute of `value_len` bytes (zeroed padding included), updates the header
    /// length and returns the value slice for the caller to fill.
    fn begin_attr(&mut self, attr_type: u16, value_len: usize) -> Result<&mut [u8], StunError> {
        let value_len16 = u16::try_from(value_len).map_err(|_| StunError::MessageTooLong)?;
        let start = self.len;
        let end = start + 4 + padded(value_len);
        let body_len = u16::try_from(end - HEADER_LEN).map_err(|_| StunError::MessageTooLong)?;
        let slot = self.buf.get_mut(start..end).ok_or(StunError::BufferTooSmall { needed: end })?;
        slot[0..2].copy_from_slice(&attr_type.to_be_bytes());
        slot[2..4].copy_from_slice(&value_len16.to_be_bytes());
        slot[4..].fill(0);
        self.buf[2..4].copy_from_slice(&body_len.to_be_bytes());
        self.len = end;
        Ok(&mut self.buf[start + 4..start + 4 + value_len])
    }

    fn attr(&mut self, attr_type: u16, value: &[u8]) -> Result<(), StunError> {
        self.begin_attr(attr_type, value.len())?.copy_from_slice(value);
        Ok(())
    }

    /// The HMAC covers the message so far with the header length already counting the
    /// MESSAGE-INTEGRITY attribute, which `begin_attr` sets before we hash.
    fn message_integrity(&mut self, key: &[u8]) -> Result<(), StunError> {
        let covered_end = self.len;
        self.begin_attr(attr::MESSAGE_INTEGRITY, INTEGRITY_LEN)?;
        let mut mac = Hmac::<Sha1>::new_from_slice(key)
            .map_err(|_| StunError::InvalidAttribute { attr_type: attr::MESSAGE_INTEGRITY })?;
        mac.update(&self.buf[..covered_end]);
        let tag = mac.finalize().into_bytes();
        self.buf[covered_end + 4..covered_end + 4 + INTEGRITY_LEN].copy_from_slice(&tag);
        Ok(())
    }

    fn fingerprint(&mut self) -> Result<(), StunError> {
        let covered_end = self.len;
        self.begin_attr(attr::FINGERPRINT, 4)?;
        let value = crc32fast::hash(&self.buf[..covered_end]) ^ FINGERPRINT_XOR;
        self.buf[covered_end + 4..covered_end + 8].copy_from_slice(&value.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    const RFC5769_PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";
    const RFC5769_TID: [u8; 12] = [0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae];

    /// RFC 5769 §2.1, sample request (SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME, MI, FINGERPRINT).
    fn rfc5769_request() -> Vec<u8> {
        hex("000100582112a442b7e7a701bc34d686fa87dfae
             802200105354554e207465737420636c69656e74
             002400046e0001ff
             80290008932ff9b151263b36
             000600096576746a3a68367659202020
             000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2
             80280004e57a3bcf")
    }

    /// RFC 5769 §2.2, sample IPv4 response (192.0.2.1:32853).
    fn rfc5769_response_v4() -> Vec<u8> {
        hex("0101003c2112a442b7e7a701bc34d686fa87dfae
             8022000b7465737420766563746f7220
             002000080001a147e112a643
             000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7
             80280004c07d4c96")
    }

    /// RFC 5769 §2.3, sample IPv6 response ([2001:db8:1234:5678:11:2233:4455:6677]:32853).
    fn rfc5769_response_v6() -> Vec<u8> {
        hex("010100482112a442b7e7a701bc34d686fa87dfae
             8022000b7465737420766563746f7220
             002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9
             00080014a382954e4be67bf11784c97c8292c275bfe3ed41
             80280004c8fb0b4c")
    }

    #[test]
    fn rfc5769_sample_request() {
        let bytes = rfc5769_request();
        assert!(is_stun(&bytes));
        let msg = StunMessage::parse(&bytes).unwrap();
        assert_eq!(msg.class(), StunClass::Request);
        assert_eq!(msg.method(), StunMethod::Binding);
        assert_eq!(msg.transaction_id(), RFC5769_TID);
        assert_eq!(msg.username(), Some(&b"evtj:h6vY"[..]));
        assert_eq!(msg.priority(), Some(0x6e0001ff));
        assert_eq!(msg.ice_controlled(), Some(0x932ff9b151263b36));
        assert_eq!(msg.ice_controlling(), None);
        assert!(!msg.use_candidate());
        assert!(msg.has_message_integrity() && msg.has_fingerprint());
        assert!(msg.verify_integrity(RFC5769_PASSWORD));
        assert!(!msg.verify_integrity(b"VOkJxbRl1RmTxUk/WvJxBu"));
        assert!(msg.verify_fingerprint());
        assert_eq!(msg.unknown_comprehension_required(), None);
    }

    #[test]
    fn rfc5769_sample_responses() {
        let v4 = rfc5769_response_v4();
        let msg = StunMessage::parse(&v4).unwrap();
        assert_eq!(msg.class(), StunClass::SuccessResponse);
        assert!(msg.verify_integrity(RFC5769_PASSWORD));
        assert!(msg.verify_fingerprint());
        assert_eq!(msg.xor_mapped_address(), Some("192.0.2.1:32853".parse().unwrap()));

        let v6 = rfc5769_response_v6();
        let msg = StunMessage::parse(&v6).unwrap();
        assert!(msg.verify_integrity(RFC5769_PASSWORD));
        assert!(msg.verify_fingerprint());
        assert_eq!(msg.xor_mapped_address(), Some("[2001:db8:1234:5678:11:2233:4455:6677]:32853".parse().unwrap()));
    }

    #[test]
    fn a_flipped_bit_breaks_integrity_and_fingerprint() {
        let mut bytes = rfc5769_request();
        bytes[30] ^= 0x01; // inside the SOFTWARE value
        let msg = StunMessage::parse(&bytes).unwrap();
        assert!(!msg.verify_integrity(RFC5769_PASSWORD));
        assert!(!msg.verify_fingerprint());
    }

    #[test]
    fn our_writer_reproduces_the_rfc5769_mapped_address() {
        // The published response has SOFTWARE too, so compare only the XOR-MAPPED-ADDRESS value.
        let (value, len) = encode_xor_address("192.0.2.1:32853".parse().unwrap(), &RFC5769_TID);
        assert_eq!(&value[..len], &hex("0001a147e112a643")[..]);
        let (value, len) =
            encode_xor_address("[2001:db8:1234:5678:11:2233:4455:6677]:32853".parse().unwrap(), &RFC5769_TID);
        assert_eq!(&value[..len], &hex("0002a1470113a9faa5d3f179bc25f4b5bed2b9d9")[..]);
    }

    #[test]
    fn request_round_trip() {
        let mut buf = [0u8; 256];
        let req = BindingRequest {
            transaction_id: [7; 12],
            username: b"srv1:cli1",
            password: b"secret-password",
            priority: 0x6e00_01ff,
            use_candidate: true,
            ice_controlling: Some(0x1122_3344_5566_7788),
            ice_controlled: None,
        };
        let n = write_binding_request(&mut buf, &req).unwrap();
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        assert_eq!(msg.class(), StunClass::Request);
        assert_eq!(msg.method(), StunMethod::Binding);
        assert_eq!(msg.transaction_id(), [7; 12]);
        assert_eq!(msg.username(), Some(&b"srv1:cli1"[..]));
        assert_eq!(msg.priority(), Some(0x6e00_01ff));
        assert_eq!(msg.ice_controlling(), Some(0x1122_3344_5566_7788));
        assert!(msg.use_candidate());
        assert!(msg.verify_integrity(b"secret-password"));
        assert!(!msg.verify_integrity(b"secret-passwore"));
        assert!(!msg.verify_integrity(b""));
        assert!(msg.verify_fingerprint());
    }

    #[test]
    fn success_and_error_round_trip() {
        let mut buf = [0u8; 128];
        let n = write_binding_success(&mut buf, [1; 12], "[::1]:5000".parse().unwrap(), b"pw").unwrap();
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        assert_eq!(msg.class(), StunClass::SuccessResponse);
        assert_eq!(msg.xor_mapped_address(), Some("[::1]:5000".parse().unwrap()));
        assert!(msg.verify_integrity(b"pw") && msg.verify_fingerprint());

        let n = write_binding_error(&mut buf, [2; 12], 487, "Role Conflict", Some(b"pw")).unwrap();
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        assert_eq!(msg.class(), StunClass::ErrorResponse);
        assert_eq!(msg.error_code(), Some(ErrorCode { code: 487, reason: b"Role Conflict" }));
        assert!(msg.verify_integrity(b"pw") && msg.verify_fingerprint());

        let n = write_binding_error(&mut buf, [2; 12], 401, "Unauthorized", None).unwrap();
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        assert!(!msg.has_message_integrity());
        assert!(msg.verify_fingerprint());

        let n = write_unknown_attribute_error(&mut buf, [3; 12], 0x7001, b"pw").unwrap();
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        assert_eq!(msg.error_code().map(|e| e.code), Some(420));
    }

    #[test]
    fn writers_refuse_small_buffers_and_bad_codes() {
        let mut buf = [0u8; 40];
        let r = write_binding_success(&mut buf, [1; 12], "1.2.3.4:5".parse().unwrap(), b"pw");
        assert!(matches!(r, Err(StunError::BufferTooSmall { .. })));
        let mut tiny = [0u8; 10];
        assert!(matches!(
            write_binding_error(&mut tiny, [0; 12], 400, "x", None),
            Err(StunError::BufferTooSmall { .. })
        ));
        let mut buf = [0u8; 2000];
        assert_eq!(write_binding_error(&mut buf, [0; 12], 200, "x", None), Err(StunError::InvalidErrorCode(200)));
        let long = "x".repeat(764);
        assert_eq!(write_binding_error(&mut buf, [0; 12], 400, &long, None), Err(StunError::ReasonTooLong(764)));
    }

    #[test]
    fn header_validation() {
        assert_eq!(StunMessage::parse(&[0u8; 19]).unwrap_err(), StunError::TooShort(19));
        let mut bytes = rfc5769_request();
        bytes[4] = 0; // cookie
        assert!(!is_stun(&bytes));
        assert_eq!(StunMessage::parse(&bytes).unwrap_err(), StunError::NotStun);

        let bytes = rfc5769_request();
        assert!(matches!(StunMessage::parse(&bytes[..bytes.len() - 4]), Err(StunError::LengthMismatch { .. })));

        let mut bytes = rfc5769_request();
        bytes.push(0);
        bytes[3] += 1;
        assert_eq!(StunMessage::parse(&bytes).unwrap_err(), StunError::Unaligned(0x59));

        // An attribute whose length points past the end.
        let mut bytes = rfc5769_request();
        bytes[22..24].copy_from_slice(&0x00ffu16.to_be_bytes());
        assert!(matches!(StunMessage::parse(&bytes), Err(StunError::AttributeOverflow { attr_type: 0x8022, .. })));

        // PRIORITY with a 3-byte value is rejected, not read short.
        let mut bytes = rfc5769_request();
        bytes[42..44].copy_from_slice(&3u16.to_be_bytes());
        assert_eq!(StunMessage::parse(&bytes).unwrap_err(), StunError::InvalidAttribute { attr_type: attr::PRIORITY });
    }

    #[test]
    fn attributes_after_integrity_are_ignored_and_nothing_follows_fingerprint() {
        let mut buf = [0u8; 128];
        let mut w = Writer::new(&mut buf, StunClass::Request, &[9; 12]).unwrap();
        w.attr(attr::USERNAME, b"a:b").unwrap();
        w.message_integrity(b"pw").unwrap();
        w.attr(attr::PRIORITY, &5u32.to_be_bytes()).unwrap();
        w.attr(attr::USE_CANDIDATE, &[]).unwrap();
        w.attr(0x7777, &[1, 2]).unwrap();
        w.fingerprint().unwrap();
        let n = w.len;
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        assert!(msg.verify_integrity(b"pw"));
        assert!(msg.verify_fingerprint());
        assert_eq!(msg.priority(), None);
        assert!(!msg.use_candidate());
        assert_eq!(msg.unknown_comprehension_required(), None);

        let mut w = Writer::new(&mut buf, StunClass::Request, &[9; 12]).unwrap();
        w.fingerprint().unwrap();
        w.attr(attr::SOFTWARE, b"late").unwrap();
        let n = w.len;
        assert_eq!(
            StunMessage::parse(&buf[..n]).unwrap_err(),
            StunError::AttributeAfterFingerprint { attr_type: attr::SOFTWARE }
        );
    }

    #[test]
    fn unknown_attributes() {
        let mut buf = [0u8; 128];
        let mut w = Writer::new(&mut buf, StunClass::Request, &[9; 12]).unwrap();
        w.attr(0xC057, &[0, 1, 0, 2]).unwrap(); // GOOG-NETWORK-INFO: optional, skipped
        w.attr(0x7123, &[1]).unwrap(); // comprehension-required, unknown
        w.attr(0x7124, &[1]).unwrap();
        let n = w.len;
        let msg = StunMessage::parse(&buf[..n]).unwrap();
        assert_eq!(msg.unknown_comprehension_required(), Some(0x7123));
        assert!(!msg.has_message_integrity());
        assert!(!msg.verify_integrity(b"pw"));
        assert!(!msg.verify_fingerprint());
    }

    #[test]
    fn class_and_method_bits() {
        for (t, class) in [
            (0x0001, StunClass::Request),
            (0x0011, StunClass::Indication),
            (0x0101, StunClass::SuccessResponse),
            (0x0111, StunClass::ErrorResponse),
        ] {
            assert_eq!(class_of(t), class);
            assert_eq!(method_of(t), StunMethod::Binding);
            assert_eq!(METHOD_BINDING | class.type_bits(), t);
        }
        // TURN Allocate (0x003) and a method with high bits: 0x3EEF has method 0xFFF.
        assert_eq!(method_of(0x0003), StunMethod::Other(0x003));
        assert_eq!(method_of(0x3EEF), StunMethod::Other(0xFFF));
        assert_eq!(class_of(0x3EEF), StunClass::Request);
    }
}
