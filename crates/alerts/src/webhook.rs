//! The webhook: the message as JSON, POSTed over http or https (ureq, rustls); a server
//! error or no answer is retried by the caller, a client error (4xx other than 408 and
//! 429) is not: the same request would be refused again.

use std::time::Duration;

use rustls::pki_types::CertificateDer;

use crate::message::Message;

/// One request may take this long: a receiver slower than this is as good as down.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Webhook {
    agent: ureq::Agent,
    url: String,
}

impl Webhook {
    pub(crate) fn new(
        url: &str,
        ca: Option<Vec<CertificateDer<'static>>>,
    ) -> Result<Webhook, String> {
        let mut builder = ureq::AgentBuilder::new().timeout(HTTP_TIMEOUT).redirects(0);
        if let Some(ca) = ca {
            builder = builder.tls_config(crate::tls::client_config(&ca)?);
        }
        Ok(Webhook { agent: builder.build(), url: url.to_string() })
    }

    /// One attempt; `Err((why, worth retrying))`.
    pub(crate) fn send(&self, message: &Message) -> Result<(), (String, bool)> {
        let result = self
            .agent
            .post(&self.url)
            .set("Content-Type", "application/json")
            .set("User-Agent", concat!("tandem/", env!("CARGO_PKG_VERSION")))
            .send_string(&message.json());
        match result {
            Ok(_) => Ok(()),
            Err(ureq::Error::Status(status, _)) => {
                let retry = status >= 500 || status == 408 || status == 429;
                Err((format!("the server answered HTTP {status}"), retry))
            }
            Err(e) => Err((e.to_string(), true)),
        }
    }
}
