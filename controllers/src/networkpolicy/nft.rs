//! Compiles the NetworkPolicies governing one node's Pods into an nftables ruleset (text for
//! `nft -f -`) that enforces what [`Evaluator::allowed`] says for every connection with at least
//! one end on a local Pod.
//!
//! Shape: one table ([`Target::table`], default [`TABLE`]), replaced atomically (create-if-missing,
//! delete, define, all in one transaction). Each base chain (one per [`Hook`]) has `policy accept`
//! and, with [`Target::interface`] set, first accepts every packet that neither enters nor leaves
//! through that interface (the node's Pod bridge): every table's base chains see every packet on
//! the host, so a table must leave alone what is not its node's Pods' traffic. It then accepts
//! `ct state established,related` — replies of allowed connections, which the evaluator leaves to
//! the enforcement — and drops `ct state invalid` IP packets, then `jump`s to a per-Pod chain for
//! every isolated local Pod: `ip saddr <pod>` to its egress chain, `ip daddr <pod>` to its ingress
//! chain. A per-Pod chain `return`s for each allowed (remote addresses, protocol, ports) and ends
//! in `drop`; returning instead of accepting lets a connection between two local Pods be checked
//! by the source's egress chain *and* the destination's ingress chain. The same per-Pod chains
//! serve every base chain, so a bridged (Pod-to-Pod on this node) and a routed (Pod to host or
//! beyond) path can both be filtered.
//!
//! Selectors are expanded to the known Pods' current IPs; `ipBlock` becomes a prefix match with
//! `!=` set of exceptions. Named ports are resolved against the destination: the local Pod for
//! ingress, each matching known Pod for egress (an address-by-address rule per port). Only
//! matches valid in both the `bridge` and `inet` families are used (`ip`/`ip6 saddr|daddr`,
//! `meta l4proto`, `th dport`, `ct state`, `meta protocol`). Output is sorted, hence stable.
//!
//! Left out: connections from a Pod's own node are never filtered here (host-originated packets
//! pass `output`, not `forward`), as the docs require for ingress; a Pod's egress *to the host*
//! is filtered only if [`Hook::Input`] is installed. Remote Pods' policies are enforced on their
//! own nodes. A rule allowing all ports also allows non-port protocols (ICMP), which the
//! evaluator cannot be asked about; a rule with ports allows only TCP/UDP/SCTP. Established
//! connections survive policy changes (conntrack), as in most implementations.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use super::evaluator::{
    Direction, Evaluator, IpBlock, Peer, PeerMatcher, PodInfo, PortMatcher, Protocol, Rule,
    resolve_named_port,
};

/// The default table name.
pub const TABLE: &str = "kubeforge_netpol";

/// Longest chain name the kernel accepts (`NFT_CHAIN_MAXNAMELEN` less the NUL).
const MAX_CHAIN_NAME: usize = 255;

/// The nftables address family of the table: which packets its hooks see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `bridge`: frames crossing the Pods' Linux bridge. Its `ct` matches need
    /// `CONFIG_NF_CONNTRACK_BRIDGE` (kernel ≥ 5.3); without it `nft` fails with "Protocol error"
    /// (as on the 6.18 kernel this was written on).
    Bridge,
    /// `inet`: routed IPv4/IPv6, and bridged traffic too when `br_netfilter` is active
    /// (`net.bridge.bridge-nf-call-iptables=1`): then bridged Pod-to-Pod packets pass the inet
    /// `forward` hook with conntrack, which was checked with real traffic on that 6.18 kernel.
    Inet,
}

impl Family {
    fn keyword(self) -> &'static str {
        match self {
            Family::Bridge => "bridge",
            Family::Inet => "inet",
        }
    }
}

/// A hook a base chain is attached to; every base chain dispatches to the same per-Pod chains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hook {
    /// Traffic passing through the host: bridged between Pods, or routed beyond the node.
    Forward,
    /// Traffic addressed to the host itself (a Pod talking to its node or the bridge IP).
    Input,
}

impl Hook {
    fn keyword(self) -> &'static str {
        match self {
            Hook::Forward => "forward",
            Hook::Input => "input",
        }
    }
}

