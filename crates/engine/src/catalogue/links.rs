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
    PACKETS_REJECTED = "W2111", Warning, "heartbeat packets rejected",
        cause: "Packets arrived on a heartbeat port that failed the checks and were dropped: a wrong cluster key or cluster name (another cluster on the same network), a packet forged or damaged in transit, an older format version, or a replayed or truncated packet. The event counts them by reason; at most one such event per link per minute.",
        fix: "Compare /etc/tandem/cluster.key and the cluster name on every node (they must be identical); look for another cluster or a scanner sending to the port; a few `replayed` or `too old` counts after a network hiccup are harmless.";
    HEARTBEAT_TOO_LARGE = "E2112", Error, "heartbeat too large to send",
        cause: "This node's report does not fit one heartbeat packet (64 KiB over UDP, 16 KiB in a disk slot); it is not sent on that link, so peers may declare this node offline there.",
        fix: "Reduce the number of groups, or the administrative history (clear requests) kept for them; report the figures to the tandem developers.";
    DAEMON_STARTED = "I2113", Info, "daemon started",
        cause: "`tandem node` started on this node with a valid configuration, opened its links and its journal.",
        fix: "Nothing to do; `tandem status` shows the node booting, then working or standby.";
    DAEMON_STOPPED = "I2114", Info, "daemon stopped",
        cause: "`tandem node` stopped cleanly (SIGTERM or SIGINT) after stopping or handing over its groups, or, in maintenance, after parking their leases: the resources are left running and no other node takes their groups until this node runs again (or `tandem disk unpark NODE`).",
        fix: "Nothing to do; start it again with `systemctl start tandem` or `tandem node`.";
    DISK_FOREIGN = "E2115", Error, "shared disk area unusable",
        cause: "The disk link's area could not be opened or read: it is not formatted, it belongs to another cluster (a different cluster name in its header), it has a newer format version, or it is too small for the configured nodes and groups.",
        fix: "Check `path` of the disk link. Format it once, from one node, with `tandem disk init --config FILE` (add `--force` only if you are sure the area is not another cluster's).";
    FLOOD_STARTED = "W2120", Warning, "flood of rejected heartbeat packets",
        cause: "More than 100 packets a second arriving at a heartbeat port are being rejected: a flood (replayed or forged heartbeats, another cluster's traffic, a scanner, or junk), possibly with the peer's own source address. The daemon drops what does not come from a peer's configured address before any cryptography, refuses replays before computing a tag, and bounds the tag computations per source; heartbeats are still checked one by one. The event counts the packets by reason and by source; at most one per link per minute.",
        fix: "Find the sources in the event (or `tandem status`) and stop the traffic at the switch or firewall; packets carrying the peer's own address come from inside the heartbeat network. Watch `kernel_drops` in `tandem status`: a growing count means the host cannot keep up and real heartbeats may be lost on that link (the other links keep the peer alive).";
    FLOOD_ENDED = "I2121", Info, "flood of rejected heartbeat packets over",
        cause: "A flood reported by W2120 ended: fewer than 100 packets a second were rejected for 10 seconds. The event gives its duration, peak rate and totals by reason and by source, the kernel's drops meanwhile and the heartbeats accepted meanwhile.",
        fix: "Nothing to do now; if floods recur, find their source from the event.";
    SEEN_UNKEPT = "W2122", Warning, "peers' heartbeat state not kept",
        cause: "The daemon could not read or write <state_dir>/peers-seen.json, where it keeps each peer's newest incarnation and sequence so that heartbeats captured before a restart of this daemon are refused after it. Unread at start (damaged, unreadable), the daemon starts without it: until the peers' next heartbeats, frames captured earlier would be accepted once. Unwritten, a restart now would forget what was seen since the last write.",
        fix: "Check the state directory: free space, permissions, the file system's health (`dmesg`). A damaged file can be removed; the daemon writes it again with the next heartbeats.";
    JOURNAL_TORN_TAIL = "W2140", Warning, "journal: a torn last line was cut off",
        cause: "When the journal was opened its last line had no end: an earlier run of the daemon (or its fence guard) stopped while writing it — a crash, a power cut, a full disk. The partial line was cut off so that the next entry starts on a line of its own; the event gives its size and offset. Entries the daemon had acknowledged were synced before, so only the entry being written is lost.",
        fix: "Nothing to do for the journal. Find out why the daemon stopped (the entries before this one, `journalctl -u tandem`, a full state file system).";
    JOURNAL_ENTRIES_DROPPED = "W2141", Warning, "journal: entries dropped while its disk did not keep up",
        cause: "More entries waited for the journal's writer than it holds (100,000): the file system of the state directory did not complete writes or fsyncs for a long time (a hung or very slow disk). The daemon kept running and dropped the entries beyond the limit; the event counts them.",
        fix: "Check the disk of the state directory (`dmesg`, `iostat -x`); give the state directory a local, healthy disk.";
}
