//! Splitting one fuzz input into several messages, for the targets that drive a state machine.
//!
//! A record is a 16-bit big-endian length and that many bytes; a last record shorter than its
//! length takes what is left, so any input is valid and the fuzzer never wastes runs on framing.

/// Iterates over the records of `data`.
pub fn records(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (len, rest) = data.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
        let (record, rest) = rest.split_at(len);
        data = rest;
        Some(record)
    })
}

/// Appends one record holding `bytes` to `out` (for building seeds).
pub fn record(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).expect("record longer than 64 KiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// CRC-32C (Castagnoli, reflected), the SCTP checksum: the SCTP target writes it into each packet
/// so that mutated packets get past the checksum and reach the chunk parsers.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_by_length_and_keep_a_short_tail() {
        let data = [0, 2, b'a', b'b', 0, 9, b'c'];
        assert_eq!(records(&data).collect::<Vec<_>>(), vec![&b"ab"[..], &b"c"[..]]);
        let mut built = Vec::new();
        record(&mut built, b"ab");
        assert_eq!(built, data[..4]);
    }

    #[test]
    fn crc32c_matches_the_rfc_3720_check_value() {
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0; 32]), 0x8A91_36AA);
    }
}
