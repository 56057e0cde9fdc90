//! Timers: a hierarchical timing wheel with exact deadlines and lazy
//! cancellation.
//!
//! Six levels of 64 slots each cover 64^6 ms (about two years); level `L`
//! slots are 64^L ms wide. A timer goes in the slot of the highest level on
//! which its deadline and the wheel's current time differ, so insert and
//! cancel are O(1) and a timer is moved down (cascaded) at most five times
//! before it fires. Slots are millisecond-grained but deadlines are not:
//! when a level-0 slot comes up, its timers that are not yet due wait in a
//! short `soon` list keyed by their exact nanosecond deadline. Each due
//! batch is sorted by (deadline, sequence), so timers fire in deadline
//! order, equal deadlines in the order they were added, and never early.
//!
//! Cancelling drops the timer's action at once and leaves a tombstone in
//! its slot; tombstones are skipped when their slot comes up. When they pile
//! up (more than [`COMPACT_MIN_CANCELLED`] and more than half of all
//! entries, Tornado's rule) every slot is swept, so add/cancel churn never
//! grows memory without bound.

use std::task::Waker;
use std::time::{Duration, Instant};

use slab::Slab;

/// Below this many tombstones a sweep of the wheel is not worth it.
const COMPACT_MIN_CANCELLED: usize = 512;
/// 64 slots per level: one `u64` occupancy bitmap finds the next busy slot.
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
/// 64^6 ms is about 2.2 years; later deadlines are parked in the top level
/// and re-filed (still exact) when their slot comes up.
const LEVELS: usize = 6;
const NANOS_PER_MS: u64 = 1_000_000;
/// A drained slot keeps its vector for reuse unless it grew past this many
/// entries (so one burst of timers does not pin its memory forever).
const KEEP_SLOT_CAPACITY: usize = 1024;

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

/// A timer's place in the wheel: its exact deadline (nanoseconds since the
/// wheel's epoch), its sequence number, and its slab key.
#[derive(Clone, Copy)]
struct Entry {
    deadline: u64,
    seq: u64,
    key: u32,
}

impl Entry {
    fn ms(&self) -> u64 {
        self.deadline / NANOS_PER_MS
    }
}

struct Level {
    slots: [Vec<Entry>; SLOTS],
    /// Bit `s` set when `slots[s]` may hold entries.
    occupied: u64,
}

/// The next slot to come up: its level, index and start time (ms).
struct Expiration {
    level: usize,
    slot: usize,
    start: u64,
}

pub(crate) struct Timers {
    epoch: Instant,
    /// The wheel's time in ms since `epoch`: every slot that starts at or
    /// before it has been emptied.
    elapsed: u64,
    levels: Vec<Level>,
    /// Timers whose millisecond has come but whose exact deadline may not,
    /// latest first once sorted: the next due is popped off the end, so a
    /// turn costs what is due, not a scan of all that is soon (a slot of
    /// 100,000 timers, one millisecond's worth, is sorted once).
    soon: Vec<Entry>,
    /// `soon` is in that order (cleared when an entry is added).
    soon_sorted: bool,
    slots: Slab<Slot>,
    next_seq: u64,
    /// Entries in the wheel and in `soon`, tombstones included.
    entries: usize,
    /// Tombstones among `entries`.
    cancelled: usize,
}

fn level_for(elapsed: u64, when: u64) -> usize {
    // The highest bit where the deadline differs from now picks the level.
    let masked = (elapsed ^ when) | (SLOTS as u64 - 1);
    let significant = 63 - masked.leading_zeros();
    ((significant / SLOT_BITS) as usize).min(LEVELS - 1)
}

fn slot_range(level: usize) -> u64 {
    1 << (SLOT_BITS as usize * level)
}

impl Level {
    fn new() -> Level {
        Level {
            slots: std::array::from_fn(|_| Vec::new()),
            occupied: 0,
        }
    }

