//! The `kubeforge` command line.
fn main() -> anyhow::Result<()> {
    Ok(())
}
