//! Where the HorizontalPodAutoscaler's numbers come from: a [`MetricsSource`], asked once per
//! sync for each metric of an autoscaler's spec. It is a trait so an operator (or a test) can
//! plug in its own numbers; [`ApiMetrics`] reads them from the API server's metrics APIs as
//! kube-controller-manager does:
//!
//! - resource metrics (CPU, memory) from `metrics.k8s.io/v1beta1` PodMetrics — served by
//!   metrics-server on a cluster, and by the PodMetrics objects a test writes on a test server
//!   (`kubeforge_testkit::metrics`);
//! - pods and object metrics from `custom.metrics.k8s.io/v1beta2`, external metrics from
//!   `external.metrics.k8s.io/v1beta1` — served by a metrics adapter (prometheus-adapter, KEDA).
//!
//! Values are milli-units ([`super::quantity`]).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::{CrossVersionObjectReference, MetricIdentifier};
use kube::Client;
use kube::core::Selector;
use serde_json::Value;

use super::quantity::parse_milli;

/// One metric value and when and over what window it was measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// The value in milli-units.
    pub value: i64,
    /// When the value was measured (the end of its window).
    pub timestamp: Timestamp,
    /// How long the measurement took: CPU is a rate over this window.
    pub window: Duration,
}

/// Per-Pod samples, by Pod name. A Pod without one is "missing" to the calculator.
pub type PodSamples = BTreeMap<String, Sample>;

/// Why a metric could not be read; becomes the `ScalingActive=False` condition's message.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The API server (or adapter behind it) refused or failed the request.
    #[error("unable to get metrics from {api}: {source}")]
    Api {
        /// The metrics API asked.
        api: &'static str,
        /// Its answer.
        #[source]
        source: kube::Error,
    },
    /// The answer was not what the metrics API promises.
    #[error("{api} answered something that is not metrics: {detail}")]
    Malformed {
        /// The metrics API asked.
        api: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// Nothing measured the metric.
    #[error("no metrics returned from {api}")]
    Empty {
        /// The metrics API asked.
        api: &'static str,
    },
}

/// Where an autoscaler's metrics come from (upstream `metricsclient.MetricsClient`).
pub trait MetricsSource: Send + Sync {
    /// `resource` (`cpu`, `memory`) of the Pods in `namespace` matching `selector`: each Pod's
    /// containers summed, or only `container` when the metric names one.
    fn resource<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a Selector,
        resource: &'a str,
        container: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PodSamples, MetricsError>>;

    /// A custom per-Pod metric of the Pods in `namespace` matching `selector`.
    fn pods<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a Selector,
        metric: &'a MetricIdentifier,
    ) -> BoxFuture<'a, Result<PodSamples, MetricsError>>;

    /// A custom metric describing one object in `namespace`.
    fn object<'a>(
        &'a self,
        namespace: &'a str,
        object: &'a CrossVersionObjectReference,
        metric: &'a MetricIdentifier,
    ) -> BoxFuture<'a, Result<Sample, MetricsError>>;

    /// An external metric's values (summed by the calculator) and when they were measured.
    fn external<'a>(
        &'a self,
        namespace: &'a str,
        metric: &'a MetricIdentifier,
    ) -> BoxFuture<'a, Result<(Vec<i64>, Timestamp), MetricsError>>;
}

/// The metrics APIs of the API server the client talks to.
#[derive(Clone)]
pub struct ApiMetrics {
    client: Client,
}

impl ApiMetrics {
    /// Reads metrics through `client`.
    pub fn new(client: Client) -> Self {
        ApiMetrics { client }
    }

    async fn get(&self, api: &'static str, path: String) -> Result<Value, MetricsError> {
        let request =
            http::Request::get(path)
                .body(Vec::new())
                .map_err(|e| MetricsError::Malformed {
                    api,
                    detail: e.to_string(),
                })?;
        self.client
            .request::<Value>(request)
            .await
            .map_err(|source| MetricsError::Api { api, source })
    }
}

const RESOURCE_API: &str = "metrics.k8s.io/v1beta1";
const CUSTOM_API: &str = "custom.metrics.k8s.io/v1beta2";
const EXTERNAL_API: &str = "external.metrics.k8s.io/v1beta1";

