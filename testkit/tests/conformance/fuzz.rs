//! Bad input never crashes the server: garbage bodies, content types and parameters on every
//! route get a `Status` error (4xx), and the server keeps serving.

use crate::common::*;

const PATHS: &[&str] = &[
    "/api/v1/namespaces/default/configmaps",
    "/api/v1/namespaces/default/configmaps/fuzz",
    "/api/v1/namespaces/default/pods/fuzz/status",
    "/apis/apps/v1/namespaces/default/deployments/fuzz/scale",
    "/apis/apps/v1/namespaces/default/deployments",
    "/api/v1/namespaces",
    "/api/v1/namespaces/default",
    "/api/v1/namespaces/default/status",
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x.example.com",
    "/api/v1/nodes/n1",
    "/apis/nope.example.com/v1/things",
    "/api/v1/namespaces/default/unknown",
    "/api/v2",
    "/apis/apps",
    "/api/v1/namespaces/default/configmaps/a/b/c/d",
    "/openapi/v3/apis/nope/v1",
    "/%ZZ/%00",
];

const BODIES: &[&[u8]] = &[
    b"",
    b"{",
    b"null",
    b"[]",
    b"42",
    b"\"string\"",
    b"{\"metadata\": 5}",
    b"{\"metadata\": {\"name\": 5}}",
    b"{\"apiVersion\": 1, \"kind\": []}",
    b"{\"metadata\": {\"name\": \"fuzz\", \"labels\": {\"a\": 1}, \"ownerReferences\": \"x\", \"finalizers\": {}}}",
    b"{\"metadata\": {\"name\": \"fuzz\", \"resourceVersion\": \"abc\"}, \"spec\": null, \"status\": 7}",
    b"{\"spec\": {\"replicas\": -1}}",
    b"[{\"op\": \"explode\"}]",
    b"[{\"op\": \"add\", \"path\": \"no-slash\", \"value\": 1}]",
    b"apiVersion: v1\nkind: ConfigMap\nmetadata: [\n",
    b"\xff\xfe\x00garbage",
    b"{\"apiVersion\":\"apiextensions.k8s.io/v1\",\"kind\":\"CustomResourceDefinition\",\"metadata\":{\"name\":\"x.example.com\"},\"spec\":{\"versions\":[{\"schema\":{\"openAPIV3Schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#\"}}}}}]}}",
];

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/yaml"),
    Some("text/plain"),
    Some("application/merge-patch+json"),
    Some("application/json-patch+json"),
    Some("application/strategic-merge-patch+json"),
    Some("application/apply-patch+yaml"),
];

const QUERIES: &[&str] = &[
    "",
    "?watch=maybe",
    "?watch=1&timeoutSeconds=-5",
    "?watch=1&resourceVersion=abc",
    "?limit=-1",
    "?limit=2&continue=zzzz",
    "?labelSelector=%28%28%28",
    "?fieldSelector=a%3D%3D%3Db",
    "?resourceVersionMatch=Sometimes&resourceVersion=1",
    "?propagationPolicy=Sideways",
    "?dryRun=Maybe",
    "?fieldManager=&force=perhaps",
];

/// Every (method, path + query, content type, body) the fuzz sends.
fn requests() -> Vec<(&'static str, String, Option<&'static str>, &'static [u8])> {
    let mut out = Vec::new();
    for path in PATHS {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            for body in BODIES {
                for ct in CONTENT_TYPES {
                    // Queries are crossed with a few bodies only, to keep the run short.
                    let queries: &[&str] = if body.len() < 3 {
                        QUERIES
                    } else {
                        &QUERIES[..1]
                    };
                    for q in queries {
                        // kube-apiserver reads any bool value but "false"/"0" as true, so
                        // `watch=maybe` is a watch too: without a timeout it would not end.
                        if method == "GET" && q.contains("watch=") && !q.contains("timeout") {
                            continue;
                        }
                        out.push((method, format!("{path}{q}"), *ct, *body));
                    }
                }
            }
        }
    }
    out
}

/// `KUBEFORGE_FUZZ_BUDGET=N` sends an evenly spread sample of about N requests instead of all
/// (CI's run against the real kube-apiserver, where each costs etcd writes on 2 cores).
fn budget() -> Option<usize> {
    std::env::var("KUBEFORGE_FUZZ_BUDGET")
        .ok()
        .and_then(|b| b.parse().ok())
        .filter(|b| *b > 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_every_route_gets_a_status_error_and_never_crashes_the_server() {
    // A DELETE on a collection path deletes the whole collection (every CRD, every ConfigMap of
    // `default`): on the real backend this runs on the second plane (the one without watch cache,
    // where only the 410 tests live, in namespaces of their own), never on the plane the other
    // tests share.
    let c = kubeforge_testkit::TestCluster::from_env_uncached()
        .await
        .expect("a cluster (embedded, or the real control plane without watch cache)");
    let client = c.client();
    let all = requests();
    let stride = budget().map_or(1, |b| all.len().div_ceil(b));
    let mut sent = 0;
    for (method, uri, ct, body) in all.iter().step_by(stride) {
        // Every request is answered, and soon: garbage never hangs a connection.
        let (code_, status) = within(10, raw(&client, method, uri, *ct, body.to_vec())).await;
        sent += 1;
        // Only paths outside every API group get the plain-text `404 page not found`, and a path
        // that is not valid URL escaping gets Go's plain-text `400 Bad Request` before any
        // handler runs.
        let plain = status.is_null() && (code_ == 404 || (code_ == 400 && uri.starts_with("/%ZZ")));
        if code_ >= 400 && !plain {
            assert_eq!(
                status["kind"], "Status",
                "{method} {uri} ({ct:?}) -> {code_} without a Status: {status}"
            );
        }
        assert!(
            code_ < 500
                || status["message"]
                    == "Internal error occurred: resourceVersion should not be set on objects to be created",
            "{method} {uri} ({ct:?}, body {:?}) -> {code_}: {status}",
            String::from_utf8_lossy(body)
        );
    }
    assert!(
        all.len() > 1000 && sent * stride >= all.len(),
        "{sent} of {} sent",
        all.len()
    );
    let (code_, _) = raw(&client, "GET", "/healthz", None, vec![]).await;
    assert_eq!(code_, 200, "the server still serves after the garbage");
}
