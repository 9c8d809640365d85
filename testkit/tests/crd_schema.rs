//! CRD schemas end to end over HTTP: a structural-schema violation is refused when the CRD is
//! created, and custom objects are pruned, defaulted and validated on every write, with the
//! `Status` causes a real kube-apiserver sends.
//!
//! Runs against the embedded server by default. The expectations were taken from
//! kube-apiserver 1.37; point `KUBEFORGE_TEST_KUBECONFIG` at a real cluster (or set
//! `KUBEFORGE_TEST_BACKEND=control-plane`) to run the same file against one.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kubeforge_testkit::TestCluster;
use serde_json::{Value, json};

/// The schema of the test kind: every feature the apiserver prunes, defaults or validates.
fn gadget_schema() -> Value {
    json!({
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {"type": "string", "maxLength": 30, "pattern": "^[a-z0-9./:-]+$"},
                    "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
                    "mode": {"type": "string", "enum": ["Fast", "Slow"], "default": "Slow"},
                    "port": {"x-kubernetes-int-or-string": true,
                             "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "note": {"type": "string", "nullable": true},
                    "limits": {"type": "object", "default": {},
                               "properties": {"cpu": {"type": "string", "default": "1"}}},
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "required": ["name"], "properties": {
                            "name": {"type": "string"},
                            "port": {"type": "integer", "default": 80}}}
                    },
                    "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }
            },
            "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
        }
    })
}

fn gadget_crd(group: &str, schema: Value) -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("gadgets.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": schema}}]
        }
    }))
    .expect("a CustomResourceDefinition")
}

struct Setup {
    /// Keeps the embedded server alive for the test's duration.
    _cluster: TestCluster,
    gadgets: Api<DynamicObject>,
    group: String,
}

/// A fresh group and namespace, with the gadget CRD installed and served.
async fn setup() -> Setup {
    let cluster = TestCluster::from_env().await.expect("a test cluster");
    let client = cluster.client();
    let group = format!(
        "g{}.example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let ns = format!("t-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create namespace");
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &gadget_crd(&group, gadget_schema()))
        .await
        .expect("create the CRD");
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&group, "v1", "Gadget"),
        "gadgets",
    );
    let gadgets = Api::<DynamicObject>::namespaced_with(client, &ns, &ar);
    // A real apiserver serves a new CRD after a moment; the embedded one at once.
    for _ in 0..100 {
        if gadgets.list(&Default::default()).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Setup {
        _cluster: cluster,
        gadgets,
        group,
    }
}

fn gadget(group: &str, name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": format!("{group}/v1"), "kind": "Gadget",
        "metadata": {"name": name}, "spec": spec
    }))
    .expect("a Gadget")
}

/// The causes of a 422, as (field, reason, message), sorted.
fn causes<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Vec<(String, String, String)> {
    let status = match result {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected a 422 Invalid, got {other:?}"),
    };
    assert_eq!(status.code, 422, "{status:?}");
    assert_eq!(status.reason, "Invalid", "{status:?}");
    let mut causes: Vec<(String, String, String)> = status
        .details
        .expect("details")
        .causes
        .into_iter()
        .map(|c| (c.field, c.reason, c.message))
        .collect();
    causes.sort();
    causes
}

/// An expected `Status` cause: (field, reason, message).
type Cause<'a> = (&'a str, &'a str, &'a str);

