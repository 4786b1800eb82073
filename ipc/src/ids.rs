//! Typed object ids.
//!
//! The controller chooses every id (like mediasoup, where the Node side makes the UUIDs) so that it
//! can route requests and subscribe to notifications before the worker has answered. Ids are 128-bit
//! and print as UUIDs, the form clients already know from mediasoup.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A string that is not a UUID-shaped id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id {0:?}: expected 32 hex digits, optionally hyphenated as a UUID")]
pub struct IdParseError(pub String);

fn fmt_uuid(v: u128, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let h = format!("{v:032x}");
    write!(f, "{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn parse_uuid(s: &str) -> Result<u128, IdParseError> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let dashes = s.len() - hex.len();
    let well_formed = hex.len() == 32
        && hex.chars().all(|c| c.is_ascii_hexdigit())
        && (dashes == 0 || (dashes == 4 && s.len() == 36 && [8, 13, 18, 23].iter().all(|&i| s.as_bytes()[i] == b'-')));
    if !well_formed {
        return Err(IdParseError(s.to_owned()));
    }
    u128::from_str_radix(&hex, 16).map_err(|_| IdParseError(s.to_owned()))
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub u128);

        impl $name {
            /// What this kind of object is called in errors and logs.
            pub const LABEL: &'static str = $label;
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt_uuid(self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_uuid(s).map(Self)
            }
        }
    };
}

typed_id!(
    /// A router: one room's media routing table, living on exactly one worker.
    RouterId,
    "router"
);
typed_id!(
    /// A WebRTC transport inside a router.
    TransportId,
    "transport"
);
typed_id!(
    /// A producer (incoming media) inside a transport.
    ProducerId,
    "producer"
);
typed_id!(
    /// A consumer (outgoing media) inside a transport.
    ConsumerId,
    "consumer"
);

typed_id!(
    /// A data producer (an incoming SCTP stream) inside a transport.
    DataProducerId,
    "data producer"
);
typed_id!(
    /// A data consumer (an outgoing SCTP stream) inside a transport.
    DataConsumerId,
    "data consumer"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_and_parses_as_uuid() {
        let id = RouterId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let s = id.to_string();
        assert_eq!(s, "01234567-89ab-cdef-0011-223344556677");
        assert_eq!(s.parse::<RouterId>().unwrap(), id);
        assert_eq!("0123456789abcdef0011223344556677".parse::<RouterId>().unwrap(), id);
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "",
            "xyz",
            "01234567-89ab-cdef-0011-22334455667",
            "0123456789abcdef00112233445566770",
            "0123-456789ab-cdef-0011-223344556677",
            "+1234567-89ab-cdef-0011-223344556677",
            "é",
            "--------------------------------",
        ] {
            assert!(bad.parse::<ProducerId>().is_err(), "{bad:?} parsed");
        }
    }
}
