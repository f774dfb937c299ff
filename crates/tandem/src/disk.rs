//! `tandem disk init [--config F] [--force]`: formats the shared-disk area named by the
//! configuration's disk link (the arbitration's disk link, else the only disk link) for
//! the cluster's nodes and groups, and prints what it did. Exit 0 formatted, 1 refused
//! (another cluster's area or other data without `--force`, an area too small, an
//! invalid configuration). `tandem disk fence NODE` leaves a poison pill in NODE's
//! mailbox; `tandem disk unpark NODE` gives back the leases NODE parked when it stopped
//! in maintenance (`arbiter::disk`, "Parking"). Both exit 1 when refused.
//!
//! Presentation only: the format and its refusals belong to the `diskarea` crate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use config::{Config, LinkConfig};
use diskarea::{AreaError, Found, Mode};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: DiskCommand,
}

#[derive(clap::Subcommand)]
enum DiskCommand {
    /// Format the shared-disk heartbeat/lease area named by the disk link (stop the
    /// cluster first: it erases the area's heartbeats and leases).
    Init(InitArgs),
    /// Leave a poison pill for NODE in the area: its running daemon stops every resource
    /// at once and exits (E3111); its groups move once their leases run out.
    Fence(FenceArgs),
    /// Give back the leases NODE parked when its daemon stopped in maintenance, after
    /// stopping their resources on NODE by hand: the other nodes may then take its
    /// groups once a takeover wait has passed. Only while NODE's daemon is stopped.
    Unpark(FenceArgs),
}

#[derive(clap::Args)]
struct FenceArgs {
    /// The configuration file.
    #[arg(long, default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// The node.
    node: String,
}

