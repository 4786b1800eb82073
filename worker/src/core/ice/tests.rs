//! ICE-lite behaviour in virtual time, and garbage through the codec and the agent.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use octo_ipc::Protocol;
use proptest::prelude::*;

use super::stun::{self, BindingRequest, StunClass, StunMessage, write_binding_request};
use super::{CONSENT_TIMEOUT, IceError, IceEvent, IceLite, IceState, MAX_TUPLES, Tuple};

const UFRAG: &str = "srvufrag";
const PASSWORD: &str = "server-password-0123456789";

fn agent() -> IceLite {
    IceLite::new(UFRAG.to_string(), PASSWORD.to_string())
}

fn tuple(remote_port: u16) -> Tuple {
    Tuple {
        local: "10.0.0.1:40000".parse().unwrap(),
        remote: SocketAddr::from(([192, 0, 2, 7], remote_port)),
        protocol: Protocol::Udp,
    }
}

/// A browser's check as Chrome sends it: controlling, with our ufrag first in USERNAME.
fn check<'r>(username: &'r [u8], password: &'r [u8], use_candidate: bool) -> BindingRequest<'r> {
    BindingRequest {
        transaction_id: [0x5a; 12],
        username,
        password,
        priority: 0x6e00_1eff,
        use_candidate,
        ice_controlling: Some(0x0102_0304_0506_0708),
        ice_controlled: None,
    }
}

fn request_bytes(req: &BindingRequest<'_>) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let n = write_binding_request(&mut buf, req).unwrap();
    buf[..n].to_vec()
}

/// Feeds one request to the agent and returns the parsed response bytes.
fn send(ice: &mut IceLite, now: Instant, t: Tuple, req: &BindingRequest<'_>) -> Vec<u8> {
    let bytes = request_bytes(req);
    let msg = StunMessage::parse(&bytes).unwrap();
    let mut out = [0u8; 256];
    let n = ice.handle_binding_request(now, t, &msg, &mut out).unwrap();
    out[..n].to_vec()
}

fn good(ice: &mut IceLite, now: Instant, t: Tuple, use_candidate: bool) -> Vec<u8> {
    send(ice, now, t, &check(format!("{UFRAG}:cli").as_bytes(), PASSWORD.as_bytes(), use_candidate))
}

fn events(ice: &mut IceLite) -> Vec<IceEvent> {
    std::iter::from_fn(|| ice.poll_event()).collect()
}

fn error_code(response: &[u8]) -> (u16, String) {
    let msg = StunMessage::parse(response).unwrap();
    assert_eq!(msg.class(), StunClass::ErrorResponse);
    assert!(msg.verify_fingerprint());
    let e = msg.error_code().unwrap();
    (e.code, String::from_utf8(e.reason.to_vec()).unwrap())
}

#[test]
fn a_nominating_check_selects_the_tuple_and_gets_a_signed_success() {
    let mut ice = agent();
    let t0 = Instant::now();
    let t = tuple(50_000);
    assert_eq!(ice.state(), IceState::New);
    assert_eq!(ice.poll_timeout(), None);

    let response = good(&mut ice, t0, t, true);
    let msg = StunMessage::parse(&response).unwrap();
    assert_eq!(msg.class(), StunClass::SuccessResponse);
    assert_eq!(msg.transaction_id(), [0x5a; 12]);
    assert_eq!(msg.xor_mapped_address(), Some(t.remote));
    assert!(msg.verify_integrity(PASSWORD.as_bytes()));
    assert!(msg.verify_fingerprint());

    assert_eq!(ice.state(), IceState::Completed);
    assert_eq!(ice.selected_tuple(), Some(t));
    assert!(ice.is_valid_tuple(&t));
    assert!(!ice.is_valid_tuple(&tuple(50_001)));
    assert_eq!(
        events(&mut ice),
        [IceEvent::SelectedTupleChanged(Some(t)), IceEvent::StateChanged(IceState::Completed)]
    );
    assert_eq!(ice.poll_timeout(), Some(t0 + CONSENT_TIMEOUT));
}

