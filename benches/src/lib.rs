//! Shared helpers for Tally's criterion benchmarks: seeded, realistic inputs.
//!
//! [`Dataset::generate`] runs the side-by-side benchmark's generator
//! (`../shared/bench/gen.py`, deterministic for a scale and seed) and splits its line protocol
//! into columns, one per (series, field), in time order, cut into chunks the way the engine
//! cuts them: at most [`CHUNK_POINTS`] points, never across an hour boundary.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::process::Command;

/// The most points the engine puts in one chunk by default.
pub const CHUNK_POINTS: usize = 720;

/// Chunks never span a boundary of this many nanoseconds (one hour).
pub const CHUNK_ALIGN_NS: i64 = 3_600_000_000_000;

/// A column's values, all of one type.
#[derive(Clone, Debug)]
pub enum ColumnValues {
    Float(Vec<f64>),
    Integer(Vec<i64>),
    Unsigned(Vec<u64>),
    Boolean(Vec<bool>),
    String(Vec<String>),
}

impl ColumnValues {
    pub fn len(&self) -> usize {
        match self {
            ColumnValues::Float(values) => values.len(),
            ColumnValues::Integer(values) => values.len(),
            ColumnValues::Unsigned(values) => values.len(),
            ColumnValues::Boolean(values) => values.len(),
            ColumnValues::String(values) => values.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The type's name as InfluxDB writes it.
    pub fn type_name(&self) -> &'static str {
        match self {
            ColumnValues::Float(_) => "float",
            ColumnValues::Integer(_) => "integer",
            ColumnValues::Unsigned(_) => "unsigned",
            ColumnValues::Boolean(_) => "boolean",
            ColumnValues::String(_) => "string",
        }
    }
}

/// One (series, field) column in time order.
#[derive(Clone, Debug)]
pub struct Column {
    /// `measurement.field`, the name the bench reports under.
    pub field: String,
    /// The series key: measurement and tags as written.
    pub series: String,
    pub timestamps: Vec<i64>,
    pub values: ColumnValues,
    /// The chunks, as index ranges into `timestamps` and `values`.
    pub chunks: Vec<Range<usize>>,
}

/// The line protocol `python3 gen.py --scale SCALE` writes (seed 1, deterministic).
pub fn line_protocol(scale: &str) -> Result<Vec<u8>, String> {
    let generator = Dataset::generator_path();
    let output = Command::new("python3")
        .arg(&generator)
        .args(["--scale", scale])
        .output()
        .map_err(|error| format!("cannot run python3 {}: {error}", generator.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            generator.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(output.stdout)
}

/// A parsed dataset.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    pub columns: Vec<Column>,
}

enum Parsed {
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    Boolean(bool),
    String(String),
}

fn parse_value(text: &str) -> Option<Parsed> {
    if let Some(integer) = text.strip_suffix('i') {
        return integer.parse().ok().map(Parsed::Integer);
    }
    if let Some(unsigned) = text.strip_suffix('u') {
        return unsigned.parse().ok().map(Parsed::Unsigned);
    }
    if let Some(quoted) = text
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        return Some(Parsed::String(quoted.to_string()));
    }
    match text {
        "t" | "T" | "true" | "True" | "TRUE" => return Some(Parsed::Boolean(true)),
        "f" | "F" | "false" | "False" | "FALSE" => return Some(Parsed::Boolean(false)),
        _ => {}
    }
    text.parse().ok().map(Parsed::Float)
}

impl Dataset {
    /// The path of the shared generator, relative to this crate.
    pub fn generator_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench/gen.py")
    }

    /// Runs `python3 gen.py --scale SCALE` and parses its output.
    pub fn generate(scale: &str) -> Result<Dataset, String> {
        let bytes = line_protocol(scale)?;
        let text = String::from_utf8(bytes)
            .map_err(|error| format!("generator wrote invalid UTF-8: {error}"))?;
        Dataset::parse(&text)
    }

