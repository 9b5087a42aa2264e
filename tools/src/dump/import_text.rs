//! Reading the CSV and JSON lines that `export` writes, for `import`. Both are specified in
//! `docs/backup.md`, "Export formats".
//!
//! CSV: sections of `#database,<name>` (optional), `#measurement,<name>`,
//! `#datatype,time,tag,...,float|integer|unsigned|boolean|string`, a header row, then one row
//! per point; a blank line ends a section. An unquoted empty cell is an absent tag or field; a
//! quoted empty cell (`""`) is an empty string.
//!
//! JSON lines: one object per line with `measurement`, `tags`, `fields`, `time` (nanoseconds or
//! an RFC 3339 string), optional `database`, and `types` naming the type of any field whose
//! JSON value does not say it (unsigned integers; NaN and infinities written as strings).

use std::io::BufRead;
use std::sync::Arc;

use tally_engine::FieldValue;

use super::error::DumpError;
use super::import::{Batch, Converted, ImportOptions, RejectSink, parse_row_time};

/// One CSV cell and whether it was quoted.
struct Cell {
    text: String,
    quoted: bool,
}

/// Reads CSV records (RFC 4180: quoted cells may hold commas, quotes and line breaks).
struct CsvRecords<'a> {
    reader: &'a mut dyn BufRead,
    next_line: u64,
    buffer: String,
}

impl CsvRecords<'_> {
    /// The next record and the line it starts on.
    fn next(&mut self, shown: &str) -> Result<Option<(u64, Vec<Cell>)>, DumpError> {
        let start_line = self.next_line;
        let mut cells = Vec::new();
        let mut cell = String::new();
        let mut quoted = false;
        let mut in_quotes = false;
        let mut read_any = false;
        loop {
            self.buffer.clear();
            let n = self
                .reader
                .read_line(&mut self.buffer)
                .map_err(|e| DumpError::io(shown, e))?;
            if n == 0 {
                if !read_any {
                    return Ok(None);
                }
                cells.push(Cell { text: cell, quoted });
                return Ok(Some((start_line, cells)));
            }
            read_any = true;
            self.next_line += 1;
            let mut chars = self.buffer.chars().peekable();
            while let Some(c) = chars.next() {
                if in_quotes {
                    if c == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            cell.push('"');
                        } else {
                            in_quotes = false;
                        }
                    } else {
                        cell.push(c);
                    }
                    continue;
                }
                match c {
                    '"' if cell.is_empty() && !quoted => {
                        in_quotes = true;
                        quoted = true;
                    }
                    ',' => {
                        cells.push(Cell {
                            text: std::mem::take(&mut cell),
                            quoted,
                        });
                        quoted = false;
                    }
                    '\n' => {}
                    '\r' if chars.peek() == Some(&'\n') => {}
                    c => cell.push(c),
                }
            }
            if !in_quotes {
                cells.push(Cell { text: cell, quoted });
                return Ok(Some((start_line, cells)));
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ColumnKind {
    Time,
    Tag,
    Field(tally_engine::FieldType),
}

fn column_kind(name: &str) -> Option<ColumnKind> {
    use tally_engine::FieldType;
    Some(match name {
        "time" | "dateTime:RFC3339" => ColumnKind::Time,
        "tag" => ColumnKind::Tag,
        "float" | "double" => ColumnKind::Field(FieldType::Float),
        "integer" | "long" => ColumnKind::Field(FieldType::Integer),
        "unsigned" | "unsignedLong" => ColumnKind::Field(FieldType::Unsigned),
        "boolean" => ColumnKind::Field(FieldType::Boolean),
        "string" => ColumnKind::Field(FieldType::String),
        _ => return None,
    })
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "NaN" | "nan" => Some(f64::NAN),
        "+Inf" | "Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => text.parse::<f64>().ok().filter(|f| f.is_finite()),
    }
}

fn parse_value(kind: tally_engine::FieldType, text: &str) -> Option<FieldValue<'_>> {
    use tally_engine::FieldType;
    Some(match kind {
        FieldType::Float => FieldValue::Float(parse_float(text)?),
        FieldType::Integer => FieldValue::Integer(text.parse().ok()?),
        FieldType::Unsigned => FieldValue::Unsigned(text.parse().ok()?),
        FieldType::Boolean => FieldValue::Boolean(match text {
            "true" | "TRUE" | "True" | "t" | "T" => true,
            "false" | "FALSE" | "False" | "f" | "F" => false,
            _ => return None,
        }),
        _ => FieldValue::String(text.into()),
    })
}

/// Sends the converted points as a batch when there are any.
fn flush(
    converted: &mut Converted,
    options: &ImportOptions,
    shown: &Arc<str>,
    send: &dyn Fn(Batch) -> Result<(), DumpError>,
) -> Result<(), DumpError> {
    if let Some(batch) = converted.take_batch(options.database.as_deref(), shown)? {
        send(batch)?;
    }
    Ok(())
}

