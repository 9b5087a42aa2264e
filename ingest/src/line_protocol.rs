//! The InfluxDB line protocol: a zero-copy parser that fills a [`PointBatch`], and a writer.
//!
//! ```text
//! measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [timestamp]
//! ```
//!
//! The reference for every case is InfluxDB 1.x; `docs/line-protocol.md` gives the syntax, every
//! error, and the few places where Tally deliberately differs (CRLF line ends, `1u` unsigned
//! integers, duplicate field keys, invalid UTF-8, text after a closing quote, `time` as a key).
//!
//! Invariants: the parser never panics and never allocates for a name or string that needs no
//! unescaping (it borrows slices of the body); a bad line is reported with its line, column and
//! reason and never changes how any other line parses; `parse(write(x)) == x` for every point
//! that [`write_line`] accepts.

mod error;
mod parser;
mod writer;

pub use error::{LineError, LineErrorKind, NamePart, WriteLineError};
pub use writer::{write_float, write_float_json, write_line};

use tally_engine::PointBatch;

/// The unit of the timestamps in a body, chosen by the `precision` query parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    Minutes,
    Hours,
}

impl Precision {
    /// Parses the `precision=` value of the v1 write API: `n`, `ns`, `u`, `us`, `µ`, `ms`, `s`,
    /// `m`, `h`, and the empty string for nanoseconds.
    ///
    /// InfluxDB 1.x reads `n`, `u`, `ms`, `s`, `m` and `h` and silently takes any other value as
    /// nanoseconds; Tally refuses unknown values (`None`) instead of storing wrong times, and
    /// reads `us`/`µ` as microseconds, which is what a client sending them means.
    pub fn from_v1(value: &str) -> Option<Precision> {
        Some(match value {
            "" | "n" | "ns" => Precision::Nanoseconds,
            // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU look alike; accept both.
            "u" | "us" | "\u{b5}" | "\u{3bc}" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            "m" => Precision::Minutes,
            "h" => Precision::Hours,
            _ => return None,
        })
    }

    /// Parses the `precision=` value of the v2 write API: `ns`, `us`, `ms`, `s`, and the empty
    /// string for nanoseconds.
    pub fn from_v2(value: &str) -> Option<Precision> {
        Some(match value {
            "" | "ns" => Precision::Nanoseconds,
            "us" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            _ => return None,
        })
    }

    /// Nanoseconds in one unit.
    pub fn nanos(self) -> i64 {
        match self {
            Precision::Nanoseconds => 1,
            Precision::Microseconds => 1_000,
            Precision::Milliseconds => 1_000_000,
            Precision::Seconds => 1_000_000_000,
            Precision::Minutes => 60 * 1_000_000_000,
            Precision::Hours => 3_600 * 1_000_000_000,
        }
    }

    /// The short name of the unit: `ns`, `us`, `ms`, `s`, `m` or `h`.
    pub fn unit(self) -> &'static str {
        match self {
            Precision::Nanoseconds => "ns",
            Precision::Microseconds => "us",
            Precision::Milliseconds => "ms",
            Precision::Seconds => "s",
            Precision::Minutes => "m",
            Precision::Hours => "h",
        }
    }
}

/// The smallest timestamp a line may carry, in nanoseconds (InfluxDB's `MinNanoTime`).
pub const MIN_TIMESTAMP_NS: i64 = i64::MIN + 2;
/// The largest timestamp a line may carry, in nanoseconds (InfluxDB's `MaxNanoTime`).
pub const MAX_TIMESTAMP_NS: i64 = i64::MAX - 1;
/// The default for [`ParseOptions::max_line_bytes`]: 1 MiB, far above any real point (names
/// are limited to 16 KiB and strings to 64 KiB by the engine) and small enough that one line
/// cannot hold a parser for long.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
/// The default for [`ParseOptions::max_errors`].
pub const DEFAULT_MAX_ERRORS: usize = 1_000;

/// How [`parse_lines`] reads a body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseOptions {
    /// The unit of the timestamps in the body.
    pub precision: Precision,
    /// The time of lines without a timestamp, in nanoseconds (normally the server's clock).
    /// As in InfluxDB, it is truncated to a whole number of `precision` units.
    pub default_timestamp_ns: i64,
    /// Longer lines are rejected with [`LineErrorKind::LineTooLong`].
    pub max_line_bytes: usize,
    /// Errors past this many are counted in [`ParseReport::errors_omitted`] but not kept, so
    /// that a large body of garbage cannot make a larger list of errors.
    pub max_errors: usize,
}

