//! Server-side apply (`application/apply-patch+yaml`), with simplified field ownership.
//!
//! What is tracked: for every *apply* field manager, the set of leaf fields it applied (objects
//! are recursed into; lists are owned as a whole, like `x-kubernetes-list-type: atomic`). This
//! set is written to `metadata.managedFields` (`operation: Apply`, `fieldsV1`). Applying:
//! - creates the object when it does not exist;
//! - merges the applied configuration into the live object (strategic merge keys for
//!   built-in kinds, so `containers` merge by name; plain recursive merge for custom resources);
//! - removes fields the same manager applied before but no longer applies, unless another
//!   apply manager also owns them;
//! - reports a 409 Conflict when the configuration changes the value of a field another apply
//!   manager owns, unless `force=true`, which transfers ownership.
//!
//! What is not: ownership by non-apply writers (PUT, other PATCH types) is not recorded, so
//! they never cause apply conflicts.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::objects::{self, Part, WriteOptions};
use crate::resources::ResourceInfo;
use crate::status::{ApiError, ApiResult, Cause};
use crate::store::{Store, Stored};

type Path = Vec<String>;

/// Decodes an apply body (YAML, of which JSON is a subset). Under `fieldValidation=Strict` a key
/// set twice in one map is refused, as Go's YAML decoder refuses it; otherwise the last wins.
pub fn parse(body: &[u8], strict: bool) -> ApiResult<Value> {
    if strict && let Some(duplicate) = crate::protobuf::yaml_duplicate(body) {
        return Err(ApiError::bad_request(format!(
            "error strict decoding patch: error converting YAML to JSON: yaml: unmarshal errors:\n  {duplicate}"
        )));
    }
    let v: Value = serde_yaml::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the apply configuration must be an object with apiVersion, kind and metadata",
        ));
    }
    if v["apiVersion"].as_str().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(
            "invalid object type: apiVersion must be set in the apply configuration",
        ));
    }
    if v["kind"].as_str().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(
            "invalid object type: kind must be set in the apply configuration",
        ));
    }
    Ok(v)
}

/// An applied configuration may only set fields its type declares: the Go type's for built-in
/// kinds (and every kind's `metadata`), the CRD schema's for custom resources (beyond
/// `x-kubernetes-preserve-unknown-fields`). kube-apiserver refuses the others whatever the
/// `fieldValidation`, with a 500 from building the typed patch.
pub fn check_declared(info: &ResourceInfo, applied: &Value) -> ApiResult<()> {
    let mut undeclared = crate::protobuf::unknown_fields(
        &info.api_version(),
        &info.kind,
        &mut applied.clone(),
        false,
    );
    undeclared.extend(crate::crd::undeclared_fields(info, applied));
    if undeclared.is_empty() {
        return Ok(());
    }
    undeclared.sort();
    let errors: Vec<String> = undeclared
        .iter()
        .map(|f| format!(".{f}: field not declared in schema"))
        .collect();
    let errors = match errors.as_slice() {
        [one] => one.clone(),
        many => format!("errors:\n  {}", many.join("\n  ")),
    };
    let meta = &applied["metadata"];
    Err(ApiError::new(
        500,
        "",
        format!(
            "failed to create typed patch object ({}/{}; {}, Kind={}): {errors}",
            meta["namespace"].as_str().unwrap_or_default(),
            meta["name"].as_str().unwrap_or_default(),
            info.api_version(),
            info.kind
        ),
    ))
}

/// Leaf paths of an applied configuration, without identity fields.
fn leaves(v: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                if prefix.is_empty() && (k == "apiVersion" || k == "kind") {
                    continue;
                }
                if prefix.len() == 1
                    && prefix[0] == "metadata"
                    && matches!(
                        k.as_str(),
                        "name"
                            | "namespace"
                            | "resourceVersion"
                            | "managedFields"
                            | "uid"
                            | "creationTimestamp"
                            | "generation"
                    )
                {
                    continue;
                }
                prefix.push(k.clone());
                leaves(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
        }
    }
}

fn to_fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for p in paths {
        let mut cur = &mut root;
        for seg in p {
            let e = cur.entry(format!("f:{seg}")).or_insert_with(|| json!({}));
            let Some(m) = e.as_object_mut() else { break };
            cur = m;
        }
    }
    Value::Object(root)
}

fn from_fields_v1(v: &Value, prefix: &mut Path, out: &mut BTreeSet<Path>) {
    let Some(m) = v.as_object() else { return };
    if m.is_empty() && !prefix.is_empty() {
        out.insert(prefix.clone());
        return;
    }
    for (k, child) in m {
        let Some(seg) = k.strip_prefix("f:") else {
            continue;
        };
        prefix.push(seg.to_string());
        from_fields_v1(child, prefix, out);
        prefix.pop();
    }
}