/// Where the ruleset goes: the table's family and name, the hooks it filters at and the
/// interface whose traffic it filters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The table's family.
    pub family: Family,
    /// The table's name: one per node (and per test), since the ruleset replaces it whole.
    pub table: String,
    /// One base chain per hook (sorted and deduplicated on output).
    pub hooks: Vec<Hook>,
    /// The interface the node's Pods hang off (its bridge): packets neither entering nor leaving
    /// through it are accepted before any Pod rule. `None` filters every packet by address.
    pub interface: Option<String>,
}

/// The remote end an accept rule admits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RemoteMatch {
    /// Any address.
    Any,
    /// These addresses (all of one IP family, never empty).
    Addrs(BTreeSet<IpAddr>),
    /// An `ipBlock`.
    Block(IpBlockKey),
}

/// An [`IpBlock`] in a sortable form.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IpBlockKey {
    /// The block.
    pub cidr: ipnet::IpNet,
    /// Sub-blocks excluded.
    pub except: Vec<ipnet::IpNet>,
}

impl From<&IpBlock> for IpBlockKey {
    fn from(block: &IpBlock) -> Self {
        IpBlockKey {
            cidr: block.cidr,
            except: block.except.clone(),
        }
    }
}

impl RemoteMatch {
    fn admits(&self, ip: IpAddr) -> bool {
        match self {
            RemoteMatch::Any => true,
            RemoteMatch::Addrs(addrs) => addrs.contains(&ip),
            RemoteMatch::Block(block) => {
                block.cidr.contains(&ip) && !block.except.iter().any(|net| net.contains(&ip))
            }
        }
    }

    /// Whether the match can admit an address of `ip`'s family.
    fn same_family(&self, ip: IpAddr) -> bool {
        match self {
            RemoteMatch::Any => true,
            RemoteMatch::Addrs(addrs) => addrs.iter().all(|a| a.is_ipv4() == ip.is_ipv4()),
            RemoteMatch::Block(block) => block.cidr.addr().is_ipv4() == ip.is_ipv4(),
        }
    }
}

/// The protocol and ports an accept rule admits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PortMatch {
    /// Every protocol and port.
    Any,
    /// Every port of one protocol.
    Protocol(Protocol),
    /// Inclusive port ranges of one protocol (never empty).
    Ports(Protocol, BTreeSet<(u16, u16)>),
}

impl PortMatch {
    fn admits(&self, protocol: Protocol, port: u16) -> bool {
        match self {
            PortMatch::Any => true,
            PortMatch::Protocol(p) => *p == protocol,
            PortMatch::Ports(p, ranges) => {
                *p == protocol && ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&port))
            }
        }
    }
}

/// One `return` rule of a per-Pod chain: a connection from/to `remote` on `ports` is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accept {
    /// The other end of the connection.
    pub remote: RemoteMatch,
    /// The protocol and destination port.
    pub ports: PortMatch,
    /// Which policy and rule this comes from (`namespace/name ingress[0]`).
    pub comment: String,
}

/// The chain of one isolated local Pod in one direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodChain {
    /// The chain's name (`ingress_<namespace>_<pod>` or `egress_…`).
    pub name: String,
    /// The Pod's IP, which the base chains dispatch on.
    pub pod_ip: IpAddr,
    /// Which direction the chain governs.
    pub direction: Direction,
    /// What is allowed; everything else is dropped.
    pub accepts: Vec<Accept>,
}

/// The compiled ruleset before rendering: what [`render`] prints and [`Plan::admits`] simulates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Per-Pod chains, egress chains first, each sorted by Namespace and Pod name.
    pub chains: Vec<PodChain>,
}

impl Plan {
    /// Whether the ruleset lets a new connection from `src` to `dst` on `protocol`/`port`
    /// through: every chain dispatched to (the source's egress chain, the destination's ingress
    /// chain) must return. Used to check the compiler against the evaluator.
    pub fn admits(&self, src: IpAddr, dst: IpAddr, protocol: Protocol, port: u16) -> bool {
        self.chains.iter().all(|chain| {
            let remote = match chain.direction {
                Direction::Egress if chain.pod_ip == src => dst,
                Direction::Ingress if chain.pod_ip == dst => src,
                _ => return true,
            };
            chain
                .accepts
                .iter()
                .any(|a| a.remote.admits(remote) && a.ports.admits(protocol, port))
        })
    }
}