/// `?labelSelector=…` (and `metricLabelSelector`) for a metrics request.
fn query(selector: &Selector, metric_selector: Option<String>) -> String {
    let mut pairs = Vec::new();
    let labels = selector.to_string();
    if !labels.is_empty() {
        pairs.push(format!("labelSelector={}", encode(&labels)));
    }
    if let Some(metric) = metric_selector.filter(|s| !s.is_empty()) {
        pairs.push(format!("metricLabelSelector={}", encode(&metric)));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

/// Percent-encodes a query value (selectors hold `=`, `,`, `!`, parentheses and spaces).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn metric_selector(metric: &MetricIdentifier) -> Option<String> {
    let selector: Selector = metric.selector.clone()?.try_into().ok()?;
    Some(selector.to_string())
}

fn items(api: &'static str, list: &Value) -> Result<Vec<Value>, MetricsError> {
    list.get("items")
        .and_then(Value::as_array)
        .cloned()
        .ok_or(MetricsError::Malformed {
            api,
            detail: "no `items` list".into(),
        })
}

fn timestamp(api: &'static str, item: &Value) -> Result<Timestamp, MetricsError> {
    let text = item.get("timestamp").and_then(Value::as_str).unwrap_or("");
    text.parse().map_err(|_| MetricsError::Malformed {
        api,
        detail: format!("timestamp {text:?} is not an RFC 3339 time"),
    })
}

fn quantity(api: &'static str, value: Option<&Value>) -> Result<i64, MetricsError> {
    let text = value.and_then(Value::as_str).unwrap_or("");
    parse_milli(text).map_err(|e| MetricsError::Malformed {
        api,
        detail: e.to_string(),
    })
}

/// A Go duration as PodMetrics' `window` holds it (`"30s"`, `"1m0s"`, `"15.5s"`).
fn go_duration(text: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let split = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, tail) = rest.split_at(split);
        let number: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let seconds = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * seconds;
        rest = tail;
    }
    Some(Duration::from_secs_f64(total))
}

/// One PodMetrics object's sum of `resource` over its containers (or over `container`); `None`
/// when a container lacks the resource (upstream skips such a Pod: it is "missing").
pub fn pod_usage(item: &Value, resource: &str, container: Option<&str>) -> Option<i64> {
    let containers = item.get("containers")?.as_array()?;
    let mut sum = 0;
    let mut found = false;
    for c in containers {
        if container.is_some_and(|want| c.get("name").and_then(Value::as_str) != Some(want)) {
            continue;
        }
        let usage = c.get("usage")?.get(resource)?.as_str()?;
        sum += parse_milli(usage).ok()?;
        found = true;
    }
    found.then_some(sum)
}

impl MetricsSource for ApiMetrics {
    fn resource<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a Selector,
        resource: &'a str,
        container: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PodSamples, MetricsError>> {
        Box::pin(async move {
            let path = format!(
                "/apis/{RESOURCE_API}/namespaces/{namespace}/pods{}",
                query(selector, None)
            );
            let list = self.get(RESOURCE_API, path).await?;
            let mut samples = PodSamples::new();
            for item in items(RESOURCE_API, &list)? {
                let Some(name) = item.pointer("/metadata/name").and_then(Value::as_str) else {
                    continue;
                };
                let Some(value) = pod_usage(&item, resource, container) else {
                    continue;
                };
                let window = item
                    .get("window")
                    .and_then(Value::as_str)
                    .and_then(go_duration)
                    .unwrap_or(Duration::from_secs(30));
                let timestamp = timestamp(RESOURCE_API, &item)?;
                samples.insert(
                    name.to_owned(),
                    Sample {
                        value,
                        timestamp,
                        window,
                    },
                );
            }
            if samples.is_empty() {
                return Err(MetricsError::Empty { api: RESOURCE_API });
            }
            Ok(samples)
        })
    }

