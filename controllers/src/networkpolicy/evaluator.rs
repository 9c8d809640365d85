//! A pure evaluator of `networking.k8s.io/v1` NetworkPolicies: given the policies, the
//! Namespaces' labels and two endpoints, says whether a connection from one to the other on a
//! port is allowed, with the documented semantics.
//!
//! - A Pod is isolated for ingress (egress) when some policy in its Namespace selects it and has
//!   `Ingress` (`Egress`) among its effective `policyTypes`. Unset `policyTypes` means `Ingress`,
//!   plus `Egress` when the policy has at least one egress rule.
//! - A connection is allowed iff the source's egress allows it and the destination's ingress
//!   allows it. A side allows it when its Pod is not isolated in that direction, or when some rule
//!   of some policy selecting it matches (policies are additive). External endpoints are never
//!   isolated: policies apply to Pods only.
//! - A rule matches when one of its peers matches the remote end (no peers = every peer) and one
//!   of its ports matches (no ports = every port). `ingress: []` allows nothing.
//! - Peers: `podSelector` alone selects Pods in the policy's Namespace; `namespaceSelector` alone
//!   selects every Pod in the matching Namespaces; both in one peer select the Pods matching both
//!   (AND); `ipBlock` matches an address inside `cidr` and outside every `except`.
//! - Ports: a number, a number range (`port..=endPort`), or a named port resolved against the
//!   *destination* Pod's named container ports with the same protocol (a destination without that
//!   name, or an external destination, matches nothing). The protocol defaults to TCP.
//!
//! Decisions:
//! - `ipBlock` is matched by address for Pod peers too. Upstream says `ipBlock` is meant for
//!   cluster-external addresses and leaves matching Pod IPs to implementations; common ones (and
//!   the nftables compiler next door, which only sees addresses) match Pod IPs.
//! - Construction is strict: input the API server's validation would reject (a CIDR that doesn't
//!   parse, an `except` outside its `cidr`, `endPort` below `port` or beside a named port, an
//!   unknown protocol, policy type or selector operator, a peer with no or conflicting selectors)
//!   is a [`PolicyError`] naming the policy and field. Skipping only the bad rule was rejected:
//!   dropping one peer of a rule silently widens it, and such objects can't pass validation.
//!
//! Left out: the answer is about the connection's initiating direction only — replies of an
//! allowed connection are allowed by the enforcement (conntrack), not modelled here. Traffic from
//! a Pod's own node (always allowed for ingress), host-network Pods, Services (evaluate against
//! the backend Pod after DNAT), Pods with several IPs, and the `AdminNetworkPolicy` API.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Labels of an object: key to value.
pub type Labels = BTreeMap<String, String>;

/// A transport protocol a NetworkPolicy port can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// `TCP`, the default when a port names no protocol.
    Tcp,
    /// `UDP`.
    Udp,
    /// `SCTP`.
    Sctp,
}

impl Protocol {
    /// Every protocol, in the order rules are emitted.
    pub const ALL: [Protocol; 3] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp];

    /// Parses the API's spelling (`TCP`, `UDP`, `SCTP`; case-sensitive, as validation is).
    pub fn from_api(name: &str) -> Option<Protocol> {
        match name {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// A named container port of a Pod, which policies may refer to by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedPort {
    /// The container port's `name`.
    pub name: String,
    /// The container port's number.
    pub port: u16,
    /// The container port's protocol.
    pub protocol: Protocol,
}

/// What the evaluator needs to know about a Pod: where it lives, its labels (for selectors), its
/// IP (for `ipBlock`) and its named ports (for named policy ports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodInfo {
    /// The Pod's Namespace.
    pub namespace: String,
    /// The Pod's name.
    pub name: String,
    /// The Pod's labels.
    pub labels: Labels,
    /// The Pod's IP (`status.podIP`).
    pub ip: IpAddr,
    /// The Pod's named container ports.
    pub ports: Vec<NamedPort>,
}

/// One end of a connection: a Pod, or an address outside the cluster's Pods.
#[derive(Clone, Copy, Debug)]
pub enum Peer<'a> {
    /// A Pod, subject to policies and matched by selectors and `ipBlock`.
    Pod(&'a PodInfo),
    /// Anything else (node, external host): never isolated, matched by `ipBlock` only.
    External(IpAddr),
}

impl Peer<'_> {
    /// The peer's address.
    pub fn ip(&self) -> IpAddr {
        match self {
            Peer::Pod(pod) => pod.ip,
            Peer::External(ip) => *ip,
        }
    }
}

/// Which side of a connection a policy part governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Connections into the selected Pods.
    Ingress,
    /// Connections out of the selected Pods.
    Egress,
}

/// A policy the API server would have rejected: which one, which field, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("NetworkPolicy {namespace}/{name}: {field}: {message}")]
pub struct PolicyError {
    /// The policy's Namespace.
    pub namespace: String,
    /// The policy's name.
    pub name: String,
    /// The offending field's path, e.g. `spec.ingress[0].from[1].ipBlock.except[0]`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// One `matchExpressions` requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A compiled `metav1.LabelSelector`: all `matchLabels` and all requirements must hold; the
/// empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    labels: Labels,
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Whether `labels` satisfy the selector.
    pub fn matches(&self, labels: &Labels) -> bool {
        let labels_hold = self.labels.iter().all(|(k, v)| labels.get(k) == Some(v));
        labels_hold
            && self.requirements.iter().all(|req| match req {
                Requirement::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
                Requirement::NotIn(key, values) => {
                    labels.get(key).is_none_or(|v| !values.contains(v))
                }
                Requirement::Exists(key) => labels.contains_key(key),
                Requirement::DoesNotExist(key) => !labels.contains_key(key),
            })
    }
}

