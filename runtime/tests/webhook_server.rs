//! The manager's webhook server, from the outside: admission and conversion reviews posted over
//! TLS, bad input, a handler that panics, certificate rotation while serving, `/readyz` and the
//! webhook metrics — and kube-apiserver itself calling the webhooks (validating, mutating,
//! conversion, failurePolicy Fail and Ignore with the server down), shown by real kubectl.
//!
//! The tests of the API server calling the webhooks run on the embedded server and, with
//! `KUBEFORGE_TEST_BACKEND=control-plane` (as `scripts/test.sh` does), on a real kube-apiserver.

mod controller_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use controller_support::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kubeforge::manager::{Manager, ManagerConfig};
use kubeforge::webhook::{
    AdmissionOptions, AdmissionRequest, Conversion, DevCertificates, Endpoint, Operation, Verdict,
    WebhookServerConfig,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Two versions of one custom resource and the conversions between them (v2 is the hub).
mod widgets {
    use kube::CustomResource;
    use serde::{Deserialize, Serialize};

    pub mod v1 {
        use super::*;
        /// v1 keeps the size flat.
        #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
        #[kube(
            group = "webhooks.kubeforge.dev",
            version = "v1",
            kind = "Widget",
            namespaced,
            schema = "disabled"
        )]
        #[serde(rename_all = "camelCase")]
        pub struct WidgetSpec {
            pub name_prefix: String,
            pub replicas: i32,
        }
    }

    pub mod v2 {
        use super::*;
        /// v2 nests it.
        #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
        #[kube(
            group = "webhooks.kubeforge.dev",
            version = "v2",
            kind = "Widget",
            namespaced,
            schema = "disabled"
        )]
        pub struct WidgetSpec {
            pub prefix: String,
            pub size: Size,
        }
        #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
        pub struct Size {
            pub replicas: i32,
        }
    }

    impl TryFrom<v1::Widget> for v2::Widget {
        type Error = String;
        fn try_from(old: v1::Widget) -> Result<Self, String> {
            if old.spec.replicas < 0 {
                return Err(format!(
                    "spec.replicas is {}: it must not be negative",
                    old.spec.replicas
                ));
            }
            Ok(v2::Widget {
                metadata: old.metadata,
                spec: v2::WidgetSpec {
                    prefix: old.spec.name_prefix,
                    size: v2::Size {
                        replicas: old.spec.replicas,
                    },
                },
            })
        }
    }

    impl From<v2::Widget> for v1::Widget {
        fn from(new: v2::Widget) -> Self {
            v1::Widget {
                metadata: new.metadata,
                spec: v1::WidgetSpec {
                    name_prefix: new.spec.prefix,
                    replicas: new.spec.size.replicas,
                },
            }
        }
    }
}

/// The webhooks every test serves: a validating one refusing ConfigMaps with a `forbidden` key
/// (warning about `deprecated` keys), a mutating one labelling them, one that panics on a
/// ConfigMap named `panic`, and the Widget conversion.
fn register(manager: &mut Manager) {
    let hooks = manager.webhooks().expect("the webhook address binds");
    // On the shared real cluster, only the test's namespace is subject to them.
    let options =
        || AdmissionOptions::default().namespace_label("kubernetes.io/metadata.name", ns());
    hooks
        .validate_with::<ConfigMap, _, _>(
            options(),
            |req: AdmissionRequest<ConfigMap>| async move {
                let Some(cm) = req.object.as_ref() else {
                    return Verdict::allow(); // a delete
                };
                if cm.metadata.name.as_deref() == Some("panic") {
                    panic!("a handler bug");
                }
                let data = cm.data.clone().unwrap_or_default();
                let mut verdict = if data.contains_key("forbidden") {
                    Verdict::deny("data.forbidden is not allowed here; remove that key")
                } else {
                    Verdict::allow()
                };
                if data.contains_key("deprecated") {
                    verdict = verdict.warn("data.deprecated is deprecated; use data.current");
                }
                if req.operation == Operation::Update && req.old_object.is_none() {
                    verdict = Verdict::deny("an update came without the old object");
                }
                verdict
            },
        )
        .unwrap()
        .mutate_with::<ConfigMap, _, _>(options(), |req: AdmissionRequest<ConfigMap>| async move {
            let Some(mut cm) = req.object else {
                return Verdict::allow();
            };
            let labels = cm.metadata.labels.get_or_insert_default();
            labels.insert("defaulted-by".into(), "kubeforge-webhook".into());
            if req.dry_run {
                labels.insert("dry-run".into(), "seen".into());
            }
            Verdict::allow().with_object(&cm)
        })
        .unwrap()
        .convert(Conversion::<widgets::v2::Widget>::hub().spoke::<widgets::v1::Widget>())
        .unwrap();
}

