//! The parser: finds where each line ends exactly as InfluxDB 1.x does, then reads the line
//! left to right into the batch.
//!
//! Two passes over a line keep lines independent: the first decides its extent from the raw
//! bytes alone (so no error inside a line can move the start of the next one), the second parses
//! inside that extent. The first pass is one `memchr3` for ordinary lines; only lines holding a
//! quote or a backslash take InfluxDB's slower quote-aware scan, because only those can continue
//! past a line break.

use std::borrow::Cow;

use memchr::{memchr, memchr2, memchr3};
use tally_engine::{FieldValue, PointBatch};

use super::error::{LineError, LineErrorKind, excerpt};
use super::{MAX_TIMESTAMP_NS, MIN_TIMESTAMP_NS, ParseOptions, ParseReport, Precision};

/// Characters a backslash escapes in a measurement (InfluxDB unescapes these four there).
const MEASUREMENT_ESCAPES: &[u8] = b", =\"";
/// Characters a backslash escapes in tag keys and values (InfluxDB keeps `\"` there).
const TAG_ESCAPES: &[u8] = b", =";
/// Characters a backslash escapes in field keys.
const FIELD_KEY_ESCAPES: &[u8] = b", =\"";

/// The parser compares each key with at most this many earlier keys of its point, so that its
/// duplicate check stays linear; the engine's `finish_point` still finds the other duplicates.
const MAX_KEYS_CHECKED: usize = 64;

/// The one key InfluxDB refuses as a tag or field key, because queries name the timestamp so.
const RESERVED_KEY: &str = "time";

type ParseResult<T> = Result<T, (usize, LineErrorKind)>;

pub(super) fn parse<'a>(
    body: &'a [u8],
    options: &ParseOptions,
    batch: &mut PointBatch<'a>,
    point_lines: &mut Vec<u32>,
) -> ParseReport {
    let mut parser = Parser {
        options,
        default_timestamp: truncate_to_precision(options.default_timestamp_ns, options.precision),
        report: ParseReport::default(),
        tag_keys: Vec::new(),
        field_keys: Vec::new(),
    };
    let mut line_start = 0;
    let mut line_number: u32 = 1;
    let mut splitter = LineSplitter { quote_aware: true };
    while line_start < body.len() {
        let (line_end, may_span_lines) = splitter.find_line_end(body, line_start);
        let line = &body[line_start..line_end];
        parser.parse_line(line, line_number, batch, point_lines);
        let inner_line_breaks = if may_span_lines {
            memchr::memchr_iter(b'\n', line).count()
        } else {
            0
        };
        line_number = line_number
            .saturating_add(1)
            .saturating_add(u32::try_from(inner_line_breaks).unwrap_or(u32::MAX));
        line_start = line_end + 1;
    }
    parser.report
}

struct Parser<'o, 'a> {
    options: &'o ParseOptions,
    default_timestamp: i64,
    report: ParseReport,
    /// Keys of the point being parsed, for the duplicate check; reused from line to line.
    tag_keys: Vec<Cow<'a, str>>,
    field_keys: Vec<Cow<'a, str>>,
}

