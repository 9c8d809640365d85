//! The CEL validation rules of CRD schemas (`x-kubernetes-validations`), evaluated as
//! kube-apiserver evaluates them, so that a custom resource a real cluster would refuse is refused
//! by the embedded test server too, and rules can be checked in a unit test without any server.
//!
//! ```
//! use serde_json::json;
//! let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
//!     "x-kubernetes-validations": [{"rule": "self.min <= self.max", "message": "min must not exceed max"}],
//!     "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}}}}});
//! let errors = kubeforge_cel::validate(&schema, &json!({"spec": {"min": 3, "max": 1}}), None);
//! assert_eq!(errors[0].to_string(), "spec: Invalid value: min must not exceed max");
//! ```
//!
//! What is evaluated, as in kube-apiserver's `apiextensions-apiserver/pkg/apiserver/schema/cel`:
//! - every rule of every schema node the object has, `self` bound to the node's value (at the
//!   root: `apiVersion`, `kind`, `metadata.name`/`generateName` and the rest of the object);
//! - on updates, `oldSelf` bound to the old value of the same node, correlated through object
//!   properties, map keys and the keys of `x-kubernetes-list-type: map` lists (not through other
//!   lists); a rule using `oldSelf` is a *transition rule*, skipped where there is no old value
//!   unless `optionalOldSelf: true` (then `oldSelf` is an optional);
//! - ratcheting: a failing rule that does not use `oldSelf`, on a value unchanged from the old
//!   object, is not an error (kube-apiserver returns it as a warning);
//! - `message`, `messageExpression` (falls back to `message` when it fails), `reason`
//!   (`FieldValueInvalid`, `FieldValueForbidden`, `FieldValueRequired`, `FieldValueDuplicate`) and
//!   `fieldPath`.
//!
//! The functions available are listed, supported or not, in [`library::FUNCTIONS`].
//!
//! Not done: rules are parsed when a CRD is written, but not type-checked against the schema (the
//! interpreter has no checker), so a misspelt field is reported when a rule is evaluated, not
//! when the CRD is created; the cost estimates and budgets are not computed (a rule the real
//! server refuses as too expensive is accepted here); rules under `allOf`/`anyOf`/`oneOf` are not
//! evaluated.

mod eval;
pub mod library;
mod walk;

use std::fmt;

use serde_json::Value;

pub use walk::{check_compiles, validate};

/// How a failed rule is reported: its `reason`, as apimachinery's `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `FieldValueInvalid` (the default).
    Invalid,
    /// `FieldValueForbidden`.
    Forbidden,
    /// `FieldValueRequired`.
    Required,
    /// `FieldValueDuplicate`.
    Duplicate,
    /// `InternalError`: a rule that could not be evaluated at all.
    Internal,
}

impl Reason {
    /// The `reason` of a `Status` cause, e.g. `FieldValueForbidden`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Invalid => "FieldValueInvalid",
            Reason::Forbidden => "FieldValueForbidden",
            Reason::Required => "FieldValueRequired",
            Reason::Duplicate => "FieldValueDuplicate",
            Reason::Internal => "InternalError",
        }
    }

    fn from_rule(rule: &Value) -> Reason {
        match rule["reason"].as_str() {
            Some("FieldValueForbidden") => Reason::Forbidden,
            Some("FieldValueRequired") => Reason::Required,
            Some("FieldValueDuplicate") => Reason::Duplicate,
            _ => Reason::Invalid,
        }
    }
}

/// One failed (or unevaluable) rule: a `Status` cause of the 422 kube-apiserver answers.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    /// The field, e.g. `spec.replicas` or `spec.items[0]` (with the rule's `fieldPath` applied).
    pub path: String,
    /// The cause's reason.
    pub reason: Reason,
    /// The value shown in the message: scalars are, objects and arrays are not (`None`).
    pub value: Option<Value>,
    /// The rule's message, evaluated `messageExpression`, or `failed rule: <rule>`.
    pub detail: String,
}

impl RuleError {
    /// The message body of the cause, as apimachinery renders it:
    /// `Invalid value: 5: must be even`, `Forbidden: cannot be changed`.
    pub fn message(&self) -> String {
        let label = match self.reason {
            Reason::Invalid => "Invalid value",
            Reason::Forbidden => "Forbidden",
            Reason::Required => "Required value",
            Reason::Duplicate => "Duplicate value",
            Reason::Internal => "Internal error",
        };
        let shown = matches!(self.reason, Reason::Invalid | Reason::Duplicate);
        let mut out = match (&self.value, shown) {
            (Some(v), true) => format!("{label}: {}", go_value(v)),
            _ => label.to_string(),
        };
        if !self.detail.is_empty() && self.reason != Reason::Duplicate {
            out.push_str(": ");
            out.push_str(&self.detail);
        }
        out
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message())
    }
}

/// A scalar as Go's `%v` / `%q` prints it in a field error.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// A rule that does not compile, found when the CRD is written.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileError {
    /// Where the rule is, e.g. `openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule`.
    pub path: String,
    /// The rule's text.
    pub rule: String,
    /// The parser's explanation.
    pub detail: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: Invalid value: {:?}: compilation failed: {}",
            self.path, self.rule, self.detail
        )
    }
}
