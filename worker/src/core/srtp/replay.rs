//! Per-SSRC packet index tracking: the highest index seen and a sliding replay window behind it
//! (RFC 3711 §3.3.2), plus the ROC estimate of RFC 3711 Appendix A.

use super::SrtpError;

/// How many indices behind the highest one are remembered. RFC 3711 asks for at least 64; 128 gives
/// headroom for the reordering a congested path and NACK-driven retransmission produce.
pub const REPLAY_WINDOW: u64 = 128;

/// The highest accepted index and which of the `REPLAY_WINDOW` indices at or below it were accepted
/// (bit `i` stands for `highest - i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplayWindow {
    highest: u64,
    seen: u128,
}

impl ReplayWindow {
    /// A window whose first accepted index is `index`.
    pub fn new(index: u64) -> Self {
        Self { highest: index, seen: 1 }
    }

    pub fn highest(&self) -> u64 {
        self.highest
    }

    /// Whether `index` may be accepted; changes nothing.
    pub fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.highest {
            return Ok(());
        }
        let behind = self.highest - index;
        if behind >= REPLAY_WINDOW {
            return Err(SrtpError::TooOld);
        }
        if self.seen >> behind & 1 == 1 {
            return Err(SrtpError::Replayed);
        }
        Ok(())
    }

    /// Records `index` as accepted. Call only after [`Self::check`] passed and the packet authenticated.
    pub fn accept(&mut self, index: u64) {
        if index > self.highest {
            let ahead = index - self.highest;
            self.seen = if ahead >= REPLAY_WINDOW { 0 } else { self.seen << ahead };
            self.seen |= 1;
            self.highest = index;
        } else {
            let behind = self.highest - index;
            if behind < REPLAY_WINDOW {
                self.seen |= 1 << behind;
            }
        }
    }
}

/// RFC 3711 Appendix A: the 48-bit index `v << 16 | seq` whose rollover counter `v` puts `seq`
/// closest to `highest` (the highest index seen so far: its top 32 bits are the ROC, its low 16 the
/// highest sequence number `s_l`). `None` when `v` would pass the 32-bit ROC (index exhausted).
///
/// Where the rule says `v = -1` while the ROC is still 0, the packet can only have been sent with
/// ROC 0 (every stream starts there), so `v = 0`: that is what the sender computes too (as rtc-srtp
/// and libsrtp do in effect), and a receiver that joined after a reordering still decrypts it.
pub(crate) fn estimate_index(highest: u64, seq: u16) -> Option<u64> {
    let roc = highest >> 16;
    let s_l = highest as u16;
    let v = if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 { roc.saturating_sub(1) } else { roc }
    } else if s_l - 0x8000 > seq {
        roc + 1
    } else {
        roc
    };
    if v > u64::from(u32::MAX) {
        return None;
    }
    Some(v << 16 | u64::from(seq))
}
