//! Scaling behavior (upstream `pkg/controller/podautoscaler/horizontal.go`, the
//! `normalizeDesiredReplicas*` family, and `pkg/apis/autoscaling/v2/defaults.go`): what becomes
//! of the replica count the metrics ask for before it is written to the target.
//!
//! With `spec.behavior` set (the API server fills its unset fields; [`scale_up_rules`] and
//! [`scale_down_rules`] do the same here):
//!
//! 1. **Stabilization**: the recommendation is held between the lowest recommendation of the
//!    scale-up window and the highest of the scale-down window (300 s unless set — upstream's
//!    `--horizontal-pod-autoscaler-downscale-stabilization`), so that a brief dip or spike does
//!    not move the count.
//! 2. **Rate**: each policy (`Pods` or `Percent` per `periodSeconds`) allows a count relative to
//!    the count at the start of its period, reconstructed from the recorded scale events;
//!    `selectPolicy` picks the most (`Max`) or least (`Min`) permissive, or forbids the direction
//!    (`Disabled`).
//! 3. **Bounds**: `minReplicas` and `maxReplicas`.
//!
//! Without `spec.behavior` upstream takes its older path, and so does [`normalize`]: only
//! scale-down is stabilized (same window), and a scale-up is capped at `max(2 × current, 4)`
//! with no scale-down rate limit. (The API server does not default an absent behavior.)
//!
//! The result carries the reasons and messages upstream writes to the `AbleToScale` and
//! `ScalingLimited` conditions. The controller owns one [`History`] per autoscaler; upstream
//! keeps the same in maps keyed by autoscaler, guarded by locks.
//!
//! Left out: nothing of the algorithm. Differences: time is an input (`now`), so the periods
//! compare against it rather than the wall clock; a policy of an unknown type is skipped
//! (upstream would reuse the previous policy's proposal; the API refuses unknown types); and
//! recording a "scale" that does not change the count records nothing.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::autoscaling::v2::{
    HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscalerBehavior,
};

/// How long a higher recommendation holds off a scale-down when the behavior does not say
/// (upstream's `--horizontal-pod-autoscaler-downscale-stabilization`, 5 min).
pub const DEFAULT_DOWNSCALE_STABILIZATION: Duration = Duration::from_secs(300);

/// `ScalingLimited` reason: the scale-up rate limited the count.
pub const SCALE_UP_LIMIT: &str = "ScaleUpLimit";
/// `ScalingLimited` reason: the scale-down rate limited the count.
pub const SCALE_DOWN_LIMIT: &str = "ScaleDownLimit";
/// `ScalingLimited` reason: `minReplicas` raised the count.
pub const TOO_FEW_REPLICAS: &str = "TooFewReplicas";
/// `ScalingLimited` reason: `maxReplicas` lowered the count.
pub const TOO_MANY_REPLICAS: &str = "TooManyReplicas";
/// `ScalingLimited` reason: nothing limited the count.
pub const DESIRED_WITHIN_RANGE: &str = "DesiredWithinRange";

const SCALE_UP_LIMIT_MESSAGE: &str =
    "the desired replica count is increasing faster than the maximum scale rate";
const SCALE_DOWN_LIMIT_MESSAGE: &str =
    "the desired replica count is decreasing faster than the maximum scale rate";
const TOO_FEW_MESSAGE: &str = "the desired replica count is less than the minimum replica count";
const TOO_MANY_MESSAGE: &str = "the desired replica count is more than the maximum replica count";
const WITHIN_RANGE_MESSAGE: &str = "the desired count is within the acceptable range";

/// Without a behavior, a scale-up may at most double the count, or reach 4 (upstream
/// `scaleUpLimitFactor`, `scaleUpLimitMinimum`).
const LEGACY_SCALE_UP_FACTOR: f64 = 2.0;
const LEGACY_SCALE_UP_MINIMUM: f64 = 4.0;

fn policy(type_: &str, value: i32, period_seconds: i32) -> HPAScalingPolicy {
    HPAScalingPolicy {
        type_: type_.to_owned(),
        value,
        period_seconds,
    }
}

/// `rules` with every unset field defaulted for scale-up (upstream `GenerateHPAScaleUpRules`):
/// no stabilization, 4 Pods or 100 % per 15 s, whichever is more (`Max`).
pub fn scale_up_rules(rules: Option<&HPAScalingRules>) -> HPAScalingRules {
    let defaults = HPAScalingRules {
        stabilization_window_seconds: Some(0),
        select_policy: Some("Max".to_owned()),
        policies: Some(vec![policy("Pods", 4, 15), policy("Percent", 100, 15)]),
        tolerance: None,
    };
    fill(rules, defaults)
}

/// `rules` with every unset field defaulted for scale-down (upstream
/// `GenerateHPAScaleDownRules`): 100 % per 15 s (`Max`). The stabilization window stays unset:
/// it is the controller's setting ([`DEFAULT_DOWNSCALE_STABILIZATION`]).
pub fn scale_down_rules(rules: Option<&HPAScalingRules>) -> HPAScalingRules {
    let defaults = HPAScalingRules {
        stabilization_window_seconds: None,
        select_policy: Some("Max".to_owned()),
        policies: Some(vec![policy("Percent", 100, 15)]),
        tolerance: None,
    };
    fill(rules, defaults)
}

/// Upstream `copyHPAScalingRules`: the set fields of `from` over `defaults`.
fn fill(from: Option<&HPAScalingRules>, defaults: HPAScalingRules) -> HPAScalingRules {
    let Some(from) = from else { return defaults };
    HPAScalingRules {
        stabilization_window_seconds: from
            .stabilization_window_seconds
            .or(defaults.stabilization_window_seconds),
        select_policy: from.select_policy.clone().or(defaults.select_policy),
        policies: from.policies.clone().or(defaults.policies),
        tolerance: from.tolerance.clone().or(defaults.tolerance),
    }
}

/// A replica count the metrics asked for, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recommendation {
    /// The count, before stabilization and limits.
    pub replicas: i32,
    /// When it was made.
    pub timestamp: Timestamp,
}

/// A change the controller made to the target's count, for the rate policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleEvent {
    /// How many replicas were added (scale-up events) or removed (scale-down events).
    pub change: i32,
    /// When.
    pub timestamp: Timestamp,
    /// Older than every policy period: no longer counted, and its slot is reused.
    pub outdated: bool,
}

