//! Kubernetes' own workload controllers, written on the kubeforge runtime: the proof that its
//! informers, listers, work queue and controller builder carry real controllers, and a starting
//! point for operators that manage Pods.
//!
//! Each controller is a module with a `setup(&mut Manager)` that registers it, and behaves as its
//! upstream counterpart in `k8s.io/kubernetes/pkg/controller/…` does for the parts its module
//! docs list (and says what it leaves out). The binary `kubeforge-controller-manager` runs any
//! subset, like kube-controller-manager:
//!
//! ```sh
//! kubeforge-controller-manager --controllers replicaset,deployment --kubeconfig ~/.kube/config
//! ```
//!
//! Shared pieces: [`pods`] (active, ready, available, the scale-down ranking), [`claims`]
//! (adopting and releasing children by selector), [`expectations`] (not acting twice on a cache
//! that has not caught up).

pub mod claims;
pub mod clock;
pub mod cronjob;
pub mod deployment;
pub mod expectations;
pub mod job;
pub mod pods;
pub mod replicaset;
pub mod statefulset;

use kubeforge::controller::BuildError;
use kubeforge::manager::Manager;

/// Patch parameters naming `manager` as the field manager of the write.
pub(crate) fn write_params(manager: &str) -> kube::api::PatchParams {
    kube::api::PatchParams {
        field_manager: Some(manager.to_owned()),
        ..kube::api::PatchParams::default()
    }
}

/// `new` as a JSON merge patch over `old`: top-level fields `new` no longer has are set to
/// null (serde leaves absent fields out, and a merge patch keeps what it does not mention).
pub(crate) fn merge_over<T: serde::Serialize>(old: &T, new: &T) -> serde_json::Value {
    let mut patch = serde_json::to_value(new).unwrap_or_default();
    if let (Some(patch), Ok(serde_json::Value::Object(old))) =
        (patch.as_object_mut(), serde_json::to_value(old))
    {
        for key in old.keys() {
            patch.entry(key.clone()).or_insert(serde_json::Value::Null);
        }
    }
    patch
}

/// An `IntOrString` count or percentage of `total` (upstream `GetScaledValueFromIntOrPercent`),
/// `default` when unset; percentages round up for surge and down for unavailability.
pub(crate) fn scaled(
    value: Option<&k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
    default: &str,
    total: i32,
    round_up: bool,
) -> i32 {
    let percent = |p: &str| -> i32 {
        let p: f64 = p.trim_end_matches('%').parse().unwrap_or(0.0);
        let v = p * f64::from(total) / 100.0;
        // Truncation is the point: Kubernetes rounds surge up and unavailability down.
        #[allow(clippy::cast_possible_truncation)]
        let v = if round_up { v.ceil() } else { v.floor() } as i32;
        v
    };
    match value {
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => *n,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s)) => percent(s),
        None => percent(default),
    }
}

/// The API server answered `e` with one of these HTTP status codes.
pub(crate) fn has_code(e: &kube::Error, codes: &[u16]) -> bool {
    matches!(e, kube::Error::Api(status) if codes.contains(&status.code))
}

/// What a guarded status write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusWrite {
    /// The status was already `new`; nothing was sent.
    Unchanged,
    /// The server took it.
    Written,
    /// The object changed since it was read (409): the status was computed from an old copy,
    /// and the change queues the object again.
    Stale,
    /// The object is gone (404).
    Gone,
}

/// Writes `new` over `old` as the status of `obj`, guarded by the resourceVersion `obj` was read
/// at, so a status computed from an outdated copy is refused rather than written over a newer
/// one (upstream updates status with the object's resourceVersion for the same reason).
pub(crate) async fn write_status<K, S>(
    api: &kube::Api<K>,
    obj: &K,
    manager: &str,
    old: &S,
    new: &S,
) -> Result<StatusWrite, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: serde::Serialize + PartialEq,
{
    use kube::ResourceExt;
    if old == new {
        return Ok(StatusWrite::Unchanged);
    }
    let body = serde_json::json!({
        "metadata": {"resourceVersion": obj.resource_version()},
        "status": merge_over(old, new),
    });
    let patch = kube::api::Patch::Merge(body);
    match api
        .patch_status(&obj.name_any(), &write_params(manager), &patch)
        .await
    {
        Ok(_) => Ok(StatusWrite::Written),
        Err(e) if has_code(&e, &[409]) => Ok(StatusWrite::Stale),
        Err(e) if has_code(&e, &[404]) => Ok(StatusWrite::Gone),
        Err(e) => Err(e),
    }
}

