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
pub mod daemonset;
pub mod deployment;
pub mod expectations;
pub mod hash;
pub mod hpa;
pub mod ingress;
pub mod job;
pub mod networkpolicy;
pub mod pods;
pub mod replicaset;
pub mod revisions;
pub mod statefulset;
pub mod writes;

use kubeforge::controller::BuildError;
use kubeforge::manager::Manager;

/// The controllers this crate has, by the name `--controllers` takes.
pub const ALL: &[&str] = &[
    "replicaset",
    "deployment",
    "statefulset",
    "daemonset",
    "job",
    "cronjob",
    "horizontalpodautoscaling",
    "ingress",
    "networkpolicy",
];

/// The controllers `*` leaves out, as kube-controller-manager's disabled-by-default ones: they
/// take over something of the machine they run on (the Ingress proxy listens on ports, the
/// NetworkPolicy controller writes the host's nftables), so they run only when named.
pub const DISABLED_BY_DEFAULT: &[&str] = &["ingress", "networkpolicy"];

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

/// Registers the named controllers (`*` for all but [`DISABLED_BY_DEFAULT`], `-name` to leave
/// one out of `*`, as kube-controller-manager's `--controllers`).
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
    /// The HorizontalPodAutoscaler controller's metrics source, sync period and thresholds.
    pub hpa: hpa::HpaOptions,
    /// The Ingress controller's listeners and class.
    pub ingress: ingress::IngressOptions,
    /// The NetworkPolicy enforcer's node, bridge and nftables table.
    pub networkpolicy: networkpolicy::NetworkPolicyOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            job_backoff: job::Backoff::default(),
            clock: std::sync::Arc::new(clock::SystemClock),
            hpa: hpa::HpaOptions::default(),
            ingress: ingress::IngressOptions::default(),
            networkpolicy: networkpolicy::NetworkPolicyOptions::default(),
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
            "daemonset" => daemonset::setup(mgr)?,
            "job" => job::setup_with(mgr, options.job_backoff)?,
            "cronjob" => cronjob::setup_with(mgr, options.clock.clone())?,
            "horizontalpodautoscaling" => hpa::setup_with(mgr, options.hpa.clone())?,
            "ingress" => ingress::setup_with(mgr, options.ingress.clone())?,
            "networkpolicy" => networkpolicy::setup_with(mgr, options.networkpolicy.clone())?,
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
        .filter(|n| {
            let by_star = star && !DISABLED_BY_DEFAULT.contains(n);
            (by_star || included.contains(n)) && !excluded.contains(n)
        })
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
        let enabled: Vec<&str> = ALL
            .iter()
            .copied()
            .filter(|n| !DISABLED_BY_DEFAULT.contains(n))
            .collect();
        assert_eq!(choose(&names("*")).unwrap(), enabled);
        assert_eq!(
            choose(&names("*,ingress")).unwrap().last(),
            Some(&"ingress")
        );
        assert_eq!(choose(&names("deployment")).unwrap(), ["deployment"]);
        assert_eq!(
            choose(&names("*,-deployment")).unwrap(),
            [
                "replicaset",
                "statefulset",
                "daemonset",
                "job",
                "cronjob",
                "horizontalpodautoscaling"
            ]
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
