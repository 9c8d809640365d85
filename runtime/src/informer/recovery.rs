//! Why a list or watch failed, and what the reflector does about it: the errors it reports to the
//! watch-error hook ([`ReflectorError`]), and the classification that steers its recovery — relist
//! after a 410, back off and retry the same request after a 429 (as long as `Retry-After` says) or
//! a refused connection, back off and relist after anything else. Used by [`super::reflector`] and
//! the [`super::pager`].

use std::time::Duration;

use kube::core::Status;

/// Errors the reflector reports to the watch-error hook. It recovers from all of them itself.
#[derive(Debug, thiserror::Error)]
pub enum ReflectorError {
    /// A list request failed.
    #[error("failed to list {resource}: {source}")]
    List {
        /// The listed resource.
        resource: String,
        /// What the client reported.
        #[source]
        source: kube::Error,
    },
    /// A watch request could not be opened.
    #[error("failed to watch {resource}: {source}")]
    Watch {
        /// The watched resource.
        resource: String,
        /// What the client reported.
        #[source]
        source: kube::Error,
    },
    /// The server ended a watch with an ERROR event or the stream failed.
    #[error("watch of {resource} ended with an error: {source}")]
    WatchStream {
        /// The watched resource.
        resource: String,
        /// The error event (as `kube::Error::Api`) or the stream error.
        #[source]
        source: kube::Error,
    },
    /// A watch closed within a second without delivering any event: the server is likely
    /// dropping connections; the reflector backs off and relists.
    #[error(
        "very short watch of {resource}: the server closed it within 1s without any event; backing off and relisting"
    )]
    VeryShortWatch {
        /// The watched resource.
        resource: String,
    },
    /// A streaming list never reached its end bookmark in time; the reflector falls back to lists.
    #[error(
        "streaming list of {resource} sent no initial-events-end bookmark within {waited:?}; falling back to paginated lists"
    )]
    InitialEventsTimeout {
        /// The watched resource.
        resource: String,
        /// How long the reflector waited.
        waited: Duration,
    },
}

/// How an error steers the reflector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// 410 Gone / Expired: the version is out of the server's history.
    Expired,
    /// The requested version is newer than the server has.
    TooLargeVersion,
    /// 429, or the connection was refused: try the same thing again after a backoff.
    RetrySame,
    /// Anything else.
    Other,
}

pub(crate) fn classify_status(s: &Status) -> ErrorClass {
    let msg_too_large = s.message.contains("Too large resource version")
        || s.details.as_ref().is_some_and(|d| {
            d.causes.iter().any(|c| {
                c.reason == "ResourceVersionTooLarge"
                    || c.message.contains("Too large resource version")
            })
        });
    if s.code == 410 || s.reason == "Expired" || s.reason == "Gone" {
        ErrorClass::Expired
    } else if msg_too_large {
        ErrorClass::TooLargeVersion
    } else if s.code == 429 {
        ErrorClass::RetrySame
    } else {
        ErrorClass::Other
    }
}

pub(crate) fn classify(e: &kube::Error) -> ErrorClass {
    match e {
        kube::Error::Api(s) => classify_status(s),
        other => {
            let mut src: Option<&(dyn std::error::Error + 'static)> = Some(other);
            while let Some(err) = src {
                if let Some(io) = err.downcast_ref::<std::io::Error>()
                    && io.kind() == std::io::ErrorKind::ConnectionRefused
                {
                    return ErrorClass::RetrySame;
                }
                src = err.source();
            }
            ErrorClass::Other
        }
    }
}

/// How long the server asked to wait (`Retry-After`, carried in a 429's
/// `details.retryAfterSeconds` as kube-apiserver sends it), if it did.
pub(crate) fn retry_after(e: &kube::Error) -> Option<Duration> {
    let kube::Error::Api(status) = e else {
        return None;
    };
    let secs = status.details.as_ref()?.retry_after_seconds;
    (secs > 0).then(|| Duration::from_secs(u64::from(secs)))
}
