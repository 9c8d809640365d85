// Compile-fail case; refresh the expected .stderr with: TRYBUILD=overwrite cargo test -p kubeforge-macros --test ui
use kubeforge::CustomResource;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
#[kubeforge(group = "Example", version = "one", kind = "foo")]
pub struct FooSpec {
    #[kubeforge(pattern = "(", enum_values = [1, 2])]
    pub name: String,
}

fn main() {}
