//! An Ingress controller that serves traffic: a reverse proxy ([`proxy`], hyper) on configured
//! addresses, routing HTTP and HTTPS requests by the Ingresses of its IngressClasses to the
//! ready endpoints of their Services, reconfigured live as Ingresses, IngressClasses,
//! Services, EndpointSlices and Secrets change. Upstream Kubernetes ships no Ingress
//! controller; this one behaves as ingress-nginx does where the Ingress API leaves room.
//!
//! - **Routing** ([`routes`]): exact and wildcard (`*.example.com`, one label) hosts, pathType
//!   Exact / Prefix / ImplementationSpecific with the longest match winning, `defaultBackend`,
//!   Service ports by number or name, endpoints from EndpointSlices (ready, not terminating).
//! - **Classes**: Ingresses naming an IngressClass whose `spec.controller` is
//!   [`IngressOptions::controller`], Ingresses with no class when one of ours carries
//!   `ingressclass.kubernetes.io/is-default-class: "true"`, and the deprecated
//!   `kubernetes.io/ingress.class` annotation.
//! - **TLS** ([`tls`]): certificates from the `kubernetes.io/tls` Secrets of `spec.tls`,
//!   chosen by SNI (exact host, then wildcard), replaced live.
//! - **Forwarding**: round-robin over a backend's ready endpoints, the next endpoint tried when
//!   one refuses or does not accept within [`proxy::CONNECT_TIMEOUT`], 502 when none does;
//!   a new table applies to requests that arrive after it, never to those in flight.
//! - **Status**: `status.loadBalancer.ingress` of each served Ingress holds the proxy's
//!   address ([`IngressOptions::status_address`]), cleared when it stops being ours; what
//!   cannot be served (a missing Service, a bad Secret) becomes a Warning Event on the Ingress.
//!
//! Left out compared with ingress-nginx: annotations (rewrites, regex paths, canaries, auth,
//! timeouts), WebSockets and other upgrades, HTTP/2 or TLS to backends, the HTTP-to-HTTPS
//! redirect, a default certificate, and access logs. With leader election every replica serves
//! traffic (the proxy does not need the lease) and only the leader writes status.

pub mod proxy;
pub mod routes;
pub mod tls;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{
    Ingress, IngressClass, IngressLoadBalancerIngress, IngressLoadBalancerStatus, IngressStatus,
};
use kube::ResourceExt;
use kube::api::{Api, Patch};
use kubeforge::controller::{Action, BuildError, Context, Controller, ReconcileError, Watch};
use kubeforge::informer::{HandlerFns, InformerOptions, Lister};
use kubeforge::manager::{Manager, Runnable};
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use routes::{ClassSelection, IngressKey, Problem, RouteTable, SERVICE_NAME_LABEL};

/// The controller's name (logs, metrics, field manager, events).
pub const NAME: &str = "ingress-controller";
/// The `spec.controller` of the IngressClasses this controller serves by default.
pub const DEFAULT_CONTROLLER: &str = "kubeforge.dev/ingress-controller";

/// Where the proxy listens and what it serves.
#[derive(Clone, Debug)]
pub struct IngressOptions {
    /// The IngressClass `spec.controller` value that makes an Ingress ours.
    pub controller: String,
    /// The HTTP listener (port 0: any free port, see [`IngressOptions::listening`]).
    pub http: SocketAddr,
    /// The HTTPS listener, if any.
    pub https: Option<SocketAddr>,
    /// The address written to `status.loadBalancer` of served Ingresses; by default the HTTP
    /// listener's IP, unless it listens on all addresses (then nothing is written).
    pub status_address: Option<IpAddr>,
    /// Where the proxy ended up listening, once it does.
    pub listening: Listening,
}

impl Default for IngressOptions {
    fn default() -> Self {
        IngressOptions {
            controller: DEFAULT_CONTROLLER.to_owned(),
            http: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8000)),
            https: Some(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8443))),
            status_address: None,
            listening: Listening::default(),
        }
    }
}

/// The proxy's bound addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addresses {
    /// The HTTP listener.
    pub http: SocketAddr,
    /// The HTTPS listener, if configured.
    pub https: Option<SocketAddr>,
}

/// Learns where the proxy listens once it has bound its ports (tests bind port 0).
#[derive(Clone, Debug)]
pub struct Listening(Arc<watch::Sender<Option<Addresses>>>);

impl Default for Listening {
    fn default() -> Self {
        Listening(Arc::new(watch::channel(None).0))
    }
}

impl Listening {
    /// Waits until the proxy listens and returns its addresses.
    pub async fn wait(&self) -> Addresses {
        let mut rx = self.0.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(addresses) => addresses.expect("waited for Some"),
            // The sender lives in `self`: it cannot be dropped while we wait.
            Err(_) => unreachable!("the listening cell outlives its waiters"),
        }
    }
}