fn get_path<'a>(v: &'a Value, p: &Path) -> Option<&'a Value> {
    p.iter().try_fold(v, |cur, seg| cur.get(seg))
}

fn remove_path(v: &mut Value, p: &Path) {
    let Some((last, parents)) = p.split_last() else {
        return;
    };
    let mut cur = v;
    for seg in parents {
        match cur.get_mut(seg) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

/// Recursive merge: objects merge key by key; anything else is replaced.
fn deep_merge(live: &mut Value, applied: &Value) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, av) in a {
                match l.get_mut(k) {
                    Some(lv) if lv.is_object() && av.is_object() => deep_merge(lv, av),
                    _ => {
                        l.insert(k.clone(), av.clone());
                    }
                }
            }
        }
        (l, a) => *l = a.clone(),
    }
}

/// One `managedFields` entry of an apply manager.
struct Owner {
    manager: String,
    api_version: String,
    fields: BTreeSet<Path>,
}

fn apply_owners(live: &Value) -> (Vec<Owner>, Vec<Value>) {
    let mut owners = Vec::new();
    let mut others = Vec::new();
    for e in live["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if e["operation"] == "Apply" {
            let mut fields = BTreeSet::new();
            from_fields_v1(&e["fieldsV1"], &mut Vec::new(), &mut fields);
            owners.push(Owner {
                manager: e["manager"].as_str().unwrap_or_default().to_string(),
                api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                fields,
            });
        } else {
            others.push(e.clone());
        }
    }
    (owners, others)
}

fn managed_fields(owners: &[Owner], others: Vec<Value>, subresource: Option<&str>) -> Value {
    let mut out = others;
    for o in owners.iter().filter(|o| !o.fields.is_empty()) {
        let mut e = json!({
            "manager": o.manager,
            "operation": "Apply",
            "apiVersion": o.api_version,
            "time": objects::now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(&o.fields),
        });
        if let Some(s) = subresource {
            e["subresource"] = json!(s);
        }
        out.push(e);
    }
    Value::Array(out)
}

fn dotted(p: &Path) -> String {
    p.iter().map(|s| format!(".{s}")).collect()
}

/// Applies `applied` as `manager`. Returns the stored object and whether it was created.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    store: &mut Store,
    info: &Arc<ResourceInfo>,
    namespace: Option<&str>,
    name: &str,
    existing: Option<Arc<Stored>>,
    mut applied: Value,
    manager: &str,
    force: bool,
    part: Part,
    opts: &WriteOptions,
) -> ApiResult<(Arc<Stored>, bool)> {
    match applied["metadata"]["name"].as_str() {
        None | Some("") => applied["metadata"]["name"] = json!(name),
        Some(n) if n == name => {}
        Some(n) => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
    }
    let mut fields = BTreeSet::new();
    leaves(&applied, &mut Vec::new(), &mut fields);
    let subresource = (part == Part::Status).then_some("status");
    let Some(existing) = existing else {
        if part == Part::Status {
            return Err(ApiError::not_found(&info.group_resource(), name));
        }
        let owners = [Owner {
            manager: manager.to_string(),
            api_version: info.api_version(),
            fields,
        }];
        let mf = managed_fields(&owners, Vec::new(), None);
        if mf.as_array().is_some_and(|a| !a.is_empty()) {
            applied["metadata"]["managedFields"] = mf;
        }
        let stored = objects::create(store, info, namespace, applied, opts)?;
        return Ok((stored, true));
    };
    let mut live = crate::convert::to_version(info, existing.value());
    if let Some(rv) = applied["metadata"]["resourceVersion"]
        .as_str()
        .filter(|r| !r.is_empty())
        && rv != existing.rv.to_string()
    {
        return Err(ApiError::stale(&info.group_resource(), name));
    }
    let (mut owners, others) = apply_owners(&live);
    let conflicts = conflicts(&owners, manager, &live, &applied, &fields);
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(info, name, &conflicts));
    }
    for o in owners.iter_mut().filter(|o| o.manager != manager) {
        for (_, _, p) in &conflicts {
            o.fields.remove(p);
        }
    }
    // Fields this manager applied before and no longer does, owned by nobody else, go away.
    let previous = owners
        .iter()
        .find(|o| o.manager == manager)
        .map(|o| o.fields.clone())
        .unwrap_or_default();
    for p in previous.difference(&fields) {
        let shared = owners
            .iter()
            .any(|o| o.manager != manager && o.fields.contains(p));
        if !shared {
            remove_path(&mut live, p);
        }
    }
    let mut config = applied.clone();
    if let Some(m) = config["metadata"].as_object_mut() {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
    let mut merged = if info.custom.is_none() {
        crate::strategic::strategic_merge(&live, &config, &info.patch_kind()).map_err(|e| {
            ApiError::bad_request(format!("the apply configuration could not be merged: {e}"))
        })?
    } else {
        let mut m = live.clone();
        deep_merge(&mut m, &config);
        m
    };
    match owners.iter_mut().find(|o| o.manager == manager) {
        Some(o) => {
            o.fields = fields;
            o.api_version = info.api_version();
        }
        None => owners.push(Owner {
            manager: manager.to_string(),
            api_version: info.api_version(),
            fields,
        }),
    }
    merged["metadata"]["managedFields"] = managed_fields(&owners, others, subresource);
    if merged["metadata"]["managedFields"]
        .as_array()
        .is_some_and(Vec::is_empty)
        && let Some(m) = merged["metadata"].as_object_mut()
    {
        m.remove("managedFields");
    }
    merged["metadata"]["resourceVersion"] = json!(existing.rv.to_string());
    if without_times(&merged) == without_times(&crate::convert::to_version(info, existing.value()))
    {
        // An apply that changes nothing, not even who owns what, leaves the object alone: no
        // new managedFields time, no resourceVersion, no watch event (kube-apiserver's field
        // manager keeps a manager's time unless the object changed).
        return Ok((existing, false));
    }
    let stored = objects::update(store, info, namespace, name, merged, part, opts)?;
    Ok((stored, false))
}

