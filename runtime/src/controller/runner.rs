//! The running controller: `concurrency` workers popping keys from the work queue, reading the
//! primary from the cache and calling the reconcile function; each outcome (done, requeue, error,
//! panic, timeout) decides whether and when the key comes back, and is counted in the
//! controller-runtime metrics. Added to the manager by the [`super::Builder`].

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::Resource;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::builder::*;
use super::reconcile::*;
use super::trigger::{Trigger, Triggers};
use crate::informer::{Lister, ObjectKey};
use crate::manager::Runnable;
use crate::workqueue::WorkQueue;

pub(super) struct Instruments {
    pub(super) success: Counter,
    pub(super) error: Counter,
    pub(super) requeue_after: Counter,
    pub(super) errors: Counter,
    pub(super) panics: Counter,
    pub(super) time: Histogram,
    pub(super) active: Gauge,
    pub(super) max_concurrent: Gauge,
}

pub(super) struct Shared<K, T> {
    pub(super) name: String,
    pub(super) queue: WorkQueue<ObjectKey>,
    pub(super) primary: Lister<K>,
    pub(super) reconcile: ReconcileFn<K, T>,
    pub(super) context: Context<T>,
    pub(super) timeout: Option<Duration>,
    pub(super) instruments: Instruments,
    pub(super) triggers: Arc<Triggers>,
}

/// The running controller: `concurrency` workers over one queue.
pub(super) struct Runner<K, T> {
    pub(super) shared: Arc<Shared<K, T>>,
    pub(super) concurrency: usize,
}

/// How one reconcile ended.
pub(super) enum Outcome {
    Done(Action),
    Failed(ReconcileError),
    Panicked(String),
    TimedOut(Duration),
}

impl<K, T> Runnable for Runner<K, T>
where
    K: Resource + Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn start(self: Box<Self>, stop: CancellationToken) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let shared = self.shared;
            shared
                .instruments
                .max_concurrent
                .set(i64::try_from(self.concurrency).unwrap_or(i64::MAX));
            let mut workers = JoinSet::new();
            for _ in 0..self.concurrency {
                workers.spawn(worker(shared.clone(), stop.clone()));
            }
            // Dropping the set (when the manager aborts this future) aborts the workers.
            while workers.join_next().await.is_some() {}
            shared.queue.shutdown();
            tracing::info!(controller = %shared.name, "controller stopped");
        })
    }
}

pub(super) async fn worker<K, T>(shared: Arc<Shared<K, T>>, stop: CancellationToken)
where
    K: Resource + Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    loop {
        let key = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            key = shared.queue.get() => match key {
                Some(key) => key,
                None => return,
            },
        };
        if stop.is_cancelled() {
            shared.queue.done(&key);
            return;
        }
        shared.instruments.active.inc();
        process(&shared, &key).await;
        shared.instruments.active.dec();
        shared.queue.done(&key);
    }
}

pub(super) async fn process<K, T>(shared: &Shared<K, T>, key: &ObjectKey)
where
    K: Resource + Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    let Some(obj) = shared.primary.get_by_key(key) else {
        // Deleted (and its finalizers done): nothing left to reconcile.
        shared.queue.forget(key);
        shared.triggers.forget(key);
        return;
    };
    let started = tokio::time::Instant::now();
    // Every log line of the reconcile carries the controller, the object and why it runs.
    let trigger = shared.triggers.take(key);
    let span = tracing::info_span!("reconcile", controller = %shared.name, object = %key, trigger = %trigger);
    let fut = AssertUnwindSafe(tracing::Instrument::instrument(
        (shared.reconcile)(obj, shared.context.clone()),
        span,
    ))
    .catch_unwind();
    let outcome = match shared.timeout {
        Some(limit) => match tokio::time::timeout(limit, fut).await {
            Ok(result) => to_outcome(result),
            Err(_) => Outcome::TimedOut(limit),
        },
        None => to_outcome(fut.await),
    };
    let i = &shared.instruments;
    i.time.observe(started.elapsed().as_secs_f64());
    let name = &shared.name;
    match outcome {
        Outcome::Done(action) => {
            shared.queue.forget(key);
            match action.requeue_after() {
                Some(after) => {
                    i.requeue_after.inc();
                    shared.triggers.schedule(key, Trigger::Requeue);
                    shared.queue.add_after(key.clone(), after);
                }
                None => {
                    i.success.inc();
                }
            }
        }
        Outcome::Failed(err) if err.is_terminal() => {
            i.error.inc();
            i.errors.inc();
            shared.queue.forget(key);
            tracing::error!(controller = %name, %key, error = %err, "reconcile failed with a terminal error; not retrying until the object changes");
        }
        Outcome::Failed(err) => {
            i.error.inc();
            i.errors.inc();
            tracing::warn!(controller = %name, %key, error = %err, retries = shared.queue.num_requeues(key), "reconcile failed; retrying with backoff");
            shared.triggers.schedule(key, Trigger::Retry);
            shared.queue.add_rate_limited(key.clone());
        }
        Outcome::Panicked(message) => {
            i.error.inc();
            i.errors.inc();
            i.panics.inc();
            tracing::error!(controller = %name, %key, panic = %message, "reconcile panicked; retrying with backoff");
            shared.triggers.schedule(key, Trigger::Retry);
            shared.queue.add_rate_limited(key.clone());
        }
        Outcome::TimedOut(limit) => {
            i.error.inc();
            i.errors.inc();
            tracing::warn!(controller = %name, %key, timeout = ?limit, "reconcile timed out; retrying with backoff");
            shared.triggers.schedule(key, Trigger::Retry);
            shared.queue.add_rate_limited(key.clone());
        }
    }
}

pub(super) fn to_outcome(
    result: Result<Result<Action, ReconcileError>, Box<dyn Any + Send>>,
) -> Outcome {
    match result {
        Ok(Ok(action)) => Outcome::Done(action),
        Ok(Err(err)) => Outcome::Failed(err),
        Err(panic) => Outcome::Panicked(
            panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_carry_their_message() {
        let outcome = to_outcome(Err(Box::new("boom")));
        assert!(matches!(outcome, Outcome::Panicked(m) if m == "boom"));
        let outcome = to_outcome(Err(Box::new(String::from("bang"))));
        assert!(matches!(outcome, Outcome::Panicked(m) if m == "bang"));
    }
}
