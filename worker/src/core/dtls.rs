//! DTLS 1.2 for one WebRTC transport, over the webrtc-rs sans-IO `rtc-dtls` endpoint.
//!
//! The endpoint keys its connections by remote address; ICE already decided which 5-tuple belongs
//! to this transport, so one endpoint per transport talks to one constant placeholder address and
//! the transport routes the datagrams. Only DTLS records from ICE-validated tuples reach here.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use octo_ipc::{DtlsFingerprint, DtlsState, FingerprintAlgorithm};
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, VerifyPeerCertificateFn};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::TransportProtocol;
use sha2::Digest;

/// The label RFC 5764 uses to export SRTP keying material.
const SRTP_EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";
const LOCAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1);
const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2);

#[derive(Debug, thiserror::Error)]
pub enum DtlsError {
    #[error("dtls: {0}")]
    Library(#[from] rtc_shared::error::Error),
    #[error("crypto provider: {0}")]
    Provider(String),
    #[error("no remote fingerprint with a supported algorithm")]
    NoUsableFingerprint,
    #[error("negotiated SRTP profile {0:?} is not supported")]
    UnsupportedSrtpProfile(SrtpProtectionProfile),
}

/// SRTP protection profiles in the order Octo prefers them (used when Octo is the DTLS client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegotiatedSrtpProfile {
    AeadAes128Gcm,
    AeadAes256Gcm,
    Aes128CmHmacSha1_80,
    Aes128CmHmacSha1_32,
}

/// The worker's certificate: one per worker process, as mediasoup does, so every transport offers
/// the same fingerprints.
#[derive(Clone)]
pub struct DtlsIdentity {
    provider: Arc<dyn RTCCryptoProvider>,
    certificate: Certificate,
    fingerprints: Vec<DtlsFingerprint>,
}

impl DtlsIdentity {
    pub fn generate() -> Result<Self, DtlsError> {
        let provider = rtc_dtls::crypto_provider::default_provider().map_err(|e| DtlsError::Provider(e.to_string()))?;
        let certificate = Certificate::generate_self_signed(vec!["octo".to_owned()], provider.crypto())?;
        let der = certificate.certificate.first().map(|c| c.as_ref().to_vec()).unwrap_or_default();
        let fingerprints = [FingerprintAlgorithm::Sha256, FingerprintAlgorithm::Sha384, FingerprintAlgorithm::Sha512]
            .into_iter()
            .map(|algorithm| DtlsFingerprint { algorithm, value: fingerprint(algorithm, &der) })
            .collect();
        Ok(Self { provider, certificate, fingerprints })
    }

    pub fn fingerprints(&self) -> &[DtlsFingerprint] {
        &self.fingerprints
    }
}

/// `AB:CD:…` over the DER certificate, as SDP and mediasoup write it.
pub fn fingerprint(algorithm: FingerprintAlgorithm, der: &[u8]) -> String {
    let digest: Vec<u8> = match algorithm {
        FingerprintAlgorithm::Sha1 => sha1::Sha1::digest(der).to_vec(),
        FingerprintAlgorithm::Sha224 => sha2::Sha224::digest(der).to_vec(),
        FingerprintAlgorithm::Sha256 => sha2::Sha256::digest(der).to_vec(),
        FingerprintAlgorithm::Sha384 => sha2::Sha384::digest(der).to_vec(),
        FingerprintAlgorithm::Sha512 => sha2::Sha512::digest(der).to_vec(),
    };
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{b:02X}"));
    }
    out
}

/// Which side of the handshake this transport plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtlsLocalRole {
    Client,
    Server,
}

#[derive(Debug)]
pub enum DtlsEvent {
    StateChanged {
        state: DtlsState,
        reason: Option<String>,
    },
    /// The handshake finished: SRTP keys for both directions.
    SrtpKeys {
        profile: NegotiatedSrtpProfile,
        keying_material: Vec<u8>,
        local_is_client: bool,
    },
    /// Decrypted application data (SCTP packets for DataChannels).
    ApplicationData(BytesMut),
}

