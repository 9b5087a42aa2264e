//! `tally-dump export`: streams points out of a data directory (or a backup, restored to a
//! scratch directory first) as InfluxDB line protocol, CSV or JSON lines, optionally zstd or
//! gzip compressed, to stdout or a file.
//!
//! Points are rebuilt from columns: for each series, the columns of its fields are read
//! through one consistent view and merged by timestamp, one chunk per column in memory at a
//! time, so memory stays bounded whatever the size of the data. A line holds every field the
//! series has at that timestamp, as it was written.
//!
//! Line protocol cannot carry NaN or infinite floats: those values are left out (and a line
//! left without fields is skipped), counted, and reported at the end; CSV and JSON lines carry
//! them (`NaN`, `+Inf`, `-Inf`).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use regex::Regex;
use tally_engine::{
    ColumnInfo, ColumnValues, Database, Engine, FieldType, FieldValue, Piece, TagFilter,
};
use tally_ingest::line_protocol::{WriteLineError, write_line};

use super::error::DumpError;
use super::restore::restore_to_scratch;
use super::util::{Progress, sync_dir, temporary_sibling};

/// The output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    LineProtocol,
    Csv,
    JsonLines,
}

/// Output compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd,
    Gzip,
}

#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub data_dir: Option<PathBuf>,
    pub backup: Option<PathBuf>,
    /// Empty: every database.
    pub databases: Vec<String>,
    /// Empty: every measurement; else those matching any.
    pub measurements: Vec<Regex>,
    pub start_ns: Option<i64>,
    pub end_ns: Option<i64>,
    pub format: Format,
    /// `None`: standard output.
    pub output: Option<PathBuf>,
    pub compression: Compression,
    /// InfluxDB 1.x does not read `u` integers: write unsigned values that fit as integers.
    pub unsigned_as_integer: bool,
}

/// What an export wrote and what it had to leave out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub lines: u64,
    pub values: u64,
    pub series: u64,
    /// NaN or infinite float values left out of line protocol.
    pub non_finite_skipped: u64,
    /// Points written as no line at all (every field unwritable, or a name no line can carry).
    pub points_skipped: u64,
    /// Unsigned values above i64::MAX left out under `--unsigned-as-integer`.
    pub unsigned_skipped: u64,
    /// The first reasons points were skipped, for the report.
    pub skip_reasons: Vec<String>,
}

const MAX_SKIP_REASONS: usize = 10;
/// Bytes buffered before a write to the output.
const FLUSH_BYTES: usize = 1 << 20;

/// One column being merged: its pieces, and the decoded chunk it is in.
struct Cursor {
    field: String,
    pieces: Vec<Piece>,
    next_piece: usize,
    ts: Vec<i64>,
    values: ColumnValues,
    position: usize,
}

impl Cursor {
    /// Moves to the next point at or after `start` within range; false when exhausted.
    fn fill(&mut self, start: i64, end: i64) -> Result<bool, DumpError> {
        loop {
            if self.position < self.ts.len() {
                if self.ts[self.position] > end {
                    self.ts.clear();
                    self.next_piece = self.pieces.len();
                    return Ok(false);
                }
                return Ok(true);
            }
            let Some(piece) = self.pieces.get(self.next_piece) else {
                return Ok(false);
            };
            self.next_piece += 1;
            let stats = piece.stats();
            if stats.max_time < start {
                continue;
            }
            if stats.min_time > end {
                self.next_piece = self.pieces.len();
                return Ok(false);
            }
            piece.decode_into(&mut self.ts, &mut self.values)?;
            self.position = self.ts.partition_point(|&t| t < start);
        }
    }

    fn current_time(&self) -> i64 {
        self.ts[self.position]
    }
}

/// Writes lines of one format, buffered.
struct Sink {
    writer: BackgroundWriter,
    buffer: String,
    format: Format,
    unsigned_as_integer: bool,
    summary: ExportSummary,
    database: String,
    /// Whether to name the database in line protocol comments and JSON objects.
    name_databases: bool,
}

impl Sink {
    fn flush_if_full(&mut self) -> Result<(), DumpError> {
        if self.buffer.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DumpError> {
        self.writer.send(&mut self.buffer)
    }

    fn skip(&mut self, reason: String) {
        self.summary.points_skipped += 1;
        if self.summary.skip_reasons.len() < MAX_SKIP_REASONS {
            self.summary.skip_reasons.push(reason);
        }
    }
}

fn write_float(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        tally_ingest::line_protocol::write_float(out, value);
    }
}

