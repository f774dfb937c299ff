//! Codes 3xxx: arbitration and leases.

codes! {
    LEASE_ACQUIRED = "I3101", Info, "lease acquired",
        cause: "The arbitrator granted this node the lease of the group: it may start the group.",
        fix: "Nothing to do; the group starts next (I4101).";
    LEASE_RELEASED = "I3102", Info, "lease released",
        cause: "This node stopped the group and gave its lease back, so another node can take it at once.",
        fix: "Nothing to do; the next owner acquires the lease and starts the group.";
    LEASE_DENIED = "W3103", Warning, "lease held by another node",
        cause: "This node asked for a group's lease but the arbitrator reports that another node still holds and renews it, or parked it: that node's daemon stopped in maintenance and left the group's resources running (no other node takes them until it runs again). Usually a placement race that the lease settled; repeated, it means this node sees the holder as failed while the arbitrator sees it alive, or the holder parked the lease.",
        fix: "If it repeats, compare `tandem status` on both nodes: a node that sees its peer offline while the disk or witness shows the peer renewing has lost its heartbeat links to it. If the holder's daemon was stopped in maintenance, start it again (it re-attaches to what runs); if that host is gone for good, stop the group's resources there by hand (or make sure the host is off) and run `tandem disk unpark NODE`.";
    LEASE_RENEW_FAILED = "W3104", Warning, "lease renewal failed",
        cause: "A renewal of this node's leases did not reach the arbitrator (disk I/O error or timeout, witness unreachable). The node keeps its groups while the lease is still valid.",
        fix: "Check the path to the arbitrator: the shared disk from this node, or the network to the witness.";
    LEASE_EXPIRING = "E3105", Error, "lease cannot be renewed: stopping groups",
        cause: "This node could not renew its leases for most of lease_timeout. To keep the one-owner guarantee it stops its groups before the lease can be granted to another node.",
        fix: "Restore the path to the arbitrator (shared disk or witness). The groups are taken over by a node that can reach it.";
    SELF_FENCE = "E3106", Error, "self-fence: resources could not be stopped safely",
        cause: "This node cannot prove its resources are down before another node may take them: a stop failed or timed out, or its lease expired while resources still ran. It resets itself (watchdog) so that another node can safely take the group.",
        fix: "After the reboot, read this node's journal to find the resource that did not stop and why (a hung process, a busy mount). Fix it before `tandem clear`.";
    LEASE_LOST = "E3107", Error, "lease lost to another node",
        cause: "The arbitrator reports that another node now holds a lease this node believed it held: this node's renewals stopped reaching it for longer than the lease timeout.",
        fix: "The node stops the group at once. Check why its renewals failed (storage path, witness network) before it can hold leases again.";
    LEASE_UNAVAILABLE = "W3108", Warning, "arbitrator unavailable",
        cause: "A lease request could not be answered: the shared disk gives I/O errors or the witness does not answer. No group can be started or taken over until it answers.",
        fix: "Check the shared disk's path on this node, or the witness process and the network to it.";
    GUARD_FIRED = "E3109", Error, "fence guard stopped the node's resources",
        cause: "The daemon died (killed, crashed) or its loop stopped (paused with SIGSTOP, hung in a blocking call, starved of CPU) while the node held leases, and did not renew the guard's deadline before its lease would run out: the fence guard, a small process that outlives the daemon, stopped every resource of the node (removed virtual IPs, killed processes, unmounted file systems) so that another node can take the groups safely. The message says which.",
        fix: "Find why the daemon died or stalled (the journal, `journalctl -u tandem`, core dumps, the host's load and I/O stalls); a stalled daemon restarts itself as standby (E3112), a dead one must be started again. The groups run on another node meanwhile.";
    GUARD_UNAVAILABLE = "E3110", Error, "fence guard could not be started",
        cause: "The daemon could not start or reach its fence guard process (`tandem fence-guard`), so a killed daemon would leave resources running past its lease. The node refuses to hold leases without it.",
        fix: "Check that the tandem binary is executable and the state directory writable; the daemon's log says what failed.";
    POISON_PILL = "E3111", Error, "poison pill received: fencing this node",
        cause: "Another node or an operator (`tandem fence NODE`) left a poison pill for this node in the shared disk's mailbox: this node must stop running anything at once. The daemon hands over to the fence guard, which stops every resource of the node, and exits; another node takes the groups once their leases have run out.",
        fix: "Find out why the node was fenced (the journal of the node that left the pill, or the operator). Start the daemon again when the node is healthy: a new daemon ignores a pill left for an earlier one.";
    DAEMON_STALLED = "E3112", Error, "daemon stalled past its lease: restarted as standby",
        cause: "The daemon's loop did not run for longer than its lease allows (the process was paused with SIGSTOP, the host froze, a call blocked on a hung disk or file system, the host swapped heavily): when it ran again its fence guard's deadline had passed, so the guard had stopped (or was stopping) every resource of the node and another node may already run its groups. The daemon journals how long it stalled, waits for the guard to finish, and starts again in the same process as a new incarnation, which probes the resources and rejoins as standby.",
        fix: "Find what stopped the daemon (who sent SIGSTOP, a frozen VM, a hung storage path: `dmesg`, the host's load and swap at the time in the message). Nothing is to be done to the groups: they moved to another node, and this node is standby again.";
}
