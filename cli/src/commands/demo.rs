//! `kubeforge demo`: the whole workflow in one command, in a new directory — `init`, `create
//! api`, `create controller --kind Deployment`, build, `generate`, then the operator on the
//! embedded API server reconciling a sample and a Deployment, shown as it happens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};

use super::create::{self, ApiArgs, ControllerArgs};
use super::init;
use crate::cargo;
use crate::local::{LocalCluster, RunningOperator};
use crate::scaffold::Changes;

/// Arguments of `kubeforge demo`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  kubeforge demo\n  kubeforge demo --dir /tmp/kubeforge-demo")]
pub struct Args {
    /// Where to create the demo project (default: a new directory under the system's temp dir).
    /// It is kept, so you can look around and continue from it.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// A kubeforge source checkout to depend on by path (see `kubeforge init --help`).
    #[arg(long, env = "KUBEFORGE_PATH", value_name = "DIR")]
    pub kubeforge_path: Option<PathBuf>,
}

/// Runs the demo; exits 0 when the operator reconciled the sample.
pub fn exec(args: Args, templates: Option<&Path>) -> anyhow::Result<()> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => tempfile::Builder::new()
            .prefix("kubeforge-demo-")
            .tempdir()?
            .keep()
            .join("greeter"),
    };
    step(&format!(
        "kubeforge init {} --domain demo.kubeforge.dev",
        dir.display()
    ));
    init::init(
        &init::Args {
            dir: dir.clone(),
            domain: "demo.kubeforge.dev".into(),
            name: Some("greeter".into()),
            force: false,
            kubeforge_path: args.kubeforge_path.clone(),
        },
        templates,
    )?;
    step("kubeforge create api --group hello --version v1 --kind Greeting");
    let api = ApiArgs {
        group: "hello".into(),
        version: "v1".into(),
        kind: "Greeting".into(),
        plural: None,
        cluster: false,
        storage: false,
        no_resource: false,
        no_controller: false,
    };
    println!("{}", create::create_api(&dir, &api, templates)?);
    step("kubeforge create controller --kind Deployment");
    let controller = ControllerArgs {
        kind: "Deployment".into(),
        group: None,
        version: None,
        reference: false,
    };
    println!(
        "{}",
        create::create_controller(&dir, &controller, templates)?
    );
    step(
        "kubeforge generate (builds the operator: the first build compiles kubeforge and its dependencies)",
    );
    let operator = cargo::build(&dir, "greeter")?;
    let manifests = super::generate::manifests(&dir, &operator)?;
    let mut changes = Changes::new(&dir, false);
    for (rel, text) in &manifests.files {
        changes.replace(rel, text.clone());
    }
    changes.commit()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(&dir, &operator.binary))?;
    println!(
        "\nThe project is in {dir}\n  CRD:        {dir}/config/crd/bases/hello.demo.kubeforge.dev_greetings.yaml\n  \
         controller: {dir}/src/controllers/greeting.rs\nNext:\n  cd {dir}\n  cargo test                      \
         # the operator's own tests, on the embedded API server\n  kubeforge dev                   \
         # edit src/ and watch it rebuild and reconcile\n  kubectl kustomize config/default  \
         # what `make deploy` applies to a real cluster",
        dir = dir.display()
    );
    Ok(())
}

fn step(what: &str) {
    println!("\n==> {what}");
}

async fn run(dir: &Path, binary: &Path) -> anyhow::Result<()> {
    let cluster = LocalCluster::start(&dir.join("demo.kubeconfig"), None).await?;
    step(&format!(
        "embedded API server at {}; applying the CRDs",
        cluster.url()
    ));
    let crds = cluster
        .install_crds(&std::fs::read_to_string(
            dir.join("config/crd/bases/hello.demo.kubeforge.dev_greetings.yaml"),
        )?)
        .await?;
    println!("CRDs established: {}", crds.join(", "));
    step("starting the operator (its logs follow)");
    let operator = RunningOperator::start(binary, cluster.kubeconfig())?;
    let result = show_reconciles(dir, &cluster).await;
    drop(operator);
    cluster.shutdown().await;
    result
}

async fn show_reconciles(dir: &Path, cluster: &LocalCluster) -> anyhow::Result<()> {
    step("kubectl apply -f config/samples/hello_v1_greeting.yaml");
    cluster
        .apply_file(&dir.join("config/samples/hello_v1_greeting.yaml"))
        .await?;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("hello.demo.kubeforge.dev", "v1", "Greeting"),
        "greetings",
    );
    let greetings: Api<DynamicObject> =
        Api::namespaced_with(cluster.client(), "default", &resource);
    let mut reconciled = None;
    for _ in 0..300 {
        let obj = greetings.get("greeting-v1-sample").await?;
        let ready = obj.data["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
        if ready {
            reconciled = Some(obj);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(obj) = reconciled else {
        bail!("the operator did not reconcile greeting-v1-sample within 30 s (see its logs above)");
    };
    step("the status the Greeting controller wrote");
    print!("{}", serde_yaml::to_string(&obj.data["status"])?);
    step("kubectl create deployment web --image=nginx (the Deployment controller reconciles it)");
    let deployment: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": "web", "namespace": "default" },
        "spec": {
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx" }] }
            }
        }
    }))
    .context("the demo Deployment")?;
    cluster.apply(&deployment).await?;
    // Give the controller a moment to log its reconcile before the demo stops it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}
