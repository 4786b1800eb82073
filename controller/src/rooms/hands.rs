//! Raised hands: a peer raises or lowers its hand, the others hear of it (`PeerHand`), a joining
//! peer finds every raised hand in its snapshot, and other nodes in its member record. Hands are
//! ordered by when they went up on the server's clock, so every page lists them in one order.

use std::time::{SystemTime, UNIX_EPOCH};

use super::room::{Room, emit};
use super::{RoomError, RoomEvent};

/// The hand after a request: raising a raised hand keeps its time (and so its place in the queue).
pub(super) fn next_hand(current: Option<u64>, raise: bool, now_ms: u64) -> Option<u64> {
    match (raise, current) {
        (false, _) => None,
        (true, Some(at)) => Some(at),
        (true, None) => Some(now_ms),
    }
}

impl Room {
    /// Raises or lowers `peer`'s hand; returns when it went up (`None`: it is down). The others get
    /// `PeerHand` only when something changed, so a repeated request costs them nothing.
    pub fn set_hand(&self, peer: &str, raise: bool) -> Result<Option<u64>, RoomError> {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let (raised_at, sinks) = {
            let mut state = self.open()?;
            let owner = state.peer_mut(peer)?;
            let before = owner.hand_raised_at;
            owner.hand_raised_at = next_hand(before, raise, now_ms);
            let after = owner.hand_raised_at;
            (after, (before != after).then(|| state.sinks_except(peer)))
        };
        if let Some(sinks) = sinks {
            self.publish_member(peer);
            emit(&sinks, &RoomEvent::PeerHand { peer_id: peer.to_owned(), raised_at });
        }
        Ok(raised_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_keeps_its_first_time_until_it_is_lowered() {
        assert_eq!(next_hand(None, true, 10), Some(10));
        assert_eq!(next_hand(Some(10), true, 20), Some(10), "raising again keeps the place in the queue");
        assert_eq!(next_hand(Some(10), false, 30), None);
        assert_eq!(next_hand(None, false, 40), None);
        assert_eq!(next_hand(None, true, 50), Some(50), "raised again, it goes to the back");
    }
}
