//! The Ingress routing table: which backend endpoints a request for a host and path goes to,
//! and which certificate a TLS handshake for a host gets, computed from the Ingresses of our
//! IngressClasses and the Services, EndpointSlices and Secrets they name. Building it is pure
//! (no I/O, no clock), so the controller can rebuild it on any change and install it in the
//! proxy whole; everything wrong along the way is returned as a [`Problem`] for logs and Events.
//!
//! Matching, following the Ingress API and, where the API leaves it open, ingress-nginx:
//! - **Host precedence.** The most specific host wins first, then the path: an exact host's
//!   rules if any Ingress has rules for that host, else the wildcard host one label up, else
//!   the host-less rules. There is no falling through to a less specific host when no path of
//!   the chosen host matches — as in ingress-nginx, where each host is its own nginx `server`
//!   and host-less rules live in the catch-all server. Such requests get the default backend.
//! - **Paths.** Across all Ingresses of the chosen host the longest path wins; at equal length
//!   Exact beats Prefix beats ImplementationSpecific. Prefix matches whole `/`-separated
//!   elements, ignoring a trailing slash. ImplementationSpecific is a plain string prefix
//!   (`/foo` matches `/foobar`), which is what ingress-nginx's `location /foo` does without
//!   the regex annotation. The query string plays no part.
//! - **Conflicts.** The same host, path and path type in two Ingresses: the older Ingress
//!   (creation time, then namespace/name) keeps it; likewise for default backends and for two
//!   certificates for one host.
//! - **Backends.** Service port by number or name, then the ready, non-terminating endpoints
//!   of the Service's EndpointSlices on the slice port of the same name. A backend that
//!   cannot be resolved still claims its path — the proxy answers 503 — rather than letting
//!   the request fall through to some other rule.
//!
//! Left out compared with ingress-nginx: ExternalName Services, resource backends, annotations
//! (rewrites, regex paths, canaries, auth, redirects, timeouts, ...), the HTTP-to-HTTPS redirect
//! for TLS hosts, a default certificate, and URI normalisation before matching (dot segments,
//! percent-decoding, merged slashes are matched as sent).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::{Secret, Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, Ingress, IngressBackend, IngressClass, IngressServiceBackend, IngressTLS,
};
use rustls::sign::CertifiedKey;

use super::tls::{self, CERT_KEY, PRIVATE_KEY_KEY};

/// The annotation marking an IngressClass as the one for Ingresses that name no class.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
/// The deprecated annotation naming an Ingress's class, from before `spec.ingressClassName`.
pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// The label tying an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Which Ingresses are ours: those of IngressClasses whose `spec.controller` is `controller`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassSelection {
    /// Our controller name, e.g. `kubeforge.dev/ingress-controller`.
    pub controller: String,
}

/// An Ingress by namespace and name, as problems and the served set name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IngressKey {
    /// The Ingress's namespace.
    pub namespace: String,
    /// The Ingress's name.
    pub name: String,
}

impl IngressKey {
    fn of(ingress: &Ingress) -> Self {
        Self {
            namespace: ingress.metadata.namespace.clone().unwrap_or_default(),
            name: ingress.metadata.name.clone().unwrap_or_default(),
        }
    }
}

impl fmt::Display for IngressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// How a rule's path matches a request path; the order is the precedence at equal length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathKind {
    /// The whole path, case-sensitively, trailing slash significant.
    Exact,
    /// Whole `/`-separated elements from the start; a trailing slash is ignored.
    Prefix,
    /// A plain string prefix (ingress-nginx's non-regex `location`).
    ImplementationSpecific,
}

impl PathKind {
    fn parse(path_type: &str) -> Option<Self> {
        match path_type {
            "Exact" => Some(Self::Exact),
            "Prefix" => Some(Self::Prefix),
            "ImplementationSpecific" => Some(Self::ImplementationSpecific),
            _ => None,
        }
    }
}

impl fmt::Display for PathKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Where matching requests go: a Service port's ready endpoints, tried round-robin. One
/// `Backend` is shared by every rule naming the same Service port, so they share the rotation.
#[derive(Debug)]
pub struct Backend {
    service: String,
    endpoints: Vec<SocketAddr>,
    next: AtomicUsize,
}

impl Backend {
    fn new(service: String, endpoints: Vec<SocketAddr>) -> Self {
        Self {
            service,
            endpoints,
            next: AtomicUsize::new(0),
        }
    }

    /// The backend as `namespace/service:port`, for error pages and logs.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The ready endpoints, sorted; empty when the backend could not be resolved.
    pub fn endpoints(&self) -> &[SocketAddr] {
        &self.endpoints
    }

    /// The endpoints in the order one request should try them: each endpoint once, starting
    /// one further along than the previous request did.
    pub fn attempt_order(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        let n = self.endpoints.len();
        let start = if n == 0 {
            0
        } else {
            self.next.fetch_add(1, Ordering::Relaxed) % n
        };
        (0..n).map(move |i| self.endpoints[(start + i) % n])
    }
}

/// One path rule of one host.
#[derive(Debug)]
struct Route {
    path: String,
    kind: PathKind,
    backend: Arc<Backend>,
    ingress: IngressKey,
}

