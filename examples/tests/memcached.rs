//! The memcached example operator as a user runs it: CRDs from its `crds` subcommand applied with
//! kubectl, the operator process running against the embedded API server, and the user driving
//! it with kubectl (apply, scale through the scale subresource, delete).

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kubeforge_e2e::Kubectl;
use kubeforge_testkit::ApiServer;

use support::{Operator, eventually};

const OPERATOR: &str = env!("CARGO_BIN_EXE_memcached-operator");

fn output(args: &[&str]) -> anyhow::Result<String> {
    support::output(OPERATOR, args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_operator_reconciles_scales_and_cleans_up() -> anyhow::Result<()> {
    let server = ApiServer::start().await?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig)?;
    let kubectl = Kubectl::new(&kubeconfig)?;

    // The operator prints its own CRD and RBAC; kubectl applies them as they are.
    let crds = output(&["crds"])?;
    let rbac = output(&["rbac"])?;
    let rbac_doc: serde_yaml::Value = serde_yaml::from_str(rbac.trim_start_matches("---\n"))?;
    let rules = serde_yaml::to_string(&rbac_doc["rules"])?;
    assert!(
        rules.contains("memcacheds/status") && rules.contains("deployments"),
        "{rbac}"
    );
    let (k, c, r) = (kubectl.clone(), crds.clone(), rbac.clone());
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        k.apply(&c, &[])?;
        k.apply(&r, &[])?;
        k.run(&[
            "wait",
            "--for=condition=Established",
            "crd/memcacheds.cache.example.com",
        ])?;
        Ok(())
    })
    .await??;

    let _operator = Operator::start(OPERATOR, &kubeconfig, &dir.path().join("operator.log"), &[])?;

    let k = kubectl.clone();
    tokio::task::spawn_blocking(move || {
        k.apply(
            "apiVersion: cache.example.com/v1\nkind: Memcached\nmetadata:\n  name: cache\n  namespace: default\nspec:\n  size: 2\n",
            &[],
        )
    })
    .await??;

    // The Deployment appears with the requested size, the schema's default image, and the
    // Memcached as its controller owner.
    let deployments: Api<Deployment> = Api::namespaced(server.client(), "default");
    let deployment = eventually("the Deployment", || async {
        Ok(deployments.get_opt("cache").await?)
    })
    .await?;
    assert_eq!(deployment.spec.replicas, Some(2));
    let container = &deployment
        .spec
        .template
        .spec
        .as_ref()
        .expect("pod spec")
        .containers[0];
    assert_eq!(container.image.as_deref(), Some("memcached:1.6-alpine"));
    let owner = deployment
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default();
    assert!(
        owner
            .iter()
            .any(|o| o.kind == "Memcached" && o.name == "cache" && o.controller == Some(true)),
        "{owner:?}"
    );

    // No kubelet runs here, so the test plays the Deployment controller: two pods become ready,
    // and the operator reports it in the Memcached's status.
    deployments
        .patch_status(
            "cache",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"replicas": 2, "readyReplicas": 2}})),
        )
        .await?;
    let k = kubectl.clone();
    eventually("status.readyReplicas = 2 and Available", || {
        let k = k.clone();
        async move {
            let status = tokio::task::spawn_blocking(move || {
                k.run(&["get", "mc", "cache", "-o", "jsonpath={.status.readyReplicas} {.status.conditions[?(@.type==\"Available\")].status}"])
            })
            .await??;
            Ok((status.trim() == "2 True").then_some(()))
        }
    })
    .await?;

    // Printer columns, and the scale subresource the CRD declares: `kubectl scale` resizes.
    let k = kubectl.clone();
    let table = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        k.run(&["scale", "memcached/cache", "--replicas=3"])?;
        k.run(&["get", "memcacheds"])
    })
    .await??;
    assert!(table.contains("SIZE") && table.contains("READY"), "{table}");
    eventually("the Deployment scaled to 3", || async {
        let d = deployments.get("cache").await?;
        Ok((d.spec.replicas == Some(3)).then_some(()))
    })
    .await?;

    // A size the schema forbids is refused before it reaches the operator.
    let k = kubectl.clone();
    let refused =
        tokio::task::spawn_blocking(move || k.run(&["scale", "memcached/cache", "--replicas=11"]))
            .await?;
    let message = refused
        .expect_err("size 11 is above the schema's maximum of 10")
        .to_string();
    assert!(message.contains("less than or equal to 10"), "{message}");

    // Deleting the Memcached garbage-collects its Deployment through the ownerReference.
    let k = kubectl.clone();
    tokio::task::spawn_blocking(move || k.run(&["delete", "memcached", "cache"])).await??;
    eventually("the Deployment to be garbage-collected", || async {
        Ok(deployments.get_opt("cache").await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}