impl<'a> Parser<'_, 'a> {
    fn parse_line(
        &mut self,
        raw_line: &'a [u8],
        line_number: u32,
        batch: &mut PointBatch<'a>,
        point_lines: &mut Vec<u32>,
    ) {
        // A CR before the line break is part of the break, so that CRLF bodies work.
        let line = raw_line.strip_suffix(b"\r").unwrap_or(raw_line);
        let start = skip_whitespace(line, 0);
        if start == line.len() || line[start] == b'#' {
            return;
        }
        self.report.lines_total = self.report.lines_total.saturating_add(1);
        if line.len() > self.options.max_line_bytes {
            let kind = LineErrorKind::LineTooLong {
                len: line.len(),
                limit: self.options.max_line_bytes,
            };
            self.reject(line, line_number, 0, kind);
            return;
        }
        let text = match std::str::from_utf8(line) {
            Ok(text) => text,
            Err(error) => {
                self.reject(
                    line,
                    line_number,
                    error.valid_up_to(),
                    LineErrorKind::InvalidUtf8,
                );
                return;
            }
        };
        match self.parse_point(text, start, batch) {
            Ok(timestamp) => match batch.finish_point(timestamp) {
                Ok(()) => {
                    self.report.points = self.report.points.saturating_add(1);
                    point_lines.push(line_number);
                }
                Err(error) => self.reject(line, line_number, start, error.into()),
            },
            Err((offset, kind)) => {
                batch.abandon_point();
                self.reject(line, line_number, offset, kind);
            }
        }
    }

    fn reject(&mut self, line: &[u8], line_number: u32, offset: usize, kind: LineErrorKind) {
        if self.report.errors.len() >= self.options.max_errors {
            self.report.errors_omitted = self.report.errors_omitted.saturating_add(1);
            return;
        }
        let (line_breaks, column) = line_and_column(line, offset);
        self.report.errors.push(LineError {
            line: line_number.saturating_add(line_breaks),
            column,
            kind,
        });
    }

    /// Reads one point into `batch`, leaving it open; returns its timestamp. `start` is the
    /// first byte after leading whitespace, and is not whitespace, `#` or the end.
    fn parse_point(
        &mut self,
        text: &'a str,
        start: usize,
        batch: &mut PointBatch<'a>,
    ) -> ParseResult<i64> {
        let bytes = text.as_bytes();
        let len = bytes.len();
        self.tag_keys.clear();
        self.field_keys.clear();

        if bytes.get(start) == Some(&b',') {
            return Err((start, LineErrorKind::MissingMeasurement));
        }
        let (measurement_end, escaped) = scan_name(bytes, start, is_measurement_end);
        if measurement_end == len {
            return Err((len, LineErrorKind::MissingFields));
        }
        let measurement =
            unescape_name(&text[start..measurement_end], escaped, MEASUREMENT_ESCAPES);
        batch.start_point(measurement);

        let mut i = measurement_end;
        if bytes[i] == b',' {
            i = self.parse_tags(text, i + 1, batch)?;
        }

        // `i` is at the space that ends the key section.
        i = skip_whitespace(bytes, i + 1);
        if i == len {
            return Err((len, LineErrorKind::MissingFields));
        }
        i = self.parse_fields(text, i, batch)?;
        self.parse_timestamp(text, i)
    }

    /// Reads `key=value[,key=value...]` from `start`, just after the measurement's comma;
    /// returns the position of the space that ends the tags.
    fn parse_tags(
        &mut self,
        text: &'a str,
        start: usize,
        batch: &mut PointBatch<'a>,
    ) -> ParseResult<usize> {
        let bytes = text.as_bytes();
        let len = bytes.len();
        let mut i = start;
        loop {
            let key_start = i;
            if matches!(bytes.get(i), None | Some(b' ' | b',' | b'=')) {
                return Err((i, LineErrorKind::MissingTagKey));
            }
            let (key_end, key_escaped) = scan_name(bytes, i, is_tag_end);
            let key = unescape_name(&text[key_start..key_end], key_escaped, TAG_ESCAPES);
            if bytes.get(key_end) != Some(&b'=') {
                return Err((
                    key_end,
                    LineErrorKind::MissingTagValue { key: excerpt(&key) },
                ));
            }
            let value_start = key_end + 1;
            if matches!(bytes.get(value_start), None | Some(b' ' | b',')) {
                return Err((
                    value_start,
                    LineErrorKind::MissingTagValue { key: excerpt(&key) },
                ));
            }
            // InfluxDB never looks at the first byte of a tag value for '=', so `t==x` is `=x`.
            let scan_from = value_start + usize::from(bytes[value_start] == b'=');
            let (value_end, value_escaped) = scan_name(bytes, scan_from, is_tag_end);
            if value_end == len {
                return Err((len, LineErrorKind::MissingFields));
            }
            if bytes[value_end] == b'=' {
                return Err((
                    value_end,
                    LineErrorKind::UnescapedEqualsInTagValue { key: excerpt(&key) },
                ));
            }
            let value = unescape_name(&text[value_start..value_end], value_escaped, TAG_ESCAPES);
            check_new_key(&self.tag_keys, &key, key_start, KeyKind::Tag)?;
            if self.tag_keys.len() < MAX_KEYS_CHECKED {
                self.tag_keys.push(key.clone());
            }
            batch.add_tag(key, value);
            i = value_end;
            if bytes[i] == b' ' {
                return Ok(i);
            }
            i += 1;
        }
    }

    /// Reads `key=value[,key=value...]` from `start`, the first byte of the first key; returns
    /// the position just after the last value.
    fn parse_fields(
        &mut self,
        text: &'a str,
        start: usize,
        batch: &mut PointBatch<'a>,
    ) -> ParseResult<usize> {
        let bytes = text.as_bytes();
        let mut i = start;
        loop {
            let key_start = i;
            if matches!(bytes.get(i), None | Some(b' ' | b',' | b'=')) {
                return Err((i, LineErrorKind::MissingFieldKey));
            }
            let (key_end, key_escaped) = scan_name(bytes, i, is_tag_end);
            let key = unescape_name(&text[key_start..key_end], key_escaped, FIELD_KEY_ESCAPES);
            if bytes.get(key_end) != Some(&b'=') {
                return Err((
                    key_end,
                    LineErrorKind::MissingFieldValue { key: excerpt(&key) },
                ));
            }
            let (value, value_end) = parse_field_value(text, key_end + 1, &key)?;
            check_new_key(&self.field_keys, &key, key_start, KeyKind::Field)?;
            if self.field_keys.len() < MAX_KEYS_CHECKED {
                self.field_keys.push(key.clone());
            }
            batch.add_field(key, value);
            i = value_end;
            if bytes.get(i) != Some(&b',') {
                return Ok(i);
            }
            i += 1;
        }
    }

    /// Reads the optional timestamp from `start`, just after the fields, and checks that only
    /// spaces follow it.
    fn parse_timestamp(&self, text: &str, start: usize) -> ParseResult<i64> {
        let bytes = text.as_bytes();
        let len = bytes.len();
        let i = skip_whitespace(bytes, start);
        if i == len {
            return Ok(self.default_timestamp);
        }
        let end = memchr(b' ', &bytes[i..]).map_or(len, |k| i + k);
        let token = &text[i..end];
        let precision = self.options.precision;
        let out_of_range = || {
            (
                i,
                LineErrorKind::TimestampOutOfRange {
                    text: excerpt(token),
                    precision,
                },
            )
        };
        let units = match parse_integer(token) {
            IntegerParse::Value(units) => units,
            IntegerParse::OutOfRange => return Err(out_of_range()),
            IntegerParse::Invalid => {
                return Err((
                    i,
                    LineErrorKind::InvalidTimestamp {
                        text: excerpt(token),
                    },
                ));
            }
        };
        let timestamp = units
            .checked_mul(precision.nanos())
            .ok_or_else(out_of_range)?;
        if !(MIN_TIMESTAMP_NS..=MAX_TIMESTAMP_NS).contains(&timestamp) {
            return Err(out_of_range());
        }
        if let Some(k) = bytes[end..].iter().position(|&b| b != b' ') {
            let rest = text[end + k..].trim_end_matches(' ');
            return Err((
                end + k,
                LineErrorKind::TrailingCharacters {
                    text: excerpt(rest),
                },
            ));
        }
        Ok(timestamp)
    }
}

