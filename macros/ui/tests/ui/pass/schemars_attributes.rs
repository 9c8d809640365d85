// Accepted: schemars' own field attributes are the escape hatch, on spec and KubeSchema fields.
use kubeforge::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug)]
#[kubeforge(group = "example.com", version = "v1")]
pub struct FooSpec {
    #[schemars(length(min = 2, max = 8))]
    pub label: String,
    #[schemars(range(min = 1, max = 5))]
    pub size: i32,
    pub inner: Inner,
}

#[derive(Serialize, Deserialize, Clone, Debug, KubeSchema)]
pub struct Inner {
    #[schemars(regex(pattern = r"^[a-z]+$"))]
    pub name: String,
}

fn main() {
    let crd = serde_json::to_value(Foo::crd()).unwrap();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    assert_eq!(spec["label"]["minLength"], 2);
    assert_eq!(spec["label"]["maxLength"], 8);
    assert_eq!(spec["size"]["maximum"].as_f64(), Some(5.0));
    assert_eq!(spec["inner"]["properties"]["name"]["pattern"], "^[a-z]+$");
}
