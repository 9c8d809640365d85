//! The delaying half of the work queue (client-go's `delaying_queue.go`): items waiting for a
//! deadline before they are added. They sit in one heap ordered by deadline, and one timer task
//! per queue sleeps until the earliest deadline, adds what is due and sleeps again — rather than a
//! task per delayed add. [`super::WorkQueue::add_after`] and `add_rate_limited` put items here.

use std::cmp::{Ordering, Reverse};
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};

use tokio::time::Instant;

use super::QueueItem;

/// Items waiting for their deadline. An item waits at most once: the earlier deadline wins.
pub(super) struct Waiting<T> {
    /// The deadline each waiting item will be added at.
    deadlines: HashMap<T, Instant>,
    /// Every deadline set, earliest first. Entries superseded by an earlier deadline for the same
    /// item stay until they come up and are then skipped.
    heap: BinaryHeap<Reverse<Timer<T>>>,
    /// Breaks ties between equal deadlines in insertion order.
    next_seq: u64,
}

/// One deadline in the heap; ordered by deadline, then insertion.
struct Timer<T> {
    at: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Timer<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<T> Eq for Timer<T> {}
impl<T> PartialOrd for Timer<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Timer<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// What [`Waiting::insert`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Inserted {
    /// The item already waits for an earlier (or the same) deadline; nothing changed.
    AlreadyEarlier,
    /// The deadline is set and is not the earliest: the timer need not wake.
    Later,
    /// The deadline is set and is now the earliest: the timer must wake to sleep less.
    Earliest,
}

impl<T: QueueItem> Waiting<T> {
    pub(super) fn new() -> Self {
        Self {
            deadlines: HashMap::new(),
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    /// Lets `item` wait until `at`, unless it already waits for an earlier deadline.
    pub(super) fn insert(&mut self, item: T, at: Instant) -> Inserted {
        match self.deadlines.entry(item.clone()) {
            Entry::Occupied(existing) if *existing.get() <= at => return Inserted::AlreadyEarlier,
            Entry::Occupied(mut existing) => {
                existing.insert(at);
            }
            Entry::Vacant(slot) => {
                slot.insert(at);
            }
        }
        let earliest = self.next_deadline().is_none_or(|next| at < next);
        self.next_seq += 1;
        self.heap.push(Reverse(Timer {
            at,
            seq: self.next_seq,
            item,
        }));
        if earliest {
            Inserted::Earliest
        } else {
            Inserted::Later
        }
    }

    /// Removes and returns the items whose deadline is at or before `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Vec<T> {
        let mut due = Vec::new();
        while self.heap.peek().is_some_and(|Reverse(t)| t.at <= now) {
            let Some(Reverse(timer)) = self.heap.pop() else {
                break;
            };
            // Skip a deadline superseded by an earlier one (already added, or still waiting).
            if self.deadlines.get(&timer.item) == Some(&timer.at) {
                self.deadlines.remove(&timer.item);
                due.push(timer.item);
            }
        }
        due
    }

    /// The earliest deadline in the heap (possibly a superseded one: waking for it is harmless).
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(t)| t.at)
    }

    /// Forgets every waiting item (on shutdown).
    pub(super) fn clear(&mut self) {
        self.deadlines.clear();
        self.heap.clear();
    }

    /// How many items wait.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.deadlines.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earlier_deadlines_win_and_superseded_ones_are_skipped() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = Waiting::new();
        assert_eq!(w.insert("a", t0 + s(3)), Inserted::Earliest);
        assert_eq!(w.insert("b", t0 + s(5)), Inserted::Later);
        assert_eq!(w.insert("a", t0 + s(4)), Inserted::AlreadyEarlier);
        assert_eq!(w.insert("b", t0 + s(1)), Inserted::Earliest);
        assert_eq!(w.len(), 2);
        assert_eq!(w.next_deadline(), Some(t0 + s(1)));
        assert_eq!(w.pop_due(t0), Vec::<&str>::new());
        assert_eq!(w.pop_due(t0 + s(3)), vec!["b", "a"]);
        // b's superseded 5 s deadline is skipped, not added twice.
        assert_eq!(w.pop_due(t0 + s(10)), Vec::<&str>::new());
        assert_eq!(w.len(), 0);
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn equal_deadlines_come_out_in_insertion_order() {
        let at = Instant::now();
        let mut w = Waiting::new();
        for item in ["c", "a", "b"] {
            w.insert(item, at);
        }
        assert_eq!(w.pop_due(at), vec!["c", "a", "b"]);
    }
}
