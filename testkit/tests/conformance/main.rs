//! Conformance suite: every behaviour of the embedded API server, exercised only through
//! `kube::Client` (and kubectl / raw HTTP), so the same tests run against a real kube-apiserver:
//! `KUBEFORGE_TEST_KUBECONFIG=/path/to/kubeconfig cargo test -p kubeforge-testkit --test conformance`.
//! Tests that need fault injection print a note and return early on an external cluster.

mod cel;
mod common;
mod crds;
mod crud;
mod discovery;
mod events;
mod faults;
mod field_validation;
mod fuzz;
mod kubectl;
mod limits;
mod lists;
mod negotiation;
mod setup;
mod watch;
mod writes;
