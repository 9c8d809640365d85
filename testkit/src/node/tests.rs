//! Tests of the local node against the real kernel. They need root and iproute2 (nftables for the
//! filtering tests); elsewhere they print why and pass without checking anything.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::*;

/// Long enough for allowed traffic on a loaded 2-core machine.
const ALLOWED: Duration = Duration::from_secs(3);
/// How long a probe that should be dropped waits before reporting `TimedOut`.
const DENIED: Duration = Duration::from_millis(800);

/// Why this test cannot run here, printed; `true` means skip.
fn skip(needs_nft: bool) -> bool {
    let reason = unavailable_reason().or_else(|| {
        let missing =
            needs_nft && cmd::run("nft", &["--version"], None, "checking for nft").is_err();
        missing.then(|| "nft is not installed (apt-get install nftables)".to_owned())
    });
    if let Some(reason) = &reason {
        crate::cluster::record_skip("testkit node tests", reason);
    }
    reason.is_some()
}

fn netns_list() -> String {
    cmd::ip(&["netns", "list"], "test: listing netns").expect("ip netns list")
}

fn link_list() -> String {
    cmd::ip(&["-o", "link", "show"], "test: listing links").expect("ip link")
}

fn table_list() -> String {
    cmd::run("nft", &["list", "tables"], None, "test: listing tables").expect("nft list tables")
}

#[test]
fn pods_reach_each_other_over_tcp_and_udp() {
    if skip(false) {
        return;
    }
    let node = LocalNode::create_unique("node-a").unwrap();
    let a = node.add_pod("default", "a").unwrap();
    let b = node.add_pod("default", "b").unwrap();
    assert_ne!(a.ip, b.ip);
    assert!(node.cidr().contains(&a.ip) && node.cidr().contains(&b.ip));
    assert_eq!(a.gateway, node.gateway());

    let tcp = b.listen_tcp(8080).unwrap();
    let udp = b.listen_udp(8080).unwrap();
    assert_eq!(a.connect_tcp(b.ip, 8080, ALLOWED).unwrap(), Reach::Reached);
    assert_eq!(
        a.udp_roundtrip(b.ip, 8080, ALLOWED).unwrap(),
        Reach::Reached
    );
    assert_eq!((tcp.served(), udp.served() >= 1), (1, true));
    // Nothing listens on 9090: a TCP RST and an ICMP port-unreachable come back.
    assert_eq!(a.connect_tcp(b.ip, 9090, ALLOWED).unwrap(), Reach::Refused);
    assert_eq!(
        a.udp_roundtrip(b.ip, 9090, ALLOWED).unwrap(),
        Reach::Refused
    );
    // The same port in another pod is another socket: namespaces really are separate.
    let _a_tcp = a.listen_tcp(8080).unwrap();
    assert_eq!(b.connect_tcp(a.ip, 8080, ALLOWED).unwrap(), Reach::Reached);

    node.remove_pod("default", "a").unwrap();
    assert!(!netns_list().contains(&a.netns));
    assert!(matches!(
        node.remove_pod("default", "a"),
        Err(NodeError::UnknownPod { .. })
    ));
    let again = node.add_pod("default", "a").unwrap();
    assert_eq!(again.ip, a.ip, "a removed pod's address is reused");
    assert!(matches!(
        node.add_pod("default", "a"),
        Err(NodeError::PodExists { .. })
    ));
}

#[test]
fn external_host_and_host_are_reachable_both_ways() {
    if skip(false) {
        return;
    }
    let node = LocalNode::create_unique("node-ext").unwrap();
    let pod = node.add_pod("default", "client").unwrap();
    let external = ExternalHost::create_unique().unwrap();
    assert!(!node.cidr().contains(&external.ip()));

    let _ext_tcp = external.listen_tcp(80).unwrap();
    let _ext_udp = external.listen_udp(53).unwrap();
    assert_eq!(
        pod.connect_tcp(external.ip(), 80, ALLOWED).unwrap(),
        Reach::Reached
    );
    assert_eq!(
        pod.udp_roundtrip(external.ip(), 53, ALLOWED).unwrap(),
        Reach::Reached
    );

    let _pod_tcp = pod.listen_tcp(8080).unwrap();
    assert_eq!(
        external.connect_tcp(pod.ip, 8080, ALLOWED).unwrap(),
        Reach::Reached
    );

    // The host itself, as the pods' gateway.
    let host = Probe::host().listen_tcp(0).unwrap();
    assert_eq!(
        pod.connect_tcp(node.gateway(), host.port(), ALLOWED)
            .unwrap(),
        Reach::Reached
    );
    assert_eq!(
        Probe::host().connect_tcp(pod.ip, 8080, ALLOWED).unwrap(),
        Reach::Reached
    );
}

