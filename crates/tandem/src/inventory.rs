//! `tandem inventory`: what this host has to choose from when a cluster or a group is
//! configured — network interfaces and addresses, block devices and file systems, OCF
//! agents with their parameters, systemd units, LSB scripts — taken here and now
//! (`daemon::inventory`), without a running node. `--json` prints the contract's
//! [`contract::Inventory`] document (docs/schema/inventory.schema.json), the same that
//! `GET /v1/nodes/{n}/inventory` answers. Parts that could not be read are listed as
//! problems with their codes; the exit code is 0 all the same (the document is whole).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use contract::Inventory;

#[derive(clap::Args)]
pub struct Args {
    /// The inventory document as JSON (docs/inventory.md; keys are added, never renamed).
    #[arg(long)]
    json: bool,
    /// Where the OCF agents are, agents under `resource.d/PROVIDER/` (default: the
    /// environment's `OCF_ROOT`, else /usr/lib/ocf).
    #[arg(long)]
    ocf_root: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut sources = daemon::inventory::Sources::host();
    if let Some(root) = args.ocf_root.or_else(|| std::env::var_os("OCF_ROOT").map(PathBuf::from)) {
        sources.ocf_root = root;
    }
    let inventory = daemon::inventory::take(&sources, None);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&inventory)?);
    } else {
        print!("{}", render(&inventory));
    }
    Ok(ExitCode::SUCCESS)
}

/// The inventory for a person: one section per part, one line per entry.
fn render(inventory: &Inventory) -> String {
    let mut out = String::new();
    let took = inventory.took_ms as f64 / 1000.0;
    let _ = writeln!(out, "inventory of {} (taken in {took:.1} s)", inventory.host);
    let _ = writeln!(out, "\ninterfaces");
    for i in &inventory.interfaces {
        let addresses: Vec<String> =
            i.addresses.iter().map(|a| format!("{}/{}", a.address, a.prefix_len)).collect();
        let _ = writeln!(
            out,
            "  {:<12} {:<4} {:<10} carrier {:<3} mtu {:<6} {:<17} {}",
            i.name,
            if i.up { "up" } else { "down" },
            format!("{:?}", i.state).to_lowercase(),
            if i.carrier { "yes" } else { "no" },
            i.mtu.map_or("-".to_string(), |m| m.to_string()),
            i.mac.as_deref().unwrap_or("-"),
            addresses.join(" ")
        );
    }
    let _ = writeln!(out, "\nblock devices");
    for d in &inventory.block_devices {
        let mut line = format!("  {:<12} {:>10}", d.name, size(d.size_bytes));
        line.push_str(&format!(" {:<10}", d.fs_type.as_deref().unwrap_or("-")));
        if d.read_only {
            line.push_str(" read-only");
        }
        if let Some(uuid) = &d.uuid {
            line.push_str(&format!(" uuid {uuid}"));
        }
        if let Some(label) = &d.label {
            line.push_str(&format!(" label {label}"));
        }
        if !d.mount_points.is_empty() {
            line.push_str(&format!(" on {}", d.mount_points.join(", ")));
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(out, "\nOCF agents");
    for a in &inventory.ocf_agents {
        let what = match &a.meta_data_error {
            Some(error) => error.clone(),
            None => {
                let names: Vec<&str> = a.parameters.iter().map(|p| p.name.as_str()).collect();
                let about = a.shortdesc.as_deref().unwrap_or("");
                format!("{about} (parameters: {})", names.join(", "))
            }
        };
        let _ = writeln!(out, "  {:<28} {what}", format!("{}:{}", a.provider, a.name));
    }
    let _ = writeln!(out, "\nsystemd units");
    for u in &inventory.systemd_units {
        let _ = writeln!(
            out,
            "  {:<40} {:<10} {:<9} {:<9} {}",
            u.name,
            u.load_state,
            u.active_state,
            u.file_state.as_deref().unwrap_or("-"),
            u.description.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(out, "\nLSB scripts");
    for s in &inventory.lsb_scripts {
        let header = if s.lsb_header { "LSB" } else { "no LSB header" };
        let about = s.short_description.as_deref().unwrap_or("");
        let _ = writeln!(out, "  {:<24} {header:<13} {about}", s.name);
    }
    if !inventory.problems.is_empty() {
        let _ = writeln!(out, "\nproblems");
        for p in &inventory.problems {
            let _ = writeln!(out, "  {} {}: {}", p.code, p.part, p.message);
        }
    }
    out
}

/// Bytes in binary units, one decimal.
fn size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(536_870_912), "512.0 MiB");
        assert_eq!(size(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
    }
}
