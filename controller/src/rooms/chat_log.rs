//! Cluster mode: a room's chat history. The chat lines of local peers are read off their chat data
//! producers (the worker taps them: text messages only, rate-limited there) and appended to the
//! room's stream in Redis; a peer joining gets the kept lines in its `joinRoom` answer.

use std::sync::Weak;

use octo_ipc::{DataProducerId, DataProducerNotification, DataProducerRequest, Notification, Request, Target};
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{debug, warn};

use super::PeerId;
use super::room::Room;
use crate::cluster::Cluster;
use crate::cluster::chat::now_ms;
use crate::cluster::wire::ChatLine;

/// The browser client's chat channel (client-web/README.md, "DataChannel messages").
const CHAT_LABEL: &str = "chat";
const CHAT_PROTOCOL: &str = "octo-chat";
/// The client's own bound on a line, in UTF-16 units.
const MAX_TEXT: usize = 2000;

impl Room {
    /// Starts keeping what `peer` says on data producer `id`, if it is a chat channel and the
    /// cluster keeps history.
    pub(super) async fn tap_chat(&self, peer: &str, id: DataProducerId, label: &str, protocol: &str) {
        let Some(cluster) = self.cluster() else { return };
        if label != CHAT_LABEL || protocol != CHAT_PROTOCOL || cluster.chat_history().messages == 0 {
            return;
        }
        let notifications = self.pool.subscribe(Target::DataProducer(id));
        let request = Request::DataProducer(id, DataProducerRequest::SetTap { enabled: true });
        if let Err(e) = self.request(self.worker, request).await {
            self.pool.unsubscribe(Target::DataProducer(id));
            warn!(room = self.id, peer, %id, "chat history: tapping the chat channel failed: {e}");
            return;
        }
        tokio::spawn(keep_chat(self.me.clone(), peer.to_owned(), notifications, cluster));
    }

    /// The room's kept chat, oldest first (cluster mode; `None` standalone). Redis being away
    /// gives an empty history, not a failed join.
    pub async fn chat_history(&self) -> Option<Vec<ChatLine>> {
        let cluster = self.cluster()?;
        match cluster.read_chat(&self.id).await {
            Ok(lines) => Some(lines),
            Err(e) => {
                debug!(room = self.id, "chat history not read: {e}");
                Some(Vec::new())
            }
        }
    }
}

/// Appends each chat line the worker hands over until the data producer is gone.
async fn keep_chat(
    room: Weak<Room>,
    peer: PeerId,
    mut notifications: UnboundedReceiver<Notification>,
    cluster: std::sync::Arc<Cluster>,
) {
    while let Some(n) = notifications.recv().await {
        let Notification::DataProducer(_, DataProducerNotification::Message { payload, .. }) = n else { continue };
        let Some(room) = room.upgrade() else { return };
        let Some(text) = chat_text(&payload) else { continue };
        let display_name = match room.lock().peer(&peer) {
            Ok(p) => p.display_name.clone(),
            Err(_) => return,
        };
        let line = ChatLine { peer_id: peer.clone(), display_name, text, at: now_ms() };
        if let Err(e) = cluster.append_chat(room.id(), &line).await {
            debug!(room = room.id(), "chat line not kept: {e}");
        }
    }
}

/// The text of a chat line in the client's format (`{"type": "chat", "text": T}`, T 1 to 2,000
/// UTF-16 units, not all blank); anything else on the channel (files, reactions) is not kept.
pub(super) fn chat_text(payload: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    if value.get("type")?.as_str()? != "chat" {
        return None;
    }
    let text = value.get("text")?.as_str()?;
    let units = text.encode_utf16().count();
    ((1..=MAX_TEXT).contains(&units) && !text.trim().is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_chat_lines_in_the_clients_format_are_kept() {
        assert_eq!(chat_text(br#"{"type":"chat","text":"hello"}"#).as_deref(), Some("hello"));
        let long = format!(r#"{{"type":"chat","text":"{}"}}"#, "a".repeat(MAX_TEXT));
        assert!(chat_text(long.as_bytes()).is_some());
        for bad in [
            br#"{"type":"chat","text":"   "}"#.as_slice(),
            br#"{"type":"chat","text":""}"#,
            br#"{"type":"chat","text":5}"#,
            br#"{"type":"reaction","emoji":"x"}"#,
            br#"{"type":"file","name":"a","size":1}"#,
            b"not json",
            b"",
            &[0xff, 0xfe, 0x00],
        ] {
            assert_eq!(chat_text(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        let too_long = format!(r#"{{"type":"chat","text":"{}"}}"#, "a".repeat(MAX_TEXT + 1));
        assert_eq!(chat_text(too_long.as_bytes()), None);
    }
}
