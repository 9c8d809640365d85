//! A NetworkPolicy enforcer for one node, as a CNI plugin's node agent (Calico's Felix, Cilium's
//! agent) is: it turns the cluster's `networking.k8s.io/v1` NetworkPolicies into an nftables
//! table filtering the node's Pods' traffic, replaced atomically whenever a NetworkPolicy, a Pod
//! or a Namespace changes.
//!
//! - **Semantics** ([`evaluator`]): the documented ones — isolation per direction, additive
//!   policies, both the source's egress and the destination's ingress must allow a connection,
//!   `podSelector` / `namespaceSelector` (AND within one peer, OR across peers), `ipBlock` with
//!   `except`, numeric, ranged (`endPort`) and named ports, TCP/UDP/SCTP.
//! - **Enforcement** ([`nft`]): an `inet` table named [`NetworkPolicyOptions::table`] whose
//!   `forward` base chain sees the node's Pods' traffic — bridged Pod-to-Pod traffic too, through
//!   br_netfilter (`net.bridge.bridge-nf-call-iptables=1`, which a bridge CNI needs anyway). The
//!   base chain keeps `policy accept` and leaves alone any packet that neither enters nor leaves
//!   through [`NetworkPolicyOptions::bridge`], so other tables and nodes on the same kernel are
//!   unaffected. Replies of allowed connections pass by conntrack; established connections
//!   survive a policy change, as in most implementations. The table stays when the enforcer
//!   stops (a restart replaces it atomically; Pods are never left open in between) unless
//!   [`NetworkPolicyOptions::remove_on_stop`] asks otherwise. Every node runs its enforcer,
//!   leader or not; the caches are synced before the first ruleset.
//! - **Inputs**: NetworkPolicies, Pods and Namespaces of the whole cluster (a `namespaceSelector`
//!   reaches any Namespace, and remote Pods' IPs are what selectors expand to), whatever
//!   namespace the manager is scoped to. Local Pods are those with `spec.nodeName` equal to
//!   [`NetworkPolicyOptions::node_name`] and a `status.podIP`; host-network Pods are skipped.
//! - **Invalid policies** (which the API server's validation should have refused — a CIDR that
//!   does not parse, `endPort` below `port`, an unknown operator…) fail closed: the policy is
//!   replaced by one selecting the same Pods (its whole Namespace if the `podSelector` itself is
//!   bad) for the same policy types with no rules, so its Pods are isolated with nothing allowed
//!   by it, and a Warning Event `InvalidNetworkPolicy` on it names the field. Keeping the last
//!   good ruleset instead was rejected: it goes stale as Pods come and go (a new Pod reusing a
//!   deleted Pod's IP would inherit its rules); ignoring the policy was rejected because it opens
//!   what its author meant to close.
//! - **Failures to apply** (`nft` missing, the kernel refusing) are logged and retried every
//!   [`RETRY`]; the previous ruleset stays in force meanwhile.
//!
//! Left out compared with Calico or Cilium: IPv6 and dual-stack Pods (the compiler emits `ip6`
//! matches but only `status.podIP` is read), Services (policies apply after kube-proxy's DNAT,
//! which this node does not do), traffic between a Pod and its own node (the `input`/`output`
//! hooks are not filtered: upstream always allows a node to reach its Pods), host-network Pods,
//! ICMP when a rule lists ports, logging of dropped packets, and `AdminNetworkPolicy`.

pub mod evaluator;
pub mod nft;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicySpec};
use kube::ResourceExt;
use kubeforge::controller::{Action, BuildError, Context, Controller, ReconcileError, Watch};
use kubeforge::informer::{HandlerFns, InformerOptions, Lister, SharedIndexInformer};
use kubeforge::manager::{Manager, Runnable};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use evaluator::{Evaluator, Labels, NamedPort, PodInfo, PolicyError, Protocol};

/// The controller's name (logs, metrics, events).
pub const NAME: &str = "networkpolicy-controller";
/// The label the API server puts on every Namespace, naming it; selectors may use it.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// How long a failed `nft` run waits before the next try.
pub const RETRY: Duration = Duration::from_secs(2);

