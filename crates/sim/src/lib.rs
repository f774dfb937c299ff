//! tandem's deterministic simulator (TigerBeetle's VOPR, FoundationDB-style): several
//! real engines, one per node, under simulated real time, with simulated clocks (offset
//! and drift), UDP links, a shared disk (heartbeat slots and delta leases), a witness,
//! resource agents and hosts, and one checker per guarantee of PRODUCT.md section 3.
//!
//! Code map:
//! - [`sim`]: the event loop, the world, the lease client's driving, the scripted API and
//!   the swarm runner, one file each under `sim/`;
//! - [`check`]: the checkers (S1-S5, L1, L2), fed with ground truth;
//! - the lease protocols (disk, witness) are pure state machines in the `arbiter` crate;
//!   their randomized safety checks run here (`protocol_checks`);
//! - [`net`], [`shared_disk`], [`agents`], [`clock`]: the simulated world;
//! - [`faults`]: the per-seed swarm fault plan;
//! - [`scenario`]: the `.scn` scenario-file format and runner;
//! - [`cluster`]: built-in two- and three-node cluster specs;
//! - [`queue`], [`trace`]: the event queue, the trace hash and the timeline.
//!
//! Invariants: nothing here reads the OS clock or OS randomness; all randomness comes
//! from one seeded generator per run; no decision depends on hash-map order. The
//! simulator decides nothing an engine decides: it carries inputs and outputs and keeps
//! the ground truth.

pub mod agents;
pub mod check;
pub mod clock;
pub mod cluster;
pub mod core;
pub mod faults;
pub mod net;
pub mod queue;
pub mod scenario;
pub mod shared_disk;
pub mod sim;
pub mod trace;

#[cfg(test)]
mod protocol_checks;

pub use check::{Guarantee, Violation};
pub use sim::{liveness_bound, FenceGuardRule, Options, RunReport, Sim};
