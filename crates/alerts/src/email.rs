//! E-mail over SMTP (lettre): STARTTLS required unless `starttls = false` (a relay on
//! the host or the local network that speaks plain SMTP), AUTH when a username is set.

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

pub(crate) struct Email {
    transport: SmtpTransport,
    from: Mailbox,
    to: Vec<Mailbox>,
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
        Ok(Email { transport: builder.build(), from, to })
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
        match self.transport.send(&mail) {
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