/// What the controller remembers about one autoscaler between syncs (upstream's
/// `recommendations`, `scaleUpEvents` and `scaleDownEvents` maps, for one key). Entries past
/// their windows are overwritten rather than removed, as upstream does, so the vectors stay as
/// long as the number of syncs within the longest window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Recent recommendations, for stabilization.
    pub recommendations: Vec<Recommendation>,
    /// Recent scale-ups, for the rate policies.
    pub scale_up_events: Vec<ScaleEvent>,
    /// Recent scale-downs, for the rate policies.
    pub scale_down_events: Vec<ScaleEvent>,
}

impl History {
    /// On the first sync of an autoscaler, the current count counts as a recommendation, so a
    /// controller restart does not scale down at once (upstream `recordInitialRecommendation`).
    /// Does nothing once a recommendation is recorded. [`normalize`] calls it too.
    pub fn record_initial(&mut self, current_replicas: i32, now: Timestamp) {
        if self.recommendations.is_empty() {
            self.recommendations.push(Recommendation {
                replicas: current_replicas,
                timestamp: now,
            });
        }
    }

    /// Records that the target was scaled from `from` to `to` replicas (upstream
    /// `storeScaleEvent`): marks the events older than the direction's longest policy period
    /// outdated and reuses the last such slot. Without a behavior nothing is recorded, as the
    /// rate policies are not used.
    pub fn record_scale(
        &mut self,
        behavior: Option<&HorizontalPodAutoscalerBehavior>,
        now: Timestamp,
        from: i32,
        to: i32,
    ) {
        let Some(behavior) = behavior else { return };
        let (events, rules, change) = match to.cmp(&from) {
            std::cmp::Ordering::Greater => (
                &mut self.scale_up_events,
                scale_up_rules(behavior.scale_up.as_ref()),
                to - from,
            ),
            std::cmp::Ordering::Less => (
                &mut self.scale_down_events,
                scale_down_rules(behavior.scale_down.as_ref()),
                from - to,
            ),
            std::cmp::Ordering::Equal => return,
        };
        let cutoff = before(now, longest_period(&rules));
        for event in events.iter_mut() {
            if event.timestamp < cutoff {
                event.outdated = true;
            }
        }
        let event = ScaleEvent {
            change,
            timestamp: now,
            outdated: false,
        };
        match events.iter().rposition(|e| e.outdated) {
            Some(slot) => events[slot] = event,
            None => events.push(event),
        }
    }

    /// Stores `desired` in the slot of an expired recommendation, or appends it.
    fn remember(&mut self, expired: Option<usize>, desired: i32, now: Timestamp) {
        let recommendation = Recommendation {
            replicas: desired,
            timestamp: now,
        };
        match expired {
            Some(slot) => self.recommendations[slot] = recommendation,
            None => self.recommendations.push(recommendation),
        }
    }

    /// Upstream `stabilizeRecommendationWithBehaviors`: `current` brought up to the lowest
    /// recommendation of the scale-up window and down to the highest of the scale-down window
    /// (both including `desired`), then `desired` recorded.
    fn stabilize(
        &mut self,
        current: i32,
        desired: i32,
        up_window: i64,
        down_window: i64,
        now: Timestamp,
    ) -> (i32, Condition) {
        let (up_cutoff, down_cutoff) = (before(now, up_window), before(now, down_window));
        let (mut up, mut down, mut expired) = (desired, desired, None);
        for (i, rec) in self.recommendations.iter().enumerate() {
            if rec.timestamp > up_cutoff {
                up = up.min(rec.replicas);
            }
            if rec.timestamp > down_cutoff {
                down = down.max(rec.replicas);
            }
            if rec.timestamp < up_cutoff && rec.timestamp < down_cutoff {
                expired = Some(i);
            }
        }
        self.remember(expired, desired, now);
        let condition = if desired >= current {
            SCALE_UP_STABILIZED
        } else {
            SCALE_DOWN_STABILIZED
        };
        (current.max(up).min(down), condition)
    }

    /// Upstream `stabilizeRecommendation` (no behavior): the highest recommendation of the
    /// window, `desired` included, then `desired` recorded.
    fn stabilize_scale_down(&mut self, desired: i32, window: i64, now: Timestamp) -> i32 {
        let cutoff = before(now, window);
        let (mut highest, mut expired) = (desired, None);
        for (i, rec) in self.recommendations.iter().enumerate() {
            if rec.timestamp < cutoff {
                expired = Some(i);
            } else {
                highest = highest.max(rec.replicas);
            }
        }
        self.remember(expired, desired, now);
        highest
    }
}

/// `now` minus `seconds`.
fn before(now: Timestamp, seconds: i64) -> Timestamp {
    now.checked_sub(SignedDuration::from_secs(seconds))
        .unwrap_or(Timestamp::MIN)
}

fn longest_period(rules: &HPAScalingRules) -> i64 {
    rules
        .policies
        .iter()
        .flatten()
        .map(|p| i64::from(p.period_seconds))
        .max()
        .unwrap_or(0)
        .max(0)
}

/// Upstream `getReplicasChangePerPeriod`: the replicas the events within the last
/// `period_seconds` added (or removed).
fn replicas_changed(events: &[ScaleEvent], period_seconds: i32, now: Timestamp) -> i32 {
    let cutoff = before(now, i64::from(period_seconds));
    events
        .iter()
        .filter(|e| e.timestamp > cutoff)
        .map(|e| e.change)
        .fold(0, i32::saturating_add)
}

/// Each policy's count relative to the count at the start of its period, reduced by `select`.
fn policy_limit(
    current: i32,
    history: &History,
    rules: &HPAScalingRules,
    now: Timestamp,
    propose: impl Fn(&str, i32, i32) -> Option<i32>,
    select: fn(i32, i32) -> i32,
    start: i32,
) -> i32 {
    let mut limit = start;
    for policy in rules.policies.iter().flatten() {
        let added = replicas_changed(&history.scale_up_events, policy.period_seconds, now);
        let removed = replicas_changed(&history.scale_down_events, policy.period_seconds, now);
        let period_start = current.saturating_sub(added).saturating_add(removed);
        if let Some(proposed) = propose(&policy.type_, policy.value, period_start) {
            limit = select(limit, proposed);
        }
    }
    limit
}