/// Compiles the chains for the isolated Pods among `pods` whose (namespace, name) is in `local`;
/// `pods` are all known Pods (selectors expand to their IPs).
pub fn plan(evaluator: &Evaluator, pods: &[PodInfo], local: &BTreeSet<(String, String)>) -> Plan {
    let mut locals: Vec<&PodInfo> = pods
        .iter()
        .filter(|pod| local.contains(&(pod.namespace.clone(), pod.name.clone())))
        .collect();
    locals.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut known: Vec<&PodInfo> = pods.iter().collect();
    known.sort_by(|a, b| (a.ip, &a.namespace, &a.name).cmp(&(b.ip, &b.namespace, &b.name)));
    let mut chains = Vec::new();
    for direction in [Direction::Egress, Direction::Ingress] {
        for (index, pod) in locals.iter().enumerate() {
            let governing = evaluator.governing(pod, direction);
            if governing.is_empty() {
                continue;
            }
            let mut accepts = Vec::new();
            for (policy, rules) in governing {
                for (i, rule) in rules.iter().enumerate() {
                    let comment = format!(
                        "{}/{} {}[{i}]",
                        policy.namespace,
                        policy.name,
                        direction_word(direction)
                    );
                    let compiler = RuleCompiler {
                        evaluator,
                        pod,
                        known: &known,
                        direction,
                        comment,
                    };
                    compiler.compile(rule, &mut accepts);
                }
            }
            accepts.retain(|a: &Accept| a.remote.same_family(pod.ip));
            chains.push(PodChain {
                name: chain_name(direction, pod, index),
                pod_ip: pod.ip,
                direction,
                accepts,
            });
        }
    }
    Plan { chains }
}

/// Compiles and renders in one go: the ruleset text for `nft -f -`.
pub fn compile(
    evaluator: &Evaluator,
    pods: &[PodInfo],
    local: &BTreeSet<(String, String)>,
    target: &Target,
) -> String {
    render(&plan(evaluator, pods, local), target)
}

fn direction_word(direction: Direction) -> &'static str {
    match direction {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}

/// `ingress_<namespace>_<pod>`: unambiguous since neither name may contain `_`; the Pod's index
/// among the local Pods stands in when that would be too long for the kernel.
fn chain_name(direction: Direction, pod: &PodInfo, index: usize) -> String {
    let word = direction_word(direction);
    let name = format!("{word}_{}_{}", pod.namespace, pod.name);
    if name.len() <= MAX_CHAIN_NAME {
        name
    } else {
        format!("{word}_{index}")
    }
}

/// Turns one rule into accepts for one local Pod in one direction.
struct RuleCompiler<'a> {
    evaluator: &'a Evaluator,
    pod: &'a PodInfo,
    known: &'a [&'a PodInfo],
    direction: Direction,
    comment: String,
}

