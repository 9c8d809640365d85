//! The static checks on `x-kubernetes-validations` for the OpenAPI pass (`openapi`): rule not
//! empty, `message`/`messageExpression` shape, a known `reason`, and a `fieldPath` that names a
//! field of the schema. CEL itself is not compiled.

use super::{props, str_of};
use crate::names::go_quote;
use crate::schema::FieldError;
use serde_json::Value;

/// Whether a CEL rule's `fieldPath` (`.a.b`, `['key']`, `[0]`) names a field of `schema`.
fn field_path_valid(schema: &Value, path: &str) -> bool {
    let mut node = schema;
    let mut rest = path;
    let child = |node: &Value, name: &str| -> Option<Value> {
        props(node)
            .and_then(|p| p.get(name))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))
            .cloned()
    };
    let mut owned;
    while !rest.is_empty() {
        let next = if let Some(after) = rest.strip_prefix("['") {
            let Some(end) = after.find("']") else {
                return false;
            };
            rest = &after[end + 2..];
            child(node, &after[..end])
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else {
                return false;
            };
            if after[..end].parse::<usize>().is_err() {
                return false;
            }
            rest = &after[end + 1..];
            node.get("items").filter(|i| i.is_object()).cloned()
        } else if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let name = &after[..end];
            rest = &after[end..];
            if name.is_empty() {
                return false;
            }
            child(node, name)
        } else {
            return false;
        };
        match next {
            Some(n) => {
                owned = n;
                node = &owned;
            }
            None => return false,
        }
    }
    true
}

fn has_newlines(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

/// The static checks on `x-kubernetes-validations` (CEL itself is not compiled here).
pub(super) fn cel_rules(s: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(rules) = s.get("x-kubernetes-validations").and_then(Value::as_array) else {
        return;
    };
    const REASONS: [&str; 4] = [
        "FieldValueDuplicate",
        "FieldValueForbidden",
        "FieldValueInvalid",
        "FieldValueRequired",
    ];
    for (i, rule) in rules.iter().enumerate() {
        let at = |child: &str| format!("{path}.x-kubernetes-validations[{i}].{child}");
        let text = str_of(rule, "rule").unwrap_or("");
        let message = str_of(rule, "message").unwrap_or("");
        let message_expr = str_of(rule, "messageExpression").unwrap_or("");
        if text.trim().is_empty() {
            errs.push(FieldError::required(&at("rule"), "rule is not specified"));
        } else if !message.is_empty() && message.trim().is_empty() {
            errs.push(FieldError::invalid(
                &at("message"),
                &go_quote(message),
                "must be non-empty if specified",
            ));
        } else if has_newlines(message.trim()) {
            errs.push(FieldError::invalid(
                &at("message"),
                &go_quote(message),
                "must not contain line breaks",
            ));
        } else if has_newlines(text.trim())
            && message.trim().is_empty()
            && message_expr.trim().is_empty()
        {
            errs.push(FieldError::required(
                &at("message"),
                "message must be specified if rule contains line breaks",
            ));
        }
        if !message_expr.is_empty() && message_expr.trim().is_empty() {
            errs.push(FieldError::required(
                &at("messageExpression"),
                "messageExpression must be non-empty if specified",
            ));
        }
        if let Some(reason) = str_of(rule, "reason")
            && !REASONS.contains(&reason)
        {
            let valid: Vec<String> = REASONS.iter().map(|r| r.to_string()).collect();
            errs.push(FieldError::not_supported(
                &at("reason"),
                &go_quote(reason),
                &valid,
            ));
        }
        if let Some(field_path) = str_of(rule, "fieldPath") {
            if !field_path.is_empty() && field_path.trim().is_empty() {
                errs.push(FieldError::invalid(
                    &at("fieldPath"),
                    &go_quote(field_path),
                    "must be non-empty if specified",
                ));
            }
            if has_newlines(field_path) {
                errs.push(FieldError::invalid(
                    &at("fieldPath"),
                    &go_quote(field_path),
                    "must not contain line breaks",
                ));
            }
            if !field_path.is_empty() && !field_path_valid(s, field_path) {
                errs.push(FieldError::invalid(
                    &at("fieldPath"),
                    &go_quote(field_path),
                    "must be a valid path",
                ));
            }
        }
    }
}
