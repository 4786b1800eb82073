//! A minimal Socket.IO v5 client over Engine.IO v4 long polling, for Rust tests that need a
//! signaling peer without Node (the Node tests use the real npm client).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> anyhow::Result<(u16, String)> {
    // Long polls are held up to the ping interval (25 s).
    Ok(octo_loadgen::http::request(addr, method, path, body, Duration::from_secs(30))?)
}

pub struct PollingClient {
    addr: SocketAddr,
    sid: String,
    next_ack: u32,
    /// Every server event seen so far (name, first argument), in arrival order.
    pub events: Vec<(String, serde_json::Value)>,
}

impl PollingClient {
    pub fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let (status, body) = request(addr, "GET", "/socket.io/?EIO=4&transport=polling", "")?;
        if status != 200 {
            bail!("handshake answered {status}: {body}");
        }
        let sid = body.split("\"sid\":\"").nth(1).and_then(|s| s.split('"').next()).context("no sid")?.to_owned();
        let mut client = Self { addr, sid, next_ack: 0, events: Vec::new() };
        client.post("40")?;
        client.wait_for(|p| p.starts_with("40"), Duration::from_secs(5))?;
        Ok(client)
    }

    fn post(&self, packet: &str) -> anyhow::Result<()> {
        let (status, body) =
            request(self.addr, "POST", &format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid), packet)?;
        if status != 200 {
            bail!("POST answered {status}: {body}");
        }
        Ok(())
    }

    /// Polls until a packet satisfies `want`, answering pings and recording events on the way.
    fn wait_for(&mut self, want: impl Fn(&str) -> bool, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let (status, body) =
                request(self.addr, "GET", &format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid), "")?;
            if status != 200 {
                bail!("poll answered {status}: {body}");
            }
            for packet in body.split('\u{1e}') {
                if packet == "2" {
                    self.post("3")?;
                } else if want(packet) {
                    return Ok(packet.to_owned());
                } else if let Some(event) = packet.strip_prefix("42")
                    && let Ok(serde_json::Value::Array(args)) = serde_json::from_str(event)
                    && let Some(name) = args.first().and_then(|n| n.as_str())
                {
                    self.events.push((name.to_owned(), args.get(1).cloned().unwrap_or_default()));
                }
            }
        }
        bail!("no matching packet within {timeout:?}")
    }

    /// Waits until the server has sent `event` (now or before) and returns its first argument.
    pub fn wait_event(&mut self, event: &str, timeout: Duration) -> anyhow::Result<serde_json::Value> {
        let seen =
            |events: &[(String, serde_json::Value)]| events.iter().find(|(n, _)| n == event).map(|(_, v)| v.clone());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = seen(&self.events) {
                return Ok(v);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("no {event:?} within {timeout:?}; events: {:?}", self.events);
            }
            // Any packet ends the wait; events it carries are recorded.
            let prefix = format!("42[\"{event}\"");
            if let Ok(p) = self.wait_for(|p| p.starts_with(&prefix), left) {
                let args: serde_json::Value = serde_json::from_str(&p[2..]).unwrap_or_default();
                self.events.push((event.to_owned(), args.get(1).cloned().unwrap_or_default()));
            }
        }
    }

    /// Emits `event` with `payload` and returns the ack's first argument.
    pub fn request(&mut self, event: &str, payload: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let id = self.next_ack;
        self.next_ack += 1;
        self.post(&format!("42{id}{}", serde_json::json!([event, payload])))?;
        let prefix = format!("43{id}");
        let packet = self.wait_for(|p| p.starts_with(&prefix), Duration::from_secs(10))?;
        let args: serde_json::Value = serde_json::from_str(&packet[prefix.len()..])?;
        Ok(args.get(0).cloned().unwrap_or(serde_json::Value::Null))
    }
}