#[derive(clap::Args)]
struct InitArgs {
    /// The configuration file.
    #[arg(long, default_value = config::DEFAULT_PATH)]
    config: PathBuf,
    /// Format even an area holding another cluster's header or other data.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (result, error) = match args.command {
        DiskCommand::Init(args) => (init(&args.config, args.force), ""),
        DiskCommand::Fence(args) => (fence(&args.config, &args.node), "error: "),
        DiskCommand::Unpark(args) => (unpark(&args.config, &args.node), "error: "),
    };
    match result {
        Ok(text) => {
            println!("{}", text.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Err(text) => {
            eprintln!("{error}{}", text.trim_end());
            Ok(ExitCode::from(1))
        }
    }
}

/// Writes a pill for `node`'s current daemon (the incarnation in its host record).
fn fence(config_path: &Path, node: &str) -> Result<String, String> {
    use arbiter::disk::{Block, Pill, Record};
    let (config, _) = config::load(config_path).map_err(|e| e.to_string())?;
    let target =
        config.cluster.node_id(node).ok_or_else(|| format!("no node `{node}` in the cluster"))?;
    let path = area_path(&config).ok_or("the configuration has no disk link")?;
    let area = diskarea::Area::open(path, &config.cluster.name).map_err(|e| e.to_string())?;
    let incarnation = match area.read_record(Block::Host(target)).map_err(|e| e.to_string())? {
        Record::Host(host) => host.incarnation,
        _ => return Err(format!("node `{node}` has never held the disk lease: nothing to fence")),
    };
    let at_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let pill = Record::Pill(Pill { from: None, incarnation, at_unix });
    area.write_record(Block::Mailbox(target), &pill).map_err(|e| e.to_string())?;
    Ok(format!(
        "left a poison pill for {node} (incarnation {incarnation}) in {}: its daemon fences \
         itself within a heartbeat interval or two",
        path.display()
    ))
}

/// Rewrites `node`'s parked host record unparked (same incarnation, next counter, the
/// same groups): a contender sees a change, and takes a group once the record has stayed
/// unchanged for a takeover wait, as after any write of a node that went silent.
fn unpark(config_path: &Path, node: &str) -> Result<String, String> {
    use arbiter::disk::{Block, Record};
    let (config, _) = config::load(config_path).map_err(|e| e.to_string())?;
    let target =
        config.cluster.node_id(node).ok_or_else(|| format!("no node `{node}` in the cluster"))?;
    let path = area_path(&config).ok_or("the configuration has no disk link")?;
    let area = diskarea::Area::open(path, &config.cluster.name).map_err(|e| e.to_string())?;
    let mut host = match area.read_record(Block::Host(target)).map_err(|e| e.to_string())? {
        Record::Host(host) if host.parked => host,
        _ => {
            return Err(format!(
                "node `{node}` has parked no lease: nothing to unpark (its daemon releases \
                 or keeps its leases itself)"
            ))
        }
    };
    let names: Vec<&str> =
        host.groups.iter().map(|g| config.cluster.group(*g).name.as_str()).collect();
    host.parked = false;
    host.counter += 1;
    area.write_record(Block::Host(target), &Record::Host(host)).map_err(|e| e.to_string())?;
    let wait = config.cluster.timing.lease_takeover_wait();
    Ok(format!(
        "unparked the leases of {node} ({}) in {}: another node may take them in {} ms, \
         unless {node}'s daemon starts first and finds them running",
        names.join(", "),
        path.display(),
        wait.as_millis()
    ))
}

/// The disk link's area path.
fn area_path(config: &Config) -> Option<&Path> {
    let disk_links: Vec<&Path> = config
        .links
        .iter()
        .filter_map(|l| match l {
            LinkConfig::Disk { path } => Some(path.value.as_path()),
            LinkConfig::Udp { .. } => None,
        })
        .collect();
    match config.arbitration.disk_link {
        Some(link) => match &config.links[link.0 as usize] {
            LinkConfig::Disk { path } => Some(path.value.as_path()),
            LinkConfig::Udp { .. } => None,
        },
        None => disk_links.first().copied(),
    }
}

/// Formats the area; the report on success, the reason on refusal.
fn init(config_path: &Path, force: bool) -> Result<String, String> {
    let config = config::load(config_path).map_err(|invalid| invalid.to_string())?.0;
    let spec = &config.cluster;
    let Some(path) = area_path(&config) else {
        return Err(format!(
            "{}: cluster `{}` has no disk link; nothing to format",
            config_path.display(),
            spec.name
        ));
    };
    let report =
        diskarea::format_area(path, &spec.name, spec.nodes.len(), spec.groups.len(), force)
            .map_err(|e| {
                let hint = match e {
                    AreaError::ForeignCluster { .. } | AreaError::NotFormatted(_) => {
                        "\nhelp: check the path; --force overwrites the area"
                    }
                    AreaError::TooSmall { .. } => "\nhelp: give the disk link a larger partition",
                    _ => "",
                };
                format!("error: cannot format {}: {e}{hint}", path.display())
            })?;
    let before = match &report.previous {
        Found::Blank => "it was blank".to_string(),
        Found::Header(h) if h.cluster_name == spec.name => {
            "it held this cluster's area, now erased".to_string()
        }
        Found::Header(h) => {
            format!("it held cluster `{}`'s area, overwritten (--force)", h.cluster_name)
        }
        Found::Other(why) => format!("it held other data ({why}), overwritten (--force)"),
    };
    let mode = match report.mode {
        Mode::Direct => "O_DIRECT",
        Mode::Buffered => "buffered: this filesystem has no O_DIRECT, fit for tests only",
    };
    Ok(format!(
        "formatted {} for cluster `{}` (id {}): {}, {}, {} of {} bytes used \
         ({mode}); {before}\n",
        path.display(),
        spec.name,
        report.header.cluster_id.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        plural(spec.nodes.len(), "node"),
        plural(spec.groups.len(), "group"),
        report.bytes_written,
        report.bytes,
    ))
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of examples/active-standby.toml, cluster `name`, disk link on `area`.
    fn config_file(dir: &Path, name: &str, area: &Path) -> PathBuf {
        let example =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/active-standby.toml");
        let text = std::fs::read_to_string(example).unwrap();
        let text = text
            .replace("name = \"shop\"\n\n[timing]", &format!("name = \"{name}\"\n\n[timing]"))
            .replace("/dev/disk/by-id/wwn-0x6006016012345678-part1", &area.display().to_string());
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn init_formats_and_refuses_another_cluster_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let area = dir.path().join("area");
        std::fs::File::create(&area).unwrap().set_len(diskarea::AREA_BYTES_MIN).unwrap();
        let shop = config_file(dir.path(), "shop", &area);
        let text = init(&shop, false).unwrap();
        assert!(text.contains("for cluster `shop`") && text.contains("it was blank"), "{text}");
        let other = config_file(dir.path(), "other", &area);
        let refused = init(&other, false).unwrap_err();
        assert!(refused.contains("belongs to cluster `shop`"), "{refused}");
        let text = init(&other, true).unwrap();
        assert!(text.contains("held cluster `shop`'s area"), "{text}");
        assert!(diskarea::Area::open(&area, "other").is_ok());
    }

    #[test]
    fn unpark_rewrites_a_parked_record_once_and_refuses_otherwise() {
        use arbiter::disk::{Block, HostRecord, Record};
        let dir = tempfile::tempdir().unwrap();
        let area_path = dir.path().join("area");
        std::fs::File::create(&area_path).unwrap().set_len(diskarea::AREA_BYTES_MIN).unwrap();
        let shop = config_file(dir.path(), "shop", &area_path);
        init(&shop, false).unwrap();
        let refused = unpark(&shop, "alpha").unwrap_err();
        assert!(refused.contains("has parked no lease"), "{refused}");
        let area = diskarea::Area::open(&area_path, "shop").unwrap();
        let beta = engine::NodeId(1);
        let groups = vec![engine::GroupId(0)];
        let parked = HostRecord { incarnation: 4, counter: 9, groups, parked: true };
        area.write_record(Block::Host(beta), &Record::Host(parked.clone())).unwrap();
        let text = unpark(&shop, "beta").unwrap();
        assert!(text.contains("unparked the leases of beta (shop)"), "{text}");
        let unparked = HostRecord { counter: 10, parked: false, ..parked };
        assert_eq!(area.read_record(Block::Host(beta)).unwrap(), Record::Host(unparked));
        assert!(unpark(&shop, "beta").unwrap_err().contains("has parked no lease"));
        assert!(unpark(&shop, "gamma").unwrap_err().contains("no node `gamma`"));
    }

    #[test]
    fn the_area_and_the_wire_identify_a_cluster_alike() {
        for name in ["shop", "", "a much longer cluster name"] {
            assert_eq!(diskarea::cluster_id(name), wire::ClusterId::from_name(name).0);
        }
    }

    #[test]
    fn init_refuses_a_small_area() {
        let dir = tempfile::tempdir().unwrap();
        let area = dir.path().join("area");
        std::fs::File::create(&area).unwrap().set_len(64 * 1024).unwrap();
        let refused = init(&config_file(dir.path(), "shop", &area), true).unwrap_err();
        assert!(refused.contains("it needs at least"), "{refused}");
    }
}
