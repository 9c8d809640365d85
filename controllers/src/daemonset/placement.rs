//! Which Nodes a DaemonSet's Pod belongs on, and how its Pods are pinned there (upstream
//! `nodeShouldRunDaemonPod`, the scheduler's NodeAffinity and TaintToleration filters, and
//! `util/daemonset_util.go`).
//!
//! A Node is eligible when the template's `nodeName` (if any) is the Node's name, its
//! `nodeSelector` matches the Node's labels, its required node affinity matches (`In`, `NotIn`,
//! `Exists`, `DoesNotExist`, `Gt`, `Lt` on labels; `metadata.name` fields), and the Pod, with the
//! default daemon tolerations added, tolerates every `NoSchedule` / `NoExecute` taint. A Pod
//! already on a Node that only fails a `NoSchedule` taint may stay (upstream's
//! `shouldContinueRunning`).
//!
//! Left out: the alpha `Gt` / `Lt` toleration operators (a toleration with an operator other than
//! `Equal` / `Exists` tolerates nothing, as upstream without its feature gate).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Taint, Toleration,
};
use kube::ResourceExt;

/// The field a DaemonSet Pod's node affinity names its Node by.
const NAME_FIELD: &str = "metadata.name";

/// Whether a DaemonSet's Pod belongs on a Node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fit {
    /// A Pod should be created there if none runs (upstream `shouldRun`).
    pub should_run: bool,
    /// A Pod already there may stay (upstream `shouldContinueRunning`): it fits, or it fails
    /// only on taints that do not evict (`NoSchedule`).
    pub may_stay: bool,
}

/// The tolerations every daemon Pod gets on top of its template's, so that node problems and
/// cordoning neither keep it off a Node nor evict it (upstream `AddOrUpdateDaemonPodTolerations`).
fn default_tolerations(host_network: bool) -> Vec<Toleration> {
    let exists = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Toleration::default()
    };
    let mut defaults = vec![
        exists("node.kubernetes.io/not-ready", "NoExecute"),
        exists("node.kubernetes.io/unreachable", "NoExecute"),
        exists("node.kubernetes.io/disk-pressure", "NoSchedule"),
        exists("node.kubernetes.io/memory-pressure", "NoSchedule"),
        exists("node.kubernetes.io/pid-pressure", "NoSchedule"),
        exists("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        defaults.push(exists(
            "node.kubernetes.io/network-unavailable",
            "NoSchedule",
        ));
    }
    defaults
}

/// `spec` with the default daemon tolerations added; one the template already has (same key,
/// operator, value and effect) is replaced by the default, as upstream's `AddOrUpdate` does.
pub fn with_daemon_tolerations(spec: &PodSpec) -> PodSpec {
    let mut spec = spec.clone();
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for wanted in default_tolerations(spec.host_network == Some(true)) {
        let same = |t: &Toleration| {
            t.key == wanted.key
                && t.operator.as_deref().unwrap_or("Equal")
                    == wanted.operator.as_deref().unwrap_or("Equal")
                && t.value.as_deref().unwrap_or("") == wanted.value.as_deref().unwrap_or("")
                && t.effect == wanted.effect
        };
        match tolerations.iter_mut().find(|t| same(t)) {
            Some(existing) => *existing = wanted,
            None => tolerations.push(wanted),
        }
    }
    spec
}

