//! Turns series into text: aligned tables for people and CSV for programs.
//!
//! Values are never cut: a column is as wide as its widest value, measured in terminal columns
//! (a CJK character or an emoji takes two). In tables numbers are right-aligned, `null` is an
//! empty cell, and control characters are written as escapes (`\n`) so one value stays on one
//! line; CSV keeps values as they are and quotes them where RFC 4180 needs it.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::Value;
use unicode_width::UnicodeWidthStr;

use super::response::Series;

/// What separates two table columns.
const COLUMN_GAP: &str = "  ";

struct TableCell {
    text: String,
    is_number: bool,
    is_null: bool,
}

impl TableCell {
    fn from_value(value: &Value) -> TableCell {
        let (text, is_number) = match value {
            Value::Null => (String::new(), false),
            Value::Bool(flag) => (flag.to_string(), false),
            Value::Number(number) => (number.to_string(), true),
            Value::String(text) => (escape_control_characters(text).into_owned(), false),
            other => (
                escape_control_characters(&other.to_string()).into_owned(),
                false,
            ),
        };
        TableCell {
            text,
            is_number,
            is_null: value.is_null(),
        }
    }

    fn header(name: &str) -> TableCell {
        TableCell {
            text: escape_control_characters(name).into_owned(),
            is_number: false,
            is_null: false,
        }
    }
}

/// Writes `\n`, `\r`, `\t` and other control characters as escapes so that a value cannot break
/// the rows of a table.
fn escape_control_characters(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for character in text.chars() {
        match character {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            control if control.is_control() => {
                let _ = write!(escaped, "\\u{{{:x}}}", u32::from(control));
            }
            other => escaped.push(other),
        }
    }
    Cow::Owned(escaped)
}

fn display_width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// Appends one table line of `(text, right_aligned)` cells padded to `widths`. The line ends
/// with its last non-empty cell: the padding of empty cells at the end is left out, while the
/// blanks a value itself ends with are kept.
fn push_table_line<'a>(
    out: &mut String,
    cells: impl Iterator<Item = (&'a str, bool)>,
    widths: &[usize],
) {
    let mut content_end = out.len();
    for (index, ((text, right_aligned), width)) in cells.zip(widths).enumerate() {
        if index > 0 {
            out.push_str(COLUMN_GAP);
        }
        let padding = width.saturating_sub(display_width(text));
        if right_aligned {
            out.extend(std::iter::repeat_n(' ', padding));
            out.push_str(text);
        } else {
            out.push_str(text);
            out.extend(std::iter::repeat_n(' ', padding));
        }
        if !text.is_empty() {
            content_end = if right_aligned {
                out.len()
            } else {
                out.len() - padding
            };
        }
    }
    out.truncate(content_end);
    out.push('\n');
}

/// One series as a table block:
///
/// ```text
/// name: cpu
/// tags: host=a, gpu=0
/// time                  mean
/// ----                  ----
/// 2026-11-30T00:00:00Z   1.5
/// (1 row)
/// ```
pub(crate) fn table(series: &Series) -> String {
    let mut out = String::new();
    if !series.name.is_empty() {
        let _ = writeln!(out, "name: {}", escape_control_characters(&series.name));
    }
    if !series.tags.is_empty() {
        let _ = writeln!(
            out,
            "tags: {}",
            escape_control_characters(&series.tags.joined(", "))
        );
    }
    let column_count = series
        .values
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .max(series.columns.len());
    let headers: Vec<TableCell> = (0..column_count)
        .map(|index| TableCell::header(series.columns.get(index).map_or("", String::as_str)))
        .collect();
    let rows: Vec<Vec<TableCell>> = series
        .values
        .iter()
        .map(|row| row.iter().map(TableCell::from_value).collect())
        .collect();

    let mut widths: Vec<usize> = headers
        .iter()
        .map(|cell| display_width(&cell.text))
        .collect();
    // A column is numeric when it holds at least one number and nothing but numbers and nulls.
    let mut holds_a_number = vec![false; column_count];
    let mut holds_a_non_number = vec![false; column_count];
    for row in &rows {
        for (index, cell) in row.iter().enumerate() {
            widths[index] = widths[index].max(display_width(&cell.text));
            if cell.is_number {
                holds_a_number[index] = true;
            } else if !cell.is_null {
                holds_a_non_number[index] = true;
            }
        }
    }
    let numeric_column: Vec<bool> = (0..column_count)
        .map(|index| holds_a_number[index] && !holds_a_non_number[index])
        .collect();

    if column_count > 0 {
        let header_cells = headers
            .iter()
            .enumerate()
            .map(|(index, header)| (header.text.as_str(), numeric_column[index]));
        push_table_line(&mut out, header_cells, &widths);
        let dashes: Vec<String> = widths.iter().map(|&width| "-".repeat(width)).collect();
        out.push_str(&dashes.join(COLUMN_GAP));
        out.push('\n');
    }
    for row in &rows {
        let cells = (0..column_count).map(|index| {
            row.get(index)
                .map_or(("", false), |cell| (cell.text.as_str(), cell.is_number))
        });
        push_table_line(&mut out, cells, &widths);
    }
    let row_count = rows.len();
    let _ = writeln!(
        out,
        "({row_count} {})",
        if row_count == 1 { "row" } else { "rows" }
    );
    out
}