fn owned(expected: &[Cause]) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = expected
        .iter()
        .map(|(f, r, m)| (f.to_string(), r.to_string(), m.to_string()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn created_objects_are_pruned_and_defaulted() {
    let s = setup().await;
    let created = s
        .gadgets
        .create(
            &PostParams::default(),
            &gadget(
                &s.group,
                "g1",
                json!({"image": "nginx", "surplus": true, "note": null,
                       "ports": [{"name": "http", "junk": 1}],
                       "config": {"anything": {"goes": [1, 2]}}}),
            ),
        )
        .await
        .expect("a valid gadget is created");
    assert_eq!(
        created.data["spec"],
        json!({
            "image": "nginx",
            "replicas": 1,
            "mode": "Slow",
            "note": null,
            "limits": {"cpu": "1"},
            "ports": [{"name": "http", "port": 80}],
            "config": {"anything": {"goes": [1, 2]}}
        }),
        "unknown fields pruned (except under preserve-unknown-fields), defaults applied, \
         nested defaults inside defaults too, a nullable null kept"
    );
}

#[tokio::test]
async fn invalid_objects_get_the_apiservers_causes() {
    let s = setup().await;
    let cases: Vec<(&str, Value, Vec<Cause>)> = vec![
        (
            "missing required field",
            json!({"replicas": 2}),
            vec![("spec.image", "FieldValueRequired", "Required value")],
        ),
        (
            "a non-nullable null is pruned, then required",
            json!({"image": null}),
            vec![("spec.image", "FieldValueRequired", "Required value")],
        ),
        (
            "wrong type",
            json!({"image": "x", "replicas": "two"}),
            vec![(
                "spec.replicas",
                "FieldValueTypeInvalid",
                r#"Invalid value: "string": spec.replicas in body must be of type integer: "string""#,
            )],
        ),
        (
            "enum and maximum",
            json!({"image": "x", "mode": "Medium", "replicas": 11}),
            vec![
                (
                    "spec.mode",
                    "FieldValueNotSupported",
                    r#"Unsupported value: "Medium": supported values: "Fast", "Slow""#,
                ),
                (
                    "spec.replicas",
                    "FieldValueInvalid",
                    "Invalid value: 11: spec.replicas in body should be less than or equal to 10",
                ),
            ],
        ),
        (
            "maxLength and pattern",
            json!({"image": "a".repeat(31)}),
            vec![(
                "spec.image",
                "FieldValueTooLong",
                "Too long: may not be more than 30 bytes",
            )],
        ),
        (
            "pattern",
            json!({"image": "NGINX"}),
            vec![(
                "spec.image",
                "FieldValueInvalid",
                r#"Invalid value: "NGINX": spec.image in body should match '^[a-z0-9./:-]+$'"#,
            )],
        ),
        (
            "duplicate list-map key",
            json!({"image": "x", "ports": [{"name": "a"}, {"name": "a", "port": 81}]}),
            vec![(
                "spec.ports[1]",
                "FieldValueDuplicate",
                r#"Duplicate value: {"name":"a"}"#,
            )],
        ),
        (
            "int-or-string given a boolean",
            json!({"image": "x", "port": true}),
            vec![
                (
                    "<nil>",
                    "FieldValueInvalid",
                    r#"Invalid value: "": "spec.port" must validate at least one schema (anyOf)"#,
                ),
                (
                    "spec.port",
                    "FieldValueTypeInvalid",
                    r#"Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
                ),
                (
                    "spec.port",
                    "FieldValueTypeInvalid",
                    r#"Invalid value: "boolean": spec.port in body must be of type integer: "boolean""#,
                ),
            ],
        ),
    ];
    for (i, (what, spec, want)) in cases.into_iter().enumerate() {
        let result = s
            .gadgets
            .create(
                &PostParams::default(),
                &gadget(&s.group, &format!("bad{i}"), spec),
            )
            .await;
        assert_eq!(causes(result), owned(&want), "{what}");
    }
}

#[tokio::test]
async fn patches_are_pruned_defaulted_and_validated_too() {
    let s = setup().await;
    s.gadgets
        .create(
            &PostParams::default(),
            &gadget(&s.group, "p", json!({"image": "nginx", "replicas": 3})),
        )
        .await
        .expect("create");
    let patched = s
        .gadgets
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"extra": 1, "replicas": null, "limits": null}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(
        (
            patched.data["spec"].get("extra"),
            &patched.data["spec"]["replicas"],
            &patched.data["spec"]["limits"]
        ),
        (None, &json!(1), &json!({"cpu": "1"})),
        "the unknown field is pruned and removed fields are defaulted again"
    );
    let bad = s
        .gadgets
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": -1}})),
        )
        .await;
    assert_eq!(
        causes(bad),
        owned(&[(
            "spec.replicas",
            "FieldValueInvalid",
            "Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
        )])
    );
}

#[tokio::test]
async fn non_structural_crds_are_refused_with_the_schema_path() {
    let cluster = TestCluster::from_env().await.expect("a test cluster");
    let crds = Api::<CustomResourceDefinition>::all(cluster.client());
    let group = format!(
        "g{}.example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut schema = gadget_schema();
    schema["properties"]["spec"]["properties"]["replicas"] = json!({"minimum": 0});
    schema["properties"]["spec"]["properties"]["tags"] =
        json!({"type": "array", "uniqueItems": true, "items": {"type": "string"}});
    let result = crds
        .create(&PostParams::default(), &gadget_crd(&group, schema))
        .await;
    // With a single version the apiserver reports the schema at its internal, hoisted path.
    assert_eq!(
        causes(result),
        owned(&[
            (
                "spec.validation.openAPIV3Schema.properties[spec].properties[replicas].type",
                "FieldValueRequired",
                "Required value: must not be empty for specified object fields",
            ),
            (
                "spec.validation.openAPIV3Schema.properties[spec].properties[tags].uniqueItems",
                "FieldValueForbidden",
                "Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            ),
        ])
    );
}
