//! The reflector's view of the API server: one list call and one watch call ([`ListWatch`]), with
//! the two real sources over `kube` — [`ApiListWatch`] (whole objects) and [`MetadataListWatch`]
//! (`PartialObjectMeta`, for metadata-only informers). First step of the informer chain: the
//! [`super::reflector::Reflector`] calls it; tests implement it to script a server.

use std::fmt;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use kube::api::{ListParams, ObjectList, PartialObjectMeta, WatchEvent, WatchParams};
use kube::core::Request;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use super::options::Selector;

/// Parameters of one list request, as the reflector decided them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListRequest {
    /// `resourceVersion`: `"0"` (any cached version), `""` (quorum read) or a specific version.
    /// Not sent on continuation pages.
    pub resource_version: String,
    /// Page size; `None` lists everything in one response.
    pub limit: Option<u32>,
    /// The continue token of the previous page.
    pub continue_token: Option<String>,
    /// Label and field selectors.
    pub selector: Selector,
}

/// Parameters of one watch request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WatchRequest {
    /// Start after this version (`""` = now, or everything when streaming the initial list).
    pub resource_version: String,
    /// Server-side timeout in seconds.
    pub timeout_secs: u32,
    /// `allowWatchBookmarks`.
    pub allow_bookmarks: bool,
    /// `sendInitialEvents=true&resourceVersionMatch=NotOlderThan` (streaming list).
    pub send_initial_events: bool,
    /// Label and field selectors.
    pub selector: Selector,
}

/// A stream of watch events.
pub type WatchStream<K> = BoxStream<'static, Result<WatchEvent<K>, kube::Error>>;

/// The two calls a reflector makes. Implement it to script a server in tests.
pub trait ListWatch: Send + Sync + 'static {
    /// The decoded object type.
    type Object: Resource + Clone + fmt::Debug + Send + Sync + 'static;
    /// One list page.
    fn list<'a>(
        &'a self,
        req: &'a ListRequest,
    ) -> BoxFuture<'a, Result<ObjectList<Self::Object>, kube::Error>>;
    /// Opens a watch.
    fn watch<'a>(
        &'a self,
        req: &'a WatchRequest,
    ) -> BoxFuture<'a, Result<WatchStream<Self::Object>, kube::Error>>;
    /// A short name for logs and errors, e.g. `pods in namespace default`.
    fn describe(&self) -> String;
    /// One list page as undecoded JSON with its decoder, if the source can provide it: the
    /// reflector then decodes each page on a blocking thread while the next one downloads.
    /// The default (`None`) makes the reflector call [`list`](Self::list).
    fn list_raw<'a>(
        &'a self,
        _req: &'a ListRequest,
    ) -> Option<BoxFuture<'a, Result<RawPage<Self::Object>, kube::Error>>> {
        None
    }
}

/// An undecoded list page (see [`ListWatch::list_raw`]).
pub struct RawPage<K: Clone> {
    /// The response body.
    pub json: String,
    /// Decodes the objects of `json`'s `items` one after another, handing each to the callback
    /// as soon as it is decoded (see [`decode_items`]).
    pub decode: DecodeItems<K>,
}

/// A list page's item decoder: calls the callback with each object of the page's `items`.
pub type DecodeItems<K> = fn(&str, &mut dyn FnMut(K)) -> Result<(), serde_json::Error>;

/// Decodes the `items` of a JSON list one object at a time, calling `each` with every object as
/// soon as it is decoded, and skips the rest of the list: a consumer can queue the first objects
/// of a large list while the others are still text, rather than hold the whole list decoded.
pub fn decode_items<K: DeserializeOwned>(
    json: &str,
    each: &mut dyn FnMut(K),
) -> Result<(), serde_json::Error> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

    struct List<'a, K>(&'a mut dyn FnMut(K));
    struct Items<'a, K>(&'a mut dyn FnMut(K));

    impl<'de, K: DeserializeOwned> DeserializeSeed<'de> for List<'_, K> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de, K: DeserializeOwned> Visitor<'de> for List<'_, K> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list object with `items`")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == "items" {
                    map.next_value_seed(Items(&mut *self.0))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        }
    }
    impl<'de, K: DeserializeOwned> DeserializeSeed<'de> for Items<'_, K> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de, K: DeserializeOwned> Visitor<'de> for Items<'_, K> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of objects, or null")
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(item) = seq.next_element::<K>()? {
                (self.0)(item);
            }
            Ok(())
        }
    }

    let mut de = serde_json::Deserializer::from_str(json);
    List(each).deserialize(&mut de)?;
    de.end()
}

impl<K: Clone> fmt::Debug for RawPage<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawPage")
            .field("bytes", &self.json.len())
            .finish()
    }
}

/// List/watch of full objects through a `kube::Api<K>` (any namespace scoping it has).
pub struct ApiListWatch<K> {
    client: Client,
    url: String,
    describe: String,
    _k: std::marker::PhantomData<fn() -> K>,
}

impl<K> fmt::Debug for ApiListWatch<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiListWatch")
            .field("url", &self.url)
            .finish()
    }
}

impl<K: Resource + Clone> ApiListWatch<K> {
    /// List/watch what `api` addresses (all namespaces or one).
    pub fn new(api: &kube::Api<K>) -> Self {
        let url = api.resource_url().to_string();
        Self::from_url(api.clone().into_client(), url)
    }

    /// List/watch `K` in `namespace` (all namespaces if `None`) for the dynamic type `dt`.
    pub fn for_type(client: Client, dt: &K::DynamicType, namespace: Option<&str>) -> Self {
        Self::from_url(client, K::url_path(dt, namespace))
    }

    fn from_url(client: Client, url: String) -> Self {
        Self {
            describe: url.clone(),
            url,
            client,
            _k: std::marker::PhantomData,
        }
    }
}

