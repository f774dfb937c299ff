//! Codes 6xxx: alerts, the messages that leave the machine (e-mail, webhook, script).
//!
//! Emitted by the `alerts` crate's delivery threads and journaled by the daemon; a
//! failed delivery is never alerted to the target that failed. This file holds text
//! only: no logic.

codes! {
    ALERT_FILE_UNUSABLE = "E6001", Error, "alert target's file unusable",
        cause: "An [[alert]]'s password_file or ca_file cannot be used: it is missing or unreadable, a password file is readable by other users than root (its mode allows group or other access), or a CA file holds no PEM certificate. The node does not start with an alert target it could not use, rather than start and stay silent.",
        fix: "Create the file named in the message; for a password file, write the password on its first line and run `chown root: FILE && chmod 600 FILE`; for a CA file, give the PEM certificate(s) of the authority that signed the relay's or web server's certificate. Then start the node again.";
    ALERT_NOT_DELIVERED = "W6101", Warning, "alert not delivered",
        cause: "An alert message could not be handed to its target after every attempt: the SMTP relay refused the connection, the TLS handshake or the login, or rejected a recipient; the webhook answered with an error status or did not answer; or the script could not be started, failed or ran past its timeout. The message names the target (its number in the file, counting from 1, and its kind), the reason and the events the message carried; those events are still in the journal.",
        fix: "Check the target named in the message: that the relay or web server is reachable from this node and accepts it (address, port, certificate, username and password file), or run the script by hand with the same environment. `tandem events` still shows every event. The other alert targets receive this warning, the one that failed does not.";
    ALERT_EVENTS_DROPPED = "W6102", Warning, "alert events dropped",
        cause: "Events arrived faster than the alert thread took them and its queue was full, so some events were not considered for alerts. The node's loop never waits for alert delivery; it drops and counts instead. The journal still holds every event.",
        fix: "Nothing is needed for a single burst. If it repeats, look at what floods the journal (`tandem events`), and at slow alert targets (W6101).";
}