fn write_integer(out: &mut String, value: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// A CSV cell: quoted when it holds a comma, quote, line break, or leading or trailing space,
/// or is empty (an unquoted empty cell means "absent").
fn csv_cell(out: &mut String, text: &str) {
    let needs_quotes = text.is_empty()
        || text.contains([',', '"', '\n', '\r'])
        || text.starts_with([' ', '#'])
        || text.ends_with(' ');
    if needs_quotes {
        csv_quoted(out, text);
    } else {
        out.push_str(text);
    }
}

fn csv_quoted(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
}

pub(crate) fn json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub(crate) fn type_name(field_type: FieldType) -> &'static str {
    match field_type {
        FieldType::Float => "float",
        FieldType::Integer => "integer",
        FieldType::Unsigned => "unsigned",
        FieldType::Boolean => "boolean",
        _ => "string",
    }
}

/// Exports one series: merges its columns by time and writes a line per timestamp.
fn export_series(
    sink: &mut Sink,
    database: &Database,
    measurement: &str,
    tags: &[(String, String)],
    columns: &[ColumnInfo],
    csv_layout: Option<&CsvLayout>,
    (start, end): (i64, i64),
) -> Result<(), DumpError> {
    let ids: Vec<u32> = columns.iter().map(|c| c.id).collect();
    let view = database.read(&ids, start, end)?;
    let mut cursors = Vec::with_capacity(columns.len());
    for column in columns {
        let pieces = view.pieces(column.id)?;
        if pieces.is_empty() {
            continue;
        }
        cursors.push(Cursor {
            field: column.field.clone(),
            pieces,
            next_piece: 0,
            ts: Vec::new(),
            values: ColumnValues::new(column.field_type),
            position: 0,
        });
    }
    cursors.sort_by(|a, b| a.field.cmp(&b.field));
    let mut live: Vec<usize> = Vec::with_capacity(cursors.len());
    for (i, cursor) in cursors.iter_mut().enumerate() {
        if cursor.fill(start, end)? {
            live.push(i);
        }
    }
    if live.is_empty() {
        return Ok(());
    }
    sink.summary.series += 1;
    let tag_refs: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let template = match sink.format {
        Format::LineProtocol => lp_template(measurement, &tag_refs, &cursors).map(Template::Lp),
        Format::JsonLines => Some(Template::Json(json_template(
            sink,
            measurement,
            &tag_refs,
            &cursors,
        ))),
        Format::Csv => None,
    };
    let mut at_time: Vec<usize> = Vec::with_capacity(cursors.len());
    // The fields of one line borrow the cursors' buffers; the vector's allocation is kept
    // across lines by recycling it between lifetimes.
    let mut spare: Vec<(&'static str, FieldValue<'static>)> = Vec::with_capacity(cursors.len());
    while !live.is_empty() {
        let t = live
            .iter()
            .map(|&i| cursors[i].current_time())
            .min()
            .unwrap_or(i64::MAX);
        at_time.clear();
        at_time.extend(
            live.iter()
                .copied()
                .filter(|&i| cursors[i].current_time() == t),
        );
        let written = match &template {
            Some(Template::Lp(template)) => write_lp_fast(sink, template, &cursors, &at_time, t),
            Some(Template::Json(template)) => {
                write_json_fast(sink, template, &cursors, &at_time, t)
            }
            None => false,
        };
        if !written {
            let mut fields = recycle(std::mem::take(&mut spare));
            for &i in &at_time {
                let cursor = &cursors[i];
                if let Some(value) = cursor.values.get(cursor.position) {
                    fields.push((cursor.field.as_str(), value));
                }
            }
            write_point(sink, measurement, &tag_refs, &mut fields, t, csv_layout);
            spare = recycle(fields);
        }
        sink.flush_if_full()?;
        for &i in &at_time {
            cursors[i].position += 1;
        }
        let mut k = 0;
        while k < live.len() {
            let i = live[k];
            if cursors[i].fill(start, end)? {
                k += 1;
            } else {
                live.swap_remove(k);
            }
        }
        // Fields must stay in name order for a stable output.
        live.sort_unstable();
    }
    Ok(())
}

/// Line protocol of one series escaped once, by `write_line` itself: the series part (with the
/// space after it) and each column's `key=`. Lines of the series are then assembled from these
/// pieces and the values. `None` when a name needs the writer's per-line checks (it cannot be
/// written, or a key starts with a tab or NUL, which only the first field key may not).
struct LpTemplate {
    prefix: String,
    keys: Vec<String>,
}

fn lp_template(measurement: &str, tags: &[(&str, &str)], cursors: &[Cursor]) -> Option<LpTemplate> {
    let mut scratch = String::new();
    write_line(
        &mut scratch,
        measurement,
        tags,
        &[("x", FieldValue::Integer(0))],
        None,
    )
    .ok()?;
    let prefix = scratch.strip_suffix("x=0i\n")?.to_string();
    let mut keys = Vec::with_capacity(cursors.len());
    for cursor in cursors {
        if cursor.field.starts_with(['\t', '\0']) {
            return None;
        }
        scratch.clear();
        write_line(
            &mut scratch,
            "m",
            &[],
            &[(cursor.field.as_str(), FieldValue::Integer(0))],
            None,
        )
        .ok()?;
        keys.push(
            scratch
                .strip_prefix("m ")?
                .strip_suffix("0i\n")?
                .to_string(),
        );
    }
    Some(LpTemplate { prefix, keys })
}

