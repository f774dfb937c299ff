//! Reading the peers' heartbeat slots on the shared disk: which slots hold news. A slot
//! is news when it differs from what this node read there last; the first successful
//! read only learns what the slots hold (written before this daemon started: no news),
//! and so does the first successful read after a failed one. Without that second rule a
//! node whose disk path comes back read the slot a peer wrote before it died as a fresh
//! heartbeat and saw the dead peer online for another peer timeout (found by the
//! scenario `no-node-can-run.scn`). A live peer's next write, a heartbeat interval or two
//! later, is news again.
//!
//! `K` is what the caller compares: the slot's bytes in the daemon, the heartbeat's
//! incarnation and sequence in the simulator.

/// The last slot contents read per node, and whether the next read is a baseline.
#[derive(Clone, Debug)]
pub struct SlotReader<K> {
    last: Vec<Option<K>>,
    baseline: bool,
}

impl<K: PartialEq> SlotReader<K> {
    /// For a cluster of `nodes` nodes; the first read is a baseline.
    pub fn new(nodes: usize) -> SlotReader<K> {
        SlotReader { last: (0..nodes).map(|_| None).collect(), baseline: true }
    }

    /// A read of the slots failed: the next successful one is a baseline again.
    pub fn failed(&mut self) {
        self.baseline = true;
    }

    /// One successful read of every slot: `(node index, what its slot holds)`. Returns
    /// the indexes whose slot is news, in the order given.
    pub fn read(&mut self, slots: impl IntoIterator<Item = (usize, K)>) -> Vec<usize> {
        let baseline = std::mem::replace(&mut self.baseline, false);
        let mut news = Vec::new();
        for (node, key) in slots {
            let Some(last) = self.last.get_mut(node) else { continue };
            if last.as_ref() == Some(&key) {
                continue; // unchanged: the peer wrote nothing new
            }
            *last = Some(key);
            if !baseline {
                news.push(node);
            }
        }
        news
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_there_at_the_start_or_after_a_failed_read_is_no_news() {
        let mut reader = SlotReader::new(3);
        assert_eq!(reader.read([(1, 10), (2, 20)]), Vec::<usize>::new());
        assert_eq!(reader.read([(1, 11), (2, 20)]), vec![1]);
        // The path fails; node 2 wrote once more before it died.
        reader.failed();
        assert_eq!(reader.read([(1, 12), (2, 21)]), Vec::<usize>::new());
        // Live node 1 writes again: news; dead node 2 never does.
        assert_eq!(reader.read([(1, 13), (2, 21)]), vec![1]);
        // Out of range: ignored.
        assert_eq!(reader.read([(7, 1)]), Vec::<usize>::new());
    }
}
