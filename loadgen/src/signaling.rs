//! A Socket.IO v5 client over Engine.IO v4's WebSocket transport, one per simulated peer.
//!
//! Requests block (with a timeout) while the client is being set up; afterwards the socket is
//! non-blocking and [`SignalingClient::service`] answers the server's pings, so the connection
//! stays open for the whole run as a browser's would.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::{Message, WebSocket};

#[derive(Debug, thiserror::Error)]
pub enum SignalingError {
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    #[error("websocket handshake: {0}")]
    Handshake(String),
    #[error("server closed the connection")]
    Closed,
    #[error("no answer to {0} within {1:?}")]
    Timeout(String, Duration),
    #[error("{event} failed: {code}: {message}")]
    Refused { event: String, code: String, message: String },
    #[error("malformed packet {0:?}")]
    Malformed(String),
}

pub struct SignalingClient {
    ws: WebSocket<TcpStream>,
    next_ack: u64,
    /// Engine.IO pings answered (the server sends one every ~25 s).
    pub pings: u64,
    /// Every `consumerLayersChanged` the server sent, when it was read.
    pub layer_changes: Vec<LayerChange>,
}

/// A `consumerLayersChanged` event: the layers the worker forwards to a consumer now (`None`:
/// nothing fits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerChange {
    pub consumer_id: String,
    pub spatial: Option<u8>,
    pub temporal: Option<u8>,
    pub at: Instant,
}

const LAYERS_CHANGED: &str = "42[\"consumerLayersChanged\",";

/// The event in a Socket.IO packet, if it is a `consumerLayersChanged`.
fn layer_change(packet: &str, at: Instant) -> Option<LayerChange> {
    let body = packet.strip_prefix("42")?;
    if !packet.starts_with(LAYERS_CHANGED) {
        return None;
    }
    let args: Value = serde_json::from_str(body).ok()?;
    let data = args.get(1)?;
    let layer = |k: &str| data.get(k).and_then(Value::as_u64).and_then(|v| u8::try_from(v).ok());
    Some(LayerChange {
        consumer_id: data.get("consumerId")?.as_str()?.to_owned(),
        spatial: layer("spatialLayer"),
        temporal: layer("temporalLayer"),
        at,
    })
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

impl SignalingClient {
    /// Opens the WebSocket and the Socket.IO namespace `/`.
    pub fn connect(addr: SocketAddr) -> Result<Self, SignalingError> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) =
            tungstenite::client(url.as_str(), stream).map_err(|e| SignalingError::Handshake(e.to_string()))?;
        let mut client = Self { ws, next_ack: 0, pings: 0, layer_changes: Vec::new() };
        // Engine.IO open packet ("0{sid,…}"), then the namespace connect.
        client.wait_for(|p| p.starts_with('0'), "engine.io open")?;
        client.ws.send(Message::text("40"))?;
        client.wait_for(|p| p.starts_with("40"), "namespace connect")?;
        Ok(client)
    }

    /// Emits `event` and returns the ack's `data`; an `error` ack becomes [`SignalingError::Refused`].
    pub fn request(&mut self, event: &str, payload: Value) -> Result<Value, SignalingError> {
        self.set_blocking(true)?;
        let id = self.next_ack;
        self.next_ack += 1;
        self.ws.send(Message::text(format!("42{id}{}", serde_json::json!([event, payload]))))?;
        let prefix = format!("43{id}");
        let packet = self.wait_for(|p| p.starts_with(&prefix), event)?;
        let args: Value =
            serde_json::from_str(&packet[prefix.len()..]).map_err(|_| SignalingError::Malformed(packet.clone()))?;
        let answer = args.get(0).cloned().unwrap_or(Value::Null);
        if let Some(error) = answer.get("error") {
            return Err(SignalingError::Refused {
                event: event.to_owned(),
                code: error["code"].as_str().unwrap_or("?").to_owned(),
                message: error["message"].as_str().unwrap_or("").to_owned(),
            });
        }
        Ok(answer.get("data").cloned().unwrap_or(Value::Null))
    }

    /// Reads whatever the server sent without blocking: answers pings, keeps layer changes, drops
    /// other room events.
    pub fn service(&mut self) -> Result<(), SignalingError> {
        self.set_blocking(false)?;
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => self.on_packet(text.as_str())?,
                Ok(Message::Close(_)) => return Err(SignalingError::Closed),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
        match self.ws.flush() {
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(()),
            other => other.map_err(Into::into),
        }
    }

    fn on_packet(&mut self, packet: &str) -> Result<(), SignalingError> {
        if let Some(change) = layer_change(packet, Instant::now()) {
            self.layer_changes.push(change);
            return Ok(());
        }
        if packet == "2" {
            self.pings += 1;
            match self.ws.send(Message::text("3")) {
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                other => other?,
            }
        }
        Ok(())
    }

    fn wait_for(&mut self, want: impl Fn(&str) -> bool, what: &str) -> Result<String, SignalingError> {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    let text = text.as_str();
                    tracing::trace!("signaling <- {text}");
                    if want(text) {
                        return Ok(text.to_owned());
                    }
                    self.on_packet(text)?;
                }
                Ok(Message::Close(_)) => return Err(SignalingError::Closed),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(SignalingError::Timeout(what.to_owned(), REQUEST_TIMEOUT))
    }

    fn set_blocking(&mut self, blocking: bool) -> Result<(), SignalingError> {
        self.ws.get_mut().set_nonblocking(!blocking)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_changes_are_read_from_their_event() {
        let at = Instant::now();
        let c =
            layer_change(r#"42["consumerLayersChanged",{"consumerId":"c1","spatialLayer":2,"temporalLayer":1}]"#, at);
        assert_eq!(c, Some(LayerChange { consumer_id: "c1".into(), spatial: Some(2), temporal: Some(1), at }));
        let none = layer_change(r#"42["consumerLayersChanged",{"consumerId":"c1","spatialLayer":null}]"#, at);
        assert_eq!(none.map(|c| c.spatial), Some(None));
        assert_eq!(layer_change(r#"42["peerJoined",{"peerId":"p"}]"#, at), None);
    }
}