/// Writes series as CSV: a header `name,tags,<columns>` and one line per row, with the tags as
/// `key=value` pairs joined by `,` in one field. A header is written before the first series
/// and again whenever the columns change, so that output of one shape reads as one table.
#[derive(Debug, Default)]
pub(crate) struct CsvWriter {
    previous_columns: Option<Vec<String>>,
}

impl CsvWriter {
    pub(crate) fn write_series(&mut self, series: &Series, out: &mut String) {
        let column_count = series
            .values
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(0)
            .max(series.columns.len());
        let mut columns = series.columns.clone();
        columns.resize(column_count, String::new());
        if self.previous_columns.as_ref() != Some(&columns) {
            let mut header = String::from("name,tags");
            for column in &columns {
                header.push(',');
                header.push_str(&csv_field(column));
            }
            out.push_str(&header);
            out.push('\n');
            self.previous_columns = Some(columns);
        }
        let name = csv_field(&series.name);
        let tags = series.tags.joined(",");
        let tags = csv_field(&tags);
        for row in &series.values {
            out.push_str(&name);
            out.push(',');
            out.push_str(&tags);
            for index in 0..column_count {
                out.push(',');
                if let Some(value) = row.get(index) {
                    out.push_str(&csv_field(&csv_text(value)));
                }
            }
            out.push('\n');
        }
    }
}

fn csv_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Null => Cow::Borrowed(""),
        Value::String(text) => Cow::Borrowed(text),
        Value::Bool(flag) => Cow::Owned(flag.to_string()),
        Value::Number(number) => Cow::Owned(number.to_string()),
        other => Cow::Owned(other.to_string()),
    }
}

