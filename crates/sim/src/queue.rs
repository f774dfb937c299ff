//! The simulator's event queue: a binary heap ordered by (real time, insertion
//! sequence), so that events at the same instant run in the order they were scheduled
//! and a run never depends on heap internals. The heap holds small keys; the events
//! themselves stay put in a slab (moving large events through the heap was a quarter
//! of the simulator's time). It must not interpret events.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// The most events the queue may hold at once (TigerStyle: a limit on everything). A
/// run that reaches it has a runaway feedback loop, which is a bug to see, not to wait.
pub const QUEUE_EVENTS_MAX: usize = 1 << 22;

pub struct EventQueue<E> {
    heap: BinaryHeap<Key>,
    slab: Vec<Option<E>>,
    free: Vec<u32>,
    sequence: u64,
}

#[derive(PartialEq, Eq)]
struct Key {
    at_ns: u64,
    sequence: u64,
    slot: u32,
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    /// Reversed: the heap is a max-heap and the earliest event must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_ns, other.sequence).cmp(&(self.at_ns, self.sequence))
    }
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(1024),
            slab: Vec::with_capacity(1024),
            free: Vec::with_capacity(1024),
            sequence: 0,
        }
    }
}

impl<E> EventQueue<E> {
    pub fn push(&mut self, at_ns: u64, event: E) {
        assert!(self.heap.len() < QUEUE_EVENTS_MAX, "event queue overflow");
        self.sequence += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slab.push(Some(event));
                (self.slab.len() - 1) as u32
            }
        };
        self.heap.push(Key { at_ns, sequence: self.sequence, slot });
    }

    /// The time of the next event.
    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|k| k.at_ns)
    }

    pub fn pop(&mut self) -> Option<(u64, E)> {
        let key = self.heap.pop()?;
        let event = self.slab[key.slot as usize].take().expect("a queued event is in its slot");
        self.free.push(key.slot);
        Some((key.at_ns, event))
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_then_insertion_order() {
        let mut q = EventQueue::default();
        q.push(20, "c");
        q.push(10, "a");
        q.push(20, "d");
        q.push(10, "b");
        assert_eq!(q.peek_time(), Some(10));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, [(10, "a"), (10, "b"), (20, "c"), (20, "d")]);
        assert!(q.is_empty());
    }
}
