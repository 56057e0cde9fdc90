//! The timer heap: a binary heap of (deadline, sequence) with lazy
//! cancellation.
//!
//! Cancelling drops the timer's action at once (so whatever it captured is
//! freed) and leaves its heap entry behind as a tombstone; tombstones are
//! skipped when they reach the top. When they pile up (more than
//! [`COMPACT_MIN_CANCELLED`] and more than half the heap, Tornado's rule)
//! the heap is rebuilt without them, so add/cancel churn never grows memory
//! without bound and compaction costs O(1) amortised per cancellation.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::task::Waker;
use std::time::{Duration, Instant};

use slab::Slab;

/// Below this many tombstones compaction is not worth a heap rebuild.
const COMPACT_MIN_CANCELLED: usize = 512;

/// Identifies one scheduled timeout, for [`IOLoop::remove_timeout`].
///
/// Removing a timeout that already ran (or was removed) is harmless: the
/// sequence number never matches a later timeout that reuses the slot.
///
/// [`IOLoop::remove_timeout`]: crate::IOLoop::remove_timeout
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeoutHandle {
    key: u32,
    seq: u64,
}

/// What happens when a timer fires.
pub(crate) enum TimerAction {
    Callback(Box<dyn FnOnce()>),
    Wake(Waker),
}

struct Slot {
    seq: u64,
    action: TimerAction,
}

/// A heap entry. Deadlines are nanoseconds since the loop's epoch (8 bytes
/// instead of `Instant`'s 16: a smaller heap is a faster heap).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    deadline: u64,
    seq: u64,
    key: u32,
}

impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest first;
        // the sequence number breaks ties so equal deadlines run FIFO.
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

pub(crate) struct Timers {
    epoch: Instant,
    heap: BinaryHeap<Entry>,
    slots: Slab<Slot>,
    next_seq: u64,
    cancelled: usize,
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            epoch: Instant::now(),
            heap: BinaryHeap::new(),
            slots: Slab::new(),
            next_seq: 0,
            cancelled: 0,
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        // Saturating: a deadline in the past (or before the epoch) is "now".
        at.saturating_duration_since(self.epoch)
            .as_nanos()
            .min(u64::MAX as u128) as u64
    }

    pub(crate) fn insert(&mut self, at: Instant, action: TimerAction) -> TimeoutHandle {
        let seq = self.next_seq;
        self.next_seq += 1;
        let key = self.slots.insert(Slot { seq, action }) as u32;
        self.heap.push(Entry {
            deadline: self.nanos(at),
            seq,
            key,
        });
        TimeoutHandle { key, seq }
    }

    /// Cancels a pending timer and returns its action, which the caller must
    /// drop outside any borrow of the loop (dropping it may run user code).
    pub(crate) fn cancel(&mut self, handle: TimeoutHandle) -> Option<TimerAction> {
        let slot = self.slots.get(handle.key as usize)?;
        if slot.seq != handle.seq {
            return None;
        }
        let slot = self.slots.remove(handle.key as usize);
        self.cancelled += 1;
        if self.cancelled > COMPACT_MIN_CANCELLED && self.cancelled > self.heap.len() / 2 {
            self.compact();
        }
        Some(slot.action)
    }

    /// Replaces the waker of a pending `Wake` timer. Returns `None` if the
    /// timer is gone, else the replaced waker (to drop outside the borrow).
    pub(crate) fn set_waker(
        &mut self,
        handle: TimeoutHandle,
        waker: &Waker,
    ) -> Option<Option<Waker>> {
        match self.slots.get_mut(handle.key as usize) {
            Some(slot) if slot.seq == handle.seq => match &mut slot.action {
                TimerAction::Wake(w) if !w.will_wake(waker) => {
                    Some(Some(std::mem::replace(w, waker.clone())))
                }
                _ => Some(None),
            },
            _ => None,
        }
    }

    fn compact(&mut self) {
        let slots = &self.slots;
        self.heap
            .retain(|e| slots.get(e.key as usize).is_some_and(|s| s.seq == e.seq));
        self.cancelled = 0;
    }

    fn is_live(&self, e: &Entry) -> bool {
        self.slots
            .get(e.key as usize)
            .is_some_and(|s| s.seq == e.seq)
    }

    /// Moves every timer due at `now` into `due`, in firing order. The
    /// actions stay in their slots until [`Timers::take`]: a timer cancelled
    /// by an earlier one of the same batch is then simply gone.
    pub(crate) fn collect_due(&mut self, now: Instant, due: &mut Vec<TimeoutHandle>) {
        let now = self.nanos(now);
        while let Some(top) = self.heap.peek().copied() {
            if !self.is_live(&top) {
                self.heap.pop();
                self.cancelled = self.cancelled.saturating_sub(1);
                continue;
            }
            if top.deadline > now {
                break;
            }
            self.heap.pop();
            due.push(TimeoutHandle {
                key: top.key,
                seq: top.seq,
            });
        }
    }

    /// Takes the action of a due timer, unless it was cancelled meanwhile.
    pub(crate) fn take(&mut self, handle: TimeoutHandle) -> Option<TimerAction> {
        match self.slots.get(handle.key as usize) {
            Some(s) if s.seq == handle.seq => Some(self.slots.remove(handle.key as usize).action),
            _ => None,
        }
    }

    /// Time from `now` to the earliest live deadline, if any.
    pub(crate) fn next_timeout(&mut self, now: Instant) -> Option<Duration> {
        while let Some(top) = self.heap.peek().copied() {
            if self.is_live(&top) {
                return Some(Duration::from_nanos(
                    top.deadline.saturating_sub(self.nanos(now)),
                ));
            }
            self.heap.pop();
            self.cancelled = self.cancelled.saturating_sub(1);
        }
        None
    }

    /// Live timers.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Heap entries, tombstones included (what compaction bounds).
    pub(crate) fn heap_len(&self) -> usize {
        self.heap.len()
    }

    /// Removes every timer, returning the actions to drop outside borrows.
    pub(crate) fn drain(&mut self) -> Vec<TimerAction> {
        self.heap.clear();
        self.cancelled = 0;
        self.slots.drain().map(|s| s.action).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop() -> TimerAction {
        TimerAction::Callback(Box::new(|| {}))
    }

    #[test]
    fn equal_deadlines_come_out_in_insertion_order() {
        let mut t = Timers::new();
        let at = Instant::now();
        let handles: Vec<_> = (0..100).map(|_| t.insert(at, noop())).collect();
        let mut due = Vec::new();
        t.collect_due(at, &mut due);
        assert_eq!(due, handles);
    }

    #[test]
    fn cancel_churn_keeps_heap_bounded() {
        let mut t = Timers::new();
        let at = Instant::now() + Duration::from_secs(3600);
        for _ in 0..100_000 {
            let h = t.insert(at, noop());
            assert!(t.cancel(h).is_some());
        }
        assert_eq!(t.len(), 0);
        assert!(
            t.heap_len() <= 2 * COMPACT_MIN_CANCELLED + 2,
            "{}",
            t.heap_len()
        );
    }

    #[test]
    fn cancel_of_a_taken_timer_is_harmless() {
        let mut t = Timers::new();
        let now = Instant::now();
        let h = t.insert(now, noop());
        let mut due = Vec::new();
        t.collect_due(now, &mut due);
        assert!(t.take(h).is_some());
        let h2 = t.insert(now, noop()); // reuses the slot
        assert!(t.cancel(h).is_none());
        assert!(t.cancel(h2).is_some());
    }
}
