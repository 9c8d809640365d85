//! CRD conversion (`ConversionReview`): converting the objects kube-apiserver sends between the
//! versions of one kind, hub and spoke, with the user's `From` / `TryFrom` impls.
//!
//! The hub is one version type (usually the storage version); every other version (a spoke)
//! converts to and from it. An object goes spoke → hub → spoke, so n versions need 2(n−1)
//! conversions, not n². `metadata` is copied from the request untouched, as kube-apiserver
//! requires; a conversion error fails the review (kube-apiserver answers the client with it),
//! never the process.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::Arc;

use kube::Resource;
use kube::core::Status;
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

type ToHub<H> = Arc<dyn Fn(Value) -> Result<H, String> + Send + Sync>;
type FromHub<H> = Arc<dyn Fn(H) -> Result<Value, String> + Send + Sync>;

/// The versions of one kind and how each converts to and from the hub `H`.
///
/// ```
/// # use kubeforge::webhook::Conversion;
/// # fn demo<V2, V1>() where
/// #   V2: kube::Resource<DynamicType = ()> + serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
/// #   V1: kube::Resource<DynamicType = ()> + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static + From<V2> + Into<V2>,
/// # {
/// let conversion = Conversion::<V2>::hub().spoke::<V1>();
/// # }
/// ```
pub struct Conversion<H> {
    group: String,
    kind: String,
    plural: String,
    versions: BTreeMap<String, (ToHub<H>, FromHub<H>)>,
}

impl<H> std::fmt::Debug for Conversion<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conversion")
            .field("kind", &self.kind)
            .field("versions", &self.versions.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn decode<T: DeserializeOwned>(object: Value) -> Result<T, String> {
    serde_json::from_value(object).map_err(|e| e.to_string())
}

fn encode<T: Serialize>(object: &T) -> Result<Value, String> {
    serde_json::to_value(object).map_err(|e| e.to_string())
}

impl<H> Conversion<H>
where
    H: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// The conversion of `H`'s kind, with `H`'s own version as the hub.
    pub fn hub() -> Self {
        let mut versions = BTreeMap::new();
        let to: ToHub<H> = Arc::new(decode::<H>);
        let from: FromHub<H> = Arc::new(|hub: H| encode(&hub));
        versions.insert(H::api_version(&()).into_owned(), (to, from));
        Self {
            group: H::group(&()).into_owned(),
            kind: H::kind(&()).into_owned(),
            plural: H::plural(&()).into_owned(),
            versions,
        }
    }

    /// Adds version `V`, converted to the hub with `TryInto<H>` (or `Into`) and from it with
    /// `TryFrom<H>` (or `From`). Conversion errors are shown to the client.
    ///
    /// # Panics
    /// If `V` is another kind than the hub's: one conversion serves one kind.
    pub fn spoke<V>(mut self) -> Self
    where
        V: Resource<DynamicType = ()>
            + Serialize
            + DeserializeOwned
            + TryInto<H>
            + TryFrom<H>
            + 'static,
        <V as TryInto<H>>::Error: Display,
        <V as TryFrom<H>>::Error: Display,
    {
        assert_eq!(
            (V::group(&()), V::kind(&())),
            (self.group.as_str().into(), self.kind.as_str().into()),
            "Conversion::spoke: a version of another kind than the hub's"
        );
        let to: ToHub<H> = Arc::new(|object| {
            decode::<V>(object)?
                .try_into()
                .map_err(|e: <V as TryInto<H>>::Error| e.to_string())
        });
        let from: FromHub<H> = Arc::new(|hub| {
            let spoke = V::try_from(hub).map_err(|e| e.to_string())?;
            encode(&spoke)
        });
        self.versions
            .insert(V::api_version(&()).into_owned(), (to, from));
        self
    }

    /// Converts one object to `desired` (an apiVersion, `group/version`), keeping its
    /// `metadata` as it was. Public so that conversions can be unit-tested without a server.
    pub fn convert(&self, object: Value, desired: &str) -> Result<Value, String> {
        let from = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if from == desired {
            return Ok(object);
        }
        let lookup = |version: &str| {
            self.versions.get(version).ok_or_else(|| {
                let known: Vec<_> = self.versions.keys().map(String::as_str).collect();
                format!(
                    "{version:?} is not a version of {} this webhook converts (it converts {})",
                    self.kind,
                    known.join(", ")
                )
            })
        };
        let (to_hub, _) = lookup(&from)?;
        let (_, from_hub) = lookup(desired)?;
        let metadata = object.get("metadata").cloned();
        let mut converted = from_hub(to_hub(object)?)?;
        converted["apiVersion"] = desired.into();
        converted["kind"] = self.kind.as_str().into();
        match metadata {
            Some(metadata) => converted["metadata"] = metadata,
            None => {
                if let Some(map) = converted.as_object_mut() {
                    map.remove("metadata");
                }
            }
        }
        Ok(converted)
    }
}

/// A conversion of some kind, as the `/convert` endpoint holds it.
pub(crate) trait Converter: Send + Sync {
    /// `group/Kind`, the key objects are dispatched on.
    fn group_kind(&self) -> String;
    /// The CRD's name, `<plural>.<group>`.
    fn crd_name(&self) -> String;
    fn convert(&self, object: Value, desired: &str) -> Result<Value, String>;
}

impl<H> Converter for Conversion<H>
where
    H: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn group_kind(&self) -> String {
        format!("{}/{}", self.group, self.kind)
    }

    fn crd_name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }

    fn convert(&self, object: Value, desired: &str) -> Result<Value, String> {
        Conversion::convert(self, object, desired)
    }
}

/// The group of an apiVersion (`""` for `v1`).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// Answers one `ConversionReview` body: (HTTP status, body).
pub(crate) fn review(
    converters: &BTreeMap<String, Arc<dyn Converter>>,
    body: Value,
) -> (u16, Value) {
    let version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "ConversionReview" || version != "apiextensions.k8s.io/v1" {
        let message = format!(
            "expected a ConversionReview of apiextensions.k8s.io/v1, got kind {kind:?} of apiVersion {version:?}"
        );
        return (400, serde_json::json!({ "message": message }));
    }
    let request = serde_json::from_value::<ConversionReview>(body)
        .map_err(|e| e.to_string())
        .and_then(|review| {
            ConversionRequest::from_review(review)
                .map_err(|_| "the ConversionReview has no request".to_owned())
        });
    let request = match request {
        Ok(request) => request,
        Err(message) => return (400, serde_json::json!({ "message": message })),
    };
    let desired = request.desired_api_version.clone();
    let objects = request.objects.clone();
    let response = ConversionResponse::for_request(request);
    let converted: Result<Vec<Value>, String> = objects
        .into_iter()
        .map(|object| {
            let api_version = object
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            let object_kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
            let key = format!("{}/{object_kind}", group_of(api_version));
            let converter = converters.get(&key).ok_or_else(|| {
                format!("this webhook does not convert {object_kind} of {api_version:?}")
            })?;
            converter.convert(object, &desired)
        })
        .collect();
    let response = match converted {
        Ok(objects) => response.success(objects),
        Err(message) => {
            tracing::warn!(%message, "conversion failed");
            response.failure(Status::failure(&message, "ConversionFailed"))
        }
    };
    (
        200,
        serde_json::to_value(response.into_review()).unwrap_or_default(),
    )
}
