//! Codes 4xxx: groups, resources, agents and the cluster-wide administrative state.

codes! {
    GROUP_STARTING = "I4101", Info, "group starting",
        cause: "This node holds the group's lease and starts its resources in the effective order: storage, network, applications.",
        fix: "Nothing to do; watch for I4102 (running). If the start hangs, the event of the resource that fails says why.";
    GROUP_RUNNING = "I4102", Info, "group running",
        cause: "Every resource of the group started; the node is the group's production node.",
        fix: "Nothing to do; clients are served by this node. `tandem status` shows the owner and its resources.";
    GROUP_STOPPING = "I4103", Info, "group stopping",
        cause: "The node stops the group's resources in the exact reverse of the start order, for the reason given in the event (switch-over, failback, drain, failures, lost storage or network).",
        fix: "Nothing to do; the event's reason says why.";
    GROUP_STOPPED = "I4104", Info, "group stopped",
        cause: "Every resource of the group is stopped on this node.",
        fix: "Nothing to do if the stop was planned. Otherwise read the preceding I4103 event for its reason.";
    RESOURCE_FAILED = "W4105", Warning, "resource failed: restarting in place",
        cause: "A resource's monitor reported it failed or not running. It is below migration_threshold failures within failure_timeout, so it is restarted on the same node, together with the resources after it.",
        fix: "Read the resource's own logs for why it failed. `tandem clear GROUP` forgets the failures once fixed.";
    RESOURCE_START_FAILED = "E4106", Error, "resource failed to start",
        cause: "A resource agent's start returned an error or timed out. It counts as a failure towards migration_threshold.",
        fix: "Run the agent by hand on that node to see its error (the event names the resource); check paths, permissions and that the program is installed on every node of the group.";
    RESOURCE_STOP_FAILED = "E4107", Error, "resource failed to stop",
        cause: "A resource agent's stop returned an error or timed out. The node cannot prove the resource is down, so it fences itself rather than let another node start the group beside it.",
        fix: "Find why the stop failed (a process ignoring SIGTERM beyond stop_timeout, a busy mount point). Raise stop_timeout if the application needs longer to stop.";
    MIGRATION_THRESHOLD = "E4108", Error, "migration threshold reached: moving the group",
        cause: "A resource failed migration_threshold times within failure_timeout on this node. The node stops the group and lets the next eligible node take it.",
        fix: "Find the cause of the repeated failures on this node. The failures are forgotten after failure_timeout or with `tandem clear GROUP`.";
    GROUP_LOCKED = "W4109", Warning, "group migration-locked",
        cause: "No other node of the group is online and healthy (the standby failed, lost its network or storage, is drained or over its failure threshold). The group stays where it is: it cannot move.",
        fix: "Repair the standby named in the reason. The lock is lifted automatically when it is healthy again.";
    GROUP_UNLOCKED = "I4110", Info, "group unlocked",
        cause: "A standby for the group is online and healthy again, so the group can move if its production node fails.",
        fix: "Nothing to do; the group is protected by a standby again.";
    FAILOVER = "W4111", Warning, "failover: taking over a group",
        cause: "The group's production node failed (crash, lost links, lost storage, lost network, or its resources beyond the threshold) and this node, the next eligible one, takes the group over.",
        fix: "Find and repair the cause on the failed node (see its events). With failback = \"manual\" move the group back with `tandem switchover` when convenient.";
    SWITCHOVER = "I4112", Info, "planned switch-over",
        cause: "An operator asked to move the group (`tandem switchover`, the console or the API). The owner stops it in reverse order, releases the lease and the target starts it.",
        fix: "Nothing to do; follow the move with `tandem events --follow` or the console.";
    FAILBACK = "I4113", Info, "failback to the preferred node",
        cause: "The group has failback = \"auto\" and its preferred node has been healthy for failback_delay, so the group returns to it by a planned switch-over.",
        fix: "Nothing to do. Set failback = \"manual\" to keep groups where they are after a failover.";
    GROUP_NO_NODE = "E4114", Error, "no node can run the group",
        cause: "Every node of the group is offline, drained, in maintenance, lacks its network or storage, or is over the failure threshold for it, so the group is stopped.",
        fix: "Repair one node of the group, or clear its failures with `tandem clear GROUP`; the group starts as soon as a node is eligible.";
    NIC_DOWN = "W4115", Warning, "monitored network interface down",
        cause: "A `nic` resource reports that its interface lost carrier or is down on this node. The node cannot serve the group: on the production node the group moves; on the standby it is locked in place.",
        fix: "Check the interface, cable and switch port on the node named in the event.";
    NIC_UP = "I4116", Info, "monitored network interface up",
        cause: "A `nic` resource reports its interface up again on this node.",
        fix: "Nothing to do. If it flaps, check the cable, switch port and NIC error counters on that node.";
    OPERATION_TIMEOUT = "W4117", Warning, "agent operation timed out",
        cause: "A start, stop or monitor of a resource did not finish within its timeout; the agent was killed and the operation counts as failed.",
        fix: "Find why the agent hangs (an unresponsive service, a hung mount). Raise the operation's timeout if the application is merely slow.";
    FAILURES_EXPIRED = "I4118", Info, "failures expired",
        cause: "A resource's failures are older than failure_timeout and are forgotten; the node may be eligible for the group again.",
        fix: "Nothing to do. If failures keep recurring, find their cause in the resource's own logs.";
    GROUP_CLEARED = "I4119", Info, "failures cleared",
        cause: "An operator cleared the group's failures (`tandem clear`); its nodes are eligible again.",
        fix: "Nothing to do; the group may now run on nodes it had been moved away from.";
    REATTACHED = "I4120", Info, "re-attached to a running group",
        cause: "After a daemon restart the node found the group's resources still running, got the lease back and kept them running instead of restarting them.",
        fix: "Nothing to do; the restart of the daemon did not interrupt the service.";
    SWITCHOVER_REFUSED = "W4121", Warning, "switch-over refused",
        cause: "The requested target cannot run the group: it is offline, drained, in maintenance, not in the group's node list, or unhealthy for the group; or the group is migration-locked.",
        fix: "Check `tandem status` for the target's state and the group's lock reason, repair, and ask again.";
    RESOURCE_FOUND_RUNNING = "W4122", Warning, "resource running without the lease: stopping it",
        cause: "A probe found a resource running on this node although the node could not get its group's lease (another node holds it). It is stopped to keep the one-owner guarantee.",
        fix: "Find who started it outside tandem (an init script enabled at boot, a manual start) and disable that; tandem must be the only one to start clustered resources.";
    MIGRATION_BLOCKED = "W4123", Warning, "group should move but is migration-locked",
        cause: "The group should leave this node (failures over the threshold, lost network or storage, drain) but no other node can take it, so it stays and keeps being restarted in place.",
        fix: "Repair the standby so the group can move, or the fault on this node.";
    RESOURCE_IN_USE = "W4124", Warning, "resource still held elsewhere: start retried",
        cause: "A resource's start found what it takes still held by another host: a virtual IP that another machine still answers for, typically the previous owner of the group letting go of it (a host that was frozen answers for its addresses until it runs again and its fence guard removes them). This is no failure of this node: nothing is counted, the group does not move away for it, and the start is retried every two heartbeat intervals until the address is free.",
        fix: "Usually nothing: the previous owner lets go within moments. If it lasts, find the host that answers for the address (the message names its hardware address; `ip neigh`, `arping`) and remove the address there, or fence that host.";
    MAINTENANCE_ON = "W4201", Warning, "maintenance mode on",
        cause: "An administrator turned maintenance on: tandem no longer starts, stops or monitors resources; they keep running as they are. Leases are still renewed and lost leases still stop groups.",
        fix: "Turn it off with `tandem maintenance off` when the work is done; every resource is probed again then.";
    MAINTENANCE_OFF = "I4202", Info, "maintenance mode off",
        cause: "An administrator turned maintenance off; tandem manages resources again after probing them.",
        fix: "Nothing to do; check `tandem status` after the probes for resources found changed.";
    NODE_DRAINED = "I4203", Info, "node drained",
        cause: "An operator drained the node: its groups move to other nodes and it takes none until undrained.",
        fix: "`tandem undrain NODE` allows it again.";
    NODE_UNDRAINED = "I4204", Info, "node undrained",
        cause: "An operator allowed the node to run groups again.",
        fix: "Nothing to do. Groups with failback = \"auto\" preferring this node return after failback_delay.";
    NODE_LEAVING = "I4205", Info, "node shutting down: its groups move away",
        cause: "The daemon was asked to stop (SIGTERM, `systemctl stop tandem`): like a drain for this run only, it stops its groups in reverse order, releases their leases so that another node takes them at once, and exits. In maintenance it leaves the resources running.",
        fix: "Nothing to do. To keep a node's groups off it across restarts use `tandem drain NODE`.";
    IP_ADDRESS_IN_USE = "E4301", Error, "IP address already in use on the network",
        cause: "Before adding an `ip` resource's address the agent probed the segment (ARP probe for IPv4, duplicate-address detection for IPv6) and another host answered for it; the event names that host's hardware address. The address was not added, so the start failed: two hosts answering for one address would split its clients.",
        fix: "Find the host with that hardware address (`ip neigh`, the switch's MAC table) and remove the address there: a node outside the cluster, a stale manual configuration, or a node that still holds the address after a failed stop. Then clear the failure with `tandem clear GROUP`.";
    IP_CHANGE_FAILED = "E4302", Error, "IP address could not be added or removed",
        cause: "An `ip` resource's agent could not do its work: the configured interface does not exist, no interface has an address on the network of the resource's address (when no interface is configured), the kernel refused the change (netlink error), or the raw socket for the duplicate-address probe could not be opened (it needs CAP_NET_RAW).",
        fix: "Read the message for which. Check the interface name (`ip link`), give the interface a base address on that network or configure `interface`, and run the daemon as root.";
    SYSTEMD_NOT_BOOTED = "E4303", Error, "systemd is not the init system here",
        cause: "A `systemd` resource was asked to start, stop or monitor a unit on a host that was not booted with systemd (/run/systemd/system is missing: a container, another init system). tandem never falls back to another way of starting the unit.",
        fix: "Run the group only on nodes booted with systemd, or use a `process`, `lsb` or `script` resource for this service instead.";
    SYSTEMD_DBUS_FAILED = "E4304", Error, "systemd did not answer over D-Bus",
        cause: "The `systemd` agent could not talk to systemd on the system bus: the bus socket is missing, the call was refused (permissions, an unknown unit name) or no answer came before the operation's timeout.",
        fix: "Check `systemctl status UNIT` by hand on that node, that the unit file exists and that the daemon runs as root. The message carries the D-Bus error name.";
    SYSTEMD_UNIT_FAILED = "E4305", Error, "systemd unit failed",
        cause: "systemd ran the job but the unit did not reach the wanted state: its start job ended with a result other than `done` (failed, dependency, timeout...) or the unit is in the `failed` state. The message carries systemd's result.",
        fix: "Read `journalctl -u UNIT` on that node for why the service failed, fix it, then `systemctl reset-failed UNIT` and `tandem clear GROUP`.";
    AGENT_TOOL_MISSING = "E4306", Error, "a program the agent needs is not installed",
        cause: "A resource agent runs a system program (mount, umount, fsck...) that is not installed on this node. The message names the program and the Debian package that provides it.",
        fix: "Install the named package on every node of the group (`apt-get install PACKAGE`).";
    PROCESS_STATE_UNWRITABLE = "E4307", Error, "the process agent could not record the process it started",
        cause: "A `process` resource's agent started its command but could not write the state file that records the process id and start time (`<log dir>/<resource>.pid`, written atomically: temporary file, fsync, rename): the log directory is missing or not writable, or its disk is full or failing. Without the record a restarted daemon would not find the process and would start a second copy, so the agent stopped it again and the start failed.",
        fix: "Make the log directory writable by the daemon and check its file system (`df`, `dmesg`); then `tandem clear GROUP`.";
}
