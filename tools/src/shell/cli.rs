//! The command line of `tally`, and the values its options and shell commands share.

use std::fmt;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use super::error::ShellError;

/// The text `--help` ends with: examples and the exit codes scripts can rely on.
const AFTER_HELP: &str = "\
Examples:
  tally                          shell on http://127.0.0.1:8086
  tally -d telemetry             shell with database `telemetry` selected
  tally -d telemetry -e 'SHOW MEASUREMENTS'
  tally -d telemetry --format csv \\
        -e 'SELECT mean(usage_user) FROM cpu WHERE time > now() - 1h GROUP BY time(5m)'
  tally --host http://10.0.0.5:8086 --format json --pretty --epoch ms \\
        -e 'SELECT * FROM llm LIMIT 10'
  tally -d telemetry < report.iql      run a file, one statement per line
  tally report llm-usage --from 2026-11-23 --to 2026-11-30 --format pdf -o usage.pdf

Exit codes (with -e, or with statements on a pipe):
  0  every statement succeeded
  1  a statement failed: it did not parse (then nothing is sent),
     or the server answered with an error
  2  usage error, or the server could not be reached

In the shell, `help` lists the shell commands (use, format, epoch, timing, connect, exit).
Only plain http:// is supported for now; reach https through a local TLS proxy.";

/// `tally`: runs queries against tallyd, interactively or from `-e`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "tally",
    version,
    about = "Tally's query shell: runs queries against tallyd and prints the results.",
    after_help = AFTER_HELP
)]
pub struct ShellArgs {
    /// Base URL of tallyd's HTTP API (plain http:// only).
    #[arg(
        long,
        value_name = "URL",
        env = "TALLY_HOST",
        default_value = "http://127.0.0.1:8086"
    )]
    pub host: String,

    /// Database that queries run against (the shell command `use DB` changes it).
    #[arg(short = 'd', long, value_name = "DB")]
    pub database: Option<String>,

    /// Run these statements (separated by `;`), print the results and exit.
    #[arg(short = 'e', long, value_name = "QUERY")]
    pub execute: Option<String>,

    /// How results are printed.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,

    /// Print times as integers in this unit since the Unix epoch instead of RFC 3339 strings.
    #[arg(long, value_enum, value_name = "UNIT")]
    pub epoch: Option<Epoch>,

    /// Ask the server for indented JSON (used by --format json).
    #[arg(long)]
    pub pretty: bool,

    /// Give up on a request after this long (such as 500ms, 30s, 5m); 0 waits forever.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_timeout)]
    pub timeout: RequestTimeout,

    /// A subcommand instead of the shell: `tally report NAME` renders a report.
    #[command(subcommand)]
    pub command: Option<super::report::ShellCommand>,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum OutputFormat {
    /// Aligned columns, one block per series.
    Table,
    /// Comma-separated values with `name` and `tags` columns first.
    Csv,
    /// The server's JSON, unchanged.
    Json,
}

impl OutputFormat {
    pub(crate) fn name(self) -> &'static str {
        match self {
            OutputFormat::Table => "table",
            OutputFormat::Csv => "csv",
            OutputFormat::Json => "json",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<OutputFormat> {
        OutputFormat::value_variants()
            .iter()
            .copied()
            .find(|format| format.name().eq_ignore_ascii_case(name))
    }
}

/// The unit of integer timestamps, as the `epoch` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum Epoch {
    #[value(name = "ns")]
    Nanoseconds,
    #[value(name = "us", alias = "u")]
    Microseconds,
    #[value(name = "ms")]
    Milliseconds,
    #[value(name = "s")]
    Seconds,
}

impl Epoch {
    /// The spelling a person types and the shell shows.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Epoch::Nanoseconds => "ns",
            Epoch::Microseconds => "us",
            Epoch::Milliseconds => "ms",
            Epoch::Seconds => "s",
        }
    }

    /// The value of the `epoch` parameter of `/query`, which spells microseconds `u` as
    /// InfluxDB does.
    pub(crate) fn query_parameter(self) -> &'static str {
        match self {
            Epoch::Microseconds => "u",
            other => other.name(),
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Epoch> {
        match name.to_ascii_lowercase().as_str() {
            "ns" => Some(Epoch::Nanoseconds),
            "us" | "u" | "µs" => Some(Epoch::Microseconds),
            "ms" => Some(Epoch::Milliseconds),
            "s" => Some(Epoch::Seconds),
            _ => None,
        }
    }
}

/// How long one request may take; `None` waits forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTimeout(pub Option<Duration>);

impl fmt::Display for RequestTimeout {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => formatter.write_str("no timeout"),
            Some(duration) => write!(formatter, "{}", format_duration(duration)),
        }
    }
}

fn parse_timeout(text: &str) -> Result<RequestTimeout, ShellError> {
    let duration = parse_duration(text)?;
    Ok(RequestTimeout((!duration.is_zero()).then_some(duration)))
}

