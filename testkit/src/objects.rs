//! The write pipeline shared by create, update, patch, apply and subresources: metadata
//! stamping, name and namespace checks, custom-resource schema handling, generation, and
//! status/spec separation.

use std::sync::Arc;

use rand::Rng;
use serde_json::{Map, Value, json};

use crate::resources::{ResourceInfo, ResourceKey};
use crate::status::{ApiError, ApiResult, Cause};
use crate::store::{ObjKey, Store, Stored};
use crate::{crd, defaults, gc, limits, names};

/// Per-request write options from the query string.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: run every check, store nothing.
    pub dry_run: bool,
    /// `fieldValidation=Strict`: unknown fields of custom resources are an error, not pruned.
    pub strict: bool,
}

/// Which part of an object an update writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The main resource: everything but `status` (when a status subresource exists).
    Main,
    /// The `/status` subresource: only `status` (and, for built-in kinds, labels and
    /// annotations).
    Status,
    /// A Namespace's `/finalize` subresource: like [`Part::Main`], and the only write that
    /// may change `spec.finalizers`.
    Finalize,
}

/// An RFC 3339 timestamp with second precision, as Kubernetes writes them.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn random_suffix() -> String {
    // apimachinery's alphabet: no vowels or confusable characters.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn field_invalid(field: &str, value: &str, why: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {value:?}: {why}"),
        field: field.into(),
    }
}

fn field_required(field: &str, why: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        message: format!("Required value: {why}"),
        field: field.into(),
    }
}

fn invalid(info: &ResourceInfo, name: &str, causes: Vec<Cause>) -> ApiError {
    ApiError::invalid(&info.group, &info.kind, name, causes)
}

/// Storage key of an object.
pub fn obj_key(info: &ResourceInfo, namespace: Option<&str>, name: &str) -> ObjKey {
    let ns = if info.namespaced {
        namespace.unwrap_or_default()
    } else {
        ""
    };
    (ns.to_string(), name.to_string())
}

/// Checks `apiVersion`/`kind` of a request body against the URL, filling them in when absent.
/// Fields the object's Go type lacks (for a custom resource: its `metadata`'s), which
/// kube-apiserver's decoder drops, or refuses under `fieldValidation=Strict`.
fn check_fields(info: &ResourceInfo, obj: &mut Value, opts: &WriteOptions) -> ApiResult<()> {
    let (api_version, kind) = (info.api_version(), info.kind.as_str());
    let unknown = crate::protobuf::unknown_fields(&api_version, kind, obj, !opts.strict);
    if opts.strict && !unknown.is_empty() {
        let problems: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field {f:?}"))
            .collect();
        return Err(ApiError::strict_decoding(kind, &api_version, &problems));
    }
    Ok(())
}

pub fn check_type(info: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object (a Kubernetes resource)",
        ));
    };
    let want_av = info.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), json!(want_av));
        }
        Some(av) if av == want_av => {}
        Some(av) => {
            // Other versions of the same group are converted by rewriting apiVersion (CRDs use
            // conversion strategy None); anything else is a client mistake.
            let (g, _) = crate::resources::split_api_version(av);
            if g != info.group {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({want_av})"
                )));
            }
            map.insert("apiVersion".into(), json!(want_av));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(info.kind));
        }
        Some(k) if k == info.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({}) of {}",
                info.kind,
                info.group_resource()
            )));
        }
    }
    match map.get("metadata") {
        None | Some(Value::Null) => {
            map.insert("metadata".into(), Value::Object(Map::new()));
        }
        Some(Value::Object(_)) => {}
        Some(_) => return Err(ApiError::bad_request("metadata must be an object")),
    }
    Ok(())
}

