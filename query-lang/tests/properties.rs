//! Property tests of the front end: printing and parsing agree, and no input, however broken
//! or deep, makes the lexer or parser panic or overflow the stack.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly by design"
)]

use proptest::prelude::*;
use proptest::sample::select;
use tally_query::ast::{
    AlterRetentionPolicyStatement, BinaryExpr, BinaryOp, Call, CardinalityKind, Cast,
    CreateDatabaseStatement, CreateRetentionPolicyStatement, DatabaseRetention, DeleteStatement,
    DropMeasurementStatement, DropRetentionPolicyStatement, DropSeriesStatement, ExplainStatement,
    Expr, Field, Fill, FillOption, GroupBy, Ident, Literal, LiteralValue, MeasurementName,
    MeasurementRef, ParenExpr, Query, RegexLiteral, RetentionDuration, SelectStatement,
    ShowCardinalityStatement, ShowMeasurementsStatement, ShowTagValuesStatement, Source, Span,
    Statement, TagKeyMatch, TimeDimension, TimeOffset, UnaryExpr, UnaryOp, VarRef, Wildcard,
};
use tally_query::visit::strip_query_spans;
use tally_query::{
    ParseLimits, complete, parse_query, parse_query_recovering, parse_query_with_limits, validate,
};

const NO_SPAN: Span = Span { start: 0, end: 0 };

// ------------------------------------------------------------------- generators

/// Names, including ones that need quoting: punctuation, keywords, literal words, escapes.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_][a-z0-9_]{0,8}",
        "[A-Za-z][A-Za-z0-9_ -]{0,6}",
        select(vec![
            "from",
            "SELECT",
            "true",
            "False",
            "with",
            "gpu-util",
            "9lives",
            "a b",
            "quo\"te",
            "back\\slash",
            "new\nline",
            "µs",
            "température",
            "",
            "limit",
            "tz",
            "fill",
            "now",
        ])
        .prop_map(str::to_owned),
    ]
}

/// Names that can be GROUP BY tags: anything but `time`, which GROUP BY reserves.
fn tag_name() -> impl Strategy<Value = String> {
    name().prop_filter("GROUP BY reserves time", |name| {
        !name.eq_ignore_ascii_case("time")
    })
}

fn ident() -> impl Strategy<Value = Ident> {
    name().prop_map(|name| Ident {
        name,
        span: NO_SPAN,
    })
}

/// Regex patterns the lexer can produce: no raw newline, no leading `*` (that would open a
/// comment), every backslash paired with the character after it, and no `\/` (the lexer
/// reads it as `/`, which the generator makes directly).
fn regex_pattern() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[a-z0-9 .^$|()+?{}\\[\\]/-]",
            select(vec!["\\d", "\\.", "\\\\", "\\w", "é"]).prop_map(str::to_owned),
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
    .prop_filter("a leading * opens a comment", |pattern| {
        !pattern.starts_with('*')
    })
}

fn regex_literal() -> impl Strategy<Value = RegexLiteral> {
    regex_pattern().prop_map(|pattern| RegexLiteral {
        pattern,
        span: NO_SPAN,
    })
}

fn cast() -> impl Strategy<Value = Option<Cast>> {
    prop::option::of(select(Cast::ALL.to_vec()))
}

fn literal(value: LiteralValue) -> Expr {
    Expr::Literal(Literal {
        value,
        span: NO_SPAN,
    })
}

