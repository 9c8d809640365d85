//! Checks the parsed attributes and turns them into what `emit` needs: the resource's names and
//! options, and for each field the JSON keys it adds to its schema.
//!
//! Every mistake becomes a `darling::Error` spanned on the offending token, with a fix hint;
//! all of them are reported together.

use std::sync::LazyLock;

use darling::util::{PreservedStrExpr, SpannedValue};
use proc_macro2::Span;
use regex::Regex;
use serde_json::{Map, Value, json};
use syn::spanned::Spanned;
use syn::{GenericArgument, LitStr, PathArguments, Type};

use crate::attrs::{ResourceAttrs, SchemaField, ValidationAttrs};
use crate::json::{expr_to_json, expr_to_number};

static VERSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$").unwrap_or_else(|_| unreachable!())
});
static KIND: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Z][A-Za-z0-9]*$").unwrap_or_else(|_| unreachable!()));
static DNS_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").unwrap_or_else(|_| unreachable!())
});

const COLUMN_TYPES: &[&str] = &["integer", "number", "string", "boolean", "date"];
const FORMATS: &[&str] = &[
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

/// What the resource-level attributes resolve to.
pub struct Resource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub kind_span: Span,
    pub namespaced: bool,
    pub served: bool,
    pub manual_schema: bool,
}

fn err(span: Span, msg: impl std::fmt::Display) -> darling::Error {
    darling::Error::custom(msg).with_span(&span)
}

/// Checks the resource-level attributes.
pub fn resource(a: &ResourceAttrs, errors: &mut darling::error::Accumulator) -> Option<Resource> {
    let group = resolve_group(a, errors);
    let version = resolve_version(a, errors);
    let (kind, kind_span) = resolve_kind(a, errors);
    let lower = kind.to_lowercase();
    let plural = a
        .plural
        .as_ref()
        .map_or_else(|| to_plural(&lower), LitStr::value);
    let singular = a
        .singular
        .as_ref()
        .map_or_else(|| lower.clone(), LitStr::value);
    check_names(a, errors);
    let served = check_scope_and_serving(a, errors);
    check_printer_columns(a, errors);
    check_selectable_fields(a, errors);
    check_scale(a, errors);
    check_labels_and_annotations(a, errors);
    let manual_schema = resolve_manual_schema(a, errors);
    Some(Resource {
        group,
        version,
        kind,
        plural,
        singular,
        kind_span,
        namespaced: !a.cluster.is_present(),
        served,
        manual_schema,
    })
}

/// The API group the resource belongs to; required, and a DNS subdomain.
fn resolve_group(a: &ResourceAttrs, errors: &mut darling::error::Accumulator) -> String {
    match &a.group {
        Some(g) => {
            check_group(g, errors);
            g.value()
        }
        None => {
            errors.push(err(Span::call_site(), "missing `group`: add `#[kubeforge(group = \"example.com\", ...)]`, a DNS subdomain with at least one dot"));
            String::new()
        }
    }
}

/// The API version this derive defines; required, and shaped like `v1`, `v1beta1`, ...
fn resolve_version(a: &ResourceAttrs, errors: &mut darling::error::Accumulator) -> String {
    match &a.version {
        Some(v) => {
            if !VERSION.is_match(&v.value()) {
                errors.push(err(v.span(), format!("`{}` is not a Kubernetes version: use `v1`, `v2`, `v1beta1`, `v2alpha3`, ...", v.value())));
            }
            v.value()
        }
        None => {
            errors.push(err(Span::call_site(), "missing `version`: add `#[kubeforge(version = \"v1\", ...)]` (`v1`, `v1beta1`, `v2alpha1`, ...)"));
            String::new()
        }
    }
}

