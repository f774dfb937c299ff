//! Measures how long `config::parse` takes on a generated large file (by default 1,000
//! groups of 10 resources: a filesystem, an ip and 8 processes each), the figure the
//! configuration crate promises to keep well under 100 ms in a release build:
//!
//! ```text
//! cargo run --release -p config --example timing [GROUPS] [--emit PATH]
//! ```
//!
//! `--emit PATH` also writes the generated file (`cargo xtask bench` times `tandem
//! validate` on it).
//!
//! A measurement tool only: it asserts nothing about time (machines differ), it checks
//! only that the file is valid and complete.

use std::fmt::Write as _;
use std::time::Instant;

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
        let _ = write!(
            text,
            "\n  [[group.resource]]\n  name = \"vip\"\n  kind = \"ip\"\n  address = \"10.1.{}.{}/16\"\n",
            g / 250,
            g % 250 + 1
        );
        for r in 0..8 {
            let _ = write!(
                text,
                "\n  [[group.resource]]\n  name = \"p{r}\"\n  kind = \"process\"\n  command = [\"/usr/bin/sleep\", \"infinity\"]\n  monitor = {{ interval = \"10s\", timeout = \"5s\" }}\n"
            );
        }
    }
    text
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let groups: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let text = generated(groups);
    if let Some(path) = args.iter().position(|a| a == "--emit").and_then(|i| args.get(i + 1)) {
        std::fs::write(path, &text).expect("write the generated file");
    }
    let runs = 30;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let (config, warnings) =
            config::parse(&text, "big.toml").expect("the generated file is valid");
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        assert!(warnings.is_empty());
        assert_eq!(config.cluster.groups.len(), groups);
    }
    times.sort_by(f64::total_cmp);
    let p99 = times[((times.len() - 1) as f64 * 0.99).round() as usize];
    println!(
        "config::parse of {groups} groups x 10 resources ({} KiB, {} lines): median {:.1} ms, p99 {p99:.1} ms over {runs} runs",
        text.len() / 1024,
        text.lines().count(),
        times[times.len() / 2],
    );
}
