//! Field-level attributes: the JSON keys each `#[kubeforge(...)]` field attribute adds to its
//! schema (bounds, patterns, enums, formats, defaults checked against the field's type, CEL rules,
//! list and map types), and the resource's own CEL rules. Called by the derive's schema emission.

use darling::util::{PreservedStrExpr, SpannedValue};
use proc_macro2::Span;
use regex::Regex;
use serde_json::{Map, Value, json};
use syn::spanned::Spanned;
use syn::{GenericArgument, LitStr, PathArguments, Type};

use crate::attrs::{SchemaField, ValidationAttrs};
use crate::json::{expr_to_json, expr_to_number};

use super::err;

pub(super) const FORMATS: &[&str] = &[
    "int32",
    "int64",
    "float",
    "double",
    "byte",
    "binary",
    "date",
    "date-time",
    "password",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "duration",
    "datetime",
    "bsonobjectid",
];
const REASONS: &[&str] = &[
    "FieldValueInvalid",
    "FieldValueForbidden",
    "FieldValueRequired",
    "FieldValueDuplicate",
];

/// A CEL rule as the JSON object Kubernetes expects.
pub fn validation_json(v: &ValidationAttrs, errors: &mut darling::error::Accumulator) -> Value {
    let rule = v.rule.value();
    if rule.trim().is_empty() {
        errors.push(err(
            v.rule.span(),
            "empty CEL rule: write an expression such as `self.size <= 10`",
        ));
    }
    if let Some(problem) = cel_syntax_problem(&rule) {
        errors.push(err(
            v.rule.span(),
            format!("CEL rule does not parse: {problem}"),
        ));
    }
    let mut out = Map::new();
    out.insert("rule".into(), rule.into());
    if let Some(m) = &v.message {
        if m.value().contains('\n') {
            errors.push(err(
                m.span(),
                "a validation message cannot contain a newline; use one line",
            ));
        }
        out.insert("message".into(), m.value().into());
    }
    if let Some(m) = &v.message_expression {
        out.insert("messageExpression".into(), m.value().into());
    }
    if let Some(r) = &v.reason {
        if !REASONS.contains(&r.value().as_str()) {
            errors.push(err(
                r.span(),
                format!(
                    "unknown reason `{}`: use one of {}",
                    r.value(),
                    REASONS.join(", ")
                ),
            ));
        }
        out.insert("reason".into(), r.value().into());
    }
    if let Some(p) = &v.field_path {
        if !p.value().starts_with('.') {
            errors.push(err(p.span(), "field_path is relative to the rule's object and starts with `.`, e.g. `.spec.size`"));
        }
        out.insert("fieldPath".into(), p.value().into());
    }
    if v.optional_old_self.is_present() {
        out.insert("optionalOldSelf".into(), true.into());
    }
    Value::Object(out)
}

/// Cheap syntax checks the build can make without a CEL parser: balanced brackets and quotes.
fn cel_syntax_problem(rule: &str) -> Option<String> {
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in rule.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Some(format!("unbalanced `{c}`"));
                }
            }
            _ => {}
        }
    }
    if quote.is_some() {
        return Some("unterminated string literal".into());
    }
    stack.last().map(|c| format!("unclosed `{c}`"))
}

/// The JSON kinds a Rust type serializes to, when the build can tell (None: unknown type).
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Integer,
    Number,
    String,
    Boolean,
    Array(Box<Option<Shape>>),
    Object,
    IntOrString,
    Nullable(Box<Option<Shape>>),
}

/// What a field type looks like in JSON, for build-time checks of defaults and list/map attributes.
pub fn shape_of(ty: &Type) -> Option<Shape> {
    let Type::Path(tp) = ty else {
        return match ty {
            Type::Reference(r) => shape_of(&r.elem),
            _ => None,
        };
    };
    let seg = tp.path.segments.last()?;
    let first_arg = || match &seg.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    };
    Some(match seg.ident.to_string().as_str() {
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128"
        | "usize" => Shape::Integer,
        "f32" | "f64" => Shape::Number,
        "bool" => Shape::Boolean,
        "String" | "str" | "char" | "Time" | "MicroTime" | "DateTime" | "Timestamp" => {
            Shape::String
        }
        "IntOrString" | "Quantity" => Shape::IntOrString,
        "Vec" | "VecDeque" | "BTreeSet" | "HashSet" => {
            Shape::Array(Box::new(first_arg().and_then(shape_of)))
        }
        "BTreeMap" | "HashMap" => Shape::Object,
        "Option" => Shape::Nullable(Box::new(first_arg().and_then(shape_of))),
        "Box" | "Arc" | "Rc" => return first_arg().and_then(shape_of),
        _ => return None,
    })
}