/// Which node this enforcer is for and where its ruleset goes.
#[derive(Clone, Debug)]
pub struct NetworkPolicyOptions {
    /// The node whose Pods are filtered (`spec.nodeName` of local Pods).
    pub node_name: String,
    /// The interface the node's Pods hang off (a bridge CNI's `cni0`): the base chain leaves
    /// alone packets that neither enter nor leave through it.
    pub bridge: String,
    /// The nftables `inet` table the ruleset owns and replaces: unique per node on one kernel.
    pub table: String,
    /// The `nft` program (a bare name is looked up on `$PATH`, then in /usr/sbin and /sbin).
    pub nft: PathBuf,
    /// Whether stopping deletes the table. Off by default, as Calico and Cilium keep their rules
    /// across an agent restart: the next start replaces the table atomically, so Pods are never
    /// left open in between. Tests turn it on to leave the host clean.
    pub remove_on_stop: bool,
    /// What is enforced now, published after every successful apply (for tests and health).
    pub enforced: Enforced,
}

impl Default for NetworkPolicyOptions {
    /// Node `$NODE_NAME` (else the host name), bridge `cni0`, table `kubeforge_netpol`, `nft`.
    fn default() -> Self {
        let node_name = std::env::var("NODE_NAME")
            .ok()
            .filter(|n| !n.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
                    .filter(|h| !h.is_empty())
            })
            .unwrap_or_else(|| "localhost".to_owned());
        NetworkPolicyOptions {
            node_name,
            bridge: "cni0".to_owned(),
            table: nft::TABLE.to_owned(),
            nft: PathBuf::from("nft"),
            remove_on_stop: false,
            enforced: Enforced::default(),
        }
    }
}

/// The ruleset in force and what it was built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enforcement {
    /// The policies taken into account, as `namespace/name`, sorted.
    pub policies: Vec<String>,
    /// Those of them enforced as deny-all stand-ins because they are invalid.
    pub invalid: Vec<String>,
    /// The local Pods, as `namespace/name`, sorted.
    pub local_pods: Vec<String>,
    /// The ruleset text given to `nft -f -`.
    pub ruleset: String,
}

/// A handle on the latest [`Enforcement`] (none before the first apply). Cheap to clone; clones
/// share the value, so a test can keep one and give the other to the controller.
#[derive(Clone, Debug)]
pub struct Enforced(Arc<watch::Sender<Option<Arc<Enforcement>>>>);

impl Default for Enforced {
    fn default() -> Self {
        Enforced(Arc::new(watch::Sender::new(None)))
    }
}

impl Enforced {
    /// The latest enforcement.
    pub fn current(&self) -> Option<Arc<Enforcement>> {
        self.0.borrow().clone()
    }

    /// A receiver that sees every later enforcement.
    pub fn subscribe(&self) -> watch::Receiver<Option<Arc<Enforcement>>> {
        self.0.subscribe()
    }
}

/// Registers the enforcer with default options: this host's node name (`$NODE_NAME`, else the
/// hostname), Pods on bridge `cni0`, table `kubeforge_netpol`.
///
/// # Errors
/// The manager refuses the controller (a duplicate name).
pub fn setup(mgr: &mut Manager) -> Result<(), BuildError> {
    setup_with(mgr, NetworkPolicyOptions::default())
}

/// Registers the enforcer for `options.node_name` with `mgr`: cluster-wide informers for
/// NetworkPolicies, Pods and Namespaces, the runnable that keeps the nftables table in line with
/// them, and a NetworkPolicy controller that reports invalid policies as Warning Events (and
/// declares the RBAC: get/list/watch on all three kinds, create on Events).
///
/// # Errors
/// The manager refuses the controller (a duplicate name).
pub fn setup_with(mgr: &mut Manager, options: NetworkPolicyOptions) -> Result<(), BuildError> {
    let informers = mgr.informers().clone();
    let cluster_wide = InformerOptions::default();
    let policies = informers.informer::<NetworkPolicy>(cluster_wide.clone());
    let pods = informers.informer::<Pod>(cluster_wide.clone());
    let namespaces = informers.informer::<Namespace>(cluster_wide);
    let enforcer = Arc::new(Enforcer {
        policies: policies.lister(),
        pods: pods.lister(),
        namespaces: namespaces.lister(),
        changed: Arc::new(Notify::new()),
        options,
        informers: (policies.clone(), pods.clone(), namespaces.clone()),
    });
    nudge_on_change(&policies, &enforcer.changed);
    nudge_on_change(&pods, &enforcer.changed);
    nudge_on_change(&namespaces, &enforcer.changed);
    mgr.add(EnforcerRunnable(enforcer.clone()));
    Controller::managed_by(mgr)
        .for_::<NetworkPolicy>(Watch::new())
        .reads::<Pod>()
        .reads::<Namespace>()
        .named(NAME)
        .complete(reconcile, enforcer)
}

