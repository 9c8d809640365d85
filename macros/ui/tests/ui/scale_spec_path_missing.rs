// Compile-fail case; refresh the expected .stderr with: TRYBUILD=overwrite cargo test -p kubeforge-macros --test ui
use kubeforge::CustomResource;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
#[kubeforge(group = "example.com", version = "v1", status = FooStatus,
    scale(spec_replicas_path = ".spec.replicas", status_replicas_path = ".status.replicas"))]
pub struct FooSpec {
    pub size: i32,
}

#[derive(Serialize, Deserialize, Clone, Debug, schemars::JsonSchema)]
pub struct FooStatus {
    pub replicas: i32,
}

fn main() {}
