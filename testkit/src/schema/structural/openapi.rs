//! Pass one of [`check_structural_at`](super::check_structural_at):
//! `ValidateCustomResourceDefinitionOpenAPISchema`, walking every subschema (including those
//! inside `allOf`/`anyOf`/`oneOf`/`not`, `definitions` and `dependencies`) for keywords a CRD
//! schema may not use, defaults where they are forbidden, list and map types, and, through the
//! sibling `cel` and `pattern` modules, the shape of CEL rules and Go-compatible patterns.

use super::{cel, pattern};
use super::{flag, has_default, key, nonempty_array, nonempty_object, props, str_of};
use crate::names::go_quote;
use crate::schema::FieldError;
use crate::schema::go::go_value;
use serde_json::Value;

/// Runs the pass from the schema's root, appending to `errs`.
pub(super) fn check(schema: &Value, root: &str, errs: &mut Vec<FieldError>) {
    openapi_checks(
        schema,
        root,
        &Ctx {
            is_root: true,
            inside_meta: false,
            defaults_forbidden: None,
        },
        errs,
    );
}

/// A `[]string` bad value, which apimachinery renders as JSON.
fn go_string_slice(values: &[&str]) -> String {
    serde_json::to_string(values).unwrap_or_default()
}

#[derive(Clone)]
struct Ctx {
    is_root: bool,
    inside_meta: bool,
    defaults_forbidden: Option<String>,
}

impl Ctx {
    fn nested(&self) -> Ctx {
        Ctx {
            is_root: false,
            ..self.clone()
        }
    }
}

const OPENAPI_V3_TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];

