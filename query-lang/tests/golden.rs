//! Golden tests as data: `tests/golden/valid.txt` holds queries with their canonical printed
//! form and a compact dump of their syntax tree; `tests/golden/invalid.txt` holds queries with
//! the exact error text a person sees. Run with `UPDATE_GOLDEN=1` to rewrite the expectations
//! from the current parser, then review the diff.
//!
//! File format: a case starts with a `## title` line, followed by the query (one or more
//! lines). In valid.txt the query is followed by `=> <printed form>` and `:: <tree dump>`; in
//! invalid.txt by a line `=>` and the rendered error on the lines after it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly by design"
)]

use std::fmt::Write as _;
use std::path::PathBuf;

use tally_query::ast::{
    Expr, FillOption, GroupBy, LiteralValue, MeasurementName, MeasurementRef, RetentionDuration,
    SelectStatement, Source, Statement, TagKeyMatch, TimeOffset,
};
use tally_query::visit::strip_query_spans;
use tally_query::{parse_query, validate};

struct Case {
    title: String,
    query: String,
    expected: Vec<String>,
}

struct GoldenFile {
    header: Vec<String>,
    cases: Vec<Case>,
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn read_golden(name: &str) -> GoldenFile {
    let text = std::fs::read_to_string(golden_path(name)).unwrap();
    let mut header = Vec::new();
    let mut cases: Vec<Case> = Vec::new();
    let mut in_expected = false;
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            cases.push(Case {
                title: title.to_owned(),
                query: String::new(),
                expected: Vec::new(),
            });
            in_expected = false;
            continue;
        }
        let Some(case) = cases.last_mut() else {
            header.push(line.to_owned());
            continue;
        };
        if !in_expected && (line == "=>" || line.starts_with("=> ")) {
            in_expected = true;
        }
        if in_expected {
            case.expected.push(line.to_owned());
        } else {
            if !case.query.is_empty() {
                case.query.push('\n');
            }
            case.query.push_str(line);
        }
    }
    for case in &mut cases {
        while case.query.ends_with('\n') {
            case.query.pop();
        }
        while case.expected.last().is_some_and(|line| line.is_empty()) {
            case.expected.pop();
        }
    }
    GoldenFile { header, cases }
}

fn write_golden(name: &str, file: &GoldenFile, actual: &[Vec<String>]) {
    let mut text = String::new();
    for line in &file.header {
        writeln!(text, "{line}").unwrap();
    }
    for (case, expected) in file.cases.iter().zip(actual) {
        writeln!(text, "## {}", case.title).unwrap();
        writeln!(text, "{}", case.query).unwrap();
        for line in expected {
            writeln!(text, "{line}").unwrap();
        }
        writeln!(text).unwrap();
    }
    std::fs::write(golden_path(name), text).unwrap();
}

