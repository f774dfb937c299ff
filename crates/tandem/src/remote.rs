//! How the commands that talk to a node reach it ([`Target`]): the local daemon's
//! control socket by default, or any node's HTTPS API with `--endpoint URL` and a token
//! (`--token`, or `TANDEM_TOKEN`), its certificate checked against the cluster's CA
//! (`--ca`, from `tandem keygen`). Both answer the same [`contract`] types, so the
//! commands print the same things whichever way they asked; a node asked through the API
//! answers for the whole cluster (its status is the cluster's, and a command given to it
//! reaches the node that must act through the replicated administrative state).
//!
//! Every failure has an exit code of its own ([`EXIT_CODES`], also in `tandem --help`).

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use contract::{Answer, Event, Request, Status};
use daemon::control::CallError;

/// The exit codes of the commands that talk to a node, as `tandem --help` shows them.
pub const EXIT_CODES: &str = "\
Exit codes of the commands that talk to a node (status, switchover, drain, undrain,
maintenance, clear, events):
  0  done: the status shown, the command accepted
  1  refused by the node (no such group or node, a target that cannot run the group,
     ...), or a local error (a file that cannot be read)
  2  the command line is wrong (the argument parser's own code)
  3  no node reached: no daemon on this host (or another --runtime-dir), the endpoint
     does not answer, or its certificate does not verify against --ca
  4  not allowed: no token or a bad one, a role too low, or this user may not use the
     local control socket
  5  the node is busy or stopping: try again";

/// Where a command's node is.
#[derive(clap::Args, Clone, Debug)]
pub struct Target {
    /// The local daemon's runtime directory (`tandem node --runtime-dir`), used when no
    /// --endpoint is given.
    #[arg(long, default_value = daemon::access::DEFAULT_RUNTIME_DIR, global = true)]
    pub runtime_dir: PathBuf,
    /// Ask this node's HTTPS API instead of the local daemon, e.g. https://10.0.0.11:7400
    /// (the node's `api` address).
    #[arg(long, global = true)]
    pub endpoint: Option<String>,
    /// The API token (`tandem user add`); default: the TANDEM_TOKEN environment variable
    /// (better: a token on the command line is visible to the host's other users).
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// The cluster CA that signed the nodes' certificates (`tandem keygen`).
    #[arg(long, default_value = "/etc/tandem/ca.crt", global = true)]
    pub ca: PathBuf,
}

/// Why a command failed, with its exit code.
#[derive(Debug)]
pub enum Failure {
    Refused(String),
    Unreachable(String),
    NotAllowed(String),
    Busy(String),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Refused(_) => 1,
            Failure::Unreachable(_) => 3,
            Failure::NotAllowed(_) => 4,
            Failure::Busy(_) => 5,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Failure::Refused(m)
            | Failure::Unreachable(m)
            | Failure::NotAllowed(m)
            | Failure::Busy(m) => m,
        }
    }
}

impl From<CallError> for Failure {
    fn from(e: CallError) -> Failure {
        match e {
            CallError::Unreachable(m) => Failure::Unreachable(m),
            CallError::NotAllowed(m) => Failure::NotAllowed(m),
            CallError::Broken(m) => Failure::Busy(m),
        }
    }
}

/// How long an API request may take (the node answers within a few seconds or is busy).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

impl Target {
    pub fn is_remote(&self) -> bool {
        self.endpoint.is_some()
    }

    /// Sends `request`; the answer when the node took it.
    pub fn ask(&self, request: &Request) -> Result<Answer, Failure> {
        let answer = match &self.endpoint {
            None => daemon::control::ask(&self.runtime_dir, request)?,
            Some(endpoint) => self.ask_api(endpoint, request)?,
        };
        answer.accepted().map_err(Failure::Refused)
    }

    /// The status document.
    pub fn status(&self) -> Result<Status, Failure> {
        let answer = self.ask(&Request::Status)?;
        answer.status.map(|s| *s).ok_or_else(|| Failure::Busy("the answer has no status".into()))
    }

