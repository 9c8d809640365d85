//! The rollout arithmetic of a Deployment (upstream `pkg/controller/deployment/rolling.go`,
//! `recreate.go` and `util/deployment_util.go`), as pure functions over the replica counts of
//! its ReplicaSets, so every step can be tested without a server.

use k8s_openapi::api::apps::v1::Deployment;

/// The numbers of one ReplicaSet a rollout step looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetCounts {
    /// `metadata.name`.
    pub name: String,
    /// `spec.replicas`: what the set is asked to run.
    pub replicas: i32,
    /// `status.replicas`: Pods it runs.
    pub running: i32,
    /// `status.availableReplicas`.
    pub available: i32,
}

/// A Deployment's rolling-update bounds, resolved against its replica count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `spec.replicas`.
    pub replicas: i32,
    /// Pods above `replicas` a rollout may run.
    pub max_surge: i32,
    /// Pods below `replicas` that may be unavailable.
    pub max_unavailable: i32,
}

impl Limits {
    /// The bounds of `d` (upstream `ResolveFenceposts` and `MaxUnavailable`): Recreate allows
    /// no surge and no unavailability; both zero is read as one unavailable Pod, so a rollout
    /// can always proceed.
    pub fn of(d: &Deployment) -> Limits {
        let replicas = d.spec.replicas.unwrap_or(1);
        let strategy = d.spec.strategy.as_ref();
        let rolling = strategy.is_none_or(|s| s.type_.as_deref() != Some("Recreate"));
        if !rolling {
            return Limits {
                replicas,
                max_surge: 0,
                max_unavailable: 0,
            };
        }
        let params = strategy.and_then(|s| s.rolling_update.as_ref());
        let max_surge = crate::pods::scaled(
            params.and_then(|p| p.max_surge.as_ref()),
            "25%",
            replicas,
            true,
        );
        let mut max_unavailable = crate::pods::scaled(
            params.and_then(|p| p.max_unavailable.as_ref()),
            "25%",
            replicas,
            false,
        );
        if max_surge == 0 && max_unavailable == 0 {
            max_unavailable = 1;
        }
        Limits {
            replicas,
            max_surge,
            max_unavailable: if replicas == 0 {
                0
            } else {
                max_unavailable.min(replicas)
            },
        }
    }
}

fn total(sets: &[&SetCounts]) -> i32 {
    sets.iter().map(|s| s.replicas).sum()
}

/// The new set's next `spec.replicas` in a rolling update (upstream `NewRSNewReplicas`): up to
/// `replicas`, while every set together asks for at most `replicas + maxSurge`.
pub fn new_set_target(limits: Limits, new: &SetCounts, all: &[&SetCounts]) -> i32 {
    if new.replicas >= limits.replicas {
        return limits.replicas;
    }
    let max_total = limits.replicas + limits.max_surge;
    let current = total(all);
    if current >= max_total {
        return new.replicas;
    }
    new.replicas + (max_total - current).min(limits.replicas - new.replicas)
}

/// The old sets' next `spec.replicas` in a rolling update (upstream `reconcileOldReplicaSets`):
/// first their unavailable Pods go (as far as the new set's own unavailable Pods allow), then
/// available ones, oldest set first, while at least `replicas - maxUnavailable` stay available.
/// `old` is oldest first; the result is in the same order.
pub fn old_set_targets(limits: Limits, new: Option<&SetCounts>, old: &[SetCounts]) -> Vec<i32> {
    let mut targets: Vec<i32> = old.iter().map(|s| s.replicas).collect();
    let old_total: i32 = targets.iter().sum();
    if old_total == 0 {
        return targets;
    }
    let new_replicas = new.map_or(0, |n| n.replicas);
    let new_unavailable = new.map_or(0, |n| (n.replicas - n.available).max(0));
    let min_available = limits.replicas - limits.max_unavailable;
    let all_total = old_total + new_replicas;
    let max_cleanup = all_total - min_available - new_unavailable;
    if max_cleanup <= 0 {
        return targets;
    }
    // Unhealthy Pods of old sets first: they cost no availability.
    let mut cleaned = 0;
    for (target, set) in targets.iter_mut().zip(old) {
        if cleaned >= max_cleanup {
            break;
        }
        let unhealthy = *target - set.available;
        if *target == 0 || unhealthy <= 0 {
            continue;
        }
        let down = (max_cleanup - cleaned).min(unhealthy);
        *target -= down;
        cleaned += down;
    }
    // Then available Pods, as far as minimum availability allows.
    let available: i32 =
        old.iter().map(|s| s.available).sum::<i32>() + new.map_or(0, |n| n.available);
    if available <= min_available {
        return targets;
    }
    let mut budget = available - min_available;
    for target in &mut targets {
        if budget <= 0 {
            break;
        }
        let down = (*target).min(budget);
        *target -= down;
        budget -= down;
    }
    targets
}