    fn next_expiration(&self, level: usize, elapsed: u64) -> Option<Expiration> {
        if self.occupied == 0 {
            return None;
        }
        let range = slot_range(level);
        let level_range = range * SLOTS as u64;
        let now_slot = ((elapsed / range) % SLOTS as u64) as u32;
        let rotated = self.occupied.rotate_right(now_slot);
        let slot = (rotated.trailing_zeros() + now_slot) as usize % SLOTS;
        let level_start = elapsed & !(level_range - 1);
        let mut start = level_start + slot as u64 * range;
        if start <= elapsed {
            // At or behind the current position: only far-future timers
            // parked in the top level wrap around like this (every other
            // slot that starts by `elapsed` has already been emptied).
            start += level_range;
        }
        Some(Expiration { level, slot, start })
    }
}

impl Timers {
    pub(crate) fn new() -> Timers {
        Timers {
            epoch: Instant::now(),
            elapsed: 0,
            levels: (0..LEVELS).map(|_| Level::new()).collect(),
            soon: Vec::new(),
            soon_sorted: true,
            slots: Slab::new(),
            next_seq: 0,
            entries: 0,
            cancelled: 0,
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        // Saturating: a deadline in the past (or before the epoch) is "now".
        at.saturating_duration_since(self.epoch)
            .as_nanos()
            .min(u64::MAX as u128) as u64
    }

    fn is_live(&self, e: &Entry) -> bool {
        self.slots
            .get(e.key as usize)
            .is_some_and(|s| s.seq == e.seq)
    }

    /// Puts a live entry where it belongs for the wheel's current time.
    fn file(&mut self, e: Entry) {
        let ms = e.ms();
        if ms <= self.elapsed {
            // Still in order if it comes before the earliest (the last):
            // an already-due timer added each turn costs no re-sort.
            self.soon_sorted &= self
                .soon
                .last()
                .is_none_or(|l| (e.deadline, e.seq) < (l.deadline, l.seq));
            self.soon.push(e);
            return;
        }
        let capped = ms.min(self.elapsed + slot_range(LEVELS) - 1);
        let level = level_for(self.elapsed, capped);
        let slot = ((capped >> (SLOT_BITS as usize * level)) % SLOTS as u64) as usize;
        let lv = &mut self.levels[level];
        lv.slots[slot].push(e);
        lv.occupied |= 1 << slot;
    }

    pub(crate) fn insert(&mut self, at: Instant, action: TimerAction) -> TimeoutHandle {
        let seq = self.next_seq;
        self.next_seq += 1;
        let key = self.slots.insert(Slot { seq, action }) as u32;
        let deadline = self.nanos(at);
        self.entries += 1;
        self.file(Entry { deadline, seq, key });
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
        if self.cancelled > COMPACT_MIN_CANCELLED && self.cancelled > self.entries / 2 {
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

    /// Sweeps every tombstone out of the wheel.
    fn compact(&mut self) {
        let slots = &self.slots;
        let live = |e: &Entry| slots.get(e.key as usize).is_some_and(|s| s.seq == e.seq);
        let mut kept = 0;
        for lv in &mut self.levels {
            let mut bits = lv.occupied;
            while bits != 0 {
                let s = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                lv.slots[s].retain(live);
                kept += lv.slots[s].len();
                if lv.slots[s].is_empty() {
                    lv.occupied &= !(1 << s);
                }
            }
        }
        self.soon.retain(live);
        kept += self.soon.len();
        self.entries = kept;
        self.cancelled = 0;
    }

    fn next_expiration(&self) -> Option<Expiration> {
        // Lower levels always come up before higher ones.
        (0..LEVELS).find_map(|l| self.levels[l].next_expiration(l, self.elapsed))
    }

    /// Appends every timer due at `now` to `due`, in firing order. The
    /// actions stay in their slots until [`Timers::take`]: a timer cancelled
    /// by an earlier one of the same batch is then simply gone. A handle
    /// may be a tombstone's; `take` answers `None` for it.
    pub(crate) fn collect_due(&mut self, now: Instant, due: &mut Vec<TimeoutHandle>) {
        let now_ns = self.nanos(now);
        let now_ms = now_ns / NANOS_PER_MS;
        // Bring up every slot that starts by now; cascade what is not due.
        while let Some(exp) = self.next_expiration() {
            if exp.start > now_ms {
                break;
            }
            self.elapsed = self.elapsed.max(exp.start);
            let lv = &mut self.levels[exp.level];
            lv.occupied &= !(1 << exp.slot);
            let mut entries = std::mem::take(&mut lv.slots[exp.slot]);
            for e in entries.drain(..) {
                if !self.is_live(&e) {
                    self.entries -= 1;
                    self.cancelled = self.cancelled.saturating_sub(1);
                } else {
                    self.file(e);
                }
            }
            if entries.capacity() <= KEEP_SLOT_CAPACITY {
                let lv = &mut self.levels[exp.level];
                if lv.slots[exp.slot].is_empty() {
                    lv.slots[exp.slot] = entries;
                }
            }
        }
        self.elapsed = self.elapsed.max(now_ms);
        // Everything due is now in `soon`: off its end, in firing order.
        self.sort_soon();
        while let Some(&e) = self.soon.last() {
            if e.deadline > now_ns {
                break;
            }
            self.soon.pop();
            self.entries -= 1;
            // Tombstones too: [`Timers::take`] tells them apart, with the
            // one look at their slot that firing needs anyway.
            due.push(TimeoutHandle {
                key: e.key,
                seq: e.seq,
            });
        }
    }

    /// Puts `soon` latest first (equal deadlines: the later-added first),
    /// if an entry came since it last was.
    fn sort_soon(&mut self) {
        if !self.soon_sorted {
            // One 128-bit key compares as the (deadline, seq) pair does,
            // in one comparison instead of two.
            self.soon.sort_unstable_by_key(|e| {
                std::cmp::Reverse((u128::from(e.deadline) << 64) | u128::from(e.seq))
            });
            self.soon_sorted = true;
        }
    }

    /// Takes the action of a due timer, unless it was cancelled (before
    /// it came due, or by an earlier timer of its batch): then its
    /// tombstone, already out of the wheel, is no longer counted.
    pub(crate) fn take(&mut self, handle: TimeoutHandle) -> Option<TimerAction> {
        match self.slots.get(handle.key as usize) {
            Some(s) if s.seq == handle.seq => Some(self.slots.remove(handle.key as usize).action),
            _ => {
                self.cancelled = self.cancelled.saturating_sub(1);
                None
            }
        }
    }

    /// How long from `now` the loop may sleep: until the earliest exact
    /// deadline in `soon`, or until the next slot comes up (its start is
    /// never later than the deadlines in it, so nothing fires late; at
    /// worst one wake-up finds nothing due and refiles the slot).
    pub(crate) fn next_timeout(&mut self, now: Instant) -> Option<Duration> {
        if self.slots.is_empty() {
            return None; // only tombstones (if anything) left
        }
        // The earliest live entry of `soon` is its last, once cancelled
        // ones are popped off the end.
        self.sort_soon();
        while let Some(&e) = self.soon.last() {
            if self.is_live(&e) {
                break;
            }
            self.soon.pop();
            self.entries -= 1;
            self.cancelled = self.cancelled.saturating_sub(1);
        }
        let soon = self.soon.last().map(|e| e.deadline);
        let wheel = self.next_expiration().map(|x| x.start * NANOS_PER_MS);
        let next = match (soon, wheel) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(Duration::from_nanos(next.saturating_sub(self.nanos(now))))
    }

    /// Whether no timer is live (tombstones may remain).
    pub(crate) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Live timers.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Entries held, tombstones included (what compaction bounds).
    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    /// Removes every timer, returning the actions to drop outside borrows.
    pub(crate) fn drain(&mut self) -> Vec<TimerAction> {
        for lv in &mut self.levels {
            lv.slots.iter_mut().for_each(Vec::clear);
            lv.occupied = 0;
        }
        self.soon.clear();
        self.entries = 0;
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

    fn fire_all(t: &mut Timers, now: Instant) -> Vec<TimeoutHandle> {
        let mut due = Vec::new();
        t.collect_due(now, &mut due);
        due.retain(|h| t.take(*h).is_some());
        due
    }

    #[test]
    fn a_timer_cancelled_before_its_deadline_neither_fires_nor_stays_counted() {
        let mut t = Timers::new();
        let at = Instant::now() + Duration::from_millis(2);
        let handles: Vec<_> = (0..10).map(|_| t.insert(at, noop())).collect();
        for h in handles.iter().step_by(2) {
            assert!(t.cancel(*h).is_some());
        }
        let fired = fire_all(&mut t, at);
        assert_eq!(
            fired,
            handles
                .iter()
                .skip(1)
                .step_by(2)
                .copied()
                .collect::<Vec<_>>()
        );
        assert_eq!((t.entries(), t.cancelled), (0, 0));
    }

    #[test]
    fn equal_deadlines_come_out_in_insertion_order() {
        let mut t = Timers::new();
        let at = Instant::now() + Duration::from_millis(3);
        let handles: Vec<_> = (0..100).map(|_| t.insert(at, noop())).collect();
        assert_eq!(fire_all(&mut t, at), handles);
    }

    #[test]
    fn timers_come_out_in_deadline_order_across_levels() {
        let mut t = Timers::new();
        let base = t.epoch;
        // Spread over every level, inserted in scrambled order.
        let mut offsets: Vec<u64> = (0..2000)
            .map(|i| (i * 7919 % 2000) as u64 * 3_333_333)
            .collect();
        offsets.push(1);
        let handles: Vec<_> = offsets
            .iter()
            .map(|&ns| (ns, t.insert(base + Duration::from_nanos(ns), noop())))
            .collect();
        let end = base + Duration::from_nanos(*offsets.iter().max().unwrap());
        // Step the clock forward irregularly, as a loop would.
        let mut fired = Vec::new();
        let mut now = base;
        while now < end {
            now += Duration::from_micros(1_700_000);
            let now = now.min(end);
            let due = fire_all(&mut t, now);
            for h in due {
                let (ns, _) = handles.iter().find(|(_, x)| *x == h).unwrap();
                assert!(base + Duration::from_nanos(*ns) <= now, "fired early");
                fired.push(*ns);
            }
        }
        assert_eq!(fired.len(), offsets.len());
        assert!(fired.windows(2).all(|w| w[0] <= w[1]), "out of order");
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn sub_millisecond_deadline_is_not_fired_early() {
        let mut t = Timers::new();
        let at = t.epoch + Duration::from_micros(5_400);
        t.insert(at, noop());
        assert!(fire_all(&mut t, at - Duration::from_micros(1)).is_empty());
        let wait = t.next_timeout(at - Duration::from_micros(100)).unwrap();
        assert_eq!(wait, Duration::from_micros(100));
        assert_eq!(fire_all(&mut t, at).len(), 1);
    }

    #[test]
    fn far_future_timer_fires_at_its_deadline() {
        let mut t = Timers::new();
        let at = t.epoch + Duration::from_secs(3 * 365 * 24 * 3600);
        t.insert(at, noop());
        assert!(fire_all(&mut t, at - Duration::from_secs(1)).is_empty());
        assert_eq!(fire_all(&mut t, at).len(), 1);
    }

    #[test]
    fn next_timeout_never_overshoots_the_earliest_deadline() {
        let mut t = Timers::new();
        let now = t.epoch;
        for ms in [70_000u64, 5, 300] {
            t.insert(
                now + Duration::from_millis(ms) + Duration::from_micros(250),
                noop(),
            );
        }
        let wait = t.next_timeout(now).unwrap();
        assert!(wait <= Duration::from_micros(5_250), "{wait:?}");
    }

    #[test]
    fn cancel_churn_keeps_entries_bounded() {
        let mut t = Timers::new();
        let at = Instant::now() + Duration::from_secs(3600);
        for _ in 0..100_000 {
            let h = t.insert(at, noop());
            assert!(t.cancel(h).is_some());
        }
        assert_eq!(t.len(), 0);
        assert!(
            t.entries() <= 2 * COMPACT_MIN_CANCELLED + 2,
            "{}",
            t.entries()
        );
    }

    #[test]
    fn cancel_of_a_taken_timer_is_harmless() {
        let mut t = Timers::new();
        let now = Instant::now();
        let h = t.insert(now, noop());
        fire_all(&mut t, now);
        let h2 = t.insert(now, noop()); // reuses the slab slot
        assert!(t.cancel(h).is_none());
        assert!(t.cancel(h2).is_some());
    }
}
