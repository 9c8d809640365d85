// Compile-fail case; refresh the expected .stderr with: TRYBUILD=overwrite cargo test -p kubeforge-macros --test ui
use kubeforge::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug)]
#[kubeforge(group = "example.com", version = "v1")]
pub struct FooSpec {
    pub size: i32,
}

fn main() {}