/// Writes one line from a template, as `write_line` would write it; false when the line needs
/// `write_line` itself (a timestamp it refuses, a value type it alone knows).
fn write_lp_fast(
    sink: &mut Sink,
    template: &LpTemplate,
    cursors: &[Cursor],
    at_time: &[usize],
    t: i64,
) -> bool {
    use tally_ingest::line_protocol::{MAX_TIMESTAMP_NS, MIN_TIMESTAMP_NS};
    if !(MIN_TIMESTAMP_NS..=MAX_TIMESTAMP_NS).contains(&t) {
        return false;
    }
    let out = &mut sink.buffer;
    let start = out.len();
    out.push_str(&template.prefix);
    let mut written = 0u64;
    let mut non_finite = 0u64;
    let mut unsigned_skipped = 0u64;
    for &i in at_time {
        let cursor = &cursors[i];
        let p = cursor.position;
        // A damaged chunk may decode fewer values than timestamps: the careful path skips them.
        if p >= cursor.values.len() {
            out.truncate(start);
            return false;
        }
        let key = &template.keys[i];
        let separator = if written > 0 { "," } else { "" };
        match &cursor.values {
            ColumnValues::Float(v) => {
                let f = v[p];
                if !f.is_finite() {
                    non_finite += 1;
                    continue;
                }
                out.push_str(separator);
                out.push_str(key);
                write_float(out, f);
            }
            ColumnValues::Integer(v) => {
                out.push_str(separator);
                out.push_str(key);
                write_integer(out, v[p]);
                out.push('i');
            }
            ColumnValues::Unsigned(v) => {
                let u = v[p];
                if sink.unsigned_as_integer {
                    if u > i64::MAX as u64 {
                        unsigned_skipped += 1;
                        continue;
                    }
                    out.push_str(separator);
                    out.push_str(key);
                    write_integer(out, u);
                    out.push('i');
                } else {
                    out.push_str(separator);
                    out.push_str(key);
                    write_integer(out, u);
                    out.push('u');
                }
            }
            ColumnValues::Boolean(v) => {
                out.push_str(separator);
                out.push_str(key);
                out.push_str(if v[p] { "true" } else { "false" });
            }
            ColumnValues::String(v) => {
                out.push_str(separator);
                out.push_str(key);
                out.push('"');
                for c in v[p].chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
            _ => {
                out.truncate(start);
                return false;
            }
        }
        written += 1;
    }
    sink.summary.non_finite_skipped += non_finite;
    sink.summary.unsigned_skipped += unsigned_skipped;
    if written == 0 {
        out.truncate(start);
        sink.skip(if unsigned_skipped > 0 {
            format!("a point at {t}: only unsigned values above 2^63-1")
        } else {
            format!("a point at {t}: every field is NaN or infinite")
        });
        return true;
    }
    out.push(' ');
    write_integer(out, t);
    out.push('\n');
    sink.summary.lines += 1;
    sink.summary.values += written;
    true
}

/// The fast paths' per-series templates.
enum Template {
    Lp(LpTemplate),
    Json(JsonTemplate),
}

/// JSON lines of one series escaped once: the object up to its `"fields":{`, and each
/// column's quoted key.
struct JsonTemplate {
    prefix: String,
    keys: Vec<String>,
}

fn json_template(
    sink: &Sink,
    measurement: &str,
    tags: &[(&str, &str)],
    cursors: &[Cursor],
) -> JsonTemplate {
    let mut prefix = String::from("{");
    if sink.name_databases {
        prefix.push_str("\"database\":");
        json_string(&mut prefix, &sink.database);
        prefix.push(',');
    }
    prefix.push_str("\"measurement\":");
    json_string(&mut prefix, measurement);
    prefix.push_str(",\"tags\":{");
    for (i, (k, v)) in tags.iter().enumerate() {
        if i > 0 {
            prefix.push(',');
        }
        json_string(&mut prefix, k);
        prefix.push(':');
        json_string(&mut prefix, v);
    }
    prefix.push_str("},\"fields\":{");
    let keys = cursors
        .iter()
        .map(|cursor| {
            let mut key = String::new();
            json_string(&mut key, &cursor.field);
            key
        })
        .collect();
    JsonTemplate { prefix, keys }
}

/// Writes one JSON line from a template, as `write_point` would write it; false when the
/// line needs `write_point` (a value type it alone knows, a damaged chunk).
fn write_json_fast(
    sink: &mut Sink,
    template: &JsonTemplate,
    cursors: &[Cursor],
    at_time: &[usize],
    t: i64,
) -> bool {
    let out = &mut sink.buffer;
    let start = out.len();
    out.push_str(&template.prefix);
    let mut written = 0u64;
    let mut unsigned_skipped = 0u64;
    // Keys of values whose JSON number alone would not say their type.
    let mut typed: [(usize, &str); 8] = [(0, ""); 8];
    let mut n_typed = 0usize;
    for &i in at_time {
        let cursor = &cursors[i];
        let p = cursor.position;
        if p >= cursor.values.len() {
            out.truncate(start);
            return false;
        }
        let key = &template.keys[i];
        let separator = if written > 0 { "," } else { "" };
        match &cursor.values {
            ColumnValues::Float(v) => {
                let f = v[p];
                out.push_str(separator);
                out.push_str(key);
                out.push(':');
                if f.is_finite() {
                    tally_ingest::line_protocol::write_float_json(out, f);
                } else {
                    if n_typed == typed.len() {
                        out.truncate(start);
                        return false;
                    }
                    out.push('"');
                    write_float(out, f);
                    out.push('"');
                    typed[n_typed] = (i, "float");
                    n_typed += 1;
                }
            }
            ColumnValues::Integer(v) => {
                out.push_str(separator);
                out.push_str(key);
                out.push(':');
                write_integer(out, v[p]);
            }
            ColumnValues::Unsigned(v) => {
                let u = v[p];
                if sink.unsigned_as_integer {
                    if u > i64::MAX as u64 {
                        unsigned_skipped += 1;
                        continue;
                    }
                } else {
                    if n_typed == typed.len() {
                        out.truncate(start);
                        return false;
                    }
                    typed[n_typed] = (i, "unsigned");
                    n_typed += 1;
                }
                out.push_str(separator);
                out.push_str(key);
                out.push(':');
                write_integer(out, u);
            }
            ColumnValues::Boolean(v) => {
                out.push_str(separator);
                out.push_str(key);
                out.push(':');
                out.push_str(if v[p] { "true" } else { "false" });
            }
            ColumnValues::String(v) => {
                out.push_str(separator);
                out.push_str(key);
                out.push(':');
                json_string(out, &v[p]);
            }
            _ => {
                out.truncate(start);
                return false;
            }
        }
        written += 1;
    }
    sink.summary.unsigned_skipped += unsigned_skipped;
    if written == 0 {
        out.truncate(start);
        sink.skip(format!("a point at {t}: only unsigned values above 2^63-1"));
        return true;
    }
    out.push('}');
    if n_typed > 0 {
        out.push_str(",\"types\":{");
        for (n, (i, type_name)) in typed[..n_typed].iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(&template.keys[*i]);
            out.push_str(":\"");
            out.push_str(type_name);
            out.push('"');
        }
        out.push('}');
    }
    out.push_str(",\"time\":");
    write_integer(out, t);
    out.push_str("}\n");
    sink.summary.lines += 1;
    sink.summary.values += written;
    true
}