impl RuleCompiler<'_> {
    fn compile(&self, rule: &Rule, accepts: &mut Vec<Accept>) {
        let remotes = self.remotes(rule);
        for ports in self.numeric_ports(rule) {
            for remote in &remotes {
                accepts.push(Accept {
                    remote: remote.clone(),
                    ports: ports.clone(),
                    comment: self.comment.clone(),
                });
            }
        }
        if self.direction == Direction::Egress {
            self.egress_named_ports(rule, accepts);
        }
    }

    /// The remote matches of the rule's peers: matching Pods' IPs (one set per IP family) and
    /// each `ipBlock`.
    fn remotes(&self, rule: &Rule) -> Vec<RemoteMatch> {
        let Some(peers) = &rule.peers else {
            return vec![RemoteMatch::Any];
        };
        let mut v4 = BTreeSet::new();
        let mut v6 = BTreeSet::new();
        let mut blocks = BTreeSet::new();
        for matcher in peers {
            match matcher {
                PeerMatcher::Block(block) => {
                    blocks.insert(IpBlockKey::from(block));
                }
                PeerMatcher::Pods { .. } => {
                    for pod in self.known {
                        if self.evaluator.peer_matches(matcher, &Peer::Pod(pod)) {
                            let set = if pod.ip.is_ipv4() { &mut v4 } else { &mut v6 };
                            set.insert(pod.ip);
                        }
                    }
                }
            }
        }
        [v4, v6]
            .into_iter()
            .filter(|set| !set.is_empty())
            .map(RemoteMatch::Addrs)
            .chain(blocks.into_iter().map(RemoteMatch::Block))
            .collect()
    }

    /// The rule's ports that don't depend on the remote end: numbers, ranges, and (for ingress)
    /// names resolved against the local Pod. Empty when the rule lists ports but none apply.
    fn numeric_ports(&self, rule: &Rule) -> Vec<PortMatch> {
        let Some(ports) = &rule.ports else {
            return vec![PortMatch::Any];
        };
        let mut whole = BTreeSet::new();
        let mut ranges: BTreeMap<Protocol, BTreeSet<(u16, u16)>> = BTreeMap::new();
        for matcher in ports {
            match matcher {
                PortMatcher::Range {
                    protocol,
                    first: 0,
                    last: u16::MAX,
                } => {
                    whole.insert(*protocol);
                }
                PortMatcher::Range {
                    protocol,
                    first,
                    last,
                } => {
                    ranges.entry(*protocol).or_default().insert((*first, *last));
                }
                PortMatcher::Named { protocol, name } if self.direction == Direction::Ingress => {
                    if let Some(port) = resolve_named_port(&Peer::Pod(self.pod), name, *protocol) {
                        ranges.entry(*protocol).or_default().insert((port, port));
                    }
                }
                PortMatcher::Named { .. } => {}
            }
        }
        ranges.retain(|protocol, _| !whole.contains(protocol));
        let whole = whole.into_iter().map(PortMatch::Protocol);
        whole
            .chain(ranges.into_iter().map(|(p, r)| PortMatch::Ports(p, r)))
            .collect()
    }

    /// Egress to named ports: each known Pod the rule's peers match, at the port its own
    /// container ports give the name.
    fn egress_named_ports(&self, rule: &Rule, accepts: &mut Vec<Accept>) {
        let named: Vec<(Protocol, &str)> = rule
            .ports
            .iter()
            .flatten()
            .filter_map(|m| match m {
                PortMatcher::Named { protocol, name } => Some((*protocol, name.as_str())),
                PortMatcher::Range { .. } => None,
            })
            .collect();
        if named.is_empty() {
            return;
        }
        let mut targets: BTreeMap<(Protocol, u16), BTreeSet<IpAddr>> = BTreeMap::new();
        for pod in self.known {
            let peer = Peer::Pod(pod);
            let matched = rule
                .peers
                .as_ref()
                .is_none_or(|peers| peers.iter().any(|m| self.evaluator.peer_matches(m, &peer)));
            if !matched {
                continue;
            }
            for (protocol, name) in &named {
                if let Some(port) = resolve_named_port(&peer, name, *protocol) {
                    targets.entry((*protocol, port)).or_default().insert(pod.ip);
                }
            }
        }
        for ((protocol, port), addrs) in targets {
            let (v4, v6): (BTreeSet<IpAddr>, BTreeSet<IpAddr>) =
                addrs.into_iter().partition(IpAddr::is_ipv4);
            for set in [v4, v6].into_iter().filter(|s| !s.is_empty()) {
                accepts.push(Accept {
                    remote: RemoteMatch::Addrs(set),
                    ports: PortMatch::Ports(protocol, BTreeSet::from([(port, port)])),
                    comment: self.comment.clone(),
                });
            }
        }
    }
}

/// Renders a plan as the text of an atomic `nft -f -` transaction.
pub fn render(plan: &Plan, target: &Target) -> String {
    let family = target.family.keyword();
    let table = &target.table;
    let mut hooks = target.hooks.clone();
    hooks.sort();
    hooks.dedup();
    let mut out = String::new();
    out.push_str("# kubeforge NetworkPolicy enforcement for this node's Pods (generated).\n");
    let _ = writeln!(out, "table {family} {table}");
    let _ = writeln!(out, "delete table {family} {table}");
    let _ = writeln!(out, "table {family} {table} {{");
    for hook in hooks {
        let _ = writeln!(out, "\tchain {} {{", hook.keyword());
        let _ = writeln!(
            out,
            "\t\ttype filter hook {} priority filter; policy accept;",
            hook.keyword()
        );
        if let Some(interface) = &target.interface {
            // Input packets have no output interface: only the input one says whose they are.
            let _ = match hook {
                Hook::Forward => writeln!(
                    out,
                    "\t\tiifname != \"{interface}\" oifname != \"{interface}\" accept"
                ),
                Hook::Input => writeln!(out, "\t\tiifname != \"{interface}\" accept"),
            };
        }
        out.push_str("\t\tct state established,related accept\n");
        out.push_str("\t\tmeta protocol { ip, ip6 } ct state invalid drop\n");
        for chain in &plan.chains {
            let side = match chain.direction {
                Direction::Ingress => "daddr",
                Direction::Egress => "saddr",
            };
            let _ = writeln!(
                out,
                "\t\t{} {side} {} jump {}",
                ip_keyword(chain.pod_ip),
                chain.pod_ip,
                chain.name
            );
        }
        out.push_str("\t}\n");
    }
    for chain in &plan.chains {
        let _ = writeln!(out, "\tchain {} {{", chain.name);
        for accept in &chain.accepts {
            let _ = writeln!(out, "\t\t{}", render_accept(accept, chain.direction));
        }
        out.push_str("\t\tdrop\n\t}\n");
    }
    out.push_str("}\n");
    out
}

