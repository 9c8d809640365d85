//! The derive macros' compile-fail and compile-pass cases (`tests/ui/`), run by trybuild.
//!
//! They live in this crate rather than in `kubeforge-macros` because trybuild builds a project
//! with every dev-dependency of the crate running them, under its own compiler flags, so none
//! of the workspace's compiled dependencies are reused: here that project holds `kubeforge` and
//! what the cases use, not the testkit and the property-test and snapshot crates the macros'
//! other tests need (on a cold CI run this was 7½ minutes). Refresh the expected output with
//! `TRYBUILD=overwrite cargo test -p kubeforge-macros-ui` and review the diff.
