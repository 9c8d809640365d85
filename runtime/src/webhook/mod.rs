//! Admission and conversion webhooks, served over TLS by the manager (controller-runtime's
//! `pkg/webhook`).
//!
//! Register handlers on the manager's [`Webhooks`] (`manager.webhooks()?`); the manager serves
//! them on `--webhook-bind-address` with the certificate in `--webhook-cert-dir` (`tls.crt`,
//! `tls.key`, re-read when they change) on every replica, leader or not, and `/readyz` fails
//! until the server is up.
//!
//! - **Validating** ([`Webhooks::validate`]) and **mutating** ([`Webhooks::mutate`]) admission
//!   for any kind: the handler gets the decoded [`AdmissionRequest`] (object, old object on
//!   update, operation, user, `dry_run`) and answers a [`Verdict`]. Served at kubebuilder's paths,
//!   `/validate-<group>-<version>-<kind>` and `/mutate-…` (dots of the group as dashes, kind in
//!   lower case).
//! - **Conversion** ([`Webhooks::convert`]) between the versions of a custom resource, hub and
//!   spoke through the user's `From`/`TryFrom` ([`Conversion`]), at `/convert`.
//!
//! Bad input never crashes the server: a body that is not a review gets a 400 naming what was
//! expected, an object that does not decode or a handler that panics gets a refusing review
//! saying so. Metrics (on the manager's `/metrics`): `controller_runtime_webhook_requests_total`
//! `{webhook, code}`, `controller_runtime_webhook_latency_seconds{webhook}` and
//! `controller_runtime_webhook_requests_in_flight{webhook}`, as controller-runtime names them.
//! [`DevCertificates`] makes a CA and serving certificate for local runs and tests.

mod admission;
mod certs;
mod conversion;
mod manifests;
mod tls;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::post;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use admission::Verdict;
pub use certs::DevCertificates;
pub use conversion::Conversion;
pub use kube::core::admission::{AdmissionRequest, Operation};
pub use manifests::{
    AdmissionOptions, Endpoint, FailurePolicy, MUTATING_CONFIGURATION, VALIDATING_CONFIGURATION,
};
pub use tls::{CERT_FILE, KEY_FILE};

use crate::manager::metrics::{Metrics, WebhookLabels, WebhookResultLabels};

/// Why the webhook server could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The webhook address could not be bound.
    #[error(
        "failed to bind the webhook server to {addr}: {source}; pass another --webhook-bind-address"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A certificate file could not be read (or written).
    #[error(
        "failed to read {path}: {source}; put the serving certificate and key in --webhook-cert-dir as tls.crt and tls.key (cert-manager's Secret layout)"
    )]
    CertFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The certificate files do not hold a usable certificate and key.
    #[error("the webhook certificate in {dir} is not usable: {what}")]
    BadCertificate {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// TLS setup failed.
    #[error("webhook TLS: {0}")]
    Tls(String),
    /// Two handlers were registered at one path.
    #[error("a webhook is already registered at {0}")]
    Duplicate(String),
}

/// Where and how the webhook server listens.
#[derive(Clone, Debug)]
pub struct WebhookServerConfig {
    /// The address (controller-runtime's default port is 9443; port 0 picks a free one).
    pub bind_address: SocketAddr,
    /// The directory holding `tls.crt` and `tls.key` (controller-runtime's default:
    /// `/tmp/k8s-webhook-server/serving-certs`).
    pub cert_dir: PathBuf,
}

impl Default for WebhookServerConfig {
    fn default() -> Self {
        Self {
            bind_address: SocketAddr::from(([0, 0, 0, 0], 9443)),
            cert_dir: PathBuf::from("/tmp/k8s-webhook-server/serving-certs"),
        }
    }
}

/// The webhooks of one process, served at their paths by one HTTPS server.
pub struct Webhooks {
    listener: Option<TcpListener>,
    addr: SocketAddr,
    cert_dir: PathBuf,
    admission: BTreeMap<String, admission::Admit>,
    hooks: Vec<manifests::AdmissionHook>,
    converters: BTreeMap<String, Arc<dyn conversion::Converter>>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("addr", &self.addr)
            .field("paths", &self.paths())
            .finish_non_exhaustive()
    }
}

