//! A "local node" for the test kit: pods become Linux network namespaces on a bridge, so network
//! policies compiled to nftables can be checked against real TCP/UDP traffic instead of a model.
//!
//! Layout of one [`LocalNode`]: a bridge `kf<pid><seq>` on the host holding the first address of
//! the node's pod CIDR; each pod ([`LocalNode::add_pod`]) is a network namespace whose `eth0` is one
//! end of a veth pair, the other end enslaved to the bridge, with the next free address of the CIDR
//! and a default route via the bridge address. Pods of one node talk over the bridge; pods of
//! different nodes and [`ExternalHost`]s (a namespace outside every pod CIDR, standing in for an
//! external address) talk through the host, which forwards IPv4. Nothing is NATed, so packets carry
//! real pod addresses wherever they are filtered.
//!
//! Filtering (checked on a 6.18 kernel with nftables 1.0.6): bridged IPv4 traffic traverses the
//! `inet` family's `forward` hook — through br_netfilter, `bridge-nf-call-iptables=1`, which
//! [`LocalNode::create`] turns on — with conntrack, while the `bridge` family has no conntrack
//! there (`CONFIG_NF_CONNTRACK_BRIDGE` unset). Pod-to-Pod packets on one node show the bridge as
//! both `iifname` and `oifname`; Pod-to-external packets the bridge and the external host's
//! veth. Rulesets must scope their base chains to the node's [`bridge`](LocalNode::bridge) and
//! keep `policy accept`: every table's base chain sees every packet on the host, and tests run
//! in parallel, so a `drop` policy in one test's table would drop another test's traffic.
//!
//! [`Kubelet`] plays the node's kubelet against an API server: it registers a `Node` with the
//! pod CIDR, gives each Pod scheduled to the node a network namespace here and reports its IP
//! in the Pod's status, so controllers (a NetworkPolicy enforcer, say) see real Pod IPs that
//! real packets come from.
//!
//! Many nodes may exist at once (parallel tests, concurrent test processes): all names are unique
//! per process and pid (see `names`), [`LocalNode::create_unique`] picks an unused /24, and each node
//! removes exactly what it created — on [`Drop`] too, so a panicking test cleans up; leftovers of
//! killed processes are removed by [`sweep_stale`] (run once per process by the first `create`).
//!
//! Everything here needs root and blocks (it runs `ip`/`nft` and waits for network timeouts); from
//! async tests call it through `tokio::task::spawn_blocking`. [`unavailable_reason`] tells a test
//! why it cannot run here.

mod cmd;
mod error;
mod external;
mod kubelet;
mod names;
mod netns;
mod probe;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard, Once};
use std::time::Duration;

use ipnet::Ipv4Net;

pub use cmd::unavailable_reason;
pub use error::{NodeError, Result};
pub use external::ExternalHost;
pub use kubelet::Kubelet;
pub use names::sweep_stale;
pub use probe::{Listener, Probe, Reach};

use names::Kind;

/// A node's pods, keyed by (namespace, name), and the nftables tables to delete on teardown.
#[derive(Debug, Default)]
struct State {
    pods: BTreeMap<(String, String), PodNet>,
    tables: Vec<(String, String)>,
    torn_down: bool,
}

/// One node's pod network: a bridge, its pods' namespaces and veths, and the nftables tables
/// applied through it. Removed on drop (or by [`LocalNode::teardown`]). Share it with `Arc`; all
/// methods take `&self`.
#[derive(Debug)]
pub struct LocalNode {
    name: String,
    bridge: String,
    cidr: Ipv4Net,
    gateway: Ipv4Addr,
    state: Mutex<State>,
}

/// A pod's place on a [`LocalNode`]: its address and network namespace. A plain description,
/// cheap to clone; the node owns the namespace, so probes fail once the pod is removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNet {
    /// The pod's namespace (Kubernetes namespace, not network namespace).
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// The pod's IP, from the node's pod CIDR.
    pub ip: Ipv4Addr,
    /// The network namespace the pod lives in (`ip netns exec <netns> …` works for manual checks).
    pub netns: String,
    /// The host end of the pod's veth, a port of the node's bridge.
    pub host_veth: String,
    /// The pod's default gateway: the node's bridge address.
    pub gateway: Ipv4Addr,
}