/// Upstream `calculateScaleUpLimitWithScalingRules`: the most replicas the scale-up policies
/// allow now.
fn scale_up_limit(current: i32, history: &History, rules: &HPAScalingRules, now: Timestamp) -> i32 {
    let propose = |type_: &str, value: i32, start: i32| match type_ {
        "Pods" => Some(start.saturating_add(value)),
        // Rounded up, or a small percentage of a small count would never add a replica.
        "Percent" => Some((f64::from(start) * (1.0 + f64::from(value) / 100.0)).ceil() as i32),
        _ => None,
    };
    match rules.select_policy.as_deref() {
        Some("Disabled") => current,
        Some("Min") => policy_limit(current, history, rules, now, propose, i32::min, i32::MAX),
        _ => policy_limit(current, history, rules, now, propose, i32::max, i32::MIN),
    }
}

/// Upstream `calculateScaleDownLimitWithBehaviors`: the fewest replicas the scale-down policies
/// allow now.
fn scale_down_limit(
    current: i32,
    history: &History,
    rules: &HPAScalingRules,
    now: Timestamp,
) -> i32 {
    let propose = |type_: &str, value: i32, start: i32| match type_ {
        "Pods" => Some(start.saturating_sub(value)),
        "Percent" => Some((f64::from(start) * (1.0 - f64::from(value) / 100.0)) as i32),
        _ => None,
    };
    match rules.select_policy.as_deref() {
        Some("Disabled") => current,
        Some("Min") => policy_limit(current, history, rules, now, propose, i32::max, i32::MIN),
        _ => policy_limit(current, history, rules, now, propose, i32::min, i32::MAX),
    }
}

/// A condition's reason and message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Condition {
    /// The `reason`.
    pub reason: &'static str,
    /// The `message`.
    pub message: &'static str,
}

const SCALE_UP_STABILIZED: Condition = Condition {
    reason: "ScaleUpStabilized",
    message: "recent recommendations were lower than current one, applying the lowest recent recommendation",
};
const SCALE_DOWN_STABILIZED: Condition = Condition {
    reason: "ScaleDownStabilized",
    message: "recent recommendations were higher than current one, applying the highest recent recommendation",
};
const READY_FOR_NEW_SCALE: Condition = Condition {
    reason: "ReadyForNewScale",
    message: "recommended size matches current size",
};

fn limited(reason: &'static str, message: &'static str) -> Condition {
    Condition { reason, message }
}

/// Upstream `convertDesiredReplicasWithBehaviorRate`: `desired` bounded by the rate policies
/// and min/max, with the `ScalingLimited` reason.
fn bound_by_rate(
    request: &Request<'_>,
    desired: i32,
    up: &HPAScalingRules,
    down: &HPAScalingRules,
    history: &History,
) -> (i32, Condition) {
    let (current, now) = (request.current_replicas, request.now);
    if desired > current {
        let rate_limit = scale_up_limit(current, history, up, now).max(current);
        let (maximum, why) = if request.max_replicas > rate_limit {
            (rate_limit, limited(SCALE_UP_LIMIT, SCALE_UP_LIMIT_MESSAGE))
        } else {
            (
                request.max_replicas,
                limited(TOO_MANY_REPLICAS, TOO_MANY_MESSAGE),
            )
        };
        if desired > maximum {
            return (maximum, why);
        }
    } else if desired < current {
        let rate_limit = scale_down_limit(current, history, down, now).min(current);
        let (minimum, why) = if request.min_replicas < rate_limit {
            (
                rate_limit,
                limited(SCALE_DOWN_LIMIT, SCALE_DOWN_LIMIT_MESSAGE),
            )
        } else {
            (
                request.min_replicas,
                limited(TOO_FEW_REPLICAS, TOO_FEW_MESSAGE),
            )
        };
        if desired < minimum {
            return (minimum, why);
        }
    }
    (desired, limited(DESIRED_WITHIN_RANGE, WITHIN_RANGE_MESSAGE))
}

/// Upstream `convertDesiredReplicasWithRules` (no behavior): `desired` bounded by min/max and a
/// scale-up cap of `max(2 × current, 4)`.
fn bound_without_behavior(current: i32, desired: i32, min: i32, max: i32) -> (i32, Condition) {
    let cap = (LEGACY_SCALE_UP_FACTOR * f64::from(current)).max(LEGACY_SCALE_UP_MINIMUM) as i32;
    let (maximum, why) = if max > cap {
        (cap, limited(SCALE_UP_LIMIT, SCALE_UP_LIMIT_MESSAGE))
    } else {
        (max, limited(TOO_MANY_REPLICAS, TOO_MANY_MESSAGE))
    };
    if desired < min {
        (min, limited(TOO_FEW_REPLICAS, TOO_FEW_MESSAGE))
    } else if desired > maximum {
        (maximum, why)
    } else {
        (desired, limited(DESIRED_WITHIN_RANGE, WITHIN_RANGE_MESSAGE))
    }
}

/// One normalization's inputs.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The autoscaler's `spec.behavior`.
    pub behavior: Option<&'a HorizontalPodAutoscalerBehavior>,
    /// `spec.minReplicas` (1 when unset).
    pub min_replicas: i32,
    /// `spec.maxReplicas`.
    pub max_replicas: i32,
    /// The target's current count.
    pub current_replicas: i32,
    /// The count the metrics ask for.
    pub recommendation: i32,
    /// The time windows and periods are measured back from.
    pub now: Timestamp,
}

/// The count to write, and what the conditions should say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalized {
    /// The replica count to scale the target to.
    pub replicas: i32,
    /// The recommendation after stabilization, before the rate and min/max.
    pub stabilized: i32,
    /// `AbleToScale` (status `True`) when the count is not rescaled: `ScaleUpStabilized` /
    /// `ScaleDownStabilized` when stabilization changed the recommendation, else
    /// `ReadyForNewScale`.
    pub able_to_scale: Condition,
    /// `ScalingLimited` reason (one of the constants above).
    pub reason: &'static str,
    /// `ScalingLimited` message.
    pub message: String,
    /// Whether the rate or min/max changed the stabilized count (`ScalingLimited` status).
    pub limited: bool,
}

impl Normalized {
    /// The `ScalingLimited` condition's status.
    pub fn limited_status(&self) -> &'static str {
        if self.limited { "True" } else { "False" }
    }
}

/// [`normalize_with`] with the default scale-down stabilization window.
pub fn normalize(
    behavior: Option<&HorizontalPodAutoscalerBehavior>,
    min_replicas: i32,
    max_replicas: i32,
    current_replicas: i32,
    recommendation: i32,
    now: Timestamp,
    history: &mut History,
) -> Normalized {
    let request = Request {
        behavior,
        min_replicas,
        max_replicas,
        current_replicas,
        recommendation,
        now,
    };
    normalize_with(&request, DEFAULT_DOWNSCALE_STABILIZATION, history)
}

