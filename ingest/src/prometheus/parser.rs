//! The exposition parser: splits the body into lines and reads each line left to right.
//!
//! Lines are independent: a line's extent is decided by the next `\n` alone, so an error inside
//! one line never moves another. Names and label values borrow from the body unless they hold
//! an escape.

use std::borrow::Cow;
use std::collections::HashMap;

use memchr::{memchr, memchr2};

use super::error::{ExpositionError, ExpositionErrorKind, excerpt};
use super::{Exposition, Family, Flavor, MetricType, ParseOptions, Sample, Suffix};

/// An error at a byte offset of the line being parsed.
type LineResult<T> = Result<T, (usize, ExpositionErrorKind)>;

pub(super) fn parse<'a>(body: &'a [u8], options: &ParseOptions) -> Exposition<'a> {
    let mut parser = Parser {
        options,
        out: Exposition::default(),
        by_name: HashMap::new(),
        has_samples: Vec::new(),
        current: None,
    };
    let mut start = 0usize;
    let mut line_number: u32 = 0;
    while start < body.len() {
        line_number = line_number.saturating_add(1);
        let end = memchr(b'\n', &body[start..]).map_or(body.len(), |i| start + i);
        let mut line = &body[start..end];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        start = end + 1;
        if parser.out.saw_eof {
            if line.iter().any(|b| !matches!(b, b' ' | b'\t')) {
                parser.error(line_number, 0, ExpositionErrorKind::TextAfterEof);
                break;
            }
            continue;
        }
        if let Err((offset, kind)) = parser.parse_line(line, line_number) {
            parser.error(line_number, offset, kind);
        }
    }
    if options.flavor == Flavor::OpenMetrics && !parser.out.saw_eof {
        parser.error(
            line_number.saturating_add(1),
            0,
            ExpositionErrorKind::MissingEof,
        );
    }
    parser.out
}

