//! Content negotiation: answers in the form the client's `Accept` asks for — protobuf for
//! built-in kinds (client-go's typed clients), JSON for custom resources, `PartialObjectMetadata`
//! for metadata clients (client-go's `metadata` package, kube-rs's `get_metadata`), and 406 when
//! nothing asked for can be written.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::common::*;
use crate::crds::{install, unique_group, widget_crd};

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
/// What client-go's typed clients send.
const PROTOBUF_FIRST: &str = "application/vnd.kubernetes.protobuf, */*";
/// What client-go's metadata client sends.
const METADATA: &str = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
const METADATA_JSON: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const METADATA_LIST_JSON: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The frames of a protobuf watch stream: each a 4-byte big-endian length and that many bytes.
fn frames(mut body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while body.len() >= 4 {
        let len = u32::from_be_bytes(body[..4].try_into().unwrap()) as usize;
        assert!(
            body.len() >= 4 + len,
            "a frame cut short: {len} of {}",
            body.len() - 4
        );
        out.push(body[4..4 + len].to_vec());
        body = &body[4 + len..];
    }
    assert!(
        body.is_empty(),
        "{} stray bytes after the last frame",
        body.len()
    );
    out
}

#[tokio::test]
async fn built_in_kinds_answer_in_protobuf_when_asked() {
    let tc = cluster().await;
    let client = tc.client();
    let ns = namespace(&client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let created = api
        .create(&PostParams::default(), &cm("pb-one", &[("app", "pb")]))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.unwrap();
    let path = format!("/api/v1/namespaces/{ns}/configmaps");

    // One object: `k8s\0`, then the envelope naming the kind, then the object.
    let (code, ct, body) = raw_bytes(
        &client,
        "GET",
        &format!("{path}/pb-one"),
        None,
        Some(PROTOBUF_FIRST),
        vec![],
    )
    .await;
    assert_eq!((code, ct.as_str()), (200, PROTOBUF));
    assert!(body.starts_with(b"k8s\0"), "{body:?}");
    for text in ["ConfigMap", "pb-one", &ns, "app", "pb", &rv] {
        assert!(contains(&body, text), "{text} missing from {body:?}");
    }

    // A list, and an error Status, are protobuf too.
    let (code, ct, body) =
        raw_bytes(&client, "GET", &path, None, Some(PROTOBUF_FIRST), vec![]).await;
    assert_eq!((code, ct.as_str()), (200, PROTOBUF));
    assert!(
        body.starts_with(b"k8s\0") && contains(&body, "ConfigMapList"),
        "{body:?}"
    );
    let (code, ct, body) = raw_bytes(
        &client,
        "GET",
        &format!("{path}/absent"),
        None,
        Some(PROTOBUF_FIRST),
        vec![],
    )
    .await;
    assert_eq!((code, ct.as_str()), (404, PROTOBUF));
    assert!(
        contains(&body, "Status") && contains(&body, "NotFound"),
        "{body:?}"
    );

    // A watch: length-prefixed frames, each a WatchEvent holding an enveloped object.
    let (code, ct, body) = raw_bytes(
        &client,
        "GET",
        &format!("{path}?watch=true&resourceVersion=0&timeoutSeconds=1"),
        None,
        Some(PROTOBUF_FIRST),
        vec![],
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(ct, "application/vnd.kubernetes.protobuf;stream=watch");
    let frames = frames(&body);
    assert!(
        frames
            .iter()
            .any(|f| contains(f, "ADDED") && contains(f, "pb-one") && contains(f, "k8s\0")),
        "no ADDED frame for pb-one in {frames:?}"
    );

    // JSON clients still get JSON.
    let (code, ct, _) = raw_bytes(
        &client,
        "GET",
        &format!("{path}/pb-one"),
        None,
        Some("application/json"),
        vec![],
    )
    .await;
    assert_eq!((code, ct.as_str()), (200, "application/json"));
}

#[tokio::test]
async fn custom_resources_answer_json_to_protobuf_clients_and_406_to_protobuf_only_ones() {
    let tc = cluster().await;
    let client = tc.client();
    let ns = namespace(&client).await;
    let group = unique_group();
    install(&client, &widget_crd(&group)).await;
    let path = format!("/apis/{group}/v1/namespaces/{ns}/widgets");
    let (code, ct, _) = raw_bytes(&client, "GET", &path, None, Some(PROTOBUF_FIRST), vec![]).await;
    assert_eq!((code, ct.as_str()), (200, "application/json"));
    // The refusal is itself written in protobuf, the form the client asked for.
    let (code, ct, body) = raw_bytes(&client, "GET", &path, None, Some(PROTOBUF), vec![]).await;
    assert_eq!((code, ct.as_str()), (406, PROTOBUF), "{body:?}");
    assert!(
        body.starts_with(b"k8s\0") && contains(&body, "Status") && contains(&body, "NotAcceptable"),
        "{:?}",
        String::from_utf8_lossy(&body)
    );
    // Nothing the server writes at all.
    let (code, _, body) = raw_bytes(
        &client,
        "GET",
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        None,
        Some("text/html"),
        vec![],
    )
    .await;
    let status: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_eq!(code, 406, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap_or_default()
            .contains("application/json"),
        "{status}"
    );
}

#[tokio::test]
async fn metadata_clients_get_partial_object_metadata() {
    let tc = cluster().await;
    let client = tc.client();
    let ns = namespace(&client).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &cm("meta-one", &[("app", "meta")]))
        .await
        .unwrap();
    let path = format!("/api/v1/namespaces/{ns}/configmaps");

    let (code, ct, body) = raw_bytes(
        &client,
        "GET",
        &format!("{path}/meta-one"),
        None,
        Some(METADATA_JSON),
        vec![],
    )
    .await;
    let got: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((code, ct.as_str()), (200, "application/json"), "{got}");
    assert_eq!(got["kind"], "PartialObjectMetadata", "{got}");
    assert_eq!(got["apiVersion"], "meta.k8s.io/v1", "{got}");
    assert_eq!(got["metadata"]["name"], "meta-one", "{got}");
    assert_eq!(got["metadata"]["labels"], json!({"app": "meta"}), "{got}");
    assert!(got.get("data").is_none(), "the data came along: {got}");

    let (code, _, body) = raw_bytes(
        &client,
        "GET",
        &path,
        None,
        Some(METADATA_LIST_JSON),
        vec![],
    )
    .await;
    let list: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["kind"], "PartialObjectMetadataList", "{list}");
    assert!(list["metadata"]["resourceVersion"].is_string(), "{list}");
    let item = &list["items"][0];
    assert_eq!(item["kind"], "PartialObjectMetadata", "{list}");
    assert_eq!(item["metadata"]["name"], "meta-one", "{list}");
    assert!(item.get("data").is_none(), "{list}");

    // Watch events carry metadata only.
    let (code, _, body) = raw_bytes(
        &client,
        "GET",
        &format!("{path}?watch=true&resourceVersion=0&timeoutSeconds=1"),
        None,
        Some(METADATA_JSON),
        vec![],
    )
    .await;
    assert_eq!(code, 200);
    let events: Vec<Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let added = events
        .iter()
        .find(|e| e["type"] == "ADDED" && e["object"]["metadata"]["name"] == "meta-one")
        .unwrap_or_else(|| panic!("no ADDED event for meta-one in {events:?}"));
    assert_eq!(added["object"]["kind"], "PartialObjectMetadata", "{added}");
    assert!(added["object"].get("data").is_none(), "{added}");

    // client-go's metadata client asks protobuf first: a built-in kind's metadata comes as
    // protobuf PartialObjectMetadata.
    let (code, ct, body) = raw_bytes(
        &client,
        "GET",
        &format!("{path}/meta-one"),
        None,
        Some(METADATA),
        vec![],
    )
    .await;
    assert_eq!((code, ct.as_str()), (200, PROTOBUF));
    assert!(
        contains(&body, "PartialObjectMetadata") && contains(&body, "meta-one"),
        "{body:?}"
    );
    assert!(!contains(&body, "ConfigMap"), "{body:?}");

    // And kube-rs's metadata API reads it.
    let meta = api.get_metadata("meta-one").await.unwrap();
    assert_eq!(meta.metadata.labels.unwrap()["app"], "meta");
}