/// The count to scale to (upstream `normalizeDesiredReplicasWithBehaviors`, or
/// `normalizeDesiredReplicas` without a behavior): stabilized over `history`, bounded by the
/// rate policies and min/max. Records the recommendation in `history`; the caller records the
/// scale itself with [`History::record_scale`] once it succeeds.
pub fn normalize_with(
    request: &Request<'_>,
    downscale_stabilization: Duration,
    history: &mut History,
) -> Normalized {
    history.record_initial(request.current_replicas, request.now);
    let down_default = i64::try_from(downscale_stabilization.as_secs()).unwrap_or(i64::MAX);
    let (stabilized, stabilization, (replicas, why)) = match request.behavior {
        None => {
            let stabilized =
                history.stabilize_scale_down(request.recommendation, down_default, request.now);
            let bounded = bound_without_behavior(
                request.current_replicas,
                stabilized,
                request.min_replicas,
                request.max_replicas,
            );
            (stabilized, SCALE_DOWN_STABILIZED, bounded)
        }
        Some(behavior) => {
            let up = scale_up_rules(behavior.scale_up.as_ref());
            let down = scale_down_rules(behavior.scale_down.as_ref());
            let up_window = i64::from(up.stabilization_window_seconds.unwrap_or(0));
            let down_window = down
                .stabilization_window_seconds
                .map_or(down_default, i64::from);
            let (stabilized, condition) = history.stabilize(
                request.current_replicas,
                request.recommendation,
                up_window,
                down_window,
                request.now,
            );
            let bounded = bound_by_rate(request, stabilized, &up, &down, history);
            (stabilized, condition, bounded)
        }
    };
    Normalized {
        replicas,
        stabilized,
        able_to_scale: if stabilized == request.recommendation {
            READY_FOR_NEW_SCALE
        } else {
            stabilization
        },
        reason: why.reason,
        message: why.message.to_owned(),
        limited: replicas != stabilized,
    }
}

#[cfg(test)]
mod tests {
    //! Cases ported from upstream `horizontal_test.go` and `pkg/apis/autoscaling/v2/
    //! defaults_test.go`, as data. Upstream measures against `time.Now()`; here every case
    //! measures against one fixed `NOW`.

    use super::*;

    const NOW: Timestamp = Timestamp::constant(1_700_000_000, 0);

    fn ago(seconds: i64) -> Timestamp {
        before(NOW, seconds)
    }

    /// Upstream `generateScalingRules(pods, podsPeriod, percent, percentPeriod, window)`:
    /// `Max` selection, a policy only for non-zero values.
    fn rules(
        pods: i32,
        pods_period: i32,
        percent: i32,
        percent_period: i32,
        window: i32,
    ) -> HPAScalingRules {
        let mut policies = Vec::new();
        if pods != 0 {
            policies.push(policy("Pods", pods, pods_period));
        }
        if percent != 0 {
            policies.push(policy("Percent", percent, percent_period));
        }
        HPAScalingRules {
            stabilization_window_seconds: Some(window),
            select_policy: Some("Max".to_owned()),
            policies: Some(policies),
            tolerance: None,
        }
    }

    /// Upstream `generateEventsUniformDistribution`: events spread over the last
    /// `period_seconds`, each in the middle of its segment (whole seconds, as upstream truncates).
    fn spread(changes: &[i32], period_seconds: i64) -> Vec<ScaleEvent> {
        let segment = period_seconds as f64 / changes.len() as f64;
        changes
            .iter()
            .enumerate()
            .map(|(i, change)| {
                let age = (period_seconds as f64 - segment * (i + 1) as f64 + segment / 2.0) as i64;
                ScaleEvent {
                    change: *change,
                    timestamp: ago(age),
                    outdated: false,
                }
            })
            .collect()
    }

    type RulesArgs = (i32, i32, i32, i32, i32);