/// The scoped, stateful `inet` ruleset of the module docs: deny by default between this node's
/// pods, allow b -> a:8080 and a -> b:9090 and a -> the external host's port 80.
fn deny_by_default(
    table: &str,
    bridge: &str,
    a: Ipv4Addr,
    b: Ipv4Addr,
    external: Ipv4Addr,
) -> String {
    format!(
        r#"table inet {table} {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    iifname != "{bridge}" oifname != "{bridge}" accept
    ct state established,related accept
    ct state invalid drop
    jump pods
  }}
  chain pods {{
    ip saddr {b} ip daddr {a} meta l4proto tcp th dport 8080 accept
    ip saddr {a} ip daddr {b} meta l4proto tcp th dport 9090 accept
    ip saddr {a} ip daddr {external} tcp dport 80 accept
    counter drop
  }}
}}
"#
    )
}

#[test]
fn nft_inet_ruleset_filters_bridged_and_external_traffic_statefully() {
    if skip(true) {
        return;
    }
    let node = LocalNode::create_unique("node-nft").unwrap();
    let a = node.add_pod("default", "a").unwrap();
    let b = node.add_pod("default", "b").unwrap();
    let external = ExternalHost::create_unique().unwrap();
    let listeners: Vec<Listener> = [(&a, 8080), (&b, 8080), (&b, 9090)]
        .into_iter()
        .map(|(pod, port)| pod.listen_tcp(port).unwrap())
        .collect();
    let (_ext_80, _ext_81) = (
        external.listen_tcp(80).unwrap(),
        external.listen_tcp(81).unwrap(),
    );
    let _b_udp = b.listen_udp(8080).unwrap();

    let table = node.nft_table_name();
    node.apply_nft(&deny_by_default(
        &table,
        node.bridge(),
        a.ip,
        b.ip,
        external.ip(),
    ))
    .unwrap();
    assert!(table_list().contains(&table));

    assert_eq!(a.connect_tcp(b.ip, 8080, DENIED).unwrap(), Reach::TimedOut);
    assert_eq!(listeners[1].served(), 0, "the dropped SYN never reached b");
    assert_eq!(
        b.connect_tcp(a.ip, 8080, ALLOWED).unwrap(),
        Reach::Reached,
        "b -> a and its replies pass"
    );
    assert_eq!(a.connect_tcp(b.ip, 9090, ALLOWED).unwrap(), Reach::Reached);
    assert_eq!(
        a.udp_roundtrip(b.ip, 8080, DENIED).unwrap(),
        Reach::TimedOut
    );
    assert_eq!(
        a.connect_tcp(external.ip(), 80, ALLOWED).unwrap(),
        Reach::Reached
    );
    assert_eq!(
        a.connect_tcp(external.ip(), 81, DENIED).unwrap(),
        Reach::TimedOut
    );
    assert_eq!(
        external.connect_tcp(a.ip, 8080, DENIED).unwrap(),
        Reach::TimedOut
    );

    node.delete_nft_table("inet", &table).unwrap();
    assert!(!table_list().contains(&table));
    assert_eq!(
        a.connect_tcp(b.ip, 8080, ALLOWED).unwrap(),
        Reach::Reached,
        "rules gone, traffic flows"
    );
}

#[test]
fn nft_bridge_family_drops_statelessly() {
    if skip(true) {
        return;
    }
    let node = LocalNode::create_unique("node-br").unwrap();
    let a = node.add_pod("default", "a").unwrap();
    let b = node.add_pod("default", "b").unwrap();
    let (_a_tcp, _b_tcp) = (a.listen_tcp(8080).unwrap(), b.listen_tcp(8080).unwrap());
    let table = node.nft_table_name();
    let (ip_a, ip_b) = (a.ip, b.ip);
    node.apply_nft(&format!(
        "table bridge {table} {{\n chain forward {{\n  type filter hook forward priority 0; policy accept;\n  \
         ip saddr {ip_a} ip daddr {ip_b} tcp dport 8080 drop\n }}\n}}\n"
    ))
    .unwrap();
    assert_eq!(a.connect_tcp(b.ip, 8080, DENIED).unwrap(), Reach::TimedOut);
    assert_eq!(b.connect_tcp(a.ip, 8080, ALLOWED).unwrap(), Reach::Reached);
}

