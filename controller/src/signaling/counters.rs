//! Signaling requests and errors by dialect, event and error code, for `/metrics`.
//!
//! Every label comes from a fixed list: an event name neither dialect knows is counted as
//! `unknown`, so a client sending random event names cannot grow the number of series. The counters
//! are a flat array of atomics indexed by (dialect, event, code): counting never locks or allocates.

use std::sync::atomic::{AtomicU64, Ordering};

use socketioxide::{SendError, SocketError};

use super::error::Code;
use super::{Dialect, protocol, seed};

/// The seed dialect's HTTP request, counted like an event.
pub const GET_RTP_CAPABILITIES: &str = "getRtpCapabilities";
const UNKNOWN: &str = "unknown";

/// A dialect label: the two dialects, and `unknown` for events neither knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialectLabel {
    Main,
    Seed,
    Unknown,
}

impl DialectLabel {
    const ALL: [DialectLabel; 3] = [DialectLabel::Main, DialectLabel::Seed, DialectLabel::Unknown];

    pub fn as_str(self) -> &'static str {
        match self {
            DialectLabel::Main => "main",
            DialectLabel::Seed => "seed",
            DialectLabel::Unknown => "unknown",
        }
    }

    /// The events that can be counted under this dialect.
    fn events(self) -> Vec<&'static str> {
        match self {
            DialectLabel::Main => protocol::EVENTS.to_vec(),
            DialectLabel::Seed => seed::EVENTS.iter().copied().chain([GET_RTP_CAPABILITIES]).collect(),
            DialectLabel::Unknown => vec![UNKNOWN],
        }
    }
}

impl From<Option<Dialect>> for DialectLabel {
    fn from(d: Option<Dialect>) -> Self {
        match d {
            Some(Dialect::Main) => DialectLabel::Main,
            Some(Dialect::Seed) => DialectLabel::Seed,
            None => DialectLabel::Unknown,
        }
    }
}

/// One (dialect, event) pair of the fixed label set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot(usize);

pub struct SignalingCounters {
    /// Every (dialect, event) pair that can occur, in a stable order.
    pairs: Vec<(DialectLabel, &'static str)>,
    requests: Vec<AtomicU64>,
    /// `pairs.len() × Code::ALL.len()`.
    errors: Vec<AtomicU64>,
    /// Acks and events dropped because the socket's send buffer was full (a client not reading).
    undelivered: AtomicU64,
}

impl Default for SignalingCounters {
    fn default() -> Self {
        let pairs: Vec<_> =
            DialectLabel::ALL.into_iter().flat_map(|d| d.events().into_iter().map(move |e| (d, e))).collect();
        let requests = pairs.iter().map(|_| AtomicU64::new(0)).collect();
        let errors = (0..pairs.len() * Code::ALL.len()).map(|_| AtomicU64::new(0)).collect();
        Self { pairs, requests, errors, undelivered: AtomicU64::new(0) }
    }
}

impl SignalingCounters {
    /// The slot of `event` in `dialect`; an event that dialect does not have is counted as
    /// `{dialect="unknown", event="unknown"}`, so the label set stays fixed.
    fn slot(&self, dialect: DialectLabel, event: &str) -> Slot {
        let found = self.pairs.iter().position(|(d, e)| *d == dialect && *e == event);
        Slot(found.unwrap_or_else(|| {
            self.pairs.iter().position(|(d, _)| *d == DialectLabel::Unknown).expect("the unknown pair exists")
        }))
    }

    /// A request for `event` in `dialect` reached the server.
    pub fn request(&self, dialect: DialectLabel, event: &str) {
        self.requests[self.slot(dialect, event).0].fetch_add(1, Ordering::Relaxed);
    }

    /// A request for `event` in `dialect` was answered with the error `code`.
    pub fn error(&self, dialect: DialectLabel, event: &str, code: Code) {
        let slot = self.slot(dialect, event).0;
        let Some(code_index) = Code::ALL.iter().position(|c| *c == code) else { return };
        self.errors[slot * Code::ALL.len() + code_index].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts what a send to a socket returned: a full buffer is a drop to count; a closed socket
    /// is a peer already gone, nothing lost that anyone waits for.
    pub fn sent<T>(&self, result: Result<T, SendError>) {
        if let Err(SendError::Socket(SocketError::InternalChannelFull)) = result {
            self.undelivered.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Acks and events dropped because a socket's send buffer was full.
    pub fn undelivered(&self) -> u64 {
        self.undelivered.load(Ordering::Relaxed)
    }

    /// Every (dialect, event, count) of requests, zeros included, so rates work from the start.
    pub fn requests(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.pairs.iter().zip(&self.requests).map(|((d, e), n)| (d.as_str(), *e, n.load(Ordering::Relaxed))).collect()
    }

    /// Every (dialect, event, code, count) of errors that happened at least once.
    pub fn errors(&self) -> Vec<(&'static str, &'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for (i, (d, e)) in self.pairs.iter().enumerate() {
            for (j, code) in Code::ALL.iter().enumerate() {
                let n = self.errors[i * Code::ALL.len() + j].load(Ordering::Relaxed);
                if n > 0 {
                    out.push((d.as_str(), *e, code.as_str(), n));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_events_count_under_their_own_label() {
        let c = SignalingCounters::default();
        c.request(DialectLabel::Main, "joinRoom");
        c.request(DialectLabel::Main, "joinRoom");
        c.request(DialectLabel::Seed, "join");
        c.request(DialectLabel::Seed, GET_RTP_CAPABILITIES);
        c.error(DialectLabel::Main, "closeProducer", Code::Forbidden);
        let requests = c.requests();
        assert!(requests.contains(&("main", "joinRoom", 2)));
        assert!(requests.contains(&("seed", "join", 1)));
        assert!(requests.contains(&("seed", "getRtpCapabilities", 1)));
        assert!(requests.contains(&("main", "produce", 0)), "zeros are listed");
        assert!(requests.contains(&("seed", "produce", 0)), "shared names exist in both dialects");
        assert_eq!(c.errors(), [("main", "closeProducer", "forbidden", 1)]);
    }

    #[test]
    fn hostile_event_names_do_not_add_series() {
        let c = SignalingCounters::default();
        let series = c.requests().len();
        for i in 0..1000 {
            let name = format!("evil-{i}");
            c.request(DialectLabel::Unknown, &name);
            c.error(DialectLabel::Unknown, &name, Code::UnknownEvent);
        }
        // An event name of the other dialect is not a label of this one either.
        c.request(DialectLabel::Main, "join");
        assert_eq!(c.requests().len(), series);
        assert!(c.requests().contains(&("unknown", "unknown", 1001)));
        assert_eq!(c.errors(), [("unknown", "unknown", "unknown_event", 1000)]);
    }

    #[test]
    fn only_a_full_send_buffer_counts_as_undelivered() {
        let c = SignalingCounters::default();
        c.sent(Ok(()));
        c.sent::<()>(Err(SendError::Socket(SocketError::Closed)));
        assert_eq!(c.undelivered(), 0, "a closed socket is a peer gone, not a drop");
        c.sent::<()>(Err(SendError::Socket(SocketError::InternalChannelFull)));
        assert_eq!(c.undelivered(), 1);
    }
}
