//! Rendering a report that ran ([`ReportOutput`]) to HTML, Markdown, CSV and JSON. PDF is HTML
//! printed by Chromium ([`super::pdf`]).
//!
//! The HTML is one self-contained file: inline CSS, charts as inline SVG, no script, no
//! external resource, simple tables, so that it reads the same offline and in mail clients.

use std::fmt::Write as _;

use super::output::{ColumnKind, ReportOutput, SectionOutput, TableOutput, TextPart};
use super::period::{Zone, format_instant, parse_zone};
use super::svg::{chart_svg, escape};
use super::units::format_json_cell;

const STYLE: &str = "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1d1d1f;max-width:800px;margin:24px auto;padding:0 16px;line-height:1.45}\
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}\
.meta{color:#666;font-size:13px;margin-bottom:16px}.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}\
.tile{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:140px}.tile .label{font-size:12px;color:#666}\
.tile .value{font-size:22px;font-weight:600}.tile .change{font-size:12px;color:#666}\
table{border-collapse:collapse;font-size:13px;margin:8px 0;width:100%}th,td{border-bottom:1px solid #e5e5e5;padding:4px 6px;text-align:right}\
th{background:#f5f5f7}td.tag,th.tag{text-align:left}td.missed{background:#fde2e1;color:#a00;font-weight:600}\
.up{color:#a15c00}.down{color:#0a6}.legend{font-size:12px;color:#444;margin:2px 0 10px}.legend span{margin-right:12px;white-space:nowrap}\
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}\
.empty,.note{color:#666;font-size:13px}.error{color:#a00;font-size:13px;white-space:pre-wrap}\
.methods{font-size:12px;color:#555}code{font-size:12px;word-break:break-all}svg{max-width:100%;height:auto}";

fn zone_of(report: &ReportOutput) -> Zone {
    parse_zone(&report.period.timezone).unwrap_or_else(|_| Zone::utc())
}

fn cell_text(table: &TableOutput, value: &serde_json::Value, column: usize, zone: &Zone) -> String {
    let Some(spec) = table.columns.get(column) else {
        return String::new();
    };
    match spec.kind {
        ColumnKind::Time => value
            .as_i64()
            .map(|t| format_instant(t, zone))
            .unwrap_or_default(),
        ColumnKind::Times => match value.as_array() {
            Some(times) => {
                let shown: Vec<String> = times
                    .iter()
                    .take(12)
                    .filter_map(serde_json::Value::as_i64)
                    .map(|t| super::period::format_short(t, zone))
                    .collect();
                let more = times.len().saturating_sub(12);
                if more > 0 {
                    format!("{} and {more} more", shown.join(", "))
                } else {
                    shown.join(", ")
                }
            }
            None => String::new(),
        },
        ColumnKind::ChangePct => match value.as_f64() {
            Some(v) => format!("{}{:.1} %", if v > 0.0 { "+" } else { "" }, v),
            None => String::new(),
        },
        ColumnKind::Change => match value.as_f64() {
            Some(v) if v > 0.0 => format!("+{}", format_json_cell(value, spec.unit)),
            _ => format_json_cell(value, spec.unit),
        },
        _ => format_json_cell(value, spec.unit),
    }
}

