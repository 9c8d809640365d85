//! CustomResourceDefinitions: validating them, registering their served versions, setting
//! their status, and validating / pruning / defaulting the custom objects they define.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::objects::WriteOptions;
use crate::resources::{CustomInfo, PrinterColumn, ResourceInfo, ResourceKey, ScalePaths};
use crate::status::{ApiError, ApiResult, Cause};
use crate::store::{Store, Stored};
use crate::{names, schema};

const CRD_GROUP: &str = "apiextensions.k8s.io";

fn is_crd(info: &ResourceInfo) -> bool {
    info.group == CRD_GROUP && info.plural == "customresourcedefinitions"
}

fn cause(reason: &str, field: &str, message: String) -> Cause {
    Cause {
        reason: reason.into(),
        message,
        field: field.into(),
    }
}

fn required(field: &str) -> Cause {
    cause("FieldValueRequired", field, "Required value".into())
}

/// Checks a CRD the way apiextensions-apiserver's validation does (the parts controllers and
/// generators get wrong most often).
fn validate_crd(name: &str, crd: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let kind = spec["names"]["kind"].as_str().unwrap_or_default();
    if group.is_empty() {
        causes.push(required("spec.group"));
    } else if !group.contains('.') {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.group",
            format!("Invalid value: {group:?}: should be a domain with at least one dot"),
        ));
    }
    if plural.is_empty() {
        causes.push(required("spec.names.plural"));
    } else if let Err(e) = names::is_dns1123_label(plural) {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.names.plural",
            format!("Invalid value: {plural:?}: {e}"),
        ));
    }
    if kind.is_empty() {
        causes.push(required("spec.names.kind"));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        causes.push(cause(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    match spec["scope"].as_str() {
        Some("Namespaced" | "Cluster") => {}
        None => causes.push(required("spec.scope")),
        Some(s) => causes.push(cause(
            "FieldValueNotSupported",
            "spec.scope",
            format!("Unsupported value: {s:?}: supported values: \"Cluster\", \"Namespaced\""),
        )),
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.versions",
            "Invalid value: null: must have exactly one version marked as storage version".into(),
        ));
    }
    let storage = versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .count();
    if !versions.is_empty() && storage != 1 {
        causes.push(cause(
            "FieldValueInvalid",
            "spec.versions",
            format!(
                "Invalid value: {}: must have exactly one version marked as storage version",
                json!(
                    versions
                        .iter()
                        .map(|v| v["name"].clone())
                        .collect::<Vec<_>>()
                )
            ),
        ));
    }
    let same_schema = versions
        .windows(2)
        .all(|w| w[0]["schema"] == w[1]["schema"]);
    for (i, v) in versions.iter().enumerate() {
        let vname = v["name"].as_str().unwrap_or_default();
        if vname.is_empty() {
            causes.push(required(&format!("spec.versions[{i}].name")));
        } else if let Err(e) = names::is_dns1123_label(vname) {
            causes.push(cause(
                "FieldValueInvalid",
                &format!("spec.versions[{i}].name"),
                format!("Invalid value: {vname:?}: {e}"),
            ));
        }
        // With one schema shared by every version, the real server reports paths under the
        // internal `spec.validation` field it hoists the schema to.
        let path = if same_schema {
            "spec.validation.openAPIV3Schema".to_string()
        } else {
            format!("spec.versions[{i}].schema.openAPIV3Schema")
        };
        if same_schema && i > 0 {
            continue;
        }
        match v["schema"].get("openAPIV3Schema") {
            None => causes.push(required(&path)),
            Some(s) => match schema::check_structural_at(s, &path) {
                Err(errs) => causes.extend(
                    errs.into_iter()
                        .map(|e| cause(e.reason.reason(), &e.path, e.message)),
                ),
                // CEL rules that do not parse are refused with the CRD, as kube-apiserver does.
                Ok(()) => causes.extend(kubeforge_cel::check_compiles(s, &path).into_iter().map(
                    |e| {
                        cause(
                            "FieldValueInvalid",
                            &e.path,
                            format!(
                                "Invalid value: {:?}: compilation failed: {}",
                                e.rule, e.detail
                            ),
                        )
                    },
                )),
            },
        }
    }
    causes
}

