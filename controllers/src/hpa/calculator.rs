//! The replica calculator (upstream `pkg/controller/podautoscaler/replica_calculator.go`): from
//! one metric's readings, the Pods behind the target and the current replica count, the replica
//! count that metric asks for. Pure functions; the controller gathers the inputs.
//!
//! The rules are upstream's:
//!
//! - Pods being deleted and failed Pods are left out; Pending Pods count as unready, and so, for
//!   the `cpu` resource only, do Pods whose readiness or CPU samples cannot be trusted yet (the
//!   CPU initialization period and the delay of initial readiness, [`Settings`]).
//! - Within the tolerance ([`Tolerances`], 0.1 by default) the current count stays.
//! - When Pods lack a sample, they count as using 100 % of their request (or of the target when
//!   it is above 100 %) on a scale-down and 0 % on a scale-up; unready Pods count as 0 % on a
//!   scale-up. The ratio is then recomputed, and if that lands within tolerance, reverses the
//!   direction, or would move the count the other way, the current count stays.
//! - Utilization is a whole percentage, truncated as upstream's integer division does.
//!
//! Left out, compared with upstream: fetching metrics and listing Pods (the controller does it;
//! samples come as [`PodSamples`]), the metrics APIs' own errors, and upstream's quirk of
//! reporting a zero timestamp for object and external metrics (we report the sample's).
//! Pod-level requests (`spec.resources`) are used when the Pod sets one for the resource and the
//! metric names no container, whatever the `PodLevelResources` feature gate; upstream reads them
//! through `resourcehelpers.PodRequests`, which may also weigh init containers — here a Pod
//! without a Pod-level request for the resource falls back to its containers' sum.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};
use k8s_openapi::api::core::v1::{Container, Pod};

use super::metrics::{PodSamples, Sample};
use super::quantity;

/// The resource whose samples need the readiness rules (CPU is a rate, skewed while a Pod starts).
pub const CPU: &str = "cpu";

/// The calculator's thresholds (upstream's `--horizontal-pod-autoscaler-*` flags).
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// How far the usage ratio may stray from 1.0 before the count changes (`tolerance`, 0.1),
    /// unless the autoscaler's behavior sets its own.
    pub tolerance: f64,
    /// How long after a Pod starts its CPU samples may be skewed by start-up work
    /// (`cpu-initialization-period`, 5 min).
    pub cpu_initialization_period: Duration,
    /// How long after a Pod starts an unready status is taken as "not yet ready" rather than
    /// "was ready and failed" (`initial-readiness-delay`, 30 s).
    pub initial_readiness_delay: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tolerance: 0.1,
            cpu_initialization_period: Duration::from_secs(5 * 60),
            initial_readiness_delay: Duration::from_secs(30),
        }
    }
}

/// How far the usage ratio may fall below or rise above 1.0 before the count changes
/// (upstream `Tolerances`; the behavior's `scaleDown.tolerance` / `scaleUp.tolerance`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerances {
    /// Below 1.0: a ratio of at least `1 - scale_down` keeps the count.
    pub scale_down: f64,
    /// Above 1.0: a ratio of at most `1 + scale_up` keeps the count.
    pub scale_up: f64,
}

impl Tolerances {
    /// The same tolerance both ways.
    pub fn uniform(tolerance: f64) -> Self {
        Tolerances {
            scale_down: tolerance,
            scale_up: tolerance,
        }
    }

    /// `default` unless the autoscaler's behavior sets a direction's own tolerance.
    pub fn for_behavior(default: f64, behavior: Option<&HorizontalPodAutoscalerBehavior>) -> Self {
        let own = |rules: Option<&HPAScalingRules>| {
            rules
                .and_then(|r| r.tolerance.as_ref())
                .and_then(|q| quantity::milli(q).ok())
                .map_or(default, |milli| milli as f64 / 1000.0)
        };
        Tolerances {
            scale_down: own(behavior.and_then(|b| b.scale_down.as_ref())),
            scale_up: own(behavior.and_then(|b| b.scale_up.as_ref())),
        }
    }

    /// Whether `ratio` is close enough to 1.0 to keep the current count.
    pub fn contains(&self, ratio: f64) -> bool {
        1.0 - self.scale_down <= ratio && ratio <= 1.0 + self.scale_up
    }
}

/// A Pod's `status.phase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not yet running (unscheduled, pulling images): counted as unready.
    Pending,
    /// Running.
    Running,
    /// All containers exited successfully.
    Succeeded,
    /// Failed: left out entirely.
    Failed,
    /// The phase could not be read.
    Unknown,
}

/// A condition's `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    /// `"True"`.
    True,
    /// `"False"`.
    False,
    /// `"Unknown"` (or anything else).
    Unknown,
}

/// A Pod's `Ready` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// Its status.
    pub status: ConditionStatus,
    /// Its `lastTransitionTime`; unset reads as upstream's zero time, [`UNSET_TIME`].
    pub last_transition: Option<Timestamp>,
}

/// Go's zero `time.Time` (0001-01-01T00:00:00Z), which upstream compares against when a
/// condition has no `lastTransitionTime`.
pub const UNSET_TIME: Timestamp = Timestamp::constant(-62_135_596_800, 0);

/// One container's resource requests, in milli-units by resource name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerRequests {
    /// The container's name.
    pub name: String,
    /// Its `resources.requests`, in milli-units.
    pub requests: BTreeMap<String, i64>,
}

/// What the calculator needs to know about one Pod matching the target's selector.
#[derive(Clone, Debug, PartialEq)]
pub struct PodFacts {
    /// `metadata.name`, the key of its sample.
    pub name: String,
    /// `status.phase`.
    pub phase: Phase,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// The `Ready` condition, if the Pod has one.
    pub ready: Option<Readiness>,
    /// `status.startTime`.
    pub start_time: Option<Timestamp>,
    /// The containers that run for the Pod's life: `spec.containers`, then the restartable
    /// (sidecar) init containers.
    pub containers: Vec<ContainerRequests>,
    /// Pod-level `spec.resources.requests`, in milli-units.
    pub pod_requests: BTreeMap<String, i64>,
}

impl PodFacts {
    /// The facts of `pod`. Requests that are not quantities are left out (the Pod then reads
    /// as missing that request).
    pub fn from_pod(pod: &Pod) -> Self {
        let status = pod.status.as_ref();
        let spec = pod.spec.as_ref();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| Readiness {
                status: condition_status(&c.status),
                last_transition: c.last_transition_time.as_ref().map(|t| t.0),
            });
        let running = spec.map(|s| s.containers.iter()).into_iter().flatten();
        let sidecars = spec
            .and_then(|s| s.init_containers.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        PodFacts {
            name: pod.metadata.name.clone().unwrap_or_default(),
            phase: phase(status.and_then(|s| s.phase.as_deref())),
            deleting: pod.metadata.deletion_timestamp.is_some(),
            ready,
            start_time: status.and_then(|s| s.start_time.as_ref()).map(|t| t.0),
            containers: running.chain(sidecars).map(container_requests).collect(),
            pod_requests: milli_map(
                spec.and_then(|s| s.resources.as_ref())
                    .and_then(|r| r.requests.as_ref()),
            ),
        }
    }

    /// Running with `Ready=True` (upstream `IsPodReady` on a running Pod): what object and
    /// external metrics divide by.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Running
            && self
                .ready
                .is_some_and(|r| r.status == ConditionStatus::True)
    }
}

fn phase(text: Option<&str>) -> Phase {
    match text {
        Some("Pending") => Phase::Pending,
        Some("Running") => Phase::Running,
        Some("Succeeded") => Phase::Succeeded,
        Some("Failed") => Phase::Failed,
        _ => Phase::Unknown,
    }
}

fn condition_status(text: &str) -> ConditionStatus {
    match text {
        "True" => ConditionStatus::True,
        "False" => ConditionStatus::False,
        _ => ConditionStatus::Unknown,
    }
}

fn container_requests(c: &Container) -> ContainerRequests {
    ContainerRequests {
        name: c.name.clone(),
        requests: milli_map(c.resources.as_ref().and_then(|r| r.requests.as_ref())),
    }
}

fn milli_map(
    list: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> BTreeMap<String, i64> {
    list.into_iter()
        .flatten()
        .filter_map(|(name, q)| Some((name.clone(), quantity::milli(q).ok()?)))
        .collect()
}

/// Why no replica count could be computed; becomes the `ScalingActive=False` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalcError {
    /// The selector matched no Pods.
    #[error("no pods returned by selector while calculating replica count")]
    NoPods,
    /// Every sample belonged to a Pod left out (unready, pending, deleted, failed), or none came.
    #[error("did not receive metrics for targeted pods (pods might be unready)")]
    NoMetricsForTargetedPods,
    /// A container has no request for the resource, so utilization cannot be computed.
    #[error("missing request for {resource} in container {container} of Pod {pod}")]
    MissingRequest {
        /// The resource.
        resource: String,
        /// The container without it.
        container: String,
        /// Its Pod.
        pod: String,
    },
    /// The metric names a container the Pod does not have.
    #[error("container {container} not found in Pod {pod}")]
    ContainerNotFound {
        /// The container named by the metric.
        container: String,
        /// The Pod.
        pod: String,
    },
    /// No sample belonged to a Pod whose request is known.
    #[error("no metrics returned matched known pods")]
    NoMatchingMetrics,
    /// Object and external metrics divide by the ready Pods, and there were no Pods.
    #[error(
        "unable to calculate ready pods: no pods returned by selector while calculating replica count"
    )]
    NoReadyPodsToCount,
    /// A target of zero or less (the API refuses these; dividing by one would be meaningless).
    #[error("the metric target must be positive, not {0}")]
    NonPositiveTarget(i64),
}

