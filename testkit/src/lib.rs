//! An embedded Kubernetes API server for tests.
