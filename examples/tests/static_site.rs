//! The static-site example operator as a user runs it against the embedded API server with
//! kubectl: owned children, a DNS record outside the cluster kept by a finalizer, a TLS Secret
//! watched through an index of sites, events and a `Ready` condition.

mod support;

use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::Api;
use kube::api::{Patch, PatchParams};
use kubeforge_e2e::Kubectl;
use kubeforge_testkit::ApiServer;

use support::{Operator, eventually, output};

const OPERATOR: &str = env!("CARGO_BIN_EXE_static-site-operator");

fn site(name: &str, domain: &str, tls: Option<&str>) -> String {
    let tls = tls.map_or_else(String::new, |s| format!("  tlsSecret: {s}\n"));
    format!(
        "apiVersion: web.example.com/v1\nkind: StaticSite\nmetadata:\n  name: {name}\n  namespace: default\n\
         spec:\n  domain: {domain}\n  files:\n    index.html: \"<h1>{name}</h1>\"\n{tls}"
    )
}

fn secret(name: &str, cert: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: default\n\
         type: kubernetes.io/tls\nstringData:\n  tls.crt: {cert}\n  tls.key: key\n"
    )
}

/// `kubectl` off the async runtime.
async fn kubectl(k: &Kubectl, args: &[&str]) -> anyhow::Result<String> {
    let (k, args): (Kubectl, Vec<String>) =
        (k.clone(), args.iter().map(|a| (*a).to_owned()).collect());
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        k.run(&args)
    })
    .await?
}

async fn apply(k: &Kubectl, manifest: String) -> anyhow::Result<()> {
    let k = k.clone();
    tokio::task::spawn_blocking(move || k.apply(&manifest, &[])).await??;
    Ok(())
}

/// `status` and `reason` of a site's Ready condition, as kubectl shows them.
async fn ready(k: &Kubectl, name: &str) -> anyhow::Result<String> {
    let out = kubectl(
        k,
        &["get", "site", name, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].reason}"],
    )
    .await?;
    Ok(out.trim().to_owned())
}

/// The TLS version annotation on a site's pod template.
fn tls_version(d: &Deployment) -> Option<String> {
    d.spec
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get("web.example.com/tls-version")
        .cloned()
}

/// The events in the namespace, one `object reason type` line each.
async fn list_events(k: &Kubectl) -> anyhow::Result<String> {
    let jsonpath = r#"jsonpath={range .items[*]}{.regarding.name} {.reason} {.type}{"\n"}{end}"#;
    kubectl(k, &["get", "events.events.k8s.io", "-o", jsonpath]).await
}

fn dns_record(dir: &Path, domain: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(domain)).ok()
}