impl Route {
    fn matches(&self, path: &str) -> bool {
        match self.kind {
            PathKind::Exact => path == self.path,
            PathKind::Prefix => {
                self.path == "/"
                    || path
                        .strip_prefix(self.path.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
            PathKind::ImplementationSpecific => path.starts_with(self.path.as_str()),
        }
    }
}

/// A certificate and where it came from, to explain conflicts.
#[derive(Debug)]
struct CertEntry {
    key: Arc<CertifiedKey>,
    secret: String,
    ingress: IngressKey,
}

/// Hosts as they appear in rules and TLS entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HostPattern {
    Exact(String),
    /// `*.foo.com`, stored as `foo.com`.
    Wildcard(String),
    Any,
}

impl HostPattern {
    fn parse(host: Option<&str>) -> Self {
        match host.map(|h| h.trim_end_matches('.').to_ascii_lowercase()) {
            None => Self::Any,
            Some(h) if h.is_empty() => Self::Any,
            Some(h) => match h.strip_prefix("*.") {
                Some(parent) => Self::Wildcard(parent.to_owned()),
                None => Self::Exact(h),
            },
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(h) => f.write_str(h),
            Self::Wildcard(parent) => write!(f, "*.{parent}"),
            Self::Any => f.write_str("*"),
        }
    }
}

/// The routing table the proxy consults for every request and TLS handshake. Immutable once
/// built; the controller builds a new one on change and swaps it in.
#[derive(Debug, Default)]
pub struct RouteTable {
    exact: HashMap<String, Vec<Route>>,
    wildcard: HashMap<String, Vec<Route>>,
    any_host: Vec<Route>,
    default_backend: Option<(IngressKey, Arc<Backend>)>,
    certs_exact: HashMap<String, CertEntry>,
    certs_wildcard: HashMap<String, CertEntry>,
    served: BTreeSet<IngressKey>,
}

/// The host of a `Host` header or URI authority as rules name hosts: port and trailing dot
/// removed, lower case. IPv6 literals keep their brackets.
pub fn normalize_host(host: &str) -> String {
    let without_port = if host.starts_with('[') {
        host.find(']').map_or(host, |end| &host[..=end])
    } else {
        host.rsplit_once(':').map_or(host, |(h, _port)| h)
    };
    without_port.trim_end_matches('.').to_ascii_lowercase()
}

/// The parent a wildcard host would name: `bar.foo.com` → `foo.com` (`*.foo.com` matches
/// exactly one label).
fn wildcard_parent(host: &str) -> Option<&str> {
    match host.split_once('.') {
        Some((label, parent)) if !label.is_empty() && !parent.is_empty() => Some(parent),
        _ => None,
    }
}

impl RouteTable {
    /// Builds the table from the cluster's objects (any namespaces; objects of other
    /// namespaces than an Ingress's are never used for it). Ingresses not of our classes are
    /// left out entirely; ours are routed as far as they can be, with a [`Problem`] for each
    /// thing that could not be.
    pub fn build(
        class: &ClassSelection,
        ingresses: &[Ingress],
        classes: &[IngressClass],
        services: &[Service],
        slices: &[EndpointSlice],
        secrets: &[Secret],
    ) -> (Self, Vec<Problem>) {
        let mut ours: Vec<&Ingress> = ingresses
            .iter()
            .filter(|ingress| is_ours(class, ingress, classes))
            .collect();
        // Oldest first: on conflicts the first one seen keeps the route.
        ours.sort_by(|a, b| {
            (&a.metadata.creation_timestamp, IngressKey::of(a))
                .cmp(&(&b.metadata.creation_timestamp, IngressKey::of(b)))
        });
        let mut builder = Builder {
            table: Self::default(),
            problems: Vec::new(),
            resolver: Resolver {
                services,
                slices,
                secrets,
                backends: HashMap::new(),
                certs: HashMap::new(),
            },
        };
        for ingress in ours {
            builder.add_ingress(ingress);
        }
        let Builder {
            mut table,
            problems,
            ..
        } = builder;
        for routes in table
            .exact
            .values_mut()
            .chain(table.wildcard.values_mut())
            .chain(std::iter::once(&mut table.any_host))
        {
            routes.sort_by(|a, b| (b.path.len(), a.kind).cmp(&(a.path.len(), b.kind)));
        }
        (table, problems)
    }

    /// The backend for a request: `host` as sent (`Host` header or authority, port allowed),
    /// `path` without the query. `None` means 404.
    pub fn route(&self, host: &str, path: &str) -> Option<&Arc<Backend>> {
        let host = normalize_host(host);
        let routes = match self.exact.get(&host) {
            Some(routes) => routes,
            None => wildcard_parent(&host)
                .and_then(|parent| self.wildcard.get(parent))
                .unwrap_or(&self.any_host),
        };
        routes
            .iter()
            .find(|route| route.matches(path))
            .map(|route| &route.backend)
            .or(self.default_backend.as_ref().map(|(_, backend)| backend))
    }

    /// The certificate for a TLS handshake naming `server_name`: the exact host's, else the
    /// wildcard one label up.
    pub fn certificate_for(&self, server_name: &str) -> Option<Arc<CertifiedKey>> {
        let name = normalize_host(server_name);
        self.certs_exact
            .get(&name)
            .or_else(|| wildcard_parent(&name).and_then(|p| self.certs_wildcard.get(p)))
            .map(|entry| entry.key.clone())
    }

    /// The Ingresses this table serves — ours, whether or not all of their rules could be
    /// routed — so the controller writes `status.loadBalancer` on exactly these.
    pub fn served(&self) -> &BTreeSet<IngressKey> {
        &self.served
    }
}

/// Whether `ingress` belongs to one of our IngressClasses: by the deprecated annotation, else
/// by `spec.ingressClassName`, else (no class at all) if one of ours is the default class.
fn is_ours(class: &ClassSelection, ingress: &Ingress, classes: &[IngressClass]) -> bool {
    let ours = |class_name: &str| {
        classes.iter().any(|c| {
            c.metadata.name.as_deref() == Some(class_name)
                && c.spec.as_ref().and_then(|s| s.controller.as_deref())
                    == Some(class.controller.as_str())
        })
    };
    let annotated = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION));
    let named = ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_ref());
    match annotated.or(named) {
        Some(class_name) => ours(class_name),
        None => classes.iter().any(|c| {
            c.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(class.controller.as_str())
                && c.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                    .is_some_and(|v| v == "true")
        }),
    }
}

/// The table under construction and the problems found so far.
struct Builder<'a> {
    table: RouteTable,
    problems: Vec<Problem>,
    resolver: Resolver<'a>,
}

