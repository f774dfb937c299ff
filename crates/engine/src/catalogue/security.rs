//! Codes 5xxx: API and security. The local ways into a node (the cluster key, the state
//! and runtime directories, the control and fence guard sockets), the HTTPS API (its TLS
//! files, users file and address) and who used them.

codes! {
    KEY_FILE_EXPOSED = "E5101", Error, "the cluster key file is not private",
        cause: "`tandem node` refuses a cluster key (`cluster.key_file`) that another user could read or replace: it is readable or writable by its group or by others, or it is owned by a user other than root (or the user the daemon runs as). Whoever reads the key can forge heartbeats that keep a dead node looking alive, or make a live one look failed. It is the rule ssh applies to private keys.",
        fix: "Make the key private on every node: `chown root: /etc/tandem/cluster.key; chmod 600 /etc/tandem/cluster.key` (the path the message names). `tandem keygen` writes keys this way; copy them with their mode (`install -m 600`, `scp -p`).";
    STATE_DIR_EXPOSED = "E5102", Error, "the state directory is writable by others",
        cause: "`tandem node` refuses a state directory (`cluster.state_dir`, `--state-dir`) that any user may write to: anyone could replace the node's administrative state (`admin.json`), its incarnation or its journal.",
        fix: "Take the write permission away from others: `chmod o-w DIR` (the directory the message names), or better `chmod 755 DIR` and `chown root: DIR`.";
    RUNTIME_DIR_UNSAFE = "E5103", Error, "the runtime directory cannot be used",
        cause: "The runtime directory (`tandem node --runtime-dir`, default /run/tandem), where the node's control and fence guard sockets live, is not a directory, is owned by another user than the one the daemon runs as, holds files that are not the node's (a shared directory such as /run given by mistake), or cannot be created. The daemon will not put its sockets where another user controls who may reach them.",
        fix: "Remove what is there (`rm -r /run/tandem`, the path the message names) so that the daemon creates the directory itself (mode 0700, or 0750 with the admin group), or pass another `--runtime-dir`.";
    CONTROL_REFUSED = "E5104", Error, "control connection refused",
        cause: "A process asked the local daemon for its status or gave it a command (`tandem status`, `switchover`, `drain`, ...) through the control socket, but its user is neither root, nor the user the daemon runs as, nor a member of the node's admin group (`tandem node --admin-group`). The daemon reads the caller's user from the kernel (SO_PEERCRED) and closes the connection.",
        fix: "Run the command as root (`sudo tandem status`), or start the node with `--admin-group GROUP` and add the user to that group (`usermod -aG GROUP USER`, then log in again).";
    GUARD_FOREIGN = "W5105", Warning, "a connection to the fence guard was ignored",
        cause: "Something connected to the fence guard's socket that is not a tandem daemon of this node: a process of another user, or one that did not present the guard's token (the runtime directory's `guard.token`, readable only by the daemon's user) on its first line. Only the daemon that started the guard, or one restarted after it, may arm, disarm or stop it; the guard closed the connection and ignored it.",
        fix: "Find the process (the message names its user and PID). Nothing is needed for the cluster: the guard keeps its state and its controller.";
    ADMIN_GROUP_UNKNOWN = "E5106", Error, "the admin group does not exist",
        cause: "`tandem node --admin-group GROUP` names a group that this host's group database does not know, so the daemon cannot tell who may use its control socket.",
        fix: "Create the group (`groupadd GROUP`) and add the operators to it, or correct the name in the node's command line (its systemd unit).";
    ADMIN_COMMAND = "I5107", Info, "administrative command accepted",
        cause: "The daemon accepted a command from its control socket (`tandem switchover`, `drain`, `undrain`, `maintenance`, `clear`) or from its HTTPS API (`POST /v1/...`): the entry names the command and who gave it (on the socket, the user and process from the kernel's credentials of the connection; through the API, the user of the token, its role and the client's address). The command's own events follow.",
        fix: "Nothing to do: this is the audit trail of who changed the cluster.";
    API_NOT_STARTED = "W5108", Warning, "the HTTPS API is not started",
        cause: "`tandem node` starts the HTTPS API on the node's `api` address only when the three files of `[api]` exist: the TLS certificate (`tls_cert`), its key (`tls_key`) and the users file (`users_file`). The message names the missing ones; the node runs without the API (the local control socket works).",
        fix: "Make the certificates with `tandem keygen --dir DIR --config FILE` (it writes `NODE.crt` and `NODE.key` for each node and the CA `ca.crt`), copy each node's pair to its `tls_cert` and `tls_key`, add a user with `tandem user add NAME --role viewer|operator|admin` (it writes `users_file`), and restart the node.";
    API_TLS_UNUSABLE = "E5109", Error, "the API's TLS certificate or key cannot be used",
        cause: "The files of `[api] tls_cert` and `tls_key` exist but cannot be read, hold no PEM certificate or private key, or the key does not belong to the certificate. The node does not start (the operator asked for the API by putting the files there).",
        fix: "Put a PEM certificate chain in `tls_cert` and its PEM private key in `tls_key` (`tandem keygen --config FILE` writes a pair per node, `NODE.crt` and `NODE.key`), readable by the daemon's user.";
    API_USERS_INVALID = "E5110", Error, "the API's users file is invalid",
        cause: "The file of `[api] users_file` is not TOML of `[[user]]` tables with `name`, `role` (viewer, operator, admin or app) and `hash` (an argon2id PHC string), or names a user twice. At start the node does not start; when the file changes while the node runs, the node keeps the users it read before and logs this code.",
        fix: "Edit the users only with `tandem user add`, `tandem user remove` and `tandem user list`; fix or remove the entry the message names.";
    API_BIND_FAILED = "E5111", Error, "the API's address cannot be bound",
        cause: "`tandem node` could not listen on the node's `api` address (the node's `api` key, by default port 7400 of its first link address): another program uses the port, or the address is not one of this host's.",
        fix: "Free the port (`ss -ltnp` names the program), or set the node's `api` to an address and port of this host that is free.";
    CONSOLE_SIGNED_IN = "I5301", Info, "signed in to the web console",
        cause: "A user gave a valid token at the web console's sign-in page (`POST /login`): the node made a session for it (a random id in an HttpOnly, Secure, SameSite=Strict cookie; the token itself is kept nowhere). The daemon's log line names the user, its role and the client's address.",
        fix: "Nothing to do: this is the trail of who opened the console. A session ends at sign-out, after its lifetime (12 hours), or at once when the user is removed (`tandem user remove`) or given a new token (removed, then added again).";
    CONSOLE_CROSS_SITE = "E5302", Error, "a request by console cookie without the console's header was refused",
        cause: "A request that changes something (`POST`) came authenticated by the web console's session cookie, but carried neither the console's header `X-Tandem-Console: 1` nor an `Origin` equal to the node's own address. The console's own page always sends that header; a request without it may have been forged by another web site the browser has open (cross-site request forgery), so it was refused with 403 and nothing was done.",
        fix: "Use the console's page, or send the header `X-Tandem-Console: 1` from a script that uses the session cookie; programs should authenticate with `Authorization: Bearer TOKEN` instead, which needs no such header.";
    CONSOLE_SIGNED_OUT = "I5303", Info, "signed out of the web console",
        cause: "A user pressed Sign out in the web console (`POST /logout`): the node forgot the session and told the browser to drop its cookie. The daemon's log line names the user and the client's address.",
        fix: "Nothing to do: sign in again at `/login` with the token to open the console.";
    INVENTORY_ELSEWHERE = "E5321", Error, "the inventory of another node was asked of this one",
        cause: "`GET /v1/nodes/{n}/inventory` was sent to a node other than `n`. A node takes the inventory of its own host only (its interfaces, block devices, agents and units); it answered 421 (Misdirected Request) with the name of the node to ask and that node's API address from the configuration (`endpoint` in the answer).",
        fix: "Send the request to the node's own API: the answer's `endpoint` (`https://ADDRESS:PORT`, the node's `api` address in cluster.toml), or run `tandem inventory` on that host.";
    INVENTORY_NO_SUCH_NODE = "E5322", Error, "the inventory was asked of a node the cluster does not have",
        cause: "`GET /v1/nodes/{n}/inventory` names a node that is not in the configuration this node runs with; it answered 404.",
        fix: "Use the name of a `[[node]]` of cluster.toml (`tandem status` lists them).";
    INVENTORY_PART_FAILED = "W5323", Warning, "a part of the inventory could not be read",
        cause: "Taking the inventory of this host, one part (network interfaces, block devices, OCF agents, systemd units or LSB scripts) could not be read: the message names the part and the reason (a netlink error, a directory that cannot be listed, a D-Bus error from systemd). The document lists what the other parts found; this part is empty or incomplete.",
        fix: "Read the reason: install what is missing (resource-agents for the OCF directory /usr/lib/ocf/resource.d), run the command as root where the host allows only root to read it, or repair what the message names; then take the inventory again.";
    INVENTORY_PART_LATE = "W5324", Warning, "a part of the inventory did not finish in time",
        cause: "Each part of the inventory runs with a timeout per call and the whole inventory with a deadline (20 s), so that a hung agent, a hung disk or a systemd that does not answer cannot hang the request. This part did not finish by the deadline and is left empty (or, for OCF agents, the agents not reached are listed without their meta-data).",
        fix: "Find what hangs on the host (an agent's `meta-data` that does not return, `blkid` on a device that does not answer, systemd's D-Bus) and repair it; the next inventory runs again (OCF agents read before are kept and not run again).";
    INVENTORY_NO_SYSTEMD = "W5325", Warning, "systemd is not running on this host",
        cause: "The inventory lists systemd units over D-Bus from systemd as the init system, but this host was not booted with systemd (no /run/systemd/system: a container, another init system). The document has no systemd units; `systemd` resources cannot run here.",
        fix: "Nothing, if the host is not meant to run `systemd` resources: use `lsb`, `ocf`, `script` or `process` resources instead. Otherwise run the node on a host booted with systemd.";
    INVENTORY_BLKID = "W5326", Warning, "file systems of block devices could not be identified",
        cause: "The inventory identifies the file system, UUID and label of each block device with `blkid -p` (util-linux); `blkid` is not installed, or it could not read some devices (not run as root, a device the host refuses to open). Those devices are listed without their file system (a mounted device still shows the type it is mounted with).",
        fix: "Install util-linux (`apt-get install util-linux`) and take the inventory as root (the node's API runs it as the daemon's user), or repair the device the message names.";
    INVENTORY_META_DATA = "W5327", Warning, "an OCF agent's meta-data could not be read",
        cause: "The inventory runs `AGENT meta-data` (with OCF_ROOT set and a timeout) for each installed OCF agent to list its parameters. For the agents named, it exited with an error, printed no well-formed meta-data document, did not finish in time, or was not run because the inventory's deadline had come. They are listed without parameters.",
        fix: "Run the agent by hand (`OCF_ROOT=/usr/lib/ocf /usr/lib/ocf/resource.d/PROVIDER/AGENT meta-data`) to see what it says; repair or remove a broken agent. Other agents are not affected.";
}