fn ip_keyword(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "ip" } else { "ip6" }
}

/// One accept as an nft rule: remote match, protocol and ports, `return`, comment.
fn render_accept(accept: &Accept, direction: Direction) -> String {
    let side = match direction {
        Direction::Ingress => "saddr",
        Direction::Egress => "daddr",
    };
    let mut parts: Vec<String> = Vec::new();
    match &accept.remote {
        RemoteMatch::Any => {}
        RemoteMatch::Addrs(addrs) => {
            let first = addrs.first().copied();
            let keyword = first.map_or("ip", ip_keyword);
            parts.push(format!("{keyword} {side} {}", nft_set(addrs.iter())));
        }
        RemoteMatch::Block(block) => {
            let keyword = ip_keyword(block.cidr.addr());
            parts.push(format!("{keyword} {side} {}", block.cidr));
            if !block.except.is_empty() {
                parts.push(format!(
                    "{keyword} {side} != {}",
                    nft_set(block.except.iter())
                ));
            }
        }
    }
    match &accept.ports {
        PortMatch::Any => {}
        PortMatch::Protocol(protocol) => parts.push(format!("meta l4proto {protocol}")),
        PortMatch::Ports(protocol, ranges) => {
            let ranges = ranges.iter().map(|(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            });
            parts.push(format!(
                "meta l4proto {protocol} th dport {}",
                nft_set(ranges)
            ));
        }
    }
    parts.push(format!("return comment \"{}\"", accept.comment));
    parts.join(" ")
}

