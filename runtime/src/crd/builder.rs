//! Builds the CustomResourceDefinition of a `#[derive(CustomResource)]` type from a static
//! description of its attributes and the `schemars` schemas of its spec and status.
//!
//! The derive emits only data ([`CrdDescriptor`]) and one call to [`build`]; everything else
//! lives here, compiled once, so that deriving many resources stays cheap to compile.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceScale,
    CustomResourceSubresourceStatus, CustomResourceSubresources, CustomResourceValidation,
    JSONSchemaProps, SelectableField,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::crd::schema;

/// Everything the resource-level attributes say, as static data.
#[derive(Debug, Clone, Copy)]
pub struct CrdDescriptor {
    /// API group, e.g. `cache.example.com`.
    pub group: &'static str,
    /// Version, e.g. `v1alpha1`.
    pub version: &'static str,
    /// Kind, e.g. `Memcached`.
    pub kind: &'static str,
    /// Plural resource name, e.g. `memcacheds`.
    pub plural: &'static str,
    /// Singular resource name, e.g. `memcached`.
    pub singular: &'static str,
    /// `kubectl` short names.
    pub short_names: &'static [&'static str],
    /// Categories (`kubectl get all` uses `all`).
    pub categories: &'static [&'static str],
    /// Namespaced (true) or cluster-scoped.
    pub namespaced: bool,
    /// Whether the version is served.
    pub served: bool,
    /// Whether this version is marked as the storage version.
    pub storage: bool,
    /// Whether this version is deprecated.
    pub deprecated: bool,
    /// The warning clients get when they use a deprecated version.
    pub deprecation_warning: Option<&'static str>,
    /// Labels on the CRD object.
    pub labels: &'static [(&'static str, &'static str)],
    /// Annotations on the CRD object.
    pub annotations: &'static [(&'static str, &'static str)],
    /// Additional printer columns.
    pub printer_columns: &'static [PrinterColumn],
    /// JSON paths of fields usable in field selectors.
    pub selectable_fields: &'static [&'static str],
    /// The scale subresource, if any.
    pub scale: Option<Scale>,
    /// Whether the root has a `status` (enables the status subresource).
    pub has_status: bool,
    /// Cap on description lengths (`Some(0)` drops descriptions).
    pub max_description_len: Option<usize>,
    /// CEL rules on the root object (JSON array of rule objects), e.g. spec/status cross-checks.
    pub root_validations: Option<&'static str>,
}

/// One additional printer column.
#[derive(Debug, Clone, Copy)]
pub struct PrinterColumn {
    /// Column header.
    pub name: &'static str,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub type_: &'static str,
    /// JSON path into the object, e.g. `.spec.replicas`.
    pub json_path: &'static str,
    /// Human readable description.
    pub description: Option<&'static str>,
    /// OpenAPI format, e.g. `int32`.
    pub format: Option<&'static str>,
    /// 0 shows the column by default; higher values only with `-o wide`.
    pub priority: i32,
}

/// The scale subresource's paths.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// e.g. `.spec.replicas`.
    pub spec_replicas_path: &'static str,
    /// e.g. `.status.replicas`.
    pub status_replicas_path: &'static str,
    /// e.g. `.status.selector`.
    pub label_selector_path: Option<&'static str>,
}

const CONVERSION_FAILED: &str = "kubeforge: the generated schema is not a JSONSchemaProps";

/// The schema generator every derived CRD uses (JSON Schema 2020-12, rewritten by [`schema::structural`]).
pub fn schema_generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12().into_generator()
}

