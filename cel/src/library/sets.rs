//! The Kubernetes sets library: `sets.contains`, `sets.equivalent`, `sets.intersects` over lists.

use std::sync::Arc;

use cel::Value;

/// Every element of `b` is in `a`.
pub(super) fn contains(a: Arc<Vec<Value>>, b: Arc<Vec<Value>>) -> bool {
    b.iter().all(|x| a.contains(x))
}

/// `a` and `b` hold the same elements, duplicates aside.
pub(super) fn equivalent(a: Arc<Vec<Value>>, b: Arc<Vec<Value>>) -> bool {
    a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

/// `a` and `b` have an element in common.
pub(super) fn intersects(a: Arc<Vec<Value>>, b: Arc<Vec<Value>>) -> bool {
    a.iter().any(|x| b.contains(x))
}
