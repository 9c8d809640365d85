//! Value validation of custom objects against their schema, as kube-openapi's validator plus the
//! apiserver's list-type and embedded-resource checks report it.

use super::FieldError;
use super::go::{go_float, go_value, type_name};
use parking_lot::Mutex;
use regex::Regex;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::LazyLock;

/// Validates a custom object (already pruned and defaulted) against its version's schema.
/// Returns every failure; empty means valid. `x-kubernetes-validations` (CEL) are not evaluated.
pub fn validate(schema: &Value, obj: &Value) -> Vec<FieldError> {
    let mut v = Validator {
        prefix: String::new(),
        list_types: true,
        errs: Vec::new(),
    };
    v.node(schema, obj, "");
    v.errs
}

/// Validates a schema default with error paths below `prefix`, as `ValidateDefaults` does: the
/// list-type uniqueness checks do not apply to defaults.
pub(crate) fn validate_at(schema: &Value, value: &Value, prefix: &str) -> Vec<FieldError> {
    let mut v = Validator {
        prefix: prefix.to_string(),
        list_types: false,
        errs: Vec::new(),
    };
    v.node(schema, value, "");
    v.errs
}

/// Compiles `pattern` once per process; `None` when it is not a valid RE2 expression.
pub(crate) fn compiled(pattern: &str) -> Option<Regex> {
    static CACHE: LazyLock<Mutex<HashMap<String, Option<Regex>>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    CACHE
        .lock()
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(&expand_quoted(pattern)).ok())
        .clone()
}

/// Rewrites Go's `\Q…\E` literal spans, which the `regex` crate lacks, as escaped text.
pub(crate) fn expand_quoted(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(start) = rest.find("\\Q") {
        // Only an unescaped `\Q` opens a span.
        let backslashes = rest[..start]
            .chars()
            .rev()
            .take_while(|c| *c == '\\')
            .count();
        if backslashes % 2 == 1 {
            out.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let quoted = &rest[start + 2..];
        let (literal, after) = match quoted.find("\\E") {
            Some(end) => (&quoted[..end], &quoted[end + 2..]),
            None => (quoted, ""),
        };
        out.push_str(&regex::escape(literal));
        rest = after;
    }
    out.push_str(rest);
    out
}

struct Validator {
    /// Field path the data paths hang below (empty for an object itself).
    prefix: String,
    /// Whether `x-kubernetes-list-type` set/map uniqueness is checked.
    list_types: bool,
    errs: Vec<FieldError>,
}

fn child(name: &str, key: &str) -> String {
    if name.is_empty() {
        key.to_string()
    } else {
        format!("{name}.{key}")
    }
}

/// kube-openapi's `"%s in body"`; the root's empty name leaves the leading space, as upstream.
fn in_body(name: &str) -> String {
    format!("{name} in body")
}

fn str_of<'a>(s: &'a Value, key: &str) -> Option<&'a str> {
    s.get(key).and_then(Value::as_str)
}