/// An `ipBlock`: addresses inside `cidr` and outside every `except`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpBlock {
    /// The block (host bits cleared).
    pub cidr: IpNet,
    /// Sub-blocks carved out of it, sorted.
    pub except: Vec<IpNet>,
}

impl IpBlock {
    /// Whether `ip` is in the block and in none of its exceptions.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.cidr.contains(&ip) && !self.except.iter().any(|net| net.contains(&ip))
    }
}

/// Which Namespaces a Pod-selecting peer looks in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamespaceScope {
    /// Only the policy's own Namespace (a peer with `podSelector` alone).
    Own(String),
    /// Namespaces whose labels match (a peer with `namespaceSelector`).
    Selected(Selector),
}

/// One compiled `NetworkPolicyPeer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerMatcher {
    /// Pods matching `pods` in Namespaces within `namespaces`.
    Pods {
        /// Where the Pods may live.
        namespaces: NamespaceScope,
        /// Which Pods there (empty = all).
        pods: Selector,
    },
    /// Addresses in an `ipBlock`.
    Block(IpBlock),
}

/// One compiled `NetworkPolicyPort`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortMatcher {
    /// Ports `first..=last` of `protocol` (`0..=65535` when the port was omitted).
    Range {
        /// The protocol.
        protocol: Protocol,
        /// The lowest port matched.
        first: u16,
        /// The highest port matched.
        last: u16,
    },
    /// The destination Pod's container port called `name` with `protocol`.
    Named {
        /// The protocol the container port must have.
        protocol: Protocol,
        /// The container port's name.
        name: String,
    },
}

impl PortMatcher {
    /// Whether a connection to `port`/`protocol` at `destination` matches.
    pub fn matches(&self, destination: &Peer, port: u16, protocol: Protocol) -> bool {
        match self {
            PortMatcher::Range {
                protocol: p,
                first,
                last,
            } => *p == protocol && (*first..=*last).contains(&port),
            PortMatcher::Named { protocol: p, name } => {
                *p == protocol && resolve_named_port(destination, name, *p) == Some(port)
            }
        }
    }
}

/// The number of the container port `name`/`protocol` on `destination`, if it is a Pod that
/// defines one; external destinations have no named ports.
pub fn resolve_named_port(destination: &Peer, name: &str, protocol: Protocol) -> Option<u16> {
    match destination {
        Peer::Pod(pod) => pod
            .ports
            .iter()
            .find(|p| p.name == name && p.protocol == protocol)
            .map(|p| p.port),
        Peer::External(_) => None,
    }
}

/// One compiled ingress or egress rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The peers (`from` / `to`); `None` when the list was missing or empty: every peer.
    pub peers: Option<Vec<PeerMatcher>>,
    /// The ports; `None` when the list was missing or empty: every port.
    pub ports: Option<Vec<PortMatcher>>,
}

/// One compiled NetworkPolicy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledPolicy {
    /// The policy's Namespace.
    pub namespace: String,
    /// The policy's name.
    pub name: String,
    /// Which Pods of the Namespace it applies to.
    pub pod_selector: Selector,
    /// Ingress rules if `Ingress` is an effective policy type (isolating the selected Pods).
    pub ingress: Option<Vec<Rule>>,
    /// Egress rules if `Egress` is an effective policy type.
    pub egress: Option<Vec<Rule>>,
}

impl CompiledPolicy {
    /// The rules for `direction`, or `None` when the policy doesn't govern that direction.
    pub fn rules(&self, direction: Direction) -> Option<&[Rule]> {
        match direction {
            Direction::Ingress => self.ingress.as_deref(),
            Direction::Egress => self.egress.as_deref(),
        }
    }

    /// Whether the policy selects `pod` (same Namespace, `podSelector` matches).
    pub fn selects(&self, pod: &PodInfo) -> bool {
        pod.namespace == self.namespace && self.pod_selector.matches(&pod.labels)
    }
}

/// The policies of a cluster and its Namespaces' labels, compiled once and queried per
/// connection.
#[derive(Clone, Debug, Default)]
pub struct Evaluator {
    policies: Vec<CompiledPolicy>,
    namespaces: BTreeMap<String, Labels>,
}

impl Evaluator {
    /// Compiles `policies`; `namespaces` maps each Namespace name to its labels (taken as given:
    /// include `kubernetes.io/metadata.name` if selectors should see it). A Pod in a Namespace
    /// missing from the map is treated as having no Namespace labels.
    pub fn new(
        policies: &[NetworkPolicy],
        namespaces: BTreeMap<String, Labels>,
    ) -> Result<Self, PolicyError> {
        let mut compiled = policies
            .iter()
            .map(compile_policy)
            .collect::<Result<Vec<_>, _>>()?;
        compiled.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok(Evaluator {
            policies: compiled,
            namespaces,
        })
    }

    /// The compiled policies, sorted by Namespace and name.
    pub fn policies(&self) -> &[CompiledPolicy] {
        &self.policies
    }