/// Reads annotated CSV; returns the NaN and infinite values left out.
pub(crate) fn read_csv(
    reader: &mut dyn BufRead,
    shown: &Arc<str>,
    options: &ImportOptions,
    offline: bool,
    bar: &indicatif::ProgressBar,
    send: &dyn Fn(Batch) -> Result<(), DumpError>,
    reject: &RejectSink<'_>,
) -> Result<u64, DumpError> {
    let mut records = CsvRecords {
        reader,
        next_line: 1,
        buffer: String::new(),
    };
    let mut converted = Converted::new(offline);
    let mut measurement: Option<String> = None;
    let mut kinds: Option<Vec<ColumnKind>> = None;
    let mut header: Option<Vec<String>> = None;
    let mut skipped = 0u64;
    while let Some((line, cells)) = records.next(shown)? {
        bar.inc(cells.iter().map(|c| c.text.len() as u64 + 1).sum());
        let first = cells.first().map(|c| (c.text.as_str(), c.quoted));
        match first {
            Some(("", false)) if cells.len() == 1 => {
                // A blank line ends the section.
                measurement = None;
                kinds = None;
                header = None;
                continue;
            }
            Some(("#database", false)) => {
                let name = cells.get(1).map(|c| c.text.clone()).unwrap_or_default();
                if options.database.is_none()
                    && converted.database.as_deref() != Some(name.as_str())
                {
                    flush(&mut converted, options, shown, send)?;
                    converted.database = Some(name);
                }
                continue;
            }
            Some(("#measurement", false)) => {
                measurement = cells.get(1).map(|c| c.text.clone());
                kinds = None;
                header = None;
                continue;
            }
            Some(("#datatype", false)) => {
                let mut parsed = Vec::new();
                for (i, cell) in cells.iter().enumerate().skip(1) {
                    match column_kind(&cell.text) {
                        Some(kind) => parsed.push(kind),
                        None => {
                            reject(
                                line,
                                i as u32 + 1,
                                format!("unknown data type {:?} in cell {}", cell.text, i + 1),
                            );
                        }
                    }
                }
                kinds = Some(parsed);
                header = None;
                continue;
            }
            Some((text, false)) if text.starts_with('#') => continue,
            _ => {}
        }
        let (Some(m), Some(k)) = (&measurement, &kinds) else {
            reject(
                line,
                1,
                "a data row before the #measurement and #datatype rows of its section".into(),
            );
            continue;
        };
        let Some(names) = &header else {
            if cells.len() != k.len() {
                reject(
                    line,
                    1,
                    format!(
                        "the header has {} cells, #datatype names {}",
                        cells.len(),
                        k.len()
                    ),
                );
            }
            header = Some(cells.into_iter().map(|c| c.text).collect());
            continue;
        };
        if cells.len() != names.len() {
            reject(
                line,
                1,
                format!("{} cells, the header has {}", cells.len(), names.len()),
            );
            continue;
        }
        let mut tags: Vec<(&str, &str)> = Vec::new();
        let mut fields: Vec<(&str, FieldValue<'_>)> = Vec::new();
        let mut time = None;
        let mut bad = None;
        for (i, ((cell, kind), name)) in cells.iter().zip(k).zip(names).enumerate() {
            if cell.text.is_empty() && !cell.quoted {
                continue;
            }
            match kind {
                ColumnKind::Time => match parse_row_time(&cell.text) {
                    Ok(t) => time = Some(t),
                    Err(e) => {
                        bad = Some((i, e));
                        break;
                    }
                },
                ColumnKind::Tag => {
                    if !cell.text.is_empty() {
                        tags.push((name.as_str(), cell.text.as_str()));
                    }
                }
                ColumnKind::Field(field_type) => match parse_value(*field_type, &cell.text) {
                    Some(value) => fields.push((name.as_str(), value)),
                    None => {
                        bad = Some((
                            i,
                            format!(
                                "cell {} ({name}): {:?} is not a valid {}",
                                i + 1,
                                cell.text,
                                super::export::type_name(*field_type)
                            ),
                        ));
                        break;
                    }
                },
            }
        }
        if let Some((i, reason)) = bad {
            reject(line, i as u32 + 1, reason);
            continue;
        }
        let Some(time) = time else {
            reject(line, 1, "no time".into());
            continue;
        };
        if fields.is_empty() {
            reject(line, 1, "no field values".into());
            continue;
        }
        tags.sort_by(|a, b| a.0.cmp(b.0));
        match converted.push(line, m, &tags, &fields, time) {
            Ok(n) => skipped += n,
            Err(reason) => reject(line, 1, reason),
        }
        if converted.len() >= options.batch_lines {
            flush(&mut converted, options, shown, send)?;
        }
    }
    flush(&mut converted, options, shown, send)?;
    Ok(skipped)
}

/// A JSON value as a field of `declared` type (or the type its JSON form says).
fn json_field<'v>(
    value: &'v serde_json::Value,
    declared: Option<&str>,
) -> Result<Option<FieldValue<'v>>, String> {
    use serde_json::Value;
    let wrong = |what: &str| Err(format!("{value} is not a valid {what}"));
    Ok(Some(match (declared, value) {
        (_, Value::Null) => return Ok(None),
        (Some("float") | None, Value::Number(n)) if declared.is_some() || n.is_f64() => {
            match n.as_f64() {
                Some(f) => FieldValue::Float(f),
                None => return wrong("float"),
            }
        }
        (Some("float"), Value::String(s)) => match parse_float(s) {
            Some(f) => FieldValue::Float(f),
            None => return wrong("float"),
        },
        (Some("integer") | None, Value::Number(n)) if n.as_i64().is_some() => {
            FieldValue::Integer(n.as_i64().unwrap_or_default())
        }
        (Some("unsigned") | None, Value::Number(n)) if n.as_u64().is_some() => {
            FieldValue::Unsigned(n.as_u64().unwrap_or_default())
        }
        (Some("boolean") | None, Value::Bool(b)) => FieldValue::Boolean(*b),
        (Some("string") | None, Value::String(s)) => FieldValue::String(s.as_str().into()),
        (Some(t), _) => return wrong(t),
        (None, _) => return Err(format!("{value} cannot be a field value")),
    }))
}