#[test]
fn a_check_without_nomination_connects_and_a_later_nomination_completes() {
    let mut ice = agent();
    let t0 = Instant::now();
    let a = tuple(1000);
    good(&mut ice, t0, a, false);
    assert_eq!(ice.state(), IceState::Connected);
    assert_eq!(ice.selected_tuple(), Some(a));
    assert_eq!(
        events(&mut ice),
        [IceEvent::SelectedTupleChanged(Some(a)), IceEvent::StateChanged(IceState::Connected)]
    );

    good(&mut ice, t0 + Duration::from_secs(1), a, true);
    assert_eq!(ice.state(), IceState::Completed);
    assert_eq!(events(&mut ice), [IceEvent::StateChanged(IceState::Completed)]);
}

#[test]
fn the_ipv6_remote_address_is_reflected() {
    let mut ice = agent();
    let t = Tuple {
        local: "[2001:db8::1]:40000".parse().unwrap(),
        remote: "[2001:db8::99]:61000".parse().unwrap(),
        protocol: Protocol::Udp,
    };
    let response = good(&mut ice, Instant::now(), t, true);
    assert_eq!(StunMessage::parse(&response).unwrap().xor_mapped_address(), Some(t.remote));
}

#[test]
fn wrong_ufrag_or_password_gets_401_and_validates_nothing() {
    let mut ice = agent();
    let now = Instant::now();
    let t = tuple(1);

    let r = send(&mut ice, now, t, &check(b"other:cli", PASSWORD.as_bytes(), true));
    let (code, reason) = error_code(&r);
    assert_eq!(code, 401);
    assert!(reason.contains("username"), "{reason}");
    // No MESSAGE-INTEGRITY: we could not authenticate the request, so we do not sign the answer.
    assert!(!StunMessage::parse(&r).unwrap().has_message_integrity());

    // Our ufrag after the colon is the sender's own fragment, not ours.
    let r = send(&mut ice, now, t, &check(format!("cli:{UFRAG}").as_bytes(), PASSWORD.as_bytes(), true));
    assert_eq!(error_code(&r).0, 401);
    // A prefix of our ufrag is not our ufrag, nor is a USERNAME without a colon.
    let r = send(&mut ice, now, t, &check(b"srvufra:cli", PASSWORD.as_bytes(), true));
    assert_eq!(error_code(&r).0, 401);
    let r = send(&mut ice, now, t, &check(UFRAG.as_bytes(), PASSWORD.as_bytes(), true));
    assert_eq!(error_code(&r).0, 401);

    let r = send(&mut ice, now, t, &check(format!("{UFRAG}:cli").as_bytes(), b"wrong-password", true));
    let (code, reason) = error_code(&r);
    assert_eq!(code, 401);
    assert!(reason.contains("MESSAGE-INTEGRITY"), "{reason}");

    assert_eq!(ice.state(), IceState::New);
    assert!(!ice.is_valid_tuple(&t));
    assert_eq!(ice.selected_tuple(), None);
    assert_eq!(ice.poll_event(), None);
}

#[test]
fn a_peer_that_is_also_controlled_gets_487() {
    let mut ice = agent();
    let username = format!("{UFRAG}:cli");
    let mut req = check(username.as_bytes(), PASSWORD.as_bytes(), false);
    req.ice_controlling = None;
    req.ice_controlled = Some(42);
    let r = send(&mut ice, Instant::now(), tuple(2), &req);
    assert_eq!(error_code(&r).0, 487);
    assert!(StunMessage::parse(&r).unwrap().verify_integrity(PASSWORD.as_bytes()));
    assert!(!ice.is_valid_tuple(&tuple(2)));
    assert_eq!(ice.state(), IceState::New);
}

