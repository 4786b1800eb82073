//! Refuses FORWARD-TSN chunks (RFC 3758) that skip absurdly far ahead, before rtc-sctp sees them.
//!
//! rtc-sctp 0.21.1 advances its cumulative TSN one by one up to a FORWARD-TSN's new cumulative
//! TSN (`handle_forward_tsn`), so one 44-byte packet with a value 2^31 ahead held the worker's
//! only thread for many seconds (found by the `sctp_association` fuzz target). The guard keeps its
//! own copy of the peer's cumulative TSN (the initial TSN from its INIT or INIT-ACK, advanced by
//! contiguous DATA and by the FORWARD-TSNs it lets through) and refuses a packet whose FORWARD-TSN
//! goes more than [`WINDOW`] past it, so the library's walk is never longer than that. Its copy
//! never runs ahead of the library's: it learns only from packets it admits, and only DATA within
//! the window, so a chain of DATA chunks far apart cannot move it.

/// How far past the cumulative TSN a FORWARD-TSN may go, and the DATA the guard tracks: a browser
/// never has 65,536 messages in flight past a hole, and the library's walk over that many costs
/// well under a millisecond.
pub const WINDOW: u32 = 1 << 16;

/// How far behind the cumulative TSN a FORWARD-TSN may be and still go to the library (which
/// ignores it): far more than any reordering, far less than the 2^31 where "behind" turns "ahead".
const STALE_LIMIT: u32 = 1 << 30;

const COMMON_HEADER_LEN: usize = 12;
const CHUNK_HEADER_LEN: usize = 4;
const DATA: u8 = 0;
const INIT: u8 = 1;
const INIT_ACK: u8 = 2;
const FORWARD_TSN: u8 = 192;

#[derive(Debug, Default)]
pub struct ForwardTsnGuard {
    /// The peer's cumulative TSN as far as the guard knows, once its INIT or INIT-ACK was seen.
    cumulative: Option<u32>,
    /// TSNs received past `cumulative`, one bit each, indexed by TSN modulo [`WINDOW`] (8 KiB,
    /// allocated at the first DATA chunk).
    received: Vec<u64>,
}

impl ForwardTsnGuard {
    /// Whether `packet` may go to the library; learns the peer's TSNs from the packets it admits.
    /// Malformed chunk lists are admitted: the library rejects them itself.
    pub fn admit(&mut self, packet: &[u8]) -> bool {
        if !self.safe_for_library(packet) {
            return false;
        }
        for (kind, value) in chunks(packet) {
            match (kind, self.cumulative) {
                // INIT / INIT-ACK: tag, a_rwnd, streams, then the initial TSN. Only the first
                // counts: a later one (the library keeps one association) must not move the copy.
                (INIT | INIT_ACK, None) => self.cumulative = u32_at(value, 12).map(|t| t.wrapping_sub(1)),
                (DATA, Some(c)) => {
                    if let Some(tsn) = u32_at(value, 0)
                        && ahead(tsn, c).is_some_and(|d| d <= WINDOW)
                    {
                        self.mark(tsn);
                        self.advance();
                    }
                }
                (FORWARD_TSN, Some(c)) => {
                    if let Some(n) = u32_at(value, 0)
                        && ahead(n, c).is_some()
                    {
                        let mut t = c;
                        while t != n {
                            t = t.wrapping_add(1);
                            self.clear(t);
                        }
                        self.cumulative = Some(n);
                        self.advance();
                    }
                }
                _ => {}
            }
        }
        true
    }

