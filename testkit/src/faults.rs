//! Fault injection and request counters, for testing how clients survive a bad server.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::server::Shared;
use crate::status::ApiError;

/// Which requests a fault applies to; `None` fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMatch {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verb: Option<String>,
    /// The plural resource name, `pods`.
    pub resource: Option<String>,
}

impl RequestMatch {
    /// Matches every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Matches every request with this verb (`get`, `list`, `watch`, `create`, `update`,
    /// `patch`, `delete`, `deletecollection`).
    pub fn verb(verb: &str) -> Self {
        RequestMatch {
            verb: Some(verb.to_string()),
            resource: None,
        }
    }

    /// Matches requests with this verb on this resource (plural, e.g. `configmaps`).
    pub fn new(verb: &str, resource: &str) -> Self {
        RequestMatch {
            verb: Some(verb.to_string()),
            resource: Some(resource.to_string()),
        }
    }

    fn matches(&self, verb: &str, resource: Option<&str>) -> bool {
        self.verb.as_deref().is_none_or(|v| v == verb)
            && self.resource.as_deref().is_none_or(|r| Some(r) == resource)
    }
}

#[derive(Debug)]
struct FailRule {
    matcher: RequestMatch,
    remaining: usize,
    status: u16,
    retry_after: Option<u32>,
}

/// Fault and counter state inside the server.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    rules: Mutex<Vec<FailRule>>,
    latency: Mutex<Duration>,
    counts: Mutex<HashMap<(String, String), u64>>,
}

impl FaultState {
    /// Counts a request and returns the injected failure it must get, if any.
    pub(crate) fn on_request(&self, verb: &str, resource: Option<&str>) -> Option<ApiError> {
        *self
            .counts
            .lock()
            .entry((verb.to_string(), resource.unwrap_or_default().to_string()))
            .or_default() += 1;
        let mut rules = self.rules.lock();
        let rule = rules
            .iter_mut()
            .find(|r| r.remaining > 0 && r.matcher.matches(verb, resource))?;
        rule.remaining -= 1;
        let err = ApiError::from_code(rule.status, rule.retry_after);
        rules.retain(|r| r.remaining > 0);
        Some(err)
    }

    pub(crate) fn latency(&self) -> Duration {
        *self.latency.lock()
    }
}

/// A cheap, cloneable handle to inject faults into a running [`crate::ApiServer`].
#[derive(Clone)]
pub struct Faults {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").finish_non_exhaustive()
    }
}

impl Faults {
    /// Ends every open watch stream cleanly, as a server restart or load balancer would.
    pub fn close_watches(&self) {
        self.shared.store.lock().close_watches();
    }

    /// Ends every open watch stream with an `ERROR` event carrying a 410 Expired Status, as the
    /// real server does when a watcher falls too far behind.
    pub fn expire_watches(&self) {
        self.shared.store.lock().expire_watches();
    }

    /// Drops all history: watches and continue tokens from any earlier resourceVersion get 410.
    pub fn compact(&self) {
        self.shared.store.lock().compact();
    }

    /// Fails the next `n` requests matching `matcher` with `status` (500, 429, 504, …);
    /// `retry_after` is sent as the `Retry-After` header.
    pub fn fail_next(
        &self,
        n: usize,
        matcher: RequestMatch,
        status: u16,
        retry_after: Option<u32>,
    ) {
        self.shared.faults.rules.lock().push(FailRule {
            matcher,
            remaining: n,
            status,
            retry_after,
        });
    }

    /// Delays every request (and the start of every watch) by `d`.
    pub fn set_latency(&self, d: Duration) {
        *self.shared.faults.latency.lock() = d;
    }

    /// How many requests with this verb (and resource, when given) the server has received.
    pub fn request_count(&self, verb: &str, resource: Option<&str>) -> u64 {
        self.shared
            .faults
            .counts
            .lock()
            .iter()
            .filter(|((v, r), _)| v == verb && resource.is_none_or(|want| want == r))
            .map(|(_, n)| *n)
            .sum()
    }

    /// How many watch streams are open now.
    pub fn open_watches(&self) -> usize {
        self.shared.store.lock().open_watches()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_rules_apply_n_times_to_matching_requests_only() {
        let f = FaultState::default();
        f.rules.lock().push(FailRule {
            matcher: RequestMatch::new("list", "pods"),
            remaining: 2,
            status: 429,
            retry_after: Some(1),
        });
        assert!(f.on_request("get", Some("pods")).is_none());
        assert_eq!(
            f.on_request("list", Some("pods")).map(|e| e.code),
            Some(429)
        );
        assert!(f.on_request("list", Some("configmaps")).is_none());
        assert!(f.on_request("list", Some("pods")).is_some());
        assert!(f.on_request("list", Some("pods")).is_none());
        assert_eq!(
            *f.counts
                .lock()
                .get(&("list".to_string(), "pods".to_string()))
                .expect("counted"),
            3
        );
    }
}
