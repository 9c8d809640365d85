//! What a DaemonSet sync does to each Node's Pods, decided from the cache without side effects
//! (upstream `podsShouldBeOnNode`, `getUnscheduledPodsWithoutNode` and `rollingUpdate`), so the
//! rules can be read and tested apart from the API calls that carry them out.
//!
//! - **Placement**: a Node that should run the daemon and has no Pod gets one; a Node it must
//!   leave loses its Pods; of several Pods on a Node the oldest is kept; Pods that ended are
//!   deleted (failed ones under a per-Node backoff, the caller's); unbound Pods for Nodes that
//!   no longer exist are deleted.
//! - **Rolling update without surge**: outdated Pods are deleted (the next sync recreates them
//!   at the current revision) while fewer than `maxUnavailable` Nodes are unavailable;
//!   outdated Pods that are unavailable anyway are replaced at once.
//! - **Rolling update with surge**: a new Pod is created beside an outdated one on up to
//!   `maxSurge` Nodes; the outdated one is deleted once the new one is available.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

use super::placement::Fit;
use super::revision::HASH_LABEL;
use crate::pods;

/// The label carrying the set's template generation (upstream `DaemonSetTemplateGenerationKey`),
/// by which Pods from before ControllerRevisions existed are recognised as up to date.
pub const GENERATION_LABEL: &str = "pod-template-generation";

/// The daemon Pods of a set by the Node they are for, each list oldest first.
pub type NodePods = BTreeMap<String, Vec<Arc<Pod>>>;

/// Creations and deletions a sync decided on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Nodes that get a new Pod.
    pub create_on: Vec<String>,
    /// Pods to delete, by name.
    pub delete: Vec<String>,
    /// A failed Pod was left for its backoff: sync again after this long.
    pub retry_after: Option<Duration>,
}

impl Plan {
    fn retry(&mut self, after: Duration) {
        self.retry_after = Some(self.retry_after.map_or(after, |d| d.min(after)));
    }
}

/// What a sync knows about the set's revision and its Pods' availability.
#[derive(Debug)]
pub struct Judge<'a> {
    /// The current revision's hash.
    pub hash: &'a str,
    /// The template generation from the set's `deprecated.daemonset.template.generation`.
    pub template_generation: Option<i64>,
    /// `spec.minReadySeconds`.
    pub min_ready_seconds: i32,
    /// The time availability is judged at.
    pub now: Timestamp,
}

impl Judge<'_> {
    /// The Pod runs the current template (upstream `IsPodUpdated`): its hash label, or, for Pods
    /// from before revisions, its template generation label.
    pub fn updated(&self, pod: &Pod) -> bool {
        let labels = pod.labels();
        let by_hash =
            !self.hash.is_empty() && labels.get(HASH_LABEL).map(String::as_str) == Some(self.hash);
        let by_generation = self
            .template_generation
            .is_some_and(|g| labels.get(GENERATION_LABEL) == Some(&g.to_string()));
        by_hash || by_generation
    }

    /// Ready for `minReadySeconds`.
    pub fn available(&self, pod: &Pod) -> bool {
        pods::is_available(pod, self.min_ready_seconds, self.now)
    }

    /// At most one outdated and one updated Pod not being deleted on a Node, or `None` when
    /// there are more (upstream `findUpdatedPodsOnNode`: the placement pass prunes those first).
    fn split<'p>(&self, pods: &'p [Arc<Pod>]) -> Option<(Option<&'p Pod>, Option<&'p Pod>)> {
        let (mut new, mut old) = (None, None);
        for pod in pods.iter().filter(|p| !pods::is_terminating(p)) {
            let slot = if self.updated(pod) {
                &mut new
            } else {
                &mut old
            };
            if slot.replace(pod.as_ref()).is_some() {
                return None;
            }
        }
        Some((new, old))
    }
}