/// blog's ConfigMap, Deployment (owned by the site, mounting the TLS Secret's current version)
/// and Service exist, and its DNS record points at the Service. Returns the Secret's version.
async fn blog_children_are_published(
    client: &kube::Client,
    dns: &Path,
) -> anyhow::Result<Option<String>> {
    let content = Api::<ConfigMap>::namespaced(client.clone(), "default")
        .get("blog-content")
        .await?;
    assert_eq!(
        content
            .data
            .unwrap_or_default()
            .get("index.html")
            .map(String::as_str),
        Some("<h1>blog</h1>")
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let blog = deployments.get("blog").await?;
    let owner = blog.metadata.owner_references.clone().unwrap_or_default();
    assert!(
        owner
            .iter()
            .any(|o| o.kind == "StaticSite" && o.name == "blog" && o.controller == Some(true)),
        "{owner:?}"
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let first_version = secrets.get("tls-blog").await?.metadata.resource_version;
    assert_eq!(tls_version(&blog), first_version);
    Api::<Service>::namespaced(client.clone(), "default")
        .get("blog")
        .await?;

    assert_eq!(
        dns_record(dns, "blog.example.com").as_deref(),
        Some("blog.default.svc")
    );
    Ok(first_version)
}

/// Deleting blog: the finalizer removes the DNS record first, then the site and its children go.
async fn deleting_blog_cleans_up(
    k: &Kubectl,
    deployments: &Api<Deployment>,
    dns: &Path,
) -> anyhow::Result<()> {
    kubectl(k, &["delete", "site", "blog", "--wait=false"]).await?;
    eventually("blog deleted after its cleanup", || async {
        let gone = kubectl(k, &["get", "staticsites", "-o", "name"]).await?;
        Ok((!gone.contains("staticsite.web.example.com/blog")).then_some(()))
    })
    .await?;
    assert_eq!(
        dns_record(dns, "blog.example.com"),
        None,
        "the finalizer removed the DNS record"
    );
    assert!(
        dns_record(dns, "shop.example.com").is_some(),
        "other sites keep theirs"
    );
    eventually("blog's Deployment garbage-collected", || async {
        Ok(deployments.get_opt("blog").await?.is_none().then_some(()))
    })
    .await?;
    let events = list_events(k).await?;
    assert!(events.contains("blog Unpublished Normal"), "{events}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_site_operator_publishes_rolls_on_new_certificates_and_cleans_up()
-> anyhow::Result<()> {
    let server = ApiServer::start().await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig)?;
    let k = Kubectl::new(&kubeconfig)?;
    let dns = dir.path().join("dns");

    // CRD and RBAC from the operator; the RBAC covers what it touches.
    let rbac = output(OPERATOR, &["rbac"])?;
    for needed in [
        "staticsites/finalizers",
        "staticsites/status",
        "configmaps",
        "services",
        "secrets",
        "events",
    ] {
        assert!(rbac.contains(needed), "RBAC lacks {needed}:\n{rbac}");
    }
    apply(&k, output(OPERATOR, &["crds"])?).await?;
    apply(&k, rbac).await?;
    kubectl(
        &k,
        &[
            "wait",
            "--for=condition=Established",
            "crd/staticsites.web.example.com",
        ],
    )
    .await?;
    let _operator = Operator::start(
        OPERATOR,
        &kubeconfig,
        &dir.path().join("operator.log"),
        &[("STATIC_SITE_DNS_DIR", &dns)],
    )?;

    // blog: TLS Secret present; docs: TLS Secret missing; shop: no TLS.
    apply(&k, secret("tls-blog", "cert-1")).await?;
    apply(&k, site("blog", "blog.example.com", Some("tls-blog"))).await?;
    apply(&k, site("docs", "docs.example.com", Some("tls-docs"))).await?;
    apply(&k, site("shop", "shop.example.com", None)).await?;

    eventually("blog Ready", || async {
        Ok((ready(&k, "blog").await? == "True Published").then_some(()))
    })
    .await?;
    eventually("shop Ready", || async {
        Ok((ready(&k, "shop").await? == "True Published").then_some(()))
    })
    .await?;
    let url = kubectl(&k, &["get", "site", "blog", "-o", "jsonpath={.status.url}"]).await?;
    assert_eq!(url, "https://blog.example.com");

    // The children, owned by the site, and the DNS record outside the cluster.
    let client = server.client();
    let first_version = blog_children_are_published(&client, &dns).await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");

    // docs waits for its Secret, says so in an event and its condition, and is published once
    // the Secret appears (the Secret watch, through the index, reconciles it).
    eventually("docs waiting for its Secret", || async {
        Ok((ready(&k, "docs").await? == "False TLSSecretMissing").then_some(()))
    })
    .await?;
    let events = list_events(&k).await?;
    assert!(events.contains("docs TLSSecretMissing Warning"), "{events}");
    assert!(events.contains("blog Published Normal"), "{events}");
    assert_eq!(dns_record(&dns, "docs.example.com"), None);
    apply(&k, secret("tls-docs", "cert-d")).await?;
    eventually("docs Ready once its Secret exists", || async {
        Ok((ready(&k, "docs").await? == "True Published").then_some(()))
    })
    .await?;
    let docs_version = tls_version(&deployments.get("docs").await?);

    // A new certificate for blog rolls blog's pods (new template annotation), and only blog's.
    secrets
        .patch(
            "tls-blog",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"stringData": {"tls.crt": "cert-2"}})),
        )
        .await?;
    let new_version = secrets.get("tls-blog").await?.metadata.resource_version;
    assert_ne!(new_version, first_version);
    eventually("blog rolled onto the new certificate", || async {
        Ok((tls_version(&deployments.get("blog").await?) == new_version).then_some(()))
    })
    .await?;
    assert_eq!(tls_version(&deployments.get("docs").await?), docs_version);
    assert_eq!(tls_version(&deployments.get("shop").await?), None);

    // One informer per type in the operator: one LIST of sites and of Secrets, however many
    // controllers relations and lookups use them.
    let faults = server.faults();
    assert_eq!(faults.request_count("list", Some("staticsites")), 1);
    assert_eq!(faults.request_count("list", Some("secrets")), 1);

    deleting_blog_cleans_up(&k, &deployments, &dns).await?;
    Ok(())
}
