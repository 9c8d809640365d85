//! A `StaticSite` operator: each site (group `web.example.com`) becomes a ConfigMap with its
//! files, an nginx Deployment and a Service, all owned by the site; a DNS record outside the
//! cluster is kept for its domain and removed by a finalizer when the site is deleted; the TLS
//! Secret a site names is watched (through an index of sites by Secret), so a new certificate
//! rolls exactly the sites using it; events and a `Ready` condition say what happened, and every
//! site is looked at again every five minutes.
//!
//! ```sh
//! cargo run -p kubeforge-examples --bin static-site-operator -- crds | kubectl apply -f -
//! cargo run -p kubeforge-examples --bin static-site-operator -- rbac
//! STATIC_SITE_DNS_DIR=/tmp/dns cargo run -p kubeforge-examples --bin static-site-operator -- --kubeconfig ~/.kube/config
//! ```

mod dns;
mod resource;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kubeforge::controller::apply::{apply_owned, apply_status};
use kubeforge::controller::conditions::{new_condition, set_condition};
use kubeforge::controller::finalizer::{Event, finalizer};
use kubeforge::controller::{Action, Context, ReconcileError};
use kubeforge::informer::Lister;
use kubeforge::informer::ObjectKey;
use kubeforge::kube::{Api, ResourceExt};

use resource::{StaticSite, StaticSiteStatus};

/// The field manager this operator writes with (server-side apply).
const MANAGER: &str = "static-site-operator";
/// The finalizer that removes a site's DNS record before the site goes.
const DNS_FINALIZER: &str = "web.example.com/dns-record";
/// The index of sites by the TLS Secret they name (`namespace/name`).
const BY_SECRET: &str = "tls-secret";

/// The Secret a site names, as `namespace/name`: the [`BY_SECRET`] index.
fn tls_secret_of(site: &StaticSite) -> Vec<String> {
    let ns = site.namespace().unwrap_or_default();
    site.spec
        .tls_secret
        .iter()
        .map(|s| format!("{ns}/{s}"))
        .collect()
}

/// The sites naming `secret`, looked up in the sites' cache through the index.
fn sites_using(secret: &Secret, sites: &Lister<StaticSite>) -> Vec<ObjectKey> {
    let key = format!(
        "{}/{}",
        secret.namespace().unwrap_or_default(),
        secret.name_any()
    );
    sites
        .by_index(BY_SECRET, &key)
        .unwrap_or_default()
        .iter()
        .filter_map(|site| ObjectKey::from_obj(site.as_ref()).ok())
        .collect()
}

/// Makes the cluster (and DNS) match one site.
#[kubeforge::controller(
    for = StaticSite,
    index("tls-secret" = tls_secret_of),
    owns(ConfigMap, Deployment, Service),
    watches(Secret = sites_using),
    name = "static-site"
)]
async fn reconcile(
    site: Arc<StaticSite>,
    ctx: Context<dns::Records>,
) -> Result<Action, ReconcileError> {
    let namespace = site
        .namespace()
        .ok_or_else(|| ReconcileError::terminal("StaticSite has no namespace"))?;
    let sites: Api<StaticSite> = Api::namespaced(ctx.client().clone(), &namespace);
    finalizer(&sites, DNS_FINALIZER, site, async |event| match event {
        Event::Apply(site) => publish(&site, &ctx, &sites).await,
        Event::Cleanup(site) => unpublish(&site, &ctx).await,
    })
    .await
}

/// Children, DNS record, status, events.
async fn publish(
    site: &StaticSite,
    ctx: &Context<dns::Records>,
    sites: &Api<StaticSite>,
) -> Result<Action, ReconcileError> {
    let client = ctx.client();
    let namespace = site.namespace().unwrap_or_default();
    // The Secret comes from the cache the Secret watch keeps: no API call per reconcile.
    let tls = match &site.spec.tls_secret {
        Some(name) => match ctx.lister::<Secret>()?.get(Some(&namespace), name) {
            Some(secret) => Some(secret),
            None => {
                ctx.recorder()
                    .warning(
                        site,
                        "TLSSecretMissing",
                        &format!("waiting for Secret {name}"),
                    )
                    .await?;
                let mut status = site.status.clone().unwrap_or_default();
                set_condition(
                    &mut status.conditions,
                    new_condition(
                        "Ready",
                        "False",
                        "TLSSecretMissing",
                        &format!("Secret {name} does not exist"),
                    ),
                );
                apply_status::<StaticSite, StaticSiteStatus>(
                    sites,
                    &site.name_any(),
                    MANAGER,
                    &status,
                )
                .await?;
                // The Secret watch reconciles the site as soon as the Secret appears.
                return Ok(Action::await_change());
            }
        },
        None => None,
    };
    apply_owned(client, site, resource::desired_content(site), MANAGER).await?;
    let tls_version = tls.as_ref().and_then(|s| s.resource_version());
    apply_owned(
        client,
        site,
        resource::desired_deployment(site, tls_version.as_deref()),
        MANAGER,
    )
    .await?;
    let service = apply_owned(client, site, resource::desired_service(site), MANAGER).await?;

    let target = format!("{}.{namespace}.svc", service.name_any());
    ctx.data().upsert(&site.spec.domain, &target).map_err(|e| {
        ReconcileError::transient(format!(
            "cannot write the DNS record of {}: {e}",
            site.spec.domain
        ))
    })?;

    let mut status = site.status.clone().unwrap_or_default();
    let url = format!(
        "{}://{}",
        if tls.is_some() { "https" } else { "http" },
        site.spec.domain
    );
    let changed = set_condition(
        &mut status.conditions,
        new_condition(
            "Ready",
            "True",
            "Published",
            &format!("serving {} files at {url}", site.spec.files.len()),
        ),
    );
    status.url = Some(url.clone());
    apply_status::<StaticSite, StaticSiteStatus>(sites, &site.name_any(), MANAGER, &status).await?;
    if changed {
        ctx.recorder()
            .normal(site, "Published", &format!("published at {url}"))
            .await?;
    }
    // Look again every five minutes: the DNS record lives outside the cluster and may drift.
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// Removes the site's DNS record (the children go with the site, by their owner references).
async fn unpublish(
    site: &StaticSite,
    ctx: &Context<dns::Records>,
) -> Result<Action, ReconcileError> {
    ctx.data().remove(&site.spec.domain).map_err(|e| {
        ReconcileError::transient(format!(
            "cannot remove the DNS record of {}: {e}",
            site.spec.domain
        ))
    })?;
    ctx.recorder()
        .normal(
            site,
            "Unpublished",
            &format!("DNS record for {} removed", site.spec.domain),
        )
        .await?;
    Ok(Action::await_change())
}

#[tokio::main]
async fn main() -> ExitCode {
    kubeforge::manager::entry::run(MANAGER, async |mgr| {
        Ok(setup(mgr, dns::Records::from_env())?)
    })
    .await
}
