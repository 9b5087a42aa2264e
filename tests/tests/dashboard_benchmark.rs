//! Benchmark of the overview over a short and a long range: the time until every panel is
//! drawn (from navigation start, assets included, in a fresh browser profile so nothing is
//! cached) and the bytes transferred, for the last hour and for the last 30 days of the same
//! tallyd, fed with 30 days of `../shared/bench/gen.py` data and compacted (as a server that
//! has run for 30 days would be: ended blocks compacted, rollup tiers built).
//!
//! Because the page asks for at most about one point per chart pixel, the 30-day view must
//! transfer no more than twice the bytes of the 1-hour view; that is asserted. Times are
//! printed (a shared CI machine makes them too noisy to assert) and recorded in
//! docs/dashboard.md.
//!
//! The default dataset is small enough for CI (one host with one GPU, one LLM request every
//! 20 s). For the recorded numbers:
//!
//!     TALLY_DASHBOARD_BENCH_SCALE=full cargo test -p tally-tests \
//!         --test dashboard_benchmark -- --nocapture
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::Value;
use tally_tests::Tallyd;
use tally_tests::browser::Browser;
use tally_tests::gen_data::{self, GenOptions};

/// Runs per range; the median is reported.
const RUNS: usize = 3;

struct Measurement {
    drawn_ms: f64,
    total_bytes: u64,
    query_bytes: u64,
    n_queries: u64,
    max_points: u64,
    /// Panels given more points per series than their chart has pixels.
    over_budget: Value,
}

fn measure(tallyd: &Tallyd, from: &str) -> Measurement {
    let browser = Browser::start(1440, 900);
    browser.goto(&format!("{}/#/overview?from={from}&to=now", tallyd.url()));
    browser.wait_until(
        "return document.body.dataset.ready === 'true' && Number(document.body.dataset.renderSeq) >= 1;",
        Duration::from_secs(300),
        "the overview to be drawn",
    );
    let states = browser.execute(
        "return Array.from(document.querySelectorAll('.panel')).filter(p => p.dataset.state !== 'data').map(p => p.dataset.panelId + ': ' + p.dataset.state);",
        vec![],
    );
    assert_eq!(
        states,
        Value::Array(vec![]),
        "every panel has data over {from}"
    );
    let report = browser.execute(
        "const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
         const queries = entries.filter(e => e.name.includes('/query?'));
         const panels = Array.from(document.querySelectorAll('.panel[data-width-px]'));
         return {
           drawn: window.tallyTiming.drawnAt,
           total: entries.reduce((sum, e) => sum + e.transferSize, 0),
           query: queries.reduce((sum, e) => sum + e.transferSize, 0),
           n_queries: queries.length,
           max_points: Math.max(...panels.map(p => Number(p.dataset.points))),
           over_budget: panels.filter(p => Number(p.dataset.points) > Number(p.dataset.widthPx))
             .map(p => `${p.dataset.panelId}: ${p.dataset.points} points for ${p.dataset.widthPx} px`),
         };",
        vec![],
    );
    Measurement {
        drawn_ms: report["drawn"].as_f64().unwrap(),
        total_bytes: report["total"].as_u64().unwrap(),
        query_bytes: report["query"].as_u64().unwrap(),
        n_queries: report["n_queries"].as_u64().unwrap(),
        max_points: report["max_points"].as_u64().unwrap(),
        over_budget: report["over_budget"].clone(),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[test]
fn the_30_day_overview_transfers_at_most_twice_the_1_hour_overview() {
    let full = std::env::var("TALLY_DASHBOARD_BENCH_SCALE").as_deref() == Ok("full");
    let options = if full {
        GenOptions {
            days: 30,
            hosts: 2,
            gpus: 2,
            llm_rate: 0.5,
            keep_hours: 30.0 * 24.0,
        }
    } else {
        GenOptions {
            days: 30,
            hosts: 1,
            gpus: 1,
            llm_rate: 0.05,
            keep_hours: 30.0 * 24.0,
        }
    };
    let tallyd = Tallyd::start(&[]);
    let end = gen_data::now_ns_aligned();
    let lines = gen_data::generate(options, end);
    let n_lines = lines.len() + 1;
    gen_data::write_lines(&tallyd, "telemetry", &lines);
    drop(lines);
    let processes = gen_data::procstat_lines(options.hosts, 30.0 * 24.0, end);
    gen_data::write_lines(&tallyd, "telemetry", &processes);
    // A server that has run for 30 days has compacted every ended block and built its rollup
    // tiers; a fresh load has not yet, so do now what compaction would have done over time.
    let compacted = tallyd.request("POST", "/api/v1/databases/telemetry/compact", &[], b"");
    assert_eq!(
        compacted.status,
        200,
        "compaction failed: {}",
        compacted.text()
    );

    let mut results = Vec::new();
    for (name, from) in [("1 hour", "now-1h"), ("30 days", "now-30d")] {
        let runs: Vec<Measurement> = (0..RUNS).map(|_| measure(&tallyd, from)).collect();
        for run in &runs {
            assert_eq!(
                run.over_budget,
                Value::Array(vec![]),
                "{name}: more points than pixels"
            );
        }
        let drawn = median(runs.iter().map(|r| r.drawn_ms).collect());
        let total = median(runs.iter().map(|r| r.total_bytes as f64).collect());
        let query = median(runs.iter().map(|r| r.query_bytes as f64).collect());
        println!(
            "overview over {name:>7}: drawn in {drawn:>6.0} ms (median of {RUNS}), {:>8.0} bytes transferred ({:>8.0} in {} /query answers), at most {} points per series",
            total, query, runs[0].n_queries, runs[0].max_points
        );
        results.push((drawn, total));
    }
    println!(
        "dataset: {} lines of gen.py ({} days, {} hosts x {} GPUs, {} LLM requests/s) plus {} procstat lines",
        n_lines,
        options.days,
        options.hosts,
        options.gpus,
        options.llm_rate,
        processes.len()
    );
    let (hour_ms, hour_bytes) = results[0];
    let (month_ms, month_bytes) = results[1];
    println!(
        "30 days / 1 hour: time x{:.2}, bytes x{:.2}",
        month_ms / hour_ms,
        month_bytes / hour_bytes
    );
    assert!(
        month_bytes <= 2.0 * hour_bytes,
        "the 30-day overview transferred {month_bytes} bytes, more than twice the 1-hour view's {hour_bytes}"
    );
}