/// Runs every case of a golden file through `evaluate`, compares, and rewrites the file
/// instead when `UPDATE_GOLDEN` is set.
fn run_golden(name: &str, evaluate: impl Fn(&str) -> Result<Vec<String>, String>) {
    let file = read_golden(name);
    let mut failures = Vec::new();
    let mut actual = Vec::new();
    for case in &file.cases {
        match evaluate(&case.query) {
            Ok(lines) => {
                if lines != case.expected {
                    failures.push(format!(
                        "## {}\n{}\n--- expected\n{}\n--- actual\n{}",
                        case.title,
                        case.query,
                        case.expected.join("\n"),
                        lines.join("\n")
                    ));
                }
                actual.push(lines);
            }
            Err(problem) => {
                failures.push(format!("## {}\n{}\n--- {problem}", case.title, case.query));
                actual.push(case.expected.clone());
            }
        }
    }
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        write_golden(name, &file, &actual);
        return;
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n\n{}",
        failures.len(),
        file.cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn golden_valid_queries_print_canonically_and_round_trip() {
    let file = read_golden("valid.txt");
    assert!(
        file.cases.len() >= 120,
        "valid.txt has only {} cases",
        file.cases.len()
    );
    run_golden("valid.txt", |query| {
        let parsed =
            parse_query(query).map_err(|error| format!("parse error:\n{}", error.render(query)))?;
        for statement in &parsed.statements {
            validate(statement, query)
                .map_err(|error| format!("validation error:\n{}", error.render(query)))?;
        }
        let printed = parsed.to_string();
        let mut reparsed = parse_query(&printed)
            .map_err(|error| format!("printed form does not parse:\n{}", error.render(&printed)))?;
        let mut original = parsed.clone();
        strip_query_spans(&mut original);
        strip_query_spans(&mut reparsed);
        if original != reparsed {
            return Err(format!(
                "printed form {printed} parses to another tree:\n{original:#?}\n{reparsed:#?}"
            ));
        }
        let dump: Vec<String> = parsed.statements.iter().map(dump_statement).collect();
        Ok(vec![
            format!("=> {printed}"),
            format!(":: {}", dump.join(" ")),
        ])
    });
}

#[test]
fn golden_invalid_queries_render_their_exact_error() {
    let file = read_golden("invalid.txt");
    assert!(
        file.cases.len() >= 60,
        "invalid.txt has only {} cases",
        file.cases.len()
    );
    run_golden("invalid.txt", |query| {
        let error = match parse_query(query) {
            Err(error) => error,
            Ok(parsed) => parsed
                .statements
                .iter()
                .find_map(|statement| validate(statement, query).err())
                .ok_or_else(|| format!("no error; parsed as {parsed}"))?,
        };
        let mut lines = vec!["=>".to_owned()];
        lines.extend(error.render(query).lines().map(str::to_owned));
        Ok(lines)
    });
}

// ------------------------------------------------------------------- tree dump

fn dump_statement(statement: &Statement) -> String {
    match statement {
        Statement::Select(select) => dump_select(select),
        Statement::Explain(explain) => {
            format!(
                "(explain{} {})",
                if explain.analyze { " analyze" } else { "" },
                dump_select(&explain.select)
            )
        }
        Statement::CreateDatabase(create) => {
            let mut out = format!("(create-database {}", create.name.name);
            if let Some(retention) = &create.retention {
                out.push_str(" (with");
                if let Some(duration) = &retention.duration {
                    write!(out, " (duration {})", dump_retention(duration)).unwrap();
                }
                if let Some(replication) = retention.replication {
                    write!(out, " (replication {replication})").unwrap();
                }
                if let Some(shard) = retention.shard_duration {
                    write!(out, " (shard-duration {shard})").unwrap();
                }
                if let Some(name) = &retention.policy_name {
                    write!(out, " (name {})", name.name).unwrap();
                }
                out.push(')');
            }
            out.push(')');
            out
        }
        Statement::DropDatabase(drop) => format!("(drop-database {})", drop.name.name),
        Statement::ShowDatabases { .. } => "(show-databases)".to_owned(),
        Statement::ShowMeasurements(show) => {
            let mut out = "(show-measurements".to_owned();
            on(&mut out, &show.database);
            match &show.measurement {
                Some(MeasurementName::Name(name)) => {
                    write!(out, " (with-measurement = {})", name.name).unwrap()
                }
                Some(MeasurementName::Regex(regex)) => {
                    write!(out, " (with-measurement =~ regex:{})", regex.pattern).unwrap();
                }
                None => {}
            }
            condition(&mut out, &show.condition);
            limits(&mut out, show.limit, show.offset);
            out.push(')');
            out
        }
        Statement::ShowTagKeys(show) => {
            let mut out = "(show-tag-keys".to_owned();
            on(&mut out, &show.database);
            from(&mut out, &show.sources);
            condition(&mut out, &show.condition);
            limits(&mut out, show.limit, show.offset);
            out.push(')');
            out
        }
        Statement::ShowTagValues(show) => {
            let mut out = "(show-tag-values".to_owned();
            on(&mut out, &show.database);
            from(&mut out, &show.sources);
            write!(out, " {}", dump_key(&show.key)).unwrap();
            condition(&mut out, &show.condition);
            limits(&mut out, show.limit, show.offset);
            out.push(')');
            out
        }
        Statement::ShowFieldKeys(show) => {
            let mut out = "(show-field-keys".to_owned();
            on(&mut out, &show.database);
            from(&mut out, &show.sources);
            limits(&mut out, show.limit, show.offset);
            out.push(')');
            out
        }
        Statement::ShowSeries(show) => {
            let mut out = "(show-series".to_owned();
            on(&mut out, &show.database);
            from(&mut out, &show.sources);
            condition(&mut out, &show.condition);
            limits(&mut out, show.limit, show.offset);
            out.push(')');
            out
        }
        Statement::ShowCardinality(show) => {
            let mut out = format!("(show-cardinality {:?}", show.kind);
            if show.exact {
                out.push_str(" exact");
            }
            on(&mut out, &show.database);
            from(&mut out, &show.sources);
            condition(&mut out, &show.condition);
            if let Some(key) = &show.key {
                write!(out, " {}", dump_key(key)).unwrap();
            }
            out.push(')');
            out
        }
        Statement::ShowRetentionPolicies(show) => {
            let mut out = "(show-retention-policies".to_owned();
            on(&mut out, &show.database);
            out.push(')');
            out
        }
        Statement::ShowDiagnostics { .. } => "(show-diagnostics)".to_owned(),
        Statement::ShowStats { .. } => "(show-stats)".to_owned(),
        Statement::ShowRules { .. } => "(show-rules)".to_owned(),
        Statement::ShowAlerts { .. } => "(show-alerts)".to_owned(),
        Statement::ShowCompactions { .. } => "(show-compactions)".to_owned(),
        Statement::CreateRetentionPolicy(create) => {
            let mut out = format!(
                "(create-retention-policy {} (on {}) (duration {}) (replication {})",
                create.name.name,
                create.database.name,
                dump_retention(&create.duration),
                create.replication
            );
            if let Some(shard) = create.shard_duration {
                write!(out, " (shard-duration {shard})").unwrap();
            }
            if create.default {
                out.push_str(" default");
            }
            out.push(')');
            out
        }
        Statement::AlterRetentionPolicy(alter) => {
            let mut out = format!(
                "(alter-retention-policy {} (on {})",
                alter.name.name, alter.database.name
            );
            if let Some(duration) = &alter.duration {
                write!(out, " (duration {})", dump_retention(duration)).unwrap();
            }
            if let Some(replication) = alter.replication {
                write!(out, " (replication {replication})").unwrap();
            }
            if let Some(shard) = alter.shard_duration {
                write!(out, " (shard-duration {shard})").unwrap();
            }
            if alter.default {
                out.push_str(" default");
            }
            out.push(')');
            out
        }
        Statement::DropRetentionPolicy(drop) => {
            format!(
                "(drop-retention-policy {} (on {}))",
                drop.name.name, drop.database.name
            )
        }
        Statement::DropMeasurement(drop) => format!("(drop-measurement {})", drop.name.name),
        Statement::DropSeries(drop) => {
            let mut out = "(drop-series".to_owned();
            from(&mut out, &drop.sources);
            condition(&mut out, &drop.condition);
            out.push(')');
            out
        }
        Statement::Delete(delete) => {
            let mut out = "(delete".to_owned();
            if let Some(source) = &delete.source {
                write!(out, " (from {})", dump_measurement(source)).unwrap();
            }
            condition(&mut out, &delete.condition);
            out.push(')');
            out
        }
        other => format!("(unknown {other})"),
    }
}

fn on(out: &mut String, database: &Option<tally_query::ast::Ident>) {
    if let Some(database) = database {
        write!(out, " (on {})", database.name).unwrap();
    }
}

fn from(out: &mut String, sources: &[MeasurementRef]) {
    if !sources.is_empty() {
        let parts: Vec<String> = sources.iter().map(dump_measurement).collect();
        write!(out, " (from {})", parts.join(" ")).unwrap();
    }
}

fn condition(out: &mut String, condition: &Option<Expr>) {
    if let Some(condition) = condition {
        write!(out, " (where {})", dump_expr(condition)).unwrap();
    }
}

fn limits(out: &mut String, limit: Option<u64>, offset: Option<u64>) {
    if let Some(limit) = limit {
        write!(out, " (limit {limit})").unwrap();
    }
    if let Some(offset) = offset {
        write!(out, " (offset {offset})").unwrap();
    }
}

fn dump_retention(duration: &RetentionDuration) -> String {
    match duration {
        RetentionDuration::Finite(nanos) => nanos.to_string(),
        RetentionDuration::Infinite => "inf".to_owned(),
    }
}

fn dump_key(key: &TagKeyMatch) -> String {
    match key {
        TagKeyMatch::Equal(key) => format!("(key = {})", key.name),
        TagKeyMatch::NotEqual(key) => format!("(key != {})", key.name),
        TagKeyMatch::Regex(regex) => format!("(key =~ regex:{})", regex.pattern),
        TagKeyMatch::NotRegex(regex) => format!("(key !~ regex:{})", regex.pattern),
        TagKeyMatch::In(keys) => {
            let names: Vec<&str> = keys.iter().map(|key| key.name.as_str()).collect();
            format!("(key in {})", names.join(" "))
        }
    }
}

fn dump_measurement(measurement: &MeasurementRef) -> String {
    let mut out = "(m".to_owned();
    if let Some(database) = &measurement.database {
        write!(out, " db:{:?}", database.name).unwrap();
    }
    if let Some(policy) = &measurement.retention_policy {
        write!(out, " rp:{:?}", policy.name).unwrap();
    }
    match &measurement.name {
        MeasurementName::Name(name) => write!(out, " {:?}", name.name).unwrap(),
        MeasurementName::Regex(regex) => write!(out, " regex:{}", regex.pattern).unwrap(),
    }
    out.push(')');
    out
}

fn dump_select(select: &SelectStatement) -> String {
    let mut out = "(select".to_owned();
    let fields: Vec<String> = select
        .fields
        .iter()
        .map(|field| match &field.alias {
            Some(alias) => format!("(as {} {:?})", dump_expr(&field.expr), alias.name),
            None => dump_expr(&field.expr),
        })
        .collect();
    write!(out, " (fields {})", fields.join(" ")).unwrap();
    let sources: Vec<String> = select
        .sources
        .iter()
        .map(|source| match source {
            Source::Measurement(measurement) => dump_measurement(measurement),
            Source::Subquery { select, .. } => format!("(subquery {})", dump_select(select)),
        })
        .collect();
    write!(out, " (from {})", sources.join(" ")).unwrap();
    condition(&mut out, &select.condition);
    if let Some(group_by) = &select.group_by {
        write!(out, " {}", dump_group_by(group_by)).unwrap();
    }
    if let Some(fill) = &select.fill {
        let option = match &fill.option {
            FillOption::None => "none".to_owned(),
            FillOption::Null => "null".to_owned(),
            FillOption::Previous => "previous".to_owned(),
            FillOption::Linear => "linear".to_owned(),
            FillOption::Integer(value) => format!("int:{value}"),
            FillOption::Float(value) => format!("float:{value:?}"),
        };
        write!(out, " (fill {option})").unwrap();
    }
    if select.order_desc {
        out.push_str(" (order desc)");
    }
    limits(&mut out, select.limit, select.offset);
    if let Some(slimit) = select.slimit {
        write!(out, " (slimit {slimit})").unwrap();
    }
    if let Some(soffset) = select.soffset {
        write!(out, " (soffset {soffset})").unwrap();
    }
    if let Some(tz) = &select.tz {
        write!(out, " (tz {tz:?})").unwrap();
    }
    out.push(')');
    out
}

fn dump_group_by(group_by: &GroupBy) -> String {
    let mut out = "(group-by".to_owned();
    if let Some(time) = &group_by.time {
        write!(out, " (time {}", time.interval).unwrap();
        match &time.offset {
            Some(TimeOffset::Duration { nanos, .. }) => write!(out, " offset:{nanos}").unwrap(),
            Some(TimeOffset::Now { .. }) => out.push_str(" offset:now"),
            None => {}
        }
        out.push(')');
    }
    for tag in &group_by.tags {
        write!(out, " tag:{:?}", tag.name).unwrap();
    }
    for regex in &group_by.regexes {
        write!(out, " regex:{}", regex.pattern).unwrap();
    }
    if group_by.wildcard {
        out.push_str(" *");
    }
    out.push(')');
    out
}

fn dump_expr(expr: &Expr) -> String {
    match expr {
        Expr::VarRef(var_ref) => match var_ref.cast {
            Some(cast) => format!("var:{:?}::{cast}", var_ref.name),
            None => format!("var:{:?}", var_ref.name),
        },
        Expr::Call(call) => {
            let mut out = format!("(call {}", call.name);
            for arg in &call.args {
                write!(out, " {}", dump_expr(arg)).unwrap();
            }
            out.push(')');
            out
        }
        Expr::Binary(binary) => {
            format!(
                "({} {} {})",
                binary.op.as_str(),
                dump_expr(&binary.lhs),
                dump_expr(&binary.rhs)
            )
        }
        Expr::Unary(unary) => format!("(neg {})", dump_expr(&unary.operand)),
        Expr::Paren(paren) => format!("(paren {})", dump_expr(&paren.inner)),
        Expr::Literal(literal) => match &literal.value {
            LiteralValue::Integer(value) => format!("int:{value}"),
            LiteralValue::Unsigned(value) => format!("uint:{value}"),
            LiteralValue::Float(value) => format!("float:{value:?}"),
            LiteralValue::String(value) => format!("str:{value:?}"),
            LiteralValue::Bool(value) => format!("bool:{value}"),
            LiteralValue::Regex(pattern) => format!("regex:{pattern}"),
            LiteralValue::Duration(nanos) => format!("dur:{nanos}"),
            other => format!("unknown:{other}"),
        },
        Expr::Now { .. } => "now".to_owned(),
        Expr::Wildcard(wildcard) => match wildcard.cast {
            Some(cast) => format!("*::{cast}"),
            None => "*".to_owned(),
        },
        other => format!("(unknown {other})"),
    }
}
