//! Leader election on a `coordination.k8s.io/v1` Lease (client-go `tools/leaderelection`).
//!
//! One process at a time holds the lease and runs the controllers. The holder renews the lease
//! every `retry_period`; if it cannot renew for `renew_deadline` it gives leadership up. Others
//! try every `retry_period` and take the lease over once its holder has not renewed it for
//! `lease_duration`, measured on *their own* clock from the moment they last saw the lease change
//! (so clock skew between processes does not matter). On a clean shutdown the holder releases the
//! lease, so a successor takes over at its next try instead of after `lease_duration`.
//!
//! Invariant: `lease_duration > renew_deadline > retry_period`, so a holder that cannot renew stops
//! acting before anyone else may consider the lease expired.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use parking_lot::Mutex;
use prometheus_client::metrics::gauge::Gauge;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::manager::metrics::{LeaderLabels, Metrics};

/// Why leader election could not run.
#[derive(Debug, thiserror::Error)]
pub enum LeaderElectionError {
    /// The durations break `lease_duration > renew_deadline > retry_period`.
    #[error(
        "invalid leader election timing: need lease_duration ({lease:?}) > renew_deadline ({renew:?}) > retry_period ({retry:?}); adjust LeaderElectionConfig"
    )]
    InvalidTiming {
        /// Configured lease duration.
        lease: Duration,
        /// Configured renew deadline.
        renew: Duration,
        /// Configured retry period.
        retry: Duration,
    },
    /// The lease could not be renewed within the renew deadline; another process may lead now.
    #[error(
        "lost leadership of lease {namespace}/{name}: not renewed within {deadline:?} (API server unreachable, or the lease was taken over)"
    )]
    LeadershipLost {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
        /// The renew deadline that passed.
        deadline: Duration,
    },
}

/// Where and how to elect a leader. Defaults are client-go's / controller-runtime's.
#[derive(Clone, Debug)]
pub struct LeaderElectionConfig {
    /// Name of the Lease object (one per operator; e.g. `<operator>-leader`).
    pub lease_name: String,
    /// Namespace of the Lease object.
    pub lease_namespace: String,
    /// This process's identity, written to `spec.holderIdentity`. Unique per process.
    pub identity: String,
    /// How long a lease is valid after its last renewal, for non-holders. Default 15 s.
    pub lease_duration: Duration,
    /// How long the holder keeps retrying a failed renewal before giving up. Default 10 s.
    pub renew_deadline: Duration,
    /// Interval between tries (to acquire and to renew). Default 2 s.
    pub retry_period: Duration,
    /// Release the lease when the elector is cancelled (clean shutdown). Default true.
    pub release_on_cancel: bool,
}

impl LeaderElectionConfig {
    /// client-go's defaults (15 s / 10 s / 2 s) for the lease `namespace/name`, with an identity
    /// made of the host name and a random suffix.
    pub fn new(lease_namespace: impl Into<String>, lease_name: impl Into<String>) -> Self {
        let host = std::env::var("HOSTNAME")
            .or_else(|_| std::env::var("POD_NAME"))
            .unwrap_or_else(|_| "kubeforge".to_owned());
        Self {
            lease_name: lease_name.into(),
            lease_namespace: lease_namespace.into(),
            identity: format!("{host}_{:016x}", rand::random::<u64>()),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            release_on_cancel: true,
        }
    }

    /// Sets the three durations (tests use short ones).
    #[must_use]
    pub fn timing(
        mut self,
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> Self {
        self.lease_duration = lease_duration;
        self.renew_deadline = renew_deadline;
        self.retry_period = retry_period;
        self
    }

    /// Sets the identity written to the lease.
    #[must_use]
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = identity.into();
        self
    }

    fn validate(&self) -> Result<(), LeaderElectionError> {
        if self.lease_duration > self.renew_deadline
            && self.renew_deadline > self.retry_period
            && !self.retry_period.is_zero()
        {
            Ok(())
        } else {
            Err(LeaderElectionError::InvalidTiming {
                lease: self.lease_duration,
                renew: self.renew_deadline,
                retry: self.retry_period,
            })
        }
    }
}