/// What every calculation reads besides the metric: the Pods, the current count, the thresholds.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// The Pods matching the target's selector.
    pub pods: &'a [PodFacts],
    /// The target's current replica count (for per-Pod object/external targets: the status
    /// replica count upstream passes).
    pub current_replicas: i32,
    /// The tolerance in effect ([`Tolerances::for_behavior`]).
    pub tolerances: Tolerances,
    /// The CPU initialization period and readiness delay.
    pub settings: &'a Settings,
    /// The time the readiness rules compare against.
    pub now: Timestamp,
}

/// A utilization (percentage of request) proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtilizationProposal {
    /// The replica count the metric asks for.
    pub replicas: i32,
    /// The ready Pods' usage as a whole percentage of their requests (status
    /// `averageUtilization`).
    pub utilization: i32,
    /// The ready Pods' average usage in milli-units (status `averageValue`).
    pub raw_average: i64,
    /// The oldest sample's timestamp.
    pub timestamp: Timestamp,
}

/// A value (or average value) proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueProposal {
    /// The replica count the metric asks for.
    pub replicas: i32,
    /// The value reported in status, in milli-units: the average per Pod for per-Pod targets,
    /// the total otherwise.
    pub usage: i64,
    /// When the value was measured (the oldest sample's timestamp for per-Pod metrics).
    pub timestamp: Timestamp,
}

/// Upstream's `groupPods`: which Pods count, which are unready, which lack a sample, which are
/// left out.
#[derive(Debug, Default, PartialEq, Eq)]
struct PodGroups {
    ready: usize,
    unready: BTreeSet<String>,
    missing: BTreeSet<String>,
    ignored: BTreeSet<String>,
}

fn group_pods(
    pods: &[PodFacts],
    samples: &PodSamples,
    resource: Option<&str>,
    settings: &Settings,
    now: Timestamp,
) -> PodGroups {
    let mut groups = PodGroups::default();
    for pod in pods {
        if pod.deleting || pod.phase == Phase::Failed {
            groups.ignored.insert(pod.name.clone());
            continue;
        }
        if pod.phase == Phase::Pending {
            groups.unready.insert(pod.name.clone());
            continue;
        }
        let Some(sample) = samples.get(&pod.name) else {
            groups.missing.insert(pod.name.clone());
            continue;
        };
        if resource == Some(CPU) && cpu_sample_untrusted(pod, sample, settings, now) {
            groups.unready.insert(pod.name.clone());
            continue;
        }
        groups.ready += 1;
    }
    groups
}

/// Whether a CPU sample must be set aside: the Pod has no readiness or start time; or it is
/// still in its initialization period and is unready or was sampled over a window that began
/// before it became ready; or, later, it is unready and has never been ready.
fn cpu_sample_untrusted(
    pod: &PodFacts,
    sample: &Sample,
    settings: &Settings,
    now: Timestamp,
) -> bool {
    let (Some(ready), Some(start)) = (pod.ready, pod.start_time) else {
        return true;
    };
    let transition = ready.last_transition.unwrap_or(UNSET_TIME);
    let unready = ready.status == ConditionStatus::False;
    if plus(start, settings.cpu_initialization_period) > now {
        unready || sample.timestamp < plus(transition, sample.window)
    } else {
        unready && plus(start, settings.initial_readiness_delay) > transition
    }
}

fn plus(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// Each Pod's request for `resource` in milli-units (upstream `calculateRequests`): the
/// Pod-level request when set and no container is named, else the named container's, else the
/// sum over its containers.
fn pod_requests(
    pods: &[PodFacts],
    resource: &str,
    container: Option<&str>,
) -> Result<BTreeMap<String, i64>, CalcError> {
    pods.iter()
        .map(|pod| Ok((pod.name.clone(), pod_request(pod, resource, container)?)))
        .collect()
}

fn pod_request(pod: &PodFacts, resource: &str, container: Option<&str>) -> Result<i64, CalcError> {
    if container.is_none()
        && let Some(request) = pod.pod_requests.get(resource)
    {
        return Ok(*request);
    }
    let mut total = 0i64;
    for c in &pod.containers {
        if container.is_some_and(|name| name != c.name) {
            continue;
        }
        let request = c
            .requests
            .get(resource)
            .ok_or_else(|| CalcError::MissingRequest {
                resource: resource.to_owned(),
                container: c.name.clone(),
                pod: pod.name.clone(),
            })?;
        total = total.saturating_add(*request);
        if container.is_some() {
            return Ok(total);
        }
    }
    match container {
        Some(name) => Err(CalcError::ContainerNotFound {
            container: name.to_owned(),
            pod: pod.name.clone(),
        }),
        None => Ok(total),
    }
}

/// Upstream `GetResourceUtilizationRatio`: (usage ratio, utilization %, raw average) over the
/// samples of Pods with a known request.
fn utilization_ratio(
    usage: &BTreeMap<String, i64>,
    requests: &BTreeMap<String, i64>,
    target: i32,
) -> Result<(f64, i32, i64), CalcError> {
    let (mut used, mut requested, mut counted) = (0i128, 0i128, 0i128);
    for (pod, value) in usage {
        if let Some(request) = requests.get(pod) {
            used += i128::from(*value);
            requested += i128::from(*request);
            counted += 1;
        }
    }
    if requested == 0 {
        return Err(CalcError::NoMatchingMetrics);
    }
    let utilization = clamp_i32(used * 100 / requested);
    let raw_average = clamp_i64(used / counted);
    Ok((
        f64::from(utilization) / f64::from(target),
        utilization,
        raw_average,
    ))
}

/// Upstream `GetMetricUsageRatio`: (usage ratio, average usage).
fn usage_ratio(usage: &BTreeMap<String, i64>, target: i64) -> (f64, i64) {
    let total: i128 = usage.values().map(|v| i128::from(*v)).sum();
    let average = clamp_i64(total / usage.len().max(1) as i128);
    (average as f64 / target as f64, average)
}

fn clamp_i32(v: i128) -> i32 {
    v.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
}

fn clamp_i64(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// `ceil(ratio × count)` as a replica count, saturating at `i32::MAX`.
fn replicas_for(ratio: f64, count: usize) -> i32 {
    (ratio * count as f64).ceil() as i32
}

/// The second pass shared by utilization and value targets (the body of upstream's
/// `GetResourceReplicas` / `calcPlainMetricReplicas` after the first ratio).
struct Recount<'a> {
    current: i32,
    tolerances: Tolerances,
    ready: usize,
    ratio: f64,
    groups: &'a PodGroups,
}

impl Recount<'_> {
    /// The replica count: directly from `ratio` when no Pod is missing or (on a scale-up)
    /// unready; otherwise after filling those in — missing Pods with `missing_usage` on a
    /// scale-down and 0 on a scale-up, unready ones with 0 — and recomputing with `ratio_of`.
    fn replicas(
        &self,
        usage: &mut BTreeMap<String, i64>,
        missing_usage: impl Fn(&str) -> i64,
        ratio_of: impl Fn(&BTreeMap<String, i64>) -> Result<f64, CalcError>,
    ) -> Result<i32, CalcError> {
        let (current, ratio) = (self.current, self.ratio);
        let scale_up_with_unready = !self.groups.unready.is_empty() && ratio > 1.0;
        if !scale_up_with_unready && self.groups.missing.is_empty() {
            if self.tolerances.contains(ratio) {
                return Ok(current);
            }
            return Ok(replicas_for(ratio, self.ready));
        }
        for pod in &self.groups.missing {
            if ratio < 1.0 {
                usage.insert(pod.clone(), missing_usage(pod));
            } else if ratio > 1.0 {
                usage.insert(pod.clone(), 0);
            }
        }
        if scale_up_with_unready {
            for pod in &self.groups.unready {
                usage.insert(pod.clone(), 0);
            }
        }
        let new_ratio = ratio_of(usage)?;
        let flipped = (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0);
        if self.tolerances.contains(new_ratio) || flipped {
            return Ok(current);
        }
        let replicas = replicas_for(new_ratio, usage.len());
        let backwards =
            (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current);
        Ok(if backwards { current } else { replicas })
    }
}

/// The trusted samples' values: all samples minus those of ignored and unready Pods.
fn trusted_usage(samples: &PodSamples, groups: &PodGroups) -> BTreeMap<String, i64> {
    samples
        .iter()
        .filter(|(pod, _)| !groups.ignored.contains(*pod) && !groups.unready.contains(*pod))
        .map(|(pod, s)| (pod.clone(), s.value))
        .collect()
}

