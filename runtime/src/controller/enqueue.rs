//! Turning informer events into work-queue keys: the handler a controller subscribes to each
//! watched type (the primary's own key, the owner named by a controller ownerReference, or what a
//! mapper returns), filtered by the watch's predicate and remembering each key's [`super::Trigger`].

use std::sync::Arc;

use kube::Resource;

use super::builder::*;
use super::predicate::{Change, Predicate};
use super::trigger::{RelationKind, Trigger, Triggers};
use crate::informer::{DeletedObject, ObjectKey, ResourceEventHandler};
use crate::workqueue::WorkQueue;

/// Feeds the queue from informer events.
pub(super) struct EnqueueHandler<C> {
    pub(super) queue: WorkQueue<ObjectKey>,
    pub(super) mapper: Mapper<C>,
    pub(super) predicate: Option<Predicate<C>>,
    pub(super) relation: RelationKind,
    /// `C`'s kind, for the trigger.
    pub(super) kind: String,
    pub(super) triggers: Arc<Triggers>,
}

impl<C: Resource + 'static> EnqueueHandler<C> {
    fn passes(&self, change: &Change<'_, C>) -> bool {
        self.predicate.as_ref().is_none_or(|p| p.matches(change))
    }

    fn enqueue(&self, obj: &C, resync: bool) {
        self.add(obj, (self.mapper)(obj), resync);
    }

    /// Records why, then queues `keys` (the trigger is there before a worker can take a key).
    fn add(&self, obj: &C, keys: Vec<ObjectKey>, resync: bool) {
        for key in keys {
            self.triggers.record(&key, || self.trigger(obj, resync));
            self.queue.add(key);
        }
    }

    fn trigger(&self, obj: &C, resync: bool) -> Trigger {
        let object = || {
            let m = obj.meta();
            match &m.namespace {
                Some(ns) => format!("{ns}/{}", m.name.as_deref().unwrap_or_default()),
                None => m.name.clone().unwrap_or_default(),
            }
        };
        match self.relation {
            RelationKind::Primary if resync => Trigger::Resync,
            RelationKind::Primary => Trigger::Changed,
            RelationKind::Owned => Trigger::Owned {
                kind: self.kind.clone(),
                object: object(),
            },
            RelationKind::Watched => Trigger::Watched {
                kind: self.kind.clone(),
                object: object(),
            },
        }
    }
}

impl<C: Resource + Send + Sync + 'static> ResourceEventHandler<C> for EnqueueHandler<C> {
    fn on_add(&self, obj: Arc<C>, _is_initial_list: bool) {
        if self.passes(&Change::Create(&obj)) {
            self.enqueue(&obj, false);
        }
    }

    fn on_update(&self, old: Arc<C>, new: Arc<C>) {
        if self.passes(&Change::Update {
            old: &old,
            new: &new,
        }) {
            // Both, once each: a child whose owner changed must reconcile the old owner too, and
            // adding one key twice could queue it again behind a worker that already took it.
            let mut keys = (self.mapper)(&old);
            for key in (self.mapper)(&new) {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            let resync = old.meta().resource_version == new.meta().resource_version;
            self.add(&new, keys, resync);
        }
    }

    fn on_delete(&self, obj: DeletedObject<C>) {
        let last = match &obj {
            DeletedObject::Object(o) => Some(o.clone()),
            DeletedObject::Tombstone { last_known, .. } => last_known.clone(),
        };
        if let Some(last) = last
            && self.passes(&Change::Delete(&last))
        {
            self.enqueue(&last, false);
        }
    }
}