/// Builds the single-version CRD. `spec` and `status` are the schemas (usually `$ref`s) the
/// generator produced for the spec and status types.
pub fn build(
    d: &CrdDescriptor,
    generator: &mut SchemaGenerator,
    spec: schemars::Schema,
    status: Option<schemars::Schema>,
) -> CustomResourceDefinition {
    let schema = root_schema(d, generator, spec, status);
    // The rewrite only emits keywords JSONSchemaProps knows; should that ever fail, the CRD
    // says so and `check` (hence `registry::crds()`) reports it instead of applying a wrong schema.
    let schema: JSONSchemaProps =
        serde_json::from_value(schema).unwrap_or_else(|e| JSONSchemaProps {
            type_: Some("object".into()),
            description: Some(format!("{CONVERSION_FAILED}: {e}")),
            x_kubernetes_preserve_unknown_fields: Some(true),
            ..JSONSchemaProps::default()
        });
    let strings = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let non_empty = |xs: &[&str]| (!xs.is_empty()).then(|| strings(xs));
    let pairs = |xs: &[(&str, &str)]| {
        (!xs.is_empty()).then(|| {
            xs.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        })
    };
    let subresources = (d.has_status || d.scale.is_some()).then(|| CustomResourceSubresources {
        status: d
            .has_status
            .then_some(CustomResourceSubresourceStatus(json!({}))),
        scale: d.scale.map(|s| CustomResourceSubresourceScale {
            spec_replicas_path: s.spec_replicas_path.to_string(),
            status_replicas_path: s.status_replicas_path.to_string(),
            label_selector_path: s.label_selector_path.map(str::to_string),
        }),
    });
    let version = CustomResourceDefinitionVersion {
        name: d.version.to_string(),
        served: d.served,
        storage: true,
        deprecated: d.deprecated.then_some(true),
        deprecation_warning: d.deprecation_warning.map(str::to_string),
        schema: Some(CustomResourceValidation {
            open_api_v3_schema: Some(schema),
        }),
        subresources,
        additional_printer_columns: (!d.printer_columns.is_empty()).then(|| {
            d.printer_columns
                .iter()
                .map(|c| CustomResourceColumnDefinition {
                    name: c.name.to_string(),
                    type_: c.type_.to_string(),
                    json_path: c.json_path.to_string(),
                    description: c.description.map(str::to_string),
                    format: c.format.map(str::to_string),
                    priority: (c.priority != 0).then_some(c.priority),
                })
                .collect()
        }),
        selectable_fields: (!d.selectable_fields.is_empty()).then(|| {
            d.selectable_fields
                .iter()
                .map(|p| SelectableField {
                    json_path: p.to_string(),
                })
                .collect()
        }),
    };
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("{}.{}", d.plural, d.group)),
            labels: pairs(d.labels),
            annotations: pairs(d.annotations),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: d.group.to_string(),
            names: CustomResourceDefinitionNames {
                kind: d.kind.to_string(),
                list_kind: Some(format!("{}List", d.kind)),
                plural: d.plural.to_string(),
                singular: Some(d.singular.to_string()),
                short_names: non_empty(d.short_names),
                categories: non_empty(d.categories),
            },
            scope: if d.namespaced {
                "Namespaced"
            } else {
                "Cluster"
            }
            .to_string(),
            versions: vec![version],
            conversion: None,
            preserve_unknown_fields: None,
        },
        status: None,
    }
}

/// The openAPIV3Schema of the root object: apiVersion, kind, metadata, spec and status.
pub fn root_schema(
    d: &CrdDescriptor,
    generator: &mut SchemaGenerator,
    spec: schemars::Schema,
    status: Option<schemars::Schema>,
) -> Value {
    let defs: Map<String, Value> = generator.definitions().clone().into_iter().collect();
    let opts = schema::Options {
        max_description_len: d.max_description_len,
    };
    let mut properties = Map::new();
    properties.insert(
        "apiVersion".into(),
        json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}),
    );
    properties.insert(
        "kind".into(),
        json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}),
    );
    properties.insert("metadata".into(), json!({"type": "object"}));
    properties.insert(
        "spec".into(),
        schema::structural(spec.as_value(), &defs, &opts),
    );
    if let Some(status) = status {
        let mut status = schema::structural(status.as_value(), &defs, &opts);
        if let Value::Object(m) = &mut status {
            m.insert("nullable".into(), true.into());
        }
        properties.insert("status".into(), status);
    }
    let mut root = json!({
        "type": "object",
        "description": format!("{} is the Schema for the {} API.", d.kind, d.plural),
        "properties": properties,
        "required": ["spec"],
    });
    if let Some(rules) = d.root_validations
        && let Ok(rules @ Value::Array(_)) = serde_json::from_str::<Value>(rules)
    {
        root["x-kubernetes-validations"] = rules;
    }
    schema::strip_junctor_keywords(&mut root);
    if let Some(max) = d.max_description_len {
        schema::cap_descriptions(&mut root, max);
    }
    root
}