impl Builder<'_> {
    fn problem(&mut self, ingress: &IngressKey, kind: ProblemKind) {
        // An Ingress's problems are consecutive: only its own need checking for repeats.
        let repeated = self
            .problems
            .iter()
            .rev()
            .take_while(|p| p.ingress == *ingress)
            .any(|p| p.kind == kind);
        if !repeated {
            self.problems.push(Problem {
                ingress: ingress.clone(),
                kind,
            });
        }
    }

    fn add_ingress(&mut self, ingress: &Ingress) {
        let key = IngressKey::of(ingress);
        self.table.served.insert(key.clone());
        let Some(spec) = &ingress.spec else { return };
        if let Some(default) = &spec.default_backend {
            let backend = self.backend(&key, default);
            match &self.table.default_backend {
                None => self.table.default_backend = Some((key.clone(), backend)),
                Some((winner, _)) => {
                    let winner = winner.clone();
                    self.problem(&key, ProblemKind::DuplicateDefaultBackend { winner });
                }
            }
        }
        for rule in spec.rules.iter().flatten() {
            let host = HostPattern::parse(rule.host.as_deref());
            let paths = rule
                .http
                .as_ref()
                .map(|h| h.paths.as_slice())
                .unwrap_or(&[]);
            self.host_routes(&host); // a host with rules is its own tier even with no paths
            for path in paths {
                self.add_path(&key, &host, path);
            }
        }
        for entry in spec.tls.iter().flatten() {
            self.add_tls(&key, entry);
        }
    }

    fn host_routes(&mut self, host: &HostPattern) -> &mut Vec<Route> {
        match host {
            HostPattern::Exact(h) => self.table.exact.entry(h.clone()).or_default(),
            HostPattern::Wildcard(p) => self.table.wildcard.entry(p.clone()).or_default(),
            HostPattern::Any => &mut self.table.any_host,
        }
    }

    fn add_path(&mut self, key: &IngressKey, host: &HostPattern, rule: &HTTPIngressPath) {
        let raw = rule.path.as_deref().unwrap_or("/");
        let Some(kind) = PathKind::parse(&rule.path_type) else {
            let (path, path_type) = (raw.to_owned(), rule.path_type.clone());
            return self.problem(key, ProblemKind::UnknownPathType { path, path_type });
        };
        if !raw.starts_with('/') {
            let path = raw.to_owned();
            return self.problem(key, ProblemKind::InvalidPath { path });
        }
        let path = match kind {
            PathKind::Prefix if raw.len() > 1 => raw.trim_end_matches('/'),
            _ => raw,
        };
        let path = if path.is_empty() { "/" } else { path }.to_owned();
        let taken = self
            .host_routes(host)
            .iter()
            .find(|r| r.path == path && r.kind == kind)
            .map(|r| r.ingress.clone());
        if let Some(winner) = taken {
            let host = host.to_string();
            let problem = ProblemKind::DuplicatePath {
                host,
                path,
                kind,
                winner,
            };
            return self.problem(key, problem);
        }
        let backend = self.backend(key, &rule.backend);
        self.host_routes(host).push(Route {
            path,
            kind,
            backend,
            ingress: key.clone(),
        });
    }

    /// The backend for `spec`, reporting why it has no endpoints if it has none.
    fn backend(&mut self, key: &IngressKey, spec: &IngressBackend) -> Arc<Backend> {
        let (backend, problem) = self.resolver.backend(&key.namespace, spec);
        if let Some(kind) = problem {
            self.problem(key, kind);
        }
        backend
    }

    fn add_tls(&mut self, key: &IngressKey, entry: &IngressTLS) {
        let hosts = entry.hosts.as_deref().unwrap_or(&[]);
        let Some(secret_name) = &entry.secret_name else {
            let hosts = hosts.to_vec();
            return self.problem(key, ProblemKind::TlsWithoutSecret { hosts });
        };
        let secret = format!("{}/{secret_name}", key.namespace);
        if hosts.is_empty() {
            return self.problem(key, ProblemKind::TlsWithoutHosts { secret });
        }
        let cert = match self.resolver.certificate(&key.namespace, secret_name) {
            Ok(cert) => cert,
            Err(reason) => {
                let problem = match reason {
                    None => ProblemKind::SecretNotFound { secret },
                    Some(reason) => ProblemKind::BadSecret { secret, reason },
                };
                return self.problem(key, problem);
            }
        };
        for host in hosts {
            let pattern = HostPattern::parse(Some(host));
            let certs = match &pattern {
                HostPattern::Exact(h) => self.table.certs_exact.entry(h.clone()),
                HostPattern::Wildcard(p) => self.table.certs_wildcard.entry(p.clone()),
                HostPattern::Any => continue,
            };
            match certs {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(CertEntry {
                        key: cert.clone(),
                        secret: secret.clone(),
                        ingress: key.clone(),
                    });
                }
                std::collections::hash_map::Entry::Occupied(taken)
                    if taken.get().secret != secret =>
                {
                    let taken = taken.get();
                    let problem = ProblemKind::DuplicateCertificate {
                        host: pattern.to_string(),
                        secret: taken.secret.clone(),
                        winner: taken.ingress.clone(),
                    };
                    self.problem(key, problem);
                }
                std::collections::hash_map::Entry::Occupied(_) => {}
            }
        }
    }
}

/// Looks up Services, endpoints and Secrets, remembering what it resolved so that rules
/// naming the same Service port share one [`Backend`] and a Secret is parsed once.
struct Resolver<'a> {
    services: &'a [Service],
    slices: &'a [EndpointSlice],
    secrets: &'a [Secret],
    backends: HashMap<(String, String), (Arc<Backend>, Option<ProblemKind>)>,
    /// `Err(None)`: not found; `Err(Some(why))`: unusable.
    certs: HashMap<(String, String), Result<Arc<CertifiedKey>, Option<String>>>,
}

impl Resolver<'_> {
    fn backend(
        &mut self,
        namespace: &str,
        spec: &IngressBackend,
    ) -> (Arc<Backend>, Option<ProblemKind>) {
        let (label, resolved) = match (&spec.service, &spec.resource) {
            (Some(service), _) => {
                let port = match &service.port {
                    Some(p) => p
                        .name
                        .clone()
                        .or(p.number.map(|n| n.to_string()))
                        .unwrap_or_default(),
                    None => String::new(),
                };
                let label = format!("{namespace}/{}:{port}", service.name);
                (label, Ok(service))
            }
            (None, Some(resource)) => {
                let kind = resource.kind.clone();
                let label = format!("{namespace}/{kind}/{}", resource.name);
                let name = resource.name.clone();
                (label, Err(ProblemKind::ResourceBackend { kind, name }))
            }
            (None, None) => (String::new(), Err(ProblemKind::EmptyBackend)),
        };
        let cache_key = (namespace.to_owned(), label.clone());
        if let Some((backend, problem)) = self.backends.get(&cache_key) {
            return (backend.clone(), problem.clone());
        }
        let (endpoints, problem) = match resolved {
            Ok(service) => match self.endpoints(namespace, service, &label) {
                Ok(endpoints) => (endpoints, None),
                Err(problem) => (Vec::new(), Some(problem)),
            },
            Err(problem) => (Vec::new(), Some(problem)),
        };
        let backend = Arc::new(Backend::new(label, endpoints));
        self.backends
            .insert(cache_key, (backend.clone(), problem.clone()));
        (backend, problem)
    }

    /// The ready endpoints of a Service port, or why there are none.
    fn endpoints(
        &self,
        namespace: &str,
        backend: &IngressServiceBackend,
        label: &str,
    ) -> Result<Vec<SocketAddr>, ProblemKind> {
        let service_name = format!("{namespace}/{}", backend.name);
        let service = self
            .services
            .iter()
            .find(|s| {
                s.metadata.namespace.as_deref() == Some(namespace)
                    && s.metadata.name.as_deref() == Some(backend.name.as_str())
            })
            .ok_or_else(|| ProblemKind::ServiceNotFound {
                service: service_name.clone(),
            })?;
        let spec = service.spec.as_ref();
        if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
            return Err(ProblemKind::ExternalNameService {
                service: service_name,
            });
        }
        let wanted = backend.port.as_ref();
        let port = spec
            .and_then(|s| s.ports.as_ref())
            .into_iter()
            .flatten()
            .find(|p| match wanted {
                Some(w) if w.name.is_some() => p.name == w.name,
                Some(w) => Some(p.port) == w.number,
                None => false,
            })
            .ok_or_else(|| ProblemKind::PortNotFound {
                service: service_name,
                port: label.rsplit(':').next().unwrap_or_default().to_owned(),
            })?;
        let endpoints = self.ready_endpoints(namespace, &backend.name, port);
        if endpoints.is_empty() {
            return Err(ProblemKind::NoReadyEndpoints {
                backend: label.to_owned(),
            });
        }
        Ok(endpoints)
    }

    /// The ready, non-terminating addresses of the Service's slices on `port`'s slice port
    /// (the slice port named like the Service port; unnamed matches unnamed), deduplicated.
    fn ready_endpoints(
        &self,
        namespace: &str,
        service: &str,
        port: &ServicePort,
    ) -> Vec<SocketAddr> {
        let mut found = BTreeSet::new();
        let slices = self.slices.iter().filter(|slice| {
            slice.metadata.namespace.as_deref() == Some(namespace)
                && slice
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    .is_some_and(|s| s == service)
                && matches!(slice.address_type.as_str(), "IPv4" | "IPv6")
        });
        for slice in slices {
            let slice_port = slice.ports.iter().flatten().find(|p| {
                p.name.as_deref().unwrap_or("") == port.name.as_deref().unwrap_or("")
                    && p.protocol.as_deref().unwrap_or("TCP") == "TCP"
            });
            let Some(number) = slice_port
                .and_then(|p| p.port)
                .and_then(|n| u16::try_from(n).ok())
            else {
                continue;
            };
            for endpoint in slice.endpoints.iter().flatten() {
                let conditions = endpoint.conditions.as_ref();
                let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
                let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
                // All addresses of an endpoint are the same Pod; the API says to use the first.
                let address = endpoint
                    .addresses
                    .first()
                    .and_then(|a| a.parse::<IpAddr>().ok());
                if let (true, false, Some(ip)) = (ready, terminating, address) {
                    found.insert(SocketAddr::new(ip, number));
                }
            }
        }
        found.into_iter().collect()
    }

    fn certificate(
        &mut self,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<CertifiedKey>, Option<String>> {
        let cache_key = (namespace.to_owned(), name.to_owned());
        if let Some(cached) = self.certs.get(&cache_key) {
            return cached.clone();
        }
        let parsed = match self.secrets.iter().find(|s| {
            s.metadata.namespace.as_deref() == Some(namespace)
                && s.metadata.name.as_deref() == Some(name)
        }) {
            None => Err(None),
            Some(secret) => parse_tls_secret(secret.data.as_ref()).map_err(Some),
        };
        self.certs.insert(cache_key, parsed.clone());
        parsed
    }
}