/// The kind (given, or inferred from a `<Kind>Spec` struct name) and where to report it.
fn resolve_kind(a: &ResourceAttrs, errors: &mut darling::error::Accumulator) -> (String, Span) {
    let (kind, kind_span) = match &a.kind {
        Some(k) => (k.value(), k.span()),
        None => {
            let name = a.ident.to_string();
            match name.strip_suffix("Spec") {
                Some(k) if !k.is_empty() => (k.to_string(), a.ident.span()),
                _ => {
                    errors.push(err(a.ident.span(), format!("cannot infer the kind from `{name}`: name the struct `<Kind>Spec` or add `kind = \"{name}\"`")));
                    (name, a.ident.span())
                }
            }
        }
    };
    if !KIND.is_match(&kind) {
        errors.push(err(kind_span, format!("kind `{kind}` must be UpperCamelCase (letters and digits, starting with an uppercase letter), e.g. `{}`", upper_camel(&kind))));
    }
    (kind, kind_span)
}

/// The plural, singular, short names and categories are names the API paths and kubectl use,
/// so each must be a lowercase DNS label.
fn check_names(a: &ResourceAttrs, errors: &mut darling::error::Accumulator) {
    for (lit, what) in [
        (a.plural.as_ref(), "plural"),
        (a.singular.as_ref(), "singular"),
    ] {
        if let Some(lit) = lit
            && !DNS_LABEL.is_match(&lit.value())
        {
            errors.push(err(
                lit.span(),
                format!(
                    "{what} `{}` must be a lowercase DNS label (a-z, 0-9, `-`), e.g. `{}`",
                    lit.value(),
                    lit.value().to_lowercase()
                ),
            ));
        }
    }
    for s in &a.short_name {
        if !DNS_LABEL.is_match(&s.value()) {
            errors.push(err(
                s.span(),
                format!("short name `{}` must be a lowercase DNS label", s.value()),
            ));
        }
    }
    for s in &a.category {
        if !DNS_LABEL.is_match(&s.value()) {
            errors.push(err(
                s.span(),
                format!(
                    "category `{}` must be a lowercase DNS label, e.g. `all`",
                    s.value()
                ),
            ));
        }
    }
}

/// Whether the version is served, after checking that scope, serving, storage and deprecation
/// flags do not contradict each other.
fn check_scope_and_serving(a: &ResourceAttrs, errors: &mut darling::error::Accumulator) -> bool {
    if a.namespaced.is_present() && a.cluster.is_present() {
        errors.push(err(a.cluster.span(), "`namespaced` and `cluster` contradict each other: keep one (namespaced is the default)"));
    }
    let served = a.served.as_ref().is_none_or(|s| **s);
    if let Some(s) = &a.served
        && !**s
        && a.storage.is_present()
    {
        errors.push(err(s.span(), "the storage version must be served: remove `served = false` or move `storage` to another version"));
    }
    if let Some(w) = &a.deprecation_warning
        && !a.deprecated.is_present()
    {
        errors.push(err(
            w.span(),
            "`deprecation_warning` needs `deprecated`: add `deprecated` to the attribute",
        ));
    }
    served
}

/// Printer columns (`kubectl get` output) need a known type and format and a valid JSON path.
fn check_printer_columns(a: &ResourceAttrs, errors: &mut darling::error::Accumulator) {
    for col in &a.printer_column {
        let ty = col.type_.value();
        if !COLUMN_TYPES.contains(&ty.as_str()) {
            errors.push(err(
                col.type_.span(),
                format!(
                    "unknown printer column type `{ty}`: use one of {}",
                    COLUMN_TYPES.join(", ")
                ),
            ));
        }
        if let Some(f) = &col.format
            && !FORMATS.contains(&f.value().as_str())
        {
            errors.push(err(f.span(), format!("unknown printer column format `{}`: use e.g. int32, int64, float, double, date, date-time", f.value())));
        }
        check_json_path(&col.json_path, errors);
        if col.priority.is_some_and(|p| p < 0) {
            errors.push(err(
                col.name.span(),
                "printer column priority must be 0 (shown) or positive (shown with -o wide)",
            ));
        }
    }
}