#[derive(Clone, Copy)]
enum KeyKind {
    Tag,
    Field,
}

/// Refuses `time` and a key seen before in the same point.
fn check_new_key(
    seen: &[Cow<'_, str>],
    key: &str,
    key_start: usize,
    kind: KeyKind,
) -> ParseResult<()> {
    if key == RESERVED_KEY {
        return Err((
            key_start,
            LineErrorKind::ReservedKey {
                key: RESERVED_KEY.to_owned(),
            },
        ));
    }
    if seen.iter().any(|other| other == key) {
        let key = excerpt(key);
        let kind = match kind {
            KeyKind::Tag => LineErrorKind::DuplicateTagKey { key },
            KeyKind::Field => LineErrorKind::DuplicateFieldKey { key },
        };
        return Err((key_start, kind));
    }
    Ok(())
}

/// Reads the value of field `key` from `start`, just after its `=`; returns it and the position
/// just after it.
fn parse_field_value<'a>(
    text: &'a str,
    start: usize,
    key: &str,
) -> ParseResult<(FieldValue<'a>, usize)> {
    let bytes = text.as_bytes();
    let len = bytes.len();
    match bytes.get(start) {
        None | Some(b',' | b' ') => Err((
            start,
            LineErrorKind::MissingFieldValue { key: excerpt(key) },
        )),
        Some(b'"') => parse_string_value(text, start, key),
        Some(&first) => {
            let end = memchr2(b',', b' ', &bytes[start..]).map_or(len, |k| start + k);
            let token = &text[start..end];
            let value = match first {
                b'0'..=b'9' | b'-' | b'.' => parse_number(token),
                b't' | b'T' | b'f' | b'F' => parse_boolean(token),
                _ => Err(NumberError::NotAValue),
            };
            match value {
                Ok(value) => Ok((value, end)),
                Err(error) => Err((start, error.into_kind(key, token))),
            }
        }
    }
}

