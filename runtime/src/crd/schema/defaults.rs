//! Checking a structural schema's defaults: every `default` must validate against the schema it
//! sits in, as kube-apiserver checks when the CRD is created. [`check_defaults`] walks the
//! schema; [`validate`] is the small validator it (and the CRD builder) uses.

use serde_json::Value;

use super::{INT_OR_STRING, is_true};

/// Every `default` in `schema` that does not validate against the schema it sits in, as
/// `(json path, reason)`. The API server rejects such CRDs; this finds them before `kubectl apply`.
pub fn check_defaults(schema: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk_defaults(schema, "", &mut out);
    out
}

fn walk_defaults(schema: &Value, path: &str, out: &mut Vec<(String, String)>) {
    let Some(m) = schema.as_object() else { return };
    if let Some(d) = m.get("default")
        && let Err(reason) = validate(d, schema)
    {
        out.push((
            if path.is_empty() {
                ".".into()
            } else {
                path.to_string()
            },
            reason,
        ));
    }
    if let Some(Value::Object(props)) = m.get("properties") {
        for (k, v) in props {
            walk_defaults(v, &format!("{path}.{k}"), out);
        }
    }
    if let Some(items) = m.get("items") {
        walk_defaults(items, &format!("{path}[*]"), out);
    }
    if let Some(ap @ Value::Object(_)) = m.get("additionalProperties") {
        walk_defaults(ap, &format!("{path}[*]"), out);
    }
}

/// A small validator for the keywords a default can violate (type, enum, bounds, lengths,
/// required properties); nested values are checked recursively. `pattern` is checked by the
/// derive at compile time for literal defaults, and by the API server in any case.
pub fn validate(value: &Value, schema: &Value) -> Result<(), String> {
    let Some(m) = schema.as_object() else {
        return Ok(());
    };
    if value.is_null() {
        return if is_true(m, "nullable") {
            Ok(())
        } else {
            Err("null is not allowed (the field is not nullable)".into())
        };
    }
    if is_true(m, INT_OR_STRING) && !(value.is_i64() || value.is_u64() || value.is_string()) {
        return Err(format!("{value} is neither an integer nor a string"));
    }
    if let Some(ty) = m.get("type").and_then(Value::as_str) {
        let ok = match ty {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => true,
        };
        if !ok {
            return Err(format!("{value} is not of type {ty}"));
        }
    }
    if let Some(Value::Array(allowed)) = m.get("enum")
        && !allowed.contains(value)
    {
        return Err(format!(
            "{value} is not one of {}",
            Value::Array(allowed.clone())
        ));
    }
    if let Some(x) = value.as_f64() {
        let excl = |k: &str| is_true(m, k);
        if let Some(min) = m.get("minimum").and_then(Value::as_f64)
            && (x < min || (excl("exclusiveMinimum") && x == min))
        {
            return Err(format!("{value} is below the minimum {min}"));
        }
        if let Some(max) = m.get("maximum").and_then(Value::as_f64)
            && (x > max || (excl("exclusiveMaximum") && x == max))
        {
            return Err(format!("{value} is above the maximum {max}"));
        }
        if let Some(step) = m.get("multipleOf").and_then(Value::as_f64)
            && step != 0.0
            && (x / step).fract().abs() > 1e-9
        {
            return Err(format!("{value} is not a multiple of {step}"));
        }
    }
    let bound = |k: &str| m.get(k).and_then(Value::as_u64).map(|n| n as usize);
    if let Some(s) = value.as_str() {
        let n = s.chars().count();
        if bound("minLength").is_some_and(|min| n < min)
            || bound("maxLength").is_some_and(|max| n > max)
        {
            return Err(format!("{value} has a length outside minLength/maxLength"));
        }
    }
    if let Some(xs) = value.as_array() {
        if bound("minItems").is_some_and(|min| xs.len() < min)
            || bound("maxItems").is_some_and(|max| xs.len() > max)
        {
            return Err(format!(
                "{value} has a number of items outside minItems/maxItems"
            ));
        }
        if let Some(items) = m.get("items") {
            for x in xs {
                validate(x, items)?;
            }
        }
    }
    if let Some(obj) = value.as_object() {
        if bound("minProperties").is_some_and(|min| obj.len() < min)
            || bound("maxProperties").is_some_and(|max| obj.len() > max)
        {
            return Err(format!(
                "{value} has a number of properties outside minProperties/maxProperties"
            ));
        }
        for r in m
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = r.as_str()
                && !obj.contains_key(r)
            {
                return Err(format!("{value} lacks the required property `{r}`"));
            }
        }
        let props = m.get("properties").and_then(Value::as_object);
        for (k, v) in obj {
            match (props.and_then(|p| p.get(k)), m.get("additionalProperties")) {
                (Some(s), _) => validate(v, s)?,
                (None, Some(ap @ Value::Object(_))) => validate(v, ap)?,
                _ => {}
            }
        }
    }
    Ok(())
}
