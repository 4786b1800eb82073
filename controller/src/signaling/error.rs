//! Signaling errors: a stable code clients can switch on, and a message for humans.

use octo_ipc::ErrorCode as WorkerCode;
use serde_json::{Value, json};

use crate::rooms::RoomError;

/// The stable error codes of both dialects (documented in PROTOCOL.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    UnknownEvent,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    UnsupportedVersion,
    NotJoined,
    AlreadyJoined,
    RoomFull,
    NotFound,
    Forbidden,
    WrongDirection,
    CannotConsume,
    InvalidState,
    LimitExceeded,
    NotImplemented,
    RoomClosed,
    Unavailable,
    Internal,
}

impl Code {
    /// Every code, for counting errors by code.
    pub const ALL: [Code; 19] = [
        Code::BadRequest,
        Code::UnknownEvent,
        Code::PayloadTooLarge,
        Code::RateLimited,
        Code::Unauthorized,
        Code::UnsupportedVersion,
        Code::NotJoined,
        Code::AlreadyJoined,
        Code::RoomFull,
        Code::NotFound,
        Code::Forbidden,
        Code::WrongDirection,
        Code::CannotConsume,
        Code::InvalidState,
        Code::LimitExceeded,
        Code::NotImplemented,
        Code::RoomClosed,
        Code::Unavailable,
        Code::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "bad_request",
            Code::UnknownEvent => "unknown_event",
            Code::PayloadTooLarge => "payload_too_large",
            Code::RateLimited => "rate_limited",
            Code::Unauthorized => "unauthorized",
            Code::UnsupportedVersion => "unsupported_version",
            Code::NotJoined => "not_joined",
            Code::AlreadyJoined => "already_joined",
            Code::RoomFull => "room_full",
            Code::NotFound => "not_found",
            Code::Forbidden => "forbidden",
            Code::WrongDirection => "wrong_direction",
            Code::CannotConsume => "cannot_consume",
            Code::InvalidState => "invalid_state",
            Code::LimitExceeded => "limit_exceeded",
            Code::NotImplemented => "not_implemented",
            Code::RoomClosed => "room_closed",
            Code::Unavailable => "unavailable",
            Code::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct SignalError {
    pub code: Code,
    pub message: String,
}

impl SignalError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Code::BadRequest, message)
    }

    /// The main dialect's error ack: `{"error": {"code", "message"}}`.
    pub fn to_ack(&self) -> Value {
        json!({ "error": { "code": self.code.as_str(), "message": self.message } })
    }
}

impl From<RoomError> for SignalError {
    fn from(e: RoomError) -> Self {
        let code = match &e {
            RoomError::BadRequest(_) => Code::BadRequest,
            RoomError::NotFound(_) => Code::NotFound,
            RoomError::Forbidden(_) => Code::Forbidden,
            RoomError::WrongDirection(_) => Code::WrongDirection,
            RoomError::CannotConsume(_) => Code::CannotConsume,
            RoomError::RoomFull(_) => Code::RoomFull,
            RoomError::NotInRoom => Code::NotJoined,
            RoomError::AlreadyInRoom => Code::AlreadyJoined,
            RoomError::RoomClosed => Code::RoomClosed,
            RoomError::LimitExceeded(_) => Code::LimitExceeded,
            RoomError::Unavailable(_) => Code::Unavailable,
            RoomError::Worker(r) => match r.code {
                // The worker checked the client's parameters (codecs, ssrcs, fingerprints) and refused.
                WorkerCode::InvalidRequest => Code::BadRequest,
                WorkerCode::InvalidState => Code::InvalidState,
                WorkerCode::NotFound => Code::NotFound,
                WorkerCode::AlreadyExists | WorkerCode::Internal => Code::Internal,
            },
            RoomError::UnexpectedResponse => Code::Internal,
        };
        let message = match &e {
            RoomError::Worker(r) => r.message.clone(),
            other => other.to_string(),
        };
        SignalError { code, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_code_once() {
        // No wildcard arm: a new variant does not compile here until it is considered, and then
        // the count below reminds to add it to ALL.
        let named = |c: Code| match c {
            Code::BadRequest
            | Code::UnknownEvent
            | Code::PayloadTooLarge
            | Code::RateLimited
            | Code::Unauthorized
            | Code::UnsupportedVersion
            | Code::NotJoined
            | Code::AlreadyJoined
            | Code::RoomFull
            | Code::NotFound
            | Code::Forbidden
            | Code::WrongDirection
            | Code::CannotConsume
            | Code::InvalidState
            | Code::LimitExceeded
            | Code::NotImplemented
            | Code::RoomClosed
            | Code::Unavailable
            | Code::Internal => c.as_str(),
        };
        let mut names: Vec<_> = Code::ALL.iter().map(|c| named(*c)).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 19);
    }
}