/// The rollout is done (upstream `DeploymentComplete`).
pub fn complete(limits: Limits, updated: i32, running: i32, available: i32) -> bool {
    updated == limits.replicas && running == limits.replicas && available == limits.replicas
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn set(name: &str, replicas: i32, available: i32) -> SetCounts {
        SetCounts {
            name: name.into(),
            replicas,
            running: replicas,
            available,
        }
    }

    fn limits(replicas: i32, max_surge: i32, max_unavailable: i32) -> Limits {
        Limits {
            replicas,
            max_surge,
            max_unavailable,
        }
    }

    /// Upstream `TestNewRSNewReplicas` and `TestReconcileNewReplicaSet`-style rows.
    #[test]
    fn new_set_grows_within_max_surge() {
        // (replicas, surge, new.replicas, old total) -> new target
        let rows = [
            (10, 2, 0, 10, 2),
            (10, 2, 2, 10, 2), // at the cap: no growth until old sets shrink
            (10, 2, 2, 8, 4),
            (10, 0, 0, 9, 1),
            (3, 1, 3, 0, 3),
            (3, 1, 5, 0, 3), // too many: scaled down to replicas
        ];
        for (replicas, surge, new_replicas, old_total, want) in rows {
            let new = set("new", new_replicas, 0);
            let old = set("old", old_total, old_total);
            let got = new_set_target(limits(replicas, surge, 1), &new, &[&new, &old]);
            assert_eq!(
                got, want,
                "replicas {replicas} surge {surge} new {new_replicas} old {old_total}"
            );
        }
    }

    /// Upstream `TestReconcileOldReplicaSets` / `TestCleanupUnhealthyReplicas` rows.
    #[test]
    fn old_sets_shrink_keeping_minimum_availability() {
        // 10 replicas, maxUnavailable 2: old 10 available, new 2 unavailable -> 0 may go
        // (12 total - 8 min available - 2 new unavailable = 2 cleanup budget; the old set is
        // all available so cleanup takes nothing; available 10 - 8 = 2 may go).
        let l = limits(10, 2, 2);
        assert_eq!(
            old_set_targets(l, Some(&set("new", 2, 0)), &[set("old", 10, 10)]),
            [8]
        );
        // New set fully available: old shrinks by the available budget.
        assert_eq!(
            old_set_targets(l, Some(&set("new", 4, 4)), &[set("old", 8, 8)]),
            [4]
        );
        // Unhealthy old Pods go first, within the cleanup budget (10 - 8 min available = 2);
        // what is left is not above minimum availability, so no available Pod goes.
        assert_eq!(
            old_set_targets(l, Some(&set("new", 0, 0)), &[set("old", 10, 5)]),
            [8]
        );
        // Oldest set first.
        assert_eq!(
            old_set_targets(
                l,
                Some(&set("new", 4, 4)),
                &[set("a", 3, 3), set("b", 5, 5)]
            ),
            [0, 4]
        );
        // Nothing left to shrink.
        assert_eq!(old_set_targets(l, None, &[set("old", 0, 0)]), [0]);
    }

    #[test]
    fn limits_resolve_percentages_and_never_deadlock() {
        use k8s_openapi::api::apps::v1::{
            DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
        };
        let d = |replicas, surge: IntOrString, unavailable: IntOrString, type_: &str| Deployment {
            spec: DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some(type_.into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                ..DeploymentSpec::default()
            },
            ..Deployment::default()
        };
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(
            Limits::of(&d(10, pct("25%"), pct("25%"), "RollingUpdate")),
            limits(10, 3, 2)
        );
        assert_eq!(
            Limits::of(&d(
                3,
                IntOrString::Int(0),
                IntOrString::Int(0),
                "RollingUpdate"
            )),
            limits(3, 0, 1)
        );
        assert_eq!(
            Limits::of(&d(
                3,
                IntOrString::Int(1),
                IntOrString::Int(5),
                "RollingUpdate"
            )),
            limits(3, 1, 3)
        );
        assert_eq!(
            Limits::of(&d(3, pct("50%"), pct("50%"), "Recreate")),
            limits(3, 0, 0)
        );
    }
}
