//! The ICE-lite agent of one Transport (RFC 8445 §2.5, as mediasoup's `IceServer`).
//!
//! The SFU is always lite and controlled: it gathers only host candidates, never sends checks, and
//! answers the browser's Binding requests. A valid check validates the 5-tuple it came from (so DTLS
//! and SRTP from there may be accepted) and refreshes that tuple's consent (RFC 7675); the browser
//! nominates with USE-CANDIDATE.
//!
//! Decisions:
//! - **Selection.** Like mediasoup, the first valid check selects its tuple even without
//!   USE-CANDIDATE (state Connected), so DTLS can start before the browser nominates; USE-CANDIDATE
//!   selects that tuple (switching if another was selected) and makes the state Completed. A later
//!   check without USE-CANDIDATE never moves the selection. Hence: a tuple exists ⇔ one is selected.
//! - **State** follows the selected tuple: Completed if it was ever nominated, Connected if not,
//!   Disconnected once consent expired on every tuple, New before the first valid check.
//! - **ICE restart** replaces the credentials at once (checks with the old ones get 401; browsers
//!   treat a 401 as recoverable and retry) but keeps the tuples, their consent timers and the
//!   selection, so media keeps flowing during the signaling round trip. Tuples the browser stops
//!   checking with the new credentials expire after the consent timeout like any other.
//! - **Events** are the difference between what was last reported and the current state, so they
//!   need no queue and a burst of changes between two polls collapses to the latest values.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use octo_ipc::Protocol;
use thiserror::Error;

use super::stun::{self, StunClass, StunError, StunMessage, StunMethod};

/// RFC 7675 §5.1: consent expires 30 s after the last authenticated check.
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Candidate pairs a browser may validate at once (host, srflx, relay × IPv4/IPv6); beyond this
/// the oldest unselected tuple is forgotten.
pub const MAX_TUPLES: usize = 8;

/// A 5-tuple as seen by the worker: our socket's address, the peer's, and UDP or TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// A TCP listener shares its UDP socket's address: the same addresses over TCP are another tuple.
    pub protocol: Protocol,
}

/// mediasoup's `iceState` values: the ipc contract's own enum, reported as is.
pub use octo_ipc::IceState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceEvent {
    StateChanged(IceState),
    SelectedTupleChanged(Option<Tuple>),
}

/// Why nothing should be sent back for a STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum IceError {
    #[error("STUN {0:?} is not a request; ICE-lite only answers requests")]
    NotARequest(StunClass),
    #[error("STUN method {0:?} is not Binding")]
    UnsupportedMethod(StunMethod),
    #[error("FINGERPRINT does not match: not a STUN message for us")]
    BadFingerprint,
    #[error("the ICE agent is closed")]
    Closed,
    #[error("cannot write the response: {0}")]
    Response(#[from] StunError),
}

#[derive(Debug, Clone, Copy)]
struct TupleEntry {
    tuple: Tuple,
    last_check: Instant,
    nominated: bool,
}

/// A verdict on one check, before it is written out.
#[derive(Clone, Copy)]
enum Verdict {
    Accept,
    /// 400 / 401: the request is not authenticated, so the answer carries no MESSAGE-INTEGRITY.
    Reject {
        code: u16,
        reason: &'static str,
    },
    /// 400 / 487: authenticated, so the answer is signed with our password.
    RejectSigned {
        code: u16,
        reason: &'static str,
    },
    UnknownAttribute(u16),
}

#[derive(Debug)]
pub struct IceLite {
    local_ufrag: String,
    local_password: String,
    tuples: [Option<TupleEntry>; MAX_TUPLES],
    selected: Option<Tuple>,
    state: IceState,
    reported_state: IceState,
    reported_selected: Option<Tuple>,
}

impl IceLite {
    pub fn new(local_ufrag: String, local_password: String) -> Self {
        Self {
            local_ufrag,
            local_password,
            tuples: [None; MAX_TUPLES],
            selected: None,
            state: IceState::New,
            reported_state: IceState::New,
            reported_selected: None,
        }
    }

