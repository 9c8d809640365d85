//! One evaluation of an autoscaler (upstream `reconcileAutoscaler`): read the target's scale,
//! compute and bound the replica count, write the scale, and record what happened in the
//! status conditions and Events.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch};
use kube::core::{ApiResource, GroupVersionKind, Selector, SelectorExt};
use kubeforge::controller::{Action, Context, ReconcileError};
use parking_lot::Mutex;

use super::behavior::{self, History};
use super::metrics::MetricsSource;
use super::proposal::{self, Proposal};
use super::{HpaOptions, NAME};
use crate::writes::{StatusWrite, write_params, write_status};

/// What the controller keeps between syncs: the metrics source, each autoscaler's
/// recommendation and scale history (for the stabilization windows and policy periods), and
/// the targets' resources found through discovery.
pub(super) struct State {
    metrics: Arc<dyn MetricsSource>,
    options: HpaOptions,
    histories: Mutex<HashMap<String, History>>,
    targets: Mutex<HashMap<GroupVersionKind, ApiResource>>,
}

impl State {
    /// Drops what was kept for autoscaler `key` (`namespace/name`).
    pub(super) fn forget(&self, key: &str) {
        self.histories.lock().remove(key);
    }

    pub(super) fn new(metrics: Arc<dyn MetricsSource>, options: HpaOptions) -> Self {
        State {
            metrics,
            options,
            histories: Mutex::default(),
            targets: Mutex::default(),
        }
    }
}

/// A failed step: the condition it sets false, its reason, and the message (also the Event's).
struct Failure {
    condition: &'static str,
    reason: &'static str,
    message: String,
}

/// Evaluates `hpa` and requeues it after the sync period.
pub(super) async fn reconcile(
    hpa: Arc<HorizontalPodAutoscaler>,
    ctx: Context<Arc<State>>,
) -> Result<Action, ReconcileError> {
    let state = ctx.data().clone();
    let old = hpa.status.clone().unwrap_or_default();
    let mut status = HorizontalPodAutoscalerStatus {
        observed_generation: hpa.metadata.generation,
        ..old.clone()
    };
    let now = state.options.clock.now();
    if let Err(failure) = evaluate(&hpa, &ctx, &state, &mut status, now).await {
        set_condition(
            &mut status,
            failure.condition,
            "False",
            failure.reason,
            &failure.message,
            now,
        );
        let _ = ctx
            .recorder()
            .warning(hpa.as_ref(), failure.reason, &failure.message)
            .await;
    }
    let api: Api<HorizontalPodAutoscaler> =
        Api::namespaced(ctx.client().clone(), &hpa.namespace().unwrap_or_default());
    match write_status(&api, hpa.as_ref(), NAME, &old, &status).await {
        Ok(StatusWrite::Gone) => {
            state.histories.lock().remove(&key(&hpa));
            return Ok(Action::await_change());
        }
        Ok(_) => {}
        Err(e) => return Err(ReconcileError::transient(e)),
    }
    Ok(Action::requeue(state.options.sync_period))
}

fn key(hpa: &HorizontalPodAutoscaler) -> String {
    format!("{}/{}", hpa.namespace().unwrap_or_default(), hpa.name_any())
}

