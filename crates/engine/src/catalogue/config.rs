//! Codes 1xxx: the configuration file (`cluster.toml`) and the host checks made from it.
//!
//! Owned by the `config` crate, which emits every one of these codes (its
//! `config::CODES` list must match this file; a test checks both directions). Blocks:
//! 1001-1099 errors in the file, 1101-1199 warnings about the file, 1201-1299 host
//! checks, each with a warning form (`tandem validate`) and an error form (the daemon,
//! which refuses to start on a host that cannot run what the file describes);
//! 1301-1339 the configuration's generations and their push to every node, emitted by
//! the daemon's configuration store (`daemon::configstore`), not by the `config` crate.
//! This file holds text only: no logic.

codes! {
    CONFIG_SYNTAX = "E1001", Error, "configuration is not valid TOML",
        cause: "The file could not be parsed as TOML: a missing quote, bracket or equals sign, or a duplicated table key.",
        fix: "Correct the syntax at the position shown. Strings need double quotes, durations are strings such as \"2s\", and tables are written [name] or [[name]].";
    CONFIG_UNKNOWN_KEY = "E1002", Error, "unknown key",
        cause: "The file contains a key that tandem does not know in this table. It is often a typing mistake, a key that belongs to another resource or link kind, or a key from a newer version of tandem. Unknown keys are refused rather than ignored, so that a misspelt setting never silently falls back to its default.",
        fix: "Correct the key's spelling (the message suggests the nearest known key when there is one), move it to the table where it belongs, or remove it. docs/configuration.md lists every key of every table and resource kind.";
    CONFIG_WRONG_TYPE = "E1003", Error, "value has the wrong type",
        cause: "A key has a value of another TOML type than the one it takes: for example a number written as a string (\"5405\"), a duration written as a bare number (100 instead of \"100ms\"), or a single [table] where a list of [[tables]] is expected.",
        fix: "Write the value with the type the message names. Durations, addresses and names are strings in double quotes, ports and counts are bare integers, switches are true or false, lists are [ ... ], and repeated sections such as nodes, links, groups, resources and alerts are written [[node]], [[link]], [[group]], [[group.resource]] and [[alert]].";
    CONFIG_MISSING_KEY = "E1004", Error, "required key missing",
        cause: "A table lacks a key that has no default: a name, a kind, a group's nodes, a disk link's path, or a key that a resource kind needs (for example mountpoint for a filesystem or unit for a systemd resource).",
        fix: "Add the key named in the message to the table shown. docs/configuration.md lists which keys are required for each table and each resource kind, and the defaults of the others.";
    CONFIG_MISSING_SECTION = "E1005", Error, "required section missing",
        cause: "The file has no [cluster] table, no [[node]] or no [[link]]. A cluster needs a name, at least one node and at least one heartbeat link before anything else can be checked against them.",
        fix: "Add the missing section. Start from examples/reference.toml or examples/active-standby.toml, which contain every required section.";
    CONFIG_DUPLICATE_NAME = "E1006", Error, "name used twice",
        cause: "Two nodes, two links, two groups, two resources of one group, or two app resources anywhere in the cluster have the same name. Names identify things in commands, events and the API, so they must be unique (app resource names are cluster-wide because the application heartbeat API addresses them by name alone).",
        fix: "Rename one of the two; the message points at the second and names the first. Remember that renaming a group or resource changes how commands and the journal refer to it.";
    CONFIG_INVALID_NAME = "E1007", Error, "invalid name",
        cause: "A name is empty, longer than 63 characters, does not start with a letter or digit, or contains characters other than ASCII letters, digits, '-', '_' and '.'. Names appear in URLs, file names, commands and events, so they are kept to a safe alphabet.",
        fix: "Choose a name of 1 to 63 characters made of letters, digits, '-', '_' and '.', starting with a letter or digit, such as \"db\", \"web-1\" or \"alpha\". A node's name should be its host name, which `tandem node` uses by default.";
    CONFIG_UNKNOWN_NODE = "E1008", Error, "reference to an unknown node",
        cause: "A group's nodes list names a node that no [[node]] table defines, usually because of a typing mistake or a node that was removed from the file but not from the groups.",
        fix: "Correct the name (the message suggests the nearest node name when there is one) or add a [[node]] table for it.";
    CONFIG_UNKNOWN_LINK = "E1009", Error, "address for an unknown link",
        cause: "A node's addresses table has a key that is not the name of any [[link]]. Each key of addresses must name a UDP link; the value is the node's address on that link.",
        fix: "Correct the key to the name of a [[link]] of kind udp (the message suggests the nearest one), or add the missing [[link]] table.";
    CONFIG_ADDRESS_FOR_DISK_LINK = "E1010", Error, "address given for a disk link",
        cause: "A node's addresses table gives an address for a link of kind disk. A disk link carries heartbeats through an area of the shared disk named by the link's path, which is the same for every node; it has no per-node network address.",
        fix: "Remove the entry from the node's addresses. If a network path was meant, define a separate [[link]] of kind udp for it.";
    CONFIG_MISSING_ADDRESS = "E1011", Error, "node has no address on a UDP link",
        cause: "A node has no entry in its addresses table for one of the cluster's UDP links. Every node sends and receives heartbeats on every link, so each node needs an address on each UDP link.",
        fix: "Add `LINK = \"IP\"` (or `\"IP:PORT\"` to override the link's port) to the node's addresses table, or remove the link if this network does not exist.";
    CONFIG_DUPLICATE_ADDRESS = "E1012", Error, "two nodes share one address on a link",
        cause: "Two nodes have the same IP address and port on one UDP link, so their heartbeats could not be told apart and at most one of them could bind the port. This is usually a copied [[node]] table whose address was not changed.",
        fix: "Give each node its own address on the link. Nodes on one machine (tests, `tandem demo`) may share an IP address if each uses its own port, written \"127.0.0.1:5406\".";
    CONFIG_GROUP_WITHOUT_NODES = "E1013", Error, "group has no nodes",
        cause: "A group's nodes list is empty, so no node may ever run the group.",
        fix: "List the nodes that may run the group in order of preference: the first is its production node, the next its standby, for example nodes = [\"alpha\", \"beta\"].";
    CONFIG_NODE_LISTED_TWICE = "E1014", Error, "node listed twice in a group",
        cause: "A group's nodes list names the same node twice. The list is an order of preference, so each node may appear only once.",
        fix: "Remove the second occurrence, keeping the node at the place in the order of preference that you want.";
    CONFIG_BAD_DURATION = "E1015", Error, "invalid duration",
        cause: "A duration is not a string of whole numbers each followed by a unit, such as \"100ms\", \"2s\", \"10m\", \"1h\" or \"1m30s\". Common mistakes are a missing unit (\"100\"), an unknown unit (\"5sec\", \"2d\"), a fraction (\"1.5s\"), a negative value, units out of order or repeated (\"30s1m\"), or a value too large to represent.",
        fix: "Write the duration as whole numbers with the units h, m, s and ms, largest first: \"1500ms\" instead of \"1.5s\", \"90s\" or \"1m30s\" instead of \"1.5m\".";
    CONFIG_ZERO_DURATION = "E1016", Error, "duration must be greater than zero",
        cause: "A duration that tandem waits for or repeats at is zero: a monitor interval or timeout, a start or stop timeout, an app deadline or a failure timeout. An operation cannot finish in no time and a monitor cannot run continuously.",
        fix: "Give a positive duration, or remove the key to use its default (docs/configuration.md lists them).";
    CONFIG_BAD_IP = "E1017", Error, "invalid IP address",
        cause: "A value that must be an IPv4 or IPv6 address is not one, for example a host name, a mistyped octet (\"192.168.50.256\") or an address with a prefix length where none is expected.",
        fix: "Write a literal address such as \"192.168.50.1\" or \"fd00::1\". Host names are not accepted for heartbeat addresses, so that heartbeats never depend on name resolution.";
    CONFIG_BAD_CIDR = "E1018", Error, "invalid address with prefix length",
        cause: "An ip resource's address is not an IP address followed by a slash and a prefix length (at most 32 for IPv4, 128 for IPv6). The prefix length is needed to add the address to the interface with the right network.",
        fix: "Write the address with its prefix length, such as \"10.0.0.100/24\" or \"fd00::100/64\".";
    CONFIG_BAD_PORT = "E1019", Error, "invalid port",
        cause: "A port is not a whole number from 1 to 65535, either a link's port or the port of an \"ip:port\" address.",
        fix: "Use a port from 1 to 65535 that is free on every node, for example 5405 for heartbeats and 7400 for the API.";
    CONFIG_BAD_SOCKET_ADDRESS = "E1020", Error, "invalid address with port",
        cause: "A value that must be an address with a port is not one: the API address and the witness take \"IP:PORT\", an SMTP server \"HOST:PORT\", and a node's address on a link \"IP\" or \"IP:PORT\". IPv6 addresses with a port need square brackets.",
        fix: "Write the address as \"10.0.0.11:7400\", \"[fd00::11]:7400\" or, for SMTP, \"smtp.example.com:587\".";
    CONFIG_UNKNOWN_VALUE = "E1021", Error, "unknown value",
        cause: "A key that takes one of a fixed set of words has another value: a link kind (udp, disk), an arbitration kind (disk, witness, none), a failback (manual, auto), an alert kind (email, webhook, script) or a min_severity (info, warning, error).",
        fix: "Use one of the values the message lists; the nearest one is suggested when the value looks like a typing mistake. Values are lower case.";
    CONFIG_UNKNOWN_RESOURCE_KIND = "E1022", Error, "unknown resource kind",
        cause: "A resource's kind is not one tandem knows. The kinds of this version are filesystem, ip, nic, process, script, lsb, systemd, ocf and app.",
        fix: "Use one of these kinds. Anything not covered directly can usually be managed as a systemd unit, an LSB init script, a script resource with start/stop/status, or an OCF agent.";
    CONFIG_INVALID_VALUE = "E1023", Error, "invalid value",
        cause: "A value has the right type but cannot be used: an empty string or list, a relative path where an absolute one is needed, an OCF agent not written provider:type, an interface name longer than 15 characters, a webhook URL that is not http or https, an e-mail address without '@', or an env or params name with forbidden characters.",
        fix: "Correct the value as the message and its help describe. docs/configuration.md gives the constraints of every key.";
    CONFIG_DISK_ARBITRATION_WITHOUT_DISK_LINK = "E1024", Error, "disk arbitration needs exactly one disk link",
        cause: "Arbitration kind \"disk\" (the default) keeps the group leases in the disk link's area on the shared disk, but the cluster has no link of kind disk, or has several so that the lease area would be ambiguous.",
        fix: "Add one [[link]] with kind = \"disk\" and the path of the shared heartbeat partition (a plain file works for tests), keep only one disk link, or choose arbitration kind = \"witness\" (with a witness address) or, knowing the split-brain risk, \"none\".";
    CONFIG_WITNESS_WITHOUT_ADDRESS = "E1025", Error, "witness arbitration without a witness address",
        cause: "Arbitration kind \"witness\" has leases granted by a witness on a third host, but [arbitration] has no witness key saying where it listens.",
        fix: "Add witness = \"IP:PORT\" to [arbitration] (the witness's address, for `tandem simulate`: this version has no witness process, E1107), or choose another arbitration kind.";
    CONFIG_PEER_TIMEOUT_TOO_SHORT = "E1026", Error, "peer_timeout shorter than three heartbeat intervals",
        cause: "peer_timeout is less than three times heartbeat_interval. A link would then be declared down after losing only one or two heartbeats, which ordinary packet loss and scheduling delays cause, so links and peers would flap.",
        fix: "Raise peer_timeout to at least three times heartbeat_interval (the defaults are 100ms and 1s, ten heartbeats), or shorten heartbeat_interval.";
    CONFIG_HEARTBEAT_INTERVAL_TOO_SHORT = "E1027", Error, "heartbeat_interval below 10ms",
        cause: "heartbeat_interval is below 10ms. Heartbeats that often cost CPU and bandwidth on every link (including disk writes on the disk link) and are below the scheduling jitter of an ordinary server, so they do not make detection faster.",
        fix: "Use a heartbeat_interval of 10ms or more; the default 100ms with peer_timeout 1s detects a failure in about one second.";
    CONFIG_LEASE_TIMEOUT_TOO_SHORT = "E1028", Error, "lease_timeout below 200ms",
        cause: "lease_timeout is below 200ms. A holder renews its lease every lease_timeout/5 and starts stopping its groups 0.4 x lease_timeout before expiry, so a shorter lease leaves under 40ms per renewal, which one slow disk write or busy moment would miss, stopping groups for no reason.",
        fix: "Use a lease_timeout of 200ms or more. The default is 1s; longer leases make a takeover after a crash slower but are more tolerant of slow storage.";
    CONFIG_MIGRATION_THRESHOLD_OUT_OF_RANGE = "E1029", Error, "migration_threshold out of range",
        cause: "A group's migration_threshold is below 1 or too large. It counts the failures of a resource on one node before the group moves away, so 0 would move the group without any failure.",
        fix: "Use a whole number of 1 or more: 1 moves the group on the first failure, the default 3 restarts it in place twice first.";
    CONFIG_LIMIT_EXCEEDED = "E1030", Error, "configuration limit exceeded",
        cause: "The file defines more items than tandem supports: more than 32 nodes, 8 links, 10000 groups, 64 resources in one group or 32 alerts. The limits keep memory, packet sizes and the time of every decision bounded.",
        fix: "Reduce the number of items below the limit named in the message. Split very large groups into several groups, and very large clusters into several clusters.";
    CONFIG_UNREADABLE = "E1031", Error, "configuration file cannot be read",
        cause: "The configuration file does not exist, cannot be read by this user, is not UTF-8 text, or is larger than the 16 MiB limit.",
        fix: "Check the path (the default is /etc/tandem/cluster.toml; `--config` chooses another), the file's permissions and its encoding.";
    CONFIG_SPLIT_BRAIN_RISK = "W1101", Warning, "no arbitration: split brain possible",
        cause: "Arbitration is \"none\" in a cluster of two or more nodes, so every lease request is granted. If every heartbeat link between two nodes fails at once, each believes the other dead and both run the same groups, which can corrupt shared data.",
        fix: "Use arbitration kind = \"disk\" with a disk link. Keep \"none\" only for tests, or for groups whose resources are safe to run twice.";
    CONFIG_GROUP_SINGLE_NODE = "W1102", Warning, "group can run on only one node",
        cause: "The group's nodes list has a single node, so nothing takes over when that node fails: the group is not highly available.",
        fix: "Add a standby node to the group's nodes list, for example nodes = [\"alpha\", \"beta\"]. Ignore the warning if the group is deliberately pinned to one node.";
    CONFIG_SINGLE_LINK = "W1103", Warning, "only one heartbeat link",
        cause: "The cluster has a single heartbeat link. When it fails (a cable, a switch, a NIC) the nodes lose each other completely although both are healthy; this single point of failure is what the three-link interlock avoids.",
        fix: "Add independent links: a dedicated private network, the public network and the shared-disk area (kind = \"disk\"). Any one link working keeps the peers alive.";
    CONFIG_WITNESS_IGNORED = "W1105", Warning, "witness address ignored",
        cause: "[arbitration] has a witness address but its kind is not \"witness\", so the address is not used. It may be left over from an earlier configuration, or the kind may have been changed by mistake.",
        fix: "Set kind = \"witness\" to use the witness, or remove the witness key.";
    CONFIG_DISK_ARBITRATION_MANY_NODES = "W1106", Warning, "disk arbitration between three or more nodes",
        cause: "The cluster has three or more nodes and keeps its leases on the shared disk. A lease write that the disk holds past the I/O timeout (lease_timeout / 30, at most 250 ms) and that lands later can free a group another node holds; with two nodes tandem waits such a write out, with three a third node may claim the freed group at once while its holder still runs it. The shared disk must then answer every write within the I/O timeout.",
        fix: "Put the heartbeat and lease area on storage that never holds a write longer than the I/O timeout (a LUN of its own; multipath set to fail I/O rather than queue it, `no_path_retry fail`), or split the cluster into pairs.";
    CONFIG_NOT_IN_THIS_VERSION = "E1107", Error, "arbitration kind not available in this version",
        cause: "[arbitration] kind = \"witness\" asks for a witness process on a third host that grants the leases. `tandem simulate` models it, but this version of tandem has no witness process, and `tandem node` cannot arbitrate with one: `tandem validate` and `tandem node` refuse the file.",
        fix: "Use kind = \"disk\" with a disk link (the shared-disk lease area, `tandem disk init`), or \"none\" for tests. Keep a witness configuration only for `tandem simulate`.";
    HOST_PATH_MISSING = "E1201", Error, "file or directory missing on this host",
        cause: "A path the configuration names does not exist on this node: the cluster key, a script, a program, a working directory, an init script, an alert script or an alert's password or CA file. The node would fail when it needs the path, for example when it starts a resource after a failover.",
        fix: "Install or copy the file to every node that may run the group (the configuration is the same on every node), or correct the path. Run `tandem keygen` and copy the key to every node if the cluster key is missing.";
    HOST_PATH_MISSING_WARNING = "W1201", Warning, "file or directory missing on this host",
        cause: "A path the configuration names does not exist on the host where `tandem validate` runs: the cluster key, a script, a program, a working directory, an init script, an alert script or an alert's password or CA file. The daemon refuses to start on a node where it is missing.",
        fix: "Install or copy the file to every node that may run the group, or correct the path. If validate runs on another machine than the nodes, the warning only says that this machine lacks the file.";
    HOST_NOT_EXECUTABLE = "E1202", Error, "file is not executable",
        cause: "A script, init script or program named by the configuration exists on this node but has no execute permission, so tandem could not run it.",
        fix: "Make it executable on every node (`chmod +x PATH`) or correct the path.";
    HOST_NOT_EXECUTABLE_WARNING = "W1202", Warning, "file is not executable",
        cause: "A script, init script or program named by the configuration exists on the host where `tandem validate` runs but has no execute permission. The daemon refuses to start on a node where it cannot run it.",
        fix: "Make it executable on every node (`chmod +x PATH`) or correct the path.";
    HOST_DEVICE_MISSING = "E1203", Error, "device or disk area missing on this host",
        cause: "A filesystem resource's device or the disk link's path does not exist on this node: the shared array is not visible (zoning, multipath, iSCSI login), the device name differs on this node, or the heartbeat file of a test set-up was not created.",
        fix: "Make the shared storage visible on every node under the same name (prefer stable names under /dev/disk/by-id or /dev/mapper), and initialise the disk link with `tandem disk init`.";
    HOST_DEVICE_MISSING_WARNING = "W1203", Warning, "device or disk area missing on this host",
        cause: "A filesystem resource's device or the disk link's path does not exist on the host where `tandem validate` runs. The daemon refuses to start on a node where it is missing.",
        fix: "Make the shared storage visible on every node under the same name (prefer stable names under /dev/disk/by-id or /dev/mapper), and initialise the disk link with `tandem disk init`.";
    HOST_OCF_AGENT_MISSING = "E1204", Error, "OCF resource agent not installed",
        cause: "An ocf resource names an agent provider:type that is not found as $OCF_ROOT/resource.d/PROVIDER/TYPE (OCF_ROOT defaults to /usr/lib/ocf) on this node, or it is not executable.",
        fix: "Install the package that provides the agent (for heartbeat:* agents, resource-agents) on every node of the group, or correct the provider or type.";
    HOST_OCF_AGENT_MISSING_WARNING = "W1204", Warning, "OCF resource agent not installed",
        cause: "An ocf resource names an agent provider:type that is not found as $OCF_ROOT/resource.d/PROVIDER/TYPE (OCF_ROOT defaults to /usr/lib/ocf) on the host where `tandem validate` runs. The daemon refuses to start on a node where it is missing.",
        fix: "Install the package that provides the agent (for heartbeat:* agents, resource-agents) on every node of the group, or correct the provider or type.";
    HOST_INTERFACE_MISSING = "E1205", Error, "network interface missing on this host",
        cause: "An ip or nic resource names a network interface that does not exist on this node (nothing under /sys/class/net). Interface names must be the same on every node because the configuration is shared.",
        fix: "Correct the name, or give the interfaces the same name on every node (for example with systemd .link files), or leave interface out of an ip resource to let tandem pick the interface whose network contains the address.";
    HOST_INTERFACE_MISSING_WARNING = "W1205", Warning, "network interface missing on this host",
        cause: "An ip or nic resource names a network interface that does not exist on the host where `tandem validate` runs. The daemon refuses to start on a node where it is missing.",
        fix: "Correct the name, or give the interfaces the same name on every node, or leave interface out of an ip resource to let tandem pick the interface whose network contains the address.";
    HOST_SYSTEMD_UNIT_MISSING = "E1206", Error, "systemd unit not installed",
        cause: "A systemd resource names a unit for which no unit file exists in /etc/systemd/system, /run/systemd/system, /usr/lib/systemd/system or /lib/systemd/system on this node (for a template instance such as name@x.service, the template name@.service).",
        fix: "Install the package providing the unit on every node of the group, or correct the unit name (`systemctl list-unit-files` shows them).";
    HOST_SYSTEMD_UNIT_MISSING_WARNING = "W1206", Warning, "systemd unit not installed",
        cause: "A systemd resource names a unit for which no unit file exists in the usual unit directories on the host where `tandem validate` runs. The daemon refuses to start on a node where it is missing.",
        fix: "Install the package providing the unit on every node of the group, or correct the unit name (`systemctl list-unit-files` shows them).";
    HOST_SECRET_READABLE = "E1207", Error, "secret file readable by others",
        cause: "An e-mail alert's password_file (the SMTP password) can be read by users other than its owner on this node: its mode grants the group or others some permission. tandem does not use a secret that others can read; the node does not start.",
        fix: "Make it private on every node: `chown root PATH && chmod 600 PATH`.";
    HOST_SECRET_READABLE_WARNING = "W1207", Warning, "secret file readable by others",
        cause: "An e-mail alert's password_file (the SMTP password) can be read by users other than its owner on the host where `tandem validate` runs. The daemon refuses to start on a node where it is so.",
        fix: "Make it private on every node: `chown root PATH && chmod 600 PATH`.";
    CONFIG_EDITED_BY_HAND = "W1301", Warning, "configuration file edited by hand",
        cause: "The node's configuration file (`tandem node --config`) differs from the newest generation the node keeps in its state directory (config/): someone edited it by hand instead of pushing it with `tandem config push`. At start the node runs the file it read and records it as a new local generation; other nodes do not have it.",
        fix: "Push the same file to every node with `tandem config push FILE` (it becomes the next generation everywhere), or put the kept text back with `tandem config show > FILE` on this node. `tandem config diff FILE` shows what differs.";
    CONFIG_GENERATION_MOVED_ON = "E1302", Error, "configuration generation moved on",
        cause: "A configuration was pushed as a change of generation N, but the running generation is newer: someone else pushed (or restored) a configuration since the text was read. Applying it would silently undo that change, so the push is refused (optimistic concurrency).",
        fix: "Read the running configuration again (`tandem config show`, or reload the console's editor), make the change on top of it and push again; `tandem config diff FILE` shows what differs from the running one.";
    CONFIG_REFUSED_BY_NODE = "E1303", Error, "configuration refused by a node",
        cause: "A pushed configuration is not valid, or a node found that its host lacks what the configuration names (a device, a network interface, an OCF agent, a systemd unit, a program): a node that cannot run what a configuration describes refuses it, and the whole push is refused, on every node.",
        fix: "Read each node's diagnostics in the answer (code, line and column, as `tandem validate` prints them), correct the file or install what is missing on that node, and push again.";
    CONFIG_NODE_UNREACHABLE = "E1304", Error, "node not reached for a configuration push",
        cause: "A push asks every node to check the configuration before any applies it; a node did not answer over its HTTPS API (it is down, its `api` address is not reachable, its certificate does not verify against the cluster CA `[api] ca_file`, or the cluster key differs). Nothing was applied anywhere, so the nodes keep one generation.",
        fix: "Start the node or restore the network path to its `api` address, check that every node has the same cluster.key and a certificate signed by the cluster CA, and push again.";
    CONFIG_FILE_EDITED_ON_NODE = "E1305", Error, "push refused: the file was edited by hand on a node",
        cause: "On a node, the configuration file differs from the generation the node keeps as its newest: it was edited by hand while the node ran. Applying a push would overwrite that edit without anyone having seen it.",
        fix: "On that node, either put the kept text back (`tandem config show > FILE`), or restart tandem node there: it records the edit as a local generation (W1301), which you can then read, merge and push. Then push again.";
    CONFIG_GENERATIONS_DIFFER = "E1306", Error, "nodes keep different configuration generations",
        cause: "The nodes do not have the same newest generation (or the same text for it): one was given a configuration the others never had (a hand edit recorded at start, W1301, or a push that reached only some nodes). A push is a change of one generation on every node, so it is refused; the cluster keeps running with what each node has.",
        fix: "Decide which text is right (`tandem config show --endpoint` on each node, `tandem config history`), and push it to every node with `tandem config push FILE --generation N`, N being the generation of the node you ask; when nodes disagree, push to the node whose generation is the highest.";
    CONFIG_NODE_CALL_UNAUTHENTICATED = "E1307", Error, "node call not authenticated",
        cause: "A request on one of the nodes' own configuration routes did not carry a valid signature of the cluster key (an HMAC of the method, path, body, sender and time), or its time was more than two minutes from this node's clock: it did not come from a node of this cluster, or the nodes have different keys or clocks far apart.",
        fix: "Give every node the same cluster.key (from `tandem keygen`) and keep their clocks synchronised (NTP). Nothing but tandem nodes should call these routes.";
    CONFIG_NOT_APPLIED_ON_NODE = "E1308", Error, "configuration not applied on a node",
        cause: "Every node accepted a pushed configuration, but writing it failed on a node (its state directory or the configuration file's directory is full or not writable), or the node stopped answering between the check and the apply: the nodes that applied it have the new generation, this one does not.",
        fix: "Correct the node's disk (space, permissions of the state directory and of the configuration file), then push the same file again: nodes that have it already keep it, the others take it.";
    CONFIG_PUSH_IN_PROGRESS = "E1309", Error, "another configuration push is in progress",
        cause: "A node was asked to check a configuration while it held another push's checked text, waiting for that push to be applied: two pushes at the same time could leave nodes with different texts under one generation number. The first push holds its place for at most 30 seconds.",
        fix: "Wait for the other push to end (`tandem config history` shows it once applied) and push again on top of it.";
    CONFIG_APPLIED = "I1310", Info, "configuration generation applied",
        cause: "A configuration generation was written on this node: its state directory keeps the text and the running configuration file was replaced atomically. The entry names who pushed it, through which node, and what changed.",
        fix: "Nothing to do. `tandem config history` lists the generations, `tandem config restore GEN` pushes an earlier one again.";
    CONFIG_RESTART_NEEDED = "W1311", Warning, "configuration change waits for a restart",
        cause: "An applied configuration changes something the running daemon cannot take without a restart (nodes, links, timing, arbitration, groups and their resources, the API's files, the cluster key or state directory): the new file is in place, and the running daemon keeps the previous values until tandem node restarts on this node.",
        fix: "Restart tandem node on the nodes named (one at a time: `systemctl restart tandem` hands its groups over first). Until then `tandem config show` says which generation runs.";
    CONFIG_GENERATION_NOT_KEPT = "E1312", Error, "no such configuration generation",
        cause: "`tandem config restore` or a history request named a generation this node does not keep: it never existed, or it was removed from the state directory.",
        fix: "List the kept generations with `tandem config history` and restore one of them.";
    CONFIG_PEER_GENERATION_DIFFERS = "W1313", Warning, "nodes run different configuration generations",
        cause: "A node's heartbeats carry the newest configuration generation it keeps and the SHA-256 of its text; another node's differ from this node's. Usually one node was down while a configuration was pushed: when it comes back it takes the newer generation from the other by itself (I1310). The cluster keeps running meanwhile: a configuration generation changes nothing about which node runs what. The entry names both generations and which node has which; the status shows it as a fault while it lasts.",
        fix: "Usually nothing: the node with the older generation fetches the newer one within seconds, and I1314 follows. If E1315 or E1316 follows instead, see those.";
    CONFIG_GENERATIONS_AGREE = "I1314", Info, "nodes run the same configuration generation again",
        cause: "After a difference (W1313), this node and the other one keep the same newest configuration generation with the same text again: the older node took the newer one, or a push reached both.",
        fix: "Nothing to do: the fault the difference showed in the status is gone.";
    CONFIG_NEWER_REFUSED = "E1315", Error, "a newer configuration generation was refused on this node",
        cause: "Another node keeps a newer configuration generation that descends from this node's, and this node fetched it (it was down while it was pushed), but refused it: its own host cannot run it (a device, network interface, OCF agent, systemd unit or program missing; the diagnostics are in the entry), this node's configuration file was edited by hand since its newest generation, the file or the state directory cannot be written, or the other node could not be asked. The node keeps its generation and keeps saying the generations differ (W1313); it tries again every minute.",
        fix: "Install what the diagnostics name on this node (it takes the generation by itself at its next try), or push a configuration that this node can run with `tandem config push FILE` through the node with the newest generation. For a hand edit, put the kept text back (`tandem config show > FILE`) first.";
    CONFIG_GENERATIONS_DIVERGED = "E1316", Error, "configurations diverged: no automatic choice",
        cause: "This node and another keep configurations of which neither is an earlier state of the other: the same generation with different texts, or a newer generation that does not descend from this node's (both files edited by hand and recorded at start, W1301, or pushes made through each node while they could not reach each other). tandem never chooses one of two edits by itself: each node runs what it has, the cluster keeps running, and the status shows the difference as a fault.",
        fix: "Decide which text is right (`tandem config show --endpoint https://NODE:7400` on each node, `tandem config diff FILE`), then push it with `tandem config push FILE` through either node: the push replaces the differing generation on the other node, and both get the next generation after the higher one.";
    CONFIG_EDIT_NO_SUCH_THING = "E1341", Error, "configuration edit names something the configuration does not have",
        cause: "An edit of the console's configuration editor (`POST /v1/config/edit`) names a group, resource, node, link or alert that the running configuration does not have, for example because someone removed it since the editor read the configuration. No edit was made.",
        fix: "Reload the editor (it reads the running configuration again) and make the change on what is there.";
    CONFIG_EDIT_MALFORMED = "E1342", Error, "configuration edit cannot be made",
        cause: "An edit of `POST /v1/config/edit` cannot be made on the configuration's text: a new resource or alert without `kind`, a key that the edit may not set (`name`, `resource`), a section other than [cluster], [timing], [arbitration] or [api], or a part of the file written in a form the editor does not change (an inline array such as `group = [{ ... }]`). No edit was made.",
        fix: "Give the missing key or a key the edit may set; for a part written inline, rewrite it as `[[group]]` / `[[group.resource]]` sections (`tandem config show`, edit, `tandem config push`), then use the editor.";
    CONFIG_INVENTORY_NOT_FETCHED = "E1343", Error, "another node's inventory could not be fetched",
        cause: "`GET /v1/nodes/{n}/inventory` asked one node for another node's inventory; the node asked fetches it from that node over their HTTPS APIs, signed with the cluster key, and that node did not answer (down, its `api` address not reachable, its certificate not signed by the cluster CA `[api] ca_file`, or another cluster key).",
        fix: "Start that node or restore the path to its `api` address; give every node the same cluster.key and a certificate of the cluster CA. Meanwhile ask that node itself (the answer's `endpoint`).";
}