/// Field selectors may only name spec or status fields (metadata ones are built in).
fn check_selectable_fields(a: &ResourceAttrs, errors: &mut darling::error::Accumulator) {
    for f in &a.selectable_field {
        check_json_path(f, errors);
        if f.value().starts_with(".metadata") {
            errors.push(err(f.span(), "metadata fields are always selectable: selectable fields must be under `.spec` or `.status`"));
        }
    }
}

/// The scale subresource's paths must point into spec and status, and it needs a status.
fn check_scale(a: &ResourceAttrs, errors: &mut darling::error::Accumulator) {
    if let Some(scale) = &a.scale {
        if !scale.spec_replicas_path.value().starts_with(".spec.") {
            errors.push(err(
                scale.spec_replicas_path.span(),
                "spec_replicas_path must be under `.spec`, e.g. `.spec.replicas`",
            ));
        }
        if !scale.status_replicas_path.value().starts_with(".status.") {
            errors.push(err(
                scale.status_replicas_path.span(),
                "status_replicas_path must be under `.status`, e.g. `.status.replicas`",
            ));
        }
        if a.status.is_none() {
            errors.push(err(
                scale.status_replicas_path.span(),
                "the scale subresource reads the status: add `status = YourStatus`",
            ));
        }
        if let Some(sel) = &scale.label_selector_path
            && !(sel.value().starts_with(".status.") || sel.value().starts_with(".spec."))
        {
            errors.push(err(
                sel.span(),
                "label_selector_path must be under `.status` or `.spec`, e.g. `.status.selector`",
            ));
        }
    }
}

/// Labels and annotations put on the CRD object need non-empty keys.
fn check_labels_and_annotations(a: &ResourceAttrs, errors: &mut darling::error::Accumulator) {
    for kv in a.label.iter().chain(&a.annotation) {
        if kv.key.value().is_empty() {
            errors.push(err(
                kv.key.span(),
                "label and annotation keys cannot be empty",
            ));
        }
    }
}

/// Whether the spec brings its own `JsonSchema` (`schema = "manual"`) instead of the derived one.
fn resolve_manual_schema(a: &ResourceAttrs, errors: &mut darling::error::Accumulator) -> bool {
    match &a.schema {
        None => false,
        Some(s) if s.value() == "manual" => true,
        Some(s) => {
            errors.push(err(s.span(), "`schema` accepts only \"manual\" (the spec implements JsonSchema itself); remove it to let the derive generate the schema"));
            false
        }
    }
}

fn check_group(g: &LitStr, errors: &mut darling::error::Accumulator) {
    let v = g.value();
    let ok = v.len() <= 253
        && v.contains('.')
        && v.split('.').all(|l| l.len() <= 63 && DNS_LABEL.is_match(l));
    if !ok {
        let hint = v.to_lowercase().replace(['_', ' '], "-");
        let hint = if hint.contains('.') {
            hint
        } else {
            format!("{hint}.example.com")
        };
        errors.push(err(g.span(), format!("group `{v}` must be a DNS subdomain with at least one dot (lowercase letters, digits, `-`, `.`), e.g. `{hint}`")));
    }
}

fn check_json_path(p: &LitStr, errors: &mut darling::error::Accumulator) {
    let v = p.value();
    if !v.starts_with('.') || v.len() < 2 || v.contains("..") || v.ends_with('.') {
        errors.push(err(
            p.span(),
            format!("`{v}` is not a simple JSON path: write it like `.spec.replicas`"),
        ));
    }
}