async fn evaluate(
    hpa: &HorizontalPodAutoscaler,
    ctx: &Context<Arc<State>>,
    state: &State,
    status: &mut HorizontalPodAutoscalerStatus,
    now: Timestamp,
) -> Result<(), Failure> {
    let ns = hpa.namespace().unwrap_or_default();
    let (scales, target) = scale_api(ctx, state, hpa, &ns).await?;
    let scale = scales.get_scale(&target).await.map_err(|e| Failure {
        condition: "AbleToScale",
        reason: "FailedGetScale",
        message: format!("the HPA controller was unable to get the target's current scale: {e}"),
    })?;
    set_condition(
        status,
        "AbleToScale",
        "True",
        "SucceededGetScale",
        "the HPA controller was able to get the target's current scale",
        now,
    );
    let spec = &hpa.spec;
    let current = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let min = spec.min_replicas.unwrap_or(1);
    status.current_replicas = Some(current);
    let mut able = ("ReadyForNewScale", "recommended size matches current size");
    let (desired, reason) = if current == 0 && min != 0 {
        status.current_metrics = None;
        set_condition(
            status,
            "ScalingActive",
            "False",
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
            now,
        );
        (0, String::new())
    } else if current > spec.max_replicas {
        (
            spec.max_replicas,
            "Current number of replicas above Spec.MaxReplicas".to_owned(),
        )
    } else if current < min {
        (
            min,
            "Current number of replicas below Spec.MinReplicas".to_owned(),
        )
    } else {
        let proposal = propose(ctx, state, hpa, &scale, &ns, current, now, status).await?;
        let mut histories = state.histories.lock();
        let history = histories.entry(key(hpa)).or_default();
        let bounded = behavior::normalize(
            spec.behavior.as_ref(),
            min,
            spec.max_replicas,
            current,
            proposal.replicas,
            now,
            history,
        );
        set_condition(
            status,
            "ScalingLimited",
            bounded.limited_status(),
            bounded.reason,
            &bounded.message,
            now,
        );
        able = (bounded.able_to_scale.reason, bounded.able_to_scale.message);
        let reason = if bounded.replicas > current {
            format!("{} above target", proposal.metric)
        } else {
            "All metrics below target".to_owned()
        };
        (bounded.replicas, reason)
    };
    status.desired_replicas = desired;
    if desired == current {
        let (reason, message) = able;
        set_condition(status, "AbleToScale", "True", reason, message, now);
        return Ok(());
    }
    rescale(&scales, &target, desired).await?;
    state
        .histories
        .lock()
        .entry(key(hpa))
        .or_default()
        .record_scale(hpa.spec.behavior.as_ref(), now, current, desired);
    status.last_scale_time = Some(Time(now));
    let message = format!("the HPA controller was able to update the target scale to {desired}");
    set_condition(
        status,
        "AbleToScale",
        "True",
        "SucceededRescale",
        &message,
        now,
    );
    let note = format!("New size: {desired}; reason: {reason}");
    let _ = ctx.recorder().normal(hpa, "SuccessfulRescale", &note).await;
    Ok(())
}

/// Reads the metrics and computes the replica count they ask for; records the metrics in the
/// status and the `ScalingActive` condition.
#[allow(clippy::too_many_arguments)]
async fn propose(
    ctx: &Context<Arc<State>>,
    state: &State,
    hpa: &HorizontalPodAutoscaler,
    scale: &Scale,
    ns: &str,
    current: i32,
    now: Timestamp,
    status: &mut HorizontalPodAutoscalerStatus,
) -> Result<Proposal, Failure> {
    let selector = scale
        .status
        .as_ref()
        .and_then(|s| s.selector.as_deref())
        .unwrap_or("");
    let selector = match parse_selector(selector) {
        Some(s) if !selector.is_empty() => s,
        _ => {
            return Err(Failure {
                condition: "ScalingActive",
                reason: "InvalidSelector",
                message: format!(
                    "the HPA target's scale is missing a selector (or it does not parse: {selector:?})"
                ),
            });
        }
    };
    let pods = pods_of(ctx, ns, &selector).await?;
    let input = proposal::Input {
        metrics: state.metrics.as_ref(),
        settings: &state.options.calculator,
        namespace: ns,
        selector: &selector,
        pods: &pods,
        behavior: hpa.spec.behavior.as_ref(),
        current,
        now,
    };
    let outcome = proposal::propose(&input, hpa.spec.metrics.as_deref().unwrap_or_default()).await;
    status.current_metrics = Some(outcome.statuses.clone()).filter(|s| !s.is_empty());
    match outcome.result {
        Ok(proposal) => {
            let message = format!(
                "the HPA was able to successfully calculate a replica count from {}",
                proposal.metric
            );
            set_condition(
                status,
                "ScalingActive",
                "True",
                "ValidMetricFound",
                &message,
                now,
            );
            Ok(proposal)
        }
        Err(e) => Err(Failure {
            condition: "ScalingActive",
            reason: e.reason,
            message: e.message,
        }),
    }
}

/// The Pods of `ns` matching `selector`, from the controller's cache.
async fn pods_of(
    ctx: &Context<Arc<State>>,
    ns: &str,
    selector: &Selector,
) -> Result<Vec<Arc<Pod>>, Failure> {
    let lister = ctx.cache::<Pod>().await.map_err(|e| Failure {
        condition: "ScalingActive",
        reason: "FailedGetPods",
        message: format!("the HPA controller could not read the Pods: {e}"),
    })?;
    Ok(lister
        .list()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(ns) && selector.matches(p.labels()))
        .collect())
}

