//! The local node's error type: every variant names what was being done and, where there is one, how
//! to fix it, because these errors surface in test output far from the code that caused them.

use std::io;

use ipnet::Ipv4Net;

/// Errors from creating, changing or probing a [`LocalNode`](super::LocalNode) or
/// [`ExternalHost`](super::ExternalHost).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// An `ip` / `nft` command ran but failed.
    #[error("{what}: `{command}` failed ({status}): {stderr}{hint}")]
    Command {
        /// What the command was for, e.g. "creating network namespace kf1a2n3".
        what: String,
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// Its standard error, trimmed.
        stderr: String,
        /// A hint on how to fix it (may be empty), starting with " — ".
        hint: &'static str,
    },
    /// A program could not be started at all (usually: not installed).
    #[error(
        "{what}: could not run `{program}` ({source}); install it (Debian: apt-get install {package})"
    )]
    Spawn {
        /// What the command was for.
        what: String,
        /// The program, e.g. "ip".
        program: String,
        /// The Debian package providing it.
        package: &'static str,
        /// Why it could not be started.
        source: io::Error,
    },
    /// Some other I/O failed (sysctl files, sockets, entering a namespace).
    #[error("{what}: {source}{hint}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: io::Error,
        /// A hint on how to fix it (may be empty), starting with " — ".
        hint: &'static str,
    },
    /// Every address of the pod CIDR is taken.
    #[error(
        "adding pod {pod}: pod CIDR {cidr} has no free address left; create the node with a larger CIDR"
    )]
    CidrExhausted {
        /// The node's pod CIDR.
        cidr: Ipv4Net,
        /// The pod, as namespace/name.
        pod: String,
    },
    /// The pod CIDR cannot hold the bridge address plus one pod.
    #[error("pod CIDR {0} is too small: it needs at least a /30 (bridge address + one pod)")]
    CidrTooSmall(Ipv4Net),
    /// No free /24 was found for an automatically addressed node or external host.
    #[error(
        "no free /24 for {purpose} in {range}: all candidates overlap routes or addresses on this host; remove leftovers of killed test runs (LocalNode::sweep_stale) or pass a CIDR explicitly"
    )]
    NoFreeCidr {
        /// What the network was for.
        purpose: &'static str,
        /// The range searched, e.g. "10.244.1-254.0/24".
        range: &'static str,
    },
    /// A pod with this namespace/name is already on the node.
    #[error("pod {pod} already exists on node {node}")]
    PodExists {
        /// The pod, as namespace/name.
        pod: String,
        /// The node's name.
        node: String,
    },
    /// No pod with this namespace/name is on the node.
    #[error("pod {pod} is not on node {node}")]
    UnknownPod {
        /// The pod, as namespace/name.
        pod: String,
        /// The node's name.
        node: String,
    },
    /// The node was torn down: nothing more may be added to it (it would never be removed).
    #[error("adding pod {pod}: node {node} was already torn down")]
    TornDown {
        /// The pod, as namespace/name.
        pod: String,
        /// The node's name.
        node: String,
    },
    /// The API server refused or failed a request of the node's [`Kubelet`](super::Kubelet).
    #[error("{what}: {source}")]
    Api {
        /// What the kubelet was doing.
        what: String,
        /// The client's error.
        source: Box<kube::Error>,
    },
    /// A thread running a probe inside a namespace panicked.
    #[error("the probe thread in {place} panicked")]
    ProbePanicked {
        /// Where the probe ran (network namespace name or "the host").
        place: String,
    },
}

/// Results of this module.
pub type Result<T, E = NodeError> = std::result::Result<T, E>;
