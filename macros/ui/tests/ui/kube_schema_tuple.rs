// Compile-fail case; refresh the expected .stderr with: TRYBUILD=overwrite cargo test -p kubeforge-macros --test ui
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, kubeforge::KubeSchema)]
pub struct Pair(String, i32);

fn main() {}
