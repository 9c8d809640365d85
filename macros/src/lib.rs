//! Derive macros for kubeforge operators.
