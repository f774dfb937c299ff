//! The arbitrators behind `Output::Lease` / `Input::Lease`, as pure protocol state
//! machines: delta leases on the shared disk ([`disk`]) and the witness server with its
//! client ([`witness`]). `arbitration = none` needs no protocol (every request is
//! granted at once) and is handled by the simulator itself.
//!
//! Nothing here knows the simulator: no events, no randomness, no simulated devices.

pub mod disk;
pub mod witness;