/// Sorts a Node's Pods oldest first, bound ones before unbound (upstream
/// `podByCreationTimestampAndPhase`).
pub fn oldest_first(pods: &mut [Arc<Pod>]) {
    let bound = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    pods.sort_by(|a, b| {
        bound(b)
            .cmp(&bound(a))
            .then_with(|| {
                let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
                created(a).cmp(&created(b))
            })
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.phase.as_deref())
}

/// What placement does on one existing Node (upstream `podsShouldBeOnNode`). `surge` is whether
/// the update strategy allows two Pods on a Node; `may_delete_failed` asks the caller's backoff
/// whether a failed Pod there may be deleted now (`Err(wait)` otherwise).
pub fn place_on_node(
    node: &str,
    fit: Fit,
    pods: Option<&[Arc<Pod>]>,
    surge: bool,
    judge: &Judge<'_>,
    may_delete_failed: &mut dyn FnMut(&str) -> Result<(), Duration>,
    plan: &mut Plan,
) {
    let Some(pods) = pods else {
        if fit.should_run {
            plan.create_on.push(node.to_owned());
        }
        return;
    };
    if !fit.may_stay {
        let doomed = pods.iter().filter(|p| !pods::is_terminating(p));
        plan.delete.extend(doomed.map(|p| p.name_any()));
        return;
    }
    let mut running: Vec<&Pod> = Vec::new();
    for pod in pods.iter().filter(|p| !pods::is_terminating(p)) {
        match phase(pod) {
            Some("Failed") => match may_delete_failed(node) {
                Ok(()) => plan.delete.push(pod.name_any()),
                Err(wait) => plan.retry(wait),
            },
            Some("Succeeded") => plan.delete.push(pod.name_any()),
            _ => running.push(pod),
        }
    }
    if !surge {
        // The oldest stays; the rest are extra.
        plan.delete
            .extend(running.iter().skip(1).map(|p| p.name_any()));
        return;
    }
    if running.len() <= 1 {
        if running.is_empty() && fit.should_run {
            plan.create_on.push(node.to_owned());
        }
        return;
    }
    // Surging: keep the oldest updated and the oldest outdated Pod; the outdated one goes once it
    // is not ready or the updated one is available.
    let (mut oldest_new, mut oldest_old) = (None, None);
    for pod in running {
        let slot = if judge.updated(pod) {
            &mut oldest_new
        } else {
            &mut oldest_old
        };
        if slot.is_none() {
            *slot = Some(pod);
        } else {
            plan.delete.push(pod.name_any());
        }
    }
    if let (Some(new), Some(old)) = (oldest_new, oldest_old)
        && (!pods::is_ready(old) || judge.available(new))
    {
        plan.delete.push(old.name_any());
    }
}

/// Unbound Pods for Nodes that no longer exist (upstream `getUnscheduledPodsWithoutNode`): no
/// scheduler will bind them, and the Pod garbage collector only collects bound ones.
pub fn orphaned_by_gone_nodes(by_node: &NodePods, exists: impl Fn(&str) -> bool, plan: &mut Plan) {
    for pods in by_node.iter().filter(|(n, _)| !exists(n)).map(|(_, p)| p) {
        let unbound = pods.iter().filter(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_none_or(str::is_empty)
        });
        plan.delete.extend(unbound.map(|p| p.name_any()));
    }
}

/// The rolling update without surge (upstream `rollingUpdate`, `maxSurge == 0`): `by_node` holds
/// every Node with Pods and every Node that should run one (empty). Deleted outdated Pods are
/// recreated by the next sync's placement.
pub fn replace_outdated(by_node: &NodePods, max_unavailable: i32, judge: &Judge<'_>) -> Plan {
    let mut unavailable = 0;
    let mut replace_now = Vec::new();
    let mut candidates = Vec::new();
    for pods in by_node.values() {
        let Some((new, old)) = judge.split(pods) else {
            // Extra Pods: placement prunes them; the Node counts as unavailable meanwhile.
            unavailable += 1;
            continue;
        };
        match (new, old) {
            (None, None) | (Some(_), Some(_)) => unavailable += 1,
            (Some(new), None) => {
                if !judge.available(new) {
                    unavailable += 1;
                }
            }
            (None, Some(old)) => {
                if !judge.available(old) {
                    replace_now.push(old.name_any());
                    unavailable += 1;
                } else if unavailable < max_unavailable {
                    candidates.push(old.name_any());
                }
            }
        }
    }
    let room = usize::try_from(max_unavailable - unavailable).unwrap_or(0);
    replace_now.extend(candidates.into_iter().take(room));
    Plan {
        delete: replace_now,
        ..Plan::default()
    }
}

