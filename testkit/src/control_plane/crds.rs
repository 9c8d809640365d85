//! Installing CustomResourceDefinitions into a running control plane: reading them from
//! manifest files or directories, applying them server-side, and waiting until each is
//! `Established` (served). Called by [`ControlPlane::install_crds`] and
//! [`ControlPlane::install_crd`], and by [`ControlPlaneBuilder::start`](super::ControlPlaneBuilder::start)
//! for the builder's `crd_path`s.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use serde::Deserialize;

use super::{ControlPlane, ControlPlaneError, Result, io_err};

const FIELD_MANAGER: &str = "kubeforge-testkit";

impl ControlPlane {
    pub(super) async fn apply_crd(
        &self,
        crd: &CustomResourceDefinition,
    ) -> Result<CustomResourceDefinition> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client());
        let name = crd.metadata.name.clone().unwrap_or_default();
        // Status is the server's; an apply carrying one would be rejected or ignored.
        let mut body = crd.clone();
        body.status = None;
        body.metadata.resource_version = None;
        body.metadata.managed_fields = None;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        Ok(api.patch(&name, &params, &Patch::Apply(&body)).await?)
    }

    pub(super) async fn wait_established(
        &self,
        crd: &CustomResourceDefinition,
    ) -> Result<CustomResourceDefinition> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client());
        let name = crd.metadata.name.clone().unwrap_or_default();
        let started = Instant::now();
        let waited_max = Duration::from_secs(30);
        loop {
            let current = api.get(&name).await?;
            let conditions = current
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            if conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
            {
                return Ok(current);
            }
            if started.elapsed() >= waited_max {
                return Err(ControlPlaneError::CrdNotEstablished {
                    name,
                    waited: started.elapsed(),
                    conditions: conditions
                        .iter()
                        .map(|c| {
                            format!(
                                "{}={} ({})",
                                c.type_,
                                c.status,
                                c.message.as_deref().unwrap_or("")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Reads the CRDs in a file or (non-recursively) a directory of manifests.
pub(super) fn read_crds(path: &Path) -> Result<Vec<CustomResourceDefinition>> {
    let metadata = fs::metadata(path).map_err(|err| ControlPlaneError::CrdManifest {
        path: path.to_path_buf(),
        message: format!("{err} (pass a manifest file or a directory of them)"),
    })?;
    let files = if metadata.is_dir() {
        let mut files: Vec<PathBuf> = fs::read_dir(path)
            .map_err(io_err(format!("listing {}", path.display())))?
            .flatten()
            .map(|entry| entry.path())
            .filter(|p| {
                p.is_file()
                    && matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml" | "json")
                    )
            })
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut crds = Vec::new();
    for file in files {
        let text =
            fs::read_to_string(&file).map_err(io_err(format!("reading {}", file.display())))?;
        for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let bad = |message: String| ControlPlaneError::CrdManifest {
                path: file.clone(),
                message: format!("document {}: {message}", index + 1),
            };
            let value = serde_json::Value::deserialize(document)
                .map_err(|err| bad(format!("invalid YAML/JSON: {err}")))?;
            if value.is_null() {
                continue;
            }
            let is_crd = value.get("kind").and_then(|k| k.as_str())
                == Some("CustomResourceDefinition")
                && value.get("apiVersion").and_then(|v| v.as_str())
                    == Some("apiextensions.k8s.io/v1");
            if !is_crd {
                continue;
            }
            let crd: CustomResourceDefinition = serde_json::from_value(value)
                .map_err(|err| bad(format!("not a valid apiextensions.k8s.io/v1 CRD: {err}")))?;
            if crd.metadata.name.as_deref().unwrap_or("").is_empty() {
                return Err(bad("the CRD has no metadata.name".to_string()));
            }
            crds.push(crd);
        }
    }
    Ok(crds)
}
