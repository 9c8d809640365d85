//! Errors of starting and driving the server from Rust (not HTTP errors; see [`crate::status`]).

/// What went wrong when starting, seeding or connecting to the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to bind 127.0.0.1:{port}: {source}; pick another port or use 0 for a free one")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to build a kube client for {url}: {message}")]
    Client { url: String, message: String },
    #[error("failed to read the kubeconfig {path}: {message}; check KUBEFORGE_TEST_KUBECONFIG")]
    Kubeconfig { path: String, message: String },
    #[error(
        "no resource with apiVersion {api_version:?} and kind {kind:?} is served; create its CRD first"
    )]
    UnknownKind { api_version: String, kind: String },
    #[error("failed to seed object #{index}: {message}")]
    Seed { index: usize, message: String },
}