/// Checks the namespace in the body against the path.
fn check_namespace(info: &ResourceInfo, namespace: Option<&str>, obj: &mut Value) -> ApiResult<()> {
    let meta = &mut obj["metadata"];
    if !info.namespaced {
        if let Some(m) = meta.as_object_mut() {
            m.remove("namespace");
        }
        return Ok(());
    }
    let Some(ns) = namespace else {
        return Err(ApiError::bad_request(format!(
            "{} is namespaced: use a path under /namespaces/<namespace>/",
            info.plural
        )));
    };
    match meta["namespace"].as_str() {
        None | Some("") => meta["namespace"] = json!(ns),
        Some(body_ns) if body_ns == ns => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    Ok(())
}

/// Validates a name the way the real server does for this kind.
fn check_name(info: &ResourceInfo, name: &str) -> ApiResult<()> {
    name_rule(info, name)
        .map_err(|why| invalid(info, name, vec![field_invalid("metadata.name", name, &why)]))
}

/// Validates a `generateName` as kube-apiserver does: the prefix itself, with a trailing `-`
/// allowed, must pass the kind's name rule (`web.` does not: a subdomain cannot end with a dot).
fn check_generate_name(info: &ResourceInfo, prefix: &str) -> ApiResult<()> {
    let masked = match prefix.strip_suffix('-') {
        Some(head) => format!("{head}a"),
        None => prefix.to_owned(),
    };
    name_rule(info, &masked).map_err(|why| {
        invalid(
            info,
            "",
            vec![field_invalid("metadata.generateName", prefix, &why)],
        )
    })
}

/// The name rule of this kind: the reason a name fails it.
fn name_rule(info: &ResourceInfo, name: &str) -> Result<(), String> {
    if info.kind == "Namespace" && info.group.is_empty() {
        names::is_dns1123_label(name)
    } else if info.group == "rbac.authorization.k8s.io" {
        // RBAC names are path segments: `system:controller:foo` is valid.
        names::is_valid_path_segment_name(name)
    } else {
        names::is_dns1123_subdomain(name)
    }
}

/// Label keys and values, and annotation keys, as apimachinery's ObjectMeta validation checks them.
fn check_metadata_maps(info: &ResourceInfo, name: &str, obj: &Value) -> ApiResult<()> {
    let mut causes = Vec::new();
    for (field, values_too) in [("labels", true), ("annotations", false)] {
        let Some(map) = obj["metadata"][field].as_object() else {
            if !obj["metadata"][field].is_null() {
                return Err(ApiError::bad_request(format!(
                    "metadata.{field} must be an object of strings"
                )));
            }
            continue;
        };
        let path = format!("metadata.{field}");
        for (k, v) in map {
            if let Err(why) = names::is_qualified_name(k) {
                causes.push(field_invalid(&path, k, &why));
            }
            let Some(v) = v.as_str() else {
                return Err(ApiError::bad_request(format!(
                    "json: cannot unmarshal {} into Go struct field ObjectMeta.metadata.{field} of type string",
                    crate::handlers::json_type_name(v)
                )));
            };
            if values_too && let Err(why) = names::is_valid_label_value(v) {
                causes.push(field_invalid(&path, v, &why));
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid(info, name, causes))
    }
}

fn namespace_usable(store: &Store, info: &ResourceInfo, namespace: Option<&str>) -> ApiResult<()> {
    let Some(ns) = namespace.filter(|_| info.namespaced) else {
        return Ok(());
    };
    let key = ResourceKey {
        group: String::new(),
        plural: "namespaces".into(),
    };
    let Some(obj) = store.get(&key, &(String::new(), ns.to_string())) else {
        return Err(ApiError::not_found("namespaces", ns));
    };
    if obj.value()["metadata"]["deletionTimestamp"].is_string() {
        return Err(ApiError::forbidden(
            &info.group_resource(),
            "",
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        ));
    }
    Ok(())
}

/// Resets what a client may not set on create, and what the server sets itself.
fn stamp_new(info: &ResourceInfo, obj: &mut Value) {
    let meta = &mut obj["metadata"];
    meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
    meta["creationTimestamp"] = json!(now());
    meta["generation"] = json!(1);
    if let Some(m) = meta.as_object_mut() {
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("selfLink");
    }
    if info.status
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    if info.group.is_empty() {
        match info.kind.as_str() {
            "Pod" => obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"}),
            "Namespace" => {
                let name = obj["metadata"]["name"].clone();
                obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
                obj["spec"]["finalizers"] = json!(["kubernetes"]);
                obj["status"] = json!({"phase": "Active"});
            }
            _ => {}
        }
    }
}

/// Creates a namespace at startup.
pub fn seed_namespace(store: &mut Store, name: &str) {
    let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    seed(store, ("", "v1", "namespaces"), obj, false);
}

/// The `default/kubernetes` Service, its Endpoints and EndpointSlice, pointing at this server,
/// as kube-apiserver keeps them (clients and conformance tests look the API server up there).
/// The endpoints follow the port, which changes between runs of a `--data-dir` server.
pub fn seed_apiserver_service(store: &mut Store, port: u16) {
    let meta =
        |labels: Value| json!({"name": "kubernetes", "namespace": "default", "labels": labels});
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta(json!({"component": "apiserver", "provider": "kubernetes"})),
        "spec": {"ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
    });
    seed(store, ("", "v1", "services"), service, false);
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": meta(json!({"endpointslice.kubernetes.io/skip-mirror": "true"})),
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                     "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    });
    seed(store, ("", "v1", "endpoints"), endpoints, true);
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": meta(json!({"kubernetes.io/service-name": "kubernetes"})),
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    });
    seed(
        store,
        ("discovery.k8s.io", "v1", "endpointslices"),
        slice,
        true,
    );
}