fn leaf_expr() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (name(), cast()).prop_map(|(name, cast)| Expr::VarRef(VarRef {
            name,
            cast,
            span: NO_SPAN
        })),
        any::<i64>().prop_map(|value| literal(LiteralValue::Integer(value))),
        (i64::MAX as u64 + 1..=u64::MAX).prop_map(|value| literal(LiteralValue::Unsigned(value))),
        any::<f64>()
            .prop_filter("finite", |value| value.is_finite())
            .prop_map(|value| literal(LiteralValue::Float(value))),
        ".{0,8}".prop_map(|value| literal(LiteralValue::String(value))),
        any::<bool>().prop_map(|value| literal(LiteralValue::Bool(value))),
        regex_pattern().prop_map(|pattern| literal(LiteralValue::Regex(pattern))),
        any::<i64>().prop_map(|nanos| literal(LiteralValue::Duration(nanos))),
        Just(Expr::Now { span: NO_SPAN }),
        prop::option::of(select(vec![Cast::Field, Cast::Tag])).prop_map(|cast| Expr::Wildcard(
            Wildcard {
                cast,
                span: NO_SPAN
            }
        )),
    ]
}

fn binding(expr: &Expr) -> u8 {
    match expr {
        Expr::Binary(binary) => binary.op.precedence(),
        _ => u8::MAX,
    }
}

fn paren(expr: Expr) -> Expr {
    Expr::Paren(ParenExpr {
        inner: Box::new(expr),
        span: NO_SPAN,
    })
}

/// A binary node with the parentheses the parser would have needed to build it.
fn binary(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
    let lhs = if binding(&lhs) < op.precedence() {
        paren(lhs)
    } else {
        lhs
    };
    let rhs = if binding(&rhs) <= op.precedence() {
        paren(rhs)
    } else {
        rhs
    };
    Expr::Binary(BinaryExpr {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        span: NO_SPAN,
    })
}

/// A negation as the parser builds it: a minus before a number is part of the number, and a
/// binary operand needs parentheses.
fn negate(operand: Expr) -> Expr {
    let operand = match operand {
        Expr::Binary(_) => paren(operand),
        Expr::Literal(Literal {
            value: LiteralValue::Integer(value),
            ..
        }) if value >= 0 => paren(operand),
        Expr::Literal(Literal {
            value: LiteralValue::Duration(value),
            ..
        }) if value >= 0 => paren(operand),
        Expr::Literal(Literal {
            value: LiteralValue::Float(value),
            ..
        }) if value.is_sign_positive() => paren(operand),
        Expr::Literal(Literal {
            value: LiteralValue::Unsigned(_),
            ..
        }) => paren(operand),
        other => other,
    };
    Expr::Unary(UnaryExpr {
        op: UnaryOp::Neg,
        operand: Box::new(operand),
        span: NO_SPAN,
    })
}

const OPERATORS: [BinaryOp; 15] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Mod,
    BinaryOp::Eq,
    BinaryOp::NotEq,
    BinaryOp::Lt,
    BinaryOp::LtEq,
    BinaryOp::Gt,
    BinaryOp::GtEq,
    BinaryOp::RegexMatch,
    BinaryOp::RegexNotMatch,
    BinaryOp::And,
    BinaryOp::Or,
];

fn call_name() -> impl Strategy<Value = String> {
    prop_oneof![
        select(
            tally_query::FUNCTIONS
                .iter()
                .map(|signature| signature.name)
                .collect::<Vec<_>>()
        ),
        select(vec!["distinct", "my_udf", "time", "fill", "tz", "µ"]),
    ]
    .prop_map(str::to_owned)
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf_expr().prop_recursive(5, 48, 3, |inner| {
        prop_oneof![
            (select(OPERATORS.to_vec()), inner.clone(), inner.clone())
                .prop_map(|(op, lhs, rhs)| binary(op, lhs, rhs)),
            inner.clone().prop_map(negate),
            inner.clone().prop_map(paren),
            (call_name(), prop::collection::vec(inner, 0..3)).prop_map(|(name, args)| Expr::Call(
                Call {
                    name,
                    args,
                    span: NO_SPAN
                }
            )),
        ]
    })
}

