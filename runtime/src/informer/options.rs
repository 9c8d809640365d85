//! What an informer watches and how ([`InformerOptions`]): namespace, selectors, resync, list
//! page size, streaming list, watch timeout and backoff. Given to [`super::SharedIndexInformer`]
//! directly or through the [`super::InformerFactory`]; the reflector gets its share as a
//! [`super::ReflectorConfig`].

use std::time::Duration;

use super::backoff::BackoffConfig;

/// What an informer watches and how. The factory shares informers by type + namespace +
/// selectors; the first request for a key decides the other settings.
#[derive(Debug, Clone, PartialEq)]
pub struct InformerOptions {
    /// Watch one namespace (`None`: all namespaces, or a cluster-scoped resource).
    pub namespace: Option<String>,
    /// Label selector.
    pub label_selector: Option<String>,
    /// Field selector.
    pub field_selector: Option<String>,
    /// The informer's resync check period and the default resync of handlers registered with
    /// [`SharedIndexInformer::add_event_handler`](super::SharedIndexInformer::add_event_handler); zero never resyncs.
    pub resync_period: Duration,
    /// Fixed list page size (default: client-go's pager rules, pages of 500).
    pub page_size: Option<u32>,
    /// Stream the initial list (`sendInitialEvents`), falling back to paginated lists if refused.
    pub streaming_list: bool,
    /// Lower bound of the random watch timeout (5 min; the upper bound is twice this).
    pub min_watch_timeout: Duration,
    /// Backoff between failed list/watch attempts.
    pub backoff: BackoffConfig,
}

impl Default for InformerOptions {
    fn default() -> Self {
        Self {
            namespace: None,
            label_selector: None,
            field_selector: None,
            resync_period: Duration::ZERO,
            page_size: None,
            streaming_list: false,
            min_watch_timeout: Duration::from_secs(300),
            backoff: BackoffConfig::default(),
        }
    }
}

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
        self.label_selector = Some(selector.into());
        self
    }
    /// Filter by fields.
    #[must_use]
    pub fn fields(mut self, selector: impl Into<String>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }
    /// Default handler resync period.
    #[must_use]
    pub fn resync(mut self, period: Duration) -> Self {
        self.resync_period = period;
        self
    }
    /// Use a streaming initial list.
    #[must_use]
    pub fn streaming_list(mut self, on: bool) -> Self {
        self.streaming_list = on;
        self
    }
}
