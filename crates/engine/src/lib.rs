//! tandem's decision core: a pure, deterministic state machine, one per node.
//!
//! Time and inputs go in as data ([`Engine::handle`]), actions come out as data
//! ([`Engine::poll_output`]). This crate owns failure detection per link, leases as seen
//! by their holder, placement of groups, the group life cycle, the restart/failover
//! policy and the event codes ([`catalogue`]).
//!
//! It must not: read a clock, use randomness, touch files, sockets, processes or
//! threads, or depend on any other crate. A test (`tests/purity.rs`) enforces this.

pub mod catalogue;
mod engine;
pub mod io;
pub mod spec;
pub mod status;
pub mod time;

pub use engine::Engine;
pub use io::*;
pub use spec::*;
pub use status::*;
pub use time::Instant;
