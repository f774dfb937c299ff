//! Measures how long `config::parse` takes on a generated large file (by default 1,000
//! groups of 10 resources: a filesystem, an ip and 8 processes each), the figure the
//! configuration crate promises to keep well under 100 ms in a release build:
//!
//! ```text
//! cargo run --release -p config --example timing [GROUPS]
//! ```
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
    let groups: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let text = generated(groups);
    let runs = 10;
    let mut best = f64::MAX;
    let mut total = 0.0;
    for _ in 0..runs {
        let start = Instant::now();
        let (config, warnings) =
            config::parse(&text, "big.toml").expect("the generated file is valid");
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        assert!(warnings.is_empty());
        assert_eq!(config.cluster.groups.len(), groups);
        best = best.min(ms);
        total += ms;
    }
    println!(
        "{groups} groups x 10 resources ({} KiB, {} lines): best {best:.1} ms, mean {:.1} ms over {runs} runs",
        text.len() / 1024,
        text.lines().count(),
        total / f64::from(runs)
    );
}