fn measurement() -> impl Strategy<Value = MeasurementRef> {
    (
        prop::option::of(ident()),
        prop::option::of(ident()),
        prop_oneof![
            ident().prop_map(MeasurementName::Name),
            regex_literal().prop_map(MeasurementName::Regex)
        ],
    )
        .prop_map(|(database, retention_policy, name)| MeasurementRef {
            database,
            retention_policy,
            name,
            span: NO_SPAN,
        })
}

fn group_by() -> impl Strategy<Value = GroupBy> {
    let time = prop::option::of((
        0..=i64::MAX,
        prop::option::of(prop_oneof![
            any::<i64>().prop_map(|nanos| TimeOffset::Duration {
                nanos,
                span: NO_SPAN
            }),
            Just(TimeOffset::Now { span: NO_SPAN }),
        ]),
    ))
    .prop_map(|time| {
        time.map(|(interval, offset)| TimeDimension {
            interval,
            interval_span: NO_SPAN,
            offset,
            span: NO_SPAN,
        })
    });
    (
        time,
        prop::collection::vec(
            tag_name().prop_map(|name| Ident {
                name,
                span: NO_SPAN,
            }),
            0..3,
        ),
        prop::collection::vec(regex_literal(), 0..2),
        any::<bool>(),
    )
        .prop_filter(
            "GROUP BY needs a dimension",
            |(time, tags, regexes, wildcard)| {
                time.is_some() || !tags.is_empty() || !regexes.is_empty() || *wildcard
            },
        )
        .prop_map(|(time, tags, regexes, wildcard)| GroupBy {
            time,
            tags,
            regexes,
            wildcard,
            span: NO_SPAN,
        })
}

fn fill() -> impl Strategy<Value = Fill> {
    prop_oneof![
        Just(FillOption::None),
        Just(FillOption::Null),
        Just(FillOption::Previous),
        Just(FillOption::Linear),
        any::<i64>().prop_map(FillOption::Integer),
        any::<f64>()
            .prop_filter("finite", |value| value.is_finite())
            .prop_map(FillOption::Float),
    ]
    .prop_map(|option| Fill {
        option,
        span: NO_SPAN,
    })
}

fn select_with(
    sources: impl Strategy<Value = Vec<Source>>,
) -> impl Strategy<Value = SelectStatement> {
    let fields = prop::collection::vec(
        (expr(), prop::option::of(ident())).prop_map(|(expr, alias)| Field {
            expr,
            alias,
            span: NO_SPAN,
        }),
        1..3,
    );
    let counts = (
        any::<bool>(),
        prop::option::of(any::<u64>()),
        prop::option::of(any::<u64>()),
        prop::option::of(any::<u64>()),
        prop::option::of(any::<u64>()),
        prop::option::of(".{0,6}"),
    );
    (
        fields,
        sources,
        prop::option::of(expr()),
        prop::option::of(group_by()),
        prop::option::of(fill()),
        counts,
    )
        .prop_map(|(fields, sources, condition, group_by, fill, counts)| {
            let (order_desc, limit, offset, slimit, soffset, tz) = counts;
            SelectStatement {
                fields,
                sources,
                condition,
                group_by,
                fill,
                order_desc,
                limit,
                offset,
                slimit,
                soffset,
                tz,
                span: NO_SPAN,
            }
        })
}

fn select_statement() -> impl Strategy<Value = SelectStatement> {
    let plain_sources = prop::collection::vec(measurement().prop_map(Source::Measurement), 1..3);
    let inner = select_with(plain_sources);
    let sources = prop::collection::vec(
        prop_oneof![
            3 => measurement().prop_map(Source::Measurement),
            1 => inner.prop_map(|select| Source::Subquery { select: Box::new(select), span: NO_SPAN }),
        ],
        1..3,
    );
    select_with(sources)
}

fn tag_key_match() -> impl Strategy<Value = TagKeyMatch> {
    prop_oneof![
        ident().prop_map(TagKeyMatch::Equal),
        ident().prop_map(TagKeyMatch::NotEqual),
        regex_literal().prop_map(TagKeyMatch::Regex),
        regex_literal().prop_map(TagKeyMatch::NotRegex),
        prop::collection::vec(ident(), 1..3).prop_map(TagKeyMatch::In),
    ]
}