struct Parser<'o, 'a> {
    options: &'o ParseOptions,
    out: Exposition<'a>,
    /// Family index by name.
    by_name: HashMap<Cow<'a, str>, u32>,
    /// Whether each family has had a sample (a TYPE line must come before them).
    has_samples: Vec<bool>,
    /// The family of the last directive or sample: the next sample most likely belongs to it.
    current: Option<u32>,
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_blanks(line: &[u8], mut pos: usize) -> usize {
    while pos < line.len() && is_blank(line[pos]) {
        pos += 1;
    }
    pos
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

fn is_label_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_label_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// End of the token starting at `pos`: the next blank or the end of the line.
fn token_end(line: &[u8], pos: usize) -> usize {
    line[pos..]
        .iter()
        .position(|&b| is_blank(b))
        .map_or(line.len(), |i| pos + i)
}

/// Reads a name made of `is_start`/`is_char` bytes at `pos`; returns its end (== pos when none).
fn name_end(line: &[u8], pos: usize, is_start: fn(u8) -> bool, is_char: fn(u8) -> bool) -> usize {
    match line.get(pos) {
        Some(&b) if is_start(b) => {}
        _ => return pos,
    }
    let mut end = pos + 1;
    while end < line.len() && is_char(line[end]) {
        end += 1;
    }
    end
}

/// ASCII bytes as a `&str`; only called on bytes checked to be name characters.
fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// Reads a quoted string whose opening `"` is at `pos - 1`; returns the unescaped text and the
/// offset after the closing quote. The escapes are `\\`, `\"` and `\n`; any other is an error.
fn quoted<'a>(
    line: &'a [u8],
    pos: usize,
    what: &'static str,
    label: &str,
) -> LineResult<(Cow<'a, str>, usize)> {
    let rest = &line[pos..];
    let Some(first) = memchr2(b'"', b'\\', rest) else {
        return Err((
            pos,
            ExpositionErrorKind::UnterminatedLabelValue {
                label: label.to_string(),
            },
        ));
    };
    if rest[first] == b'"' {
        let text = std::str::from_utf8(&rest[..first])
            .map_err(|_| (pos, ExpositionErrorKind::InvalidUtf8 { what }))?;
        return Ok((Cow::Borrowed(text), pos + first + 1));
    }
    let mut out: Vec<u8> = Vec::with_capacity(rest.len());
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b'"' => {
                let text = String::from_utf8(out)
                    .map_err(|_| (pos, ExpositionErrorKind::InvalidUtf8 { what }))?;
                return Ok((Cow::Owned(text), pos + i + 1));
            }
            b'\\' => {
                match rest.get(i + 1) {
                    Some(b'\\') => out.push(b'\\'),
                    Some(b'"') => out.push(b'"'),
                    Some(b'n') => out.push(b'\n'),
                    _ => {
                        let end = (i + 2).min(rest.len());
                        return Err((
                            pos + i,
                            ExpositionErrorKind::InvalidEscape {
                                text: excerpt(&rest[i..end]),
                            },
                        ));
                    }
                }
                i += 2;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Err((
        pos,
        ExpositionErrorKind::UnterminatedLabelValue {
            label: label.to_string(),
        },
    ))
}

/// Parses a sample value: a float, `NaN`, `+Inf`, `-Inf` (any case, as Go's `ParseFloat`).
fn parse_value(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    // Rust's parser also takes "infinity" and "nan" in any case, as Go's does; it refuses the
    // hexadecimal floats Go takes, which no exposition library writes.
    text.parse::<f64>().ok()
}

/// Parses a text-format timestamp: integer milliseconds, to nanoseconds.
fn parse_millis(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let ms: i64 = text.parse().ok()?;
    ms.checked_mul(1_000_000)
}

/// Parses an OpenMetrics timestamp: seconds with an optional fraction, to nanoseconds, exactly
/// for plain decimals (no rounding through f64) and through f64 for exponent forms.
fn parse_seconds(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    if text.bytes().any(|b| b == b'e' || b == b'E') {
        let seconds: f64 = text.parse().ok()?;
        let ns = seconds * 1e9;
        if !ns.is_finite() || ns.abs() >= 9.2e18 {
            return None;
        }
        return Some(ns.round() as i64);
    }
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if (whole.is_empty() && fraction.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos: i64 = 0;
    for (i, b) in fraction.bytes().take(9).enumerate() {
        nanos += i64::from(b - b'0') * 10i64.pow(8 - i as u32);
    }
    let ns = whole.checked_mul(1_000_000_000)?.checked_add(nanos)?;
    Some(if negative { -ns } else { ns })
}

impl<'a> Parser<'_, 'a> {
    fn error(&mut self, line: u32, offset: usize, kind: ExpositionErrorKind) {
        if self.out.errors.len() < self.options.max_errors {
            self.out.errors.push(ExpositionError {
                line,
                column: u32::try_from(offset + 1).unwrap_or(u32::MAX),
                kind,
            });
        } else {
            self.out.errors_omitted = self.out.errors_omitted.saturating_add(1);
        }
    }

    fn parse_line(&mut self, line: &'a [u8], line_number: u32) -> LineResult<()> {
        let pos = skip_blanks(line, 0);
        match line.get(pos) {
            None => Ok(()),
            Some(b'#') => self.parse_directive(line, pos + 1),
            Some(_) => self.parse_sample(line, pos, line_number),
        }
    }

    /// `# HELP name text`, `# TYPE name type`, `# UNIT name unit`, `# EOF`, or a comment.
    fn parse_directive(&mut self, line: &'a [u8], pos: usize) -> LineResult<()> {
        let pos = skip_blanks(line, pos);
        let word_end = token_end(line, pos);
        let directive: &'static str = match &line[pos..word_end] {
            b"HELP" => "HELP",
            b"TYPE" => "TYPE",
            b"UNIT" => "UNIT",
            b"EOF" => {
                if skip_blanks(line, word_end) == line.len() {
                    self.out.saw_eof = true;
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        let name_start = skip_blanks(line, word_end);
        if name_start == word_end && name_start < line.len() {
            return Ok(());
        }
        let (name, after_name) = self.directive_name(line, name_start, directive)?;
        let index = self.family_for_directive(name);
        self.current = Some(index);
        match directive {
            "TYPE" => {
                let type_start = skip_blanks(line, after_name);
                let type_end = token_end(line, type_start);
                if type_start == type_end {
                    return Err((
                        type_start,
                        ExpositionErrorKind::MalformedDirective {
                            directive,
                            reason: "missing the type after the metric name",
                        },
                    ));
                }
                let word = &line[type_start..type_end];
                let Some(kind) = MetricType::parse(ascii(word)).filter(|_| word.is_ascii()) else {
                    return Err((
                        type_start,
                        ExpositionErrorKind::UnknownType {
                            text: excerpt(word),
                        },
                    ));
                };
                let rest = skip_blanks(line, type_end);
                if rest < line.len() {
                    return Err((
                        rest,
                        ExpositionErrorKind::TrailingCharacters {
                            text: excerpt(&line[rest..]),
                        },
                    ));
                }
                let metric = self.family_name(index);
                if self
                    .has_samples
                    .get(index as usize)
                    .copied()
                    .unwrap_or(false)
                {
                    return Err((name_start, ExpositionErrorKind::TypeAfterSamples { metric }));
                }
                let family = &mut self.out.families[index as usize];
                if family.declared {
                    return Err((name_start, ExpositionErrorKind::DuplicateType { metric }));
                }
                family.kind = kind;
                family.declared = true;
            }
            "HELP" => {
                // One blank separates the name from the text; further blanks belong to it.
                let text_start = (after_name + 1).min(line.len());
                let text = unescape_help(&line[text_start..]).ok_or((
                    text_start,
                    ExpositionErrorKind::InvalidUtf8 { what: "HELP text" },
                ))?;
                let family = &mut self.out.families[index as usize];
                if family.help.is_some() {
                    return Err((
                        name_start,
                        ExpositionErrorKind::DuplicateHelp {
                            metric: family.name.to_string(),
                        },
                    ));
                }
                family.help = Some(text);
            }
            _ => {
                let unit_start = skip_blanks(line, after_name);
                let unit_end = token_end(line, unit_start);
                let unit = std::str::from_utf8(&line[unit_start..unit_end]).map_err(|_| {
                    (
                        unit_start,
                        ExpositionErrorKind::InvalidUtf8 { what: "unit" },
                    )
                })?;
                if !unit.is_empty() {
                    self.out.families[index as usize].unit = Some(Cow::Borrowed(unit));
                }
            }
        }
        Ok(())
    }

    fn directive_name(
        &self,
        line: &'a [u8],
        pos: usize,
        directive: &'static str,
    ) -> LineResult<(Cow<'a, str>, usize)> {
        if line.get(pos) == Some(&b'"') {
            let (name, end) = quoted(line, pos + 1, "metric name", "")?;
            return Ok((name, end));
        }
        let end = name_end(line, pos, is_name_start, is_name_char);
        if end == pos {
            if pos >= line.len() {
                return Err((
                    pos,
                    ExpositionErrorKind::MalformedDirective {
                        directive,
                        reason: "missing the metric name",
                    },
                ));
            }
            return Err((
                pos,
                ExpositionErrorKind::InvalidMetricName {
                    text: excerpt(&line[pos..token_end(line, pos)]),
                },
            ));
        }
        if end < line.len() && !is_blank(line[end]) {
            return Err((
                pos,
                ExpositionErrorKind::InvalidMetricName {
                    text: excerpt(&line[pos..token_end(line, pos)]),
                },
            ));
        }
        Ok((Cow::Borrowed(ascii(&line[pos..end])), end))
    }

    fn family_name(&self, index: u32) -> String {
        self.out
            .families
            .get(index as usize)
            .map(|f| f.name.to_string())
            .unwrap_or_default()
    }

    fn family_for_directive(&mut self, name: Cow<'a, str>) -> u32 {
        if let Some(&index) = self.by_name.get(&name) {
            return index;
        }
        self.new_family(name, MetricType::Untyped)
    }

    fn new_family(&mut self, name: Cow<'a, str>, kind: MetricType) -> u32 {
        let index = u32::try_from(self.out.families.len()).unwrap_or(u32::MAX);
        self.out.families.push(Family {
            name: name.clone(),
            kind,
            help: None,
            unit: None,
            declared: false,
        });
        self.has_samples.push(false);
        self.by_name.insert(name, index);
        index
    }

    /// The family and suffix of a sample name: the current family first, then any declared
    /// family the name extends by a suffix its type allows, else a new untyped family.
    fn resolve(&mut self, name: Cow<'a, str>) -> (u32, Suffix) {
        if let Some(current) = self.current
            && let Some(family) = self.out.families.get(current as usize)
            && let Some(suffix) = suffix_of(&name, &family.name, family.kind)
        {
            return (current, suffix);
        }
        if let Some(&index) = self.by_name.get(name.as_ref()) {
            return (index, Suffix::None);
        }
        for (suffix, text) in Suffix::ALL {
            if let Some(base) = name.strip_suffix(text)
                && let Some(&index) = self.by_name.get(base)
                && self.out.families[index as usize].kind.allows(suffix)
            {
                return (index, suffix);
            }
        }
        (
            self.new_family(name.clone(), MetricType::Untyped),
            Suffix::None,
        )
    }

    fn parse_sample(&mut self, line: &'a [u8], pos: usize, line_number: u32) -> LineResult<()> {
        let labels_start = self.out.labels.len();
        let result = self.parse_sample_inner(line, pos, line_number);
        if result.is_err() {
            self.out.labels.truncate(labels_start);
        }
        result
    }

    fn parse_sample_inner(
        &mut self,
        line: &'a [u8],
        pos: usize,
        line_number: u32,
    ) -> LineResult<()> {
        let labels_start = self.out.labels.len();
        let mut name: Option<Cow<'a, str>> = None;
        let mut pos = pos;
        if line[pos] != b'{' {
            let end = name_end(line, pos, is_name_start, is_name_char);
            if end == pos || (end < line.len() && !is_blank(line[end]) && line[end] != b'{') {
                let stop = line[pos..]
                    .iter()
                    .position(|&b| is_blank(b) || b == b'{')
                    .map_or(line.len(), |i| pos + i);
                return Err((
                    pos,
                    ExpositionErrorKind::InvalidMetricName {
                        text: excerpt(&line[pos..stop]),
                    },
                ));
            }
            name = Some(Cow::Borrowed(ascii(&line[pos..end])));
            // Blanks may stand between the name and its labels, as Go's parser allows.
            let labels_at = skip_blanks(line, end);
            pos = if line.get(labels_at) == Some(&b'{') {
                labels_at
            } else {
                end
            };
        }
        if line.get(pos) == Some(&b'{') {
            pos = self.parse_labels(line, pos + 1, &mut name)?;
        }
        let Some(name) = name else {
            return Err((
                pos,
                ExpositionErrorKind::InvalidMetricName {
                    text: String::new(),
                },
            ));
        };
        let value_start = skip_blanks(line, pos);
        if value_start == pos && value_start < line.len() {
            return Err((
                pos,
                ExpositionErrorKind::UnexpectedInLabels {
                    label: String::new(),
                    expected: "a blank before the value",
                    found: excerpt(&line[pos..token_end(line, pos)]),
                },
            ));
        }
        let value_end = token_end(line, value_start);
        if value_start == value_end {
            return Err((
                value_start,
                ExpositionErrorKind::MissingValue {
                    metric: name.to_string(),
                },
            ));
        }
        let value = parse_value(&line[value_start..value_end]).ok_or_else(|| {
            (
                value_start,
                ExpositionErrorKind::InvalidValue {
                    text: excerpt(&line[value_start..value_end]),
                },
            )
        })?;
        let mut timestamp_ns = None;
        let ts_start = skip_blanks(line, value_end);
        if ts_start < line.len() && line[ts_start] != b'#' {
            let ts_end = token_end(line, ts_start);
            let text = &line[ts_start..ts_end];
            let (parsed, expected) = match self.options.flavor {
                Flavor::Text => (
                    parse_millis(text),
                    "integer milliseconds since the epoch within ±292 years",
                ),
                Flavor::OpenMetrics => (
                    parse_seconds(text),
                    "seconds since the epoch such as 1700000000.5",
                ),
            };
            timestamp_ns = Some(parsed.ok_or_else(|| {
                (
                    ts_start,
                    ExpositionErrorKind::InvalidTimestamp {
                        text: excerpt(text),
                        expected,
                    },
                )
            })?);
            let rest = skip_blanks(line, ts_end);
            if rest < line.len() && line[rest] != b'#' {
                return Err((
                    rest,
                    ExpositionErrorKind::TrailingCharacters {
                        text: excerpt(&line[rest..]),
                    },
                ));
            }
        }
        // Anything from '#' on is an OpenMetrics exemplar: kept out of the series.
        let (family, suffix) = self.resolve(name.clone());
        let labels_end = self.out.labels.len();
        self.check_structure(family, suffix, &name, labels_start..labels_end)?;
        self.current = Some(family);
        if let Some(seen) = self.has_samples.get_mut(family as usize) {
            *seen = true;
        }
        self.out.samples.push(Sample {
            family,
            suffix,
            value,
            timestamp_ns,
            line: line_number,
            labels: labels_start as u32..labels_end as u32,
            name,
        });
        Ok(())
    }

    /// Checks what a sample of a histogram or summary needs: the `le` or `quantile` label, a
    /// number in it, and a sample name the type allows.
    fn check_structure(
        &self,
        family: u32,
        suffix: Suffix,
        name: &str,
        labels: std::ops::Range<usize>,
    ) -> LineResult<()> {
        let Some(fam) = self.out.families.get(family as usize) else {
            return Ok(());
        };
        let labels = &self.out.labels[labels];
        let bound = |label: &'static str, kind: &'static str| -> LineResult<()> {
            match labels.iter().find(|(k, _)| k == label) {
                None => Err((
                    0,
                    ExpositionErrorKind::MissingBound {
                        metric: name.to_string(),
                        kind,
                        label,
                    },
                )),
                Some((_, v)) if v.trim().parse::<f64>().is_err() => Err((
                    0,
                    ExpositionErrorKind::InvalidBound {
                        metric: name.to_string(),
                        label,
                        text: excerpt(v.as_bytes()),
                    },
                )),
                Some(_) => Ok(()),
            }
        };
        match (fam.kind, suffix) {
            (MetricType::Histogram | MetricType::GaugeHistogram, Suffix::Bucket) => {
                bound("le", "histogram bucket")
            }
            (MetricType::Histogram, Suffix::None) => Err((
                0,
                ExpositionErrorKind::UnexpectedSampleName {
                    metric: name.to_string(),
                    kind: "histogram",
                    expected: "_bucket, _sum, _count or _created",
                },
            )),
            (MetricType::GaugeHistogram, Suffix::None) => Err((
                0,
                ExpositionErrorKind::UnexpectedSampleName {
                    metric: name.to_string(),
                    kind: "gaugehistogram",
                    expected: "_bucket, _gcount or _gsum",
                },
            )),
            (MetricType::Summary, Suffix::None) => bound("quantile", "summary quantile"),
            _ => Ok(()),
        }
    }

    /// Parses a label set from just after `{`; returns the offset after `}`. A quoted string
    /// standing alone as the first item is the metric name (Prometheus 3's UTF-8 names).
    fn parse_labels(
        &mut self,
        line: &'a [u8],
        mut pos: usize,
        name: &mut Option<Cow<'a, str>>,
    ) -> LineResult<usize> {
        let first_label = self.out.labels.len();
        let mut first_item = true;
        loop {
            pos = skip_blanks(line, pos);
            match line.get(pos) {
                None => return Err((pos, ExpositionErrorKind::UnterminatedLabels)),
                Some(b'}') => return Ok(pos + 1),
                _ => {}
            }
            let (label, after) = if line[pos] == b'"' {
                quoted(line, pos + 1, "label name", "")?
            } else {
                let end = name_end(line, pos, is_label_start, is_label_char);
                if end == pos {
                    let stop = line[pos..]
                        .iter()
                        .position(|&b| matches!(b, b'=' | b',' | b'}' | b' ' | b'\t'))
                        .map_or(line.len(), |i| pos + i)
                        .max(pos + 1)
                        .min(line.len());
                    return Err((
                        pos,
                        ExpositionErrorKind::InvalidLabelName {
                            text: excerpt(&line[pos..stop]),
                        },
                    ));
                }
                (Cow::Borrowed(ascii(&line[pos..end])), end)
            };
            let after = skip_blanks(line, after);
            let quoted_name = line[pos] == b'"';
            if first_item
                && quoted_name
                && name.is_none()
                && matches!(line.get(after), Some(b',' | b'}'))
            {
                *name = Some(label);
                first_item = false;
                pos = after;
                if line.get(pos) == Some(&b',') {
                    pos += 1;
                }
                continue;
            }
            first_item = false;
            if line.get(after) != Some(&b'=') {
                return Err((
                    after,
                    ExpositionErrorKind::UnexpectedInLabels {
                        label: label.to_string(),
                        expected: "'='",
                        found: found_text(line, after),
                    },
                ));
            }
            let value_start = skip_blanks(line, after + 1);
            if line.get(value_start) != Some(&b'"') {
                return Err((
                    value_start,
                    ExpositionErrorKind::UnexpectedInLabels {
                        label: label.to_string(),
                        expected: "'\"' opening the value",
                        found: found_text(line, value_start),
                    },
                ));
            }
            let (value, after_value) = quoted(line, value_start + 1, "label value", &label)?;
            if self.out.labels[first_label..]
                .iter()
                .any(|(k, _)| *k == label)
            {
                return Err((
                    pos,
                    ExpositionErrorKind::DuplicateLabel {
                        label: label.to_string(),
                    },
                ));
            }
            self.out.labels.push((label, value));
            pos = skip_blanks(line, after_value);
            match line.get(pos) {
                Some(b',') => pos += 1,
                Some(b'}') => return Ok(pos + 1),
                None => return Err((pos, ExpositionErrorKind::UnterminatedLabels)),
                Some(_) => {
                    let label = self.out.labels.last().map(|(k, _)| k.to_string());
                    return Err((
                        pos,
                        ExpositionErrorKind::UnexpectedInLabels {
                            label: label.unwrap_or_default(),
                            expected: "',' or '}'",
                            found: found_text(line, pos),
                        },
                    ));
                }
            }
        }
    }
}

fn found_text(line: &[u8], pos: usize) -> String {
    if pos >= line.len() {
        return "end of line".to_string();
    }
    let end = line[pos..]
        .iter()
        .position(|&b| is_blank(b))
        .map_or(line.len(), |i| pos + i)
        .max(pos + 1);
    excerpt(&line[pos..end.min(line.len())])
}

/// The suffix `name` adds to `family`, if the family's type allows it.
fn suffix_of(name: &str, family: &str, kind: MetricType) -> Option<Suffix> {
    let rest = name.strip_prefix(family)?;
    if rest.is_empty() {
        return Some(Suffix::None);
    }
    Suffix::ALL
        .iter()
        .find(|(_, text)| *text == rest)
        .map(|(suffix, _)| *suffix)
        .filter(|suffix| kind.allows(*suffix))
}

/// Unescapes HELP text: `\\`, `\n` and (OpenMetrics) `\"`; other backslashes stay as written.
fn unescape_help(text: &[u8]) -> Option<Cow<'_, str>> {
    let text = std::str::from_utf8(text).ok()?;
    if !text.contains('\\') {
        return Some(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Some(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_seconds_convert_exactly_to_nanoseconds() {
        assert_eq!(
            parse_seconds(b"1520879607.789"),
            Some(1_520_879_607_789_000_000)
        );
        assert_eq!(parse_seconds(b"1"), Some(1_000_000_000));
        assert_eq!(parse_seconds(b"-1.5"), Some(-1_500_000_000));
        assert_eq!(parse_seconds(b".000000001"), Some(1));
        assert_eq!(parse_seconds(b"1.5e9"), Some(1_500_000_000_000_000_000));
        assert_eq!(parse_seconds(b"abc"), None);
        assert_eq!(parse_seconds(b"."), None);
        assert_eq!(parse_seconds(b"99999999999999999999"), None);
    }

    #[test]
    fn text_timestamps_are_milliseconds_and_overflow_is_refused() {
        assert_eq!(
            parse_millis(b"1395066363000"),
            Some(1_395_066_363_000_000_000)
        );
        assert_eq!(parse_millis(b"-1"), Some(-1_000_000));
        assert_eq!(parse_millis(b"9223372036854775807"), None);
        assert_eq!(parse_millis(b"1.5"), None);
    }

    #[test]
    fn help_text_unescapes_backslash_and_newline_and_keeps_other_backslashes() {
        assert_eq!(unescape_help(b"a\\\\b\\nc").unwrap(), "a\\b\nc");
        assert_eq!(unescape_help(b"x\\y").unwrap(), "x\\y");
        assert_eq!(unescape_help(b"plain").unwrap(), "plain");
    }
}
