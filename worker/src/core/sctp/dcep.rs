//! The Data Channel Establishment Protocol (RFC 8832): DATA_CHANNEL_OPEN and DATA_CHANNEL_ACK,
//! carried on an SCTP stream with PPID 50. Parsing is a view over the caller's buffer; building
//! writes into a caller-provided buffer.

/// Message types (RFC 8832 §8.2.1).
const DATA_CHANNEL_ACK: u8 = 0x02;
const DATA_CHANNEL_OPEN: u8 = 0x03;
/// Type, channel type, priority, reliability parameter, label length, protocol length.
const OPEN_HEADER_LEN: usize = 12;
/// The high bit of the channel type marks unordered delivery.
const UNORDERED_BIT: u8 = 0x80;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DcepError {
    #[error("empty DCEP message")]
    Empty,
    #[error("unknown DCEP message type {0:#04x}")]
    UnknownMessageType(u8),
    #[error("DATA_CHANNEL_OPEN shorter than its header or its label and protocol")]
    Truncated,
    #[error("DATA_CHANNEL_OPEN with trailing bytes")]
    TrailingBytes,
    #[error("unknown channel type {0:#04x}")]
    UnknownChannelType(u8),
    #[error("label or protocol is not UTF-8")]
    NotUtf8,
    #[error("buffer too small for the DCEP message")]
    BufferTooSmall,
    #[error("label or protocol longer than 65535 bytes")]
    TooLong,
}

/// How a channel retransmits (RFC 8832 §5.1 channel types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    Reliable,
    /// Partially reliable: at most this many retransmissions.
    MaxRetransmits(u32),
    /// Partially reliable: retransmit for at most this many milliseconds.
    MaxPacketLifeTime(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelType {
    pub ordered: bool,
    pub reliability: Reliability,
}

impl ChannelType {
    fn parse(byte: u8, parameter: u32) -> Result<Self, DcepError> {
        let reliability = match byte & !UNORDERED_BIT {
            0x00 => Reliability::Reliable,
            0x01 => Reliability::MaxRetransmits(parameter),
            0x02 => Reliability::MaxPacketLifeTime(parameter),
            _ => return Err(DcepError::UnknownChannelType(byte)),
        };
        Ok(Self { ordered: byte & UNORDERED_BIT == 0, reliability })
    }

    fn to_wire(self) -> (u8, u32) {
        let (kind, parameter) = match self.reliability {
            Reliability::Reliable => (0x00, 0),
            Reliability::MaxRetransmits(n) => (0x01, n),
            Reliability::MaxPacketLifeTime(ms) => (0x02, ms),
        };
        (if self.ordered { kind } else { kind | UNORDERED_BIT }, parameter)
    }
}

/// A DATA_CHANNEL_OPEN: a view over the received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataChannelOpen<'a> {
    pub channel_type: ChannelType,
    pub priority: u16,
    pub label: &'a str,
    pub protocol: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DcepMessage<'a> {
    Open(DataChannelOpen<'a>),
    Ack,
}

impl<'a> DcepMessage<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Self, DcepError> {
        match data.first() {
            None => Err(DcepError::Empty),
            // Later extensions may append to an ACK; RFC 8832 only defines the type byte.
            Some(&DATA_CHANNEL_ACK) => Ok(DcepMessage::Ack),
            Some(&DATA_CHANNEL_OPEN) => DataChannelOpen::parse(data).map(DcepMessage::Open),
            Some(&other) => Err(DcepError::UnknownMessageType(other)),
        }
    }
}

fn be16(data: &[u8], at: usize) -> Result<u16, DcepError> {
    let bytes = data.get(at..at + 2).ok_or(DcepError::Truncated)?;
    Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
}

impl<'a> DataChannelOpen<'a> {
    fn parse(data: &'a [u8]) -> Result<Self, DcepError> {
        if data.len() < OPEN_HEADER_LEN {
            return Err(DcepError::Truncated);
        }
        let parameter = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
        let channel_type = ChannelType::parse(data[1], parameter)?;
        let priority = be16(data, 2)?;
        let label_len = usize::from(be16(data, 8)?);
        let protocol_len = usize::from(be16(data, 10)?);
        let label_end = OPEN_HEADER_LEN + label_len;
        let end = label_end + protocol_len;
        let label = data.get(OPEN_HEADER_LEN..label_end).ok_or(DcepError::Truncated)?;
        let protocol = data.get(label_end..end).ok_or(DcepError::Truncated)?;
        if data.len() > end {
            return Err(DcepError::TrailingBytes);
        }
        Ok(Self {
            channel_type,
            priority,
            label: std::str::from_utf8(label).map_err(|_| DcepError::NotUtf8)?,
            protocol: std::str::from_utf8(protocol).map_err(|_| DcepError::NotUtf8)?,
        })
    }