fn retention_duration() -> impl Strategy<Value = RetentionDuration> {
    prop_oneof![
        (0..=i64::MAX).prop_map(RetentionDuration::Finite),
        Just(RetentionDuration::Infinite)
    ]
}

fn measurements() -> impl Strategy<Value = Vec<MeasurementRef>> {
    prop::collection::vec(measurement(), 0..3)
}

fn other_statement() -> impl Strategy<Value = Statement> {
    let limit = || prop::option::of(any::<u64>());
    prop_oneof![
        (
            prop::option::of(ident()),
            prop::option::of(prop_oneof![
                ident().prop_map(MeasurementName::Name),
                regex_literal().prop_map(MeasurementName::Regex)
            ]),
            prop::option::of(expr()),
            limit(),
            limit()
        )
            .prop_map(|(database, measurement, condition, limit, offset)| {
                Statement::ShowMeasurements(ShowMeasurementsStatement {
                    database,
                    measurement,
                    condition,
                    limit,
                    offset,
                    span: NO_SPAN,
                })
            }),
        (
            prop::option::of(ident()),
            measurements(),
            tag_key_match(),
            prop::option::of(expr()),
            limit(),
            limit()
        )
            .prop_map(|(database, sources, key, condition, limit, offset)| {
                Statement::ShowTagValues(ShowTagValuesStatement {
                    database,
                    sources,
                    key,
                    condition,
                    limit,
                    offset,
                    span: NO_SPAN,
                })
            }),
        (
            select(vec![
                CardinalityKind::Series,
                CardinalityKind::Measurement,
                CardinalityKind::TagKey,
                CardinalityKind::TagValues,
                CardinalityKind::FieldKey,
            ]),
            any::<bool>(),
            prop::option::of(ident()),
            measurements(),
            prop::option::of(expr()),
            tag_key_match(),
        )
            .prop_map(|(kind, exact, database, sources, condition, key)| {
                let key = (kind == CardinalityKind::TagValues).then_some(key);
                Statement::ShowCardinality(ShowCardinalityStatement {
                    kind,
                    exact,
                    database,
                    sources,
                    condition,
                    key,
                    span: NO_SPAN,
                })
            }),
        (
            ident(),
            prop::option::of(retention_duration()),
            prop::option::of(1..=u64::MAX),
            prop::option::of(0..=i64::MAX),
            prop::option::of(ident()),
        )
            .prop_filter(
                "WITH needs an option",
                |(_, duration, replication, shard, policy)| {
                    duration.is_some()
                        || replication.is_some()
                        || shard.is_some()
                        || policy.is_some()
                }
            )
            .prop_map(
                |(name, duration, replication, shard_duration, policy_name)| {
                    Statement::CreateDatabase(CreateDatabaseStatement {
                        name,
                        retention: Some(DatabaseRetention {
                            duration,
                            replication,
                            shard_duration,
                            policy_name,
                            span: NO_SPAN,
                        }),
                        span: NO_SPAN,
                    })
                }
            ),
        (
            ident(),
            ident(),
            retention_duration(),
            1..=u64::MAX,
            prop::option::of(0..=i64::MAX),
            any::<bool>()
        )
            .prop_map(
                |(name, database, duration, replication, shard_duration, default)| {
                    Statement::CreateRetentionPolicy(CreateRetentionPolicyStatement {
                        name,
                        database,
                        duration,
                        replication,
                        shard_duration,
                        default,
                        span: NO_SPAN,
                    })
                }
            ),
        (
            ident(),
            ident(),
            prop::option::of(retention_duration()),
            prop::option::of(1..=u64::MAX),
            prop::option::of(0..=i64::MAX),
            any::<bool>(),
        )
            .prop_filter(
                "ALTER needs an option",
                |(_, _, duration, replication, shard, default)| {
                    duration.is_some() || replication.is_some() || shard.is_some() || *default
                }
            )
            .prop_map(
                |(name, database, duration, replication, shard_duration, default)| {
                    Statement::AlterRetentionPolicy(AlterRetentionPolicyStatement {
                        name,
                        database,
                        duration,
                        replication,
                        shard_duration,
                        default,
                        span: NO_SPAN,
                    })
                }
            ),
        (ident(), ident()).prop_map(|(name, database)| {
            Statement::DropRetentionPolicy(DropRetentionPolicyStatement {
                name,
                database,
                span: NO_SPAN,
            })
        }),
        ident().prop_map(|name| Statement::DropMeasurement(DropMeasurementStatement {
            name,
            span: NO_SPAN
        })),
        (measurements(), prop::option::of(expr()))
            .prop_filter("needs FROM or WHERE", |(sources, condition)| !sources
                .is_empty()
                || condition.is_some())
            .prop_map(|(sources, condition)| {
                Statement::DropSeries(DropSeriesStatement {
                    sources,
                    condition,
                    span: NO_SPAN,
                })
            }),
        (prop::option::of(measurement()), prop::option::of(expr()))
            .prop_filter("needs FROM or WHERE", |(source, condition)| source
                .is_some()
                || condition.is_some())
            .prop_map(|(source, condition)| Statement::Delete(DeleteStatement {
                source,
                condition,
                span: NO_SPAN
            })),
        Just(Statement::ShowDatabases { span: NO_SPAN }),
        Just(Statement::ShowCompactions { span: NO_SPAN }),
    ]
}