#[test]
fn nft_reject_shows_as_refused() {
    if skip(true) {
        return;
    }
    let node = LocalNode::create_unique("node-reject").unwrap();
    let a = node.add_pod("default", "a").unwrap();
    let b = node.add_pod("default", "b").unwrap();
    let (_tcp, _udp) = (b.listen_tcp(8080).unwrap(), b.listen_udp(8080).unwrap());
    let (table, bridge, ip_a, ip_b) = (node.nft_table_name(), node.bridge().to_owned(), a.ip, b.ip);
    node.apply_nft(&format!(
        "table inet {table} {{\n chain forward {{\n  type filter hook forward priority 0; policy accept;\n  \
         iifname \"{bridge}\" ip saddr {ip_a} ip daddr {ip_b} tcp dport 8080 reject with tcp reset\n  \
         iifname \"{bridge}\" ip saddr {ip_a} ip daddr {ip_b} udp dport 8080 reject\n }}\n}}\n"
    ))
    .unwrap();
    assert_eq!(a.connect_tcp(b.ip, 8080, ALLOWED).unwrap(), Reach::Refused);
    assert_eq!(
        a.udp_roundtrip(b.ip, 8080, ALLOWED).unwrap(),
        Reach::Refused
    );
}

#[test]
fn bad_ruleset_reports_nft_error_and_changes_nothing() {
    if skip(true) {
        return;
    }
    let node = LocalNode::create_unique("node-bad").unwrap();
    let table = node.nft_table_name();
    let error = node
        .apply_nft(&format!("table inet {table} {{ chain c {{ nonsense; }} }}"))
        .unwrap_err();
    assert!(error.to_string().contains("nft -f -"), "{error}");
    assert!(!table_list().contains(&table));
}

#[test]
fn drop_removes_everything_even_with_listeners_alive() {
    if skip(true) {
        return;
    }
    let node = LocalNode::create_unique("node-drop").unwrap();
    let pods: Vec<PodNet> = ["a", "b"]
        .iter()
        .map(|name| node.add_pod("ns", name).unwrap())
        .collect();
    let external = ExternalHost::create_unique().unwrap();
    let table = node.nft_table_name();
    node.apply_nft(&format!(
        "add table inet {table}\nadd chain inet {table} c\n"
    ))
    .unwrap();
    // A listener outliving the node pins its namespace; links and names must still go.
    let leaked = pods[0].listen_tcp(8080).unwrap();
    let (bridge, ext_netns, ext_veth) = (
        node.bridge().to_owned(),
        external.netns().to_owned(),
        external.host_veth().to_owned(),
    );
    drop(node);
    drop(external);

    let (netns, links, tables) = (netns_list(), link_list(), table_list());
    for pod in &pods {
        assert!(!netns.contains(&pod.netns), "{netns}");
        assert!(!links.contains(&pod.host_veth), "{links}");
    }
    assert!(!netns.contains(&ext_netns), "{netns}");
    assert!(
        !links.contains(&ext_veth) && !links.contains(&bridge),
        "{links}"
    );
    assert!(!tables.contains(&table), "{tables}");
    drop(leaked);
}

#[test]
fn a_panicking_test_still_cleans_up() {
    if skip(false) {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let node = LocalNode::create_unique("node-panic").unwrap();
        let pod = node.add_pod("default", "p").unwrap();
        tx.send((node.bridge().to_owned(), pod.netns)).unwrap();
        panic!("test failure with a live node");
    });
    assert!(result.is_err());
    let (bridge, netns) = rx.recv().unwrap();
    assert!(!link_list().contains(&bridge));
    assert!(!netns_list().contains(&netns));
}

#[test]
fn two_nodes_coexist_route_to_each_other_and_tear_down_independently() {
    if skip(false) {
        return;
    }
    let one = LocalNode::create_unique("node-1").unwrap();
    let two = LocalNode::create_unique("node-2").unwrap();
    assert_ne!(one.bridge(), two.bridge());
    assert!(!names::overlaps(&one.cidr(), &two.cidr()));
    let p1 = one.add_pod("default", "same-name").unwrap();
    let p2 = two.add_pod("default", "same-name").unwrap();
    let q2 = two.add_pod("default", "other").unwrap();
    assert_ne!(p1.netns, p2.netns);

    let (_l2, _lq) = (p2.listen_tcp(8080).unwrap(), q2.listen_tcp(8080).unwrap());
    let _l1 = p1.listen_udp(5353).unwrap();
    assert_eq!(
        p1.connect_tcp(p2.ip, 8080, ALLOWED).unwrap(),
        Reach::Reached,
        "routed across bridges"
    );
    assert_eq!(
        p2.udp_roundtrip(p1.ip, 5353, ALLOWED).unwrap(),
        Reach::Reached
    );

    drop(one);
    assert_eq!(
        p2.connect_tcp(q2.ip, 8080, ALLOWED).unwrap(),
        Reach::Reached,
        "node 2 unaffected"
    );
    assert!(link_list().contains(two.bridge()));
}

