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
                if self.event_labels {
                    f.matches(|label| {
                        field_value(&v, &crate::convert::core_event_field_label(label))
                    })
                } else {
                    f.matches(|path| field_value(&v, path))
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
