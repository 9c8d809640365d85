//! Discovery and server info: /version, /api, /apis, resource lists, aggregated discovery
//! fallback, health endpoints, OpenAPI v3.

use crate::common::*;

#[tokio::test]
async fn discovery_documents_have_the_real_shapes() {
    let c = cluster().await;
    let client = c.client();
    let (code_, v) = raw(&client, "GET", "/version", None, vec![]).await;
    assert_eq!(code_, 200);
    assert!(v["major"].is_string() && v["gitVersion"].as_str().is_some_and(|g| g.starts_with('v')));
    let (_, api) = raw(&client, "GET", "/api", None, vec![]).await;
    assert_eq!(api["kind"], "APIVersions");
    assert_eq!(api["versions"], serde_json::json!(["v1"]));
    let (_, groups) = raw(&client, "GET", "/apis", None, vec![]).await;
    assert_eq!(groups["kind"], "APIGroupList");
    let apps = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == "apps")
        .expect("apps group");
    assert_eq!(apps["preferredVersion"]["groupVersion"], "apps/v1");
    let (_, list) = raw(&client, "GET", "/apis/apps/v1", None, vec![]).await;
    assert_eq!(list["kind"], "APIResourceList");
    let names: Vec<&str> = list["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for want in [
        "deployments",
        "deployments/status",
        "deployments/scale",
        "replicasets",
        "statefulsets",
        "daemonsets",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let (_, core) = raw(&client, "GET", "/api/v1", None, vec![]).await;
    let pods = core["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "pods")
        .expect("pods");
    assert_eq!(pods["namespaced"], true);
    assert_eq!(pods["kind"], "Pod");
    assert!(
        pods["shortNames"]
            .as_array()
            .is_some_and(|s| s.contains(&serde_json::json!("po")))
    );
    for group in [
        "batch",
        "autoscaling",
        "networking.k8s.io",
        "discovery.k8s.io",
        "coordination.k8s.io",
        "rbac.authorization.k8s.io",
        "events.k8s.io",
        "apiextensions.k8s.io",
        "admissionregistration.k8s.io",
    ] {
        let (code_, _) = raw(&client, "GET", &format!("/apis/{group}"), None, vec![]).await;
        assert_eq!(code_, 200, "group {group}");
    }
}

#[tokio::test]
async fn aggregated_discovery_requests_get_the_legacy_form() {
    let c = cluster().await;
    let accept =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let req = http::Request::get("/apis")
        .header(http::header::ACCEPT, accept)
        .body(kube::client::Body::empty())
        .expect("request");
    let resp = c.client().send(req).await.expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let ct = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body: serde_json::Value =
        serde_json::from_slice(&resp.into_body().collect_bytes().await.expect("body"))
            .expect("json");
    if body["kind"] == "APIGroupDiscoveryList" {
        assert!(
            ct.contains("as=APIGroupDiscoveryList"),
            "aggregated bodies are labelled as such: {ct}"
        );
    } else {
        assert_eq!(body["kind"], "APIGroupList");
        assert!(!ct.contains("APIGroupDiscoveryList"), "{ct}");
    }
    // kube-rs discovery (which asks for the aggregated form first) works either way.
    let d = kube::Discovery::new(c.client())
        .run()
        .await
        .expect("discovery");
    assert!(d.groups().any(|g| g.name() == "apps"));
}

#[tokio::test]
async fn health_and_openapi_endpoints_answer() {
    let c = cluster().await;
    for path in ["/healthz", "/readyz", "/livez"] {
        let (code_, _) = raw(&c.client(), "GET", path, None, vec![]).await;
        assert_eq!(code_, 200, "{path}");
    }
    let (code_, index) = raw(&c.client(), "GET", "/openapi/v3", None, vec![]).await;
    assert_eq!(code_, 200);
    let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("apps/v1 in the OpenAPI v3 index")
        .to_string();
    let (code_, doc) = raw(&c.client(), "GET", &url, None, vec![]).await;
    assert_eq!(code_, 200);
    let patch_takes_field_validation = doc["paths"].as_object().expect("paths").values().any(|p| {
        p["patch"]["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
            && p["patch"]["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|x| x["name"] == "fieldValidation"))
    });
    assert!(
        patch_takes_field_validation,
        "kubectl uses server-side validation only when PATCH advertises fieldValidation"
    );
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let c = cluster().await;
    // Paths outside every served group/version get the plain-text fallback, not a Status.
    for path in ["/apis/nope.example.com/v1/things", "/nothing/here"] {
        let (code_, body) = raw(&c.client(), "GET", path, None, vec![]).await;
        assert_eq!(code_, 404, "{path}");
        assert!(body.is_null(), "{path}: {body}");
    }
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::all_with(
        c.client(),
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("nope.example.com", "v1", "Thing"),
            "things",
        ),
    );
    assert_eq!(code(api.list(&Default::default()).await), 404);
    // Unknown versions of a served group, and unknown resources, get a NotFound Status.
    for path in ["/apis/apps/v9", "/api/v1/namespaces/default/things"] {
        let (code_, s) = raw(&c.client(), "GET", path, None, vec![]).await;
        assert_eq!(code_, 404, "{path}");
        assert_eq!(
            s["message"], "the server could not find the requested resource",
            "{path}"
        );
    }
}
