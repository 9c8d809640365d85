//! The DaemonSet controller end to end, the test playing kubelet (neither server has a scheduler
//! or kubelets): a Pod per eligible Node pinned to it by node affinity, following Node labels,
//! taints and deletion; failed Pods replaced; rolling updates one Node at a time; OnDelete.
//!
//! Nodes are cluster-scoped, so each test names its Nodes after its namespace, labels them with
//! it, selects only them (`nodeSelector`), and deletes them at the end.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::SignedDuration;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{Node, NodeSpec, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use kubeforge_controllers::daemonset::placement::target_node;
use kubeforge_controllers::daemonset::revision::HASH_LABEL;
use serde_json::json;
use support::*;

/// The label marking a Node as this test's (its value is the test's namespace).
const TEST_LABEL: &str = "kubeforge.dev/test-namespace";

/// The test's Nodes, named `<namespace>-<short name>`.
struct Nodes {
    api: Api<Node>,
    ns: String,
}

impl Nodes {
    fn of(env: &Env) -> Nodes {
        Nodes {
            api: Api::all(env.client()),
            ns: env.ns.clone(),
        }
    }

    fn name(&self, short: &str) -> String {
        format!("{}-{short}", self.ns)
    }

    /// Creates Node `short` with `labels` (and the test label) and `taints` (key, effect).
    async fn add(&self, short: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) {
        let mut all: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        all.insert(TEST_LABEL.into(), self.ns.clone());
        let taints: Vec<Taint> = taints
            .iter()
            .map(|(key, effect)| Taint {
                key: (*key).into(),
                effect: (*effect).into(),
                ..Taint::default()
            })
            .collect();
        let node = Node {
            metadata: ObjectMeta {
                name: Some(self.name(short)),
                labels: Some(all),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec::default()),
            status: None,
        };
        self.api
            .create(&PostParams::default(), &node)
            .await
            .expect("create the Node");
        // kube-apiserver taints a new Node `node.kubernetes.io/not-ready:NoSchedule`
        // (TaintNodesByCondition) until the node lifecycle controller sees its kubelet report
        // Ready. Neither runs here: the test plays them, setting the Node's own taints.
        self.patch(short, json!({"spec": {"taints": taints}})).await;
    }

    async fn patch(&self, short: &str, patch: serde_json::Value) {
        self.api
            .patch(
                &self.name(short),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
            .expect("patch the Node");
    }

    async fn delete(&self, short: &str) {
        self.api
            .delete(&self.name(short), &DeleteParams::default())
            .await
            .expect("delete the Node");
    }

    /// Deletes every Node of the test.
    async fn cleanup(self) {
        let list = self
            .api
            .list(&ListParams::default().labels(&format!("{TEST_LABEL}={}", self.ns)))
            .await
            .expect("list the test's Nodes");
        for node in list.items {
            let _ = self
                .api
                .delete(&node.name_any(), &DeleteParams::default())
                .await;
        }
    }
}

/// A DaemonSet `app=<name>` on the test's Nodes that also have `extra` labels.
fn daemonset(env: &Env, name: &str, extra: &[(&str, &str)]) -> DaemonSet {
    let mut template = template(name, "nginx:1");
    let mut selector: BTreeMap<String, String> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    selector.insert(TEST_LABEL.into(), env.ns.clone());
    template.spec.as_mut().expect("a spec").node_selector = Some(selector);
    DaemonSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: DaemonSetSpec {
            selector: support::selector(name),
            template,
            ..DaemonSetSpec::default()
        },
        status: None,
    }
}

/// The Nodes the Pods of `app` are for (short names), one entry per Pod.
async fn placed(api: &Api<Pod>, app: &str, nodes: &Nodes) -> Vec<String> {
    let prefix = format!("{}-", nodes.ns);
    let mut on: Vec<String> = pods(api, app)
        .await
        .iter()
        .map(|p| {
            let node = target_node(p).unwrap_or("<none>");
            node.strip_prefix(&prefix).unwrap_or(node).to_owned()
        })
        .collect();
    on.sort();
    on
}

/// Waits until the Pods of `app` are exactly one on each of `want` (short Node names).
async fn placed_on(api: &Api<Pod>, app: &str, nodes: &Nodes, want: &[&str]) {
    eventually(&format!("Pods of {app} on {want:?}"), || async {
        (placed(api, app, nodes).await == want).then_some(())
    })
    .await;
}

