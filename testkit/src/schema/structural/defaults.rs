//! Pass three of [`check_structural_at`](super::check_structural_at), run only when the schema
//! is structural: `ValidateDefaults`, every `default` must validate against its own schema and
//! survive pruning unchanged (inside resource metadata, validate as metadata).

use super::{flag, key, props};
use crate::schema::FieldError;
use crate::schema::go::go_value;
use crate::schema::prune::prune_at;
use crate::schema::validate::validate_at;
use serde_json::Value;

/// Runs the pass from the schema's root, appending to `errs`.
pub(super) fn check(schema: &Value, root: &str, errs: &mut Vec<FieldError>) {
    defaults(schema, root, true, false, errs);
}

/// `ValidateDefaults`: each default validates against its
/// schema and survives pruning unchanged. `additionalProperties` are not followed, as upstream.
fn defaults(
    s: &Value,
    path: &str,
    is_resource_root: bool,
    inside_meta: bool,
    errs: &mut Vec<FieldError>,
) {
    if !s.is_object() {
        return;
    }
    if let Some(d) = s.get("default").filter(|d| !d.is_null()) {
        let default_path = format!("{path}.default");
        // Validated as written: nested defaults are not applied first (a `default: {}` on an
        // object with required fields is rejected by the apiserver too).
        let value_errs = validate_at(s, d, &default_path);
        if value_errs.is_empty() {
            // Inside metadata the apiserver checks defaults against ObjectMeta, not the schema.
            let mut pruned = d.clone();
            prune_at(s, &mut pruned);
            if !inside_meta && &pruned != d {
                errs.push(FieldError::invalid(
                    &default_path,
                    &go_value(d),
                    "must not have unknown fields",
                ));
            }
        } else if inside_meta {
            let joined: Vec<String> = value_errs.iter().map(ToString::to_string).collect();
            errs.push(FieldError::invalid(
                &default_path,
                &go_value(d),
                &format!("must result in valid metadata: {}", joined.join(", ")),
            ));
        } else {
            errs.extend(value_errs);
        }
    }
    if let Some(items) = s.get("items").filter(|i| i.is_object()) {
        defaults(items, &format!("{path}.items"), false, inside_meta, errs);
    }
    let embedded = flag(s, "x-kubernetes-embedded-resource");
    for (k, p) in props(s).into_iter().flatten() {
        let meta = inside_meta
            || ((is_resource_root || embedded)
                && matches!(k.as_str(), "apiVersion" | "kind" | "metadata"));
        defaults(p, &key(path, "properties", k), false, meta, errs);
    }
}