/// Checks a built CRD for mistakes the API server would reject later: defaults that do not
/// validate against their schema, and scale / selectable-field paths that name no field.
pub fn check(crd: &CustomResourceDefinition) -> Vec<String> {
    let mut problems = Vec::new();
    for v in &crd.spec.versions {
        let Some(schema) = v
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
        else {
            continue;
        };
        if let Some(d) = schema
            .description
            .as_deref()
            .filter(|d| d.starts_with(CONVERSION_FAILED))
        {
            problems.push(format!(
                "version {}: {d}; please report this with the Rust types involved",
                v.name
            ));
            continue;
        }
        let Ok(schema) = serde_json::to_value(schema) else {
            continue;
        };
        list_map_key_problems(&schema, "", &v.name, &mut problems);
        for e in kubeforge_cel::check_compiles(&schema, "openAPIV3Schema") {
            problems.push(format!(
                "version {}: the CEL expression {:?} at {} does not compile ({}): fix the \
                 `validation(rule = ...)` or `message_expression` that holds it",
                v.name, e.rule, e.path, e.detail
            ));
        }
        for (path, reason) in schema::check_defaults(&schema) {
            problems.push(format!(
                "version {}: the default of {path} is invalid: {reason}. The default comes from \
                 the field's `#[kubeforge(default = ...)]` if it has one, else from \
                 `#[serde(default)]` on the field or its struct (the type's `Default` value): \
                 change that default, or the bound it breaks",
                v.name
            ));
        }
        let mut paths: Vec<&str> = Vec::new();
        if let Some(scale) = v.subresources.as_ref().and_then(|s| s.scale.as_ref()) {
            paths.push(&scale.spec_replicas_path);
            paths.push(&scale.status_replicas_path);
            paths.extend(scale.label_selector_path.as_deref());
        }
        paths.extend(
            v.selectable_fields
                .iter()
                .flatten()
                .map(|f| f.json_path.as_str()),
        );
        for p in paths {
            if !path_exists(&schema, p) {
                problems.push(format!(
                    "version {}: `{p}` names no field of the schema; point it at an existing field (JSON names, e.g. `.status.readyReplicas`)",
                    v.name
                ));
            }
        }
    }
    problems
}

/// The keys of every `list_type = "map"` list must be required fields of the items (or have a
/// default) and must not be nullable, or kube-apiserver refuses the CRD ("must have a default
/// or be a required property", "cannot be nullable"). The item type is often another struct, so
/// the derive cannot see this at compile time; `crds()` reports it instead, naming the field.
fn list_map_key_problems(node: &Value, path: &str, version: &str, problems: &mut Vec<String>) {
    if let Some(keys) = node
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
    {
        let items = &node["items"];
        let required = items["required"].as_array();
        for key in keys.iter().filter_map(Value::as_str) {
            let field = &items["properties"][key];
            let is_required = required.is_some_and(|r| r.iter().any(|k| k == key));
            if field.get("nullable") == Some(&Value::Bool(true))
                || (!is_required && field.get("default").is_none())
            {
                problems.push(format!(
                    "version {version}: `{path}` is a list map keyed by `{key}`, but `{key}` is optional in \
                     its items (an `Option` field, or one with `#[serde(default)]`): Kubernetes \
                     requires list map keys to be required and not nullable. Make `{key}` a plain \
                     (non-Option) field without a serde default, or give it `#[kubeforge(default = ...)]`"
                ));
            }
        }
    }
    for (child_key, child_path) in [
        ("properties", true),
        ("additionalProperties", false),
        ("items", false),
    ] {
        match (node.get(child_key), child_path) {
            (Some(Value::Object(props)), true) => {
                for (name, child) in props {
                    let p = if path.is_empty() {
                        name.clone()
                    } else {
                        format!("{path}.{name}")
                    };
                    list_map_key_problems(child, &p, version, problems);
                }
            }
            (Some(child @ Value::Object(_)), false) => {
                let p = if child_key == "items" {
                    format!("{path}[*]")
                } else {
                    format!("{path}.*")
                };
                list_map_key_problems(child, &p, version, problems);
            }
            _ => {}
        }
    }
}

fn path_exists(schema: &Value, path: &str) -> bool {
    let mut node = schema;
    for seg in path.trim_start_matches('.').split('.') {
        if node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
            return true;
        }
        match node.get("properties").and_then(|p| p.get(seg)) {
            Some(next) => node = next,
            None => return false,
        }
    }
    true
}