/// A CA, and a serving certificate for 127.0.0.1 in a temporary directory.
struct Certs {
    ca: DevCertificates,
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let ca = DevCertificates::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        ca.issue(dir.path(), &["127.0.0.1", "localhost"]).unwrap();
        Certs { ca, dir }
    }

    fn config(&self) -> WebhookServerConfig {
        WebhookServerConfig {
            bind_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            cert_dir: self.dir.path().to_owned(),
        }
    }
}

/// A TLS connection to `addr` trusting only `ca_pem`.
async fn connect(
    addr: SocketAddr,
    ca_pem: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("a TLS handshake with a certificate the CA signed")
}

/// POSTs `body` to `path` over TLS: (status, JSON body or the text as a string).
async fn post(addr: SocketAddr, ca_pem: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let mut tls = connect(addr, ca_pem).await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    // A server may end a TLS stream without close_notify after Connection: close.
    let _ = tls.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
    (status, body)
}

/// The certificate the server presents, DER.
async fn served_certificate(addr: SocketAddr, ca_pem: &str) -> Vec<u8> {
    let tls = connect(addr, ca_pem).await;
    let (_, conn) = tls.get_ref();
    conn.peer_certificates().expect("a peer certificate")[0].to_vec()
}

fn admission_review(operation: &str, object: Value, old: Value, dry_run: bool) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "3b4c1f9e-0000-4000-8000-000000000001",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": object["metadata"]["name"].as_str().or(old["metadata"]["name"].as_str()),
            "namespace": "default",
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": old,
            "dryRun": dry_run,
        }
    }))
    .unwrap()
}

fn configmap(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}, "data": data})
}

/// A manager serving the webhooks.
struct Running {
    webhook: SocketAddr,
    metrics: SocketAddr,
    handle: kubeforge::manager::ShutdownHandle,
    task: tokio::task::JoinHandle<Result<(), kubeforge::manager::ManagerError>>,
}

impl Running {
    async fn stop(self) {
        self.handle.shutdown();
        self.task.await.unwrap().unwrap();
    }
}

/// The configurations' name prefix on the shared cluster: one set per test namespace.
fn prefix() -> String {
    format!("{}-", ns())
}

