//! `kubeforge serve`: the embedded API server as a standalone process.

use std::path::PathBuf;

use anyhow::Context as _;
use kubeforge_testkit::ApiServer;

/// Arguments of `kubeforge serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port to listen on at 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write a kubeconfig for `kubectl --kubeconfig <PATH>` and operators.
    #[arg(long, default_value = "kubeforge.kubeconfig")]
    kubeconfig_out: PathBuf,
    /// How many change events the server keeps for watches; older resourceVersions get 410 Gone.
    #[arg(long)]
    history_window: Option<usize>,
    /// Keep the objects in this directory (created if missing), so they survive a restart or a
    /// crash: every write is on disk before it is answered, and resourceVersions continue. In
    /// memory only without it.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// Starts the server, writes the kubeconfig, and serves until Ctrl-C or SIGTERM.
pub fn exec(args: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("failed to start the tokio runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let mut builder = ApiServer::builder().port(args.port);
    if let Some(window) = args.history_window {
        builder = builder.history_window(window);
    }
    if let Some(dir) = &args.data_dir {
        builder = builder.data_dir(dir);
    }
    let server = builder
        .start()
        .await
        .with_context(|| format!("failed to start the API server on 127.0.0.1:{}", args.port))?;
    server.write_kubeconfig(&args.kubeconfig_out).with_context(|| {
        format!(
            "failed to write the kubeconfig to {}; choose a writable path with --kubeconfig-out",
            args.kubeconfig_out.display()
        )
    })?;
    let kubeconfig = std::path::absolute(&args.kubeconfig_out)?;
    println!("kubeforge API server listening on {}", server.url());
    println!("kubeconfig written to {}", kubeconfig.display());
    println!(
        "try: kubectl --kubeconfig {} get namespaces",
        kubeconfig.display()
    );
    println!("press Ctrl-C to stop");
    shutdown_signal().await?;
    server.shutdown().await;
    Ok(())
}

async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("failed to listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("failed to listen for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
