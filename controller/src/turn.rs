//! The TURN servers handed to clients (`iceServers` in the join answer), so that a browser whose
//! network blocks UDP to Octo still connects through a relay (coturn beside Octo, say TURN over TCP
//! or TLS on 443).
//!
//! Credentials are either static (one username and password for everyone, as coturn's `user=`) or
//! minted per peer with a shared secret, the TURN REST API scheme coturn implements as
//! `use-auth-secret`: the username is `<expiry unix time>:<peer>`, the password
//! `base64(HMAC-SHA1(secret, username))`, so a leaked credential stops working at its expiry and the
//! TURN server needs no list of users.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnCredential {
    Static {
        username: String,
        credential: String,
    },
    /// The REST API's shared secret (coturn's `static-auth-secret`), and how long a credential lasts.
    Secret {
        secret: String,
        ttl: Duration,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnConfig {
    /// `turn:` / `turns:` URLs of one TURN service (e.g. its UDP, TCP and TLS listeners).
    pub urls: Vec<String>,
    pub credential: TurnCredential,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TurnConfigError {
    #[error("TURN URL {0:?} does not start with turn: or turns:")]
    BadUrl(String),
    #[error("TURN URLs need credentials: --turn-secret, or --turn-username with --turn-credential")]
    NoCredential,
    #[error("--turn-secret and --turn-username/--turn-credential exclude each other: choose one")]
    BothCredentials,
}

impl TurnConfig {
    /// From the settings: `None` without URLs; an error for a URL that is not TURN or credentials
    /// that are missing or given twice.
    pub fn from_settings(
        urls: &[String],
        secret: Option<&str>,
        username: Option<&str>,
        credential: Option<&str>,
        ttl: Duration,
    ) -> Result<Option<Self>, TurnConfigError> {
        let urls: Vec<String> = urls.iter().map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()).collect();
        if urls.is_empty() {
            return Ok(None);
        }
        if let Some(bad) = urls.iter().find(|u| !(u.starts_with("turn:") || u.starts_with("turns:"))) {
            return Err(TurnConfigError::BadUrl(bad.clone()));
        }
        let credential = match (secret.filter(|s| !s.is_empty()), username, credential) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => return Err(TurnConfigError::BothCredentials),
            (Some(secret), None, None) => TurnCredential::Secret { secret: secret.to_owned(), ttl },
            (None, Some(username), Some(credential)) => {
                TurnCredential::Static { username: username.to_owned(), credential: credential.to_owned() }
            }
            _ => return Err(TurnConfigError::NoCredential),
        };
        Ok(Some(Self { urls, credential }))
    }

    /// The RTCIceServer list for one peer at `now` (what `iceServers` in the join answer holds).
    pub fn ice_servers(&self, peer: &str, now: SystemTime) -> Value {
        let (username, credential) = match &self.credential {
            TurnCredential::Static { username, credential } => (username.clone(), credential.clone()),
            TurnCredential::Secret { secret, ttl } => rest_api_credential(secret, peer, now + *ttl),
        };
        json!([{ "urls": self.urls, "username": username, "credential": credential }])
    }
}

/// The TURN REST API's credential for `user`, valid until `expiry`.
fn rest_api_credential(secret: &str, user: &str, expiry: SystemTime) -> (String, String) {
    let expiry = expiry.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let username = format!("{expiry}:{user}");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, password)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn settings(
        urls: &[&str],
        secret: Option<&str>,
        user: Option<&str>,
        pass: Option<&str>,
    ) -> Result<Option<TurnConfig>, TurnConfigError> {
        let urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
        TurnConfig::from_settings(&urls, secret, user, pass, DAY)
    }

    #[test]
    fn the_rest_api_credential_is_hmac_sha1_of_the_expiry_and_peer() {
        // Expected value from Python: base64.b64encode(hmac.new(b"north", b"1700086400:peer-1",
        // hashlib.sha1).digest()).
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let turn = settings(&["turn:turn.example.org:3478?transport=tcp"], Some("north"), None, None).unwrap().unwrap();
        let servers = turn.ice_servers("peer-1", at);
        assert_eq!(servers[0]["urls"], json!(["turn:turn.example.org:3478?transport=tcp"]));
        assert_eq!(servers[0]["username"], "1700086400:peer-1");
        assert_eq!(servers[0]["credential"], "PviLiBisKyJqacdoczDgAEt/HFM=");
    }

    #[test]
    fn static_credentials_are_handed_out_as_they_are() {
        let turn = settings(&["turns:relay.example.org:443"], None, Some("octo"), Some("pw")).unwrap().unwrap();
        let servers = turn.ice_servers("anyone", SystemTime::now());
        assert_eq!((servers[0]["username"].as_str(), servers[0]["credential"].as_str()), (Some("octo"), Some("pw")));
    }

    #[test]
    fn settings_are_checked() {
        assert_eq!(settings(&[], None, None, None), Ok(None));
        assert_eq!(settings(&[" "], Some("s"), None, None), Ok(None));
        assert_eq!(
            settings(&["stun:x:3478"], Some("s"), None, None),
            Err(TurnConfigError::BadUrl("stun:x:3478".into()))
        );
        assert_eq!(settings(&["turn:x"], None, None, None), Err(TurnConfigError::NoCredential));
        assert_eq!(settings(&["turn:x"], None, Some("u"), None), Err(TurnConfigError::NoCredential));
        assert_eq!(settings(&["turn:x"], Some("s"), Some("u"), Some("p")), Err(TurnConfigError::BothCredentials));
    }
}
