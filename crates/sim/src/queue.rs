//! The simulator's event queue: a binary heap ordered by (real time, insertion
//! sequence), so that events at the same instant run in the order they were scheduled
//! and a run never depends on heap internals. It must not interpret events.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// The most events the queue may hold at once (TigerStyle: a limit on everything). A
/// run that reaches it has a runaway feedback loop, which is a bug to see, not to wait.
pub const QUEUE_EVENTS_MAX: usize = 1 << 22;

pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    sequence: u64,
}

struct Entry<E> {
    at_ns: u64,
    sequence: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ns, self.sequence) == (other.at_ns, other.sequence)
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    /// Reversed: the heap is a max-heap and the earliest event must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_ns, other.sequence).cmp(&(self.at_ns, self.sequence))
    }
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue { heap: BinaryHeap::with_capacity(1024), sequence: 0 }
    }
}

impl<E> EventQueue<E> {
    pub fn push(&mut self, at_ns: u64, event: E) {
        assert!(self.heap.len() < QUEUE_EVENTS_MAX, "event queue overflow");
        self.sequence += 1;
        self.heap.push(Entry { at_ns, sequence: self.sequence, event });
    }

    /// The time of the next event.
    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|e| e.at_ns)
    }

    pub fn pop(&mut self) -> Option<(u64, E)> {
        self.heap.pop().map(|e| (e.at_ns, e.event))
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