/// `ValidateCustomResourceDefinitionOpenAPISchema` with the structural spec-standard validator.
fn openapi_checks(s: &Value, path: &str, ctx: &Ctx, errs: &mut Vec<FieldError>) {
    if !s.is_object() {
        return;
    }
    standard(s, path, ctx, errs);

    if flag(s, "uniqueItems") {
        errs.push(FieldError::forbidden(
            &format!("{path}.uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    if let Some(ap) = s.get("additionalProperties").filter(|a| !a.is_null()) {
        if nonempty_object(s, "properties") && (ap.is_object() || ap == &Value::Bool(false)) {
            errs.push(FieldError::forbidden(
                &format!("{path}.additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        let mut sub = ctx.nested();
        if ctx.inside_meta {
            sub.defaults_forbidden =
                Some("inside additionalProperties applying to object metadata".to_string());
        }
        openapi_checks(ap, &format!("{path}.additionalProperties"), &sub, errs);
    }
    for (k, p) in props(s).into_iter().flatten() {
        let mut sub = ctx.nested();
        if (ctx.is_root || flag(s, "x-kubernetes-embedded-resource"))
            && matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
        {
            sub.inside_meta = true;
            if ctx.is_root {
                sub.defaults_forbidden = Some(format!("in top-level {k}"));
            }
        }
        openapi_checks(p, &key(path, "properties", k), &sub, errs);
    }
    if let Some(not) = s.get("not") {
        openapi_checks(not, &format!("{path}.not"), &ctx.nested(), errs);
    }
    for word in ["allOf", "oneOf", "anyOf"] {
        for (i, sub) in s
            .get(word)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            openapi_checks(sub, &format!("{path}.{word}[{i}]"), &ctx.nested(), errs);
        }
    }
    for (k, d) in s
        .get("definitions")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        openapi_checks(d, &key(path, "definitions", k), &ctx.nested(), errs);
    }
    match s.get("items") {
        Some(items @ Value::Object(_)) => {
            openapi_checks(items, &format!("{path}.items"), &ctx.nested(), errs)
        }
        Some(Value::Array(list)) => {
            for (i, items) in list.iter().enumerate() {
                openapi_checks(items, &format!("{path}.items[{i}]"), &ctx.nested(), errs);
            }
        }
        _ => {}
    }
    for (k, d) in s
        .get("dependencies")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        openapi_checks(d, &key(path, "dependencies", k), &ctx.nested(), errs);
    }
    if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        errs.push(FieldError::invalid(
            &format!("{path}.x-kubernetes-preserve-unknown-fields"),
            "false",
            "must be true or undefined",
        ));
    }
    list_and_map_types(s, path, errs);
    cel::cel_rules(s, path, errs);
    pattern::check(s, path, errs);
}

/// `specStandardValidatorV3.validate`: keywords a CRD schema may not use.
fn standard(s: &Value, path: &str, ctx: &Ctx, errs: &mut Vec<FieldError>) {
    let forbid = |errs: &mut Vec<FieldError>, child: &str, detail: &str| {
        errs.push(FieldError::forbidden(&format!("{path}.{child}"), detail));
    };
    match s.get("type") {
        Some(Value::String(t)) if !t.is_empty() && !OPENAPI_V3_TYPES.contains(&t.as_str()) => {
            let valid: Vec<String> = OPENAPI_V3_TYPES.iter().map(|t| t.to_string()).collect();
            errs.push(FieldError::not_supported(
                &format!("{path}.type"),
                &go_quote(t),
                &valid,
            ));
        }
        Some(Value::String(_)) | None => {}
        Some(other) => errs.push(FieldError::invalid(
            &format!("{path}.type"),
            &go_value(other),
            "must be a string (one type; use nullable for null and x-kubernetes-int-or-string for int-or-string)",
        )),
    }
    if has_default(s)
        && let Some(reason) = &ctx.defaults_forbidden
    {
        forbid(errs, "default", &format!("must not be set {reason}"));
    }
    if str_of(s, "id").is_some_and(|id| !id.is_empty()) {
        forbid(errs, "id", "id is not supported");
    }
    if s.get("additionalItems").is_some_and(|v| !v.is_null()) {
        forbid(errs, "additionalItems", "additionalItems is not supported");
    }
    if nonempty_object(s, "patternProperties") {
        forbid(
            errs,
            "patternProperties",
            "patternProperties is not supported",
        );
    }
    if nonempty_object(s, "definitions") {
        forbid(errs, "definitions", "definitions is not supported");
    }
    if s.get("dependencies").is_some_and(|v| !v.is_null()) {
        forbid(errs, "dependencies", "dependencies is not supported");
    }
    if s.get("$ref").is_some_and(|v| !v.is_null()) {
        forbid(errs, "$ref", "$ref is not supported");
    }
    if str_of(s, "type") == Some("null") {
        forbid(
            errs,
            "type",
            "type cannot be set to null, use nullable as an alternative",
        );
    }
    if nonempty_array(s, "items") {
        forbid(
            errs,
            "items",
            "items must be a schema object and not an array",
        );
    }
    if ctx.inside_meta && flag(s, "x-kubernetes-embedded-resource") {
        forbid(
            errs,
            "x-kubernetes-embedded-resource",
            "must not be used inside of resource meta",
        );
    }
}

fn list_and_map_types(s: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let ty = str_of(s, "type").unwrap_or("");
    let map_type = s.get("x-kubernetes-map-type").filter(|v| !v.is_null());
    let list_type = s.get("x-kubernetes-list-type").filter(|v| !v.is_null());
    let type_path = format!("{path}.type");
    let wrong_type = |errs: &mut Vec<FieldError>, detail: &str| {
        if ty.is_empty() {
            errs.push(FieldError::required(&type_path, detail));
        } else {
            errs.push(FieldError::invalid(&type_path, &go_quote(ty), detail));
        }
    };
    if let Some(mt) = map_type {
        if ty != "object" {
            wrong_type(errs, "must be object if x-kubernetes-map-type is specified");
        }
        if !matches!(mt.as_str(), Some("atomic" | "granular")) {
            errs.push(FieldError::not_supported(
                &format!("{path}.x-kubernetes-map-type"),
                &go_value(mt),
                &["atomic".to_string(), "granular".to_string()],
            ));
        }
    }
    let items = s.get("items").filter(|i| i.is_object());
    if list_type.is_some() && ty != "array" {
        wrong_type(errs, "must be array if x-kubernetes-list-type is specified");
    } else if list_type.and_then(Value::as_str) == Some("set")
        && let Some(items) = items
    {
        let detail = "must be atomic as item of a list with x-kubernetes-list-type=set";
        match str_of(items, "type") {
            Some("array") => {
                if let Some(lt) = str_of(items, "x-kubernetes-list-type")
                    && lt != "atomic"
                {
                    errs.push(FieldError::invalid(
                        &format!("{path}.items.x-kubernetes-list-type"),
                        &go_quote(lt),
                        detail,
                    ));
                }
            }
            Some("object") if str_of(items, "x-kubernetes-map-type") != Some("atomic") => {
                let shown = items
                    .get("x-kubernetes-map-type")
                    .map_or_else(|| "null".to_string(), go_value);
                errs.push(FieldError::invalid(
                    &format!("{path}.items.x-kubernetes-map-type"),
                    &shown,
                    detail,
                ));
            }
            _ => {}
        }
    }
    if let Some(lt) = list_type
        && !matches!(lt.as_str(), Some("atomic" | "set" | "map"))
    {
        errs.push(FieldError::not_supported(
            &format!("{path}.x-kubernetes-list-type"),
            &go_value(lt),
            &["atomic".to_string(), "set".to_string(), "map".to_string()],
        ));
    }
    let keys: Vec<&str> = s
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|k| k.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let keys_path = format!("{path}.x-kubernetes-list-map-keys");
    if !keys.is_empty() {
        let detail = "must be map if x-kubernetes-list-map-keys is non-empty";
        match list_type {
            None => errs.push(FieldError::required(
                &format!("{path}.x-kubernetes-list-type"),
                detail,
            )),
            Some(lt) if lt.as_str() != Some("map") => errs.push(FieldError::invalid(
                &format!("{path}.x-kubernetes-list-type"),
                &go_value(lt),
                detail,
            )),
            _ => {}
        }
    }
    if list_type.and_then(Value::as_str) != Some("map") {
        return;
    }
    if keys.is_empty() {
        errs.push(FieldError::required(
            &keys_path,
            "must not be empty if x-kubernetes-list-type is map",
        ));
    }
    match s.get("items") {
        None | Some(Value::Null) => errs.push(FieldError::required(
            &format!("{path}.items"),
            "must have a schema if x-kubernetes-list-type is map",
        )),
        Some(v @ Value::Array(_)) => errs.push(FieldError::invalid(
            &format!("{path}.items"),
            &go_value(v),
            "must only have a single schema if x-kubernetes-list-type is map",
        )),
        Some(items) => list_map_keys(items, &keys, path, &keys_path, errs),
    }
}

/// The item schema of a list-type `map`: an object whose key properties are scalars that are
/// required or defaulted, each named once.
fn list_map_keys(
    items: &Value,
    keys: &[&str],
    path: &str,
    keys_path: &str,
    errs: &mut Vec<FieldError>,
) {
    let item_type = str_of(items, "type").unwrap_or("");
    if item_type != "object" {
        errs.push(FieldError::invalid(
            &format!("{path}.items.type"),
            &go_quote(item_type),
            "must be object if parent array's x-kubernetes-list-type is map",
        ));
        return;
    }
    let required: Vec<&str> = items
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut seen = Vec::new();
    for k in keys {
        match props(items).and_then(|p| p.get(*k)) {
            Some(p) => {
                if matches!(str_of(p, "type"), Some("array" | "object")) {
                    errs.push(FieldError::invalid(
                        &format!("{path}.items.properties[{k}].type"),
                        &go_quote(item_type),
                        "must be a scalar type if parent array's x-kubernetes-list-type is map",
                    ));
                }
                if !required.contains(k) && !has_default(p) {
                    errs.push(FieldError::required(
                        &format!("{path}.items.properties[{k}].default"),
                        "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                    ));
                }
            }
            None => errs.push(FieldError::invalid(
                keys_path,
                &go_string_slice(keys),
                "entries must all be names of item properties",
            )),
        }
        if seen.contains(k) {
            errs.push(FieldError::invalid(
                keys_path,
                &go_string_slice(keys),
                "must not contain duplicate entries",
            ));
        }
        seen.push(*k);
    }
}
