//! An operator running on this machine against the embedded API server, as `kubeforge dev`
//! and `kubeforge demo` run it: the server, the CRDs and manifests applied to it (server-side
//! apply, as `kubectl apply --server-side` does), and the operator as a child process whose
//! logs stream to the terminal and which is killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use kubeforge_testkit::ApiServer;

/// The field manager kubeforge applies with.
const MANAGER: &str = "kubeforge";

/// The embedded API server and its kubeconfig file.
#[derive(Debug)]
pub struct LocalCluster {
    server: ApiServer,
    kubeconfig: PathBuf,
}

impl LocalCluster {
    /// Starts the server on a free loopback port and writes its kubeconfig to `kubeconfig`;
    /// with `data_dir`, its objects are kept there across runs.
    pub async fn start(kubeconfig: &Path, data_dir: Option<&Path>) -> anyhow::Result<LocalCluster> {
        let mut builder = ApiServer::builder();
        if let Some(dir) = data_dir {
            builder = builder.data_dir(dir);
        }
        let server = builder
            .start()
            .await
            .context("starting the embedded API server")?;
        server
            .write_kubeconfig(kubeconfig)
            .with_context(|| format!("writing the kubeconfig {}", kubeconfig.display()))?;
        Ok(LocalCluster {
            server,
            kubeconfig: std::path::absolute(kubeconfig)?,
        })
    }

    /// The kubeconfig file.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// A client of the server.
    pub fn client(&self) -> kube::Client {
        self.server.client()
    }

    /// Applies the CRDs in `yaml` and waits until each is established; returns their names.
    pub async fn install_crds(&self, yaml: &str) -> anyhow::Result<Vec<String>> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client());
        let mut names = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(yaml) {
            let crd: CustomResourceDefinition = serde::Deserialize::deserialize(doc)
                .context("the operator's `crds` output is not a list of CRDs")?;
            let name = crd.metadata.name.clone().unwrap_or_default();
            api.patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&crd),
            )
            .await
            .with_context(|| format!("applying CRD {name}"))?;
            wait_established(&api, &name).await?;
            names.push(name);
        }
        Ok(names)
    }

    /// Applies every object of the YAML file at `path`; returns `kind/name` of each.
    pub async fn apply_file(&self, path: &Path) -> anyhow::Result<Vec<String>> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut applied = Vec::new();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let obj: DynamicObject = serde::Deserialize::deserialize(doc)
                .with_context(|| format!("{} is not a Kubernetes object", path.display()))?;
            applied.push(
                self.apply(&obj)
                    .await
                    .with_context(|| format!("applying {}", path.display()))?,
            );
        }
        Ok(applied)
    }

    /// Applies one object (its kind looked up in discovery).
    pub async fn apply(&self, obj: &DynamicObject) -> anyhow::Result<String> {
        let types = obj
            .types
            .clone()
            .context("the object has no apiVersion/kind")?;
        let (group, version) = types
            .api_version
            .rsplit_once('/')
            .unwrap_or(("", &types.api_version));
        let gvk = GroupVersionKind::gvk(group, version, &types.kind);
        let (resource, caps) = pinned_kind(&self.client(), &gvk).await.with_context(|| {
            format!(
                "the server does not serve {}/{}",
                types.api_version, types.kind
            )
        })?;
        let name = obj
            .metadata
            .name
            .clone()
            .context("the object has no metadata.name")?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(
                self.client(),
                obj.metadata.namespace.as_deref().unwrap_or("default"),
                &resource,
            ),
            Scope::Cluster => Api::all_with(self.client(), &resource),
        };
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await?;
        Ok(format!("{}/{name}", types.kind))
    }

    /// Stops the server.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

async fn wait_established(api: &Api<CustomResourceDefinition>, name: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        let crd = api.get(name).await?;
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("CRD {name} was not established within 10 s")
}

/// The operator as a child process, killed (and reaped) when dropped.
#[derive(Debug)]
pub struct RunningOperator {
    child: Child,
}

impl RunningOperator {
    /// Starts `binary` against the cluster of `kubeconfig`, without metrics or probe servers
    /// (several may run side by side), its logs on this terminal.
    pub fn start(binary: &Path, kubeconfig: &Path) -> anyhow::Result<RunningOperator> {
        let child = Command::new(binary)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args([
                "--metrics-bind-address",
                "0",
                "--health-probe-bind-address",
                "0",
            ])
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(RunningOperator { child })
    }

    /// Whether it has exited (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for RunningOperator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
