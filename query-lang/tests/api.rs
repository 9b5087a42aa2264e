//! The public surface of the query language front end as its callers use it: spans that
//! point at the right text, walking trees, recovering from errors, validation, completion.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly by design"
)]

use tally_query::ast::{
    BinaryOp, Expr, LiteralValue, MeasurementName, MeasurementRef, Source, Span, Statement,
};
use tally_query::visit::{Visit, VisitMut, strip_spans, walk_expr, walk_measurement_mut};
use tally_query::{
    ArgKind, CompletionCandidates, FUNCTIONS, Presence, TimeLiteral, complete, function,
    parse_expression, parse_query, parse_query_recovering, parse_statement, validate,
};

fn select(query: &str) -> tally_query::ast::SelectStatement {
    match parse_statement(query) {
        Ok(Statement::Select(select)) => *select,
        other => panic!("not a SELECT: {other:?}"),
    }
}

fn text(query: &str, span: Span) -> &str {
    &query[span.range()]
}

#[test]
fn spans_point_at_the_text_each_node_was_parsed_from() {
    let query = "SELECT mean(\"usage\") AS m, -x::float FROM db..cpu WHERE host =~ /a/ GROUP BY time(1m, -5s), gpu fill(0)";
    let select = select(query);
    assert_eq!(text(query, select.span), query);
    assert_eq!(text(query, select.fields[0].span), "mean(\"usage\") AS m");
    assert_eq!(text(query, select.fields[0].expr.span()), "mean(\"usage\")");
    let Expr::Call(call) = &select.fields[0].expr else {
        panic!("not a call")
    };
    assert_eq!(text(query, call.name_span()), "mean");
    assert_eq!(text(query, call.args[0].span()), "\"usage\"");
    assert_eq!(text(query, select.fields[1].expr.span()), "-x::float");
    assert_eq!(text(query, select.sources[0].span()), "db..cpu");
    let condition = select.condition.as_ref().unwrap();
    assert_eq!(text(query, condition.span()), "host =~ /a/");
    let group_by = select.group_by.as_ref().unwrap();
    assert_eq!(text(query, group_by.span), "GROUP BY time(1m, -5s), gpu");
    let time = group_by.time.as_ref().unwrap();
    assert_eq!(text(query, time.span), "time(1m, -5s)");
    assert_eq!(text(query, time.interval_span), "1m");
    assert_eq!(text(query, group_by.tags[0].span), "gpu");
    assert_eq!(text(query, select.fill.as_ref().unwrap().span), "fill(0)");
}

#[test]
fn statement_spans_cover_each_statement_of_a_query() {
    let query = "SHOW DATABASES ;\n  SELECT x FROM m;";
    let parsed = parse_query(query).unwrap();
    let spans: Vec<&str> = parsed
        .statements
        .iter()
        .map(|statement| text(query, statement.span()))
        .collect();
    assert_eq!(spans, ["SHOW DATABASES", "SELECT x FROM m"]);
}

#[test]
fn keywords_ignore_case_but_names_keep_it() {
    let lower = parse_query("select x from Cpu where Host = 'A'").unwrap();
    let upper = parse_query("SELECT x FROM Cpu WHERE Host = 'A'").unwrap();
    assert_eq!(lower.to_string(), upper.to_string());
    let other_case = parse_query("SELECT x FROM cpu WHERE host = 'A'").unwrap();
    assert_ne!(lower.to_string(), other_case.to_string());
}

#[test]
fn two_part_names_are_retention_policy_and_measurement_as_in_influxql() {
    let select = select("SELECT x FROM \"autogen\".\"cpu\"");
    let Source::Measurement(MeasurementRef {
        database,
        retention_policy,
        name,
        ..
    }) = &select.sources[0]
    else {
        panic!("not a measurement");
    };
    assert_eq!(database, &None);
    assert_eq!(
        retention_policy.as_ref().map(|policy| policy.name.as_str()),
        Some("autogen")
    );
    assert!(matches!(name, MeasurementName::Name(name) if name.name == "cpu"));
}

