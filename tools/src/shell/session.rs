//! A shell session: its settings (database, format, epoch, timing) and the running of input.
//!
//! Input is split at `;` into shell commands and statements. Every statement is parsed locally
//! first; if any part of the input is wrong, nothing of it runs, so a script never half-runs
//! because of a typo. Consecutive statements then go to the server in one request.

use std::collections::HashMap;
use std::io::Write;
use std::ops::Range;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Instant;

use tally_query::ParseError;
use tally_query::ast::Span;

use super::cli::{Epoch, OutputFormat, ShellArgs, format_duration};
use super::client::{Client, QueryParameters};
use super::command::{EpochSetting, HELP_TEXT, ShellCommand, parse_command};
use super::completion::{Catalog, fetch_databases};
use super::error::ShellError;
use super::input::scan;
use super::render::{CsvWriter, table};
use super::response::{QueryResponse, parse_response};

/// How a run went, worst last; it becomes the exit code of `-e` and of scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Status {
    Success,
    /// A statement did not parse, a command was wrong, or the server answered with an error.
    StatementFailed,
    /// The server could not be reached, or the input could not be read: exit code 2, like a
    /// usage error.
    CannotContinue,
}

impl Status {
    pub(crate) fn exit_code(self) -> ExitCode {
        match self {
            Status::Success => ExitCode::SUCCESS,
            Status::StatementFailed => ExitCode::from(1),
            Status::CannotContinue => ExitCode::from(2),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) status: Status,
    /// `exit` or `quit` was run.
    pub(crate) exit_requested: bool,
}

enum Step {
    Command(ShellCommand),
    /// Statements to send together, already checked by the parser.
    Statements(Vec<Range<usize>>),
}

/// Where a run writes: results to `out`, errors, notes and timings to `err`.
pub(crate) struct Output<'a> {
    pub(crate) out: &'a mut dyn Write,
    pub(crate) err: &'a mut dyn Write,
}

pub(crate) struct Session {
    client: Client,
    database: Option<String>,
    format: OutputFormat,
    epoch: Option<Epoch>,
    pretty: bool,
    timing: bool,
    /// Whether a person is typing: then settings changes are confirmed and the names used
    /// by completion are fetched.
    interactive: bool,
    timeout: Option<std::time::Duration>,
    databases: Vec<String>,
    catalogs: HashMap<String, Rc<Catalog>>,
    history: Vec<String>,
}

