//! From an autoscaler's metric specs to one proposed replica count (upstream
//! `computeReplicasForMetrics`): each metric is read from the [`MetricsSource`] and turned into
//! a proposal by the [`calculator`](super::calculator); the largest proposal wins, and its
//! metric names the reason. The current values of every metric go to `status.currentMetrics`.
//!
//! As upstream: a spec without metrics means 80 % average CPU utilization; when some metric
//! cannot be read, the others may scale up but never down (a broken metric must not shrink the
//! workload), and when none can be read there is no proposal.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::{
    ContainerResourceMetricStatus, ExternalMetricStatus, HorizontalPodAutoscalerBehavior,
    MetricSpec, MetricStatus, MetricTarget, MetricValueStatus, ObjectMetricStatus,
    PodsMetricStatus, ResourceMetricSource, ResourceMetricStatus,
};
use k8s_openapi::api::core::v1::Pod;
use kube::core::Selector;

use super::calculator::{self, CalcError, PodFacts, Scope, Settings, Tolerances, ValueProposal};
use super::metrics::MetricsSource;
use super::quantity::{from_milli, milli};

/// What a proposal is computed from.
pub(super) struct Input<'a> {
    pub metrics: &'a dyn MetricsSource,
    pub settings: &'a Settings,
    pub namespace: &'a str,
    pub selector: &'a Selector,
    pub pods: &'a [Arc<Pod>],
    pub behavior: Option<&'a HorizontalPodAutoscalerBehavior>,
    pub current: i32,
    pub now: Timestamp,
}

impl Input<'_> {
    /// What every calculation of this sync reads besides its metric.
    fn scope<'p>(&'p self, pods: &'p [PodFacts]) -> Scope<'p> {
        Scope {
            pods,
            current_replicas: self.current,
            tolerances: Tolerances::for_behavior(self.settings.tolerance, self.behavior),
            settings: self.settings,
            now: self.now,
        }
    }
}

/// The winning proposal and the metric it came from (for conditions and Events).
#[derive(Debug)]
pub(super) struct Proposal {
    pub replicas: i32,
    pub metric: String,
}

/// Why there is no proposal: the `ScalingActive=False` reason and message.
#[derive(Debug)]
pub(super) struct NoProposal {
    pub reason: &'static str,
    pub message: String,
}

/// The proposal (or why there is none) and the current value of each metric read.
pub(super) struct Outcome {
    pub statuses: Vec<MetricStatus>,
    pub result: Result<Proposal, NoProposal>,
}

/// One metric's proposal.
struct Metric {
    replicas: i32,
    name: String,
    status: MetricStatus,
}

/// Evaluates every metric of `specs` and picks the largest proposal.
pub(super) async fn propose(input: &Input<'_>, specs: &[MetricSpec]) -> Outcome {
    let default = [default_metric()];
    let specs = if specs.is_empty() {
        &default[..]
    } else {
        specs
    };
    let mut statuses = Vec::new();
    let mut best: Option<Proposal> = None;
    let mut failures = Vec::new();
    for spec in specs {
        match evaluate(input, spec).await {
            Ok(metric) => {
                statuses.push(metric.status);
                if best.as_ref().is_none_or(|b| metric.replicas > b.replicas) {
                    best = Some(Proposal {
                        replicas: metric.replicas,
                        metric: metric.name,
                    });
                }
            }
            Err(failure) => failures.push(failure),
        }
    }
    let result = match (best, failures.into_iter().next()) {
        (Some(best), None) => Ok(best),
        (Some(best), Some(_)) if best.replicas >= input.current => Ok(best),
        (_, Some(failure)) => Err(failure),
        (None, None) => Err(NoProposal {
            reason: "InvalidMetricSourceType",
            message: "the HPA was unable to compute the replica count: no metrics".into(),
        }),
    };
    Outcome { statuses, result }
}

fn default_metric() -> MetricSpec {
    MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: "cpu".into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(80),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    }
}

fn failed(reason: &'static str, what: &str, error: impl std::fmt::Display) -> NoProposal {
    NoProposal {
        reason,
        message: format!(
            "the HPA was unable to compute the replica count: failed to get {what}: {error}"
        ),
    }
}

