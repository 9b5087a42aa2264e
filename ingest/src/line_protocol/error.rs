//! Errors of the line protocol parser and writer.

use tally_engine::PointError;

use super::Precision;

/// The longest excerpt of input text that an error keeps; longer text is cut and ends in `…`,
/// so that a body of garbage cannot make the error list many times larger than the body.
const MAX_EXCERPT_CHARS: usize = 64;

/// One rejected line: where it is and why it was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct LineError {
    /// 1-based physical line of the body (a string field that spans lines counts each line).
    pub line: u32,
    /// 1-based column within that line, counted in Unicode characters.
    pub column: u32,
    pub kind: LineErrorKind,
}

/// Why a line was rejected. Texts and keys quoted from the input are cut to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineErrorKind {
    #[error("missing measurement name before ','")]
    MissingMeasurement,
    #[error("missing tag key after ','")]
    MissingTagKey,
    #[error("tag {key:?} has no value; write key=value")]
    MissingTagValue { key: String },
    #[error("tag {key:?} has an unescaped '=' in its value; write it as '\\='")]
    UnescapedEqualsInTagValue { key: String },
    #[error("missing fields; a point needs at least one field such as value=1")]
    MissingFields,
    #[error("missing field key before '='")]
    MissingFieldKey,
    #[error("field {key:?} has no value; write key=value")]
    MissingFieldValue { key: String },
    #[error("string field {key:?} has no closing '\"'")]
    UnterminatedString { key: String },
    #[error("unexpected {text:?} after the closing '\"' of string field {key:?}")]
    CharactersAfterString { key: String, text: String },
    #[error(
        "field {key:?} has invalid value {text:?}; expected a float (1.5), an integer (1i), \
         an unsigned integer (1u), a string (\"text\") or a boolean (true)"
    )]
    InvalidFieldValue { key: String, text: String },
    #[error("field {key:?} has invalid number {text:?}")]
    InvalidNumber { key: String, text: String },
    #[error(
        "field {key:?}: float {text:?} is out of range (magnitude above 1.7976931348623157e308)"
    )]
    FloatOutOfRange { key: String, text: String },
    #[error(
        "field {key:?}: integer {text:?} is out of range -9223372036854775808 to 9223372036854775807"
    )]
    IntegerOutOfRange { key: String, text: String },
    #[error("field {key:?}: unsigned integer {text:?} is out of range 0 to 18446744073709551615")]
    UnsignedOutOfRange { key: String, text: String },
    #[error(
        "field {key:?} has invalid boolean {text:?}; \
         expected t, T, true, True, TRUE, f, F, false, False or FALSE"
    )]
    InvalidBoolean { key: String, text: String },
    #[error("invalid timestamp {text:?}; expected an integer such as 1700000000000000000")]
    InvalidTimestamp { text: String },
    #[error(
        "timestamp {text} with precision {} is outside the range \
         -9223372036854775806 to 9223372036854775806 nanoseconds",
        .precision.unit()
    )]
    TimestampOutOfRange { text: String, precision: Precision },
    #[error("unexpected {text:?} after the timestamp")]
    TrailingCharacters { text: String },
    #[error("duplicate tag key {key:?}")]
    DuplicateTagKey { key: String },
    #[error("duplicate field key {key:?}")]
    DuplicateFieldKey { key: String },
    #[error("{key:?} cannot be a tag or field key: it names the time column in queries")]
    ReservedKey { key: String },
    #[error("invalid UTF-8")]
    InvalidUtf8,
    #[error("line of {len} bytes is longer than the limit of {limit} bytes")]
    LineTooLong { len: usize, limit: usize },
    /// A check of the engine's [`tally_engine::PointBatch::finish_point`]: name length limits,
    /// string length limit, tag count limit.
    #[error(transparent)]
    Point(PointError),
}

impl From<PointError> for LineErrorKind {
    fn from(error: PointError) -> LineErrorKind {
        match error {
            PointError::DuplicateTagKey { key } => {
                LineErrorKind::DuplicateTagKey { key: excerpt(&key) }
            }
            PointError::DuplicateFieldKey { key } => {
                LineErrorKind::DuplicateFieldKey { key: excerpt(&key) }
            }
            PointError::EmptyMeasurement => LineErrorKind::MissingMeasurement,
            PointError::StringTooLong { key, len, limit } => {
                LineErrorKind::Point(PointError::StringTooLong {
                    key: excerpt(&key),
                    len,
                    limit,
                })
            }
            PointError::EmptyTagValue { key } => {
                LineErrorKind::MissingTagValue { key: excerpt(&key) }
            }
            other => LineErrorKind::Point(other),
        }
    }
}

/// Why [`super::write_line`] cannot write a point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteLineError {
    #[error("{part} {name:?} cannot be written in line protocol: {reason}")]
    UnwritableName {
        part: NamePart,
        name: String,
        reason: &'static str,
    },
    #[error("no field can be written (NaN and infinite floats are skipped)")]
    NoWritableFields,
    #[error(
        "timestamp {timestamp} is outside the range \
         -9223372036854775806 to 9223372036854775806 nanoseconds"
    )]
    TimestampOutOfRange { timestamp: i64 },
}

/// Which name of a point an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NamePart {
    Measurement,
    TagKey,
    TagValue,
    FieldKey,
}

impl std::fmt::Display for NamePart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NamePart::Measurement => "measurement",
            NamePart::TagKey => "tag key",
            NamePart::TagValue => "tag value",
            NamePart::FieldKey => "field key",
        })
    }
}

/// `text` cut to [`MAX_EXCERPT_CHARS`] characters.
pub(crate) fn excerpt(text: &str) -> String {
    match text.char_indices().nth(MAX_EXCERPT_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => {
            let mut short = String::with_capacity(cut + 3);
            short.push_str(&text[..cut]);
            short.push('…');
            short
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_keeps_short_text_and_cuts_long_text_at_a_character_boundary() {
        assert_eq!(excerpt("abc"), "abc");
        let long: String = "é".repeat(100);
        let short = excerpt(&long);
        assert_eq!(short.chars().count(), MAX_EXCERPT_CHARS + 1);
        assert!(short.ends_with('…'));
    }

    #[test]
    fn line_error_display_names_line_column_and_reason() {
        let error = LineError {
            line: 3,
            column: 7,
            kind: LineErrorKind::InvalidTimestamp { text: "12a".into() },
        };
        assert_eq!(
            error.to_string(),
            "line 3, column 7: invalid timestamp \"12a\"; expected an integer such as \
             1700000000000000000"
        );
    }

    #[test]
    fn timestamp_out_of_range_names_the_precision_unit() {
        let kind = LineErrorKind::TimestampOutOfRange {
            text: "9223372036855".into(),
            precision: Precision::Milliseconds,
        };
        assert_eq!(
            kind.to_string(),
            "timestamp 9223372036855 with precision ms is outside the range \
             -9223372036854775806 to 9223372036854775806 nanoseconds"
        );
    }
}
