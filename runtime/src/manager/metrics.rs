//! Prometheus metrics of queues, controllers and leader election, in one registry a manager serves.
//!
//! Names follow controller-runtime and client-go so existing dashboards work unchanged:
//! `workqueue_*{name}`, `controller_runtime_*{controller}`, `leader_election_master_status{name}`.
//! Counters are registered without their `_total` suffix; the OpenMetrics text encoder adds it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// A float gauge.
pub type FloatGauge = Gauge<f64, AtomicU64>;

/// The label set of every `workqueue_*` metric: the queue's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// The queue's name (a controller names its queue after itself).
    pub name: String,
}

/// The label set of per-controller metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// The controller's name.
    pub controller: String,
}

/// The label set of `controller_runtime_reconcile_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileResultLabels {
    /// The controller's name.
    pub controller: String,
    /// `success`, `error`, `requeue` or `requeue_after` (controller-runtime's values).
    pub result: String,
}

/// The label set of `leader_election_master_status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaderLabels {
    /// The lease name.
    pub name: String,
}

/// The label set of the webhook latency and in-flight metrics: the webhook's path.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// The path the webhook is served at.
    pub webhook: String,
}

/// The label set of `controller_runtime_webhook_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookResultLabels {
    /// The path the webhook is served at.
    pub webhook: String,
    /// The HTTP status code answered.
    pub code: String,
}

/// Something that can report its in-flight work when scraped (a work queue).
pub(crate) trait InFlight: Send + Sync {
    /// The queue's name.
    fn name(&self) -> &str;
    /// Ages of the items currently being processed.
    fn in_flight_ages(&self) -> Vec<Duration>;
}

/// One process's metrics. Cheap to clone; clones share the registry and every family.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    pub(crate) queue: QueueMetrics,
    pub(crate) controller: ControllerMetrics,
    pub(crate) leader: Family<LeaderLabels, Gauge>,
    pub(crate) webhook: WebhookMetrics,
}

/// The `controller_runtime_webhook_*` families.
#[derive(Clone)]
pub(crate) struct WebhookMetrics {
    pub requests: Family<WebhookResultLabels, Counter>,
    pub latency: Family<WebhookLabels, Histogram>,
    pub in_flight: Family<WebhookLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The `workqueue_*` families, shared by every queue of one [`Metrics`].
#[derive(Clone)]
pub(crate) struct QueueMetrics {
    pub depth: Family<QueueLabels, Gauge>,
    pub adds: Family<QueueLabels, Counter>,
    pub queue_duration: Family<QueueLabels, Histogram>,
    pub work_duration: Family<QueueLabels, Histogram>,
    pub retries: Family<QueueLabels, Counter>,
    pub in_flight: Arc<InFlightCollector>,
}

/// The `controller_runtime_*` families.
#[derive(Clone)]
pub(crate) struct ControllerMetrics {
    pub reconcile_total: Family<ReconcileResultLabels, Counter>,
    pub reconcile_errors: Family<ControllerLabels, Counter>,
    pub reconcile_panics: Family<ControllerLabels, Counter>,
    pub reconcile_time: Family<ControllerLabels, Histogram>,
    pub active_workers: Family<ControllerLabels, Gauge>,
    pub max_concurrent: Family<ControllerLabels, Gauge>,
}

/// Computes `workqueue_unfinished_work_seconds` and `workqueue_longest_running_processor_seconds`
/// at scrape time (client-go refreshes them every 500 ms; computing on scrape is exact).
#[derive(Default)]
pub(crate) struct InFlightCollector {
    queues: Mutex<Vec<Weak<dyn InFlight>>>,
}

impl std::fmt::Debug for InFlightCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InFlightCollector")
    }
}

impl InFlightCollector {
    pub(crate) fn track(&self, queue: Weak<dyn InFlight>) {
        let mut queues = self.queues.lock();
        queues.retain(|q| q.strong_count() > 0);
        queues.push(queue);
    }

    fn snapshot(&self) -> Vec<(String, f64, f64)> {
        let queues: Vec<_> = self
            .queues
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        queues
            .iter()
            .map(|q| {
                let ages = q.in_flight_ages();
                let sum = ages.iter().map(Duration::as_secs_f64).sum();
                let longest = ages.iter().map(Duration::as_secs_f64).fold(0.0, f64::max);
                (q.name().to_owned(), sum, longest)
            })
            .collect()
    }
}

