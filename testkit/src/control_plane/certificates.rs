//! The control plane's credentials: a fresh CA, kube-apiserver's serving certificate signed by
//! it, the service-account signing key pair, and the static token file holding the
//! `system:masters` admin. Written into the plane's temp dir by the boot sequence (`boot`),
//! which passes the paths to kube-apiserver and puts the CA and token into the kubeconfig.

use std::fs;
use std::path::{Path, PathBuf};

use super::{ADMIN_USER, Result, io_err};

/// The files written by [`write_certificates`], and the admin's bearer token.
pub(super) struct Certificates {
    pub(super) ca_cert: PathBuf,
    pub(super) serving_cert: PathBuf,
    pub(super) serving_key: PathBuf,
    pub(super) sa_key: PathBuf,
    pub(super) sa_public_key: PathBuf,
    pub(super) token_file: PathBuf,
    pub(super) token: String,
}

/// A fresh CA, a serving certificate for 127.0.0.1/localhost signed by it, a service-account
/// signing key, and a static token file with one `system:masters` admin.
pub(super) fn write_certificates(dir: &Path) -> Result<Certificates> {
    let write = |name: &str, contents: &str| -> Result<PathBuf> {
        let path = dir.join(name);
        fs::write(&path, contents).map_err(io_err(format!("writing {}", path.display())))?;
        Ok(path)
    };

    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kubeforge-testkit-ca");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let serving_key = rcgen::KeyPair::generate()?;
    let mut serving_params = rcgen::CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
    ])?;
    serving_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-apiserver");
    serving_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let serving_cert = serving_params.signed_by(&serving_key, &issuer)?;

    let sa_key = rcgen::KeyPair::generate()?;
    let token = uuid::Uuid::new_v4().simple().to_string();

    Ok(Certificates {
        ca_cert: write("ca.crt", &ca_cert.pem())?,
        serving_cert: write("apiserver.crt", &serving_cert.pem())?,
        serving_key: write("apiserver.key", &serving_key.serialize_pem())?,
        sa_key: write("sa.key", &sa_key.serialize_pem())?,
        sa_public_key: write("sa.pub", &sa_key.public_key_pem())?,
        token_file: write(
            "tokens.csv",
            &format!("{token},{ADMIN_USER},{ADMIN_USER},\"system:masters\"\n"),
        )?,
        token,
    })
}