#[test]
fn explicit_cidr_and_too_small_cidr() {
    if skip(false) {
        return;
    }
    let tiny: Ipv4Net = "10.243.250.0/31".parse().unwrap();
    assert!(matches!(
        LocalNode::create("tiny", tiny),
        Err(NodeError::CidrTooSmall(_))
    ));
    // A /30 holds the bridge and exactly one pod.
    let small: Ipv4Net = "10.243.251.0/30".parse().unwrap();
    let node = LocalNode::create("small", small).unwrap();
    assert_eq!(node.gateway(), Ipv4Addr::new(10, 243, 251, 1));
    assert_eq!(
        node.add_pod("default", "only").unwrap().ip,
        Ipv4Addr::new(10, 243, 251, 2)
    );
    assert!(matches!(
        node.add_pod("default", "more"),
        Err(NodeError::CidrExhausted { .. })
    ));
}

#[tokio::test]
async fn usable_from_async_code_via_spawn_blocking() {
    if skip(false) {
        return;
    }
    let (node, pod, server) = tokio::task::spawn_blocking(|| {
        let node = LocalNode::create_unique("node-async").unwrap();
        let pod = node.add_pod("default", "server").unwrap();
        let server = node.add_pod("default", "peer").unwrap();
        (node, pod, server)
    })
    .await
    .unwrap();
    let listener = server.listen_tcp(0).unwrap();
    let (target, port) = (server.ip, listener.port());
    let reach = tokio::task::spawn_blocking(move || pod.connect_tcp(target, port, ALLOWED))
        .await
        .unwrap();
    assert_eq!(reach.unwrap(), Reach::Reached);
    drop(listener);
    tokio::task::spawn_blocking(move || node.teardown())
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn tables_declared_by_a_ruleset() {
    let ruleset = "table inet kf1t2 {\n chain c { }\n}\nadd table bridge kf1t3\ntable plain{\n\
                   # table inet commented\ndelete table inet gone\nflush table ip x\n";
    assert_eq!(
        declared_tables(ruleset),
        [("inet", "kf1t2"), ("bridge", "kf1t3"), ("ip", "plain")]
            .map(|(f, n)| (f.to_owned(), n.to_owned()))
    );
}

/// The kubelet registers its Node, gives a scheduled Pod a network namespace with a reachable
/// IP reported in its status, ignores Pods of other nodes, removes the namespace when the Pod
/// is deleted, and deletes the Node when stopped.
#[tokio::test]
async fn kubelet_runs_scheduled_pods_as_network_namespaces() {
    use k8s_openapi::api::core::v1::{Node, Pod};
    use kube::api::{Api, DeleteParams, PostParams};

    if skip(false) {
        return;
    }
    let server = crate::ApiServer::start().await.unwrap();
    let client = server.client();
    let node = std::sync::Arc::new(
        tokio::task::spawn_blocking(|| LocalNode::create_unique("kubelet-node"))
            .await
            .unwrap()
            .unwrap(),
    );
    let kubelet = Kubelet::start(node.clone(), client.clone()).await.unwrap();
    let registered = Api::<Node>::all(client.clone())
        .get("kubelet-node")
        .await
        .unwrap();
    let cidr = node.cidr().to_string();
    assert_eq!(
        registered.spec.and_then(|s| s.pod_cidr).as_deref(),
        Some(cidr.as_str())
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for (name, node_name) in [("here", "kubelet-node"), ("elsewhere", "other-node")] {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "none"}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let ip = loop {
        let status = pods.get("here").await.unwrap().status.unwrap_or_default();
        if let Some(ip) = status.pod_ip {
            assert_eq!(status.phase.as_deref(), Some("Running"));
            break ip.parse::<Ipv4Addr>().unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "no podIP reported");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let net = node
        .pod("default", "here")
        .expect("the Pod has a network namespace");
    assert_eq!(net.ip, ip);
    assert!(node.pod("default", "elsewhere").is_none());
    let other = pods
        .get("elsewhere")
        .await
        .unwrap()
        .status
        .unwrap_or_default();
    assert_eq!(other.pod_ip, None, "a Pod of another node was started");
    let (probe_net, listener) = (net.clone(), net.listen_tcp(8080).unwrap());
    let reach =
        tokio::task::spawn_blocking(move || Probe::host().connect_tcp(probe_net.ip, 8080, ALLOWED))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(reach, Reach::Reached, "the reported podIP answers");
    drop(listener);

    pods.delete("here", &DeleteParams::default()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while node.pod("default", "here").is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "namespace not removed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!netns_list().contains(&net.netns));

    kubelet.stop().await.unwrap();
    let nodes = Api::<Node>::all(client);
    assert!(nodes.get_opt("kubelet-node").await.unwrap().is_none());
    tokio::task::spawn_blocking(move || node.teardown())
        .await
        .unwrap()
        .unwrap();
}
