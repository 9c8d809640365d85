//! Finding the `kube-apiserver`, `etcd` and (optional) `kube-controller-manager` binaries:
//! the `TEST_ASSET_*` variables, then `KUBEBUILDER_ASSETS`, then the cache that
//! `bash scripts/control-plane.sh` fills. Used by [`ControlPlaneBuilder::start`](super::ControlPlaneBuilder::start)
//! when no binaries were given, and public (re-exported by the parent module) for callers that
//! want to check for them first.

use std::fs;
use std::path::PathBuf;

use super::{CONTROL_PLANE_VERSION, ControlPlaneError, Result};

/// Where the binaries of a control plane are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// The `kube-apiserver` binary.
    pub kube_apiserver: PathBuf,
    /// The `etcd` binary.
    pub etcd: PathBuf,
    /// The `kube-controller-manager` binary, if built: it runs the garbage collector and the
    /// namespace controller, without which deletions with dependents and namespace deletions
    /// never finish (controller-runtime's envtest has neither).
    pub kube_controller_manager: Option<PathBuf>,
}

impl Binaries {
    /// Finds the binaries: `TEST_ASSET_KUBE_APISERVER` / `TEST_ASSET_ETCD` /
    /// `TEST_ASSET_KUBE_CONTROLLER_MANAGER` (optional), then
    /// `KUBEBUILDER_ASSETS`, then the cache filled by `bash scripts/control-plane.sh`.
    pub fn discover() -> Result<Binaries> {
        Ok(Binaries {
            kube_apiserver: find_binary("kube-apiserver", "TEST_ASSET_KUBE_APISERVER")?,
            etcd: find_binary("etcd", "TEST_ASSET_ETCD")?,
            kube_controller_manager: find_binary(
                "kube-controller-manager",
                "TEST_ASSET_KUBE_CONTROLLER_MANAGER",
            )
            .ok(),
        })
    }
}

/// The cache directory `scripts/control-plane.sh` writes to: `$KUBEFORGE_CACHE`, else
/// `$XDG_CACHE_HOME/kubeforge`, else `~/.cache/kubeforge`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KUBEFORGE_CACHE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir).join("kubeforge"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|home| PathBuf::from(home).join(".cache").join("kubeforge"))
}

fn find_binary(binary: &'static str, env: &'static str) -> Result<PathBuf> {
    let mut searched = Vec::new();
    if let Some(path) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        // An explicit setting that points nowhere is a mistake to report, not to route around.
        return Err(ControlPlaneError::BinaryNotFound {
            binary,
            env,
            searched: format!("{env}={} (no such file)", path.display()),
        });
    }
    searched.push(format!("${env} (unset)"));
    if let Some(dir) = std::env::var_os("KUBEBUILDER_ASSETS").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(dir).join(binary);
        if path.is_file() {
            return Ok(path);
        }
        searched.push(path.display().to_string());
    } else {
        searched.push("$KUBEBUILDER_ASSETS (unset)".to_string());
    }
    if let Some(cache) = cache_dir() {
        let root = cache.join("control-plane");
        let preferred = root.join(CONTROL_PLANE_VERSION).join(binary);
        if preferred.is_file() {
            return Ok(preferred);
        }
        searched.push(preferred.display().to_string());
        // Another version built by an older or newer checkout still beats failing.
        let mut others: Vec<PathBuf> = fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join(binary))
            .filter(|path| path.is_file())
            .collect();
        others.sort();
        if let Some(path) = others.pop() {
            return Ok(path);
        }
    }
    Err(ControlPlaneError::BinaryNotFound {
        binary,
        env,
        searched: searched.join(", "),
    })
}