pub struct DtlsTransport {
    endpoint: Endpoint,
    role: DtlsLocalRole,
    client_config: Option<Arc<rtc_dtls::config::HandshakeConfig>>,
    state: DtlsState,
    events: VecDeque<DtlsEvent>,
}

impl DtlsTransport {
    /// Prepares a handshake against the remote's fingerprints. Nothing is sent until [`start`]
    /// (client) or until the first record arrives (server).
    ///
    /// [`start`]: DtlsTransport::start
    pub fn new(identity: &DtlsIdentity, role: DtlsLocalRole, remote: &[DtlsFingerprint]) -> Result<Self, DtlsError> {
        let expected: Vec<DtlsFingerprint> = remote
            .iter()
            .filter(|f| !matches!(f.algorithm, FingerprintAlgorithm::Sha1 | FingerprintAlgorithm::Sha224))
            .cloned()
            .collect();
        if expected.is_empty() {
            return Err(DtlsError::NoUsableFingerprint);
        }
        // The peer's certificate is self-signed; what authenticates it is its fingerprint, signed
        // into the signaling. Any mismatch aborts the handshake.
        let verify: VerifyPeerCertificateFn = Arc::new(move |certs: &[Vec<u8>], _| {
            let leaf = certs.first().ok_or(rtc_shared::error::Error::ErrNonCertificate)?;
            let matches = expected.iter().any(|f| fingerprint(f.algorithm, leaf).eq_ignore_ascii_case(f.value.trim()));
            if matches { Ok(()) } else { Err(rtc_shared::error::Error::ErrNoMatchingCertificateFingerprint) }
        });
        let config = ConfigBuilder::default()
            .with_crypto_provider(identity.provider.clone())
            .with_certificates(vec![identity.certificate.clone()])
            .with_srtp_protection_profiles(vec![
                SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
                SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32,
            ])
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_insecure_skip_verify(true)
            .with_verify_peer_certificate(Some(verify))
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            // WebRTC authenticates by certificate fingerprint, never by name; rtc-dtls wants a name
            // for a client and warns on every handshake without one ("localhost" is its own fallback).
            .with_server_name("localhost".to_owned())
            .build(role == DtlsLocalRole::Client, None)?;
        let config = Arc::new(config);
        let (endpoint, client_config) = match role {
            DtlsLocalRole::Server => (Endpoint::new(LOCAL, TransportProtocol::UDP, Some(config)), None),
            DtlsLocalRole::Client => (Endpoint::new(LOCAL, TransportProtocol::UDP, None), Some(config)),
        };
        Ok(Self { endpoint, role, client_config, state: DtlsState::New, events: VecDeque::new() })
    }

    pub fn role(&self) -> DtlsLocalRole {
        self.role
    }

    pub fn state(&self) -> DtlsState {
        self.state
    }

    /// Starts the handshake once ICE has a tuple to send on. A server only moves to `Connecting`.
    pub fn start(&mut self, now: Instant) {
        if self.state != DtlsState::New {
            return;
        }
        self.set_state(DtlsState::Connecting, None);
        if let Some(config) = self.client_config.take()
            && let Err(e) = self.endpoint.connect(now, PEER, config, None)
        {
            self.set_state(DtlsState::Failed, Some(e.to_string()));
        }
    }

