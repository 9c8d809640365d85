//! The boot sequence of a [`ControlPlane`]: etcd on a free port, then the certificates and
//! kube-apiserver with its flags, then the kubeconfig and client, then (when built and wanted)
//! kube-controller-manager; after each start it waits until that process is ready (etcd's
//! `/health`, kube-apiserver's `/readyz` and the `default` namespace, a garbage-collected probe
//! ConfigMap), failing early when a child exits. Called by
//! [`ControlPlaneBuilder::start`](super::ControlPlaneBuilder::start) once per attempt.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kube::api::Api;
use kube::config::KubeConfigOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::certificates::write_certificates;
use super::process::{Spawner, Supervised, free_port, owned_temp_dir, tail};
use super::{ADMIN_USER, Binaries, ControlPlane, ControlPlaneError, Result, io_err};

/// Creates the plane's temp dir and boots the processes into it; the caller retries when a
/// child lost a race for its port.
pub(super) async fn boot_once(
    binaries: &Binaries,
    apiserver_args: &[String],
    timeout: Duration,
    controllers: Option<&[String]>,
) -> Result<ControlPlane> {
    let dir = owned_temp_dir()?;
    let mut plane = ControlPlane {
        controller_manager: None,
        apiserver: None,
        etcd: None,
        spawner: Spawner::new(),
        client: None,
        url: String::new(),
        etcd_port: 0,
        kubeconfig_path: dir.path().join("kubeconfig"),
        dir,
    };
    plane
        .boot(binaries, apiserver_args, timeout, controllers)
        .await?;
    Ok(plane)
}

