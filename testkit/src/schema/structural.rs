//! The rules a CRD version's `openAPIV3Schema` must pass, in three passes as the
//! apiextensions-apiserver runs them: the OpenAPI checks of
//! `ValidateCustomResourceDefinitionOpenAPISchema` (forbidden keywords, list/map types, CEL rule
//! shape, patterns), the structural invariants and completeness of `ValidateStructural` (sorted by
//! message, as the server sorts them), and, only when the schema is structural, `ValidateDefaults`.
//!
//! This file is the entry: the public checks, which run the passes in order, and the small
//! accessors of schema JSON the passes share. Each pass has its own file under `structural/`:
//! `openapi` (with `cel` and `pattern` for the rule and regexp checks), `invariants`, `defaults`.
//! The embedded server runs [`check_structural_at`] on every CRD version it accepts (`crd.rs`);
//! tests and the derive's corpus call the public checks through [`crate::schema`].

mod cel;
mod defaults;
mod invariants;
mod openapi;
mod pattern;

use super::FieldError;
use super::go::go_value;
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
    openapi::check(schema, root, &mut errs);
    let mut structural = Vec::new();
    invariants::check(schema, root, &mut structural);
    structural.sort_by_key(ToString::to_string);
    let structural_ok = structural.is_empty();
    errs.extend(structural);
    if structural_ok {
        defaults::check(schema, root, &mut errs);
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

fn key(path: &str, child: &str, k: &str) -> String {
    format!("{path}.{child}[{k}]")
}
