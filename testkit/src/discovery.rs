//! Discovery documents: `/version`, `/api`, `/apis`, group and resource lists, in the legacy
//! (unaggregated) form. Clients asking for aggregated discovery
//! (`Accept: …;as=APIGroupDiscoveryList`) get the legacy form with a plain JSON content type,
//! which client-go and kubectl take as "fall back to legacy discovery".

use axum::body::Body;
use http::{HeaderMap, Response, StatusCode};
use serde_json::{Value, json};

use crate::handlers::json_value;
use crate::resources::{Registry, ResourceInfo, version_priority};
use crate::status::{ApiError, ApiResult};

/// The Kubernetes version the server imitates.
pub const MAJOR: &str = "1";
pub const MINOR: &str = "37";

pub fn version() -> Response<Body> {
    json_value(
        StatusCode::OK,
        &json!({
            "major": MAJOR,
            "minor": MINOR,
            "emulationMajor": MAJOR,
            "emulationMinor": MINOR,
            "gitVersion": format!("v{MAJOR}.{MINOR}.0-kubeforge"),
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.25",
            "compiler": "gc",
            "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
        }),
    )
}

pub fn root_paths(reg: &Registry) -> Response<Body> {
    let mut paths = vec![
        "/api".to_string(),
        "/api/v1".into(),
        "/apis".into(),
        "/healthz".into(),
        "/livez".into(),
        "/readyz".into(),
        "/openapi/v2".into(),
        "/openapi/v3".into(),
        "/version".into(),
    ];
    for (group, versions) in reg.groups() {
        if group.is_empty() {
            continue;
        }
        paths.push(format!("/apis/{group}"));
        for v in versions {
            paths.push(format!("/apis/{group}/{v}"));
        }
    }
    paths.sort();
    json_value(StatusCode::OK, &json!({ "paths": paths }))
}

pub fn api_versions(_headers: &HeaderMap) -> Response<Body> {
    json_value(
        StatusCode::OK,
        &json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
        }),
    )
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = versions
        .iter()
        .max_by_key(|v| version_priority(v))
        .cloned()
        .unwrap_or_default();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": {"groupVersion": format!("{group}/{preferred}"), "version": preferred},
    })
}

pub fn api_groups(reg: &Registry, _headers: &HeaderMap) -> Response<Body> {
    let groups: Vec<Value> = reg
        .groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    json_value(
        StatusCode::OK,
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
    )
}

pub fn api_group(reg: &Registry, group: &str) -> ApiResult<Response<Body>> {
    let groups = reg.groups();
    let (_, versions) = groups
        .iter()
        .find(|(g, _)| g == group)
        .ok_or_else(ApiError::page_not_found)?;
    let mut g = group_json(group, versions);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Ok(json_value(StatusCode::OK, &g))
}

fn resource_json(r: &ResourceInfo) -> Vec<Value> {
    let mut main = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs(),
    });
    if !r.short_names.is_empty() {
        main["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        main["categories"] = json!(r.categories);
    }
    let mut out = vec![main];
    if r.status {
        out.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
    }
    if r.scale.is_some() {
        out.push(json!({"name": format!("{}/scale", r.plural), "singularName": "", "namespaced": r.namespaced, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
    }
    if r.group.is_empty() && r.plural == "pods" {
        out.push(json!({"name": "pods/binding", "singularName": "", "namespaced": true, "kind": "Binding", "verbs": ["create"]}));
    }
    if r.group.is_empty() && r.plural == "namespaces" {
        out.push(json!({"name": "namespaces/finalize", "singularName": "", "namespaced": false, "kind": "Namespace", "verbs": ["update"]}));
    }
    out
}

pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Response<Body> {
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let resources: Vec<Value> = reg
        .group_versions()
        .filter(|((g, v), _)| g == group && v == version)
        .flat_map(|(_, m)| m.values())
        .flat_map(|r| resource_json(r))
        .collect();
    json_value(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}