fn upper_camel(s: &str) -> String {
    s.split(['_', '-', ' ', '.'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// kube-derive's pluralisation, so both produce the same resource names.
pub fn to_plural(word: &str) -> String {
    if word.ends_with('s')
        || word.ends_with('x')
        || word.ends_with('z')
        || word.ends_with("ch")
        || word.ends_with("sh")
    {
        return format!("{word}es");
    }
    if let Some(stem) = word.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        return format!("{stem}ies");
    }
    format!("{word}s")
}

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

/// The serialized (JSON) name of a field under serde's `rename` / `rename_all`.
pub fn json_name(field: &SchemaField, rename_all: Option<&str>) -> Option<String> {
    let ident = field.ident.as_ref()?.to_string();
    let ident = ident.strip_prefix("r#").unwrap_or(&ident).to_string();
    if let Some(r) = serde_value(&field.attrs, "rename") {
        return Some(r);
    }
    Some(match rename_all {
        Some(rule) => apply_rename_all(&ident, rule),
        None => ident,
    })
}

/// Whether a field carries `#[serde(flatten)]` (its keys land in the parent).
pub fn is_flattened(field: &SchemaField) -> bool {
    serde_items(&field.attrs)
        .iter()
        .any(|(k, _)| k == "flatten")
}

/// Reads `#[serde(key = "value")]` from attributes.
pub fn serde_value(attrs: &[syn::Attribute], key: &str) -> Option<String> {
    serde_items(attrs)
        .into_iter()
        .find(|(k, v)| k == key && v.is_some())
        .and_then(|(_, v)| v)
}

/// The top-level items of `#[serde(...)]` attributes: `(key, Some(string value))` for
/// `key = "value"`, `(key, None)` for flags, lists and non-string values. serde reports
/// malformed attributes itself, so parse errors are skipped here.
pub fn serde_items(attrs: &[syn::Attribute]) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for a in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = a.parse_nested_meta(|m| {
            let key = m
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            let mut value = None;
            if m.input.peek(syn::Token![=]) {
                if let Ok(expr) = m.value().and_then(|v| v.parse::<syn::Expr>())
                    && let syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) = expr
                {
                    value = Some(s.value());
                }
            } else if m.input.peek(syn::token::Paren) {
                m.parse_nested_meta(|inner| {
                    if inner.input.peek(syn::Token![=]) {
                        inner.value()?.parse::<syn::Expr>()?;
                    }
                    Ok(())
                })?;
            }
            out.push((key, value));
            Ok(())
        });
    }
    out
}

fn apply_rename_all(ident: &str, rule: &str) -> String {
    let words: Vec<&str> = ident.split('_').filter(|w| !w.is_empty()).collect();
    let cap = |w: &str| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    match rule {
        "lowercase" => ident.to_lowercase(),
        "UPPERCASE" => ident.to_uppercase(),
        "PascalCase" => words.iter().map(|w| cap(w)).collect(),
        "camelCase" => words
            .iter()
            .enumerate()
            .map(|(i, w)| if i == 0 { w.to_string() } else { cap(w) })
            .collect(),
        "SCREAMING_SNAKE_CASE" => ident.to_uppercase(),
        "kebab-case" => ident.replace('_', "-"),
        "SCREAMING-KEBAB-CASE" => ident.replace('_', "-").to_uppercase(),
        _ => ident.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_follow_kube_derive() {
        assert_eq!(to_plural("memcached"), "memcacheds");
        assert_eq!(to_plural("policy"), "policies");
        assert_eq!(to_plural("gateway"), "gateways");
        assert_eq!(to_plural("ingress"), "ingresses");
        assert_eq!(to_plural("mailbox"), "mailboxes");
        assert_eq!(to_plural("patch"), "patches");
    }

    #[test]
    fn serde_rename_all_rules_give_the_json_names() {
        assert_eq!(
            apply_rename_all("max_surge_count", "camelCase"),
            "maxSurgeCount"
        );
        assert_eq!(apply_rename_all("max_surge", "PascalCase"), "MaxSurge");
        assert_eq!(apply_rename_all("max_surge", "kebab-case"), "max-surge");
        assert_eq!(
            apply_rename_all("max_surge", "SCREAMING_SNAKE_CASE"),
            "MAX_SURGE"
        );
    }

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