    /// Whether no FORWARD-TSN in `packet` can make the library walk far, judged chunk by chunk
    /// against an estimate of the cumulative TSN at that chunk, before anything is learned (a
    /// refused packet teaches nothing). The estimate follows INIT and admitted FORWARD-TSNs but
    /// not DATA, so it never runs ahead of the library's own cumulative TSN and trails it by at
    /// most what the packet's DATA chunks advance (a window or two): a FORWARD-TSN within
    /// [`WINDOW`] ahead of the estimate is as close or behind for the library. Judging every
    /// chunk against the packet's first value instead let a second FORWARD-TSN just under 2^31
    /// past the first one through (fuzzer-found). A stale FORWARD-TSN is let through only when
    /// it is less than 2^30 behind, since one nearly 2^31 behind would read as 2^31 ahead once
    /// the library's cumulative TSN moved past the estimate.
    fn safe_for_library(&self, packet: &[u8]) -> bool {
        let mut estimate = self.cumulative;
        for (kind, value) in chunks(packet) {
            match (kind, estimate) {
                (INIT | INIT_ACK, None) => estimate = u32_at(value, 12).map(|t| t.wrapping_sub(1)),
                (FORWARD_TSN, _) => {
                    let Some(n) = u32_at(value, 0) else { continue };
                    let Some(c) = estimate else { return false };
                    match ahead(n, c) {
                        Some(d) if d > WINDOW => return false,
                        Some(_) => estimate = Some(n),
                        None if c.wrapping_sub(n) > STALE_LIMIT => return false,
                        None => {}
                    }
                }
                _ => {}
            }
        }
        true
    }

    fn bit(tsn: u32) -> (usize, u64) {
        let i = (tsn % WINDOW) as usize;
        (i / 64, 1 << (i % 64))
    }

    fn mark(&mut self, tsn: u32) {
        if self.received.is_empty() {
            self.received = vec![0; (WINDOW / 64) as usize];
        }
        let (word, mask) = Self::bit(tsn);
        self.received[word] |= mask;
    }

    /// Clears `tsn`'s bit; true if it was set.
    fn clear(&mut self, tsn: u32) -> bool {
        let (word, mask) = Self::bit(tsn);
        let Some(w) = self.received.get_mut(word) else { return false };
        let was = *w & mask != 0;
        *w &= !mask;
        was
    }

    /// Moves the cumulative TSN over the TSNs received right after it.
    fn advance(&mut self) {
        while let Some(c) = self.cumulative
            && self.clear(c.wrapping_add(1))
        {
            self.cumulative = Some(c.wrapping_add(1));
        }
    }
}

/// How far `tsn` is ahead of `base` in serial number arithmetic (RFC 1982), `None` when behind.
fn ahead(tsn: u32, base: u32) -> Option<u32> {
    let d = tsn.wrapping_sub(base);
    (d != 0 && d < 1 << 31).then_some(d)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|v| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
}

