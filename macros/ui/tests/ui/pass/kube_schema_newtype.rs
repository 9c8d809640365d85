// Accepted: a KubeSchema newtype is its inner schema, as serde writes it.
use kubeforge::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
#[kubeforge(group = "example.com", version = "v1")]
pub struct FooSpec {
    pub replicas: Replicas,
}

#[derive(Serialize, Deserialize, Clone, Debug, KubeSchema)]
pub struct Replicas(#[kubeforge(minimum = 1)] pub i32);

fn main() {
    let crd = serde_json::to_value(Foo::crd()).unwrap();
    let replicas = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["replicas"];
    assert_eq!(replicas["type"], "integer");
    assert_eq!(replicas["minimum"].as_f64(), Some(1.0));
}