/// Sets the status a real apiextensions-apiserver converges to at once.
fn set_crd_status(crd: &mut Value) {
    let spec = crd["spec"].clone();
    let kind = spec["names"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut accepted = spec["names"].clone();
    if accepted["singular"].as_str().is_none_or(str::is_empty) {
        accepted["singular"] = json!(kind.to_ascii_lowercase());
    }
    if accepted["listKind"].as_str().is_none_or(str::is_empty) {
        accepted["listKind"] = json!(format!("{kind}List"));
    }
    let now = crate::objects::now();
    let storage: Vec<Value> = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"] == json!(true))
        .map(|v| v["name"].clone())
        .collect();
    let mut stored_versions: Vec<Value> = crd["status"]["storedVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for v in storage {
        if !stored_versions.contains(&v) {
            stored_versions.push(v);
        }
    }
    crd["status"] = json!({
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": stored_versions,
    });
}

/// The served resources a CRD defines, one per served version.
fn resources_of(crd_name: &str, crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let names = &crd["status"]["acceptedNames"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let conversion = conversion_webhook(spec);
    let mut out = Vec::new();
    for v in spec["versions"].as_array().into_iter().flatten() {
        if v["served"].as_bool() != Some(true) {
            continue;
        }
        let sub = &v["subresources"];
        let scale = sub
            .get("scale")
            .filter(|s| s.is_object())
            .map(|s| ScalePaths {
                spec_replicas: s["specReplicasPath"]
                    .as_str()
                    .unwrap_or(".spec.replicas")
                    .to_string(),
                status_replicas: s["statusReplicasPath"]
                    .as_str()
                    .unwrap_or(".status.replicas")
                    .to_string(),
                label_selector: s["labelSelectorPath"].as_str().map(str::to_string),
            });
        let printer_columns = v["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| PrinterColumn {
                name: c["name"].as_str().unwrap_or_default().to_string(),
                type_: c["type"].as_str().unwrap_or("string").to_string(),
                format: c["format"].as_str().unwrap_or_default().to_string(),
                description: c["description"].as_str().unwrap_or_default().to_string(),
                priority: c["priority"].as_i64().unwrap_or(0),
                json_path: c["jsonPath"].as_str().unwrap_or_default().to_string(),
            })
            .collect();
        let selectable: Vec<String> = v["selectableFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| {
                f["jsonPath"]
                    .as_str()
                    .map(|p| p.trim_start_matches('.').to_string())
            })
            .collect();
        out.push(ResourceInfo {
            group: spec["group"].as_str().unwrap_or_default().to_string(),
            version: v["name"].as_str().unwrap_or_default().to_string(),
            kind: names["kind"].as_str().unwrap_or_default().to_string(),
            plural: names["plural"].as_str().unwrap_or_default().to_string(),
            singular: names["singular"].as_str().unwrap_or_default().to_string(),
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            namespaced: spec["scope"] == "Namespaced",
            status: sub.get("status").is_some_and(Value::is_object),
            scale,
            field_selectors: selectable.clone(),
            served: crate::resources::Served::Stored,
            custom: Some(CustomInfo {
                defaults_on_read: v["schema"].get("openAPIV3Schema").is_some_and(has_default),
                schema: v["schema"].get("openAPIV3Schema").cloned(),
                printer_columns,
                selectable_fields: selectable,
                crd_name: crd_name.to_string(),
                conversion: conversion.clone(),
            }),
        });
    }
    out
}

/// The conversion webhook of a CRD's `spec`, when its strategy is `Webhook`.
fn conversion_webhook(spec: &Value) -> Option<crate::resources::ConversionWebhook> {
    use base64::Engine as _;
    let conversion = &spec["conversion"];
    if conversion["strategy"].as_str() != Some("Webhook") {
        return None;
    }
    let client = &conversion["webhook"]["clientConfig"];
    let storage_version = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["storage"].as_bool() == Some(true))?["name"]
        .as_str()?
        .to_owned();
    Some(crate::resources::ConversionWebhook {
        url: client["url"].as_str().map(str::to_owned),
        ca_pem: client["caBundle"]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok()),
        storage_version,
    })
}

/// Whether a schema sets a `default` anywhere.
fn has_default(schema: &Value) -> bool {
    match schema {
        Value::Object(m) => m.contains_key("default") || m.values().any(has_default),
        Value::Array(items) => items.iter().any(has_default),
        _ => false,
    }
}

/// The fields of a custom resource its CRD's schema does not declare (what pruning would drop),
/// `apiVersion`, `kind` and `metadata` aside. Empty for other kinds and schemaless CRDs.
pub fn undeclared_fields(info: &ResourceInfo, obj: &Value) -> Vec<String> {
    let Some(schema) = info.custom.as_ref().and_then(|c| c.schema.as_ref()) else {
        return Vec::new();
    };
    let mut pruned = obj.clone();
    schema::prune(schema, &mut pruned);
    let mut unknown = Vec::new();
    removed_fields(obj, &pruned, "", &mut unknown);
    unknown.retain(|f| !f.starts_with("metadata") && f != "apiVersion" && f != "kind");
    unknown
}