/// Every add, update and delete of `informer`'s objects wakes the enforcer (a stored permit:
/// changes during a rebuild cause one more rebuild, none is lost).
fn nudge_on_change<K>(informer: &SharedIndexInformer<K>, changed: &Arc<Notify>)
where
    K: kube::Resource
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (add, update, delete) = (changed.clone(), changed.clone(), changed.clone());
    let _ = informer.add_event_handler(
        HandlerFns::<K>::new()
            .on_add(move |_, _| add.notify_one())
            .on_update(move |_, _| update.notify_one())
            .on_delete(move |_| delete.notify_one()),
    );
}

/// Reports an invalid policy as a Warning Event (its stand-in is already enforced).
async fn reconcile(
    policy: Arc<NetworkPolicy>,
    ctx: Context<Arc<Enforcer>>,
) -> Result<Action, ReconcileError> {
    if let Err(error) = Evaluator::new(std::slice::from_ref(policy.as_ref()), BTreeMap::new()) {
        let note = format!(
            "{error}; enforced as if it allowed nothing to or from the Pods it selects until fixed"
        );
        tracing::warn!(policy = %format!("{}/{}", error.namespace, error.name), %note, "invalid NetworkPolicy");
        let _ = ctx
            .recorder()
            .warning(policy.as_ref(), "InvalidNetworkPolicy", &note)
            .await;
    }
    ctx.data().changed.notify_one();
    Ok(Action::await_change())
}

/// The caches the ruleset is built from, and the wake-up for rebuilding it.
struct Enforcer {
    policies: Lister<NetworkPolicy>,
    pods: Lister<Pod>,
    namespaces: Lister<Namespace>,
    changed: Arc<Notify>,
    options: NetworkPolicyOptions,
    /// The informers behind the listers: the first ruleset waits for all three to sync (the
    /// manager waits only for the controller's own caches), so a half-loaded cache never opens
    /// Pods (no Pods seen yet) or closes them (no Namespaces seen yet).
    informers: (
        SharedIndexInformer<NetworkPolicy>,
        SharedIndexInformer<Pod>,
        SharedIndexInformer<Namespace>,
    ),
}

impl Enforcer {
    /// Waits until every cache the ruleset reads has synced; false when one never will (the
    /// informer stopped).
    async fn synced(&self) -> bool {
        let (policies, pods, namespaces) = &self.informers;
        policies.wait_for_sync().await
            && pods.wait_for_sync().await
            && namespaces.wait_for_sync().await
    }

    /// The ruleset for the caches' current content.
    fn desired(&self) -> Enforcement {
        desired(
            &self.policies.list(),
            &self.pods.list(),
            &self.namespaces.list(),
            &self.options,
        )
    }
}

/// Keeps the table in line with the caches until stopped (then deletes it if asked to).
struct EnforcerRunnable(Arc<Enforcer>);

impl Runnable for EnforcerRunnable {
    fn name(&self) -> &str {
        "networkpolicy-enforcer"
    }

    /// Every node enforces its own Pods' policies, leader or not.
    fn needs_leader_election(&self) -> bool {
        false
    }

    fn start(self: Box<Self>, stop: CancellationToken) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let enforcer = self.0;
            let options = &enforcer.options;
            warn_without_bridge_filtering();
            tokio::select! {
                () = stop.cancelled() => return,
                synced = enforcer.synced() => if !synced {
                    tracing::error!("the NetworkPolicy enforcer's caches stopped before syncing; nothing enforced");
                    return;
                },
            }
            let mut applied: Option<String> = None;
            loop {
                let want = enforcer.desired();
                let mut failed = false;
                if applied.as_deref() != Some(want.ruleset.as_str()) {
                    match run_nft(&options.nft, &["-f", "-"], Some(&want.ruleset)).await {
                        Ok(()) => {
                            tracing::info!(
                                node = %options.node_name,
                                table = %options.table,
                                policies = want.policies.len(),
                                local_pods = want.local_pods.len(),
                                "NetworkPolicy ruleset applied"
                            );
                            applied = Some(want.ruleset.clone());
                        }
                        Err(error) => {
                            tracing::error!(%error, table = %options.table, "applying the NetworkPolicy ruleset failed; the previous one stays in force");
                            failed = true;
                        }
                    }
                }
                if !failed {
                    let unchanged = options.enforced.current().is_some_and(|c| *c == want);
                    if !unchanged {
                        options.enforced.0.send_replace(Some(Arc::new(want)));
                    }
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = enforcer.changed.notified() => {}
                    () = tokio::time::sleep(RETRY), if failed => {}
                }
            }
            if options.remove_on_stop {
                delete_table(options).await;
            }
        })
    }
}