/// Builds a request attribute by attribute, for shapes `write_binding_request` refuses to make.
fn handmade(attrs: &[(u16, &[u8])], integrity: Option<&[u8]>) -> Vec<u8> {
    // Header: Binding request, length patched below.
    let mut m = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    m.extend_from_slice(&[0x33; 12]);
    for (t, v) in attrs {
        m.extend_from_slice(&t.to_be_bytes());
        m.extend_from_slice(&(v.len() as u16).to_be_bytes());
        m.extend_from_slice(v);
        m.resize(m.len().next_multiple_of(4), 0);
    }
    if let Some(key) = integrity {
        use hmac::{Hmac, Mac};
        let len = (m.len() - 20 + 24) as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
        mac.update(&m);
        let tag = mac.finalize().into_bytes();
        m.extend_from_slice(&[0x00, 0x08, 0x00, 0x14]);
        m.extend_from_slice(&tag);
    }
    let len = (m.len() - 20) as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    m
}

fn answer(ice: &mut IceLite, bytes: &[u8]) -> Result<Vec<u8>, IceError> {
    let msg = StunMessage::parse(bytes).unwrap();
    let mut out = [0u8; 256];
    let n = ice.handle_binding_request(Instant::now(), tuple(3), &msg, &mut out)?;
    Ok(out[..n].to_vec())
}

#[test]
fn malformed_checks_get_400() {
    let mut ice = agent();
    let username = format!("{UFRAG}:cli");
    let key = PASSWORD.as_bytes();

    // Authenticated but no PRIORITY: 400, signed.
    let r = answer(&mut ice, &handmade(&[(0x0006, username.as_bytes())], Some(key))).unwrap();
    let (code, reason) = error_code(&r);
    assert_eq!((code, reason.as_str()), (400, "Bad Request: no PRIORITY"));
    assert!(StunMessage::parse(&r).unwrap().verify_integrity(key));

    // No MESSAGE-INTEGRITY, or no USERNAME: 400, unsigned.
    let prio = 7u32.to_be_bytes();
    let r = answer(&mut ice, &handmade(&[(0x0006, username.as_bytes()), (0x0024, &prio)], None)).unwrap();
    assert_eq!(error_code(&r).0, 400);
    assert!(!StunMessage::parse(&r).unwrap().has_message_integrity());
    let r = answer(&mut ice, &handmade(&[(0x0024, &prio)], Some(key))).unwrap();
    assert_eq!(error_code(&r).0, 400);

    // An unknown comprehension-required attribute: 420 naming it.
    let r = answer(&mut ice, &handmade(&[(0x0006, username.as_bytes()), (0x0024, &prio), (0x7abc, b"x")], Some(key)))
        .unwrap();
    assert_eq!(error_code(&r).0, 420);
    assert!(r.windows(6).any(|w| w == [0x00, 0x0a, 0x00, 0x02, 0x7a, 0xbc]));

    // Sanity: the same handmade shape with PRIORITY is accepted, so the 400s above are meaningful.
    let r = answer(&mut ice, &handmade(&[(0x0006, username.as_bytes()), (0x0024, &prio)], Some(key))).unwrap();
    assert_eq!(StunMessage::parse(&r).unwrap().class(), StunClass::SuccessResponse);
    assert_eq!(ice.state(), IceState::Connected);
}

#[test]
fn non_requests_and_bad_fingerprints_are_not_answered() {
    let mut ice = agent();
    let mut buf = [0u8; 128];
    let n = stun::write_binding_success(&mut buf, [1; 12], "1.2.3.4:5".parse().unwrap(), PASSWORD.as_bytes()).unwrap();
    assert_eq!(answer(&mut ice, &buf[..n]), Err(IceError::NotARequest(StunClass::SuccessResponse)));

    let mut bytes = request_bytes(&check(format!("{UFRAG}:cli").as_bytes(), PASSWORD.as_bytes(), true));
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    assert_eq!(answer(&mut ice, &bytes), Err(IceError::BadFingerprint));

    // TURN Allocate (method 0x003) is not ours to answer.
    let mut bytes = handmade(&[], None);
    bytes[1] = 0x03;
    assert!(matches!(answer(&mut ice, &bytes), Err(IceError::UnsupportedMethod(_))));
    assert_eq!(ice.state(), IceState::New);
}