/// Empties a vector of borrowed fields and returns it with other lifetimes, keeping its
/// allocation (collecting an empty, same-layout iterator reuses the buffer in place).
fn recycle<'a, 'b>(mut fields: Vec<(&'a str, FieldValue<'a>)>) -> Vec<(&'b str, FieldValue<'b>)> {
    fields.clear();
    fields
        .into_iter()
        .map(|(_, value)| {
            (
                "",
                FieldValue::Boolean(matches!(value, FieldValue::Boolean(true))),
            )
        })
        .collect()
}

fn write_point(
    sink: &mut Sink,
    measurement: &str,
    tags: &[(&str, &str)],
    fields: &mut Vec<(&str, FieldValue<'_>)>,
    t: i64,
    csv_layout: Option<&CsvLayout>,
) {
    if sink.unsigned_as_integer {
        let before = fields.len();
        fields.retain(|(_, v)| !matches!(v, FieldValue::Unsigned(u) if *u > i64::MAX as u64));
        sink.summary.unsigned_skipped += (before - fields.len()) as u64;
        for (_, value) in fields.iter_mut() {
            if let FieldValue::Unsigned(u) = value {
                *value = FieldValue::Integer(*u as i64);
            }
        }
        if fields.is_empty() {
            sink.skip(format!(
                "{measurement} at {t}: only unsigned values above 2^63-1"
            ));
            return;
        }
    }
    match sink.format {
        Format::LineProtocol => {
            let non_finite = fields
                .iter()
                .filter(|(_, v)| matches!(v, FieldValue::Float(f) if !f.is_finite()))
                .count() as u64;
            match write_line(&mut sink.buffer, measurement, tags, fields, Some(t)) {
                Ok(()) => {
                    sink.summary.lines += 1;
                    sink.summary.values += fields.len() as u64 - non_finite;
                    sink.summary.non_finite_skipped += non_finite;
                }
                Err(WriteLineError::NoWritableFields) => {
                    sink.summary.non_finite_skipped += non_finite;
                    sink.skip(format!(
                        "{measurement} at {t}: every field is NaN or infinite"
                    ));
                }
                Err(e) => sink.skip(format!("{measurement} at {t}: {e}")),
            }
        }
        Format::JsonLines => {
            let out = &mut sink.buffer;
            out.push('{');
            if sink.name_databases {
                out.push_str("\"database\":");
                json_string(out, &sink.database);
                out.push(',');
            }
            out.push_str("\"measurement\":");
            json_string(out, measurement);
            out.push_str(",\"tags\":{");
            for (i, (k, v)) in tags.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, k);
                out.push(':');
                json_string(out, v);
            }
            out.push_str("},\"fields\":{");
            let mut typed: Vec<(&str, &str)> = Vec::new();
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, k);
                out.push(':');
                match v {
                    FieldValue::Float(f) if f.is_finite() => {
                        tally_ingest::line_protocol::write_float_json(out, *f);
                    }
                    FieldValue::Float(f) => {
                        out.push('"');
                        write_float(out, *f);
                        out.push('"');
                        typed.push((k, "float"));
                    }
                    FieldValue::Integer(n) => {
                        let _ = write!(out, "{n}");
                    }
                    FieldValue::Unsigned(n) => {
                        let _ = write!(out, "{n}");
                        typed.push((k, "unsigned"));
                    }
                    FieldValue::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
                    FieldValue::String(s) => json_string(out, s),
                    _ => out.push_str("null"),
                }
            }
            out.push('}');
            if !typed.is_empty() {
                out.push_str(",\"types\":{");
                for (i, (k, t)) in typed.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    json_string(out, k);
                    out.push(':');
                    json_string(out, t);
                }
                out.push('}');
            }
            let _ = writeln!(out, ",\"time\":{t}}}");
            sink.summary.lines += 1;
            sink.summary.values += fields.len() as u64;
        }
        Format::Csv => {
            let Some(layout) = csv_layout else {
                return;
            };
            let out = &mut sink.buffer;
            write_integer(out, t);
            for key in &layout.tag_keys {
                out.push(',');
                if let Some((_, v)) = tags.iter().find(|(k, _)| k == key) {
                    csv_cell(out, v);
                }
            }
            let mut next = 0usize;
            for (key, _) in &layout.fields {
                out.push(',');
                // Both lists are sorted by key.
                while next < fields.len() && fields[next].0 < key.as_str() {
                    next += 1;
                }
                if let Some((k, v)) = fields.get(next)
                    && *k == key.as_str()
                {
                    match v {
                        FieldValue::Float(f) => write_float(out, *f),
                        FieldValue::Integer(n) => write_integer(out, *n),
                        FieldValue::Unsigned(n) => write_integer(out, *n),
                        FieldValue::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
                        FieldValue::String(s) => csv_quoted(out, s),
                        _ => {}
                    }
                }
            }
            out.push('\n');
            sink.summary.lines += 1;
            sink.summary.values += fields.len() as u64;
        }
    }
}