/// The rolling update with surge (upstream `rollingUpdate`, `maxSurge > 0`): a new Pod beside an
/// outdated one on up to `max_surge` Nodes at a time (at once where the outdated one is not
/// available), the outdated one deleted once the new one is available. Outdated Pods on Nodes
/// the set must leave are deleted only while more Pods are available than desired.
pub fn surge_outdated(
    by_node: &NodePods,
    max_surge: i32,
    desired: i32,
    should_run: impl Fn(&str) -> bool,
    judge: &Judge<'_>,
) -> Plan {
    let mut plan = Plan::default();
    let (mut surging, mut available) = (0, 0);
    let mut leaving = Vec::new();
    let mut candidates = Vec::new();
    for (node, pods) in by_node {
        let Some((new, old)) = judge.split(pods) else {
            surging += 1;
            continue;
        };
        if old.or(new).is_some_and(|p| judge.available(p)) {
            available += 1;
        }
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) if !judge.available(old) => {
                if should_run(node) {
                    plan.create_on.push(node.clone());
                } else {
                    plan.delete.push(old.name_any());
                }
            }
            (None, Some(old)) => {
                if !should_run(node) {
                    leaving.push(old.name_any());
                } else if surging < max_surge {
                    candidates.push(node.clone());
                }
            }
            (Some(new), Some(old)) => {
                if judge.available(new) {
                    plan.delete.push(old.name_any());
                } else {
                    surging += 1;
                }
            }
        }
    }
    let deletable = usize::try_from(available - desired).unwrap_or(0);
    plan.delete.extend(leaving.into_iter().take(deletable));
    let room = usize::try_from(max_surge - surging).unwrap_or(0);
    plan.create_on.extend(candidates.into_iter().take(room));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn pod(name: &str, hash: &str, ready: bool, now: Timestamp) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(BTreeMap::from([(HASH_LABEL.into(), hash.into())])),
                ..ObjectMeta::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    last_transition_time: Some(Time(now - SignedDuration::from_secs(60))),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        })
    }

    fn judge(now: Timestamp) -> Judge<'static> {
        Judge {
            hash: "new",
            template_generation: None,
            min_ready_seconds: 0,
            now,
        }
    }

    #[test]
    fn without_surge_at_most_max_unavailable_nodes_are_down() {
        let now = Timestamp::now();
        let by_node: NodePods = BTreeMap::from([
            ("a".into(), vec![pod("a1", "old", true, now)]),
            ("b".into(), vec![pod("b1", "old", true, now)]),
            ("c".into(), vec![pod("c1", "old", true, now)]),
        ]);
        assert_eq!(replace_outdated(&by_node, 1, &judge(now)).delete, ["a1"]);
        assert_eq!(
            replace_outdated(&by_node, 2, &judge(now)).delete,
            ["a1", "b1"]
        );
        // a is being replaced (no Pod yet): nothing else goes.
        let mut replacing = by_node.clone();
        replacing.insert("a".into(), Vec::new());
        assert!(
            replace_outdated(&replacing, 1, &judge(now))
                .delete
                .is_empty()
        );
        // An outdated Pod that is down anyway is replaced at once.
        replacing.insert("b".into(), vec![pod("b1", "old", false, now)]);
        assert_eq!(replace_outdated(&replacing, 1, &judge(now)).delete, ["b1"]);
    }

    #[test]
    fn with_surge_new_pods_come_first_and_old_ones_go_once_they_are_available() {
        let now = Timestamp::now();
        let by_node: NodePods = BTreeMap::from([
            ("a".into(), vec![pod("a1", "old", true, now)]),
            (
                "b".into(),
                vec![pod("b1", "old", true, now), pod("b2", "new", true, now)],
            ),
            (
                "c".into(),
                vec![pod("c1", "old", true, now), pod("c2", "new", false, now)],
            ),
        ]);
        let plan = surge_outdated(&by_node, 1, 3, |_| true, &judge(now));
        assert_eq!(plan.delete, ["b1"]);
        assert!(plan.create_on.is_empty(), "c is still surging: {plan:?}");
        let plan = surge_outdated(&by_node, 2, 3, |_| true, &judge(now));
        assert_eq!(plan.create_on, ["a"]);
    }

    #[test]
    fn placement_keeps_the_oldest_and_creates_where_missing() {
        let now = Timestamp::now();
        let fits = Fit {
            should_run: true,
            may_stay: true,
        };
        let mut plan = Plan::default();
        let mut never = |_: &str| Err(Duration::from_secs(1));
        place_on_node("a", fits, None, false, &judge(now), &mut never, &mut plan);
        let two = [pod("a1", "new", true, now), pod("a2", "new", true, now)];
        place_on_node(
            "b",
            fits,
            Some(&two),
            false,
            &judge(now),
            &mut never,
            &mut plan,
        );
        let leave = Fit {
            should_run: false,
            may_stay: false,
        };
        let one = [pod("c1", "new", true, now)];
        place_on_node(
            "c",
            leave,
            Some(&one),
            false,
            &judge(now),
            &mut never,
            &mut plan,
        );
        assert_eq!(plan.create_on, ["a"]);
        assert_eq!(plan.delete, ["a2", "c1"]);
    }
}
