//! End-to-end tests of reports: each built-in template over a fixed gen.py dataset (seed 1,
//! eight days ending 2026-12-01T00:00:00Z), every checked figure compared with the direct query
//! that computes it, run by this test through `/query`; the HTML opened in a real headless
//! Chromium (no console errors, a screenshot per template written to docs/images/); PDF through
//! the real Chromium; a report definition created, updated and deleted through the API.
//!
//! Needs python3 (gen.py) and Debian's `chromium`; fails with a clear message when they are
//! missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tally_tests::{Tallyd, encode, gen_data};

const FROM: &str = "2026-11-24T00:00:00Z";
const TO: &str = "2026-12-01T00:00:00Z";
const FROM_NS: i64 = 1_795_478_400_000_000_000;
const TO_NS: i64 = 1_796_083_200_000_000_000;
const PREVIOUS_FROM_NS: i64 = FROM_NS - 7 * 86_400_000_000_000;

/// gen.py `--scale small --seed 1 --days 8`, fewer hosts, GPUs and requests so that it loads
/// in seconds.
fn load_dataset(tallyd: &Tallyd) {
    let output = Command::new("python3")
        .arg(gen_data::gen_py())
        .args(["--scale", "small", "--seed", "1", "--days", "8"])
        .args(["--hosts", "1", "--gpus", "2", "--llm-rate", "0.05"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 (needed for gen.py): {e}"));
    assert!(
        output.status.success(),
        "gen.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    gen_data::write_lines(tallyd, "telemetry", &lines);
}

fn report_json(tallyd: &Tallyd, name: &str) -> Value {
    let response = tallyd.request(
        "GET",
        &format!(
            "/api/v1/reports/{name}?from={}&to={}&format=json",
            encode(FROM),
            encode(TO)
        ),
        &[],
        b"",
    );
    assert_eq!(response.status, 200, "{name}: {}", response.text());
    let report = response.json();
    assert_eq!(
        report["errors"],
        serde_json::json!([]),
        "{name} reported problems"
    );
    report
}

fn figure(report: &Value, name: &str) -> f64 {
    report["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no figure {name}"))["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("figure {name} has no value: {report}"))
}

/// Every value of the first column after time of every series of a direct query.
fn direct_values(tallyd: &Tallyd, query: &str) -> Vec<f64> {
    let answer = tallyd.query("telemetry", query);
    let mut values = Vec::new();
    for series in answer["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        for row in series["values"].as_array().unwrap() {
            if let Some(v) = row[1].as_f64() {
                values.push(v);
            }
        }
    }
    values
}

fn direct(tallyd: &Tallyd, query: &str) -> f64 {
    let values = direct_values(tallyd, query);
    assert_eq!(values.len(), 1, "{query} gave {values:?}");
    values[0]
}

fn window(from: i64, to: i64) -> String {
    format!("time >= {from} AND time < {to}")
}

fn assert_close(what: &str, report: f64, direct: f64) {
    let tolerance = 1e-9 * direct.abs().max(1.0);
    assert!(
        (report - direct).abs() <= tolerance,
        "{what}: report {report}, direct query {direct}"
    );
}

fn chromium() -> PathBuf {
    ["chromium", "chromium-browser"]
        .iter()
        .find_map(|name| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("chromium not found: the report tests need it (apt-get install chromium)")
        })
}

/// Opens the HTML in headless Chromium, fails on any console message of level error, and
/// saves a full-width screenshot.
fn open_in_chromium(html: &str, screenshot: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, html).unwrap();
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg("--window-size=840,2400")
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    let png = std::fs::read(screenshot).unwrap_or_else(|e| panic!("no screenshot ({e}): {stderr}"));
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
}

fn docs_images() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/images")
}

