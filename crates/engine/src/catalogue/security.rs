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
}