    /// The node's journal entries after `since` (through the API only; locally the
    /// journal file is read).
    pub fn events_after(&self, since: u64) -> Result<Vec<Event>, Failure> {
        let endpoint = self.endpoint.as_deref().unwrap_or_default();
        let url = format!("{}/v1/events?since={since}", endpoint.trim_end_matches('/'));
        #[derive(serde::Deserialize)]
        struct Page {
            events: Vec<Event>,
        }
        let page: Page = self.call_api("GET", &url, None)?;
        Ok(page.events)
    }

    fn ask_api(&self, endpoint: &str, request: &Request) -> Result<Answer, Failure> {
        let base = endpoint.trim_end_matches('/');
        let json = |v: serde_json::Value| Some(v.to_string());
        // Every command is a POST; the status a GET.
        let (path, body) = match request {
            Request::Status => {
                let status: Status = self.call_api("GET", &format!("{base}/v1/status"), None)?;
                return Ok(Answer::status(status));
            }
            Request::Switchover { group, to } => {
                (format!("/v1/groups/{group}/switchover"), json(serde_json::json!({ "to": to })))
            }
            Request::Drain { node } => (format!("/v1/nodes/{node}/drain"), None),
            Request::Undrain { node } => (format!("/v1/nodes/{node}/undrain"), None),
            Request::Maintenance { on } => {
                ("/v1/maintenance".to_string(), json(serde_json::json!({ "on": on })))
            }
            Request::Clear { group, resource } => (
                format!("/v1/groups/{group}/clear"),
                json(serde_json::json!({ "resource": resource })),
            ),
            Request::ConfigShow
            | Request::ConfigHistory
            | Request::ConfigGet { .. }
            | Request::ConfigCheck { .. }
            | Request::ConfigPush { .. }
            | Request::ConfigApplied { .. } => return self.ask_config_api(base, request),
        };
        self.call_api("POST", &format!("{base}{path}"), body)
    }

    /// Sends a configuration request and returns the node's answer as it is, a refusal
    /// (`ok: false`, with a push's outcome: every node's diagnostics) included.
    pub fn ask_config(&self, request: &Request) -> Result<Answer, Failure> {
        match &self.endpoint {
            None => Ok(daemon::control::ask(&self.runtime_dir, request)?),
            Some(endpoint) => self.ask_config_api(endpoint.trim_end_matches('/'), request),
        }
    }

    /// The configuration routes (`/v1/config...`), their answers as [`Answer`]s.
    fn ask_config_api(&self, base: &str, request: &Request) -> Result<Answer, Failure> {
        let taken = Answer::taken();
        match request {
            Request::ConfigShow => {
                let doc = self.call_api("GET", &format!("{base}/v1/config"), None)?;
                Ok(Answer { config: Some(Box::new(doc)), ..taken })
            }
            Request::ConfigGet { generation } => {
                let url = format!("{base}/v1/config/history/{generation}");
                let doc = self.call_api("GET", &url, None)?;
                Ok(Answer { config: Some(Box::new(doc)), ..taken })
            }
            Request::ConfigHistory => {
                #[derive(serde::Deserialize)]
                struct History {
                    generations: Vec<contract::ConfigGeneration>,
                }
                let url = format!("{base}/v1/config/history");
                let history: History = self.call_api("GET", &url, None)?;
                Ok(Answer { history: Some(history.generations), ..taken })
            }
            Request::ConfigCheck { toml } => {
                let body = serde_json::json!({ "toml": toml }).to_string();
                let url = format!("{base}/v1/config/check");
                let outcome = self.call_api("POST", &url, Some(body))?;
                Ok(Answer { outcome: Some(Box::new(outcome)), ..taken })
            }
            Request::ConfigPush { toml, generation } => {
                let body = serde_json::json!({ "toml": toml, "generation": generation });
                self.push_api(&format!("{base}/v1/config"), &body.to_string())
            }
            other => Err(Failure::Refused(format!("not a request a client sends: {other:?}"))),
        }
    }

