//! The worker's shared ports: every WebRTC transport of the worker is reached through its UDP
//! sockets and (ICE-TCP) its TCP listeners, told apart by ICE username fragment first and then by the
//! tuple ICE validated. A TCP connection is a tuple too: (the listener's id, the peer's address).

use std::collections::HashMap;
use std::net::SocketAddr;

use octo_ipc::{IceCandidate, IceCandidateType, Protocol, TransportId};

use super::transmit::SocketId;

/// A bound UDP socket or TCP listener of the worker and the address clients are told to use for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSocket {
    pub id: SocketId,
    pub local: SocketAddr,
    /// Address or host name announced in candidates instead of the bound IP (NAT, 0.0.0.0).
    pub announced_address: Option<String>,
    pub protocol: Protocol,
}

impl ListenSocket {
    pub fn udp(id: SocketId, local: SocketAddr, announced_address: Option<String>) -> Self {
        Self { id, local, announced_address, protocol: Protocol::Udp }
    }

    pub fn tcp(id: SocketId, local: SocketAddr, announced_address: Option<String>) -> Self {
        Self { id, local, announced_address, protocol: Protocol::Tcp }
    }
}

#[derive(Default)]
pub struct WebRtcServer {
    sockets: Vec<ListenSocket>,
    by_ufrag: HashMap<String, TransportId>,
    by_tuple: HashMap<(SocketId, SocketAddr), TransportId>,
}

impl WebRtcServer {
    pub fn new(sockets: Vec<ListenSocket>) -> Self {
        Self { sockets, ..Default::default() }
    }

    pub fn sockets(&self) -> &[ListenSocket] {
        &self.sockets
    }

    pub fn socket(&self, socket: SocketId) -> Option<&ListenSocket> {
        self.sockets.iter().find(|s| s.id == socket)
    }

    pub fn local_addr(&self, socket: SocketId) -> Option<SocketAddr> {
        self.socket(socket).map(|s| s.local)
    }

    /// A TCP listener usually shares its UDP socket's address and port: the protocol tells them apart.
    pub fn socket_id_for(&self, local: SocketAddr, protocol: Protocol) -> Option<SocketId> {
        self.sockets.iter().find(|s| s.local == local && s.protocol == protocol).map(|s| s.id)
    }

    /// The UDP sockets only (pipes between workers are UDP).
    pub fn udp_sockets(&self) -> impl Iterator<Item = &ListenSocket> {
        self.sockets.iter().filter(|s| s.protocol == Protocol::Udp)
    }

    /// Host candidates for every socket: UDP before TCP, IPv4 before IPv6 (browsers try higher
    /// priorities first, and media over TCP suffers head-of-line blocking: it is the fallback).
    pub fn candidates(&self) -> Vec<IceCandidate> {
        let mut sockets: Vec<&ListenSocket> = self.sockets.iter().collect();
        sockets.sort_by_key(|s| (s.protocol == Protocol::Tcp, s.local.is_ipv6(), s.id));
        sockets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let address = s.announced_address.clone().unwrap_or_else(|| s.local.ip().to_string());
                // RFC 8445 §5.1.2.1: type preference 126 (host), a local preference falling with
                // order, component 1. RFC 6544 §4.2 for TCP: the local preference's top bits are the
                // direction preference (4 for passive host candidates), below every UDP one here.
                let (foundation, local_preference, tcp_type) = match s.protocol {
                    Protocol::Udp => ("udpcandidate", 65_535u32.saturating_sub(i as u32 * 1024), None),
                    Protocol::Tcp => ("tcpcandidate", (4 << 13) | 8191u32.saturating_sub(i as u32), Some("passive")),
                };
                IceCandidate {
                    foundation: format!("{foundation}{}", s.id.0),
                    priority: (126 << 24) | (local_preference << 8) | 255,
                    ip: address.clone(),
                    address,
                    protocol: s.protocol,
                    port: s.local.port(),
                    kind: IceCandidateType::Host,
                    tcp_type: tcp_type.map(str::to_owned),
                }
            })
            .collect()
    }

    /// Returns false if another transport already uses `ufrag`.
    pub fn register_ufrag(&mut self, ufrag: &str, transport: TransportId) -> bool {
        if self.by_ufrag.contains_key(ufrag) {
            return false;
        }
        self.by_ufrag.insert(ufrag.to_owned(), transport);
        true
    }

    pub fn unregister_ufrag(&mut self, ufrag: &str) {
        self.by_ufrag.remove(ufrag);
    }

    pub fn has_ufrag(&self, ufrag: &str) -> bool {
        self.by_ufrag.contains_key(ufrag)
    }

    pub fn transport_for_ufrag(&self, ufrag: &str) -> Option<TransportId> {
        self.by_ufrag.get(ufrag).copied()
    }

    /// Binds a validated tuple to its transport. A tuple moving to another transport (a peer
    /// reusing its port after an ICE restart) takes the new owner.
    pub fn register_tuple(&mut self, socket: SocketId, remote: SocketAddr, transport: TransportId) {
        self.by_tuple.insert((socket, remote), transport);
    }

    pub fn transport_for_tuple(&self, socket: SocketId, remote: SocketAddr) -> Option<TransportId> {
        self.by_tuple.get(&(socket, remote)).copied()
    }

    /// Keeps only the tuples `keep` approves (consent expiry drops the rest).
    pub fn retain_tuples(&mut self, mut keep: impl FnMut(SocketId, SocketAddr, TransportId) -> bool) {
        self.by_tuple.retain(|(socket, remote), t| keep(*socket, *remote, *t));
    }

    /// Forgets every entry of a closed transport.
    pub fn remove_transport(&mut self, transport: TransportId) {
        self.by_ufrag.retain(|_, t| *t != transport);
        self.by_tuple.retain(|_, t| *t != transport);
    }
}
