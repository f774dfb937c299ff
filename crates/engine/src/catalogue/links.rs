//! Codes 2xxx: links, heartbeats, peers and the node's own storage path.

codes! {
    LINK_DOWN = "W2101", Warning, "heartbeat link down",
        cause: "No heartbeat arrived over this link from the peer for peer_timeout. A cable, switch port or NIC on one of the two nodes failed, a firewall drops the heartbeat port, or (disk link) one node lost its path to the shared array. The peer stays alive while any other link carries its heartbeats, so no group moves.",
        fix: "Check the link named in the event on both nodes: interface state (`ip link`), addresses, the firewall for the link's UDP port, or the storage path for the disk link. The alarm clears by itself when heartbeats flow again.";
    LINK_UP = "I2102", Info, "heartbeat link up",
        cause: "Heartbeats arrive over this link from the peer again (or for the first time).",
        fix: "Nothing to do. If the link flaps up and down, check its cabling, switch and NIC error counters.";
    PEER_JOINED = "I2103", Info, "peer node online",
        cause: "The first heartbeat of a peer arrived over some link: it started, or came back after being unreachable on every link.",
        fix: "Nothing to do. Groups locked because this peer was missing are unlocked once it reports itself healthy.";
    PEER_LOST = "E2104", Error, "peer node offline on every link",
        cause: "No heartbeat arrived from the peer on any link (private, public or disk) for peer_timeout: the server crashed, lost power, hangs, or every path to it failed at once. Groups it ran are taken over once its lease has expired; groups it stood by for are migration-locked.",
        fix: "1. Check the server's console or power. 2. If it runs, check all its heartbeat links. 3. Once its tandem daemon runs again it rejoins by itself and locked groups unlock.";
    PEER_RESTARTED = "W2105", Warning, "peer node restarted",
        cause: "A heartbeat arrived from a peer with a new incarnation number: its tandem daemon or the whole server restarted since its last heartbeat.",
        fix: "Read the peer's journal (`tandem events` on that node) to find why it restarted. Nothing moves because of the restart itself.";
    STORAGE_PATH_LOST = "E2106", Error, "storage path lost on this node",
        cause: "Reads or writes of the shared-disk heartbeat area fail on this node: the HBA, cable, SAN switch or array path failed. This node can no longer run groups that mount shared file systems.",
        fix: "Check the node's path to the array (multipath status, HBA link, kernel log). Groups move to a node that still sees the storage; this node becomes eligible again when the path returns.";
    STORAGE_PATH_RESTORED = "I2107", Info, "storage path restored on this node",
        cause: "I/O on the shared-disk heartbeat area succeeds again on this node.",
        fix: "Nothing to do. Check the kernel log for the cause of the earlier loss.";
    NODE_BOOTING = "I2108", Info, "node starting",
        cause: "The tandem daemon started on this node; it probes its resources and listens for peers before it acts (state booting, shown in blue).",
        fix: "Nothing to do. If a node stays in booting, check that its probes finish and that its links are up.";
    NODE_READY = "I2109", Info, "node finished booting",
        cause: "The node has listened for its peers for the start-up wait and knows the state of its resources; it now takes part in placement.",
        fix: "Nothing to do; the node now runs or stands by for its groups.";
    HEARTBEAT_STALE = "W2110", Warning, "heartbeat from an older incarnation dropped",
        cause: "A heartbeat carried an incarnation number older than one already seen from the same node: a delayed or replayed packet.",
        fix: "Nothing to do if it is rare. Many of them point at a network that reorders or duplicates heavily, or at a replay attempt.";
}