/// Removes objects of killed test processes, once per process.
static SWEEP: Once = Once::new();

impl LocalNode {
    /// Creates node `name` with pod network `pod_cidr` (at least a /30; the bridge gets its first
    /// address). The CIDR must not overlap other networks on the host — see
    /// [`create_unique`](Self::create_unique) to have one picked. Turns on IPv4 forwarding and
    /// `bridge-nf-call-iptables` host-wide. Blocking.
    pub fn create(name: &str, pod_cidr: Ipv4Net) -> Result<Self> {
        let cidr = pod_cidr.trunc();
        // /31 and /32 have no network/broadcast addresses to skip, but also no room for both.
        let Some(gateway) = cidr.hosts().next().filter(|_| cidr.prefix_len() <= 30) else {
            return Err(NodeError::CidrTooSmall(cidr));
        };
        SWEEP.call_once(|| match sweep_stale() {
            Ok(0) => {}
            Ok(removed) => tracing::info!(
                removed,
                "local node: removed leftovers of killed test processes"
            ),
            Err(error) => tracing::warn!(%error, "local node: sweeping leftovers failed"),
        });
        cmd::enable_forwarding()?;
        let node = Self {
            name: name.to_owned(),
            bridge: names::unique(Kind::Bridge),
            cidr,
            gateway,
            state: Mutex::default(),
        };
        // On failure `node` is dropped here, removing whatever was created.
        let (bridge, what) = (
            node.bridge.as_str(),
            format!("creating bridge for node {name}"),
        );
        cmd::ip(&["link", "add", bridge, "type", "bridge"], &what)?;
        cmd::ip(
            &[
                "addr",
                "add",
                &format!("{gateway}/{}", cidr.prefix_len()),
                "dev",
                bridge,
            ],
            &what,
        )?;
        cmd::ip(&["link", "set", bridge, "up"], &what)?;
        tracing::debug!(node = name, bridge, %cidr, "local node created");
        Ok(node)
    }

