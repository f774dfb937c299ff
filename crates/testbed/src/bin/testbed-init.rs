//! `testbed-init`: PID 1 of every lab host (see the library's `init` module for what it
//! does and must not do). The lab starts it through `unshare`; nothing else should.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    testbed::init::main(&args)
}
