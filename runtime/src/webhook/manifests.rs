//! The manifests webhooks need, generated from what the code registered: the
//! `MutatingWebhookConfiguration` and `ValidatingWebhookConfiguration` (one webhook per handler,
//! its rules from the handler's kind) and each converted CRD's `spec.conversion` — reaching the
//! webhook server through a Service (deployed, kubebuilder's layout) or a URL with the dev CA
//! (local runs, tests: [`Webhooks::install`](super::Webhooks::install)).

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

/// How kube-apiserver reaches the webhook server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// Through a Service in the cluster (port 443 → the manager's webhook port); the CA is
    /// injected by cert-manager (see [`Endpoint::inject_ca_from`]).
    Service {
        /// The Service's name.
        name: String,
        /// Its namespace.
        namespace: String,
    },
    /// At a URL (`https://host:port`), trusting `ca_pem` — a server outside the cluster, as in
    /// local runs with [`DevCertificates`](super::DevCertificates).
    Url {
        /// `https://host:port`, without a path.
        base: String,
        /// The CA that signed the serving certificate (PEM).
        ca_pem: String,
    },
}

impl Endpoint {
    /// The `clientConfig` of a webhook at `path`.
    fn client_config(&self, path: &str) -> Value {
        match self {
            Endpoint::Service { name, namespace } => {
                json!({"service": {"name": name, "namespace": namespace, "path": path, "port": 443}})
            }
            Endpoint::Url { base, ca_pem } => json!({
                "url": format!("{}{path}", base.trim_end_matches('/')),
                "caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem),
            }),
        }
    }
}

/// What a webhook configuration says about the failure of a call (timeout, refused, bad answer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Refuse the request (kube-apiserver's default, and kubebuilder's).
    #[default]
    Fail,
    /// Let the request through as if the webhook had allowed it.
    Ignore,
}

/// How an admission webhook is declared to kube-apiserver: which operations it sees, what a
/// failed call means, how long a call may take. Defaults: CREATE and UPDATE, `Fail`, 10 s,
/// `sideEffects: None` — kubebuilder's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionOptions {
    pub(crate) operations: Vec<&'static str>,
    pub(crate) failure_policy: FailurePolicy,
    pub(crate) timeout: Duration,
    pub(crate) name: Option<String>,
    pub(crate) namespace_labels: Vec<(String, String)>,
}

impl Default for AdmissionOptions {
    fn default() -> Self {
        Self {
            operations: vec!["CREATE", "UPDATE"],
            failure_policy: FailurePolicy::Fail,
            timeout: Duration::from_secs(10),
            name: None,
            namespace_labels: Vec::new(),
        }
    }
}

impl AdmissionOptions {
    /// The operations the webhook sees, of `CREATE`, `UPDATE`, `DELETE`, `CONNECT`.
    ///
    /// # Panics
    /// On another operation name: a typo here would silently never call the webhook.
    pub fn operations(mut self, operations: &[&'static str]) -> Self {
        for op in operations {
            assert!(
                ["CREATE", "UPDATE", "DELETE", "CONNECT", "*"].contains(op),
                "AdmissionOptions::operations: {op:?} is not CREATE, UPDATE, DELETE, CONNECT or *"
            );
        }
        self.operations = operations.to_vec();
        self
    }

    /// What a failed call means.
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.failure_policy = policy;
        self
    }

    /// How long kube-apiserver waits for an answer (1–30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.clamp(Duration::from_secs(1), Duration::from_secs(30));
        self
    }

    /// Only objects in namespaces with this label (a `namespaceSelector`; e.g.
    /// `kubernetes.io/metadata.name` = one namespace). Repeat for several labels, all required.
    pub fn namespace_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.namespace_labels.push((key.into(), value.into()));
        self
    }

    /// The webhook's name in the configuration (default `v<kind>-<version>.<group>` for
    /// validating, `m…` for mutating ones).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// One registered admission webhook, as the manifests describe it.
#[derive(Clone, Debug)]
pub(crate) struct AdmissionHook {
    pub path: String,
    pub mutating: bool,
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    pub options: AdmissionOptions,
}

impl AdmissionHook {
    fn name(&self) -> String {
        if let Some(name) = &self.options.name {
            return name.clone();
        }
        let prefix = if self.mutating { 'm' } else { 'v' };
        let kind = self.kind.to_lowercase();
        // A webhook name needs three DNS labels at least.
        let domain = match self.group.as_str() {
            "" => "core.kubeforge.dev".to_owned(),
            g if g.contains('.') => g.to_owned(),
            g => format!("{g}.kubeforge.dev"),
        };
        format!("{prefix}{kind}-{}.{domain}", self.version)
    }

    fn webhook(&self, endpoint: &Endpoint) -> Value {
        let mut webhook = json!({
            "name": self.name(),
            "clientConfig": endpoint.client_config(&self.path),
            "rules": [{
                "operations": self.options.operations,
                "apiGroups": [self.group],
                "apiVersions": [self.version],
                "resources": [self.plural],
                "scope": if self.namespaced { "Namespaced" } else { "Cluster" },
            }],
            "failurePolicy": match self.options.failure_policy {
                FailurePolicy::Fail => "Fail",
                FailurePolicy::Ignore => "Ignore",
            },
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": self.options.timeout.as_secs(),
        });
        if !self.options.namespace_labels.is_empty() {
            let labels: serde_json::Map<String, Value> = self
                .options
                .namespace_labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect();
            webhook["namespaceSelector"] = json!({ "matchLabels": labels });
        }
        webhook
    }
}

/// The names of the two configurations (kubebuilder's, before kustomize's prefix).
pub const MUTATING_CONFIGURATION: &str = "mutating-webhook-configuration";
/// See [`MUTATING_CONFIGURATION`].
pub const VALIDATING_CONFIGURATION: &str = "validating-webhook-configuration";

/// The webhook configurations of `hooks` reached through `endpoint`, named `<prefix>` +
/// kubebuilder's names; none for a kind of webhook with no handler.
pub(crate) fn configurations(
    hooks: &[AdmissionHook],
    endpoint: &Endpoint,
    prefix: &str,
) -> Vec<Value> {
    let mut out = Vec::new();
    for (mutating, kind, name) in [
        (true, "MutatingWebhookConfiguration", MUTATING_CONFIGURATION),
        (
            false,
            "ValidatingWebhookConfiguration",
            VALIDATING_CONFIGURATION,
        ),
    ] {
        let webhooks: Vec<Value> = hooks
            .iter()
            .filter(|h| h.mutating == mutating)
            .map(|h| h.webhook(endpoint))
            .collect();
        if !webhooks.is_empty() {
            out.push(json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": kind,
                "metadata": {"name": format!("{prefix}{name}")},
                "webhooks": webhooks,
            }));
        }
    }
    out
}

/// A CRD's `spec.conversion` calling the webhook through `endpoint`.
pub(crate) fn conversion(endpoint: &Endpoint) -> Value {
    json!({
        "strategy": "Webhook",
        "webhook": {
            "clientConfig": endpoint.client_config(super::CONVERT_PATH),
            "conversionReviewVersions": ["v1"],
        },
    })
}
