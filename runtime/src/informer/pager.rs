//! The list pager (client-go's `pager.go`): fetches a list page by page (`limit` + `continue`),
//! decoding and transforming each page on a blocking thread while the reflector queues the previous
//! one, and restarting as one full list when a continue token expires. Raw JSON pages can skip
//! decoding `managedFields` ([`hide_managed_fields`]). Called by the [`super::reflector::Reflector`].

use std::sync::Arc;

use kube::api::ObjectList;
use tokio::sync::mpsc;
use tracing::debug;

use super::list_watch::{ListRequest, ListWatch, RawPage};
use super::recovery::{ErrorClass, classify};
use super::reflector::Transform;

/// One fetched page, decoded and transformed by the pager task.
pub(crate) struct Page<K> {
    pub(crate) items: Vec<Arc<K>>,
    pub(crate) continue_token: Option<String>,
    pub(crate) resource_version: String,
    /// The first page of a fresh full list that replaces the pages sent before it (a continue
    /// token expired): keys listed only by the earlier pages must be tombstoned if missing now.
    pub(crate) restarted: bool,
    /// More objects of the same server page follow (a large page is handed on in parts of
    /// [`PART`] objects as they are decoded); only the last part carries the continue token.
    pub(crate) partial: bool,
}

/// Objects of a page handed on at a time: a large page (a relist served whole, as client-go
/// asks for at a known version) reaches the store part by part, so the store's back-pressure
/// bounds the decoded objects waiting beside the cache.
pub(crate) const PART: usize = 500;