fn statement() -> impl Strategy<Value = Statement> {
    prop_oneof![
        3 => select_statement().prop_map(|select| Statement::Select(Box::new(select))),
        1 => (any::<bool>(), select_statement()).prop_map(|(analyze, select)| {
            Statement::Explain(ExplainStatement { analyze, select: Box::new(select), span: NO_SPAN })
        }),
        3 => other_statement(),
    ]
}

/// Words and symbols the grammar knows, plus some it does not, to build token soups.
const TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "LIMIT",
    "OFFSET",
    "SLIMIT",
    "SOFFSET",
    "fill",
    "tz",
    "time",
    "now",
    "AND",
    "OR",
    "AS",
    "INTO",
    "DISTINCT",
    "SHOW",
    "TAG",
    "KEYS",
    "KEY",
    "VALUES",
    "FIELD",
    "SERIES",
    "MEASUREMENTS",
    "MEASUREMENT",
    "CARDINALITY",
    "EXACT",
    "RETENTION",
    "POLICY",
    "POLICIES",
    "ON",
    "WITH",
    "IN",
    "CREATE",
    "DROP",
    "ALTER",
    "DELETE",
    "DATABASE",
    "DATABASES",
    "DURATION",
    "REPLICATION",
    "SHARD",
    "DEFAULT",
    "INF",
    "NAME",
    "EXPLAIN",
    "ANALYZE",
    "DESC",
    "ASC",
    "none",
    "null",
    "previous",
    "linear",
    "true",
    "false",
    "mean",
    "count",
    "percentile",
    "top",
    "cpu",
    "host",
    "value",
    "\"quoted id\"",
    "'str'",
    "'2026-11-30T00:00:00Z'",
    "/re/",
    "/",
    "*",
    "+",
    "-",
    "%",
    "=",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "=~",
    "!~",
    "(",
    ")",
    ",",
    ";",
    ".",
    "..",
    "::",
    "::float",
    "::tag",
    "1",
    "0",
    "42",
    "1.5",
    ".5",
    "10s",
    "1h30m",
    "5m",
    "-1",
    "18446744073709551615",
    "9223372036854775808",
    "--c\n",
    "/*c*/",
    "'",
    "\"",
    "µ",
    "#",
    "!",
    ":",
    "\n",
    "\t",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec((select(TOKENS.to_vec()), prop::bool::weighted(0.8)), 0..40).prop_map(
        |tokens| {
            let mut text = String::new();
            for (token, space) in tokens {
                text.push_str(token);
                if space {
                    text.push(' ');
                }
            }
            text
        },
    )
}

