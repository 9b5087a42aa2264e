//! The scrape sampler over real HTTP against recorded exporter output: the generic mapping, what
//! each preset derives from two scrapes, and how failures are reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::{ExpositionServer, Reply, fixture};
use tally_engine::{FieldValue, PointBatch, PointRef};
use tally_ingest::samplers::{Preset, SampleContext, Sampler, ScrapeSampler, ScrapeTarget};

const T0: i64 = 1_733_318_400_000_000_000;
const TEN_SECONDS: i64 = 10_000_000_000;

fn context(timestamp_ns: i64) -> SampleContext<'static> {
    SampleContext {
        timestamp_ns,
        host: "tally-host",
        interval: Duration::from_secs(10),
    }
}

/// Scrapes `first` then `second` ten seconds apart; returns the second run's points.
fn two_scrapes(preset: Preset, first: &str, second: &str) -> (PointBatch<'static>, String) {
    let server = ExpositionServer::start(vec![
        Reply::text(fixture(first)),
        Reply::text(fixture(second)),
    ]);
    let url = server.url();
    let mut sampler = ScrapeSampler::new(ScrapeTarget::new(&url).with_preset(preset)).unwrap();
    let mut batch = PointBatch::new();
    sampler.sample(&context(T0), &mut batch).unwrap();
    batch.clear();
    sampler
        .sample(&context(T0 + TEN_SECONDS), &mut batch)
        .unwrap();
    (batch, url)
}

fn points<'b>(batch: &'b PointBatch<'static>, measurement: &str) -> Vec<PointRef<'b, 'static>> {
    batch
        .points()
        .filter(|p| p.measurement() == measurement)
        .collect()
}

fn tag<'b>(point: &PointRef<'b, 'static>, key: &str) -> Option<&'b str> {
    point
        .tags()
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_ref())
}

fn field(point: &PointRef<'_, 'static>, key: &str) -> Option<f64> {
    point
        .fields()
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| match v {
            FieldValue::Float(f) => *f,
            FieldValue::Integer(i) => *i as f64,
            other => panic!("{key}: unexpected {other:?}"),
        })
}

fn assert_close(point: &PointRef<'_, 'static>, key: &str, want: f64) {
    let got = field(point, key).unwrap_or_else(|| panic!("no field {key}"));
    assert!(
        (got - want).abs() < 1e-6 * want.abs().max(1.0),
        "{key}: got {got}, want {want}"
    );
}

#[test]
fn vllm_preset_derives_rates_and_latency_quantiles_from_two_scrapes() {
    let (batch, url) = two_scrapes(Preset::Vllm, "vllm-1.txt", "vllm-2.txt");
    let llm = points(&batch, "llm_server");
    assert_eq!(llm.len(), 1);
    let p = &llm[0];
    assert_eq!(tag(p, "provider"), Some("vllm"));
    assert_eq!(tag(p, "model"), Some("meta-llama/Llama-3.1-8B-Instruct"));
    assert_eq!(tag(p, "endpoint"), Some(url.as_str()));
    assert_eq!(tag(p, "host"), Some("tally-host"));
    assert_close(p, "requests_running", 5.0);
    assert_close(p, "requests_waiting", 0.0);
    assert_close(p, "kv_cache_usage_percent", 50.0);
    // 20000 prompt and 7500 generated tokens, 10 requests, in 10 s.
    assert_close(p, "prompt_tokens_per_s", 2000.0);
    assert_close(p, "completion_tokens_per_s", 750.0);
    assert_close(p, "requests_per_s", 1.0);
    // The 10 new first tokens: 2 in (20,40] ms, 4 in (40,60], 3 in (60,80], 1 in (80,100].
    assert_close(p, "ttft_ms_p50", 55.0);
    assert_close(p, "ttft_ms_p90", 80.0);
    assert_close(p, "ttft_ms_p99", 98.0);
    assert_close(p, "ttft_ms_mean", 60.0);
    // The 10 new requests: 5 in (1,1.5] s, 5 in (1.5,2].
    assert_close(p, "latency_ms_p50", 1500.0);
    assert_close(p, "latency_ms_p90", 1900.0);
    assert_close(p, "latency_ms_mean", 1250.0);
    assert_close(p, "inter_token_ms_p50", 37.5);
    assert_eq!(p.timestamp(), T0 + TEN_SECONDS);

    // The generic mapping keeps every sample too.
    let running = points(&batch, "vllm:num_requests_running");
    assert_eq!(field(&running[0], "gauge"), Some(5.0));
    assert_eq!(
        tag(&running[0], "model_name"),
        Some("meta-llama/Llama-3.1-8B-Instruct")
    );
    assert_eq!(tag(&running[0], "url"), Some(url.as_str()));
    let ttft = points(&batch, "vllm:time_to_first_token_seconds");
    assert_eq!(field(&ttft[0], "+Inf"), Some(210.0));
    assert_eq!(field(&ttft[0], "0.04"), Some(52.0));
    let scrape = points(&batch, "scrape");
    assert_eq!(field(&scrape[0], "up"), Some(1.0));
    assert_eq!(tag(&scrape[0], "preset"), Some("vllm"));
}

