//! How fast the embedded server serves a big list, so it is never the bottleneck of a client
//! benchmark: seeds N realistic Pods (~3.5 KiB of JSON each) with `ApiServer::seed`, then lists
//! them in pages of 500 as raw bytes (server cost only) and as typed `Pod`s (with kube's decode),
//! and opens a watch that replays the last events.
//!
//! `cargo bench -p kubeforge-testkit --bench list_pods` (N from `KUBEFORGE_BENCH_OBJECTS`,
//! default 100000). Prints one line per measurement.

use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kubeforge_testkit::ApiServer;
use serde_json::{Value, json};

fn pod(i: usize) -> Value {
    let name = format!("pod-{i:06}");
    json!({
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"app": format!("app-{}", i % 50), "tier": "backend", "pod-template-hash": "7d9c6b5f4"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-27T00:00:00Z", "prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "app-7d9c6b5f4", "uid": "3f1e5c1a-0b9e-4c55-9a3e-6f0d2c1b8a77", "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {
            "nodeName": format!("node-{}", i % 100),
            "serviceAccountName": "default",
            "restartPolicy": "Always",
            "containers": [{
                "name": "app",
                "image": "registry.example.com/team/app:v1.2.3",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 9090, "name": "metrics", "protocol": "TCP"}],
                "env": (0..8).map(|e| json!({"name": format!("ENV_VAR_{e}"), "value": format!("value-of-environment-variable-{e}")})).collect::<Vec<_>>(),
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
                "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
            }],
            "volumes": [{"name": "kube-api-access", "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            ]}}],
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
        },
    })
}

fn main() {
    let n: usize = std::env::var("KUBEFORGE_BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let server = ApiServer::start().await.expect("server");
        let pods: Vec<Value> = (0..n).map(pod).collect();
        let t = Instant::now();
        server.seed("v1", "Pod", pods).expect("seed");
        let seed = t.elapsed();
        println!("seed: {n} pods in {:.2?} ({:.0} objects/s)", seed, n as f64 / seed.as_secs_f64());

        let client = server.client();
        let (mut bytes, mut objects, mut cont) = (0usize, 0usize, None::<String>);
        let t = Instant::now();
        loop {
            let mut uri = "/api/v1/namespaces/default/pods?limit=500".to_string();
            if let Some(c) = &cont {
                uri.push_str(&format!("&continue={c}"));
            }
            let body = client.request_text(http::Request::get(uri).body(Vec::new()).expect("request")).await.expect("page");
            bytes += body.len();
            // The list metadata comes first; items are counted by their `"kind":"Pod"` marker.
            objects += body.matches("\"kind\":\"Pod\"").count();
            cont = body
                .split_once("\"continue\":\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(token, _)| token.to_string());
            if cont.is_none() {
                break;
            }
        }
        let raw = t.elapsed();
        println!(
            "raw list (pages of 500, bytes only): {objects} pods, {:.1} MiB in {:.2?} ({:.0} objects/s, {:.0} MiB/s)",
            bytes as f64 / 1048576.0,
            raw,
            objects as f64 / raw.as_secs_f64(),
            bytes as f64 / 1048576.0 / raw.as_secs_f64()
        );

        let t = Instant::now();
        let req = http::Request::get("/api/v1/namespaces/default/pods").body(Vec::new()).expect("request");
        let body = client.request_text(req).await.expect("full list");
        let full = t.elapsed();
        println!(
            "unpaginated list, bytes only: {:.1} MiB in {:.2?} ({:.0} MiB/s)",
            body.len() as f64 / 1048576.0,
            full,
            body.len() as f64 / 1048576.0 / full.as_secs_f64()
        );
        drop(body);

        let api: Api<Pod> = Api::namespaced(client, "default");
        let t = Instant::now();
        let mut typed = 0;
        let mut lp = ListParams::default().limit(500);
        loop {
            let page = api.list(&lp).await.expect("typed page");
            typed += page.items.len();
            match page.metadata.continue_ {
                Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
                _ => break,
            }
        }
        let typed_t = t.elapsed();
        println!("typed list (kube Api<Pod>, pages of 500): {typed} pods in {:.2?} ({:.0} objects/s)", typed_t, typed as f64 / typed_t.as_secs_f64());
    });
}
