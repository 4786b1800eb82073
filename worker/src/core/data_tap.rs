//! A data producer's tap: its text messages handed to the controller too (for a room's chat
//! history), within bounds the worker enforces itself so that a flooding client costs the ipc
//! channel nothing: text only, at most [`MAX_TAPPED`] bytes, [`RATE`] a second with bursts of
//! [`BURST`]. What it refuses is counted.

use std::time::Instant;

/// WebRTC DataChannel PPIDs (RFC 8831): string, and empty string.
const PPID_STRING: u32 = 51;
const PPID_STRING_EMPTY: u32 = 56;
pub const MAX_TAPPED: usize = 4096;
pub const RATE: f64 = 20.0;
pub const BURST: f64 = 40.0;

#[derive(Debug, Clone)]
pub struct Tap {
    tokens: f64,
    last: Option<Instant>,
    pub messages: u64,
    pub dropped: u64,
}

impl Default for Tap {
    fn default() -> Self {
        Tap { tokens: BURST, last: None, messages: 0, dropped: 0 }
    }
}

impl Tap {
    /// The payload to hand over for a message (`ppid`, `data`) received at `now`, or `None` (counted).
    pub fn pass(&mut self, now: Instant, ppid: u32, data: &[u8]) -> Option<Vec<u8>> {
        let payload = match ppid {
            PPID_STRING if data.len() <= MAX_TAPPED => data.to_vec(),
            PPID_STRING_EMPTY => Vec::new(),
            _ => {
                self.dropped += 1;
                return None;
            }
        };
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * RATE).min(BURST);
        }
        self.last = Some(now);
        if self.tokens < 1.0 {
            self.dropped += 1;
            return None;
        }
        self.tokens -= 1.0;
        self.messages += 1;
        Some(payload)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn text_passes_binary_and_oversized_do_not() {
        let now = Instant::now();
        let mut tap = Tap::default();
        assert_eq!(tap.pass(now, PPID_STRING, b"hi").as_deref(), Some(&b"hi"[..]));
        assert_eq!(tap.pass(now, PPID_STRING_EMPTY, b"\0").as_deref(), Some(&b""[..]));
        assert_eq!(tap.pass(now, 53, b"binary"), None);
        assert_eq!(tap.pass(now, PPID_STRING, &[b'a'; MAX_TAPPED + 1]), None);
        assert!(tap.pass(now, PPID_STRING, &[b'a'; MAX_TAPPED]).is_some());
        assert_eq!((tap.messages, tap.dropped), (3, 2));
    }

    #[test]
    fn a_flood_is_cut_to_the_rate_after_the_burst() {
        let start = Instant::now();
        let mut tap = Tap::default();
        // 1,000 messages in one instant: the burst passes, nothing more.
        let passed = (0..1000).filter(|_| tap.pass(start, PPID_STRING, b"x").is_some()).count();
        assert_eq!(passed, BURST as usize);
        // Then 10 s at 1,000 a second: RATE a second get through.
        let mut passed = 0;
        for ms in 1..=10_000u64 {
            if tap.pass(start + Duration::from_millis(ms), PPID_STRING, b"x").is_some() {
                passed += 1;
            }
        }
        assert!((199..=201).contains(&passed), "{passed}");
        assert_eq!(tap.messages + tap.dropped, 11_000);
    }
}