async fn evaluate(input: &Input<'_>, spec: &MetricSpec) -> Result<Metric, NoProposal> {
    match spec.type_.as_str() {
        "Resource" => {
            let Some(source) = &spec.resource else {
                return Err(invalid(spec));
            };
            resource(input, &source.name, None, &source.target).await
        }
        "ContainerResource" => {
            let Some(source) = &spec.container_resource else {
                return Err(invalid(spec));
            };
            resource(input, &source.name, Some(&source.container), &source.target).await
        }
        "Pods" => pods(input, spec).await,
        "Object" => object(input, spec).await,
        "External" => external(input, spec).await,
        _ => Err(invalid(spec)),
    }
}

fn invalid(spec: &MetricSpec) -> NoProposal {
    NoProposal {
        reason: "InvalidMetricSourceType",
        message: format!(
            "the HPA was unable to compute the replica count: invalid metric source type {:?} \
             (or its source is missing)",
            spec.type_
        ),
    }
}

/// A target quantity in milli-units, or why it is missing.
fn target_milli(
    what: &str,
    q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
) -> Result<i64, String> {
    let q = q.ok_or_else(|| format!("{what} target has no value"))?;
    milli(q).map_err(|e| format!("{what} target: {e}"))
}

fn facts(input: &Input<'_>) -> Vec<PodFacts> {
    input.pods.iter().map(|p| PodFacts::from_pod(p)).collect()
}

async fn resource(
    input: &Input<'_>,
    name: &str,
    container: Option<&str>,
    target: &MetricTarget,
) -> Result<Metric, NoProposal> {
    let reason = if container.is_some() {
        "FailedGetContainerResourceMetric"
    } else {
        "FailedGetResourceMetric"
    };
    let what = format!("{name} resource metric value");
    let samples = input
        .metrics
        .resource(input.namespace, input.selector, name, container)
        .await
        .map_err(|e| failed(reason, &what, e))?;
    let pods = facts(input);
    let scope = input.scope(&pods);
    let (replicas, current, label) = if let Some(percent) = target.average_utilization {
        let estimate =
            calculator::resource_utilization_replicas(&scope, name, container, percent, &samples)
                .map_err(|e| failed(reason, &what, e))?;
        let current = MetricValueStatus {
            average_utilization: Some(estimate.utilization),
            average_value: Some(from_milli(estimate.raw_average)),
            ..MetricValueStatus::default()
        };
        let label = format!("{name} resource utilization (percentage of request)");
        (estimate.replicas, current, label)
    } else {
        let target = target_milli(&what, target.average_value.as_ref())
            .map_err(|e| failed(reason, &what, e))?;
        let estimate = calculator::resource_average_replicas(&scope, name, target, &samples)
            .map_err(|e| failed(reason, &what, e))?;
        let current = MetricValueStatus {
            average_value: Some(from_milli(estimate.usage)),
            ..MetricValueStatus::default()
        };
        (estimate.replicas, current, format!("{name} resource"))
    };
    let status = match container {
        Some(container) => MetricStatus {
            type_: "ContainerResource".into(),
            container_resource: Some(ContainerResourceMetricStatus {
                name: name.to_owned(),
                container: container.to_owned(),
                current,
            }),
            ..MetricStatus::default()
        },
        None => MetricStatus {
            type_: "Resource".into(),
            resource: Some(ResourceMetricStatus {
                name: name.to_owned(),
                current,
            }),
            ..MetricStatus::default()
        },
    };
    let name = match container {
        Some(c) => format!("{c} container {label}"),
        None => label,
    };
    Ok(Metric {
        replicas,
        name,
        status,
    })
}