    /// The encoded length of this message.
    pub fn len(&self) -> usize {
        OPEN_HEADER_LEN + self.label.len() + self.protocol.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the message into `out`, returning the length written.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, DcepError> {
        let label_len = u16::try_from(self.label.len()).map_err(|_| DcepError::TooLong)?;
        let protocol_len = u16::try_from(self.protocol.len()).map_err(|_| DcepError::TooLong)?;
        let len = self.len();
        let out = out.get_mut(..len).ok_or(DcepError::BufferTooSmall)?;
        let (kind, parameter) = self.channel_type.to_wire();
        out[0] = DATA_CHANNEL_OPEN;
        out[1] = kind;
        out[2..4].copy_from_slice(&self.priority.to_be_bytes());
        out[4..8].copy_from_slice(&parameter.to_be_bytes());
        out[8..10].copy_from_slice(&label_len.to_be_bytes());
        out[10..12].copy_from_slice(&protocol_len.to_be_bytes());
        let label_end = OPEN_HEADER_LEN + self.label.len();
        out[OPEN_HEADER_LEN..label_end].copy_from_slice(self.label.as_bytes());
        out[label_end..].copy_from_slice(self.protocol.as_bytes());
        Ok(len)
    }
}

/// Writes a DATA_CHANNEL_ACK into `out`, returning the length written.
pub fn write_ack(out: &mut [u8]) -> Result<usize, DcepError> {
    *out.first_mut().ok_or(DcepError::BufferTooSmall)? = DATA_CHANNEL_ACK;
    Ok(1)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn open(ordered: bool, reliability: Reliability) -> DataChannelOpen<'static> {
        DataChannelOpen {
            channel_type: ChannelType { ordered, reliability },
            priority: 256,
            label: "chat",
            protocol: "",
        }
    }

    #[test]
    fn open_round_trips_every_channel_type() {
        for ordered in [true, false] {
            for reliability in
                [Reliability::Reliable, Reliability::MaxRetransmits(0), Reliability::MaxPacketLifeTime(3000)]
            {
                let msg = DataChannelOpen { protocol: "json", ..open(ordered, reliability) };
                let mut buf = [0u8; 64];
                let n = msg.write(&mut buf).unwrap();
                assert_eq!(n, 12 + 4 + 4);
                assert_eq!(DcepMessage::parse(&buf[..n]), Ok(DcepMessage::Open(msg)));
            }
        }
    }

    #[test]
    fn open_matches_the_rfc_layout() {
        // PARTIAL_RELIABLE_REXMIT_UNORDERED (0x81), priority 512, 3 retransmits, label "ab", protocol "x".
        let wire = [3, 0x81, 2, 0, 0, 0, 0, 3, 0, 2, 0, 1, b'a', b'b', b'x'];
        let Ok(DcepMessage::Open(o)) = DcepMessage::parse(&wire) else { panic!() };
        assert_eq!(o.channel_type, ChannelType { ordered: false, reliability: Reliability::MaxRetransmits(3) });
        assert_eq!((o.priority, o.label, o.protocol), (512, "ab", "x"));
        let mut out = [0u8; 15];
        assert_eq!(o.write(&mut out), Ok(15));
        assert_eq!(out, wire);
    }

    #[test]
    fn ack_is_one_byte() {
        let mut buf = [0u8; 1];
        assert_eq!(write_ack(&mut buf), Ok(1));
        assert_eq!(DcepMessage::parse(&buf), Ok(DcepMessage::Ack));
        assert_eq!(write_ack(&mut []), Err(DcepError::BufferTooSmall));
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(DcepMessage::parse(&[]), Err(DcepError::Empty));
        assert_eq!(DcepMessage::parse(&[0x07]), Err(DcepError::UnknownMessageType(7)));
        assert_eq!(DcepMessage::parse(&[3, 0, 0]), Err(DcepError::Truncated));
        assert_eq!(DcepMessage::parse(&[3, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Err(DcepError::UnknownChannelType(3)));
        // The label length claims more than there is.
        assert_eq!(DcepMessage::parse(&[3, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, b'a']), Err(DcepError::Truncated));
        assert_eq!(DcepMessage::parse(&[3, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xff]), Err(DcepError::NotUtf8));
        assert_eq!(DcepMessage::parse(&[3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]), Err(DcepError::TrailingBytes));
        let mut small = [0u8; 15];
        assert_eq!(open(true, Reliability::Reliable).write(&mut small), Err(DcepError::BufferTooSmall));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = DcepMessage::parse(&data);
        }

        #[test]
        fn mutated_and_truncated_opens_never_panic(cut in 0usize..40, at in 0usize..40, byte in any::<u8>()) {
            let msg = DataChannelOpen { label: "label-✓", protocol: "proto", ..open(false, Reliability::MaxPacketLifeTime(9)) };
            let mut buf = [0u8; 64];
            let n = msg.write(&mut buf).unwrap();
            let mut wire = buf[..n].to_vec();
            if let Some(b) = wire.get_mut(at) { *b = byte; }
            wire.truncate(cut.min(n));
            if let Ok(DcepMessage::Open(o)) = DcepMessage::parse(&wire) {
                let mut again = [0u8; 64];
                let m = o.write(&mut again).unwrap();
                prop_assert_eq!(&again[..m], wire.as_slice());
            }
        }
    }
}