/// Queries to mutate: between them they use most of the grammar.
const SEEDS: &[&str] = &[
    "SELECT mean(gpu_util_pct) FROM gpu WHERE host = 'node-1' AND time > now() - 6h GROUP BY time(1m), gpu",
    "SELECT sum(completion_tokens) / (sum(latency_ms) / 1000) AS tokens_per_s FROM llm GROUP BY time(5m), model fill(0)",
    "SELECT p99(latency_ms), p50(ttft_ms) FROM llm WHERE provider =~ /openai|anthropic/ GROUP BY provider",
    "SELECT mean(\"value\") FROM \"cpu\" WHERE (\"host\" =~ /^a$/) AND time >= 1700000000000ms GROUP BY time(10s) fill(null)",
    "SELECT count(distinct host), top(cost_usd, model, 3) FROM db.rp.llm, db..m, /re/ ORDER BY time DESC LIMIT 10 OFFSET 1 SLIMIT 2 SOFFSET 3 tz('UTC')",
    "SELECT max(m) FROM (SELECT mean(x) AS m FROM cpu GROUP BY time(1m, -15m), *) WHERE a = -1 OR b != 2.5",
    "SHOW TAG VALUES ON db FROM cpu WITH KEY IN (host, gpu) WHERE region = 'eu' LIMIT 5 OFFSET 1",
    "SHOW MEASUREMENTS ON db WITH MEASUREMENT =~ /x/ WHERE a = 1 LIMIT 100",
    "SHOW TAG VALUES EXACT CARDINALITY ON db FROM cpu WHERE a = 'b' WITH KEY = host",
    "CREATE RETENTION POLICY rp ON db DURATION 1w REPLICATION 1 SHARD DURATION 1d DEFAULT",
    "ALTER RETENTION POLICY rp ON db DURATION INF REPLICATION 2 DEFAULT; DROP SERIES FROM cpu WHERE host = 'a'",
    "CREATE DATABASE db WITH DURATION 30d REPLICATION 1 SHARD DURATION 1d NAME rp; DELETE FROM cpu WHERE time < '2026-01-01'",
    "EXPLAIN ANALYZE SELECT *::field, x::float, -y, a % b FROM m WHERE c !~ /d/ AND e <> 'f'",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Duplicate(usize),
    Swap(usize),
    Insert(usize, &'static str),
}

/// A seed query with some of its words deleted, duplicated, swapped or new tokens inserted:
/// many of these still parse, which exercises printing on trees nobody wrote by hand.
fn mutated_query() -> impl Strategy<Value = String> {
    let mutation = prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Duplicate),
        any::<usize>().prop_map(Mutation::Swap),
        (any::<usize>(), select(TOKENS.to_vec()))
            .prop_map(|(at, token)| Mutation::Insert(at, token)),
    ];
    (
        select(SEEDS.to_vec()),
        prop::collection::vec(mutation, 0..4),
    )
        .prop_map(|(seed, mutations)| {
            let mut words: Vec<String> = seed.split(' ').map(str::to_owned).collect();
            for mutation in mutations {
                let count = words.len().max(1);
                match mutation {
                    Mutation::Delete(at) if !words.is_empty() => {
                        words.remove(at % count);
                    }
                    Mutation::Duplicate(at) if !words.is_empty() => {
                        let word = words[at % count].clone();
                        words.insert(at % count, word);
                    }
                    Mutation::Swap(at) if words.len() > 1 => {
                        words.swap(at % (count - 1), at % (count - 1) + 1)
                    }
                    Mutation::Insert(at, token) => {
                        words.insert(at % (words.len() + 1), token.to_owned())
                    }
                    _ => {}
                }
            }
            words.join(" ")
        })
}