/// `toleration` tolerates `taint` (upstream `Toleration.ToleratesTaint`): an empty effect or key
/// matches any; `Exists` matches any value, `Equal` (the default) the same value.
fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let empty = |s: Option<&String>| s.is_none_or(String::is_empty);
    if !empty(toleration.effect.as_ref()) && toleration.effect.as_deref() != Some(&taint.effect) {
        return false;
    }
    if !empty(toleration.key.as_ref()) && toleration.key.as_deref() != Some(&taint.key) {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// The Node has a taint with one of `effects` that no toleration tolerates.
fn untolerated(node: &Node, tolerations: &[Toleration], effects: &[&str]) -> bool {
    let taints = node.spec.as_ref().and_then(|s| s.taints.as_deref());
    taints
        .unwrap_or_default()
        .iter()
        .filter(|t| effects.contains(&t.effect.as_str()))
        .any(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
}

/// One node selector requirement against `values` (a Node's labels or fields).
fn requirement_matches(req: &NodeSelectorRequirement, values: &BTreeMap<String, String>) -> bool {
    let want = req.values.as_deref().unwrap_or_default();
    let have = values.get(&req.key);
    let number = |s: &str| s.parse::<i64>().ok();
    match req.operator.as_str() {
        "In" => have.is_some_and(|v| want.contains(v)),
        "NotIn" => have.is_none_or(|v| !want.contains(v)),
        "Exists" => have.is_some(),
        "DoesNotExist" => have.is_none(),
        "Gt" | "Lt" => {
            let (Some(have), [bound]) = (have.and_then(|v| number(v)), want) else {
                return false;
            };
            let Some(bound) = number(bound) else {
                return false;
            };
            if req.operator == "Gt" {
                have > bound
            } else {
                have < bound
            }
        }
        _ => false,
    }
}

/// A term matches when all its requirements do; a term with none matches nothing (upstream).
fn term_matches(
    term: &NodeSelectorTerm,
    labels: &BTreeMap<String, String>,
    fields: &BTreeMap<String, String>,
) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or_default();
    let field_reqs = term.match_fields.as_deref().unwrap_or_default();
    if expressions.is_empty() && field_reqs.is_empty() {
        return false;
    }
    expressions.iter().all(|r| requirement_matches(r, labels))
        && field_reqs.iter().all(|r| requirement_matches(r, fields))
}

/// The template's `nodeSelector` and required node affinity match `node` (upstream
/// `RequiredNodeAffinity.Match`): every selector label, and any one of the affinity's terms.
pub fn matches_node(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.labels();
    let selected = spec
        .node_selector
        .as_ref()
        .is_none_or(|want| want.iter().all(|(k, v)| labels.get(k) == Some(v)));
    if !selected {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    let Some(required) = required else {
        return true;
    };
    let fields = BTreeMap::from([(NAME_FIELD.to_owned(), node.name_any())]);
    required
        .node_selector_terms
        .iter()
        .any(|t| term_matches(t, labels, &fields))
}

/// Whether a Pod from `spec` (the template with the daemon tolerations added, see
/// [`with_daemon_tolerations`]) belongs on `node`.
pub fn fit(spec: &PodSpec, node: &Node) -> Fit {
    let nowhere = Fit {
        should_run: false,
        may_stay: false,
    };
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != node.name_any())
    {
        return nowhere;
    }
    if !matches_node(spec, node) {
        return nowhere;
    }
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    if untolerated(node, tolerations, &["NoSchedule", "NoExecute"]) {
        return Fit {
            should_run: false,
            may_stay: !untolerated(node, tolerations, &["NoExecute"]),
        };
    }
    Fit {
        should_run: true,
        may_stay: true,
    }
}

/// `affinity` with its required node affinity replaced by "the Node named `node`", which is
/// how a daemon Pod is bound to its Node by the scheduler rather than by `spec.nodeName`
/// (upstream `ReplaceDaemonSetPodNodeNameNodeAffinity`). Preferred terms and Pod (anti-)affinity
/// are kept.
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let selector = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: NAME_FIELD.into(),
                operator: "In".into(),
                values: Some(vec![node.to_owned()]),
            }]),
            ..NodeSelectorTerm::default()
        }],
    };
    let mut affinity = affinity.unwrap_or_default();
    affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default)
        .required_during_scheduling_ignored_during_execution = Some(selector);
    affinity
}

