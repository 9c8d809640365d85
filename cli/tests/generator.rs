//! The generator end to end, as a user drives it: `kubeforge init` → `create api` (two kinds,
//! one with two versions) → `create controller` for the nine known built-in kinds → `create
//! webhook` (defaulting, validation, conversion) → `cargo build` → `kubeforge generate` → real `kubectl apply -k` of the CRDs, RBAC and samples to the
//! embedded server → the operator reconciles them (seen through the API) → `cargo test` in the
//! generated project → `generate --check` → `kubectl kustomize config/default` (with the webhook
//! configurations, Service and cert-manager Certificate), accepted by a server-side dry-run on a
//! real kube-apiserver in a namespace enforcing the restricted Pod Security Standard.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use kubeforge_e2e::Kubectl;
use support::*;

/// The built-in kinds whose controllers the scaffold knows.
const KNOWN_KINDS: &[&str] = &[
    "ReplicaSet",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "HorizontalPodAutoscaler",
    "Ingress",
    "NetworkPolicy",
];

#[test]
fn a_generated_operator_builds_deploys_reconciles_and_passes_its_tests() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("shop-operator");
    scaffold(work.path(), &dir);

    cargo(&dir, &["build"]);
    let out = kubeforge(&dir, &["generate"]);
    assert!(out.contains("Manifests written"), "{out}");
    assert!(
        dir.join("config/crd/bases/cache.example.com_memcacheds.yaml")
            .is_file()
    );
    assert!(
        dir.join("config/crd/bases/infra.example.com_fleets.yaml")
            .is_file()
    );

    let manifests = std::fs::read_to_string(dir.join("config/webhook/manifests.yaml")).unwrap();
    for expected in [
        "kind: MutatingWebhookConfiguration",
        "path: /validate-cache-example-com-v1-memcached",
        "cert-manager.io/inject-ca-from: shop-operator-system/shop-operator-serving-cert",
    ] {
        assert!(manifests.contains(expected), "{expected}:\n{manifests}");
    }
    let crd =
        std::fs::read_to_string(dir.join("config/crd/bases/cache.example.com_memcacheds.yaml"))
            .unwrap();
    assert!(
        crd.contains("strategy: Webhook") && crd.contains("path: /convert"),
        "{crd}"
    );

    deploy_and_reconcile(work.path(), &dir);

    cargo(&dir, &["test"]);
    cargo(&dir, &["clippy", "--all-targets", "--", "-D", "warnings"]);
    cargo(&dir, &["fmt", "--check"]);

    check_detects_stale_manifests(&dir);
    kustomize_is_accepted_by_a_real_kube_apiserver(&dir);
}

/// init, create api ×3, create controller ×9; checks what each wrote.
fn scaffold(work: &Path, dir: &Path) {
    kubeforge(work, &["init", "shop-operator", "--domain", "example.com"]);
    for file in [
        "Cargo.toml",
        "src/main.rs",
        "Dockerfile",
        "Makefile",
        ".gitignore",
        "kubeforge.toml",
    ] {
        assert!(dir.join(file).is_file(), "init wrote {file}");
    }
    kubeforge(
        dir,
        &[
            "create",
            "api",
            "--group",
            "cache",
            "--version",
            "v1",
            "--kind",
            "Memcached",
        ],
    );
    let out = kubeforge(
        dir,
        &[
            "create",
            "api",
            "--group",
            "cache",
            "--version",
            "v2",
            "--kind",
            "Memcached",
        ],
    );
    assert!(
        out.contains("its controller stays src/controllers/memcached.rs"),
        "{out}"
    );
    kubeforge(
        dir,
        &[
            "create",
            "api",
            "--group",
            "infra",
            "--version",
            "v1alpha1",
            "--kind",
            "Fleet",
            "--cluster",
        ],
    );
    for kind in KNOWN_KINDS {
        kubeforge(dir, &["create", "controller", "--kind", kind]);
    }
    let out = kubeforge(
        dir,
        &[
            "create",
            "webhook",
            "--kind",
            "Memcached",
            "--defaulting",
            "--validation",
            "--conversion",
        ],
    );
    assert!(out.contains("src/webhooks/memcached.rs"), "{out}");
    let main = std::fs::read_to_string(dir.join("src/main.rs")).unwrap();
    for module in [
        "memcached",
        "fleet",
        "replica_set",
        "daemon_set",
        "network_policy",
    ] {
        let line = format!("controllers::{module}::setup(mgr, ())?;");
        assert_eq!(
            main.matches(&line).count(),
            1,
            "{line} once in main.rs:\n{main}"
        );
    }
    assert_eq!(
        main.matches("webhooks::setup(mgr.webhooks()?)?;").count(),
        1,
        "{main}"
    );
    let webhooks = std::fs::read_to_string(dir.join("src/webhooks/memcached.rs")).unwrap();
    assert!(
        webhooks.contains("hooks.mutate::<Memcached, _, _>(default)?;")
            && webhooks.contains("hooks.validate::<Memcached, _, _>(validate)?;")
            && webhooks.contains("Conversion::<Memcached>::hub().spoke::<MemcachedV2>()"),
        "{webhooks}"
    );
    let daemon_set = std::fs::read_to_string(dir.join("src/controllers/daemon_set.rs")).unwrap();
    assert!(
        daemon_set.contains("owns(Pod)")
            && daemon_set.contains("watches(Node = daemon_sets_for_node)"),
        "{daemon_set}"
    );
    let project = std::fs::read_to_string(dir.join("kubeforge.toml")).unwrap();
    assert_eq!(project.matches("[[resource]]").count(), 3, "{project}");
    assert_eq!(project.matches("[[controller]]").count(), 11, "{project}");
}

