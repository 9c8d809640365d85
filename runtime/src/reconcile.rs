//! What a reconcile returns: the next [`Action`], or a [`ReconcileError`] (transient: retried
//! with per-key exponential backoff; terminal: not retried until the object changes).

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// What the controller does with a key after a successful reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Reconcile the key again after `after`, even if nothing changes (e.g. to poll external
    /// state). A change of the object before then reconciles it earlier.
    pub fn requeue(after: Duration) -> Self {
        Self {
            requeue_after: Some(after),
        }
    }

    /// Do nothing until the object (or something mapped to it) changes.
    pub fn await_change() -> Self {
        Self {
            requeue_after: None,
        }
    }

    /// The requested delay, if any.
    pub fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// A failed reconcile. Any `std::error::Error` converts into a transient one with `?`; wrap it
/// with [`ReconcileError::terminal`] when retrying cannot help (invalid spec, …): the key is then
/// forgotten until the object changes again.
///
/// Like `anyhow::Error`, this type deliberately does not implement `std::error::Error`, which is
/// what lets every error type convert into it.
pub struct ReconcileError {
    source: Box<dyn StdError + Send + Sync + 'static>,
    terminal: bool,
}

impl ReconcileError {
    /// A transient error: the key is requeued with per-key exponential backoff.
    pub fn transient(err: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Self {
            source: err.into(),
            terminal: false,
        }
    }

    /// A terminal error: logged and counted, not retried.
    pub fn terminal(err: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Self {
            source: err.into(),
            terminal: true,
        }
    }

    /// Whether the controller gives up on this key (until the object changes).
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// The underlying error.
    pub fn inner(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self.source.as_ref()
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for ReconcileError {
    fn from(err: E) -> Self {
        Self::transient(err)
    }
}

/// One error of the chain, on one line: an API error as the server's message with its reason
/// and code (kube's own `Display` appends a debug dump of the whole `Status`).
fn one_line(err: &(dyn StdError + 'static)) -> String {
    match err.downcast_ref::<kube::Error>() {
        Some(kube::Error::Api(status)) => {
            format!("{} ({}, {})", status.message, status.reason, status.code)
        }
        _ => err.to_string(),
    }
}

impl fmt::Display for ReconcileError {
    /// The error and its causes joined by `: `, each API error once, as the server's message with
    /// its reason and code; a cause already spelled out by the error above it is not repeated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = String::new();
        let mut current: Option<&(dyn StdError + 'static)> = Some(self.source.as_ref());
        while let Some(err) = current {
            let text = one_line(err);
            let api = matches!(err.downcast_ref::<kube::Error>(), Some(kube::Error::Api(_)));
            if api {
                // A wrapper that printed the API error in full (`{0}`) gets the short form.
                line = line.replace(&err.to_string(), &text);
            }
            if !line.contains(&text) {
                if !line.is_empty() {
                    line.push_str(": ");
                }
                line.push_str(&text);
            }
            if api {
                break; // its source is the same Status again
            }
            current = err.source();
        }
        f.write_str(&line)
    }
}

impl fmt::Debug for ReconcileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconcileError")
            .field("terminal", &self.terminal)
            .field("source", &self.source)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_mark_gives_transient_and_terminal_is_explicit() {
        fn parse(s: &str) -> Result<i32, ReconcileError> {
            Ok(s.parse::<i32>()?)
        }
        let err = parse("x").unwrap_err();
        assert!(!err.is_terminal());
        assert!(err.to_string().contains("invalid digit"), "{err}");
        let err = ReconcileError::terminal("spec.replicas must be positive");
        assert!(err.is_terminal());
        assert_eq!(err.to_string(), "spec.replicas must be positive");
    }

    #[test]
    fn api_errors_read_as_one_line_with_the_servers_message_and_code() {
        let status =
            kube::core::Status::failure("configmaps \"app\" not found", "NotFound").with_code(404);
        let err = ReconcileError::from(kube::Error::Api(Box::new(status.clone())));
        assert_eq!(
            err.to_string(),
            "configmaps \"app\" not found (NotFound, 404)"
        );

        #[derive(Debug, thiserror::Error)]
        #[error("failed to apply the Deployment app")]
        struct Wrapped(#[source] kube::Error);
        let err = ReconcileError::from(Wrapped(kube::Error::Api(Box::new(status))));
        let text = err.to_string();
        assert_eq!(
            text,
            "failed to apply the Deployment app: configmaps \"app\" not found (NotFound, 404)"
        );
        assert!(!text.contains("Status {") && !text.contains('\n'), "{text}");
    }
}