fn json_matches(v: &Value, shape: &Option<Shape>) -> bool {
    let Some(shape) = shape else { return true };
    match (shape, v) {
        (Shape::Nullable(inner), Value::Null) => {
            let _ = inner;
            true
        }
        (Shape::Nullable(inner), v) => json_matches(v, inner),
        (Shape::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Shape::Number, Value::Number(_)) => true,
        (Shape::String, Value::String(_)) => true,
        (Shape::Boolean, Value::Bool(_)) => true,
        (Shape::IntOrString, Value::String(_)) => true,
        (Shape::IntOrString, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Shape::Array(item), Value::Array(xs)) => xs.iter().all(|x| json_matches(x, item)),
        (Shape::Object, Value::Object(_)) => true,
        _ => false,
    }
}

fn shape_name(shape: &Shape) -> String {
    match shape {
        Shape::Integer => "an integer".into(),
        Shape::Number => "a number".into(),
        Shape::String => "a string".into(),
        Shape::Boolean => "a boolean".into(),
        Shape::Array(_) => "an array (`[...]`)".into(),
        Shape::Object => "an object (use `default_json`)".into(),
        Shape::IntOrString => "an integer or a string".into(),
        Shape::Nullable(inner) => inner
            .as_ref()
            .as_ref()
            .map_or_else(|| "a value or null".into(), shape_name),
    }
}

fn is_list(shape: &Option<Shape>) -> bool {
    match shape {
        Some(Shape::Array(_)) => true,
        Some(Shape::Nullable(inner)) => is_list(inner),
        _ => false,
    }
}

/// The JSON keys a field's attributes add to its schema (empty when it has none).
pub fn field_extensions(
    f: &SchemaField,
    errors: &mut darling::error::Accumulator,
) -> Map<String, Value> {
    let mut ext = Map::new();
    let shape = shape_of(&f.ty);
    add_numeric_bounds(f, &mut ext, errors);
    add_size_bounds(f, &mut ext, errors);
    let compiled_pattern = add_pattern(f, &mut ext, errors);
    add_enum(f, &shape, &mut ext, errors);
    add_format(f, &mut ext, errors);
    add_default(f, &shape, compiled_pattern.as_ref(), &mut ext, errors);
    add_validations(f, &mut ext, errors);
    add_list_type(f, &shape, &mut ext, errors);
    add_map_type(f, &shape, &mut ext, errors);
    add_markers(f, &mut ext);
    ext
}

/// `minimum`, `maximum`, `multipleOf` and the exclusive flags, checked against each other.
fn add_numeric_bounds(
    f: &SchemaField,
    ext: &mut Map<String, Value>,
    errors: &mut darling::error::Accumulator,
) {
    let mut number = |key: &str, e: &Option<PreservedStrExpr>, ext: &mut Map<String, Value>| {
        if let Some(PreservedStrExpr(e)) = e {
            match expr_to_number(e) {
                Ok(n) => {
                    ext.insert(key.into(), n);
                }
                Err(e) => errors.push(e),
            }
        }
    };
    number("minimum", &f.minimum, ext);
    number("maximum", &f.maximum, ext);
    number("multipleOf", &f.multiple_of, ext);
    if f.exclusive_minimum.is_present() {
        if f.minimum.is_none() {
            errors.push(err(
                f.exclusive_minimum.span(),
                "`exclusive_minimum` needs `minimum = ...`",
            ));
        }
        ext.insert("exclusiveMinimum".into(), true.into());
    }
    if f.exclusive_maximum.is_present() {
        if f.maximum.is_none() {
            errors.push(err(
                f.exclusive_maximum.span(),
                "`exclusive_maximum` needs `maximum = ...`",
            ));
        }
        ext.insert("exclusiveMaximum".into(), true.into());
    }
    if let (Some(Value::Number(lo)), Some(Value::Number(hi))) =
        (ext.get("minimum"), ext.get("maximum"))
        && lo.as_f64() > hi.as_f64()
        && let Some(m) = &f.minimum
    {
        errors.push(err(
            m.span(),
            format!("minimum {lo} is greater than maximum {hi}"),
        ));
    }
    if let Some(Value::Number(step)) = ext.get("multipleOf")
        && step.as_f64().is_some_and(|s| s <= 0.0)
        && let Some(m) = &f.multiple_of
    {
        errors.push(err(m.span(), "multiple_of must be positive"));
    }
}

