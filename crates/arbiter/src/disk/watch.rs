//! Watching ahead ([`DiskLeaseClient::watch`]): the reads of the groups this node may
//! run and of their owners' host records, every watch poll interval, and what they saw
//! unchanged since when, so that an acquire finds the takeover wait already running
//! (the module doc, `mod.rs`, says why that is safe).

use std::time::Duration;

use engine::{GroupId, Instant};

use super::{Block, ClientOutput, DiskLeaseClient, IoId, IoOp, IoResult, Observed, Record};
use super::{WATCH_GROUPS_MAX, WATCH_GROUP_READ_EVERY};

impl DiskLeaseClient {
    /// Watch `groups` ahead (those this node may run), from `now` on; see the module doc.
    /// More than [`WATCH_GROUPS_MAX`] groups: none is watched.
    pub fn watch(&mut self, now: Instant, mut groups: Vec<GroupId>) {
        groups.sort();
        groups.dedup();
        if groups.len() > WATCH_GROUPS_MAX {
            groups.clear();
        }
        self.observed.retain(|g, _| groups.binary_search(g).is_ok());
        self.next_watch = if groups.is_empty() { Instant::MAX } else { now };
        self.watched = groups;
    }

    /// Runs the next round of watching ahead now if it is due within `within`: a shell
    /// that goes to the disk now anyway (with a heartbeat, say) saves itself a wake-up
    /// and a disk job. Safe at any time: the window is bounded by the reads themselves,
    /// whenever they are made; an early round only shortens one poll interval.
    pub fn watch_early(&mut self, now: Instant, within: Duration) {
        if self.next_watch_round() != Instant::MAX && now + within >= self.next_watch {
            self.watch_round(now);
        }
    }

    /// When the next round of watching ahead is due: never while this node holds every
    /// group it watches (there is nothing to read; a group released or lost makes the
    /// overdue round run at once).
    pub(super) fn next_watch_round(&self) -> Instant {
        if self.watched.iter().all(|g| self.held.contains_key(g)) {
            Instant::MAX
        } else {
            self.next_watch
        }
    }

    /// One round of watching ahead: the record of every watched group not held here.
    pub(super) fn watch_round(&mut self, now: Instant) {
        // The window opens at the first read after the owner's last renewal, so the poll
        // period (L/10) adds up to itself to a takeover; polling faster costs a standby
        // more wake-ups at idle than it gains (measured: docs/design-notes.md).
        self.next_watch = now + self.config.watch_poll_interval;
        let held = &self.held;
        self.observed.retain(|g, _| !held.contains_key(g));
        if !self.watch_ios.is_empty() {
            return; // the previous round is not over
        }
        self.watch_rounds += 1;
        let refresh = self.watch_rounds.is_multiple_of(WATCH_GROUP_READ_EVERY);
        let groups: Vec<GroupId> =
            self.watched.iter().copied().filter(|g| !self.held.contains_key(g)).collect();
        for g in groups {
            match self.observed.get(&g) {
                // The group's record read in an earlier round was read before this host
                // read is issued: that is all the window needs (the claim reads it again).
                Some(seen) if !refresh => {
                    let (owner, record) = (seen.owner, seen.record.clone());
                    self.issue_watch(now, g, IoOp::Read(Block::Host(owner)), Some(record));
                }
                _ => self.issue_watch(now, g, IoOp::Read(Block::Group(g)), None),
            }
        }
    }

    fn issue_watch(&mut self, now: Instant, group: GroupId, op: IoOp, before: Option<Record>) {
        let io = IoId(self.next_io);
        self.next_io += 1;
        self.watch_ios.insert(io, (group, before, now + self.config.io_timeout));
        self.out.push_back(ClientOutput::Io { io, op });
    }

    pub(super) fn watch_done(
        &mut self,
        now: Instant,
        ended: Instant,
        group: GroupId,
        before: Option<Record>,
        result: IoResult,
    ) {
        let record = match result {
            IoResult::Read(record) => record,
            IoResult::Written | IoResult::Failed(_) | IoResult::Unfinished(_) => {
                self.observed.remove(&group);
                return;
            }
        };
        match before {
            None => match record.owner() {
                Some(owner) if owner != self.me => {
                    self.issue_watch(now, group, IoOp::Read(Block::Host(owner)), Some(record));
                }
                _ => {
                    self.observed.remove(&group);
                }
            },
            Some(group_record) => {
                let Some(owner) = group_record.owner() else { return };
                let version = record.version_for(group);
                let same = self.observed.get(&group).is_some_and(|o| {
                    o.record == group_record && o.owner == owner && o.version == version
                });
                if !same {
                    let observed =
                        Observed { record: group_record, owner, version, first_seen: ended };
                    self.observed.insert(group, observed);
                }
            }
        }
    }
}
