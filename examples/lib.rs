//! Runnable operators on the kubeforge runtime; each lives in its own module.
