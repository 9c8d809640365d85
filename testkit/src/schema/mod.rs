//! CRD OpenAPI v3 schemas as the apiextensions-apiserver treats them: the structural-schema rules
//! a CRD must pass ([`check_structural`]), then, for every custom object written, pruning of
//! unknown fields ([`prune`]), defaulting ([`apply_defaults`]) and validation ([`validate`]).
//!
//! Schemas are a version's `openAPIV3Schema` as JSON (`JSONSchemaProps`). Errors carry the field
//! path and the message body exactly as the real server renders them in a `Status` cause, so
//! `Display` prints e.g.
//! `spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"`.
//!
//! The apiserver's order for a write is prune → default → validate; call them in that order.
//!
//! # Known gaps
//! - `x-kubernetes-validations` (CEL): [`check_structural`] enforces the static rules on them (rule
//!   not empty, `message` without line breaks, `messageExpression`/`reason`/`fieldPath` shape);
//!   the server then parses them when a CRD is written and evaluates them on every write through
//!   `kubeforge-cel` (not here: [`validate`] covers the OpenAPI validations only).
//! - `pattern` is compiled with the `regex` crate, whose syntax is RE2's (what Go uses): lookaround
//!   and backreferences are rejected as the real server rejects them. Character classes such as
//!   `\d` are Unicode-aware here and ASCII-only in Go.
//! - Formats checked: `date-time`, `date`, `byte`, `uuid`/`uuid3`/`uuid4`/`uuid5`, `ipv4`, `ipv6`,
//!   `cidr`, `mac`, `hostname`, `email`, `duration`; other formats are accepted unchecked.

mod defaults;
mod go;
mod prune;
mod structural;
mod validate;

use std::fmt;

pub use defaults::apply_defaults;
pub use prune::prune;
pub use structural::{check_crd_spec_schemas, check_structural, check_structural_at};
pub use validate::validate;

/// The kind of a field error, as apimachinery's `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldErrorType {
    /// `FieldValueNotFound`
    NotFound,
    /// `FieldValueRequired`
    Required,
    /// `FieldValueDuplicate`
    Duplicate,
    /// `FieldValueInvalid`
    Invalid,
    /// `FieldValueNotSupported` (a value outside an enum)
    NotSupported,
    /// `FieldValueForbidden`
    Forbidden,
    /// `FieldValueTooLong`
    TooLong,
    /// `FieldValueTooMany`
    TooMany,
    /// `InternalError`
    Internal,
    /// `FieldValueTypeInvalid`
    TypeInvalid,
}

impl FieldErrorType {
    /// The `reason` of a `Status` cause, e.g. `FieldValueRequired`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotFound => "FieldValueNotFound",
            Self::Required => "FieldValueRequired",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Internal => "InternalError",
            Self::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The words that open the message, e.g. `Required value`.
    pub fn label(self) -> &'static str {
        match self {
            Self::NotFound => "Not found",
            Self::Required => "Required value",
            Self::Duplicate => "Duplicate value",
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
            Self::Internal => "Internal error",
        }
    }
}

impl fmt::Display for FieldErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// One validation failure: a `Status` cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field, e.g. `spec.items[2].name` (the cause's `field`). apimachinery prints an absent
    /// path as `<nil>`, which is what composite (`anyOf`/`oneOf`/`allOf`/`not`) failures carry.
    pub path: String,
    /// The error type; `reason.reason()` is the cause's `reason`.
    pub reason: FieldErrorType,
    /// The message body (the cause's `message`), e.g.
    /// `Invalid value: "string": spec.replicas in body must be of type integer: "string"`.
    pub message: String,
}

/// A structural-schema violation in a CRD; `path` starts at the schema's location in the CRD.
pub type SchemaError = FieldError;

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for FieldError {}

impl FieldError {
    fn new(path: &str, reason: FieldErrorType, message: String) -> Self {
        FieldError {
            path: if path.is_empty() {
                "<nil>".to_string()
            } else {
                path.to_string()
            },
            reason,
            message,
        }
    }

    fn with_detail(label: &str, detail: &str) -> String {
        if detail.is_empty() {
            label.to_string()
        } else {
            format!("{label}: {detail}")
        }
    }

    /// `field.Required`.
    pub(crate) fn required(path: &str, detail: &str) -> Self {
        let t = FieldErrorType::Required;
        Self::new(path, t, Self::with_detail(t.label(), detail))
    }

    /// `field.Forbidden`.
    pub(crate) fn forbidden(path: &str, detail: &str) -> Self {
        let t = FieldErrorType::Forbidden;
        Self::new(path, t, Self::with_detail(t.label(), detail))
    }

    /// `field.Invalid`; `value` is already rendered as Go renders bad values.
    pub(crate) fn invalid(path: &str, value: &str, detail: &str) -> Self {
        Self::valued(path, FieldErrorType::Invalid, value, detail)
    }

    /// `field.TypeInvalid`.
    pub(crate) fn type_invalid(path: &str, value: &str, detail: &str) -> Self {
        Self::valued(path, FieldErrorType::TypeInvalid, value, detail)
    }

    /// `field.Duplicate`.
    pub(crate) fn duplicate(path: &str, value: &str) -> Self {
        Self::valued(path, FieldErrorType::Duplicate, value, "")
    }

    /// `field.NotSupported`: `valid` are quoted as Go's `strconv.Quote`.
    pub(crate) fn not_supported(path: &str, value: &str, valid: &[String]) -> Self {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| crate::names::go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::valued(path, FieldErrorType::NotSupported, value, &detail)
    }

    /// `field.TooLong` (the value is not printed, as in apimachinery).
    pub(crate) fn too_long(path: &str, max: i64) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        let t = FieldErrorType::TooLong;
        Self::new(
            path,
            t,
            format!("{}: may not be more than {max} {unit}", t.label()),
        )
    }

    /// `field.TooMany`.
    pub(crate) fn too_many(path: &str, actual: usize, max: i64) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        Self::valued(
            path,
            FieldErrorType::TooMany,
            &actual.to_string(),
            &format!("must have at most {max} {unit}"),
        )
    }

    fn valued(path: &str, t: FieldErrorType, value: &str, detail: &str) -> Self {
        let body = format!("{}: {value}", t.label());
        Self::new(path, t, Self::with_detail(&body, detail))
    }
}

#[cfg(test)]
mod tests;
