//! A room's chat history: a Redis Stream per room, bounded in length and age, replayed to a peer
//! that joins. Stream entry ids are millisecond timestamps, so the age bound is an id range.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::wire::ChatLine;
use super::{Cluster, ClusterError, keys};

/// How much chat each room keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatHistory {
    /// At most this many lines (0: no history).
    pub messages: usize,
    /// Lines older than this are not replayed (and are trimmed).
    pub max_age: Duration,
}

impl Default for ChatHistory {
    fn default() -> Self {
        ChatHistory { messages: 200, max_age: Duration::from_secs(24 * 3600) }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Cluster {
    /// Appends `line` to the room's history and trims what is beyond the bounds.
    pub async fn append_chat(&self, room: &str, line: &ChatLine) -> Result<(), ClusterError> {
        let limits = self.config.chat_history;
        if limits.messages == 0 {
            return Ok(());
        }
        let key = keys::chat(room);
        let oldest = now_ms().saturating_sub(limits.max_age.as_millis() as u64);
        let text = serde_json::to_string(line).expect("chat lines serialize");
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("XADD")
            .arg(&key)
            .arg("MAXLEN")
            .arg("~")
            .arg(limits.messages)
            .arg("*")
            .arg("line")
            .arg(text)
            .ignore()
            .cmd("XTRIM")
            .arg(&key)
            .arg("MINID")
            .arg("~")
            .arg(oldest)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(limits.max_age.as_millis() as u64)
            .ignore();
        self.link.run::<()>(&pipe).await
    }

    /// The room's kept lines, oldest first: at most the configured count, none older than the
    /// configured age. Unreadable entries are skipped.
    pub async fn read_chat(&self, room: &str) -> Result<Vec<ChatLine>, ClusterError> {
        let limits = self.config.chat_history;
        if limits.messages == 0 {
            return Ok(Vec::new());
        }
        let oldest = now_ms().saturating_sub(limits.max_age.as_millis() as u64);
        // Newest first, so COUNT keeps the most recent ones.
        let entries: Vec<(String, Vec<(String, String)>)> = self
            .link
            .run(redis::cmd("XREVRANGE").arg(keys::chat(room)).arg("+").arg(oldest).arg("COUNT").arg(limits.messages))
            .await?;
        let mut lines: Vec<ChatLine> = entries
            .into_iter()
            .filter_map(|(_, fields)| {
                let (_, text) = fields.into_iter().find(|(name, _)| name == "line")?;
                serde_json::from_str(&text).ok()
            })
            .collect();
        lines.reverse();
        Ok(lines)
    }
}
