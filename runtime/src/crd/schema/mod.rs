//! Rewrites the JSON schema `schemars` derives into a Kubernetes *structural* schema.
//!
//! `schemars` emits JSON Schema 2020-12: `$ref`s into `$defs`, `type: [T, "null"]` and
//! `anyOf [T, null]` for `Option`, `oneOf` for enums, `const`, `uniqueItems` for sets, `true`
//! for `serde_json::Value`. The API server accepts none of that in a CRD (see the "Structural
//! schema rules" of SPEC-apiserver.md). [`structural`] inlines every reference and rewrites each
//! node so that every rule holds; [`check_defaults`] then verifies that every `default` validates
//! against the schema it sits in, the check the API server makes on create.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

mod defaults;
mod unions;

pub use defaults::{check_defaults, validate};
use unions::hoist_enum;

/// A `schemars` transform that adds JSON keys (given as JSON object text) to a schema: how the
/// derive's `#[kubeforge(...)]` field attributes reach the generated schema. CEL rule lists are
/// concatenated with rules already present.
#[derive(Debug, Clone, Copy)]
pub struct Extend(pub &'static str);

impl schemars::transform::Transform for Extend {
    fn transform(&mut self, schema: &mut schemars::Schema) {
        let Ok(Value::Object(ext)) = serde_json::from_str::<Value>(self.0) else {
            return;
        };
        let mut target = match schema.clone().to_value() {
            Value::Object(m) => m,
            // `true`: an arbitrary value (serde_json::Value); the keys make it an explicit schema.
            _ => Map::new(),
        };
        merge_siblings(&mut target, ext);
        if let Ok(s) = schemars::Schema::try_from(Value::Object(target)) {
            *schema = s;
        }
    }
}

/// Options of the rewrite.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Truncate every description to at most this many characters (large CRDs otherwise exceed
    /// the 256 KiB `last-applied-configuration` annotation limit of `kubectl apply`).
    /// `Some(0)` removes descriptions entirely.
    pub max_description_len: Option<usize>,
}

const PRESERVE: &str = "x-kubernetes-preserve-unknown-fields";
const INT_OR_STRING: &str = "x-kubernetes-int-or-string";
const EMBEDDED: &str = "x-kubernetes-embedded-resource";
const LIST_TYPE: &str = "x-kubernetes-list-type";
const MAP_TYPE: &str = "x-kubernetes-map-type";

/// JSON Schema keywords Kubernetes does not know or forbids, dropped everywhere.
const DROPPED: &[&str] = &[
    "$schema",
    "$id",
    "$defs",
    "definitions",
    "id",
    "$comment",
    "title",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "additionalItems",
    "patternProperties",
    "dependencies",
    "dependentRequired",
    "dependentSchemas",
    "contentEncoding",
    "contentMediaType",
    "unevaluatedProperties",
    "unevaluatedItems",
    "propertyNames",
    "contains",
    "minContains",
    "maxContains",
    "if",
    "then",
    "else",
];

/// Keywords that may not appear inside `allOf` / `anyOf` / `oneOf` / `not`.
const FORBIDDEN_IN_JUNCTORS: &[&str] = &[
    "type",
    "default",
    "title",
    "description",
    "nullable",
    "additionalProperties",
    "format",
];

/// Rewrites a schema (a root schema with `$defs`, or any subschema with the definitions given
/// separately) into a structural schema.
pub fn structural(schema: &Value, defs: &Map<String, Value>, opts: &Options) -> Value {
    let mut stack = Vec::new();
    let mut out = normalize(schema.clone(), defs, &mut stack);
    if let Some(max) = opts.max_description_len {
        cap_descriptions(&mut out, max);
    }
    out
}

/// The preserve-unknown-fields schema: what an arbitrary JSON value (or a recursive type) becomes.
fn preserve() -> Value {
    json!({ PRESERVE: true })
}