    /// Splits plain line protocol (no escapes, no spaces inside values) into columns.
    pub fn parse(text: &str) -> Result<Dataset, String> {
        let mut points: BTreeMap<(String, String), Vec<(i64, Parsed)>> = BTreeMap::new();
        for (line_index, line) in text.lines().enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |what: &str| format!("line {}: {what}: {line}", line_index + 1);
            let mut parts = line.split(' ');
            let (Some(series), Some(fields), Some(ts)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad("expected series, fields and timestamp"));
            };
            let ts: i64 = ts.parse().map_err(|_| bad("bad timestamp"))?;
            let measurement = series.split(',').next().unwrap_or(series);
            for field in fields.split(',') {
                let (key, value) = field
                    .split_once('=')
                    .ok_or_else(|| bad("field without ="))?;
                let value = parse_value(value).ok_or_else(|| bad("bad field value"))?;
                points
                    .entry((series.to_string(), format!("{measurement}.{key}")))
                    .or_default()
                    .push((ts, value));
            }
        }
        let mut columns = Vec::with_capacity(points.len());
        for ((series, field), mut column_points) in points {
            column_points.sort_by_key(|(ts, _)| *ts);
            let timestamps: Vec<i64> = column_points.iter().map(|(ts, _)| *ts).collect();
            let values = match column_points.first().map(|(_, value)| value) {
                Some(Parsed::Float(_)) => ColumnValues::Float(
                    column_points
                        .iter()
                        .filter_map(|(_, value)| match value {
                            Parsed::Float(value) => Some(*value),
                            _ => None,
                        })
                        .collect(),
                ),
                Some(Parsed::Integer(_)) => ColumnValues::Integer(
                    column_points
                        .iter()
                        .filter_map(|(_, value)| match value {
                            Parsed::Integer(value) => Some(*value),
                            _ => None,
                        })
                        .collect(),
                ),
                Some(Parsed::Unsigned(_)) => ColumnValues::Unsigned(
                    column_points
                        .iter()
                        .filter_map(|(_, value)| match value {
                            Parsed::Unsigned(value) => Some(*value),
                            _ => None,
                        })
                        .collect(),
                ),
                Some(Parsed::Boolean(_)) => ColumnValues::Boolean(
                    column_points
                        .iter()
                        .filter_map(|(_, value)| match value {
                            Parsed::Boolean(value) => Some(*value),
                            _ => None,
                        })
                        .collect(),
                ),
                Some(Parsed::String(_)) | None => ColumnValues::String(
                    column_points
                        .iter()
                        .filter_map(|(_, value)| match value {
                            Parsed::String(value) => Some(value.clone()),
                            _ => None,
                        })
                        .collect(),
                ),
            };
            if values.len() != timestamps.len() {
                return Err(format!("field {field} of {series} changes type"));
            }
            let chunks = chunk_ranges(&timestamps);
            columns.push(Column {
                field,
                series,
                timestamps,
                values,
                chunks,
            });
        }
        Ok(Dataset { columns })
    }

    /// The distinct field names, sorted.
    pub fn fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = self
            .columns
            .iter()
            .map(|column| column.field.clone())
            .collect();
        fields.sort();
        fields.dedup();
        fields
    }

    pub fn points(&self) -> usize {
        self.columns
            .iter()
            .map(|column| column.timestamps.len())
            .sum()
    }
}

/// Cuts time-ordered timestamps into chunks of at most [`CHUNK_POINTS`] that never cross a
/// multiple of [`CHUNK_ALIGN_NS`].
pub fn chunk_ranges(timestamps: &[i64]) -> Vec<Range<usize>> {
    let mut chunks = Vec::new();
    let mut start = 0;
    for index in 1..=timestamps.len() {
        let at_end = index == timestamps.len();
        let cut = at_end
            || index - start == CHUNK_POINTS
            || timestamps[index].div_euclid(CHUNK_ALIGN_NS)
                != timestamps[start].div_euclid(CHUNK_ALIGN_NS);
        if cut && index > start {
            chunks.push(start..index);
            start = index;
        }
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_at_hours_and_at_the_point_limit() {
        let hour = CHUNK_ALIGN_NS;
        let mut ts: Vec<i64> = (0..1000).map(|i| i * 1_000_000_000).collect();
        ts.push(hour);
        ts.push(hour + 1);
        let chunks = chunk_ranges(&ts);
        assert_eq!(chunks, vec![0..720, 720..1000, 1000..1002]);
    }

    #[test]
    fn line_protocol_splits_into_typed_columns_in_time_order() {
        let text = "m,h=a f=1.5,g=3i 20\nm,h=a f=2.5,g=4i 10\nm,h=b f=1 5\n";
        let dataset = Dataset::parse(text).unwrap();
        assert_eq!(dataset.columns.len(), 3);
        let first = &dataset.columns[0];
        assert_eq!(first.field, "m.f");
        assert_eq!(first.timestamps, [10, 20]);
        assert!(matches!(&first.values, ColumnValues::Float(values) if values == &[2.5, 1.5]));
        assert!(
            matches!(&dataset.columns[1].values, ColumnValues::Integer(values) if values == &[4, 3])
        );
        assert_eq!(dataset.fields(), ["m.f", "m.g"]);
    }
}
