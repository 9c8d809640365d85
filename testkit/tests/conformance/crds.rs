//! CustomResourceDefinitions: registration, discovery, custom object CRUD, schema validation,
//! pruning, defaulting, subresources, selectable fields, printer columns, deletion.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use serde_json::{Value, json};

use crate::common::*;

/// A CRD in a group unique to this test, so runs against a shared cluster do not collide.
pub fn widget_crd(group: &str) -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wdg"]},
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size"],
                            "properties": {
                                "size": {"type": "integer", "minimum": 0},
                                "color": {"type": "string", "default": "blue", "enum": ["blue", "red"]},
                            },
                        },
                        "status": {"type": "object", "properties": {"ready": {"type": "integer"}, "selector": {"type": "string"}}},
                    },
                }},
                "subresources": {
                    "status": {},
                    "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.ready", "labelSelectorPath": ".status.selector"},
                },
                "selectableFields": [{"jsonPath": ".spec.color"}],
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                ],
            }],
        },
    }))
    .expect("crd")
}

pub fn unique_group() -> String {
    format!(
        "g{}.example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

pub async fn install(
    client: &kube::Client,
    crd: &CustomResourceDefinition,
) -> CustomResourceDefinition {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().expect("name");
    api.create(&PostParams::default(), crd)
        .await
        .expect("create crd");
    for _ in 0..100 {
        let got = api.get(&name).await.expect("get crd");
        let established = got
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        if established {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("CRD {name} never became Established");
}

pub fn widgets(client: &kube::Client, group: &str, ns: &str) -> Api<DynamicObject> {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", "Widget"), "widgets");
    Api::namespaced_with(client.clone(), ns, &ar)
}

pub fn widget(group: &str, name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": format!("{group}/v1"), "kind": "Widget", "metadata": {"name": name}, "spec": spec})).expect("widget")
}

#[tokio::test]
async fn creating_a_crd_establishes_it_and_serves_its_resource() {
    let c = cluster().await;
    let group = unique_group();
    let crd = install(&c.client(), &widget_crd(&group)).await;
    let st = crd.status.expect("status");
    assert_eq!(
        st.accepted_names
            .expect("acceptedNames")
            .list_kind
            .as_deref(),
        Some("WidgetList")
    );
    assert_eq!(st.stored_versions, Some(vec!["v1".to_string()]));
    let discovery = kube::Discovery::new(c.client())
        .filter(&[&group])
        .run()
        .await
        .expect("discovery");
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk(&group, "v1", "Widget"))
        .expect("Widget is discoverable");
    assert_eq!(ar.plural, "widgets");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(
        caps.subresources
            .iter()
            .any(|(r, _)| r.plural == "widgets/status" || r.plural == "status")
    );

    let ns = namespace(&c.client()).await;
    let api = widgets(&c.client(), &group, &ns);
    let created = api
        .create(
            &PostParams::default(),
            &widget(&group, "w1", json!({"size": 1})),
        )
        .await
        .expect("create widget");
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(
        api.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1
    );
}

#[tokio::test]
async fn custom_objects_are_validated_pruned_and_defaulted() {
    let c = cluster().await;
    let group = unique_group();
    install(&c.client(), &widget_crd(&group)).await;
    let ns = namespace(&c.client()).await;
    let api = widgets(&c.client(), &group, &ns);
    let w = api
        .create(
            &PostParams::default(),
            &widget(&group, "w", json!({"size": 2, "unknown": true})),
        )
        .await
        .expect("create");
    assert_eq!(w.data["spec"]["color"], "blue", "defaulted");
    assert!(w.data["spec"].get("unknown").is_none(), "pruned");

    let s = api_err(
        api.create(
            &PostParams::default(),
            &widget(&group, "bad", json!({"size": "big", "color": "green"})),
        )
        .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    let fields: Vec<String> = s
        .details
        .expect("details")
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert!(
        fields.contains(&"spec.size".to_string()) && fields.contains(&"spec.color".to_string()),
        "{fields:?}"
    );
    let s = api_err(
        api.create(
            &PostParams::default(),
            &widget(&group, "missing", json!({})),
        )
        .await,
    );
    assert_eq!(s.details.expect("details").causes[0].field, "spec.size");
}

#[tokio::test]
async fn custom_resources_get_status_and_scale_subresources() {
    let c = cluster().await;
    let group = unique_group();
    install(&c.client(), &widget_crd(&group)).await;
    let ns = namespace(&c.client()).await;
    let api = widgets(&c.client(), &group, &ns);
    api.create(
        &PostParams::default(),
        &widget(&group, "w", json!({"size": 3})),
    )
    .await
    .expect("create");
    let w = api
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": 2, "selector": "app=w"}})),
        )
        .await
        .expect("status");
    assert_eq!(w.data["status"]["ready"], 2);
    assert_eq!(w.data["spec"]["size"], 3);
    let (code_, scale) = raw(
        &c.client(),
        "GET",
        &format!("/apis/{group}/v1/namespaces/{ns}/widgets/w/scale"),
        None,
        vec![],
    )
    .await;
    assert_eq!(code_, 200);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"], json!({"replicas": 2, "selector": "app=w"}));
    let body = serde_json::to_vec(&json!({"spec": {"replicas": 7}})).expect("json");
    let (code_, _) = raw(
        &c.client(),
        "PATCH",
        &format!("/apis/{group}/v1/namespaces/{ns}/widgets/w/scale"),
        Some("application/merge-patch+json"),
        body,
    )
    .await;
    assert_eq!(code_, 200);
    assert_eq!(api.get("w").await.expect("get").data["spec"]["size"], 7);
}

#[tokio::test]
async fn selectable_fields_work_as_field_selectors() {
    let c = cluster().await;
    let group = unique_group();
    install(&c.client(), &widget_crd(&group)).await;
    let ns = namespace(&c.client()).await;
    let api = widgets(&c.client(), &group, &ns);
    api.create(
        &PostParams::default(),
        &widget(&group, "b", json!({"size": 1})),
    )
    .await
    .expect("blue");
    api.create(
        &PostParams::default(),
        &widget(&group, "r", json!({"size": 1, "color": "red"})),
    )
    .await
    .expect("red");
    let red = api
        .list(&ListParams::default().fields("spec.color=red"))
        .await
        .expect("select");
    assert_eq!(
        red.items
            .iter()
            .filter_map(|o| o.metadata.name.clone())
            .collect::<Vec<_>>(),
        ["r"]
    );
    assert_eq!(
        code(api.list(&ListParams::default().fields("spec.size=1")).await),
        400
    );
}

#[tokio::test]
async fn tables_show_a_crds_printer_columns() {
    let c = cluster().await;
    let group = unique_group();
    install(&c.client(), &widget_crd(&group)).await;
    let ns = namespace(&c.client()).await;
    widgets(&c.client(), &group, &ns)
        .create(
            &PostParams::default(),
            &widget(&group, "t", json!({"size": 4})),
        )
        .await
        .expect("create");
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let (code_, t) = raw_with(
        &c.client(),
        "GET",
        &format!("/apis/{group}/v1/namespaces/{ns}/widgets"),
        None,
        Some(accept),
        vec![],
    )
    .await;
    assert_eq!(code_, 200);
    assert_eq!(t["kind"], "Table");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(cols, ["Name", "Size", "Color"]);
    assert_eq!(t["rows"][0]["cells"], json!(["t", 4, "blue"]));
}

#[tokio::test]
async fn invalid_crds_are_rejected_with_field_paths() {
    let c = cluster().await;
    let api: Api<CustomResourceDefinition> = Api::all(c.client());
    let group = unique_group();
    let mut bad = serde_json::to_value(widget_crd(&group)).expect("json");
    bad["metadata"]["name"] = json!(format!("gadgets.{group}"));
    bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["tags"] =
        json!({"type": "array"});
    let bad: CustomResourceDefinition = serde_json::from_value(bad).expect("crd");
    let s = api_err(api.create(&PostParams::default(), &bad).await);
    assert_eq!(s.code, 422);
    let fields: Vec<String> = s
        .details
        .expect("details")
        .causes
        .into_iter()
        .map(|c| c.field)
        .collect();
    assert!(fields.iter().any(|f| f == "metadata.name"), "{fields:?}");
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("spec.validation.openAPIV3Schema")),
        "{fields:?}"
    );
}

#[tokio::test]
async fn deleting_a_crd_removes_its_objects_and_endpoints() {
    let c = cluster().await;
    let group = unique_group();
    install(&c.client(), &widget_crd(&group)).await;
    let ns = namespace(&c.client()).await;
    let api = widgets(&c.client(), &group, &ns);
    api.create(
        &PostParams::default(),
        &widget(&group, "gone", json!({"size": 1})),
    )
    .await
    .expect("create");
    Api::<CustomResourceDefinition>::all(c.client())
        .delete(&format!("widgets.{group}"), &DeleteParams::default())
        .await
        .expect("delete crd");
    for _ in 0..100 {
        let (code_, _) = raw(
            &c.client(),
            "GET",
            &format!("/apis/{group}/v1/namespaces/{ns}/widgets"),
            None,
            vec![],
        )
        .await;
        if code_ == 404 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("widgets are still served after their CRD was deleted");
}
