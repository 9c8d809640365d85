//! Calling a webhook (admission or conversion) as kube-apiserver does: a JSON review POSTed over
//! HTTPS to `clientConfig.url`, trusting only `caBundle`, within the webhook's timeout; the
//! errors worded as kube-apiserver words them (`failed to call webhook: Post "<url>": …`).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use serde_json::Value;

/// POSTs `review` to `url` over HTTPS, trusting `ca_pem`: the review the webhook answered.
/// `url` is `None` for a Service reference, which the embedded server cannot reach.
pub(crate) async fn post(
    url: Option<&str>,
    ca_pem: Option<&[u8]>,
    timeout: Duration,
    review: &Value,
) -> Result<Value, String> {
    let Some(url) = url else {
        return Err(
            "the webhook is a Service reference, which the embedded server cannot reach (it has no cluster network); use clientConfig.url"
                .to_owned(),
        );
    };
    let call = async {
        let uri: http::Uri = url.parse().map_err(|e| format!("bad url {url:?}: {e}"))?;
        if uri.scheme_str() != Some("https") {
            return Err(format!("{url}: webhooks are called over https only"));
        }
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| {
                format!("failed to call webhook: Post \"{url}\": dial tcp {host}:{port}: {e}")
            })?;
        let tls = tls_connector(ca_pem)?;
        let server_name =
            rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let stream = tls
            .connect(server_name, tcp)
            .await
            .map_err(|e| format!("failed to call webhook: Post \"{url}\": tls: {e}"))?;
        let (mut send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let request = http::Request::post(path)
            .header(http::header::HOST, format!("{host}:{port}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(bytes::Bytes::from(review.to_string())))
            .map_err(|e| e.to_string())?;
        let response = send
            .send_request(request)
            .await
            .map_err(|e| format!("failed to call webhook: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!(
                "failed to call webhook: the server responded with the status code {}: {}",
                status.as_u16(),
                String::from_utf8_lossy(&body)
            ));
        }
        serde_json::from_slice(&body).map_err(|e| format!("received invalid webhook response: {e}"))
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| format!("failed to call webhook: Post \"{url}\": context deadline exceeded"))?
}

fn tls_connector(ca_pem: Option<&[u8]>) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.unwrap_or_default()) {
        roots
            .add(cert.map_err(|e| format!("the caBundle is not PEM: {e}"))?)
            .map_err(|e| format!("the caBundle holds a bad certificate: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}
