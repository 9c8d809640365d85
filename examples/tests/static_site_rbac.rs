//! The RBAC the operator prints is enough, and no more: on a real kube-apiserver with RBAC
//! enforced (and `OwnerReferencesPermissionEnforcement`, as many clusters run it), the
//! static-site operator runs as a ServiceAccount bound only to the ClusterRole its `rbac
//! --leader-elect` prints, and publishes, records events, writes status, elects a leader and runs
//! its finalizer; then, once per inferred rule, the same operator bound to every rule but that
//! one is refused by the API server on it (so no printed rule is unneeded).

mod support;

use std::path::Path;

use kubeforge_e2e::Kubectl;
use kubeforge_testkit::control_plane::ControlPlane;
use serde_yaml::Value;

use support::{Operator, eventually, output};

const OPERATOR: &str = env!("CARGO_BIN_EXE_static-site-operator");

/// `kubectl` off the async runtime.
async fn kubectl(k: &Kubectl, args: &[&str]) -> anyhow::Result<String> {
    let (k, args): (Kubectl, Vec<String>) =
        (k.clone(), args.iter().map(|a| (*a).to_owned()).collect());
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        k.run(&args)
    })
    .await?
}

async fn apply(k: &Kubectl, manifest: String) -> anyhow::Result<()> {
    let k = k.clone();
    tokio::task::spawn_blocking(move || k.apply(&manifest, &[])).await??;
    Ok(())
}

/// The admin kubeconfig with the ServiceAccount's token instead of the admin's.
fn service_account_kubeconfig(admin: &Path, token: &str, out: &Path) -> anyhow::Result<()> {
    let mut config: Value = serde_yaml::from_str(&std::fs::read_to_string(admin)?)?;
    config["users"][0]["user"]["token"] = Value::String(token.trim().to_owned());
    std::fs::write(out, serde_yaml::to_string(&config)?)?;
    Ok(())
}

/// One run: a namespace, a ServiceAccount bound to `rules`, the operator as that account.
struct Run<'a> {
    admin: &'a Kubectl,
    admin_kubeconfig: &'a Path,
    dir: &'a Path,
    ns: String,
}

