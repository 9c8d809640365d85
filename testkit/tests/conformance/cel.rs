//! CEL validation rules of CRDs (`x-kubernetes-validations`): enforced on create, update, status
//! writes and server-side apply, transition rules against the old object, rules that do not
//! parse refused with the CRD — the same answers from both servers.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

use crate::common::*;
use crate::crds::{install, unique_group};

/// A CRD whose spec has a range rule with a message, an immutable field (a transition rule), a
/// rule with messageExpression, reason and fieldPath, and whose status has a rule of its own.
fn ranged_crd(group: &str) -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("ranges.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
            "names": {"plural": "ranges", "singular": "range", "kind": "Range"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object",
                        "x-kubernetes-validations": [
                            {"rule": "self.min <= self.max", "message": "min must not exceed max"},
                            {"rule": "self.zone == oldSelf.zone", "message": "zone is immutable"},
                            {"rule": "self.tags.all(t, t.lowerAscii() == t)",
                             "messageExpression": "'tags must be ' + 'lower case'",
                             "reason": "FieldValueForbidden", "fieldPath": ".tags"}],
                        "properties": {
                            "min": {"type": "integer"}, "max": {"type": "integer"},
                            "zone": {"type": "string"},
                            "tags": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 10}}},
                    "status": {"type": "object",
                        "x-kubernetes-validations": [{"rule": "self.ready >= 0", "message": "ready cannot be negative"}],
                        "properties": {"ready": {"type": "integer"}}}}}}}]}
    }))
    .expect("crd")
}

fn ranges(client: &kube::Client, group: &str, ns: &str) -> Api<DynamicObject> {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", "Range"), "ranges");
    Api::namespaced_with(client.clone(), ns, &ar)
}

fn range(group: &str, name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": format!("{group}/v1"), "kind": "Range",
        "metadata": {"name": name}, "spec": spec}))
    .expect("range")
}

fn causes(status: &kube::core::Status) -> Vec<(String, String)> {
    status
        .details
        .as_ref()
        .map(|d| {
            d.causes
                .iter()
                .map(|c| (c.field.clone(), c.message.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn validation_rules_are_enforced_on_every_write() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let group = unique_group();
    install(&c.client(), &ranged_crd(&group)).await;
    let api = ranges(&c.client(), &group, &ns);
    let pp = PostParams::default();
    let good = json!({"min": 1, "max": 5, "zone": "a", "tags": ["x"]});

    // Create: the rule's message, at the node the rule is on.
    let s = api_err(
        api.create(
            &pp,
            &range(
                &group,
                "bad",
                json!({"min": 5, "max": 1, "zone": "a", "tags": []}),
            ),
        )
        .await,
    );
    assert_eq!(s.code, 422, "{s:?}");
    assert_eq!(
        causes(&s),
        [(
            "spec".to_string(),
            "Invalid value: min must not exceed max".to_string()
        )],
        "{}",
        s.message
    );
    // messageExpression, reason and fieldPath.
    let s = api_err(
        api.create(
            &pp,
            &range(
                &group,
                "caps",
                json!({"min": 1, "max": 2, "zone": "a", "tags": ["ok", "NotOk"]}),
            ),
        )
        .await,
    );
    let got = s.details.as_ref().expect("details").causes.clone();
    assert_eq!(got.len(), 1, "{s:?}");
    assert_eq!(got[0].field, "spec.tags");
    assert_eq!(got[0].reason, "FieldValueForbidden");
    assert_eq!(got[0].message, "Forbidden: tags must be lower case");

    api.create(&pp, &range(&group, "r", good.clone()))
        .await
        .expect("a valid object is created");

    // Update: a transition rule compares with the stored object.
    let mut moved = api.get("r").await.expect("get");
    moved.data["spec"]["zone"] = json!("b");
    let s = api_err(api.replace("r", &pp, &moved).await);
    assert_eq!(
        causes(&s),
        [(
            "spec".to_string(),
            "Invalid value: zone is immutable".to_string()
        )]
    );
    // Server-side apply goes through the same rules.
    let apply = json!({"apiVersion": format!("{group}/v1"), "kind": "Range", "metadata": {"name": "r"},
        "spec": {"min": 9, "max": 5, "zone": "a", "tags": ["x"]}});
    let s = api_err(
        api.patch(
            "r",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&apply),
        )
        .await,
    );
    assert_eq!(
        causes(&s),
        [(
            "spec".to_string(),
            "Invalid value: min must not exceed max".to_string()
        )]
    );
    // A status write is checked against the status rules.
    let s = api_err(
        api.patch_status(
            "r",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": -1}})),
        )
        .await,
    );
    assert_eq!(
        causes(&s),
        [(
            "status".to_string(),
            "Invalid value: ready cannot be negative".to_string()
        )]
    );
    api.patch_status(
        "r",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"ready": 1}})),
    )
    .await
    .expect("a valid status is written");
}

#[tokio::test]
async fn a_crd_whose_rule_does_not_parse_is_refused() {
    let c = cluster().await;
    let api: Api<CustomResourceDefinition> = Api::all(c.client());
    let mut crd = serde_json::to_value(ranged_crd(&unique_group())).expect("json");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"]
        [0]["rule"] = json!("self.min <=");
    let crd: CustomResourceDefinition = serde_json::from_value(crd).expect("crd");
    let s = api_err(api.create(&PostParams::default(), &crd).await);
    assert_eq!(s.code, 422, "{s:?}");
    let fields: Vec<(String, String)> = causes(&s);
    assert!(
        fields.iter().any(|(f, m)| f
            == "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
            && m.contains("compilation failed")),
        "{fields:?}"
    );
}