#[test]
fn literals_keep_the_kind_they_were_written_in() {
    let values = |query: &str| -> Vec<LiteralValue> {
        let mut values = Vec::new();
        parse_expression(query).unwrap().for_each(&mut |expr| {
            if let Expr::Literal(literal) = expr {
                values.push(literal.value.clone());
            }
        });
        values
    };
    assert_eq!(
        values(
            "a = 1 OR b = 1.0 OR c = '1' OR d = true OR e = 1s OR f =~ /1/ OR g = 18446744073709551615"
        ),
        vec![
            LiteralValue::Integer(1),
            LiteralValue::Float(1.0),
            LiteralValue::String("1".to_owned()),
            LiteralValue::Bool(true),
            LiteralValue::Duration(1_000_000_000),
            LiteralValue::Regex("1".to_owned()),
            LiteralValue::Unsigned(u64::MAX),
        ]
    );
    assert_eq!(
        values("time >= 1700000000000ms"),
        vec![LiteralValue::Duration(1_700_000_000_000_000_000)]
    );
    assert_eq!(
        values("x > -5m"),
        vec![LiteralValue::Duration(-300_000_000_000)]
    );
}

#[test]
fn a_visitor_collects_what_the_planner_needs() {
    #[derive(Default)]
    struct Collector {
        calls: Vec<String>,
        fields: Vec<String>,
        measurements: usize,
    }
    impl<'ast> Visit<'ast> for Collector {
        fn visit_expr(&mut self, expr: &'ast Expr) {
            match expr {
                Expr::Call(call) => self.calls.push(call.name.clone()),
                Expr::VarRef(var_ref) => self.fields.push(var_ref.name.clone()),
                _ => {}
            }
            walk_expr(self, expr);
        }
        fn visit_measurement(&mut self, _measurement: &'ast MeasurementRef) {
            self.measurements += 1;
        }
    }
    let statement = parse_statement(
        "SELECT trend(sum(cost_usd)) / count(x) FROM llm, (SELECT mean(y) AS x FROM gpu) WHERE model = 'a'",
    )
    .unwrap();
    let mut collector = Collector::default();
    collector.visit_statement(&statement);
    assert_eq!(collector.calls, ["trend", "sum", "count", "mean"]);
    assert_eq!(collector.fields, ["cost_usd", "x", "y", "model"]);
    assert_eq!(collector.measurements, 2);
}

#[test]
fn a_mutable_visitor_can_rewrite_the_tree() {
    struct DefaultDatabase;
    impl VisitMut for DefaultDatabase {
        fn visit_measurement_mut(&mut self, measurement: &mut MeasurementRef) {
            if measurement.database.is_none() {
                measurement.database = Some(tally_query::ast::Ident {
                    name: "telemetry".to_owned(),
                    span: Span::default(),
                });
            }
            walk_measurement_mut(self, measurement);
        }
    }
    let mut statement = parse_statement("SELECT x FROM cpu, other..mem").unwrap();
    DefaultDatabase.visit_statement_mut(&mut statement);
    assert_eq!(
        statement.to_string(),
        "SELECT x FROM telemetry..cpu, other..mem"
    );
}

#[test]
fn stripping_spans_makes_differently_spaced_queries_equal() {
    let mut spaced = parse_statement("SELECT   x\nFROM  m  WHERE a=1").unwrap();
    let mut tight = parse_statement("SELECT x FROM m WHERE a = 1").unwrap();
    assert_ne!(spaced, tight);
    strip_spans(&mut spaced);
    strip_spans(&mut tight);
    assert_eq!(spaced, tight);
}

#[test]
fn parse_statement_takes_exactly_one_statement() {
    assert!(parse_statement("SHOW DATABASES;").is_ok());
    let error = parse_statement("SHOW DATABASES; SHOW DATABASES").unwrap_err();
    assert_eq!(
        error.message,
        "expected end of query after the statement, found SHOW"
    );
}