fn flag(s: &Value, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn num(s: &Value, key: &str) -> Option<f64> {
    s.get(key).and_then(Value::as_f64)
}

fn int(s: &Value, key: &str) -> Option<i64> {
    s.get(key)
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
}

fn is_integral(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

impl Validator {
    fn path(&self, name: &str) -> String {
        match (self.prefix.is_empty(), name.is_empty()) {
            (true, _) => name.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}.{name}", self.prefix),
        }
    }

    fn sub(&self, schema: &Value, value: &Value, name: &str) -> Vec<FieldError> {
        let mut v = Validator {
            prefix: self.prefix.clone(),
            list_types: self.list_types,
            errs: Vec::new(),
        };
        v.node(schema, value, name);
        v.errs
    }

    fn node(&mut self, s: &Value, v: &Value, name: &str) {
        if !s.is_object() {
            return;
        }
        let path = self.path(name);
        self.check_type(s, v, name, &path);
        if v.is_null() {
            // Even a nullable null has to be one of the enum values (kube-openapi).
            self.check_enum(s, v, &path);
            return;
        }
        self.composites(s, v, name);
        if let Value::String(text) = v {
            self.string(s, v, text, name, &path);
        }
        if let Value::Number(n) = v {
            self.number(s, v, n.as_f64().unwrap_or(0.0), name, &path);
        }
        self.check_enum(s, v, &path);
        match v {
            Value::Array(items) => self.array(s, items, name, &path),
            Value::Object(m) => self.object(s, m, name, &path),
            _ => {}
        }
    }

    fn check_enum(&mut self, s: &Value, v: &Value, path: &str) {
        if let Some(allowed) = s.get("enum").and_then(Value::as_array)
            && !allowed.contains(v)
        {
            let valid: Vec<String> = allowed
                .iter()
                .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
                .collect();
            self.errs
                .push(FieldError::not_supported(path, &go_value(v), &valid));
        }
    }

    /// The type check (`null` passes only where `nullable`).
    fn check_type(&mut self, s: &Value, v: &Value, name: &str, path: &str) {
        let t = str_of(s, "type").unwrap_or("");
        if v.is_null() {
            if !t.is_empty() && !flag(s, "nullable") {
                self.errs.push(FieldError::type_invalid(
                    path,
                    "\"null\"",
                    &format!("{} must be of type {t}: \"null\"", in_body(name)),
                ));
            }
            return;
        }
        if flag(s, "x-kubernetes-int-or-string") && t.is_empty() {
            if !(is_integral(v) || v.is_string()) {
                let actual = type_name(v);
                self.errs.push(FieldError::type_invalid(
                    path,
                    &format!("\"{actual}\""),
                    &format!(
                        "{} must be of type integer,string: \"{actual}\"",
                        in_body(name)
                    ),
                ));
            }
            return;
        }
        if t == "integer" && v.is_number() && !is_integral(v) {
            // kube-openapi reports a fraction for an integer twice: a composite "Checked value"
            // error and the type error (naming the format, if any).
            let format = str_of(s, "format");
            let described = match format {
                Some(f) => format!("with format {f}"),
                None => "(default format)".to_string(),
            };
            let composite_path = self.prefix.clone();
            self.errs.push(FieldError::invalid(
                &composite_path,
                "\"\"",
                &format!("Checked value must be of type integer {described} in {name}"),
            ));
            let (expected, actual) = match format {
                Some(f @ ("int32" | "int64")) => (f, "float64"),
                _ => ("integer", "number"),
            };
            self.errs.push(FieldError::type_invalid(
                path,
                &format!("\"{actual}\""),
                &format!("{} must be of type {expected}: \"{actual}\"", in_body(name)),
            ));
            return;
        }
        let ok = match t {
            "" => true,
            "integer" => is_integral(v),
            "number" => v.is_number(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            _ => true,
        };
        if !ok {
            let actual = type_name(v);
            self.errs.push(FieldError::type_invalid(
                path,
                &format!("\"{actual}\""),
                &format!("{} must be of type {t}: \"{actual}\"", in_body(name)),
            ));
        }
    }

    fn composites(&mut self, s: &Value, v: &Value, name: &str) {
        let composite_path = if self.prefix.is_empty() {
            String::new()
        } else {
            self.prefix.clone()
        };
        let quoted = crate::names::go_quote(name);
        if let Some(all_of) = s.get("allOf").and_then(Value::as_array) {
            let mut valid = 0;
            for sub in all_of {
                let errs = self.sub(sub, v, name);
                if errs.is_empty() {
                    valid += 1;
                }
                self.errs.extend(errs);
            }
            if valid != all_of.len() {
                let extra = if valid == 0 { ". Found none valid" } else { "" };
                self.errs.push(FieldError::invalid(
                    &composite_path,
                    "\"\"",
                    &format!("{quoted} must validate all the schemas (allOf){extra}"),
                ));
            }
        }
        if let Some(any_of) = s.get("anyOf").and_then(Value::as_array)
            && !any_of.is_empty()
        {
            let mut best: Option<Vec<FieldError>> = None;
            for sub in any_of {
                let errs = self.sub(sub, v, name);
                if errs.is_empty() {
                    best = None;
                    break;
                }
                if best.as_ref().is_none_or(|b| errs.len() < b.len()) {
                    best = Some(errs);
                }
            }
            if let Some(best) = best {
                self.errs.push(FieldError::invalid(
                    &composite_path,
                    "\"\"",
                    &format!("{quoted} must validate at least one schema (anyOf)"),
                ));
                self.errs.extend(best);
            }
        }
        if let Some(one_of) = s.get("oneOf").and_then(Value::as_array)
            && !one_of.is_empty()
        {
            let mut valid = 0;
            let mut best: Option<Vec<FieldError>> = None;
            for sub in one_of {
                let errs = self.sub(sub, v, name);
                if errs.is_empty() {
                    valid += 1;
                } else if best.as_ref().is_none_or(|b| errs.len() < b.len()) {
                    best = Some(errs);
                }
            }
            if valid == 0 {
                self.errs.push(FieldError::invalid(
                    &composite_path,
                    "\"\"",
                    &format!(
                        "{quoted} must validate one and only one schema (oneOf). Found none valid"
                    ),
                ));
                self.errs.extend(best.unwrap_or_default());
            } else if valid > 1 {
                self.errs.push(FieldError::invalid(
                    &composite_path,
                    "\"\"",
                    &format!(
                        "{quoted} must validate one and only one schema (oneOf). Found {valid} valid alternatives"
                    ),
                ));
            }
        }
        if let Some(not) = s.get("not")
            && not.is_object()
            && self.sub(not, v, name).is_empty()
        {
            self.errs.push(FieldError::invalid(
                &composite_path,
                "\"\"",
                &format!("{quoted} must not validate the schema (not)"),
            ));
        }
    }

    /// maxLength, minLength, pattern: only the first failure is reported, as in kube-openapi.
    fn string(&mut self, s: &Value, v: &Value, text: &str, name: &str, path: &str) {
        let len = text.chars().count() as i64;
        if let Some(max) = int(s, "maxLength")
            && len > max
        {
            self.errs.push(FieldError::too_long(path, max));
        } else if let Some(min) = int(s, "minLength")
            && len < min
        {
            self.errs.push(FieldError::invalid(
                path,
                &go_value(v),
                &format!("{} should be at least {min} chars long", in_body(name)),
            ));
        } else if let Some(pattern) = str_of(s, "pattern")
            && let Some(re) = compiled(pattern)
            && !re.is_match(text)
        {
            self.errs.push(FieldError::invalid(
                path,
                &go_value(v),
                &format!("{} should match '{pattern}'", in_body(name)),
            ));
        }
        if let Some(format) = str_of(s, "format")
            && !format_ok(format, text)
        {
            self.errs.push(FieldError::type_invalid(
                path,
                &go_value(v),
                &format!(
                    "{} must be of type {format}: {}",
                    in_body(name),
                    crate::names::go_quote(text)
                ),
            ));
        }
    }

    fn number(&mut self, s: &Value, v: &Value, n: f64, name: &str, path: &str) {
        let integer = v.as_i64().or_else(|| v.as_u64().map(|u| u as i64));
        if let (Some(factor), Some(data)) = (num(s, "multipleOf"), integer) {
            // kube-openapi checks integers against the factor truncated to an integer.
            let factor = factor.trunc() as i64;
            if factor <= 0 {
                self.errs.push(FieldError::invalid(
                    path,
                    &factor.to_string(),
                    &format!("factor MultipleOf declared for {name} must be positive: {factor}"),
                ));
            } else if data % factor != 0 {
                self.errs.push(FieldError::invalid(
                    path,
                    &go_value(v),
                    &format!("{} should be a multiple of {factor}", in_body(name)),
                ));
            }
        } else if let Some(factor) = num(s, "multipleOf")
            && factor > 0.0
        {
            let q = n / factor;
            if (q - q.round()).abs() > 1e-9 * q.abs().max(1.0) {
                self.errs.push(FieldError::invalid(
                    path,
                    &go_value(v),
                    &format!(
                        "{} should be a multiple of {}",
                        in_body(name),
                        go_float(factor)
                    ),
                ));
            }
        }
        if let Some(max) = num(s, "maximum") {
            let exclusive = flag(s, "exclusiveMaximum");
            if (exclusive && n >= max) || n > max {
                let op = if exclusive {
                    "less than"
                } else {
                    "less than or equal to"
                };
                self.errs.push(FieldError::invalid(
                    path,
                    &go_value(v),
                    &format!("{} should be {op} {}", in_body(name), go_float(max)),
                ));
            }
        }
        if let Some(min) = num(s, "minimum") {
            let exclusive = flag(s, "exclusiveMinimum");
            if (exclusive && n <= min) || n < min {
                let op = if exclusive {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                self.errs.push(FieldError::invalid(
                    path,
                    &go_value(v),
                    &format!("{} should be {op} {}", in_body(name), go_float(min)),
                ));
            }
        }
    }

    fn array(&mut self, s: &Value, items: &[Value], name: &str, path: &str) {
        let len = items.len();
        if let Some(min) = int(s, "minItems")
            && (len as i64) < min
        {
            self.errs.push(FieldError::invalid(
                path,
                &len.to_string(),
                &format!("{} should have at least {min} items", in_body(name)),
            ));
        }
        if let Some(max) = int(s, "maxItems")
            && (len as i64) > max
        {
            self.errs.push(FieldError::too_many(path, len, max));
        }
        if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
            for (i, item) in items.iter().enumerate() {
                self.node(item_schema, item, &format!("{name}[{i}]"));
            }
        }
        match str_of(s, "x-kubernetes-list-type").filter(|_| self.list_types) {
            Some("set") => self.unique_set(items, name),
            Some("map") => self.unique_map(s, items, name),
            _ => {}
        }
    }

    /// `list-type: set`: each repeated value is reported once, at its second occurrence.
    fn unique_set(&mut self, items: &[Value], name: &str) {
        let mut seen: Vec<(&Value, usize)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match seen.iter_mut().find(|(v, _)| *v == item) {
                Some((_, times)) => {
                    *times += 1;
                    if *times == 2 {
                        let p = self.path(&format!("{name}[{i}]"));
                        self.errs.push(FieldError::duplicate(&p, &go_value(item)));
                    }
                }
                None => seen.push((item, 1)),
            }
        }
    }

    /// `list-type: map`: items must be objects with unique key tuples (missing keys take their
    /// default).
    fn unique_map(&mut self, s: &Value, items: &[Value], name: &str) {
        for (i, item) in items.iter().enumerate() {
            if !item.is_object() && !item.is_null() {
                let p = self.path(&format!("{name}[{i}]"));
                self.errs.push(FieldError::invalid(
                    &p,
                    &go_value(item),
                    "must be an object for an array of list-type map",
                ));
                return;
            }
        }
        let keys: Vec<&str> = s
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|k| k.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let key_of = |item: &Value| -> Vec<Option<Value>> {
            keys.iter()
                .map(|k| {
                    item.get(*k).cloned().or_else(|| {
                        s.pointer(&format!("/items/properties/{k}/default"))
                            .cloned()
                    })
                })
                .collect()
        };
        let mut seen: Vec<(Vec<Option<Value>>, usize)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let k = key_of(item);
            match seen.iter_mut().find(|(v, _)| *v == k) {
                Some((_, times)) => {
                    *times += 1;
                    if *times == 2 {
                        // The apiserver shows the key fields of the duplicate, not the item.
                        let shown: Map<String, Value> = keys
                            .iter()
                            .zip(&k)
                            .filter_map(|(name, v)| Some((name.to_string(), v.clone()?)))
                            .collect();
                        let p = self.path(&format!("{name}[{i}]"));
                        self.errs
                            .push(FieldError::duplicate(&p, &go_value(&Value::Object(shown))));
                    }
                }
                None => seen.push((k, 1)),
            }
        }
    }

    fn object(&mut self, s: &Value, m: &Map<String, Value>, name: &str, path: &str) {
        let size = m.len();
        if let Some(max) = int(s, "maxProperties")
            && (size as i64) > max
        {
            self.errs.push(FieldError::too_many(path, size, max));
        }
        if let Some(min) = int(s, "minProperties")
            && (size as i64) < min
        {
            self.errs.push(FieldError::invalid(
                path,
                &size.to_string(),
                &format!("{} should have at least {min} properties", in_body(name)),
            ));
        }
        if let Some(required) = s.get("required").and_then(Value::as_array) {
            for r in required.iter().filter_map(Value::as_str) {
                if !m.contains_key(r) {
                    let p = self.path(&child(name, r));
                    self.errs.push(FieldError::required(&p, ""));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        let additional = s.get("additionalProperties").filter(|a| a.is_object());
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort();
        for k in keys {
            let value = &m[k];
            match props.and_then(|p| p.get(k)) {
                Some(prop) => self.node(prop, value, &child(name, k)),
                None => {
                    if let Some(additional) = additional {
                        self.node(additional, value, &child(name, k));
                    }
                }
            }
        }
        if flag(s, "x-kubernetes-embedded-resource") && !name.is_empty() {
            self.embedded(m, name);
        }
    }

    /// An embedded resource needs `apiVersion` and `kind` (`schemaobjectmeta.Validate`).
    fn embedded(&mut self, m: &Map<String, Value>, name: &str) {
        for key in ["apiVersion", "kind"] {
            let p = self.path(&child(name, key));
            match m.get(key) {
                None => self.errs.push(FieldError::required(&p, "")),
                Some(Value::String(s)) if s.is_empty() => {
                    self.errs
                        .push(FieldError::invalid(&p, "\"\"", "must not be empty"))
                }
                Some(Value::String(s)) if key == "apiVersion" && s.matches('/').count() > 1 => {
                    self.errs.push(FieldError::invalid(
                        &p,
                        &go_value(&Value::String(s.clone())),
                        &format!("unexpected GroupVersion string: {s}"),
                    ))
                }
                Some(Value::String(_)) => {}
                Some(other) => self.errs.push(FieldError::invalid(
                    &p,
                    &go_value(other),
                    "must be a string",
                )),
            }
        }
    }
}

static DATE_TIME_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$",
    )
    .expect("constant regex compiles")
});
static DATE_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\d{4})-(\d{2})-(\d{2})$").expect("constant regex compiles"));
static UUID_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?([0-9a-f])[0-9a-f]{3}-?([0-9a-f])[0-9a-f]{3}-?[0-9a-f]{12}$")
        .expect("constant regex compiles")
});
static MAC_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([0-9A-Fa-f]{2}[:-]){5}([0-9A-Fa-f]{2})$|^([0-9A-Fa-f]{2}[:-]){7}([0-9A-Fa-f]{2})$|^([0-9A-Fa-f]{4}\.){2}([0-9A-Fa-f]{4})$")
        .expect("constant regex compiles")
});
static HOSTNAME_LABEL_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$").expect("constant regex compiles")
});
static DURATION_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[-+]?((\d+(\.\d*)?|\.\d+)\s*(ns|us|µs|ms|s|m|h|d|w|sec|secs|seconds?|min|mins|minutes?|hours?|hr|days?|weeks?|wk)\s*)+$")
        .expect("constant regex compiles")
});