/// The scale subresource's API for `hpa`'s target, and the target's name.
async fn scale_api(
    ctx: &Context<Arc<State>>,
    state: &State,
    hpa: &HorizontalPodAutoscaler,
    ns: &str,
) -> Result<(Api<DynamicObject>, String), Failure> {
    let target = &hpa.spec.scale_target_ref;
    let api_version = target.api_version.as_deref().unwrap_or("v1");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, &target.kind);
    let known = state.targets.lock().get(&gvk).cloned();
    let resource = match known {
        Some(r) => r,
        None => {
            let (resource, _) = kube::discovery::pinned_kind(ctx.client(), &gvk)
                .await
                .map_err(|e| Failure {
                    condition: "AbleToScale",
                    reason: "FailedGetScale",
                    message: format!(
                        "the HPA controller was unable to get the target's current scale: no \
                         resource for {} {api_version} ({e}); check scaleTargetRef",
                        target.kind
                    ),
                })?;
            state.targets.lock().insert(gvk, resource.clone());
            resource
        }
    };
    Ok((
        Api::namespaced_with(ctx.client().clone(), ns, &resource),
        target.name.clone(),
    ))
}

async fn rescale(scales: &Api<DynamicObject>, target: &str, replicas: i32) -> Result<(), Failure> {
    let patch = Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}}));
    scales
        .patch_scale(target, &write_params(NAME), &patch)
        .await
        .map(drop)
        .map_err(|e| Failure {
            condition: "AbleToScale",
            reason: "FailedUpdateScale",
            message: format!("the HPA controller was unable to update the target scale: {e}"),
        })
}

/// Sets condition `type_`, keeping its transition time when its status did not change.
fn set_condition(
    status: &mut HorizontalPodAutoscalerStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let transition = conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == value)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    let new = HorizontalPodAutoscalerCondition {
        type_: type_.to_owned(),
        status: value.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_transition_time: Some(transition),
        observed_generation: None,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => *c = new,
        None => conditions.push(new),
    }
}

/// A label selector in its string form, as a scale subresource's `status.selector` holds it
/// (`app=web,tier!=cache,env in (a,b),!legacy`). `None` when it does not parse.
pub(super) fn parse_selector(text: &str) -> Option<Selector> {
    use kube::core::Expression;
    let mut expressions = Vec::new();
    for term in split_terms(text) {
        let term = term.trim();
        let values = |list: &str| -> Option<std::collections::BTreeSet<String>> {
            let inner = list.trim().strip_prefix('(')?.strip_suffix(')')?;
            Some(inner.split(',').map(|v| v.trim().to_owned()).collect())
        };
        let expression = if let Some(key) = term.strip_prefix('!') {
            Expression::DoesNotExist(key.trim().to_owned())
        } else if let Some((key, list)) = term.split_once(" notin ") {
            Expression::NotIn(key.trim().to_owned(), values(list)?)
        } else if let Some((key, list)) = term.split_once(" in ") {
            Expression::In(key.trim().to_owned(), values(list)?)
        } else if let Some((key, value)) = term.split_once("!=") {
            Expression::NotEqual(key.trim().to_owned(), value.trim().to_owned())
        } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
            Expression::Equal(key.trim().to_owned(), value.trim().to_owned())
        } else if !term.is_empty() && !term.contains([' ', '(', ')']) {
            Expression::Exists(term.to_owned())
        } else {
            return None;
        };
        expressions.push(expression);
    }
    Some(Selector::from_iter(expressions))
}

/// The comma-separated terms of a selector string, commas inside `( … )` kept.
fn split_terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < text.len() {
        terms.push(&text[start..]);
    }
    terms
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_scale_selector_string_parses_into_a_selector() {
        let selector = parse_selector("app=web,tier!=cache,env in (a, b),!legacy").unwrap();
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(selector.matches(&labels(&[("app", "web"), ("env", "b")])));
        assert!(!selector.matches(&labels(&[("app", "web"), ("env", "c")])));
        assert!(!selector.matches(&labels(&[("app", "web"), ("env", "a"), ("legacy", "1")])));
        assert!(!selector.matches(&labels(&[("app", "web"), ("env", "a"), ("tier", "cache")])));
        assert!(parse_selector("app in web").is_none());
    }
}
