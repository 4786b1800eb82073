//! What one socket may do: request rate, payload size, and room access by token.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::error::{Code, SignalError};

#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest event payload accepted, as JSON bytes.
    pub max_payload_bytes: usize,
    /// Sustained requests per second per socket.
    pub requests_per_second: f64,
    /// Requests a socket may send at once before the rate applies.
    pub request_burst: f64,
    /// Requests queued for one socket, waiting for the worker, before new ones are refused.
    pub max_queued_requests: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_payload_bytes: 64 * 1024, requests_per_second: 50.0, request_burst: 100.0, max_queued_requests: 64 }
    }
}

/// A token bucket: `burst` tokens, refilled at `rate` per second; a request takes one.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        let burst = burst.max(1.0);
        Self { rate: rate.max(0.0), burst, tokens: burst, last: now }
    }

    /// Takes a token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What a room token grants: a room, optionally a display name, optionally until `exp`.
#[derive(Debug, Clone, Deserialize)]
pub struct RoomClaims {
    pub room: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub exp: Option<u64>,
}

/// HS256 tokens signed with the operator's secret.
#[derive(Clone)]
pub struct Auth {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth(HS256, secret hidden)")
    }
}

impl Auth {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // `exp` is optional (a token may be valid until the secret changes), but checked when present.
        validation.required_spec_claims.clear();
        validation.validate_exp = true;
        validation.leeway = 30;
        Self { key: DecodingKey::from_secret(secret), validation }
    }

    /// The claims of `token` if it is valid and names `room`.
    pub fn check(&self, token: Option<&str>, room: &str) -> Result<RoomClaims, SignalError> {
        let token =
            token.ok_or_else(|| SignalError::new(Code::Unauthorized, "this server requires a token to join"))?;
        let data = jsonwebtoken::decode::<RoomClaims>(token, &self.key, &self.validation).map_err(|e| {
            let why = match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token expired".to_owned(),
                jsonwebtoken::errors::ErrorKind::InvalidSignature => "token signature is invalid".to_owned(),
                _ => format!("token rejected: {e}"),
            };
            SignalError::new(Code::Unauthorized, why)
        })?;
        if data.claims.room != room {
            return Err(SignalError::new(Code::Unauthorized, "token is for another room"));
        }
        Ok(data.claims)
    }
}

pub const MAX_ROOM_ID_LEN: usize = 128;
pub const MAX_DISPLAY_NAME_LEN: usize = 100;

pub fn check_room_id(room_id: &str) -> Result<(), SignalError> {
    if room_id.is_empty() || room_id.len() > MAX_ROOM_ID_LEN || room_id.chars().any(char::is_control) {
        return Err(SignalError::bad_request(format!(
            "roomId must be 1 to {MAX_ROOM_ID_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

pub fn check_display_name(name: &str) -> Result<(), SignalError> {
    if name.len() > MAX_DISPLAY_NAME_LEN || name.chars().any(char::is_control) {
        return Err(SignalError::bad_request(format!(
            "displayName must be at most {MAX_DISPLAY_NAME_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// How long the bucket takes to give one token back: for the error message.
pub fn retry_after(rate: f64) -> Duration {
    if rate > 0.0 { Duration::from_secs_f64((1.0 / rate).min(60.0)) } else { Duration::from_secs(60) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 3.0, t0);
        assert!(b.take(t0) && b.take(t0) && b.take(t0));
        assert!(!b.take(t0));
        assert!(!b.take(t0 + Duration::from_millis(50)));
        assert!(b.take(t0 + Duration::from_millis(160)));
        // Never more than the burst, however long the pause.
        let later = t0 + Duration::from_secs(3600);
        assert!(b.take(later) && b.take(later) && b.take(later));
        assert!(!b.take(later));
    }

    #[test]
    fn tokens_name_their_room_and_expire() {
        use jsonwebtoken::{EncodingKey, Header, encode};
        let auth = Auth::new(b"secret");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let sign = |claims: serde_json::Value, key: &[u8]| {
            encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(key)).unwrap()
        };
        let ok = sign(serde_json::json!({"room": "r1", "name": "Ann", "exp": now + 60}), b"secret");
        assert_eq!(auth.check(Some(&ok), "r1").unwrap().name.as_deref(), Some("Ann"));
        assert_eq!(auth.check(Some(&ok), "r2").unwrap_err().code, Code::Unauthorized);
        let forever = sign(serde_json::json!({"room": "r1"}), b"secret");
        assert!(auth.check(Some(&forever), "r1").is_ok());
        let expired = sign(serde_json::json!({"room": "r1", "exp": now - 3600}), b"secret");
        assert_eq!(auth.check(Some(&expired), "r1").unwrap_err().message, "token expired");
        let forged = sign(serde_json::json!({"room": "r1"}), b"other");
        assert_eq!(auth.check(Some(&forged), "r1").unwrap_err().code, Code::Unauthorized);
        assert_eq!(auth.check(None, "r1").unwrap_err().code, Code::Unauthorized);
        assert_eq!(auth.check(Some("garbage"), "r1").unwrap_err().code, Code::Unauthorized);
        let none_alg = "eyJhbGciOiJub25lIn0.eyJyb29tIjoicjEifQ.";
        assert_eq!(auth.check(Some(none_alg), "r1").unwrap_err().code, Code::Unauthorized);
    }
}
