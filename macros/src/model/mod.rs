//! Checks the parsed attributes and turns them into what `emit` needs: the resource's names and
//! options, and for each field the JSON keys it adds to its schema.
//!
//! Every mistake becomes a `darling::Error` spanned on the offending token, with a fix hint;
//! all of them are reported together.

use std::sync::LazyLock;

use proc_macro2::Span;
use regex::Regex;
use syn::LitStr;

use crate::attrs::ResourceAttrs;

mod field;
mod serde_attrs;

use field::FORMATS;
pub use field::{field_extensions, validation_json};
pub use serde_attrs::{is_flattened, json_name, serde_items, serde_value};

static VERSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$").unwrap_or_else(|_| unreachable!())
});
static KIND: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Z][A-Za-z0-9]*$").unwrap_or_else(|_| unreachable!()));
static DNS_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").unwrap_or_else(|_| unreachable!())
});

const COLUMN_TYPES: &[&str] = &["integer", "number", "string", "boolean", "date"];
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

pub(crate) fn err(span: Span, msg: impl std::fmt::Display) -> darling::Error {
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
}
