//! How a stored object reads through another served version of its resource.
//!
//! Objects are stored as they were written. A multi-version CRD (conversion strategy `None`)
//! only changes `apiVersion`; one converting through a webhook is served by
//! `handlers/converted.rs`, which keeps its objects in the storage version. Events are the one built-in case with two shapes of one object:
//! kube-apiserver stores core/v1 and `events.k8s.io/v1` Events once, so an event written
//! through either API is read, listed and watched through both, its fields renamed
//! (`involvedObject` ↔ `regarding`, `message` ↔ `note`, the `deprecated…` fields).
//!
//! HorizontalPodAutoscalers are the other: `autoscaling/v1` and `v2` share a store, converted
//! as kube-apiserver converts them ([`hpa`]).
//!
//! Custom resources also get their schema's defaults on every read, so an object stored before
//! a default was added to its CRD reads with it.

mod hpa;

use serde_json::{Map, Value, json};

use crate::resources::ResourceInfo;

/// core/v1 Event field ↔ `events.k8s.io/v1` Event field, as kube-apiserver converts them.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

const EVENTS_API: &str = "events.k8s.io/v1";

/// Whether an object stored in `stored_api_version` is served exactly as stored (its bytes
/// shared, not re-encoded): the same version, and no defaults to apply on read.
pub fn served_as_stored(info: &ResourceInfo, stored_api_version: &str) -> bool {
    stored_api_version == info.api_version()
        && !info.custom.as_ref().is_some_and(|c| c.defaults_on_read)
}

/// `obj` as `info`'s version serves it.
pub fn to_version(info: &ResourceInfo, mut obj: Value) -> Value {
    if let Some(schema) = info
        .custom
        .as_ref()
        .filter(|c| c.defaults_on_read)
        .and_then(|c| c.schema.as_ref())
    {
        crate::schema::apply_defaults(schema, &mut obj);
    }
    let want = info.api_version();
    if obj["apiVersion"].as_str() == Some(want.as_str()) {
        return obj;
    }
    if info.kind == "HorizontalPodAutoscaler" && info.group == "autoscaling" {
        match (obj["apiVersion"].as_str(), want.as_str()) {
            (Some("autoscaling/v2"), "autoscaling/v1") => obj = hpa::to_v1(obj),
            (Some("autoscaling/v1"), "autoscaling/v2") => obj = hpa::to_v2(obj),
            _ => {}
        }
    }
    if info.kind == "Event" {
        let is_events_api = |v: &str| v == EVENTS_API;
        match obj["apiVersion"].as_str() {
            Some("v1") if is_events_api(&want) => rename(&mut obj, false),
            Some(EVENTS_API) if want == "v1" => rename(&mut obj, true),
            _ => {}
        }
    }
    obj["apiVersion"] = json!(want);
    obj
}

/// The form in which field selectors are evaluated: an Event in its core/v1 shape, since
/// kube-apiserver matches Event field labels on its internal (core) object whichever API was
/// asked. Other objects are returned as they are.
pub fn for_field_selectors(mut obj: Value) -> Value {
    if obj["kind"] == "Event" && obj["apiVersion"] == EVENTS_API {
        rename(&mut obj, true);
    }
    obj
}

/// Field selector labels of `events.k8s.io/v1` Events, as kube-apiserver maps them onto the
/// core Event it matches (`regarding.name` is `involvedObject.name`).
pub const EVENTS_API_FIELD_LABELS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "type",
];

/// The core Event field label an `events.k8s.io` field selector label stands for.
pub fn core_event_field_label(label: &str) -> String {
    match label.strip_prefix("regarding.") {
        Some(rest) => format!("involvedObject.{rest}"),
        None if label == "reportingController" => "reportingComponent".to_string(),
        None => label.to_string(),
    }
}

/// Renames an Event's fields: to the core names when `to_core`, to the `events.k8s.io` names
/// otherwise.
fn rename(obj: &mut Value, to_core: bool) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let mut renamed = Map::with_capacity(map.len());
    for (key, value) in std::mem::take(map) {
        let new_key = EVENT_FIELDS
            .iter()
            .find_map(|&(core, events)| match to_core {
                true => (key == events).then_some(core),
                false => (key == core).then_some(events),
            })
            .map_or(key, str::to_string);
        renamed.insert(new_key, value);
    }
    *map = renamed;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    #[test]
    fn events_read_through_the_other_api_get_its_field_names() {
        let registry = Registry::default();
        let events_api = registry
            .get("events.k8s.io", "v1", "events")
            .expect("events.k8s.io");
        let core = registry.get("", "v1", "events").expect("core events");
        let written = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "pulled", "reason": "Pulled",
            "count": 2, "reportingComponent": "kubelet"});
        let read = to_version(&events_api, written.clone());
        assert_eq!(read["apiVersion"], "events.k8s.io/v1");
        assert_eq!(read["regarding"]["name"], "p");
        assert_eq!(read["note"], "pulled");
        assert_eq!(read["deprecatedCount"], 2);
        assert_eq!(read["reportingController"], "kubelet");
        assert_eq!(read["reason"], "Pulled");
        assert!(read.get("message").is_none() && read.get("involvedObject").is_none());
        assert_eq!(to_version(&core, read.clone()), written);
        let selectable = for_field_selectors(read);
        assert_eq!(selectable["involvedObject"]["name"], "p");
        assert_eq!(selectable["reportingComponent"], "kubelet");
    }
}