/// Fields present in `before` but not in `after`, as dotted paths (for strict field validation).
fn removed_fields(before: &Value, after: &Value, path: &str, out: &mut Vec<String>) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, bv) in b {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match a.get(k) {
                    None => out.push(p),
                    Some(av) => removed_fields(bv, av, &p, out),
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                removed_fields(bv, av, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Runs before an object is stored: CRDs are validated and get their status; custom objects
/// are pruned, defaulted and validated against their schema.
pub fn prepare_object(
    _store: &Store,
    info: &Arc<ResourceInfo>,
    name: &str,
    obj: &mut Value,
    old: Option<&Value>,
    opts: &WriteOptions,
) -> ApiResult<()> {
    if is_crd(info) {
        let causes = validate_crd(name, obj);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&info.group, &info.kind, name, causes));
        }
        set_crd_status(obj);
        return Ok(());
    }
    let Some(schema) = info.custom.as_ref().and_then(|c| c.schema.as_ref()) else {
        return Ok(());
    };
    let kept = (
        obj["apiVersion"].clone(),
        obj["kind"].clone(),
        obj["metadata"].clone(),
    );
    if opts.strict {
        let unknown = undeclared_fields(info, obj);
        if !unknown.is_empty() {
            let list: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            return Err(ApiError::strict_decoding(
                &info.kind,
                &info.api_version(),
                &list,
            ));
        }
    }
    schema::prune(schema, obj);
    obj["apiVersion"] = kept.0;
    obj["kind"] = kept.1;
    obj["metadata"] = kept.2;
    schema::apply_defaults(schema, obj);
    let errors = schema::validate(schema, obj);
    let mut causes: Vec<Cause> = errors
        .iter()
        .map(|e| Cause {
            reason: e.reason.reason().to_string(),
            message: e.message.clone(),
            field: e.path.clone(),
        })
        .collect();
    // The CEL rules run unless the object has the wrong types somewhere (kube-apiserver's
    // "blocking" errors), as they could not be evaluated on it.
    let blocking = errors
        .iter()
        .any(|e| e.reason == schema::FieldErrorType::TypeInvalid);
    if !blocking {
        causes.extend(
            kubeforge_cel::validate(schema, obj, old)
                .into_iter()
                .map(|e| Cause {
                    reason: e.reason.as_str().to_string(),
                    message: e.message(),
                    field: e.path,
                }),
        );
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(&info.group, &info.kind, name, causes));
    }
    Ok(())
}

/// Runs after an object is stored: a stored CRD (re)registers its versions.
pub fn after_write(
    store: &mut Store,
    info: &Arc<ResourceInfo>,
    stored: &Arc<Stored>,
) -> ApiResult<()> {
    if is_crd(info) {
        register(store, stored);
    }
    Ok(())
}

/// Serves the resources of a stored CRD (replacing what it served before).
pub fn register(store: &mut Store, stored: &Stored) {
    let crd = stored.value();
    let name = crd["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    store.registry.remove_crd(&name);
    for r in resources_of(&name, &crd) {
        tracing::debug!(group = %r.group, version = %r.version, plural = %r.plural, "registered custom resource");
        store.registry.insert(r);
    }
}

/// Runs after a CRD is removed: its objects are deleted and its resources unregistered.
pub fn after_delete(store: &mut Store, crd: &Stored) {
    let v = crd.value();
    let name = v["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let res = ResourceKey {
        group: v["spec"]["group"].as_str().unwrap_or_default().to_string(),
        plural: v["status"]["acceptedNames"]["plural"]
            .as_str()
            .or(v["spec"]["names"]["plural"].as_str())
            .unwrap_or_default()
            .to_string(),
    };
    for key in store.keys(&res) {
        store.remove(&res, &key);
    }
    store.close_watches_of(&res);
    store.drop_resource(&res);
    store.registry.remove_crd(&name);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                    "selectableFields": [{"jsonPath": ".spec.color"}],
                }],
            },
        })
    }

    #[test]
    fn a_valid_crd_registers_its_served_version_with_subresources() {
        let mut c = crd();
        assert!(validate_crd("widgets.example.com", &c).is_empty());
        set_crd_status(&mut c);
        assert_eq!(c["status"]["acceptedNames"]["listKind"], "WidgetList");
        let r = resources_of("widgets.example.com", &c);
        assert_eq!(r.len(), 1);
        assert!(r[0].status && r[0].namespaced);
        assert_eq!(
            r[0].scale.as_ref().map(|s| s.spec_replicas.as_str()),
            Some(".spec.size")
        );
        assert_eq!(r[0].field_selectors, ["spec.color"]);
    }

    #[test]
    fn crd_name_must_be_plural_dot_group() {
        let causes = validate_crd("widget.example.com", &crd());
        assert_eq!(
            causes.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(),
            ["metadata.name"]
        );
    }
}
