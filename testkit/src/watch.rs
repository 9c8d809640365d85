//! Watch streams: newline-delimited JSON events (or length-prefixed protobuf frames, for clients
//! that ask) over a chunked HTTP response, replayed from history after a resourceVersion, with
//! bookmarks, timeouts, selectors and initial events.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use http::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::filter::Filter;
use crate::handlers::{Ctx, json_bytes};
use crate::negotiate::{Output, Shape};
use crate::resources::ResourceInfo;
use crate::status::{ApiError, ApiResult, Cause};
use crate::store::{Event, EventType, Stored, WatchStart};
use crate::table;

/// The real server's default: a random duration between 30 and 60 minutes; we take the lower bound.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Parsed and validated watch parameters.
struct Params {
    from: Option<u64>,
    initial: bool,
    /// `sendInitialEvents=true`: end the initial state with an annotated BOOKMARK.
    initial_end_bookmark: bool,
    bookmarks: bool,
    timeout: Duration,
}

fn list_options_invalid(field: &str, message: &str) -> ApiError {
    ApiError::invalid(
        "meta.k8s.io",
        "ListOptions",
        "",
        vec![Cause {
            reason: "FieldValueForbidden".into(),
            message: format!("Forbidden: {message}"),
            field: field.into(),
        }],
    )
}

