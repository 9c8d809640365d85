//! Helpers of the corpus tests: our own structural assertions, object construction, and the
//! scenario run against an API server (embedded or real).

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

/// One resource type of the corpus.
pub struct Case {
    pub name: &'static str,
    pub crd: fn() -> CustomResourceDefinition,
    pub parse: fn(&Value) -> Result<(), String>,
    /// Objects (spec/status only) the server must accept.
    pub valid: Vec<Value>,
    /// Objects the server must reject, and a fragment of the error (the field path).
    pub invalid: Vec<(Value, &'static str)>,
}

/// Our own reading of the structural rules (independent of the testkit): no `$ref`, no
/// `uniqueItems`, no `additionalProperties` next to `properties`, a `type` on every node unless
/// int-or-string / preserve-unknown-fields, array `items`, and nothing but value validations
/// inside junctors.
pub fn assert_structural(name: &str, schema: &Value) {
    assert_eq!(
        schema["type"], "object",
        "{name}: the root must be an object"
    );
    walk(name, schema, "", false);
}

fn walk(name: &str, s: &Value, path: &str, in_junctor: bool) {
    let m = s
        .as_object()
        .unwrap_or_else(|| panic!("{name} {path}: schema is not an object: {s}"));
    for forbidden in [
        "$ref",
        "$defs",
        "definitions",
        "uniqueItems",
        "patternProperties",
        "additionalItems",
        "dependencies",
        "const",
        "prefixItems",
        "title",
    ] {
        assert!(
            !m.contains_key(forbidden),
            "{name} {path}: `{forbidden}` is not allowed: {s}"
        );
    }
    assert!(
        m.get("type") != Some(&json!("null")),
        "{name} {path}: type null"
    );
    assert!(
        !(m.contains_key("properties") && m.contains_key("additionalProperties")),
        "{name} {path}: properties + additionalProperties"
    );
    assert!(
        m.get("x-kubernetes-preserve-unknown-fields") != Some(&json!(false)),
        "{name} {path}: preserve-unknown-fields false"
    );
    if in_junctor {
        for k in [
            "type",
            "default",
            "description",
            "nullable",
            "additionalProperties",
        ] {
            assert!(!m.contains_key(k), "{name} {path}: `{k}` inside a junctor");
        }
        assert!(
            !m.keys().any(|k| k.starts_with("x-kubernetes-")),
            "{name} {path}: x-kubernetes-* inside a junctor"
        );
    } else {
        let exempt = m.get("x-kubernetes-int-or-string") == Some(&json!(true))
            || m.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
        assert!(
            exempt || m.get("type").is_some_and(Value::is_string),
            "{name} {path}: no single type: {s}"
        );
        if m.get("type") == Some(&json!("array")) {
            assert!(
                m.get("items").is_some_and(Value::is_object),
                "{name} {path}: array without a single items schema"
            );
        }
        if let Some(lt) = m.get("x-kubernetes-list-type") {
            assert_eq!(
                m["type"], "array",
                "{name} {path}: list-type on a non-array"
            );
            if lt == "map" {
                assert!(
                    m.contains_key("x-kubernetes-list-map-keys"),
                    "{name} {path}: list-type map without keys"
                );
            }
        }
    }
    if let Some(Value::Object(props)) = m.get("properties") {
        for (k, v) in props {
            walk(name, v, &format!("{path}.{k}"), in_junctor);
        }
    }
    if let Some(items) = m.get("items") {
        walk(name, items, &format!("{path}[]"), in_junctor);
    }
    if let Some(ap @ Value::Object(_)) = m.get("additionalProperties") {
        walk(name, ap, &format!("{path}{{}}"), in_junctor);
    }
    for j in ["allOf", "anyOf", "oneOf"] {
        for (i, b) in m
            .get(j)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            walk(name, b, &format!("{path}/{j}[{i}]"), true);
        }
    }
}

fn api_resource(crd: &CustomResourceDefinition) -> ApiResource {
    let version = crd
        .spec
        .versions
        .iter()
        .find(|v| v.storage)
        .map(|v| v.name.clone())
        .unwrap_or_default();
    let gvk = GroupVersionKind::gvk(&crd.spec.group, &version, &crd.spec.names.kind);
    ApiResource::from_gvk_with_plural(&gvk, &crd.spec.names.plural)
}

/// A full object of the case's kind from its spec/status fragment.
pub fn object(case: &Case, fragment: &Value, name: &str) -> Value {
    let crd = (case.crd)();
    let ar = api_resource(&crd);
    let mut obj =
        json!({"apiVersion": ar.api_version, "kind": ar.kind, "metadata": {"name": name}});
    if let Value::Object(f) = fragment {
        for (k, v) in f {
            obj[k] = v.clone();
        }
    }
    obj
}

