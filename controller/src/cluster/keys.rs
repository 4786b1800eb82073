//! The names of the cluster's Redis keys and channels, in one place. Everything is under `octo:`
//! so that one Redis (or one database of it) can be shared with other applications.

/// The set of every node id that has heart-beaten (members whose record expired are gone).
pub const NODES: &str = "octo:nodes";

/// A node's record (JSON, with a TTL refreshed by its heartbeat).
pub fn node(id: &str) -> String {
    format!("octo:node:{id}")
}

/// The channel a node receives requests and replies on.
pub fn node_channel(id: &str) -> String {
    format!("octo:node:{id}:inbox")
}

/// A room's members, a hash from peer id to its record (JSON).
pub fn members(room: &str) -> String {
    format!("octo:room:{room}:members")
}

/// The channel of a room's messages (members joining, changing, leaving).
pub fn room_channel(room: &str) -> String {
    format!("octo:room:{room}:events")
}

/// A room's chat history, a Redis Stream of lines.
pub fn chat(room: &str) -> String {
    format!("octo:room:{room}:chat")
}

/// The room id of a room channel's name, if it is one.
pub fn room_of_channel(channel: &str) -> Option<&str> {
    channel.strip_prefix("octo:room:")?.strip_suffix(":events")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_channel_names_its_room_back() {
        for room in ["r", "team:standup", "a:events", "ünï"] {
            assert_eq!(room_of_channel(&room_channel(room)), Some(room));
        }
        assert_eq!(room_of_channel(&node_channel("a")), None);
        assert_eq!(room_of_channel("octo:room:x:members"), None);
    }
}
