// Compile-fail case; refresh the expected .stderr with: TRYBUILD=overwrite cargo test -p kubeforge-macros --test ui
#[kubeforge::controller(for = k8s_openapi::api::core::v1::ConfigMap, rbac(groups = [""], resources = ["secrets"], verbs = ["gett"]))]
async fn reconcile() {}

fn main() {}