/// Rewrites one node (and, recursively, its children) into structural form, step by step.
fn normalize(schema: Value, defs: &Map<String, Value>, stack: &mut Vec<String>) -> Value {
    let mut m = match schema {
        Value::Object(m) => m,
        // `true` (anything, e.g. serde_json::Value) and `false` alike: keep what is sent.
        _ => return preserve(),
    };
    // 1. References: inline the definition, siblings (field docs, validations) win.
    if let Some(Value::String(r)) = m.remove("$ref") {
        return inline_ref(&r, m, defs, stack);
    }
    pattern_properties_to_map(&mut m);
    title_into_description(&mut m);
    for key in DROPPED {
        m.remove(*key);
    }
    if m.get("default") == Some(&Value::Null) {
        m.remove("default");
    }
    // 2. `type: [T, "null"]` → `type: T, nullable: true`.
    split_type_list(&mut m);
    // 3. `Option<T>` as `anyOf`/`oneOf` [T, null], and a single-branch `allOf`: the branch.
    if let Some(inner) = unwrap_single_branch(&mut m) {
        return normalize(Value::Object(inner), defs, stack);
    }
    // 4. `const` → single-valued `enum`.
    if let Some(c) = m.remove("const") {
        m.insert("enum".into(), Value::Array(vec![c]));
    }
    // 5. Children first.
    normalize_children(&mut m, defs, stack);
    // 6. Enums.
    if let Some(Value::Array(branches)) = m.remove("oneOf") {
        hoist_enum(&mut m, branches, true);
    }
    if let Some(Value::Array(branches)) = m.remove("anyOf") {
        hoist_enum(&mut m, branches, false);
    }
    // 7. Sets and 8. formats.
    set_from_unique_items(&mut m);
    map_format(&mut m);
    // 9. Every node has a type unless exempt.
    ensure_type(&mut m);
    Value::Object(m)
}

/// Step 1: a `$ref` node is its definition with the node's own keys on top; a reference back
/// into a definition being inlined (a recursive type) keeps unknown fields instead.
fn inline_ref(
    r: &str,
    siblings: Map<String, Value>,
    defs: &Map<String, Value>,
    stack: &mut Vec<String>,
) -> Value {
    let name = r.rsplit('/').next().unwrap_or(r).to_string();
    if stack.contains(&name) {
        // A recursive type has no finite structural schema: accept anything below this point.
        let mut out = preserve();
        copy_annotations(&siblings, &mut out);
        return out;
    }
    let mut merged = match defs.get(&name) {
        Some(Value::Object(t)) => t.clone(),
        Some(_) => Map::new(),
        None => match preserve() {
            Value::Object(p) => p,
            _ => Map::new(),
        },
    };
    merge_siblings(&mut merged, siblings);
    stack.push(name);
    let out = normalize(Value::Object(merged), defs, stack);
    stack.pop();
    out
}

/// Step 2: a list of types becomes one type (+ `nullable` for `"null"`); integer-or-string
/// becomes int-or-string; other mixes keep unknown fields.
fn split_type_list(m: &mut Map<String, Value>) {
    let Some(Value::Array(types)) = m.get("type").cloned() else {
        return;
    };
    let mut non_null: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
    if non_null.len() < types.len() {
        m.insert("nullable".into(), true.into());
    }
    match non_null.len() {
        0 => {
            m.remove("type");
        }
        1 => {
            m.insert("type".into(), non_null.remove(0));
        }
        _ => {
            m.remove("type");
            let set: BTreeSet<String> = non_null
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect();
            let int_or_string: BTreeSet<String> = ["integer", "string"].map(String::from).into();
            if set == int_or_string {
                m.insert(INT_OR_STRING.into(), true.into());
            } else {
                m.insert(PRESERVE.into(), true.into());
            }
        }
    }
}

