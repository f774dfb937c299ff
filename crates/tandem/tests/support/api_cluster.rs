//! Two real `tandem node`s on loopback with the HTTPS API on both ([`ApiCluster`]),
//! shared by the API tests (`tests/api.rs`) and the API benchmark (`benches/api.rs`):
//! the configuration, keys, CA and certificates, users, the daemons and their clean-up.

// Each file that includes this module uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use labcluster::config::{free_udp_ports, ClusterToml, NodeToml};

pub const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");

pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn tandem(args: &[&str]) -> std::process::Output {
    let out = Command::new(TANDEM).args(args).output().unwrap();
    assert!(out.status.success(), "tandem {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The daemons of a test and what they may leave: stopped as an operator would, then
/// their guards (told to exit on their sockets) and the group's processes (by PID,
/// found by the test's token).
pub struct Daemons {
    pub children: Vec<Child>,
    dir: PathBuf,
    token: String,
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for child in &mut self.children {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
        for name in ["alpha", "beta"] {
            let _ = daemon::guard::stop_guard(&self.dir.join(format!("run-{name}")));
        }
        for pid in labcluster::sampler::processes_with(&self.token) {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Two nodes on loopback with the API on both: the configuration (`group`, in which
/// `{token}` stands for the test's unique token), the cluster key, the CA and the nodes'
/// certificates (`tandem keygen --config`; alpha's pair serves both, both on
/// 127.0.0.1), the disk area. The users file is left to the test.
pub struct ApiCluster {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub api: [u16; 2],
    pub token: String,
}

impl ApiCluster {
    pub fn new(name: &str, group: &str) -> ApiCluster {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let ports = free_udp_ports(2).unwrap();
        let api = [free_tcp_port(), free_tcp_port()];
        let head = ClusterToml {
            comment: String::new(),
            name: name.into(),
            files: Some((format!("{d}/cluster.key"), format!("{d}/state"))),
            timing: "[timing]\nheartbeat_interval = \"50ms\"\npeer_timeout = \"500ms\"\n\
                     lease_timeout = \"1s\"\n"
                .into(),
            nodes: vec![
                NodeToml::loopback("alpha", &ports[..1], &format!("127.0.0.1:{}", api[0])),
                NodeToml::loopback("beta", &ports[1..], &format!("127.0.0.1:{}", api[1])),
            ],
            area: format!("{d}/disk"),
        };
        let token = format!("86400.{}{}", std::process::id(), api[0]);
        let config = format!(
            "{}\n[api]\ntls_cert = \"{d}/tls.crt\"\ntls_key = \"{d}/tls.key\"\n\
             users_file = \"{d}/users.toml\"\nca_file = \"{d}/ca.crt\"\n\n{}",
            head.text(),
            group.replace("{token}", &token)
        );
        let path = dir.path().join("cluster.toml");
        std::fs::write(&path, config).unwrap();
        let p = path.to_str().unwrap();
        tandem(&["keygen", "--dir", &d, "--config", p]);
        for file in
            ["cluster.key", "ca.crt", "ca.key", "alpha.crt", "alpha.key", "beta.crt", "beta.key"]
        {
            assert!(dir.path().join(file).exists(), "{file}");
        }
        std::fs::copy(dir.path().join("alpha.crt"), dir.path().join("tls.crt")).unwrap();
        std::fs::copy(dir.path().join("alpha.key"), dir.path().join("tls.key")).unwrap();
        std::fs::File::create(dir.path().join("disk")).unwrap().set_len(1 << 20).unwrap();
        tandem(&["disk", "init", "--config", p]);
        ApiCluster { dir, config: path, api, token }
    }

    pub fn user(&self, name: &str, role: &str) -> String {
        let p = self.config.to_str().unwrap();
        let out = tandem(&["user", "add", name, "--role", role, "--config", p]).stdout;
        String::from_utf8(out).unwrap().trim().to_string()
    }

    pub fn start(&self) -> Daemons {
        self.start_with([(&self.config, &[]), (&self.config, &[])])
    }

    /// [`ApiCluster::start`], alpha then beta each with its own configuration file and
    /// environment variables.
    pub fn start_with(&self, nodes: [(&Path, &[(&str, &str)]); 2]) -> Daemons {
        let dir = self.dir.path();
        let mut children = Vec::new();
        for (name, (config, env)) in ["alpha", "beta"].into_iter().zip(nodes) {
            let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
            children.push(
                Command::new(TANDEM)
                    .args(["node", "--config"])
                    .arg(config)
                    .envs(env.iter().copied())
                    .args(["--name", name, "--state-dir"])
                    .arg(dir.join(name))
                    .arg("--runtime-dir")
                    .arg(dir.join(format!("run-{name}")))
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .unwrap(),
            );
        }
        Daemons { children, dir: dir.to_path_buf(), token: self.token.clone() }
    }

    pub fn logs(&self) -> String {
        ["alpha", "beta", "app"]
            .iter()
            .map(|n| {
                let log = self.dir.path().join(format!("{n}.log"));
                format!("--- {n}\n{}", std::fs::read_to_string(log).unwrap_or_default())
            })
            .collect()
    }
}

pub fn agent(ca: &Path) -> ureq::Agent {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(daemon::api::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    ureq::AgentBuilder::new().tls_config(Arc::new(config)).timeout(Duration::from_secs(10)).build()
}