/// Parses a duration such as `500ms`, `30s`, `1m30s` or `0`, in units ns, us, ms, s, m and h.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, ShellError> {
    let invalid = |reason: &str| ShellError::InvalidDuration {
        text: text.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    if trimmed.is_empty() {
        return Err(invalid("it is empty"));
    }
    let mut total_nanos: u128 = 0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(invalid("expected a number before each unit"));
        }
        let (digits, after_digits) = rest.split_at(digits_end);
        let unit_end = after_digits
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after_digits.len());
        let (unit, after_unit) = after_digits.split_at(unit_end);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(invalid("a unit is missing (one of ns, us, ms, s, m, h)")),
            _ => {
                return Err(invalid(
                    "unknown unit (expected one of ns, us, ms, s, m, h)",
                ));
            }
        };
        let count: u128 = digits
            .parse()
            .map_err(|_| invalid("the number is too large"))?;
        total_nanos = count
            .checked_mul(unit_nanos)
            .and_then(|nanos| nanos.checked_add(total_nanos))
            .ok_or_else(|| invalid("the duration is too long"))?;
        rest = after_unit;
    }
    let seconds = u64::try_from(total_nanos / 1_000_000_000)
        .map_err(|_| invalid("the duration is too long"))?;
    let subsecond_nanos = u32::try_from(total_nanos % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(seconds, subsecond_nanos))
}

/// A duration the way a person reads it: `0.052ms`, `250ms`, `12.3ms`, `30s`, `1.500s`, `2m30s`.
pub(crate) fn format_duration(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1000.0;
    if duration < Duration::from_millis(1) {
        format!("{millis:.3}ms")
    } else if duration < Duration::from_secs(1) {
        if duration.subsec_nanos().is_multiple_of(1_000_000) {
            format!("{}ms", duration.subsec_millis())
        } else {
            format!("{millis:.1}ms")
        }
    } else if duration < Duration::from_secs(60) {
        if duration.subsec_nanos() == 0 {
            format!("{}s", duration.as_secs())
        } else {
            format!("{:.3}s", duration.as_secs_f64())
        }
    } else {
        let seconds = duration.as_secs();
        format!("{}m{}s", seconds / 60, seconds % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_single_and_compound_units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("15us").unwrap(), Duration::from_micros(15));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn durations_without_a_known_unit_are_refused_with_the_reason() {
        let error = parse_duration("30").unwrap_err().to_string();
        assert!(
            error.contains("'30'") && error.contains("unit is missing"),
            "{error}"
        );
        let error = parse_duration("3d").unwrap_err().to_string();
        assert!(error.contains("unknown unit"), "{error}");
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999999999999999999999999h").is_err());
    }

    #[test]
    fn durations_print_in_the_unit_that_reads_best() {
        assert_eq!(format_duration(Duration::from_micros(52)), "0.052ms");
        assert_eq!(format_duration(Duration::from_millis(700)), "700ms");
        assert_eq!(format_duration(Duration::from_micros(12_345)), "12.3ms");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_millis(1_500)), "1.500s");
        assert_eq!(format_duration(Duration::from_secs(150)), "2m30s");
    }

    #[test]
    fn a_zero_timeout_means_waiting_forever() {
        assert_eq!(parse_timeout("0s").unwrap(), RequestTimeout(None));
        assert_eq!(
            parse_timeout("5s").unwrap(),
            RequestTimeout(Some(Duration::from_secs(5)))
        );
    }

    #[test]
    fn epoch_names_map_to_the_query_parameter_influxdb_uses() {
        assert_eq!(Epoch::from_name("us"), Some(Epoch::Microseconds));
        assert_eq!(Epoch::from_name("u"), Some(Epoch::Microseconds));
        assert_eq!(Epoch::Microseconds.query_parameter(), "u");
        assert_eq!(Epoch::from_name("MS"), Some(Epoch::Milliseconds));
        assert_eq!(Epoch::from_name("d"), None);
    }

    #[test]
    fn command_line_defaults_match_the_documentation() {
        let args = ShellArgs::try_parse_from(["tally"]).unwrap();
        assert_eq!(args.format, OutputFormat::Table);
        assert_eq!(args.epoch, None);
        assert_eq!(args.timeout, RequestTimeout(Some(Duration::from_secs(60))));
        let args = ShellArgs::try_parse_from([
            "tally",
            "-d",
            "telemetry",
            "-e",
            "SHOW DATABASES",
            "--format",
            "csv",
            "--epoch",
            "ms",
            "--timeout",
            "2s",
        ])
        .unwrap();
        assert_eq!(args.database.as_deref(), Some("telemetry"));
        assert_eq!(args.execute.as_deref(), Some("SHOW DATABASES"));
        assert_eq!(args.format, OutputFormat::Csv);
        assert_eq!(args.epoch, Some(Epoch::Milliseconds));
    }

    #[test]
    fn command_line_rejects_an_unknown_format() {
        assert!(ShellArgs::try_parse_from(["tally", "--format", "xml"]).is_err());
        assert!(ShellArgs::try_parse_from(["tally", "--timeout", "soon"]).is_err());
    }
}
