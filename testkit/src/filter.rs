//! Label and field selectors of list and watch requests, checked against what each kind supports.

use serde_json::Value;

use crate::query::Query;
use crate::resources::ResourceInfo;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult};
use crate::store::Stored;

/// The selectors of one request; `None` selects everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
    /// `events.k8s.io` field labels (`regarding.name`) stand for core Event fields.
    event_labels: bool,
    /// What a selectable field of a built-in kind reads as when the object leaves it unset
    /// (`spec.unschedulable` → "false"), as the real server's typed field sets have it.
    unset: Vec<(String, &'static str)>,
}

/// The value of a dotted field path (`spec.nodeName`) as a field selector compares it.
pub fn field_value(obj: &Value, path: &str) -> Option<String> {
    let mut cur = obj;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The field a field label reads, where the two differ: a Job's `status.successful` is its
/// `status.succeeded`, a core Event's `source` its `source.component`.
fn label_path(label: &str) -> &str {
    match label {
        "status.successful" => "status.succeeded",
        "source" => "source.component",
        other => other,
    }
}

impl Filter {
    pub fn parse(info: &ResourceInfo, query: &Query) -> ApiResult<Filter> {
        let mut f = Filter {
            event_labels: info.group == "events.k8s.io" && info.kind == "Event",
            ..Filter::default()
        };
        if let Some(s) = query.get("labelSelector") {
            let sel = LabelSelector::parse(s)
                .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
            if !sel.is_everything() {
                f.labels = Some(sel);
            }
        }
        if let Some(s) = query.get("fieldSelector") {
            let sel = FieldSelector::parse(s).map_err(|e| ApiError::bad_request(e.message))?;
            let mut known = vec!["metadata.name", "metadata.namespace"];
            known.extend(info.field_selectors.iter().map(String::as_str));
            // Kinds with their own field label conversion (Pods, Events, …) answer with
            // apimachinery's message; the generic store (ConfigMaps, custom resources) lists what
            // it knows.
            let checked = if info.custom.is_none() && !info.field_selectors.is_empty() {
                sel.check_supported(|field| known.contains(&field))
            } else {
                sel.check_known(&known)
            };
            checked.map_err(|e| ApiError::bad_request(e.message))?;
            if !sel.is_everything() {
                f.fields = Some(sel);
            }
            if info.custom.is_none() {
                let (api_version, kind) = if f.event_labels {
                    ("v1".to_string(), "Event")
                } else {
                    (info.api_version(), info.kind.as_str())
                };
                f.unset = info
                    .field_selectors
                    .iter()
                    .map(|field| {
                        label_path(&crate::convert::core_event_field_label(field)).to_string()
                    })
                    .filter_map(|path| {
                        let text = crate::protobuf::unset_field_text(&api_version, kind, &path)?;
                        Some((path, text))
                    })
                    .collect();
            }
        }
        Ok(f)
    }

    pub fn is_everything(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    pub fn matches(&self, obj: &Stored) -> bool {
        if let Some(l) = &self.labels
            && !l.matches(&obj.labels)
        {
            return false;
        }
        match &self.fields {
            None => true,
            Some(f) => {
                let v = crate::convert::for_field_selectors(obj.value());
                let value = |label: &str| {
                    let path = label_path(label);
                    field_value(&v, path).or_else(|| {
                        let unset = self.unset.iter().find(|(p, _)| p == path)?;
                        Some(unset.1.to_string())
                    })
                };
                if self.event_labels {
                    f.matches(|label| value(&crate::convert::core_event_field_label(label)))
                } else {
                    f.matches(value)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_values_are_read_by_dotted_path() {
        let pod =
            json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "hostNetwork": true}});
        assert_eq!(field_value(&pod, "spec.nodeName").as_deref(), Some("n1"));
        assert_eq!(
            field_value(&pod, "spec.hostNetwork").as_deref(),
            Some("true")
        );
        assert_eq!(field_value(&pod, "status.phase"), None);
    }
}