/// The Node a daemon Pod is for: its `spec.nodeName` once bound, else the single
/// `metadata.name In [node]` field of its required node affinity (upstream `GetTargetNodeName`).
pub fn target_node(pod: &Pod) -> Option<&str> {
    let spec = pod.spec.as_ref()?;
    if let Some(node) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(node);
    }
    let required = spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?;
    required
        .node_selector_terms
        .iter()
        .flat_map(|t| t.match_fields.as_deref().unwrap_or_default())
        .find(|r| r.key == NAME_FIELD && r.operator == "In")
        .and_then(|r| match r.values.as_deref() {
            Some([node]) => Some(node.as_str()),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).into(), (*v).into()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                taints: Some(
                    taints
                        .iter()
                        .map(|(key, effect)| Taint {
                            key: (*key).into(),
                            effect: (*effect).into(),
                            ..Taint::default()
                        })
                        .collect(),
                ),
                ..NodeSpec::default()
            }),
            status: None,
        }
    }

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| (*v).into()).collect()),
        }
    }

    fn with_terms(terms: Vec<NodeSelectorTerm>) -> PodSpec {
        PodSpec {
            affinity: Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: terms,
                    }),
                    ..NodeAffinity::default()
                }),
                ..Affinity::default()
            }),
            ..PodSpec::default()
        }
    }

    #[test]
    fn node_affinity_terms_are_ored_and_requirements_anded() {
        let n = node("n1", &[("zone", "a"), ("cpus", "8")], &[]);
        let term = |reqs: Vec<NodeSelectorRequirement>| NodeSelectorTerm {
            match_expressions: Some(reqs),
            ..NodeSelectorTerm::default()
        };
        let spec = with_terms(vec![
            term(vec![req("zone", "In", &["b"])]),
            term(vec![
                req("cpus", "Gt", &["4"]),
                req("gpu", "DoesNotExist", &[]),
            ]),
        ]);
        assert!(matches_node(&spec, &n));
        let spec = with_terms(vec![term(vec![
            req("zone", "NotIn", &["a"]),
            req("cpus", "Lt", &["16"]),
        ])]);
        assert!(!matches_node(&spec, &n));
        let by_name = with_terms(vec![NodeSelectorTerm {
            match_fields: Some(vec![req(NAME_FIELD, "In", &["n1"])]),
            ..NodeSelectorTerm::default()
        }]);
        assert!(matches_node(&by_name, &n));
        assert!(!matches_node(&by_name, &node("n2", &[], &[])));
        assert!(!matches_node(
            &with_terms(vec![NodeSelectorTerm::default()]),
            &n
        ));
        let selector = PodSpec {
            node_selector: Some(BTreeMap::from([("zone".into(), "b".into())])),
            ..PodSpec::default()
        };
        assert!(!matches_node(&selector, &n));
    }

    #[test]
    fn taints_keep_pods_off_unless_tolerated_and_evict_only_on_no_execute() {
        let spec = with_daemon_tolerations(&PodSpec::default());
        let fits = |taints: &[(&str, &str)]| fit(&spec, &node("n", &[], taints));
        assert_eq!(
            fits(&[("node.kubernetes.io/unschedulable", "NoSchedule")]),
            Fit {
                should_run: true,
                may_stay: true
            }
        );
        assert_eq!(
            fits(&[("dedicated", "NoSchedule")]),
            Fit {
                should_run: false,
                may_stay: true
            }
        );
        assert_eq!(
            fits(&[("dedicated", "NoExecute")]),
            Fit {
                should_run: false,
                may_stay: false
            }
        );
        assert!(fits(&[("dedicated", "PreferNoSchedule")]).should_run);
        let mut tolerant = spec.clone();
        tolerant.tolerations.as_mut().unwrap().push(Toleration {
            key: Some("dedicated".into()),
            operator: Some("Exists".into()),
            ..Toleration::default()
        });
        assert!(fit(&tolerant, &node("n", &[], &[("dedicated", "NoExecute")])).should_run);
    }

    #[test]
    fn defaults_are_added_once_and_network_unavailable_only_for_host_network() {
        let spec = with_daemon_tolerations(&with_daemon_tolerations(&PodSpec::default()));
        assert_eq!(spec.tolerations.as_ref().unwrap().len(), 6);
        let host = with_daemon_tolerations(&PodSpec {
            host_network: Some(true),
            ..PodSpec::default()
        });
        assert_eq!(host.tolerations.as_ref().unwrap().len(), 7);
    }

    #[test]
    fn a_pinned_pod_names_its_node() {
        let mut pod = Pod {
            spec: Some(PodSpec {
                affinity: Some(pin_to_node(None, "n7")),
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        assert_eq!(target_node(&pod), Some("n7"));
        pod.spec.as_mut().unwrap().node_name = Some("n8".into());
        assert_eq!(target_node(&pod), Some("n8"));
    }
}
