//! The interactive loop: line editing, history, completion and prompts through rustyline, and
//! the reading of scripts from a pipe with the same rules for where a statement ends.

use std::io::{self, BufRead};
use std::path::PathBuf;
use std::process::ExitCode;

use rustyline::Editor;
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use unicode_width::UnicodeWidthStr;

use super::completion::ShellHelper;
use super::input::InputBuffer;
use super::session::{Output, Session, Status, connected_line};

/// How many statements the history file keeps.
const MAX_HISTORY_ENTRIES: usize = 10_000;

/// `$TALLY_HISTORY`, or `~/.tally_history`; `None` when neither can be worked out.
fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TALLY_HISTORY").filter(|path| !path.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::home_dir().map(|home| home.join(".tally_history"))
}

/// `tally:telemetry> `, or `tally> ` with no database selected.
pub(crate) fn prompt(database: Option<&str>) -> String {
    match database {
        Some(database) => format!("tally:{database}> "),
        None => "tally> ".to_owned(),
    }
}

/// The prompt of a continuation line, as wide as the first prompt so that the text lines up.
pub(crate) fn continuation_prompt(database: Option<&str>) -> String {
    let width = UnicodeWidthStr::width(prompt(database).as_str());
    format!("{}-> ", " ".repeat(width.saturating_sub(3)))
}

/// Runs the shell on the terminal until `exit`, `quit` or Ctrl-D.
pub(crate) fn run_interactive(session: &mut Session) -> ExitCode {
    let mut stdout = io::stdout();
    let mut stderr = io::stderr();
    let mut output = Output {
        out: &mut stdout,
        err: &mut stderr,
    };
    let config = Config::builder()
        .max_history_size(MAX_HISTORY_ENTRIES)
        .and_then(|builder| builder.history_ignore_dups(true))
        .map(|builder| {
            builder
                .history_ignore_space(true)
                .auto_add_history(false)
                .completion_type(CompletionType::List)
                .build()
        });
    let editor = config.and_then(Editor::<ShellHelper, FileHistory>::with_config);
    let mut editor = match editor {
        Ok(editor) => editor,
        Err(error) => {
            let _ = writeln!(output.err, "tally: cannot set up the terminal: {error}");
            return ExitCode::from(2);
        }
    };
    editor.set_helper(Some(ShellHelper::default()));

    let history_path = history_path();
    if let Some(path) = &history_path {
        match editor.load_history(path) {
            Ok(()) => {}
            Err(ReadlineError::Io(error)) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                let _ = writeln!(
                    output.err,
                    "note: cannot read the history file {}: {error}",
                    path.display()
                );
            }
        }
    }
    for entry in editor.history().iter() {
        session.record_history(entry.clone());
    }

    let reachable = match session.client().ping() {
        Ok(version) => {
            let greeting = connected_line(session.client().base_url(), version);
            let _ = writeln!(output.out, "{greeting}");
            true
        }
        Err(error) => {
            let _ = writeln!(output.err, "ERR: {error}");
            false
        }
    };
    let _ = writeln!(
        output.out,
        "Type help for the shell commands; exit or Ctrl-D leaves."
    );
    if reachable && let Err(error) = session.refresh_names() {
        let _ = writeln!(
            output.err,
            "note: names for tab completion not loaded: {error}"
        );
    }

    let mut buffer = InputBuffer::default();
    let mut history_write_failed = false;
    loop {
        let prompt_text = if buffer.is_empty() {
            prompt(session.database())
        } else {
            continuation_prompt(session.database())
        };
        if let Some(helper) = editor.helper_mut() {
            helper.context.pending = buffer.pending().to_owned();
            helper.context.databases = session.databases().to_vec();
            helper.context.catalog = session.catalog();
        }
        match editor.readline(&prompt_text) {
            Ok(line) => {
                let Some(entry) = buffer.push_line(&line) else {
                    continue;
                };
                if entry.trim().is_empty() {
                    continue;
                }
                if editor.add_history_entry(entry.as_str()).unwrap_or(false) {
                    session.record_history(entry.clone());
                    if let Some(path) = &history_path
                        && let Err(error) = editor.append_history(path)
                        && !history_write_failed
                    {
                        history_write_failed = true;
                        let _ = writeln!(
                            output.err,
                            "note: cannot write the history file {}: {error}",
                            path.display()
                        );
                    }
                }
                if session.run_text(&entry, &mut output).exit_requested {
                    break;
                }
            }
            // Ctrl-C abandons the statement being typed, all of its lines.
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(error) => {
                let _ = writeln!(output.err, "tally: cannot read the terminal: {error}");
                return ExitCode::from(2);
            }
        }
    }
    ExitCode::SUCCESS
}

/// Runs statements read from `reader` (standard input that is not a terminal) with the same
/// rules as typed input, and returns how the worst of them went. Stops at `exit`, or once the
/// server cannot be reached.
pub(crate) fn run_script(
    session: &mut Session,
    reader: impl BufRead,
    output: &mut Output<'_>,
) -> Status {
    let mut buffer = InputBuffer::default();
    let mut status = Status::Success;
    for line in reader.lines() {
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                let _ = writeln!(output.err, "tally: cannot read standard input: {error}");
                return Status::CannotContinue.max(status);
            }
        };
        let Some(entry) = buffer.push_line(&line) else {
            continue;
        };
        if entry.trim().is_empty() {
            continue;
        }
        let outcome = session.run_text(&entry, output);
        status = status.max(outcome.status);
        if outcome.exit_requested || status == Status::CannotContinue {
            return status;
        }
    }
    // Input that ends inside a quote or parenthesis still runs, so that the parser reports it.
    if !buffer.is_empty() {
        let rest = buffer.pending().trim_end_matches('\n').to_owned();
        status = status.max(session.run_text(&rest, output).status);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_shows_the_database() {
        assert_eq!(prompt(Some("telemetry")), "tally:telemetry> ");
        assert_eq!(prompt(None), "tally> ");
    }

    #[test]
    fn continuation_prompts_line_up_with_the_first_prompt() {
        assert_eq!(continuation_prompt(None), "    -> ");
        let wide = "テレメトリ";
        assert_eq!(
            UnicodeWidthStr::width(continuation_prompt(Some(wide)).as_str()),
            UnicodeWidthStr::width(prompt(Some(wide)).as_str())
        );
        assert_eq!(continuation_prompt(Some("db")), "       -> ");
    }
}
