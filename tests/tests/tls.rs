//! HTTPS and WSS on `octo`'s listener: the web client and Socket.IO signaling with a test
//! certificate (a rustls client here, the npm socket.io-client in `tests/node/tls.test.mjs`),
//! `--self-signed`, and clear startup errors for bad certificate settings.
//!
//! The signaling test needs Node 20+ and `npm ci --prefix tests/node`, like tests/tests/signaling.rs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use octo_tests::tls::{TestCertificate, client_recording, client_trusting, https_get};
use octo_tests::*;

#[test]
fn https_serves_the_web_client_and_signaling_with_a_test_certificate() {
    let cert = TestCertificate::generate("serve", &["localhost", "127.0.0.1"]).unwrap();
    let octo = Octo::start(&[
        "--workers",
        "1",
        "--tls-cert",
        cert.cert.to_str().unwrap(),
        "--tls-key",
        cert.key.to_str().unwrap(),
    ])
    .unwrap();
    assert!(octo.https, "the listener does not announce https");
    let trusting = client_trusting(std::slice::from_ref(&cert.der)).unwrap();

    let (status, page) = https_get(trusting.clone(), octo.addr, "localhost", "/").unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("<title>Octo</title>"), "{page}");
    let (status, ready) = https_get(trusting.clone(), octo.addr, "127.0.0.1", "/readyz").unwrap();
    assert_eq!((status, ready.contains("\"ready\"")), (200, true), "{ready}");
    // The certificate octo logs is the one it serves.
    let fingerprint = octo_controller::tls::fingerprint(&cert.der);
    assert_eq!(octo.log_lines(&fingerprint).len(), 1, "fingerprint {fingerprint} not logged");

    // A client that trusts another certificate refuses this server; plain HTTP gets no page.
    let other = TestCertificate::generate("other", &["localhost"]).unwrap();
    let stranger = client_trusting(std::slice::from_ref(&other.der)).unwrap();
    let refused = https_get(stranger, octo.addr, "localhost", "/").unwrap_err().to_string();
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");
    assert!(http_get(octo.addr, "/healthz").is_err(), "plain HTTP answered on the TLS listener");

    let node_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
    assert!(
        node_dir.join("node_modules/socket.io-client").is_dir(),
        "{}/node_modules is missing: run `npm ci --prefix tests/node` (needs Node 20+)",
        node_dir.display()
    );
    let env = [("OCTO_URL", octo.url().into()), ("OCTO_CA", cert.cert.clone().into_os_string())];
    node::run_node_test(&node_dir, "tls.test.mjs", &env, Duration::from_secs(60));
    // Still serving after clients that gave up on the certificate.
    assert_eq!(https_get(trusting, octo.addr, "localhost", "/healthz").unwrap().0, 200);
}

#[test]
fn self_signed_serves_https_for_localhost_and_127_0_0_1_with_the_logged_fingerprint() {
    let octo = Octo::start(&["--workers", "1", "--self-signed"]).unwrap();
    assert!(octo.https);
    let (recording, seen) = client_recording().unwrap();
    let (status, _) = https_get(recording, octo.addr, "localhost", "/healthz").unwrap();
    assert_eq!(status, 200);
    let served = seen.lock().unwrap().clone().expect("no certificate presented");
    let fingerprint = octo_controller::tls::fingerprint(&served);
    let logged = octo.log_lines("self-signed certificate SHA-256 fingerprint");
    assert!(logged.len() == 1 && logged[0].contains(&fingerprint), "{logged:?} vs {fingerprint}");
    // Trusting that certificate, both names verify.
    let trusting = client_trusting(&[served]).unwrap();
    for name in ["localhost", "127.0.0.1"] {
        let (status, page) = https_get(trusting.clone(), octo.addr, name, "/").unwrap();
        assert!(status == 200 && page.contains("<title>Octo</title>"), "{name}: {status}");
    }
}

/// Runs `octo ARGS` (expected to fail before listening) and returns its stderr.
fn failing_start(args: &[&str]) -> String {
    let out = Command::new(bin("octo"))
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", "", "--workers", "1"])
        .args(args)
        .env_remove("OCTO_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "octo {args:?} started: {stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
    stderr
}

#[test]
fn bad_certificate_settings_fail_at_startup_naming_the_file() {
    let cert = TestCertificate::generate("bad", &["localhost"]).unwrap();
    let (cert_path, key_path) = (cert.cert.to_str().unwrap(), cert.key.to_str().unwrap());
    let missing = "/nonexistent/octo-cert.pem";

    let err = failing_start(&["--tls-cert", missing, "--tls-key", key_path]);
    assert!(err.contains(missing) && err.contains("cannot read TLS certificate"), "{err}");
    // The same check under --check-config.
    let err = failing_start(&["--check-config", "--tls-cert", missing, "--tls-key", key_path]);
    assert!(err.contains(missing), "{err}");
    // The key file as the certificate, and the certificate as the key.
    let err = failing_start(&["--tls-cert", key_path, "--tls-key", key_path]);
    assert!(err.contains(key_path) && err.contains("no PEM certificate"), "{err}");
    let err = failing_start(&["--tls-cert", cert_path, "--tls-key", cert_path]);
    assert!(err.contains(cert_path) && err.contains("no PEM private key"), "{err}");
    // One without the other, and both kinds of certificate at once.
    let err = failing_start(&["--tls-cert", cert_path]);
    assert!(err.contains("--tls-key"), "{err}");
    let err = failing_start(&["--tls-key", key_path]);
    assert!(err.contains("--tls-cert"), "{err}");
    let err = failing_start(&["--self-signed", "--tls-cert", cert_path, "--tls-key", key_path]);
    assert!(err.contains("exclude each other"), "{err}");
}