fn oldest(samples: &PodSamples) -> Timestamp {
    samples
        .values()
        .map(|s| s.timestamp)
        .min()
        .unwrap_or(UNSET_TIME)
}

fn positive(target: i64) -> Result<(), CalcError> {
    if target > 0 {
        Ok(())
    } else {
        Err(CalcError::NonPositiveTarget(target))
    }
}

/// A `Resource` / `ContainerResource` metric with an `averageUtilization` target (upstream
/// `GetResourceReplicas`): usage as a percentage of the Pods' requests for `resource` (of
/// `container`'s request when the metric names one).
///
/// # Errors
/// No Pods, no trusted samples, a missing request, a named container a Pod lacks, or samples
/// that match no known Pod.
pub fn resource_utilization_replicas(
    scope: &Scope<'_>,
    resource: &str,
    container: Option<&str>,
    target_utilization: i32,
    samples: &PodSamples,
) -> Result<UtilizationProposal, CalcError> {
    positive(i64::from(target_utilization))?;
    if scope.pods.is_empty() {
        return Err(CalcError::NoPods);
    }
    let groups = group_pods(
        scope.pods,
        samples,
        Some(resource),
        scope.settings,
        scope.now,
    );
    let mut usage = trusted_usage(samples, &groups);
    if usage.is_empty() {
        return Err(CalcError::NoMetricsForTargetedPods);
    }
    let requests = pod_requests(scope.pods, resource, container)?;
    let (ratio, utilization, raw_average) =
        utilization_ratio(&usage, &requests, target_utilization)?;
    let recount = Recount {
        current: scope.current_replicas,
        tolerances: scope.tolerances,
        ready: groups.ready,
        ratio,
        groups: &groups,
    };
    let fallback_percent = i64::from(target_utilization.max(100));
    let replicas = recount.replicas(
        &mut usage,
        |pod| {
            requests
                .get(pod)
                .map_or(0, |r| r.saturating_mul(fallback_percent) / 100)
        },
        |usage| Ok(utilization_ratio(usage, &requests, target_utilization)?.0),
    )?;
    Ok(UtilizationProposal {
        replicas,
        utilization,
        raw_average,
        timestamp: oldest(samples),
    })
}

/// A `Resource` / `ContainerResource` metric with an `averageValue` target (upstream
/// `GetRawResourceReplicas`): the Pods' average usage against `target_average` milli-units.
///
/// # Errors
/// No Pods, or no trusted samples.
pub fn resource_average_replicas(
    scope: &Scope<'_>,
    resource: &str,
    target_average: i64,
    samples: &PodSamples,
) -> Result<ValueProposal, CalcError> {
    per_pod_replicas(scope, Some(resource), target_average, samples)
}

/// A `Pods` metric (upstream `GetMetricReplicas`): the Pods' average value against
/// `target_average` milli-units. No readiness rules apply (they are for CPU).
///
/// # Errors
/// No Pods, or no trusted samples.
pub fn pods_metric_replicas(
    scope: &Scope<'_>,
    target_average: i64,
    samples: &PodSamples,
) -> Result<ValueProposal, CalcError> {
    per_pod_replicas(scope, None, target_average, samples)
}

/// Upstream `calcPlainMetricReplicas`.
fn per_pod_replicas(
    scope: &Scope<'_>,
    resource: Option<&str>,
    target: i64,
    samples: &PodSamples,
) -> Result<ValueProposal, CalcError> {
    positive(target)?;
    if scope.pods.is_empty() {
        return Err(CalcError::NoPods);
    }
    let groups = group_pods(scope.pods, samples, resource, scope.settings, scope.now);
    let mut usage = trusted_usage(samples, &groups);
    if usage.is_empty() {
        return Err(CalcError::NoMetricsForTargetedPods);
    }
    let (ratio, average) = usage_ratio(&usage, target);
    let recount = Recount {
        current: scope.current_replicas,
        tolerances: scope.tolerances,
        ready: groups.ready,
        ratio,
        groups: &groups,
    };
    let replicas = recount.replicas(
        &mut usage,
        |_| target,
        |usage| Ok(usage_ratio(usage, target).0),
    )?;
    Ok(ValueProposal {
        replicas,
        usage: average,
        timestamp: oldest(samples),
    })
}

/// An `Object` metric with a `value` target (upstream `GetObjectMetricReplicas`): the ratio of
/// the object's value to the target, times the ready Pods.
///
/// # Errors
/// A non-positive target, or no Pods to count.
pub fn object_value_replicas(
    scope: &Scope<'_>,
    target: i64,
    sample: &Sample,
) -> Result<ValueProposal, CalcError> {
    positive(target)?;
    let ratio = sample.value as f64 / target as f64;
    let replicas = ratio_replicas(scope, ratio)?;
    Ok(ValueProposal {
        replicas,
        usage: sample.value,
        timestamp: sample.timestamp,
    })
}

/// An `Object` metric with an `averageValue` target (upstream `GetObjectPerPodMetricReplicas`):
/// the object's value divided among `scope.current_replicas` Pods.
///
/// # Errors
/// A non-positive target.
pub fn object_average_replicas(
    scope: &Scope<'_>,
    target_average: i64,
    sample: &Sample,
) -> Result<ValueProposal, CalcError> {
    per_replica_replicas(scope, target_average, sample.value, sample.timestamp)
}

/// An `External` metric with a `value` target (upstream `GetExternalMetricReplicas`): the sum of
/// the values against the target, times the ready Pods.
///
/// # Errors
/// A non-positive target, or no Pods to count.
pub fn external_value_replicas(
    scope: &Scope<'_>,
    target: i64,
    values: &[i64],
    timestamp: Timestamp,
) -> Result<ValueProposal, CalcError> {
    positive(target)?;
    let total = saturating_sum(values);
    let replicas = ratio_replicas(scope, total as f64 / target as f64)?;
    Ok(ValueProposal {
        replicas,
        usage: total,
        timestamp,
    })
}

/// An `External` metric with an `averageValue` target (upstream
/// `GetExternalPerPodMetricReplicas`): the sum of the values divided among
/// `scope.current_replicas` Pods.
///
/// # Errors
/// A non-positive target.
pub fn external_average_replicas(
    scope: &Scope<'_>,
    target_average: i64,
    values: &[i64],
    timestamp: Timestamp,
) -> Result<ValueProposal, CalcError> {
    per_replica_replicas(scope, target_average, saturating_sum(values), timestamp)
}

fn saturating_sum(values: &[i64]) -> i64 {
    values.iter().fold(0i64, |sum, v| sum.saturating_add(*v))
}

/// Upstream `getUsageRatioReplicaCount`: within tolerance keep the count, else the ratio times
/// the ready Pods; from zero replicas, `ceil(ratio)` (scaling from zero ignores tolerance).
fn ratio_replicas(scope: &Scope<'_>, ratio: f64) -> Result<i32, CalcError> {
    if scope.current_replicas == 0 {
        return Ok(ratio.ceil() as i32);
    }
    if scope.tolerances.contains(ratio) {
        return Ok(scope.current_replicas);
    }
    if scope.pods.is_empty() {
        return Err(CalcError::NoReadyPodsToCount);
    }
    let ready = scope.pods.iter().filter(|p| p.is_ready()).count();
    Ok(replicas_for(ratio, ready))
}

/// The per-Pod object/external rule: with `total` spread over the current replicas, keep the
/// count within tolerance, else `ceil(total / target)`. From zero replicas the reported average
/// is the total (upstream divides by zero there).
fn per_replica_replicas(
    scope: &Scope<'_>,
    target_average: i64,
    total: i64,
    timestamp: Timestamp,
) -> Result<ValueProposal, CalcError> {
    positive(target_average)?;
    let current = scope.current_replicas;
    let ratio = total as f64 / (target_average as f64 * f64::from(current));
    let replicas = if scope.tolerances.contains(ratio) {
        current
    } else {
        (total as f64 / target_average as f64).ceil() as i32
    };
    let usage = if current == 0 {
        total
    } else {
        (total as f64 / f64::from(current)).ceil() as i64
    };
    Ok(ValueProposal {
        replicas,
        usage,
        timestamp,
    })
}

#[cfg(test)]
mod tests {
    //! Cases ported from upstream `replica_calculator_test.go` (inputs and expected outputs as
    //! data). Upstream builds each Pod with two containers, `container1` and `container2`, each
    //! requesting the case's per-Pod request; a Ready condition with no transition time; a start
    //! time that is Go's zero time unless the case says "hot" (now) or "cool" (3 min ago); and
    //! resource samples stamped with Go's zero time over a 1-minute window. The fixture below
    //! does the same, with upstream's test thresholds (2 min CPU initialization, 10 s delay).

    use super::*;
    use ConditionStatus::{False as F, True as T};

    const NOW: Timestamp = Timestamp::constant(1_700_000_000, 0);

    fn test_settings() -> Settings {
        Settings {
            tolerance: 0.1,
            cpu_initialization_period: Duration::from_secs(120),
            initial_readiness_delay: Duration::from_secs(10),
        }
    }