impl Collector for InFlightCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = self.snapshot();
        for (metric, help, pick) in [
            (
                "workqueue_unfinished_work_seconds",
                "Seconds of work in progress that has not been observed by work_duration; large values indicate stuck workers.",
                0usize,
            ),
            (
                "workqueue_longest_running_processor_seconds",
                "Seconds the longest running processor of the queue has been running.",
                1,
            ),
        ] {
            let gauge_type = ConstGauge::new(0.0f64).metric_type();
            let mut family = encoder.encode_descriptor(metric, help, None, gauge_type)?;
            for (name, sum, longest) in &snapshot {
                let labels = QueueLabels { name: name.clone() };
                let value = if pick == 0 { *sum } else { *longest };
                ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// Buckets of `workqueue_{queue,work}_duration_seconds`: 1e-8 s … 10 s, as client-go.
fn queue_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(10e-9, 10.0, 10)
}

/// Buckets of `controller_runtime_reconcile_time_seconds`, as controller-runtime.
const RECONCILE_BUCKETS: [f64; 25] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 60.0,
];

/// Buckets of `controller_runtime_webhook_latency_seconds` (Prometheus' defaults, as
/// controller-runtime).
const WEBHOOK_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every kubeforge family registered (and no samples yet).
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let queue = QueueMetrics {
            depth: Family::default(),
            adds: Family::default(),
            queue_duration: Family::new_with_constructor(|| Histogram::new(queue_buckets())),
            work_duration: Family::new_with_constructor(|| Histogram::new(queue_buckets())),
            retries: Family::default(),
            in_flight: Arc::new(InFlightCollector::default()),
        };
        registry.register(
            "workqueue_depth",
            "Current depth of the work queue",
            queue.depth.clone(),
        );
        registry.register(
            "workqueue_adds",
            "Total adds handled by the work queue",
            queue.adds.clone(),
        );
        registry.register(
            "workqueue_queue_duration_seconds",
            "Seconds an item stays in the work queue before being requested",
            queue.queue_duration.clone(),
        );
        registry.register(
            "workqueue_work_duration_seconds",
            "Seconds processing an item from the work queue takes",
            queue.work_duration.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Total retries (delayed adds) handled by the work queue",
            queue.retries.clone(),
        );
        registry.register_collector(Box::new(queue.in_flight.clone()));

        let controller = ControllerMetrics {
            reconcile_total: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_panics: Family::default(),
            reconcile_time: Family::new_with_constructor(|| Histogram::new(RECONCILE_BUCKETS)),
            active_workers: Family::default(),
            max_concurrent: Family::default(),
        };
        registry.register(
            "controller_runtime_reconcile",
            "Total reconciliations per controller and result",
            controller.reconcile_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total reconciliation errors per controller",
            controller.reconcile_errors.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_panics",
            "Total reconciliation panics per controller",
            controller.reconcile_panics.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            controller.reconcile_time.clone(),
        );
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            controller.active_workers.clone(),
        );
        registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            controller.max_concurrent.clone(),
        );
        let leader = Family::<LeaderLabels, Gauge>::default();
        registry.register(
            "leader_election_master_status",
            "1 while this process holds the named lease, 0 otherwise",
            leader.clone(),
        );
        let webhook = WebhookMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(|| Histogram::new(WEBHOOK_BUCKETS)),
            in_flight: Family::default(),
        };
        registry.register(
            "controller_runtime_webhook_requests",
            "Total admission and conversion requests per webhook and HTTP status code",
            webhook.requests.clone(),
        );
        registry.register(
            "controller_runtime_webhook_latency_seconds",
            "Seconds a webhook takes to answer a request",
            webhook.latency.clone(),
        );
        registry.register(
            "controller_runtime_webhook_requests_in_flight",
            "Requests a webhook is answering now",
            webhook.in_flight.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            queue,
            controller,
            leader,
            webhook,
        }
    }

    /// Registers operator-specific metrics next to kubeforge's, served on the same `/metrics`.
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut self.registry.lock())
    }

    /// The registry in the OpenMetrics text format (what `/metrics` serves).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an error here would be a bug in a metric's encoder.
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.registry.lock())
        {
            tracing::error!(%err, "failed to encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_names_match_controller_runtime() {
        let metrics = Metrics::new();
        let labels = ReconcileResultLabels {
            controller: "cm".into(),
            result: "success".into(),
        };
        metrics
            .controller
            .reconcile_total
            .get_or_create(&labels)
            .inc();
        metrics
            .queue
            .adds
            .get_or_create(&QueueLabels { name: "cm".into() })
            .inc();
        let text = metrics.encode();
        assert!(
            text.contains(
                "controller_runtime_reconcile_total{controller=\"cm\",result=\"success\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("workqueue_adds_total{name=\"cm\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE workqueue_unfinished_work_seconds gauge"),
            "{text}"
        );
    }
}
