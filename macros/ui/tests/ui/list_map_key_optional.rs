// Compile-fail case; refresh the expected .stderr with: TRYBUILD=overwrite cargo test -p kubeforge-macros --test ui
use kubeforge::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
#[kubeforge(group = "example.com", version = "v1")]
pub struct FooSpec {
    #[kubeforge(list_type = "map", list_map_key = "name")]
    pub ports: Vec<Port>,
    #[kubeforge(list_type = "map", list_map_key = "protocol", list_map_key = "port")]
    pub listeners: Option<Vec<Listener>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, KubeSchema)]
pub struct Port {
    pub name: Option<String>,
    pub port: i32,
}

#[derive(Serialize, Deserialize, Clone, Debug, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    #[serde(default)]
    pub protocol: String,
    pub port: i32,
}

fn main() {}
