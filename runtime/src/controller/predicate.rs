//! Predicates: which changes of a watched object are worth a reconcile.
//!
//! A predicate sees a [`Change`] and returns true to enqueue. Combine them with
//! [`Predicate::and`], [`Predicate::or`] and `!` (`std::ops::Not`).

use std::fmt;
use std::sync::Arc;

use kube::Resource;

/// A change of a watched object, as a predicate sees it.
#[derive(Debug)]
pub enum Change<'a, K> {
    /// The object appeared (including the initial list).
    Create(&'a K),
    /// The object changed from `old` to `new` (or was resynced: same resourceVersion).
    Update {
        /// The previous state.
        old: &'a K,
        /// The new state.
        new: &'a K,
    },
    /// The object was deleted (its last known state).
    Delete(&'a K),
}

/// The function inside a [`Predicate`].
type PredicateFn<K> = dyn Fn(&Change<'_, K>) -> bool + Send + Sync;

/// A filter on changes. Cheap to clone.
pub struct Predicate<K> {
    f: Arc<PredicateFn<K>>,
}

impl<K> Clone for Predicate<K> {
    fn clone(&self) -> Self {
        Self { f: self.f.clone() }
    }
}

impl<K> fmt::Debug for Predicate<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Predicate")
    }
}

impl<K: 'static> Predicate<K> {
    /// A custom predicate.
    pub fn new(f: impl Fn(&Change<'_, K>) -> bool + Send + Sync + 'static) -> Self {
        Self { f: Arc::new(f) }
    }

    /// Passes every change.
    pub fn always() -> Self {
        Self::new(|_| true)
    }

    /// Evaluates the predicate.
    pub fn matches(&self, change: &Change<'_, K>) -> bool {
        (self.f)(change)
    }

    /// Both must pass.
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        Self::new(move |c| self.matches(c) && other.matches(c))
    }

    /// Either must pass.
    #[must_use]
    pub fn or(self, other: Self) -> Self {
        Self::new(move |c| self.matches(c) || other.matches(c))
    }
}

impl<K: 'static> std::ops::Not for Predicate<K> {
    type Output = Self;
    fn not(self) -> Self {
        Self::new(move |c| !self.matches(c))
    }
}

/// Passes updates whose `metadata` field picked by `field` differs; creates and deletes pass.
fn on_update<K: Resource + 'static, T: PartialEq + 'static>(field: fn(&K) -> T) -> Predicate<K> {
    Predicate::new(move |change: &Change<'_, K>| match change {
        Change::Update { old, new } => field(old) != field(new),
        Change::Create(_) | Change::Delete(_) => true,
    })
}

/// Updates that change `metadata.generation`, i.e. the spec (status and metadata writes do not
/// bump it). Objects without a generation always pass, as in controller-runtime.
pub fn generation_changed<K: Resource + 'static>() -> Predicate<K> {
    Predicate::new(|change: &Change<'_, K>| match change {
        Change::Update { old, new } => match (old.meta().generation, new.meta().generation) {
            (Some(a), Some(b)) => a != b,
            _ => true,
        },
        Change::Create(_) | Change::Delete(_) => true,
    })
}

/// Updates that change the labels.
pub fn labels_changed<K: Resource + 'static>() -> Predicate<K> {
    on_update(|k: &K| k.meta().labels.clone().unwrap_or_default())
}

/// Updates that change the annotations.
pub fn annotations_changed<K: Resource + 'static>() -> Predicate<K> {
    on_update(|k: &K| k.meta().annotations.clone().unwrap_or_default())
}

/// Updates that change the resourceVersion: drops resyncs, which re-deliver an unchanged object.
pub fn resource_version_changed<K: Resource + 'static>() -> Predicate<K> {
    on_update(|k: &K| k.meta().resource_version.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn cm(generation: i64, rv: &str, label: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                generation: Some(generation),
                resource_version: Some(rv.into()),
                labels: Some([("app".to_owned(), label.to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[test]
    fn built_in_predicates_look_at_their_field_only() {
        let (a, b) = (cm(1, "10", "x"), cm(1, "11", "x"));
        let upd = Change::Update { old: &a, new: &b };
        assert!(!generation_changed().matches(&upd));
        assert!(resource_version_changed().matches(&upd));
        assert!(!labels_changed().matches(&upd));
        let c = cm(2, "12", "y");
        let upd2 = Change::Update { old: &b, new: &c };
        assert!(generation_changed().matches(&upd2));
        assert!(labels_changed().matches(&upd2));
        assert!(!annotations_changed().matches(&upd2));
        assert!(
            generation_changed::<ConfigMap>().matches(&Change::Create(&a)),
            "creates pass"
        );
    }

    #[test]
    fn combinators() {
        let (a, b) = (cm(1, "10", "x"), cm(1, "11", "y"));
        let upd = Change::Update { old: &a, new: &b };
        let gen_or_labels = generation_changed().or(labels_changed());
        assert!(gen_or_labels.matches(&upd));
        assert!(!generation_changed().and(labels_changed()).matches(&upd));
        assert!((!generation_changed()).matches(&upd));
        let custom = Predicate::new(|c: &Change<'_, ConfigMap>| matches!(c, Change::Delete(_)));
        assert!(custom.matches(&Change::Delete(&a)));
        assert!(!custom.matches(&upd));
    }
}
