//! Pass two of [`check_structural_at`](super::check_structural_at): `ValidateStructural`, the
//! structural invariants (every node specifies its type, value validations inside
//! `allOf`/`anyOf`/`oneOf`/`not` carry no structure, `metadata` and embedded resources are
//! shaped right) and the completeness of the root's value validations. The caller sorts these
//! errors by message, as the apiserver does.

use super::{flag, has_default, key, nonempty_array, nonempty_object, props, str_of};
use crate::names::go_quote;
use crate::schema::FieldError;
use serde_json::{Map, Value};

/// Runs the pass from the schema's root, appending to `errs`.
pub(super) fn check(schema: &Value, root: &str, errs: &mut Vec<FieldError>) {
    invariants(schema, Level::Root, root, errs);
    completeness(schema, root, errs);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

/// The `x-kubernetes-int-or-string` anyOf shape that is exempt from the nested-type rule.
fn is_int_or_string_any_of(s: &Value) -> bool {
    let Some(any_of) = s.get("anyOf").and_then(Value::as_array) else {
        return false;
    };
    any_of.len() == 2
        && any_of.iter().zip(["integer", "string"]).all(|(a, t)| {
            a.as_object().is_some_and(|m| m.len() == 1) && str_of(a, "type") == Some(t)
        })
}

/// `validateStructuralInvariants`.
fn invariants(s: &Value, lvl: Level, path: &str, errs: &mut Vec<FieldError>) {
    if !s.is_object() {
        return;
    }
    let ty = str_of(s, "type").unwrap_or("");
    let embedded = flag(s, "x-kubernetes-embedded-resource");
    let int_or_string = flag(s, "x-kubernetes-int-or-string");
    let preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
    let items = s.get("items").filter(|i| i.is_object());
    let additional = s.get("additionalProperties").filter(|a| !a.is_null());

    if ty == "array" && items.is_none() && !nonempty_array(s, "items") {
        errs.push(FieldError::required(
            &format!("{path}.items"),
            "must be specified",
        ));
    }
    if let Some(items) = items {
        invariants(items, Level::Item, &format!("{path}.items"), errs);
    }
    for (k, p) in props(s).into_iter().flatten() {
        invariants(p, Level::Field, &key(path, "properties", k), errs);
    }
    if let Some(ap) = additional {
        if lvl == Level::Root {
            errs.push(FieldError::forbidden(
                &format!("{path}.additionalProperties"),
                "must not be used at the root",
            ));
        }
        if ap.is_object() {
            invariants(
                ap,
                Level::Field,
                &format!("{path}.additionalProperties"),
                errs,
            );
        }
    }
    if int_or_string && preserve {
        errs.push(FieldError::invalid(
            &format!("{path}.x-kubernetes-preserve-unknown-fields"),
            "true",
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string && embedded {
        errs.push(FieldError::invalid(
            &format!("{path}.x-kubernetes-embedded-resource"),
            "true",
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    // The apiserver exempts the anyOf shape itself, with or without x-kubernetes-int-or-string.
    let skip_any_of = is_int_or_string_any_of(s);
    let skip_first_all_of_any_of = s
        .get("allOf")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .is_some_and(is_int_or_string_any_of);
    value_validation(s, skip_any_of, skip_first_all_of_any_of, lvl, path, errs);

    let type_path = format!("{path}.type");
    if embedded && ty != "object" {
        let detail = "must be object if x-kubernetes-embedded-resource is true";
        if ty.is_empty() {
            errs.push(FieldError::required(&type_path, detail));
        } else {
            errs.push(FieldError::invalid(&type_path, &go_quote(ty), detail));
        }
    } else if ty.is_empty() && !embedded && !int_or_string && !preserve {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(&type_path, detail));
    } else if embedded && additional.is_some() {
        errs.push(FieldError::forbidden(
            &format!("{path}.additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !ty.is_empty() && ty != "object" {
        errs.push(FieldError::invalid(
            &type_path,
            &go_quote(ty),
            "must be object at the root",
        ));
    }
    let check_metadata = lvl == Level::Root || embedded;
    if check_metadata {
        for field in ["kind", "apiVersion"] {
            if let Some(p) = props(s).and_then(|p| p.get(field)) {
                let t = str_of(p, "type").unwrap_or("");
                if t != "string" {
                    errs.push(FieldError::invalid(
                        &format!("{path}.properties[{field}].type"),
                        &go_quote(t),
                        "must be string",
                    ));
                }
            }
        }
    }
    if let Some(meta) = props(s).and_then(|p| p.get("metadata")) {
        metadata_invariants(
            meta,
            check_metadata,
            lvl,
            &key(path, "properties", "metadata"),
            errs,
        );
    }
    if embedded && !preserve && !nonempty_object(s, "properties") {
        errs.push(FieldError::required(
            &format!("{path}.properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// Keywords that make up a structural schema or its value validation: at the root, `metadata`
/// may carry none of them except `type`, `default` and `properties` naming only `name` and
/// `generateName`.
const STRUCTURAL_KEYWORDS: &[&str] = &[
    "description",
    "title",
    "nullable",
    "items",
    "properties",
    "additionalProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
    "format",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
];

fn metadata_invariants(
    s: &Value,
    check_metadata: bool,
    lvl: Level,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let ty = str_of(s, "type").unwrap_or("");
    if check_metadata && ty != "object" {
        errs.push(FieldError::invalid(
            &format!("{path}.type"),
            &go_quote(ty),
            "must be object",
        ));
    }
    if lvl != Level::Root {
        return;
    }
    let only_names = |p: &Map<String, Value>| p.keys().all(|k| k == "name" || k == "generateName");
    let extra = s.as_object().into_iter().flatten().any(|(k, v)| {
        if k == "properties" {
            return !v.as_object().is_some_and(only_names);
        }
        STRUCTURAL_KEYWORDS.contains(&k.as_str()) && !v.is_null() && v != &Value::Bool(false)
    });
    if extra {
        errs.push(FieldError::forbidden(
            path,
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
}

fn value_validation(
    s: &Value,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    lvl: Level,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let list = |word: &str| -> Vec<&Value> {
        s.get(word)
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    };
    if !skip_any_of {
        for (i, v) in list("anyOf").into_iter().enumerate() {
            nested(v, false, false, lvl, &format!("{path}.anyOf[{i}]"), errs);
        }
    }
    for (i, v) in list("allOf").into_iter().enumerate() {
        let skip = skip_first_all_of_any_of && i == 0;
        nested(v, skip, false, lvl, &format!("{path}.allOf[{i}]"), errs);
    }
    for (i, v) in list("oneOf").into_iter().enumerate() {
        nested(v, false, false, lvl, &format!("{path}.oneOf[{i}]"), errs);
    }
    if let Some(not) = s.get("not") {
        nested(not, false, false, lvl, &format!("{path}.not"), errs);
    }
}

/// `validateNestedValueValidation`: inside `allOf`/`anyOf`/`oneOf`/`not` only value validations.
fn nested(
    v: &Value,
    skip_any_of: bool,
    skip_all_of_any_of: bool,
    lvl: Level,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if !v.is_object() {
        return;
    }
    value_validation(v, skip_any_of, skip_all_of_any_of, lvl, path, errs);
    if let Some(items) = v.get("items").filter(|i| i.is_object()) {
        nested(items, false, false, lvl, &format!("{path}.items"), errs);
    }
    for (k, p) in props(v).into_iter().flatten() {
        nested(
            p,
            false,
            false,
            Level::Field,
            &key(path, "properties", k),
            errs,
        );
    }
    let forbid = |errs: &mut Vec<FieldError>, child: &str, detail: &str| {
        errs.push(FieldError::forbidden(&format!("{path}.{child}"), detail));
    };
    if str_of(v, "type").is_some_and(|t| !t.is_empty()) {
        forbid(errs, "type", "must be empty to be structural");
    }
    if v.get("additionalProperties").is_some_and(|a| !a.is_null()) {
        forbid(
            errs,
            "additionalProperties",
            "must be undefined to be structural",
        );
    }
    if has_default(v) {
        forbid(errs, "default", "must be undefined to be structural");
    }
    if str_of(v, "title").is_some_and(|t| !t.is_empty()) {
        forbid(errs, "title", "must be empty to be structural");
    }
    if str_of(v, "description").is_some_and(|t| !t.is_empty()) {
        forbid(errs, "description", "must be empty to be structural");
    }
    if flag(v, "nullable") {
        forbid(errs, "nullable", "must be false to be structural");
    }
    if v.get("x-kubernetes-preserve-unknown-fields")
        .is_some_and(|x| !x.is_null())
    {
        forbid(
            errs,
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        );
    }
    if flag(v, "x-kubernetes-embedded-resource") {
        forbid(
            errs,
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        );
    }
    if flag(v, "x-kubernetes-int-or-string") {
        forbid(
            errs,
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        );
    }
    if nonempty_array(v, "x-kubernetes-list-map-keys") {
        forbid(
            errs,
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        );
    }
    if v.get("x-kubernetes-list-type")
        .is_some_and(|x| !x.is_null())
    {
        forbid(
            errs,
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        );
    }
    if v.get("x-kubernetes-map-type").is_some_and(|x| !x.is_null()) {
        forbid(
            errs,
            "x-kubernetes-map-type",
            "must be undefined to be structural",
        );
    }
    if nonempty_array(v, "x-kubernetes-validations") {
        forbid(
            errs,
            "x-kubernetes-validations",
            "must be empty to be structural",
        );
    }
    if lvl == Level::Root && props(v).is_some_and(|p| p.contains_key("metadata")) {
        errs.push(FieldError::forbidden(
            &key(path, "properties", "metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// The root's value validations may only name fields and items the structure itself specifies
/// (`validateStructuralCompleteness`; like the apiserver, value validations of nested nodes are
/// not checked for completeness).
fn completeness(s: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if !s.is_object() {
        return;
    }
    value_validation_completeness(s, Some(s), path, path, errs);
}

fn value_validation_completeness(
    v: &Value,
    s: Option<&Value>,
    s_path: &str,
    v_path: &str,
    errs: &mut Vec<FieldError>,
) {
    if let Some(not) = v.get("not").filter(|n| n.is_object()) {
        nested_completeness(not, s, s_path, &format!("{v_path}.not"), errs);
    }
    for word in ["allOf", "anyOf", "oneOf"] {
        for (i, sub) in v
            .get(word)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            nested_completeness(sub, s, s_path, &format!("{v_path}.{word}[{i}]"), errs);
        }
    }
}

fn nested_completeness(
    v: &Value,
    s: Option<&Value>,
    s_path: &str,
    v_path: &str,
    errs: &mut Vec<FieldError>,
) {
    if !v.is_object() {
        return;
    }
    value_validation_completeness(v, s, s_path, v_path, errs);
    let s_items = s.and_then(|s| s.get("items")).filter(|i| i.is_object());
    if let Some(v_items) = v.get("items").filter(|i| i.is_object()) {
        if s_items.is_none() {
            errs.push(FieldError::required(
                &format!("{s_path}.items"),
                &format!("because it is defined in {v_path}.items"),
            ));
        }
        nested_completeness(
            v_items,
            s_items,
            &format!("{s_path}.items"),
            &format!("{v_path}.items"),
            errs,
        );
    }
    for (k, v_field) in props(v).into_iter().flatten() {
        let v_field_path = key(v_path, "properties", k);
        match s.and_then(props).and_then(|p| p.get(k)) {
            Some(s_field) => nested_completeness(
                v_field,
                Some(s_field),
                &key(s_path, "properties", k),
                &v_field_path,
                errs,
            ),
            None => match s
                .and_then(|s| s.get("additionalProperties"))
                .filter(|a| a.is_object())
            {
                Some(ap) => nested_completeness(
                    v_field,
                    Some(ap),
                    &format!("{s_path}.additionalProperties"),
                    &v_field_path,
                    errs,
                ),
                None => errs.push(FieldError::required(
                    &key(s_path, "properties", k),
                    &format!("because it is defined in {v_field_path}"),
                )),
            },
        }
    }
}