/// Asserts for a second that the Pods of `app` stay on `want`.
async fn stays_on(api: &Api<Pod>, app: &str, nodes: &Nodes, want: &[&str]) {
    for _ in 0..10 {
        assert_eq!(placed(api, app, nodes).await, want, "the placement changed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn status(
    api: &Api<DaemonSet>,
    name: &str,
) -> Option<k8s_openapi::api::apps::v1::DaemonSetStatus> {
    api.get(name).await.ok()?.status
}

#[tokio::test]
async fn a_pod_per_matching_node_pinned_by_affinity_and_following_node_labels() {
    let env = Env::with(&["daemonset"]).await;
    let nodes = Nodes::of(&env);
    let (sets, pods_api) = (env.api::<DaemonSet>(), env.api::<Pod>());
    nodes.add("a", &[("role", "agent")], &[]).await;
    nodes.add("b", &[("role", "agent")], &[]).await;
    nodes.add("c", &[], &[]).await;
    sets.create(
        &PostParams::default(),
        &daemonset(&env, "agent", &[("role", "agent")]),
    )
    .await
    .unwrap();
    placed_on(&pods_api, "agent", &nodes, &["a", "b"]).await;

    let pod = pods(&pods_api, "agent").await.remove(0);
    assert_eq!(controller_name(&pod).as_deref(), Some("DaemonSet/agent"));
    let spec = pod.spec.clone().unwrap();
    assert_eq!(spec.node_name, None, "bound by affinity, not nodeName");
    let terms = spec
        .affinity
        .and_then(|a| a.node_affinity)
        .and_then(|a| a.required_during_scheduling_ignored_during_execution)
        .expect("a required node affinity")
        .node_selector_terms;
    let fields = terms[0].match_fields.clone().expect("matchFields");
    assert_eq!(
        (fields[0].key.as_str(), fields[0].operator.as_str()),
        ("metadata.name", "In")
    );
    let tolerated: BTreeSet<String> = spec
        .tolerations
        .unwrap_or_default()
        .iter()
        .filter_map(|t| Some(format!("{}:{}", t.key.clone()?, t.effect.clone()?)))
        .collect();
    for default in [
        "node.kubernetes.io/not-ready:NoExecute",
        "node.kubernetes.io/unreachable:NoExecute",
        "node.kubernetes.io/disk-pressure:NoSchedule",
        "node.kubernetes.io/memory-pressure:NoSchedule",
        "node.kubernetes.io/pid-pressure:NoSchedule",
        "node.kubernetes.io/unschedulable:NoSchedule",
    ] {
        assert!(tolerated.contains(default), "{default} in {tolerated:?}");
    }
    let labels = pod.labels();
    assert!(labels.contains_key(HASH_LABEL), "{labels:?}");
    assert!(labels.contains_key("pod-template-generation"), "{labels:?}");

    // c gains the label and gets a Pod; a loses it and loses its Pod.
    nodes
        .patch("c", json!({"metadata": {"labels": {"role": "agent"}}}))
        .await;
    placed_on(&pods_api, "agent", &nodes, &["a", "b", "c"]).await;
    nodes
        .patch("a", json!({"metadata": {"labels": {"role": null}}}))
        .await;
    placed_on(&pods_api, "agent", &nodes, &["b", "c"]).await;

    for pod in pods(&pods_api, "agent").await {
        mark_ready(&pods_api, &pod.name_any(), SignedDuration::ZERO).await;
    }
    let generation = sets.get("agent").await.unwrap().metadata.generation;
    eventually(
        "status: 2 desired, scheduled, ready, available, updated",
        || async {
            let s = status(&sets, "agent").await?;
            (s.desired_number_scheduled == 2
                && s.current_number_scheduled == 2
                && s.number_ready == 2
                && s.number_available == Some(2)
                && s.updated_number_scheduled == Some(2)
                && s.number_misscheduled == 0
                && s.number_unavailable.is_none()
                && s.observed_generation == generation)
                .then_some(())
        },
    )
    .await;
    nodes.cleanup().await;
    env.stop().await;
}

#[tokio::test]
async fn taints_keep_pods_off_unless_tolerated_and_no_execute_evicts() {
    let env = Env::with(&["daemonset"]).await;
    let nodes = Nodes::of(&env);
    let (sets, pods_api) = (env.api::<DaemonSet>(), env.api::<Pod>());
    nodes.add("a", &[], &[("dedicated", "NoSchedule")]).await;
    nodes.add("b", &[], &[]).await;
    // Cordoned: the default daemon tolerations cover it.
    nodes
        .add(
            "c",
            &[],
            &[("node.kubernetes.io/unschedulable", "NoSchedule")],
        )
        .await;
    nodes
        .patch("c", json!({"spec": {"unschedulable": true}}))
        .await;
    sets.create(&PostParams::default(), &daemonset(&env, "logs", &[]))
        .await
        .unwrap();
    placed_on(&pods_api, "logs", &nodes, &["b", "c"]).await;
    stays_on(&pods_api, "logs", &nodes, &["b", "c"]).await;
    eventually("status: 2 desired", || async {
        (status(&sets, "logs").await?.desired_number_scheduled == 2).then_some(())
    })
    .await;

    // A NoSchedule taint lets the Pod already there stay; NoExecute evicts it.
    nodes
        .patch(
            "c",
            json!({"spec": {"taints": [
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                {"key": "maintenance", "effect": "NoSchedule"},
            ]}}),
        )
        .await;
    nodes
        .patch(
            "b",
            json!({"spec": {"taints": [{"key": "evict", "effect": "NoExecute"}]}}),
        )
        .await;
    placed_on(&pods_api, "logs", &nodes, &["c"]).await;
    eventually("status: c's Pod is misscheduled", || async {
        let s = status(&sets, "logs").await?;
        (s.desired_number_scheduled == 0 && s.number_misscheduled == 1).then_some(())
    })
    .await;

    // Tolerating `dedicated` brings a Pod to a. The new template also replaces c's outdated Pod
    // (not ready, so it costs no availability), and c, tainted, gets none back.
    sets.patch(
        "logs",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"template": {"spec": {"tolerations": [
            {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"},
        ]}}}})),
    )
    .await
    .unwrap();
    placed_on(&pods_api, "logs", &nodes, &["a"]).await;
    nodes.cleanup().await;
    env.stop().await;
}

