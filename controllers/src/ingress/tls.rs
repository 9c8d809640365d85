//! TLS for the Ingress proxy: turning a `kubernetes.io/tls` Secret's PEM into a rustls
//! [`CertifiedKey`], and choosing the certificate for a handshake by its SNI name from the
//! routing table in force when the handshake starts, so a renewed or newly added certificate is
//! served as soon as the table holding it is installed, without a restart.
//!
//! Compared with ingress-nginx this leaves out: a default ("fake") certificate for clients that
//! send no SNI name or an unknown one — such handshakes fail here; checking that a certificate
//! actually covers the hosts it is listed for (ingress-nginx only warns); client-certificate
//! authentication; OCSP stapling; per-Ingress TLS protocol and cipher settings.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::routes::RouteTable;

/// The Secret key holding the PEM certificate chain, leaf first.
pub const CERT_KEY: &str = "tls.crt";
/// The Secret key holding the PEM private key.
pub const PRIVATE_KEY_KEY: &str = "tls.key";

/// Why a Secret's certificate and key cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// `tls.crt` is not PEM or holds no certificate.
    #[error("{CERT_KEY} holds no PEM certificate{}", detail(.0))]
    NoCertificate(String),
    /// `tls.key` is not a PEM private key.
    #[error("{PRIVATE_KEY_KEY} is not a PEM private key: {0}")]
    BadKey(String),
    /// The key is of a type ring cannot sign with.
    #[error("{PRIVATE_KEY_KEY} is a key type that cannot be used: {0}")]
    UnsupportedKey(String),
    /// The key is not the certificate's.
    #[error("{PRIVATE_KEY_KEY} does not belong to the certificate in {CERT_KEY}: {0}")]
    KeyMismatch(String),
}

fn detail(why: &str) -> String {
    if why.is_empty() {
        String::new()
    } else {
        format!(": {why}")
    }
}

/// Parses a PEM certificate chain and private key (a `kubernetes.io/tls` Secret's `tls.crt` and
/// `tls.key`) into a key rustls can serve, checking that the key belongs to the leaf
/// certificate so a mismatched Secret is reported rather than failing every handshake.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, CertificateError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertificateError::NoCertificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(CertificateError::NoCertificate(String::new()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| CertificateError::BadKey(e.to_string()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| CertificateError::UnsupportedKey(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signer);
    certified
        .keys_match()
        .map_err(|e| CertificateError::KeyMismatch(e.to_string()))?;
    Ok(certified)
}

/// Picks the certificate for a handshake from the routing table current at that moment: the
/// SNI name's exact entry, else the wildcard entry one label up. No SNI name, or a name with no
/// certificate, gives no certificate and the handshake fails (see the module docs).
#[derive(Debug)]
pub struct SniResolver {
    table: Arc<ArcSwap<RouteTable>>,
}

impl SniResolver {
    /// A resolver reading whichever table `table` holds at each handshake.
    pub fn new(table: Arc<ArcSwap<RouteTable>>) -> Self {
        Self { table }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name() else {
            tracing::debug!("TLS handshake without SNI: no default certificate");
            return None;
        };
        let found = self.table.load().certificate_for(name);
        if found.is_none() {
            tracing::debug!(sni = name, "TLS handshake for a host with no certificate");
        }
        found
    }
}

/// The rustls server configuration for the HTTPS listener: certificates from `resolver`, ring
/// as the crypto provider (as the project's webhook server and kube client), HTTP/2 and
/// HTTP/1.1 offered by ALPN.
pub fn server_config(resolver: Arc<SniResolver>) -> Result<rustls::ServerConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn parses_a_matching_pair_and_rejects_broken_ones() {
        let (cert, key) = pair(&["a.example.com"]);
        let (_, other_key) = pair(&["b.example.com"]);
        assert!(certified_key(cert.as_bytes(), key.as_bytes()).is_ok());
        type Case<'a> = (&'a str, &'a [u8], &'a [u8], fn(&CertificateError) -> bool);
        let cases: [Case<'_>; 4] = [
            ("empty cert", b"", key.as_bytes(), |e| {
                matches!(e, CertificateError::NoCertificate(_))
            }),
            ("garbage key", cert.as_bytes(), b"not a key", |e| {
                matches!(e, CertificateError::BadKey(_))
            }),
            (
                "key of another cert",
                cert.as_bytes(),
                other_key.as_bytes(),
                |e| matches!(e, CertificateError::KeyMismatch(_)),
            ),
            (
                "key where cert should be",
                key.as_bytes(),
                key.as_bytes(),
                |e| matches!(e, CertificateError::NoCertificate(_)),
            ),
        ];
        for (name, cert, key, expected) in cases {
            let err = certified_key(cert, key).err();
            assert!(err.as_ref().is_some_and(expected), "{name}: got {err:?}");
        }
    }

    #[test]
    fn errors_name_the_secret_key_at_fault() {
        let (cert, _) = pair(&["a.example.com"]);
        let err = certified_key(cert.as_bytes(), b"").unwrap_err();
        assert!(err.to_string().starts_with("tls.key"), "{err}");
        let err = certified_key(b"", b"").unwrap_err();
        assert_eq!(err.to_string(), "tls.crt holds no PEM certificate");
    }
}
