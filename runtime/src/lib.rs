//! kubeforge: the client-go informer machinery in Rust, and the controllers built on it.
//!
//! The pipeline is `reflector` → `fifo` → process loop (`informer`) → `store` + `handler`;
//! `workqueue`, `controller` and `manager` sit on top. See DESIGN.md for the map.

// The informer chain.
pub mod backoff;
pub mod fifo;
pub mod handler;
pub mod informer;
pub mod key;
pub mod reflector;
pub mod store;

pub use fifo::{DeletedObject, Delta, DeltaFifo};
pub use handler::{HandlerFns, Registration, ResourceEventHandler};
pub use informer::{InformerFactory, InformerOptions, SharedIndexInformer};
pub use key::ObjectKey;
pub use reflector::{ApiListWatch, ListWatch, MetadataListWatch, Reflector, ReflectorConfig};
pub use store::{IndexFnError, IndexValue, Indexers, Lister};

// Controllers and the manager.
pub mod controller;
pub mod manager;
pub mod workqueue;

// What derived resources and controllers register, for `crds` / `rbac`.
pub mod registry;

pub use k8s_openapi;
pub use kube;
