//! The walk over an object and its schema: which rules apply where, with which `self` and
//! `oldSelf`, and how a failure is reported.

use serde_json::{Map, Value};

use crate::eval::{self, OldSelf};
use crate::{CompileError, Reason, RuleError};

/// Evaluates every `x-kubernetes-validations` rule of `schema` (a CRD version's
/// `openAPIV3Schema`) against `obj`, and against `old` on an update. Empty means every rule holds.
///
/// Call it on an object that passed the schema's structural validation (kube-apiserver skips
/// CEL when the object has type errors).
pub fn validate(schema: &Value, obj: &Value, old: Option<&Value>) -> Vec<RuleError> {
    let mut errors = Vec::new();
    let root = resource_root(obj);
    let old_root = old.map(resource_root);
    node(schema, &root, old_root.as_ref(), "", &mut errors);
    errors
}

/// Parses every rule and `messageExpression` of `schema`; what does not parse is reported with
/// its place below `prefix` (e.g. `spec.validation.openAPIV3Schema`).
pub fn check_compiles(schema: &Value, prefix: &str) -> Vec<CompileError> {
    let mut errors = Vec::new();
    compiles(schema, prefix, &mut errors);
    errors
}

fn compiles(s: &Value, at: &str, errors: &mut Vec<CompileError>) {
    let Some(s) = s.as_object() else {
        return;
    };
    for (i, rule) in rules(s).iter().enumerate() {
        for key in ["rule", "messageExpression"] {
            if let Some(source) = rule[key].as_str().filter(|r| !r.trim().is_empty())
                && let Err(detail) = eval::compile(source)
            {
                errors.push(CompileError {
                    path: format!("{at}.x-kubernetes-validations[{i}].{key}"),
                    rule: source.to_string(),
                    detail,
                });
            }
        }
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            compiles(prop, &format!("{at}.properties[{name}]"), errors);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = s.get(key) {
            compiles(sub, &format!("{at}.{key}"), errors);
        }
    }
}

fn rules(s: &Map<String, Value>) -> &[Value] {
    s.get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// What a rule at the schema's root sees: the object with only `name` and `generateName` of its
/// metadata (kube-apiserver's `WithTypeAndObjectMeta`).
fn resource_root(obj: &Value) -> Value {
    let mut root = obj.clone();
    if let Some(meta) = obj.get("metadata").and_then(Value::as_object) {
        let kept: Map<String, Value> = meta
            .iter()
            .filter(|(k, _)| *k == "name" || *k == "generateName")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        root["metadata"] = Value::Object(kept);
    }
    root
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn node(s: &Value, v: &Value, old: Option<&Value>, path: &str, errors: &mut Vec<RuleError>) {
    let Some(schema) = s.as_object() else {
        return;
    };
    if v.is_null() {
        return;
    }
    for rule in rules(schema) {
        check_rule(schema, rule, v, old, path, errors);
    }
    match v {
        Value::Object(fields) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, value) in fields {
                let old_value = old.and_then(|o| o.get(k));
                if let Some(prop) = props.and_then(|p| p.get(k)) {
                    node(prop, value, old_value, &child(path, k), errors);
                } else if let Some(additional) = additional {
                    node(
                        additional,
                        value,
                        old_value,
                        &format!("{path}[{k}]"),
                        errors,
                    );
                }
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = schema.get("items") else {
                return;
            };
            let keys = map_keys(schema);
            for (i, item) in items.iter().enumerate() {
                let old_item = keys
                    .as_ref()
                    .and_then(|keys| old_item_with_keys(old, item, keys));
                node(item_schema, item, old_item, &format!("{path}[{i}]"), errors);
            }
        }
        _ => {}
    }
}

/// The keys of an `x-kubernetes-list-type: map` list: only its items are correlated with the old
/// list's (by key); items of other lists have no `oldSelf`.
fn map_keys(schema: &Map<String, Value>) -> Option<Vec<&str>> {
    if schema.get("x-kubernetes-list-type").and_then(Value::as_str) != Some("map") {
        return None;
    }
    Some(
        schema
            .get("x-kubernetes-list-map-keys")?
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .collect(),
    )
}

fn old_item_with_keys<'a>(
    old: Option<&'a Value>,
    item: &Value,
    keys: &[&str],
) -> Option<&'a Value> {
    old?.as_array()?
        .iter()
        .find(|o| keys.iter().all(|k| o.get(*k) == item.get(*k)))
}

fn check_rule(
    schema: &Map<String, Value>,
    rule: &Value,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    errors: &mut Vec<RuleError>,
) {
    let Some(source) = rule["rule"].as_str() else {
        return;
    };
    let type_name = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("object");
    let invalid = |detail: String| RuleError {
        path: path.to_string(),
        reason: Reason::Invalid,
        value: None,
        detail,
    };
    let compiled = match eval::compile(source) {
        Ok(c) => c,
        Err(e) => {
            errors.push(invalid(format!("rule compile error: {e}")));
            return;
        }
    };
    let optional = rule["optionalOldSelf"] == Value::Bool(true);
    let old_self = match (compiled.uses_old_self, old, optional) {
        (false, _, _) => OldSelf::Absent,
        (true, _, true) => OldSelf::Optional(old),
        (true, Some(o), false) => OldSelf::Value(o),
        // A transition rule where there is no old value: not evaluated.
        (true, None, false) => return,
    };
    let held = match eval::run(&compiled.program, v, old_self) {
        Ok(cel::Value::Bool(b)) => b,
        Ok(other) => {
            errors.push(invalid(format!(
                "rule did not evaluate to a bool but to {other:?}: {}",
                source.trim()
            )));
            return;
        }
        Err(e) => {
            errors.push(invalid(format!("{e} evaluating rule: {}", rule_text(rule))));
            return;
        }
    };
    // Ratcheting: an unchanged value may keep failing a rule that does not compare with it.
    if held || (!compiled.uses_old_self && old == Some(v)) {
        return;
    }
    let detail = message_expression(rule, v, old).unwrap_or_else(|| {
        match rule["message"].as_str().map(str::trim) {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => format!("failed rule: {}", source.trim()),
        }
    });
    let path = match rule["fieldPath"]
        .as_str()
        .map(|p| p.trim_start_matches('.'))
    {
        Some(p) if !p.is_empty() => child(path, p),
        _ => path.to_string(),
    };
    let shown = !matches!(type_name, "object" | "array");
    errors.push(RuleError {
        path,
        reason: Reason::from_rule(rule),
        value: shown.then(|| v.clone()),
        detail,
    });
}

/// The rule's `message`, or its source when it has none.
fn rule_text(rule: &Value) -> String {
    rule["message"]
        .as_str()
        .filter(|m| !m.trim().is_empty())
        .or(rule["rule"].as_str())
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The evaluated `messageExpression`, when the rule has one that yields a non-empty string.
fn message_expression(rule: &Value, v: &Value, old: Option<&Value>) -> Option<String> {
    let source = rule["messageExpression"].as_str()?;
    let compiled = eval::compile(source).ok()?;
    let old_self = match (compiled.uses_old_self, old) {
        (false, _) => OldSelf::Absent,
        (true, Some(o)) => OldSelf::Value(o),
        (true, None) => return None,
    };
    match eval::run(&compiled.program, v, old_self) {
        Ok(cel::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}
