//! The NetworkPolicy controller enforcing real policies on real packets: a local node (a bridge
//! on this host, each Pod a network namespace) with the test kit's kubelet reporting Pod IPs,
//! an external host outside the cluster, and the controller writing the node's nftables table.
//!
//! Every recipe probes every ordered pair of endpoints (five Pods in three Namespaces and the
//! external host) on its ports with real TCP connections and UDP round trips, and checks that
//! each packet's fate is what the pure evaluator says for that pair; then it checks the outcomes
//! a user would look at first. Recipes are applied and removed live, one after the other, on the
//! same running controller.
//!
//! These tests need root and nftables (`apt-get install -y nftables`; CI installs it): they fail,
//! saying so, where either is missing.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, PostParams};
use kubeforge_controllers::networkpolicy::evaluator::{Evaluator, Labels, Peer, PodInfo, Protocol};
use kubeforge_controllers::networkpolicy::{NAMESPACE_NAME_LABEL, NetworkPolicyOptions, pod_info};
use kubeforge_testkit::node::{ExternalHost, Kubelet, Listener, LocalNode, Probe, Reach};
use serde_json::{Value, json};
use support::{Env, eventually};

/// How long a probe waits before calling the traffic dropped.
const PROBE: Duration = Duration::from_millis(1500);
/// How long a second probe waits when an allowed connection timed out (a loaded machine).
const RETRY: Duration = Duration::from_secs(5);
/// The ports every endpoint listens on.
const TCP_PORTS: [u16; 5] = [53, 8080, 8081, 9090, 9096];
const UDP_PORTS: [u16; 2] = [53, 8080];

const TCP: Protocol = Protocol::Tcp;
const UDP: Protocol = Protocol::Udp;

