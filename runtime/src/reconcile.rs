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

impl fmt::Display for ReconcileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        let mut cause = self.source.source();
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
        Ok(())
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
}