/// Applies the manifests with real kubectl to `kubeforge serve`, runs the operator and waits
/// for its reconciles through the API.
fn deploy_and_reconcile(work: &Path, dir: &Path) {
    let serve = Serve::start(work);
    let kubectl = Kubectl::new(&serve.kubeconfig).unwrap();
    let config = |p: &str| dir.join(p).display().to_string();
    kubectl
        .run(&["apply", "-k", &config("config/crd")])
        .unwrap();
    kubectl
        .run(&[
            "wait",
            "--for=condition=established",
            "--timeout=60s",
            "crd",
            "--all",
        ])
        .unwrap();
    let role = kubectl
        .run(&["apply", "-f", &config("config/rbac/role.yaml")])
        .unwrap();
    assert!(
        role.contains("clusterrole.rbac.authorization.k8s.io/manager-role"),
        "{role}"
    );
    // A Deployment and a Pod it would own, for the built-in controllers.
    kubectl
        .apply(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\n\
             spec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    \
             spec: {containers: [{name: web, image: nginx}]}\n",
            &[],
        )
        .unwrap();

    let binary = target_dir().join("debug/shop-operator");
    let log = work.join("operator.log");
    // The operator serves its webhooks too: on a free port, with a development certificate.
    let certs = work.join("webhook-certs");
    let ca = kubeforge::webhook::DevCertificates::new().unwrap();
    ca.issue(&certs, &["127.0.0.1"]).unwrap();
    let webhook_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let webhook_address = format!("127.0.0.1:{webhook_port}");
    let mut operator = Command::new(&binary)
        .args(["--kubeconfig"])
        .arg(&serve.kubeconfig)
        .args([
            "--metrics-bind-address",
            "0",
            "--health-probe-bind-address",
            "0",
            "--webhook-bind-address",
            &webhook_address,
            "--webhook-cert-dir",
        ])
        .arg(&certs)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the generated operator starts");
    // The generated CRD converts through the webhook Service of a deployed operator; this one
    // runs here, so the CRD is pointed at it, with the development CA (what a local run does).
    let conversion = serde_json::json!({"spec": {"conversion": {"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1"],
        "clientConfig": {"url": format!("https://{webhook_address}/convert"), "caBundle": base64_of(ca.ca_pem())},
    }}}});
    kubectl
        .run(&[
            "patch",
            "crd",
            "memcacheds.cache.example.com",
            "--type=merge",
            "-p",
            &conversion.to_string(),
        ])
        .unwrap();
    // The v2 sample is converted to the stored v1 by the operator's webhook, so wait until it serves.
    eventually(
        "the samples apply (the conversion webhook serving)",
        Duration::from_secs(60),
        || {
            kubectl
                .run(&["apply", "-k", &config("config/samples")])
                .is_ok()
        },
    );
    let ready = |kind: &str, name: &str, ns: &[&str]| {
        let mut args = vec![
            "get",
            kind,
            name,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ];
        args.extend_from_slice(ns);
        kubectl.run(&args).is_ok_and(|s| s == "True")
    };
    eventually(
        "the Memcached v1 sample is Ready",
        Duration::from_secs(60),
        || {
            ready(
                "memcacheds.v1.cache.example.com",
                "memcached-v1-sample",
                &["-n", "default"],
            )
        },
    );
    eventually(
        "the Memcached v2 sample is Ready",
        Duration::from_secs(60),
        || {
            ready(
                "memcacheds.v2.cache.example.com",
                "memcached-v2-sample",
                &["-n", "default"],
            )
        },
    );
    eventually(
        "the cluster-scoped Fleet sample is Ready",
        Duration::from_secs(60),
        || ready("fleets", "fleet-v1alpha1-sample", &[]),
    );
    eventually(
        "the Deployment controller reconciled web",
        Duration::from_secs(60),
        || {
            std::fs::read_to_string(&log)
                .is_ok_and(|l| l.contains("reconciled Deployment") && l.contains("name=web"))
        },
    );
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logs.contains('\u{1b}'),
        "logs to a file carry no colour codes"
    );
    assert!(
        logs.lines().any(|l| l
            .contains("reconcile{controller=deployment object=default/web trigger=")
            && l.contains("reconciled Deployment")),
        "a reconcile's log lines carry the controller, the object and the trigger:\n{logs}"
    );
    let _ = operator.kill();
    let _ = operator.wait();
}

