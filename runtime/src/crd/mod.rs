//! Custom resources: what `#[derive(CustomResource)]` and `#[kubeforge::controller]` hand to the
//! runtime, and what an operator's `crds` and `rbac` subcommands print.
//!
//! - [`build`] (the CRD builder) turns a derived type's static [`CrdDescriptor`] and its
//!   `schemars` schemas into a `CustomResourceDefinition` version;
//! - [`schema`] rewrites a generated JSON schema into the structural schema kube-apiserver
//!   requires (called by the builder);
//! - [`registry`] collects, at link time, every derived resource and controller of the binary,
//!   merges a kind's versions into one CRD and a controller's relations into RBAC rules;
//! - [`check_rules`] evaluates a resource's CEL validation rules without a server.

mod builder;
pub mod registry;
mod rules;
pub mod schema;

pub use builder::{
    CrdDescriptor, PrinterColumn, Scale, build, check, root_schema, schema_generator,
};
pub use rules::{Reason, RuleError, check_rules};