/// Reads JSON lines; returns the NaN and infinite values left out.
pub(crate) fn read_json_lines(
    reader: &mut dyn BufRead,
    shown: &Arc<str>,
    options: &ImportOptions,
    offline: bool,
    bar: &indicatif::ProgressBar,
    send: &dyn Fn(Batch) -> Result<(), DumpError>,
    reject: &RejectSink<'_>,
) -> Result<u64, DumpError> {
    let mut converted = Converted::new(offline);
    let mut skipped = 0u64;
    let mut text = String::new();
    let mut line = 0u64;
    loop {
        text.clear();
        let n = reader
            .read_line(&mut text)
            .map_err(|e| DumpError::io(&**shown, e))?;
        if n == 0 {
            break;
        }
        line += 1;
        bar.inc(n as u64);
        if text.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                reject(line, e.column() as u32, format!("not JSON: {e}"));
                continue;
            }
        };
        let result = (|| -> Result<(), (u32, String)> {
            let object = value
                .as_object()
                .ok_or((1, "not a JSON object".to_string()))?;
            let measurement = object
                .get("measurement")
                .and_then(|m| m.as_str())
                .ok_or((1, "no \"measurement\" string".to_string()))?;
            let time = match object.get("time") {
                Some(serde_json::Value::Number(n)) => n.as_i64().ok_or((
                    1,
                    format!("time {n} is not an integer number of nanoseconds"),
                ))?,
                Some(serde_json::Value::String(s)) => parse_row_time(s).map_err(|e| (1, e))?,
                _ => return Err((1, "no \"time\"".to_string())),
            };
            if let Some(name) = object.get("database").and_then(|d| d.as_str())
                && options.database.is_none()
                && converted.database.as_deref() != Some(name)
            {
                flush(&mut converted, options, shown, send).map_err(|e| (0, e.to_string()))?;
                converted.database = Some(name.to_string());
            }
            let mut tags: Vec<(&str, &str)> = Vec::new();
            if let Some(map) = object.get("tags").and_then(|t| t.as_object()) {
                for (k, v) in map {
                    let v = v
                        .as_str()
                        .ok_or((1, format!("tag {k:?} is not a string")))?;
                    if !v.is_empty() {
                        tags.push((k.as_str(), v));
                    }
                }
            }
            tags.sort_by(|a, b| a.0.cmp(b.0));
            let types = object.get("types").and_then(|t| t.as_object());
            let mut fields: Vec<(&str, FieldValue<'_>)> = Vec::new();
            let map = object
                .get("fields")
                .and_then(|f| f.as_object())
                .ok_or((1, "no \"fields\" object".to_string()))?;
            for (k, v) in map {
                let declared = types.and_then(|t| t.get(k)).and_then(|t| t.as_str());
                match json_field(v, declared) {
                    Ok(Some(value)) => fields.push((k.as_str(), value)),
                    Ok(None) => {}
                    Err(reason) => return Err((1, format!("field {k:?}: {reason}"))),
                }
            }
            if fields.is_empty() {
                return Err((1, "no field values".to_string()));
            }
            match converted.push(line, measurement, &tags, &fields, time) {
                Ok(n) => skipped += n,
                Err(reason) => return Err((1, reason)),
            }
            Ok(())
        })();
        if let Err((column, reason)) = result {
            if column == 0 {
                return Err(DumpError::Failed(reason));
            }
            reject(line, column, reason);
        }
        if converted.len() >= options.batch_lines {
            flush(&mut converted, options, shown, send)?;
        }
    }
    flush(&mut converted, options, shown, send)?;
    Ok(skipped)
}
