//! E-mail over SMTP (lettre): STARTTLS required unless `starttls = false` (a relay on
//! the host or the local network that speaks plain SMTP), AUTH when a username is set.
//!
//! **A whole attempt is bounded** ([`SEND_MAX`]): lettre's timeout bounds each read, but
//! a relay that keeps answering slowly, or stops in the middle of a conversation (seen
//! with a failed AUTH), can hold a send far longer. Each attempt runs on a thread of its
//! own; one not done by `SEND_MAX` counts as failed (and is retried) and its thread is
//! abandoned. At most [`STALLED_MAX`] abandoned attempts may still be blocked at once;
//! beyond that an attempt fails at once, until one of them ends.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use config::HostPort;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};
use rustls::pki_types::CertificateDer;

use crate::message::Message;

/// One SMTP conversation may take this long per step; a relay slower than this is as
/// good as down for an alert.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A whole attempt (connect, TLS, AUTH, the message) may take this long.
pub(crate) const SEND_MAX: Duration = Duration::from_secs(30);

/// Attempts abandoned at [`SEND_MAX`] whose threads may still be blocked.
pub(crate) const STALLED_MAX: usize = 4;

/// How many abandoned attempts are still blocked, over every e-mail target.
static STALLED: AtomicUsize = AtomicUsize::new(0);

/// Where an attempt stands, for the thread that runs it and the one that waits.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Attempt {
    Running,
    Done,
    Abandoned,
}

pub(crate) struct Email {
    transport: SmtpTransport,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// [`SEND_MAX`] (shorter in tests).
    send_max: Duration,
}

impl Email {
    pub(crate) fn new(
        smtp: &HostPort,
        starttls: bool,
        from: &str,
        to: &[String],
        auth: Option<(String, String)>,
        ca: Option<Vec<CertificateDer<'static>>>,
    ) -> Result<Email, String> {
        let mut builder = SmtpTransport::builder_dangerous(smtp.host.as_str())
            .port(smtp.port)
            .timeout(Some(SMTP_TIMEOUT));
        if starttls {
            let mut params = TlsParameters::builder(smtp.host.clone());
            if let Some(ca) = ca {
                params = params.certificate_store(CertificateStore::None);
                for cert in ca {
                    let cert = Certificate::from_der(cert.to_vec()).map_err(|e| e.to_string())?;
                    params = params.add_root_certificate(cert);
                }
            }
            builder = builder.tls(Tls::Required(params.build_rustls().map_err(|e| e.to_string())?));
        }
        if let Some((user, password)) = auth {
            builder = builder.credentials(Credentials::new(user, password));
        }
        let from = from.parse().map_err(|e| format!("from \"{from}\": {e}"))?;
        let to = to
            .iter()
            .map(|t| t.parse().map_err(|e| format!("to \"{t}\": {e}")))
            .collect::<Result<_, String>>()?;
        Ok(Email { transport: builder.build(), from, to, send_max: SEND_MAX })
    }

    /// One attempt; `Err((why, worth retrying))`.
    pub(crate) fn send(&self, message: &Message) -> Result<(), (String, bool)> {
        let mut mail =
            lettre::Message::builder().from(self.from.clone()).subject(message.subject());
        for to in &self.to {
            mail = mail.to(to.clone());
        }
        let mail = mail
            .header(ContentType::TEXT_PLAIN)
            .body(message.text())
            .map_err(|e| (format!("cannot build the e-mail: {e}"), false))?;
        if STALLED.load(Ordering::SeqCst) >= STALLED_MAX {
            let why = format!(
                "{STALLED_MAX} earlier attempts are still blocked on the relay: not trying \
                 again until one ends"
            );
            return Err((why, true));
        }
        let (tx, rx) = mpsc::channel();
        let state = Arc::new(Mutex::new(Attempt::Running));
        let (transport, on_thread) = (self.transport.clone(), state.clone());
        let spawned = std::thread::Builder::new().name("tandem-smtp".into()).spawn(move || {
            let result = transport.send(&mail);
            let mut state = on_thread.lock().unwrap_or_else(|e| e.into_inner());
            if *state == Attempt::Abandoned {
                STALLED.fetch_sub(1, Ordering::SeqCst);
            } else {
                *state = Attempt::Done;
                let _ = tx.send(result);
            }
        });
        if let Err(e) = spawned {
            return Err((format!("cannot start the sending thread: {e}"), true));
        }
        let result = match rx.recv_timeout(self.send_max) {
            Ok(result) => result,
            Err(_) => {
                let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                match *state {
                    // It ended just now: its answer is in the channel.
                    Attempt::Done => rx.recv().map_err(|e| (e.to_string(), true))?,
                    _ => {
                        *state = Attempt::Abandoned;
                        STALLED.fetch_add(1, Ordering::SeqCst);
                        let secs = self.send_max.as_secs_f64();
                        return Err((format!("the relay did not finish within {secs:.0} s"), true));
                    }
                }
            }
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let retry = !e.is_permanent();
                Err((describe(&e), retry))
            }
        }
    }
}

/// The error and its causes on one line.
fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!(": {s}"));
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A relay that greets line by line, one line every 300 ms, and never ends its
    /// greeting: every read comes within lettre's timeout, the attempt never ends.
    fn dripping_relay() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(1) {
                let Ok(mut stream) = stream else { return };
                for _ in 0..100 {
                    if stream.write_all(b"220-still greeting\r\n").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
        });
        port
    }

    #[test]
    fn an_attempt_that_never_ends_fails_at_its_bound() {
        let relay = HostPort { host: "127.0.0.1".into(), port: dripping_relay() };
        let mut email =
            Email::new(&relay, false, "tandem@t.example", &["ops@t.example".into()], None, None)
                .unwrap();
        email.send_max = Duration::from_secs(2);
        let event = crate::Event {
            time: "2026-12-07T10:00:00Z".into(),
            code: "E2104".into(),
            severity: engine::catalogue::Severity::Error,
            node: "beta".into(),
            group: Some("web".into()),
            resource: None,
            location: Some("node alpha".into()),
            message: "peer alpha offline".into(),
        };
        let counted = vec![crate::message::Counted::new(event)];
        let message = Message::new(crate::message::Kind::Events, counted, Vec::new());
        let start = std::time::Instant::now();
        let (why, retry) = email.send(&message).unwrap_err();
        let took = start.elapsed();
        assert!(why.contains("did not finish within 2 s") && retry, "{why}");
        assert!(took < Duration::from_secs(10), "{took:?}");
    }
}
