//! The one error type of the shell, and the exit code each error stands for.

use std::time::Duration;

use super::cli::format_duration;

/// What can go wrong outside the statements themselves: bad options and commands, the network,
/// the server's answer. Errors inside a statement (it does not parse, the server refuses it)
/// are printed where they happen and only change the exit code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShellError {
    #[error("invalid duration '{text}': {reason}")]
    InvalidDuration { text: String, reason: String },

    #[error("invalid --host '{url}': {reason} (expected a URL such as http://127.0.0.1:8086)")]
    InvalidHost { url: String, reason: String },

    #[error(
        "cannot use '{url}': https is not supported yet; use http://, or reach the server through a local TLS proxy"
    )]
    HttpsNotSupported { url: String },

    #[error(
        "cannot connect to {host}: {reason}; is tallyd running there? Start it, or point the shell elsewhere with --host URL, TALLY_HOST or `connect URL`"
    )]
    CannotConnect { host: String, reason: String },

    #[error("no answer from {host} within {}; raise --timeout or narrow the query", format_duration(*.after))]
    TimedOut { host: String, after: Duration },

    #[error("lost the connection to {host}: {reason}")]
    Transport { host: String, reason: String },

    #[error("unexpected answer from {host} (HTTP {status}): {reason}")]
    UnexpectedResponse {
        host: String,
        status: u16,
        reason: String,
    },

    #[error(
        "the answer from {host} is larger than {limit_bytes} bytes; add a LIMIT or a narrower time range"
    )]
    ResponseTooLarge { host: String, limit_bytes: u64 },

    #[error("{message}")]
    InvalidCommand { message: String },
}

impl ShellError {
    /// Whether the error means the server was never reached, which ends a script with exit
    /// code 2 rather than 1.
    pub fn is_connection_failure(&self) -> bool {
        matches!(self, ShellError::CannotConnect { .. })
    }
}
