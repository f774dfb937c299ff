//! The head of a `cluster.toml`: `[cluster]`, `[timing]`, the nodes with their
//! addresses, the UDP links, the disk link and disk arbitration — everything but the
//! groups, which each user appends in its own words. One writer for the lab clusters
//! (the demo, the lab tests and benchmarks: [`lab_nodes`]) and for the loopback ones
//! (the demo's loopback mode, `tests/node.rs`: addresses on 127.0.0.1 ports). It is
//! text only; `tandem node` and `tandem disk init` read and check what it wrote.

use std::net::{Ipv4Addr, UdpSocket};

use testbed::{Lab, Network, Node};

/// `n` distinct free UDP ports on 127.0.0.1, for a loopback cluster's links: every
/// socket is held until all are chosen (one at a time, the kernel may hand out a port
/// just released again: two nodes on one port).
pub fn free_udp_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let sockets = (0..n)
        .map(|_| UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()?;
    sockets.iter().map(|s| s.local_addr().map(|a| a.port())).collect()
}

/// One `[[node]]`: its name, its address on each UDP link (link name, address; every
/// node lists the same links in the same order) and, where set, its `api` address.
#[derive(Clone, Debug)]
pub struct NodeToml {
    pub name: String,
    pub addresses: Vec<(String, String)>,
    pub api: Option<String>,
}

impl NodeToml {
    /// A node on loopback: its UDP links `net1`, `net2`, ... on 127.0.0.1 at `ports`,
    /// and its `api` address.
    pub fn loopback(name: &str, ports: &[u16], api: &str) -> NodeToml {
        let addresses = ports.iter().enumerate();
        NodeToml {
            name: name.to_string(),
            addresses: addresses
                .map(|(i, port)| (format!("net{}", i + 1), format!("127.0.0.1:{port}")))
                .collect(),
            api: Some(api.to_string()),
        }
    }
}

/// Everything of a `cluster.toml` but its groups.
#[derive(Clone, Debug)]
pub struct ClusterToml {
    /// A comment for the first line (without `#`), or empty for none.
    pub comment: String,
    /// `[cluster] name`, and its `key_file` and `state_dir` where not the defaults.
    pub name: String,
    pub files: Option<(String, String)>,
    /// The whole `[timing]` section (or a comment saying the defaults hold), ending in
    /// a newline.
    pub timing: String,
    pub nodes: Vec<NodeToml>,
    /// The disk link's path: the shared disk's heartbeat and lease area.
    pub area: String,
}

impl ClusterToml {
    /// The text, ending after `[arbitration]`: append the `[[group]]` sections.
    pub fn text(&self) -> String {
        let mut text = String::new();
        if !self.comment.is_empty() {
            text.push_str(&format!("# {}\n", self.comment));
        }
        text.push_str(&format!("[cluster]\nname = \"{}\"\n", self.name));
        if let Some((key_file, state_dir)) = &self.files {
            text.push_str(&format!("key_file = \"{key_file}\"\nstate_dir = \"{state_dir}\"\n"));
        }
        text.push('\n');
        text.push_str(&self.timing);
        for node in &self.nodes {
            let addresses: Vec<String> =
                node.addresses.iter().map(|(link, at)| format!("{link} = \"{at}\"")).collect();
            text.push_str(&format!(
                "\n[[node]]\nname = \"{}\"\naddresses = {{ {} }}\n",
                node.name,
                addresses.join(", ")
            ));
            if let Some(api) = &node.api {
                text.push_str(&format!("api = \"{api}\"\n"));
            }
        }
        let links = self.nodes.first().map(|n| n.addresses.as_slice()).unwrap_or_default();
        for (link, _) in links {
            text.push_str(&format!("\n[[link]]\nname = \"{link}\"\nkind = \"udp\"\n"));
        }
        text.push_str(&format!(
            "\n[[link]]\nname = \"disk\"\nkind = \"disk\"\npath = \"{}\"\n\n[arbitration]\nkind = \
             \"disk\"\n",
            self.area
        ));
        text
    }
}

/// The lab's hosts as nodes named `names` (host 0 first), each with its addresses on
/// the links `private` and `public` (the lab's networks of those names), and its API
/// address on the public network (where the client is), port [`crate::API_PORT`].
pub fn lab_nodes(lab: &Lab, names: &[String]) -> Vec<NodeToml> {
    names
        .iter()
        .enumerate()
        .map(|(host, name)| {
            let address = |network: Network| {
                lab.address(Node::Host(host), network).map(|a| a.to_string()).unwrap_or_default()
            };
            NodeToml {
                name: name.clone(),
                addresses: vec![
                    ("private".to_string(), address(Network::Private)),
                    ("public".to_string(), address(Network::Public)),
                ],
                api: Some(format!("{}:{}", address(Network::Public), crate::API_PORT)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text, with a group appended, is a configuration the real parser accepts,
    /// with every node, link and file as given.
    #[test]
    fn the_head_with_a_group_is_a_valid_configuration() {
        let node = |name: &str, port: u16| {
            NodeToml::loopback(name, &[port, port + 1], &format!("127.0.0.1:{}", port + 2))
        };
        let head = ClusterToml {
            comment: "written by a test".to_string(),
            name: "t".to_string(),
            files: Some(("/k/cluster.key".to_string(), "/s".to_string())),
            timing: "[timing]\nheartbeat_interval = \"50ms\"\n".to_string(),
            nodes: vec![node("alpha", 7000), node("beta", 7100)],
            area: "/area".to_string(),
        };
        let text = head.text()
            + "\n[[group]]\nname = \"g\"\nnodes = [\"alpha\", \"beta\"]\n\n  \
               [[group.resource]]\n  name = \"p\"\n  kind = \"process\"\n  command = \
               [\"/bin/true\"]\n";
        assert!(text.starts_with("# written by a test\n"), "{text}");
        let (config, _) = config::parse(&text, "cluster.toml").unwrap_or_else(|e| {
            panic!("{}\n{text}", config::render_all(&e, &text, false));
        });
        let names: Vec<&str> = config.cluster.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["alpha", "beta"]);
        let links: Vec<&str> = config.cluster.links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(links, ["net1", "net2", "disk"]);
        assert_eq!(config.cluster.name, "t");
        assert_eq!(config.state_dir, std::path::Path::new("/s"));
        assert_eq!(config.cluster.timing.heartbeat_interval.as_millis(), 50);
        assert!(text.contains("api = \"127.0.0.1:7102\"\n"), "{text}");
        assert!(text.contains("path = \"/area\"\n"), "{text}");
    }
}