#[test]
fn every_template_matches_its_direct_queries_and_renders_in_every_format() {
    let tallyd = Tallyd::start(&[]);
    load_dataset(&tallyd);
    let current = window(FROM_NS, TO_NS);
    let previous = window(PREVIOUS_FROM_NS, FROM_NS);

    // LLM usage and cost.
    let usage = report_json(&tallyd, "llm-usage");
    for (name, query) in [
        (
            "requests",
            format!("SELECT count(latency_ms) FROM llm WHERE {current}"),
        ),
        (
            "requests_previous",
            format!("SELECT count(latency_ms) FROM llm WHERE {previous}"),
        ),
        (
            "prompt_tokens",
            format!("SELECT sum(prompt_tokens) FROM llm WHERE {current}"),
        ),
        (
            "completion_tokens",
            format!("SELECT sum(completion_tokens) FROM llm WHERE {current}"),
        ),
        (
            "total_cost",
            format!("SELECT sum(cost_usd) FROM llm WHERE {current}"),
        ),
        (
            "total_cost_previous",
            format!("SELECT sum(cost_usd) FROM llm WHERE {previous}"),
        ),
        (
            "failed_requests",
            format!("SELECT count(latency_ms) FROM llm WHERE {current} AND status != 'ok'"),
        ),
    ] {
        assert_close(name, figure(&usage, name), direct(&tallyd, &query));
    }
    let cost = direct(
        &tallyd,
        &format!("SELECT sum(cost_usd) FROM llm WHERE {current}"),
    );
    let cost_before = direct(
        &tallyd,
        &format!("SELECT sum(cost_usd) FROM llm WHERE {previous}"),
    );
    assert_close(
        "total_cost_change_pct",
        figure(&usage, "total_cost_change_pct"),
        (cost - cost_before) / cost_before * 100.0,
    );
    // Sums and counts are exact: integers stay integers.
    let requests = &usage["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "requests")
        .unwrap()["value"];
    assert!(requests.is_i64(), "a count is an integer: {requests}");
    // The per-model comparison: each model's cost equals its own direct sum.
    let by_model = usage["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["title"] == "By model")
        .unwrap();
    let columns: Vec<&str> = by_model["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let model_index = columns.iter().position(|c| *c == "model").unwrap();
    let cost_index = columns.iter().position(|c| *c == "cost_usd").unwrap();
    assert!(!by_model["rows"].as_array().unwrap().is_empty());
    for row in by_model["rows"].as_array().unwrap() {
        let model = row[model_index].as_str().unwrap();
        let expected = direct(
            &tallyd,
            &format!("SELECT sum(cost_usd) FROM llm WHERE {current} AND model = '{model}'"),
        );
        assert_close(
            &format!("cost of {model}"),
            row[cost_index].as_f64().unwrap(),
            expected,
        );
    }

    // GPU and host utilisation.
    let gpu = report_json(&tallyd, "gpu-utilisation");
    assert_eq!(figure(&gpu, "gpus"), 2.0);
    assert_close(
        "mean_utilisation",
        figure(&gpu, "mean_utilisation"),
        direct(
            &tallyd,
            &format!("SELECT mean(util_pct) FROM gpu WHERE {current}"),
        ),
    );
    let minutes = direct_values(
        &tallyd,
        &format!("SELECT mean(util_pct) FROM gpu WHERE {current} GROUP BY time(1m), host, gpu"),
    );
    let idle_minutes = minutes.iter().filter(|v| **v < 5.0).count();
    assert_close(
        "idle_gpu_hours",
        figure(&gpu, "idle_gpu_hours"),
        idle_minutes as f64 / 60.0,
    );
    assert_close(
        "idle_cost",
        figure(&gpu, "idle_cost"),
        idle_minutes as f64 / 60.0 * 2.0,
    );
    let hourly_power: f64 = direct_values(
        &tallyd,
        &format!("SELECT mean(power_w) FROM gpu WHERE {current} GROUP BY time(1h), host, gpu"),
    )
    .iter()
    .sum();
    assert!(
        (figure(&gpu, "energy_kwh") - hourly_power / 1000.0).abs() < 1e-6,
        "energy"
    );

    // Latency against targets.
    let latency = report_json(&tallyd, "latency");
    for (name, query) in [
        (
            "latency_p50",
            format!("SELECT p50(latency_ms) FROM llm WHERE {current}"),
        ),
        (
            "latency_p95",
            format!("SELECT p95(latency_ms) FROM llm WHERE {current}"),
        ),
        (
            "latency_p99",
            format!("SELECT p99(latency_ms) FROM llm WHERE {current}"),
        ),
        (
            "ttft_p95",
            format!("SELECT p95(ttft_ms) FROM llm WHERE {current}"),
        ),
    ] {
        assert_close(name, figure(&latency, name), direct(&tallyd, &query));
    }
    let hourly_p95 = direct_values(
        &tallyd,
        &format!("SELECT p95(latency_ms) FROM llm WHERE {current} GROUP BY time(1h), model"),
    );
    let missed = hourly_p95.iter().filter(|v| **v > 15_000.0).count();
    assert_eq!(figure(&latency, "latency_p95_missed_hours"), missed as f64);
    assert!(
        latency["methods"]
            .to_string()
            .contains("1 % relative error"),
        "percentiles state their method"
    );

    // Trends and forecasts.
    let trends = report_json(&tallyd, "trends");
    assert_close("cost", figure(&trends, "cost"), cost);
    let tokens = direct(
        &tallyd,
        &format!("SELECT sum(prompt_tokens) + sum(completion_tokens) FROM llm WHERE {current}"),
    );
    assert_close("tokens", figure(&trends, "tokens"), tokens);
    // The period ends on December 1st: the whole of December is forecast from the history.
    let forecast: f64 = direct_values(
        &tallyd,
        &format!("SELECT forecast(sum(cost_usd), 31d, 'linear') FROM llm WHERE time >= {} AND time < {TO_NS} GROUP BY time(1d)", TO_NS - 28 * 86_400_000_000_000),
    )
    .iter()
    .sum();
    assert_close(
        "cost_month_end",
        figure(&trends, "cost_month_end"),
        forecast,
    );
    assert!(figure(&trends, "cost_month_end_lower") <= figure(&trends, "cost_month_end"));
    assert!(figure(&trends, "cost_month_end_upper") >= figure(&trends, "cost_month_end"));
    assert!(
        trends["methods"]
            .to_string()
            .contains("prediction interval"),
        "forecasts state their method"
    );

    // Every template renders to every text format, opens cleanly in Chromium, and prints.
    for name in ["llm-usage", "gpu-utilisation", "latency", "trends"] {
        let url = |format: &str| {
            format!(
                "/api/v1/reports/{name}?from={}&to={}&format={format}",
                encode(FROM),
                encode(TO)
            )
        };
        let html = tallyd.request("GET", &url("html"), &[], b"");
        assert_eq!(html.status, 200);
        assert_eq!(
            html.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        let html = html.text();
        assert!(
            html.contains("<svg") && !html.contains("<script"),
            "{name}: inline SVG, no script"
        );
        assert!(
            !html.contains("src=\"http") && !html.contains("href=\"http"),
            "{name}: no external resource"
        );
        open_in_chromium(&html, &docs_images().join(format!("reports-{name}.png")));
        let markdown = tallyd.request("GET", &url("md"), &[], b"").text();
        assert!(markdown.starts_with("# "), "{name}: {markdown}");
        let csv = tallyd.request("GET", &url("csv"), &[], b"").text();
        assert!(csv.starts_with("section,kind,name,row,column,time,value\n"));
    }
    let pdf = tallyd.request(
        "GET",
        &format!(
            "/api/v1/reports/latency?from={}&to={}&format=pdf",
            encode(FROM),
            encode(TO)
        ),
        &[],
        b"",
    );
    assert_eq!(pdf.status, 200, "{}", pdf.text());
    assert!(pdf.body.starts_with(b"%PDF"), "a PDF starts with %PDF");

    // The shell renders through the same endpoint: `tally report NAME ... --output FILE`.
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("usage.md");
    let status = Command::new(tally_tests::binary("tally"))
        .args([
            "--host",
            &tallyd.url(),
            "report",
            "llm-usage",
            "--from",
            FROM,
            "--to",
            TO,
            "--format",
            "md",
            "--output",
        ])
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    let markdown = std::fs::read_to_string(&file).unwrap();
    assert!(
        markdown.contains(&format!(
            "**{}**",
            usage["figures"][0]["display"].as_str().unwrap()
        )),
        "{markdown}"
    );
    let missing = Command::new(tally_tests::binary("tally"))
        .args(["--host", &tallyd.url(), "report", "no-such-report"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no report named"));
    tallyd.stop();
}

#[test]
fn custom_reports_are_created_updated_and_deleted_through_the_api_and_persist() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let tallyd = Tallyd::start_in(&data, &[]);
    tallyd.write("telemetry", "llm,model=a cost_usd=1.5 1795478400000000000\nllm,model=a cost_usd=2.25 1795478460000000000");
    let definition = serde_json::json!({
        "name": "my-costs",
        "title": "My costs",
        "figures": [{"name": "cost", "query": "SELECT sum(cost_usd) FROM llm WHERE $timeFilter", "unit": "usd"}],
        "sections": [{"type": "text", "text": "Spent {{ cost }}."}]
    });
    let created = tallyd.request(
        "POST",
        "/api/v1/reports",
        &[("content-type", "application/json")],
        definition.to_string().as_bytes(),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let again = tallyd.request(
        "POST",
        "/api/v1/reports",
        &[],
        definition.to_string().as_bytes(),
    );
    assert_eq!(again.status, 409);
    let bad = serde_json::json!({"name": "bad", "title": "Bad", "sections": [{"type": "text", "text": "{{ nothing }}"}]});
    let refused = tallyd.request("POST", "/api/v1/reports", &[], bad.to_string().as_bytes());
    assert_eq!(refused.status, 400);
    assert!(
        refused.json()["error"]
            .as_str()
            .unwrap()
            .contains("sections[0].text")
    );
    let builtin = tallyd.request("DELETE", "/api/v1/reports/llm-usage", &[], b"");
    assert_eq!(builtin.status, 403);
    let md = tallyd.request(
        "GET",
        &format!(
            "/api/v1/reports/my-costs?from={}&to={}&format=md",
            encode(FROM),
            encode(TO)
        ),
        &[],
        b"",
    );
    assert!(md.text().contains("Spent **$3.75**."), "{}", md.text());
    tallyd.stop();

    // The stored definition survives a restart; then it is updated and deleted.
    let tallyd = Tallyd::start_in(&data, &[]);
    let list = tallyd.request("GET", "/api/v1/reports", &[], b"").json();
    let names: Vec<&str> = list["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"my-costs") && names.contains(&"trends"),
        "{names:?}"
    );
    let mut changed = definition.clone();
    changed["title"] = "Renamed".into();
    let updated = tallyd.request(
        "PUT",
        "/api/v1/reports/my-costs",
        &[],
        changed.to_string().as_bytes(),
    );
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_eq!(
        tallyd
            .request("GET", "/api/v1/reports/my-costs", &[], b"")
            .json()["report"]["title"],
        "Renamed"
    );
    assert_eq!(
        tallyd
            .request("DELETE", "/api/v1/reports/my-costs", &[], b"")
            .status,
        200
    );
    assert_eq!(
        tallyd
            .request("GET", "/api/v1/reports/my-costs", &[], b"")
            .status,
        404
    );
    assert!(!data.join("reports/my-costs.json").exists());
    tallyd.stop();
}