/// Same-node Pod-to-Pod traffic is bridged: the `inet` table sees it only with br_netfilter's
/// `bridge-nf-call-iptables`. Says so loudly when it is off, as nothing else would.
fn warn_without_bridge_filtering() {
    let setting = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    match std::fs::read_to_string(setting) {
        Ok(value) if value.trim() == "1" => {}
        Ok(_) | Err(_) => tracing::error!(
            "{setting} is not 1: traffic between Pods on this node's bridge bypasses the \
             NetworkPolicy table; run `modprobe br_netfilter && sysctl -w \
             net.bridge.bridge-nf-call-iptables=1`"
        ),
    }
}

/// Deletes the enforcer's table (an absent one is fine): stopping stops the filtering.
async fn delete_table(options: &NetworkPolicyOptions) {
    let args = ["delete", "table", "inet", options.table.as_str()];
    match run_nft(&options.nft, &args, None).await {
        Ok(()) => tracing::info!(table = %options.table, "NetworkPolicy ruleset removed"),
        Err(error) if error.contains("No such file or directory") => {}
        Err(error) => tracing::error!(%error, "removing the NetworkPolicy ruleset failed"),
    }
}

/// Runs `nft args…` with `input` on stdin; the error says what failed and how to fix it.
async fn run_nft(nft: &Path, args: &[&str], input: Option<&str>) -> Result<(), String> {
    let program = locate(nft);
    let command_line = format!("{} {}", program.display(), args.join(" "));
    let mut child = tokio::process::Command::new(&program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run `{command_line}`: {e} (install nftables: apt-get install -y nftables)"
            )
        })?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // A write error (nft exited early) shows in its status and stderr below.
        let _ = stdin.write_all(input.as_bytes()).await;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| format!("waiting for `{command_line}`: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let hint = if stderr.contains("Operation not permitted") {
        " (nftables needs root: CAP_NET_ADMIN)"
    } else {
        ""
    };
    Err(format!(
        "`{command_line}` failed ({}): {}{hint}",
        output.status,
        stderr.trim()
    ))
}

/// A bare program name found on `$PATH` or in the sbin directories (`nft` lives in /usr/sbin,
/// often missing from a service's `$PATH`); anything else as given.
fn locate(program: &Path) -> PathBuf {
    if program.components().count() != 1 {
        return program.to_owned();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| program.to_owned())
}

/// The enforcement for these objects: pure, so it is tested without a kernel.
pub fn desired(
    policies: &[Arc<NetworkPolicy>],
    pods: &[Arc<Pod>],
    namespaces: &[Arc<Namespace>],
    options: &NetworkPolicyOptions,
) -> Enforcement {
    let (enforced, problems) = fail_closed(policies.iter().map(|p| p.as_ref()));
    let evaluator = Evaluator::new(&enforced, namespace_labels(namespaces))
        .expect("fail_closed leaves only policies that compile");
    let infos: Vec<PodInfo> = pods.iter().filter_map(|p| pod_info(p)).collect();
    let local: BTreeSet<(String, String)> = pods
        .iter()
        .filter(|p| {
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&options.node_name)
        })
        .filter_map(|p| pod_info(p))
        .map(|p| (p.namespace, p.name))
        .collect();
    let target = nft::Target {
        family: nft::Family::Inet,
        table: options.table.clone(),
        hooks: vec![nft::Hook::Forward],
        interface: Some(options.bridge.clone()),
    };
    let ruleset = nft::compile(&evaluator, &infos, &local, &target);
    let key = |ns: &str, name: &str| format!("{ns}/{name}");
    let mut names: Vec<String> = enforced
        .iter()
        .map(|p| key(&p.namespace().unwrap_or_default(), &p.name_any()))
        .collect();
    names.sort();
    Enforcement {
        policies: names,
        invalid: problems
            .iter()
            .map(|e| key(&e.namespace, &e.name))
            .collect(),
        local_pods: local.iter().map(|(ns, name)| key(ns, name)).collect(),
        ruleset,
    }
}