/// The caches the table is built from, the table in force, and the proxy serving it.
struct Router {
    class: ClassSelection,
    ingresses: Lister<Ingress>,
    classes: Lister<IngressClass>,
    services: Lister<Service>,
    slices: Lister<EndpointSlice>,
    secrets: Lister<Secret>,
    built: Mutex<Built>,
    table: Arc<arc_swap::ArcSwap<RouteTable>>,
    proxy: Mutex<Option<proxy::ProxyHandle>>,
    status_address: Option<IpAddr>,
    changed: Notify,
}

/// A problem as an Event shows it: its reason and its message.
type Report = (&'static str, String);

/// The last table's problems, by Ingress, and which were already reported as Events.
#[derive(Default)]
struct Built {
    problems: BTreeMap<IngressKey, BTreeSet<Report>>,
    reported: BTreeMap<IngressKey, BTreeSet<Report>>,
}

impl Router {
    /// Rebuilds the table from the caches and installs it in the proxy.
    fn refresh(&self) -> Arc<RouteTable> {
        let mut built = self.built.lock();
        let (table, problems) = RouteTable::build(
            &self.class,
            &owned(self.ingresses.list()),
            &owned(self.classes.list()),
            &owned(self.services.list()),
            &owned(self.slices.list()),
            &owned(self.secrets.list()),
        );
        built.problems = group(problems);
        let table = Arc::new(table);
        self.table.store(table.clone());
        if let Some(proxy) = self.proxy.lock().as_ref() {
            proxy.update(table.clone());
        }
        table
    }

    /// The problems of `key` not reported since they last appeared.
    fn unreported(&self, key: &IngressKey) -> Vec<Report> {
        let mut built = self.built.lock();
        let now = built.problems.get(key).cloned().unwrap_or_default();
        let before = built
            .reported
            .insert(key.clone(), now.clone())
            .unwrap_or_default();
        now.difference(&before).cloned().collect()
    }
}

fn owned<K: Clone>(items: Vec<Arc<K>>) -> Vec<K> {
    items.into_iter().map(|k| (*k).clone()).collect()
}

fn group(problems: Vec<Problem>) -> BTreeMap<IngressKey, BTreeSet<Report>> {
    let mut by_ingress: BTreeMap<IngressKey, BTreeSet<Report>> = BTreeMap::new();
    for p in problems {
        let report = (p.kind.reason(), p.to_string());
        by_ingress
            .entry(p.ingress.clone())
            .or_default()
            .insert(report);
    }
    by_ingress
}

/// Registers the Ingress controller with default options (HTTP on :8000, HTTPS on :8443; the
/// manager's metrics take :8080).
///
/// # Errors
/// When the manager refuses the controller (a duplicate name).
pub fn setup(mgr: &mut Manager) -> Result<(), BuildError> {
    setup_with(mgr, IngressOptions::default())
}

/// Registers the Ingress controller: the proxy (a runnable of the manager) and the controller
/// keeping the table and the Ingresses' status current.
///
/// # Errors
/// When the manager refuses the controller (a duplicate name).
pub fn setup_with(mgr: &mut Manager, options: IngressOptions) -> Result<(), BuildError> {
    let scope = InformerOptions {
        namespace: mgr.config().namespace.clone(),
        ..InformerOptions::default()
    };
    let status_address = options
        .status_address
        .or_else(|| (!options.http.ip().is_unspecified()).then(|| options.http.ip()));
    if status_address.is_none() {
        tracing::warn!(
            http = %options.http,
            "the Ingress proxy listens on all addresses and no status address is set: \
             status.loadBalancer is not written (set IngressOptions::status_address, or \
             --ingress-status-address)"
        );
    }
    let informers = mgr.informers().clone();
    let ingress_informer = informers.informer::<Ingress>(scope.clone());
    let router = Arc::new(Router {
        class: ClassSelection {
            controller: options.controller.clone(),
        },
        ingresses: ingress_informer.lister(),
        classes: informers
            .informer::<IngressClass>(InformerOptions::default())
            .lister(),
        services: informers.informer::<Service>(scope.clone()).lister(),
        slices: informers.informer::<EndpointSlice>(scope.clone()).lister(),
        secrets: informers.informer::<Secret>(scope).lister(),
        built: Mutex::default(),
        table: Arc::default(),
        proxy: Mutex::default(),
        status_address,
        changed: Notify::new(),
    });
    // A deleted Ingress has nothing left to reconcile: the proxy's own loop drops its routes.
    let on_delete = router.clone();
    let _ = ingress_informer.add_event_handler(
        HandlerFns::<Ingress>::new().on_delete(move |_| on_delete.changed.notify_one()),
    );
    mgr.add(ProxyRunnable {
        router: router.clone(),
        options: options.clone(),
    });
    let builder = Controller::managed_by(mgr)
        .for_::<Ingress>(Watch::new())
        .named(NAME);
    let all = builder.primary_lister();
    let by_service = builder.primary_lister();
    let by_slice = builder.primary_lister();
    let by_secret = builder.primary_lister();
    builder
        .watches::<IngressClass>(Watch::new(), move |_| keys(&all.list(), |_| true))
        .watches::<Service>(Watch::new(), move |svc| {
            let (ns, name) = (svc.namespace(), svc.name_any());
            keys(&by_service.list(), |i| {
                i.namespace() == ns && uses_service(i, &name)
            })
        })
        .watches::<EndpointSlice>(Watch::new(), move |slice| {
            let ns = slice.namespace();
            let Some(name) = slice.labels().get(SERVICE_NAME_LABEL).cloned() else {
                return Vec::new();
            };
            keys(&by_slice.list(), |i| {
                i.namespace() == ns && uses_service(i, &name)
            })
        })
        .watches::<Secret>(Watch::new(), move |secret| {
            let (ns, name) = (secret.namespace(), secret.name_any());
            keys(&by_secret.list(), |i| {
                i.namespace() == ns && uses_secret(i, &name)
            })
        })
        .complete(reconcile, router)
}

fn keys(
    ingresses: &[Arc<Ingress>],
    wanted: impl Fn(&Ingress) -> bool,
) -> Vec<kubeforge::informer::ObjectKey> {
    ingresses
        .iter()
        .filter(|i| wanted(i))
        .filter_map(|i| kubeforge::informer::ObjectKey::from_obj(i.as_ref()).ok())
        .collect()
}

/// Whether `ingress` routes to Service `name` (its rules or its default backend).
fn uses_service(ingress: &Ingress, name: &str) -> bool {
    let Some(spec) = &ingress.spec else {
        return false;
    };
    let named = |b: &k8s_openapi::api::networking::v1::IngressBackend| {
        b.service.as_ref().is_some_and(|s| s.name == name)
    };
    spec.default_backend.as_ref().is_some_and(named)
        || spec.rules.iter().flatten().any(|rule| {
            rule.http
                .iter()
                .flat_map(|http| &http.paths)
                .any(|path| named(&path.backend))
        })
}

/// Whether `ingress` takes a certificate from Secret `name`.
fn uses_secret(ingress: &Ingress, name: &str) -> bool {
    ingress
        .spec
        .iter()
        .flat_map(|s| s.tls.iter().flatten())
        .any(|tls| tls.secret_name.as_deref() == Some(name))
}

/// Rebuilds the table, reports the Ingress's new problems, and writes its status.
async fn reconcile(
    ingress: Arc<Ingress>,
    ctx: Context<Arc<Router>>,
) -> Result<Action, ReconcileError> {
    let router = ctx.data();
    let table = router.refresh();
    let key = IngressKey {
        namespace: ingress.namespace().unwrap_or_default(),
        name: ingress.name_any(),
    };
    for (reason, problem) in router.unreported(&key) {
        tracing::warn!(ingress = %key, %problem, "ingress not served as written");
        let _ = ctx
            .recorder()
            .warning(ingress.as_ref(), reason, &problem)
            .await;
    }
    let address = router.status_address;
    let want = match (table.served().contains(&key), address) {
        (true, Some(ip)) => vec![IngressLoadBalancerIngress {
            ip: Some(ip.to_string()),
            ..IngressLoadBalancerIngress::default()
        }],
        (true, None) => return Ok(Action::await_change()),
        (false, _) => Vec::new(),
    };
    let have = ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default();
    let ours = |lb: &IngressLoadBalancerIngress| {
        address.is_some_and(|ip| lb.ip.as_deref() == Some(ip.to_string().as_str()))
    };
    // Not ours any more: clear only our own address, never what another controller wrote.
    if have == want || (want.is_empty() && !have.iter().any(ours)) {
        return Ok(Action::await_change());
    }
    let status = IngressStatus {
        load_balancer: Some(IngressLoadBalancerStatus {
            ingress: Some(want),
        }),
    };
    let api: Api<Ingress> = Api::namespaced(ctx.client().clone(), &key.namespace);
    let patch = Patch::Merge(serde_json::json!({"status": status}));
    api.patch_status(&key.name, &crate::writes::write_params(NAME), &patch)
        .await
        .map_err(ReconcileError::transient)?;
    Ok(Action::await_change())
}

/// Runs the proxy for the manager's lifetime, rebuilding the table on deletes.
struct ProxyRunnable {
    router: Arc<Router>,
    options: IngressOptions,
}

impl Runnable for ProxyRunnable {
    fn name(&self) -> &str {
        "ingress-proxy"
    }

    /// Every replica serves traffic; only the leader writes status.
    fn needs_leader_election(&self) -> bool {
        false
    }

    fn start(self: Box<Self>, stop: CancellationToken) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let ProxyRunnable { router, options } = *self;
            let handle = match proxy::Proxy::start(
                options.http,
                options.https,
                router.table.load_full(),
            )
            .await
            {
                Ok(handle) => handle,
                Err(e) => {
                    tracing::error!(error = %e, "the ingress proxy cannot start; no traffic is served");
                    return;
                }
            };
            let addresses = Addresses {
                http: handle.http_addr(),
                https: handle.https_addr(),
            };
            *router.proxy.lock() = Some(handle);
            router.refresh();
            options.listening.0.send_replace(Some(addresses));
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = router.changed.notified() => { router.refresh(); }
                }
            }
            let handle = router.proxy.lock().take();
            if let Some(handle) = handle {
                handle.shutdown().await;
            }
        })
    }
}