/// Fails the test (never skips) where local nodes and nftables cannot be used.
fn require_root_and_nft() {
    let fix = "run the NetworkPolicy tests as root with nftables installed \
               (apt-get install -y nftables; CI's .ci/run installs it)";
    if let Some(reason) = kubeforge_testkit::node::unavailable_reason() {
        panic!("{reason}: {fix}");
    }
    let nft = ["nft", "/usr/sbin/nft", "/sbin/nft"]
        .into_iter()
        .any(|nft| {
            std::process::Command::new(nft)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    assert!(nft, "`nft` is not installed: {fix}");
}

/// `program` in /usr/sbin (often missing from `$PATH`) if it is there, else as given.
fn sbin(program: &str) -> String {
    let path = format!("/usr/sbin/{program}");
    if std::path::Path::new(&path).is_file() {
        path
    } else {
        program.to_owned()
    }
}

/// The standard output of `program args…`.
fn run(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(sbin(program))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One end of a probed connection.
#[derive(Clone)]
struct Endpoint {
    /// `web`, `prod/client`, `external`…
    label: String,
    ip: Ipv4Addr,
    probe: Probe,
    /// `None` for the external host.
    pod: Option<PodInfo>,
}

impl Endpoint {
    fn peer(&self) -> Peer<'_> {
        match &self.pod {
            Some(pod) => Peer::Pod(pod),
            None => Peer::External(IpAddr::V4(self.ip)),
        }
    }
}

/// What each probe of a recipe saw: (from, to, protocol, port) → outcome.
struct Matrix(HashMap<(String, String, Protocol, u16), Reach>);

impl Matrix {
    fn reached(&self, from: &str, to: &str, protocol: Protocol, port: u16) -> bool {
        let key = (from.to_owned(), to.to_owned(), protocol, port);
        self.0
            .get(&key)
            .unwrap_or_else(|| panic!("{from} -> {to} {port}/{protocol} was not probed"))
            .is_reached()
    }
}

/// A container port: name, number, protocol.
type NamedPort = (&'static str, i32, &'static str);

/// The Pods a test cluster runs: (namespace suffix, name, app label, named ports).
const PODS: [(&str, &str, &str, &[NamedPort]); 5] = [
    ("", "web", "web", &[("http", 8080, "TCP")]),
    ("", "api", "api", &[("http", 8081, "TCP")]),
    ("", "client", "client", &[]),
    ("-prod", "client", "client", &[]),
    ("-dev", "worker", "worker", &[]),
];

/// A running controller on a local node with its Pods up and listening.
struct Cluster {
    /// `None` once stopped.
    env: Option<Env>,
    /// The test's own Namespace (`env.ns`).
    ns: String,
    client: kube::Client,
    node: Arc<LocalNode>,
    kubelet: Option<Kubelet>,
    external: Option<ExternalHost>,
    options: NetworkPolicyOptions,
    /// The test's Namespaces: (name, labels); the first is `env.ns`.
    namespaces: Vec<(String, Labels)>,
    endpoints: Vec<Endpoint>,
    _listeners: Vec<Listener>,
}

impl Cluster {
    async fn start(test: &str) -> Cluster {
        require_root_and_nft();
        let name = format!("np-{test}-{}", std::process::id());
        let node = tokio::task::spawn_blocking(move || LocalNode::create_unique(&name))
            .await
            .unwrap()
            .expect("a local node");
        let node = Arc::new(node);
        let external = tokio::task::spawn_blocking(ExternalHost::create_unique)
            .await
            .unwrap()
            .expect("an external host");
        let options = NetworkPolicyOptions {
            node_name: node.name().to_owned(),
            bridge: node.bridge().to_owned(),
            table: node.nft_table_name(),
            remove_on_stop: true,
            ..NetworkPolicyOptions::default()
        };
        let env = Env::with_options(
            &["networkpolicy"],
            kubeforge_controllers::Options {
                networkpolicy: options.clone(),
                ..Default::default()
            },
        )
        .await;
        let kubelet = Kubelet::start(node.clone(), env.client())
            .await
            .expect("the kubelet registers the node");
        let mut cluster = Cluster {
            namespaces: Vec::new(),
            endpoints: Vec::new(),
            _listeners: Vec::new(),
            ns: env.ns.clone(),
            client: env.client(),
            env: Some(env),
            node,
            kubelet: Some(kubelet),
            external: Some(external),
            options,
        };
        cluster.create_pods().await;
        cluster.listen();
        cluster.wait_enforced(&[]).await;
        cluster
    }

    fn ns(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.ns)
    }

    /// Namespaces `<ns>-prod` (team=operations) and `<ns>-dev` (team=dev), the Pods, their IPs.
    async fn create_pods(&mut self) {
        let client = self.client.clone();
        let own = self.ns.clone();
        self.namespaces
            .push((own.clone(), labels(&[(NAMESPACE_NAME_LABEL, &own)])));
        for (suffix, team) in [("-prod", "operations"), ("-dev", "dev")] {
            let name = self.ns(suffix);
            let labels = labels(&[(NAMESPACE_NAME_LABEL, &name), ("team", team)]);
            let ns: Namespace =
                serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
                    .unwrap();
            Api::<Namespace>::all(client.clone())
                .create(&PostParams::default(), &ns)
                .await
                .expect("create a namespace");
            self.namespaces.push((name, labels));
        }
        for (suffix, name, app, ports) in PODS {
            let ports: Vec<Value> = ports
                .iter()
                .map(|(n, p, proto)| json!({"name": n, "containerPort": p, "protocol": proto}))
                .collect();
            let pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {"app": app}},
                "spec": {"nodeName": self.node.name(), "containers": [
                    {"name": "app", "image": "none", "ports": ports}]},
            }))
            .unwrap();
            Api::<Pod>::namespaced(client.clone(), &self.ns(suffix))
                .create(&PostParams::default(), &pod)
                .await
                .expect("create a Pod");
        }
        for (suffix, name, _, _) in PODS {
            let ns = self.ns(suffix);
            let api = Api::<Pod>::namespaced(client.clone(), &ns);
            let pod = eventually(&format!("{ns}/{name} gets a podIP"), || async {
                api.get(name)
                    .await
                    .ok()
                    .filter(|p| p.status.as_ref().is_some_and(|s| s.pod_ip.is_some()))
            })
            .await;
            let net = self
                .node
                .pod(&ns, name)
                .expect("the Pod's network namespace");
            let info = pod_info(&pod).expect("a Running Pod with an IP");
            assert_eq!(
                info.ip,
                IpAddr::V4(net.ip),
                "podIP is the namespace's address"
            );
            let label = match suffix {
                "" => name.to_owned(),
                s => format!("{}/{name}", &s[1..]),
            };
            self.endpoints.push(Endpoint {
                label,
                ip: net.ip,
                probe: net.probe(),
                pod: Some(info),
            });
        }
        let external = self.external.as_ref().unwrap();
        self.endpoints.push(Endpoint {
            label: "external".to_owned(),
            ip: external.ip(),
            probe: external.probe(),
            pod: None,
        });
    }

    /// Every endpoint echoes on every test port.
    fn listen(&mut self) {
        for endpoint in &self.endpoints {
            for port in TCP_PORTS {
                self._listeners
                    .push(endpoint.probe.listen_tcp(port).expect("listen"));
            }
            for port in UDP_PORTS {
                self._listeners
                    .push(endpoint.probe.listen_udp(port).expect("listen"));
            }
        }
    }

    /// Waits until the controller enforces exactly `policies` (names) of this test, with all
    /// its Pods local.
    async fn wait_enforced(&self, policies: &[String]) {
        let mut want = policies.to_vec();
        want.sort();
        let ours = |name: &String| {
            self.namespaces
                .iter()
                .any(|(ns, _)| name.starts_with(&format!("{ns}/")))
        };
        eventually(
            &format!("the controller enforces {want:?} for 5 Pods"),
            || async {
                let now = self.options.enforced.current()?;
                let names: Vec<String> = now.policies.iter().filter(|n| ours(n)).cloned().collect();
                let pods = now.local_pods.iter().filter(|n| ours(n)).count();
                (names == want && pods == PODS.len()).then_some(())
            },
        )
        .await;
    }

    /// Applies `policies` (JSON with metadata.namespace and name), probes every ordered pair
    /// on `ports`, checks each outcome against the evaluator, removes the policies again.
    async fn recipe(
        &self,
        recipe: &str,
        policies: Vec<Value>,
        ports: &[(Protocol, u16)],
    ) -> Matrix {
        let policies: Vec<NetworkPolicy> = policies
            .into_iter()
            .map(|v| serde_json::from_value(v).expect("a NetworkPolicy"))
            .collect();
        let mut names = Vec::new();
        for policy in &policies {
            let ns = policy.metadata.namespace.clone().unwrap();
            names.push(format!("{ns}/{}", policy.metadata.name.clone().unwrap()));
            Api::<NetworkPolicy>::namespaced(self.client.clone(), &ns)
                .create(&PostParams::default(), policy)
                .await
                .unwrap_or_else(|e| panic!("{recipe}: create {names:?}: {e}"));
        }
        self.wait_enforced(&names).await;
        let namespaces: BTreeMap<String, Labels> = self.namespaces.iter().cloned().collect();
        let evaluator = Evaluator::new(&policies, namespaces).expect("valid policies");
        let matrix = self.probe_all(recipe, &evaluator, ports).await;
        for (policy, name) in policies.iter().zip(&names) {
            let ns = policy.metadata.namespace.as_deref().unwrap();
            Api::<NetworkPolicy>::namespaced(self.client.clone(), ns)
                .delete(&name[ns.len() + 1..], &DeleteParams::default())
                .await
                .unwrap_or_else(|e| panic!("{recipe}: delete {name}: {e}"));
        }
        self.wait_enforced(&[]).await;
        matrix
    }

    /// Probes every ordered pair of distinct endpoints on `ports`, all at once; asserts that
    /// each outcome is the evaluator's verdict (an allowed probe that timed out is retried once
    /// with a longer timeout before it counts).
    async fn probe_all(
        &self,
        recipe: &str,
        evaluator: &Evaluator,
        ports: &[(Protocol, u16)],
    ) -> Matrix {
        let began = Instant::now();
        let mut probes = tokio::task::JoinSet::new();
        let mut wants = HashMap::new();
        for from in &self.endpoints {
            for to in &self.endpoints {
                if from.label == to.label {
                    continue;
                }
                for &(protocol, port) in ports {
                    let want = evaluator.allowed(&from.peer(), &to.peer(), port, protocol);
                    let key = (from.label.clone(), to.label.clone(), protocol, port);
                    wants.insert(key.clone(), want);
                    let (probe, ip) = (from.probe.clone(), to.ip);
                    probes.spawn_blocking(move || {
                        let once = |timeout| match protocol {
                            Protocol::Udp => probe.udp_roundtrip(ip, port, timeout),
                            _ => probe.connect_tcp(ip, port, timeout),
                        };
                        let mut reach = once(PROBE).expect("the probe runs");
                        if want && !reach.is_reached() {
                            reach = once(RETRY).expect("the probe runs");
                        }
                        (key, reach)
                    });
                }
            }
        }
        let mut seen = HashMap::new();
        while let Some(done) = probes.join_next().await {
            let (key, reach) = done.expect("a probe task");
            seen.insert(key, reach);
        }
        let mut wrong: Vec<String> = seen
            .iter()
            .filter(|(key, reach)| reach.is_reached() != wants[*key])
            .map(|((from, to, protocol, port), reach)| {
                let want = if wants[&(from.clone(), to.clone(), *protocol, *port)] {
                    "allowed"
                } else {
                    "denied"
                };
                format!(
                    "{from} -> {to} {port}/{protocol}: evaluator says {want}, packets {reach:?}"
                )
            })
            .collect();
        wrong.sort();
        let ruleset = self
            .options
            .enforced
            .current()
            .map(|e| e.ruleset.clone())
            .unwrap_or_default();
        assert!(
            wrong.is_empty(),
            "{recipe}: {} of {} probes disagree with the evaluator:\n{}\nruleset:\n{ruleset}",
            wrong.len(),
            seen.len(),
            wrong.join("\n")
        );
        eprintln!(
            "{recipe}: {} probes agree with the evaluator ({:?})",
            seen.len(),
            began.elapsed()
        );
        Matrix(seen)
    }

    /// A policy object in the namespace with `suffix`.
    fn policy(&self, suffix: &str, name: &str, spec: Value) -> Value {
        json!({"metadata": {"namespace": self.ns(suffix), "name": name}, "spec": spec})
    }

    fn ip_of(&self, label: &str) -> Ipv4Addr {
        self.endpoints
            .iter()
            .find(|e| e.label == label)
            .expect("an endpoint")
            .ip
    }

    /// Stops everything and checks that nothing of the node is left: the controller deletes its
    /// table, the kubelet its Node, the node its bridge and namespaces.
    async fn finish(mut self) {
        let client = self.client.clone();
        for (ns, _) in &self.namespaces[1..] {
            let _ = Api::<Namespace>::all(client.clone())
                .delete(ns, &DeleteParams::default())
                .await;
        }
        let table = self.options.table.clone();
        self._listeners.clear();
        self.kubelet
            .take()
            .expect("running")
            .stop()
            .await
            .expect("the kubelet stops");
        self.env.take().expect("running").stop().await;
        assert!(
            !run("nft", &["list", "tables"]).contains(&table),
            "the controller left its table {table} behind"
        );
        drop(self.external.take());
        let netns: Vec<String> = self.node.pods().into_iter().map(|p| p.netns).collect();
        let (bridge, node) = (self.node.bridge().to_owned(), self.node.clone());
        tokio::task::spawn_blocking(move || node.teardown())
            .await
            .unwrap()
            .expect("teardown");
        let left = run("ip", &["netns", "list"]);
        for ns in netns {
            assert!(!left.contains(&ns), "network namespace {ns} left behind");
        }
        assert!(
            !run("ip", &["-o", "link", "show"]).contains(&format!(" {bridge}:")),
            "bridge {bridge} left behind"
        );
    }
}

