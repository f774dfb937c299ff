//! The arbitrators behind `Output::Lease` / `Input::Lease`, as pure protocol state
//! machines: delta leases on the shared disk ([`disk`]) and the witness server with its
//! client ([`witness`]). `arbitration = none` needs no protocol (every request is
//! granted at once) and is handled by the simulator itself.
//!
//! Nothing here knows the simulator or the daemon: no events, no randomness, no
//! devices, no clock. The simulator drives these state machines over a simulated disk
//! and network (`crates/sim`, where their randomized safety checks live); the daemon
//! will drive them over the real shared disk and UDP.

pub mod disk;
pub mod witness;