impl ControlPlane {
    async fn boot(
        &mut self,
        binaries: &Binaries,
        extra: &[String],
        timeout: Duration,
        controllers: Option<&[String]>,
    ) -> Result<()> {
        let dir = self.dir.path().to_path_buf();
        let etcd_port = free_port()?;
        self.etcd_port = etcd_port;
        let apiserver_port = free_port()?;

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let etcd_args = vec![
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            // Port 0: no fixed peer port to collide with other control planes on the machine.
            "--listen-peer-urls=http://127.0.0.1:0".to_string(),
            // Test data is thrown away; fsync only slows every write down.
            "--unsafe-no-fsync=true".to_string(),
        ];
        self.etcd = Some(
            self.spawner
                .spawn("etcd", &binaries.etcd, &etcd_args, &dir)?,
        );
        self.wait_etcd(etcd_port, timeout).await?;

        let certs = write_certificates(&dir)?;
        self.url = format!("https://127.0.0.1:{apiserver_port}");
        let mut args = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".to_string(),
            "--advertise-address=127.0.0.1".to_string(),
            // 1.37 refuses a loopback advertise address while it maintains the `kubernetes`
            // Service's endpoints; nothing in a test routes to that Service anyway.
            "--endpoint-reconciler-type=none".to_string(),
            format!("--secure-port={apiserver_port}"),
            format!("--cert-dir={}", dir.join("apiserver-certs").display()),
            format!("--tls-cert-file={}", certs.serving_cert.display()),
            format!("--tls-private-key-file={}", certs.serving_key.display()),
            format!("--token-auth-file={}", certs.token_file.display()),
            "--authorization-mode=RBAC".to_string(),
            "--service-cluster-ip-range=10.0.0.0/24".to_string(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_string(),
            format!(
                "--service-account-key-file={}",
                certs.sa_public_key.display()
            ),
            format!(
                "--service-account-signing-key-file={}",
                certs.sa_key.display()
            ),
            "--allow-privileged=true".to_string(),
            // Without a controller manager nothing creates service accounts; Pods must not need one.
            "--disable-admission-plugins=ServiceAccount".to_string(),
        ];
        args.extend(extra.iter().cloned());
        self.apiserver =
            Some(
                self.spawner
                    .spawn("kube-apiserver", &binaries.kube_apiserver, &args, &dir)?,
            );

        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kubeforge-control-plane\n  cluster:\n    \
             server: {url}\n    certificate-authority: {ca}\nusers:\n- name: {ADMIN_USER}\n  user:\n    \
             token: {token}\ncontexts:\n- name: kubeforge-control-plane\n  context:\n    \
             cluster: kubeforge-control-plane\n    user: {ADMIN_USER}\n    namespace: default\n\
             current-context: kubeforge-control-plane\n",
            url = self.url,
            ca = certs.ca_cert.display(),
            token = certs.token,
        );
        fs::write(&self.kubeconfig_path, kubeconfig).map_err(io_err(format!(
            "writing the kubeconfig {}",
            self.kubeconfig_path.display()
        )))?;
        let kubeconfig = self.kubeconfig()?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|err| ControlPlaneError::Kubeconfig {
                    path: self.kubeconfig_path.clone(),
                    message: err.to_string(),
                })?;
        let client = kube::Client::try_from(config)?;
        self.client = Some(client.clone());
        self.wait_apiserver(&client, timeout).await?;

        if let (Some(kcm), Some(extra)) = (binaries.kube_controller_manager.as_ref(), controllers) {
            let kubeconfig = format!("--kubeconfig={}", self.kubeconfig_path.display());
            // Garbage collection through ownerReferences and namespace deletion always; other
            // controllers only when a test asks for them (it then plays kubelet itself).
            let mut names = vec!["garbagecollector".to_string(), "namespace".to_string()];
            names.extend(extra.iter().cloned());
            let args = vec![
                kubeconfig,
                format!("--controllers={}", names.join(",")),
                "--leader-elect=false".to_string(),
                // No serving endpoint: nothing scrapes it, and it would need its own port.
                "--secure-port=0".to_string(),
            ];
            self.controller_manager =
                Some(
                    self.spawner
                        .spawn("kube-controller-manager", kcm, &args, &dir)?,
                );
            self.wait_garbage_collector(&client, timeout).await?;
        }
        Ok(())
    }

    async fn wait_etcd(&mut self, port: u16, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let mut last_error = String::from("not checked yet");
        while started.elapsed() < timeout {
            self.check_alive()?;
            match http_get_plain(port, "/health").await {
                Ok(body) if body.contains("\"health\":\"true\"") => return Ok(()),
                Ok(body) => last_error = format!("/health answered {body:?}"),
                Err(err) => last_error = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(not_ready(self.etcd.as_ref(), started.elapsed(), last_error))
    }

    async fn wait_apiserver(&mut self, client: &kube::Client, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let mut last_error = String::from("not checked yet");
        while started.elapsed() < timeout {
            self.check_alive()?;
            match get_text(client, "/readyz").await {
                // `ok` alone does not mean the bootstrap controller has created `default` yet,
                // and tests create objects there straight away.
                Ok(body) if body.trim() == "ok" => {
                    match get_text(client, "/api/v1/namespaces/default").await {
                        Ok(_) => return Ok(()),
                        Err(err) => last_error = format!("namespace default: {err}"),
                    }
                }
                Ok(body) => last_error = format!("/readyz answered {body:?}"),
                Err(err) => last_error = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(not_ready(
            self.apiserver.as_ref(),
            started.elapsed(),
            last_error,
        ))
    }

    /// Waits until the garbage collector deletes a dependent of a deleted owner: proof that the
    /// controller manager runs and its dependency graph has synced.
    async fn wait_garbage_collector(
        &mut self,
        client: &kube::Client,
        timeout: Duration,
    ) -> Result<()> {
        use k8s_openapi::api::core::v1::ConfigMap;
        use kube::api::{DeleteParams, PostParams};
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let owner_name = format!("kubeforge-gc-probe-owner-{}", &suffix[..8]);
        let dependent_name = format!("kubeforge-gc-probe-dependent-{}", &suffix[..8]);
        let mut owner = ConfigMap::default();
        owner.metadata.name = Some(owner_name.clone());
        let owner = api.create(&PostParams::default(), &owner).await?;
        let mut dependent = ConfigMap::default();
        dependent.metadata.name = Some(dependent_name.clone());
        dependent.metadata.owner_references = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "v1".to_string(),
                kind: "ConfigMap".to_string(),
                name: owner_name.clone(),
                uid: owner.metadata.uid.clone().unwrap_or_default(),
                ..Default::default()
            },
        ]);
        api.create(&PostParams::default(), &dependent).await?;
        api.delete(&owner_name, &DeleteParams::background()).await?;
        let started = Instant::now();
        let mut last_error = String::from("the dependent still exists");
        while started.elapsed() < timeout {
            self.check_alive()?;
            match api.get_opt(&dependent_name).await {
                Ok(None) => return Ok(()),
                Ok(Some(_)) => {}
                Err(err) => last_error = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(not_ready(
            self.controller_manager.as_ref(),
            started.elapsed(),
            format!("garbage collection of a probe ConfigMap: {last_error}"),
        ))
    }

    fn check_alive(&mut self) -> Result<()> {
        for child in [
            self.etcd.as_mut(),
            self.apiserver.as_mut(),
            self.controller_manager.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if let Ok(Some(status)) = child.child.try_wait() {
                return Err(ControlPlaneError::Exited {
                    process: child.name,
                    status,
                    log: child.log.clone(),
                    tail: tail(&child.log, 30),
                });
            }
        }
        Ok(())
    }
}

fn not_ready(
    child: Option<&Supervised>,
    waited: Duration,
    last_error: String,
) -> ControlPlaneError {
    let (process, log) = child
        .map(|c| (c.name, c.log.clone()))
        .unwrap_or(("control plane", PathBuf::new()));
    ControlPlaneError::NotReady {
        process,
        waited,
        last_error,
        tail: tail(&log, 30),
        log,
    }
}

async fn get_text(client: &kube::Client, path: &str) -> Result<String, String> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|err| err.to_string())?;
    client
        .request_text(request)
        .await
        .map_err(|err| err.to_string())
}

/// A minimal HTTP/1.0 GET against etcd's plain-HTTP client port (no client dependency needed).
async fn http_get_plain(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "etcd /health timed out")
        })??;
    Ok(String::from_utf8_lossy(&response).into_owned())
}