impl Drop for Cluster {
    /// A failed test still removes the table (the node removes the rest on its own drop).
    fn drop(&mut self) {
        let _ = std::process::Command::new(sbin("nft"))
            .args(["delete", "table", "inet", &self.options.table])
            .output();
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Deny all ingress, allow all ingress beside it, allow from a Namespace, allow from labelled
/// Pods: applied and removed live, each changing what gets through; replies of connections the
/// isolated Pods start still come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_recipes_apply_and_lift_live() {
    let c = Cluster::start("ingress").await;
    let ports = [(TCP, 8080), (UDP, 8080)];
    let open = c.recipe("no policies", vec![], &ports).await;
    assert!(open.reached("prod/client", "web", TCP, 8080));

    let deny = c.policy(
        "",
        "deny-ingress",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    );
    let m = c
        .recipe("deny all ingress", vec![deny.clone()], &ports)
        .await;
    for from in ["prod/client", "client", "external"] {
        assert!(!m.reached(from, "web", TCP, 8080), "{from} reached web");
        assert!(
            !m.reached(from, "web", UDP, 8080),
            "{from} reached web over UDP"
        );
    }
    // web starts connections itself and gets the replies (conntrack), though isolated.
    assert!(m.reached("web", "prod/client", TCP, 8080));
    assert!(m.reached("web", "external", UDP, 8080));
    assert!(
        m.reached("client", "prod/client", TCP, 8080),
        "other Namespaces stay open"
    );

    let allow_all = c.policy("", "allow-all", json!({"podSelector": {}, "ingress": [{}]}));
    let m = c
        .recipe(
            "allow all ingress beside deny all",
            vec![deny, allow_all],
            &ports,
        )
        .await;
    assert!(m.reached("external", "web", TCP, 8080) && m.reached("prod/client", "api", UDP, 8080));

    let from_ns = c.policy(
        "",
        "web-from-operations",
        json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "operations"}}}]}],
        }),
    );
    let m = c
        .recipe("allow from a namespace", vec![from_ns], &ports)
        .await;
    assert!(m.reached("prod/client", "web", TCP, 8080));
    assert!(!m.reached("client", "web", TCP, 8080) && !m.reached("dev/worker", "web", UDP, 8080));
    assert!(m.reached("client", "api", TCP, 8080), "api is not selected");

    let from_pods = c.policy(
        "",
        "web-from-clients",
        json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}],
        }),
    );
    let m = c
        .recipe("allow from labelled pods", vec![from_pods], &ports)
        .await;
    assert!(m.reached("client", "web", TCP, 8080));
    assert!(
        !m.reached("prod/client", "web", TCP, 8080),
        "podSelector alone is the own Namespace"
    );
    assert!(!m.reached("api", "web", UDP, 8080));

    let lifted = c.recipe("all policies removed", vec![], &ports).await;
    assert!(
        lifted.reached("prod/client", "web", TCP, 8080)
            && lifted.reached("external", "web", UDP, 8080)
    );
    c.finish().await;
}

