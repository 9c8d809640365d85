//! What the workload controllers ask of a Pod: is it active, ready, available; which Pods of a
//! set go first on scale-down; and a new Pod from a template (upstream `pkg/controller/
//! controller_utils.go` and `pkg/api/v1/pod`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// The phase of a Pod that has not reported one yet.
const PENDING: &str = "Pending";

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or(PENDING)
}

/// Counts towards a set's replicas: not terminated (Succeeded / Failed) and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !is_terminated(pod)
}

/// Finished for good: phase `Succeeded` or `Failed`.
pub fn is_terminated(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Being deleted but not gone yet (kube-apiserver keeps such Pods until their kubelet confirms).
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// When the Pod's `Ready` condition last became true, if it is true.
pub fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(ready.last_transition_time.as_ref().map(|t| t.0))
}

/// The Pod's `Ready` condition is true.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` at `now` (upstream `IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => since + SignedDuration::from_secs(min_ready_seconds.into()) <= now,
    }
}

/// How long until a ready Pod becomes available, if it is ready but not yet available.
pub fn until_available(
    pod: &Pod,
    min_ready_seconds: i32,
    now: Timestamp,
) -> Option<SignedDuration> {
    let since = ready_since(pod)??;
    let at = since + SignedDuration::from_secs(min_ready_seconds.into());
    (at > now).then(|| at.duration_since(now))
}

fn phase_rank(pod: &Pod) -> u8 {
    match phase(pod) {
        PENDING => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| {
            cs.iter().map(|c| c.restart_count).max().unwrap_or(0)
        })
}

/// How long ago `time` was, bucketed on a log2 scale of seconds (upstream's
/// LogarithmicScaleDown): Pods that became ready at about the same age count as equally old.
/// No time sorts first.
fn log_bucket(time: Option<Timestamp>, now: Timestamp) -> i64 {
    match time {
        None => i64::MIN,
        Some(t) => {
            let age = now.duration_since(t).as_secs().max(1);
            i64::from(age.ilog2())
        }
    }
}

/// Orders Pods by how soon a scale-down deletes them, first to go first (upstream
/// `ActivePodsWithRanks`): unscheduled before scheduled; Pending before Unknown before Running;
/// not ready before ready; on a node crowded with this set's Pods before elsewhere; ready for
/// less time before longer; more container restarts before fewer; newer before older.
pub fn sort_for_deletion(pods: &mut [&Pod], now: Timestamp) {
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for pod in pods.iter() {
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            *per_node.entry(node).or_default() += 1;
        }
    }
    let crowd = |pod: &Pod| {
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .map_or(0, |n| per_node.get(n).copied().unwrap_or(0))
    };
    let scheduled = |pod: &Pod| pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
    pods.sort_by(|a, b| {
        scheduled(a)
            .cmp(&scheduled(b))
            .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
            .then_with(|| is_ready(a).cmp(&is_ready(b)))
            .then_with(|| crowd(b).cmp(&crowd(a)))
            .then_with(|| {
                let since = |p: &Pod| ready_since(p).flatten();
                if is_ready(a) && is_ready(b) {
                    log_bucket(since(a), now).cmp(&log_bucket(since(b), now))
                } else {
                    Ordering::Equal
                }
            })
            .then_with(|| restarts(b).cmp(&restarts(a)))
            .then_with(|| {
                let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
                created(b).cmp(&created(a))
            })
    });
}

/// A new Pod for a set: the template's labels, annotations, finalizers and spec, named
/// `<prefix>` + a generated suffix, controlled by `owner`.
pub fn from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    generate_name: &str,
    owner: OwnerReference,
) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Upstream's prefix for generated Pod names: `<owner>-`, shortened so the generated name fits.
pub fn name_prefix(owner: &str) -> String {
    // Names are at most 63 characters for Pods' hostnames; the server appends 5.
    const MAX_PREFIX: usize = 58;
    let mut prefix = format!("{owner}-");
    if prefix.len() > MAX_PREFIX {
        prefix.truncate(MAX_PREFIX);
    }
    prefix
}