/// What this process last saw of the lease, and when (on its own clock).
#[derive(Default)]
struct Observed {
    spec: Option<LeaseSpec>,
    at: Option<Instant>,
}

/// Campaigns for, holds and releases one lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    observed: Mutex<Observed>,
    status: Option<Gauge>,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Outcome of one try.
enum Attempt {
    /// We hold the lease (acquired or renewed).
    Held,
    /// Someone else holds a lease that has not expired.
    HeldByOther(String),
}

impl LeaderElector {
    /// An elector for `config`; reports `leader_election_master_status` into `metrics` if given.
    pub fn new(
        client: kube::Client,
        config: LeaderElectionConfig,
        metrics: Option<&Metrics>,
    ) -> Result<Self, LeaderElectionError> {
        config.validate()?;
        let status = metrics.map(|m| {
            m.leader.get_or_create_owned(&LeaderLabels {
                name: config.lease_name.clone(),
            })
        });
        if let Some(status) = &status {
            status.set(0);
        }
        Ok(Self {
            api: Api::namespaced(client, &config.lease_namespace),
            config,
            observed: Mutex::new(Observed::default()),
            status,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LeaderElectionConfig {
        &self.config
    }

    /// Tries every `retry_period` until this process holds the lease (`true`) or `cancel` fires
    /// (`false`).
    pub async fn acquire(&self, cancel: &CancellationToken) -> bool {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Held) => {
                    tracing::info!(lease = %self.lease_ref(), identity = %self.config.identity, "acquired leadership");
                    self.set_status(true);
                    return true;
                }
                Ok(Attempt::HeldByOther(holder)) => {
                    tracing::debug!(lease = %self.lease_ref(), %holder, "lease held by another process");
                }
                Err(err) => {
                    tracing::warn!(lease = %self.lease_ref(), error = %err, "failed to acquire lease")
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return false,
                () = tokio::time::sleep(self.config.retry_period) => {}
            }
        }
    }

    /// Renews every `retry_period` while leading. Returns `Ok` when `cancel` fires (after
    /// releasing the lease if configured), or [`LeaderElectionError::LeadershipLost`] when a renewal did not
    /// succeed within `renew_deadline`.
    pub async fn hold(&self, cancel: &CancellationToken) -> Result<(), LeaderElectionError> {
        let result = self.renew_loop(cancel).await;
        self.set_status(false);
        if result.is_ok() && self.config.release_on_cancel {
            self.release().await;
        }
        result
    }

    async fn renew_loop(&self, cancel: &CancellationToken) -> Result<(), LeaderElectionError> {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                () = tokio::time::sleep(self.config.retry_period) => {}
            }
            let deadline = Instant::now() + self.config.renew_deadline;
            loop {
                let attempt = tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await;
                match attempt {
                    Ok(Ok(Attempt::Held)) => break,
                    Ok(Ok(Attempt::HeldByOther(holder))) => {
                        tracing::warn!(lease = %self.lease_ref(), %holder, "lease was taken over");
                    }
                    Ok(Err(err)) => {
                        tracing::warn!(lease = %self.lease_ref(), error = %err, "failed to renew lease")
                    }
                    Err(_elapsed) => {}
                }
                if Instant::now() + self.config.retry_period > deadline {
                    tracing::error!(lease = %self.lease_ref(), "leadership lost");
                    return Err(LeaderElectionError::LeadershipLost {
                        namespace: self.config.lease_namespace.clone(),
                        name: self.config.lease_name.clone(),
                        deadline: self.config.renew_deadline,
                    });
                }
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(self.config.retry_period) => {}
                }
            }
        }
    }

    /// Gives the lease up if this process holds it: empties the holder so a successor can take
    /// over at its next try. Failures are logged; the lease then simply expires.
    pub async fn release(&self) {
        let lease = match self.api.get_opt(&self.config.lease_name).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(lease = %self.lease_ref(), error = %err, "failed to release lease");
                return;
            }
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let released = Lease {
            metadata: lease.metadata.clone(),
            spec: Some(LeaseSpec {
                holder_identity: None,
                lease_duration_seconds: Some(1),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: spec.lease_transitions,
                ..LeaseSpec::default()
            }),
        };
        match self
            .api
            .replace(&self.config.lease_name, &PostParams::default(), &released)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.lease_ref(), "released leadership"),
            Err(err) => {
                tracing::warn!(lease = %self.lease_ref(), error = %err, "failed to release lease")
            }
        }
    }

    /// One try, as client-go's `tryAcquireOrRenew`: create the lease if missing; otherwise take
    /// it if we hold it, nobody holds it, or it expired; write with the read resourceVersion so
    /// that of two racing candidates only one wins.
    async fn try_acquire_or_renew(&self) -> Result<Attempt, kube::Error> {
        let now = k8s_openapi::jiff::Timestamp::now();
        let duration_secs =
            i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
        let Some(current) = self.api.get_opt(&self.config.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.lease_name.clone()),
                    namespace: Some(self.config.lease_namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.config.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(created.spec);
                    Ok(Attempt::Held)
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    Ok(Attempt::HeldByOther("<racing creator>".into()))
                }
                Err(err) => Err(err),
            };
        };
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let observed_at = self.observe(Some(spec.clone()));
        let we_hold = holder.as_deref() == Some(self.config.identity.as_str());
        if let (Some(other), false) = (&holder, we_hold) {
            let valid_for = Duration::from_secs(
                u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
            );
            if observed_at + valid_for > Instant::now() {
                return Ok(Attempt::HeldByOther(other.clone()));
            }
        }
        let (acquire_time, transitions) = if we_hold {
            (spec.acquire_time.clone(), spec.lease_transitions)
        } else {
            (
                Some(MicroTime(now)),
                Some(spec.lease_transitions.unwrap_or(0) + 1),
            )
        };
        let updated = Lease {
            metadata: current.metadata.clone(),
            spec: Some(LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(duration_secs),
                acquire_time,
                renew_time: Some(MicroTime(now)),
                lease_transitions: transitions,
                ..spec
            }),
        };
        match self
            .api
            .replace(&self.config.lease_name, &PostParams::default(), &updated)
            .await
        {
            Ok(written) => {
                self.observe(written.spec);
                Ok(Attempt::Held)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                Ok(Attempt::HeldByOther(holder.unwrap_or_default()))
            }
            Err(err) => Err(err),
        }
    }

    /// Records `spec` as last seen; returns when it was first seen in this form.
    fn observe(&self, spec: Option<LeaseSpec>) -> Instant {
        let mut observed = self.observed.lock();
        let changed = observed.spec != spec || observed.at.is_none();
        if changed {
            observed.spec = spec;
            observed.at = Some(Instant::now());
        }
        observed.at.unwrap_or_else(Instant::now)
    }

    fn set_status(&self, leading: bool) {
        if let Some(status) = &self.status {
            status.set(i64::from(leading));
        }
    }

    fn lease_ref(&self) -> String {
        format!("{}/{}", self.config.lease_namespace, self.config.lease_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_must_be_ordered() {
        let ok = LeaderElectionConfig::new("ns", "lease");
        assert!(ok.validate().is_ok(), "client-go defaults are valid");
        let bad = ok.timing(
            Duration::from_secs(5),
            Duration::from_secs(10),
            Duration::from_secs(2),
        );
        let err = bad.validate().unwrap_err().to_string();
        assert!(
            err.contains("lease_duration (5s) > renew_deadline (10s)"),
            "{err}"
        );
    }

    #[test]
    fn identities_are_unique_per_process_instance() {
        let a = LeaderElectionConfig::new("ns", "lease");
        let b = LeaderElectionConfig::new("ns", "lease");
        assert_ne!(a.identity, b.identity);
    }
}
