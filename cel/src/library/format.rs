//! The Kubernetes format library: `format.dns1123Label().validate(s)` and its siblings, which
//! return an empty optional for a valid string, or an optional list of what is wrong.

use std::sync::{Arc, LazyLock};

use cel::Value;
use cel::extractors::This;
use cel::objects::OptionalValue;
use regex::Regex;

use super::{Result, error, tagged, untag};

/// (name, pattern, maximum length, what the pattern means) of each named format.
const FORMATS: &[(&str, &str, usize, &str)] = &[
    (
        "dns1123Label",
        "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        63,
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
    ),
    (
        "dns1123Subdomain",
        r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        253,
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
    ),
    (
        "dns1035Label",
        "^[a-z]([-a-z0-9]*[a-z0-9])?$",
        63,
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
    ),
    (
        "labelValue",
        "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
        63,
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    ),
    (
        "uuid",
        "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        36,
        "must be a lowercase UUID in 8-4-4-4-12 format",
    ),
];

static COMPILED: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    FORMATS
        .iter()
        .map(|(_, pattern, _, _)| Regex::new(pattern).expect("the format patterns compile"))
        .collect()
});

/// The names of the formats, for registering `format.<name>()`.
pub(super) fn names() -> impl Iterator<Item = &'static str> {
    FORMATS.iter().map(|(name, ..)| *name)
}

/// `format.<name>()`: a value naming the format.
pub(super) fn named(name: &str) -> Value {
    tagged("__format", name)
}

/// `<format>.validate(s)`: none when `s` is valid, else the list of what is wrong.
pub(super) fn validate(This(f): This<Value>, s: Arc<String>) -> Result<Value> {
    let name = untag(&f, "__format").ok_or_else(|| {
        error(
            "validate",
            "not a format; use format.dns1123Label() or another named format",
        )
    })?;
    let i = FORMATS
        .iter()
        .position(|(n, ..)| *n == name)
        .ok_or_else(|| error("validate", format!("unknown format {name:?}")))?;
    let (_, pattern, max, meaning) = FORMATS[i];
    let mut problems = Vec::new();
    if s.len() > max {
        problems.push(format!("must be no more than {max} characters"));
    }
    if !COMPILED[i].is_match(&s) {
        problems.push(format!(
            "{meaning} (regex used for validation is '{}')",
            pattern.trim_matches(['^', '$'])
        ));
    }
    let optional = if problems.is_empty() {
        OptionalValue::none()
    } else {
        let list = problems
            .into_iter()
            .map(|p| Value::String(Arc::new(p)))
            .collect();
        OptionalValue::of(Value::List(Arc::new(list)))
    };
    Ok(Value::Opaque(Arc::new(optional)))
}
