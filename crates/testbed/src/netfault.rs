//! The network faults the lab's switches inject with nftables: whole cuts that keep the
//! carrier up, cuts between two hosts only, and random packet loss. It owns the set of
//! faults in force and its rendering as one nftables ruleset for the switch namespace
//! (a `bridge` table whose `forward` chain sees every frame between two ports), which
//! the lab loads atomically after each change. It must not know anything but port names:
//! loading the ruleset is the lab's job.
//!
//! Rules match the switch-side port of a machine's veth (`h0-priv`, ...), so a fault
//! between two hosts leaves both reachable from the client, and nothing depends on
//! addresses or MACs that a test may change (virtual IPs, ARP).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::{Network, Node};

/// The nftables table of a lab's switch namespace (one per namespace, so one name).
pub const TABLE: &str = "tandem_lab";

/// The faults in force on a lab's switches.
#[derive(Debug, Default)]
pub struct NetFaults {
    /// Machines cut off a network (all frames to and from the port dropped).
    pub cut: BTreeSet<(Node, Network)>,
    /// Host pairs (lower index first) that cannot reach each other on a network.
    pub between: BTreeSet<(usize, usize, Network)>,
    /// Percent of frames to and from a machine's port dropped, by machine and network.
    pub loss: BTreeMap<(Node, Network), u8>,
}

impl NetFaults {
    /// The whole ruleset as `nft -f` reads it: creates the table if missing, deletes it,
    /// and creates it again with exactly the faults in force, in one transaction.
    pub fn ruleset(&self) -> String {
        let mut rules = String::new();
        for (node, network) in &self.cut {
            let port = node.port(*network);
            let _ = writeln!(rules, "    iifname \"{port}\" drop");
            let _ = writeln!(rules, "    oifname \"{port}\" drop");
        }
        for (a, b, network) in &self.between {
            let (a, b) = (Node::Host(*a).port(*network), Node::Host(*b).port(*network));
            let _ = writeln!(rules, "    iifname \"{a}\" oifname \"{b}\" drop");
            let _ = writeln!(rules, "    iifname \"{b}\" oifname \"{a}\" drop");
        }
        for ((node, network), percent) in &self.loss {
            let port = node.port(*network);
            // numgen's values are 0..=99: "< 100" is refused, and means every frame.
            let random = if *percent >= 100 {
                String::new()
            } else {
                format!("numgen random mod 100 < {percent} ")
            };
            for direction in ["iifname", "oifname"] {
                let _ = writeln!(rules, "    {direction} \"{port}\" {random}drop");
            }
        }
        format!(
            "table bridge {TABLE}\ndelete table bridge {TABLE}\ntable bridge {TABLE} {{\n  \
             chain forward {{\n    type filter hook forward priority 0; policy accept;\n\
             {rules}  }}\n}}\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_fault_is_an_empty_accepting_chain() {
        let ruleset = NetFaults::default().ruleset();
        assert!(ruleset.contains("policy accept;\n  }"), "{ruleset}");
        assert!(!ruleset.contains("drop"));
    }

    #[test]
    fn each_fault_drops_both_directions_of_its_ports() {
        let mut faults = NetFaults::default();
        faults.cut.insert((Node::Client, Network::Public));
        faults.between.insert((0, 1, Network::Private));
        faults.loss.insert((Node::Host(2), Network::Public), 20);
        faults.loss.insert((Node::Host(3), Network::Private), 100);
        let ruleset = faults.ruleset();
        for rule in [
            "iifname \"cl-pub\" drop",
            "oifname \"cl-pub\" drop",
            "iifname \"h0-priv\" oifname \"h1-priv\" drop",
            "iifname \"h1-priv\" oifname \"h0-priv\" drop",
            "iifname \"h2-pub\" numgen random mod 100 < 20 drop",
            "oifname \"h2-pub\" numgen random mod 100 < 20 drop",
            "iifname \"h3-priv\" drop",
        ] {
            assert!(ruleset.contains(rule), "missing {rule:?} in\n{ruleset}");
        }
    }
}