fn api(client: &kube::Client, crd: &CustomResourceDefinition, ns: &str) -> Api<DynamicObject> {
    let ar = api_resource(crd);
    if crd.spec.scope == "Namespaced" {
        Api::namespaced_with(client.clone(), ns, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    }
}

/// Creates the CRDs, waits until each kind is served, then sends every valid and invalid
/// example, then checks defaults and the CEL rules (and transition rules), which both servers
/// enforce.
pub async fn exercise(client: kube::Client, crds: &[CustomResourceDefinition], cases: &[Case]) {
    let crd_api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crd_api
            .patch(
                &name,
                &PatchParams::apply("kubeforge-macros-tests").force(),
                &Patch::Apply(crd),
            )
            .await
            .unwrap_or_else(|e| panic!("the server rejected CRD {name}: {e}"));
    }
    let ns = "default";
    for case in cases {
        let crd = (case.crd)();
        let api = api(&client, &crd, ns);
        for (i, fragment) in case.valid.iter().enumerate() {
            let obj: DynamicObject =
                serde_json::from_value(object(case, fragment, &format!("ok-{i}"))).expect("object");
            let created = create_when_served(&api, &obj).await.unwrap_or_else(|e| {
                panic!(
                    "{}: valid example {i} was rejected: {e}\n{fragment}",
                    case.name
                )
            });
            // What the server stored (pruned, defaulted) reads back into the Rust type, and
            // holds everything that was sent: nothing was pruned.
            let stored = serde_json::to_value(&created).expect("json");
            for part in ["spec", "status"] {
                if let Some(sent) = fragment.get(part)
                    && let Err(path) = contained(sent, &stored[part], part)
                {
                    panic!(
                        "{}: valid example {i} lost {path} on the way through the server\n\
                             sent: {sent}\nstored: {}",
                        case.name, stored[part]
                    );
                }
            }
            (case.parse)(&stored).unwrap_or_else(|e| {
                panic!(
                    "{}: the stored object does not deserialize: {e}\n{stored}",
                    case.name
                )
            });
        }
        for (i, (fragment, why)) in case.invalid.iter().enumerate() {
            let obj: DynamicObject =
                serde_json::from_value(object(case, fragment, &format!("bad-{i}")))
                    .expect("object");
            match create_when_served(&api, &obj).await {
                Ok(_) => panic!(
                    "{}: invalid example {i} was accepted (expected an error about {why})\n{fragment}",
                    case.name
                ),
                Err(e) => {
                    let text = e.to_string();
                    assert!(
                        text.contains(why),
                        "{}: invalid example {i} failed for another reason than {why}: {text}",
                        case.name
                    );
                }
            }
        }
    }
    defaults_are_applied(&client, cases, ns).await;
    cel_rules_are_enforced(&client, ns).await;
}

async fn create_when_served(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
) -> Result<DynamicObject, kube::Error> {
    // A new CRD takes a moment to be served (404 until it is established).
    for _ in 0..100 {
        match api.create(&PostParams::default(), obj).await {
            Err(kube::Error::Api(s)) if s.code == 404 => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => return other,
        }
    }
    api.create(&PostParams::default(), obj).await
}

async fn defaults_are_applied(client: &kube::Client, cases: &[Case], ns: &str) {
    let case = cases
        .iter()
        .find(|c| c.name.ends_with("Defaulted"))
        .expect("the Defaulted case");
    let crd = (case.crd)();
    let api = api(client, &crd, ns);
    let got = api.get("ok-0").await.expect("the defaulted object");
    let spec = &got.data["spec"];
    assert_eq!(spec["port"], 8080, "{spec}");
    assert_eq!(spec["logLevel"], "info", "{spec}");
    assert_eq!(spec["enabled"], true, "{spec}");
    assert_eq!(spec["ratio"], 0.5, "{spec}");
    assert_eq!(spec["names"], json!(["a", "b"]), "{spec}");
    assert_eq!(spec["owner"], json!({"team": "platform"}), "{spec}");
    assert_eq!(spec["policy"], "Always", "{spec}");
}

async fn cel_rules_are_enforced(client: &kube::Client, ns: &str) {
    let crd = crate::types::rollout::Rollout::crd();
    let api = api(client, &crd, ns);
    let base = json!({"apiVersion": "deploy.example.com/v1", "kind": "Rollout", "metadata": {"name": "cel"},
        "spec": {"name": "r", "minReplicas": 1, "maxReplicas": 2, "strategy": "canary", "steps": [{"weight": 10}]}});
    let with = |path: &[&str], v: Value| {
        let mut o = base.clone();
        let mut node = &mut o;
        for p in &path[..path.len() - 1] {
            node = &mut node[*p];
        }
        node[path[path.len() - 1]] = v;
        serde_json::from_value::<DynamicObject>(o).expect("object")
    };
    for (obj, message) in [
        (
            with(&["spec", "minReplicas"], json!(5)),
            "minReplicas must not exceed maxReplicas",
        ),
        (with(&["spec", "name"], json!("")), "name must not be empty"),
        (
            with(&["spec", "steps"], json!([{"weight": 150}])),
            "weight is a percentage",
        ),
    ] {
        let err = create_when_served(&api, &obj).await.expect_err(message);
        assert!(
            err.to_string().contains(message),
            "expected `{message}`, got {err}"
        );
    }
    let created = create_when_served(&api, &with(&["spec", "name"], json!("r")))
        .await
        .expect("valid rollout");
    let mut changed = created.clone();
    changed.data["spec"]["strategy"] = json!("blue-green");
    let err = api
        .replace("cel", &PostParams::default(), &changed)
        .await
        .expect_err("immutable");
    assert!(err.to_string().contains("strategy is immutable"), "{err}");
    let mut status = created.clone();
    status.data["status"] = json!({"step": 101});
    let err = api
        .replace_status("cel", &PostParams::default(), &status)
        .await
        .expect_err("root rule");
    assert!(
        err.to_string().contains("status.step is a percentage"),
        "{err}"
    );
}

/// Whether every value in `sent` is in `stored` at the same path (the server may add defaults);
/// the first missing or different path otherwise.
fn contained(sent: &Value, stored: &Value, path: &str) -> Result<(), String> {
    match (sent, stored) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let child = format!("{path}.{k}");
                let Some(w) = b.get(k) else {
                    return Err(child);
                };
                contained(v, w, &child)?;
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                contained(v, w, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => Ok(()),
        (a, b) if a == b => Ok(()),
        _ => Err(path.to_owned()),
    }
}