/// The (type, value) of each chunk after the common header, until the list ends or goes bad.
fn chunks(packet: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut rest = packet.get(COMMON_HEADER_LEN..).unwrap_or_default();
    std::iter::from_fn(move || {
        let header = rest.get(..CHUNK_HEADER_LEN)?;
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let value = rest.get(CHUNK_HEADER_LEN..len.max(CHUNK_HEADER_LEN))?;
        let kind = header[0];
        rest = rest.get(len.next_multiple_of(4).max(CHUNK_HEADER_LEN)..).unwrap_or_default();
        Some((kind, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(chunks: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let mut p = vec![0u8; COMMON_HEADER_LEN];
        for (kind, value) in chunks {
            let len = (CHUNK_HEADER_LEN + value.len()) as u16;
            p.extend_from_slice(&[*kind, 0]);
            p.extend_from_slice(&len.to_be_bytes());
            p.extend_from_slice(value);
            p.resize(p.len().next_multiple_of(4), 0);
        }
        p
    }

    fn init(initial_tsn: u32) -> Vec<u8> {
        packet(&[(INIT, [&[0u8; 12][..], &initial_tsn.to_be_bytes()].concat())])
    }

    fn tsn_chunk(kind: u8, tsn: u32) -> Vec<u8> {
        packet(&[(kind, [&tsn.to_be_bytes()[..], &[0u8; 8]].concat())])
    }

    #[test]
    fn a_forward_tsn_far_past_the_cumulative_tsn_is_refused() {
        // The fuzzer's hang: a FORWARD-TSN about 2^31 ahead.
        let mut guard = ForwardTsnGuard::default();
        assert!(guard.admit(&init(1000)));
        assert!(!guard.admit(&tsn_chunk(FORWARD_TSN, 999 + (1 << 31) - 1)));
        assert!(!guard.admit(&tsn_chunk(FORWARD_TSN, 999 + WINDOW + 1)));
        assert!(guard.admit(&tsn_chunk(FORWARD_TSN, 999 + WINDOW)));
        assert!(!guard.admit(&tsn_chunk(FORWARD_TSN, 999 + 2 * WINDOW + 1)), "the forward moved the copy");
        assert!(guard.admit(&tsn_chunk(FORWARD_TSN, 999 + 2 * WINDOW)));
    }

    #[test]
    fn contiguous_data_moves_the_copy_across_the_wrap_and_far_data_does_not() {
        let mut guard = ForwardTsnGuard::default();
        assert!(!guard.admit(&tsn_chunk(FORWARD_TSN, 5)), "no FORWARD-TSN before the handshake");
        assert!(guard.admit(&init(u32::MAX - 1)));
        // u32::MAX - 1, then 1 before u32::MAX and 0: reordered, contiguous once all are in.
        for tsn in [u32::MAX - 1, 1, u32::MAX, 0] {
            assert!(guard.admit(&tsn_chunk(DATA, tsn)));
        }
        assert_eq!(guard.cumulative, Some(1));
        assert!(guard.admit(&tsn_chunk(FORWARD_TSN, 0)), "a stale FORWARD-TSN is the library's to ignore");
        // A chain of DATA chunks a window apart must not open the way for a long walk.
        for i in 1..4 {
            assert!(guard.admit(&tsn_chunk(DATA, 1 + i * WINDOW)));
        }
        assert!(!guard.admit(&tsn_chunk(FORWARD_TSN, 2 + WINDOW)));
        assert_eq!(guard.cumulative, Some(1));
    }

    #[test]
    fn a_second_forward_tsn_in_one_packet_is_judged_from_where_the_first_left_it() {
        // The fuzzer's second hang: the first chunk moves the cumulative TSN a window on, and the
        // second, which is "behind" the packet's starting point, is nearly 2^31 past the first.
        let mut guard = ForwardTsnGuard::default();
        assert!(guard.admit(&init(1000)));
        let first = 999 + WINDOW;
        let far = first.wrapping_add((1 << 31) - 10);
        let both = [tsn_chunk(FORWARD_TSN, first), tsn_chunk(FORWARD_TSN, far)[COMMON_HEADER_LEN..].to_vec()].concat();
        assert!(!guard.admit(&both));
        assert_eq!(guard.cumulative, Some(999), "a refused packet teaches nothing");
        // In order and close together, two in one packet are fine.
        let near = [tsn_chunk(FORWARD_TSN, 1010), tsn_chunk(FORWARD_TSN, 1020)[COMMON_HEADER_LEN..].to_vec()].concat();
        assert!(guard.admit(&near));
        assert_eq!(guard.cumulative, Some(1020));
    }

    #[test]
    fn a_stale_forward_tsn_is_admitted_unless_it_is_nearly_half_the_space_behind() {
        let mut guard = ForwardTsnGuard::default();
        assert!(guard.admit(&init(1 << 31)));
        assert!(guard.admit(&tsn_chunk(FORWARD_TSN, (1 << 31) - 100)));
        assert!(!guard.admit(&tsn_chunk(FORWARD_TSN, (1 << 31) - 2 - STALE_LIMIT)));
    }

    #[test]
    fn a_second_init_does_not_move_the_copy() {
        let mut guard = ForwardTsnGuard::default();
        assert!(guard.admit(&init(1000)));
        assert!(guard.admit(&init(1 << 30)));
        assert!(!guard.admit(&tsn_chunk(FORWARD_TSN, (1 << 30) + 5)));
    }

    #[test]
    fn malformed_chunk_lists_are_left_to_the_library() {
        let mut guard = ForwardTsnGuard::default();
        assert!(guard.admit(&[]));
        assert!(guard.admit(&[0u8; 13]));
        assert!(guard.admit(&[&[0u8; 12][..], &[FORWARD_TSN, 0, 0, 2]].concat()), "a chunk too short to read");
    }
}