    #[derive(Clone, Copy, Debug)]
    enum Start {
        Zero,
        Hot,
        Cool,
    }

    /// Upstream's `calcScenario`: per-Pod state, index `i` naming Pod `test-pod-i`.
    #[derive(Clone, Copy, Debug)]
    struct Fixture {
        current: i32,
        /// Each container's request, one per Pod (Pods past the end request nothing).
        requests: &'static [i64],
        /// Each Pod's usage per container; Pods past the end have no sample.
        levels: &'static [&'static [i64]],
        /// Overrides the Pod name of sample `i`.
        sample_names: &'static [&'static str],
        readiness: &'static [ConditionStatus],
        start: &'static [Start],
        phase: &'static [Phase],
        deleted: &'static [bool],
        container: Option<&'static str>,
    }

    const FIXTURE: Fixture = Fixture {
        current: 0,
        requests: &[],
        levels: &[],
        sample_names: &[],
        readiness: &[],
        start: &[],
        phase: &[],
        deleted: &[],
        container: None,
    };

    /// Upstream's `makePodMetricLevels`: both containers of Pod `i` use `x_i`.
    macro_rules! both {
        ($($x:expr),* $(,)?) => { &[$(&[$x, $x]),*] };
    }

    /// One value per Pod (custom metrics).
    macro_rules! each {
        ($($x:expr),* $(,)?) => { &[$(&[$x]),*] };
    }

    fn pod_name(i: usize) -> String {
        format!("test-pod-{i}")
    }

    impl Fixture {
        fn pods(&self, resource: &str) -> Vec<PodFacts> {
            let count = (self.current as usize).max(self.phase.len());
            (0..count).map(|i| self.pod(i, resource)).collect()
        }

        fn pod(&self, i: usize, resource: &str) -> PodFacts {
            let start = match self.start.get(i).copied().unwrap_or(Start::Zero) {
                Start::Zero => UNSET_TIME,
                Start::Hot => NOW,
                Start::Cool => NOW.checked_sub(Duration::from_secs(180)).unwrap(),
            };
            let requests: BTreeMap<String, i64> = self
                .requests
                .get(i)
                .map(|r| (resource.to_owned(), *r))
                .into_iter()
                .collect();
            let container = |name: &str| ContainerRequests {
                name: name.to_owned(),
                requests: requests.clone(),
            };
            PodFacts {
                name: pod_name(i),
                phase: self.phase.get(i).copied().unwrap_or(Phase::Running),
                deleting: self.deleted.get(i).copied().unwrap_or(false),
                ready: Some(Readiness {
                    status: self.readiness.get(i).copied().unwrap_or(T),
                    last_transition: Some(UNSET_TIME),
                }),
                start_time: Some(start),
                containers: vec![container("container1"), container("container2")],
                pod_requests: BTreeMap::new(),
            }
        }

        /// What the metrics source returns: each Pod's containers summed, or the named one.
        fn samples(&self) -> PodSamples {
            let mut samples = PodSamples::new();
            for (i, levels) in self.levels.iter().enumerate() {
                let value = match self.container {
                    None => Some(levels.iter().sum()),
                    Some(name) => (1..=levels.len())
                        .find(|j| format!("container{j}") == name)
                        .map(|j| levels[j - 1]),
                };
                let name = self
                    .sample_names
                    .get(i)
                    .map_or_else(|| pod_name(i), |n| (*n).to_owned());
                if let Some(value) = value {
                    let sample = Sample {
                        value,
                        timestamp: UNSET_TIME,
                        window: Duration::from_secs(60),
                    };
                    samples.insert(name, sample);
                }
            }
            samples
        }
    }

    fn scope<'a>(
        pods: &'a [PodFacts],
        current: i32,
        tolerances: Option<(f64, f64)>,
        settings: &'a Settings,
    ) -> Scope<'a> {
        let tolerances = tolerances.map_or(Tolerances::uniform(0.1), |(down, up)| Tolerances {
            scale_down: down,
            scale_up: up,
        });
        Scope {
            pods,
            current_replicas: current,
            tolerances,
            settings,
            now: NOW,
        }
    }

    struct UtilizationCase {
        name: &'static str,
        fixture: Fixture,
        resource: &'static str,
        target: i32,
        /// (scale-down, scale-up); upstream's default 0.1 both ways when `None`.
        tolerances: Option<(f64, f64)>,
        /// (replicas, utilization %, raw average) or a fragment of the error.
        expect: Result<(i32, i32, i64), &'static str>,
    }

    const UTILIZATION: UtilizationCase = UtilizationCase {
        name: "",
        fixture: FIXTURE,
        resource: CPU,
        target: 30,
        tolerances: None,
        expect: Err("unset"),
    };

    const UTILIZATION_CASES: &[UtilizationCase] = &[
        // TestReplicaCalcResourceScale
        UtilizationCase {
            name: "scale up",
            fixture: Fixture {
                current: 3,
                requests: &[1000; 3],
                levels: both![300, 500, 700],
                ..FIXTURE
            },
            expect: Ok((5, 50, 1000)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "scale up: container metric",
            fixture: Fixture {
                current: 3,
                container: Some("container2"),
                requests: &[1000; 3],
                levels: &[&[1000, 300], &[1000, 500], &[1000, 700]],
                ..FIXTURE
            },
            expect: Ok((5, 50, 500)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "scale up: unready pod scales less",
            fixture: Fixture {
                current: 3,
                readiness: &[F, T, T],
                requests: &[1000; 3],
                levels: both![300, 500, 700],
                ..FIXTURE
            },
            expect: Ok((4, 60, 1200)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "scale up: hot-CPU container scales less",
            fixture: Fixture {
                current: 3,
                start: &[Start::Hot, Start::Cool, Start::Cool],
                container: Some("container2"),
                requests: &[1000; 3],
                levels: &[&[0, 300], &[0, 500], &[0, 700]],
                ..FIXTURE
            },
            expect: Ok((4, 60, 600)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "scale up: hot-CPU pod scales less",
            fixture: Fixture {
                current: 3,
                start: &[Start::Hot, Start::Cool, Start::Cool],
                requests: &[1000; 3],
                levels: both![300, 500, 700],
                ..FIXTURE
            },
            expect: Ok((4, 60, 1200)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "no scale: unready pods ignored",
            fixture: Fixture {
                current: 3,
                readiness: &[T, F, F],
                requests: &[1000; 3],
                levels: both![400, 500, 700],
                ..FIXTURE
            },
            expect: Ok((3, 40, 800)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "no scale: hot-CPU pods ignored",
            fixture: Fixture {
                current: 3,
                readiness: &[T, F, F],
                start: &[Start::Cool, Start::Hot, Start::Hot],
                requests: &[1000; 3],
                levels: both![400, 500, 700],
                ..FIXTURE
            },
            expect: Ok((3, 40, 800)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "scale up: failed pods ignored",
            fixture: Fixture {
                current: 2,
                readiness: &[T, T, F, F],
                phase: &[Phase::Running, Phase::Running, Phase::Failed, Phase::Failed],
                requests: &[1000; 4],
                levels: both![500, 700],
                ..FIXTURE
            },
            expect: Ok((4, 60, 1200)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "scale up: failed pods ignored with missing container metric",
            fixture: Fixture {
                current: 2,
                readiness: &[T, T, F, F],
                phase: &[Phase::Running, Phase::Running, Phase::Failed, Phase::Failed],
                container: Some("container2"),
                requests: &[1000; 4],
                levels: &[&[1000, 500], &[9000, 700], &[1000], &[9000]],
                ..FIXTURE
            },
            expect: Ok((4, 60, 600)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "scale up: pods being deleted are ignored",
            fixture: Fixture {
                current: 2,
                readiness: &[T, T, F, F],
                deleted: &[false, false, true, true],
                phase: &[Phase::Running; 4],
                requests: &[1000; 4],
                levels: both![500, 700],
                ..FIXTURE
            },
            expect: Ok((4, 60, 1200)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "scale up: container metrics with pods being deleted ignored",
            fixture: Fixture {
                current: 2,
                readiness: &[T, T, F, F],
                deleted: &[false, false, true, true],
                phase: &[Phase::Running; 4],
                container: Some("container1"),
                requests: &[1000; 4],
                levels: both![500, 700],
                ..FIXTURE
            },
            expect: Ok((4, 60, 600)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "scale down",
            fixture: Fixture {
                current: 5,
                requests: &[1000; 5],
                levels: both![100, 300, 500, 250, 250],
                ..FIXTURE
            },
            target: 50,
            expect: Ok((3, 28, 560)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "scale down: container metric",
            fixture: Fixture {
                current: 5,
                container: Some("container2"),
                requests: &[1000; 5],
                levels: &[
                    &[1000, 100],
                    &[1000, 300],
                    &[1000, 500],
                    &[1000, 250],
                    &[1000, 250],
                ],
                ..FIXTURE
            },
            target: 50,
            expect: Ok((3, 28, 280)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "scale down: exclude unready pods",
            fixture: Fixture {
                current: 5,
                readiness: &[T, T, T, F, F],
                requests: &[1000; 5],
                levels: both![100, 300, 500, 250, 250],
                ..FIXTURE
            },
            target: 50,
            expect: Ok((2, 30, 600)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "scale down: exclude unscheduled pods",
            fixture: Fixture {
                current: 5,
                readiness: &[T, F, F, F, F],
                phase: &[
                    Phase::Running,
                    Phase::Pending,
                    Phase::Pending,
                    Phase::Pending,
                    Phase::Pending,
                ],
                requests: &[1000; 5],
                levels: both![100],
                ..FIXTURE
            },
            target: 50,
            expect: Ok((1, 10, 200)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "scale down: container metric excludes unscheduled pods",
            fixture: Fixture {
                current: 5,
                readiness: &[T, F, F, F, F],
                phase: &[
                    Phase::Running,
                    Phase::Pending,
                    Phase::Pending,
                    Phase::Pending,
                    Phase::Pending,
                ],
                container: Some("container2"),
                requests: &[1000; 5],
                levels: &[
                    &[1000, 100],
                    &[1000, 300],
                    &[1000, 500],
                    &[1000, 250],
                    &[1000, 250],
                ],
                ..FIXTURE
            },
            target: 50,
            expect: Ok((1, 10, 100)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "scale down: ignore hot-CPU pods",
            fixture: Fixture {
                current: 5,
                start: &[
                    Start::Cool,
                    Start::Cool,
                    Start::Cool,
                    Start::Hot,
                    Start::Hot,
                ],
                requests: &[1000; 5],
                levels: both![100, 300, 500, 250, 250],
                ..FIXTURE
            },
            target: 50,
            expect: Ok((2, 30, 600)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "scale down: failed pods ignored",
            fixture: Fixture {
                current: 5,
                readiness: &[T, T, T, T, T, F, F],
                phase: &[
                    Phase::Running,
                    Phase::Running,
                    Phase::Running,
                    Phase::Running,
                    Phase::Running,
                    Phase::Failed,
                    Phase::Failed,
                ],
                requests: &[1000; 7],
                levels: both![100, 300, 500, 250, 250],
                ..FIXTURE
            },
            target: 50,
            expect: Ok((3, 28, 560)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "scale down: still-running pods being deleted are ignored (issue 83561)",
            fixture: Fixture {
                current: 5,
                readiness: &[T, T, T, T, T, F, F],
                phase: &[Phase::Running; 7],
                deleted: &[false, false, false, false, false, true, true],
                container: Some("container2"),
                requests: &[1000; 7],
                levels: &[
                    &[1000, 100],
                    &[1000, 300],
                    &[1000, 500],
                    &[1000, 250],
                    &[1000, 250],
                ],
                ..FIXTURE
            },
            target: 50,
            expect: Ok((3, 28, 280)),
            ..UTILIZATION
        },
        // TestReplicaCalcDisjointResourcesMetrics
        UtilizationCase {
            name: "samples of other pods only",
            fixture: Fixture {
                current: 1,
                requests: &[1000],
                levels: both![100],
                sample_names: &["an-older-pod-name"],
                ..FIXTURE
            },
            target: 100,
            expect: Err("no metrics returned matched known pods"),
            ..UTILIZATION
        },
        // TestReplicaCalcTolerance
        UtilizationCase {
            name: "tolerance",
            fixture: Fixture {
                current: 3,
                requests: &[900, 1000, 1100],
                levels: both![1010, 1030, 1020],
                ..FIXTURE
            },
            target: 100,
            expect: Ok((3, 102, 2040)),
            ..UTILIZATION
        },
        // TestReplicaCalcConfigurableTolerance
        UtilizationCase {
            name: "outside of a 0% tolerance",
            fixture: Fixture {
                current: 3,
                requests: &[900, 1000, 1100],
                levels: both![909, 1010, 1111],
                ..FIXTURE
            },
            target: 100,
            tolerances: Some((0.0, 0.0)),
            expect: Ok((4, 101, 2020)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "within a 200% scale-up tolerance",
            fixture: Fixture {
                current: 3,
                requests: &[900, 1000, 1100],
                levels: both![1890, 1910, 1900],
                ..FIXTURE
            },
            target: 100,
            tolerances: Some((0.1, 2.0)),
            expect: Ok((3, 190, 3800)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "outside 8% scale-up tolerance (and superfluous scale-down tolerance)",
            fixture: Fixture {
                current: 3,
                requests: &[900, 1000, 1100],
                levels: both![1100, 1080, 1090],
                ..FIXTURE
            },
            target: 100,
            tolerances: Some((2.0, 0.08)),
            expect: Ok((4, 109, 2180)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "within a 36% scale-down tolerance",
            fixture: Fixture {
                current: 3,
                requests: &[900, 1000, 1100],
                levels: both![660, 640, 650],
                ..FIXTURE
            },
            target: 100,
            tolerances: Some((0.36, 0.1)),
            expect: Ok((3, 65, 1300)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "outside a 34% scale-down tolerance",
            fixture: Fixture {
                current: 3,
                requests: &[900, 1000, 1100],
                levels: both![660, 640, 650],
                ..FIXTURE
            },
            target: 100,
            tolerances: Some((0.34, 0.1)),
            expect: Ok((2, 65, 1300)),
            ..UTILIZATION
        },
        // TestReplicaCalcSuperfluousMetrics
        UtilizationCase {
            name: "samples of pods outside the selector are not counted",
            fixture: Fixture {
                current: 4,
                requests: &[1000; 4],
                levels: both![4000, 9500, 3000, 7000, 3200, 2000],
                ..FIXTURE
            },
            target: 100,
            expect: Ok((24, 587, 11750)),
            ..UTILIZATION
        },
        // TestReplicaCalcMissingMetrics
        UtilizationCase {
            name: "missing metrics count as 100% on a scale-down",
            fixture: Fixture {
                current: 4,
                requests: &[1000; 4],
                levels: both![400, 95],
                ..FIXTURE
            },
            target: 100,
            expect: Ok((3, 24, 495)),
            ..UTILIZATION
        },
        // TestReplicaCalcEmptyMetrics (upstream fails earlier, in its metrics client)
        UtilizationCase {
            name: "no samples",
            fixture: Fixture {
                current: 4,
                requests: &[1000; 3],
                ..FIXTURE
            },
            target: 100,
            expect: Err("did not receive metrics for targeted pods"),
            ..UTILIZATION
        },
        // TestReplicaCalcEmptyCPURequest
        UtilizationCase {
            name: "no cpu request",
            fixture: Fixture {
                current: 1,
                levels: both![200],
                ..FIXTURE
            },
            target: 100,
            expect: Err("missing request for cpu in container container1 of Pod test-pod-0"),
            ..UTILIZATION
        },
        // TestReplicaCalcMissingMetricsNoChange{Eq,Gt,Lt}
        UtilizationCase {
            name: "missing metrics, no change: equal",
            fixture: Fixture {
                current: 2,
                requests: &[1000; 2],
                levels: both![1000],
                ..FIXTURE
            },
            target: 100,
            expect: Ok((2, 100, 2000)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "missing metrics, no change: greater (0% fill lands within tolerance)",
            fixture: Fixture {
                current: 2,
                requests: &[1000; 2],
                levels: both![1900],
                ..FIXTURE
            },
            target: 100,
            expect: Ok((2, 190, 3800)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "missing metrics, no change: less (100% fill flips the direction)",
            fixture: Fixture {
                current: 2,
                requests: &[1000; 2],
                levels: both![600],
                ..FIXTURE
            },
            target: 100,
            expect: Ok((2, 60, 1200)),
            ..UTILIZATION
        },
        // TestReplicaCalcMissingMetricsUnreadyChange / HotCpuNoChange
        UtilizationCase {
            name: "missing metrics and an unready pod: no change",
            fixture: Fixture {
                current: 3,
                readiness: &[F, T, T],
                requests: &[1000; 3],
                levels: both![100, 450],
                ..FIXTURE
            },
            target: 50,
            expect: Ok((3, 45, 900)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "missing metrics and a hot-CPU pod: no change",
            fixture: Fixture {
                current: 3,
                start: &[Start::Hot, Start::Cool, Start::Cool],
                requests: &[1000; 3],
                levels: both![100, 450],
                ..FIXTURE
            },
            target: 50,
            expect: Ok((3, 45, 900)),
            ..UTILIZATION
        },
        // TestReplicaCalcMissingMetricsUnreadyScaleUp / HotCpuScaleUp
        UtilizationCase {
            name: "missing metrics and an unready pod: scale up",
            fixture: Fixture {
                current: 3,
                readiness: &[F, T, T],
                requests: &[1000; 3],
                levels: both![100, 2000],
                ..FIXTURE
            },
            target: 50,
            expect: Ok((4, 200, 4000)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "missing metrics and a hot-CPU unready pod: scale up",
            fixture: Fixture {
                current: 3,
                readiness: &[F, T, T],
                start: &[Start::Hot, Start::Cool, Start::Cool],
                requests: &[1000; 3],
                levels: both![100, 2000],
                ..FIXTURE
            },
            target: 50,
            expect: Ok((4, 200, 4000)),
            ..UTILIZATION
        },
        // TestReplicaCalcMissingMetricsUnreadyScaleDown
        UtilizationCase {
            name: "missing metrics and an unready pod: scale down",
            fixture: Fixture {
                current: 4,
                readiness: &[F, T, T, T],
                requests: &[1000; 4],
                levels: both![100, 100, 100],
                ..FIXTURE
            },
            target: 50,
            expect: Ok((3, 10, 200)),
            ..UTILIZATION
        },
        // TestReplicaCalcMissingMetricsScaleDownTargetOver100
        UtilizationCase {
            name: "missing metrics count as the target when it is over 100%",
            fixture: Fixture {
                current: 4,
                readiness: &[F, T, T, T],
                requests: &[1000, 1000, 2000, 2000],
                levels: both![200, 100, 100],
                ..FIXTURE
            },
            target: 300,
            expect: Ok((2, 6, 200)),
            ..UTILIZATION
        },
        // TestReplicaCalcDuringRollingUpdateWithMaxSurge
        UtilizationCase {
            name: "surge pod without metrics does not turn a scale-down into a scale-up",
            fixture: Fixture {
                current: 2,
                phase: &[Phase::Running; 3],
                requests: &[1000; 3],
                levels: both![100, 100],
                ..FIXTURE
            },
            target: 50,
            expect: Ok((2, 10, 200)),
            ..UTILIZATION
        },
        // TestReplicaCalcComputedToleranceAlgImplementation (its computed targets: 56, then 55)
        UtilizationCase {
            name: "just outside the tolerance",
            fixture: Fixture {
                current: 10,
                requests: &[400, 200, 310, 290, 302, 298, 301, 299, 300, 300],
                levels: both![150, 150, 150, 150, 150, 150, 150, 150, 150, 150],
                ..FIXTURE
            },
            target: 56,
            expect: Ok((9, 50, 300)),
            ..UTILIZATION
        },
        UtilizationCase {
            name: "just inside the tolerance",
            fixture: Fixture {
                current: 10,
                requests: &[400, 200, 310, 290, 302, 298, 301, 299, 300, 300],
                levels: both![150, 150, 150, 150, 150, 150, 150, 150, 150, 150],
                ..FIXTURE
            },
            target: 55,
            expect: Ok((10, 50, 300)),
            ..UTILIZATION
        },
        // Ours: memory has no readiness rules, so an unready Pod's sample counts.
        UtilizationCase {
            name: "memory: unready pods count",
            fixture: Fixture {
                current: 3,
                readiness: &[F, T, T],
                requests: &[1000; 3],
                levels: both![300, 500, 700],
                ..FIXTURE
            },
            resource: "memory",
            expect: Ok((5, 50, 1000)),
            ..UTILIZATION
        },
    ];

    #[test]
    fn resource_utilization_cases() {
        let settings = test_settings();
        for case in UTILIZATION_CASES {
            let pods = case.fixture.pods(case.resource);
            let scope = scope(&pods, case.fixture.current, case.tolerances, &settings);
            let got = resource_utilization_replicas(
                &scope,
                case.resource,
                case.fixture.container,
                case.target,
                &case.fixture.samples(),
            );
            match (&case.expect, got) {
                (Ok((replicas, utilization, raw)), Ok(got)) => {
                    assert_eq!(
                        (got.replicas, got.utilization, got.raw_average),
                        (*replicas, *utilization, *raw),
                        "{}",
                        case.name
                    );
                    assert_eq!(got.timestamp, UNSET_TIME, "{}", case.name);
                }
                (Err(fragment), Err(e)) => {
                    assert!(e.to_string().contains(fragment), "{}: {e}", case.name);
                }
                (want, got) => panic!("{}: want {want:?}, got {got:?}", case.name),
            }
        }
    }

    struct PodsCase {
        name: &'static str,
        fixture: Fixture,
        target: i64,
        tolerances: Option<(f64, f64)>,
        /// (replicas, average usage)
        expect: (i32, i64),
    }

    const PODS_CASES: &[PodsCase] = &[
        // TestReplicaCalcScaleUpCM
        PodsCase {
            name: "scale up",
            fixture: Fixture {
                current: 3,
                levels: each![20000, 10000, 30000],
                ..FIXTURE
            },
            target: 15000,
            tolerances: None,
            expect: (4, 20000),
        },
        // TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale: readiness rules are for CPU only
        PodsCase {
            name: "unready hot pod counts",
            fixture: Fixture {
                current: 3,
                readiness: &[T, T, F],
                start: &[Start::Cool, Start::Cool, Start::Hot],
                levels: each![50000, 10000, 30000],
                ..FIXTURE
            },
            target: 15000,
            tolerances: None,
            expect: (6, 30000),
        },
        // TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown
        PodsCase {
            name: "unready hot pods count",
            fixture: Fixture {
                current: 3,
                readiness: &[F, T, F],
                start: &[Start::Hot, Start::Cool, Start::Hot],
                levels: each![50000, 15000, 30000],
                ..FIXTURE
            },
            target: 15000,
            tolerances: None,
            expect: (7, 31666),
        },
        // TestReplicaCalcScaleDownCM
        PodsCase {
            name: "scale down",
            fixture: Fixture {
                current: 5,
                levels: each![12000, 12000, 12000, 12000, 12000],
                ..FIXTURE
            },
            target: 20000,
            tolerances: None,
            expect: (3, 12000),
        },
        // TestReplicaCalcToleranceCM
        PodsCase {
            name: "tolerance",
            fixture: Fixture {
                current: 3,
                levels: each![20000, 21000, 21000],
                ..FIXTURE
            },
            target: 20000,
            tolerances: None,
            expect: (3, 20666),
        },
        // TestReplicaCalcConfigurableToleranceCM
        PodsCase {
            name: "1% scale-up tolerance",
            fixture: Fixture {
                current: 3,
                levels: each![20000, 21000, 21000],
                ..FIXTURE
            },
            target: 20000,
            tolerances: Some((0.1, 0.01)),
            expect: (4, 20666),
        },
        // TestPlainMetricReplicaCalcMissingMetricsNoChangeEq
        PodsCase {
            name: "missing metrics at exactly the target",
            fixture: Fixture {
                current: 5,
                levels: each![20000, 19000, 21000],
                ..FIXTURE
            },
            target: 20000,
            tolerances: None,
            expect: (5, 20000),
        },
        // TestReplicaCalcDuringRollingUpdateWithMaxSurgeCM
        PodsCase {
            name: "surge pod without metrics",
            fixture: Fixture {
                current: 2,
                phase: &[Phase::Running; 3],
                levels: each![10000, 10000],
                ..FIXTURE
            },
            target: 17000,
            tolerances: None,
            expect: (2, 10000),
        },
    ];

    #[test]
    fn pods_metric_cases() {
        let settings = test_settings();
        for case in PODS_CASES {
            let pods = case.fixture.pods(CPU);
            let scope = scope(&pods, case.fixture.current, case.tolerances, &settings);
            let got = pods_metric_replicas(&scope, case.target, &case.fixture.samples())
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!((got.replicas, got.usage), case.expect, "{}", case.name);
        }
    }

    /// Ours: an averageValue CPU target keeps the CPU readiness rules (upstream passes the
    /// resource name to `calcPlainMetricReplicas`).
    #[test]
    fn resource_average_value_sets_unready_cpu_aside() {
        let settings = test_settings();
        let fixture = Fixture {
            current: 3,
            readiness: &[F, T, T],
            requests: &[1000; 3],
            levels: both![300, 500, 700],
            ..FIXTURE
        };
        let pods = fixture.pods(CPU);
        let scope = scope(&pods, 3, None, &settings);
        let got = resource_average_replicas(&scope, CPU, 500, &fixture.samples()).unwrap();
        // (1000 + 1400) / 2 = 1200 → ratio 2.4; unready at 0 → 800 → 1.6 × 3 → 5.
        assert_eq!((got.replicas, got.usage), (5, 1200));
        let memory = resource_average_replicas(&scope, "memory", 500, &fixture.samples()).unwrap();
        assert_eq!((memory.replicas, memory.usage), (6, 1000));
    }

    #[derive(Clone, Copy, Debug)]
    enum Target {
        ObjectValue,
        ObjectAverage,
        ExternalValue,
        ExternalAverage,
    }

    struct ObjectCase {
        name: &'static str,
        kind: Target,
        current: i32,
        readiness: &'static [ConditionStatus],
        levels: &'static [i64],
        target: i64,
        tolerances: Option<(f64, f64)>,
        expect: (i32, i64),
    }

    const OBJECT: ObjectCase = ObjectCase {
        name: "",
        kind: Target::ObjectValue,
        current: 3,
        readiness: &[],
        levels: &[],
        target: 1,
        tolerances: None,
        expect: (0, 0),
    };

    const OBJECT_CASES: &[ObjectCase] = &[
        // TestReplicaCalcScaleUpCMObject
        ObjectCase {
            name: "object: scale up",
            levels: &[20000],
            target: 15000,
            expect: (4, 20000),
            ..OBJECT
        },
        // TestReplicaCalcScaleUpCMObjectIgnoresUnreadyPods
        ObjectCase {
            name: "object: unready pods not counted",
            readiness: &[F, T, F],
            levels: &[50000],
            target: 10000,
            expect: (5, 50000),
            ..OBJECT
        },
        // TestReplicaCalcScaleDownCMObject
        ObjectCase {
            name: "object: scale down",
            current: 5,
            levels: &[12000],
            target: 20000,
            expect: (3, 12000),
            ..OBJECT
        },
        // TestReplicaCalcToleranceCMObject
        ObjectCase {
            name: "object: tolerance",
            levels: &[20666],
            target: 20000,
            expect: (3, 20666),
            ..OBJECT
        },
        // TestReplicaCalcConfigurableToleranceCMObject
        ObjectCase {
            name: "object: 1% scale-up tolerance",
            levels: &[20666],
            target: 20000,
            tolerances: Some((0.1, 0.01)),
            expect: (4, 20666),
            ..OBJECT
        },
        // TestReplicaCalcScaleUpOverflow
        ObjectCase {
            name: "object: overflow",
            levels: &[i64::MAX],
            target: 1,
            expect: (i32::MAX, i64::MAX),
            ..OBJECT
        },
        // TestReplicaCalcScaleUpCMPerPodObject
        ObjectCase {
            name: "object average: scale up",
            kind: Target::ObjectAverage,
            levels: &[20000],
            target: 5000,
            expect: (4, 6667),
            ..OBJECT
        },
        // TestReplicaCalcScaleDownPerPodCMObject
        ObjectCase {
            name: "object average: scale down",
            kind: Target::ObjectAverage,
            current: 5,
            levels: &[6000],
            target: 2000,
            expect: (3, 1200),
            ..OBJECT
        },
        // TestReplicaCalcTolerancePerPodCMObject
        ObjectCase {
            name: "object average: tolerance",
            kind: Target::ObjectAverage,
            current: 4,
            levels: &[20166],
            target: 5000,
            expect: (4, 5042),
            ..OBJECT
        },
        // TestReplicaCalcConfigurableTolerancePerPodCMObject
        ObjectCase {
            name: "object average: 1% scale-up tolerance",
            kind: Target::ObjectAverage,
            current: 4,
            levels: &[20208],
            target: 5000,
            tolerances: Some((0.1, 0.01)),
            expect: (5, 5052),
            ..OBJECT
        },
        // TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods
        ObjectCase {
            name: "external: unready pods not counted",
            kind: Target::ExternalValue,
            readiness: &[F, T, F],
            levels: &[8600],
            target: 4400,
            expect: (2, 8600),
            ..OBJECT
        },
        // TestReplicaCalcScaleDownCMExternal
        ObjectCase {
            name: "external: scale down",
            kind: Target::ExternalValue,
            current: 5,
            levels: &[8600],
            target: 14334,
            expect: (3, 8600),
            ..OBJECT
        },
        // TestReplicaCalcToleranceCMExternal
        ObjectCase {
            name: "external: tolerance",
            kind: Target::ExternalValue,
            levels: &[8600],
            target: 8888,
            expect: (3, 8600),
            ..OBJECT
        },
        // TestReplicaCalcConfigurableToleranceCMExternal
        ObjectCase {
            name: "external: 1% scale-up tolerance",
            kind: Target::ExternalValue,
            levels: &[8900],
            target: 8800,
            tolerances: Some((0.1, 0.01)),
            expect: (4, 8900),
            ..OBJECT
        },
        // TestReplicaCalcExternalMetricUsageOverflow
        ObjectCase {
            name: "external: sum overflow is capped",
            kind: Target::ExternalValue,
            levels: &[i64::MAX / 2 + 1, i64::MAX / 2 + 1],
            target: i64::MAX,
            expect: (3, i64::MAX),
            ..OBJECT
        },
        // TestReplicaCalcScaleUpPerPodCMExternal
        ObjectCase {
            name: "external average: scale up",
            kind: Target::ExternalAverage,
            levels: &[8600],
            target: 2150,
            expect: (4, 2867),
            ..OBJECT
        },
        // TestReplicaCalcScaleDownPerPodCMExternal
        ObjectCase {
            name: "external average: scale down",
            kind: Target::ExternalAverage,
            current: 5,
            levels: &[8600],
            target: 2867,
            expect: (3, 1720),
            ..OBJECT
        },
        // TestReplicaCalcTolerancePerPodCMExternal
        ObjectCase {
            name: "external average: tolerance",
            kind: Target::ExternalAverage,
            levels: &[8600],
            target: 2900,
            expect: (3, 2867),
            ..OBJECT
        },
        // TestReplicaCalcConfigurableTolerancePerPodCMExternal
        ObjectCase {
            name: "external average: 1% scale-up tolerance",
            kind: Target::ExternalAverage,
            levels: &[8600],
            target: 2800,
            tolerances: Some((0.1, 0.01)),
            expect: (4, 2867),
            ..OBJECT
        },
        // TestExternalPerPodMetricReplicaOverflow / TestExternalPerPodMetricUsageOverflow
        ObjectCase {
            name: "external average: replica overflow",
            kind: Target::ExternalAverage,
            current: 1,
            levels: &[i64::MAX],
            target: 1,
            expect: (i32::MAX, i64::MAX),
            ..OBJECT
        },
        ObjectCase {
            name: "external average: usage overflow",
            kind: Target::ExternalAverage,
            current: 1,
            levels: &[i64::MAX],
            target: i64::MAX,
            expect: (1, i64::MAX),
            ..OBJECT
        },
    ];

    #[test]
    fn object_and_external_cases() {
        let settings = test_settings();
        for case in OBJECT_CASES {
            let fixture = Fixture {
                current: case.current,
                readiness: case.readiness,
                ..FIXTURE
            };
            let pods = fixture.pods(CPU);
            let scope = scope(&pods, case.current, case.tolerances, &settings);
            let sample = Sample {
                value: case.levels[0],
                timestamp: NOW,
                window: Duration::ZERO,
            };
            let got = match case.kind {
                Target::ObjectValue => object_value_replicas(&scope, case.target, &sample),
                Target::ObjectAverage => object_average_replicas(&scope, case.target, &sample),
                Target::ExternalValue => {
                    external_value_replicas(&scope, case.target, case.levels, NOW)
                }
                Target::ExternalAverage => {
                    external_average_replicas(&scope, case.target, case.levels, NOW)
                }
            }
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(
                (got.replicas, got.usage),
                case.expect,
                "{} ({:?})",
                case.name,
                case.kind
            );
            assert_eq!(got.timestamp, NOW, "{}", case.name);
        }
    }

    /// Ours: scaling from zero ignores tolerance and ready Pods; no Pods is an error otherwise.
    #[test]
    fn object_value_from_zero_and_without_pods() {
        let settings = Settings::default();
        let sample = Sample {
            value: 1500,
            timestamp: NOW,
            window: Duration::ZERO,
        };
        let zero = scope(&[], 0, None, &settings);
        assert_eq!(
            object_value_replicas(&zero, 1000, &sample)
                .unwrap()
                .replicas,
            2
        );
        let three = scope(&[], 3, None, &settings);
        assert_eq!(
            object_value_replicas(&three, 1000, &sample),
            Err(CalcError::NoReadyPodsToCount)
        );
        assert_eq!(
            object_value_replicas(&three, 0, &sample),
            Err(CalcError::NonPositiveTarget(0))
        );
    }

    fn bare_pod(name: &str, phase: Phase) -> PodFacts {
        PodFacts {
            name: name.to_owned(),
            phase,
            deleting: false,
            ready: None,
            start_time: None,
            containers: Vec::new(),
            pod_requests: BTreeMap::new(),
        }
    }

    fn ago(seconds: u64) -> Timestamp {
        NOW.checked_sub(Duration::from_secs(seconds)).unwrap()
    }

    fn ready(status: ConditionStatus, seconds_ago: u64) -> Option<Readiness> {
        Some(Readiness {
            status,
            last_transition: Some(ago(seconds_ago)),
        })
    }

    fn sample(timestamp: Timestamp, window_seconds: u64) -> Sample {
        Sample {
            value: 1,
            timestamp,
            window: Duration::from_secs(window_seconds),
        }
    }

    /// Upstream `sample{Value: 1}`: zero timestamp, zero window.
    const BARE: Sample = Sample {
        value: 1,
        timestamp: UNSET_TIME,
        window: Duration::ZERO,
    };

    /// Ported from upstream `TestGroupPods`: (ready, unready, missing, ignored).
    #[test]
    fn group_pods_cases() {
        type Expect = (
            usize,
            &'static [&'static str],
            &'static [&'static str],
            &'static [&'static str],
        );
        let succeeded = Phase::Succeeded;
        type Case = (
            &'static str,
            Vec<PodFacts>,
            Vec<(&'static str, Sample)>,
            &'static str,
            Expect,
        );
        let cases: Vec<Case> = vec![
            ("void", vec![], vec![], CPU, (0, &[], &[], &[])),
            (
                "count in a ready pod - memory",
                vec![bare_pod("bentham", succeeded)],
                vec![("bentham", sample(NOW, 60))],
                "memory",
                (1, &[], &[], &[]),
            ),
            (
                "unready a pod without ready condition - CPU",
                vec![PodFacts {
                    start_time: Some(NOW),
                    ..bare_pod("lucretius", succeeded)
                }],
                vec![("lucretius", BARE)],
                CPU,
                (0, &["lucretius"], &[], &[]),
            ),
            (
                "count in a ready pod with fresh metrics during initialization period - CPU",
                vec![PodFacts {
                    start_time: Some(ago(60)),
                    ready: ready(T, 30),
                    ..bare_pod("bentham", succeeded)
                }],
                vec![("bentham", sample(NOW, 30))],
                CPU,
                (1, &[], &[], &[]),
            ),
            (
                "unready a ready pod without fresh metrics during initialization period - CPU",
                vec![PodFacts {
                    start_time: Some(ago(60)),
                    ready: ready(T, 30),
                    ..bare_pod("bentham", succeeded)
                }],
                vec![("bentham", sample(NOW, 60))],
                CPU,
                (0, &["bentham"], &[], &[]),
            ),
            (
                "unready an unready pod during initialization period - CPU",
                vec![PodFacts {
                    start_time: Some(ago(600)),
                    ready: ready(F, 594),
                    ..bare_pod("lucretius", succeeded)
                }],
                vec![("lucretius", BARE)],
                CPU,
                (0, &["lucretius"], &[], &[]),
            ),
            (
                "count in a ready pod without fresh metrics after initialization period - CPU",
                vec![PodFacts {
                    start_time: Some(ago(180)),
                    ready: ready(T, 180),
                    ..bare_pod("bentham", succeeded)
                }],
                vec![("bentham", sample(ago(120), 60))],
                CPU,
                (1, &[], &[], &[]),
            ),
            (
                "count in an unready pod that was ready after initialization period - CPU",
                vec![PodFacts {
                    start_time: Some(ago(600)),
                    ready: ready(F, 540),
                    ..bare_pod("lucretius", succeeded)
                }],
                vec![("lucretius", BARE)],
                CPU,
                (1, &[], &[], &[]),
            ),
            (
                "unready pod that has never been ready after initialization period - CPU",
                vec![PodFacts {
                    start_time: Some(ago(600)),
                    ready: ready(F, 590),
                    ..bare_pod("lucretius", succeeded)
                }],
                vec![("lucretius", BARE)],
                CPU,
                (1, &[], &[], &[]),
            ),
            (
                "a missing pod",
                vec![PodFacts {
                    start_time: Some(ago(180)),
                    ..bare_pod("epicurus", succeeded)
                }],
                vec![],
                CPU,
                (0, &[], &["epicurus"], &[]),
            ),
            (
                "several pods",
                vec![
                    PodFacts {
                        start_time: Some(NOW),
                        ..bare_pod("lucretius", succeeded)
                    },
                    PodFacts {
                        start_time: Some(ago(180)),
                        ready: ready(T, 180),
                        ..bare_pod("niccolo", succeeded)
                    },
                    PodFacts {
                        start_time: Some(ago(180)),
                        ..bare_pod("epicurus", succeeded)
                    },
                ],
                vec![("lucretius", BARE), ("niccolo", BARE)],
                CPU,
                (1, &["lucretius"], &["epicurus"], &[]),
            ),
            (
                "pending pods are unreadied",
                vec![bare_pod("unscheduled", Phase::Pending)],
                vec![],
                CPU,
                (0, &["unscheduled"], &[], &[]),
            ),
            (
                "ignore pods with deletion timestamps",
                vec![PodFacts {
                    deleting: true,
                    ..bare_pod("deleted", Phase::Pending)
                }],
                vec![("deleted", BARE)],
                CPU,
                (0, &[], &[], &["deleted"]),
            ),
            (
                "ignore pods in a failed state",
                vec![bare_pod("failed", Phase::Failed)],
                vec![("failed", BARE)],
                CPU,
                (0, &[], &[], &["failed"]),
            ),
        ];
        let set = |names: &[&str]| {
            names
                .iter()
                .map(|n| (*n).to_owned())
                .collect::<BTreeSet<_>>()
        };
        for (name, pods, samples, resource, (ready, unready, missing, ignored)) in cases {
            let samples: PodSamples = samples
                .into_iter()
                .map(|(n, s)| (n.to_owned(), s))
                .collect();
            let got = group_pods(&pods, &samples, Some(resource), &test_settings(), NOW);
            let want = PodGroups {
                ready,
                unready: set(unready),
                missing: set(missing),
                ignored: set(ignored),
            };
            assert_eq!(got, want, "{name}");
        }
    }

    fn container(name: &str, cpu: Option<i64>) -> ContainerRequests {
        ContainerRequests {
            name: name.to_owned(),
            requests: cpu.map(|m| (CPU.to_owned(), m)).into_iter().collect(),
        }
    }

    /// Ported from upstream `TestCalculateRequests` (Pod-level resources enabled) and
    /// `TestCalculatePodRequestsFromContainers_NonExistentContainer`.
    #[test]
    fn request_cases() {
        let pod = |containers: Vec<ContainerRequests>, pod_cpu: Option<i64>| PodFacts {
            containers,
            pod_requests: pod_cpu.map(|m| (CPU.to_owned(), m)).into_iter().collect(),
            ..bare_pod("test-pod", Phase::Running)
        };
        let two = || {
            vec![
                container("container1", Some(100)),
                container("container2", Some(50)),
            ]
        };
        type Case = (
            &'static str,
            PodFacts,
            Option<&'static str>,
            Result<i64, &'static str>,
        );
        let cases: Vec<Case> = vec![
            ("sum container requests", pod(two(), None), None, Ok(150)),
            (
                "pod-level requests override container requests",
                pod(two(), Some(800)),
                None,
                Ok(800),
            ),
            (
                "fail if a container is missing requests",
                pod(
                    vec![
                        container("container1", None),
                        container("container2", Some(50)),
                    ],
                    None,
                ),
                None,
                Err("missing request for cpu in container container1 of Pod test-pod"),
            ),
            (
                "pod-level requests override missing container requests",
                pod(
                    vec![
                        container("container1", None),
                        container("container2", Some(50)),
                    ],
                    Some(800),
                ),
                None,
                Ok(800),
            ),
            (
                "a named container's request only",
                pod(two(), None),
                Some("container1"),
                Ok(100),
            ),
            (
                "a named container ignores pod-level requests",
                pod(two(), Some(800)),
                Some("container1"),
                Ok(100),
            ),
            (
                "non-existent container",
                pod(vec![container("container1", Some(100))], None),
                Some("non-existent-container"),
                Err("container non-existent-container not found in Pod test-pod"),
            ),
        ];
        for (name, pod, container, want) in cases {
            let got = pod_request(&pod, CPU, container).map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "{name}");
        }
    }

    /// Upstream `TestCalculateRequests` "pod with restartable init containers", through
    /// [`PodFacts::from_pod`].
    #[test]
    fn from_pod_reads_sidecars_readiness_and_phase() {
        use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus, ResourceRequirements};
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
        let cpu = |q: &str| ResourceRequirements {
            requests: Some([(CPU.to_owned(), Quantity(q.to_owned()))].into()),
            ..ResourceRequirements::default()
        };
        let c = |name: &str, q: &str, policy: Option<&str>| Container {
            name: name.to_owned(),
            resources: Some(cpu(q)),
            restart_policy: policy.map(str::to_owned),
            ..Container::default()
        };
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("test-pod".into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![c("container1", "100m", None)],
                init_containers: Some(vec![
                    c("init-container1", "20m", None),
                    c("restartable-container1", "50m", Some("Always")),
                ]),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                start_time: Some(Time(ago(60))),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(ago(30))),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        };
        let facts = PodFacts::from_pod(&pod);
        assert_eq!(pod_request(&facts, CPU, None), Ok(150));
        assert_eq!(facts.phase, Phase::Running);
        assert_eq!(facts.ready, ready(T, 30));
        assert_eq!(facts.start_time, Some(ago(60)));
        assert!(facts.is_ready());
        assert!(!facts.deleting);
    }

    #[test]
    fn tolerances_come_from_the_behavior() {
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        let behavior = HorizontalPodAutoscalerBehavior {
            scale_up: Some(HPAScalingRules {
                tolerance: Some(Quantity("0.05".into())),
                ..HPAScalingRules::default()
            }),
            scale_down: None,
        };
        let t = Tolerances::for_behavior(0.1, Some(&behavior));
        assert_eq!(
            t,
            Tolerances {
                scale_down: 0.1,
                scale_up: 0.05
            }
        );
        assert!(t.contains(0.9) && t.contains(1.05) && !t.contains(1.06) && !t.contains(0.89));
        assert_eq!(
            Tolerances::for_behavior(0.2, None),
            Tolerances::uniform(0.2)
        );
    }
}
