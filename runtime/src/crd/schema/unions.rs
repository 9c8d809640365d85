//! Unions: how the `oneOf` / `anyOf` schemars derives for enums become one structural schema.
//! Unit-variant enums become an `enum` of their values; struct variants (tagged, adjacently
//! tagged, untagged) become one object whose properties are the variants' merged, with the tag
//! an `enum`; unions of scalars become the common type or `x-kubernetes-int-or-string`. Called by
//! [`super::structural`]'s normalisation for every node with branches.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::{INT_OR_STRING, PRESERVE, copy_annotations, preserve};

/// Turns the `oneOf` (serde's tagged enums) or `anyOf` (untagged enums) of an enum into a
/// structural schema: string enums become one `enum`; object variants are hoisted (see
/// [`hoist_object_variants`]); scalars of one type become that type (`integer` and `number` make a
/// `number`, `integer` and `string` an int-or-string); anything else (strings mixed with objects,
/// scalars mixed with arrays) keeps unknown fields, as no structural schema describes it.
pub(super) fn hoist_enum(m: &mut Map<String, Value>, branches: Vec<Value>, exclusive: bool) {
    let kinds: Vec<&str> = branches.iter().map(branch_kind).collect();
    if kinds.iter().all(|k| *k == "string-enum") {
        let mut values = Vec::new();
        for b in &branches {
            for v in b["enum"].as_array().into_iter().flatten() {
                if !values.contains(v) {
                    values.push(v.clone());
                }
            }
        }
        m.insert("type".into(), "string".into());
        m.insert("enum".into(), Value::Array(values));
        return;
    }
    if kinds.iter().all(|k| *k == "object") {
        hoist_object_variants(m, branches, exclusive);
        return;
    }
    m.remove("type");
    match scalar_union(&branches) {
        Some(Value::Object(union)) => m.extend(union),
        _ => {
            m.insert(PRESERVE.into(), true.into());
        }
    }
}

/// The one structural schema of several scalar schemas, if there is one: their common type
/// (enums dropped unless all agree), `number` for integers and numbers, int-or-string for integers
/// and strings.
fn scalar_union(schemas: &[Value]) -> Option<Value> {
    if !schemas
        .iter()
        .all(|s| matches!(branch_kind(s), "scalar" | "string-enum"))
    {
        return None;
    }
    let types: BTreeSet<&str> = schemas
        .iter()
        .filter_map(|s| s.get("type").and_then(Value::as_str))
        .collect();
    let types: Vec<&str> = types.into_iter().collect();
    match types[..] {
        [t] => Some(json!({ "type": t })),
        ["integer", "number"] => Some(json!({ "type": "number" })),
        ["integer", "string"] => Some(json!({ INT_OR_STRING: true })),
        _ => None,
    }
}

/// Object variants (tagged enums, untagged enums of structs). Every variant's properties go in the
/// parent, so nothing a variant carries is pruned; what tells the variants apart stays in the
/// `oneOf` / `anyOf` branches, which may not carry types: each variant's `required`, the tag's
/// value, and the `required` of an object several variants carry under one name with different
/// fields (an adjacently tagged enum's content). A name whose variants disagree otherwise (a string
/// in one, an object in another) keeps unknown fields.
fn hoist_object_variants(m: &mut Map<String, Value>, branches: Vec<Value>, exclusive: bool) {
    let variants: Vec<Map<String, Value>> = branches
        .into_iter()
        .filter_map(|b| match b {
            Value::Object(b) => Some(b),
            _ => None,
        })
        .collect();
    let mut props = match m.remove("properties") {
        Some(Value::Object(p)) => p,
        _ => Map::new(),
    };
    let by_name = properties_by_name(variants.iter().map(|v| v.get("properties")));
    let mut merged_objects = BTreeSet::new();
    for (name, schemas) in &by_name {
        let (schema, merged) = merge_variant_schemas(schemas);
        if merged {
            merged_objects.insert(name.clone());
        }
        props.insert(name.clone(), schema);
    }
    let mut out_branches = Vec::new();
    for v in variants {
        let mut branch = Map::new();
        let mut constraints = Map::new();
        for (name, schema) in v
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if exclusive
                && let Some(Value::Array(vals)) = schema.get("enum")
                && vals.len() == 1
            {
                constraints.insert(name.clone(), json!({ "enum": vals }));
            }
            if merged_objects.contains(name)
                && let Some(Value::Array(req)) = schema.get("required")
                && !req.is_empty()
            {
                constraints.insert(name.clone(), json!({ "required": req }));
            }
        }
        if let Some(req) = v.get("required") {
            branch.insert("required".into(), req.clone());
        }
        if !constraints.is_empty() {
            branch.insert("properties".into(), Value::Object(constraints));
        }
        out_branches.push(Value::Object(branch));
    }
    m.insert("type".into(), "object".into());
    m.insert("properties".into(), Value::Object(props));
    let informative = out_branches
        .iter()
        .any(|b| b.as_object().is_some_and(|b| !b.is_empty()));
    if informative && out_branches.len() > 1 {
        m.insert(
            if exclusive { "oneOf" } else { "anyOf" }.into(),
            Value::Array(out_branches),
        );
    }
}

