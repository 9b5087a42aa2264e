//! The shell's own commands (`use`, `format`, `epoch`, ...), told apart from query statements
//! by their first word: no statement of the query language starts with one of these words.

use super::cli::{Epoch, OutputFormat};
use super::error::ShellError;

/// The command words, for `help` and for completion.
pub(crate) const COMMAND_NAMES: [&str; 10] = [
    "use", "format", "epoch", "timing", "pretty", "connect", "history", "help", "exit", "quit",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ShellCommand {
    /// `use <db>`: run the next queries against `db`.
    Use(String),
    /// `format [table|csv|json]`; without an argument, shows the current format.
    Format(Option<OutputFormat>),
    /// `epoch [ns|us|ms|s|rfc3339]`; `None` shows the current setting.
    Epoch(Option<EpochSetting>),
    /// `timing [on|off]`; without an argument, shows the current setting.
    Timing(Option<bool>),
    /// `pretty [on|off]`: indented JSON in `format json`.
    Pretty(Option<bool>),
    /// `connect <url>`: talk to another server from now on.
    Connect(String),
    History,
    Help,
    Exit,
}

/// What `epoch` switches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EpochSetting {
    Integer(Epoch),
    Rfc3339,
}

fn invalid(message: String) -> ShellError {
    ShellError::InvalidCommand { message }
}

/// The first word of `text`, after leading blanks.
fn split_first_word(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.find(char::is_whitespace) {
        Some(end) => (&text[..end], text[end..].trim_start()),
        None => (text, ""),
    }
}

/// Reads a shell command; `None` if `text` does not start with a command word, so that it is a
/// query statement.
pub(crate) fn parse_command(text: &str) -> Option<Result<ShellCommand, ShellError>> {
    let (word, argument) = split_first_word(text);
    let word = word.to_ascii_lowercase();
    let command = match word.as_str() {
        "use" => parse_name(argument, "use").map(ShellCommand::Use),
        "format" => optional_argument(argument, "format", |value| {
            OutputFormat::from_name(value).ok_or_else(|| {
                invalid(format!(
                    "unknown format '{value}'; expected table, csv or json"
                ))
            })
        })
        .map(ShellCommand::Format),
        "epoch" => optional_argument(argument, "epoch", |value| {
            if value.eq_ignore_ascii_case("rfc3339") || value.eq_ignore_ascii_case("off") {
                return Ok(EpochSetting::Rfc3339);
            }
            Epoch::from_name(value)
                .map(EpochSetting::Integer)
                .ok_or_else(|| {
                    invalid(format!(
                        "unknown epoch unit '{value}'; expected ns, us, ms, s or rfc3339"
                    ))
                })
        })
        .map(ShellCommand::Epoch),
        "timing" => optional_argument(argument, "timing", on_or_off).map(ShellCommand::Timing),
        "pretty" => optional_argument(argument, "pretty", on_or_off).map(ShellCommand::Pretty),
        "connect" => {
            if argument.is_empty() || argument.contains(char::is_whitespace) {
                Err(invalid(
                    "connect takes one URL, such as: connect http://127.0.0.1:8086".to_owned(),
                ))
            } else {
                Ok(ShellCommand::Connect(argument.to_owned()))
            }
        }
        "history" => no_argument(argument, "history", ShellCommand::History),
        "help" => Ok(ShellCommand::Help),
        "exit" | "quit" => no_argument(argument, &word, ShellCommand::Exit),
        _ => return None,
    };
    Some(command)
}

fn no_argument(
    argument: &str,
    name: &str,
    command: ShellCommand,
) -> Result<ShellCommand, ShellError> {
    if argument.is_empty() {
        Ok(command)
    } else {
        Err(invalid(format!(
            "{name} takes no argument, found '{argument}'"
        )))
    }
}

fn optional_argument<T>(
    argument: &str,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, ShellError>,
) -> Result<Option<T>, ShellError> {
    if argument.is_empty() {
        return Ok(None);
    }
    if argument.contains(char::is_whitespace) {
        return Err(invalid(format!(
            "{name} takes one argument, found '{argument}'"
        )));
    }
    parse(argument).map(Some)
}

fn on_or_off(value: &str) -> Result<bool, ShellError> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(invalid(format!("expected on or off, found '{value}'"))),
    }
}