/// Reads a string value whose opening quote is at `quote`.
fn parse_string_value<'a>(
    text: &'a str,
    quote: usize,
    key: &str,
) -> ParseResult<(FieldValue<'a>, usize)> {
    let bytes = text.as_bytes();
    let len = bytes.len();
    let content_start = quote + 1;
    let mut escaped = false;
    let mut i = content_start;
    let close = loop {
        let Some(k) = memchr2(b'"', b'\\', bytes.get(i..).unwrap_or_default()) else {
            return Err((
                quote,
                LineErrorKind::UnterminatedString { key: excerpt(key) },
            ));
        };
        let found = i + k;
        if bytes[found] == b'"' {
            break found;
        }
        // A backslash takes the next byte with it, whatever it is, as InfluxDB's scanner does.
        escaped = true;
        i = found + 2;
    };
    let after = close + 1;
    if after < len && bytes[after] != b',' && bytes[after] != b' ' {
        let end = memchr2(b',', b' ', &bytes[after..]).map_or(len, |k| after + k);
        return Err((
            after,
            LineErrorKind::CharactersAfterString {
                key: excerpt(key),
                text: excerpt(&text[after..end]),
            },
        ));
    }
    let content = &text[content_start..close];
    let value = if escaped {
        unescape_string(content)
    } else {
        Cow::Borrowed(content)
    };
    Ok((FieldValue::String(value), after))
}

enum NumberError {
    Invalid,
    FloatOutOfRange,
    IntegerOutOfRange,
    UnsignedOutOfRange,
    InvalidBoolean,
    NotAValue,
}

impl NumberError {
    fn into_kind(self, key: &str, token: &str) -> LineErrorKind {
        let key = excerpt(key);
        let text = excerpt(token);
        match self {
            NumberError::Invalid => LineErrorKind::InvalidNumber { key, text },
            NumberError::FloatOutOfRange => LineErrorKind::FloatOutOfRange { key, text },
            NumberError::IntegerOutOfRange => LineErrorKind::IntegerOutOfRange { key, text },
            NumberError::UnsignedOutOfRange => LineErrorKind::UnsignedOutOfRange { key, text },
            NumberError::InvalidBoolean => LineErrorKind::InvalidBoolean { key, text },
            NumberError::NotAValue => LineErrorKind::InvalidFieldValue { key, text },
        }
    }
}

fn parse_boolean(token: &str) -> Result<FieldValue<'static>, NumberError> {
    match token {
        "t" | "T" | "true" | "True" | "TRUE" => Ok(FieldValue::Boolean(true)),
        "f" | "F" | "false" | "False" | "FALSE" => Ok(FieldValue::Boolean(false)),
        _ => Err(NumberError::InvalidBoolean),
    }
}