impl Session {
    pub(crate) fn new(client: Client, args: &ShellArgs, interactive: bool) -> Session {
        Session {
            client,
            database: args.database.clone(),
            format: args.format,
            epoch: args.epoch,
            pretty: args.pretty,
            timing: false,
            interactive,
            timeout: args.timeout.0,
            databases: Vec::new(),
            catalogs: HashMap::new(),
            history: Vec::new(),
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn database(&self) -> Option<&str> {
        self.database.as_deref()
    }

    pub(crate) fn databases(&self) -> &[String] {
        &self.databases
    }

    /// The names of the current database, if they have been fetched.
    pub(crate) fn catalog(&self) -> Option<Rc<Catalog>> {
        self.database
            .as_ref()
            .and_then(|database| self.catalogs.get(database))
            .cloned()
    }

    /// Remembers one input for the `history` command.
    pub(crate) fn record_history(&mut self, entry: String) {
        self.history.push(entry);
    }

    /// Fetches the database list and the names of the current database for completion.
    /// Failing to is not an error of the session; the returned error is only for a note.
    pub(crate) fn refresh_names(&mut self) -> Result<(), ShellError> {
        self.databases = fetch_databases(&self.client)?;
        if let Some(database) = self.database.clone() {
            let catalog = Catalog::fetch(&self.client, &database)?;
            self.catalogs.insert(database, Rc::new(catalog));
        }
        Ok(())
    }

    /// Runs complete input: shell commands and statements separated by `;`.
    pub(crate) fn run_text(&mut self, text: &str, output: &mut Output<'_>) -> Outcome {
        let Some(steps) = plan(text, output) else {
            return Outcome {
                status: Status::StatementFailed,
                exit_requested: false,
            };
        };
        let mut status = Status::Success;
        let mut csv_writer = CsvWriter::default();
        let mut printed_a_block = false;
        for step in steps {
            let step_status = match step {
                Step::Command(ShellCommand::Exit) => {
                    return Outcome {
                        status,
                        exit_requested: true,
                    };
                }
                Step::Command(command) => self.run_command(command, output),
                Step::Statements(ranges) => {
                    let statements: Vec<&str> = ranges
                        .iter()
                        .map(|range| text[range.clone()].trim())
                        .collect();
                    let query = statements.join(";\n");
                    self.run_query(&query, output, &mut csv_writer, &mut printed_a_block)
                }
            };
            status = status.max(step_status);
            if step_status == Status::CannotContinue {
                break;
            }
        }
        Outcome {
            status,
            exit_requested: false,
        }
    }

    fn run_query(
        &mut self,
        query: &str,
        output: &mut Output<'_>,
        csv_writer: &mut CsvWriter,
        printed_a_block: &mut bool,
    ) -> Status {
        let parameters = QueryParameters {
            database: self.database.as_deref(),
            epoch: self.epoch,
            pretty: self.pretty,
        };
        let started = Instant::now();
        let answer = match self.client.query(query, parameters) {
            Ok(answer) => answer,
            Err(error) => {
                let _ = writeln!(output.err, "ERR: {error}");
                return if error.is_connection_failure() {
                    Status::CannotContinue
                } else {
                    Status::StatementFailed
                };
            }
        };
        let elapsed = started.elapsed();
        let response = match parse_response(&answer.body) {
            Ok(response) => response,
            Err(reason) => {
                let error = ShellError::UnexpectedResponse {
                    host: self.client.base_url().to_owned(),
                    status: answer.status,
                    reason: format!(
                        "{reason}; the answer starts with {:?}",
                        excerpt(&answer.body)
                    ),
                };
                let _ = writeln!(output.err, "ERR: {error}");
                return Status::StatementFailed;
            }
        };
        if self.format == OutputFormat::Json {
            let _ = writeln!(output.out, "{}", answer.body.trim_end());
            for error in response.errors() {
                let _ = writeln!(output.err, "ERR: {error}");
            }
        } else {
            self.print_response(&response, output, csv_writer, printed_a_block);
        }
        let mut status = if response.errors().next().is_some() {
            Status::StatementFailed
        } else {
            Status::Success
        };
        if answer.status >= 400 && status == Status::Success {
            let error = ShellError::UnexpectedResponse {
                host: self.client.base_url().to_owned(),
                status: answer.status,
                reason: format!("the answer starts with {:?}", excerpt(&answer.body)),
            };
            let _ = writeln!(output.err, "ERR: {error}");
            status = Status::StatementFailed;
        }
        if self.timing {
            let _ = writeln!(output.err, "Elapsed: {}", format_duration(elapsed));
        }
        status
    }

    fn print_response(
        &self,
        response: &QueryResponse,
        output: &mut Output<'_>,
        csv_writer: &mut CsvWriter,
        printed_a_block: &mut bool,
    ) {
        if let Some(error) = &response.error {
            let _ = writeln!(output.err, "ERR: {error}");
        }
        for result in &response.results {
            for message in &result.messages {
                let _ = writeln!(output.err, "{}: {}", message.level, message.text);
            }
            let mut text = String::new();
            for series in &result.series {
                match self.format {
                    OutputFormat::Csv => csv_writer.write_series(series, &mut text),
                    _ => {
                        if *printed_a_block {
                            text.push('\n');
                        }
                        text.push_str(&table(series));
                        *printed_a_block = true;
                    }
                }
            }
            if result.partial {
                text.push_str("(partial result: the server has more rows for this statement)\n");
            }
            let _ = output.out.write_all(text.as_bytes());
            let _ = output.out.flush();
            if let Some(error) = &result.error {
                let _ = writeln!(output.err, "ERR: {error}");
            }
        }
    }

    fn run_command(&mut self, command: ShellCommand, output: &mut Output<'_>) -> Status {
        match command {
            ShellCommand::Use(database) => {
                self.database = Some(database.clone());
                if self.interactive {
                    let _ = writeln!(output.out, "Using database {database}");
                    self.refresh_names_or_note(output);
                    if !self.databases.is_empty() && !self.databases.contains(&database) {
                        let _ = writeln!(
                            output.err,
                            "note: the server has no database '{database}' yet; SHOW DATABASES lists those it has"
                        );
                    }
                }
            }
            ShellCommand::Format(Some(format)) => {
                self.format = format;
                self.confirm(output, &format!("Format: {}", format.name()));
            }
            ShellCommand::Format(None) => {
                let _ = writeln!(output.out, "Format: {}", self.format.name());
            }
            ShellCommand::Epoch(Some(setting)) => {
                self.epoch = match setting {
                    EpochSetting::Integer(epoch) => Some(epoch),
                    EpochSetting::Rfc3339 => None,
                };
                let text = format!("Epoch: {}", self.epoch_name());
                self.confirm(output, &text);
            }
            ShellCommand::Epoch(None) => {
                let _ = writeln!(output.out, "Epoch: {}", self.epoch_name());
            }
            ShellCommand::Timing(setting) => {
                if let Some(on) = setting {
                    self.timing = on;
                }
                let text = format!("Timing: {}", on_off(self.timing));
                if setting.is_none() {
                    let _ = writeln!(output.out, "{text}");
                } else {
                    self.confirm(output, &text);
                }
            }
            ShellCommand::Pretty(setting) => {
                if let Some(on) = setting {
                    self.pretty = on;
                }
                let text = format!("Pretty JSON: {}", on_off(self.pretty));
                if setting.is_none() {
                    let _ = writeln!(output.out, "{text}");
                } else {
                    self.confirm(output, &text);
                }
            }
            ShellCommand::Connect(url) => return self.connect(&url, output),
            ShellCommand::History => {
                for (index, entry) in self.history.iter().enumerate() {
                    let _ = writeln!(output.out, "{:>5}  {}", index + 1, entry);
                }
            }
            ShellCommand::Help => {
                let _ = writeln!(output.out, "{HELP_TEXT}");
            }
            ShellCommand::Exit => {}
        }
        Status::Success
    }

    /// Switches to the server at `url` once it answers `/ping`; keeps the old one otherwise.
    fn connect(&mut self, url: &str, output: &mut Output<'_>) -> Status {
        let client = match Client::new(url, self.timeout) {
            Ok(client) => client,
            Err(error) => {
                let _ = writeln!(output.err, "ERR: {error}");
                return Status::StatementFailed;
            }
        };
        match client.ping() {
            Ok(version) => {
                let _ = writeln!(output.out, "{}", connected_line(client.base_url(), version));
                self.client = client;
                self.catalogs.clear();
                self.databases.clear();
                if self.interactive {
                    self.refresh_names_or_note(output);
                }
                Status::Success
            }
            Err(error) => {
                let _ = writeln!(
                    output.err,
                    "ERR: {error}\nStill using {}.",
                    self.client.base_url()
                );
                if error.is_connection_failure() {
                    Status::CannotContinue
                } else {
                    Status::StatementFailed
                }
            }
        }
    }

    fn refresh_names_or_note(&mut self, output: &mut Output<'_>) {
        if let Err(error) = self.refresh_names() {
            let _ = writeln!(
                output.err,
                "note: names for tab completion not loaded: {error}"
            );
        }
    }

    fn confirm(&self, output: &mut Output<'_>, text: &str) {
        if self.interactive {
            let _ = writeln!(output.out, "{text}");
        }
    }

    fn epoch_name(&self) -> &'static str {
        self.epoch.map_or("rfc3339", Epoch::name)
    }
}

/// The line printed once the shell reaches a server.
pub(crate) fn connected_line(url: &str, version: Option<String>) -> String {
    match version {
        Some(version) => format!("Connected to {url} version {version}"),
        None => format!("Connected to {url}"),
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// The start of an answer body, for error messages about answers that are not JSON.
fn excerpt(body: &str) -> &str {
    let mut end = body.len().min(200);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    &body[..end]
}

/// Splits `text` into steps and checks every one; prints every error and returns `None` if
/// there is any, so that nothing of a wrong input runs.
fn plan(text: &str, output: &mut Output<'_>) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut statements: Vec<Range<usize>> = Vec::new();
    let mut failed = false;
    for piece in scan(text).pieces {
        if !piece.has_content {
            continue;
        }
        let piece_text = &text[piece.range.clone()];
        match parse_command(piece_text) {
            Some(command) => {
                if !statements.is_empty() {
                    steps.push(Step::Statements(std::mem::take(&mut statements)));
                }
                match command {
                    Ok(command) => steps.push(Step::Command(command)),
                    Err(error) => {
                        let _ = writeln!(output.err, "ERR: {error}");
                        failed = true;
                    }
                }
            }
            None => {
                if let Err(error) = tally_query::parse_statement(piece_text) {
                    let located = relocate(&error, text, piece.range.start);
                    let _ = writeln!(output.err, "{}", located.render(text));
                    failed = true;
                }
                statements.push(piece.range);
            }
        }
    }
    if !statements.is_empty() {
        steps.push(Step::Statements(statements));
    }
    (!failed).then_some(steps)
}

/// `error`, found in the piece of `text` that starts at byte `offset`, made to point into
/// `text` itself, so that its line, column and caret refer to the whole input.
fn relocate(error: &ParseError, text: &str, offset: usize) -> ParseError {
    let offset = u32::try_from(offset).unwrap_or(u32::MAX);
    let span = Span::new(
        error.span.start.saturating_add(offset),
        error.span.end.saturating_add(offset),
    );
    let mut located =
        ParseError::new(text, span, error.message.clone()).with_expected(error.expected.clone());
    located.found = error.found.clone();
    located
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_text(text: &str) -> (Option<Vec<Step>>, String) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let steps = plan(
            text,
            &mut Output {
                out: &mut out,
                err: &mut err,
            },
        );
        (steps, String::from_utf8(err).unwrap())
    }

    #[test]
    fn consecutive_statements_are_sent_together_and_commands_apart() {
        let text = "SHOW DATABASES; SHOW MEASUREMENTS; use telemetry; SELECT * FROM cpu";
        let (steps, errors) = plan_text(text);
        assert_eq!(errors, "");
        let steps = steps.unwrap();
        assert_eq!(steps.len(), 3);
        assert!(matches!(&steps[0], Step::Statements(ranges) if ranges.len() == 2));
        assert!(matches!(&steps[1], Step::Command(ShellCommand::Use(name)) if name == "telemetry"));
        assert!(
            matches!(&steps[2], Step::Statements(ranges) if text[ranges[0].clone()].trim() == "SELECT * FROM cpu")
        );
    }

    #[test]
    fn a_parse_error_anywhere_stops_the_whole_input_and_points_at_the_word() {
        let text = "SHOW DATABASES;\nSELECT mean(x) WHERE host = 'a'";
        let (steps, errors) = plan_text(text);
        assert!(steps.is_none());
        assert!(errors.contains("at line 2, column 16"), "{errors}");
        assert!(
            errors.contains("SELECT mean(x) WHERE host = 'a'\n               ^^^^^"),
            "{errors}"
        );
    }

    #[test]
    fn a_wrong_command_stops_the_whole_input() {
        let (steps, errors) = plan_text("format xml; SHOW DATABASES");
        assert!(steps.is_none());
        assert!(errors.starts_with("ERR: unknown format 'xml'"), "{errors}");
    }

    #[test]
    fn empty_statements_and_comments_are_skipped() {
        let (steps, errors) = plan_text(";; -- nothing\n; /* at all */");
        assert_eq!(errors, "");
        assert!(steps.unwrap().is_empty());
    }

    #[test]
    fn exit_codes_are_ordered_by_severity() {
        assert!(Status::Success < Status::StatementFailed);
        assert!(Status::StatementFailed < Status::CannotContinue);
        assert_eq!(
            Status::StatementFailed.max(Status::Success),
            Status::StatementFailed
        );
    }
}