    fn pods<'a>(
        &'a self,
        namespace: &'a str,
        selector: &'a Selector,
        metric: &'a MetricIdentifier,
    ) -> BoxFuture<'a, Result<PodSamples, MetricsError>> {
        Box::pin(async move {
            let path = format!(
                "/apis/{CUSTOM_API}/namespaces/{namespace}/pods/*/{}{}",
                metric.name,
                query(selector, metric_selector(metric))
            );
            let list = self.get(CUSTOM_API, path).await?;
            let mut samples = PodSamples::new();
            for item in items(CUSTOM_API, &list)? {
                let name = item
                    .pointer("/describedObject/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                samples.insert(name.to_owned(), custom_sample(&item)?);
            }
            if samples.is_empty() {
                return Err(MetricsError::Empty { api: CUSTOM_API });
            }
            Ok(samples)
        })
    }

    fn object<'a>(
        &'a self,
        namespace: &'a str,
        object: &'a CrossVersionObjectReference,
        metric: &'a MetricIdentifier,
    ) -> BoxFuture<'a, Result<Sample, MetricsError>> {
        Box::pin(async move {
            let plural = self.plural_of(object).await?;
            let path = format!(
                "/apis/{CUSTOM_API}/namespaces/{namespace}/{plural}/{}/{}{}",
                object.name,
                metric.name,
                query(&Selector::default(), metric_selector(metric))
            );
            let list = self.get(CUSTOM_API, path).await?;
            let item = items(CUSTOM_API, &list)?
                .into_iter()
                .next()
                .ok_or(MetricsError::Empty { api: CUSTOM_API })?;
            custom_sample(&item)
        })
    }

    fn external<'a>(
        &'a self,
        namespace: &'a str,
        metric: &'a MetricIdentifier,
    ) -> BoxFuture<'a, Result<(Vec<i64>, Timestamp), MetricsError>> {
        Box::pin(async move {
            let path = format!(
                "/apis/{EXTERNAL_API}/namespaces/{namespace}/{}{}",
                metric.name,
                query(&Selector::default(), metric_selector(metric))
            );
            let list = self.get(EXTERNAL_API, path).await?;
            let items = items(EXTERNAL_API, &list)?;
            let first = items
                .first()
                .ok_or(MetricsError::Empty { api: EXTERNAL_API })?;
            let at = timestamp(EXTERNAL_API, first)?;
            let values = items
                .iter()
                .map(|i| quantity(EXTERNAL_API, i.get("value")))
                .collect::<Result<_, _>>()?;
            Ok((values, at))
        })
    }
}

impl ApiMetrics {
    /// How the custom metrics API names `object`'s resource (`services`, `deployments.apps`),
    /// from discovery.
    async fn plural_of(
        &self,
        object: &CrossVersionObjectReference,
    ) -> Result<String, MetricsError> {
        let api_version = object.api_version.as_deref().unwrap_or("v1");
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = kube::core::GroupVersionKind::gvk(group, version, &object.kind);
        let (resource, _) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|source| MetricsError::Api {
                api: CUSTOM_API,
                source,
            })?;
        // The custom metrics API names resources as `GroupResource` does: `deployments.apps`.
        Ok(if resource.group.is_empty() {
            resource.plural
        } else {
            format!("{}.{}", resource.plural, resource.group)
        })
    }
}

/// A custom metrics `MetricValue`.
fn custom_sample(item: &Value) -> Result<Sample, MetricsError> {
    let window = item
        .get("windowSeconds")
        .and_then(Value::as_u64)
        .map_or(Duration::from_secs(60), Duration::from_secs);
    Ok(Sample {
        value: quantity(CUSTOM_API, item.get("value"))?,
        timestamp: timestamp(CUSTOM_API, item)?,
        window,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pods_usage_sums_its_containers_or_takes_the_named_one() {
        let pod = json!({"containers": [
            {"name": "app", "usage": {"cpu": "250m", "memory": "64Mi"}},
            {"name": "sidecar", "usage": {"cpu": "50m", "memory": "16Mi"}},
        ]});
        assert_eq!(pod_usage(&pod, "cpu", None), Some(300));
        assert_eq!(pod_usage(&pod, "cpu", Some("sidecar")), Some(50));
        assert_eq!(pod_usage(&pod, "gpu", None), None);
        assert_eq!(pod_usage(&pod, "cpu", Some("absent")), None);
    }

    #[test]
    fn windows_and_queries_read_as_the_apis_write_them() {
        assert_eq!(go_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(go_duration("1m0.5s"), Some(Duration::from_millis(60_500)));
        assert_eq!(go_duration("3x"), None);
        let selector: Selector =
            kube::core::Expression::In("app".into(), ["web".to_owned(), "api".to_owned()].into())
                .into();
        assert_eq!(
            query(&selector, Some("tier=a".into())),
            "?labelSelector=app%20in%20%28api%2Cweb%29&metricLabelSelector=tier%3Da"
        );
    }

    #[test]
    fn a_custom_metric_value_reads_with_its_window() {
        let item = json!({"describedObject": {"name": "p"}, "metricName": "qps",
            "timestamp": "2026-01-01T00:00:00Z", "windowSeconds": 30, "value": "1500m"});
        let sample = custom_sample(&item).unwrap();
        assert_eq!(sample.value, 1500);
        assert_eq!(sample.window, Duration::from_secs(30));
    }
}
