//! Expectations: what a controller has just created or deleted and its cache has not shown yet
//! (upstream `ControllerExpectations` / `UIDTrackingControllerExpectations`).
//!
//! A set that creates three Pods must not, reconciled again before its cache holds them, count
//! two and create more. Upstream counts the creations and deletions its event handlers observe;
//! here the reconciler records the *names* it created or deleted and asks the cache whether they
//! have arrived (or gone), which needs no hook in the event path and survives missed events. An
//! expectation not met within five minutes (upstream's `ExpectationsTimeout`) is dropped, so a
//! Pod created and deleted by someone else before the cache saw it cannot wedge a set.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long an unmet expectation holds a controller back.
pub const TIMEOUT: Duration = Duration::from_secs(300);

/// Where the cache says a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not in the cache.
    Absent,
    /// In the cache.
    Present,
    /// In the cache with a deletionTimestamp.
    Terminating,
}

#[derive(Debug)]
struct Pending {
    creates: HashSet<String>,
    deletes: HashSet<String>,
    since: Instant,
}

/// The outstanding creations and deletions of each owner (by its `namespace/name` key).
#[derive(Debug, Default)]
pub struct Expectations {
    owners: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    fn pending(&self, owner: &str, f: impl FnOnce(&mut Pending)) {
        let mut owners = self.owners.lock();
        let pending = owners.entry(owner.to_owned()).or_insert_with(|| Pending {
            creates: HashSet::new(),
            deletes: HashSet::new(),
            since: Instant::now(),
        });
        pending.since = Instant::now();
        f(pending);
    }

    /// `owner` created `name`; its cache should show it soon.
    pub fn expect_created(&self, owner: &str, name: String) {
        self.pending(owner, |p| {
            p.creates.insert(name);
        });
    }

    /// `owner` deleted `name`; its cache should lose it (or show it terminating) soon.
    pub fn expect_deleted(&self, owner: &str, name: String) {
        self.pending(owner, |p| {
            p.deletes.insert(name);
        });
    }

    /// Whether the cache has caught up with everything `owner` did, asking `seen` about each
    /// name; met expectations are dropped as a side effect.
    pub fn satisfied(&self, owner: &str, seen: impl Fn(&str) -> Seen) -> bool {
        let mut owners = self.owners.lock();
        let Some(pending) = owners.get_mut(owner) else {
            return true;
        };
        pending.creates.retain(|name| seen(name) == Seen::Absent);
        pending.deletes.retain(|name| seen(name) == Seen::Present);
        let met = pending.creates.is_empty() && pending.deletes.is_empty();
        if met || pending.since.elapsed() >= TIMEOUT {
            if !met {
                tracing::warn!(
                    owner,
                    "expectations timed out; syncing from the cache as it is"
                );
            }
            owners.remove(owner);
            return true;
        }
        false
    }

    /// Drops whatever `owner` was waiting for (the owner is gone).
    pub fn forget(&self, owner: &str) {
        self.owners.lock().remove(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn met_once_creates_are_seen_and_deletes_are_gone_or_terminating() {
        let e = Expectations::default();
        e.expect_created("ns/rs", "a".into());
        e.expect_deleted("ns/rs", "b".into());
        let a_absent = |n: &str| {
            if n == "a" {
                Seen::Absent
            } else {
                Seen::Present
            }
        };
        assert!(
            !e.satisfied("ns/rs", a_absent),
            "a not seen yet, b still there"
        );
        assert!(
            !e.satisfied("ns/rs", |_| Seen::Present),
            "a seen, b still there"
        );
        // a was seen once: met for good, even if it is gone by now; b is terminating.
        assert!(e.satisfied("ns/rs", |_| Seen::Terminating));
        assert!(
            e.satisfied("ns/other", |_| Seen::Absent),
            "nothing expected"
        );
    }
}