/// Step 3: `anyOf`/`oneOf` [T, null] (an `Option`) marks the node nullable and, when one branch
/// is left, returns it with the wrapper's keys (field description, validations) on top; so does
/// a single-branch `allOf` (older schemars' "ref with siblings").
fn unwrap_single_branch(m: &mut Map<String, Value>) -> Option<Map<String, Value>> {
    for junctor in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = m.get(junctor).cloned() else {
            continue;
        };
        let (nulls, rest): (Vec<Value>, Vec<Value>) =
            branches.into_iter().partition(is_null_schema);
        if nulls.is_empty() {
            continue;
        }
        m.insert("nullable".into(), true.into());
        if rest.len() == 1 {
            m.remove(junctor);
            return Some(wrapped(rest.into_iter().next(), std::mem::take(m)));
        }
        m.insert(junctor.into(), Value::Array(rest));
    }
    if let Some(Value::Array(all_of)) = m.get("allOf").cloned()
        && all_of.len() == 1
    {
        m.remove("allOf");
        return Some(wrapped(all_of.into_iter().next(), std::mem::take(m)));
    }
    None
}

/// `inner` (an object schema) with the `wrapper`'s keys merged over it.
fn wrapped(inner: Option<Value>, wrapper: Map<String, Value>) -> Map<String, Value> {
    let mut inner = match inner {
        Some(Value::Object(b)) => b,
        _ => Map::new(),
    };
    merge_siblings(&mut inner, wrapper);
    inner
}

/// Step 5: properties, items (a `Vec<Condition>` becomes a list map keyed by `type`), tuples,
/// map values and junctor branches, each normalized.
fn normalize_children(
    m: &mut Map<String, Value>,
    defs: &Map<String, Value>,
    stack: &mut Vec<String>,
) {
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        for v in props.values_mut() {
            *v = normalize(v.take(), defs, stack);
        }
    }
    if let Some(items) = m.remove("items") {
        // `Vec<Condition>` (metav1): a map keyed by `type`, as kubebuilder's markers make it, so
        // server-side apply merges the conditions of several writers per type.
        if items
            .get("$ref")
            .and_then(Value::as_str)
            .is_some_and(|r| r.ends_with("/io.k8s.apimachinery.pkg.apis.meta.v1.Condition"))
            && !m.contains_key(LIST_TYPE)
        {
            m.insert(LIST_TYPE.into(), "map".into());
            m.insert("x-kubernetes-list-map-keys".into(), json!(["type"]));
        }
        let items = match items {
            // `items` as an array is forbidden: keep anything.
            Value::Array(_) => preserve(),
            other => normalize(other, defs, stack),
        };
        m.insert("items".into(), items);
    }
    if m.remove("prefixItems").is_some() {
        // Tuples have no structural form: accept any items.
        m.insert("items".into(), preserve());
    }
    if let Some(ap) = m.remove("additionalProperties") {
        match ap {
            Value::Bool(false) => {}
            // `#[serde(flatten)]` maps next to named properties: structural schemas cannot have
            // both, so unknown keys are kept instead.
            _ if m.contains_key("properties") => {
                m.insert(PRESERVE.into(), true.into());
            }
            other => {
                m.insert("additionalProperties".into(), normalize(other, defs, stack));
            }
        }
    }
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = m.get_mut(junctor) {
            for b in branches.iter_mut() {
                *b = normalize(b.take(), defs, stack);
            }
        }
    }
    if let Some(not) = m.remove("not") {
        m.insert("not".into(), normalize(not, defs, stack));
    }
}

/// Step 7: `uniqueItems` is forbidden; `x-kubernetes-list-type: set` says the same thing.
fn set_from_unique_items(m: &mut Map<String, Value>) {
    if m.remove("uniqueItems") == Some(Value::Bool(true)) && !m.contains_key(LIST_TYPE) {
        m.insert(LIST_TYPE.into(), "set".into());
        if let Some(Value::Object(items)) = m.get_mut("items")
            && items.get("type") == Some(&json!("object"))
        {
            items.insert(MAP_TYPE.into(), "atomic".into());
        }
    }
}