/// Starts a manager serving the webhooks, once `/readyz` says so. With `install`, it first
/// registers them with the cluster through `Webhooks::install` (the CRDs must exist).
async fn start(server: &TestServer, certs: &Certs, install: bool) -> Running {
    let local = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let mut mgr = manager(
        server,
        ManagerConfig {
            webhook: certs.config(),
            health_probe_bind_address: local,
            metrics_bind_address: local,
            ..config()
        },
    )
    .await;
    register(&mut mgr);
    let webhook = mgr.webhook_addr().expect("bound");
    if install {
        let endpoint = Endpoint::Url {
            base: format!("https://{webhook}"),
            ca_pem: certs.ca.ca_pem().to_owned(),
        };
        mgr.webhooks()
            .unwrap()
            .install(&server.client(), &endpoint, &prefix())
            .await
            .expect("the generated configurations are accepted");
    }
    let probes = mgr.health_probe_addr().expect("bound");
    let metrics = mgr.metrics_addr().expect("bound");
    let handle = mgr.shutdown_handle();
    let task = tokio::spawn(mgr.run());
    let mut last = (0, String::new());
    for _ in 0..500 {
        last = http_get(probes, "/readyz").await;
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(last.0, 200, "readyz: {}", last.1);
    Running {
        webhook,
        metrics,
        handle,
        task,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_reviews_are_answered_over_tls() {
    let server = server().await;
    let certs = Certs::new();
    let running = start(&server, &certs, false).await;
    let (addr, metrics) = (running.webhook, running.metrics);
    let ca = certs.ca.ca_pem();

    // Denied, with the reason and the warning.
    let body = admission_review(
        "CREATE",
        configmap("a", json!({"forbidden": "x", "deprecated": "y"})),
        Value::Null,
        false,
    );
    let (status, review) = post(addr, ca, "/validate--v1-configmap", &body).await;
    assert_eq!(status, 200, "{review}");
    let response = &review["response"];
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(response["uid"], "3b4c1f9e-0000-4000-8000-000000000001");
    assert_eq!(response["allowed"], false, "{review}");
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(
        response["status"]["message"],
        "data.forbidden is not allowed here; remove that key"
    );
    assert_eq!(
        response["warnings"],
        json!(["data.deprecated is deprecated; use data.current"])
    );

    // Allowed; an update brings the old object.
    let body = admission_review(
        "UPDATE",
        configmap("a", json!({"k": "v"})),
        configmap("a", json!({})),
        false,
    );
    let (_, review) = post(addr, ca, "/validate--v1-configmap", &body).await;
    assert_eq!(review["response"]["allowed"], true, "{review}");

    // Mutated: a JSON patch that adds the label and keeps what ConfigMap does not declare.
    let mut object = configmap("b", json!({"k": "v"}));
    object["someFieldConfigMapLacks"] = json!({"kept": true});
    let body = admission_review("CREATE", object.clone(), Value::Null, true);
    let (_, review) = post(addr, ca, "/mutate--v1-configmap", &body).await;
    let response = &review["response"];
    assert_eq!(response["allowed"], true, "{review}");
    assert_eq!(response["patchType"], "JSONPatch");
    let patch = base64_decode(response["patch"].as_str().expect("a patch"));
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    json_patch::patch(&mut object, &patch).unwrap();
    assert_eq!(
        object["metadata"]["labels"],
        json!({"defaulted-by": "kubeforge-webhook", "dry-run": "seen"})
    );
    assert_eq!(object["someFieldConfigMapLacks"], json!({"kept": true}));

    // A handler that panics: a refusal naming the panic, and the server goes on.
    let body = admission_review("CREATE", configmap("panic", json!({})), Value::Null, false);
    let (status, review) = post(addr, ca, "/validate--v1-configmap", &body).await;
    assert_eq!(status, 200);
    assert_eq!(review["response"]["allowed"], false);
    assert_eq!(review["response"]["status"]["code"], 500);
    let message = review["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("panicked: a handler bug"), "{message}");

    // Bad input: 400s naming what was wrong.
    let (status, body) = post(addr, ca, "/validate--v1-configmap", b"{not json").await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("not JSON"),
        "{body}"
    );
    let (status, body) = post(
        addr,
        ca,
        "/validate--v1-configmap",
        br#"{"apiVersion":"v1","kind":"Pod"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("expected an AdmissionReview"),
        "{body}"
    );
    // An object that is not a ConfigMap: refused, saying why.
    let body = admission_review(
        "CREATE",
        json!({"metadata": {"name": 5}}),
        Value::Null,
        false,
    );
    let (_, review) = post(addr, ca, "/validate--v1-configmap", &body).await;
    assert_eq!(review["response"]["allowed"], false);
    let message = review["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("cannot decode the request's object as a ConfigMap"),
        "{message}"
    );
    let (status, _) = post(addr, ca, "/validate-apps-v1-deployment", b"{}").await;
    assert_eq!(status, 404, "no webhook there");

    // The requests were counted.
    let (_, text) = http_get(metrics, "/metrics").await;
    let parsed = parse_metrics(&text);
    let validated = parsed
        .get("controller_runtime_webhook_requests_total{webhook=\"/validate--v1-configmap\",code=\"200\"}")
        .copied();
    assert_eq!(validated, Some(4.0), "{text}");
    assert_eq!(
        parsed.get("controller_runtime_webhook_requests_total{webhook=\"/validate--v1-configmap\",code=\"400\"}"),
        Some(&2.0)
    );
    assert_eq!(
        parsed.get(
            "controller_runtime_webhook_requests_in_flight{webhook=\"/mutate--v1-configmap\"}"
        ),
        Some(&0.0)
    );
    assert_eq!(
        parsed.get(
            "controller_runtime_webhook_latency_seconds_count{webhook=\"/mutate--v1-configmap\"}"
        ),
        Some(&1.0)
    );

    running.stop().await;
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversion_reviews_convert_both_ways_and_fail_the_review_not_the_server() {
    let server = server().await;
    let certs = Certs::new();
    let running = start(&server, &certs, false).await;
    let addr = running.webhook;
    let ca = certs.ca.ca_pem();
    let v1 = json!({
        "apiVersion": "webhooks.kubeforge.dev/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default", "uid": "u-1", "resourceVersion": "7", "labels": {"a": "b"}},
        "spec": {"namePrefix": "web", "replicas": 3},
    });
    let review = |objects: Vec<Value>, desired: &str| {
        serde_json::to_vec(&json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": "c-1", "desiredAPIVersion": desired, "objects": objects},
        }))
        .unwrap()
    };
    let (status, answer) = post(
        addr,
        ca,
        "/convert",
        &review(vec![v1.clone()], "webhooks.kubeforge.dev/v2"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["response"]["uid"], "c-1");
    assert_eq!(
        answer["response"]["result"]["status"], "Success",
        "{answer}"
    );
    let v2 = answer["response"]["convertedObjects"][0].clone();
    assert_eq!(v2["apiVersion"], "webhooks.kubeforge.dev/v2");
    assert_eq!(
        v2["spec"],
        json!({"prefix": "web", "size": {"replicas": 3}})
    );
    assert_eq!(
        v2["metadata"], v1["metadata"],
        "metadata is copied untouched"
    );

    // And back, losing nothing.
    let (_, answer) = post(
        addr,
        ca,
        "/convert",
        &review(vec![v2], "webhooks.kubeforge.dev/v1"),
    )
    .await;
    assert_eq!(answer["response"]["convertedObjects"][0], v1);

    // A conversion error fails the review with the user's message; the server goes on.
    let mut bad = v1.clone();
    bad["spec"]["replicas"] = json!(-1);
    let (status, answer) = post(
        addr,
        ca,
        "/convert",
        &review(vec![bad], "webhooks.kubeforge.dev/v2"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["response"]["result"]["status"], "Failure");
    let message = answer["response"]["result"]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.replicas is -1: it must not be negative"),
        "{message}"
    );
    let mut unknown = v1.clone();
    unknown["apiVersion"] = json!("webhooks.kubeforge.dev/v9");
    let (_, answer) = post(
        addr,
        ca,
        "/convert",
        &review(vec![unknown], "webhooks.kubeforge.dev/v2"),
    )
    .await;
    let message = answer["response"]["result"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"webhooks.kubeforge.dev/v9\" is not a version of Widget"),
        "{message}"
    );
    let (status, _) = post(
        addr,
        ca,
        "/convert",
        &review(vec![v1], "webhooks.kubeforge.dev/v2"),
    )
    .await;
    assert_eq!(status, 200, "still serving");

    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_without_a_restart() {
    let server = server().await;
    let certs = Certs::new();
    let running = start(&server, &certs, false).await;
    let addr = running.webhook;
    let ca = certs.ca.ca_pem();
    let first = served_certificate(addr, ca).await;
    certs.ca.issue(certs.dir.path(), &["127.0.0.1"]).unwrap();
    let rotated = CertificateDer::from_pem_file(certs.dir.path().join("tls.crt"))
        .unwrap()
        .to_vec();
    assert_ne!(first, rotated);
    let mut served = first;
    for _ in 0..200 {
        served = served_certificate(addr, ca).await;
        if served == rotated {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(served, rotated, "the new certificate is served within 10 s");

    // A broken file is not taken: the rotated certificate stays in use.
    std::fs::write(certs.dir.path().join("tls.crt"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(served_certificate(addr, ca).await, rotated);

    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_certificate_fails_the_start_naming_the_files() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut mgr = manager(
        &server,
        ManagerConfig {
            webhook: WebhookServerConfig {
                bind_address: SocketAddr::from(([127, 0, 0, 1], 0)),
                cert_dir: dir.path().to_owned(),
            },
            ..config()
        },
    )
    .await;
    register(&mut mgr);
    let err = mgr.run().await.expect_err("no certificate");
    let text = err.to_string();
    assert!(
        text.contains("tls.crt") && text.contains("--webhook-cert-dir"),
        "{text}"
    );
}

/// Creates or replaces `object` (server-side apply, forced) through `api`.
async fn apply<K>(api: &kube::Api<K>, object: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = object["metadata"]["name"].as_str().unwrap().to_owned();
    let params = kube::api::PatchParams::apply("webhook-test").force();
    api.patch(&name, &params, &kube::api::Patch::Apply(object))
        .await
        .unwrap_or_else(|e| panic!("applying {name}: {e}"))
}

/// The Widget CRD: v1 stored, v2 served (the webhooks' `install` adds the conversion).
fn widget_crd() -> Value {
    let version = |name: &str, storage: bool| {
        json!({"name": name, "served": true, "storage": storage,
               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                   "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}})
    };
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.webhooks.kubeforge.dev"},
        "spec": {
            "group": "webhooks.kubeforge.dev",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [version("v1", true), version("v2", false)],
        },
    })
}

/// Polls `attempt` every 100 ms for up to 30 s until it returns `Some`.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> T {
    for _ in 0..300 {
        if let Some(done) = attempt().await {
            return done;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

fn kubectl(
    server: &TestServer,
    dir: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    use std::io::Write as _;
    let kubeconfig = dir.join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let bin = std::env::var_os("KUBECTL").unwrap_or_else(|| "kubectl".into());
    let mut child = std::process::Command::new(bin)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl runs (set $KUBECTL)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_apiserver_calls_the_webhooks_over_tls() {
    use k8s_openapi::api::admissionregistration::v1::{
        MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{DeleteParams, PostParams};

    let server = server().await;
    let client = server.client();
    let validating = kube::Api::<ValidatingWebhookConfiguration>::all(client.clone());
    let mutating = kube::Api::<MutatingWebhookConfiguration>::all(client.clone());
    let crds = kube::Api::<CustomResourceDefinition>::all(client.clone());
    apply(&crds, widget_crd()).await;
    // The configurations and the CRD's conversion come from the registered webhooks.
    let certs = Certs::new();
    let running = start(&server, &certs, true).await;

    // Validating: refused with the handler's reason, once kube-apiserver has the configuration.
    let cms = configmaps(&server);
    let mut attempt = 0;
    let refusal = eventually("the validating webhook refuses", || {
        attempt += 1;
        let (cms, name) = (cms.clone(), format!("probe-{attempt}"));
        async move {
            match cms
                .create(&PostParams::default(), &cm(&name, &[("forbidden", "x")]))
                .await
            {
                Err(kube::Error::Api(status)) => Some(status),
                _ => None,
            }
        }
    })
    .await;
    assert_eq!(
        refusal.message,
        "admission webhook \"vconfigmap-v1.core.kubeforge.dev\" denied the request: data.forbidden is not allowed here; remove that key"
    );
    assert_eq!(refusal.code, 403);

    // Mutating: the label is there in what the server stored (probes created before the
    // configuration took effect may lack it; this one is created after the refusal above).
    let stored = cms
        .create(&PostParams::default(), &cm("defaulted", &[("k", "v")]))
        .await
        .unwrap();
    let labels = stored.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get("defaulted-by").map(String::as_str),
        Some("kubeforge-webhook"),
        "{labels:?}"
    );

    // Real kubectl shows the refusal and the warning.
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: by-kubectl, namespace: {}}}\ndata: {{forbidden: x}}\n",
        ns()
    );
    let out = kubectl(&server, dir.path(), &["apply", "-f", "-"], &manifest);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("admission webhook \"vconfigmap-v1.core.kubeforge.dev\" denied the request: data.forbidden is not allowed here; remove that key"),
        "{stderr}"
    );
    let out = kubectl(
        &server,
        dir.path(),
        &["apply", "-f", "-"],
        &manifest.replace("forbidden", "deprecated"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Warning: data.deprecated is deprecated; use data.current"),
        "{stderr}"
    );

    // Conversion: the server converts through the webhook, both ways.
    conversions_through_the_webhook(&client).await;

    // The serving certificate rotated under the same CA (as cert-manager renews it): the API
    // server's calls go on, to the new certificate.
    let before = served_certificate(running.webhook, certs.ca.ca_pem()).await;
    certs
        .ca
        .issue(certs.dir.path(), &["127.0.0.1", "localhost"])
        .unwrap();
    eventually("the rotated certificate is served", || async {
        (served_certificate(running.webhook, certs.ca.ca_pem()).await != before).then_some(())
    })
    .await;
    let after_rotation = cms
        .create(&PostParams::default(), &cm("after-rotation", &[("k", "v")]))
        .await
        .expect("the API server reaches the webhook with its new certificate");
    assert_eq!(
        after_rotation
            .metadata
            .labels
            .unwrap_or_default()
            .get("defaulted-by")
            .map(String::as_str),
        Some("kubeforge-webhook")
    );

    // failurePolicy: with the webhook server down, Fail refuses writes, Ignore lets them through.
    running.stop().await;
    let err = cms
        .create(&PostParams::default(), &cm("while-down", &[]))
        .await
        .expect_err("Fail refuses");
    assert!(err.to_string().contains("failed calling webhook"), "{err}");
    let ignore = kube::api::Patch::Json::<()>(
        serde_json::from_value(
            json!([{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}]),
        )
        .unwrap(),
    );
    let (validating_name, mutating_name) = (
        format!("{}validating-webhook-configuration", prefix()),
        format!("{}mutating-webhook-configuration", prefix()),
    );
    validating
        .patch(&validating_name, &Default::default(), &ignore)
        .await
        .unwrap();
    mutating
        .patch(&mutating_name, &Default::default(), &ignore)
        .await
        .unwrap();
    eventually("Ignore lets writes through", || {
        let cms = cms.clone();
        async move {
            cms.create(&PostParams::default(), &cm("while-down", &[]))
                .await
                .ok()
        }
    })
    .await;

    let _ = validating
        .delete(&validating_name, &DeleteParams::default())
        .await;
    let _ = mutating
        .delete(&mutating_name, &DeleteParams::default())
        .await;
    let _ = crds
        .delete("widgets.webhooks.kubeforge.dev", &DeleteParams::default())
        .await;
}

/// A v1 Widget read as v2 and back, a v2 write read as v1, losing nothing; a conversion error
/// reaching the client.
async fn conversions_through_the_webhook(client: &kube::Client) {
    use futures::{StreamExt, TryStreamExt};
    use kube::api::{DynamicObject, PostParams};
    use kube::discovery::ApiResource;
    let gvk = |version: &str| {
        kube::api::GroupVersionKind::gvk("webhooks.kubeforge.dev", version, "Widget")
    };
    let widgets = |version: &str| {
        kube::Api::<DynamicObject>::namespaced_with(
            client.clone(),
            ns(),
            &ApiResource::from_gvk(&gvk(version)),
        )
    };
    let v1_widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "webhooks.kubeforge.dev/v1", "kind": "Widget",
        "metadata": {"name": "w1", "labels": {"kept": "yes"}},
        "spec": {"namePrefix": "web", "replicas": 3},
    }))
    .unwrap();
    let created = eventually("the Widget CRD serves", || {
        let (api, w) = (widgets("v1"), v1_widget.clone());
        async move { api.create(&PostParams::default(), &w).await.ok() }
    })
    .await;
    let as_v2 = eventually("the v2 read converts", || {
        let api = widgets("v2");
        async move { api.get("w1").await.ok() }
    })
    .await;
    assert_eq!(
        as_v2.data["spec"],
        json!({"prefix": "web", "size": {"replicas": 3}})
    );
    assert_eq!(as_v2.metadata.labels, created.metadata.labels);
    assert_eq!(as_v2.metadata.uid, created.metadata.uid);
    let v2_widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "webhooks.kubeforge.dev/v2", "kind": "Widget",
        "metadata": {"name": "w2"},
        "spec": {"prefix": "api", "size": {"replicas": 5}},
    }))
    .unwrap();
    widgets("v2")
        .create(&PostParams::default(), &v2_widget)
        .await
        .unwrap();
    let as_v1 = widgets("v1").get("w2").await.unwrap();
    assert_eq!(
        as_v1.data["spec"],
        json!({"namePrefix": "api", "replicas": 5})
    );
    let back = widgets("v2").get("w2").await.unwrap();
    assert_eq!(back.data["spec"], v2_widget.data["spec"]);
    // Random Widgets written as v1, read as v2, written back as v2 and read as v1: unchanged.
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    for i in 0..20 {
        let prefix: String = (0..rng.random_range(0..12))
            .map(|_| rng.random_range('a'..='z'))
            .collect();
        let spec = json!({"namePrefix": prefix, "replicas": rng.random_range(0..100_000)});
        let name = format!("random-{i}");
        let written: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "webhooks.kubeforge.dev/v1", "kind": "Widget",
            "metadata": {"name": name}, "spec": spec,
        }))
        .unwrap();
        widgets("v1")
            .create(&PostParams::default(), &written)
            .await
            .unwrap();
        let as_v2 = widgets("v2").get(&name).await.unwrap();
        widgets("v2")
            .replace(&name, &PostParams::default(), &as_v2)
            .await
            .unwrap();
        assert_eq!(
            widgets("v1").get(&name).await.unwrap().data["spec"],
            spec,
            "{name}"
        );
    }

    // A watch in v2 sees a v1 write converted.
    let mut events = widgets("v2")
        .watch(&kube::api::WatchParams::default().timeout(30), "0")
        .await
        .unwrap()
        .boxed();
    let watched: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "webhooks.kubeforge.dev/v1", "kind": "Widget",
        "metadata": {"name": "w-watched"}, "spec": {"namePrefix": "w", "replicas": 7},
    }))
    .unwrap();
    widgets("v1")
        .create(&PostParams::default(), &watched)
        .await
        .unwrap();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.try_next())
            .await
            .expect("the watch delivers the new Widget within 30 s")
            .expect("a watch event")
            .expect("the watch stays open");
        if let kube::api::WatchEvent::Added(w) = event
            && w.metadata.name.as_deref() == Some("w-watched")
        {
            assert_eq!(
                w.data["spec"],
                json!({"prefix": "w", "size": {"replicas": 7}})
            );
            break;
        }
    }
    drop(events);

    // A conversion error reaches the client, not a crash: a v2 write that cannot be converted
    // to the stored v1 is refused with the handler's message.
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "webhooks.kubeforge.dev/v1", "kind": "Widget",
        "metadata": {"name": "w-bad"}, "spec": {"namePrefix": "x", "replicas": -1},
    }))
    .unwrap();
    widgets("v1")
        .create(&PostParams::default(), &bad)
        .await
        .unwrap();
    let err = widgets("v2")
        .get("w-bad")
        .await
        .expect_err("the conversion fails");
    assert!(err.to_string().contains("it must not be negative"), "{err}");
}