/// The policies to enforce: valid ones as they are, each invalid one replaced by a deny-all
/// stand-in (see the module docs), with the reasons. A policy without a namespace (which no API
/// server returns) is dropped.
pub fn fail_closed<'a>(
    policies: impl IntoIterator<Item = &'a NetworkPolicy>,
) -> (Vec<NetworkPolicy>, Vec<PolicyError>) {
    let compiles = |p: &NetworkPolicy| Evaluator::new(std::slice::from_ref(p), BTreeMap::new());
    let mut enforced = Vec::new();
    let mut problems = Vec::new();
    for policy in policies {
        let Err(error) = compiles(policy) else {
            enforced.push(policy.clone());
            continue;
        };
        problems.push(error);
        let spec = policy.spec.clone().unwrap_or_default();
        let mut stand_in = NetworkPolicy {
            metadata: policy.metadata.clone(),
            spec: Some(NetworkPolicySpec {
                pod_selector: spec.pod_selector.clone(),
                policy_types: Some(effective_types(&spec)),
                ..NetworkPolicySpec::default()
            }),
        };
        if compiles(&stand_in).is_err()
            && let Some(spec) = stand_in.spec.as_mut()
        {
            spec.pod_selector = Some(Default::default());
        }
        if compiles(&stand_in).is_ok() {
            enforced.push(stand_in);
        }
    }
    (enforced, problems)
}

/// The policy types a spec governs: as listed when every entry is valid, both when one is not,
/// and by default `Ingress` plus `Egress` when there are egress rules.
fn effective_types(spec: &NetworkPolicySpec) -> Vec<String> {
    let both = || vec!["Ingress".to_owned(), "Egress".to_owned()];
    match spec.policy_types.as_deref() {
        Some(types) if !types.is_empty() => {
            if types.iter().all(|t| t == "Ingress" || t == "Egress") {
                types.to_vec()
            } else {
                both()
            }
        }
        _ if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) => both(),
        _ => vec!["Ingress".to_owned()],
    }
}

/// Each Namespace's labels, with `kubernetes.io/metadata.name` as the API server sets it.
fn namespace_labels(namespaces: &[Arc<Namespace>]) -> BTreeMap<String, Labels> {
    namespaces
        .iter()
        .map(|ns| {
            let name = ns.name_any();
            let mut labels: Labels = ns.labels().clone();
            labels
                .entry(NAMESPACE_NAME_LABEL.to_owned())
                .or_insert_with(|| name.clone());
            (name, labels)
        })
        .collect()
}