    /// Creates node `name` with a free `10.244.X.0/24` pod CIDR (X in 1..=254, skipping networks
    /// already routed or addressed on this host, starting at a pid-dependent X so concurrent test
    /// processes rarely race; a race is detected and retried). Blocking.
    pub fn create_unique(name: &str) -> Result<Self> {
        static PICK: Mutex<()> = Mutex::new(());
        let _picking = PICK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let candidates = names::candidates([10, 244], 1..=254);
        names::claim_free(
            &candidates,
            "a node's pod CIDR",
            "10.244.1-254.0/24",
            |cidr| {
                let node = Self::create(name, cidr)?;
                let bridge = node.bridge.clone();
                Ok((node, bridge))
            },
        )
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's bridge (for `iifname`/`oifname` in nftables rules: pod-to-pod traffic on this node
    /// has both equal to it in the `inet` forward hook).
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The node's pod CIDR.
    pub fn cidr(&self) -> Ipv4Net {
        self.cidr
    }

    /// The bridge's address: the pods' gateway, and the node's own address as pods see it.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (maps are updated last).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds pod `namespace/name`: a network namespace with loopback up and `eth0` on the bridge,
    /// holding the next free address of the CIDR, default route via the bridge. Blocking.
    pub fn add_pod(&self, namespace: &str, name: &str) -> Result<PodNet> {
        let mut state = self.state();
        let key = (namespace.to_owned(), name.to_owned());
        let pod_name = format!("{namespace}/{name}");
        if state.torn_down {
            return Err(NodeError::TornDown {
                pod: pod_name,
                node: self.name.clone(),
            });
        }
        if state.pods.contains_key(&key) {
            return Err(NodeError::PodExists {
                pod: pod_name,
                node: self.name.clone(),
            });
        }
        let ip = self
            .cidr
            .hosts()
            .find(|ip| *ip != self.gateway && !state.pods.values().any(|pod| pod.ip == *ip))
            .ok_or_else(|| NodeError::CidrExhausted {
                cidr: self.cidr,
                pod: pod_name.clone(),
            })?;
        let pod = PodNet {
            namespace: key.0.clone(),
            name: key.1.clone(),
            ip,
            netns: names::unique_netns(&format!("{namespace}-{name}")),
            host_veth: names::unique(Kind::Veth),
            gateway: self.gateway,
        };
        if let Err(error) = self.wire_pod(&pod, &pod_name) {
            if let Err(cleanup) = remove_pod_objects(&pod) {
                tracing::warn!(%cleanup, "local node: cleaning up a half-created pod failed");
            }
            return Err(error);
        }
        state.pods.insert(key, pod.clone());
        tracing::debug!(node = %self.name, pod = %pod_name, %ip, netns = %pod.netns, "pod added");
        Ok(pod)
    }

    /// Creates `pod`'s namespace and veth and configures both ends.
    fn wire_pod(&self, pod: &PodNet, pod_name: &str) -> Result<()> {
        let (netns, veth) = (pod.netns.as_str(), pod.host_veth.as_str());
        let what = |step: &str| format!("{step} for pod {pod_name} on node {}", self.name);
        cmd::ip(
            &["netns", "add", netns],
            &what("creating network namespace"),
        )?;
        cmd::ip(
            &[
                "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns,
            ],
            &what("creating veth"),
        )?;
        cmd::ip(
            &["link", "set", veth, "master", &self.bridge, "up"],
            &what("attaching the veth to the bridge"),
        )?;
        let addr = format!("{}/{}", pod.ip, self.cidr.prefix_len());
        let gateway = self.gateway.to_string();
        let steps: [(&[&str], &str); 4] = [
            (&["addr", "add", &addr, "dev", "eth0"], "addressing eth0"),
            (&["link", "set", "eth0", "up"], "bringing up eth0"),
            (&["link", "set", "lo", "up"], "bringing up lo"),
            (
                &["route", "add", "default", "via", &gateway],
                "adding the default route",
            ),
        ];
        for (args, step) in steps {
            let mut full = vec!["-n", netns];
            full.extend_from_slice(args);
            cmd::ip(&full, &what(step))?;
        }
        Ok(())
    }

    /// Removes pod `namespace/name` (its namespace and veth) and frees its address. Blocking.
    pub fn remove_pod(&self, namespace: &str, name: &str) -> Result<()> {
        let mut state = self.state();
        let key = (namespace.to_owned(), name.to_owned());
        let pod = state
            .pods
            .remove(&key)
            .ok_or_else(|| NodeError::UnknownPod {
                pod: format!("{namespace}/{name}"),
                node: self.name.clone(),
            })?;
        remove_pod_objects(&pod)
    }

    /// Pod `namespace/name`, if it is on this node.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodNet> {
        self.state()
            .pods
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// The node's pods, ordered by namespace and name.
    pub fn pods(&self) -> Vec<PodNet> {
        self.state().pods.values().cloned().collect()
    }

    /// A fresh nftables table name, unique on this host and swept if the process is killed (e.g.
    /// `table inet <name> { … }` in a ruleset given to [`apply_nft`](Self::apply_nft)).
    pub fn nft_table_name(&self) -> String {
        names::unique(Kind::Table)
    }

    /// Applies `ruleset` with `nft -f -` (atomically: on error nothing changes) and remembers the
    /// tables it declares (`table <family> <name>` / `add table …`) to delete them on teardown.
    /// Blocking.
    pub fn apply_nft(&self, ruleset: &str) -> Result<()> {
        let what = format!("applying an nftables ruleset on node {}", self.name);
        cmd::run("nft", &["-f", "-"], Some(ruleset), &what)?;
        let mut state = self.state();
        for table in declared_tables(ruleset) {
            if !state.tables.contains(&table) {
                state.tables.push(table);
            }
        }
        Ok(())
    }

    /// Deletes nftables table `family name` now (it need not have come from
    /// [`apply_nft`](Self::apply_nft)); an absent table is not an error. Blocking.
    pub fn delete_nft_table(&self, family: &str, name: &str) -> Result<()> {
        self.state()
            .tables
            .retain(|(f, n)| (f.as_str(), n.as_str()) != (family, name));
        delete_table(family, name)
    }

    /// Removes everything this node created — its nftables tables, pods and bridge — and reports
    /// the first failure (every step is still attempted). Drop does the same, logging failures;
    /// call this to see them. Idempotent. Blocking.
    pub fn teardown(&self) -> Result<()> {
        let mut state = self.state();
        if state.torn_down {
            return Ok(());
        }
        state.torn_down = true;
        let tables = std::mem::take(&mut state.tables);
        let pods = std::mem::take(&mut state.pods);
        let mut results: Vec<Result<()>> = tables
            .iter()
            .map(|(family, name)| delete_table(family, name))
            .collect();
        results.extend(pods.values().map(remove_pod_objects));
        let what = format!("deleting bridge {} of node {}", self.bridge, self.name);
        results.push(cmd::ip_gone_ok(&["link", "delete", &self.bridge], &what));
        results.into_iter().collect::<Result<Vec<()>>>().map(drop)
    }
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        if let Err(error) = self.teardown() {
            tracing::warn!(%error, node = %self.name, "local node teardown");
            eprintln!("kubeforge local node {}: teardown: {error}", self.name);
        }
    }
}

