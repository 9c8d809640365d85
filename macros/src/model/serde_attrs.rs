//! What serde's attributes say about a field: its JSON name (`rename`, `rename_all`), whether it
//! is flattened, and the raw `#[serde(...)]` items the derive needs. Used by the schema emission
//! and the list-map checks.

use crate::attrs::SchemaField;

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
}
