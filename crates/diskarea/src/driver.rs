//! The driver of the disk lease client: carries out one `arbiter::disk::IoOp` on an
//! [`Area`] and returns its `IoResult` (a failure of any kind, corruption included, is
//! `IoResult::Failed`). It blocks; the caller enforces the client's `io_timeout` (see
//! the crate docs). It must not interpret the records.

use arbiter::disk::{IoOp, IoResult};

use crate::Area;

/// Carries out `op` on `area`.
pub fn perform(area: &Area, op: &IoOp) -> IoResult {
    match op {
        IoOp::Read(block) => match area.read_record(*block) {
            Ok(record) => IoResult::Read(record),
            Err(e) => IoResult::Failed(format!("reading {block:?}: {e}")),
        },
        IoOp::Write(block, record) => match area.write_record(*block, record) {
            Ok(()) => IoResult::Written,
            Err(e) => IoResult::Failed(format!("writing {block:?}: {e}")),
        },
    }
}
