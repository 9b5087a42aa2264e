//! `tally-dump`: backup, restore, verify, inspect, export and import of Tally data. See
//! `tally-dump --help` and `docs/backup.md`.

use std::process::ExitCode;

use clap::Parser;
use tally_tools::dump::{DumpArgs, run};

fn main() -> ExitCode {
    run(DumpArgs::parse())
}
