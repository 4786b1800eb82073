//! The server certificate: PEM files given by the operator, or one generated for LAN trials.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS {what} {path}: {source}")]
    Read { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("TLS certificate {path} holds no PEM certificate: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
    #[error("TLS key {path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("TLS certificate {cert} and key {key} cannot be used together: {source}")]
    Mismatch { cert: PathBuf, key: PathBuf, source: rustls::Error },
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A ready server configuration and the certificate it presents.
pub struct Tls {
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the leaf certificate, colon-separated hex (what browsers show and pin).
    pub fingerprint: String,
    pub leaf: CertificateDer<'static>,
}

impl Tls {
    /// The certificate chain and key from PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let cert_pem = read(cert, "certificate")?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::BadCertificate { path: cert.to_owned(), reason: e.to_string() })?;
        if chain.is_empty() {
            return Err(TlsError::BadCertificate { path: cert.to_owned(), reason: "no CERTIFICATE section".into() });
        }
        let key_pem = read(key, "key")?;
        let private_key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| TlsError::BadKey { path: key.to_owned(), reason: e.to_string() })?;
        Tls::new(chain, private_key).map_err(|source| TlsError::Mismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
            source,
        })
    }

    /// A fresh self-signed certificate for localhost, 127.0.0.1, ::1 and the listen address.
    pub fn self_signed(listen: SocketAddr) -> Result<Tls, TlsError> {
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
        // 0.0.0.0 names no host: clients on the LAN reach it by an address the certificate cannot
        // know, and accept it by its fingerprint instead.
        if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
            names.push(listen.ip().to_string());
        }
        let generated = rcgen::generate_simple_self_signed(names)?;
        let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
            .map_err(|e| TlsError::Rustls(rustls::Error::General(format!("generated key: {e}"))))?;
        Ok(Tls::new(vec![generated.cert.der().clone()], key)?)
    }

    fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<Tls, rustls::Error> {
        let leaf = chain[0].clone();
        let fingerprint = fingerprint(&leaf);
        // ring, explicitly: another crate of the build may also enable aws-lc-rs, and rustls refuses
        // to guess a process-wide default when both are there.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        // axum serves HTTP/1.1 only (WebSockets upgrade from it).
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls { config: Arc::new(config), fingerprint, leaf })
    }
}

/// SHA-256 of a DER certificate as `AB:CD:…`.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { what, path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("octo-tls-unit-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn pem_files_load_and_the_fingerprint_is_of_the_leaf() {
        let dir = temp_dir("ok");
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(dir.join("cert.pem"), generated.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), generated.signing_key.serialize_pem()).unwrap();
        let tls = Tls::from_pem_files(&dir.join("cert.pem"), &dir.join("key.pem")).unwrap();
        assert_eq!(tls.fingerprint, fingerprint(generated.cert.der()));
        assert_eq!(tls.fingerprint.len(), 32 * 3 - 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn each_bad_input_names_its_file() {
        let dir = temp_dir("bad");
        let a = rcgen::generate_simple_self_signed(vec!["a".to_owned()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b".to_owned()]).unwrap();
        let (cert, key, other_key, junk) =
            (dir.join("cert.pem"), dir.join("key.pem"), dir.join("other.pem"), dir.join("junk.pem"));
        std::fs::write(&cert, a.cert.pem()).unwrap();
        std::fs::write(&key, a.signing_key.serialize_pem()).unwrap();
        std::fs::write(&other_key, b.signing_key.serialize_pem()).unwrap();
        std::fs::write(&junk, "not pem at all\n").unwrap();
        let missing = dir.join("missing.pem");

        let err = |c: &Path, k: &Path| Tls::from_pem_files(c, k).err().expect("must fail").to_string();
        let e = err(&missing, &key);
        assert!(e.contains("cannot read TLS certificate") && e.contains("missing.pem"), "{e}");
        let e = err(&cert, &missing);
        assert!(e.contains("cannot read TLS key") && e.contains("missing.pem"), "{e}");
        let e = err(&junk, &key);
        assert!(e.contains("no PEM certificate") && e.contains("junk.pem"), "{e}");
        let e = err(&cert, &junk);
        assert!(e.contains("no PEM private key") && e.contains("junk.pem"), "{e}");
        // A key file given as the certificate holds no certificate.
        let e = err(&key, &key);
        assert!(e.contains("no PEM certificate"), "{e}");
        let e = err(&cert, &other_key);
        assert!(e.contains("cannot be used together") && e.contains("other.pem"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn self_signed_names_the_listen_address() {
        // An IP subjectAltName is the address's bytes as an OCTET STRING ([7] 04 c0 00 02 0a).
        let names_ip = |tls: &Tls, ip: [u8; 4]| tls.leaf.windows(6).any(|w| w == [0x87, 4, ip[0], ip[1], ip[2], ip[3]]);
        let tls = Tls::self_signed("192.0.2.10:443".parse().unwrap()).unwrap();
        assert!(names_ip(&tls, [192, 0, 2, 10]) && names_ip(&tls, [127, 0, 0, 1]));
        assert_eq!(tls.fingerprint, fingerprint(&tls.leaf));
        let any = Tls::self_signed("0.0.0.0:3000".parse().unwrap()).unwrap();
        assert!(!names_ip(&any, [0, 0, 0, 0]) && names_ip(&any, [127, 0, 0, 1]));
    }
}