/// The columns of one measurement's CSV section.
struct CsvLayout {
    tag_keys: Vec<String>,
    fields: Vec<(String, FieldType)>,
}

fn csv_header(out: &mut String, database: &str, measurement: &str, layout: &CsvLayout) {
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str("#database,");
    csv_cell(out, database);
    out.push_str("\n#measurement,");
    csv_cell(out, measurement);
    out.push_str("\n#datatype,time");
    for _ in &layout.tag_keys {
        out.push_str(",tag");
    }
    for (_, t) in &layout.fields {
        out.push(',');
        out.push_str(type_name(*t));
    }
    out.push_str("\ntime");
    for key in &layout.tag_keys {
        out.push(',');
        csv_cell(out, key);
    }
    for (key, _) in &layout.fields {
        out.push(',');
        csv_cell(out, key);
    }
    out.push('\n');
}

/// An output stream that must be finished to be complete: the last buffered bytes written and
/// a compression frame closed, with any error reported rather than lost in a drop.
trait FinishWrite: Write + Send {
    fn finish(self: Box<Self>) -> std::io::Result<()>;
}

impl<W: Write + Send> FinishWrite for BufWriter<W> {
    fn finish(self: Box<Self>) -> std::io::Result<()> {
        let mut inner = self.into_inner().map_err(|e| e.into_error())?;
        inner.flush()
    }
}

impl<W: Write + Send> FinishWrite for zstd::Encoder<'static, W> {
    fn finish(self: Box<Self>) -> std::io::Result<()> {
        (*self).finish()?.flush()
    }
}

impl<W: Write + Send> FinishWrite for flate2::write::GzEncoder<W> {
    fn finish(self: Box<Self>) -> std::io::Result<()> {
        (*self).finish()?.flush()
    }
}