#[tokio::test]
async fn a_deleted_nodes_pod_goes_and_a_failed_pod_is_replaced() {
    let env = Env::with(&["daemonset"]).await;
    let nodes = Nodes::of(&env);
    let (sets, pods_api) = (env.api::<DaemonSet>(), env.api::<Pod>());
    nodes.add("a", &[], &[]).await;
    nodes.add("b", &[], &[]).await;
    sets.create(&PostParams::default(), &daemonset(&env, "net", &[]))
        .await
        .unwrap();
    placed_on(&pods_api, "net", &nodes, &["a", "b"]).await;

    nodes.delete("a").await;
    placed_on(&pods_api, "net", &nodes, &["b"]).await;
    eventually("status: 1 desired", || async {
        let s = status(&sets, "net").await?;
        (s.desired_number_scheduled == 1 && s.current_number_scheduled == 1).then_some(())
    })
    .await;

    let failed = pods(&pods_api, "net").await.remove(0);
    mark_finished(&pods_api, &failed.name_any(), "Failed").await;
    eventually("the failed Pod on b replaced", || async {
        let now = pods(&pods_api, "net").await;
        (now.len() == 1 && now[0].uid() != failed.uid() && pods_are_pending(&now)).then_some(())
    })
    .await;
    placed_on(&pods_api, "net", &nodes, &["b"]).await;
    nodes.cleanup().await;
    env.stop().await;
}

/// None of `pods` has ended.
fn pods_are_pending(pods: &[Pod]) -> bool {
    pods.iter().all(|p| {
        !matches!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Failed" | "Succeeded")
        )
    })
}

/// The Pods of `app` split by whether they carry `hash`: (outdated, updated).
async fn by_revision(api: &Api<Pod>, app: &str, hash: &str) -> (Vec<Pod>, Vec<Pod>) {
    pods(api, app)
        .await
        .into_iter()
        .partition(|p| p.labels().get(HASH_LABEL).map(String::as_str) != Some(hash))
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn set_image(sets: &Api<DaemonSet>, name: &str, image: &str) {
    sets.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": image},
        ]}}}})),
    )
    .await
    .expect("patch the DaemonSet");
}