/// Reads `1.5` (float), `1i` (integer) or `1u` (unsigned) from a token that starts with a
/// digit, `-` or `.`.
fn parse_number(token: &str) -> Result<FieldValue<'static>, NumberError> {
    if let Some(digits) = token.strip_suffix('i') {
        return match parse_integer(digits) {
            IntegerParse::Value(value) => Ok(FieldValue::Integer(value)),
            IntegerParse::OutOfRange => Err(NumberError::IntegerOutOfRange),
            IntegerParse::Invalid => Err(NumberError::Invalid),
        };
    }
    if let Some(digits) = token.strip_suffix('u') {
        let (negative, magnitude) = match digits.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, digits),
        };
        return match parse_magnitude(magnitude) {
            IntegerParse::Invalid => Err(NumberError::Invalid),
            _ if negative => Err(NumberError::UnsignedOutOfRange),
            IntegerParse::OutOfRange => Err(NumberError::UnsignedOutOfRange),
            IntegerParse::Value(value) => Ok(FieldValue::Unsigned(value)),
        };
    }
    if !is_float_syntax(token.as_bytes()) {
        return Err(NumberError::Invalid);
    }
    // The syntax check above keeps out what Rust reads and InfluxDB does not: `+1`, `inf`, `NaN`.
    let value: f64 = token.parse().map_err(|_| NumberError::Invalid)?;
    if value.is_infinite() {
        return Err(NumberError::FloatOutOfRange);
    }
    Ok(FieldValue::Float(value))
}

/// `-?(digits[.digits*]|.digits)([eE][+-]?digits)?`, InfluxDB's float syntax (`1.`, `.5`, `01`
/// and `-0` included; `+1`, `1e`, `.` and `NaN` excluded).
fn is_float_syntax(bytes: &[u8]) -> bool {
    let count_digits = |from: usize| {
        bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    let integer_digits = count_digits(i);
    i += integer_digits;
    let mut fraction_digits = 0;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        fraction_digits = count_digits(i);
        i += fraction_digits;
    }
    if integer_digits + fraction_digits == 0 {
        return false;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exponent_digits = count_digits(i);
        if exponent_digits == 0 {
            return false;
        }
        i += exponent_digits;
    }
    i == bytes.len()
}

#[derive(Debug, PartialEq, Eq)]
enum IntegerParse<T> {
    Value(T),
    /// Digits only, but too many for the type.
    OutOfRange,
    /// Not `-?digits`.
    Invalid,
}

/// Reads `-?[0-9]+` as an i64.
fn parse_integer(text: &str) -> IntegerParse<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    match parse_magnitude(digits) {
        IntegerParse::Value(magnitude) => {
            let value = if negative {
                0i64.checked_sub_unsigned(magnitude)
            } else {
                i64::try_from(magnitude).ok()
            };
            value.map_or(IntegerParse::OutOfRange, IntegerParse::Value)
        }
        IntegerParse::OutOfRange => IntegerParse::OutOfRange,
        IntegerParse::Invalid => IntegerParse::Invalid,
    }
}

/// Reads `[0-9]+` as a u64. Leading zeros are allowed, as in InfluxDB.
fn parse_magnitude(digits: &str) -> IntegerParse<u64> {
    if digits.is_empty() {
        return IntegerParse::Invalid;
    }
    let mut value: u64 = 0;
    let mut overflowed = false;
    for &b in digits.as_bytes() {
        if !b.is_ascii_digit() {
            return IntegerParse::Invalid;
        }
        match value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
        {
            Some(next) => value = next,
            None => overflowed = true,
        }
    }
    if overflowed {
        IntegerParse::OutOfRange
    } else {
        IntegerParse::Value(value)
    }
}