#[test]
fn a_response_buffer_too_small_is_an_error_and_changes_nothing() {
    let mut ice = agent();
    let bytes = request_bytes(&check(format!("{UFRAG}:cli").as_bytes(), PASSWORD.as_bytes(), true));
    let msg = StunMessage::parse(&bytes).unwrap();
    let mut out = [0u8; 30];
    let r = ice.handle_binding_request(Instant::now(), tuple(1), &msg, &mut out);
    assert!(matches!(r, Err(IceError::Response(_))));
    assert_eq!(ice.state(), IceState::New);
    assert_eq!(ice.selected_tuple(), None);
}

#[test]
fn use_candidate_switches_between_tuples() {
    let mut ice = agent();
    let t0 = Instant::now();
    let (a, b, c) = (tuple(1), tuple(2), tuple(3));
    good(&mut ice, t0, a, true);
    events(&mut ice);

    // A check on b without nomination validates b but keeps a selected.
    good(&mut ice, t0 + Duration::from_secs(1), b, false);
    assert!(ice.is_valid_tuple(&a) && ice.is_valid_tuple(&b));
    assert_eq!(ice.selected_tuple(), Some(a));
    assert_eq!(ice.poll_event(), None);

    // Nominating b switches to it.
    good(&mut ice, t0 + Duration::from_secs(2), b, true);
    assert_eq!(ice.selected_tuple(), Some(b));
    assert_eq!(events(&mut ice), [IceEvent::SelectedTupleChanged(Some(b))]);

    // And c, then back to a.
    good(&mut ice, t0 + Duration::from_secs(3), c, true);
    good(&mut ice, t0 + Duration::from_secs(4), a, true);
    assert_eq!(ice.selected_tuple(), Some(a));
    assert_eq!(ice.state(), IceState::Completed);
    assert_eq!(ice.tuples().count(), 3);
}

#[test]
fn tuples_are_bounded_and_the_oldest_unselected_is_evicted() {
    let mut ice = agent();
    let t0 = Instant::now();
    good(&mut ice, t0, tuple(0), true);
    for port in 1..MAX_TUPLES as u16 {
        good(&mut ice, t0 + Duration::from_secs(port.into()), tuple(port), false);
    }
    assert_eq!(ice.tuples().count(), MAX_TUPLES);
    // Tuple 0 is the oldest but selected; tuple 1 is the oldest unselected one.
    good(&mut ice, t0 + Duration::from_secs(20), tuple(100), false);
    assert_eq!(ice.tuples().count(), MAX_TUPLES);
    assert!(ice.is_valid_tuple(&tuple(0)));
    assert!(!ice.is_valid_tuple(&tuple(1)));
    assert!(ice.is_valid_tuple(&tuple(2)));
    assert!(ice.is_valid_tuple(&tuple(100)));
    assert_eq!(ice.selected_tuple(), Some(tuple(0)));
}