#[tokio::test]
async fn rolling_update_replaces_one_node_at_a_time() {
    let env = Env::with(&["daemonset"]).await;
    let nodes = Nodes::of(&env);
    let (sets, pods_api) = (env.api::<DaemonSet>(), env.api::<Pod>());
    for n in ["a", "b", "c"] {
        nodes.add(n, &[], &[]).await;
    }
    let mut ds = daemonset(&env, "proxy", &[]);
    ds.spec.update_strategy = Some(DaemonSetUpdateStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(k8s_openapi::api::apps::v1::RollingUpdateDaemonSet {
            max_unavailable: Some(
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1),
            ),
            max_surge: None,
        }),
    });
    sets.create(&PostParams::default(), &ds).await.unwrap();
    placed_on(&pods_api, "proxy", &nodes, &["a", "b", "c"]).await;
    for pod in pods(&pods_api, "proxy").await {
        mark_ready(&pods_api, &pod.name_any(), SignedDuration::ZERO).await;
    }
    eventually("3 ready", || async {
        (status(&sets, "proxy").await?.number_ready == 3).then_some(())
    })
    .await;
    let revisions = env.api::<ControllerRevision>();
    let first = pods(&pods_api, "proxy").await[0].labels()[HASH_LABEL].clone();

    set_image(&sets, "proxy", "nginx:2").await;
    let update = eventually("a second ControllerRevision", || async {
        let list = revisions.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .filter_map(|r| r.labels().get(HASH_LABEL).cloned())
            .find(|h| *h != first)
    })
    .await;
    for step in 1..=3 {
        // One Node at a time: an outdated Pod goes only once the previous new one is ready.
        let pending = eventually(&format!("step {step}: a new Pod, not ready"), || async {
            let (old, new) = by_revision(&pods_api, "proxy", &update).await;
            assert!(
                old.len() >= 3 - step,
                "too many outdated Pods gone: {}",
                old.len()
            );
            let waiting: Vec<&Pod> = new.iter().filter(|p| !ready(p)).collect();
            assert!(waiting.len() <= 1, "{} new Pods not ready", waiting.len());
            (new.len() == step && old.len() == 3 - step && waiting.len() == 1)
                .then(|| waiting[0].name_any())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (old, _) = by_revision(&pods_api, "proxy", &update).await;
        assert_eq!(old.len(), 3 - step, "the controller did not wait");
        mark_ready(&pods_api, &pending, SignedDuration::ZERO).await;
    }
    placed_on(&pods_api, "proxy", &nodes, &["a", "b", "c"]).await;
    eventually("status: 3 updated and ready", || async {
        let s = status(&sets, "proxy").await?;
        (s.updated_number_scheduled == Some(3)
            && s.number_ready == 3
            && s.number_available == Some(3))
        .then_some(())
    })
    .await;
    nodes.cleanup().await;
    env.stop().await;
}

#[tokio::test]
async fn on_delete_replaces_only_the_pods_the_user_deletes() {
    let env = Env::with(&["daemonset"]).await;
    let _kubelet = kubelet(env.api());
    let nodes = Nodes::of(&env);
    let (sets, pods_api) = (env.api::<DaemonSet>(), env.api::<Pod>());
    nodes.add("a", &[], &[]).await;
    nodes.add("b", &[], &[]).await;
    let mut ds = daemonset(&env, "od", &[]);
    ds.spec.update_strategy = Some(DaemonSetUpdateStrategy {
        type_: Some("OnDelete".into()),
        rolling_update: None,
    });
    sets.create(&PostParams::default(), &ds).await.unwrap();
    eventually("2 ready", || async {
        (status(&sets, "od").await?.number_ready == 2).then_some(())
    })
    .await;
    let first = pods(&pods_api, "od").await[0].labels()[HASH_LABEL].clone();
    set_image(&sets, "od", "nginx:2").await;
    let revisions = env.api::<ControllerRevision>();
    let update = eventually("a second ControllerRevision", || async {
        let list = revisions.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .filter_map(|r| r.labels().get(HASH_LABEL).cloned())
            .find(|h| *h != first)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (old, new) = by_revision(&pods_api, "od", &update).await;
    assert_eq!((old.len(), new.len()), (2, 0), "OnDelete replaced a Pod");

    let victim = old[0].clone();
    let node = target_node(&victim).unwrap().to_owned();
    pods_api
        .delete(&victim.name_any(), &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually("the deleted Pod recreated at the new revision", || async {
        let (old, new) = by_revision(&pods_api, "od", &update).await;
        (old.len() == 1 && new.len() == 1 && target_node(&new[0]) == Some(node.as_str()))
            .then_some(())
    })
    .await;
    eventually("status: 1 updated", || async {
        let s = status(&sets, "od").await?;
        (s.updated_number_scheduled == Some(1) && s.number_ready == 2).then_some(())
    })
    .await;
    nodes.cleanup().await;
    env.stop().await;
}