/// Creates `obj` unless it exists; with `refresh`, an existing one whose contents differ is
/// replaced.
fn seed(
    store: &mut Store,
    (group, version, plural): (&str, &str, &str),
    mut obj: Value,
    refresh: bool,
) {
    let Some(info) = store.registry.get(group, version, plural) else {
        return;
    };
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let namespace = obj["metadata"]["namespace"].as_str().map(str::to_string);
    let existing = store.get(&info.key(), &obj_key(&info, namespace.as_deref(), &name));
    let result = match existing {
        None => create(
            store,
            &info,
            namespace.as_deref(),
            obj,
            &WriteOptions::default(),
        )
        .map(drop),
        Some(old) if refresh => {
            let old = old.value();
            let body = |v: &Value| {
                let mut v = v.clone();
                v.as_object_mut().map(|m| m.remove("metadata"));
                v
            };
            if body(&old) == body(&obj) {
                return;
            }
            obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
            update(
                store,
                &info,
                namespace.as_deref(),
                &name,
                obj,
                Part::Main,
                &WriteOptions::default(),
            )
            .map(drop)
        }
        Some(_) => return,
    };
    if let Err(e) = result {
        tracing::error!(error = %e, plural, name, "failed to create a built-in object");
    }
}

/// What a status write may change of a built-in object's metadata besides its status: its
/// labels and annotations, as kube-apiserver's status strategies allow (their reset fields are
/// the spec, and for Deployments the labels too). A custom resource's status write changes its
/// status alone.
fn status_metadata(info: &ResourceInfo, next: &mut Value, new: &Value) {
    if info.custom.is_some() {
        return;
    }
    let mut keys = vec!["annotations"];
    if !(info.group == "apps" && info.kind == "Deployment") {
        keys.push("labels");
    }
    for key in keys {
        match new["metadata"].get(key) {
            Some(v) if !v.is_null() => next["metadata"][key] = v.clone(),
            _ => {
                if let Some(m) = next["metadata"].as_object_mut() {
                    m.remove(key);
                }
            }
        }
    }
}

