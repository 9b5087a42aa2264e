//! Query parser throughput: queries per second over a mix of the queries Tally answers all day
//! (dashboard panels, Grafana's generated queries and template variables, reports, alert
//! rules, discovery and admin statements).
//!
//! Run with:
//!
//!     cargo bench -p tally-benches --bench query_parser
//!
//! `parse` lexes and parses the whole mix; `parse_and_validate` adds the function-table,
//! regex and time-string checks the executor runs before planning; `print` measures the
//! canonical printer; `complete` asks for completions at the end of each query, as the
//! dashboard's editor does on every key press. A filter narrows the run:
//! `cargo bench -p tally-benches --bench query_parser -- complete`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tally_query::{complete, parse_query, validate};

/// The mix: most traffic is dashboard SELECTs, then Grafana's discovery queries.
const QUERIES: &[&str] = &[
    "SELECT mean(gpu_util_pct) FROM gpu WHERE host = 'node-1' AND time > now() - 6h GROUP BY time(1m), gpu",
    "SELECT sum(completion_tokens) FROM llm WHERE time > now() - 7d GROUP BY time(1h), model FILL(0)",
    "SELECT p99(latency_ms), p50(ttft_ms) FROM llm WHERE provider =~ /openai|anthropic/ GROUP BY provider",
    "SELECT sum(completion_tokens) / (sum(latency_ms) / 1000) AS tokens_per_s FROM llm GROUP BY time(5m), model",
    "SELECT trend(sum(cost_usd)) FROM llm WHERE time > now() - 30d GROUP BY time(1d)",
    "SELECT mean(\"value\") FROM \"cpu\" WHERE (\"host\" =~ /^node-1$/) AND time >= 1700000000000ms and time <= 1700003600000ms GROUP BY time(10s) fill(null)",
    "SELECT non_negative_derivative(mean(\"bytes_recv\"), 1s) FROM \"autogen\".\"net\" WHERE (\"host\" = 'node-2') AND time >= now() - 1h GROUP BY time(10s), \"interface\" fill(null)",
    "SELECT last(\"used_percent\") AS \"mem\" FROM \"mem\" WHERE time >= '2026-11-30T00:00:00Z' AND time < '2026-11-30T06:00:00Z' GROUP BY time(1m), \"host\" fill(none)",
    "SELECT percentile(latency_ms, 95), count(status) FROM llm WHERE status != '200' AND model = 'gpt-4o' AND time > now() - 15m GROUP BY time(30s) ORDER BY time DESC LIMIT 100",
    "SELECT forecast(sum(cost_usd), 7d, 'holt-winters', 1w) FROM llm WHERE time > now() - 90d GROUP BY time(1d) tz('Europe/Paris')",
    "SELECT anomaly(mean(ttft_ms), 30, 3) FROM llm WHERE time > now() - 1h GROUP BY time(1m), model",
    "SELECT max(m) FROM (SELECT mean(memory_used_mb) AS m FROM gpu WHERE time > now() - 1d GROUP BY time(1m), gpu) GROUP BY time(1h)",
    "SHOW TAG VALUES WITH KEY = \"host\"",
    "SHOW TAG VALUES FROM \"llm\" WITH KEY = \"model\" WHERE \"provider\" =~ /^(openai|anthropic)$/",
    "SHOW MEASUREMENTS WITH MEASUREMENT =~ /gpu.*/ LIMIT 100",
    "SHOW FIELD KEYS FROM \"cpu\"",
    "SHOW RETENTION POLICIES ON \"telemetry\"",
    "SHOW DATABASES",
    "CREATE DATABASE llm_metrics WITH DURATION 30d",
    "DELETE FROM llm WHERE model = 'test' AND time < '2026-01-01T00:00:00Z'",
];

fn total_bytes() -> u64 {
    QUERIES.iter().map(|query| query.len() as u64).sum()
}

fn parser_benchmarks(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("query_parser");
    group.throughput(Throughput::Elements(QUERIES.len() as u64));
    group.bench_function("parse", |bencher| {
        bencher.iter(|| {
            for query in QUERIES {
                let _ = black_box(parse_query(black_box(query)));
            }
        });
    });
    group.bench_function("parse_and_validate", |bencher| {
        bencher.iter(|| {
            for query in QUERIES {
                if let Ok(parsed) = parse_query(black_box(query)) {
                    for statement in &parsed.statements {
                        let _ = black_box(validate(statement, query));
                    }
                }
            }
        });
    });
    let parsed: Vec<_> = QUERIES
        .iter()
        .filter_map(|query| parse_query(query).ok())
        .collect();
    assert_eq!(
        parsed.len(),
        QUERIES.len(),
        "every query of the mix must parse"
    );
    group.bench_function("print", |bencher| {
        bencher.iter(|| {
            for query in &parsed {
                black_box(query.to_string());
            }
        });
    });
    group.bench_function("complete", |bencher| {
        bencher.iter(|| {
            for query in QUERIES {
                black_box(complete(black_box(query), query.len()));
            }
        });
    });
    group.throughput(Throughput::Bytes(total_bytes()));
    group.bench_function("parse_bytes", |bencher| {
        bencher.iter(|| {
            for query in QUERIES {
                let _ = black_box(parse_query(black_box(query)));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, parser_benchmarks);
criterion_main!(benches);
