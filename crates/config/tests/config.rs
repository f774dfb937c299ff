//! The `config` crate's one integration-test binary.
//!
//! * `cases`: every `tests/cases/*.toml` is loaded and its rendered diagnostics are
//!   compared exactly with the `.out` file beside it (`UPDATE_EXPECT=1 cargo test -p
//!   config` rewrites them). Files named `host-warn-*` / `host-deny-*` also run the
//!   host checks against [`FakeHost`] as warnings / errors; files named `node-*` also
//!   what `tandem validate` and `tandem node` refuse in this version (E1107).
//! * `every_code_*`: the crate's code list matches the catalogue's 1xxx area both ways,
//!   and each code is shown by at least one case.
//! * `examples_*`: every file in `examples/` is valid, and the reference example gives
//!   the spec PRODUCT.md describes.
//! * `large_file`: a generated many-group file parses with every group intact.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{AlertTarget, Host, LinkConfig, PathKind, ResourceParams, Strictness};
use engine::{ArbitrationKind, Failback, LinkKind, ResourceKind};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A machine where only paths under `/present/` (and system paths named `present*`)
/// exist, except names containing "missing"; `dir*` are directories, `*noexec*` are
/// not executable, `/present/dev/*` are devices, `*shared*` are readable by all (mode
/// 644, the others 600 or 700); interfaces are `eth0` and `lo`.
struct FakeHost;

impl Host for FakeHost {
    fn path_kind(&self, path: &Path) -> Option<PathKind> {
        let text = path.to_str()?;
        let name = path.file_name()?.to_str()?;
        let system = ["/etc/init.d/", "/etc/systemd/system/"]
            .iter()
            .any(|dir| text.starts_with(dir) && name.starts_with("present"));
        if !(text.starts_with("/present/") || system) || name.contains("missing") {
            return None;
        }
        Some(if name.starts_with("dir") {
            PathKind::Directory
        } else if text.starts_with("/present/dev/") {
            PathKind::Device
        } else {
            PathKind::File { executable: !name.contains("noexec") }
        })
    }
    fn interface_exists(&self, name: &str) -> bool {
        matches!(name, "eth0" | "lo")
    }
    fn var(&self, name: &str) -> Option<String> {
        match name {
            "PATH" => Some("/present/bin:/usr/bin".into()),
            "OCF_ROOT" => Some("/present/ocf".into()),
            _ => None,
        }
    }
    fn mode(&self, path: &Path) -> Option<u32> {
        self.path_kind(path)?;
        Some(if path.to_str()?.contains("shared") { 0o644 } else { 0o600 })
    }
}

/// What a case prints: the rendered diagnostics, the summary and the verdict.
fn run_case(path: &Path) -> String {
    let relative = path.strip_prefix(manifest_dir()).unwrap_or(path);
    let name = path.file_name().unwrap().to_str().unwrap();
    let strictness = if name.starts_with("host-warn-") {
        Some(Strictness::Warn)
    } else if name.starts_with("host-deny-") {
        Some(Strictness::Deny)
    } else {
        None
    };
    let mut out = String::new();
    match config::load(relative) {
        Ok((config, mut diagnostics)) => {
            if let Some(strictness) = strictness {
                diagnostics.extend(config::host_checks_on(&config, strictness, &FakeHost));
                diagnostics.sort_by_key(|d| d.span.start);
            }
            if name.starts_with("node-") {
                // What `tandem validate` and `tandem node` add: features this version's
                // node does not have.
                diagnostics.extend(config::not_in_this_version(&config));
                diagnostics.sort_by_key(|d| d.span.start);
            }
            out.push_str(&config::render_all(&diagnostics, &config.source, false));
            let errors = diagnostics.iter().any(|d| d.is_error());
            let _ =
                writeln!(out, "result: {}", if errors { "host checks failed" } else { "valid" });
        }
        Err(invalid) => {
            out.push_str(&invalid.render(false));
            out.push_str("result: invalid\n");
        }
    }
    out
}