/// Egress to outside the cluster denied except DNS (UDP and TCP 53); Pod-to-Pod egress open;
/// connections from outside into the egress-isolated Pods still get their replies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_to_external_denied_but_dns_allowed() {
    let c = Cluster::start("egress").await;
    let policy = c.policy(
        "",
        "egress-cluster-and-dns",
        json!({
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"namespaceSelector": {}}]},
                {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
            ],
        }),
    );
    let m = c
        .recipe(
            "deny external egress, allow DNS",
            vec![policy],
            &[(TCP, 8080), (UDP, 53), (TCP, 53)],
        )
        .await;
    assert!(
        !m.reached("web", "external", TCP, 8080),
        "egress to the outside got through"
    );
    assert!(
        m.reached("web", "external", UDP, 53) && m.reached("api", "external", TCP, 53),
        "DNS blocked"
    );
    assert!(
        m.reached("client", "prod/client", TCP, 8080),
        "Pod-to-Pod egress blocked"
    );
    assert!(
        m.reached("prod/client", "external", TCP, 8080),
        "other Namespaces are not isolated"
    );
    assert!(
        m.reached("external", "web", TCP, 8080),
        "replies to the outside were dropped"
    );
    c.finish().await;
}

/// Named ports resolve per destination Pod (web's `http` is 8080, api's 8081); `endPort`
/// ranges include both ends and nothing past them, for TCP and UDP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_ports_and_port_ranges() {
    let c = Cluster::start("ports").await;
    let named = c.policy("", "http-only", json!({
        "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]},
        "ingress": [{"ports": [{"port": "http"}]}],
    }));
    let m = c
        .recipe("named ports", vec![named], &[(TCP, 8080), (TCP, 8081)])
        .await;
    assert!(m.reached("client", "web", TCP, 8080) && !m.reached("client", "web", TCP, 8081));
    assert!(m.reached("client", "api", TCP, 8081) && !m.reached("client", "api", TCP, 8080));
    assert!(
        m.reached("web", "client", TCP, 8081),
        "client is not selected"
    );

    let ranges = c.policy(
        "",
        "ranges",
        json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"ports": [
                {"port": 9090, "endPort": 9095},
                {"port": 50, "endPort": 60, "protocol": "UDP"},
            ]}],
        }),
    );
    let m = c
        .recipe(
            "endPort ranges",
            vec![ranges],
            &[(TCP, 9090), (TCP, 9096), (UDP, 53), (UDP, 8080)],
        )
        .await;
    assert!(m.reached("external", "web", TCP, 9090) && !m.reached("external", "web", TCP, 9096));
    assert!(m.reached("api", "web", UDP, 53) && !m.reached("api", "web", UDP, 8080));
    c.finish().await;
}

