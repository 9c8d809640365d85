//! Starts a real control plane (etcd + kube-apiserver) for manual use and prints its kubeconfig:
//!
//! ```sh
//! cargo run -p kubeforge-testkit --example control_plane   # then, in another shell:
//! kubectl --kubeconfig <printed path> get ns
//! ```
//!
//! It runs until its standard input closes (Ctrl-D), then stops both processes.

use std::io::Read;

use kubeforge_testkit::control_plane::ControlPlane;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let plane = ControlPlane::start().await?;
    println!("KUBECONFIG={}", plane.kubeconfig_path().display());
    println!("server {} ready; close stdin (Ctrl-D) to stop", plane.url());
    tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await??;
    plane.shutdown().await;
    Ok(())
}