fn case_files() -> Vec<PathBuf> {
    let dir = manifest_dir().join("tests/cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/cases exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "expected the case files in {}", dir.display());
    files
}

#[test]
fn cases() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let mut failures = Vec::new();
    for path in case_files() {
        let actual = run_case(&path);
        let expected_path = path.with_extension("out");
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if actual != expected {
            if update {
                std::fs::write(&expected_path, &actual).unwrap();
            } else {
                failures.push(format!(
                    "=== {} differs; expected:\n{expected}\n=== actual:\n{actual}",
                    path.display()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n{} case(s) differ; run `UPDATE_EXPECT=1 cargo test -p config` and review the diff",
        failures.join("\n"),
        failures.len()
    );
}

#[test]
fn every_code_is_in_the_catalogue_and_the_catalogue_has_no_other_1xxx_code() {
    for code in config::CODES {
        let found = engine::catalogue::lookup(code.code).unwrap_or_else(|| {
            panic!("{} is emitted by config but missing from the catalogue", code.code)
        });
        assert_eq!(found, *code);
        assert!(code.code[1..].starts_with('1'), "{} is not a configuration code", code.code);
    }
    // 13xx: the configuration's generations and push, emitted by the daemon's store.
    let in_config = |c: &&engine::catalogue::CodeInfo| {
        c.code[1..].starts_with('1') && !c.code[1..].starts_with("13")
    };
    for entry in engine::catalogue::all().filter(in_config) {
        assert!(
            config::CODES.iter().any(|c| c.code == entry.code),
            "{} is in the catalogue but config::CODES does not list it",
            entry.code
        );
    }
}

#[test]
fn every_code_has_a_case_and_cases_show_only_known_codes() {
    // From the cases' actual output (not the .out files, which `cases` may be
    // rewriting concurrently under UPDATE_EXPECT).
    let shown: String = case_files().iter().map(|p| run_case(p)).collect();
    for code in config::CODES {
        assert!(
            shown.contains(&format!("[{}]", code.code)),
            "no case in tests/cases shows {} ({})",
            code.code,
            code.title
        );
    }
    for (i, _) in shown.match_indices("error[").chain(shown.match_indices("warning[")) {
        let code = &shown[i..].split(['[', ']']).nth(1).unwrap();
        assert!(
            config::CODES.iter().any(|c| c.code == *code),
            "case output shows unknown code {code}"
        );
    }
}

fn examples() -> Vec<PathBuf> {
    let dir = manifest_dir().join("../../examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn examples_are_valid() {
    let names: Vec<String> =
        examples().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for expected in ["active-standby.toml", "loopback.toml", "mutual-backup.toml", "reference.toml"]
    {
        assert!(names.iter().any(|n| n == expected), "examples/{expected} is missing");
    }
    for path in examples() {
        match config::load(&path) {
            Ok((config, warnings)) => {
                assert!(warnings.iter().all(|w| !w.is_error()));
                // Host checks never fail a valid file in Warn mode.
                assert!(config::host_checks(&config, Strictness::Warn)
                    .iter()
                    .all(|d| !d.is_error()));
            }
            Err(invalid) => panic!("{} is invalid:\n{invalid}", path.display()),
        }
    }
}

#[test]
fn examples_tuned_for_their_lease_have_no_warnings() {
    for name in ["active-standby.toml", "mutual-backup.toml", "loopback.toml"] {
        let path = manifest_dir().join("../../examples").join(name);
        let (_, warnings) = config::load(&path).unwrap();
        let text: Vec<String> = warnings.iter().map(|w| w.message.clone()).collect();
        assert!(warnings.is_empty(), "{name}: {text:?}");
    }
}

#[test]
fn reference_example_gives_the_documented_spec() {
    let path = manifest_dir().join("../../examples/reference.toml");
    let (config, warnings) = config::load(&path).unwrap();
    let spec = &config.cluster;
    assert_eq!(spec.name, "erp");
    assert_eq!(spec.timing, engine::Timing::default());
    assert_eq!(spec.arbitration, ArbitrationKind::Disk);
    let names = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        spec.nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>(),
        names(vec!["alpha", "beta"])
    );
    assert_eq!(
        spec.links.iter().map(|l| (l.name.as_str(), l.kind)).collect::<Vec<_>>(),
        vec![("private", LinkKind::Udp), ("public", LinkKind::Udp), ("disk", LinkKind::Disk)]
    );
    assert_eq!(config.links[0], LinkConfig::Udp { port: 5405 });
    assert!(
        matches!(&config.links[2], LinkConfig::Disk { path } if path.ends_with("wwn-0x6006016012345678-part1"))
    );
    assert_eq!(config.arbitration.disk_link, Some(engine::LinkId(2)));
    let alpha = &config.nodes[0];
    assert_eq!(alpha.addresses[0].unwrap().to_string(), "192.168.50.1:5405");
    assert_eq!(alpha.addresses[1].unwrap().to_string(), "10.0.0.11:5405");
    assert_eq!(alpha.addresses[2], None);
    assert_eq!(alpha.api.to_string(), "10.0.0.11:7400");
    assert_eq!(config.key_file.value, PathBuf::from("/etc/tandem/cluster.key"));
    assert_eq!(config.state_dir, PathBuf::from("/var/lib/tandem"));

    let db = &spec.groups[0];
    assert_eq!(db.name, "db");
    assert_eq!(db.nodes, vec![engine::NodeId(0), engine::NodeId(1)]);
    assert_eq!(db.failback, Failback::Manual);
    assert_eq!(db.failback_delay, Duration::from_secs(30));
    assert_eq!(db.migration_threshold, 3);
    assert_eq!(db.failure_timeout, Duration::from_secs(600));
    let postgres = &db.resources[2];
    assert_eq!(postgres.kind, ResourceKind::Systemd);
    assert_eq!(postgres.monitor_interval, Duration::from_secs(2));
    assert_eq!(postgres.monitor_timeout, Duration::from_secs(10));
    assert_eq!(postgres.start_timeout, Duration::from_secs(20));
    match &config.groups[0].resources[0].params {
        ResourceParams::Filesystem(fs) => {
            assert_eq!(fs.device.value, PathBuf::from("/dev/mapper/shared-data"));
            assert_eq!(fs.fstype, "ext4");
            assert!(fs.lock_standby);
            assert!(!fs.fsck);
        }
        other => panic!("{other:?}"),
    }
    match &config.groups[0].resources[1].params {
        ResourceParams::Ip(ip) => {
            assert_eq!(ip.address.to_string(), "10.0.0.100");
            assert_eq!(ip.prefix_len, 24);
            assert_eq!(ip.interface.as_ref().unwrap().value, "eth0");
        }
        other => panic!("{other:?}"),
    }

    let web = &spec.groups[1];
    assert_eq!(web.nodes, vec![engine::NodeId(1), engine::NodeId(0)]);
    assert_eq!(web.failback, Failback::Auto);
    assert_eq!(web.resources[0].kind, ResourceKind::Nic);
    assert_eq!(
        web.resources[0].monitor_interval,
        Duration::from_secs(1),
        "nic monitors every second"
    );
    assert_eq!(web.resources[1].monitor_interval, Duration::from_secs(5));
    assert_eq!(web.resources[1].stop_timeout, Duration::from_secs(10));
    match &config.groups[1].resources[1].params {
        ResourceParams::Process(p) => {
            assert_eq!(p.command.value, vec!["/usr/bin/python3", "-m", "http.server", "8080"]);
            assert_eq!(p.cwd.as_ref().unwrap().value, PathBuf::from("/srv/web"));
            assert_eq!(p.env.get("PYTHONUNBUFFERED").map(String::as_str), Some("1"));
            assert_eq!(p.user, None);
        }
        other => panic!("{other:?}"),
    }
    match &config.groups[1].resources[2].params {
        ResourceParams::Ocf(o) => {
            assert_eq!((o.provider.as_str(), o.agent_type.as_str()), ("heartbeat", "tomcat"));
            assert_eq!(o.params.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        config.groups[1].resources[3].params,
        ResourceParams::App { deadline: Duration::from_secs(5) }
    );

    assert_eq!(config.alerts.len(), 3);
    assert_eq!(config.alerts[0].min_severity, engine::catalogue::Severity::Warning);
    assert!(matches!(&config.alerts[0].target, AlertTarget::Email { smtp, starttls: true, to, .. }
        if smtp.host == "smtp.example.com" && smtp.port == 587 && to.len() == 1));
    assert!(
        matches!(&config.alerts[1].target, AlertTarget::Webhook { url, .. } if url == "https://hooks.example.com/tandem")
    );
    assert_eq!(config.api.users_file, PathBuf::from("/etc/tandem/users.toml"));
    assert_eq!(config.api.ca_file, PathBuf::from("/etc/tandem/ca.crt"));

    // The effective order puts storage, then network, then applications.
    let order: Vec<&str> =
        web.start_order().into_iter().map(|r| web.resource(r).name.as_str()).collect();
    assert_eq!(order, ["uplink", "app", "tomcat", "erp-api"]);

    // The reference file is clean: no warning about the file itself.
    let codes: Vec<&str> = warnings.iter().map(|w| w.code.code).collect();
    assert!(codes.is_empty(), "{codes:?}");
}

#[test]
fn unreadable_files_are_reported_with_a_code() {
    let missing = manifest_dir().join("tests/cases/does-not-exist.toml");
    let invalid = config::load(&missing).unwrap_err();
    assert_eq!(invalid.diagnostics.len(), 1);
    assert_eq!(invalid.diagnostics[0].code.code, "E1031");
    let text = invalid.to_string();
    assert!(text.contains("error[E1031]: cannot read"), "{text}");
    assert!(text.ends_with("error: 1 error"), "{text}");
    let directory = config::load(&manifest_dir().join("tests")).unwrap_err();
    assert_eq!(directory.diagnostics[0].code.code, "E1031");
}

/// A cluster of `groups` groups of `resources` resources each, as the speed
/// measurement (`cargo run --release -p config --example timing`) also builds it.
fn generated(groups: usize) -> String {
    let mut text = String::from(
        "[cluster]\nname = \"big\"\n\n[timing]\nlease_timeout = \"60s\"\n\n\
         [[node]]\nname = \"alpha\"\naddresses = { lan = \"10.0.0.1\" }\n\n\
         [[node]]\nname = \"beta\"\naddresses = { lan = \"10.0.0.2\" }\n\n\
         [[link]]\nname = \"lan\"\nkind = \"udp\"\n\n[[link]]\nname = \"disk\"\nkind = \"disk\"\npath = \"/dev/sdb1\"\n",
    );
    for g in 0..groups {
        let _ = write!(text, "\n[[group]]\nname = \"g{g}\"\nnodes = [\"alpha\", \"beta\"]\n");
        let _ = write!(
            text,
            "\n  [[group.resource]]\n  name = \"data\"\n  kind = \"filesystem\"\n  device = \"/dev/mapper/d{g}\"\n  mountpoint = \"/srv/g{g}\"\n  fstype = \"ext4\"\n"
        );
        let _ = write!(text, "\n  [[group.resource]]\n  name = \"vip\"\n  kind = \"ip\"\n  address = \"10.1.{}.{}/16\"\n", g / 250, g % 250 + 1);
        for r in 0..8 {
            let _ = write!(
                text,
                "\n  [[group.resource]]\n  name = \"p{r}\"\n  kind = \"process\"\n  command = [\"/usr/bin/sleep\", \"infinity\"]\n  monitor = {{ interval = \"10s\", timeout = \"5s\" }}\n"
            );
        }
    }
    text
}

#[test]
fn large_file() {
    let text = generated(200);
    let (config, warnings) =
        config::parse(&text, "big.toml").unwrap_or_else(|d| panic!("{:?}", d[0]));
    assert!(warnings.is_empty(), "{:?}", warnings.first().map(|w| &w.message));
    assert_eq!(config.cluster.groups.len(), 200);
    assert!(config.cluster.groups.iter().all(|g| g.resources.len() == 10));
    assert_eq!(config.groups[199].resources.len(), 10);
    let order = config.cluster.groups[7].start_order();
    assert_eq!(config.cluster.groups[7].resource(order[0]).kind, ResourceKind::Filesystem);
    assert_eq!(config.cluster.groups[7].resource(order[1]).kind, ResourceKind::Ip);
}

#[test]
fn the_documentation_shows_the_reference_example_and_every_key() {
    let docs = std::fs::read_to_string(manifest_dir().join("../../docs/configuration.md")).unwrap();
    let reference =
        std::fs::read_to_string(manifest_dir().join("../../examples/reference.toml")).unwrap();
    assert!(
        docs.contains(&reference),
        "docs/configuration.md must end with examples/reference.toml verbatim"
    );
    // Every key of every table of the reference (and the kind-specific keys of the
    // other examples) has a row in the reference tables.
    let mut sources = vec![reference];
    for path in examples() {
        sources.push(std::fs::read_to_string(path).unwrap());
    }
    for source in &sources {
        let (document, errors) = toml::de::DeTable::parse_recoverable(source);
        assert!(errors.is_empty());
        let mut keys = Vec::new();
        collect_keys(document.get_ref(), &mut keys);
        for key in keys {
            // Tables of user-chosen keys (addresses, env, params) are not documented per key.
            if [
                "private",
                "public",
                "lan",
                "net1",
                "net2",
                "PYTHONUNBUFFERED",
                "catalina_home",
                "tomcat_user",
            ]
            .contains(&key.as_str())
            {
                continue;
            }
            assert!(
                docs.contains(&format!("| `{key}` |")),
                "docs/configuration.md has no row for `{key}`"
            );
        }
    }
}

fn collect_keys(table: &toml::de::DeTable<'_>, out: &mut Vec<String>) {
    use toml::de::DeValue;
    for (key, value) in table.iter() {
        let key = key.get_ref().to_string();
        match value.get_ref() {
            DeValue::Table(t) => {
                if !matches!(key.as_str(), "cluster" | "timing" | "arbitration" | "api") {
                    out.push(key);
                }
                collect_keys(t, out);
            }
            DeValue::Array(a) => {
                let mut tables = false;
                for element in a.iter() {
                    if let DeValue::Table(t) = element.get_ref() {
                        tables = true;
                        collect_keys(t, out);
                    }
                }
                if !tables {
                    out.push(key);
                }
            }
            _ => out.push(key),
        }
    }
}

#[test]
fn engine_limits_are_enforced() {
    let node = |i: usize| {
        format!(
            "[[node]]\nname = \"n{i}\"\naddresses = {{ lan = \"10.0.{}.{}\" }}\n",
            i / 200,
            i % 200 + 1
        )
    };
    let head = "[cluster]\nname = \"big\"\n[arbitration]\nkind = \"none\"\n[[link]]\nname = \"lan\"\nkind = \"udp\"\n";
    let codes = |text: &str| -> Vec<String> {
        match config::parse(text, "limits.toml") {
            Ok(_) => Vec::new(),
            Err(d) => d
                .iter()
                .filter(|d| d.is_error())
                .map(|d| format!("{} {}", d.code.code, d.message))
                .collect(),
        }
    };
    let mut text = head.to_string();
    for i in 0..=engine::NODES_MAX {
        text.push_str(&node(i));
    }
    assert_eq!(codes(&text), ["E1030 too many nodes: 33, at most 32"]);

    let mut text = format!("{head}{}{}", node(0), node(1));
    for g in 0..=engine::GROUPS_MAX {
        let _ = write!(text, "[[group]]\nname = \"g{g}\"\nnodes = [\"n0\", \"n1\"]\n");
    }
    assert_eq!(codes(&text), ["E1030 too many groups: 10001, at most 10000"]);

    let mut text =
        format!("{head}{}{}[[group]]\nname = \"g\"\nnodes = [\"n0\", \"n1\"]\n", node(0), node(1));
    for r in 0..=engine::RESOURCES_PER_GROUP_MAX {
        let _ = write!(
            text,
            "[[group.resource]]\nname = \"r{r}\"\nkind = \"nic\"\ninterface = \"eth0\"\n"
        );
    }
    assert_eq!(codes(&text), ["E1030 too many resources in group `g`: 65, at most 64"]);
}

/// Every prefix and every one-line deletion of the examples parses without panicking,
/// and every diagnostic points inside the text and renders.
#[test]
fn damaged_files_never_panic() {
    for path in examples() {
        let source = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = source.lines().collect();
        let mut variants: Vec<String> = (0..lines.len())
            .map(|skip| {
                lines
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .map(|(_, l)| *l)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect();
        variants.extend(
            (0..source.len())
                .step_by(13)
                .filter(|&i| source.is_char_boundary(i))
                .map(|i| source[..i].to_string()),
        );
        for text in variants {
            let diagnostics = match config::parse(&text, "damaged.toml") {
                Ok((_, warnings)) => warnings,
                Err(errors) => {
                    assert!(errors.iter().any(|d| d.is_error()));
                    errors
                }
            };
            for d in &diagnostics {
                assert!(d.span.start <= d.span.end && d.span.end <= text.len(), "{d:?}");
                assert!(d.render(&text).contains(d.code.code));
            }
        }
    }
}