/// The path kubebuilder serves an admission webhook of kind `K` at: `/<verb>-<group with dots as
/// dashes>-<version>-<kind in lower case>` (`/validate-apps-v1-deployment`, `/mutate--v1-pod`).
pub fn admission_path<K: Resource<DynamicType = ()>>(verb: &str) -> String {
    format!(
        "/{verb}-{}-{}-{}",
        K::group(&()).replace('.', "-"),
        K::version(&()),
        K::kind(&()).to_lowercase()
    )
}

/// Whether `K` is namespaced, from its `Resource::Scope`.
fn is_namespaced<K: Resource<Scope: 'static>>() -> bool {
    std::any::TypeId::of::<K::Scope>()
        == std::any::TypeId::of::<k8s_openapi::NamespaceResourceScope>()
}

/// A kind admission webhooks can be registered for: a Kubernetes resource type with serde.
pub trait Admissible:
    Resource<DynamicType = (), Scope: 'static>
    + DeserializeOwned
    + Serialize
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<K> Admissible for K where
    K: Resource<DynamicType = (), Scope: 'static>
        + DeserializeOwned
        + Serialize
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// The path conversion reviews are served at.
pub const CONVERT_PATH: &str = "/convert";

impl Webhooks {
    /// Binds `config.bind_address` and reads the certificate now, so that mistakes show at
    /// startup and [`local_addr`](Self::local_addr) is known (for port 0).
    pub fn bind(config: &WebhookServerConfig) -> Result<Self, WebhookError> {
        let bind = |source| WebhookError::Bind {
            addr: config.bind_address,
            source,
        };
        let std_listener = std::net::TcpListener::bind(config.bind_address).map_err(bind)?;
        std_listener.set_nonblocking(true).map_err(bind)?;
        let listener = TcpListener::from_std(std_listener).map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        Ok(Self {
            listener: Some(listener),
            addr,
            cert_dir: config.cert_dir.clone(),
            admission: BTreeMap::new(),
            hooks: Vec::new(),
            converters: BTreeMap::new(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every registered path.
    pub fn paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = self.admission.keys().cloned().collect();
        if !self.converters.is_empty() {
            paths.push(CONVERT_PATH.to_owned());
        }
        paths
    }

    /// Whether any webhook is registered.
    pub fn is_empty(&self) -> bool {
        self.admission.is_empty() && self.converters.is_empty()
    }

    /// Registers a validating webhook for `K` at [`admission_path::<K>("validate")`](admission_path),
    /// declared with the default [`AdmissionOptions`] (creates and updates, failure refuses).
    /// The handler sees what the configuration selects: creates, updates (with `old_object`),
    /// deletes (`object` empty, `old_object` set).
    pub fn validate<K, F, Fut>(&mut self, handler: F) -> Result<&mut Self, WebhookError>
    where
        K: Admissible,
        F: Fn(AdmissionRequest<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Verdict> + Send + 'static,
    {
        self.validate_with(AdmissionOptions::default(), handler)
    }

    /// [`validate`](Self::validate) with other options.
    pub fn validate_with<K, F, Fut>(
        &mut self,
        options: AdmissionOptions,
        handler: F,
    ) -> Result<&mut Self, WebhookError>
    where
        K: Admissible,
        F: Fn(AdmissionRequest<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Verdict> + Send + 'static,
    {
        self.add_admission::<K>(false, options, admission::endpoint(handler, false))
    }

    /// Registers a mutating (defaulting) webhook for `K` at
    /// [`admission_path::<K>("mutate")`](admission_path), with the default [`AdmissionOptions`].
    /// The handler returns the object as it should be with [`Verdict::with_object`]; the
    /// runtime answers with the JSON patch.
    pub fn mutate<K, F, Fut>(&mut self, handler: F) -> Result<&mut Self, WebhookError>
    where
        K: Admissible,
        F: Fn(AdmissionRequest<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Verdict> + Send + 'static,
    {
        self.mutate_with(AdmissionOptions::default(), handler)
    }

    /// [`mutate`](Self::mutate) with other options.
    pub fn mutate_with<K, F, Fut>(
        &mut self,
        options: AdmissionOptions,
        handler: F,
    ) -> Result<&mut Self, WebhookError>
    where
        K: Admissible,
        F: Fn(AdmissionRequest<K>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Verdict> + Send + 'static,
    {
        self.add_admission::<K>(true, options, admission::endpoint(handler, true))
    }

    fn add_admission<K: Admissible>(
        &mut self,
        mutating: bool,
        options: AdmissionOptions,
        admit: admission::Admit,
    ) -> Result<&mut Self, WebhookError> {
        let path = admission_path::<K>(if mutating { "mutate" } else { "validate" });
        if self.admission.contains_key(&path) {
            return Err(WebhookError::Duplicate(path));
        }
        self.admission.insert(path.clone(), admit);
        self.hooks.push(manifests::AdmissionHook {
            path,
            mutating,
            group: K::group(&()).into_owned(),
            version: K::version(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
            plural: K::plural(&()).into_owned(),
            namespaced: is_namespaced::<K>(),
            options,
        });
        Ok(self)
    }

    /// Registers the conversion of a multi-version kind, served at [`CONVERT_PATH`].
    pub fn convert<H>(&mut self, conversion: Conversion<H>) -> Result<&mut Self, WebhookError>
    where
        H: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        let key = conversion::Converter::group_kind(&conversion);
        if self.converters.contains_key(&key) {
            return Err(WebhookError::Duplicate(format!("{CONVERT_PATH} ({key})")));
        }
        self.converters.insert(key, Arc::new(conversion));
        Ok(self)
    }

    /// The manifests of the registered webhooks reached through `endpoint`: the webhook
    /// configurations (named `name_prefix` + kubebuilder's names), then for each converted
    /// kind a partial CRD holding its `spec.conversion` (to merge into the CRD). With
    /// `inject_ca_from` (`<namespace>/<Certificate>`), each carries cert-manager's
    /// `cert-manager.io/inject-ca-from` annotation, so cert-manager fills in the `caBundle`.
    pub fn manifests(
        &self,
        endpoint: &Endpoint,
        name_prefix: &str,
        inject_ca_from: Option<&str>,
    ) -> Vec<Value> {
        let mut docs = manifests::configurations(&self.hooks, endpoint, name_prefix);
        for converter in self.converters.values() {
            docs.push(serde_json::json!({
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": converter.crd_name()},
                "spec": {"conversion": manifests::conversion(endpoint)},
            }));
        }
        if let Some(certificate) = inject_ca_from {
            for doc in &mut docs {
                doc["metadata"]["annotations"] =
                    serde_json::json!({"cert-manager.io/inject-ca-from": certificate});
            }
        }
        docs
    }

    /// Registers the webhooks with the cluster for a server outside it (local runs, tests):
    /// applies the webhook configurations (named `name_prefix` + kubebuilder's) and sets the
    /// converted CRDs' `spec.conversion`, all reaching `endpoint` — typically
    /// [`Endpoint::Url`] with the [`DevCertificates`] CA. The CRDs must exist.
    pub async fn install(
        &self,
        client: &kube::Client,
        endpoint: &Endpoint,
        name_prefix: &str,
    ) -> Result<(), kube::Error> {
        use k8s_openapi::api::admissionregistration::v1::{
            MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
        };
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        use kube::api::{Api, Patch, PatchParams};
        let apply = PatchParams::apply("kubeforge-webhooks").force();
        for doc in self.manifests(endpoint, name_prefix, None) {
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            match doc["kind"].as_str() {
                Some("MutatingWebhookConfiguration") => {
                    Api::<MutatingWebhookConfiguration>::all(client.clone())
                        .patch(&name, &apply, &Patch::Apply(&doc))
                        .await?;
                }
                Some("ValidatingWebhookConfiguration") => {
                    Api::<ValidatingWebhookConfiguration>::all(client.clone())
                        .patch(&name, &apply, &Patch::Apply(&doc))
                        .await?;
                }
                _ => {
                    // A merge patch: the CRD's owner (its generator) keeps the rest.
                    let patch = serde_json::json!({"spec": doc["spec"]});
                    Api::<CustomResourceDefinition>::all(client.clone())
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// The router of every registered path, counting into `metrics`.
    fn router(&self, metrics: &Metrics) -> Router {
        let mut router = Router::new();
        for (path, admit) in &self.admission {
            let (admit, metrics, hook) = (admit.clone(), metrics.clone(), path.clone());
            router = router.route(
                path,
                post(move |body: Bytes| {
                    let (admit, metrics, hook) = (admit.clone(), metrics.clone(), hook.clone());
                    async move {
                        measured(&metrics, &hook, async move {
                            match parse(&body) {
                                Ok(review) => admit(review).await,
                                Err(reply) => reply,
                            }
                        })
                        .await
                    }
                }),
            );
        }
        if !self.converters.is_empty() {
            let (converters, metrics) = (Arc::new(self.converters.clone()), metrics.clone());
            router = router.route(
                CONVERT_PATH,
                post(move |body: Bytes| {
                    let (converters, metrics) = (converters.clone(), metrics.clone());
                    async move {
                        measured(&metrics, CONVERT_PATH, async move {
                            match parse(&body) {
                                Ok(review) => conversion::review(&converters, review),
                                Err(reply) => reply,
                            }
                        })
                        .await
                    }
                }),
            );
        }
        // A review holds the object and the old one, each up to etcd's 1.5 MiB.
        router.layer(DefaultBodyLimit::max(8 << 20))
    }

    /// Reads the certificate and returns the server, to run until `stop` fires; `serving` is
    /// set while it accepts connections. Errors (no certificate, a bad one) show here, before
    /// anything is served.
    pub(crate) fn server(
        mut self,
        metrics: &Metrics,
        serving: Arc<std::sync::atomic::AtomicBool>,
        stop: CancellationToken,
    ) -> Result<impl Future<Output = ()> + use<>, WebhookError> {
        let certs = tls::CertWatcher::load(&self.cert_dir)?;
        let config = tls::server_config(certs.clone())?;
        let router = self.router(metrics);
        let listener = self.listener.take();
        let (addr, paths) = (self.addr, self.paths());
        Ok(async move {
            let Some(listener) = listener else { return };
            tokio::spawn(certs.watch(stop.clone()));
            tracing::info!(%addr, ?paths, "serving webhooks");
            serving.store(true, std::sync::atomic::Ordering::SeqCst);
            tls::serve(listener, config, router, stop).await;
            serving.store(false, std::sync::atomic::Ordering::SeqCst);
        })
    }
}

/// The body as JSON, or the 400 answer.
fn parse(body: &[u8]) -> Result<Value, admission::Reply> {
    serde_json::from_slice(body).map_err(|e| {
        (
            400,
            serde_json::json!({"message": format!("the request body is not JSON: {e}")}),
        )
    })
}

/// Runs `answer`, counting it in the webhook metrics of `hook`, and makes the HTTP response.
async fn measured(
    metrics: &Metrics,
    hook: &str,
    answer: impl Future<Output = admission::Reply>,
) -> (StatusCode, axum::Json<Value>) {
    let labels = WebhookLabels {
        webhook: hook.to_owned(),
    };
    let _in_flight = InFlight::start(metrics.webhook.in_flight.get_or_create(&labels).clone());
    let started = Instant::now();
    let (code, body) = answer.await;
    metrics
        .webhook
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    metrics
        .webhook
        .requests
        .get_or_create(&WebhookResultLabels {
            webhook: hook.to_owned(),
            code: code.to_string(),
        })
        .inc();
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(body))
}

/// Counts a request in flight until dropped (also when the client goes away mid-answer).
struct InFlight(prometheus_client::metrics::gauge::Gauge);

impl InFlight {
    fn start(gauge: prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
