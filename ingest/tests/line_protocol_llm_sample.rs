//! Lines shaped like `../shared/bench/gen.py` output (`hw`, `gpu` and `llm` measurements, with
//! gen.py's tag sets, field types, decimal places and timestamps), built here from known values
//! with a seeded generator, parsed, and checked value by value.
//!
//! Decimal fields are written from an integer count of hundredths (or thousandths, or 1e-8) and
//! expected back as that count divided by the power of ten: both the division and the parse
//! round the same rational number to the nearest f64, so they must agree bit for bit.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests may unwrap")]

use tally_engine::{FieldValue, PointBatch};
use tally_ingest::line_protocol::{ParseOptions, parse_lines};

/// SplitMix64: small, seeded and good enough to spread values over their ranges.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.below(choices.len() as u64) as usize]
    }
}

#[derive(Debug, PartialEq)]
struct Expected {
    measurement: &'static str,
    tags: Vec<(&'static str, String)>,
    fields: Vec<(&'static str, FieldValue<'static>)>,
    timestamp: i64,
}

/// `units / 10^decimals` written with exactly `decimals` places, as Python's `:.Nf` would.
fn decimal(units: u64, decimals: u32) -> (String, f64) {
    let scale = 10u64.pow(decimals);
    let text = format!(
        "{}.{:0width$}",
        units / scale,
        units % scale,
        width = decimals as usize
    );
    (text, units as f64 / scale as f64)
}

fn generate(n_lines: usize, seed: u64) -> (String, Vec<Expected>) {
    let mut random = Random(seed);
    let mut body = String::new();
    let mut expected = Vec::new();
    let window_start_ns: i64 = 1_796_083_200_000_000_000 - 86_400_000_000_000;
    for index in 0..n_lines {
        let timestamp =
            window_start_ns + index as i64 * 5_000_000_000 + random.below(50) as i64 * 1_000_000;
        match index % 3 {
            0 => {
                let host = format!("gpu-node-{:02}", random.below(32) + 1);
                let (cpu_text, cpu) = decimal(random.below(10_001), 2);
                let mem = (random.below(1 << 28) * 4096) as i64;
                let (load_text, load) = decimal(random.below(12_800), 2);
                let rx = (random.next() >> 17) as i64;
                let tx = (random.next() >> 17) as i64;
                body += &format!(
                    "hw,host={host} cpu_pct={cpu_text},mem_used_bytes={mem}i,load1={load_text},\
                     net_rx_bytes={rx}i,net_tx_bytes={tx}i {timestamp}\n"
                );
                expected.push(Expected {
                    measurement: "hw",
                    tags: vec![("host", host)],
                    fields: vec![
                        ("cpu_pct", FieldValue::Float(cpu)),
                        ("mem_used_bytes", FieldValue::Integer(mem)),
                        ("load1", FieldValue::Float(load)),
                        ("net_rx_bytes", FieldValue::Integer(rx)),
                        ("net_tx_bytes", FieldValue::Integer(tx)),
                    ],
                    timestamp,
                });
            }
            1 => {
                let gpu = random.below(8).to_string();
                let host = format!("gpu-node-{:02}", random.below(32) + 1);
                let util = random.below(101) as i64;
                let mem = random.below(81_560) as i64;
                let (power_text, power) = decimal(random.below(7_001), 1);
                let temp = random.below(90) as i64 + 20;
                let clock = [210, 1410, 1755, 1785, 1980][random.below(5) as usize];
                body += &format!(
                    "gpu,gpu={gpu},host={host} util_pct={util}i,mem_used_mib={mem}i,\
                     power_w={power_text},temp_c={temp}i,sm_clock_mhz={clock}i {timestamp}\n"
                );
                expected.push(Expected {
                    measurement: "gpu",
                    tags: vec![("gpu", gpu), ("host", host)],
                    fields: vec![
                        ("util_pct", FieldValue::Integer(util)),
                        ("mem_used_mib", FieldValue::Integer(mem)),
                        ("power_w", FieldValue::Float(power)),
                        ("temp_c", FieldValue::Integer(temp)),
                        ("sm_clock_mhz", FieldValue::Integer(clock)),
                    ],
                    timestamp,
                });
            }
            _ => {
                let endpoint = random
                    .pick(&["chat", "completions", "embeddings"])
                    .to_owned();
                let model = random
                    .pick(&[
                        "gpt-4o",
                        "claude-sonnet-4",
                        "llama3.2:3b",
                        "qwen2.5-7b-instruct",
                    ])
                    .to_owned();
                let provider = random
                    .pick(&["openai", "anthropic", "ollama", "vllm-local"])
                    .to_owned();
                let status = random.pick(&["ok", "error", "rate_limited"]).to_owned();
                let prompt = random.below(128_000) as i64 + 1;
                let completion = random.below(8_193) as i64;
                let (latency_text, latency) = decimal(random.below(60_000_000), 3);
                let (ttft_text, ttft) = decimal(random.below(5_000_000), 3);
                let (cost_text, cost) = decimal(random.below(200_000_000), 8);
                let timestamp = timestamp / 1_000_000 * 1_000_000;
                body += &format!(
                    "llm,endpoint={endpoint},model={model},provider={provider},status={status} \
                     prompt_tokens={prompt}i,completion_tokens={completion}i,\
                     latency_ms={latency_text},ttft_ms={ttft_text},cost_usd={cost_text} {timestamp}\n"
                );
                expected.push(Expected {
                    measurement: "llm",
                    tags: vec![
                        ("endpoint", endpoint),
                        ("model", model),
                        ("provider", provider),
                        ("status", status),
                    ],
                    fields: vec![
                        ("prompt_tokens", FieldValue::Integer(prompt)),
                        ("completion_tokens", FieldValue::Integer(completion)),
                        ("latency_ms", FieldValue::Float(latency)),
                        ("ttft_ms", FieldValue::Float(ttft)),
                        ("cost_usd", FieldValue::Float(cost)),
                    ],
                    timestamp,
                });
            }
        }
    }
    (body, expected)
}

#[test]
fn gen_py_shaped_lines_parse_to_exactly_the_values_written() {
    let (body, expected) = generate(30_000, 42);
    let mut batch = PointBatch::new();
    let mut point_lines = Vec::new();
    let report = parse_lines(
        body.as_bytes(),
        &ParseOptions::new(0),
        &mut batch,
        &mut point_lines,
    );
    assert!(
        report.errors.is_empty(),
        "{:?}",
        &report.errors[..report.errors.len().min(3)]
    );
    assert_eq!(report.points as usize, expected.len());
    assert_eq!(point_lines, (1..=expected.len() as u32).collect::<Vec<_>>());
    for (point, expected) in batch.points().zip(&expected) {
        assert_eq!(point.measurement(), expected.measurement);
        let tags: Vec<(&str, &str)> = point
            .tags()
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect();
        let expected_tags: Vec<(&str, &str)> = expected
            .tags
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        assert_eq!(tags, expected_tags);
        assert_eq!(point.fields().len(), expected.fields.len());
        for ((key, value), (expected_key, expected_value)) in
            point.fields().iter().zip(&expected.fields)
        {
            assert_eq!(key, expected_key);
            match (value, expected_value) {
                (FieldValue::Float(a), FieldValue::Float(b)) => {
                    assert_eq!(a.to_bits(), b.to_bits(), "{key}: {a} != {b}");
                }
                _ => assert_eq!(value, expected_value, "{key}"),
            }
        }
        assert_eq!(point.timestamp(), expected.timestamp);
    }
}

#[test]
fn gen_py_shaped_lines_are_borrowed_without_copies() {
    let (body, _) = generate(300, 7);
    let mut batch = PointBatch::new();
    let report = parse_lines(
        body.as_bytes(),
        &ParseOptions::new(0),
        &mut batch,
        &mut Vec::new(),
    );
    assert_eq!(report.points, 300);
    let range = body.as_bytes().as_ptr_range();
    for point in batch.points() {
        assert!(range.contains(&point.measurement().as_ptr()));
        for (key, value) in point.tags() {
            assert!(
                matches!(key, std::borrow::Cow::Borrowed(_))
                    && matches!(value, std::borrow::Cow::Borrowed(_))
            );
            assert!(range.contains(&value.as_ptr()));
        }
        for (key, _) in point.fields() {
            assert!(matches!(key, std::borrow::Cow::Borrowed(_)));
        }
    }
}