/// Step 8: integer formats Kubernetes does not know become the nearest it does.
fn map_format(m: &mut Map<String, Value>) {
    let Some(Value::String(f)) = m.get("format") else {
        return;
    };
    let mapped = match f.as_str() {
        "int8" | "int16" | "uint8" | "uint16" => "int32",
        // `int` / `uint` are schemars' isize / usize.
        "int" | "uint32" | "uint64" | "uint" | "uint128" | "int128" => "int64",
        _ => return,
    };
    m.insert("format".into(), mapped.into());
}

/// Step 9: embedded resources are objects; every other node gets a type from its keywords, or
/// keeps unknown fields.
fn ensure_type(m: &mut Map<String, Value>) {
    if m.get(EMBEDDED) == Some(&Value::Bool(true)) {
        m.insert("type".into(), "object".into());
        if !m.contains_key("properties") {
            m.insert(PRESERVE.into(), true.into());
        }
    }
    if m.get(PRESERVE) == Some(&Value::Bool(false)) {
        m.remove(PRESERVE);
    }
    if !m.contains_key("type") && !is_true(m, INT_OR_STRING) && !is_true(m, PRESERVE) {
        if m.contains_key("properties") || m.contains_key("additionalProperties") {
            m.insert("type".into(), "object".into());
        } else if m.contains_key("items") {
            m.insert("type".into(), "array".into());
        } else {
            m.insert(PRESERVE.into(), true.into());
        }
    }
    if m.get("type") == Some(&json!("array")) && !m.contains_key("items") {
        m.insert("items".into(), preserve());
    }
    if m.get("type") == Some(&json!("object"))
        && !m.contains_key("properties")
        && !m.contains_key("additionalProperties")
        && !is_true(m, PRESERVE)
    {
        // `{type: object}` alone would prune every key: an empty struct keeps nothing, which is right,
        // but a hand-written `JsonSchema` returning a bare object means "any object".
        if !m.contains_key("required") && !m.contains_key("x-kubernetes-validations") {
            m.insert("properties".into(), Value::Object(Map::new()));
        }
    }
}

fn is_true(m: &Map<String, Value>, key: &str) -> bool {
    m.get(key) == Some(&Value::Bool(true))
}

fn is_null_schema(v: &Value) -> bool {
    match v {
        Value::Object(b) => {
            b.get("type") == Some(&json!("null"))
                || b.get("enum") == Some(&json!([null]))
                || b.get("const") == Some(&Value::Null)
        }
        _ => false,
    }
}

/// A map whose keys are not strings in Rust (`BTreeMap<u16, T>`): schemars describes it with
/// `patternProperties` (the key pattern) and `additionalProperties: false`, which Kubernetes
/// cannot express and which would prune every entry. Keys reach the server as strings, so the
/// value schema becomes `additionalProperties`; the key pattern is dropped (a CEL rule over an
/// unbounded map would exceed the server's cost budget), so keys are checked when the operator
/// deserializes them, not by the server.
fn pattern_properties_to_map(m: &mut Map<String, Value>) {
    if m.contains_key("properties") {
        return;
    }
    let Some(Value::Object(patterns)) = m.get("patternProperties") else {
        return;
    };
    let value = match patterns.len() {
        1 => patterns.values().next().cloned().unwrap_or_else(preserve),
        _ => preserve(),
    };
    m.remove("patternProperties");
    m.insert("additionalProperties".into(), value);
    m.entry("type").or_insert_with(|| "object".into());
}

