//! Schema defaults applied as the apiserver's `structuraldefaulting.Default` does.

use super::prune::prune_at;
use serde_json::Value;

/// Applies `default`s: a field missing from an object that exists (or a non-nullable `null`) gets
/// its schema default, then defaulting descends into every field, so defaults nested in a
/// defaulted object apply too. Objects are never created just to hold a nested default, and
/// a `null` in a `nullable` field stays `null`. Defaults are pruned against their schema first.
pub fn apply_defaults(schema: &Value, obj: &mut Value) {
    default_value(schema, obj);
}

fn default_of(s: &Value) -> Option<Value> {
    let d = s.get("default").filter(|d| !d.is_null())?;
    let mut d = d.clone();
    prune_at(s, &mut d);
    Some(d)
}

fn nullable(s: &Value) -> bool {
    s.get("nullable").and_then(Value::as_bool).unwrap_or(false)
}

pub(crate) fn default_value(s: &Value, x: &mut Value) {
    match x {
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            for (k, prop) in props.into_iter().flatten() {
                let missing = match m.get(k) {
                    None => true,
                    Some(v) => v.is_null() && !nullable(prop),
                };
                if missing && let Some(d) = default_of(prop) {
                    m.insert(k.clone(), d);
                }
            }
            let additional = s.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in m.iter_mut() {
                if let Some(prop) = props.and_then(|p| p.get(k)) {
                    default_value(prop, v);
                } else if let Some(a) = additional {
                    if v.is_null()
                        && !nullable(a)
                        && let Some(d) = default_of(a)
                    {
                        *v = d;
                    }
                    default_value(a, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                for v in items {
                    if v.is_null()
                        && !nullable(item_schema)
                        && let Some(d) = default_of(item_schema)
                    {
                        *v = d;
                    }
                    default_value(item_schema, v);
                }
            }
        }
        _ => {}
    }
}
