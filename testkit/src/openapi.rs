//! OpenAPI documents, as much as `kubectl` needs.
//!
//! kubectl (≥ 1.27) validates with *server-side* field validation when the server's
//! `/openapi/v3` document for the object's group/version has a PATCH operation for its kind
//! (`x-kubernetes-group-version-kind`) that accepts the `fieldValidation` query parameter;
//! it then sends `fieldValidation=Strict` and skips client-side schema checks. This module
//! serves exactly that: an index at `/openapi/v3` and one document per group/version with a
//! PATCH operation per resource. Custom resources also carry their CRD schema in
//! `components.schemas` (for `kubectl explain`). The PATCH request bodies do not list
//! strategic merge patch, so `kubectl apply` computes its patches from its compiled-in types
//! (built-in kinds) or as JSON merge patches (custom resources), as it does for CRDs.
//! `/openapi/v2` is a minimal JSON Swagger document; kubectl only asks for it in protobuf
//! form, which is not served.

use std::hash::{Hash, Hasher};

use axum::body::Body;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::handlers::json_value;
use crate::resources::{Registry, ResourceInfo};
use crate::status::{ApiError, ApiResult};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn gvk(r: &ResourceInfo) -> Value {
    json!({"group": r.group, "version": r.version, "kind": r.kind})
}

fn schema_name(r: &ResourceInfo) -> String {
    let g = if r.group.is_empty() {
        "io.k8s.api.core".to_string()
    } else {
        r.group.split('.').rev().collect::<Vec<_>>().join(".")
    };
    format!("{g}.{}.{}", r.version, r.kind)
}

fn document(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let (_, resources) = reg
        .group_versions()
        .find(|((g, v), _)| g == group && v == version)?;
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for r in resources.values() {
        let base = format!("/{}", gv_path(group, version));
        let item = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{base}/{}/{{name}}", r.plural)
        };
        let reference = json!({"$ref": format!("#/components/schemas/{}", schema_name(r))});
        let body_schema = json!({"schema": reference});
        let params = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
            {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
        ]);
        let ok =
            json!({"200": {"description": "OK", "content": {"application/json": body_schema}}});
        paths.insert(
            item,
            json!({
                "get": {"operationId": format!("read{}", r.kind), "responses": ok, "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk(r)},
                "put": {"operationId": format!("replace{}", r.kind), "parameters": params, "requestBody": {"content": {"application/json": body_schema}}, "responses": ok, "x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk(r)},
                "patch": {
                    "operationId": format!("patch{}", r.kind),
                    "parameters": params,
                    "requestBody": {"content": {
                        "application/apply-patch+yaml": {"schema": {"type": "object"}},
                        "application/json-patch+json": {"schema": {"type": "object"}},
                        "application/merge-patch+json": {"schema": {"type": "object"}},
                    }, "required": true},
                    "responses": ok,
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk(r),
                },
            }),
        );
        let mut schema = r.custom.as_ref().and_then(|c| c.schema.clone()).unwrap_or_else(|| {
            json!({"type": "object", "description": format!("{} (schema not published by the embedded server)", r.kind), "x-kubernetes-preserve-unknown-fields": true})
        });
        schema["x-kubernetes-group-version-kind"] = json!([gvk(r)]);
        schemas.insert(schema_name(r), schema);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{}.{}.0", crate::discovery::MAJOR, crate::discovery::MINOR)},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

fn hash_of(v: &Value) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    format!("{:016X}", h.finish())
}

/// `/openapi/v3`: one entry per group/version, each with a content hash for client caching.
pub fn v3_index(reg: &Registry) -> Response<Body> {
    let mut paths = serde_json::Map::new();
    for ((g, v), _) in reg.group_versions() {
        let p = gv_path(g, v);
        let hash = document(reg, g, v).map(|d| hash_of(&d)).unwrap_or_default();
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
        );
    }
    json_value(StatusCode::OK, &json!({ "paths": paths }))
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`.
pub fn v3_group_version(reg: &Registry, path: &str) -> ApiResult<Response<Body>> {
    let segs: Vec<&str> = path.split('/').collect();
    let (g, v) = match segs.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return Err(ApiError::no_route()),
    };
    let doc = document(reg, g, v).ok_or_else(ApiError::no_route)?;
    Ok(json_value(StatusCode::OK, &doc))
}

/// `/openapi/v2`: a minimal Swagger document (JSON only).
pub fn v2(_reg: &Registry) -> Response<Body> {
    json_value(
        StatusCode::OK,
        &json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": format!("v{}.{}.0", crate::discovery::MAJOR, crate::discovery::MINOR)}, "paths": {}, "definitions": {}}),
    )
}