/// The certificate of a Secret's `tls.crt` and `tls.key`; any Secret type is accepted (as
/// ingress-nginx does) as long as both keys are there.
fn parse_tls_secret(
    data: Option<&BTreeMap<String, k8s_openapi::ByteString>>,
) -> Result<Arc<CertifiedKey>, String> {
    let get = |key: &str| {
        data.and_then(|d| d.get(key))
            .map(|b| b.0.as_slice())
            .ok_or_else(|| format!("has no {key}"))
    };
    let (cert, key) = (get(CERT_KEY)?, get(PRIVATE_KEY_KEY)?);
    tls::certified_key(cert, key)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// Something in one of our Ingresses that could not be served as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Ingress {ingress}: {kind}")]
pub struct Problem {
    /// The Ingress at fault (where an Event would go).
    pub ingress: IngressKey,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// What is wrong with an Ingress; the message names the objects involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    /// The backend's Service does not exist; its paths answer 503.
    #[error("service {service} not found")]
    ServiceNotFound {
        /// `namespace/name`.
        service: String,
    },
    /// The Service has no port with that number or name.
    #[error("service {service} has no port {port}")]
    PortNotFound {
        /// `namespace/name`.
        service: String,
        /// The port number or name the Ingress asked for.
        port: String,
    },
    /// ExternalName Services are not proxied.
    #[error("service {service} is of type ExternalName, which this controller does not proxy to")]
    ExternalNameService {
        /// `namespace/name`.
        service: String,
    },
    /// The Service port has no ready endpoints (yet); its paths answer 503 until it has.
    #[error("backend {backend} has no ready endpoints")]
    NoReadyEndpoints {
        /// `namespace/service:port`.
        backend: String,
    },
    /// `backend.resource` is not supported.
    #[error("backend {kind} {name} is a resource backend, which this controller does not support")]
    ResourceBackend {
        /// The resource's kind.
        kind: String,
        /// The resource's name.
        name: String,
    },
    /// A backend naming neither a Service nor a resource.
    #[error("a backend names neither a service nor a resource")]
    EmptyBackend,
    /// A path type other than Exact, Prefix and ImplementationSpecific; the path is skipped.
    #[error("path {path:?} has unknown pathType {path_type:?}; path ignored")]
    UnknownPathType {
        /// The path.
        path: String,
        /// The path type as written.
        path_type: String,
    },
    /// A path not starting with `/`; skipped.
    #[error("path {path:?} does not start with '/'; path ignored")]
    InvalidPath {
        /// The path.
        path: String,
    },
    /// The host, path and path type are already routed by an older Ingress, which keeps them.
    #[error(
        "host {host} path {path:?} ({kind}) is already routed by older Ingress {winner}; ignored"
    )]
    DuplicatePath {
        /// The host pattern (`*` for no host).
        host: String,
        /// The path.
        path: String,
        /// Its path type.
        kind: PathKind,
        /// The Ingress that keeps the route.
        winner: IngressKey,
    },
    /// Another, older Ingress already provides the default backend.
    #[error("defaultBackend ignored: older Ingress {winner} already sets one")]
    DuplicateDefaultBackend {
        /// The Ingress whose default backend is used.
        winner: IngressKey,
    },
    /// The TLS Secret does not exist; its hosts have no certificate.
    #[error("TLS secret {secret} not found")]
    SecretNotFound {
        /// `namespace/name`.
        secret: String,
    },
    /// The TLS Secret cannot be used; its hosts have no certificate.
    #[error("TLS secret {secret} {reason}")]
    BadSecret {
        /// `namespace/name`.
        secret: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A TLS entry without hosts (meaning "the default certificate"), which is not supported.
    #[error(
        "TLS entry with secret {secret} lists no hosts; a default certificate is not supported"
    )]
    TlsWithoutHosts {
        /// `namespace/name`.
        secret: String,
    },
    /// A TLS entry without a secret.
    #[error("TLS entry for hosts {hosts:?} names no secret")]
    TlsWithoutSecret {
        /// The entry's hosts.
        hosts: Vec<String>,
    },
    /// The host already has a certificate from a different Secret of an older Ingress.
    #[error(
        "host {host} already has the certificate of secret {secret} from older Ingress {winner}; ignored"
    )]
    DuplicateCertificate {
        /// The host.
        host: String,
        /// The Secret whose certificate is served.
        secret: String,
        /// The Ingress that named it.
        winner: IngressKey,
    },
}

