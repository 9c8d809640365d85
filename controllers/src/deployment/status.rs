//! A Deployment's status from its ReplicaSets, and its `Available` and `Progressing` conditions
//! (upstream `sync.go` `calculateStatus`/`syncRolloutStatus` and `util/deployment_util.go`).

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::rollout::{Limits, complete};

/// `Progressing` reasons (upstream's constants).
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
/// The rollout stopped making progress within `progressDeadlineSeconds`.
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
/// The rollout is paused.
pub const PAUSED: &str = "DeploymentPaused";
/// The rollout was resumed.
pub const RESUMED: &str = "DeploymentResumed";

fn count(sets: &[&ReplicaSet], f: impl Fn(&ReplicaSet) -> Option<i32>) -> i32 {
    sets.iter().map(|rs| f(rs).unwrap_or(0)).sum()
}

/// A new condition.
pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: Some(type_.into()),
        status: Some(status.into()),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Sets `new` unless a condition of its type has the same status and reason (upstream
/// `SetDeploymentCondition`); the transition time survives when only the reason changes.
pub fn set(conditions: &mut Vec<DeploymentCondition>, mut new: DeploymentCondition) {
    if let Some(current) = conditions.iter().find(|c| c.type_ == new.type_) {
        if current.status == new.status && current.reason == new.reason {
            return;
        }
        if current.status == new.status {
            new.last_transition_time
                .clone_from(&current.last_transition_time);
        }
    }
    conditions.retain(|c| c.type_ != new.type_);
    conditions.push(new);
}

/// The condition of type `type_`.
pub fn get<'a>(
    status: Option<&'a DeploymentStatus>,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_.as_deref() == Some(type_))
}

/// `progressDeadlineSeconds`, unless it is "never" (`i32::MAX`).
pub fn deadline(d: &Deployment) -> Option<SignedDuration> {
    let secs = d.spec.progress_deadline_seconds.unwrap_or(600);
    (secs != i32::MAX).then(|| SignedDuration::from_secs(secs.into()))
}

/// The status the sets give `d`, with `Available` and `Progressing` brought up to date.
pub fn compute(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    now: Timestamp,
) -> DeploymentStatus {
    let limits = Limits::of(d);
    let old = d.status.clone().unwrap_or_default();
    let available = count(all, |rs| rs.status.as_ref()?.available_replicas);
    let asked = count(all, |rs| rs.spec.replicas);
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(count(all, |rs| rs.status.as_ref().map(|s| s.replicas))),
        updated_replicas: Some(new.map_or(0, |rs| rs.status.as_ref().map_or(0, |s| s.replicas))),
        ready_replicas: Some(count(all, |rs| rs.status.as_ref()?.ready_replicas)),
        available_replicas: Some(available),
        unavailable_replicas: Some((asked - available).max(0)),
        terminating_replicas: None,
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
    };
    let mut conditions = status.conditions.take().unwrap_or_default();
    if available >= limits.replicas - limits.max_unavailable {
        set(
            &mut conditions,
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
                now,
            ),
        );
    } else {
        set(
            &mut conditions,
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
                now,
            ),
        );
    }
    progressing(d, &old, &status, new, &mut conditions, now);
    status.conditions = Some(conditions);
    status
}

/// Upstream `syncRolloutStatus`'s Progressing logic.
fn progressing(
    d: &Deployment,
    old: &DeploymentStatus,
    new_status: &DeploymentStatus,
    new: Option<&ReplicaSet>,
    conditions: &mut Vec<DeploymentCondition>,
    now: Timestamp,
) {
    let Some(deadline) = deadline(d) else {
        conditions.retain(|c| c.type_.as_deref() != Some("Progressing"));
        return;
    };
    if d.spec.paused == Some(true) {
        return;
    }
    let current = conditions
        .iter()
        .find(|c| c.type_.as_deref() == Some("Progressing"))
        .cloned();
    let v = |n: Option<i32>| n.unwrap_or(0);
    let finished = v(new_status.replicas) == v(new_status.updated_replicas)
        && current
            .as_ref()
            .is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
    if finished {
        return;
    }
    let subject = new.map_or_else(
        || format!("Deployment {:?}", d.name_any()),
        |rs| format!("ReplicaSet {:?}", rs.name_any()),
    );
    let limits = Limits::of(d);
    let done = complete(
        limits,
        v(new_status.updated_replicas),
        v(new_status.replicas),
        v(new_status.available_replicas),
    ) && new_status.observed_generation >= d.metadata.generation;
    let old_replicas = |s: &DeploymentStatus| v(s.replicas) - v(s.updated_replicas);
    let moved = v(new_status.updated_replicas) > v(old.updated_replicas)
        || v(new_status.ready_replicas) > v(old.ready_replicas)
        || v(new_status.available_replicas) > v(old.available_replicas)
        || old_replicas(new_status) < old_replicas(old);
    if done {
        set(
            conditions,
            condition(
                "Progressing",
                "True",
                NEW_RS_AVAILABLE,
                format!("{subject} has successfully progressed."),
                now,
            ),
        );
    } else if moved {
        let mut c = condition(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            format!("{subject} is progressing."),
            now,
        );
        if let Some(cur) = current
            .as_ref()
            .filter(|c| c.status.as_deref() == Some("True"))
        {
            c.last_transition_time.clone_from(&cur.last_transition_time);
        }
        conditions.retain(|c| c.type_.as_deref() != Some("Progressing"));
        conditions.push(c);
    } else if let Some(cur) = current.as_ref() {
        let timed_out = cur.reason.as_deref() != Some(TIMED_OUT)
            && cur
                .last_update_time
                .as_ref()
                .is_some_and(|t| t.0 + deadline < now);
        if timed_out {
            set(
                conditions,
                condition(
                    "Progressing",
                    "False",
                    TIMED_OUT,
                    format!("{subject} has timed out progressing."),
                    now,
                ),
            );
        }
    }
}

/// When a rollout that is still progressing runs out of its deadline, if it is not done.
pub fn deadline_in(
    d: &Deployment,
    status: &DeploymentStatus,
    now: Timestamp,
) -> Option<SignedDuration> {
    let deadline = deadline(d)?;
    let c = get(Some(status), "Progressing")?;
    if c.status.as_deref() != Some("True") || c.reason.as_deref() == Some(NEW_RS_AVAILABLE) {
        return None;
    }
    let at = c.last_update_time.as_ref()?.0 + deadline;
    Some(at.duration_since(now).max(SignedDuration::ZERO))
}