/// Length, item and property counts (`minLength` ... `maxProperties`), each min at most its max.
fn add_size_bounds(
    f: &SchemaField,
    ext: &mut Map<String, Value>,
    errors: &mut darling::error::Accumulator,
) {
    let counts = [
        ("minLength", &f.min_length),
        ("maxLength", &f.max_length),
        ("minItems", &f.min_items),
        ("maxItems", &f.max_items),
        ("minProperties", &f.min_properties),
        ("maxProperties", &f.max_properties),
    ];
    for (key, v) in counts {
        if let Some(v) = v {
            ext.insert(key.into(), json!(**v));
        }
    }
    for (lo, hi, span) in [
        (
            "minLength",
            "maxLength",
            f.min_length.as_ref().map(SpannedValue::span),
        ),
        (
            "minItems",
            "maxItems",
            f.min_items.as_ref().map(SpannedValue::span),
        ),
        (
            "minProperties",
            "maxProperties",
            f.min_properties.as_ref().map(SpannedValue::span),
        ),
    ] {
        if let (Some(l), Some(h), Some(span)) = (
            ext.get(lo).and_then(Value::as_u64),
            ext.get(hi).and_then(Value::as_u64),
            span,
        ) && l > h
        {
            errors.push(err(span, format!("{lo} {l} is greater than {hi} {h}")));
        }
    }
}

/// `pattern`, returned compiled (when it compiles) so the default can be checked against it.
fn add_pattern(
    f: &SchemaField,
    ext: &mut Map<String, Value>,
    errors: &mut darling::error::Accumulator,
) -> Option<Regex> {
    let mut compiled_pattern = None;
    if let Some(p) = &f.pattern {
        match Regex::new(&p.value()) {
            Ok(re) => compiled_pattern = Some(re),
            Err(e) => errors.push(err(
                p.span(),
                format!(
                    "invalid regular expression: {}",
                    e.to_string()
                        .lines()
                        .last()
                        .unwrap_or("syntax error")
                        .trim()
                ),
            )),
        }
        ext.insert("pattern".into(), p.value().into());
    }
    compiled_pattern
}

/// `enum`: a non-empty list of values, each of the field's type.
fn add_enum(
    f: &SchemaField,
    shape: &Option<Shape>,
    ext: &mut Map<String, Value>,
    errors: &mut darling::error::Accumulator,
) {
    if let Some(PreservedStrExpr(e)) = &f.enum_values {
        match expr_to_json(e) {
            Ok(Value::Array(values)) if !values.is_empty() => {
                for v in &values {
                    if !json_matches(v, shape) {
                        errors.push(err(
                            e.span(),
                            format!(
                                "enum value {v} does not match the field type: expected {}",
                                shape.as_ref().map_or_else(String::new, shape_name)
                            ),
                        ));
                        break;
                    }
                }
                ext.insert("enum".into(), Value::Array(values));
            }
            Ok(_) => errors.push(err(
                e.span(),
                "enum_values takes a non-empty array: `enum_values = [\"a\", \"b\"]`",
            )),
            Err(e) => errors.push(e),
        }
    }
}

/// `format`, one the API server knows.
fn add_format(
    f: &SchemaField,
    ext: &mut Map<String, Value>,
    errors: &mut darling::error::Accumulator,
) {
    if let Some(fmt) = &f.format {
        if !FORMATS.contains(&fmt.value().as_str()) {
            errors.push(err(fmt.span(), format!("unknown format `{}`: use e.g. date-time, date, email, uri, uuid, hostname, ipv4, int32, int64", fmt.value())));
        }
        ext.insert("format".into(), fmt.value().into());
    }
}