    /// `POST /v1/config`: its answer, a refusal (409) with every node's verdict included.
    fn push_api(&self, url: &str, body: &str) -> Result<Answer, Failure> {
        self.request_api("POST", url, Some(body.to_string()), true)
    }

    /// One API request; its JSON answer, or why not.
    fn call_api<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        url: &str,
        body: Option<String>,
    ) -> Result<T, Failure> {
        self.request_api(method, url, body, false)
    }

    /// [`Target::call_api`]; with `conflict_answers`, a 409's body is the answer too (a
    /// refused push carries every node's verdict).
    fn request_api<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        url: &str,
        body: Option<String>,
        conflict_answers: bool,
    ) -> Result<T, Failure> {
        let token = match &self.token {
            Some(token) => token.clone(),
            None => std::env::var("TANDEM_TOKEN").map_err(|_| {
                Failure::NotAllowed(
                    "no API token: pass --token or set TANDEM_TOKEN (`tandem user add`)".into(),
                )
            })?,
        };
        let agent = agent(&self.ca)?;
        let request = agent.request(method, url).set("Authorization", &format!("Bearer {token}"));
        let result = match body {
            Some(body) => request.set("Content-Type", "application/json").send_string(&body),
            None if method == "POST" => request.send_string(""),
            None => request.call(),
        };
        match result {
            Ok(response) => response
                .into_json()
                .map_err(|e| Failure::Busy(format!("the node's answer from {url}: {e}"))),
            Err(ureq::Error::Status(409, response)) if conflict_answers => response
                .into_json()
                .map_err(|e| Failure::Busy(format!("the node's answer from {url}: {e}"))),
            Err(ureq::Error::Status(code, response)) => {
                let mut text = String::new();
                let _ = response.into_reader().take(64 * 1024).read_to_string(&mut text);
                let why = serde_json::from_str::<Answer>(&text)
                    .ok()
                    .and_then(|a| a.error)
                    .unwrap_or_else(|| text.trim().to_string());
                let why = format!("{url}: HTTP {code}: {why}");
                Err(match code {
                    401 | 403 => Failure::NotAllowed(why),
                    429 | 503 | 504 => Failure::Busy(why),
                    _ => Failure::Refused(why),
                })
            }
            Err(ureq::Error::Transport(e)) => {
                Err(Failure::Unreachable(format!("cannot reach {url}: {e}")))
            }
        }
    }
}

/// An HTTPS client that trusts only the cluster's CA at `ca`.
fn agent(ca: &std::path::Path) -> Result<ureq::Agent, Failure> {
    use rustls::pki_types::pem::PemObject;
    let unreadable = |e: String| {
        Failure::Unreachable(format!(
            "cannot use the cluster CA {} (--ca): {e}; copy ca.crt from `tandem keygen`",
            ca.display()
        ))
    };
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(ca)
        .map_err(|e| unreadable(e.to_string()))?;
    for cert in certs {
        roots
            .add(cert.map_err(|e| unreadable(e.to_string()))?)
            .map_err(|e| unreadable(e.to_string()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(daemon::api::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| unreadable(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(ureq::AgentBuilder::new().tls_config(Arc::new(config)).timeout(REQUEST_TIMEOUT).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_has_its_documented_code_and_none_is_the_parsers() {
        let codes = [
            Failure::Refused(String::new()).exit_code(),
            Failure::Unreachable(String::new()).exit_code(),
            Failure::NotAllowed(String::new()).exit_code(),
            Failure::Busy(String::new()).exit_code(),
        ];
        assert_eq!(codes, [1, 3, 4, 5]);
        for code in codes {
            assert!(EXIT_CODES.contains(&format!("\n  {code}  ")), "{code} is not documented");
        }
        assert!(EXIT_CODES.contains("\n  2  the command line is wrong"));
    }
}