#[test]
fn consent_expires_after_30s_and_checks_bring_it_back() {
    let mut ice = agent();
    let t0 = Instant::now();
    let a = tuple(1);
    good(&mut ice, t0, a, true);
    events(&mut ice);

    // A consent refresh at 20 s pushes the deadline to 50 s.
    good(&mut ice, t0 + Duration::from_secs(20), a, false);
    assert_eq!(ice.poll_timeout(), Some(t0 + Duration::from_secs(50)));
    ice.handle_timeout(t0 + Duration::from_secs(49));
    assert!(ice.is_valid_tuple(&a));
    assert_eq!(ice.state(), IceState::Completed);

    ice.handle_timeout(t0 + Duration::from_secs(50));
    assert!(!ice.is_valid_tuple(&a));
    assert_eq!(ice.selected_tuple(), None);
    assert_eq!(ice.state(), IceState::Disconnected);
    assert_eq!(ice.poll_timeout(), None);
    assert_eq!(
        events(&mut ice),
        [IceEvent::SelectedTupleChanged(None), IceEvent::StateChanged(IceState::Disconnected)]
    );

    // Checks resume: the tuple is valid again and the state back to Completed.
    good(&mut ice, t0 + Duration::from_secs(60), a, true);
    assert_eq!(ice.state(), IceState::Completed);
    assert_eq!(ice.selected_tuple(), Some(a));
    assert_eq!(
        events(&mut ice),
        [IceEvent::SelectedTupleChanged(Some(a)), IceEvent::StateChanged(IceState::Completed)]
    );
}

#[test]
fn when_the_selected_tuple_expires_another_valid_one_takes_over() {
    let mut ice = agent();
    let t0 = Instant::now();
    let (a, b) = (tuple(1), tuple(2));
    good(&mut ice, t0, a, true);
    good(&mut ice, t0 + Duration::from_secs(10), b, false);
    events(&mut ice);

    assert_eq!(ice.poll_timeout(), Some(t0 + CONSENT_TIMEOUT));
    ice.handle_timeout(t0 + CONSENT_TIMEOUT);
    assert_eq!(ice.selected_tuple(), Some(b));
    // b was never nominated.
    assert_eq!(ice.state(), IceState::Connected);
    assert_eq!(
        events(&mut ice),
        [IceEvent::SelectedTupleChanged(Some(b)), IceEvent::StateChanged(IceState::Connected)]
    );

    ice.handle_timeout(t0 + Duration::from_secs(40));
    assert_eq!(ice.state(), IceState::Disconnected);
}

#[test]
fn restart_changes_credentials_and_keeps_the_tuples() {
    let mut ice = agent();
    let t0 = Instant::now();
    let a = tuple(1);
    good(&mut ice, t0, a, true);
    events(&mut ice);

    ice.restart("newufrag".to_string(), "new-password-abcdefghij".to_string());
    assert_eq!(ice.local_ufrag(), "newufrag");
    assert_eq!(ice.local_password(), "new-password-abcdefghij");
    assert_eq!(ice.selected_tuple(), Some(a));
    assert_eq!(ice.state(), IceState::Completed);

    // The old credentials now fail.
    let r = good(&mut ice, t0 + Duration::from_secs(1), a, true);
    assert_eq!(error_code(&r).0, 401);
    // Old ufrag with the new password, and new ufrag with the old password, fail too.
    let r = send(&mut ice, t0, a, &check(format!("{UFRAG}:cli").as_bytes(), b"new-password-abcdefghij", true));
    assert_eq!(error_code(&r).0, 401);
    let r = send(&mut ice, t0, a, &check(b"newufrag:cli", PASSWORD.as_bytes(), true));
    assert_eq!(error_code(&r).0, 401);

    // The new ones refresh consent on the kept tuple.
    let r = send(&mut ice, t0 + Duration::from_secs(25), a, &check(b"newufrag:cli", b"new-password-abcdefghij", true));
    let msg = StunMessage::parse(&r).unwrap();
    assert_eq!(msg.class(), StunClass::SuccessResponse);
    assert!(msg.verify_integrity(b"new-password-abcdefghij"));
    assert!(!msg.verify_integrity(PASSWORD.as_bytes()));
    ice.handle_timeout(t0 + Duration::from_secs(40));
    assert_eq!(ice.selected_tuple(), Some(a));
    assert_eq!(ice.poll_event(), None);
}

