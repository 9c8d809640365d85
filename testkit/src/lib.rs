//! An embedded Kubernetes API server for tests: the real REST API over plain HTTP on loopback.

pub mod control_plane;
pub mod names;
pub mod schema;
pub mod selector;
pub mod strategic;