#[test]
fn the_first_scrape_writes_gauges_but_no_rates() {
    let server = ExpositionServer::start(vec![Reply::text(fixture("vllm-1.txt"))]);
    let mut sampler =
        ScrapeSampler::new(ScrapeTarget::new(server.url()).with_preset(Preset::Vllm)).unwrap();
    let mut batch = PointBatch::new();
    sampler.sample(&context(T0), &mut batch).unwrap();
    let llm = points(&batch, "llm_server");
    assert_close(&llm[0], "requests_running", 3.0);
    assert_close(&llm[0], "kv_cache_usage_percent", 42.15);
    assert_eq!(field(&llm[0], "prompt_tokens_per_s"), None);
    assert_eq!(field(&llm[0], "ttft_ms_p50"), None);
}

#[test]
fn tgi_preset_uses_histogram_sums_for_tokens_and_reports_errors() {
    let (batch, _) = two_scrapes(Preset::Tgi, "tgi-1.txt", "tgi-2.txt");
    let llm = points(&batch, "llm_server");
    let p = &llm[0];
    assert_eq!(tag(p, "provider"), Some("tgi"));
    assert_eq!(tag(p, "model"), Some("unknown"));
    assert_close(p, "requests_running", 6.0);
    assert_close(p, "requests_waiting", 2.0);
    assert_close(p, "requests_per_s", 2.0);
    assert_close(p, "errors_per_s", 0.2);
    assert_close(p, "prompt_tokens_per_s", 1000.0);
    assert_close(p, "completion_tokens_per_s", 200.0);
    // 20 new requests: 5 in (0.5,1] s, 5 in (1,2], 5 in (2,4], 5 in (4,8].
    assert_close(p, "latency_ms_p50", 2000.0);
    assert_eq!(
        field(p, "ttft_ms_p50"),
        None,
        "TGI exposes no time-to-first-token histogram"
    );
}

#[test]
fn llamacpp_preset_reads_counters_and_kv_cache_ratio() {
    let (batch, _) = two_scrapes(Preset::LlamaCpp, "llamacpp-1.txt", "llamacpp-2.txt");
    let p = &points(&batch, "llm_server")[0];
    assert_eq!(tag(p, "provider"), Some("llamacpp"));
    assert_close(p, "prompt_tokens_per_s", 150.0);
    assert_close(p, "completion_tokens_per_s", 40.0);
    assert_close(p, "kv_cache_usage_percent", 25.0);
    assert_close(p, "requests_running", 2.0);
    assert_close(p, "requests_waiting", 3.0);
}

#[test]
fn target_tags_override_derived_tags() {
    let server = ExpositionServer::start(vec![Reply::text(fixture("llamacpp-1.txt"))]);
    let target = ScrapeTarget::new(server.url())
        .with_preset(Preset::LlamaCpp)
        .with_tags(vec![
            ("model".into(), "qwen2.5-7b".into()),
            ("team".into(), "search".into()),
        ]);
    let mut sampler = ScrapeSampler::new(target).unwrap();
    let mut batch = PointBatch::new();
    sampler.sample(&context(T0), &mut batch).unwrap();
    let p = &points(&batch, "llm_server")[0];
    assert_eq!(tag(p, "model"), Some("qwen2.5-7b"));
    assert_eq!(tag(p, "team"), Some("search"));
    let generic = &points(&batch, "llamacpp:kv_cache_usage_ratio")[0];
    assert_eq!(tag(generic, "team"), Some("search"));
}

#[test]
fn dcgm_preset_writes_nvidia_smi_per_gpu_in_the_gpu_samplers_units() {
    let server = ExpositionServer::start(vec![Reply::text(fixture("dcgm.txt"))]);
    let mut sampler =
        ScrapeSampler::new(ScrapeTarget::new(server.url()).with_preset(Preset::Dcgm)).unwrap();
    let mut batch = PointBatch::new();
    sampler.sample(&context(T0), &mut batch).unwrap();
    let gpus = points(&batch, "nvidia_smi");
    assert_eq!(gpus.len(), 2);
    let g0 = &gpus[0];
    assert_eq!(tag(g0, "index"), Some("0"));
    assert_eq!(
        tag(g0, "uuid"),
        Some("GPU-5b3ee6a5-9f1d-4c1b-a1e2-0d4e1c2b3a40")
    );
    assert_eq!(tag(g0, "name"), Some("NVIDIA H100 80GB HBM3"));
    assert_eq!(tag(g0, "host"), Some("gpu-node-7"));
    assert_close(g0, "utilization_gpu", 97.0);
    assert_close(g0, "memory_used", 76430.0);
    assert_close(g0, "memory_total", 80557.0);
    assert_close(g0, "power_draw", 512.345);
    assert_close(g0, "energy_consumption", 987_654_321.098);
    assert_close(g0, "clocks_current_sm", 1980.0);
    assert_close(g0, "temperature_gpu", 61.0);
    assert_eq!(
        g0.fields()
            .iter()
            .find(|(k, _)| k == "throttle_reasons")
            .map(|(_, v)| v.clone()),
        Some(FieldValue::Integer(4))
    );
    assert_eq!(tag(&gpus[1], "index"), Some("1"));
}