/// One element as itself, several as an anonymous set `{ a, b }`.
fn nft_set<T: ToString>(items: impl Iterator<Item = T>) -> String {
    let items: Vec<String> = items.map(|item| item.to_string()).collect();
    match items.as_slice() {
        [one] => one.clone(),
        _ => format!("{{ {} }}", items.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::evaluator::fixtures::{namespaces, peer, pods, policy};
    use super::*;
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    use serde_json::json;

    fn local(keys: &[&str]) -> BTreeSet<(String, String)> {
        keys.iter()
            .map(|k| {
                let (ns, name) = k.split_once('/').expect("namespace/name");
                (ns.to_owned(), name.to_owned())
            })
            .collect()
    }

    fn all_local() -> BTreeSet<(String, String)> {
        pods()
            .iter()
            .map(|p| (p.namespace.clone(), p.name.clone()))
            .collect()
    }

    /// Recipe scenarios covering every peer and port kind.
    fn scenarios() -> Vec<(&'static str, Vec<NetworkPolicy>)> {
        vec![
            (
                "deny-all-ingress",
                vec![policy("default", "deny", json!({"podSelector": {}}))],
            ),
            (
                "db-from-api",
                vec![policy(
                    "default",
                    "db-from-api",
                    json!({
                        "podSelector": {"matchLabels": {"app": "db"}},
                        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}],
                                     "ports": [{"port": 5432}, {"port": 6000, "endPort": 6010, "protocol": "SCTP"}]}],
                    }),
                )],
            ),
            (
                "dns-and-cluster-egress",
                vec![policy(
                    "default",
                    "egress",
                    json!({
                        "podSelector": {},
                        "policyTypes": ["Egress"],
                        "egress": [
                            {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
                            {"to": [{"namespaceSelector": {"matchLabels": {"team": "operations"}}}]},
                        ],
                    }),
                )],
            ),
            (
                "named-and-blocks",
                vec![
                    policy(
                        "default",
                        "named-in",
                        json!({
                            "podSelector": {"matchLabels": {"tier": "frontend"}},
                            "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.0.2.0/24", "10.0.1.12/32"]}}],
                                         "ports": [{"port": "http"}, {"port": "dns", "protocol": "UDP"}, {"port": "nope"}]}],
                        }),
                    ),
                    policy(
                        "default",
                        "named-out",
                        json!({
                            "podSelector": {"matchLabels": {"app": "client"}},
                            "policyTypes": ["Egress"],
                            "egress": [{"ports": [{"port": "http"}, {"protocol": "UDP"}]}],
                        }),
                    ),
                    policy(
                        "prod",
                        "and-or",
                        json!({
                            "podSelector": {},
                            "egress": [{"to": [
                                {"namespaceSelector": {"matchLabels": {"team": "dev"}}, "podSelector": {"matchLabels": {"app": "client"}}},
                                {"podSelector": {"matchLabels": {"app": "web"}}},
                            ], "ports": [{"port": 80}, {"port": 8000, "endPort": 8100}]}],
                            "ingress": [{"from": [{"namespaceSelector": {}}]}],
                        }),
                    ),
                ],
            ),
        ]
    }

    fn target(family: Family) -> Target {
        Target {
            family,
            table: TABLE.to_owned(),
            hooks: vec![Hook::Input, Hook::Forward],
            interface: None,
        }
    }

    /// The ruleset must agree with the evaluator on every connection touching a local Pod:
    /// each local end's half of the decision (the remote Pods' nodes enforce the other halves).
    #[test]
    fn plan_agrees_with_the_evaluator() {
        let pods = pods();
        let externals = ["8.8.8.8", "10.0.9.9", "10.0.2.99", "192.0.2.1"];
        let mut endpoints: Vec<String> = pods
            .iter()
            .map(|p| format!("{}/{}", p.namespace, p.name))
            .collect();
        endpoints.extend(externals.iter().map(|e| (*e).to_owned()));
        let ports = [53, 80, 5432, 6005, 8050, 8080, 9090, 9999];
        let mut checked = 0;
        for (name, policies) in scenarios() {
            let evaluator = Evaluator::new(&policies, namespaces()).expect("compiles");
            for locals in [
                all_local(),
                local(&["default/web", "prod/client", "default/client"]),
            ] {
                let plan = plan(&evaluator, &pods, &locals);
                let is_local = |key: &str| {
                    key.split_once('/')
                        .is_some_and(|(ns, n)| locals.contains(&(ns.to_owned(), n.to_owned())))
                };
                for from in &endpoints {
                    for to in &endpoints {
                        if !is_local(from) && !is_local(to) {
                            continue;
                        }
                        let (src, dst) = (peer(&pods, from), peer(&pods, to));
                        for protocol in Protocol::ALL {
                            for port in ports {
                                let want = (!is_local(from)
                                    || evaluator.egress_allows(&src, &dst, port, protocol))
                                    && (!is_local(to)
                                        || evaluator.ingress_allows(&src, &dst, port, protocol));
                                let got = plan.admits(src.ip(), dst.ip(), protocol, port);
                                assert_eq!(got, want, "{name}: {from} -> {to} {port}/{protocol}");
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 10_000, "only {checked} connections checked");
    }

    #[test]
    fn deny_all_ingress_snapshot() {
        let policies = [
            policy(
                "default",
                "deny",
                json!({"podSelector": {"matchLabels": {"app": "db"}}}),
            ),
            policy(
                "default",
                "db-from-api",
                json!({
                    "podSelector": {"matchLabels": {"app": "db"}},
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}},
                                          {"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}}],
                                 "ports": [{"port": 5432}, {"port": 6000, "endPort": 6010}]}],
                }),
            ),
        ];
        let evaluator = Evaluator::new(&policies, namespaces()).expect("compiles");
        let text = compile(
            &evaluator,
            &pods(),
            &local(&["default/db", "default/web"]),
            &target(Family::Bridge),
        );
        let want = "\
# kubeforge NetworkPolicy enforcement for this node's Pods (generated).
table bridge kubeforge_netpol
delete table bridge kubeforge_netpol
table bridge kubeforge_netpol {
\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\tct state established,related accept
\t\tmeta protocol { ip, ip6 } ct state invalid drop
\t\tip daddr 10.0.0.12 jump ingress_default_db
\t}
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tct state established,related accept
\t\tmeta protocol { ip, ip6 } ct state invalid drop
\t\tip daddr 10.0.0.12 jump ingress_default_db
\t}
\tchain ingress_default_db {
\t\tip saddr 10.0.0.11 meta l4proto tcp th dport { 5432, 6000-6010 } return comment \"default/db-from-api ingress[0]\"
\t\tip saddr 192.0.2.0/24 ip saddr != 192.0.2.128/25 meta l4proto tcp th dport { 5432, 6000-6010 } return comment \"default/db-from-api ingress[0]\"
\t\tdrop
\t}
}
";
        assert_eq!(text, want);
    }

    #[test]
    fn egress_chains_and_named_ports() {
        let policies = &scenarios()[3].1;
        let evaluator = Evaluator::new(policies, namespaces()).expect("compiles");
        let text = compile(&evaluator, &pods(), &all_local(), &target(Family::Inet));
        for line in [
            "table inet kubeforge_netpol {",
            "ip saddr 10.0.0.13 jump egress_default_client",
            "ip daddr 10.0.0.10 jump ingress_default_web",
            // Ingress named ports resolve against the local Pod; unknown names vanish.
            "ip saddr 10.0.0.0/16 ip saddr != { 10.0.1.12/32, 10.0.2.0/24 } meta l4proto tcp th dport 8080 return",
            "ip saddr 10.0.0.0/16 ip saddr != { 10.0.1.12/32, 10.0.2.0/24 } meta l4proto udp th dport 53 return",
            // Egress named ports resolve against each destination Pod.
            "ip daddr 10.0.0.10 meta l4proto tcp th dport 8080 return",
            "ip daddr 10.0.0.11 meta l4proto tcp th dport 9090 return",
            "meta l4proto udp return comment \"default/named-out egress[0]\"",
            // AND peer (dev clients) and OR peer (own-namespace web) merge into one address set.
            "ip daddr { 10.0.1.11, 10.0.2.10 } meta l4proto tcp th dport { 80, 8000-8100 } return",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("nope"), "unresolvable named port emitted");
        let plan = plan(&evaluator, &pods(), &all_local());
        let chain = plan.chains.iter().find(|c| c.name == "ingress_default_db");
        assert!(chain.is_none(), "db is not isolated for ingress");
    }

    #[test]
    fn scoped_base_chains_leave_other_interfaces_alone() {
        let policies = [policy("default", "deny", json!({"podSelector": {}}))];
        let evaluator = Evaluator::new(&policies, namespaces()).unwrap();
        let scoped = Target {
            family: Family::Inet,
            table: "node_a".to_owned(),
            hooks: vec![Hook::Forward, Hook::Input],
            interface: Some("kf-br0".to_owned()),
        };
        let text = compile(&evaluator, &pods(), &all_local(), &scoped);
        for line in [
            "table inet node_a\ndelete table inet node_a\ntable inet node_a {",
            "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tiifname != \"kf-br0\" oifname != \"kf-br0\" accept\n\t\tct state established,related accept",
            "\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tiifname != \"kf-br0\" accept\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("policy drop"), "{text}");
    }

    #[test]
    fn output_is_deterministic_and_independent_of_input_order() {
        let policies = scenarios()
            .into_iter()
            .flat_map(|(_, p)| p)
            .collect::<Vec<_>>();
        let mut reversed = policies.clone();
        reversed.reverse();
        let mut pods_reversed = pods();
        pods_reversed.reverse();
        let a = compile(
            &Evaluator::new(&policies, namespaces()).unwrap(),
            &pods(),
            &all_local(),
            &target(Family::Bridge),
        );
        let b = compile(
            &Evaluator::new(&reversed, namespaces()).unwrap(),
            &pods_reversed,
            &all_local(),
            &target(Family::Bridge),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn ipv6_pods_use_ip6_matches() {
        let mut pods = pods();
        pods[0].ip = "fd00::10".parse().unwrap();
        pods[1].ip = "fd00::11".parse().unwrap();
        let policies = [policy(
            "default",
            "web-from-api",
            json!({
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"from": [{"podSelector": {}}, {"ipBlock": {"cidr": "fd00::/64"}}, {"ipBlock": {"cidr": "10.0.0.0/8"}}]}],
            }),
        )];
        let evaluator = Evaluator::new(&policies, namespaces()).unwrap();
        let text = compile(
            &evaluator,
            &pods,
            &local(&["default/web"]),
            &target(Family::Inet),
        );
        assert!(
            text.contains("ip6 daddr fd00::10 jump ingress_default_web"),
            "{text}"
        );
        assert!(
            text.contains("ip6 saddr { fd00::10, fd00::11 } return"),
            "{text}"
        );
        assert!(text.contains("ip6 saddr fd00::/64 return"), "{text}");
        assert!(
            !text.contains("ip saddr 10.0.0.0/8"),
            "IPv4 rule in an IPv6 Pod's chain:\n{text}"
        );
    }

    #[test]
    fn overlong_chain_names_fall_back_to_an_index() {
        let mut pods = pods();
        pods[2].name = "d".repeat(253);
        let policies = [policy("default", "deny", json!({"podSelector": {}}))];
        let evaluator = Evaluator::new(&policies, namespaces()).unwrap();
        let locals = local(&[&format!("default/{}", pods[2].name)]);
        let plan = plan(&evaluator, &pods, &locals);
        assert_eq!(plan.chains.len(), 1);
        assert_eq!(plan.chains[0].name, "ingress_0");
    }

    /// Every generated ruleset must be accepted by `nft -c` (checked against the kernel in a
    /// throwaway network namespace). Skips, saying so, without `nft`, `ip` or root.
    #[test]
    fn rulesets_pass_nft_check() {
        let usable = |cmd: &str, flag: &str| {
            std::process::Command::new(cmd)
                .arg(flag)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !usable("nft", "--version") || !usable("ip", "-V") {
            kubeforge_testkit::cluster::record_skip(
                "rulesets_pass_nft_check",
                "nft or ip not installed (apt-get install -y nftables iproute2)",
            );
            return;
        }
        let netns = format!("kubeforge-netpol-test-{}", std::process::id());
        let added = std::process::Command::new("ip")
            .args(["netns", "add", &netns])
            .output();
        if !added.is_ok_and(|o| o.status.success()) {
            kubeforge_testkit::cluster::record_skip(
                "rulesets_pass_nft_check",
                "cannot create a network namespace (not root?)",
            );
            return;
        }
        let dir = std::env::temp_dir().join(&netns);
        std::fs::create_dir_all(&dir).unwrap();
        let nft_check = |file: &std::path::Path| {
            std::process::Command::new("ip")
                .args(["netns", "exec", &netns, "nft", "-c", "-f"])
                .arg(file)
                .output()
                .unwrap()
        };
        // The bridge family's `ct` needs CONFIG_NF_CONNTRACK_BRIDGE; probe for it.
        let probe = dir.join("probe.nft");
        std::fs::write(
            &probe,
            "table bridge probe {\n\tchain f {\n\t\ttype filter hook forward priority filter;\n\t\tct state established accept\n\t}\n}\n",
        )
        .unwrap();
        let mut families = vec![Family::Inet];
        if nft_check(&probe).status.success() {
            families.push(Family::Bridge);
        } else {
            kubeforge_testkit::cluster::record_skip(
                "rulesets_pass_nft_check (bridge family)",
                "the kernel lacks bridge conntrack (CONFIG_NF_CONNTRACK_BRIDGE)",
            );
        }
        let mut failures = Vec::new();
        let mut checked = 0;
        for (name, policies) in scenarios() {
            let evaluator = Evaluator::new(&policies, namespaces()).unwrap();
            for family in &families {
                let scoped = Target {
                    interface: Some("cni0".to_owned()),
                    table: "kubeforge_netpol_check".to_owned(),
                    ..target(*family)
                };
                let text = compile(&evaluator, &pods(), &all_local(), &scoped);
                let file = dir.join(format!("{name}-{family:?}.nft"));
                std::fs::write(&file, &text).unwrap();
                let out = nft_check(&file);
                if !out.status.success() {
                    failures.push(format!(
                        "{name} {family:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                checked += 1;
            }
        }
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &netns])
            .output();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            failures.is_empty(),
            "nft rejected:\n{}",
            failures.join("\n")
        );
        assert_eq!(checked, 4 * families.len());
    }
}