/// Deletes a pod's veth (destroying the pair even if a socket still pins its namespace) and its
/// network namespace.
fn remove_pod_objects(pod: &PodNet) -> Result<()> {
    let pod_name = format!("{}/{}", pod.namespace, pod.name);
    let veth = cmd::ip_gone_ok(
        &["link", "delete", &pod.host_veth],
        &format!("deleting veth {} of pod {pod_name}", pod.host_veth),
    );
    let netns = cmd::ip_gone_ok(
        &["netns", "delete", &pod.netns],
        &format!("deleting network namespace {} of pod {pod_name}", pod.netns),
    );
    veth.and(netns)
}

/// Deletes nftables table `family name`, treating an absent table as success.
fn delete_table(family: &str, name: &str) -> Result<()> {
    let what = format!("deleting nftables table {family} {name}");
    match cmd::run("nft", &["delete", "table", family, name], None, &what) {
        Err(NodeError::Command { stderr, .. }) if cmd::is_already_gone(&stderr) => Ok(()),
        other => other.map(drop),
    }
}

/// The nftables address families; a `table` without one is `ip`.
const FAMILIES: [&str; 6] = ["ip", "ip6", "inet", "arp", "bridge", "netdev"];

/// The `(family, name)` of every table a ruleset declares or adds (not ones it deletes or flushes).
fn declared_tables(ruleset: &str) -> Vec<(String, String)> {
    let mut tables = Vec::new();
    for line in ruleset.lines() {
        let code = line.split('#').next().unwrap_or_default();
        let words: Vec<&str> = code.split_whitespace().collect();
        let rest = match words.as_slice() {
            ["table", rest @ ..] | ["add" | "create", "table", rest @ ..] => rest,
            _ => continue,
        };
        let (family, name) = match rest {
            [family, name, ..] if FAMILIES.contains(family) => (*family, *name),
            [name, ..] => ("ip", *name),
            [] => continue,
        };
        let name = name.trim_end_matches('{');
        if !name.is_empty() {
            tables.push((family.to_owned(), name.to_owned()));
        }
    }
    tables
}

impl PodNet {
    /// Probes from inside this pod.
    pub fn probe(&self) -> Probe {
        Probe::in_netns(self.netns.clone())
    }

    /// Listens on TCP `port` in this pod; see [`Probe::listen_tcp`].
    pub fn listen_tcp(&self, port: u16) -> Result<Listener> {
        self.probe().listen_tcp(port)
    }

    /// Listens on UDP `port` in this pod; see [`Probe::listen_udp`].
    pub fn listen_udp(&self, port: u16) -> Result<Listener> {
        self.probe().listen_udp(port)
    }

    /// Connects from this pod to `ip:port` over TCP; see [`Probe::connect_tcp`].
    pub fn connect_tcp(&self, ip: Ipv4Addr, port: u16, timeout: Duration) -> Result<Reach> {
        self.probe().connect_tcp(ip, port, timeout)
    }

    /// A UDP round trip from this pod to `ip:port`; see [`Probe::udp_roundtrip`].
    pub fn udp_roundtrip(&self, ip: Ipv4Addr, port: u16, timeout: Duration) -> Result<Reach> {
        self.probe().udp_roundtrip(ip, port, timeout)
    }
}
