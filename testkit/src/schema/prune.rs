//! Pruning of unknown fields (`pruning/algorithm.go`) and of nulls the schema does not allow
//! (`PruneNonNullableNullsWithoutDefaults`), as the apiserver does before defaulting.

use serde_json::{Map, Value};

/// Fields of `ObjectMeta`; everything else under an object's `metadata` is dropped, as decoding
/// into the Go struct drops it.
const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Removes from a custom object every field its schema does not specify, except below
/// `x-kubernetes-preserve-unknown-fields: true`. At the root and in embedded resources
/// (`x-kubernetes-embedded-resource`) `apiVersion`, `kind` and `metadata` are kept, and
/// `metadata` keeps exactly the `ObjectMeta` fields. Then a `null` in a field that is neither
/// `nullable` nor defaulted is removed, so a default (or nothing) takes its place.
pub fn prune(schema: &Value, obj: &mut Value) {
    prune_value(Some(schema), obj, true);
    drop_disallowed_nulls(Some(schema), obj);
}

/// Prunes a value below a (non-root) schema node, e.g. a default before it is applied.
pub(crate) fn prune_at(schema: &Value, value: &mut Value) {
    prune_value(Some(schema), value, false);
}

fn flag(s: &Value, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn is_meta_field(k: &str) -> bool {
    matches!(k, "apiVersion" | "kind" | "metadata")
}

/// `additionalProperties` as pruning sees it: absent, `true`/`false` (no schema), or a schema.
enum Additional<'a> {
    None,
    NoSchema,
    Schema(&'a Value),
}

fn additional(s: &Value) -> Additional<'_> {
    match s.get("additionalProperties") {
        None | Some(Value::Null) => Additional::None,
        Some(v) if v.is_object() => Additional::Schema(v),
        Some(_) => Additional::NoSchema,
    }
}

fn coerce_object_meta(meta: &mut Map<String, Value>) {
    meta.retain(|k, _| OBJECT_META_FIELDS.contains(&k.as_str()));
}

fn prune_value(s: Option<&Value>, x: &mut Value, is_root: bool) {
    let embedded = is_root || s.is_some_and(|s| flag(s, "x-kubernetes-embedded-resource"));
    if let Some(s) = s
        && flag(s, "x-kubernetes-preserve-unknown-fields")
    {
        skip_prune(s, x, embedded);
        return;
    }
    match x {
        Value::Object(m) => {
            let Some(s) = s else {
                m.clear();
                return;
            };
            let props = s.get("properties").and_then(Value::as_object);
            let additional = additional(s);
            m.retain(|k, v| {
                if embedded {
                    match (k.as_str(), &mut *v) {
                        ("apiVersion" | "kind", Value::String(_)) => return true,
                        ("metadata", Value::Object(meta)) => {
                            coerce_object_meta(meta);
                            return true;
                        }
                        _ => {}
                    }
                }
                if let Some(prop) = props.and_then(|p| p.get(k)) {
                    prune_value(Some(prop), v, false);
                    return true;
                }
                match additional {
                    Additional::Schema(a) => {
                        prune_value(Some(a), v, false);
                        true
                    }
                    Additional::NoSchema => {
                        prune_value(None, v, false);
                        true
                    }
                    Additional::None => false,
                }
            });
        }
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.get("items")).filter(|i| i.is_object());
            for item in items {
                prune_value(item_schema, item, false);
            }
        }
        _ => {}
    }
}

/// Below `x-kubernetes-preserve-unknown-fields`: unknown fields stay, known ones are pruned.
fn skip_prune(s: &Value, x: &mut Value, embedded: bool) {
    match x {
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            for (k, v) in m.iter_mut() {
                if embedded && is_meta_field(k) {
                    if let (true, Value::Object(meta)) = (k == "metadata", &mut *v) {
                        coerce_object_meta(meta);
                    }
                    continue;
                }
                if let Some(prop) = props.and_then(|p| p.get(k)) {
                    prune_value(Some(prop), v, false);
                } else {
                    match additional(s) {
                        Additional::Schema(a) => prune_value(Some(a), v, false),
                        Additional::NoSchema => prune_value(None, v, false),
                        Additional::None => {}
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                let embedded = flag(item_schema, "x-kubernetes-embedded-resource");
                for item in items {
                    skip_prune(item_schema, item, embedded);
                }
            }
        }
        _ => {}
    }
}

fn has_default(s: &Value) -> bool {
    s.get("default").is_some_and(|d| !d.is_null())
}

fn drop_disallowed_nulls(s: Option<&Value>, x: &mut Value) {
    let Some(s) = s else { return };
    match x {
        Value::Object(m) => {
            let props = s.get("properties").and_then(Value::as_object);
            let additional = s.get("additionalProperties").filter(|a| a.is_object());
            m.retain(|k, v| {
                let Some(field) = props.and_then(|p| p.get(k)).or(additional) else {
                    return true;
                };
                if v.is_null() {
                    return flag(field, "nullable") || has_default(field);
                }
                drop_disallowed_nulls(Some(field), v);
                true
            });
        }
        Value::Array(items) => {
            let item_schema = s.get("items").filter(|i| i.is_object());
            for item in items {
                drop_disallowed_nulls(item_schema, item);
            }
        }
        _ => {}
    }
}
