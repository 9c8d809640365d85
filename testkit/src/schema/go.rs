//! Go's renderings of JSON values, so messages match the apiserver's byte for byte.

use crate::names::go_quote;
use serde_json::Value;

/// Go's `%v` of a `float64` (shortest digits, exponent outside `1e-4 ≤ |f| < 1e21`).
pub(crate) fn go_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return format!("{f}");
    }
    let exp = f.abs().log10().floor() as i32;
    if (-4..21).contains(&exp) {
        return format!("{f}");
    }
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((mantissa, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// A JSON number as Go prints the decoded value (`int64` or `float64`).
pub(crate) fn go_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        go_float(n.as_f64().unwrap_or(0.0))
    }
}

/// How `field.Error` prints a bad value: `%v` for numbers and booleans, `%q` for strings,
/// `null` for nil, and JSON (as Go's `json.Marshal`, HTML characters escaped) for maps and lists.
pub(crate) fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::String(s) => go_quote(s),
        Value::Array(_) | Value::Object(_) => go_json(v),
    }
}

/// Go's `json.Marshal`: compact, keys sorted, `<`, `>`, `&` escaped.
pub(crate) fn go_json(v: &Value) -> String {
    let sorted = sort_keys(v);
    serde_json::to_string(&sorted)
        .unwrap_or_default()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn sort_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sort_keys(&m[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

/// The JSON-schema type name of a value as kube-openapi reports it in type errors.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_render_as_go_does() {
        let cases = [
            (json!(1), "1"),
            (json!(1.5), "1.5"),
            (json!(1e21), "1e+21"),
            (json!(0.00001), "1e-05"),
            (json!("a"), "\"a\""),
            (json!(null), "null"),
            (json!(true), "true"),
            (
                json!({"b": 1, "a": [null, "x<"]}),
                r#"{"a":[null,"x\u003c"],"b":1}"#,
            ),
        ];
        for (v, want) in cases {
            assert_eq!(go_value(&v), want, "{v}");
        }
    }
}