fn html_table(out: &mut String, table: &TableOutput, zone: &Zone) {
    let _ = write!(out, "<h2>{}</h2>", escape(&table.title));
    if !table.description.is_empty() {
        let _ = write!(out, "<p class=\"note\">{}</p>", escape(&table.description));
    }
    if let Some(error) = &table.error {
        let _ = write!(
            out,
            "<p class=\"error\">This section could not be computed: {}</p>",
            escape(error)
        );
        return;
    }
    if table.rows.is_empty() {
        out.push_str("<p class=\"empty\">No data in this period.</p>");
        return;
    }
    out.push_str("<table><thead><tr>");
    for column in &table.columns {
        let class = if matches!(
            column.kind,
            ColumnKind::Tag | ColumnKind::Label | ColumnKind::Times
        ) {
            " class=\"tag\""
        } else {
            ""
        };
        let _ = write!(out, "<th{class}>{}</th>", escape(&column.label));
    }
    out.push_str("</tr></thead><tbody>");
    for (row_index, row) in table.rows.iter().enumerate() {
        out.push_str("<tr>");
        for (column_index, value) in row.iter().enumerate() {
            let kind = table.columns.get(column_index).map(|c| c.kind);
            let mut classes = Vec::new();
            if matches!(
                kind,
                Some(ColumnKind::Tag | ColumnKind::Label | ColumnKind::Times)
            ) {
                classes.push("tag");
            }
            if table.missed.contains(&(row_index, column_index)) {
                classes.push("missed");
            }
            if matches!(kind, Some(ColumnKind::ChangePct | ColumnKind::Change)) {
                match value.as_f64() {
                    Some(v) if v > 0.0 => classes.push("up"),
                    Some(v) if v < 0.0 => classes.push("down"),
                    _ => {}
                }
            }
            let class = if classes.is_empty() {
                String::new()
            } else {
                format!(" class=\"{}\"", classes.join(" "))
            };
            let _ = write!(
                out,
                "<td{class}>{}</td>",
                escape(&cell_text(table, value, column_index, zone))
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    if table.omitted_rows > 0 {
        let _ = write!(
            out,
            "<p class=\"note\">{} more rows are not shown.</p>",
            table.omitted_rows
        );
    }
}

/// The report as one self-contained HTML document.
pub(crate) fn to_html(report: &ReportOutput) -> String {
    let zone = zone_of(report);
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(&report.title)
    );
    let starts_with_title = matches!(report.sections.first(), Some(SectionOutput::Title { .. }));
    if !starts_with_title {
        let _ = write!(out, "<h1>{}</h1>", escape(&report.title));
    }
    for (index, section) in report.sections.iter().enumerate() {
        match section {
            SectionOutput::Title { text } => {
                if index == 0 {
                    let _ = write!(out, "<h1>{}</h1>", escape(text));
                    let _ = write!(
                        out,
                        "<div class=\"meta\">{} · database {} · generated {}</div>",
                        escape(&report.period.label),
                        escape(&report.database),
                        escape(&report.generated_at)
                    );
                } else {
                    let _ = write!(out, "<h2>{}</h2>", escape(text));
                }
            }
            SectionOutput::Text { parts, .. } => {
                out.push_str("<p>");
                for part in parts {
                    match part {
                        TextPart::Words { text } => out.push_str(&escape(text)),
                        TextPart::Figure { figure, display } => {
                            let _ = write!(
                                out,
                                "<b data-figure=\"{}\">{}</b>",
                                escape(figure),
                                escape(display)
                            );
                        }
                    }
                }
                out.push_str("</p>");
            }
            SectionOutput::Figures { title, figures } => {
                if !title.is_empty() {
                    let _ = write!(out, "<h2>{}</h2>", escape(title));
                }
                out.push_str("<div class=\"tiles\">");
                for name in figures {
                    let Some(figure) = report.figure(name) else {
                        continue;
                    };
                    let _ = write!(
                        out,
                        "<div class=\"tile\" data-figure=\"{}\"><div class=\"label\">{}</div><div class=\"value\">{}</div>",
                        escape(name),
                        escape(&figure.label),
                        escape(&figure.display)
                    );
                    if let Some(change) = report.figure(&format!("{name}_change_pct"))
                        && let Some(value) = change.value
                    {
                        let value = value.as_f64();
                        let _ = write!(
                            out,
                            "<div class=\"change {}\">{}{:.1} % vs previous period</div>",
                            if value > 0.0 { "up" } else { "down" },
                            if value > 0.0 { "+" } else { "" },
                            value
                        );
                    }
                    out.push_str("</div>");
                }
                out.push_str("</div>");
            }
            SectionOutput::Chart(chart) => {
                let _ = write!(out, "<h2>{}</h2>", escape(&chart.title));
                if !chart.description.is_empty() {
                    let _ = write!(out, "<p class=\"note\">{}</p>", escape(&chart.description));
                }
                match &chart.error {
                    Some(error) => {
                        let _ = write!(
                            out,
                            "<p class=\"error\">This chart could not be drawn: {}</p>",
                            escape(error)
                        );
                    }
                    None => out.push_str(&chart_svg(chart, &zone)),
                }
                if chart.omitted_series > 0 {
                    let _ = write!(
                        out,
                        "<p class=\"note\">{} more series are not drawn.</p>",
                        chart.omitted_series
                    );
                }
            }
            SectionOutput::Table(table) => html_table(&mut out, table, &zone),
        }
    }
    out.push_str("<h2>How the figures were computed</h2><ul class=\"methods\">");
    for method in &report.methods {
        let _ = write!(out, "<li>{}</li>", escape(method));
    }
    for figure in &report.figures {
        let _ = write!(
            out,
            "<li><b>{}</b> ({}): {}</li>",
            escape(&figure.label),
            escape(&figure.display),
            escape(&figure.method)
        );
    }
    out.push_str("</ul>");
    if !report.errors.is_empty() {
        out.push_str("<h2>Problems</h2>");
        for error in &report.errors {
            let _ = write!(out, "<p class=\"error\">{}</p>", escape(error));
        }
    }
    out.push_str("</body></html>\n");
    out
}

fn md_escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn md_table(out: &mut String, table: &TableOutput, zone: &Zone) {
    let _ = writeln!(out, "## {}\n", table.title);
    if !table.description.is_empty() {
        let _ = writeln!(out, "{}\n", table.description);
    }
    if let Some(error) = &table.error {
        let _ = writeln!(
            out,
            "> This section could not be computed: {}\n",
            md_escape(error)
        );
        return;
    }
    if table.rows.is_empty() {
        out.push_str("No data in this period.\n\n");
        return;
    }
    let header: Vec<String> = table.columns.iter().map(|c| md_escape(&c.label)).collect();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let align: Vec<&str> = table
        .columns
        .iter()
        .map(|c| match c.kind {
            ColumnKind::Tag | ColumnKind::Label | ColumnKind::Times => "---",
            _ => "---:",
        })
        .collect();
    let _ = writeln!(out, "| {} |", align.join(" | "));
    for (row_index, row) in table.rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(column_index, value)| {
                let text = md_escape(&cell_text(table, value, column_index, zone));
                if table.missed.contains(&(row_index, column_index)) {
                    format!("**{text}** ⚠")
                } else {
                    text
                }
            })
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    if table.omitted_rows > 0 {
        let _ = writeln!(out, "\n{} more rows are not shown.", table.omitted_rows);
    }
    out.push('\n');
}

/// The report as Markdown: text, figures as a list, tables as pipe tables, and each chart as
/// a table of its series' last, smallest, largest and mean values.
pub(crate) fn to_markdown(report: &ReportOutput) -> String {
    let zone = zone_of(report);
    let mut out = String::with_capacity(16 * 1024);
    if !matches!(report.sections.first(), Some(SectionOutput::Title { .. })) {
        let _ = writeln!(out, "# {}\n", report.title);
    }
    for (index, section) in report.sections.iter().enumerate() {
        match section {
            SectionOutput::Title { text } => {
                if index == 0 {
                    let _ = writeln!(out, "# {text}\n");
                    let _ = writeln!(
                        out,
                        "_{} · database {} · generated {}_\n",
                        report.period.label, report.database, report.generated_at
                    );
                } else {
                    let _ = writeln!(out, "## {text}\n");
                }
            }
            SectionOutput::Text { parts, .. } => {
                for part in parts {
                    match part {
                        TextPart::Words { text } => out.push_str(text),
                        TextPart::Figure { display, .. } => {
                            let _ = write!(out, "**{display}**");
                        }
                    }
                }
                out.push_str("\n\n");
            }
            SectionOutput::Figures { title, figures } => {
                if !title.is_empty() {
                    let _ = writeln!(out, "## {title}\n");
                }
                for name in figures {
                    if let Some(figure) = report.figure(name) {
                        let change = report
                            .figure(&format!("{name}_change_pct"))
                            .and_then(|c| c.value)
                            .map(|v| {
                                let v = v.as_f64();
                                format!(
                                    " ({}{v:.1} % vs previous period)",
                                    if v > 0.0 { "+" } else { "" }
                                )
                            })
                            .unwrap_or_default();
                        let _ = writeln!(out, "- {}: **{}**{change}", figure.label, figure.display);
                    }
                }
                out.push('\n');
            }
            SectionOutput::Chart(chart) => {
                let _ = writeln!(out, "## {}\n", chart.title);
                if let Some(error) = &chart.error {
                    let _ = writeln!(
                        out,
                        "> This chart could not be drawn: {}\n",
                        md_escape(error)
                    );
                    continue;
                }
                if chart.series.is_empty() {
                    out.push_str("No data in this period.\n\n");
                    continue;
                }
                out.push_str(
                    "| series | last | min | max | mean |\n| --- | ---: | ---: | ---: | ---: |\n",
                );
                for series in &chart.series {
                    let values: Vec<f64> = series.points.iter().filter_map(|(_, v)| *v).collect();
                    let show = |v: Option<f64>| {
                        v.map(|v| {
                            super::units::format_value(super::figures::Number::Float(v), chart.unit)
                        })
                        .unwrap_or_default()
                    };
                    let mean = (!values.is_empty())
                        .then(|| values.iter().sum::<f64>() / values.len() as f64);
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} | {} |",
                        md_escape(&series.label),
                        show(values.last().copied()),
                        show(values.iter().copied().reduce(f64::min)),
                        show(values.iter().copied().reduce(f64::max)),
                        show(mean)
                    );
                }
                out.push('\n');
            }
            SectionOutput::Table(table) => md_table(&mut out, table, &zone),
        }
    }
    out.push_str("## How the figures were computed\n\n");
    for method in &report.methods {
        let _ = writeln!(out, "- {method}");
    }
    for figure in &report.figures {
        let _ = writeln!(
            out,
            "- {} ({}): {}",
            figure.label,
            figure.display,
            md_escape(&figure.method)
        );
    }
    if !report.errors.is_empty() {
        out.push_str("\n## Problems\n\n");
        for error in &report.errors {
            let _ = writeln!(out, "- {}", md_escape(error));
        }
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn json_cell_csv(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(json_cell_csv)
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// The report as one CSV table in long form, one line per value:
/// `section,kind,name,row,column,time,value`. Figures come first (kind `figure`), then each
/// table cell (kind `table`) and each chart point (kind `chart`). Values are exact, unformatted.
pub(crate) fn to_csv(report: &ReportOutput) -> String {
    let mut out = String::from("section,kind,name,row,column,time,value\n");
    let mut line = |fields: [&str; 7]| {
        let encoded: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&encoded.join(","));
        out.push('\n');
    };
    for figure in &report.figures {
        let value = figure
            .value
            .map(|v| v.to_json().to_string())
            .unwrap_or_default();
        line(["figures", "figure", &figure.name, "", "", "", &value]);
    }
    for section in &report.sections {
        match section {
            SectionOutput::Table(table) => {
                for (row_index, row) in table.rows.iter().enumerate() {
                    let row_label = row_index.to_string();
                    for (column_index, value) in row.iter().enumerate() {
                        let name = table
                            .columns
                            .get(column_index)
                            .map_or("", |c| c.name.as_str());
                        line([
                            &table.title,
                            "table",
                            table.source,
                            &row_label,
                            name,
                            "",
                            &json_cell_csv(value),
                        ]);
                    }
                }
            }
            SectionOutput::Chart(chart) => {
                for series in &chart.series {
                    for (time, value) in &series.points {
                        let value = value.map(|v| v.to_string()).unwrap_or_default();
                        line([
                            &chart.title,
                            "chart",
                            &series.label,
                            "",
                            &series.column,
                            &super::period::rfc3339(*time),
                            &value,
                        ]);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The report as JSON: the [`ReportOutput`] structure itself.
pub(crate) fn to_json(report: &ReportOutput) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("BUG: the report cannot be encoded as JSON: {e}") }).to_string()
    })
}
