//! kubeforge: the client-go informer machinery in Rust, and the controllers built on it.
//!
//! The pipeline is `reflector` → `fifo` → process loop (`informer`) → `store` + `handler`.

pub use k8s_openapi;
pub use kube;