/// `generate --check` passes on fresh manifests and names a stale one.
fn check_detects_stale_manifests(dir: &Path) {
    let out = kubeforge(dir, &["generate", "--check"]);
    assert!(out.contains("up to date"), "{out}");
    let role = dir.join("config/rbac/role.yaml");
    let fresh = std::fs::read_to_string(&role).unwrap();
    std::fs::write(&role, fresh.replace("- watch\n", "")).unwrap();
    let err = kubeforge_fails(dir, &["generate", "--check"]);
    assert!(
        err.contains("config/rbac/role.yaml: differs from the code"),
        "{err}"
    );
    assert_ne!(
        std::fs::read_to_string(&role).unwrap(),
        fresh,
        "--check writes nothing"
    );
    kubeforge(dir, &["generate"]);
    assert_eq!(std::fs::read_to_string(&role).unwrap(), fresh);
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// cert-manager's Certificate and Issuer kinds, schemaless: enough for a dry run to accept them.
const CERT_MANAGER_CRDS: &str = "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: certificates.cert-manager.io}
spec:
  group: cert-manager.io
  names: {kind: Certificate, plural: certificates, singular: certificate, listKind: CertificateList}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: issuers.cert-manager.io}
spec:
  group: cert-manager.io
  names: {kind: Issuer, plural: issuers, singular: issuer, listKind: IssuerList}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
";

/// `kubectl kustomize config/default`, dry-run applied (server side) to a real kube-apiserver
/// in the operator's namespace, labelled to enforce and warn on the restricted profile.
fn kustomize_is_accepted_by_a_real_kube_apiserver(dir: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let plane = runtime
        .block_on(kubeforge_testkit::control_plane::ControlPlane::shared())
        .expect(
            "a real kube-apiserver (binaries from `bash scripts/control-plane.sh`, which \
             scripts/test.sh runs first)",
        );
    let kubectl = Kubectl::new(plane.kubeconfig_path()).unwrap();
    let rendered = kubectl
        .run(&[
            "kustomize",
            &dir.join("config/default").display().to_string(),
        ])
        .unwrap();
    for expected in [
        "name: shop-operator-controller-manager",
        "namespace: shop-operator-system",
        "kind: CustomResourceDefinition",
        "name: shop-operator-manager-role",
        "path: /healthz",
        "path: /readyz",
        "runAsNonRoot: true",
        "name: shop-operator-validating-webhook-configuration",
        "name: shop-operator-webhook-service",
        "kind: Certificate",
        "secretName: webhook-server-cert",
    ] {
        assert!(
            rendered.contains(expected),
            "kustomize output lacks {expected:?}:\n{rendered}"
        );
    }
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop-operator-system\n  labels:\n    \
                     pod-security.kubernetes.io/enforce: restricted\n    pod-security.kubernetes.io/warn: restricted\n";
    kubectl.apply(namespace, &[]).unwrap();
    // cert-manager's kinds, for the dry run to know them (their schemas are not checked here).
    kubectl.apply(CERT_MANAGER_CRDS, &[]).unwrap();
    kubectl
        .run(&[
            "wait",
            "--for=condition=established",
            "--timeout=60s",
            "crd/certificates.cert-manager.io",
            "crd/issuers.cert-manager.io",
        ])
        .unwrap();
    let out = kubectl
        .apply(
            &rendered,
            &["--server-side", "--dry-run=server", "--warnings-as-errors"],
        )
        .unwrap();
    assert!(
        out.contains(
            "deployment.apps/shop-operator-controller-manager serverside-applied (server dry run)"
        ),
        "{out}"
    );
}