/// Creates an object. `obj` is the request body.
pub fn create(
    store: &mut Store,
    info: &Arc<ResourceInfo>,
    namespace: Option<&str>,
    mut obj: Value,
    opts: &WriteOptions,
) -> ApiResult<Arc<Stored>> {
    check_type(info, &mut obj)?;
    check_fields(info, &mut obj, opts)?;
    check_namespace(info, namespace, &mut obj)?;
    if obj["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|rv| !rv.is_empty())
    {
        return Err(ApiError::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let name = match obj["metadata"]["name"].as_str().filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => match obj["metadata"]["generateName"]
            .as_str()
            .filter(|n| !n.is_empty())
        {
            Some(prefix) => {
                check_generate_name(info, prefix)?;
                let n = format!("{prefix}{}", random_suffix());
                obj["metadata"]["name"] = json!(n);
                n
            }
            None => {
                return Err(invalid(
                    info,
                    "",
                    vec![field_required(
                        "metadata.name",
                        "name or generateName is required",
                    )],
                ));
            }
        },
    };
    check_name(info, &name)?;
    check_metadata_maps(info, &name, &obj)?;
    namespace_usable(store, info, namespace)?;
    let key = obj_key(info, namespace, &name);
    if store.get(&info.key(), &key).is_some() {
        return Err(ApiError::already_exists(&info.group_resource(), &name));
    }
    stamp_new(info, &mut obj);
    defaults::apply(info, &mut obj);
    limits::check_data(info, &name, &obj)?;
    crd::prepare_object(store, info, &name, &mut obj, None, opts)?;
    limits::check_object(&obj)?;
    if opts.dry_run {
        return Ok(Arc::new(dry(obj)));
    }
    let stored = store.put(&info.key(), key.clone(), obj);
    crd::after_write(store, info, &stored)?;
    gc::collect_if_orphaned(store, &info.key(), &key, &stored);
    Ok(stored)
}

fn dry(obj: Value) -> Stored {
    Stored {
        bytes: serde_json::to_vec(&obj).unwrap_or_default().into(),
        labels: Default::default(),
        uid: String::new(),
        api_version: obj["apiVersion"].as_str().unwrap_or_default().to_string(),
        owners: Vec::new(),
        rv: 0,
    }
}

/// Everything except metadata and status: what `generation` tracks.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    v
}

/// Replaces an existing object (PUT, and every patch after the patch is applied).
///
/// A `resourceVersion` in `new` must match the stored one (409 Conflict otherwise).
pub fn update(
    store: &mut Store,
    info: &Arc<ResourceInfo>,
    namespace: Option<&str>,
    name: &str,
    mut new: Value,
    part: Part,
    opts: &WriteOptions,
) -> ApiResult<Arc<Stored>> {
    check_type(info, &mut new)?;
    check_fields(info, &mut new, opts)?;
    check_namespace(info, namespace, &mut new)?;
    match new["metadata"]["name"].as_str() {
        None | Some("") => new["metadata"]["name"] = json!(name),
        Some(n) if n == name => {}
        Some(n) => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
    }
    let key = obj_key(info, namespace, name);
    let Some(existing) = store.get(&info.key(), &key) else {
        return Err(ApiError::not_found(&info.group_resource(), name));
    };
    if let Some(rv) = new["metadata"]["resourceVersion"]
        .as_str()
        .filter(|rv| !rv.is_empty())
        && rv != existing.rv.to_string()
    {
        return Err(ApiError::stale(&info.group_resource(), name));
    }
    let old = existing.value();
    let mut next = match part {
        Part::Main | Part::Finalize => {
            if part == Part::Main && info.group.is_empty() && info.plural == "namespaces" {
                // Only /finalize changes a Namespace's finalizers (kube-apiserver's strategy).
                match old["spec"].get("finalizers") {
                    Some(f) => new["spec"]["finalizers"] = f.clone(),
                    None => {
                        if let Some(spec) = new["spec"].as_object_mut() {
                            spec.remove("finalizers");
                        }
                    }
                }
            }
            if info.status {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                }
            }
            new
        }
        Part::Status => {
            let mut o = old.clone();
            match new.get("status") {
                Some(s) => o["status"] = s.clone(),
                None => {
                    if let Some(m) = o.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            status_metadata(info, &mut o, &new);
            o
        }
    };
    // What the server owns in metadata cannot be changed by a client.
    for f in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old["metadata"].get(f) {
            Some(v) => next["metadata"][f] = v.clone(),
            None => {
                if let Some(m) = next["metadata"].as_object_mut() {
                    m.remove(f);
                }
            }
        }
    }
    if next["metadata"].get("managedFields").is_none()
        && let Some(mf) = old["metadata"].get("managedFields")
    {
        next["metadata"]["managedFields"] = mf.clone();
    }
    let deleting = old["metadata"]["deletionTimestamp"].is_string();
    if deleting {
        let had: Vec<&str> = old["metadata"]["finalizers"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let added: Vec<String> = next["metadata"]["finalizers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|f| !had.contains(f))
                    .map(|f| format!("{f:?}"))
                    .collect()
            })
            .unwrap_or_default();
        if !added.is_empty() {
            return Err(invalid(
                info,
                name,
                vec![Cause {
                    reason: "FieldValueForbidden".into(),
                    message: format!(
                        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                        added.join(", ")
                    ),
                    field: "metadata.finalizers".into(),
                }],
            ));
        }
    }
    if part != Part::Status {
        check_metadata_maps(info, name, &next)?;
        defaults::apply(info, &mut next);
        limits::check_data(info, name, &next)?;
        crd::prepare_object(store, info, name, &mut next, Some(&old), opts)?;
    } else if info.custom.is_some() {
        // A status write is validated too, the whole object against the schema and its rules.
        crd::prepare_object(store, info, name, &mut next, Some(&old), opts)?;
    }
    if spec_part(&next) != spec_part(&old) {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        next["metadata"]["generation"] = json!(generation);
    }
    next["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
    if next == old {
        // A no-op update keeps the resourceVersion and sends no event, as the real server does.
        return Ok(existing);
    }
    limits::check_object(&next)?;
    if opts.dry_run {
        return Ok(Arc::new(dry(next)));
    }
    let finalizers_left = next["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|a| !a.is_empty());
    if deleting && !finalizers_left {
        // Removing the last finalizer of a deleted object completes its deletion.
        return gc::remove(store, &info.key(), &key, Some(next))
            .ok_or_else(|| ApiError::not_found(&info.group_resource(), name));
    }
    let stored = store.put(&info.key(), key.clone(), next);
    crd::after_write(store, info, &stored)?;
    gc::collect_if_orphaned(store, &info.key(), &key, &stored);
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_part_ignores_metadata_and_status() {
        let a = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"x": 1}, "status": {"y": 1}});
        let b = json!({"metadata": {"labels": {"a": "2"}}, "spec": {"x": 1}, "status": {"y": 2}});
        assert_eq!(spec_part(&a), spec_part(&b));
        let c = json!({"spec": {"x": 2}});
        assert_ne!(spec_part(&a), spec_part(&c));
    }

    #[test]
    fn generated_names_use_the_apimachinery_alphabet() {
        let s = random_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}
