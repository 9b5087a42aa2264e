//! Errors of the exposition parser: one per rejected line, with its position and reason.

/// The longest excerpt of input text that an error keeps; longer text is cut and ends in `…`,
/// so that a body of garbage cannot make the error list many times larger than the body.
const MAX_EXCERPT_CHARS: usize = 64;

/// One rejected line of an exposition: where it is and why it was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {kind}")]
pub struct ExpositionError {
    /// 1-based line of the body.
    pub line: u32,
    /// 1-based column within that line, counted in bytes (exposition names are ASCII).
    pub column: u32,
    pub kind: ExpositionErrorKind,
}

/// Why a line was rejected. Texts quoted from the input are cut to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpositionErrorKind {
    #[error("invalid metric name {text:?}; expected [a-zA-Z_:][a-zA-Z0-9_:]* or a quoted name")]
    InvalidMetricName { text: String },
    #[error("invalid label name {text:?}; expected [a-zA-Z_][a-zA-Z0-9_]* or a quoted name")]
    InvalidLabelName { text: String },
    #[error("expected {expected} after label {label:?}, found {found:?}")]
    UnexpectedInLabels {
        label: String,
        expected: &'static str,
        found: String,
    },
    #[error("label {label:?} has no closing '\"'")]
    UnterminatedLabelValue { label: String },
    #[error("label set has no closing '}}'")]
    UnterminatedLabels,
    #[error("invalid escape sequence {text:?}; only \\\\, \\\" and \\n are allowed")]
    InvalidEscape { text: String },
    #[error("duplicate label {label:?}")]
    DuplicateLabel { label: String },
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 { what: &'static str },
    #[error("missing value after metric {metric:?}")]
    MissingValue { metric: String },
    #[error("invalid value {text:?}; expected a float such as 1.5, 1e3, NaN, +Inf or -Inf")]
    InvalidValue { text: String },
    #[error("invalid timestamp {text:?}; expected {expected}")]
    InvalidTimestamp {
        text: String,
        expected: &'static str,
    },
    #[error("unexpected {text:?} after the timestamp")]
    TrailingCharacters { text: String },
    #[error("malformed {directive} line: {reason}")]
    MalformedDirective {
        directive: &'static str,
        reason: &'static str,
    },
    #[error(
        "unknown metric type {text:?}; expected counter, gauge, histogram, summary, untyped, \
         or (OpenMetrics) gaugehistogram, stateset, info, unknown"
    )]
    UnknownType { text: String },
    #[error("second TYPE line for {metric:?}; each metric has one, before its samples")]
    DuplicateType { metric: String },
    #[error("TYPE line for {metric:?} comes after its samples; it must come first")]
    TypeAfterSamples { metric: String },
    #[error("second HELP line for {metric:?}")]
    DuplicateHelp { metric: String },
    #[error("{label} label {text:?} of {metric:?} is not a number")]
    InvalidBound {
        metric: String,
        label: &'static str,
        text: String,
    },
    #[error("{metric:?} is a {kind} sample but has no {label:?} label")]
    MissingBound {
        metric: String,
        kind: &'static str,
        label: &'static str,
    },
    #[error("{metric:?} is not a sample name a {kind} may have; expected {expected}")]
    UnexpectedSampleName {
        metric: String,
        kind: &'static str,
        expected: &'static str,
    },
    #[error("text after \"# EOF\"; OpenMetrics ends an exposition there")]
    TextAfterEof,
    #[error("the exposition has no \"# EOF\" line; OpenMetrics ends every exposition with one")]
    MissingEof,
}

/// Cuts `text` to [`MAX_EXCERPT_CHARS`] characters, replacing invalid UTF-8.
pub(crate) fn excerpt(text: &[u8]) -> String {
    let text = String::from_utf8_lossy(text);
    if text.chars().count() <= MAX_EXCERPT_CHARS {
        return text.into_owned();
    }
    let mut cut: String = text.chars().take(MAX_EXCERPT_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_excerpts_are_cut_with_an_ellipsis() {
        let long = vec![b'x'; 500];
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), MAX_EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt(b"short"), "short");
    }

    #[test]
    fn errors_render_line_column_and_reason() {
        let e = ExpositionError {
            line: 3,
            column: 7,
            kind: ExpositionErrorKind::InvalidValue { text: "abc".into() },
        };
        let text = e.to_string();
        assert!(
            text.starts_with("line 3, column 7: invalid value \"abc\""),
            "{text}"
        );
    }
}
