//! STUN messages and the ICE-lite agent that answers them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::input::records;
use crate::core::ice::{IceLite, StunMessage, Tuple};
use crate::core::transmit::BUFFER_SIZE;

/// The agent's credentials: seeds are signed with this password, so mutations of them reach the
/// checks that follow a valid MESSAGE-INTEGRITY.
pub const ICE_UFRAG: &str = "fuzzufrag";
pub const ICE_PASSWORD: &str = "fuzzpasswordfuzzpassword";

/// One datagram through the STUN parser and every accessor the worker reads.
pub fn stun(data: &[u8]) -> bool {
    let Ok(msg) = StunMessage::parse(data) else { return false };
    let _ = (msg.class(), msg.method(), msg.transaction_id(), msg.username(), msg.priority());
    let _ = (msg.ice_controlling(), msg.ice_controlled(), msg.use_candidate(), msg.error_code());
    let _ = (msg.xor_mapped_address(), msg.unknown_comprehension_required());
    let _ = (msg.has_message_integrity(), msg.has_fingerprint(), msg.verify_fingerprint());
    let _ = msg.verify_integrity(ICE_PASSWORD.as_bytes());
    true
}

/// A sequence of datagrams (see [`records`]) to one ICE-lite agent, from three remote addresses in
/// turn, with time moving on between them so consent expiry and nomination changes happen too.
pub fn ice_lite(data: &[u8]) -> bool {
    let start = Instant::now();
    let mut agent = IceLite::new(ICE_UFRAG.into(), ICE_PASSWORD.into());
    let local: SocketAddr = "127.0.0.1:40000".parse().expect("address");
    let mut response = vec![0u8; BUFFER_SIZE];
    let mut parsed = false;
    for (i, datagram) in records(data).enumerate() {
        let now = start + Duration::from_secs(i as u64 * 7);
        let remote = SocketAddr::from(([127, 0, 0, 1], 50000 + (i % 3) as u16));
        if let Ok(msg) = StunMessage::parse(datagram) {
            parsed = true;
            let _ = agent.handle_binding_request(
                now,
                Tuple { local, remote, protocol: octo_ipc::Protocol::Udp },
                &msg,
                &mut response,
            );
        }
        agent.handle_timeout(now);
        while agent.poll_event().is_some() {}
        let _ = (agent.state(), agent.selected_tuple(), agent.poll_timeout(), agent.tuples().count());
    }
    parsed
}