impl ProblemKind {
    /// A CamelCase reason for a Kubernetes Event.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ServiceNotFound { .. } => "ServiceNotFound",
            Self::PortNotFound { .. } => "ServicePortNotFound",
            Self::ExternalNameService { .. } => "ExternalNameUnsupported",
            Self::NoReadyEndpoints { .. } => "NoReadyEndpoints",
            Self::ResourceBackend { .. } => "ResourceBackendUnsupported",
            Self::EmptyBackend => "EmptyBackend",
            Self::UnknownPathType { .. } => "UnknownPathType",
            Self::InvalidPath { .. } => "InvalidPath",
            Self::DuplicatePath { .. } => "DuplicatePath",
            Self::DuplicateDefaultBackend { .. } => "DuplicateDefaultBackend",
            Self::SecretNotFound { .. } => "TLSSecretNotFound",
            Self::BadSecret { .. } => "BadTLSSecret",
            Self::TlsWithoutHosts { .. } => "TLSWithoutHosts",
            Self::TlsWithoutSecret { .. } => "TLSWithoutSecret",
            Self::DuplicateCertificate { .. } => "DuplicateCertificate",
        }
    }
}

/// Kubernetes objects for tests of the table and the proxy.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;

    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{
        Secret, Service, ServicePort, ServiceSpec, TypedLocalObjectReference,
    };
    use k8s_openapi::api::discovery::v1::{
        Endpoint, EndpointConditions, EndpointPort, EndpointSlice,
    };
    use k8s_openapi::api::networking::v1::{
        HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressClass,
        IngressClassSpec, IngressRule, IngressServiceBackend, IngressSpec, IngressTLS,
        ServiceBackendPort,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::{ClassSelection, Problem, RouteTable};

    pub const CONTROLLER: &str = "kubeforge.dev/ingress-controller";
    pub const CLASS: &str = "kubeforge";
    pub const NS: &str = "default";

    pub fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..ObjectMeta::default()
        }
    }

    pub fn class(name: &str, controller: &str, default: bool) -> IngressClass {
        let mut metadata = meta(name);
        metadata.namespace = None;
        if default {
            metadata.annotations = Some(BTreeMap::from([(
                super::DEFAULT_CLASS_ANNOTATION.to_owned(),
                "true".to_owned(),
            )]));
        }
        IngressClass {
            metadata,
            spec: Some(IngressClassSpec {
                controller: Some(controller.into()),
                parameters: None,
            }),
        }
    }

    /// A backend on port 80 of `service`.
    pub fn backend(service: &str) -> IngressBackend {
        backend_port(service, Some(80), None)
    }

    pub fn backend_port(service: &str, number: Option<i32>, name: Option<&str>) -> IngressBackend {
        IngressBackend {
            service: Some(IngressServiceBackend {
                name: service.into(),
                port: Some(ServiceBackendPort {
                    name: name.map(Into::into),
                    number,
                }),
            }),
            resource: None,
        }
    }

    pub fn resource_backend(kind: &str, name: &str) -> IngressBackend {
        IngressBackend {
            service: None,
            resource: Some(TypedLocalObjectReference {
                api_group: Some("example.com".into()),
                kind: kind.into(),
                name: name.into(),
            }),
        }
    }

    /// Builds an Ingress of our class in [`NS`].
    pub struct IngressBuilder(Ingress);

    pub fn ingress(name: &str) -> IngressBuilder {
        IngressBuilder(Ingress {
            metadata: meta(name),
            spec: Some(IngressSpec {
                ingress_class_name: Some(CLASS.into()),
                ..IngressSpec::default()
            }),
            status: None,
        })
    }

    impl IngressBuilder {
        fn spec(&mut self) -> &mut IngressSpec {
            self.0.spec.get_or_insert_with(IngressSpec::default)
        }

        pub fn class(mut self, class: Option<&str>) -> Self {
            self.spec().ingress_class_name = class.map(Into::into);
            self
        }

        pub fn annotation(mut self, key: &str, value: &str) -> Self {
            let annotations = self.0.metadata.annotations.get_or_insert_default();
            annotations.insert(key.into(), value.into());
            self
        }

        pub fn created(mut self, second: i64) -> Self {
            let at = k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + second).unwrap();
            self.0.metadata.creation_timestamp = Some(Time(at));
            self
        }

        /// A rule whose paths are `(path, pathType, service)`, services on port 80.
        pub fn rule(self, host: Option<&str>, paths: &[(&str, &str, &str)]) -> Self {
            let paths = paths
                .iter()
                .map(|(path, kind, service)| (*path, *kind, backend(service)))
                .collect::<Vec<_>>();
            self.rule_backends(host, paths)
        }

        pub fn rule_backends(
            mut self,
            host: Option<&str>,
            paths: Vec<(&str, &str, IngressBackend)>,
        ) -> Self {
            let paths = paths
                .into_iter()
                .map(|(path, kind, backend)| HTTPIngressPath {
                    path: Some(path.into()),
                    path_type: kind.into(),
                    backend,
                })
                .collect();
            let rule = IngressRule {
                host: host.map(Into::into),
                http: Some(HTTPIngressRuleValue { paths }),
            };
            self.spec().rules.get_or_insert_default().push(rule);
            self
        }

        pub fn default_backend(mut self, backend: IngressBackend) -> Self {
            self.spec().default_backend = Some(backend);
            self
        }

        pub fn tls(mut self, hosts: &[&str], secret: &str) -> Self {
            let entry = IngressTLS {
                hosts: Some(hosts.iter().map(|h| h.to_string()).collect()),
                secret_name: Some(secret.into()),
            };
            self.spec().tls.get_or_insert_default().push(entry);
            self
        }

        pub fn build(self) -> Ingress {
            self.0
        }
    }

    /// A Service with port 80 named `http` (target 8080).
    pub fn service(name: &str) -> Service {
        Service {
            metadata: meta(name),
            spec: Some(ServiceSpec {
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: Some(IntOrString::Int(8080)),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            status: None,
        }
    }

    /// An endpoint: address, `ready`, `terminating`.
    pub type EndpointSpec<'a> = (&'a str, Option<bool>, Option<bool>);

    pub fn slice(
        name: &str,
        service: &str,
        port_name: &str,
        port: u16,
        endpoints: &[EndpointSpec<'_>],
    ) -> EndpointSlice {
        let mut metadata = meta(name);
        metadata.labels = Some(BTreeMap::from([(
            super::SERVICE_NAME_LABEL.to_owned(),
            service.to_owned(),
        )]));
        EndpointSlice {
            metadata,
            address_type: "IPv4".into(),
            endpoints: Some(
                endpoints
                    .iter()
                    .map(|(address, ready, terminating)| Endpoint {
                        addresses: vec![address.to_string()],
                        conditions: Some(EndpointConditions {
                            ready: *ready,
                            serving: None,
                            terminating: *terminating,
                        }),
                        ..Endpoint::default()
                    })
                    .collect(),
            ),
            ports: Some(vec![EndpointPort {
                name: Some(port_name.into()).filter(|n: &String| !n.is_empty()),
                port: Some(port.into()),
                protocol: Some("TCP".into()),
                app_protocol: None,
            }]),
        }
    }

    pub fn tls_secret(name: &str, cert: &str, key: &str) -> Secret {
        let mut data = BTreeMap::new();
        for (k, v) in [("tls.crt", cert), ("tls.key", key)] {
            if !v.is_empty() {
                data.insert(k.to_owned(), ByteString(v.as_bytes().to_vec()));
            }
        }
        Secret {
            metadata: meta(name),
            data: Some(data),
            type_: Some("kubernetes.io/tls".into()),
            ..Secret::default()
        }
    }

    /// A self-signed certificate and key for `names`, PEM.
    pub fn self_signed(names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// The objects a table is built from.
    #[derive(Default)]
    pub struct World {
        pub ingresses: Vec<Ingress>,
        pub classes: Vec<IngressClass>,
        pub services: Vec<Service>,
        pub slices: Vec<EndpointSlice>,
        pub secrets: Vec<Secret>,
    }

    impl World {
        /// Our class `kubeforge`, not default.
        pub fn new() -> Self {
            Self {
                classes: vec![class(CLASS, CONTROLLER, false)],
                ..Self::default()
            }
        }

        /// A Service `name` whose endpoints are `addresses`, one slice each (so ports may
        /// differ, as for test servers on one loopback address).
        pub fn backend(mut self, name: &str, addresses: &[SocketAddr]) -> Self {
            self.services.push(service(name));
            for (i, address) in addresses.iter().enumerate() {
                let ip = address.ip().to_string();
                let endpoints = [(ip.as_str(), Some(true), None)];
                let slice = slice(
                    &format!("{name}-{i}"),
                    name,
                    "http",
                    address.port(),
                    &endpoints,
                );
                self.slices.push(slice);
            }
            self
        }

        pub fn ingress(mut self, ingress: IngressBuilder) -> Self {
            self.ingresses.push(ingress.build());
            self
        }

        pub fn build(&self) -> (RouteTable, Vec<Problem>) {
            let selection = ClassSelection {
                controller: CONTROLLER.into(),
            };
            RouteTable::build(
                &selection,
                &self.ingresses,
                &self.classes,
                &self.services,
                &self.slices,
                &self.secrets,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::fixtures::*;
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Services `a`..`h` and `fallback`, one endpoint each.
    fn services(world: World) -> World {
        ["a", "b", "c", "d", "e", "f", "g", "h", "fallback"]
            .iter()
            .enumerate()
            .fold(world, |w, (i, name)| {
                w.backend(name, &[addr(&format!("10.0.0.{}:8080", i + 1))])
            })
    }

    fn routed<'t>(table: &'t RouteTable, host: &str, path: &str) -> Option<&'t str> {
        table.route(host, path).map(|b| {
            let service = b.service();
            let name = service.trim_start_matches("default/");
            name.split(':').next().unwrap()
        })
    }

    #[test]
    fn hosts_and_paths_route_by_precedence() {
        let world = services(World::new())
            .ingress(ingress("exact").created(1).rule(
                Some("foo.bar.com"),
                &[
                    ("/foo", "Prefix", "a"),
                    ("/foo/bar", "Exact", "b"),
                    ("/", "Prefix", "c"),
                ],
            ))
            .ingress(
                ingress("wild")
                    .created(2)
                    .rule(Some("*.foo.com"), &[("/", "Prefix", "d")]),
            )
            .ingress(ingress("any").created(3).rule(
                None,
                &[
                    ("/api", "Prefix", "e"),
                    ("/x", "ImplementationSpecific", "f"),
                ],
            ))
            .ingress(
                ingress("more")
                    .created(4)
                    .rule(Some("FOO.bar.com"), &[("/foo/bar/", "Prefix", "g")]),
            )
            .ingress(
                ingress("strict")
                    .created(5)
                    .rule(Some("strict.com"), &[("/only", "Exact", "h")]),
            )
            .ingress(
                ingress("fallback")
                    .created(6)
                    .default_backend(backend("fallback")),
            );
        let (table, problems) = world.build();
        assert_eq!(problems, []);
        let cases = [
            ("foo.bar.com", "/foo", "a"),
            ("FOO.Bar.com:8080", "/foo/", "a"),
            ("foo.bar.com.", "/foo/x", "a"),
            ("foo.bar.com", "/foo/bar", "b"), // Exact beats Prefix at equal length
            ("foo.bar.com", "/foo/bar/", "g"), // longest: Prefix /foo/bar beats /foo
            ("foo.bar.com", "/foo/bar/baz", "g"),
            ("foo.bar.com", "/foobar", "c"), // Prefix is element-wise
            ("foo.bar.com", "/", "c"),
            ("bar.foo.com", "/anything", "d"),
            ("bar.foo.com", "/api", "d"), // host tier first: no fall-through
            ("baz.bar.foo.com", "/api", "e"), // wildcard is one label only
            ("foo.com", "/api/v1", "e"),  // nor the bare parent
            ("other.com", "/api", "e"),
            ("other.com", "/apix", "fallback"), // element-wise
            ("other.com", "/xyz", "f"),         // ImplementationSpecific: string prefix
            ("strict.com", "/only", "h"),
            ("strict.com", "/api", "fallback"), // exact host without the path: default backend
            ("strict.com", "/only/", "fallback"), // Exact: trailing slash counts
        ];
        for (host, path, expected) in cases {
            assert_eq!(routed(&table, host, path), Some(expected), "{host}{path}");
        }
    }

    #[test]
    fn nothing_matches_without_a_default_backend() {
        let world = services(World::new())
            .ingress(ingress("one").rule(Some("foo.com"), &[("/app", "Prefix", "a")]));
        let (table, _) = world.build();
        assert_eq!(routed(&table, "foo.com", "/app/1"), Some("a"));
        assert_eq!(routed(&table, "foo.com", "/other"), None);
        assert_eq!(routed(&table, "bar.com", "/app"), None);
    }

    /// The examples table of the Ingress documentation, plus ImplementationSpecific.
    #[test]
    fn path_matching_follows_the_ingress_examples() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, Option<&'a str>);
        let cases: &[Case<'_>] = &[
            (&[("/", "Prefix")], "/anything/at/all", Some("0")),
            (&[("/foo", "Exact")], "/foo", Some("0")),
            (&[("/foo", "Exact")], "/bar", None),
            (&[("/foo", "Exact")], "/foo/", None),
            (&[("/foo/", "Exact")], "/foo", None),
            (&[("/foo", "Prefix")], "/foo/", Some("0")),
            (&[("/foo/", "Prefix")], "/foo", Some("0")),
            (&[("/aaa/bb", "Prefix")], "/aaa/bbb", None),
            (&[("/aaa/bbb", "Prefix")], "/aaa/bbb", Some("0")),
            (&[("/aaa/bbb/", "Prefix")], "/aaa/bbb", Some("0")),
            (&[("/aaa/bbb", "Prefix")], "/aaa/bbb/", Some("0")),
            (&[("/aaa/bbb", "Prefix")], "/aaa/bbb/ccc", Some("0")),
            (&[("/aaa/bbb", "Prefix")], "/aaa/bbbxyz", None),
            (
                &[("/", "Prefix"), ("/aaa", "Prefix")],
                "/aaa/ccc",
                Some("1"),
            ),
            (
                &[("/", "Prefix"), ("/aaa", "Prefix"), ("/aaa/bbb", "Prefix")],
                "/aaa/bbb",
                Some("2"),
            ),
            (
                &[("/", "Prefix"), ("/aaa", "Prefix"), ("/aaa/bbb", "Prefix")],
                "/ccc",
                Some("0"),
            ),
            (&[("/aaa", "Prefix")], "/ccc", None),
            (&[("/foo", "Prefix"), ("/foo", "Exact")], "/foo", Some("1")),
            (
                &[("/foo", "Exact"), ("/foo", "Prefix")],
                "/foo/x",
                Some("1"),
            ),
            (&[("/foo", "ImplementationSpecific")], "/foobar", Some("0")),
            (
                &[("/foo", "ImplementationSpecific"), ("/foo", "Prefix")],
                "/foo",
                Some("1"),
            ),
            (&[("/foo/", "ImplementationSpecific")], "/foo", None),
        ];
        for (paths, request, expected) in cases {
            let names: Vec<String> = (0..paths.len()).map(|i| i.to_string()).collect();
            let rule: Vec<(&str, &str, &str)> = paths
                .iter()
                .zip(&names)
                .map(|((p, k), n)| (*p, *k, n.as_str()))
                .collect();
            let world = names
                .iter()
                .fold(World::new(), |w, n| w.backend(n, &[addr("10.0.0.1:80")]))
                .ingress(ingress("paths").rule(None, &rule));
            let (table, problems) = world.build();
            assert_eq!(problems, [], "{paths:?}");
            assert_eq!(
                routed(&table, "h", request),
                *expected,
                "{paths:?} {request}"
            );
        }
    }

    #[test]
    fn only_ingresses_of_our_classes_are_served() {
        // (ingressClassName, legacy annotation, is one of ours the default, served)
        let cases = [
            (Some(CLASS), None, false, true),
            (Some("nginx"), None, true, false),
            (Some("no-such-class"), None, true, false),
            (None, Some(CLASS), false, true),
            (None, Some("nginx"), true, false),
            (None, None, true, true),
            (None, None, false, false),
            (Some(CLASS), Some("nginx"), false, false), // the annotation wins, as in ingress-nginx
        ];
        for (name, annotation, default, served) in cases {
            let mut world = World::new().backend("a", &[addr("10.0.0.1:80")]);
            world.classes = vec![
                class(CLASS, CONTROLLER, false),
                class("ours-default", CONTROLLER, default),
                class("nginx", "k8s.io/ingress-nginx", false),
            ];
            let mut built = ingress("web")
                .class(name)
                .rule(Some("foo.com"), &[("/", "Prefix", "a")]);
            if let Some(annotation) = annotation {
                built = built.annotation(LEGACY_CLASS_ANNOTATION, annotation);
            }
            let (table, _) = world.ingress(built).build();
            let key = IngressKey {
                namespace: NS.into(),
                name: "web".into(),
            };
            let case = format!("{name:?} {annotation:?} default={default}");
            assert_eq!(table.served().contains(&key), served, "{case}");
            assert_eq!(table.route("foo.com", "/").is_some(), served, "{case}");
        }
    }

    #[test]
    fn served_lists_exactly_our_ingresses_even_with_problems() {
        let world = World::new()
            .backend("a", &[addr("10.0.0.1:80")])
            .ingress(ingress("good").rule(None, &[("/", "Prefix", "a")]))
            .ingress(ingress("broken").rule(None, &[("/b", "Prefix", "missing")]))
            .ingress(
                ingress("theirs")
                    .class(Some("nginx"))
                    .rule(None, &[("/c", "Prefix", "a")]),
            );
        let (table, problems) = world.build();
        let served: Vec<String> = table.served().iter().map(ToString::to_string).collect();
        assert_eq!(served, ["default/broken", "default/good"]);
        assert_eq!(problems.len(), 1);
        assert_eq!(
            routed(&table, "h", "/c"),
            Some("a"),
            "/c falls to the / rule"
        );
    }

    #[test]
    fn backends_resolve_ports_and_ready_endpoints() {
        let mut world = World::new();
        world.services.push(service("web"));
        world.slices = vec![
            slice(
                "web-1",
                "web",
                "http",
                8080,
                &[
                    ("10.0.0.1", Some(true), None),
                    ("10.0.0.2", None, None),             // unset: ready
                    ("10.0.0.3", Some(false), None),      // not ready
                    ("10.0.0.4", Some(true), Some(true)), // terminating
                ],
            ),
            slice(
                "web-2",
                "web",
                "http",
                8080,
                &[("10.0.0.1", Some(true), None)],
            ), // duplicate
            slice(
                "web-3",
                "web",
                "metrics",
                9090,
                &[("10.0.0.5", Some(true), None)],
            ),
            slice(
                "other-1",
                "other",
                "http",
                8080,
                &[("10.0.0.6", Some(true), None)],
            ),
        ];
        let mut fqdn = slice(
            "web-4",
            "web",
            "http",
            8080,
            &[("web.example.com", None, None)],
        );
        fqdn.address_type = "FQDN".into();
        world.slices.push(fqdn);
        let by_number = backend_port("web", Some(80), None);
        let by_name = backend_port("web", None, Some("http"));
        let world = world.ingress(ingress("web").rule_backends(
            Some("foo.com"),
            vec![
                ("/number", "Prefix", by_number),
                ("/name", "Prefix", by_name),
            ],
        ));
        let (table, problems) = world.build();
        assert_eq!(problems, []);
        let expected = [addr("10.0.0.1:8080"), addr("10.0.0.2:8080")];
        for path in ["/number", "/name"] {
            let backend = table.route("foo.com", path).unwrap();
            assert_eq!(backend.endpoints(), expected, "{path}");
        }
        assert_eq!(
            table.route("foo.com", "/name").unwrap().service(),
            "default/web:http"
        );
    }

    #[test]
    fn unresolvable_backends_are_problems_and_keep_their_paths() {
        let mut world = World::new().backend("web", &[addr("10.0.0.1:80")]);
        world.services.push(service("idle"));
        let mut external = service("external");
        external.spec.as_mut().unwrap().type_ = Some("ExternalName".into());
        world.services.push(external);
        let world = world.ingress(ingress("shop").rule_backends(
            None,
            vec![
                ("/missing", "Prefix", backend("missing")),
                ("/missing-again", "Prefix", backend("missing")), // reported once
                ("/port", "Prefix", backend_port("web", Some(9999), None)),
                ("/named", "Prefix", backend_port("web", None, Some("grpc"))),
                ("/idle", "Prefix", backend("idle")),
                ("/external", "Prefix", backend("external")),
                (
                    "/bucket",
                    "Prefix",
                    resource_backend("StorageBucket", "assets"),
                ),
                ("/weird", "Fuzzy", backend("web")),
                ("relative", "Exact", backend("web")),
            ],
        ));
        let (table, problems) = world.build();
        let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "Ingress default/shop: service default/missing not found",
                "Ingress default/shop: service default/web has no port 9999",
                "Ingress default/shop: service default/web has no port grpc",
                "Ingress default/shop: backend default/idle:80 has no ready endpoints",
                "Ingress default/shop: service default/external is of type ExternalName, which this controller does not proxy to",
                "Ingress default/shop: backend StorageBucket assets is a resource backend, which this controller does not support",
                "Ingress default/shop: path \"/weird\" has unknown pathType \"Fuzzy\"; path ignored",
                "Ingress default/shop: path \"relative\" does not start with '/'; path ignored",
            ]
        );
        assert_eq!(problems[0].kind.reason(), "ServiceNotFound");
        for path in [
            "/missing",
            "/port",
            "/named",
            "/idle",
            "/external",
            "/bucket",
        ] {
            let backend = table.route("h", path).expect(path);
            assert!(backend.endpoints().is_empty(), "{path} must answer 503");
        }
        assert!(table.route("h", "/weird").is_none());
    }

    #[test]
    fn conflicts_go_to_the_older_ingress_whatever_the_input_order() {
        let world = World::new()
            .backend("new", &[addr("10.0.0.1:80")])
            .backend("old", &[addr("10.0.0.2:80")])
            .ingress(
                ingress("newer")
                    .created(20)
                    .rule(Some("foo.com"), &[("/app", "Prefix", "new")])
                    .default_backend(backend("new")),
            )
            .ingress(
                ingress("older")
                    .created(10)
                    .rule(Some("foo.com"), &[("/app/", "Prefix", "old")])
                    .default_backend(backend("old")),
            );
        let (table, problems) = world.build();
        assert_eq!(routed(&table, "foo.com", "/app"), Some("old"));
        assert_eq!(routed(&table, "x.com", "/"), Some("old"));
        let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "Ingress default/newer: defaultBackend ignored: older Ingress default/older already sets one",
                "Ingress default/newer: host foo.com path \"/app\" (Prefix) is already routed by older Ingress default/older; ignored",
            ]
        );
    }

    #[test]
    fn rules_naming_one_service_port_share_its_rotation() {
        let world = World::new()
            .backend("web", &[addr("10.0.0.1:80"), addr("10.0.0.2:80")])
            .ingress(ingress("a").rule(Some("a.com"), &[("/", "Prefix", "web")]))
            .ingress(ingress("b").rule(Some("b.com"), &[("/", "Prefix", "web")]));
        let (table, _) = world.build();
        let first = table.route("a.com", "/").unwrap().attempt_order().next();
        let second = table.route("b.com", "/").unwrap().attempt_order().next();
        assert_ne!(first, second);
    }

    #[test]
    fn attempt_order_rotates_through_every_endpoint() {
        let endpoints = vec![
            addr("10.0.0.1:80"),
            addr("10.0.0.2:80"),
            addr("10.0.0.3:80"),
        ];
        let backend = Backend::new("default/web:80".into(), endpoints.clone());
        let order = |b: &Backend| b.attempt_order().collect::<Vec<_>>();
        assert_eq!(order(&backend), endpoints);
        assert_eq!(order(&backend), [endpoints[1], endpoints[2], endpoints[0]]);
        assert_eq!(order(&backend), [endpoints[2], endpoints[0], endpoints[1]]);
        assert_eq!(order(&backend), endpoints);
        assert_eq!(order(&Backend::new("x".into(), Vec::new())), []);
    }

    #[test]
    fn hosts_are_normalised_like_rules() {
        let cases = [
            ("Foo.COM", "foo.com"),
            ("foo.com:8443", "foo.com"),
            ("foo.com.", "foo.com"),
            ("10.1.2.3:80", "10.1.2.3"),
            ("[::1]:443", "[::1]"),
            ("[::1]", "[::1]"),
        ];
        for (raw, normal) in cases {
            assert_eq!(normalize_host(raw), normal, "{raw}");
        }
    }

    #[test]
    fn certificates_by_exact_then_wildcard_host() {
        let (a_cert, a_key) = self_signed(&["a.example.com"]);
        let (w_cert, w_key) = self_signed(&["*.w.example.com"]);
        let (_, stray_key) = self_signed(&["stray"]);
        let mut world = World::new().ingress(
            ingress("tls")
                .tls(&["a.example.com"], "a-tls")
                .tls(&["*.w.example.com", "exact.w.example.com"], "w-tls")
                .tls(&["missing.example.com"], "missing")
                .tls(&["bad.example.com"], "bad")
                .tls(&["nokey.example.com"], "nokey"),
        );
        world.secrets = vec![
            tls_secret("a-tls", &a_cert, &a_key),
            tls_secret("w-tls", &w_cert, &w_key),
            tls_secret("bad", &a_cert, &stray_key),
            tls_secret("nokey", &a_cert, ""),
        ];
        let (table, problems) = world.build();
        let der = |pem: &str| {
            use rustls::pki_types::pem::PemObject;
            rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
        };
        let cases = [
            ("a.example.com", Some(der(&a_cert))),
            ("A.Example.COM", Some(der(&a_cert))),
            ("x.w.example.com", Some(der(&w_cert))),
            ("exact.w.example.com", Some(der(&w_cert))),
            ("y.x.w.example.com", None),
            ("w.example.com", None),
            ("missing.example.com", None),
            ("bad.example.com", None),
            ("nokey.example.com", None),
        ];
        for (name, expected) in cases {
            let served = table.certificate_for(name).map(|k| k.cert[0].clone());
            assert_eq!(served, expected, "{name}");
        }
        let kinds: Vec<&str> = problems.iter().map(|p| p.kind.reason()).collect();
        assert_eq!(kinds, ["TLSSecretNotFound", "BadTLSSecret", "BadTLSSecret"]);
        assert!(
            problems[1]
                .to_string()
                .contains("default/bad tls.key does not belong")
        );
        assert!(
            problems[2]
                .to_string()
                .ends_with("TLS secret default/nokey has no tls.key")
        );
    }

    #[test]
    fn a_host_keeps_the_certificate_of_the_older_ingress() {
        let (old_cert, old_key) = self_signed(&["a.com"]);
        let (new_cert, new_key) = self_signed(&["a.com"]);
        let mut world = World::new()
            .ingress(ingress("newer").created(2).tls(&["a.com"], "new"))
            .ingress(ingress("older").created(1).tls(&["a.com"], "old"))
            .ingress(ingress("same").created(3).tls(&["a.com"], "old"));
        world.secrets = vec![
            tls_secret("old", &old_cert, &old_key),
            tls_secret("new", &new_cert, &new_key),
        ];
        let (table, problems) = world.build();
        let served = table.certificate_for("a.com").unwrap();
        let old = tls::certified_key(old_cert.as_bytes(), old_key.as_bytes()).unwrap();
        assert_eq!(served.cert, old.cert);
        let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "Ingress default/newer: host a.com already has the certificate of secret default/old from older Ingress default/older; ignored"
            ]
        );
    }
}