/// List/watch of metadata only (`PartialObjectMetadata`) through a `kube::Api<K>`: the server
/// sends and the cache holds only `metadata`, for controllers that need no more.
pub struct MetadataListWatch<K> {
    inner: ApiListWatch<K>,
}

impl<K> fmt::Debug for MetadataListWatch<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataListWatch")
            .field("url", &self.inner.url)
            .finish()
    }
}

impl<K: Resource + Clone> MetadataListWatch<K> {
    /// Metadata list/watch of what `api` addresses.
    pub fn new(api: &kube::Api<K>) -> Self {
        Self {
            inner: ApiListWatch::new(api),
        }
    }

    /// Metadata list/watch of `K` in `namespace` (all if `None`) for the dynamic type `dt`.
    pub fn for_type(client: Client, dt: &K::DynamicType, namespace: Option<&str>) -> Self {
        Self {
            inner: ApiListWatch::for_type(client, dt, namespace),
        }
    }
}

fn list_params(req: &ListRequest) -> ListParams {
    ListParams {
        label_selector: req.selector.labels.clone(),
        field_selector: req.selector.fields.clone(),
        limit: req.limit,
        continue_token: req.continue_token.clone(),
        resource_version: Some(req.resource_version.clone()).filter(|rv| !rv.is_empty()),
        ..ListParams::default()
    }
}

fn watch_params(req: &WatchRequest) -> WatchParams {
    WatchParams {
        label_selector: req.selector.labels.clone(),
        field_selector: req.selector.fields.clone(),
        timeout: Some(req.timeout_secs),
        bookmarks: req.allow_bookmarks || req.send_initial_events,
        send_initial_events: req.send_initial_events,
    }
}

/// `kube` omits `resourceVersion=0` when a limit is set; client-go sends it (so a watch cache
/// may serve the first page). Put it back.
macro_rules! fix_list_rv {
    ($http_req:expr, $req:expr) => {{
        let mut http_req = $http_req;
        if $req.resource_version == "0" && $req.continue_token.is_none() && $req.limit.is_some() {
            if let Ok(uri) = format!("{}&resourceVersion=0", http_req.uri()).parse() {
                *http_req.uri_mut() = uri;
            }
        }
        http_req
    }};
}

impl<K> ListWatch for ApiListWatch<K>
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
{
    type Object = K;
    fn list<'a>(
        &'a self,
        req: &'a ListRequest,
    ) -> BoxFuture<'a, Result<ObjectList<K>, kube::Error>> {
        async move {
            let r = Request::new(&self.url)
                .list(&list_params(req))
                .map_err(kube::Error::BuildRequest)?;
            self.client.request(fix_list_rv!(r, req)).await
        }
        .boxed()
    }
    fn watch<'a>(
        &'a self,
        req: &'a WatchRequest,
    ) -> BoxFuture<'a, Result<WatchStream<K>, kube::Error>> {
        async move {
            let r = Request::new(&self.url)
                .watch(&watch_params(req), &req.resource_version)
                .map_err(kube::Error::BuildRequest)?;
            let s = self.client.request_events::<K>(r).await?;
            Ok(s.boxed())
        }
        .boxed()
    }
    fn describe(&self) -> String {
        self.describe.clone()
    }
    fn list_raw<'a>(
        &'a self,
        req: &'a ListRequest,
    ) -> Option<BoxFuture<'a, Result<RawPage<K>, kube::Error>>> {
        Some(
            async move {
                let r = Request::new(&self.url)
                    .list(&list_params(req))
                    .map_err(kube::Error::BuildRequest)?;
                let json = self.client.request_text(fix_list_rv!(r, req)).await?;
                Ok(RawPage {
                    json,
                    decode: decode_items::<K>,
                })
            }
            .boxed(),
        )
    }
}

impl<K> ListWatch for MetadataListWatch<K>
where
    K: Resource + Clone + fmt::Debug + Send + Sync + 'static,
{
    type Object = PartialObjectMeta<K>;
    fn list<'a>(
        &'a self,
        req: &'a ListRequest,
    ) -> BoxFuture<'a, Result<ObjectList<PartialObjectMeta<K>>, kube::Error>> {
        async move {
            let r = Request::new(&self.inner.url)
                .list_metadata(&list_params(req))
                .map_err(kube::Error::BuildRequest)?;
            self.inner.client.request(fix_list_rv!(r, req)).await
        }
        .boxed()
    }
    fn watch<'a>(
        &'a self,
        req: &'a WatchRequest,
    ) -> BoxFuture<'a, Result<WatchStream<PartialObjectMeta<K>>, kube::Error>> {
        async move {
            let r = Request::new(&self.inner.url)
                .watch_metadata(&watch_params(req), &req.resource_version)
                .map_err(kube::Error::BuildRequest)?;
            let s = self
                .inner
                .client
                .request_events::<PartialObjectMeta<K>>(r)
                .await?;
            Ok(s.boxed())
        }
        .boxed()
    }
    fn describe(&self) -> String {
        format!("{} (metadata only)", self.inner.describe)
    }
    fn list_raw<'a>(
        &'a self,
        req: &'a ListRequest,
    ) -> Option<BoxFuture<'a, Result<RawPage<PartialObjectMeta<K>>, kube::Error>>> {
        Some(
            async move {
                let r = Request::new(&self.inner.url)
                    .list_metadata(&list_params(req))
                    .map_err(kube::Error::BuildRequest)?;
                let json = self.inner.client.request_text(fix_list_rv!(r, req)).await?;
                Ok(RawPage {
                    json,
                    decode: decode_items::<PartialObjectMeta<K>>,
                })
            }
            .boxed(),
        )
    }
}