impl ParseOptions {
    /// Nanosecond precision, the default limits, and `default_timestamp_ns` for lines without a
    /// timestamp.
    pub fn new(default_timestamp_ns: i64) -> ParseOptions {
        ParseOptions {
            precision: Precision::Nanoseconds,
            default_timestamp_ns,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_errors: DEFAULT_MAX_ERRORS,
        }
    }

    pub fn with_precision(mut self, precision: Precision) -> ParseOptions {
        self.precision = precision;
        self
    }
}

/// What [`parse_lines`] did with a body.
///
/// Every counted line either became a point or was rejected:
/// `lines_total == points + errors.len() + errors_omitted`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParseReport {
    /// Lines that are neither blank nor comments.
    pub lines_total: u32,
    /// Points added to the batch.
    pub points: u32,
    /// Rejected lines, in body order, at most [`ParseOptions::max_errors`].
    pub errors: Vec<LineError>,
    /// Rejected lines beyond [`ParseOptions::max_errors`].
    pub errors_omitted: u32,
}

impl ParseReport {
    /// Rejected lines, kept or not.
    pub fn lines_rejected(&self) -> u32 {
        u32::try_from(self.errors.len())
            .unwrap_or(u32::MAX)
            .saturating_add(self.errors_omitted)
    }
}

/// Parses every line of `body` into `batch`; for each point added, pushes its 1-based line
/// number to `point_lines`, so that a caller can map an engine rejection of point `i` back to
/// its line. Valid lines are added even when others fail. Never panics.
pub fn parse_lines<'a>(
    body: &'a [u8],
    options: &ParseOptions,
    batch: &mut PointBatch<'a>,
    point_lines: &mut Vec<u32>,
) -> ParseReport {
    parser::parse(body, options, batch, point_lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_precision_accepts_influxdb_names_and_microsecond_spellings() {
        assert_eq!(Precision::from_v1(""), Some(Precision::Nanoseconds));
        assert_eq!(Precision::from_v1("n"), Some(Precision::Nanoseconds));
        assert_eq!(Precision::from_v1("ns"), Some(Precision::Nanoseconds));
        assert_eq!(Precision::from_v1("u"), Some(Precision::Microseconds));
        assert_eq!(Precision::from_v1("us"), Some(Precision::Microseconds));
        assert_eq!(Precision::from_v1("µ"), Some(Precision::Microseconds));
        assert_eq!(Precision::from_v1("μ"), Some(Precision::Microseconds));
        assert_eq!(Precision::from_v1("ms"), Some(Precision::Milliseconds));
        assert_eq!(Precision::from_v1("s"), Some(Precision::Seconds));
        assert_eq!(Precision::from_v1("m"), Some(Precision::Minutes));
        assert_eq!(Precision::from_v1("h"), Some(Precision::Hours));
        assert_eq!(Precision::from_v1("MS"), None);
        assert_eq!(Precision::from_v1("rfc3339"), None);
    }

    #[test]
    fn v2_precision_accepts_only_the_four_v2_names() {
        assert_eq!(Precision::from_v2(""), Some(Precision::Nanoseconds));
        assert_eq!(Precision::from_v2("ns"), Some(Precision::Nanoseconds));
        assert_eq!(Precision::from_v2("us"), Some(Precision::Microseconds));
        assert_eq!(Precision::from_v2("ms"), Some(Precision::Milliseconds));
        assert_eq!(Precision::from_v2("s"), Some(Precision::Seconds));
        assert_eq!(Precision::from_v2("n"), None);
        assert_eq!(Precision::from_v2("u"), None);
        assert_eq!(Precision::from_v2("m"), None);
        assert_eq!(Precision::from_v2("h"), None);
    }

    #[test]
    fn precision_nanos_are_the_unit_lengths() {
        assert_eq!(Precision::Nanoseconds.nanos(), 1);
        assert_eq!(Precision::Microseconds.nanos(), 1_000);
        assert_eq!(Precision::Milliseconds.nanos(), 1_000_000);
        assert_eq!(Precision::Seconds.nanos(), 1_000_000_000);
        assert_eq!(Precision::Minutes.nanos(), 60_000_000_000);
        assert_eq!(Precision::Hours.nanos(), 3_600_000_000_000);
    }
}