    /// A DTLS record from the transport's validated tuple. Errors after the handshake are the
    /// caller's to count; during it they fail the transport's DTLS.
    pub fn handle_datagram(&mut self, now: Instant, data: &[u8]) -> Result<(), DtlsError> {
        match self.state {
            DtlsState::Failed | DtlsState::Closed => return Ok(()),
            DtlsState::New => self.start(now),
            _ => {}
        }
        let result = self.endpoint.read(now, PEER, None, BytesMut::from(data));
        match result {
            Ok(events) => {
                for event in events {
                    self.handle_endpoint_event(event);
                }
                Ok(())
            }
            Err(e) if self.state == DtlsState::Connecting => {
                self.set_state(DtlsState::Failed, Some(e.to_string()));
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn handle_endpoint_event(&mut self, event: EndpointEvent) {
        match event {
            EndpointEvent::HandshakeComplete => match self.export_keys() {
                Ok(keys) => {
                    self.set_state(DtlsState::Connected, None);
                    self.events.push_back(keys);
                }
                Err(e) => self.set_state(DtlsState::Failed, Some(e.to_string())),
            },
            EndpointEvent::ApplicationData(data) => self.events.push_back(DtlsEvent::ApplicationData(data)),
            EndpointEvent::PeerClosed => self.set_state(DtlsState::Closed, Some("peer sent close_notify".into())),
            _ => {}
        }
    }

    fn export_keys(&self) -> Result<DtlsEvent, DtlsError> {
        let state = self.endpoint.get_connection_state(PEER).ok_or(DtlsError::NoUsableFingerprint)?;
        let negotiated = state.srtp_protection_profile();
        let (profile, len) = match negotiated {
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => (NegotiatedSrtpProfile::AeadAes128Gcm, 2 * (16 + 12)),
            SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm => (NegotiatedSrtpProfile::AeadAes256Gcm, 2 * (32 + 12)),
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => {
                (NegotiatedSrtpProfile::Aes128CmHmacSha1_80, 2 * (16 + 14))
            }
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32 => {
                (NegotiatedSrtpProfile::Aes128CmHmacSha1_32, 2 * (16 + 14))
            }
            other => return Err(DtlsError::UnsupportedSrtpProfile(other)),
        };
        let material = state.export_keying_material(SRTP_EXPORTER_LABEL, &[], len)?;
        Ok(DtlsEvent::SrtpKeys {
            profile,
            keying_material: material.as_ref().to_vec(),
            local_is_client: self.role == DtlsLocalRole::Client,
        })
    }

    /// Sends application data (an SCTP packet) once connected.
    pub fn send_application_data(&mut self, now: Instant, data: &[u8]) -> Result<(), DtlsError> {
        self.endpoint.write(now, PEER, data).map_err(DtlsError::from)
    }

    /// The next DTLS datagram to put on the wire.
    pub fn poll_transmit(&mut self) -> Option<BytesMut> {
        self.endpoint.poll_transmit().map(|t| t.message)
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == DtlsState::Connecting { self.endpoint.poll_timeout(&PEER) } else { None }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != DtlsState::Connecting {
            return;
        }
        if let Err(e) = self.endpoint.handle_timeout(PEER, now) {
            self.set_state(DtlsState::Failed, Some(format!("handshake timed out: {e}")));
        }
    }

    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.events.pop_front()
    }

    /// Sends close_notify if connected.
    pub fn close(&mut self, now: Instant) {
        if self.state == DtlsState::Connected {
            let _ = self.endpoint.close(now);
        }
        self.state = DtlsState::Closed;
    }

    fn set_state(&mut self, state: DtlsState, reason: Option<String>) {
        if self.state != state {
            self.state = state;
            self.events.push_back(DtlsEvent::StateChanged { state, reason });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Moves datagrams between two in-memory transports until both settle, in virtual time.
    fn drive(a: &mut DtlsTransport, b: &mut DtlsTransport, mut now: Instant) -> Instant {
        for _ in 0..50 {
            let mut moved = false;
            while let Some(d) = a.poll_transmit() {
                let _ = b.handle_datagram(now, &d);
                moved = true;
            }
            while let Some(d) = b.poll_transmit() {
                let _ = a.handle_datagram(now, &d);
                moved = true;
            }
            if !moved {
                let next = [a.poll_timeout(), b.poll_timeout()].into_iter().flatten().min();
                match next {
                    Some(t) => {
                        now = now.max(t);
                        a.handle_timeout(now);
                        b.handle_timeout(now);
                    }
                    None => break,
                }
            }
            now += Duration::from_millis(1);
        }
        now
    }

    fn keys(t: &mut DtlsTransport) -> Option<(NegotiatedSrtpProfile, Vec<u8>, bool)> {
        let mut found = None;
        while let Some(e) = t.poll_event() {
            if let DtlsEvent::SrtpKeys { profile, keying_material, local_is_client } = e {
                found = Some((profile, keying_material, local_is_client));
            }
        }
        found
    }

    #[test]
    fn handshake_between_two_in_memory_endpoints_exports_the_same_keys() {
        let (id_a, id_b) = (DtlsIdentity::generate().unwrap(), DtlsIdentity::generate().unwrap());
        let mut client = DtlsTransport::new(&id_a, DtlsLocalRole::Client, id_b.fingerprints()).unwrap();
        let mut server = DtlsTransport::new(&id_b, DtlsLocalRole::Server, id_a.fingerprints()).unwrap();
        let now = Instant::now();
        client.start(now);
        server.start(now);
        drive(&mut client, &mut server, now);
        assert_eq!(client.state(), DtlsState::Connected);
        assert_eq!(server.state(), DtlsState::Connected);
        let (pc, kc, c_is_client) = keys(&mut client).unwrap();
        let (ps, ks, s_is_client) = keys(&mut server).unwrap();
        assert_eq!(pc, NegotiatedSrtpProfile::AeadAes128Gcm, "GCM is preferred");
        assert_eq!(pc, ps);
        assert_eq!(kc, ks);
        assert_eq!(kc.len(), 56);
        assert!(c_is_client && !s_is_client);
    }

    #[test]
    fn a_wrong_fingerprint_fails_the_handshake() {
        let (id_a, id_b, id_c) =
            (DtlsIdentity::generate().unwrap(), DtlsIdentity::generate().unwrap(), DtlsIdentity::generate().unwrap());
        // The server expects C's certificate but A connects.
        let mut client = DtlsTransport::new(&id_a, DtlsLocalRole::Client, id_b.fingerprints()).unwrap();
        let mut server = DtlsTransport::new(&id_b, DtlsLocalRole::Server, id_c.fingerprints()).unwrap();
        let now = Instant::now();
        client.start(now);
        drive(&mut client, &mut server, now);
        assert_eq!(server.state(), DtlsState::Failed);
        assert_ne!(client.state(), DtlsState::Connected);
        assert!(keys(&mut server).is_none());
    }

    #[test]
    fn an_unanswered_client_gives_up_in_virtual_time() {
        let (id_a, id_b) = (DtlsIdentity::generate().unwrap(), DtlsIdentity::generate().unwrap());
        let mut client = DtlsTransport::new(&id_a, DtlsLocalRole::Client, id_b.fingerprints()).unwrap();
        let mut now = Instant::now();
        client.start(now);
        for _ in 0..20 {
            while client.poll_transmit().is_some() {}
            match client.poll_timeout() {
                Some(t) => {
                    now = t;
                    client.handle_timeout(now);
                }
                None => break,
            }
        }
        assert_eq!(client.state(), DtlsState::Failed);
    }

    #[test]
    fn garbage_records_never_panic() {
        let (id_a, id_b) = (DtlsIdentity::generate().unwrap(), DtlsIdentity::generate().unwrap());
        let mut server = DtlsTransport::new(&id_b, DtlsLocalRole::Server, id_a.fingerprints()).unwrap();
        let now = Instant::now();
        for len in [0usize, 1, 13, 14, 25, 100, 1500] {
            let junk: Vec<u8> = (0..len).map(|i| (i * 31 + 22) as u8).collect();
            let _ = server.handle_datagram(now, &junk);
        }
        let mut record = vec![22u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
        record.extend_from_slice(&[1; 40]);
        let _ = server.handle_datagram(now, &record);
    }

    #[test]
    fn fingerprints_are_colon_separated_upper_hex() {
        let fp = fingerprint(FingerprintAlgorithm::Sha256, b"abc");
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp.starts_with("BA:78:16:BF"), "{fp}");
    }
}