/// Every `want` label is on `labels` with the same value.
pub fn has_labels(
    labels: Option<&BTreeMap<String, String>>,
    want: Option<&BTreeMap<String, String>>,
) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    want.unwrap_or(&empty)
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

/// Runs `total` creations in batches of 1, 2, 4, … (upstream `slowStartBatch`), stopping at the
/// first batch with a failure: a quota or admission refusal costs one request, not `total`.
pub async fn create_in_batches<F, Fut, E>(total: usize, create: F) -> Result<usize, E>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    let mut done = 0;
    let mut batch = 1;
    while done < total {
        let size = batch.min(total - done);
        let results = futures::future::join_all((done..done + size).map(&create)).await;
        done += size;
        if let Some(err) = results.into_iter().find_map(Result::err) {
            return Err(err);
        }
        batch *= 2;
    }
    Ok(done)
}

/// An `IntOrString` count or percentage of `total` (upstream `GetScaledValueFromIntOrPercent`),
/// `default` when unset; percentages round up for surge and down for unavailability.
pub fn scaled(
    value: Option<&k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
    default: &str,
    total: i32,
    round_up: bool,
) -> i32 {
    let percent = |p: &str| -> i32 {
        let p: f64 = p.trim_end_matches('%').parse().unwrap_or(0.0);
        let v = p * f64::from(total) / 100.0;
        // Truncation is the point: Kubernetes rounds surge up and unavailability down.
        #[allow(clippy::cast_possible_truncation)]
        let v = if round_up { v.ceil() } else { v.floor() } as i32;
        v
    };
    match value {
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => *n,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s)) => percent(s),
        None => percent(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn pod(
        name: &str,
        node: Option<&str>,
        phase: &str,
        ready_secs_ago: Option<i64>,
        now: Timestamp,
    ) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(Into::into),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_secs_ago.map(|ago| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(now - SignedDuration::from_secs(ago))),
                        ..PodCondition::default()
                    }]
                }),
                ..PodStatus::default()
            }),
        }
    }

    #[test]
    fn scale_down_takes_unscheduled_then_pending_then_not_ready_then_newest_ready() {
        let now = Timestamp::now();
        let pods = [
            pod("old-ready", Some("n1"), "Running", Some(4000), now),
            pod("running-not-ready", Some("n2"), "Running", None, now),
            pod("unscheduled", None, PENDING, None, now),
            pod("new-ready", Some("n3"), "Running", Some(3), now),
            pod("pending", Some("n4"), PENDING, None, now),
        ];
        let mut refs: Vec<&Pod> = pods.iter().collect();
        sort_for_deletion(&mut refs, now);
        let names: Vec<&str> = refs
            .iter()
            .map(|p| p.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "unscheduled",
                "pending",
                "running-not-ready",
                "new-ready",
                "old-ready"
            ]
        );
    }

    #[test]
    fn available_needs_min_ready_seconds_of_readiness() {
        let now = Timestamp::now();
        let p = pod("p", Some("n"), "Running", Some(5), now);
        assert!(is_available(&p, 0, now));
        assert!(is_available(&p, 5, now));
        assert!(!is_available(&p, 10, now));
        assert_eq!(
            until_available(&p, 10, now),
            Some(SignedDuration::from_secs(5))
        );
        assert!(!is_available(&pod("q", None, PENDING, None, now), 0, now));
    }

    #[tokio::test]
    async fn batches_double_and_stop_at_the_first_failing_batch() {
        let calls = AtomicUsize::new(0);
        let ok = create_in_batches(10, |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<(), ()>(())
        })
        .await;
        assert_eq!(ok, Ok(10));
        assert_eq!(calls.load(Ordering::SeqCst), 10);

        let calls = AtomicUsize::new(0);
        let failed = create_in_batches(10, |i| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move { if i == 2 { Err("quota") } else { Ok(()) } }
        })
        .await;
        // Batches 1 (i=0), 2 (i=1,2): the failure at i=2 stops before batch 4.
        assert_eq!(failed, Err("quota"));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
