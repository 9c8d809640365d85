// Compile-fail case; refresh the expected .stderr with: TRYBUILD=overwrite cargo test -p kubeforge-macros --test ui
use kubeforge::CustomResource;
use serde::{Deserialize, Serialize};

mod v1 {
    use super::*;
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "example.com", version = "v1", kind = "Widget", storage)]
    pub struct WidgetSpec {
        pub size: i32,
    }
}

mod v2 {
    use super::*;
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
    #[kubeforge(group = "example.com", version = "v2", kind = "Widget", storage)]
    pub struct WidgetSpec {
        pub size: i64,
    }
}

fn main() {}