    /// Upstream `TestGenerateScaleUpRules` / `TestGenerateScaleDownRules`.
    struct DefaultsCase {
        name: &'static str,
        up: bool,
        /// (pods, pods period, percent, percent period): a policy when either is non-zero.
        given: (i32, i32, i32, i32),
        window: Option<i32>,
        select: Option<&'static str>,
        expect_policies: &'static [(&'static str, i32, i32)],
        expect_window: Option<i32>,
        expect_select: &'static str,
    }

    const DEFAULTS_CASES: &[DefaultsCase] = &[
        DefaultsCase {
            name: "down: default values",
            up: false,
            given: (0, 0, 0, 0),
            window: None,
            select: None,
            expect_policies: &[("Percent", 100, 15)],
            expect_window: None,
            expect_select: "Max",
        },
        DefaultsCase {
            name: "down: all parameters are specified",
            up: false,
            given: (1, 2, 3, 4),
            window: Some(25),
            select: Some("Max"),
            expect_policies: &[("Pods", 1, 2), ("Percent", 3, 4)],
            expect_window: Some(25),
            expect_select: "Max",
        },
        DefaultsCase {
            name: "down: percent policy is specified",
            up: false,
            given: (0, 0, 1, 2),
            window: None,
            select: Some("Min"),
            expect_policies: &[("Percent", 1, 2)],
            expect_window: None,
            expect_select: "Min",
        },
        DefaultsCase {
            name: "down: pods policy is specified",
            up: false,
            given: (3, 4, 0, 0),
            window: None,
            select: None,
            expect_policies: &[("Pods", 3, 4)],
            expect_window: None,
            expect_select: "Max",
        },
        DefaultsCase {
            name: "up: default values",
            up: true,
            given: (0, 0, 0, 0),
            window: None,
            select: None,
            expect_policies: &[("Pods", 4, 15), ("Percent", 100, 15)],
            expect_window: Some(0),
            expect_select: "Max",
        },
        DefaultsCase {
            name: "up: all parameters are specified",
            up: true,
            given: (1, 2, 3, 4),
            window: Some(25),
            select: Some("Max"),
            expect_policies: &[("Pods", 1, 2), ("Percent", 3, 4)],
            expect_window: Some(25),
            expect_select: "Max",
        },
        DefaultsCase {
            name: "up: pod policy is specified",
            up: true,
            given: (1, 2, 0, 0),
            window: None,
            select: Some("Min"),
            expect_policies: &[("Pods", 1, 2)],
            expect_window: Some(0),
            expect_select: "Min",
        },
        DefaultsCase {
            name: "up: percent policy is specified",
            up: true,
            given: (0, 0, 7, 10),
            window: None,
            select: None,
            expect_policies: &[("Percent", 7, 10)],
            expect_window: Some(0),
            expect_select: "Max",
        },
        DefaultsCase {
            name: "up: pod policy and stabilization window are specified",
            up: true,
            given: (4, 2, 0, 0),
            window: Some(25),
            select: None,
            expect_policies: &[("Pods", 4, 2)],
            expect_window: Some(25),
            expect_select: "Max",
        },
        DefaultsCase {
            name: "up: percent policy and stabilization window are specified",
            up: true,
            given: (0, 0, 7, 60),
            window: Some(25),
            select: None,
            expect_policies: &[("Percent", 7, 60)],
            expect_window: Some(25),
            expect_select: "Max",
        },
    ];

    #[test]
    fn defaults_cases() {
        for case in DEFAULTS_CASES {
            let (pods, pods_period, percent, percent_period) = case.given;
            let mut policies = Vec::new();
            if pods != 0 || pods_period != 0 {
                policies.push(policy("Pods", pods, pods_period));
            }
            if percent != 0 || percent_period != 0 {
                policies.push(policy("Percent", percent, percent_period));
            }
            let given = HPAScalingRules {
                stabilization_window_seconds: case.window,
                select_policy: case.select.map(str::to_owned),
                policies: Some(policies).filter(|p| !p.is_empty()),
                tolerance: None,
            };
            let got = if case.up {
                scale_up_rules(Some(&given))
            } else {
                scale_down_rules(Some(&given))
            };
            let want: Vec<_> = case
                .expect_policies
                .iter()
                .map(|(t, v, p)| policy(t, *v, *p))
                .collect();
            assert_eq!(got.policies, Some(want), "{}", case.name);
            assert_eq!(
                got.stabilization_window_seconds, case.expect_window,
                "{}",
                case.name
            );
            assert_eq!(
                got.select_policy.as_deref(),
                Some(case.expect_select),
                "{}",
                case.name
            );
        }
        assert_eq!(
            scale_up_rules(None),
            scale_up_rules(Some(&HPAScalingRules::default()))
        );
    }

    /// Upstream `TestConvertDesiredReplicasWithRules` (no behavior):
    /// (current, desired, min, max, expected, reason).
    #[test]
    fn bound_without_behavior_cases() {
        let cases = [
            ("within range", 5, 7, 3, 8, 7, DESIRED_WITHIN_RANGE),
            ("below minReplicas", 3, 1, 2, 8, 2, TOO_FEW_REPLICAS),
            ("zero within range", 1, 0, 0, 10, 0, DESIRED_WITHIN_RANGE),
            (
                "maxReplicas below the scale-up limit",
                20,
                1000,
                1,
                10,
                10,
                TOO_MANY_REPLICAS,
            ),
            (
                "scale-up limit below maxReplicas",
                3,
                1000,
                1,
                2000,
                6,
                SCALE_UP_LIMIT,
            ),
        ];
        for (name, current, desired, min, max, expected, reason) in cases {
            let (got, why) = bound_without_behavior(current, desired, min, max);
            assert_eq!((got, why.reason), (expected, reason), "{name}");
        }
    }

    /// Upstream `TestCalculateScaleUpLimitWithScalingRules` /
    /// `TestCalculateScaleDownLimitWithBehaviors`: `Min` of Pods 2 and Percent 50 per 60 s.
    #[test]
    fn min_select_policy_limits() {
        let mut rules = rules(2, 60, 50, 60, 300);
        rules.select_policy = Some("Min".to_owned());
        let history = History::default();
        assert_eq!(scale_up_limit(1, &history, &rules, NOW), 2);
        assert_eq!(scale_down_limit(5, &history, &rules, NOW), 3);
        rules.select_policy = Some("Disabled".to_owned());
        assert_eq!(scale_up_limit(1, &history, &rules, NOW), 1);
        assert_eq!(scale_down_limit(5, &history, &rules, NOW), 5);
    }

    /// Upstream `TestNormalizeDesiredReplicas` (no behavior, 5 min window):
    /// (recommendations as (replicas, seconds ago), desired, stabilized, log length).
    #[test]
    fn stabilize_scale_down_cases() {
        type Case = (&'static str, &'static [(i32, i64)], i32, i32, usize);
        let cases: [Case; 5] = [
            ("empty log", &[], 5, 5, 1),
            ("stabilize", &[(4, 120), (5, 60)], 3, 5, 3),
            ("no stabilize", &[(1, 120), (2, 60)], 3, 3, 3),
            (
                "no stabilize - old recommendations",
                &[(10, 600), (9, 540)],
                3,
                3,
                2,
            ),
            (
                "stabilize - old recommendations",
                &[(10, 600), (4, 60), (5, 120), (9, 540)],
                3,
                5,
                4,
            ),
        ];
        for (name, recs, desired, want, len) in cases {
            let mut history = History {
                recommendations: recs
                    .iter()
                    .map(|(r, s)| Recommendation {
                        replicas: *r,
                        timestamp: ago(*s),
                    })
                    .collect(),
                ..History::default()
            };
            assert_eq!(
                history.stabilize_scale_down(desired, 300, NOW),
                want,
                "{name}"
            );
            assert_eq!(history.recommendations.len(), len, "{name}");
        }
    }

    /// Upstream `TestScalingWithRules`: the rate and min/max step alone.
    struct RateCase {
        name: &'static str,
        /// Events spread over the last 120 s.
        up_events: &'static [i32],
        down_events: &'static [i32],
        min: i32,
        max: i32,
        up: Option<RulesArgs>,
        down: Option<RulesArgs>,
        current: i32,
        desired: i32,
        expect: (i32, &'static str),
    }

    const RATE: RateCase = RateCase {
        name: "",
        up_events: &[],
        down_events: &[],
        min: 1,
        max: 1000,
        up: None,
        down: None,
        current: 0,
        desired: 0,
        expect: (0, ""),
    };

    const RATE_CASES: &[RateCase] = &[
        RateCase {
            name: "within range",
            current: 5,
            desired: 7,
            min: 3,
            max: 8,
            expect: (7, DESIRED_WITHIN_RANGE),
            ..RATE
        },
        RateCase {
            name: "below minReplicas",
            current: 3,
            desired: 1,
            min: 2,
            max: 8,
            expect: (2, TOO_FEW_REPLICAS),
            ..RATE
        },
        RateCase {
            name: "within range when minReplicas is 0",
            current: 1,
            desired: 0,
            min: 0,
            max: 10,
            expect: (0, DESIRED_WITHIN_RANGE),
            ..RATE
        },
        RateCase {
            name: "maxReplicas < scaleUpLimit",
            current: 20,
            desired: 1000,
            max: 10,
            expect: (10, TOO_MANY_REPLICAS),
            ..RATE
        },
        RateCase {
            name: "desired replica count is more than the maximum replica count",
            current: 100,
            desired: 1000,
            min: 100,
            max: 150,
            expect: (150, TOO_MANY_REPLICAS),
            ..RATE
        },
        RateCase {
            name: "scaleUpLimit < maxReplicas with user policies",
            current: 3,
            desired: 1000,
            max: 2000,
            up: Some((0, 0, 1, 60, 0)),
            expect: (4, SCALE_UP_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scaleDownLimit > minReplicas with user defined policies",
            current: 1000,
            desired: 3,
            min: 3,
            max: 2000,
            down: Some((20, 60, 0, 0, 0)),
            expect: (980, SCALE_DOWN_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scaleUp with default behavior",
            current: 10,
            desired: 50,
            expect: (20, SCALE_UP_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scaleUp with pods policy larger than percent policy",
            up: Some((100, 60, 100, 60, 0)),
            current: 10,
            desired: 500,
            expect: (110, SCALE_UP_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scaleUp with percent policy larger than pods policy",
            up: Some((2, 60, 100, 60, 0)),
            current: 10,
            desired: 500,
            expect: (20, SCALE_UP_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scaleUp with spec MaxReplicas limitation with large pod policy",
            up: Some((100, 60, 0, 0, 0)),
            current: 10,
            desired: 50,
            expect: (50, DESIRED_WITHIN_RANGE),
            ..RATE
        },
        RateCase {
            name: "scaleUp with spec MaxReplicas limitation with large percent policy",
            up: Some((10000, 60, 0, 0, 0)),
            current: 10,
            desired: 50,
            expect: (50, DESIRED_WITHIN_RANGE),
            ..RATE
        },
        RateCase {
            name: "scaleUp with pod policy limitation",
            up: Some((30, 60, 0, 0, 0)),
            current: 10,
            desired: 50,
            expect: (40, SCALE_UP_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scaleUp with percent policy limitation",
            up: Some((0, 0, 200, 60, 0)),
            current: 10,
            desired: 50,
            expect: (30, SCALE_UP_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scaleDown with percent policy larger than pod policy",
            down: Some((20, 60, 1, 60, 300)),
            current: 100,
            desired: 2,
            expect: (80, SCALE_DOWN_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scaleDown with pod policy larger than percent policy",
            down: Some((2, 60, 1, 60, 300)),
            current: 100,
            desired: 2,
            expect: (98, SCALE_DOWN_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scaleDown with spec MinReplicas limitation with large pod policy",
            down: Some((100, 60, 0, 0, 300)),
            current: 10,
            desired: 0,
            expect: (1, TOO_FEW_REPLICAS),
            ..RATE
        },
        RateCase {
            name: "scaleDown with spec MinReplicas limitation with large percent policy",
            min: 5,
            down: Some((0, 0, 100, 60, 300)),
            current: 10,
            desired: 2,
            expect: (5, TOO_FEW_REPLICAS),
            ..RATE
        },
        RateCase {
            name: "scaleDown with pod policy limitation",
            down: Some((5, 60, 0, 0, 300)),
            current: 10,
            desired: 2,
            expect: (5, SCALE_DOWN_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scaleDown with percent policy limitation",
            down: Some((0, 0, 50, 60, 300)),
            current: 10,
            desired: 5,
            expect: (5, DESIRED_WITHIN_RANGE),
            ..RATE
        },
        RateCase {
            name: "scaleUp with spec MaxReplicas limitation with large pod policy and events",
            up_events: &[1, 5, 9],
            max: 200,
            up: Some((300, 60, 0, 0, 0)),
            current: 100,
            desired: 500,
            expect: (200, TOO_MANY_REPLICAS),
            ..RATE
        },
        RateCase {
            name: "scaleUp with spec MaxReplicas limitation with large percent policy and events",
            up_events: &[1, 5, 9],
            max: 200,
            up: Some((0, 0, 10000, 60, 0)),
            current: 100,
            desired: 500,
            expect: (200, TOO_MANY_REPLICAS),
            ..RATE
        },
        RateCase {
            name: "scaleUp with currentReplicas limitation with a lot of recent scale up events",
            up_events: &[1, 5, 9],
            up: Some((5, 120, 0, 0, 0)),
            current: 100,
            desired: 500,
            expect: (100, SCALE_UP_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scaleUp with pod policy and previous scale up events",
            up_events: &[1, 5, 9],
            up: Some((150, 120, 0, 0, 0)),
            current: 100,
            desired: 500,
            expect: (235, SCALE_UP_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scaleUp with percent policy and previous scale up events",
            up_events: &[1, 5, 9],
            up: Some((0, 0, 200, 120, 0)),
            current: 100,
            desired: 500,
            expect: (255, SCALE_UP_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scaleDown with default policy and previous events",
            down_events: &[1, 5, 9],
            current: 10,
            desired: 5,
            expect: (5, DESIRED_WITHIN_RANGE),
            ..RATE
        },
        RateCase {
            name: "scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events",
            down_events: &[1, 5, 9],
            down: Some((115, 120, 0, 0, 300)),
            current: 100,
            desired: 0,
            expect: (1, TOO_FEW_REPLICAS),
            ..RATE
        },
        RateCase {
            name: "scaleDown with spec MinReplicas limitation with large pod policy and previous events",
            down_events: &[1, 5, 9],
            min: 5,
            down: Some((130, 120, 0, 0, 300)),
            current: 100,
            desired: 0,
            expect: (5, TOO_FEW_REPLICAS),
            ..RATE
        },
        RateCase {
            name: "scaleDown with spec MinReplicas limitation with large percent policy and previous events",
            down_events: &[1, 5, 9],
            min: 5,
            down: Some((0, 0, 100, 120, 300)),
            current: 100,
            desired: 2,
            expect: (5, TOO_FEW_REPLICAS),
            ..RATE
        },
        RateCase {
            name: "scaleDown with pod policy limitation and previous events",
            down_events: &[1, 5, 9],
            down: Some((5, 120, 0, 0, 300)),
            current: 100,
            desired: 2,
            expect: (100, SCALE_DOWN_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scaleDown with percent policy limitation and previous events",
            down_events: &[2, 4, 6],
            down: Some((0, 0, 50, 120, 300)),
            current: 100,
            desired: 0,
            expect: (56, SCALE_DOWN_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scaleDown with previous events preventing further scale down",
            down_events: &[10, 10, 10],
            down: Some((0, 0, 10, 120, 300)),
            current: 100,
            desired: 0,
            expect: (100, SCALE_DOWN_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scaleDown with previous events still allowing more scale down",
            down_events: &[10, 10, 10],
            down: Some((0, 0, 1000, 120, 300)),
            current: 10,
            desired: 5,
            expect: (5, DESIRED_WITHIN_RANGE),
            ..RATE
        },
        RateCase {
            name: "check 'outdated' flag for events for one behavior for up",
            up_events: &[8, 12, 9, 11],
            up: Some((1000, 60, 0, 0, 0)),
            current: 100,
            desired: 200,
            expect: (200, DESIRED_WITHIN_RANGE),
            ..RATE
        },
        RateCase {
            name: "check that events were not marked 'outdated' for two different policies in the behavior for up",
            up_events: &[8, 12, 9, 11],
            up: Some((1000, 120, 100, 60, 0)),
            current: 100,
            desired: 200,
            expect: (200, DESIRED_WITHIN_RANGE),
            ..RATE
        },
        RateCase {
            name: "check that events were marked 'outdated' for two different policies in the behavior for up",
            up_events: &[8, 12, 9, 11],
            up: Some((1000, 30, 100, 60, 0)),
            current: 100,
            desired: 200,
            expect: (200, DESIRED_WITHIN_RANGE),
            ..RATE
        },
        RateCase {
            name: "check 'outdated' flag for events for one behavior for down",
            down_events: &[8, 12, 9, 11],
            down: Some((1000, 60, 0, 0, 300)),
            current: 100,
            desired: 5,
            expect: (5, DESIRED_WITHIN_RANGE),
            ..RATE
        },
        RateCase {
            name: "check that events were not marked 'outdated' for two different policies in the behavior for down",
            down_events: &[8, 12, 9, 11],
            down: Some((1000, 120, 100, 60, 300)),
            current: 100,
            desired: 5,
            expect: (5, DESIRED_WITHIN_RANGE),
            ..RATE
        },
        RateCase {
            name: "check that events were marked 'outdated' for two different policies in the behavior for down",
            down_events: &[8, 12, 9, 11],
            down: Some((1000, 30, 100, 60, 300)),
            current: 100,
            desired: 5,
            expect: (5, DESIRED_WITHIN_RANGE),
            ..RATE
        },
        // Ours: a period's start count adds back the replicas removed within it.
        RateCase {
            name: "scale-up after a recent scale-down counts from the count before it",
            down_events: &[2, 3],
            up: Some((4, 120, 0, 0, 0)),
            current: 10,
            desired: 50,
            expect: (19, SCALE_UP_LIMIT),
            ..RATE
        },
        RateCase {
            name: "scale-down after a recent scale-up counts from the count before it",
            up_events: &[6],
            down: Some((0, 0, 50, 120, 300)),
            current: 16,
            desired: 1,
            expect: (5, SCALE_DOWN_LIMIT),
            ..RATE
        },
    ];

    fn expand(args: RulesArgs) -> HPAScalingRules {
        let (pods, pods_period, percent, percent_period, window) = args;
        rules(pods, pods_period, percent, percent_period, window)
    }

    #[test]
    fn rate_cases() {
        for case in RATE_CASES {
            let history = History {
                scale_up_events: spread(case.up_events, 120),
                scale_down_events: spread(case.down_events, 120),
                ..History::default()
            };
            let up = scale_up_rules(case.up.map(expand).as_ref());
            let down = scale_down_rules(case.down.map(expand).as_ref());
            let request = Request {
                behavior: None,
                min_replicas: case.min,
                max_replicas: case.max,
                current_replicas: case.current,
                recommendation: case.desired,
                now: NOW,
            };
            let (replicas, why) = bound_by_rate(&request, case.desired, &up, &down, &history);
            assert_eq!((replicas, why.reason), case.expect, "{}", case.name);
        }
    }

    /// Upstream `TestStoreScaleEvents`: the change counted over 60 s before recording, then the
    /// events after recording a change of 5, as (change, outdated); for scale-up and scale-down.
    #[test]
    fn record_scale_cases() {
        type Case = (
            &'static str,
            Option<RulesArgs>,
            &'static [(i32, i64)],
            i32,
            &'static [(i32, bool)],
        );
        let cases: [Case; 8] = [
            ("empty entries with default behavior", None, &[], 0, &[]),
            (
                "empty entries with two-policy-behavior",
                Some((10, 60, 100, 60, 0)),
                &[],
                0,
                &[(5, false)],
            ),
            (
                "one outdated entry to be kept untouched without behavior",
                None,
                &[(7, 61)],
                0,
                &[(7, false)],
            ),
            (
                "one outdated entry to be replaced with behavior",
                Some((10, 60, 100, 60, 0)),
                &[(7, 61)],
                0,
                &[(5, false)],
            ),
            (
                "one actual entry to be not touched with behavior",
                Some((10, 60, 100, 60, 0)),
                &[(7, 58)],
                7,
                &[(7, false), (5, false)],
            ),
            (
                "two entries, one of them to be replaced",
                Some((10, 60, 0, 0, 0)),
                &[(7, 61), (6, 59)],
                6,
                &[(5, false), (6, false)],
            ),
            (
                "replace one entry, use policies with different periods",
                Some((10, 60, 100, 30, 0)),
                &[(8, 29), (6, 59), (7, 61), (9, 61)],
                14,
                &[(8, false), (6, false), (7, true), (5, false)],
            ),
            (
                "two entries, both actual",
                Some((10, 120, 100, 30, 0)),
                &[(7, 58), (6, 59)],
                13,
                &[(7, false), (6, false), (5, false)],
            ),
        ];
        for (name, args, previous, counted, want) in cases {
            let events: Vec<_> = previous
                .iter()
                .map(|(c, s)| ScaleEvent {
                    change: *c,
                    timestamp: ago(*s),
                    outdated: false,
                })
                .collect();
            for up in [true, false] {
                let rules = args.map(expand);
                let behavior = rules.map(|r| HorizontalPodAutoscalerBehavior {
                    scale_up: Some(r.clone()).filter(|_| up),
                    scale_down: Some(r).filter(|_| !up),
                });
                let mut history = History::default();
                *(if up {
                    &mut history.scale_up_events
                } else {
                    &mut history.scale_down_events
                }) = events.clone();
                let stored = |h: &History| {
                    if up {
                        h.scale_up_events.clone()
                    } else {
                        h.scale_down_events.clone()
                    }
                };
                assert_eq!(
                    replicas_changed(&stored(&history), 60, NOW),
                    counted,
                    "{name} (up: {up})"
                );
                history.record_scale(behavior.as_ref(), NOW, 10, if up { 15 } else { 5 });
                let got: Vec<_> = stored(&history)
                    .iter()
                    .map(|e| (e.change, e.outdated))
                    .collect();
                assert_eq!(got, want.to_vec(), "{name} (up: {up})");
            }
        }
    }

    /// Upstream `TestNormalizeDesiredReplicasWithBehavior` (the stabilization step):
    /// recommendations as (replicas, seconds ago), current, desired, up/down windows, expected
    /// stabilized count and stored recommendations.
    #[test]
    fn stabilize_cases() {
        type Case = (
            &'static str,
            &'static [(i32, i64)],
            i32,
            i32,
            i64,
            i64,
            i32,
            &'static [i32],
        );
        let cases: [Case; 9] = [
            (
                "empty recommendations for scaling down",
                &[],
                100,
                5,
                0,
                0,
                5,
                &[5],
            ),
            (
                "simple scale down stabilization",
                &[(4, 120), (5, 60)],
                100,
                3,
                0,
                180,
                5,
                &[4, 5, 3],
            ),
            (
                "simple scale up stabilization",
                &[(4, 120), (5, 60)],
                1,
                7,
                300,
                0,
                4,
                &[4, 5, 7],
            ),
            (
                "no scale down stabilization",
                &[(1, 120), (2, 60)],
                100,
                3,
                300,
                0,
                3,
                &[1, 2, 3],
            ),
            (
                "no scale up stabilization",
                &[(4, 120), (5, 60)],
                1,
                3,
                0,
                300,
                3,
                &[4, 5, 3],
            ),
            (
                "no scale down stabilization, reuse recommendation element",
                &[(10, 600), (9, 540)],
                100,
                3,
                0,
                0,
                3,
                &[10, 3],
            ),
            (
                "no scale up stabilization, reuse recommendation element",
                &[(10, 600), (9, 540)],
                1,
                100,
                0,
                0,
                100,
                &[10, 100],
            ),
            (
                "scale down stabilization, reuse one of obsolete recommendation element",
                &[(10, 600), (4, 60), (5, 120), (9, 540)],
                100,
                3,
                0,
                180,
                5,
                &[10, 4, 5, 3],
            ),
            (
                "scale up stabilization, reuse one of obsolete recommendation element",
                &[(10, 6000), (6, 60), (5, 120), (9, 180)],
                1,
                100,
                300,
                0,
                5,
                &[100, 6, 5, 9],
            ),
        ];
        for (name, recs, current, desired, up_window, down_window, want, stored) in cases {
            let mut history = History {
                recommendations: recs
                    .iter()
                    .map(|(r, s)| Recommendation {
                        replicas: *r,
                        timestamp: ago(*s),
                    })
                    .collect(),
                ..History::default()
            };
            let (got, _) = history.stabilize(current, desired, up_window, down_window, NOW);
            assert_eq!(got, want, "{name}");
            let kept: Vec<_> = history.recommendations.iter().map(|r| r.replicas).collect();
            assert_eq!(kept, stored.to_vec(), "{name}");
        }
    }

    /// Ours, end to end: without a behavior a scale-up from 1 is capped at 4 (legacy), with the
    /// defaulted behavior at 5 (4 Pods per 15 s).
    #[test]
    fn normalize_with_and_without_behavior() {
        let mut history = History::default();
        let legacy = normalize(None, 1, 100, 1, 10, NOW, &mut history);
        assert_eq!(
            (legacy.replicas, legacy.reason, legacy.limited_status()),
            (4, SCALE_UP_LIMIT, "True")
        );
        assert_eq!(legacy.able_to_scale, READY_FOR_NEW_SCALE);
        assert_eq!(
            history.recommendations.len(),
            2,
            "the initial count, then the recommendation"
        );

        let behavior = HorizontalPodAutoscalerBehavior::default();
        let mut history = History::default();
        let with = normalize(Some(&behavior), 1, 100, 1, 10, NOW, &mut history);
        assert_eq!(
            (with.replicas, with.reason, with.message.as_str()),
            (5, SCALE_UP_LIMIT, SCALE_UP_LIMIT_MESSAGE)
        );
        history.record_scale(Some(&behavior), NOW, 1, 5);
        assert_eq!(
            history.scale_up_events,
            vec![ScaleEvent {
                change: 4,
                timestamp: NOW,
                outdated: false
            }]
        );
    }

    /// Ours: a scale-down waits out the default 5-minute window, with and without a behavior,
    /// and says so in `AbleToScale`.
    #[test]
    fn scale_down_is_stabilized_by_default() {
        for behavior in [None, Some(HorizontalPodAutoscalerBehavior::default())] {
            let mut history = History::default();
            history.record_initial(10, ago(240));
            let held = normalize(behavior.as_ref(), 1, 100, 10, 3, NOW, &mut history);
            assert_eq!((held.replicas, held.stabilized), (10, 10), "{behavior:?}");
            assert_eq!(held.able_to_scale, SCALE_DOWN_STABILIZED, "{behavior:?}");
            assert_eq!(
                (held.reason, held.limited),
                (DESIRED_WITHIN_RANGE, false),
                "{behavior:?}"
            );
            let later = NOW.checked_add(SignedDuration::from_secs(90)).unwrap();
            let went = normalize(behavior.as_ref(), 1, 100, 10, 3, later, &mut history);
            assert_eq!(went.replicas, 3, "{behavior:?}");
        }
    }

    /// Ours: the behavior's own scale-down window replaces the controller's.
    #[test]
    fn behavior_window_overrides_default() {
        let behavior = HorizontalPodAutoscalerBehavior {
            scale_down: Some(HPAScalingRules {
                stabilization_window_seconds: Some(60),
                ..HPAScalingRules::default()
            }),
            scale_up: None,
        };
        let mut history = History::default();
        history.record_initial(10, ago(120));
        let got = normalize(Some(&behavior), 2, 100, 10, 3, NOW, &mut history);
        assert_eq!((got.replicas, got.limited_status()), (3, "False"));
        let mut history = History::default();
        history.record_initial(10, ago(120));
        let floor = normalize(Some(&behavior), 4, 100, 10, 1, NOW, &mut history);
        assert_eq!(
            (floor.replicas, floor.reason, floor.limited),
            (4, TOO_FEW_REPLICAS, true)
        );
    }
}
