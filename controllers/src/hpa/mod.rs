//! The HorizontalPodAutoscaler controller (upstream `pkg/controller/podautoscaler`,
//! `autoscaling/v2`): every sync period it reads the metrics of an autoscaler's target,
//! computes the replica count they ask for, bounds it by the autoscaler's behavior and
//! min/max, and writes it to the target's `/scale` subresource.
//!
//! - **Targets**: anything with a scale subresource — Deployments, StatefulSets, ReplicaSets,
//!   custom resources — found through discovery from `scaleTargetRef`; the Pods counted are those
//!   matching the scale's `status.selector`.
//! - **Metrics** ([`metrics`]): resource (CPU/memory, utilization or averageValue, and per
//!   container), pods, object and external metrics, from a pluggable [`metrics::MetricsSource`]
//!   ([`metrics::ApiMetrics`] reads `metrics.k8s.io` / `custom.metrics.k8s.io` /
//!   `external.metrics.k8s.io`). With several metrics the largest proposal wins; a metric that
//!   cannot be read never lets the others scale down.
//! - **Replica calculator** ([`calculator`]): upstream's rules — the 0.1 tolerance, missing
//!   metrics counted as 100 % on scale-down and 0 % on scale-up, Pods not yet ready (CPU) left
//!   out of a scale-up, the recount that may cancel a change.
//! - **Behavior** ([`behavior`]): scale-up and scale-down policies (Pods / Percent per period,
//!   selectPolicy Max/Min/Disabled), stabilization windows (300 s for scale-down by default),
//!   then minReplicas/maxReplicas.
//! - **Status**: `currentReplicas`, `desiredReplicas`, `currentMetrics`, `lastScaleTime`,
//!   `observedGeneration`, and the conditions `AbleToScale`, `ScalingActive`, `ScalingLimited`
//!   with upstream's reasons; an Event on each rescale and on each failure.
//!
//! Left out: the v1 API's `targetCPUUtilizationPercentage` (the API server converts it to
//! v2), metrics-server's own per-container timestamps, upstream's `AmbiguousSelector` check
//! (two autoscalers over the same Pods), the controller's own Prometheus metrics
//! (`horizontal_pod_autoscaler_controller_*`), the custom-metrics API's v1beta1 fallback, and
//! the `--horizontal-pod-autoscaler-*` flags other than the sync period and tolerance (the
//! CPU initialization period and readiness delay are [`calculator::Settings`] in code).

pub mod behavior;
pub mod calculator;
pub mod metrics;
mod proposal;
pub mod quantity;
mod reconcile;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::PolicyRule;
use kubeforge::controller::{BuildError, Controller, Watch};
use kubeforge::manager::Manager;

use crate::clock::Clock;

/// The controller's name (logs, metrics, field manager, events).
pub const NAME: &str = "horizontal-pod-autoscaler-controller";

/// Settings upstream takes as kube-controller-manager flags.
#[derive(Clone)]
pub struct HpaOptions {
    /// Where metrics come from; `None` reads the API server's metrics APIs ([`metrics::ApiMetrics`]).
    pub metrics: Option<Arc<dyn metrics::MetricsSource>>,
    /// How often each autoscaler is evaluated (`--horizontal-pod-autoscaler-sync-period`, 15 s).
    pub sync_period: Duration,
    /// The calculator's thresholds.
    pub calculator: calculator::Settings,
    /// The clock the stabilization windows and policy periods are measured on.
    pub clock: Arc<dyn Clock>,
}

impl Default for HpaOptions {
    fn default() -> Self {
        HpaOptions {
            metrics: None,
            sync_period: Duration::from_secs(15),
            calculator: calculator::Settings::default(),
            clock: Arc::new(crate::clock::SystemClock),
        }
    }
}

impl std::fmt::Debug for HpaOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HpaOptions")
            .field("sync_period", &self.sync_period)
            .field("calculator", &self.calculator)
            .finish_non_exhaustive()
    }
}

/// Registers the HorizontalPodAutoscaler controller with default options.
///
/// # Errors
/// When the manager refuses the controller (a duplicate name).
pub fn setup(mgr: &mut Manager) -> Result<(), BuildError> {
    setup_with(mgr, HpaOptions::default())
}

/// Registers the HorizontalPodAutoscaler controller with `options`.
///
/// # Errors
/// When the manager refuses the controller (a duplicate name).
pub fn setup_with(mgr: &mut Manager, options: HpaOptions) -> Result<(), BuildError> {
    let metrics = options
        .metrics
        .clone()
        .unwrap_or_else(|| Arc::new(metrics::ApiMetrics::new(mgr.client().clone())));
    let state = Arc::new(reconcile::State::new(metrics, options));
    // A deleted autoscaler is not reconciled: its recommendations and scale events go with it,
    // so one re-created under the same name starts afresh (upstream deletes them on NotFound).
    let scope = kubeforge::informer::InformerOptions {
        namespace: mgr.config().namespace.clone(),
        ..kubeforge::informer::InformerOptions::default()
    };
    let forget = state.clone();
    let _ = mgr
        .informers()
        .informer::<HorizontalPodAutoscaler>(scope)
        .add_event_handler(
            kubeforge::informer::HandlerFns::new().on_delete(move |gone| {
                if let Some(key) = gone.key() {
                    forget.forget(&key.to_string());
                }
            }),
        );
    Controller::managed_by(mgr)
        .for_::<HorizontalPodAutoscaler>(Watch::new())
        .named(NAME)
        .reads::<Pod>()
        .permits(scale_rules())
        .concurrency(5)
        .complete(reconcile::reconcile, state)
}

/// Reading and writing any target's scale subresource, finding targets through discovery, and
/// reading the metrics APIs (upstream's `system:controller:horizontal-pod-autoscaler` role).
fn scale_rules() -> Vec<PolicyRule> {
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(groups.iter().map(|s| (*s).to_owned()).collect()),
        resources: Some(resources.iter().map(|s| (*s).to_owned()).collect()),
        verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
        ..PolicyRule::default()
    };
    vec![
        rule(&["*"], &["*/scale"], &["get", "update", "patch"]),
        rule(&["metrics.k8s.io"], &["pods"], &["list"]),
        rule(
            &["custom.metrics.k8s.io", "external.metrics.k8s.io"],
            &["*"],
            &["get", "list"],
        ),
    ]
}