    /// Whether a connection initiated by `from` to `to` on `port`/`protocol` is allowed: the
    /// source's egress and the destination's ingress must both allow it. Replies of an allowed
    /// connection are the enforcement's business (conntrack) and are not asked about here.
    pub fn allowed(&self, from: &Peer, to: &Peer, port: u16, protocol: Protocol) -> bool {
        self.egress_allows(from, to, port, protocol)
            && self.ingress_allows(from, to, port, protocol)
    }

    /// The source's half of [`Evaluator::allowed`]: whether `from`'s egress policies let the
    /// connection out. A node enforcing only its own Pods checks this half for them.
    pub fn egress_allows(&self, from: &Peer, to: &Peer, port: u16, protocol: Protocol) -> bool {
        self.side_allows(Direction::Egress, from, to, to, port, protocol)
    }

    /// The destination's half of [`Evaluator::allowed`]: whether `to`'s ingress policies let
    /// the connection in.
    pub fn ingress_allows(&self, from: &Peer, to: &Peer, port: u16, protocol: Protocol) -> bool {
        self.side_allows(Direction::Ingress, to, from, to, port, protocol)
    }

    /// The policies governing `pod` in `direction`, with their rules for it; empty when the Pod
    /// is not isolated in that direction (everything is allowed).
    pub fn governing(
        &self,
        pod: &PodInfo,
        direction: Direction,
    ) -> Vec<(&CompiledPolicy, &[Rule])> {
        self.policies
            .iter()
            .filter(|policy| policy.selects(pod))
            .filter_map(|policy| policy.rules(direction).map(|rules| (policy, rules)))
            .collect()
    }

    /// Whether `pod` is isolated in `direction` (some policy selecting it governs it).
    pub fn isolated(&self, pod: &PodInfo, direction: Direction) -> bool {
        !self.governing(pod, direction).is_empty()
    }

    /// Whether `matcher` (of a rule) matches `peer`.
    pub fn peer_matches(&self, matcher: &PeerMatcher, peer: &Peer) -> bool {
        match (matcher, peer) {
            (PeerMatcher::Block(block), _) => block.contains(peer.ip()),
            (PeerMatcher::Pods { .. }, Peer::External(_)) => false,
            (PeerMatcher::Pods { namespaces, pods }, Peer::Pod(pod)) => {
                let in_scope = match namespaces {
                    NamespaceScope::Own(ns) => *ns == pod.namespace,
                    NamespaceScope::Selected(selector) => {
                        let empty = Labels::new();
                        selector.matches(self.namespaces.get(&pod.namespace).unwrap_or(&empty))
                    }
                };
                in_scope && pods.matches(&pod.labels)
            }
        }
    }

    /// Whether `rule` matches a connection with `remote` at the other end, to `destination`.
    pub fn rule_matches(
        &self,
        rule: &Rule,
        remote: &Peer,
        destination: &Peer,
        port: u16,
        protocol: Protocol,
    ) -> bool {
        let peer_ok = rule.peers.as_ref().is_none_or(|peers| {
            peers
                .iter()
                .any(|matcher| self.peer_matches(matcher, remote))
        });
        let port_ok = rule.ports.as_ref().is_none_or(|ports| {
            ports
                .iter()
                .any(|matcher| matcher.matches(destination, port, protocol))
        });
        peer_ok && port_ok
    }

    /// Whether `side`'s policies in `direction` let the connection through.
    fn side_allows(
        &self,
        direction: Direction,
        side: &Peer,
        remote: &Peer,
        destination: &Peer,
        port: u16,
        protocol: Protocol,
    ) -> bool {
        let Peer::Pod(pod) = side else {
            return true;
        };
        let governing = self.governing(pod, direction);
        governing.is_empty()
            || governing
                .iter()
                .flat_map(|(_, rules)| rules.iter())
                .any(|rule| self.rule_matches(rule, remote, destination, port, protocol))
    }
}

/// Where compilation of one policy is, for error messages.
struct Context<'a> {
    namespace: &'a str,
    name: &'a str,
}