/// Fetches pages one after another, decoding and transforming each while the consumer queues
/// the previous one. A continuation page that fails with 410 is retried once as a full list.
pub(crate) async fn run_pager<L: ListWatch>(
    lw: Arc<L>,
    base: ListRequest,
    transform: Option<Transform<L::Object>>,
    skip_managed_fields: bool,
    tx: mpsc::Sender<Result<Page<L::Object>, kube::Error>>,
) {
    let mut req = base.clone();
    let mut fell_back = false;
    // Set when the next page starts the full-list fallback.
    let mut restarted = false;
    // The previous page, decoding on a blocking thread while the next one downloads.
    let mut decoding: Option<tokio::task::JoinHandle<Result<Page<L::Object>, kube::Error>>> = None;
    loop {
        let fetched = fetch_page(&*lw, &req).await;
        if let Some(previous) = decoding.take()
            && !forward(previous, &tx).await
        {
            return;
        }
        let fetched = match fetched {
            Ok(f) => f,
            Err(e)
                if req.continue_token.is_some()
                    && !fell_back
                    && classify(&e) == ErrorClass::Expired =>
            {
                debug!("continue token expired; retrying as one full list");
                fell_back = true;
                restarted = true;
                req = ListRequest {
                    limit: None,
                    continue_token: None,
                    ..base.clone()
                };
                continue;
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let (meta, decode) = match fetched.split(skip_managed_fields) {
            Ok(parts) => parts,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let continue_token = meta.continue_.filter(|c| !c.is_empty());
        let resource_version = meta.resource_version.unwrap_or_default();
        let last = continue_token.is_none();
        if let Some(token) = &continue_token {
            req.continue_token = Some(token.clone());
            req.resource_version = String::new();
        }
        let transform = transform.clone();
        let page_restarts = std::mem::take(&mut restarted);
        let parts = tx.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut items = Vec::with_capacity(PART);
            let mut restarted = page_restarts;
            let mut consumer_gone = false;
            decode(&mut |mut o| {
                if consumer_gone {
                    return;
                }
                if let Some(t) = &transform {
                    t(&mut o);
                }
                items.push(Arc::new(o));
                if items.len() == PART {
                    let part = Page {
                        items: std::mem::replace(&mut items, Vec::with_capacity(PART)),
                        continue_token: None,
                        resource_version: String::new(),
                        restarted: std::mem::take(&mut restarted),
                        partial: true,
                    };
                    // Waits while the consumer is busy: this is the back-pressure.
                    consumer_gone = parts.blocking_send(Ok(part)).is_err();
                }
            })?;
            Ok(Page {
                items,
                continue_token,
                resource_version,
                restarted,
                partial: false,
            })
        });
        if last {
            forward(task, &tx).await;
            return;
        }
        decoding = Some(task);
    }
}

/// Sends a decoded page on; false if the consumer is gone or decoding failed (error sent).
async fn forward<K>(
    task: tokio::task::JoinHandle<Result<Page<K>, kube::Error>>,
    tx: &mpsc::Sender<Result<Page<K>, kube::Error>>,
) -> bool {
    let page = match task.await {
        Ok(page) => page,
        Err(join) => Err(kube::Error::Service(
            format!("list page decoding task failed: {join}").into(),
        )),
    };
    let ok = page.is_ok();
    tx.send(page).await.is_ok() && ok
}

/// A fetched page: decoded by the source, or raw JSON to decode here.
enum Fetched<K: Clone> {
    Decoded(ObjectList<K>),
    Raw(RawPage<K>),
}

/// Decodes a page's objects, handing each to the callback as it is decoded.
type DecodeFn<K> = Box<dyn FnOnce(&mut dyn FnMut(K)) -> Result<(), kube::Error> + Send>;

/// Just the list metadata of a page (serde skips `items` without allocating).
#[derive(serde::Deserialize)]
struct ListHead {
    #[serde(default)]
    metadata: kube::core::ListMeta,
}

impl<K: Clone + Send + 'static> Fetched<K> {
    /// The page's metadata now, and the work to get its items (`skip_managed_fields`: raw
    /// pages leave `items[*].metadata.managedFields` undecoded).
    fn split(
        self,
        skip_managed_fields: bool,
    ) -> Result<(kube::core::ListMeta, DecodeFn<K>), kube::Error> {
        match self {
            Self::Decoded(list) => {
                let items = list.items;
                Ok((
                    list.metadata,
                    Box::new(move |each: &mut dyn FnMut(K)| {
                        items.into_iter().for_each(each);
                        Ok(())
                    }),
                ))
            }
            Self::Raw(raw) => {
                let head: ListHead =
                    serde_json::from_str(&raw.json).map_err(kube::Error::SerdeError)?;
                let decode = raw.decode;
                let mut json = raw.json;
                Ok((
                    head.metadata,
                    Box::new(move |each: &mut dyn FnMut(K)| {
                        if skip_managed_fields {
                            hide_managed_fields(&mut json);
                        }
                        decode(&json, each).map_err(kube::Error::SerdeError)
                    }),
                ))
            }
        }
    }
}

/// Renames every `items[*].metadata.managedFields` key of a list page to `managedFieldS` (same
/// length, in place), which `ObjectMeta`'s decoder skips as an unknown field without allocating.
/// Only object keys at exactly that path are touched; string contents and other fields are not.
/// What the reflector does to raw pages when the transform drops managedFields; public for
/// decoders of raw pages (the informer benchmark's decode-only baseline does the same work).
pub fn hide_managed_fields(json: &mut String) {
    for at in managed_fields_keys(json.as_bytes()) {
        json.replace_range(at..=at, "S");
    }
}

/// Byte offsets of the final `s` of each `items[*].metadata.managedFields` key of a list page.
fn managed_fields_keys(json: &[u8]) -> Vec<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum Frame {
        /// The page object.
        Page,
        /// Its `items` array.
        Items,
        /// One item.
        Item,
        /// An item's `metadata`.
        Meta,
        /// Any other object or array.
        Object,
        Array,
    }
    let mut stack: Vec<Frame> = Vec::with_capacity(16);
    let mut found = Vec::new();
    // The last object key seen, and whether the next string is a key.
    let mut key: &[u8] = b"";
    let mut expect_key = false;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < json.len() && json[j] != b'"' {
                    j += if json[j] == b'\\' { 2 } else { 1 };
                }
                let end = j.min(json.len());
                if expect_key {
                    key = &json[start..end];
                    expect_key = false;
                    if stack.last() == Some(&Frame::Meta) && key == b"managedFields" {
                        found.push(end - 1);
                    }
                }
                i = end + 1;
                continue;
            }
            b'{' => {
                let frame = match stack.last() {
                    None => Frame::Page,
                    Some(Frame::Items) => Frame::Item,
                    Some(Frame::Item) if key == b"metadata" => Frame::Meta,
                    _ => Frame::Object,
                };
                stack.push(frame);
                expect_key = true;
            }
            b'[' => {
                let frame = if stack.last() == Some(&Frame::Page) && key == b"items" {
                    Frame::Items
                } else {
                    Frame::Array
                };
                stack.push(frame);
                expect_key = false;
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
            }
            b',' => {
                expect_key = !matches!(stack.last(), Some(Frame::Items | Frame::Array) | None);
            }
            _ => {}
        }
        i += 1;
    }
    found
}

