//! Test support for the informer's unit tests: a scripted [`ListWatch`] server (answers list and
//! watch calls from queues and records each request) and ConfigMap fixtures. Compiled for tests
//! only.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectList, ObjectMeta, WatchEvent};
use kube::core::{ListMeta, TypeMeta};
use parking_lot::Mutex;

use super::list_watch::{ListRequest, ListWatch, WatchRequest, WatchStream};

type Events = Vec<Result<WatchEvent<ConfigMap>, kube::Error>>;

/// A scripted server: answers list and watch calls from queues and records every request.
/// An exhausted queue answers with a call that never completes.
#[derive(Default)]
pub(crate) struct Script {
    pub(crate) lists: Mutex<VecDeque<Result<ObjectList<ConfigMap>, kube::Error>>>,
    pub(crate) watches: Mutex<VecDeque<Result<Events, kube::Error>>>,
    pub(crate) list_reqs: Mutex<Vec<ListRequest>>,
    pub(crate) watch_reqs: Mutex<Vec<WatchRequest>>,
}

pub(crate) struct Shared(pub(crate) Arc<Script>);

impl ListWatch for Shared {
    type Object = ConfigMap;
    fn list<'a>(
        &'a self,
        req: &'a ListRequest,
    ) -> BoxFuture<'a, Result<ObjectList<ConfigMap>, kube::Error>> {
        self.0.list_reqs.lock().push(req.clone());
        let next = self.0.lists.lock().pop_front();
        async move {
            match next {
                Some(r) => r,
                None => std::future::pending().await,
            }
        }
        .boxed()
    }
    fn watch<'a>(
        &'a self,
        req: &'a WatchRequest,
    ) -> BoxFuture<'a, Result<WatchStream<ConfigMap>, kube::Error>> {
        self.0.watch_reqs.lock().push(req.clone());
        let next = self.0.watches.lock().pop_front();
        async move {
            match next {
                Some(Ok(events)) => Ok(futures::stream::iter(events).boxed()),
                Some(Err(e)) => Err(e),
                None => Ok(futures::stream::pending().boxed()),
            }
        }
        .boxed()
    }
    fn describe(&self) -> String {
        "configmaps (scripted)".into()
    }
}

pub(crate) fn cm(name: &str, rv: u32) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            resource_version: Some(rv.to_string()),
            ..Default::default()
        },
        ..Default::default()
    }
}

pub(crate) fn page(
    items: Vec<ConfigMap>,
    rv: u32,
    cont: Option<&str>,
) -> Result<ObjectList<ConfigMap>, kube::Error> {
    Ok(ObjectList {
        types: TypeMeta::default(),
        metadata: ListMeta {
            resource_version: Some(rv.to_string()),
            continue_: cont.map(Into::into),
            ..Default::default()
        },
        items,
    })
}
