//! `tally`, the query shell.
//!
//! It sends statements to tallyd's `/query` endpoint (any InfluxDB 1.x compatible server
//! works) and prints the answers as tables, CSV or the server's JSON. Every statement is
//! parsed locally with `tally-query` before it is sent, so a typo is shown with a caret and
//! never reaches the server.
//!
//! Three ways in, one set of rules for where a statement ends (module `input`): `-e` runs its text
//! and exits, standard input that is not a terminal runs as a script, and a terminal gets the
//! interactive shell with history and tab completion.
//!
//! Exit codes: 0 success, 1 a statement failed (locally or on the server), 2 a usage error or
//! the server could not be reached.

mod cli;
mod client;
mod command;
mod completion;
mod error;
mod input;
mod interactive;
mod render;
mod report;
mod response;
mod session;

use std::io::{self, IsTerminal, Write as _};
use std::process::ExitCode;

pub use cli::{Epoch, OutputFormat, RequestTimeout, ShellArgs};
pub use error::ShellError;
pub use report::{ReportArgs, ReportFormat, ShellCommand};

use client::Client;
use session::{Output, Session};

/// Runs `tally` with parsed arguments and returns its exit code.
pub fn run(args: ShellArgs) -> ExitCode {
    if let Some(ShellCommand::Report(report)) = &args.command {
        return report::run_report(&args.host, args.database.as_deref(), args.timeout.0, report);
    }
    let client = match Client::new(&args.host, args.timeout.0) {
        Ok(client) => client,
        Err(error) => {
            let _ = writeln!(io::stderr(), "tally: {error}");
            return ExitCode::from(2);
        }
    };
    let stdin = io::stdin();
    let interactive = args.execute.is_none() && stdin.is_terminal();
    let mut session = Session::new(client, &args, interactive);
    if interactive {
        return interactive::run_interactive(&mut session);
    }
    let mut stdout = io::stdout();
    let mut stderr = io::stderr();
    let mut output = Output {
        out: &mut stdout,
        err: &mut stderr,
    };
    let status = match &args.execute {
        Some(text) => session.run_text(text, &mut output).status,
        None => interactive::run_script(&mut session, stdin.lock(), &mut output),
    };
    let _ = output.out.flush();
    status.exit_code()
}