/// The controllers this crate has, by the name `--controllers` takes.
pub const ALL: &[&str] = &["replicaset", "deployment", "statefulset", "job", "cronjob"];

/// Why a `--controllers` list was refused.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A name that is not one of [`ALL`].
    #[error("unknown controller {0:?}; choose from {known} (or `*` for all)", known = ALL.join(", "))]
    Unknown(String),
    /// The manager refused a controller.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Registers the named controllers (`*` for all, `-name` to leave one out of `*`, as
/// kube-controller-manager's `--controllers`).
///
/// # Errors
/// An unknown name, or a controller the manager refuses.
pub fn setup(mgr: &mut Manager, names: &[String]) -> Result<Vec<&'static str>, SetupError> {
    setup_with(mgr, names, &Options::default())
}

/// Settings that upstream fixes and tests need to shorten.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long failed Job Pods wait to be replaced.
    pub job_backoff: job::Backoff,
    /// The CronJob controller's clock.
    pub clock: std::sync::Arc<dyn clock::Clock>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            job_backoff: job::Backoff::default(),
            clock: std::sync::Arc::new(clock::SystemClock),
        }
    }
}

/// [`setup`] with non-default [`Options`].
///
/// # Errors
/// An unknown name, or a controller the manager refuses.
pub fn setup_with(
    mgr: &mut Manager,
    names: &[String],
    options: &Options,
) -> Result<Vec<&'static str>, SetupError> {
    let chosen = choose(names)?;
    for name in &chosen {
        match *name {
            "replicaset" => replicaset::setup(mgr)?,
            "deployment" => deployment::setup(mgr)?,
            "statefulset" => statefulset::setup(mgr)?,
            "job" => job::setup_with(mgr, options.job_backoff)?,
            "cronjob" => cronjob::setup_with(mgr, options.clock.clone())?,
            other => return Err(SetupError::Unknown(other.to_owned())),
        }
    }
    Ok(chosen)
}

/// The controllers a `--controllers` list names, in [`ALL`]'s order.
///
/// # Errors
/// An unknown name.
pub fn choose(names: &[String]) -> Result<Vec<&'static str>, SetupError> {
    let known = |n: &str| {
        ALL.iter()
            .copied()
            .find(|k| *k == n)
            .ok_or_else(|| SetupError::Unknown(n.to_owned()))
    };
    let star = names.iter().any(|n| n == "*");
    let mut excluded = Vec::new();
    let mut included = Vec::new();
    for name in names
        .iter()
        .map(|n| n.trim())
        .filter(|n| !n.is_empty() && *n != "*")
    {
        match name.strip_prefix('-') {
            Some(n) => excluded.push(known(n)?),
            None => included.push(known(name)?),
        }
    }
    Ok(ALL
        .iter()
        .copied()
        .filter(|n| (star || included.contains(n)) && !excluded.contains(n))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &str) -> Vec<String> {
        list.split(',').map(str::to_owned).collect()
    }

    #[test]
    fn controllers_flag_selects_like_kube_controller_manager() {
        assert_eq!(choose(&names("*")).unwrap(), ALL);
        assert_eq!(choose(&names("deployment")).unwrap(), ["deployment"]);
        assert_eq!(
            choose(&names("*,-deployment")).unwrap(),
            ["replicaset", "statefulset", "job", "cronjob"]
        );
        let err = choose(&names("replicaset,cronjobs"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"cronjobs\"") && err.contains("replicaset, deployment"),
            "{err}"
        );
    }
}
