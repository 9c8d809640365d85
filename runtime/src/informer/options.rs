//! What an informer watches and how, end to end: [`InformerOptions`] (namespace, [`Selector`],
//! resync, list page size, streaming list, watch timeout, backoff) is what a user or a controller's
//! [`Watch`](crate::controller::Watch) sets; the [`super::InformerFactory`] fills what was left
//! unset from its own defaults; the reflector gets the resolved settings as a
//! [`super::ReflectorConfig`], and every list and watch request carries the same [`Selector`].

use std::time::Duration;

use super::backoff::BackoffConfig;
use super::compact::CacheMode;

/// Which objects of a resource a list or watch returns: label and field selectors, in the API's
/// string syntax (`app=web,tier!=db`, `metadata.name=x`). Part of an informer's identity in the
/// factory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    /// Label selector (`labelSelector`).
    pub labels: Option<String>,
    /// Field selector (`fieldSelector`).
    pub fields: Option<String>,
}

/// What an informer watches and how. The factory shares informers by type + namespace +
/// selector; the first request for a key decides the other settings. A setting left `None` takes
/// the factory's default, and then client-go's; a setting given — zero included — is kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InformerOptions {
    /// Watch one namespace (`None`: all namespaces, or a cluster-scoped resource).
    pub namespace: Option<String>,
    /// Label and field selectors.
    pub selector: Selector,
    /// The informer's resync check period and the default resync of handlers registered with
    /// [`SharedIndexInformer::add_event_handler`](super::SharedIndexInformer::add_event_handler);
    /// zero never resyncs (the default).
    pub resync_period: Option<Duration>,
    /// Fixed list page size (default: client-go's pager rules, pages of 500).
    pub page_size: Option<u32>,
    /// Stream the initial list (`sendInitialEvents`), falling back to paginated lists if refused
    /// (default: off).
    pub streaming_list: Option<bool>,
    /// Lower bound of the random watch timeout (default 5 min; the upper bound is twice this).
    pub min_watch_timeout: Option<Duration>,
    /// Backoff between failed list/watch attempts (default: client-go's reflector backoff).
    pub backoff: Option<BackoffConfig>,
    /// How the cache keeps objects (default: typed).
    pub cache: Option<CacheMode>,
    /// The name of the projection (transform) the informer applies, when it caches a
    /// projection of the objects rather than whole ones. Part of the informer's identity in the
    /// factory: a projected cache is never shared with watches that want whole objects.
    pub projection: Option<String>,
}

/// client-go's minimum watch timeout (`minWatchTimeout`).
const DEFAULT_MIN_WATCH_TIMEOUT: Duration = Duration::from_secs(300);

impl InformerOptions {
    /// Watch one namespace.
    #[must_use]
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = Some(ns.into());
        self
    }
    /// Filter by labels.
    #[must_use]
    pub fn labels(mut self, selector: impl Into<String>) -> Self {
        self.selector.labels = Some(selector.into());
        self
    }
    /// Filter by fields.
    #[must_use]
    pub fn fields(mut self, selector: impl Into<String>) -> Self {
        self.selector.fields = Some(selector.into());
        self
    }
    /// Default handler resync period (zero: never, overriding a factory default).
    #[must_use]
    pub fn resync(mut self, period: Duration) -> Self {
        self.resync_period = Some(period);
        self
    }
    /// Fixed list page size.
    #[must_use]
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }
    /// Use a streaming initial list (or not, overriding a factory default).
    #[must_use]
    pub fn streaming_list(mut self, on: bool) -> Self {
        self.streaming_list = Some(on);
        self
    }
    /// Lower bound of the random watch timeout.
    #[must_use]
    pub fn min_watch_timeout(mut self, timeout: Duration) -> Self {
        self.min_watch_timeout = Some(timeout);
        self
    }
    /// Backoff between failed list/watch attempts.
    #[must_use]
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Keep the cache compact ([`CacheMode::compact`]): several times less memory, a decode
    /// per read that misses the hot objects. For large caches read by key or index, e.g.
    /// every Pod or Secret of a cluster.
    #[must_use]
    pub fn compact(self) -> Self {
        self.cache(CacheMode::compact())
    }
    /// How the cache keeps objects (typed, or compact overriding a factory default).
    #[must_use]
    pub fn cache(mut self, mode: CacheMode) -> Self {
        self.cache = Some(mode);
        self
    }

    /// These options with every setting left `None` taken from `defaults` (the namespace,
    /// selector and projection are not inherited: they say which informer this is).
    #[must_use]
    pub fn or_defaults(self, defaults: &InformerOptions) -> Self {
        Self {
            resync_period: self.resync_period.or(defaults.resync_period),
            page_size: self.page_size.or(defaults.page_size),
            streaming_list: self.streaming_list.or(defaults.streaming_list),
            min_watch_timeout: self.min_watch_timeout.or(defaults.min_watch_timeout),
            backoff: self.backoff.or_else(|| defaults.backoff.clone()),
            cache: self.cache.or(defaults.cache),
            ..self
        }
    }

    /// The resync period in effect (zero: never).
    pub fn effective_resync_period(&self) -> Duration {
        self.resync_period.unwrap_or(Duration::ZERO)
    }

    /// Whether the initial list is streamed.
    pub fn effective_streaming_list(&self) -> bool {
        self.streaming_list.unwrap_or(false)
    }

    /// The minimum watch timeout in effect.
    pub fn effective_min_watch_timeout(&self) -> Duration {
        self.min_watch_timeout.unwrap_or(DEFAULT_MIN_WATCH_TIMEOUT)
    }

    /// The cache mode in effect.
    pub fn effective_cache_mode(&self) -> CacheMode {
        self.cache.unwrap_or_default()
    }

    /// The backoff in effect.
    pub fn effective_backoff(&self) -> BackoffConfig {
        self.backoff.clone().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_given_is_kept_even_when_it_equals_the_default() {
        let factory = InformerOptions::default()
            .resync(Duration::from_secs(30))
            .streaming_list(true)
            .page_size(100);
        // Zero and false are explicit here: they override the factory's 30 s and streaming.
        let given = InformerOptions::default()
            .namespace("ns")
            .resync(Duration::ZERO)
            .streaming_list(false)
            .or_defaults(&factory);
        assert_eq!(given.effective_resync_period(), Duration::ZERO);
        assert!(!given.effective_streaming_list());
        assert_eq!(given.page_size, Some(100), "unset: the factory's");
        assert_eq!(given.namespace.as_deref(), Some("ns"));
        let unset = InformerOptions::default().or_defaults(&factory);
        assert_eq!(unset.effective_resync_period(), Duration::from_secs(30));
        assert!(unset.effective_streaming_list());
        assert_eq!(unset.namespace, None, "the namespace is never inherited");
        assert_eq!(
            InformerOptions::default().effective_min_watch_timeout(),
            Duration::from_secs(300)
        );
    }
}