impl Run<'_> {
    /// Creates the namespace, the account and its ClusterRole + binding, waits until the API
    /// server authorizes with them, and starts the operator as the account.
    async fn start(&self, rules: &Value) -> anyhow::Result<(Operator, std::path::PathBuf)> {
        let ns = &self.ns;
        let role = serde_yaml::to_string(&serde_yaml::Mapping::from_iter([
            ("apiVersion".into(), "rbac.authorization.k8s.io/v1".into()),
            ("kind".into(), "ClusterRole".into()),
            (
                "metadata".into(),
                Value::Mapping(
                    [("name".into(), format!("static-site-{ns}").into())]
                        .into_iter()
                        .collect(),
                ),
            ),
            ("rules".into(), rules.clone()),
        ]))?;
        apply(
            self.admin,
            format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n"),
        )
        .await?;
        apply(
            self.admin,
            format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: operator\n  namespace: {ns}\n"),
        )
        .await?;
        apply(self.admin, role).await?;
        apply(
            self.admin,
            format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: static-site-{ns}\n\
                 roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: static-site-{ns}\n\
                 subjects:\n- kind: ServiceAccount\n  name: operator\n  namespace: {ns}\n"
            ),
        )
        .await?;
        // Authorized with the first rule granted: the binding is in effect.
        let who = format!("system:serviceaccount:{ns}:operator");
        let first = &rules[0];
        let group = first["apiGroups"][0].as_str().unwrap_or_default();
        let resource = first["resources"][0].as_str().unwrap_or_default();
        let resource = if group.is_empty() {
            resource.to_owned()
        } else {
            format!("{resource}.{group}")
        };
        let verb = first["verbs"][0].as_str().unwrap_or("get");
        eventually("the binding to take effect", || async {
            let answer = kubectl(
                self.admin,
                &["auth", "can-i", verb, &resource, "-n", ns, "--as", &who],
            )
            .await;
            Ok(answer.is_ok_and(|a| a.trim() == "yes").then_some(()))
        })
        .await?;
        let token = kubectl(
            self.admin,
            &["create", "token", "operator", "-n", ns, "--duration", "1h"],
        )
        .await?;
        let kubeconfig = self.dir.join(format!("{ns}.kubeconfig"));
        service_account_kubeconfig(self.admin_kubeconfig, &token, &kubeconfig)?;
        let log = self.dir.join(format!("{ns}.log"));
        let dns = self.dir.join(format!("{ns}-dns"));
        let operator = Operator::start_with_args(
            OPERATOR,
            &kubeconfig,
            &log,
            &[("STATIC_SITE_DNS_DIR", &dns)],
            &[
                "--namespace",
                ns,
                "--leader-elect",
                "--leader-election-namespace",
                ns,
            ],
        )?;
        Ok((operator, log))
    }

    /// A Secret and a site using it, as the admin.
    async fn create_site(&self) -> anyhow::Result<()> {
        let ns = &self.ns;
        apply(
            self.admin,
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tls\n  namespace: {ns}\nstringData:\n  tls.crt: c\n---\n\
                 apiVersion: web.example.com/v1\nkind: StaticSite\nmetadata:\n  name: blog\n  namespace: {ns}\n\
                 spec:\n  domain: blog.example.com\n  files:\n    index.html: hi\n  tlsSecret: tls\n"
            ),
        )
        .await
    }

    async fn cleanup(&self) {
        let ns = &self.ns;
        let _ = kubectl(self.admin, &["delete", "namespace", ns, "--wait=false"]).await;
        let _ = kubectl(
            self.admin,
            &[
                "delete",
                "clusterrole,clusterrolebinding",
                &format!("static-site-{ns}"),
            ],
        )
        .await;
    }
}

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_rbac_is_enough_and_every_rule_is_needed() -> anyhow::Result<()> {
    let cp = ControlPlane::builder()
        .apiserver_arg("--enable-admission-plugins=OwnerReferencesPermissionEnforcement")
        .start()
        .await?;
    let dir = tempfile::tempdir()?;
    let admin = Kubectl::new(cp.kubeconfig_path())?;
    apply(&admin, output(OPERATOR, &["crds"])?).await?;
    kubectl(
        &admin,
        &[
            "wait",
            "--for=condition=Established",
            "crd/staticsites.web.example.com",
        ],
    )
    .await?;
    let printed: Value = serde_yaml::from_str(
        output(OPERATOR, &["rbac", "--leader-elect"])?.trim_start_matches("---\n"),
    )?;
    let rules = printed["rules"].as_sequence().cloned().unwrap_or_default();
    assert!(rules.len() >= 8, "{printed:?}");

    // Every printed rule: the whole lifecycle completes, and nothing was refused.
    let run = Run {
        admin: &admin,
        admin_kubeconfig: cp.kubeconfig_path(),
        dir: dir.path(),
        ns: "rbac-all".into(),
    };
    let (operator, log) = run.start(&Value::Sequence(rules.clone())).await?;
    run.create_site().await?;
    let ns = run.ns.clone();
    eventually("the site Ready as the ServiceAccount", || async {
        let ready = kubectl(
            &admin,
            &[
                "get",
                "site",
                "blog",
                "-n",
                &ns,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ],
        )
        .await?;
        Ok((ready == "True").then_some(()))
    })
    .await?;
    eventually("the Published event", || async {
        let events = kubectl(
            &admin,
            &[
                "get",
                "events.events.k8s.io",
                "-n",
                &ns,
                "-o",
                "jsonpath={.items[*].reason}",
            ],
        )
        .await?;
        Ok(events.contains("Published").then_some(()))
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}; the operator's log:\n{}", log_of(&log)))?;
    let lease = kubectl(&admin, &["get", "lease", "-n", &ns, "-o", "name"]).await?;
    assert!(
        lease.contains("static-site-operator"),
        "leader election holds a Lease: {lease}"
    );
    kubectl(
        &admin,
        &["delete", "site", "blog", "-n", &ns, "--wait=false"],
    )
    .await?;
    eventually("the finalizer done and the site gone", || async {
        let sites = kubectl(&admin, &["get", "staticsites", "-n", &ns, "-o", "name"]).await?;
        Ok(sites.trim().is_empty().then_some(()))
    })
    .await?;
    let text = log_of(&log);
    assert!(
        !text.contains("forbidden"),
        "nothing is refused with every printed rule:\n{text}"
    );
    drop(operator);
    run.cleanup().await;

    // Each rule left out in turn: the API server refuses the operator on it.
    for (i, left_out) in rules.iter().enumerate() {
        let mut fewer = rules.clone();
        fewer.remove(i);
        let run = Run {
            admin: &admin,
            admin_kubeconfig: cp.kubeconfig_path(),
            dir: dir.path(),
            ns: format!("rbac-without-{i}"),
        };
        let (operator, log) = run.start(&Value::Sequence(fewer)).await?;
        run.create_site().await?;
        let resource = left_out["resources"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // A subresource's refusal names it in its own words ("cannot set blockOwnerDeletion ...
        // can't set finalizers on"), so look for its last segment.
        let resource = resource.rsplit('/').next().unwrap_or_default().to_owned();
        let refused = eventually(
            &format!("a refusal for the missing rule {left_out:?}"),
            || async {
                let text = log_of(&log);
                Ok(text
                    .lines()
                    .find(|l| l.contains("forbidden") && l.contains(&resource))
                    .map(str::to_owned))
            },
        )
        .await;
        drop(operator);
        run.cleanup().await;
        let line =
            refused.map_err(|e| anyhow::anyhow!("{e}; the operator's log:\n{}", log_of(&log)))?;
        eprintln!("without {resource}: {line}");
    }
    cp.shutdown().await;
    Ok(())
}
