//! `tally`: Tally's query shell. See `tally --help` and `docs/shell.md`.

use std::process::ExitCode;

use clap::Parser;
use tally_tools::shell::{ShellArgs, run};

fn main() -> ExitCode {
    run(ShellArgs::parse())
}