async fn fetch_page<L: ListWatch>(
    lw: &L,
    req: &ListRequest,
) -> Result<Fetched<L::Object>, kube::Error> {
    match lw.list_raw(req) {
        Some(raw) => raw.await.map(Fetched::Raw),
        None => lw.list(req).await.map(Fetched::Decoded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn list_pages_skip_managed_fields_of_items_only() {
        let page = r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"7","managedFields":"list-level"},
            "items":[
              {"metadata":{"name":"a","namespace":"ns","managedFields":[{"manager":"m","fieldsV1":{"f:data":{}}}],
                "annotations":{"note":"{\"managedFields\": [1]}","managedFields":"kept"}},
               "data":{"managedFields":"user data","k":"v\\"}},
              {"data":{"x":"]}"},"metadata":{"name":"b","managedFields":[]}}
            ]}"#;
        let mut json = page.to_string();
        hide_managed_fields(&mut json);
        let list: ObjectList<ConfigMap> = serde_json::from_str(&json).unwrap();
        let (a, b) = (&list.items[0], &list.items[1]);
        assert_eq!(a.metadata.managed_fields, None);
        assert_eq!(b.metadata.managed_fields, None);
        assert_eq!(b.metadata.name.as_deref(), Some("b"));
        // Same-named fields elsewhere, and string contents, are untouched.
        let ann = a.metadata.annotations.as_ref().unwrap();
        assert_eq!(ann["managedFields"], "kept");
        assert_eq!(ann["note"], r#"{"managedFields": [1]}"#);
        let data = a.data.as_ref().unwrap();
        assert_eq!(data["managedFields"], "user data");
        assert_eq!(data["k"], "v\\");
        assert!(
            json.contains(r#""metadata":{"resourceVersion":"7","managedFields":"list-level"}"#)
        );
        // Without the rename the same page decodes the entries.
        let full: ObjectList<ConfigMap> = serde_json::from_str(page).unwrap();
        assert_eq!(
            full.items[0].metadata.managed_fields.as_ref().map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn raw_pages_decode_item_by_item_and_report_bad_items() {
        let decode = |json: &str| {
            let mut names = Vec::new();
            let result = super::super::decode_items::<ConfigMap>(json, &mut |cm| {
                names.push(cm.metadata.name.unwrap_or_default())
            });
            (names, result.map_err(|e| e.to_string()))
        };
        let page = r#"{"kind":"ConfigMapList","items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"},"data":{"k":"v"}}],"metadata":{"resourceVersion":"9","continue":"c"},"extra":[1,{"x":2}]}"#;
        assert_eq!(decode(page), (vec!["a".into(), "b".into()], Ok(())));
        assert_eq!(decode(r#"{"items":null,"metadata":{}}"#), (vec![], Ok(())));
        assert_eq!(decode(r#"{"metadata":{}}"#), (vec![], Ok(())));
        // The objects before a bad one were handed on; the error names what was wrong.
        let (names, err) =
            decode(r#"{"items":[{"metadata":{"name":"a"}},{"metadata":{"name":7}}]}"#);
        assert_eq!(names, ["a"]);
        assert!(err.unwrap_err().contains("invalid type: integer `7`"));
        assert!(decode(r#"{"items":[]} trailing"#).1.is_err());
    }
}