async fn pods(input: &Input<'_>, spec: &MetricSpec) -> Result<Metric, NoProposal> {
    let Some(source) = &spec.pods else {
        return Err(invalid(spec));
    };
    let reason = "FailedGetPodsMetric";
    let what = format!("pods metric value {}", source.metric.name);
    let target = target_milli(&what, source.target.average_value.as_ref())
        .map_err(|e| failed(reason, &what, e))?;
    let samples = input
        .metrics
        .pods(input.namespace, input.selector, &source.metric)
        .await
        .map_err(|e| failed(reason, &what, e))?;
    let pods = facts(input);
    let estimate = calculator::pods_metric_replicas(&input.scope(&pods), target, &samples)
        .map_err(|e| failed(reason, &what, e))?;
    let status = MetricStatus {
        type_: "Pods".into(),
        pods: Some(PodsMetricStatus {
            metric: source.metric.clone(),
            current: MetricValueStatus {
                average_value: Some(from_milli(estimate.usage)),
                ..MetricValueStatus::default()
            },
        }),
        ..MetricStatus::default()
    };
    Ok(Metric {
        replicas: estimate.replicas,
        name: format!("pods metric {}", source.metric.name),
        status,
    })
}

async fn object(input: &Input<'_>, spec: &MetricSpec) -> Result<Metric, NoProposal> {
    let Some(source) = &spec.object else {
        return Err(invalid(spec));
    };
    let reason = "FailedGetObjectMetric";
    let what = format!("object metric value {}", source.metric.name);
    let sample = input
        .metrics
        .object(input.namespace, &source.described_object, &source.metric)
        .await
        .map_err(|e| failed(reason, &what, e))?;
    let pods = facts(input);
    let scope = input.scope(&pods);
    let (estimate, current) = against_target(
        &source.target,
        |target| calculator::object_average_replicas(&scope, target, &sample),
        |target| calculator::object_value_replicas(&scope, target, &sample),
    )
    .map_err(|e| failed(reason, &what, e))?;
    let status = MetricStatus {
        type_: "Object".into(),
        object: Some(ObjectMetricStatus {
            described_object: source.described_object.clone(),
            metric: source.metric.clone(),
            current,
        }),
        ..MetricStatus::default()
    };
    Ok(Metric {
        replicas: estimate.replicas,
        name: format!(
            "{} metric {}",
            source.described_object.kind, source.metric.name
        ),
        status,
    })
}

async fn external(input: &Input<'_>, spec: &MetricSpec) -> Result<Metric, NoProposal> {
    let Some(source) = &spec.external else {
        return Err(invalid(spec));
    };
    let reason = "FailedGetExternalMetric";
    let what = format!("external metric value {}", source.metric.name);
    let (values, at) = input
        .metrics
        .external(input.namespace, &source.metric)
        .await
        .map_err(|e| failed(reason, &what, e))?;
    let pods = facts(input);
    let scope = input.scope(&pods);
    let (estimate, current) = against_target(
        &source.target,
        |target| calculator::external_average_replicas(&scope, target, &values, at),
        |target| calculator::external_value_replicas(&scope, target, &values, at),
    )
    .map_err(|e| failed(reason, &what, e))?;
    let status = MetricStatus {
        type_: "External".into(),
        external: Some(ExternalMetricStatus {
            metric: source.metric.clone(),
            current,
        }),
        ..MetricStatus::default()
    };
    Ok(Metric {
        replicas: estimate.replicas,
        name: format!("external metric {}", source.metric.name),
        status,
    })
}

/// An object or external metric against its target: an `AverageValue` target divides by the
/// replicas (`average`), a `Value` target compares the whole (`value`). The current value is
/// reported in the target's form.
fn against_target(
    target: &MetricTarget,
    average: impl FnOnce(i64) -> Result<ValueProposal, CalcError>,
    value: impl FnOnce(i64) -> Result<ValueProposal, CalcError>,
) -> Result<(ValueProposal, MetricValueStatus), String> {
    if target.type_ == "AverageValue" {
        let goal = target_milli("the", target.average_value.as_ref())?;
        let estimate = average(goal).map_err(|e| e.to_string())?;
        let current = MetricValueStatus {
            average_value: Some(from_milli(estimate.usage)),
            ..MetricValueStatus::default()
        };
        Ok((estimate, current))
    } else {
        let goal = target_milli("the", target.value.as_ref())?;
        let estimate = value(goal).map_err(|e| e.to_string())?;
        let current = MetricValueStatus {
            value: Some(from_milli(estimate.usage)),
            ..MetricValueStatus::default()
        };
        Ok((estimate, current))
    }
}
