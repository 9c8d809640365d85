//! Why a reconcile runs: the primary changed, an owned or a watched object changed, a requeue
//! the reconciler asked for, a retry after an error, or a periodic resync.
//!
//! The work queue holds keys only (so that many changes of one object make one reconcile); the
//! trigger travels beside it. The first trigger recorded for a key since its last reconcile is
//! the one reported. Requeues and retries are recorded apart, as they are due later: a reconcile
//! that a change starts before they are due reports the change, and the requeue's own reconcile
//! reports the requeue. The reconcile's tracing span carries it (`trigger = ...`), so every log
//! line says why it ran, as kube-rs' `ReconcileReason` does.

use std::collections::HashMap;
use std::fmt;

use parking_lot::Mutex;

use crate::informer::ObjectKey;

/// What started a reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The primary object was created, changed or deleted.
    Changed,
    /// An object the primary owns (`kind`, `namespace/name`) changed.
    Owned {
        /// The child's kind.
        kind: String,
        /// The child's `namespace/name`.
        object: String,
    },
    /// An object of a `watches` relation, mapped to this primary, changed.
    Watched {
        /// The watched object's kind.
        kind: String,
        /// The watched object's `namespace/name`.
        object: String,
    },
    /// The informer's periodic resync redelivered the primary unchanged.
    Resync,
    /// The last reconcile returned `Action::requeue`.
    Requeue,
    /// The last reconcile failed; this is a retry with backoff.
    Retry,
    /// Not recorded (e.g. the key was queued directly).
    Unknown,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Changed => f.write_str("primary changed"),
            Self::Owned { kind, object } => write!(f, "owned {kind} {object} changed"),
            Self::Watched { kind, object } => write!(f, "watched {kind} {object} changed"),
            Self::Resync => f.write_str("resync"),
            Self::Requeue => f.write_str("requeue"),
            Self::Retry => f.write_str("retry after error"),
            Self::Unknown => f.write_str("unknown"),
        }
    }
}

/// Which relation of the controller an event came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelationKind {
    Primary,
    Owned,
    Watched,
}

/// The triggers of the keys in one controller's queue.
#[derive(Debug, Default)]
pub(crate) struct Triggers {
    /// Recorded as the key is added.
    now: Mutex<HashMap<ObjectKey, Trigger>>,
    /// Recorded as a delayed add is scheduled (requeue, retry).
    later: Mutex<HashMap<ObjectKey, Trigger>>,
}

impl Triggers {
    /// Records `trigger` for `key` unless one is already waiting.
    pub(crate) fn record(&self, key: &ObjectKey, trigger: impl FnOnce() -> Trigger) {
        self.now.lock().entry(key.clone()).or_insert_with(trigger);
    }

    /// Records the trigger of a delayed add of `key`.
    pub(crate) fn schedule(&self, key: &ObjectKey, trigger: Trigger) {
        self.later.lock().insert(key.clone(), trigger);
    }

    /// The trigger of the reconcile of `key` starting now.
    pub(crate) fn take(&self, key: &ObjectKey) -> Trigger {
        if let Some(t) = self.now.lock().remove(key) {
            return t;
        }
        self.later.lock().remove(key).unwrap_or(Trigger::Unknown)
    }

    /// Forgets `key` (its object is gone).
    pub(crate) fn forget(&self, key: &ObjectKey) {
        self.now.lock().remove(key);
        self.later.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_trigger_wins_and_a_delayed_one_waits_for_its_own_reconcile() {
        let t = Triggers::default();
        let key = ObjectKey::new(Some("ns"), "a");
        t.schedule(&key, Trigger::Requeue);
        t.record(&key, || Trigger::Changed);
        t.record(&key, || Trigger::Resync);
        assert_eq!(t.take(&key), Trigger::Changed);
        assert_eq!(t.take(&key), Trigger::Requeue);
        assert_eq!(t.take(&key), Trigger::Unknown);
    }
}
