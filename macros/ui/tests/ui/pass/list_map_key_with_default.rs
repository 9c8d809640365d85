// Accepted: a list map key with a serde default is fine when the schema has a default too.
use kubeforge::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
#[kubeforge(group = "example.com", version = "v1")]
pub struct FooSpec {
    #[kubeforge(list_type = "map", list_map_key = "protocol", list_map_key = "port")]
    pub listeners: Vec<Listener>,
}

#[derive(Serialize, Deserialize, Clone, Debug, KubeSchema)]
pub struct Listener {
    #[serde(default = "tcp")]
    #[kubeforge(default = "TCP")]
    pub protocol: String,
    pub port: i32,
    pub name: Option<String>,
}

fn tcp() -> String {
    "TCP".into()
}

fn main() {
    let crd = serde_json::to_value(Foo::crd()).unwrap();
    let items = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["listeners"]["items"];
    assert_eq!(items["properties"]["protocol"]["default"], "TCP");
}