/// schemars takes a doc comment's leading `# Heading` as the schema's `title`, which Kubernetes
/// does not keep: it goes back in front of the description instead of being lost.
fn title_into_description(m: &mut Map<String, Value>) {
    let Some(Value::String(title)) = m.remove("title") else {
        return;
    };
    let description = match m.get("description").and_then(Value::as_str) {
        Some(d) if !d.is_empty() => format!("{title}\n\n{d}"),
        _ => title,
    };
    m.insert("description".into(), description.into());
}

/// Overlays the keys of a wrapper (a `$ref`'s siblings, an `Option`'s `anyOf` parent) on the
/// inner schema. Validation lists are concatenated; everything else is replaced.
fn merge_siblings(inner: &mut Map<String, Value>, wrapper: Map<String, Value>) {
    for (k, v) in wrapper {
        match (k.as_str(), inner.get_mut(&k), v) {
            // A `$ref` with sibling properties (serde's internally tagged newtype variant: the
            // struct's fields plus the tag) has both sets of fields.
            ("properties", Some(Value::Object(existing)), Value::Object(more)) => {
                existing.extend(more);
            }
            ("x-kubernetes-validations", Some(Value::Array(existing)), Value::Array(more)) => {
                existing.extend(more);
            }
            ("required", Some(Value::Array(existing)), Value::Array(more)) => {
                for r in more {
                    if !existing.contains(&r) {
                        existing.push(r);
                    }
                }
            }
            (_, _, v) => {
                inner.insert(k, v);
            }
        }
    }
}

fn copy_annotations(from: &Map<String, Value>, to: &mut Value) {
    if let (Some(d), Value::Object(to)) = (from.get("description"), to) {
        to.insert("description".into(), d.clone());
    }
}

/// Truncates every description below `v` to `max` characters (`0` removes them).
pub fn cap_descriptions(v: &mut Value, max: usize) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(d)) = m.get_mut("description") {
                if max == 0 {
                    m.remove("description");
                } else if d.chars().count() > max {
                    let cut: String = d.chars().take(max.saturating_sub(3)).collect();
                    *d = format!("{}...", cut.trim_end());
                }
            }
            for (k, child) in m.iter_mut() {
                // Defaults and enum values are data, not schemas.
                if k != "default" && k != "enum" && k != "example" {
                    cap_descriptions(child, max);
                }
            }
        }
        Value::Array(xs) => xs.iter_mut().for_each(|x| cap_descriptions(x, max)),
        _ => {}
    }
}

/// Removes keys that structural rules forbid inside junctors (defensive: user extensions may add them).
pub fn strip_junctor_keywords(v: &mut Value) {
    let Value::Object(m) = v else { return };
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(bs)) = m.get_mut(junctor) {
            for b in bs.iter_mut() {
                strip_in_junctor(b);
            }
        }
    }
    if let Some(not) = m.get_mut("not") {
        strip_in_junctor(not);
    }
    for (k, child) in m.iter_mut() {
        match (k.as_str(), child) {
            // Property names are data, not keywords.
            ("properties", Value::Object(props)) => {
                props.values_mut().for_each(strip_junctor_keywords)
            }
            ("items" | "additionalProperties", child @ Value::Object(_)) => {
                strip_junctor_keywords(child)
            }
            _ => {}
        }
    }
}

