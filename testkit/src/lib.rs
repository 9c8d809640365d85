//! An embedded Kubernetes API server for tests: the real REST API over plain HTTP on loopback.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = kubeforge_testkit::ApiServer::start().await?;
//! let client = server.client(); // a kube::Client
//! server.write_kubeconfig(std::path::Path::new("kubeconfig"))?; // for kubectl
//! # Ok(()) }
//! ```
//!
//! What it serves: built-in kinds (one table, [`resources`]), CRDs with schema validation,
//! pruning and defaulting, discovery, CRUD with real metadata stamping, one global
//! resourceVersion, the four patch types (server-side apply with simplified field ownership,
//! see [`apply`]), status and scale subresources, finalizers, garbage collection through
//! ownerReferences, selectors, pagination, Table output, watches with bookmarks and a bounded
//! history window, and `Status` errors shaped like the real server's. As in kube-apiserver,
//! core/v1 and `events.k8s.io/v1` Events are one store served through both APIs, an unchanged
//! server-side apply writes nothing, and size limits hold: request bodies over 3 MiB get 413,
//! ConfigMap or Secret data over 1 MiB 422, objects over etcd's 1.5 MiB a 500. Each watch event
//! is serialised once and shared by every watcher of the resource. With
//! [`ApiServerBuilder::data_dir`] the objects survive a restart or a crash ([`persist`]). As
//! kube-apiserver does by itself, it serves every kind the real server stores, the
//! `default/kubernetes` Service and its endpoints, and the create-only reviews
//! (SubjectAccessReview, SelfSubjectRulesReview, TokenReview, …), which allow everything: there
//! is no authentication or authorization, every request acts as one cluster admin.
//!
//! What it does not: there is no scheduler, kubelet or controller besides the garbage
//! collector and namespace deletion; Pods stay `Pending` and are deleted at once (no grace
//! period, since no kubelet would confirm it). Admission webhooks are stored but not called.
//! Built-in kinds are not schema-validated beyond their metadata and their fields' names (a
//! field the Go type lacks is dropped, or refused under `fieldValidation=Strict`), and only the
//! common defaults are applied (see [`defaults`]). Request bodies are JSON, YAML or, for built-in kinds,
//! protobuf (module `protobuf` decodes them to JSON, the stored form); answers are in the form
//! the client's `Accept` asks for (module `negotiate`): JSON, YAML, protobuf for built-in kinds,
//! Tables, `PartialObjectMetadata`. Objects are stored in the version they were
//! written through; other served versions of a CRD see them with only `apiVersion` rewritten
//! (conversion strategy `None`). CEL validation rules of CRDs (`x-kubernetes-validations`) are
//! evaluated on create, update, status writes and apply by the `kubeforge-cel` crate (which says
//! which CEL functions it supports); their cost estimates are not computed.
//!
//! Where the two forms of an answer exist, the default is the one tests most need and the
//! other is a builder option: a watch from a resourceVersion older than the history window gets
//! HTTP 410 (or, with [`ApiServerBuilder::expired_watch_as_event`], 200 and an `ERROR` event,
//! as kube-apiserver's watch cache answers). Bookmarks come every second by default
//! ([`ApiServerBuilder::bookmark_interval`]); the real server sends one about every minute.
//!
//! Fidelity is checked by running the conformance suite (`tests/conformance/`) against a real
//! kube-apiserver too: `KUBEFORGE_TEST_BACKEND=control-plane` or `KUBEFORGE_TEST_KUBECONFIG`.

#![warn(missing_docs)]

mod admission;
mod apply;
pub mod cluster;
pub mod control_plane;
mod convert;
mod crd;
mod defaults;
mod discovery;
mod error;
pub mod etcd;
pub mod faults;
mod filter;
mod gc;
mod handlers;
mod kubeconfig;
mod limits;
pub mod metrics;
mod names;
mod negotiate;
pub mod node;
mod objects;
mod openapi;
mod patch;
pub mod persist;
mod protobuf;
pub mod proxy;
mod query;
mod resources;
mod scale;
pub mod schema;
mod selector;
mod server;
mod status;
mod store;
mod strategic;
mod table;
mod watch;
mod webhook_call;

pub use cluster::TestCluster;
pub use error::Error;
pub use faults::{Faults, RequestMatch};
pub use server::{ApiServer, ApiServerBuilder};
