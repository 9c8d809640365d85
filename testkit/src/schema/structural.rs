//! The rules a CRD version's `openAPIV3Schema` must pass, in three passes as the
//! apiextensions-apiserver runs them: the OpenAPI checks of
//! `ValidateCustomResourceDefinitionOpenAPISchema` (forbidden keywords, list/map types, CEL rule
//! shape, patterns), the structural invariants and completeness of `ValidateStructural` (sorted by
//! message, as the server sorts them), and, only when the schema is structural, `ValidateDefaults`.

use super::FieldError;
use super::go::go_value;
use super::prune::prune_at;
use super::validate::{compiled, expand_quoted, validate_at};
use crate::names::go_quote;
use serde_json::{Map, Value};

/// Where [`check_structural`] says the schema is: the path the contract's examples use.
pub const DEFAULT_SCHEMA_PATH: &str = "spec.validation.openAPIV3Schema";

/// Checks a CRD version's `openAPIV3Schema` against every rule the apiserver enforces; error
/// paths start at `spec.validation.openAPIV3Schema`. See [`check_structural_at`] to name the
/// real location (`spec.versions[0].schema.openAPIV3Schema` for `apiextensions.k8s.io/v1`).
pub fn check_structural(schema: &Value) -> Result<(), Vec<FieldError>> {
    check_structural_at(schema, DEFAULT_SCHEMA_PATH)
}

/// [`check_structural`] with error paths starting at `root`.
///
/// Which root the apiserver names: when every version of a CRD has the same schema it reports
/// the errors once, under `spec.validation.openAPIV3Schema` (the internal, hoisted form); when
/// the versions' schemas differ, under `spec.versions[i].schema.openAPIV3Schema` per version.
///
/// Beyond the apiserver: every `x-kubernetes-list-map-keys` entry must be a required item
/// property or have a default, the documented contract of list-type `map` (the apiserver leaves
/// it to server-side apply to fail later). CEL rules are checked for shape, not compiled.
pub fn check_structural_at(schema: &Value, root: &str) -> Result<(), Vec<FieldError>> {
    if !schema.is_object() {
        return Err(vec![FieldError::invalid(
            root,
            &go_value(schema),
            "must be an object (a JSONSchemaProps)",
        )]);
    }
    let mut errs = Vec::new();
    openapi_checks(
        schema,
        root,
        &Ctx {
            is_root: true,
            inside_meta: false,
            defaults_forbidden: None,
        },
        &mut errs,
    );
    let mut structural = Vec::new();
    invariants(schema, Level::Root, root, &mut structural);
    completeness(schema, root, &mut structural);
    structural.sort_by_key(ToString::to_string);
    let structural_ok = structural.is_empty();
    errs.extend(structural);
    if structural_ok {
        defaults(schema, root, true, false, &mut errs);
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// Checks the schemas of all versions of a CRD `spec` (`apiextensions.k8s.io/v1` JSON) with
/// the paths the apiserver uses: when every version has the same schema, once under
/// `spec.validation.openAPIV3Schema` (the apiserver's internal form hoists identical schemas);
/// otherwise each under `spec.versions[i].schema.openAPIV3Schema`. Versions without a schema
/// are skipped (requiring one is the caller's CRD validation).
pub fn check_crd_spec_schemas(spec: &Value) -> Vec<FieldError> {
    let schemas: Vec<Option<&Value>> = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(|versions| {
            versions
                .iter()
                .map(|v| v.pointer("/schema/openAPIV3Schema"))
                .collect()
        })
        .unwrap_or_default();
    let first = schemas.first().copied().flatten();
    if let Some(first) = first
        && schemas.iter().all(|s| *s == Some(first))
    {
        return check_structural(first).err().unwrap_or_default();
    }
    schemas
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let root = format!("spec.versions[{i}].schema.openAPIV3Schema");
            check_structural_at((*s)?, &root).err()
        })
        .flatten()
        .collect()
}

fn str_of<'a>(s: &'a Value, key: &str) -> Option<&'a str> {
    s.get(key).and_then(Value::as_str)
}