/// Parses, prints, parses the print, and checks both trees agree and the print is stable.
fn assert_round_trip(query: &Query) -> Result<(), TestCaseError> {
    let printed = query.to_string();
    let reparsed = parse_query(&printed);
    prop_assert!(
        reparsed.is_ok(),
        "printed form does not parse: {printed}\n{:?}",
        reparsed.err()
    );
    let mut reparsed = reparsed.map_err(|error| TestCaseError::fail(error.to_string()))?;
    strip_query_spans(&mut reparsed);
    let mut original = query.clone();
    strip_query_spans(&mut original);
    prop_assert_eq!(&original, &reparsed, "printed form: {}", printed);
    prop_assert_eq!(reparsed.to_string(), printed);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn printing_a_tree_and_parsing_it_gives_the_same_tree(statement in statement()) {
        let query = Query { statements: vec![statement], span: NO_SPAN };
        assert_round_trip(&query)?;
    }

    #[test]
    fn random_bytes_never_panic_the_lexer_parser_validator_or_completer(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        cursor in 0usize..220,
    ) {
        let text = String::from_utf8_lossy(&bytes);
        match parse_query(&text) {
            Ok(query) => {
                for statement in &query.statements {
                    let _ = validate(statement, &text);
                }
            }
            Err(error) => {
                let rendered = error.render(&text);
                prop_assert!(rendered.starts_with("error: "));
            }
        }
        let _ = parse_query_recovering(&text);
        let _ = complete(&text, cursor);
    }

    #[test]
    fn random_text_never_panics_and_errors_point_inside_it(text in "\\PC{0,80}", cursor in 0usize..100) {
        if let Err(error) = parse_query(&text) {
            prop_assert!(error.span.start as usize <= text.len() && error.span.end as usize <= text.len());
            prop_assert!(error.span.start <= error.span.end);
            let _ = error.render(&text);
        }
        let _ = complete(&text, cursor);
    }

    #[test]
    fn token_soups_never_panic_and_any_that_parse_round_trip(text in token_soup(), cursor in 0usize..200) {
        match parse_query(&text) {
            Ok(query) => {
                for statement in &query.statements {
                    let _ = validate(statement, &text);
                }
                assert_round_trip(&query)?;
            }
            Err(error) => {
                prop_assert!(error.span.end as usize <= text.len());
                let rendered = error.render(&text);
                prop_assert!(rendered.lines().count() >= 3);
            }
        }
        let (statements, errors) = parse_query_recovering(&text);
        prop_assert!(statements.len() + errors.len() <= text.len() + 1);
        let _ = complete(&text, cursor);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn mutated_queries_never_panic_and_any_that_parse_round_trip(text in mutated_query()) {
        match parse_query(&text) {
            Ok(query) => {
                for statement in &query.statements {
                    let _ = validate(statement, &text);
                }
                assert_round_trip(&query)?;
            }
            Err(error) => {
                prop_assert!(error.span.end as usize <= text.len());
                let _ = error.render(&text);
            }
        }
        let _ = parse_query_recovering(&text);
    }
}

// ------------------------------------------------------------------- depth limits

fn assert_too_deep(query: &str) {
    let error = parse_query(query).expect_err("a query nested this deep must be refused");
    assert!(
        error.message.starts_with("query nested too deeply"),
        "{}",
        error.message
    );
}

#[test]
fn deep_parentheses_give_an_error_not_a_stack_overflow() {
    assert_too_deep(&format!(
        "SELECT {}x{} FROM m",
        "(".repeat(100_000),
        ")".repeat(100_000)
    ));
    assert_too_deep(&format!("SELECT {} FROM m", "(".repeat(100_000)));
    assert!(
        parse_query(&format!(
            "SELECT {}x{} FROM m",
            "(".repeat(120),
            ")".repeat(120)
        ))
        .is_ok()
    );
}

#[test]
fn deep_negations_calls_and_subqueries_give_an_error() {
    assert_too_deep(&format!("SELECT {}x FROM m", "- ".repeat(100_000)));
    assert_too_deep(&format!(
        "SELECT {}x{} FROM m",
        "f(".repeat(100_000),
        ")".repeat(100_000)
    ));
    assert_too_deep(&format!(
        "SELECT x FROM {}m{}",
        "(SELECT x FROM ".repeat(10_000),
        ")".repeat(10_000)
    ));
    assert!(
        parse_query(&format!(
            "SELECT x FROM {}m{}",
            "(SELECT x FROM ".repeat(60),
            ")".repeat(60)
        ))
        .is_ok()
    );
}

#[test]
fn long_operator_chains_are_deep_trees_and_are_refused_past_the_limit() {
    let terms = |count: usize| vec!["x"; count].join(" + ");
    assert!(parse_query(&format!("SELECT {} FROM m", terms(100))).is_ok());
    assert_too_deep(&format!("SELECT {} FROM m", terms(100_000)));
    let conditions = vec!["a = 1"; 100_000].join(" AND ");
    assert_too_deep(&format!("SELECT x FROM m WHERE {conditions}"));
}

#[test]
fn the_deepest_accepted_queries_parse_print_and_validate_on_a_test_thread_stack() {
    // Each shape spends the most parser stack frames per level in its own way: nested calls
    // go through the argument list, parentheses and negations through the operand parser,
    // operator chains through every precedence level, subqueries through whole SELECTs.
    // Test threads have 2 MiB of stack, less than a server thread.
    let mut chain = "x".to_owned();
    for _ in 0..20 {
        chain = format!("a OR b AND c = d + e * ({chain})");
    }
    let queries = [
        format!("SELECT {}x{} FROM m", "trend(".repeat(126), ")".repeat(126)),
        format!("SELECT {}x{} FROM m", "(".repeat(126), ")".repeat(126)),
        format!("SELECT {}x FROM m", "- ".repeat(126)),
        format!("SELECT x FROM m WHERE {chain}"),
        format!(
            "SELECT x FROM {}m{}",
            "(SELECT x FROM ".repeat(126),
            ")".repeat(126)
        ),
    ];
    for query in &queries {
        let parsed = parse_query(query);
        assert!(
            parsed.is_ok(),
            "{:?}",
            parsed.err().map(|error| error.render(query))
        );
        let parsed = parsed.unwrap();
        assert_eq!(validate(&parsed.statements[0], query), Ok(()));
        let printed = parsed.to_string();
        assert_eq!(
            parse_query(&printed).map(|reparsed| reparsed.to_string()),
            Ok(printed)
        );
    }
}

#[test]
fn the_depth_limit_and_the_length_limit_are_configurable() {
    let limits = ParseLimits {
        max_query_bytes: 1 << 20,
        max_depth: 4,
    };
    assert!(parse_query_with_limits("SELECT ((x)) FROM m", &limits).is_ok());
    let error = parse_query_with_limits("SELECT ((((((x)))))) FROM m", &limits).unwrap_err();
    assert!(
        error.message.contains("more than 4 levels"),
        "{}",
        error.message
    );
    let limits = ParseLimits {
        max_query_bytes: 10,
        max_depth: 128,
    };
    let error = parse_query_with_limits("SELECT x FROM m", &limits).unwrap_err();
    assert_eq!(
        error.message,
        "query is 15 bytes long, more than the limit of 10"
    );
    let two_mebibytes = format!("SELECT x FROM m WHERE a = '{}'", "a".repeat(2 << 20));
    assert!(
        parse_query(&two_mebibytes)
            .unwrap_err()
            .message
            .starts_with("query is")
    );
}