/// Go's `url.ParseRequestURI`, roughly: an absolute URI (`scheme:…`) or an absolute path, with
/// no spaces or control characters.
fn uri_ok(s: &str) -> bool {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    if s.starts_with('/') {
        return true;
    }
    match s.split_once(':') {
        Some((scheme, _)) => {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

fn valid_date(y: &str, m: &str, d: &str) -> bool {
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i16>(), m.parse::<i8>(), d.parse::<i8>()) else {
        return false;
    };
    jiff::civil::Date::new(y, m, d).is_ok()
}

fn base64_ok(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return false;
    }
    let pad = bytes.iter().rev().take_while(|b| **b == b'=').count();
    pad <= 2
        && bytes[..bytes.len() - pad]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// Whether `s` satisfies `format` the way kube-openapi's default registry checks it.
/// Unknown formats pass, as they do on the real server.
pub(crate) fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" => DATE_TIME_RE.captures(s).is_some_and(|c| {
            valid_date(&c[1], &c[2], &c[3])
                && c[4].parse::<u8>().is_ok_and(|h| h < 24)
                && c[5].parse::<u8>().is_ok_and(|m| m < 60)
                && c[6].parse::<u8>().is_ok_and(|x| x < 60)
        }),
        "date" => DATE_RE
            .captures(s)
            .is_some_and(|c| valid_date(&c[1], &c[2], &c[3])),
        "byte" => base64_ok(s),
        "uuid" => UUID_RE.is_match(s),
        "uuid3" | "uuid4" | "uuid5" => UUID_RE.captures(s).is_some_and(|c| {
            let version = &format[4..];
            let variant_ok = matches!(&c[2], "8" | "9" | "a" | "b" | "A" | "B");
            c[1] == *version && (format == "uuid3" || variant_ok)
        }),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => s.split_once('/').is_some_and(|(ip, bits)| {
            let Ok(bits) = bits.parse::<u8>() else {
                return false;
            };
            match ip.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(_)) => bits <= 32,
                Ok(std::net::IpAddr::V6(_)) => bits <= 128,
                Err(_) => false,
            }
        }),
        "mac" => MAC_RE.is_match(s),
        "hostname" => {
            let trimmed = s.strip_suffix('.').unwrap_or(s);
            !trimmed.is_empty()
                && s.len() <= 255
                && trimmed.split('.').all(|l| HOSTNAME_LABEL_RE.is_match(l))
        }
        "email" => s.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !s.contains(' ')
        }),
        "duration" => DURATION_RE.is_match(s),
        "uri" => uri_ok(s),
        _ => true,
    }
}