/// InfluxDB truncates the server time given to lines without a timestamp to the precision.
fn truncate_to_precision(timestamp: i64, precision: Precision) -> i64 {
    let remainder = timestamp.rem_euclid(precision.nanos());
    timestamp.checked_sub(remainder).unwrap_or(timestamp)
}

fn is_measurement_end(b: u8) -> bool {
    b == b',' || b == b' '
}

fn is_tag_end(b: u8) -> bool {
    b == b',' || b == b' ' || b == b'='
}

/// Finds the end of the name starting at `start`: the first delimiter not directly preceded by
/// a backslash, or the end of the line. InfluxDB looks only at the byte before a delimiter, so
/// `a\\,b` is one name; a name therefore cannot end in a backslash. Also says whether the name
/// holds a backslash, that is whether it may need unescaping.
fn scan_name(bytes: &[u8], start: usize, is_delimiter: fn(u8) -> bool) -> (usize, bool) {
    let mut has_backslash = false;
    let mut previous = 0u8;
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if is_delimiter(b) && previous != b'\\' {
            return (i, has_backslash);
        }
        has_backslash |= b == b'\\';
        previous = b;
    }
    (bytes.len(), has_backslash)
}

/// Drops the backslash of each `\c` with `c` in `escapable`, left to right; borrows when there
/// is none.
fn unescape_name<'a>(raw: &'a str, has_backslash: bool, escapable: &[u8]) -> Cow<'a, str> {
    if !has_backslash {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut unescaped = String::new();
    let mut copied_up_to = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\\' && escapable.contains(&bytes[i + 1]) {
            unescaped.push_str(&raw[copied_up_to..i]);
            copied_up_to = i + 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    if copied_up_to == 0 {
        return Cow::Borrowed(raw);
    }
    unescaped.push_str(&raw[copied_up_to..]);
    Cow::Owned(unescaped)
}

/// Turns `\\` into `\` and `\"` into `"` in a string value; any other backslash stays.
fn unescape_string(raw: &str) -> Cow<'_, str> {
    let bytes = raw.as_bytes();
    let mut unescaped = String::with_capacity(raw.len());
    let mut copied_up_to = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes[i + 1] == b'\\' || bytes[i + 1] == b'"' {
                unescaped.push_str(&raw[copied_up_to..i]);
                copied_up_to = i + 1;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    unescaped.push_str(&raw[copied_up_to..]);
    Cow::Owned(unescaped)
}

/// InfluxDB skips spaces, tabs and NUL bytes before a line, before the fields and before the
/// timestamp.
fn skip_whitespace(bytes: &[u8], start: usize) -> usize {
    let skipped = bytes
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| matches!(b, b' ' | b'\t' | 0));
    start + skipped.count()
}

/// Finds where lines end.
struct LineSplitter {
    /// Whether a string value may carry a line break. It stops being so once a string is found
    /// open at the end of the body: InfluxDB would then take everything after the opening quote
    /// as one bad line; Tally ends that line at its first line break instead and, from there on,
    /// ends every line at a line break, which also keeps the splitter linear in the body size.
    quote_aware: bool,
}

impl LineSplitter {
    /// The end of the line starting at `start` (the position of its `\n`, or the end of the
    /// body), and whether the line may hold line breaks.
    fn find_line_end(&mut self, body: &[u8], start: usize) -> (usize, bool) {
        let rest = &body[start..];
        let first_break = || memchr(b'\n', rest).map_or(body.len(), |k| start + k);
        if !self.quote_aware {
            return (first_break(), false);
        }
        match memchr3(b'\n', b'"', b'\\', rest) {
            None => (body.len(), false),
            Some(k) if rest[k] == b'\n' => (start + k, false),
            Some(_) => match scan_line_like_influxdb(body, start) {
                LineScan::Ended(end) => (end, true),
                LineScan::OpenStringAtEndOfBody => {
                    self.quote_aware = false;
                    (first_break(), false)
                }
            },
        }
    }
}

enum LineScan {
    /// The line ends here, at a `\n` or at the end of the body.
    Ended(usize),
    /// The end of the body was reached inside a string.
    OpenStringAtEndOfBody,
}