fn strip_in_junctor(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in FORBIDDEN_IN_JUNCTORS {
                m.remove(*k);
            }
            m.retain(|k, _| !k.starts_with("x-kubernetes-") || k == INT_OR_STRING);
            for (k, child) in m.iter_mut() {
                match (k.as_str(), child) {
                    // Property names are data, not keywords: strip inside each property's schema.
                    ("properties", Value::Object(props)) => {
                        props.values_mut().for_each(strip_in_junctor)
                    }
                    ("enum" | "required", _) => {}
                    (_, child) => strip_in_junctor(child),
                }
            }
        }
        Value::Array(xs) => xs.iter_mut().for_each(strip_in_junctor),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(root: Value) -> Value {
        let defs = root
            .get("$defs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        structural(&root, &defs, &Options::default())
    }

    #[test]
    fn refs_are_inlined_with_field_docs_winning() {
        let out = rewrite(json!({
            "type": "object",
            "properties": {"inner": {"$ref": "#/$defs/Inner", "description": "field"}},
            "$defs": {"Inner": {"type": "object", "description": "type", "properties": {"a": {"type": "string"}}}}
        }));
        assert_eq!(out["properties"]["inner"]["description"], "field");
        assert_eq!(
            out["properties"]["inner"]["properties"]["a"]["type"],
            "string"
        );
        assert!(out.get("$defs").is_none());
    }

    #[test]
    fn option_becomes_nullable() {
        let out = rewrite(json!({
            "type": "object",
            "properties": {
                "n": {"type": ["integer", "null"], "format": "int32"},
                "o": {"anyOf": [{"$ref": "#/$defs/E"}, {"type": "null"}], "description": "d"}
            },
            "$defs": {"E": {"type": "string", "enum": ["A", "B"]}}
        }));
        assert_eq!(
            out["properties"]["n"],
            json!({"type": "integer", "format": "int32", "nullable": true})
        );
        assert_eq!(
            out["properties"]["o"],
            json!({"type": "string", "enum": ["A", "B"], "nullable": true, "description": "d"})
        );
    }

    #[test]
    fn documented_unit_enum_becomes_string_enum() {
        let out = rewrite(json!({"oneOf": [
            {"description": "a", "type": "string", "const": "A"},
            {"description": "b", "type": "string", "const": "B"}
        ]}));
        assert_eq!(out, json!({"type": "string", "enum": ["A", "B"]}));
    }

    #[test]
    fn internally_tagged_enum_keeps_tag_in_branches() {
        let out = rewrite(json!({"oneOf": [
            {"type": "object", "properties": {"type": {"type": "string", "const": "A"}, "x": {"type": "integer"}}, "required": ["type", "x"]},
            {"type": "object", "properties": {"type": {"type": "string", "const": "B"}}, "required": ["type"]}
        ]}));
        assert_eq!(out["type"], "object");
        assert_eq!(
            out["properties"]["type"],
            json!({"type": "string", "enum": ["A", "B"]})
        );
        assert_eq!(
            out["oneOf"][0],
            json!({"required": ["type", "x"], "properties": {"type": {"enum": ["A"]}}})
        );
    }

    #[test]
    fn sets_maps_and_values() {
        let out = rewrite(json!({"type": "object", "properties": {
            "s": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
            "m": {"type": "object", "additionalProperties": {"type": "integer", "format": "uint8"}},
            "v": true
        }}));
        assert_eq!(
            out["properties"]["s"],
            json!({"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"})
        );
        assert_eq!(
            out["properties"]["m"]["additionalProperties"]["format"],
            "int32"
        );
        assert_eq!(
            out["properties"]["v"],
            json!({"x-kubernetes-preserve-unknown-fields": true})
        );
    }

    #[test]
    fn recursion_stops_with_preserve_unknown_fields() {
        let out = rewrite(
            json!({"$ref": "#/$defs/Node", "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}}),
        );
        assert_eq!(
            out["properties"]["next"],
            json!({"x-kubernetes-preserve-unknown-fields": true})
        );
    }

    #[test]
    fn descriptions_are_capped() {
        let defs = Map::new();
        let out = structural(
            &json!({"type": "string", "description": "abcdefghijkl"}),
            &defs,
            &Options {
                max_description_len: Some(8),
            },
        );
        assert_eq!(out["description"], "abcde...");
    }

    #[test]
    fn defaults_are_checked_against_their_schema() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "integer", "minimum": 1, "default": 0},
            "b": {"type": "string", "enum": ["x"], "default": "x"}
        }});
        let bad = check_defaults(&schema);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, ".a");
        assert!(bad[0].1.contains("below the minimum"), "{}", bad[0].1);
    }
}