/// What policies need to know about a Pod, if it has an IP of its own (not host-network, not
/// finished).
pub fn pod_info(pod: &Pod) -> Option<PodInfo> {
    let spec = pod.spec.as_ref()?;
    let status = pod.status.as_ref()?;
    let finished = matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"));
    if spec.host_network == Some(true) || finished {
        return None;
    }
    let ip: IpAddr = status.pod_ip.as_deref()?.parse().ok()?;
    let ports = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            Some(NamedPort {
                name: p.name.clone()?,
                port: u16::try_from(p.container_port).ok()?,
                protocol: Protocol::from_api(p.protocol.as_deref().unwrap_or("TCP"))?,
            })
        })
        .collect();
    Some(PodInfo {
        namespace: pod.namespace()?,
        name: pod.name_any(),
        labels: pod.labels().clone(),
        ip,
        ports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object<K: serde::de::DeserializeOwned>(value: serde_json::Value) -> Arc<K> {
        Arc::new(serde_json::from_value(value).expect("valid object"))
    }

    fn options() -> NetworkPolicyOptions {
        NetworkPolicyOptions {
            node_name: "node-a".to_owned(),
            bridge: "kfbr".to_owned(),
            table: "t1".to_owned(),
            ..NetworkPolicyOptions::default()
        }
    }

    fn pod(ns: &str, name: &str, node: &str, ip: Option<&str>) -> Arc<Pod> {
        object(json!({
            "metadata": {"namespace": ns, "name": name, "labels": {"app": name}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
                {"name": "http", "containerPort": 8080},
                {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                {"containerPort": 9090},
            ]}]},
            "status": {"podIP": ip, "phase": "Running"},
        }))
    }

    #[test]
    fn local_pods_are_those_of_this_node_with_an_ip() {
        let pods = [
            pod("a", "web", "node-a", Some("10.1.0.2")),
            pod("a", "pending", "node-a", None),
            pod("b", "remote", "node-b", Some("10.1.1.2")),
        ];
        let mut host: Pod = (*pod("a", "host", "node-a", Some("192.0.2.1"))).clone();
        host.spec.as_mut().unwrap().host_network = Some(true);
        let all: Vec<Arc<Pod>> = pods.into_iter().chain([Arc::new(host)]).collect();
        let deny = object(
            json!({"metadata": {"namespace": "a", "name": "deny"}, "spec": {"podSelector": {}}}),
        );
        let got = desired(&[deny], &all, &[], &options());
        assert_eq!(got.local_pods, ["a/web"]);
        assert_eq!(got.policies, ["a/deny"]);
        assert!(got.ruleset.contains("table inet t1 {"), "{}", got.ruleset);
        assert!(
            got.ruleset
                .contains("iifname != \"kfbr\" oifname != \"kfbr\" accept"),
            "{}",
            got.ruleset
        );
        assert!(got.ruleset.contains("ip daddr 10.1.0.2 jump ingress_a_web"));
        assert!(
            !got.ruleset.contains("192.0.2.1"),
            "host-network Pod filtered"
        );
        let info = pod_info(&all[0]).unwrap();
        assert_eq!(
            info.ports,
            [
                NamedPort {
                    name: "http".into(),
                    port: 8080,
                    protocol: Protocol::Tcp
                },
                NamedPort {
                    name: "dns".into(),
                    port: 53,
                    protocol: Protocol::Udp
                },
            ]
        );
    }

    #[test]
    fn namespaces_carry_their_name_label() {
        let ns =
            object::<Namespace>(json!({"metadata": {"name": "prod", "labels": {"team": "ops"}}}));
        let labels = namespace_labels(&[ns]);
        assert_eq!(labels["prod"][NAMESPACE_NAME_LABEL], "prod");
        assert_eq!(labels["prod"]["team"], "ops");
    }

    /// An invalid policy isolates what it selects for the directions it names, allowing nothing;
    /// with a bad `podSelector`, its whole Namespace. Valid policies beside it stay in force.
    #[test]
    fn invalid_policies_fail_closed() {
        let policies: Vec<NetworkPolicy> = [
            json!({"metadata": {"namespace": "a", "name": "bad-cidr"}, "spec": {
                "podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"from": [{"ipBlock": {"cidr": "nonsense"}}]}],
                "egress": [{}],
            }}),
            json!({"metadata": {"namespace": "a", "name": "bad-selector"}, "spec": {
                "podSelector": {"matchExpressions": [{"key": "x", "operator": "Near"}]},
                "policyTypes": ["Egress"],
            }}),
            json!({"metadata": {"namespace": "a", "name": "good"}, "spec": {
                "podSelector": {}, "ingress": [{}],
            }}),
        ]
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
        let (enforced, problems) = fail_closed(&policies);
        assert_eq!(problems.len(), 2);
        assert!(
            problems[0]
                .to_string()
                .contains("spec.ingress[0].from[0].ipBlock.cidr"),
            "{}",
            problems[0]
        );
        let evaluator = Evaluator::new(&enforced, BTreeMap::new()).unwrap();
        let web = PodInfo {
            namespace: "a".into(),
            name: "web".into(),
            labels: [("app".to_owned(), "web".to_owned())].into(),
            ip: "10.0.0.2".parse().unwrap(),
            ports: vec![],
        };
        let other = PodInfo {
            name: "other".into(),
            labels: Labels::new(),
            ip: "10.0.0.3".parse().unwrap(),
            ..web.clone()
        };
        let outside = evaluator::Peer::External("192.0.2.9".parse().unwrap());
        let (web_peer, other_peer) = (evaluator::Peer::Pod(&web), evaluator::Peer::Pod(&other));
        // "good" allows all ingress, so ingress stays open despite bad-cidr's stand-in.
        assert!(evaluator.ingress_allows(&outside, &web_peer, 80, Protocol::Tcp));
        // bad-cidr's egress stand-in closes web's egress; bad-selector's closes everyone's.
        assert!(!evaluator.egress_allows(&web_peer, &outside, 80, Protocol::Tcp));
        assert!(!evaluator.egress_allows(&other_peer, &outside, 80, Protocol::Tcp));
        let got = desired(
            &policies.iter().cloned().map(Arc::new).collect::<Vec<_>>(),
            &[],
            &[],
            &options(),
        );
        assert_eq!(got.invalid, ["a/bad-cidr", "a/bad-selector"]);
        assert_eq!(got.policies, ["a/bad-cidr", "a/bad-selector", "a/good"]);
    }
}