    pub fn local_ufrag(&self) -> &str {
        &self.local_ufrag
    }

    pub fn local_password(&self) -> &str {
        &self.local_password
    }

    pub fn state(&self) -> IceState {
        self.state
    }

    /// ICE restart: new credentials from now on; tuples and selection are kept (see module docs).
    pub fn restart(&mut self, new_ufrag: String, new_password: String) {
        self.local_ufrag = new_ufrag;
        self.local_password = new_password;
    }

    /// Forgets every tuple; further checks are refused without an answer.
    pub fn close(&mut self) {
        self.tuples = [None; MAX_TUPLES];
        self.selected = None;
        self.state = IceState::Closed;
    }

    pub fn selected_tuple(&self) -> Option<Tuple> {
        self.selected
    }

    /// Whether a check from this tuple succeeded within the consent timeout: only such tuples may
    /// carry DTLS and SRTP.
    pub fn is_valid_tuple(&self, tuple: &Tuple) -> bool {
        self.find(tuple).is_some()
    }

    /// The tuples currently validated, in no particular order.
    pub fn tuples(&self) -> impl Iterator<Item = Tuple> + '_ {
        self.tuples.iter().flatten().map(|e| e.tuple)
    }

    /// Answers a Binding request received on `tuple`, writing the response (success or error) into
    /// `response` and returning its length. An `Err` means nothing is to be sent.
    pub fn handle_binding_request(
        &mut self,
        now: Instant,
        tuple: Tuple,
        msg: &StunMessage<'_>,
        response: &mut [u8],
    ) -> Result<usize, IceError> {
        if msg.class() != StunClass::Request {
            return Err(IceError::NotARequest(msg.class()));
        }
        if msg.method() != StunMethod::Binding {
            return Err(IceError::UnsupportedMethod(msg.method()));
        }
        if self.state == IceState::Closed {
            return Err(IceError::Closed);
        }
        // A bad FINGERPRINT means the datagram is not really STUN: silently discarded (RFC 8489 §7.3).
        if msg.has_fingerprint() && !msg.verify_fingerprint() {
            return Err(IceError::BadFingerprint);
        }

        let tid = msg.transaction_id();
        let password = self.local_password.as_bytes();
        let verdict = self.verdict(msg);
        let len = match verdict {
            Verdict::Accept => stun::write_binding_success(response, tid, tuple.remote, password)?,
            Verdict::Reject { code, reason } => stun::write_binding_error(response, tid, code, reason, None)?,
            Verdict::RejectSigned { code, reason } => {
                stun::write_binding_error(response, tid, code, reason, Some(password))?
            }
            Verdict::UnknownAttribute(attr_type) => {
                stun::write_unknown_attribute_error(response, tid, attr_type, password)?
            }
        };
        // Only once the success response is written does the check count.
        if let Verdict::Accept = verdict {
            self.accept_check(now, tuple, msg.use_candidate());
        }
        Ok(len)
    }

    /// The checks of RFC 8489 §9.1.3 (short-term credentials) then RFC 8445 §7.3, in order:
    /// authentication first, so an unauthenticated sender learns nothing else.
    fn verdict(&self, msg: &StunMessage<'_>) -> Verdict {
        let Some(username) = msg.username() else {
            return Verdict::Reject { code: 400, reason: "Bad Request: no USERNAME" };
        };
        if !msg.has_message_integrity() {
            return Verdict::Reject { code: 400, reason: "Bad Request: no MESSAGE-INTEGRITY" };
        }
        // USERNAME is "<receiver ufrag>:<sender ufrag>": ours is the part before the colon.
        let ours = username.iter().position(|&b| b == b':').map(|colon| &username[..colon]);
        if ours != Some(self.local_ufrag.as_bytes()) {
            return Verdict::Reject { code: 401, reason: "Unauthorized: unknown username fragment" };
        }
        if !msg.verify_integrity(self.local_password.as_bytes()) {
            return Verdict::Reject { code: 401, reason: "Unauthorized: MESSAGE-INTEGRITY mismatch" };
        }
        if let Some(attr_type) = msg.unknown_comprehension_required() {
            return Verdict::UnknownAttribute(attr_type);
        }
        if msg.priority().is_none() {
            return Verdict::RejectSigned { code: 400, reason: "Bad Request: no PRIORITY" };
        }
        // A lite agent is always controlled; a peer that also claims to be controlled must switch
        // roles (RFC 8445 §7.3.1.1), which 487 tells it to do.
        if msg.ice_controlled().is_some() {
            return Verdict::RejectSigned { code: 487, reason: "Role Conflict" };
        }
        Verdict::Accept
    }

    fn accept_check(&mut self, now: Instant, tuple: Tuple, use_candidate: bool) {
        let index = match self.find(&tuple) {
            Some(i) => i,
            None => self.insert(tuple, now),
        };
        let Some(entry) = self.tuples[index].as_mut() else { return };
        entry.last_check = entry.last_check.max(now);
        entry.nominated |= use_candidate;
        if use_candidate || self.selected.is_none() {
            self.selected = Some(tuple);
        }
        self.update_state();
    }

    fn find(&self, tuple: &Tuple) -> Option<usize> {
        self.tuples.iter().position(|e| e.is_some_and(|e| e.tuple == *tuple))
    }

    /// Puts a new tuple in a free slot, or in place of the least recently checked unselected one.
    fn insert(&mut self, tuple: Tuple, now: Instant) -> usize {
        let selected = self.selected;
        let index = self.tuples.iter().position(Option::is_none).unwrap_or_else(|| {
            self.tuples
                .iter()
                .enumerate()
                .filter_map(|(i, e)| e.map(|e| (i, e)))
                .filter(|(_, e)| Some(e.tuple) != selected)
                .min_by_key(|(_, e)| e.last_check)
                .map_or(0, |(i, _)| i)
        });
        self.tuples[index] = Some(TupleEntry { tuple, last_check: now, nominated: false });
        index
    }

    fn update_state(&mut self) {
        if self.state == IceState::Closed {
            return;
        }
        let selected = self.selected.and_then(|t| self.find(&t)).and_then(|i| self.tuples[i]);
        self.state = match selected {
            Some(entry) if entry.nominated => IceState::Completed,
            Some(_) => IceState::Connected,
            None if self.state == IceState::New => IceState::New,
            None => IceState::Disconnected,
        };
    }

    /// When the next tuple's consent runs out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.tuples.iter().flatten().filter_map(|e| e.last_check.checked_add(CONSENT_TIMEOUT)).min()
    }

    /// Drops tuples whose consent expired. If the selected one goes, the most recently checked
    /// remaining tuple (a nominated one first) takes over; with none left the state is Disconnected.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut removed_any = false;
        for slot in self.tuples.iter_mut() {
            if slot.is_some_and(|e| now.saturating_duration_since(e.last_check) >= CONSENT_TIMEOUT) {
                *slot = None;
                removed_any = true;
            }
        }
        if !removed_any {
            return;
        }
        if self.selected.is_some_and(|t| self.find(&t).is_none()) {
            self.selected = self.tuples.iter().flatten().max_by_key(|e| (e.nominated, e.last_check)).map(|e| e.tuple);
        }
        self.update_state();
    }

    /// The next change not yet reported: the selected tuple first, then the state.
    pub fn poll_event(&mut self) -> Option<IceEvent> {
        if self.reported_selected != self.selected {
            self.reported_selected = self.selected;
            return Some(IceEvent::SelectedTupleChanged(self.selected));
        }
        if self.reported_state != self.state {
            self.reported_state = self.state;
            return Some(IceEvent::StateChanged(self.state));
        }
        None
    }
}