/// Buffers of output sent to the thread that writes them, so formatting the next megabyte
/// overlaps writing (and compressing) the last one.
struct BackgroundWriter {
    sender: Option<std::sync::mpsc::SyncSender<String>>,
    recycled: std::sync::mpsc::Receiver<String>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

/// Buffers in flight between the formatter and the writer thread.
const BUFFERS_IN_FLIGHT: usize = 2;

impl BackgroundWriter {
    fn spawn(mut writer: Box<dyn FinishWrite>) -> Result<BackgroundWriter, DumpError> {
        let (sender, receiver) = std::sync::mpsc::sync_channel::<String>(BUFFERS_IN_FLIGHT);
        let (give_back, recycled) = std::sync::mpsc::sync_channel::<String>(BUFFERS_IN_FLIGHT + 1);
        let thread = std::thread::Builder::new()
            .name("export-writer".into())
            .spawn(move || {
                for mut buffer in receiver {
                    writer.write_all(buffer.as_bytes())?;
                    buffer.clear();
                    let _ = give_back.try_send(buffer);
                }
                writer.finish()
            })
            .map_err(|e| DumpError::io("<export writer thread>", e))?;
        Ok(BackgroundWriter {
            sender: Some(sender),
            recycled,
            thread: Some(thread),
        })
    }