fn flag(s: &Value, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn props(s: &Value) -> Option<&Map<String, Value>> {
    s.get("properties").and_then(Value::as_object)
}

fn has_default(s: &Value) -> bool {
    s.get("default").is_some_and(|d| !d.is_null())
}

fn nonempty_array(s: &Value, key: &str) -> bool {
    s.get(key)
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

fn nonempty_object(s: &Value, key: &str) -> bool {
    s.get(key)
        .and_then(Value::as_object)
        .is_some_and(|a| !a.is_empty())
}

/// A `[]string` bad value, which apimachinery renders as JSON.
fn go_string_slice(values: &[&str]) -> String {
    serde_json::to_string(values).unwrap_or_default()
}

fn key(path: &str, child: &str, k: &str) -> String {
    format!("{path}.{child}[{k}]")
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
    cel_rules(s, path, errs);
    if let Some(pattern) = str_of(s, "pattern")
        && let Some(reason) = go_syntax_error(pattern)
    {
        errs.push(FieldError::invalid(
            &format!("{path}.pattern"),
            &go_quote(pattern),
            &format!(
                "must be a valid regular expression, but isn't: error parsing regexp: {reason}"
            ),
        ));
    } else if let Some(pattern) = str_of(s, "pattern")
        && compiled(pattern).is_none()
    {
        let reason = match regex::Regex::new(&expand_quoted(pattern)) {
            Err(e) => {
                let text = e.to_string();
                let last = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("invalid pattern")
                    .trim()
                    .trim_start_matches("error: ")
                    .to_string();
                go_wording(pattern, &last)
            }
            Ok(_) => "invalid pattern".to_string(),
        };
        errs.push(FieldError::invalid(
            &format!("{path}.pattern"),
            &go_quote(pattern),
            &format!(
                "must be a valid regular expression, but isn't: error parsing regexp: {reason}"
            ),
        ));
    }
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
        Some(items) => {
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
            for k in &keys {
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
                        &keys_path,
                        &go_string_slice(&keys),
                        "entries must all be names of item properties",
                    )),
                }
                if seen.contains(k) {
                    errs.push(FieldError::invalid(
                        &keys_path,
                        &go_string_slice(&keys),
                        "must not contain duplicate entries",
                    ));
                }
                seen.push(*k);
            }
        }
    }
}

static REPEAT_COUNT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^\{\d+(,\d*)?\}").expect("constant regex compiles")
});

/// Go's `regexp/syntax` message for a pattern Go refuses, for the cases the `regex` crate
/// accepts or words differently: lookaround, backreferences and unknown escapes, nested
/// repetition (`a++`), and unclosed classes and groups.
fn go_syntax_error(pattern: &str) -> Option<String> {
    for construct in ["(?<=", "(?<!", "(?=", "(?!"] {
        if pattern.contains(construct) {
            return Some(format!("invalid or unsupported Perl syntax: `{construct}`"));
        }
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    // Where the previous repetition operator started, if the last token was one.
    let mut last_repeat: Option<usize> = None;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                last_repeat = None;
                let Some(&c) = chars.get(i + 1) else {
                    return Some("trailing backslash at end of expression: ``".to_string());
                };
                if c == 'Q' {
                    // A literal span up to `\E`.
                    let rest: String = chars[i + 2..].iter().collect();
                    match rest.find("\\E") {
                        Some(end) => i += 2 + rest[..end].chars().count() + 2,
                        None => i = chars.len(),
                    }
                    continue;
                }
                let valid = !c.is_ascii_alphanumeric()
                    || "afntrvxpPdDsSwWbBAzE0".contains(c)
                    || (('1'..='7').contains(&c)
                        && chars.get(i + 2).is_some_and(|d| ('0'..='7').contains(d)));
                if !valid {
                    return Some(format!("invalid escape sequence: `\\{c}`"));
                }
                i += 2;
            }
            '[' => {
                last_repeat = None;
                let start = i;
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    i += 1;
                }
                loop {
                    match chars.get(i) {
                        None => {
                            let rest: String = chars[start..].iter().collect();
                            return Some(format!("missing closing ]: `{rest}`"));
                        }
                        Some('\\') => i += 2,
                        Some('[') if chars.get(i + 1) == Some(&':') => {
                            let rest: String = chars[i..].iter().collect();
                            i += rest.find(":]").map_or(1, |e| rest[..e].chars().count() + 2);
                        }
                        Some(']') => {
                            i += 1;
                            break;
                        }
                        Some(_) => i += 1,
                    }
                }
            }
            '*' | '+' | '?' | '{' => {
                let start = i;
                let len = if chars[i] == '{' {
                    let rest: String = chars[i..].iter().collect();
                    match REPEAT_COUNT.find(&rest) {
                        Some(m) => m.as_str().chars().count(),
                        None => {
                            // A `{` that is not a repeat count is a literal in Go.
                            last_repeat = None;
                            i += 1;
                            continue;
                        }
                    }
                } else {
                    1
                };
                i += len;
                if chars.get(i) == Some(&'?') {
                    i += 1;
                }
                if let Some(previous) = last_repeat {
                    let text: String = chars[previous..i].iter().collect();
                    return Some(format!("invalid nested repetition operator: `{text}`"));
                }
                last_repeat = Some(start);
            }
            _ => {
                last_repeat = None;
                i += 1;
            }
        }
    }
    None
}

/// Go's wording for what the `regex` crate reports differently.
fn go_wording(pattern: &str, rust_error: &str) -> String {
    if rust_error.contains("unclosed group") {
        format!("missing closing ): `{pattern}`")
    } else if rust_error.contains("unopened group") {
        format!("unexpected ): `{pattern}`")
    } else if rust_error.contains("repetition operator missing expression") {
        let op: String = pattern
            .chars()
            .find(|c| matches!(c, '*' | '+' | '?'))
            .map(String::from)
            .unwrap_or_default();
        format!("missing argument to repetition operator: `{op}`")
    } else {
        rust_error.to_string()
    }
}

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
fn cel_rules(s: &Value, path: &str, errs: &mut Vec<FieldError>) {
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