/// The fields of `fields` another apply manager owns with a different value in `live`: (manager,
/// its apiVersion, the field).
fn conflicts(
    owners: &[Owner],
    manager: &str,
    live: &Value,
    applied: &Value,
    fields: &BTreeSet<Path>,
) -> Vec<(String, String, Path)> {
    let mut out = Vec::new();
    for o in owners.iter().filter(|o| o.manager != manager) {
        for p in o.fields.intersection(fields) {
            if get_path(live, p) != get_path(applied, p) {
                out.push((o.manager.clone(), o.api_version.clone(), p.clone()));
            }
        }
    }
    out
}

/// The 409 kube-apiserver answers an apply with conflicts (without `force`).
fn conflict_error(
    info: &ResourceInfo,
    name: &str,
    conflicts: &[(String, String, Path)],
) -> ApiError {
    let msgs: Vec<String> = conflicts
        .iter()
        .map(|(m, av, p)| format!("conflict with {m:?} using {av}: {}", dotted(p)))
        .collect();
    let mut e = ApiError::new(
        409,
        "Conflict",
        if msgs.len() == 1 {
            format!("Apply failed with 1 conflict: {}", msgs[0])
        } else {
            format!(
                "Apply failed with {} conflicts: {}",
                msgs.len(),
                msgs.join("\n")
            )
        },
    );
    let causes: Vec<Cause> = conflicts
        .iter()
        .map(|(m, _, p)| Cause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with {m:?}"),
            field: dotted(p),
        })
        .collect();
    e.details = Some(json!({
        "name": name,
        "kind": info.plural,
        "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
    }));
    e
}

/// The object with the `time` of every managedFields entry removed, for telling whether an
/// apply changed anything besides the times it would stamp.
fn without_times(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(entries) = obj
        .get_mut("metadata")
        .and_then(|m| m.get_mut("managedFields"))
        .and_then(Value::as_array_mut)
    {
        for e in entries.iter_mut().filter_map(Value::as_object_mut) {
            e.remove("time");
        }
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_round_trips_leaf_paths() {
        let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"a": "1"}}, "data": {"k": "v"}});
        let mut set = BTreeSet::new();
        leaves(&cfg, &mut Vec::new(), &mut set);
        let fv1 = to_fields_v1(&set);
        assert_eq!(
            fv1,
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:data": {"f:k": {}}})
        );
        let mut back = BTreeSet::new();
        from_fields_v1(&fv1, &mut Vec::new(), &mut back);
        assert_eq!(back, set);
    }

    #[test]
    fn yaml_apply_bodies_need_api_version_and_kind() {
        assert!(
            parse(
                b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
                false
            )
            .is_ok()
        );
        assert_eq!(
            parse(b"kind: ConfigMap\n", false).map_err(|e| e.code),
            Err(400)
        );
        assert_eq!(parse(b": : :", false).map_err(|e| e.code), Err(400));
    }
}