    /// Hands the buffer's contents to the writer thread and leaves an empty buffer in its place.
    fn send(&mut self, buffer: &mut String) -> Result<(), DumpError> {
        if buffer.is_empty() {
            return Ok(());
        }
        let empty = self
            .recycled
            .try_recv()
            .unwrap_or_else(|_| String::with_capacity(buffer.capacity()));
        let full = std::mem::replace(buffer, empty);
        let sent = self.sender.as_ref().map(|sender| sender.send(full).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // The thread stopped: its error says why.
        self.finish()
    }

    /// Waits for every buffer to be written and the stream finished.
    fn finish(&mut self) -> Result<(), DumpError> {
        self.sender = None;
        let Some(thread) = self.thread.take() else {
            return Err(DumpError::Failed(
                "the export output was already closed".into(),
            ));
        };
        match thread.join() {
            Ok(result) => result.map_err(|e| DumpError::io("<export output>", e)),
            Err(_) => Err(DumpError::Failed(
                "the export writer thread panicked".into(),
            )),
        }
    }
}

impl Drop for BackgroundWriter {
    fn drop(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The export's writer, and for a file output its (temporary, final) paths.
type Output = (Box<dyn FinishWrite>, Option<(PathBuf, PathBuf)>);

fn open_output(options: &ExportOptions) -> Result<Output, DumpError> {
    let (raw, paths): (Box<dyn Write + Send>, _) = match &options.output {
        None => (Box::new(std::io::stdout()), None),
        Some(path) => {
            let temporary = temporary_sibling(path, "tmp");
            let file = File::create(&temporary).map_err(|e| DumpError::io(&temporary, e))?;
            (Box::new(file), Some((temporary, path.clone())))
        }
    };
    let buffered = BufWriter::with_capacity(1 << 20, raw);
    let writer: Box<dyn FinishWrite> = match options.compression {
        Compression::None => Box::new(buffered),
        Compression::Zstd => {
            Box::new(zstd::Encoder::new(buffered, 3).map_err(|e| DumpError::io("<zstd>", e))?)
        }
        Compression::Gzip => Box::new(flate2::write::GzEncoder::new(
            buffered,
            flate2::Compression::fast(),
        )),
    };
    Ok((writer, paths))
}

/// Runs `export`.
pub fn export(options: &ExportOptions, progress: &Progress) -> Result<ExportSummary, DumpError> {
    let (dir, scratch) = match (&options.data_dir, &options.backup) {
        (Some(dir), None) => (dir.clone(), None),
        (None, Some(backup)) => {
            let scratch = restore_to_scratch(backup, progress)?;
            (scratch.clone(), Some(scratch))
        }
        _ => {
            return Err(DumpError::Usage(
                "export needs exactly one source: --data-dir DIR (a stopped tallyd's directory, or a restored backup) or --backup PATH".into(),
            ));
        }
    };
    let result = export_directory(&dir, options, progress);
    if let Some(scratch) = scratch {
        let _ = std::fs::remove_dir_all(scratch);
    }
    result
}

fn export_directory(
    dir: &Path,
    options: &ExportOptions,
    progress: &Progress,
) -> Result<ExportSummary, DumpError> {
    if !dir.join(tally_engine::offline::DATABASES_DIR).is_dir() {
        return Err(DumpError::Failed(format!(
            "{} is not a data directory (it has no dbs/ folder)",
            dir.display()
        )));
    }
    let engine = Engine::open(dir, super::util::offline_engine_options()).map_err(|e| match e {
        tally_engine::EngineError::Locked { holder, .. } => DumpError::Failed(format!(
            "{} is in use by a running tallyd ({holder}): take a backup with `tally-dump backup --host URL` and export from it with --backup, or stop the server",
            dir.display()
        )),
        other => DumpError::Engine(other),
    })?;
    let mut names = engine.database_names();
    if !options.databases.is_empty() {
        for wanted in &options.databases {
            if !names.contains(wanted) {
                return Err(DumpError::Failed(format!(
                    "database {wanted:?} does not exist in {} (it holds {names:?})",
                    dir.display()
                )));
            }
        }
        names.retain(|n| options.databases.contains(n));
    }
    let start = options.start_ns.unwrap_or(i64::MIN);
    let end = options.end_ns.unwrap_or(i64::MAX);
    let (writer, paths) = open_output(options)?;
    let mut sink = Sink {
        writer: BackgroundWriter::spawn(writer)?,
        buffer: String::with_capacity(FLUSH_BYTES + 4096),
        format: options.format,
        unsigned_as_integer: options.unsigned_as_integer,
        summary: ExportSummary::default(),
        database: String::new(),
        name_databases: names.len() > 1 || options.format == Format::JsonLines,
    };
    let bar = progress.counter("export");
    let outcome = (|| -> Result<(), DumpError> {
        for name in &names {
            let Some(database) = engine.database(name) else {
                continue;
            };
            sink.database = name.clone();
            if sink.format == Format::LineProtocol && sink.name_databases {
                sink.buffer.push_str("# CONTEXT-DATABASE: ");
                sink.buffer.push_str(name);
                sink.buffer.push('\n');
            }
            for measurement in database.measurements() {
                if !options.measurements.is_empty()
                    && !options
                        .measurements
                        .iter()
                        .any(|r| r.is_match(&measurement))
                {
                    continue;
                }
                let columns = database.select(&measurement, None, &TagFilter::All);
                // Group the columns by series (their tag sets).
                let mut by_series: std::collections::BTreeMap<
                    Vec<(String, String)>,
                    Vec<ColumnInfo>,
                > = std::collections::BTreeMap::new();
                for column in columns {
                    by_series
                        .entry(column.tags.clone())
                        .or_default()
                        .push(column);
                }
                let layout = (sink.format == Format::Csv).then(|| {
                    let mut tag_keys: Vec<String> = by_series
                        .keys()
                        .flat_map(|tags| tags.iter().map(|(k, _)| k.clone()))
                        .collect();
                    tag_keys.sort();
                    tag_keys.dedup();
                    CsvLayout {
                        tag_keys,
                        fields: database.field_keys(&measurement),
                    }
                });
                if let Some(layout) = &layout {
                    csv_header(&mut sink.buffer, name, &measurement, layout);
                }
                for (tags, columns) in &by_series {
                    let before = sink.summary.lines;
                    export_series(
                        &mut sink,
                        &database,
                        &measurement,
                        tags,
                        columns,
                        layout.as_ref(),
                        (start, end),
                    )?;
                    bar.inc(sink.summary.lines - before);
                }
            }
        }
        sink.flush()?;
        sink.writer.finish()
    })();
    bar.finish_and_clear();
    let summary = std::mem::take(&mut sink.summary);
    drop(sink);
    match (outcome, paths) {
        (Ok(()), Some((temporary, path))) => {
            let file = File::open(&temporary).map_err(|e| DumpError::io(&temporary, e))?;
            file.sync_all().map_err(|e| DumpError::io(&temporary, e))?;
            std::fs::rename(&temporary, &path).map_err(|e| DumpError::io(&path, e))?;
            sync_dir(&super::util::parent_of(&path))?;
        }
        (Ok(()), None) => {}
        (Err(e), paths) => {
            if let Some((temporary, _)) = paths {
                let _ = std::fs::remove_file(temporary);
            }
            return Err(e);
        }
    }
    drop(engine);
    Ok(summary)
}

/// The report printed after an export (to stderr).
pub(crate) fn describe(summary: &ExportSummary) -> String {
    let mut text = format!(
        "exported {} lines ({} values, {} series)",
        summary.lines, summary.values, summary.series
    );
    if summary.non_finite_skipped > 0 {
        text.push_str(&format!(
            "; {} NaN or infinite values left out: line protocol cannot carry them (export as csv or jsonl to keep them)",
            summary.non_finite_skipped
        ));
    }
    if summary.unsigned_skipped > 0 {
        text.push_str(&format!(
            "; {} unsigned values above 9223372036854775807 left out (--unsigned-as-integer)",
            summary.unsigned_skipped
        ));
    }
    if summary.points_skipped > 0 {
        text.push_str(&format!("; {} points skipped:", summary.points_skipped));
        for reason in &summary.skip_reasons {
            text.push_str(&format!("\n  {reason}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(field: &str, values: ColumnValues) -> Cursor {
        Cursor {
            field: field.to_string(),
            pieces: Vec::new(),
            next_piece: 0,
            ts: vec![0; values.len()],
            values,
            position: 0,
        }
    }

    fn sink() -> Sink {
        Sink {
            writer: BackgroundWriter::spawn(Box::new(BufWriter::new(std::io::sink()))).unwrap(),
            buffer: String::new(),
            format: Format::LineProtocol,
            unsigned_as_integer: false,
            summary: ExportSummary::default(),
            database: String::new(),
            name_databases: false,
        }
    }

    /// Ten points of one series in each value type, with awkward names and values.
    fn awkward_cursors() -> Vec<Cursor> {
        let floats = [
            1.0,
            -0.0,
            0.1,
            1e16,
            1e-7,
            5e-324,
            f64::MAX,
            f64::INFINITY,
            f64::NAN,
            3.0,
        ];
        vec![
            cursor(" a,b=\"c", ColumnValues::Float(floats.to_vec())),
            cursor(
                "i",
                ColumnValues::Integer(vec![i64::MIN, 0, i64::MAX, -1, 5, 6, 7, 8, 9, 10]),
            ),
            cursor(
                "s",
                ColumnValues::String(
                    (0..10)
                        .map(|i| format!("say \"{i}\" \\o/\n\u{1}✓"))
                        .collect(),
                ),
            ),
            cursor(
                "u",
                ColumnValues::Unsigned(vec![u64::MAX, 0, 1, 2, 3, 4, 5, 6, 7, 8]),
            ),
            cursor(
                "z",
                ColumnValues::Boolean(vec![
                    true, false, true, false, true, false, true, false, true, false,
                ]),
            ),
        ]
    }

    #[test]
    fn lines_from_a_template_equal_what_write_line_writes() {
        let cursors = awkward_cursors();
        let measurement = "we ird,m=\"";
        let tags = [("t k=", "v,1 =ü"), ("host", "ソネット")];
        let template = lp_template(measurement, &tags, &cursors).unwrap();
        let mut cursors = cursors;
        for position in 0..10 {
            for c in cursors.iter_mut() {
                c.position = position;
            }
            let at_time: Vec<usize> = (0..cursors.len()).collect();
            let t = -1_000_000 + position as i64;
            let mut fast = sink();
            assert!(write_lp_fast(&mut fast, &template, &cursors, &at_time, t));
            let fields: Vec<(&str, FieldValue<'_>)> = cursors
                .iter()
                .map(|c| (c.field.as_str(), c.values.get(position).unwrap()))
                .collect();
            let mut expected = String::new();
            write_line(&mut expected, measurement, &tags, &fields, Some(t)).unwrap();
            assert_eq!(fast.buffer, expected);
        }
    }

    #[test]
    fn json_lines_from_a_template_equal_what_write_point_writes() {
        let columns = awkward_cursors;
        let measurement = "we ird,m=\"";
        let tags = [("t k=", "v,1 =ü"), ("host", "ソネット")];
        for (unsigned_as_integer, name_databases) in [(false, true), (true, false)] {
            let mut cursors = columns();
            let json_sink = || Sink {
                format: Format::JsonLines,
                unsigned_as_integer,
                name_databases,
                database: "d\"b".into(),
                ..sink()
            };
            let template = json_template(&json_sink(), measurement, &tags, &cursors);
            for position in 0..10 {
                for c in cursors.iter_mut() {
                    c.position = position;
                }
                let at_time: Vec<usize> = (0..cursors.len()).collect();
                let t = -1_000_000 + position as i64;
                let mut fast = json_sink();
                assert!(write_json_fast(&mut fast, &template, &cursors, &at_time, t));
                let mut fields: Vec<(&str, FieldValue<'_>)> = cursors
                    .iter()
                    .map(|c| (c.field.as_str(), c.values.get(position).unwrap()))
                    .collect();
                let mut slow = json_sink();
                write_point(&mut slow, measurement, &tags, &mut fields, t, None);
                assert_eq!(fast.buffer, slow.buffer);
                assert_eq!(fast.summary, slow.summary);
                let parsed: serde_json::Value = serde_json::from_str(&fast.buffer).unwrap();
                assert_eq!(parsed["time"], t);
            }
        }
    }

    #[test]
    fn names_that_need_the_writers_checks_get_no_template() {
        let cursors = vec![cursor("\tkey", ColumnValues::Float(vec![1.0]))];
        assert!(lp_template("m", &[], &cursors).is_none());
        let cursors = vec![cursor("v", ColumnValues::Float(vec![1.0]))];
        assert!(lp_template("line\nbreak", &[], &cursors).is_none());
        assert!(lp_template("m", &[("time", "x")], &cursors).is_none());
    }
}