#[test]
fn parse_expression_reads_an_alert_condition() {
    let expr = parse_expression("mean(latency_ms) > 250 AND time > now() - 5m").unwrap();
    let Expr::Binary(binary) = expr else {
        panic!("not binary")
    };
    assert_eq!(binary.op, BinaryOp::And);
    assert!(parse_expression("x > ").is_err());
    assert!(
        parse_expression("x y")
            .unwrap_err()
            .message
            .starts_with("expected an operator or end of expression")
    );
}

#[test]
fn recovering_parse_keeps_good_statements_and_reports_every_error() {
    let query = "SELECT x FROM m WHERE (; SELECT y FROM; SHOW DATABASES; SELECT 'a";
    let (statements, errors) = parse_query_recovering(query);
    assert_eq!(statements.len(), 1);
    assert!(matches!(statements[0], Statement::ShowDatabases { .. }));
    let messages: Vec<&str> = errors.iter().map(|error| error.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "expected an expression after '(', found ';'",
            "expected a measurement name, regex or '(' after FROM, found ';'",
            "unterminated string literal starting here",
        ]
    );
    let (statements, errors) = parse_query_recovering("# SHOW DATABASES; SHOW STATS");
    assert_eq!((statements.len(), errors.len()), (1, 1));
}

#[test]
fn errors_name_what_was_expected_and_what_was_found() {
    let error = parse_query("SELECT mean(usage) WHERE host = 'a'").unwrap_err();
    assert_eq!(error.expected, ["FROM"]);
    assert_eq!(error.found.as_deref(), Some("WHERE"));
    assert_eq!((error.line, error.column), (1, 20));
    assert_eq!(error.span, Span::new(19, 24));
}

#[test]
fn validation_accepts_the_documented_function_shapes() {
    for query in [
        "SELECT count(distinct(host)), count(*), count(/x/) FROM m",
        "SELECT top(x, 5), top(x, host, 5), top(x, host, gpu, 5), bottom(x::field, 1) FROM m",
        "SELECT forecast(mean(x), 1d), forecast(mean(x), 1d, 'LINEAR'), forecast(mean(x), 1d, 'holt-winters', 7d) FROM m",
        "SELECT anomaly(mean(x)), anomaly(mean(x), 10), anomaly(mean(x), 2.5), anomaly(mean(x), 10, 3) FROM m",
        "SELECT derivative(x) + 1, -rate(mean(x), 1m) * 60 FROM m",
        "SHOW TAG VALUES WITH KEY =~ /^h/ WHERE host =~ /a|b/",
    ] {
        let statement = parse_statement(query).unwrap();
        assert_eq!(validate(&statement, query), Ok(()), "{query}");
    }
}

#[test]
fn validation_checks_show_statements_and_subqueries_too() {
    let query = "SHOW SERIES WHERE mean(x) > 1";
    let error = validate(&parse_statement(query).unwrap(), query).unwrap_err();
    assert!(
        error.message.starts_with("mean() cannot be used in WHERE"),
        "{}",
        error.message
    );
    let query = "SELECT max(m) FROM (SELECT maen(x) AS m FROM cpu)";
    let error = validate(&parse_statement(query).unwrap(), query).unwrap_err();
    assert_eq!(
        error.message,
        "unknown function `maen`, did you mean `mean`?"
    );
    assert_eq!(text(query, error.span), "maen");
    let query = "SHOW TAG VALUES WITH KEY =~ /(/";
    let error = validate(&parse_statement(query).unwrap(), query).unwrap_err();
    assert_eq!(error.message, "invalid regex: unclosed group");
}

#[test]
fn the_function_table_is_consistent() {
    for (index, signature) in FUNCTIONS.iter().enumerate() {
        assert_eq!(signature.name, signature.name.to_ascii_lowercase());
        assert!(
            FUNCTIONS[..index]
                .iter()
                .all(|other| other.name != signature.name),
            "{} twice",
            signature.name
        );
        assert_eq!(function(signature.name), Some(signature));
        assert!(
            signature
                .params
                .first()
                .is_some_and(|param| param.presence == Presence::Required)
        );
    }
    assert_eq!(function("top").unwrap().shape(), "top(field[, tag ...], n)");
    assert_eq!(
        function("forecast").unwrap().shape(),
        "forecast(expr, horizon[, method[, season]])"
    );
    assert_eq!(function("derivative").unwrap().arity(), (1, Some(2)));
    assert_eq!(function("top").unwrap().arity(), (2, None));
    assert_eq!(
        function("percentile").unwrap().params[1].kind,
        ArgKind::Number
    );
    assert_eq!(function("now"), None);
}

