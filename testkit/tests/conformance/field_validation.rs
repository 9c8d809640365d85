//! Field validation as kube-apiserver does it: fields a built-in kind's Go type lacks are dropped,
//! or refused under `fieldValidation=Strict` with the body's unknown and duplicate fields in
//! order; server-side apply refuses fields the type does not declare, and (strict) keys set
//! twice; custom resources get their schema's defaults on read too.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::common::*;
use crate::crds::{install, unique_group, widget, widget_crd, widgets};

/// The body kube-apiserver 1.37 refuses with the message checked below.
const DEPLOYMENT: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","unknownMeta":"x","labels":{"app":"web"}},
"spec":{"unknownField":"foo","replicas":2,"replicas":3,"selector":{"matchLabels":{"app":"web"}},
"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx","bogus":1}]}}}}"#;

fn message(v: &Value) -> &str {
    v["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn built_in_kinds_drop_unknown_fields_or_refuse_them_when_strict() {
    let c = cluster().await;
    let client = c.client();
    let ns = namespace(&client).await;
    let path = format!("/apis/apps/v1/namespaces/{ns}/deployments");
    let json = Some("application/json");

    let (code, status) = raw(
        &client,
        "POST",
        &format!("{path}?fieldValidation=Strict"),
        json,
        DEPLOYMENT.into(),
    )
    .await;
    assert_eq!(code, 400, "{status}");
    assert_eq!(status["reason"], "BadRequest", "{status}");
    assert_eq!(
        message(&status),
        r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "metadata.unknownMeta", unknown field "spec.unknownField", duplicate field "spec.replicas", unknown field "spec.template.spec.containers[0].bogus""#
    );

    // Ignored (and Warn, the default): created, the unknown fields gone, the last duplicate kept.
    for validation in ["Ignore", "Warn"] {
        let (code, created) = raw(
            &client,
            "POST",
            &format!("{path}?fieldValidation={validation}&dryRun=All"),
            json,
            DEPLOYMENT.into(),
        )
        .await;
        assert_eq!(code, 201, "{created}");
        assert!(
            created["metadata"].get("unknownMeta").is_none(),
            "{created}"
        );
        assert!(created["spec"].get("unknownField").is_none(), "{created}");
        assert!(
            created["spec"]["template"]["spec"]["containers"][0]
                .get("bogus")
                .is_none(),
            "{created}"
        );
        assert_eq!(created["spec"]["replicas"], 3, "{created}");
    }
}

#[tokio::test]
async fn apply_refuses_fields_the_type_does_not_declare() {
    let c = cluster().await;
    let client = c.client();
    let ns = namespace(&client).await;
    let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  unknownMeta: x\nspec:\n  unknownField: foo\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: nginx, image: nginx}]\n";
    for validation in ["Strict", "Ignore"] {
        let (code, status) = raw(
            &client,
            "PATCH",
            &format!("/apis/apps/v1/namespaces/{ns}/deployments/web?fieldManager=m&fieldValidation={validation}"),
            Some("application/apply-patch+yaml"),
            yaml.into(),
        )
        .await;
        assert_eq!(code, 500, "{status}");
        let m = message(&status);
        assert!(
            m.starts_with(
                "failed to create typed patch object (/web; apps/v1, Kind=Deployment): errors:"
            ) && m.contains("\n  .metadata.unknownMeta: field not declared in schema")
                && m.contains("\n  .spec.unknownField: field not declared in schema"),
            "{m}"
        );
    }
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    assert!(
        api.get_opt("web").await.unwrap().is_none(),
        "applied anyway"
    );
}

#[tokio::test]
async fn custom_resource_apply_refuses_undeclared_fields_and_strict_duplicate_keys() {
    let c = cluster().await;
    let client = c.client();
    let group = unique_group();
    install(&client, &widget_crd(&group)).await;
    let ns = namespace(&client).await;
    let path = format!("/apis/{group}/v1/namespaces/{ns}/widgets/w");
    let apply = |query: &'static str, body: String| {
        let (client, path) = (client.clone(), path.clone());
        async move {
            raw(
                &client,
                "PATCH",
                &format!("{path}?fieldManager=m&{query}"),
                Some("application/apply-patch+yaml"),
                body.into_bytes(),
            )
            .await
        }
    };
    let head = format!("\napiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w\n");

    let (code, status) = apply(
        "fieldValidation=Strict",
        format!("{head}unknownField: x\nspec:\n  size: 1\n"),
    )
    .await;
    assert_eq!(code, 500, "{status}");
    assert!(
        message(&status).contains(".unknownField: field not declared in schema"),
        "{status}"
    );

    // Line 8 sets `size` a second time.
    let twice = format!("{head}spec:\n  size: 1\n  size: 2\n");
    let (code, status) = apply("fieldValidation=Strict", twice.clone()).await;
    assert_eq!(code, 400, "{status}");
    assert!(
        message(&status).contains(r#"line 8: key "size" already set in map"#),
        "{status}"
    );
    let (code, created) = apply("fieldValidation=Ignore", twice).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["size"], 2, "{created}");
}

#[tokio::test]
async fn custom_resources_read_with_defaults_added_to_their_crd_later() {
    let c = cluster().await;
    let client = c.client();
    let group = unique_group();
    let crd = install(&client, &widget_crd(&group)).await;
    let ns = namespace(&client).await;
    let api = widgets(&client, &group, &ns);
    api.create(
        &PostParams::default(),
        &widget(&group, "old", json!({"size": 1})),
    )
    .await
    .unwrap();
    // Give `size`'s neighbour `shape` a default: objects stored before read with it.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let props = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties";
    crds.patch(
        crd.metadata.name.as_deref().unwrap(),
        &PatchParams::default(),
        &Patch::Json::<()>(serde_json::from_value(json!([
            {"op": "add", "path": format!("{props}/shape"), "value": {"type": "string", "default": "round"}}
        ])).unwrap()),
    )
    .await
    .unwrap();
    let mut seen = Value::Null;
    for _ in 0..100 {
        seen = api.get("old").await.unwrap().data;
        if seen["spec"]["shape"] == "round" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen["spec"]["shape"], "round",
        "not defaulted on read: {seen}"
    );
    let listed = api.list(&Default::default()).await.unwrap();
    assert_eq!(listed.items[0].data["spec"]["shape"], "round");
}
