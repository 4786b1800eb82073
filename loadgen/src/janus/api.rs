//! Janus's JSON API over its WebSocket transport (subprotocol `janus-protocol`), one connection,
//! one Janus session and one VideoRoom handle per simulated peer, as `janus.js` runs it in a
//! browser.
//!
//! A request carries a `transaction`; Janus answers `success` or `error` at once, or `ack` and
//! later an `event` with the plugin's answer (and a `jsep` when it brings SDP). Other events
//! (`webrtcup`, `media`, `slowlink`, publisher lists) are read and dropped.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use crate::signaling::SignalingError;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Janus closes a session after 60 s without a message (its `session_timeout`); janus.js sends a
/// keepalive every 25 s.
const KEEPALIVE: Duration = Duration::from_secs(25);
pub const VIDEOROOM: &str = "janus.plugin.videoroom";

pub struct JanusClient {
    ws: WebSocket<TcpStream>,
    session: u64,
    next_transaction: u64,
    last_sent: Instant,
}

/// A plugin's answer: its `plugindata.data`, and the SDP it brought.
#[derive(Debug, Clone)]
pub struct PluginAnswer {
    pub data: Value,
    pub jsep: Option<String>,
}

impl JanusClient {
    /// Opens the WebSocket and creates a Janus session.
    pub fn connect(addr: SocketAddr) -> Result<Self, SignalingError> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
        let mut request =
            format!("ws://{addr}/").into_client_request().map_err(|e| SignalingError::Handshake(e.to_string()))?;
        request.headers_mut().insert("Sec-WebSocket-Protocol", "janus-protocol".parse().expect("a valid header"));
        let (ws, _) = tungstenite::client(request, stream).map_err(|e| SignalingError::Handshake(e.to_string()))?;
        let mut client = Self { ws, session: 0, next_transaction: 0, last_sent: Instant::now() };
        let created = client.call(json!({"janus": "create"}), "create")?;
        client.session =
            created["data"]["id"].as_u64().ok_or_else(|| SignalingError::Malformed(created.to_string()))?;
        Ok(client)
    }

    /// Attaches a handle to `plugin`; returns its id.
    pub fn attach(&mut self, plugin: &str) -> Result<u64, SignalingError> {
        let answer = self.call(json!({"janus": "attach", "plugin": plugin}), "attach")?;
        answer["data"]["id"].as_u64().ok_or_else(|| SignalingError::Malformed(answer.to_string()))
    }

    /// Sends `body` (and an SDP `jsep` of `jsep_type`) to the plugin on `handle` and waits for its
    /// answer, synchronous or not. A plugin `error` becomes [`SignalingError::Refused`].
    pub fn message(
        &mut self,
        handle: u64,
        body: Value,
        jsep: Option<(&str, &str)>,
    ) -> Result<PluginAnswer, SignalingError> {
        let what = body["request"].as_str().unwrap_or("message").to_owned();
        let mut request = json!({"janus": "message", "handle_id": handle, "body": body});
        if let Some((kind, sdp)) = jsep {
            request["jsep"] = json!({"type": kind, "sdp": sdp});
        }
        let answer = self.call(request, &what)?;
        let data = answer["plugindata"]["data"].clone();
        if let Some(code) = data.get("error_code") {
            return Err(SignalingError::Refused {
                event: what,
                code: code.to_string(),
                message: data["error"].as_str().unwrap_or_default().to_owned(),
            });
        }
        let jsep = answer["jsep"]["sdp"].as_str().map(str::to_owned);
        Ok(PluginAnswer { data, jsep })
    }

    /// Tells Janus the load generator has no more candidates (Janus waits for trickled ones
    /// otherwise). Janus only acks this; the ack is read and dropped later.
    pub fn trickle_completed(&mut self, handle: u64) -> Result<(), SignalingError> {
        self.ws.get_mut().set_nonblocking(false)?;
        let transaction = self.transaction();
        let request = json!({"janus": "trickle", "session_id": self.session, "handle_id": handle,
                             "transaction": transaction, "candidate": {"completed": true}});
        self.ws.send(Message::text(request.to_string()))?;
        self.last_sent = Instant::now();
        Ok(())
    }

    /// Reads whatever Janus sent without blocking and keeps the session alive.
    pub fn service(&mut self) -> Result<(), SignalingError> {
        self.ws.get_mut().set_nonblocking(true)?;
        loop {
            match self.ws.read() {
                Ok(Message::Close(_)) => return Err(SignalingError::Closed),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
        if self.last_sent.elapsed() >= KEEPALIVE {
            let transaction = self.transaction();
            let keepalive = json!({"janus": "keepalive", "session_id": self.session, "transaction": transaction});
            self.last_sent = Instant::now();
            match self.ws.send(Message::text(keepalive.to_string())) {
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                other => other?,
            }
        }
        match self.ws.flush() {
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(()),
            other => other.map_err(Into::into),
        }
    }

    fn transaction(&mut self) -> String {
        self.next_transaction += 1;
        format!("t{}", self.next_transaction)
    }

    /// Sends `request` with a fresh transaction (and the session, once there is one) and returns
    /// Janus's final answer to it: `success`, or the plugin's `event` after an `ack`.
    fn call(&mut self, mut request: Value, what: &str) -> Result<Value, SignalingError> {
        self.ws.get_mut().set_nonblocking(false)?;
        let transaction = self.transaction();
        request["transaction"] = json!(transaction);
        if self.session != 0 {
            request["session_id"] = json!(self.session);
        }
        tracing::trace!("janus -> {request}");
        self.ws.send(Message::text(request.to_string()))?;
        self.last_sent = Instant::now();
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        while Instant::now() < deadline {
            let text = match self.ws.read() {
                Ok(Message::Text(text)) => text,
                Ok(Message::Close(_)) => return Err(SignalingError::Closed),
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            tracing::trace!("janus <- {}", text.as_str());
            let answer: Value =
                serde_json::from_str(text.as_str()).map_err(|_| SignalingError::Malformed(text.as_str().into()))?;
            if answer["transaction"].as_str() != Some(transaction.as_str()) {
                continue;
            }
            match answer["janus"].as_str() {
                Some("ack") => continue,
                Some("error") => {
                    return Err(SignalingError::Refused {
                        event: what.to_owned(),
                        code: answer["error"]["code"].to_string(),
                        message: answer["error"]["reason"].as_str().unwrap_or_default().to_owned(),
                    });
                }
                _ => return Ok(answer),
            }
        }
        Err(SignalingError::Timeout(what.to_owned(), REQUEST_TIMEOUT))
    }
}
