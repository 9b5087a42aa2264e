//! Every rule in `docs/alerts.md` loads, and its condition holds over data made to trigger it
//! and not over ordinary data. A rule added to the docs without data here fails the test.

use std::collections::BTreeSet;
use std::time::Duration;

use tally_engine::{Engine, EngineOptions, PointBatch};
use tally_ingest::line_protocol::{self, ParseOptions};
use tally_query::QueryLimits;

use super::evaluator::{QueryRunner, active_series};
use super::rule::{Rule, RuleDefaults, RuleSource, RuleSpec, parse_file};

const DOC: &str = include_str!("../../../docs/alerts.md");

/// 2026-12-20T12:00:00Z.
const T: i64 = 1_797_768_000_000_000_000;
const S: i64 = 1_000_000_000;

fn doc_rules() -> Vec<RuleSpec> {
    let mut specs = Vec::new();
    let mut rest = DOC;
    while let Some(start) = rest.find("```toml\n") {
        let block = &rest[start + 8..];
        let end = block.find("```").unwrap();
        if block[..end].contains("[[rule]]") {
            specs.extend(
                parse_file(&block[..end]).unwrap_or_else(|e| panic!("{e}\n{}", &block[..end])),
            );
        }
        rest = &block[end..];
    }
    specs
}

fn write(engine: &Engine, database: &str, lines: &[String]) {
    let db = match engine.database(database) {
        Some(db) => db,
        None => engine.create_database(database).unwrap(),
    };
    let body = lines.join("\n");
    let mut batch = PointBatch::new();
    let mut point_lines = Vec::new();
    let report = line_protocol::parse_lines(
        body.as_bytes(),
        &ParseOptions::new(T),
        &mut batch,
        &mut point_lines,
    );
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let summary = db.write(&batch).unwrap();
    assert!(summary.rejected.is_empty(), "{:?}", summary.rejected);
}

/// Data for every example: `hot` triggers each rule, otherwise the data is ordinary.
fn engine_with_data(dir: &std::path::Path, hot: bool) -> Engine {
    let engine = Engine::open(dir, EngineOptions::default()).unwrap();
    let mut telemetry = Vec::new();
    for i in 1..=60 {
        let t = T - i * 10 * S;
        let temperature = if hot { 91.0 } else { 70.0 };
        telemetry.push(format!(
            "nvidia_smi,host=gpu-1,index=0 temperature_gpu={temperature} {t}"
        ));
    }
    for i in 1..=360 {
        let t = T - i * 10 * S;
        telemetry.push(format!("cpu,cpu=cpu-total,host=b usage_idle=50 {t}"));
        if !hot || t < T - 300 * S {
            telemetry.push(format!("cpu,cpu=cpu-total,host=a usage_idle=50 {t}"));
        }
    }
    for i in 1..=36 {
        let t = T - i * 600 * S;
        let used = if hot {
            95.0 - i as f64 * 25.0 / 36.0
        } else {
            50.0
        };
        telemetry.push(format!("disk,host=a,path=/data used_percent={used} {t}"));
    }
    write(&engine, "telemetry", &telemetry);

    let mut llm = Vec::new();
    for k in 0..240 {
        let t = T - k * 60 * S - 30 * S;
        let latency = if hot && k < 5 {
            5000.0
        } else {
            500.0 + (k * 37 % 50) as f64
        };
        llm.push(format!(
            "llm,endpoint=chat,model=gpt-4o-mini,provider=openai,status=ok latency_ms={latency},cost_usd=0 {t}"
        ));
    }
    for h in 1..=(20 * 24) {
        let t = T - h * 3600 * S + 7 * S;
        let cost = if hot { 15.0 } else { 0.1 };
        llm.push(format!(
            "llm,endpoint=chat,model=gpt-4o,provider=openai,status=ok latency_ms=900,cost_usd={cost} {t}"
        ));
    }
    let recent_errors = if hot { 8 } else { 2 };
    for e in 0..recent_errors {
        let t = T - 60 * S - e * 50 * S;
        llm.push(format!(
            "llm,endpoint=chat,model=gpt-4o,provider=openai,status=500 latency_ms=40,cost_usd=0 {t}"
        ));
    }
    for e in 0..2 {
        let t = T - 11 * 60 * S - e * 50 * S;
        llm.push(format!(
            "llm,endpoint=chat,model=gpt-4o,provider=openai,status=500 latency_ms=40,cost_usd=0 {t}"
        ));
    }
    write(&engine, "llmops", &llm);
    engine
}

#[test]
fn every_rule_in_the_docs_loads_and_fires_only_on_data_that_should_trigger_it() {
    let specs = doc_rules();
    let names: BTreeSet<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    for expected in [
        "gpu_temperature_high",
        "host_not_reporting",
        "provider_errors_tripled",
        "monthly_cost_forecast_over_budget",
        "disk_full_within_6h",
        "latency_p95_anomalous",
        "provider_monthly_budget",
        "gpt4o_monthly_budget",
    ] {
        assert!(
            names.contains(expected),
            "docs/alerts.md lost the example {expected}"
        );
    }
    let defaults = RuleDefaults {
        database: "telemetry".into(),
        interval: Duration::from_secs(60),
        receivers: Vec::new(),
        known_receivers: BTreeSet::new(),
    };
    let rules: Vec<Rule> = specs
        .into_iter()
        .map(|s| Rule::compile(s, RuleSource::File, &defaults, T).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let hot_dir = tempfile::tempdir().unwrap();
    let calm_dir = tempfile::tempdir().unwrap();
    let hot = engine_with_data(hot_dir.path(), true);
    let calm = engine_with_data(calm_dir.path(), false);
    for rule in &rules {
        let mut runner = QueryRunner::new(&hot, QueryLimits::default());
        let fired = active_series(rule, &mut runner, T)
            .unwrap_or_else(|e| panic!("{}: {e}", rule.spec.name));
        assert!(
            !fired.is_empty(),
            "{} did not fire on data made to trigger it",
            rule.spec.name
        );
        for alert in &fired {
            assert_eq!(alert.labels["alertname"], rule.spec.name);
            let summary = &alert.annotations["summary"];
            assert!(!summary.contains("{{"), "{summary}");
        }
        let mut runner = QueryRunner::new(&calm, QueryLimits::default());
        let calm_fired = active_series(rule, &mut runner, T)
            .unwrap_or_else(|e| panic!("{}: {e}", rule.spec.name));
        assert!(
            calm_fired.is_empty(),
            "{} fired on ordinary data: {calm_fired:?}",
            rule.spec.name
        );
        if rule.spec.name == "host_not_reporting" {
            assert_eq!(fired.len(), 1);
            assert_eq!(fired[0].labels["host"], "a");
            assert!((fired[0].value - 310.0).abs() < 1.0, "{}", fired[0].value);
            assert_eq!(
                fired[0].annotations["summary"],
                "no samples from a for 310 s"
            );
        }
        if rule.spec.name == "gpu_temperature_high" {
            assert_eq!(
                fired[0].annotations["summary"],
                "GPU 0 on gpu-1 is at 91 °C"
            );
        }
    }
    hot.close().unwrap();
    calm.close().unwrap();
}
