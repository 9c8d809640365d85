//! Development certificates: a fresh CA and a serving certificate signed by it, written where the
//! webhook server reads them, for local runs and tests. In a cluster cert-manager issues them
//! (the generated manifests ask it to) and injects the CA into the webhook configurations.

use std::path::{Path, PathBuf};

use super::WebhookError;
use super::tls::{CERT_FILE, KEY_FILE};

/// A CA that signs webhook serving certificates. Keep it to [rotate](Self::issue) the serving
/// certificate under the same `caBundle`, as cert-manager does.
pub struct DevCertificates {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_pem: String,
}

impl std::fmt::Debug for DevCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCertificates").finish_non_exhaustive()
    }
}

fn rcgen_error(e: rcgen::Error) -> WebhookError {
    WebhookError::Tls(format!("generating a development certificate: {e}"))
}

impl DevCertificates {
    /// A fresh CA.
    pub fn new() -> Result<Self, WebhookError> {
        let key = rcgen::KeyPair::generate().map_err(rcgen_error)?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(rcgen_error)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kubeforge-webhook-dev-ca");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca = params.self_signed(&key).map_err(rcgen_error)?;
        Ok(Self {
            ca_pem: ca.pem(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// The CA certificate (PEM): the `caBundle` of webhook configurations and CRD conversions.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes a new serving certificate for `hosts` (DNS names or IP addresses, e.g.
    /// `127.0.0.1`, `my-webhook.my-ns.svc`) and its key into `dir` as `tls.crt` / `tls.key`,
    /// replacing any there (a running server picks them up). Each file is written whole, then
    /// renamed into place.
    pub fn issue(&self, dir: &Path, hosts: &[&str]) -> Result<(), WebhookError> {
        let key = rcgen::KeyPair::generate().map_err(rcgen_error)?;
        let names: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).map_err(rcgen_error)?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            hosts.first().copied().unwrap_or("webhook"),
        );
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).map_err(rcgen_error)?;
        std::fs::create_dir_all(dir).map_err(|source| WebhookError::CertFile {
            path: dir.to_owned(),
            source,
        })?;
        write_atomically(&dir.join(KEY_FILE), &key.serialize_pem())?;
        write_atomically(&dir.join(CERT_FILE), &cert.pem())
    }
}

fn write_atomically(path: &PathBuf, contents: &str) -> Result<(), WebhookError> {
    let staged = path.with_extension("new");
    std::fs::write(&staged, contents)
        .and_then(|()| std::fs::rename(&staged, path))
        .map_err(|source| WebhookError::CertFile {
            path: path.clone(),
            source,
        })
}