#[test]
fn time_literals_are_for_the_planner_to_read() {
    let literal = TimeLiteral::parse("2026-11-30T00:00:00Z").unwrap();
    assert_eq!(literal.unix_nanos(0), Some(1_795_996_800_000_000_000));
}

fn candidates(query: &str) -> Vec<CompletionCandidates> {
    complete(query, query.len()).candidates
}

#[test]
fn completion_offers_statement_keywords_at_the_start() {
    let completion = complete("sel", 3);
    assert_eq!(completion.prefix, "sel");
    assert_eq!(completion.prefix_span, Span::new(0, 3));
    assert_eq!(
        completion.candidates,
        [CompletionCandidates::Keyword(vec!["SELECT"])]
    );
    assert_eq!(
        candidates("SELECT x FROM m; SH"),
        [CompletionCandidates::Keyword(vec!["SHOW"])]
    );
}

#[test]
fn completion_offers_functions_and_fields_in_the_select_list() {
    assert_eq!(
        candidates("SELECT me"),
        [
            CompletionCandidates::Function(vec!["mean", "median"]),
            CompletionCandidates::Field,
            CompletionCandidates::Tag,
        ]
    );
    assert_eq!(
        candidates("SELECT mean(x) FR"),
        [CompletionCandidates::Keyword(vec!["FROM"])]
    );
}

#[test]
fn completion_knows_measurements_tags_databases_and_clauses() {
    assert_eq!(
        candidates("SELECT mean(x) FROM "),
        [CompletionCandidates::Measurement]
    );
    let quoted = complete("SELECT mean(x) FROM \"cp", 23);
    assert_eq!(
        (quoted.prefix.as_str(), quoted.prefix_span),
        ("cp", Span::new(20, 23))
    );
    assert_eq!(quoted.candidates, [CompletionCandidates::Measurement]);
    assert_eq!(
        candidates("SELECT x FROM cpu WHERE "),
        [
            CompletionCandidates::Function(vec!["now"]),
            CompletionCandidates::Tag,
            CompletionCandidates::Field,
            CompletionCandidates::Keyword(vec!["time"]),
        ]
    );
    assert_eq!(
        candidates("SELECT x FROM cpu GROUP BY "),
        [
            CompletionCandidates::Tag,
            CompletionCandidates::Keyword(vec!["time"])
        ]
    );
    assert_eq!(
        candidates("SHOW TAG VALUES WITH KEY = "),
        [CompletionCandidates::Tag]
    );
    assert_eq!(
        candidates("SHOW MEASUREMENTS ON "),
        [CompletionCandidates::Database]
    );
    assert_eq!(
        candidates("SELECT x FROM m GROUP BY time(1m) fill("),
        [CompletionCandidates::Keyword(vec![
            "none", "null", "previous", "linear"
        ])]
    );
    assert_eq!(
        candidates("SELECT x FROM cpu WHERE a = 1 L"),
        [CompletionCandidates::Keyword(vec!["LIMIT"])]
    );
}

#[test]
fn completion_says_nothing_inside_strings_or_after_errors() {
    assert_eq!(candidates("SELECT x FROM cpu WHERE host = 'nod"), []);
    assert_eq!(candidates("SELECT x FROM cpu WHERE ) "), []);
    let completion = complete("SELECT x", 10_000);
    assert_eq!(completion.prefix, "x");
}

#[test]
fn completion_looks_only_at_the_text_before_the_cursor() {
    let query = "SELECT mean(x) FROM  WHERE host = 'a'";
    assert_eq!(
        complete(query, 20).candidates,
        [CompletionCandidates::Measurement]
    );
}
