//! Publishes `events.k8s.io/v1` Events about objects, folding repeats into a series.
//!
//! The first occurrence of an event creates an Event object. Repeats of the same event (same
//! object, type, reason, action, note) within [`SERIES_WINDOW`] patch that object's `series`
//! (`count`, `lastObservedTime`) instead of creating new objects, as client-go's
//! `tools/events` does, so a flapping reconcile does not flood the API server.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use parking_lot::Mutex;
use serde_json::json;
use tokio::time::Instant;

/// Repeats within this window join the existing series; later ones start a new Event.
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Informational.
    Normal,
    /// Something may be wrong.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// One event to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    /// Normal or Warning.
    pub type_: EventType,
    /// Short CamelCase reason, e.g. `Created`.
    pub reason: String,
    /// Human-readable description (at most 1 kB).
    pub note: Option<String>,
    /// What was done, e.g. `Reconcile`.
    pub action: String,
    /// A second object involved, if any.
    pub secondary: Option<ObjectReference>,
}

/// Who reports events: the controller name and this process's instance.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reporter {
    /// e.g. `my-operator`.
    pub controller: String,
    /// e.g. the pod name; defaults to `$HOSTNAME`.
    pub instance: String,
}

impl Reporter {
    /// A reporter named `controller`, with the host name as instance.
    pub fn new(controller: impl Into<String>) -> Self {
        let instance = std::env::var("HOSTNAME").unwrap_or_else(|_| "kubeforge".to_owned());
        Self {
            controller: controller.into(),
            instance,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SeriesKey {
    regarding: [Option<String>; 4],
    related: [Option<String>; 3],
    type_: EventType,
    reason: String,
    note: Option<String>,
    action: String,
}

struct Series {
    name: String,
    namespace: String,
    count: i32,
    last: Instant,
}

/// Publishes events; cheap to clone via `Arc` if shared. Remembers series in memory.
pub struct Recorder {
    client: Client,
    reporter: Reporter,
    series: Mutex<HashMap<SeriesKey, Series>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("reporter", &self.reporter)
            .finish_non_exhaustive()
    }
}

/// An Event's name: the object's name and the time in nanoseconds, in hex.
fn event_name(object: Option<&str>, at: k8s_openapi::jiff::Timestamp) -> String {
    format!("{}.{:x}", object.unwrap_or("object"), at.as_nanosecond())
}

/// The reference to `obj` an Event's `regarding` field needs.
pub fn object_reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: obj.meta().name.clone(),
        namespace: obj.meta().namespace.clone(),
        uid: obj.meta().uid.clone(),
        resource_version: obj.meta().resource_version.clone(),
        field_path: None,
    }
}

impl Recorder {
    /// A recorder reporting as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self {
            client,
            reporter,
            series: Mutex::new(HashMap::new()),
        }
    }

    /// Publishes a `Normal` event about `obj` in one line: `reason` (CamelCase, e.g. `Created`)
    /// and a human-readable `note`; the action is `Reconcile`. Repeats fold into a series.
    ///
    /// ```no_run
    /// # async fn f(ctx: kubeforge::controller::Context<()>, cm: &k8s_openapi::api::core::v1::ConfigMap) -> Result<(), kube::Error> {
    /// ctx.recorder().normal(cm, "Synced", "copied 3 keys").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// When the API server refuses the Event.
    pub async fn normal<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        note: &str,
    ) -> Result<(), kube::Error> {
        self.one_line(EventType::Normal, obj, reason, note).await
    }

    /// Publishes a `Warning` event about `obj` in one line (see [`normal`](Self::normal)).
    ///
    /// # Errors
    /// When the API server refuses the Event.
    pub async fn warning<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        note: &str,
    ) -> Result<(), kube::Error> {
        self.one_line(EventType::Warning, obj, reason, note).await
    }

    async fn one_line<K: Resource<DynamicType = ()>>(
        &self,
        type_: EventType,
        obj: &K,
        reason: &str,
        note: &str,
    ) -> Result<(), kube::Error> {
        let record = EventRecord {
            type_,
            reason: reason.to_owned(),
            note: (!note.is_empty()).then(|| note.to_owned()),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        self.publish(&record, &object_reference(obj)).await
    }

    /// Publishes `record` about `regarding` (in its namespace, or `default` for cluster-scoped
    /// objects): creates an Event, or bumps the series of the same recent event.
    pub async fn publish(
        &self,
        record: &EventRecord,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let related = record.secondary.as_ref();
        let key = SeriesKey {
            regarding: [
                regarding.kind.clone(),
                regarding.namespace.clone(),
                regarding.name.clone(),
                regarding.uid.clone(),
            ],
            related: [
                related.and_then(|r| r.kind.clone()),
                related.and_then(|r| r.namespace.clone()),
                related.and_then(|r| r.name.clone()),
            ],
            type_: record.type_,
            reason: record.reason.clone(),
            note: record.note.clone(),
            action: record.action.clone(),
        };
        let now = k8s_openapi::jiff::Timestamp::now();
        let existing = {
            let mut series = self.series.lock();
            series.retain(|_, s| s.last.elapsed() < SERIES_WINDOW);
            series.get_mut(&key).map(|s| {
                s.count += 1;
                s.last = Instant::now();
                (s.name.clone(), s.namespace.clone(), s.count)
            })
        };
        if let Some((name, namespace, count)) = existing {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
            let patch =
                json!({ "series": EventSeries { count, last_observed_time: MicroTime(now) } });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                // The Event expired (TTL) or was deleted: start a new series below.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(err),
            }
        }
        let namespace = regarding
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        let event = Event {
            metadata: ObjectMeta {
                // `<object>.<unix nanos in hex>`, as client-go names Events (a `generateName` of
                // `<object>.` is refused: a name prefix cannot end with a dot).
                name: Some(event_name(regarding.name.as_deref(), now)),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(record.type_.as_str().to_owned()),
            reason: Some(record.reason.clone()),
            note: record.note.clone(),
            action: Some(record.action.clone()),
            regarding: Some(regarding.clone()),
            related: record.secondary.clone(),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(self.reporter.instance.clone()),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let created = api.create(&PostParams::default(), &event).await?;
        self.series.lock().insert(
            key,
            Series {
                name: created.name_any(),
                namespace,
                count: 1,
                last: Instant::now(),
            },
        );
        Ok(())
    }
}
