// Compile-fail case; refresh the expected .stderr with: TRYBUILD=overwrite cargo test -p kubeforge-macros --test ui
pub struct NotAResource;

#[kubeforge::controller(for = NotAResource)]
async fn reconcile() {}

fn main() {}