/// `ipBlock` with `except` for ingress and egress, and a Pod plus Namespace selector in one peer
/// (both must match) against the same selectors as two peers (either may).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_blocks_and_selector_combinations() {
    let c = Cluster::start("blocks").await;
    let ports = [(TCP, 8080)];
    let prod_client = format!("{}/32", c.ip_of("prod/client"));
    let blocks = vec![
        c.policy("", "web-from-node-cidr", json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [{"ipBlock": {"cidr": c.node.cidr().to_string(), "except": [prod_client]}}]}],
        })),
        c.policy("", "api-to-outside", json!({
            "podSelector": {"matchLabels": {"app": "api"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [c.node.cidr().to_string()]}}]}],
        })),
    ];
    let m = c.recipe("ipBlock with except", blocks, &ports).await;
    assert!(
        m.reached("dev/worker", "web", TCP, 8080) && !m.reached("prod/client", "web", TCP, 8080)
    );
    assert!(
        !m.reached("external", "web", TCP, 8080),
        "outside the block"
    );
    assert!(m.reached("api", "external", TCP, 8080) && !m.reached("api", "client", TCP, 8080));

    let and = c.policy(
        "",
        "and",
        json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [{
                "namespaceSelector": {"matchLabels": {"team": "operations"}},
                "podSelector": {"matchLabels": {"app": "client"}},
            }]}],
        }),
    );
    let m = c
        .recipe(
            "podSelector AND namespaceSelector in one peer",
            vec![and],
            &ports,
        )
        .await;
    assert!(m.reached("prod/client", "web", TCP, 8080));
    assert!(!m.reached("client", "web", TCP, 8080) && !m.reached("dev/worker", "web", TCP, 8080));

    let or = c.policy(
        "",
        "or",
        json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [
                {"namespaceSelector": {"matchLabels": {"team": "operations"}}},
                {"podSelector": {"matchLabels": {"app": "client"}}},
            ]}],
        }),
    );
    let m = c
        .recipe("the same selectors as two peers", vec![or], &ports)
        .await;
    assert!(m.reached("prod/client", "web", TCP, 8080) && m.reached("client", "web", TCP, 8080));
    assert!(!m.reached("dev/worker", "web", TCP, 8080) && !m.reached("api", "web", TCP, 8080));
    c.finish().await;
}