/// InfluxDB 1.x's `scanLine`: a backslash takes the next byte with it (unless it is the
/// second-to-last byte of the body), and after the first space a `"` opens or closes a string
/// whenever more `=` than `,` have been seen outside strings, so that a string value may hold
/// line breaks.
fn scan_line_like_influxdb(body: &[u8], start: usize) -> LineScan {
    let mut i = start;
    let mut in_fields = false;
    let mut quoted = false;
    let mut equals = 0usize;
    let mut commas = 0usize;
    while i < body.len() {
        let b = body[i];
        if b == b'\\' && i + 2 < body.len() {
            i += 2;
            continue;
        }
        if b == b' ' {
            in_fields = true;
        }
        if in_fields {
            if !quoted && b == b'=' {
                equals += 1;
            } else if !quoted && b == b',' {
                commas += 1;
            } else if b == b'"' && equals > commas {
                quoted = !quoted;
            }
        }
        if b == b'\n' && !quoted {
            return LineScan::Ended(i);
        }
        i += 1;
    }
    if quoted {
        LineScan::OpenStringAtEndOfBody
    } else {
        LineScan::Ended(body.len())
    }
}

/// The line breaks before `offset` in a line, and the 1-based column of `offset` in characters
/// from the last of them (or from the start of the line).
fn line_and_column(line: &[u8], offset: usize) -> (u32, u32) {
    let before = &line[..offset.min(line.len())];
    let (line_breaks, line_start) = match memchr::memrchr(b'\n', before) {
        Some(last) => (memchr::memchr_iter(b'\n', before).count(), last + 1),
        None => (0, 0),
    };
    let characters = before[line_start..]
        .iter()
        .filter(|&&b| (b & 0xC0) != 0x80)
        .count();
    let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    (to_u32(line_breaks), to_u32(characters).saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(body: &str) -> (PointBatch<'_>, ParseReport) {
        let mut batch = PointBatch::new();
        let mut lines = Vec::new();
        let report = parse(
            body.as_bytes(),
            &ParseOptions::new(0),
            &mut batch,
            &mut lines,
        );
        (batch, report)
    }

    #[test]
    fn names_without_escape_sequences_are_borrowed_from_the_body() {
        let (batch, report) = parse_one("c\\pu,host=a\\b v=1,s=\"x\" 5");
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let point = batch.point(0).unwrap();
        assert_eq!(point.measurement(), "c\\pu");
        assert!(matches!(point.tags()[0].0, Cow::Borrowed("host")));
        assert!(matches!(point.tags()[0].1, Cow::Borrowed("a\\b")));
        assert!(matches!(
            point.fields()[1].1,
            FieldValue::String(Cow::Borrowed("x"))
        ));
    }

    #[test]
    fn escaped_names_are_unescaped_per_section_as_influxdb_does() {
        let (batch, report) = parse_one(
            "c\\,p\\ u\\=x\\\"y\\\\z,t\\,k\\ e\\=y\\\"q=v\\,a\\ l\\=u\\\"e f\\,k\\ e\\=y\\\"q=1 1",
        );
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let point = batch.point(0).unwrap();
        assert_eq!(point.measurement(), "c,p u=x\"y\\\\z");
        assert_eq!(point.tags()[0].0, "t,k e=y\\\"q");
        assert_eq!(point.tags()[0].1, "v,a l=u\\\"e");
        assert_eq!(point.fields()[0].0, "f,k e=y\"q");
    }

    #[test]
    fn string_values_unescape_only_backslash_and_quote() {
        let (batch, report) = parse_one(r#"m s="a\"b\\c\d\n" 1"#);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let point = batch.point(0).unwrap();
        assert_eq!(
            point.fields()[0].1,
            FieldValue::String("a\"b\\c\\d\\n".into())
        );
    }

    #[test]
    fn float_syntax_matches_influxdb() {
        for good in [
            "1", "-0", "1.", ".5", "-.5", "1e5", "1E+05", "1.e5", "-.5e-3", "01",
        ] {
            assert!(is_float_syntax(good.as_bytes()), "{good}");
        }
        for bad in [
            "", "-", ".", "-.", "+1", "1e", ".e5", "1e+", "1.2.3", "0x10", "1_0", "NaN",
        ] {
            assert!(!is_float_syntax(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn integers_parse_to_the_edges_of_i64_and_no_further() {
        assert_eq!(
            parse_integer("9223372036854775807"),
            IntegerParse::Value(i64::MAX)
        );
        assert_eq!(
            parse_integer("-9223372036854775808"),
            IntegerParse::Value(i64::MIN)
        );
        assert_eq!(parse_integer("-0"), IntegerParse::Value(0));
        assert_eq!(parse_integer("007"), IntegerParse::Value(7));
        assert_eq!(
            parse_integer("9223372036854775808"),
            IntegerParse::OutOfRange
        );
        assert_eq!(
            parse_integer("-9223372036854775809"),
            IntegerParse::OutOfRange
        );
        assert_eq!(
            parse_integer("99999999999999999999999"),
            IntegerParse::OutOfRange
        );
        assert_eq!(
            parse_integer("99999999999999999999999x"),
            IntegerParse::Invalid
        );
        assert_eq!(parse_integer("+1"), IntegerParse::Invalid);
        assert_eq!(parse_integer("-"), IntegerParse::Invalid);
        assert_eq!(
            parse_magnitude("18446744073709551615"),
            IntegerParse::Value(u64::MAX)
        );
        assert_eq!(
            parse_magnitude("18446744073709551616"),
            IntegerParse::OutOfRange
        );
    }

    #[test]
    fn line_end_follows_quotes_and_backslashes_like_influxdb() {
        let mut splitter = LineSplitter { quote_aware: true };
        let body = b"m s=\"a\nb\" 1\nnext";
        assert_eq!(splitter.find_line_end(body, 0), (11, true));
        let body = b"m a=1 1\\\nm b=2 2";
        assert_eq!(splitter.find_line_end(body, 0), (body.len(), true));
        // A quote in the key section does not open a string.
        let body = b"m,t=x\"y a=1 1\nnext";
        assert_eq!(splitter.find_line_end(body, 0), (13, true));
        let body = b"m a=1 1\nm b=2";
        assert_eq!(splitter.find_line_end(body, 0), (7, false));
        assert!(splitter.quote_aware);
    }

    #[test]
    fn a_string_open_at_the_end_of_the_body_ends_at_its_line_break_and_stops_quote_awareness() {
        let mut splitter = LineSplitter { quote_aware: true };
        let body = b"m s=\"a 1\nm v=1 2\nm s=\"x\ny\" 3";
        // Quote-aware, the first line would close its string at the third line's quote.
        assert_eq!(splitter.find_line_end(body, 0), (23, true));
        let body = b"m s=\"a 1\nm v=1 2\nm v=2 3";
        assert_eq!(splitter.find_line_end(body, 0), (8, false));
        assert!(!splitter.quote_aware);
        let body = b"m s=\"x\ny\" 3";
        assert_eq!(splitter.find_line_end(body, 0), (6, false));
    }

    #[test]
    fn columns_count_characters_and_restart_after_line_breaks_in_strings() {
        assert_eq!(line_and_column("héllo x".as_bytes(), 7), (0, 7));
        assert_eq!(line_and_column(b"m s=\"a\nbc\" x", 11), (1, 5));
        assert_eq!(line_and_column(b"abc", 0), (0, 1));
    }

    #[test]
    fn default_timestamp_is_truncated_to_the_precision() {
        assert_eq!(
            truncate_to_precision(1_234_567_891, Precision::Seconds),
            1_000_000_000
        );
        assert_eq!(
            truncate_to_precision(-1, Precision::Seconds),
            -1_000_000_000
        );
        assert_eq!(truncate_to_precision(7, Precision::Nanoseconds), 7);
        assert_eq!(truncate_to_precision(i64::MIN, Precision::Hours), i64::MIN);
    }
}