/// `default` (a Rust expression) or `default_json`, checked against the type and the keys
/// added so far, since the API server rejects a CRD whose default breaks its own schema.
fn add_default(
    f: &SchemaField,
    shape: &Option<Shape>,
    compiled_pattern: Option<&Regex>,
    ext: &mut Map<String, Value>,
    errors: &mut darling::error::Accumulator,
) {
    if f.default.is_some()
        && f.default_json.is_some()
        && let Some(d) = &f.default_json
    {
        errors.push(err(
            d.span(),
            "give either `default` or `default_json`, not both",
        ));
    }
    let default = match (&f.default, &f.default_json) {
        (Some(PreservedStrExpr(e)), _) => match expr_to_json(e) {
            Ok(v) => Some((v, e.span())),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        (None, Some(s)) => match serde_json::from_str::<Value>(&s.value()) {
            Ok(v) => Some((v, s.span())),
            Err(e) => {
                errors.push(err(
                    s.span(),
                    format!("default_json is not valid JSON: {e}"),
                ));
                None
            }
        },
        _ => None,
    };
    if let Some((value, span)) = default {
        check_default(&value, span, shape, ext, compiled_pattern, errors);
        ext.insert("default".into(), value);
    }
}

/// `x-kubernetes-validations`: the CEL rules, plus the one `immutable` stands for.
fn add_validations(
    f: &SchemaField,
    ext: &mut Map<String, Value>,
    errors: &mut darling::error::Accumulator,
) {
    let mut rules: Vec<Value> = f
        .validation
        .iter()
        .map(|v| validation_json(v, errors))
        .collect();
    if f.immutable.is_present() {
        let name = f
            .ident
            .as_ref()
            .map_or_else(|| "value".to_string(), ToString::to_string);
        rules.push(json!({"rule": "self == oldSelf", "message": format!("{name} is immutable")}));
    }
    if !rules.is_empty() {
        ext.insert("x-kubernetes-validations".into(), Value::Array(rules));
    }
}

/// `x-kubernetes-list-type` and `-list-map-keys`: how server-side apply merges a list.
fn add_list_type(
    f: &SchemaField,
    shape: &Option<Shape>,
    ext: &mut Map<String, Value>,
    errors: &mut darling::error::Accumulator,
) {
    if let Some(lt) = &f.list_type {
        let v = lt.value();
        if !["atomic", "set", "map"].contains(&v.as_str()) {
            errors.push(err(
                lt.span(),
                format!("unknown list_type `{v}`: use atomic, set or map"),
            ));
        }
        if shape.is_some() && !is_list(shape) {
            errors.push(err(
                lt.span(),
                "list_type applies to lists (Vec, BTreeSet, ...) only",
            ));
        }
        if v == "map" && f.list_map_key.is_empty() {
            errors.push(err(lt.span(), "list_type = \"map\" needs at least one `list_map_key = \"name\"` (a required scalar field of the items)"));
        }
        ext.insert("x-kubernetes-list-type".into(), v.into());
    }
    if !f.list_map_key.is_empty() {
        if f.list_type.as_ref().is_none_or(|l| l.value() != "map") {
            errors.push(err(
                f.list_map_key[0].span(),
                "list_map_key needs `list_type = \"map\"`",
            ));
        }
        ext.insert(
            "x-kubernetes-list-map-keys".into(),
            f.list_map_key
                .iter()
                .map(LitStr::value)
                .collect::<Vec<_>>()
                .into(),
        );
    }
}

/// `x-kubernetes-map-type`: how server-side apply merges an object or map.
fn add_map_type(
    f: &SchemaField,
    shape: &Option<Shape>,
    ext: &mut Map<String, Value>,
    errors: &mut darling::error::Accumulator,
) {
    if let Some(mt) = &f.map_type {
        if !["atomic", "granular"].contains(&mt.value().as_str()) {
            errors.push(err(
                mt.span(),
                format!("unknown map_type `{}`: use atomic or granular", mt.value()),
            ));
        }
        let scalar = |s: &Option<Shape>| {
            matches!(
                s,
                Some(
                    Shape::Integer
                        | Shape::Number
                        | Shape::String
                        | Shape::Boolean
                        | Shape::IntOrString
                )
            )
        };
        let inner = match shape {
            Some(Shape::Nullable(inner)) => inner.as_ref().clone(),
            other => other.clone(),
        };
        if is_list(&inner) || scalar(&inner) {
            errors.push(err(mt.span(), "map_type applies to objects and maps only"));
        }
        ext.insert("x-kubernetes-map-type".into(), mt.value().into());
    }
}

/// The flag-like keys (preserve unknown fields, embedded resource, int-or-string, nullable)
/// and the description, which need no checks.
fn add_markers(f: &SchemaField, ext: &mut Map<String, Value>) {
    if f.preserve_unknown_fields.is_present() {
        ext.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
    }
    if f.embedded_resource.is_present() {
        ext.insert("x-kubernetes-embedded-resource".into(), true.into());
    }
    if f.int_or_string.is_present() {
        ext.insert("x-kubernetes-int-or-string".into(), true.into());
    }
    if f.nullable.is_present() {
        ext.insert("nullable".into(), true.into());
    }
    if let Some(d) = &f.description {
        ext.insert("description".into(), d.value().into());
    }
}

fn check_default(
    value: &Value,
    span: Span,
    shape: &Option<Shape>,
    ext: &Map<String, Value>,
    pattern: Option<&Regex>,
    errors: &mut darling::error::Accumulator,
) {
    if let Some(s) = shape
        && !json_matches(value, shape)
    {
        errors.push(err(
            span,
            format!(
                "default {value} does not match the field type: expected {}",
                shape_name(s)
            ),
        ));
        return;
    }
    if let Some(x) = value.as_f64() {
        let excl = |k: &str| ext.get(k) == Some(&Value::Bool(true));
        if let Some(min) = ext.get("minimum").and_then(Value::as_f64)
            && (x < min || (excl("exclusiveMinimum") && x == min))
        {
            errors.push(err(
                span,
                format!("default {value} is below the minimum {min}"),
            ));
        }
        if let Some(max) = ext.get("maximum").and_then(Value::as_f64)
            && (x > max || (excl("exclusiveMaximum") && x == max))
        {
            errors.push(err(
                span,
                format!("default {value} is above the maximum {max}"),
            ));
        }
    }
    if let Some(s) = value.as_str() {
        if let Some(re) = pattern
            && !re.is_match(s)
        {
            errors.push(err(
                span,
                format!(
                    "default {value} does not match the pattern `{}`",
                    re.as_str()
                ),
            ));
        }
        let n = s.chars().count() as u64;
        if ext
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| n < m)
            || ext
                .get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|m| n > m)
        {
            errors.push(err(
                span,
                format!("default {value} violates min_length/max_length"),
            ));
        }
    }
    if let Some(Value::Array(allowed)) = ext.get("enum")
        && !allowed.contains(value)
    {
        errors.push(err(
            span,
            format!(
                "default {value} is not one of the enum values {}",
                Value::Array(allowed.clone())
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cel_syntax_problems_are_found_without_false_alarms() {
        assert_eq!(cel_syntax_problem("size(self.name) > 0"), None);
        assert_eq!(
            cel_syntax_problem("self.name.matches('^[a-z(]+$')"),
            None,
            "brackets inside strings"
        );
        assert_eq!(
            cel_syntax_problem("size(self.name > 0").as_deref(),
            Some("unclosed `(`")
        );
        assert_eq!(
            cel_syntax_problem("self.a]").as_deref(),
            Some("unbalanced `]`")
        );
        assert_eq!(
            cel_syntax_problem("self == 'x").as_deref(),
            Some("unterminated string literal")
        );
    }

    #[test]
    fn field_type_shapes_drive_default_checks() {
        let ty = |s: &str| syn::parse_str::<Type>(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(shape_of(&ty("i32")), Some(Shape::Integer));
        assert_eq!(
            shape_of(&ty("Option<String>")),
            Some(Shape::Nullable(Box::new(Some(Shape::String))))
        );
        assert_eq!(
            shape_of(&ty("Vec<u8>")),
            Some(Shape::Array(Box::new(Some(Shape::Integer))))
        );
        assert_eq!(shape_of(&ty("MyStruct")), None);
        assert!(json_matches(&json!(3), &shape_of(&ty("Option<i64>"))));
        assert!(json_matches(&json!("50%"), &shape_of(&ty("IntOrString"))));
        assert!(!json_matches(&json!("3"), &shape_of(&ty("u16"))));
        assert!(!json_matches(&json!(1.5), &shape_of(&ty("i32"))));
        assert!(json_matches(
            &json!(["a"]),
            &shape_of(&ty("BTreeSet<String>"))
        ));
    }
}