impl Context<'_> {
    fn error(&self, field: impl Into<String>, message: impl Into<String>) -> PolicyError {
        PolicyError {
            namespace: self.namespace.to_owned(),
            name: self.name.to_owned(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Compiles one policy, applying the `policyTypes` default.
fn compile_policy(policy: &NetworkPolicy) -> Result<CompiledPolicy, PolicyError> {
    let name = policy.metadata.name.as_deref().unwrap_or_default();
    let Some(namespace) = policy.metadata.namespace.as_deref() else {
        return Err(Context {
            namespace: "",
            name,
        }
        .error("metadata.namespace", "missing"));
    };
    let cx = Context { namespace, name };
    let default_spec = NetworkPolicySpec::default();
    let spec = policy.spec.as_ref().unwrap_or(&default_spec);
    let (ingress_type, egress_type) = policy_types(&cx, spec)?;
    let pod_selector = compile_selector(
        &cx,
        spec.pod_selector.as_ref(),
        "spec.podSelector".to_owned(),
    )?;
    let mut ingress = Vec::new();
    for (i, rule) in spec.ingress.iter().flatten().enumerate() {
        let field = format!("spec.ingress[{i}]");
        ingress.push(compile_rule(
            &cx,
            namespace,
            &field,
            "from",
            &rule.from,
            &rule.ports,
        )?);
    }
    let mut egress = Vec::new();
    for (i, rule) in spec.egress.iter().flatten().enumerate() {
        let field = format!("spec.egress[{i}]");
        egress.push(compile_rule(
            &cx,
            namespace,
            &field,
            "to",
            &rule.to,
            &rule.ports,
        )?);
    }
    Ok(CompiledPolicy {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        pod_selector,
        ingress: ingress_type.then_some(ingress),
        egress: egress_type.then_some(egress),
    })
}

/// The effective policy types (ingress, egress): as listed, or by default `Ingress` plus
/// `Egress` when there is an egress rule.
fn policy_types(cx: &Context, spec: &NetworkPolicySpec) -> Result<(bool, bool), PolicyError> {
    let Some(types) = spec.policy_types.as_ref().filter(|t| !t.is_empty()) else {
        return Ok((true, spec.egress.as_ref().is_some_and(|e| !e.is_empty())));
    };
    let (mut ingress, mut egress) = (false, false);
    for (i, ty) in types.iter().enumerate() {
        match ty.as_str() {
            "Ingress" => ingress = true,
            "Egress" => egress = true,
            other => {
                return Err(cx.error(
                    format!("spec.policyTypes[{i}]"),
                    format!("unsupported value {other:?}: expected \"Ingress\" or \"Egress\""),
                ));
            }
        }
    }
    Ok((ingress, egress))
}

/// Compiles one rule; `peer_key` is `from` or `to`.
fn compile_rule(
    cx: &Context,
    namespace: &str,
    field: &str,
    peer_key: &str,
    peers: &Option<Vec<NetworkPolicyPeer>>,
    ports: &Option<Vec<NetworkPolicyPort>>,
) -> Result<Rule, PolicyError> {
    let peers = match peers.as_deref() {
        None | Some([]) => None,
        Some(list) => Some(
            list.iter()
                .enumerate()
                .map(|(i, peer)| {
                    compile_peer(cx, namespace, &format!("{field}.{peer_key}[{i}]"), peer)
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let ports = match ports.as_deref() {
        None | Some([]) => None,
        Some(list) => Some(
            list.iter()
                .enumerate()
                .map(|(i, port)| compile_port(cx, &format!("{field}.ports[{i}]"), port))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    Ok(Rule { peers, ports })
}

/// Compiles one peer: exactly one of `ipBlock` or the selectors must be set.
fn compile_peer(
    cx: &Context,
    namespace: &str,
    field: &str,
    peer: &NetworkPolicyPeer,
) -> Result<PeerMatcher, PolicyError> {
    let has_selector = peer.pod_selector.is_some() || peer.namespace_selector.is_some();
    match (&peer.ip_block, has_selector) {
        (Some(_), true) => Err(cx.error(
            field,
            "may not specify both ipBlock and podSelector/namespaceSelector",
        )),
        (None, false) => Err(cx.error(field, "must specify a peer")),
        (Some(block), false) => Ok(PeerMatcher::Block(compile_ip_block(
            cx,
            &format!("{field}.ipBlock"),
            block,
        )?)),
        (None, true) => {
            let pods = compile_selector(
                cx,
                peer.pod_selector.as_ref(),
                format!("{field}.podSelector"),
            )?;
            let namespaces = match &peer.namespace_selector {
                None => NamespaceScope::Own(namespace.to_owned()),
                Some(selector) => NamespaceScope::Selected(compile_selector(
                    cx,
                    Some(selector),
                    format!("{field}.namespaceSelector"),
                )?),
            };
            Ok(PeerMatcher::Pods { namespaces, pods })
        }
    }
}

/// Compiles an `ipBlock`: each `except` must lie strictly inside `cidr`.
fn compile_ip_block(cx: &Context, field: &str, block: &IPBlock) -> Result<IpBlock, PolicyError> {
    let parse = |text: &str, at: String| {
        IpNet::from_str(text)
            .map(|net| net.trunc())
            .map_err(|_| cx.error(at, format!("{text:?} is not a valid CIDR")))
    };
    let cidr = parse(&block.cidr, format!("{field}.cidr"))?;
    let mut except = Vec::new();
    for (i, text) in block.except.iter().flatten().enumerate() {
        let at = format!("{field}.except[{i}]");
        let net = parse(text, at.clone())?;
        if !cidr.contains(&net) || net.prefix_len() <= cidr.prefix_len() {
            return Err(cx.error(at, format!("{text:?} must be a strict subset of {cidr}")));
        }
        except.push(net);
    }
    except.sort();
    except.dedup();
    Ok(IpBlock { cidr, except })
}

/// Compiles one port: protocol defaults to TCP; no port = all ports of the protocol.
fn compile_port(
    cx: &Context,
    field: &str,
    port: &NetworkPolicyPort,
) -> Result<PortMatcher, PolicyError> {
    let protocol = match port.protocol.as_deref() {
        None => Protocol::Tcp,
        Some(name) => Protocol::from_api(name).ok_or_else(|| {
            cx.error(
                format!("{field}.protocol"),
                format!("unsupported value {name:?}: expected \"TCP\", \"UDP\" or \"SCTP\""),
            )
        })?,
    };
    let number = |value: i32, at: &str| {
        u16::try_from(value)
            .ok()
            .filter(|n| *n != 0)
            .ok_or_else(|| {
                cx.error(
                    format!("{field}.{at}"),
                    format!("{value} is not in 1-65535"),
                )
            })
    };
    match (&port.port, port.end_port) {
        (None, None) => Ok(PortMatcher::Range {
            protocol,
            first: 0,
            last: u16::MAX,
        }),
        (None, Some(_)) | (Some(IntOrString::String(_)), Some(_)) => Err(cx.error(
            format!("{field}.endPort"),
            "may only be set with a numeric port",
        )),
        (Some(IntOrString::String(name)), None) => Ok(PortMatcher::Named {
            protocol,
            name: name.clone(),
        }),
        (Some(IntOrString::Int(value)), end) => {
            let first = number(*value, "port")?;
            let last = match end {
                None => first,
                Some(end) => number(end, "endPort")?,
            };
            if last < first {
                return Err(cx.error(
                    format!("{field}.endPort"),
                    format!("{last} must be greater than or equal to port {first}"),
                ));
            }
            Ok(PortMatcher::Range {
                protocol,
                first,
                last,
            })
        }
    }
}

/// Compiles a label selector; a missing one is the empty selector (matches everything).
fn compile_selector(
    cx: &Context,
    selector: Option<&LabelSelector>,
    field: String,
) -> Result<Selector, PolicyError> {
    let Some(selector) = selector else {
        return Ok(Selector::default());
    };
    let mut requirements = Vec::new();
    for (i, expr) in selector.match_expressions.iter().flatten().enumerate() {
        let at = format!("{field}.matchExpressions[{i}]");
        let values: BTreeSet<String> = expr.values.iter().flatten().cloned().collect();
        let key = expr.key.clone();
        let requirement = match expr.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(cx.error(
                    format!("{at}.values"),
                    "must be specified when operator is In or NotIn",
                ));
            }
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(cx.error(
                    format!("{at}.values"),
                    "may not be specified when operator is Exists or DoesNotExist",
                ));
            }
            "In" => Requirement::In(key, values),
            "NotIn" => Requirement::NotIn(key, values),
            "Exists" => Requirement::Exists(key),
            "DoesNotExist" => Requirement::DoesNotExist(key),
            other => {
                return Err(cx.error(
                    format!("{at}.operator"),
                    format!("{other:?} is not a valid selector operator"),
                ));
            }
        };
        requirements.push(requirement);
    }
    Ok(Selector {
        labels: selector.match_labels.clone().unwrap_or_default(),
        requirements,
    })
}

/// Test fixtures shared with the nftables compiler's tests: a small cluster and policy builders.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;
    use serde_json::{Value, json};

    /// A policy in `namespace` from a JSON `spec`.
    pub fn policy(namespace: &str, name: &str, spec: Value) -> NetworkPolicy {
        serde_json::from_value(json!({
            "metadata": { "namespace": namespace, "name": name },
            "spec": spec,
        }))
        .expect("valid NetworkPolicy JSON")
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn pod(
        ns: &str,
        name: &str,
        pairs: &[(&str, &str)],
        ip: &str,
        ports: &[(&str, u16, Protocol)],
    ) -> PodInfo {
        PodInfo {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            labels: labels(pairs),
            ip: ip.parse().expect("pod IP"),
            ports: ports
                .iter()
                .map(|(name, port, protocol)| NamedPort {
                    name: (*name).to_owned(),
                    port: *port,
                    protocol: *protocol,
                })
                .collect(),
        }
    }

    /// Namespaces `default` (no extra labels), `prod` (`team=operations`), `dev`
    /// (`team=dev`), each with the API server's `kubernetes.io/metadata.name`, and `bare`
    /// (no labels at all, as given).
    pub fn namespaces() -> BTreeMap<String, Labels> {
        let meta = "kubernetes.io/metadata.name";
        BTreeMap::from([
            ("default".to_owned(), labels(&[(meta, "default")])),
            (
                "prod".to_owned(),
                labels(&[(meta, "prod"), ("team", "operations")]),
            ),
            ("dev".to_owned(), labels(&[(meta, "dev"), ("team", "dev")])),
            ("bare".to_owned(), Labels::new()),
        ])
    }

    /// The cluster's Pods: `default/{web,api,db,client}` (10.0.0.0/24), `prod/{client,web,api}`
    /// (10.0.1.0/24), `dev/client` and `bare/client` (10.0.2.0/24). `web` names `http`=8080/TCP
    /// and `dns`=53/UDP; `api` names `http`=9090/TCP.
    pub fn pods() -> Vec<PodInfo> {
        use Protocol::{Tcp, Udp};
        vec![
            pod(
                "default",
                "web",
                &[("app", "web"), ("tier", "frontend")],
                "10.0.0.10",
                &[("http", 8080, Tcp), ("dns", 53, Udp)],
            ),
            pod(
                "default",
                "api",
                &[("app", "api"), ("tier", "backend")],
                "10.0.0.11",
                &[("http", 9090, Tcp)],
            ),
            pod("default", "db", &[("app", "db")], "10.0.0.12", &[]),
            pod("default", "client", &[("app", "client")], "10.0.0.13", &[]),
            pod("prod", "client", &[("app", "client")], "10.0.1.10", &[]),
            pod("prod", "web", &[("app", "web")], "10.0.1.11", &[]),
            pod("prod", "api", &[("app", "api")], "10.0.1.12", &[]),
            pod("dev", "client", &[("app", "client")], "10.0.2.10", &[]),
            pod("bare", "client", &[("app", "client")], "10.0.2.20", &[]),
        ]
    }

    /// The Pod `namespace/name` among `pods`.
    pub fn find<'a>(pods: &'a [PodInfo], key: &str) -> &'a PodInfo {
        pods.iter()
            .find(|p| format!("{}/{}", p.namespace, p.name) == key)
            .unwrap_or_else(|| panic!("no pod {key}"))
    }

    /// A peer by name: `namespace/name` for a Pod, an address for an external endpoint.
    pub fn peer<'a>(pods: &'a [PodInfo], key: &str) -> Peer<'a> {
        match key.parse::<IpAddr>() {
            Ok(ip) => Peer::External(ip),
            Err(_) => Peer::Pod(find(pods, key)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{namespaces, peer, pods, policy};
    use super::*;
    use Protocol::{Sctp, Tcp, Udp};
    use serde_json::json;

    /// One expectation: from, to, port, protocol, allowed.
    type Case = (&'static str, &'static str, u16, Protocol, bool);

    fn evaluator(policies: &[NetworkPolicy]) -> Evaluator {
        Evaluator::new(policies, namespaces()).expect("policies compile")
    }

    fn check(policies: &[NetworkPolicy], cases: &[Case]) {
        let evaluator = evaluator(policies);
        let pods = pods();
        for (from, to, port, protocol, want) in cases {
            let got = evaluator.allowed(&peer(&pods, from), &peer(&pods, to), *port, *protocol);
            assert_eq!(got, *want, "{from} -> {to} {port}/{protocol}");
        }
    }

    fn deny_all_ingress(ns: &str) -> NetworkPolicy {
        policy(
            ns,
            "deny-all-ingress",
            json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        )
    }

    #[test]
    fn no_policies_allow_everything() {
        check(
            &[],
            &[
                ("default/web", "default/db", 5432, Tcp, true),
                ("8.8.8.8", "prod/web", 80, Udp, true),
                ("default/web", "8.8.8.8", 53, Sctp, true),
            ],
        );
    }

    #[test]
    fn deny_all_ingress_isolates_the_namespace_only() {
        check(
            &[deny_all_ingress("default")],
            &[
                ("prod/client", "default/web", 80, Tcp, false),
                ("default/api", "default/web", 80, Tcp, false),
                ("192.0.2.1", "default/db", 5432, Tcp, false),
                ("default/web", "prod/web", 80, Tcp, true),
                ("default/web", "8.8.8.8", 443, Tcp, true),
            ],
        );
    }

    #[test]
    fn allow_all_ingress_rule_beside_deny_all() {
        let allow_all = policy(
            "default",
            "allow-all",
            json!({"podSelector": {}, "ingress": [{}]}),
        );
        check(
            &[deny_all_ingress("default"), allow_all],
            &[
                ("prod/client", "default/web", 80, Tcp, true),
                ("192.0.2.1", "default/db", 5432, Udp, true),
            ],
        );
    }

    #[test]
    fn empty_ingress_list_allows_nothing() {
        let p = policy("default", "none", json!({"podSelector": {}, "ingress": []}));
        check(&[p], &[("default/api", "default/web", 80, Tcp, false)]);
    }

    #[test]
    fn deny_all_egress() {
        let p = policy(
            "default",
            "deny-egress",
            json!({"podSelector": {}, "policyTypes": ["Egress"]}),
        );
        check(
            &[p],
            &[
                ("default/web", "8.8.8.8", 443, Tcp, false),
                ("default/web", "default/db", 5432, Tcp, false),
                ("prod/client", "default/web", 80, Tcp, true),
            ],
        );
    }

    #[test]
    fn deny_external_egress_but_allow_dns() {
        let p = policy(
            "default",
            "dns-and-cluster-only",
            json!({
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
                    {"to": [{"namespaceSelector": {}}]},
                ],
            }),
        );
        check(
            &[p],
            &[
                ("default/web", "8.8.8.8", 53, Udp, true),
                ("default/web", "8.8.8.8", 53, Tcp, true),
                ("default/web", "8.8.8.8", 443, Tcp, false),
                ("default/web", "8.8.8.8", 53, Sctp, false),
                ("default/web", "prod/web", 443, Tcp, true),
                ("default/web", "bare/client", 8000, Udp, true),
            ],
        );
    }

    #[test]
    fn allow_from_a_namespace() {
        let p = policy(
            "default",
            "from-operations",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "operations"}}}]}],
            }),
        );
        check(
            &[p],
            &[
                ("prod/client", "default/web", 80, Tcp, true),
                ("prod/api", "default/web", 80, Tcp, true),
                ("dev/client", "default/web", 80, Tcp, false),
                ("default/api", "default/web", 80, Tcp, false),
                ("default/api", "default/db", 80, Tcp, true),
            ],
        );
    }

    #[test]
    fn namespace_labels_are_taken_as_given() {
        let p = policy(
            "default",
            "by-name",
            json!({
                "podSelector": {},
                "ingress": [{"from": [{"namespaceSelector": {"matchExpressions": [
                    {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["dev", "bare"]},
                ]}}]}],
            }),
        );
        check(
            &[p],
            &[
                ("dev/client", "default/web", 80, Tcp, true),
                ("bare/client", "default/web", 80, Tcp, false),
            ],
        );
    }

    #[test]
    fn allow_from_labelled_pods_of_the_own_namespace() {
        let p = policy(
            "default",
            "db-from-api",
            json!({
                "podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}]}],
            }),
        );
        check(
            &[p],
            &[
                ("default/api", "default/db", 5432, Tcp, true),
                ("default/web", "default/db", 5432, Tcp, false),
                ("prod/api", "default/db", 5432, Tcp, false),
                ("10.0.0.11", "default/db", 5432, Tcp, false),
            ],
        );
    }

    #[test]
    fn pod_and_namespace_selector_in_one_peer_is_and_in_two_peers_is_or() {
        let and = policy(
            "default",
            "and",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"from": [{
                    "namespaceSelector": {"matchLabels": {"team": "operations"}},
                    "podSelector": {"matchLabels": {"app": "client"}},
                }]}],
            }),
        );
        let or = policy(
            "default",
            "or",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"from": [
                    {"namespaceSelector": {"matchLabels": {"team": "operations"}}},
                    {"podSelector": {"matchLabels": {"app": "client"}}},
                ]}],
            }),
        );
        let cases_and: &[Case] = &[
            ("prod/client", "default/web", 80, Tcp, true),
            ("prod/web", "default/web", 80, Tcp, false),
            ("default/client", "default/web", 80, Tcp, false),
            ("dev/client", "default/web", 80, Tcp, false),
        ];
        check(&[and], cases_and);
        check(
            &[or],
            &[
                ("prod/client", "default/web", 80, Tcp, true),
                ("prod/web", "default/web", 80, Tcp, true),
                ("default/client", "default/web", 80, Tcp, true),
                ("dev/client", "default/web", 80, Tcp, false),
            ],
        );
    }

    #[test]
    fn named_ports_resolve_against_the_destination() {
        let ingress = policy(
            "default",
            "http-in",
            json!({
                "podSelector": {},
                "ingress": [{"ports": [{"port": "http"}, {"port": "dns", "protocol": "UDP"}]}],
            }),
        );
        check(
            &[ingress],
            &[
                ("prod/client", "default/web", 8080, Tcp, true),
                ("prod/client", "default/web", 80, Tcp, false),
                ("prod/client", "default/api", 9090, Tcp, true),
                ("prod/client", "default/api", 8080, Tcp, false),
                ("prod/client", "default/web", 53, Udp, true),
                ("prod/client", "default/web", 53, Tcp, false),
                ("prod/client", "default/db", 8080, Tcp, false),
            ],
        );
        let egress = policy(
            "default",
            "http-out",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "policyTypes": ["Egress"],
                "egress": [{"ports": [{"port": "http"}]}],
            }),
        );
        check(
            &[egress],
            &[
                ("default/web", "default/api", 9090, Tcp, true),
                ("default/web", "default/api", 8080, Tcp, false),
                ("default/web", "prod/web", 8080, Tcp, false),
                ("default/web", "8.8.8.8", 8080, Tcp, false),
            ],
        );
    }

    #[test]
    fn end_port_ranges() {
        let p = policy(
            "default",
            "range",
            json!({
                "podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [{"ports": [{"port": 32000, "endPort": 32768}]}],
            }),
        );
        check(
            &[p],
            &[
                ("default/api", "default/db", 32000, Tcp, true),
                ("default/api", "default/db", 32768, Tcp, true),
                ("default/api", "default/db", 32769, Tcp, false),
                ("default/api", "default/db", 31999, Tcp, false),
                ("default/api", "default/db", 32000, Udp, false),
            ],
        );
    }

    #[test]
    fn ip_block_with_except_matches_pod_and_external_addresses() {
        let egress = policy(
            "default",
            "to-block",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.1.0/24"]}}]}],
            }),
        );
        check(
            &[egress],
            &[
                ("default/web", "default/api", 80, Tcp, true),
                ("default/web", "prod/client", 80, Tcp, false),
                ("default/web", "10.0.9.9", 80, Tcp, true),
                ("default/web", "10.0.1.200", 80, Tcp, false),
                ("default/web", "8.8.8.8", 80, Tcp, false),
            ],
        );
        let ingress = policy(
            "default",
            "from-block",
            json!({
                "podSelector": {},
                "ingress": [{"from": [{"ipBlock": {"cidr": "192.0.2.0/24"}}, {"ipBlock": {"cidr": "10.0.1.0/24"}}]}],
            }),
        );
        check(
            &[ingress],
            &[
                ("192.0.2.1", "default/web", 443, Tcp, true),
                ("198.51.100.1", "default/web", 443, Tcp, false),
                ("prod/client", "default/web", 443, Tcp, true),
                ("dev/client", "default/web", 443, Tcp, false),
            ],
        );
    }

    #[test]
    fn policy_types_default_to_ingress_plus_egress_when_egress_rules_exist() {
        let egress_rules_only = policy(
            "default",
            "web-to-db",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}]}],
            }),
        );
        check(
            &[egress_rules_only],
            &[
                ("default/web", "default/db", 5432, Tcp, true),
                ("default/web", "default/api", 80, Tcp, false),
                ("default/api", "default/web", 80, Tcp, false),
            ],
        );
        let empty_egress = policy(
            "default",
            "empty-egress",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "egress": [],
            }),
        );
        check(
            &[empty_egress],
            &[
                ("default/web", "8.8.8.8", 443, Tcp, true),
                ("default/api", "default/web", 80, Tcp, false),
            ],
        );
        let egress_type_only = policy(
            "default",
            "egress-type",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "policyTypes": ["Egress"],
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "db"}}}]}],
            }),
        );
        check(
            &[egress_type_only],
            &[
                ("default/api", "default/web", 80, Tcp, true),
                ("default/web", "default/api", 80, Tcp, false),
            ],
        );
    }

    #[test]
    fn policies_are_additive() {
        let from_api = policy(
            "default",
            "db-from-api",
            json!({
                "podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}],
                             "ports": [{"port": 5432}]}],
            }),
        );
        let from_web = policy(
            "default",
            "db-from-web",
            json!({
                "podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                             "ports": [{"port": 5432}]}],
            }),
        );
        check(
            &[from_api, from_web],
            &[
                ("default/api", "default/db", 5432, Tcp, true),
                ("default/web", "default/db", 5432, Tcp, true),
                ("default/web", "default/db", 80, Tcp, false),
                ("default/client", "default/db", 5432, Tcp, false),
            ],
        );
    }

    #[test]
    fn both_egress_of_source_and_ingress_of_destination_must_allow() {
        let web_egress = policy(
            "default",
            "web-out",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "policyTypes": ["Egress"],
                "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}]}],
            }),
        );
        let db_ingress = policy(
            "default",
            "db-in",
            json!({
                "podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}]}],
            }),
        );
        let policies = [web_egress, db_ingress];
        check(
            &policies,
            &[
                ("default/web", "default/db", 5432, Tcp, false),
                ("default/api", "default/db", 5432, Tcp, true),
                ("default/web", "default/api", 80, Tcp, false),
            ],
        );
        let evaluator = evaluator(&policies);
        let pods = pods();
        let (web, db) = (peer(&pods, "default/web"), peer(&pods, "default/db"));
        assert!(evaluator.egress_allows(&web, &db, 5432, Tcp));
        assert!(!evaluator.ingress_allows(&web, &db, 5432, Tcp));
    }

    #[test]
    fn match_expressions_operators() {
        let cx = Context {
            namespace: "ns",
            name: "p",
        };
        let selector = |exprs: serde_json::Value| {
            let s: LabelSelector =
                serde_json::from_value(json!({"matchExpressions": exprs})).unwrap();
            compile_selector(&cx, Some(&s), "s".to_owned()).unwrap()
        };
        let web = Labels::from([("app".to_owned(), "web".to_owned())]);
        let bare = Labels::new();
        let table = [
            (
                json!([{"key": "app", "operator": "In", "values": ["web", "api"]}]),
                true,
                false,
            ),
            (
                json!([{"key": "app", "operator": "NotIn", "values": ["web"]}]),
                false,
                true,
            ),
            (json!([{"key": "app", "operator": "Exists"}]), true, false),
            (
                json!([{"key": "app", "operator": "DoesNotExist"}]),
                false,
                true,
            ),
            (json!([]), true, true),
        ];
        for (exprs, on_web, on_bare) in table {
            let s = selector(exprs.clone());
            assert_eq!(s.matches(&web), on_web, "{exprs} on app=web");
            assert_eq!(s.matches(&bare), on_bare, "{exprs} on no labels");
        }
    }

    #[test]
    fn invalid_policies_are_errors_naming_the_field() {
        let table = [
            (
                json!({"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]}),
                "spec.ingress[0].from[0].ipBlock.cidr",
            ),
            (
                json!({"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}}]}]}),
                "spec.egress[0].to[0].ipBlock.except[0]",
            ),
            (
                json!({"ingress": [{"ports": [{"port": 90, "endPort": 80}]}]}),
                "spec.ingress[0].ports[0].endPort",
            ),
            (
                json!({"ingress": [{"ports": [{"port": "http", "endPort": 80}]}]}),
                "spec.ingress[0].ports[0].endPort",
            ),
            (
                json!({"ingress": [{"ports": [{"port": 80, "protocol": "ICMP"}]}]}),
                "spec.ingress[0].ports[0].protocol",
            ),
            (
                json!({"ingress": [{"ports": [{"port": 70000}]}]}),
                "spec.ingress[0].ports[0].port",
            ),
            (json!({"policyTypes": ["Sideways"]}), "spec.policyTypes[0]"),
            (
                json!({"ingress": [{"from": [{}]}]}),
                "spec.ingress[0].from[0]",
            ),
            (
                json!({"ingress": [{"from": [{"podSelector": {}, "ipBlock": {"cidr": "10.0.0.0/8"}}]}]}),
                "spec.ingress[0].from[0]",
            ),
            (
                json!({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}),
                "spec.podSelector.matchExpressions[0].operator",
            ),
        ];
        for (spec, field) in table {
            let err = Evaluator::new(&[policy("default", "bad", spec.clone())], namespaces())
                .expect_err(&spec.to_string());
            assert_eq!(err.field, field, "{spec}");
            assert!(
                err.to_string().starts_with("NetworkPolicy default/bad: "),
                "{err}"
            );
        }
    }
}
