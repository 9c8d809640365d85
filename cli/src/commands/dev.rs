//! `kubeforge dev`: the inner loop. Starts the embedded API server, applies the CRDs and the
//! samples, runs the operator against it with its logs streamed, and rebuilds and restarts it
//! whenever `src/` (or `Cargo.toml`) changes. Ctrl-C stops the operator and the server.
//!
//! Changes are found by polling modification times every half second: a handful of files, no
//! platform file-watching quirks (editors that replace files, network filesystems).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use crate::cargo;
use crate::local::{LocalCluster, RunningOperator};
use crate::project::{self, Project};

/// Arguments of `kubeforge dev`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  kubeforge dev\n  \
                        # in another terminal: export KUBECONFIG=$PWD/target/kubeforge-dev.kubeconfig; kubectl get all -A")]
pub struct Args {
    /// Where to write the embedded server's kubeconfig (default: target/kubeforge-dev.kubeconfig).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig_out: Option<PathBuf>,
    /// Do not apply config/samples/*.yaml.
    #[arg(long)]
    pub no_samples: bool,
    /// Keep the server's objects in this directory, so they survive restarts of `kubeforge dev`
    /// (in memory only without it).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Runs the loop until Ctrl-C or SIGTERM.
pub fn exec(args: Args) -> anyhow::Result<()> {
    let root = project::find_root(Path::new("."))?;
    let project = Project::read(&root)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(dev(&root, &project, &args))
}

async fn dev(root: &Path, project: &Project, args: &Args) -> anyhow::Result<()> {
    let kubeconfig = match &args.kubeconfig_out {
        Some(path) => path.clone(),
        None => cargo::target_dir(root)?.join("kubeforge-dev.kubeconfig"),
    };
    if let Some(dir) = kubeconfig.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let cluster = LocalCluster::start(&kubeconfig, args.data_dir.as_deref()).await?;
    eprintln!(
        "kubeforge dev: embedded API server at {}\n  export KUBECONFIG={}",
        cluster.url(),
        cluster.kubeconfig().display()
    );
    let result = run_loop(root, project, args, &cluster).await;
    cluster.shutdown().await;
    eprintln!("kubeforge dev: stopped");
    result
}

async fn run_loop(
    root: &Path,
    project: &Project,
    args: &Args,
    cluster: &LocalCluster,
) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut seen = snapshot(root);
    let mut operator: Option<RunningOperator> = None;
    let mut first = true;
    loop {
        match start(root, project, args, cluster, first).await {
            Ok(running) => {
                // Drop (kill) the old one only once the new one is built and ready to start.
                operator = Some(running);
                first = false;
                eprintln!(
                    "kubeforge dev: operator running; watching src/ for changes (Ctrl-C stops)"
                );
            }
            Err(e) => eprintln!(
                "kubeforge dev: {e:#}\nkubeforge dev: {} — fix the code and save to try again",
                if operator.is_some() {
                    "keeping the previous build running"
                } else {
                    "no operator running"
                }
            ),
        }
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = term.recv() => return Ok(()),
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            if let Some(status) = operator.as_mut().and_then(RunningOperator::exited) {
                eprintln!(
                    "kubeforge dev: the operator exited ({status}); it restarts on the next change"
                );
                operator = None;
            }
            let now = snapshot(root);
            if now != seen {
                seen = now;
                eprintln!("kubeforge dev: change detected, rebuilding");
                break;
            }
        }
    }
}

/// Builds, applies the CRDs (and on the first start the samples), and starts the operator.
async fn start(
    root: &Path,
    project: &Project,
    args: &Args,
    cluster: &LocalCluster,
    first: bool,
) -> anyhow::Result<RunningOperator> {
    let (root_owned, name) = (root.to_path_buf(), project.name.clone());
    let operator = tokio::task::spawn_blocking(move || cargo::build(&root_owned, &name)).await??;
    let crds = cluster.install_crds(&operator.output(&["crds"])?).await?;
    if !crds.is_empty() {
        eprintln!("kubeforge dev: CRDs applied: {}", crds.join(", "));
    }
    if first && !args.no_samples {
        for sample in samples(root) {
            match cluster.apply_file(&sample).await {
                Ok(objs) => eprintln!("kubeforge dev: applied {}", objs.join(", ")),
                Err(e) => eprintln!("kubeforge dev: skipped {}: {e:#}", sample.display()),
            }
        }
    }
    RunningOperator::start(&operator.binary, cluster.kubeconfig())
}

/// `config/samples/*.yaml` but the kustomization, sorted.
pub fn samples(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root.join("config/samples"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && p.file_name().is_some_and(|n| n != "kustomization.yaml")
        })
        .collect();
    out.sort();
    out
}

/// Modification time and size of every file under `src/`, plus `Cargo.toml` and `build.rs`.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (SystemTime, u64)> {
    let mut files = BTreeMap::new();
    let mut stack = vec![root.join("src")];
    for extra in ["Cargo.toml", "build.rs"] {
        stack.push(root.join(extra));
    }
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else {
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            files.insert(path, (modified, meta.len()));
        }
    }
    files
}
