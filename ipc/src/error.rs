//! The error a worker answers a request with.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a request failed, as a stable code the controller can map to signaling errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The request named an object the worker does not have.
    NotFound,
    /// An object with the requested id already exists.
    AlreadyExists,
    /// The request's parameters are invalid.
    InvalidRequest,
    /// The object is in a state that does not allow the request.
    InvalidState,
    /// A bug or resource failure inside the worker.
    Internal,
}

impl ErrorCode {
    /// The stable lower-case name of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A failed request: a code and a message meant for humans (it names the object involved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct RequestError {
    pub code: ErrorCode,
    pub message: String,
}

impl RequestError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn not_found(what: impl fmt::Display) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}