/// Quotes a field that holds a comma, a quote or a line break, doubling its quotes.
fn csv_field(text: &str) -> Cow<'_, str> {
    if text.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", text.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::shell::response::Tags;

    fn series(name: &str, tags: &[(&str, &str)], columns: &[&str], values: Value) -> Series {
        let values = match values {
            Value::Array(rows) => rows
                .into_iter()
                .map(|row| match row {
                    Value::Array(cells) => cells,
                    other => vec![other],
                })
                .collect(),
            _ => Vec::new(),
        };
        Series {
            name: name.to_owned(),
            tags: Tags(
                tags.iter()
                    .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                    .collect(),
            ),
            columns: columns.iter().map(|column| (*column).to_owned()).collect(),
            values,
        }
    }

    fn any_cell() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ]
    }

    proptest! {
        #[test]
        fn every_row_of_any_series_is_one_line_in_a_table_and_one_record_in_csv(
            columns in prop::collection::vec("[a-z日]{0,6}", 0..4),
            rows in prop::collection::vec(prop::collection::vec(any_cell(), 0..5), 0..6),
        ) {
            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
            let rows_value = Value::Array(rows.iter().cloned().map(Value::Array).collect());
            let any_series = series("m", &[("k", "v")], &columns, rows_value);
            let text = table(&any_series);
            // name, tags and the footer; a column header and its dashes when there are columns.
            let has_columns = !columns.is_empty() || rows.iter().any(|row| !row.is_empty());
            let header_lines = if has_columns { 5 } else { 3 };
            prop_assert_eq!(text.lines().count(), header_lines + rows.len(), "{}", text);
            let mut csv = String::new();
            CsvWriter::default().write_series(&any_series, &mut csv);
            prop_assert!(csv.starts_with("name,tags"));
        }
    }

    #[test]
    fn table_right_aligns_numbers_and_left_aligns_text() {
        let cpu = series(
            "cpu",
            &[("host", "a"), ("gpu", "0")],
            &["time", "host", "mean"],
            json!([
                ["2026-11-30T00:00:00Z", "node-1", 1.5],
                ["2026-11-30T00:01:00Z", "n2", 100],
            ]),
        );
        assert_eq!(
            table(&cpu),
            "name: cpu\n\
             tags: host=a, gpu=0\n\
             time                  host    mean\n\
             --------------------  ------  ----\n\
             2026-11-30T00:00:00Z  node-1   1.5\n\
             2026-11-30T00:01:00Z  n2       100\n\
             (2 rows)\n"
        );
    }

    #[test]
    fn table_shows_null_as_an_empty_cell_and_keeps_the_column_numeric() {
        let cpu = series(
            "cpu",
            &[],
            &["time", "usage", "note"],
            json!([[1, null, "x"], [2, 25, null]]),
        );
        assert_eq!(
            table(&cpu),
            "name: cpu\n\
             time  usage  note\n\
             ----  -----  ----\n\
             \x20  1         x\n\
             \x20  2     25\n\
             (2 rows)\n"
        );
    }

    #[test]
    fn table_measures_wide_characters_in_terminal_columns() {
        let llm = series(
            "llm",
            &[],
            &["model", "n"],
            json!([["日本語", 1], ["ab", 22], ["héllo", 3]]),
        );
        let text = table(&llm);
        let lines: Vec<&str> = text.lines().collect();
        // "日本語" is three characters but six columns wide, so the column is six wide.
        assert_eq!(lines[1], "model    n");
        assert_eq!(lines[2], "------  --");
        assert_eq!(lines[3], "日本語   1");
        assert_eq!(lines[4], "ab      22");
        assert_eq!(lines[5], "héllo    3");
    }

    #[test]
    fn table_keeps_wide_values_whole_and_escapes_line_breaks() {
        let long = "x".repeat(300);
        let logs = series(
            "logs",
            &[],
            &["message"],
            json!([[long.clone()], ["two\nlines\tand tab"]]),
        );
        let text = table(&logs);
        assert!(text.contains(&long));
        assert!(text.contains("two\\nlines\\tand tab"), "{text}");
        assert_eq!(text.lines().count(), 6);
    }

    #[test]
    fn table_keeps_blanks_that_end_a_value_but_not_the_padding_after_it() {
        let notes = series(
            "",
            &[],
            &["a", "b"],
            json!([["x  ", null], ["yyyyy", null]]),
        );
        assert_eq!(table(&notes), "a      b\n-----  -\nx  \nyyyyy\n(2 rows)\n");
    }

    #[test]
    fn table_of_a_series_without_rows_or_name_still_counts_them() {
        let empty = series("", &[], &["name"], json!([]));
        assert_eq!(table(&empty), "name\n----\n(0 rows)\n");
        let one = series("", &[], &["name"], json!([["autogen"]]));
        assert!(table(&one).ends_with("autogen\n(1 row)\n"));
    }

    #[test]
    fn table_copes_with_rows_longer_than_the_column_list() {
        let odd = series("m", &[], &["a"], json!([[1, "extra"], [2]]));
        assert_eq!(table(&odd), "name: m\na\n-  -----\n1  extra\n2\n(2 rows)\n");
    }

    #[test]
    fn csv_writes_name_and_tags_first_and_quotes_fields_that_need_it() {
        let mut writer = CsvWriter::default();
        let mut out = String::new();
        writer.write_series(
            &series(
                "cpu",
                &[("host", "a"), ("gpu", "0")],
                &["time", "mean", "note"],
                json!([
                    [1_700_000_000, 1.5, "say \"hi\", twice"],
                    [1_700_000_060, null, null]
                ]),
            ),
            &mut out,
        );
        assert_eq!(
            out,
            "name,tags,time,mean,note\n\
             cpu,\"host=a,gpu=0\",1700000000,1.5,\"say \"\"hi\"\", twice\"\n\
             cpu,\"host=a,gpu=0\",1700000060,,\n"
        );
    }

    #[test]
    fn csv_repeats_the_header_only_when_the_columns_change() {
        let mut writer = CsvWriter::default();
        let mut out = String::new();
        writer.write_series(
            &series("cpu", &[("host", "a")], &["time", "v"], json!([[1, 2]])),
            &mut out,
        );
        writer.write_series(
            &series("cpu", &[("host", "b")], &["time", "v"], json!([[1, 3]])),
            &mut out,
        );
        writer.write_series(
            &series("measurements", &[], &["name"], json!([["cpu"]])),
            &mut out,
        );
        assert_eq!(
            out,
            "name,tags,time,v\ncpu,host=a,1,2\ncpu,host=b,1,3\nname,tags,name\nmeasurements,,cpu\n"
        );
    }

    #[test]
    fn csv_keeps_line_breaks_inside_quoted_fields() {
        let mut writer = CsvWriter::default();
        let mut out = String::new();
        writer.write_series(
            &series("logs", &[], &["message"], json!([["a\nb"]])),
            &mut out,
        );
        assert_eq!(out, "name,tags,message\nlogs,,\"a\nb\"\n");
    }
}