/// The parent's schema for a property several variants carry, and whether it merged objects of
/// different fields (whose `required` then belongs in each variant's branch). Same shapes keep
/// their schema (tag values widened into one enum); objects keep every field of every variant,
/// requiring only what all of them require; scalars take [`scalar_union`]; anything else keeps
/// unknown fields.
fn merge_variant_schemas(schemas: &[Value]) -> (Value, bool) {
    let first = &schemas[0];
    if schemas.iter().all(|s| same_shape(first, s)) {
        let merged = schemas[1..]
            .iter()
            .fold(first.clone(), |acc, s| union_enums(&acc, s));
        return (merged, false);
    }
    if schemas
        .iter()
        .all(|s| branch_kind(s) == "object" && s.get("oneOf").is_none() && s.get("anyOf").is_none())
    {
        return (merge_objects(schemas), true);
    }
    let mut out = scalar_union(schemas).unwrap_or_else(preserve);
    if let Some(Value::Object(f)) = Some(first) {
        copy_annotations(f, &mut out);
    }
    (out, false)
}

/// Each property name of several `properties` maps, with its schema in every map that has it, in
/// first-seen order.
fn properties_by_name<'a>(
    maps: impl Iterator<Item = Option<&'a Value>>,
) -> Vec<(String, Vec<Value>)> {
    let mut by_name: Vec<(String, Vec<Value>)> = Vec::new();
    for (name, schema) in maps.flatten().filter_map(Value::as_object).flatten() {
        match by_name.iter_mut().find(|(n, _)| n == name) {
            Some((_, schemas)) => schemas.push(schema.clone()),
            None => by_name.push((name.clone(), vec![schema.clone()])),
        }
    }
    by_name
}

/// One object schema with every property of `schemas` (each merged as the variants' are), and the
/// `required` fields all of them share.
fn merge_objects(schemas: &[Value]) -> Value {
    let mut out = schemas[0].as_object().cloned().unwrap_or_default();
    let by_name = properties_by_name(schemas.iter().map(|s| s.get("properties")));
    let props: Map<String, Value> = by_name
        .iter()
        .map(|(name, ps)| (name.clone(), merge_variant_schemas(ps).0))
        .collect();
    let required: Vec<Value> = schemas[0]
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| {
            schemas.iter().all(|s| {
                s.get("required")
                    .and_then(Value::as_array)
                    .is_some_and(|req| req.contains(r))
            })
        })
        .cloned()
        .collect();
    out.insert("properties".into(), Value::Object(props));
    out.remove("required");
    if !required.is_empty() {
        out.insert("required".into(), Value::Array(required));
    }
    if schemas
        .iter()
        .any(|s| s.get("nullable") == Some(&Value::Bool(true)))
    {
        out.insert("nullable".into(), true.into());
    }
    Value::Object(out)
}

fn branch_kind(b: &Value) -> &'static str {
    match b.get("type").and_then(Value::as_str) {
        Some("string") if b.get("enum").is_some() => "string-enum",
        Some("object") => "object",
        Some(_) => "scalar",
        None if b.get("properties").is_some() => "object",
        None => "other",
    }
}

fn same_shape(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Value::Object(m) = &mut v {
            m.remove("enum");
            m.remove("description");
        }
        v
    };
    strip(a) == strip(b)
}

fn union_enums(a: &Value, b: &Value) -> Value {
    let mut out = a.clone();
    if let (Some(Value::Array(ea)), Some(Value::Array(eb))) = (a.get("enum"), b.get("enum")) {
        let mut all = ea.clone();
        for v in eb {
            if !all.contains(v) {
                all.push(v.clone());
            }
        }
        out["enum"] = Value::Array(all);
    } else if let Value::Object(o) = &mut out {
        o.remove("enum");
    }
    out
}
