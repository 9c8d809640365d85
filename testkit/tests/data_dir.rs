//! `ApiServerBuilder::data_dir`: objects, custom resources included, outlive the server.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kubeforge_testkit::ApiServer;
use serde_json::json;

#[tokio::test]
async fn a_restarted_server_serves_what_it_stored_custom_resources_included() {
    let dir = tempfile::tempdir().expect("temp dir");
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "notes.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "notes", "singular": "note", "kind": "Note"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"text": {"type": "string"}}}}}}}]}});
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Note"),
        "notes",
    );
    let note_rv = {
        let server = ApiServer::builder()
            .data_dir(dir.path())
            .start()
            .await
            .expect("server");
        server
            .seed(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                vec![crd],
            )
            .expect("crd");
        let notes: Api<DynamicObject> = Api::namespaced_with(server.client(), "default", &ar);
        let note: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1",
            "kind": "Note", "metadata": {"name": "n"}, "spec": {"text": "kept"}}))
        .expect("note");
        let created = notes
            .create(&PostParams::default(), &note)
            .await
            .expect("note");
        server.shutdown().await;
        created.metadata.resource_version.expect("rv")
    };

    let server = ApiServer::builder()
        .data_dir(dir.path())
        .start()
        .await
        .expect("restarted server");
    let notes: Api<DynamicObject> = Api::namespaced_with(server.client(), "default", &ar);
    let note = notes
        .get("n")
        .await
        .expect("the custom resource is served after a restart");
    assert_eq!(note.data["spec"]["text"], "kept");
    assert_eq!(
        note.metadata.resource_version.as_deref(),
        Some(note_rv.as_str())
    );
    let cms: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("after".into());
    let after = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let rv = |s: &str| s.parse::<u64>().expect("numeric rv");
    assert!(rv(after.metadata.resource_version.as_deref().expect("rv")) > rv(&note_rv));
    server.shutdown().await;
}