fn params(ctx: &Ctx) -> ApiResult<Params> {
    let q = &ctx.query;
    let rv = q.resource_version()?;
    let bookmarks = q.flag("allowWatchBookmarks")?;
    let send_initial = q.flag_opt("sendInitialEvents")?;
    let timeout = match q.uint("timeoutSeconds")? {
        None | Some(0) => DEFAULT_TIMEOUT,
        Some(s) => Duration::from_secs(s),
    };
    let rv_match = q.get("resourceVersionMatch");
    match (send_initial, rv_match) {
        (Some(_), Some("NotOlderThan")) => {}
        (Some(_), _) => {
            return Err(list_options_invalid(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        (None, Some(_)) => {
            return Err(list_options_invalid(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        (None, None) => {}
    }
    if send_initial == Some(true) && !bookmarks {
        return Err(list_options_invalid(
            "allowWatchBookmarks",
            "sendInitialEvents requires setting allowWatchBookmarks to true",
        ));
    }
    Ok(match send_initial {
        Some(true) => Params {
            from: None,
            initial: true,
            initial_end_bookmark: true,
            bookmarks,
            timeout,
        },
        Some(false) => Params {
            from: rv.filter(|r| *r > 0),
            initial: false,
            initial_end_bookmark: false,
            bookmarks,
            timeout,
        },
        None => match rv {
            None | Some(0) => Params {
                from: None,
                initial: true,
                initial_end_bookmark: false,
                bookmarks,
                timeout,
            },
            Some(r) => Params {
                from: Some(r),
                initial: false,
                initial_end_bookmark: false,
                bookmarks,
                timeout,
            },
        },
    })
}

/// Turns one store event into the event this watcher sees, given its selectors
/// (an object leaving the selection is DELETED, one entering it ADDED).
fn visible(filter: &Filter, ev: &Event) -> Option<EventType> {
    if filter.is_everything() {
        return Some(ev.kind);
    }
    let now = filter.matches(&ev.obj);
    match ev.kind {
        EventType::Added => now.then_some(EventType::Added),
        EventType::Deleted => (now || ev.prev.as_ref().is_some_and(|p| filter.matches(p)))
            .then_some(EventType::Deleted),
        EventType::Modified => {
            let before = ev.prev.as_ref().is_some_and(|p| filter.matches(p));
            match (before, now) {
                (true, true) => Some(EventType::Modified),
                (false, true) => Some(EventType::Added),
                (true, false) => Some(EventType::Deleted),
                (false, false) => None,
            }
        }
    }
}

/// One watch event (a JSON line or a protobuf frame), in pieces written one after the other.
type Line = Vec<Bytes>;

/// Writes events for one watcher in its negotiated form.
struct Encoder {
    info: Arc<ResourceInfo>,
    output: Output,
    columns_sent: bool,
}

impl Encoder {
    fn line(&mut self, kind: &str, obj: &Stored) -> Line {
        if self.output.is_plain_json()
            && crate::convert::served_as_stored(&self.info, &obj.api_version)
        {
            // The stored bytes are shared, not copied: every JSON watcher of a resource sends the
            // one serialisation the store made (500 watchers of a large object once held 500
            // copies).
            let head = match kind {
                "ADDED" => Bytes::from_static(b"{\"type\":\"ADDED\",\"object\":"),
                "MODIFIED" => Bytes::from_static(b"{\"type\":\"MODIFIED\",\"object\":"),
                "DELETED" => Bytes::from_static(b"{\"type\":\"DELETED\",\"object\":"),
                other => Bytes::from(format!("{{\"type\":\"{other}\",\"object\":")),
            };
            return vec![head, obj.bytes.clone(), Bytes::from_static(b"}\n")];
        }
        let v = crate::convert::to_version(&self.info, obj.value());
        if self.output.shape == Shape::Table {
            let t = table::table(
                &self.info,
                &[v],
                &obj.rv.to_string(),
                None,
                !self.columns_sent,
            );
            self.columns_sent = true;
            return self.value_line(kind, &t);
        }
        self.value_line(kind, &self.output.reshape(v))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Line {
        let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({"kind": self.info.kind, "apiVersion": self.info.api_version(), "metadata": meta});
        self.value_line("BOOKMARK", &self.output.reshape(object))
    }

    /// An event whose object is already in its final shape (a Status, a bookmark, a Table).
    fn value_line(&self, kind: &str, object: &Value) -> Line {
        vec![Bytes::from(self.output.event(kind, object))]
    }
}

/// Handles `?watch=true`: validates, opens the watch under the store lock (so no event is
/// missed or duplicated), then streams from a background task.
pub(crate) async fn serve(ctx: Ctx) -> ApiResult<Response<Body>> {
    let p = params(&ctx)?;
    let mut filter = Filter::parse(&ctx.info, &ctx.query)?;
    if let Some(name) = &ctx.name {
        // Watching one object: the legacy path form of `fieldSelector=metadata.name=<name>`.
        let mut q = ctx.query.clone();
        let fs = match q.get("fieldSelector") {
            Some(f) => format!("{f},metadata.name={name}"),
            None => format!("metadata.name={name}"),
        };
        q = crate::query::Query::parse(Some(&format!(
            "fieldSelector={}&labelSelector={}",
            encode(&fs),
            encode(ctx.query.get("labelSelector").unwrap_or_default())
        )));
        filter = Filter::parse(&ctx.info, &q)?;
    }
    let start = {
        let mut store = ctx.shared.store.lock();
        store.watch(&ctx.info.key(), ctx.namespace.as_deref(), p.from, p.initial)
    };
    let start = match start {
        Ok(s) => s,
        Err(e) if ctx.shared.expired_watch_as_event => {
            // kube-apiserver's watch cache answers 200 and a single ERROR event.
            let status = ApiError::too_old(e.asked, e.oldest).to_status();
            let line = ctx.output.event("ERROR", &status);
            return Ok(stream_response(&ctx.output, Body::from(line)));
        }
        Err(e) => return Err(ApiError::too_old(e.asked, e.oldest)),
    };
    let (out_tx, out_rx) = mpsc::channel::<Line>(64);
    let enc = Encoder {
        info: ctx.info.clone(),
        output: ctx.output.clone(),
        columns_sent: false,
    };
    let shared = ctx.shared.clone();
    tokio::spawn(async move {
        run(shared, start, p, filter, enc, out_tx).await;
    });
    let stream = futures::stream::unfold(out_rx, |mut rx| async move {
        rx.recv().await.map(|line| (line, rx))
    })
    .flat_map(|line| futures::stream::iter(line.into_iter().map(Ok::<_, Infallible>)));
    Ok(stream_response(&ctx.output, Body::from_stream(stream)))
}

/// A 200 carrying a watch stream, with the stream's Content-Type.
fn stream_response(output: &Output, body: Body) -> Response<Body> {
    let mut r = json_bytes(StatusCode::OK, body);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(output.watch_content_type()),
    );
    r
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The body of one watch stream.
async fn run(
    shared: Arc<crate::server::Shared>,
    start: WatchStart,
    p: Params,
    filter: Filter,
    mut enc: Encoder,
    out: mpsc::Sender<Line>,
) {
    let WatchStart {
        initial,
        backlog,
        rv: start_rv,
        mut rx,
        expired,
    } = start;
    let mut last_rv = p.from.unwrap_or(start_rv);
    for obj in initial {
        if (filter.is_everything() || filter.matches(&obj))
            && out.send(enc.line("ADDED", &obj)).await.is_err()
        {
            return;
        }
    }
    if p.initial_end_bookmark && out.send(enc.bookmark(start_rv, true)).await.is_err() {
        return;
    }
    let skip_upto = p.from.unwrap_or(0);
    for ev in backlog {
        if let Some(kind) = visible(&filter, &ev)
            && out.send(enc.line(kind.as_str(), &ev.obj)).await.is_err()
        {
            return;
        }
        last_rv = last_rv.max(ev.rv);
    }
    let deadline = tokio::time::sleep(p.timeout);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(shared.bookmark_interval);
    tick.tick().await;
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                if ev.rv <= skip_upto {
                    continue;
                }
                last_rv = last_rv.max(ev.rv);
                if let Some(kind) = visible(&filter, &ev) && out.send(enc.line(kind.as_str(), &ev.obj)).await.is_err() {
                    return;
                }
            }
            _ = tick.tick(), if p.bookmarks => {
                // Everything up to `now` is already in our channel: drain it, then bookmark.
                let now = shared.store.lock().current_rv();
                while let Ok(ev) = rx.try_recv() {
                    last_rv = last_rv.max(ev.rv);
                    if ev.rv > skip_upto
                        && let Some(kind) = visible(&filter, &ev)
                        && out.send(enc.line(kind.as_str(), &ev.obj)).await.is_err()
                    {
                        return;
                    }
                }
                let rv = now.max(last_rv).max(skip_upto);
                if out.send(enc.bookmark(rv, false)).await.is_err() {
                    return;
                }
            }
            _ = &mut deadline => return,
            _ = out.closed() => return,
            _ = shutdown.changed() => return,
        }
    }
    if expired.load(Ordering::SeqCst) {
        let status = ApiError::too_old(last_rv, shared.store.lock().oldest_rv()).to_status();
        let _ = out.send(enc.value_line("ERROR", &status)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::ResourceKey;
    use std::collections::BTreeMap;

    fn stored(labels: &[(&str, &str)]) -> Arc<Stored> {
        Arc::new(Stored {
            bytes: Bytes::from_static(b"{}"),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            uid: "u".into(),
            api_version: "v1".into(),
            owners: vec![],
            rv: 2,
        })
    }

    #[test]
    fn objects_leaving_a_selector_are_deleted_and_entering_are_added() {
        let info = crate::resources::Registry::default()
            .get("", "v1", "configmaps")
            .expect("configmaps");
        let q = crate::query::Query::parse(Some("labelSelector=app%3Dweb"));
        let f = Filter::parse(&info, &q).expect("selector");
        let ev = |prev: Arc<Stored>, obj: Arc<Stored>| Event {
            rv: 2,
            resource: ResourceKey {
                group: String::new(),
                plural: "configmaps".into(),
            },
            key: ("default".into(), "x".into()),
            kind: EventType::Modified,
            obj,
            prev: Some(prev),
        };
        assert_eq!(
            visible(&f, &ev(stored(&[("app", "web")]), stored(&[]))),
            Some(EventType::Deleted)
        );
        assert_eq!(
            visible(&f, &ev(stored(&[]), stored(&[("app", "web")]))),
            Some(EventType::Added)
        );
        assert_eq!(visible(&f, &ev(stored(&[]), stored(&[]))), None);
    }
}
