//! The node core: what sits between the engine and the sockets, written like the engine
//! (time and results in as data, actions out as data; no clock, no I/O, no threads) so
//! that the daemon (`tandem node`) and the simulator run the very same rules. Today it
//! holds the timing rules ([`timing`]), the lease client every node runs beside its
//! engine ([`lease`]) and how it is driven ([`driver`]), what counts as news in the
//! peers' disk slots ([`slots`]), the verdict on the path to the shared disk
//! ([`storage`]), the disk jobs' schedule ([`disk`]) and deadlines ([`jobs`]), and the
//! exit after a stop signal ([`shutdown`]). The rest of the daemon's glue is to move
//! here next (issue 19), until the daemon's loop only carries actions out.

pub mod disk;
pub mod driver;
pub mod incarnation;
pub mod jobs;
pub mod lease;
pub mod node;
pub mod shutdown;
pub mod slots;
pub mod storage;
pub mod timing;

pub use disk::{DiskSchedule, JobPlan};
pub use driver::{Drive, LeaseDriver, LeaseWake};
pub use jobs::{JobShape, Jobs, Verdict};
pub use lease::{LeaseClient, LeaseStep};
pub use node::{Action, Core, DiskAnswer, DiskDone, NodeCore, Rules};
pub use slots::SlotReader;
pub use storage::StoragePath;