#[test]
fn node_exporter_preset_writes_host_series_matching_the_recorded_values() {
    let (batch, _) = two_scrapes(
        Preset::NodeExporter,
        "node_exporter-1.txt",
        "node_exporter-2.txt",
    );
    let body = fixture("node_exporter-2.txt");
    let text = String::from_utf8(body).unwrap();
    let served = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let mem = &points(&batch, "mem")[0];
    assert_close(mem, "total", served("node_memory_MemTotal_bytes"));
    assert_close(mem, "available", served("node_memory_MemAvailable_bytes"));
    let system = &points(&batch, "system")[0];
    assert_close(system, "load1", served("node_load1"));
    assert!(field(system, "n_cpus").unwrap() >= 1.0);
    let cpu_total = points(&batch, "cpu")
        .into_iter()
        .find(|p| tag(p, "cpu") == Some("cpu-total"))
        .unwrap();
    let sum: f64 = cpu_total
        .fields()
        .iter()
        .map(|(_, v)| match v {
            FieldValue::Float(f) => *f,
            _ => 0.0,
        })
        .sum();
    assert!(
        (sum - 100.0).abs() < 1e-6,
        "usage percentages add up to 100: {sum}"
    );
    assert!(
        points(&batch, "net")
            .iter()
            .all(|p| tag(p, "interface") != Some("lo"))
    );
    assert!(!points(&batch, "disk").is_empty());
}

#[test]
fn openmetrics_bodies_are_read_by_content_type() {
    let body = b"# TYPE requests counter\nrequests_total 5 1700000000.25\n# EOF\n".to_vec();
    let server = ExpositionServer::start(vec![Reply {
        content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ..Reply::text(body)
    }]);
    let mut sampler = ScrapeSampler::new(ScrapeTarget::new(server.url())).unwrap();
    let mut batch = PointBatch::new();
    sampler.sample(&context(T0), &mut batch).unwrap();
    let p = &points(&batch, "requests_total")[0];
    assert_eq!(field(p, "counter"), Some(5.0));
    assert_eq!(p.timestamp(), 1_700_000_000_250_000_000);
}

#[test]
fn failures_are_errors_naming_the_target_and_record_up_zero() {
    // Nothing listens on a port that was just free.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut sampler = ScrapeSampler::new(ScrapeTarget::new(&url)).unwrap();
    let mut batch = PointBatch::new();
    let err = sampler
        .sample(&context(T0), &mut batch)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&url), "{err}");
    assert_eq!(field(&points(&batch, "scrape")[0], "up"), Some(0.0));

    let server = ExpositionServer::start(vec![Reply {
        status: 503,
        ..Reply::text(b"busy".to_vec())
    }]);
    let mut sampler = ScrapeSampler::new(ScrapeTarget::new(server.url())).unwrap();
    let err = sampler
        .sample(&context(T0), &mut PointBatch::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("HTTP 503"), "{err}");

    let server = ExpositionServer::start(vec![Reply {
        delay: Duration::from_secs(2),
        ..Reply::text(b"m 1\n".to_vec())
    }]);
    let target = ScrapeTarget::new(server.url()).with_timeout(Duration::from_millis(200));
    let mut sampler = ScrapeSampler::new(target).unwrap();
    let err = sampler
        .sample(&context(T0), &mut PointBatch::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("timeout"), "{err}");
}

#[test]
fn bad_lines_are_reported_and_the_good_ones_still_stored() {
    let server =
        ExpositionServer::start(vec![Reply::text(b"good 1\nbad{ 2\nalso_good 3\n".to_vec())]);
    let mut sampler = ScrapeSampler::new(ScrapeTarget::new(server.url())).unwrap();
    let mut batch = PointBatch::new();
    let err = sampler
        .sample(&context(T0), &mut batch)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1 exposition lines rejected") && err.contains("line 2"),
        "{err}"
    );
    assert_eq!(points(&batch, "good").len(), 1);
    assert_eq!(points(&batch, "also_good").len(), 1);
    assert_eq!(
        field(&points(&batch, "scrape")[0], "lines_rejected"),
        Some(1.0)
    );
}