proptest::proptest! {
    /// Any v1 Widget converts to v2 and back to exactly itself, metadata untouched.
    #[test]
    fn conversions_round_trip(prefix in "[a-z]{0,12}", replicas in 0..10_000i32, label in "[a-z]{1,8}") {
        let conversion = Conversion::<widgets::v2::Widget>::hub().spoke::<widgets::v1::Widget>();
        let v1 = json!({
            "apiVersion": "webhooks.kubeforge.dev/v1", "kind": "Widget",
            "metadata": {"name": "w", "labels": {"l": label}, "resourceVersion": "9"},
            "spec": {"namePrefix": prefix, "replicas": replicas},
        });
        let v2 = conversion.convert(v1.clone(), "webhooks.kubeforge.dev/v2").unwrap();
        proptest::prop_assert_eq!(&v2["metadata"], &v1["metadata"]);
        proptest::prop_assert_eq!(conversion.convert(v2, "webhooks.kubeforge.dev/v1").unwrap(), v1);
    }
}

/// The operator's `webhooks` subcommand prints what `kubeforge generate` deploys: the two
/// configurations reaching the webhook Service, the CRD conversion, cert-manager's annotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhooks_subcommand_prints_the_manifests() {
    let endpoint = Endpoint::Service {
        name: "op-webhook-service".into(),
        namespace: "op-system".into(),
    };
    let yaml = kubeforge::manager::entry::webhooks_yaml(
        &endpoint,
        "op-",
        Some("op-system/op-serving-cert"),
        async |m| {
            register(m);
            Ok(())
        },
    )
    .await
    .unwrap();
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "MutatingWebhookConfiguration",
            "ValidatingWebhookConfiguration",
            "CustomResourceDefinition"
        ]
    );
    let validating = &docs[1];
    assert_eq!(
        validating["metadata"]["name"],
        "op-validating-webhook-configuration"
    );
    assert_eq!(
        validating["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "op-system/op-serving-cert"
    );
    let webhook = &validating["webhooks"][0];
    assert_eq!(webhook["name"], "vconfigmap-v1.core.kubeforge.dev");
    assert_eq!(
        webhook["clientConfig"],
        json!({"service": {"name": "op-webhook-service", "namespace": "op-system", "path": "/validate--v1-configmap", "port": 443}})
    );
    assert_eq!(
        webhook["rules"],
        json!([{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"], "scope": "Namespaced"}])
    );
    assert_eq!(webhook["failurePolicy"], "Fail");
    assert_eq!(webhook["sideEffects"], "None");
    assert_eq!(
        docs[0]["webhooks"][0]["clientConfig"]["service"]["path"],
        "/mutate--v1-configmap"
    );
    let crd = &docs[2];
    assert_eq!(crd["metadata"]["name"], "widgets.webhooks.kubeforge.dev");
    assert_eq!(
        crd["spec"]["conversion"],
        json!({"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
               "clientConfig": {"service": {"name": "op-webhook-service", "namespace": "op-system", "path": "/convert", "port": 443}}}})
    );

    // An operator without webhooks prints nothing.
    let none = kubeforge::manager::entry::webhooks_yaml(&endpoint, "op-", None, async |_| Ok(()))
        .await
        .unwrap();
    assert_eq!(none, "");
}

/// A webhook slower than its `timeoutSeconds`: with failurePolicy Fail the write is refused
/// once the timeout passes (not when the webhook finally answers); with Ignore it goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_slower_than_its_timeout_fails_or_is_ignored_by_its_policy() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::PostParams;
    use kubeforge::webhook::FailurePolicy;

    let server = server().await;
    let certs = Certs::new();
    let mut mgr = manager(
        &server,
        ManagerConfig {
            webhook: certs.config(),
            ..config()
        },
    )
    .await;
    let slow = || async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        Verdict::allow()
    };
    let options = |policy| {
        AdmissionOptions::default()
            .namespace_label("kubernetes.io/metadata.name", ns())
            .timeout(Duration::from_secs(1))
            .failure_policy(policy)
    };
    let addr = mgr.webhooks().unwrap().local_addr();
    let hooks = mgr.webhooks().unwrap();
    hooks
        .validate_with::<Secret, _, _>(
            options(FailurePolicy::Fail),
            move |_req: AdmissionRequest<Secret>| slow(),
        )
        .unwrap()
        .mutate_with::<Secret, _, _>(
            options(FailurePolicy::Ignore),
            move |_req: AdmissionRequest<Secret>| slow(),
        )
        .unwrap();
    let endpoint = Endpoint::Url {
        base: format!("https://{addr}"),
        ca_pem: certs.ca.ca_pem().to_owned(),
    };
    let prefix = format!("{}slow-", ns());
    hooks
        .install(&server.client(), &endpoint, &prefix)
        .await
        .unwrap();
    let handle = mgr.shutdown_handle();
    let task = tokio::spawn(mgr.run());

    let secrets = kube::Api::<Secret>::namespaced(server.client(), ns());
    let secret = |name: &str| Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    // The mutating webhook times out and is ignored; the validating one times out and refuses.
    let mut attempt = 0;
    let (err, took) = eventually("the slow validating webhook refuses", || {
        attempt += 1;
        let (secrets, s) = (secrets.clone(), secret(&format!("s-{attempt}")));
        async move {
            let started = std::time::Instant::now();
            match secrets.create(&PostParams::default(), &s).await {
                Err(kube::Error::Api(status)) => Some((status, started.elapsed())),
                _ => None,
            }
        }
    })
    .await;
    // The validating webhook's failure refuses; the mutating one's (Ignore) did not.
    assert!(
        err.message
            .contains("failed calling webhook \"vsecret-v1.core.kubeforge.dev\""),
        "{err:?}"
    );
    assert_eq!(err.code, 500, "{err:?}");
    assert!(
        took < Duration::from_millis(3500),
        "refused after the 1 s timeouts, not the 4 s answer: {took:?}"
    );

    handle.shutdown();
    task.await.unwrap().unwrap();
    use k8s_openapi::api::admissionregistration::v1::{
        MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
    };
    let client = server.client();
    let _ = kube::Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .delete(
            &format!("{prefix}validating-webhook-configuration"),
            &Default::default(),
        )
        .await;
    let _ = kube::Api::<MutatingWebhookConfiguration>::all(client)
        .delete(
            &format!("{prefix}mutating-webhook-configuration"),
            &Default::default(),
        )
        .await;
}