#[test]
fn close_forgets_everything_and_answers_nothing() {
    let mut ice = agent();
    let t0 = Instant::now();
    good(&mut ice, t0, tuple(1), true);
    events(&mut ice);
    ice.close();
    assert_eq!(events(&mut ice), [IceEvent::SelectedTupleChanged(None), IceEvent::StateChanged(IceState::Closed)]);
    let bytes = request_bytes(&check(format!("{UFRAG}:cli").as_bytes(), PASSWORD.as_bytes(), true));
    let msg = StunMessage::parse(&bytes).unwrap();
    let mut out = [0u8; 256];
    assert_eq!(ice.handle_binding_request(t0, tuple(1), &msg, &mut out), Err(IceError::Closed));
    assert!(!ice.is_valid_tuple(&tuple(1)));
    assert_eq!(ice.poll_timeout(), None);
}

/// Runs arbitrary bytes through every reader and the agent; only the absence of a panic matters,
/// plus: whatever the agent answers must itself parse.
fn exercise(bytes: &[u8]) {
    let _ = stun::is_stun(bytes);
    let Ok(msg) = StunMessage::parse(bytes) else { return };
    let _ = (msg.username(), msg.priority(), msg.error_code(), msg.xor_mapped_address(), msg.transaction_id());
    let _ = msg.verify_integrity(PASSWORD.as_bytes());
    let _ = msg.verify_fingerprint();
    let mut ice = agent();
    let mut out = [0u8; 256];
    if let Ok(n) = ice.handle_binding_request(Instant::now(), tuple(9), &msg, &mut out) {
        let answer = StunMessage::parse(&out[..n]).expect("our own response parses");
        assert!(answer.verify_fingerprint());
    }
}

fn valid_request() -> Vec<u8> {
    request_bytes(&check(format!("{UFRAG}:cli").as_bytes(), PASSWORD.as_bytes(), true))
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        exercise(&bytes);
    }

    #[test]
    fn random_bytes_behind_a_valid_header_never_panic(body in proptest::collection::vec(any::<u8>(), 0..50)) {
        // Keep the header plausible so the attribute walk is reached.
        let len = body.len().next_multiple_of(4);
        let mut bytes = vec![0x00, 0x01, (len >> 8) as u8, len as u8, 0x21, 0x12, 0xa4, 0x42];
        bytes.extend_from_slice(&[1; 12]);
        bytes.extend_from_slice(&body);
        bytes.resize(20 + len, 0);
        exercise(&bytes);
    }

    #[test]
    fn truncations_never_panic(cut in 0usize..200) {
        let bytes = valid_request();
        let cut = cut.min(bytes.len());
        exercise(&bytes[..cut]);
    }

    #[test]
    fn mutations_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut bytes = valid_request();
        let len = bytes.len();
        for (at, value) in flips {
            bytes[at % len] = value;
        }
        exercise(&bytes);
    }
}

#[test]
fn a_mutated_byte_never_authenticates() {
    // Every single-byte change of what MESSAGE-INTEGRITY covers, or of the FINGERPRINT value,
    // must be refused: parse, fingerprint or integrity fails. (Changing the FINGERPRINT attribute
    // *type* legitimately turns it into an ignored attribute after MESSAGE-INTEGRITY.)
    let bytes = valid_request();
    let fingerprint_at = bytes.len() - 8;
    for i in (0..fingerprint_at).chain(fingerprint_at + 4..bytes.len()) {
        let mut m = bytes.clone();
        m[i] ^= 0x01;
        let Ok(msg) = StunMessage::parse(&m) else { continue };
        let mut ice = agent();
        let mut out = [0u8; 256];
        let accepted = match ice.handle_binding_request(Instant::now(), tuple(1), &msg, &mut out) {
            Ok(n) => StunMessage::parse(&out[..n]).unwrap().class() == StunClass::SuccessResponse,
            Err(_) => false,
        };
        assert!(!accepted, "byte {i} flipped and still accepted");
    }
}
