//! Errors of starting and driving the server from Rust (not HTTP errors; see [`crate::status`]).

/// What went wrong when starting, seeding or connecting to the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory could not be opened or read.
    #[error(transparent)]
    DataDir(#[from] crate::persist::DataDirError),
    /// The server could not listen on the port asked for.
    #[error("failed to bind 127.0.0.1:{port}: {source}; pick another port or use 0 for a free one")]
    Bind {
        /// The port asked for.
        port: u16,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// No kube client could be built for the server.
    #[error("failed to build a kube client for {url}: {message}")]
    Client {
        /// The server's URL.
        url: String,
        /// What kube said.
        message: String,
    },
    /// The kubeconfig of an external cluster could not be read.
    #[error("failed to read the kubeconfig {path}: {message}; check KUBEFORGE_TEST_KUBECONFIG")]
    Kubeconfig {
        /// The kubeconfig file.
        path: String,
        /// Why it could not be read.
        message: String,
    },
    /// A seed object's kind is not served.
    #[error(
        "no resource with apiVersion {api_version:?} and kind {kind:?} is served; create its CRD first"
    )]
    UnknownKind {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
    /// A seed object was refused.
    #[error("failed to seed object #{index}: {message}")]
    Seed {
        /// Its position in the seed list.
        index: usize,
        /// The server's message.
        message: String,
    },
}