/// A database name: one bare word, or a double-quoted name that may hold blanks and `\"`.
fn parse_name(argument: &str, command: &str) -> Result<String, ShellError> {
    if argument.is_empty() {
        return Err(invalid(format!(
            "{command} needs a database name: {command} <db>"
        )));
    }
    if let Some(quoted) = argument.strip_prefix('"') {
        let mut name = String::new();
        let mut characters = quoted.chars();
        while let Some(character) = characters.next() {
            match character {
                '\\' => match characters.next() {
                    Some(escaped) => name.push(escaped),
                    None => break,
                },
                '"' => {
                    let rest: String = characters.collect();
                    if !rest.trim().is_empty() {
                        return Err(invalid(format!(
                            "{command} takes one database name, found '{}' after it",
                            rest.trim()
                        )));
                    }
                    return Ok(name);
                }
                other => name.push(other),
            }
        }
        return Err(invalid(format!(
            "the database name {argument} has no closing '\"'"
        )));
    }
    if argument.contains(char::is_whitespace) {
        return Err(invalid(format!(
            "{command} takes one database name; quote a name with blanks: {command} \"{argument}\""
        )));
    }
    Ok(argument.to_owned())
}

/// The text `help` prints.
pub(crate) const HELP_TEXT: &str = "\
Statements (SELECT, SHOW, CREATE, DROP, DELETE, EXPLAIN) are sent to the server.
A statement ends at the end of the line unless a quote or parenthesis is still open or the
line ends with \\; separate several statements on one line with ;.

Shell commands:
  use <db>                      run the next queries against database <db>
  format [table|csv|json]       how results are printed (no argument: show it)
  epoch [ns|us|ms|s|rfc3339]    integer timestamps in a unit, or RFC 3339 strings
  timing [on|off]               print how long each query took
  pretty [on|off]               indented JSON in format json
  connect <url>                 use another server, such as http://127.0.0.1:8086
  history                       list the statements typed so far
  help                          this text
  exit, quit or Ctrl-D          leave the shell

Tab completes keywords, functions, and the measurements, tag keys and field keys of the
current database. Ctrl-C abandons the line being typed.";

#[cfg(test)]
mod tests {
    use super::*;

    fn command(text: &str) -> ShellCommand {
        parse_command(text).unwrap().unwrap()
    }

    fn command_error(text: &str) -> String {
        parse_command(text).unwrap().unwrap_err().to_string()
    }

    #[test]
    fn statements_are_not_commands() {
        assert!(parse_command("SELECT * FROM cpu").is_none());
        assert!(parse_command("SHOW DATABASES").is_none());
        assert!(parse_command("user").is_none());
        assert!(parse_command("").is_none());
    }

    #[test]
    fn use_takes_a_bare_or_quoted_name_in_any_case() {
        assert_eq!(
            command("use telemetry"),
            ShellCommand::Use("telemetry".into())
        );
        assert_eq!(
            command("  USE   telemetry  "),
            ShellCommand::Use("telemetry".into())
        );
        assert_eq!(command("use \"my db\""), ShellCommand::Use("my db".into()));
        assert_eq!(command(r#"use "a\"b""#), ShellCommand::Use("a\"b".into()));
    }

    #[test]
    fn use_without_a_single_name_is_refused() {
        assert!(command_error("use").contains("needs a database name"));
        assert!(command_error("use my db").contains("quote a name with blanks"));
        assert!(command_error("use \"my db").contains("no closing"));
        assert!(command_error("use \"a\" b").contains("found 'b'"));
    }

    #[test]
    fn format_epoch_timing_and_pretty_read_their_settings() {
        assert_eq!(
            command("format csv"),
            ShellCommand::Format(Some(OutputFormat::Csv))
        );
        assert_eq!(
            command("FORMAT JSON"),
            ShellCommand::Format(Some(OutputFormat::Json))
        );
        assert_eq!(command("format"), ShellCommand::Format(None));
        assert_eq!(
            command("epoch ms"),
            ShellCommand::Epoch(Some(EpochSetting::Integer(Epoch::Milliseconds)))
        );
        assert_eq!(
            command("epoch rfc3339"),
            ShellCommand::Epoch(Some(EpochSetting::Rfc3339))
        );
        assert_eq!(command("timing on"), ShellCommand::Timing(Some(true)));
        assert_eq!(command("timing off"), ShellCommand::Timing(Some(false)));
        assert_eq!(command("pretty on"), ShellCommand::Pretty(Some(true)));
    }

    #[test]
    fn bad_settings_name_what_is_accepted() {
        assert!(command_error("format xml").contains("expected table, csv or json"));
        assert!(command_error("epoch days").contains("expected ns, us, ms, s or rfc3339"));
        assert!(command_error("timing maybe").contains("expected on or off"));
        assert!(command_error("format csv json").contains("takes one argument"));
    }

    #[test]
    fn connect_exit_and_help_are_recognised() {
        assert_eq!(
            command("connect http://10.0.0.5:8086"),
            ShellCommand::Connect("http://10.0.0.5:8086".into())
        );
        assert!(command_error("connect").contains("takes one URL"));
        assert_eq!(command("exit"), ShellCommand::Exit);
        assert_eq!(command("QUIT"), ShellCommand::Exit);
        assert!(command_error("exit now").contains("takes no argument"));
        assert_eq!(command("help"), ShellCommand::Help);
        assert_eq!(command("history"), ShellCommand::History);
    }
}
