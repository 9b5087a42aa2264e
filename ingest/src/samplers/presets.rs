//! Presets: what the scraper knows about particular exporters beyond the generic mapping.
//!
//! - `vllm`, `tgi`, `llamacpp`: derive the `llm_server` series of `docs/llm-metrics.md`
//!   (running and waiting requests, KV-cache use, prompt and completion tokens per second,
//!   requests and errors per second, and time-to-first-token, latency and inter-token
//!   quantiles computed from the histograms' increase since the previous scrape).
//! - `dcgm`: NVIDIA's DCGM exporter as the `nvidia_smi` series the `gpu` sampler writes.
//! - `node_exporter`: Prometheus' node exporter as the `cpu`, `mem`, `swap`, `system`, `net`,
//!   `diskio` and `disk` series the `host` sampler writes.
//!
//! Rates and quantiles compare two scrapes, so they start with the second scrape of a target. A
//! counter that went back (the exporter restarted) counts from zero, as Prometheus' `rate` does.

use std::collections::{BTreeMap, HashMap};

use tally_engine::PointBatch;

use super::{SampleContext, SamplerError, float, integer, named, push_point};
use crate::prometheus::{Exposition, Suffix};

/// What the scraper knows about a target beyond the generic mapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Preset {
    /// The generic mapping only.
    #[default]
    Generic,
    Vllm,
    Tgi,
    LlamaCpp,
    Dcgm,
    NodeExporter,
}

impl Preset {
    pub const ALL: [Preset; 6] = [
        Preset::Generic,
        Preset::Vllm,
        Preset::Tgi,
        Preset::LlamaCpp,
        Preset::Dcgm,
        Preset::NodeExporter,
    ];

    /// The name used in configuration: `generic`, `vllm`, `tgi`, `llamacpp`, `dcgm`,
    /// `node_exporter`.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Generic => "generic",
            Preset::Vllm => "vllm",
            Preset::Tgi => "tgi",
            Preset::LlamaCpp => "llamacpp",
            Preset::Dcgm => "dcgm",
            Preset::NodeExporter => "node_exporter",
        }
    }

    pub fn parse(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }

    fn llm(self) -> Option<&'static LlmSpec> {
        match self {
            Preset::Vllm => Some(&VLLM),
            Preset::Tgi => Some(&TGI),
            Preset::LlamaCpp => Some(&LLAMACPP),
            _ => None,
        }
    }
}

/// Where a per-second rate comes from.
enum Source {
    None,
    /// A counter (sample names, first present wins), summed over the other labels.
    Counter(&'static [&'static str]),
    /// The `_sum` of a histogram (base names): e.g. tokens per request summed = tokens.
    HistogramSum(&'static [&'static str]),
}

/// The metric names of one inference server.
struct LlmSpec {
    provider: &'static str,
    /// The label naming the model; empty when the server has none (one model per server).
    model_label: &'static str,
    running: &'static [&'static str],
    waiting: &'static [&'static str],
    /// KV-cache use as a fraction (0 to 1).
    kv_cache_fraction: &'static [&'static str],
    prompt_tokens: Source,
    completion_tokens: Source,
    requests: Source,
    errors: Source,
    /// Histograms in seconds (base names).
    ttft: &'static [&'static str],
    latency: &'static [&'static str],
    inter_token: &'static [&'static str],
}

// vLLM (v0 and v1 engines): docs/design/v1/metrics.md of the vLLM repository.
static VLLM: LlmSpec = LlmSpec {
    provider: "vllm",
    model_label: "model_name",
    running: &["vllm:num_requests_running"],
    waiting: &["vllm:num_requests_waiting"],
    kv_cache_fraction: &["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"],
    prompt_tokens: Source::Counter(&["vllm:prompt_tokens_total"]),
    completion_tokens: Source::Counter(&["vllm:generation_tokens_total"]),
    requests: Source::Counter(&["vllm:request_success_total"]),
    errors: Source::None,
    ttft: &["vllm:time_to_first_token_seconds"],
    latency: &["vllm:e2e_request_latency_seconds"],
    inter_token: &[
        "vllm:inter_token_latency_seconds",
        "vllm:time_per_output_token_seconds",
    ],
};

// Hugging Face TGI's router: docs/source/reference/metrics.md of text-generation-inference.
static TGI: LlmSpec = LlmSpec {
    provider: "tgi",
    model_label: "",
    running: &["tgi_batch_current_size"],
    waiting: &["tgi_queue_size"],
    kv_cache_fraction: &[],
    prompt_tokens: Source::HistogramSum(&["tgi_request_input_length"]),
    completion_tokens: Source::HistogramSum(&["tgi_request_generated_tokens"]),
    requests: Source::Counter(&["tgi_request_success"]),
    errors: Source::Counter(&["tgi_request_failure"]),
    ttft: &[],
    latency: &["tgi_request_duration"],
    inter_token: &["tgi_request_mean_time_per_token_duration"],
};

// llama.cpp's llama-server with --metrics: tools/server/README.md of llama.cpp.
static LLAMACPP: LlmSpec = LlmSpec {
    provider: "llamacpp",
    model_label: "",
    running: &["llamacpp:requests_processing"],
    waiting: &["llamacpp:requests_deferred"],
    kv_cache_fraction: &["llamacpp:kv_cache_usage_ratio"],
    prompt_tokens: Source::Counter(&["llamacpp:prompt_tokens_total"]),
    completion_tokens: Source::Counter(&["llamacpp:tokens_predicted_total"]),
    requests: Source::None,
    errors: Source::None,
    ttft: &[],
    latency: &[],
    inter_token: &[],
};

/// What a target's preset remembers between scrapes.
#[derive(Default)]
pub(crate) struct PresetState {
    previous_ns: Option<i64>,
    counters: HashMap<String, f64>,
    histograms: HashMap<String, Vec<(f64, f64)>>,
}

/// The `q` quantile (0 to 1) of a histogram given as (upper bound, cumulative count) pairs
/// sorted by bound, the last being `+Inf`, interpolating linearly inside the bucket that holds
/// it, as Prometheus' `histogram_quantile` does. `None` when the histogram is empty.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total.is_nan() || total <= 0.0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = q * total;
    let mut lower_bound = 0.0;
    let mut lower_count = 0.0;
    for (i, &(bound, count)) in buckets.iter().enumerate() {
        if count >= rank {
            if bound.is_infinite() {
                // Past the highest finite bound nothing is known: answer that bound.
                return Some(if i == 0 { 0.0 } else { buckets[i - 1].0 });
            }
            if i == 0 && bound <= 0.0 {
                return Some(bound);
            }
            let in_bucket = count - lower_count;
            if in_bucket <= 0.0 {
                return Some(bound);
            }
            return Some(lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket);
        }
        lower_bound = bound;
        lower_count = count;
    }
    None
}

/// Sums the samples named `names` (first name with samples wins) by the value of `label`
/// (`""`: one group).
fn sum_by(exp: &Exposition<'_>, names: &[&str], label: &str) -> BTreeMap<String, f64> {
    for name in names {
        let mut out: BTreeMap<String, f64> = BTreeMap::new();
        for sample in exp.samples.iter().filter(|s| s.name() == *name) {
            let key = if label.is_empty() {
                String::new()
            } else {
                exp.label(sample, label).unwrap_or("").to_string()
            };
            *out.entry(key).or_default() += sample.value;
        }
        if !out.is_empty() {
            return out;
        }
    }
    BTreeMap::new()
}

/// A histogram summed over every label but `label`: buckets (bound, cumulative count), sum.
#[derive(Clone, Debug, Default, PartialEq)]
struct Histogram {
    buckets: Vec<(f64, f64)>,
    sum: f64,
}

fn histograms_by(exp: &Exposition<'_>, names: &[&str], label: &str) -> BTreeMap<String, Histogram> {
    for base in names {
        let mut out: BTreeMap<String, Histogram> = BTreeMap::new();
        let Some(family) = exp.family_index(base) else {
            continue;
        };
        for sample in exp.samples.iter().filter(|s| s.family as usize == family) {
            let key = if label.is_empty() {
                String::new()
            } else {
                exp.label(sample, label).unwrap_or("").to_string()
            };
            let h = out.entry(key).or_default();
            match sample.suffix {
                Suffix::Sum => h.sum += sample.value,
                Suffix::Bucket => {
                    let Some(bound) = exp
                        .label(sample, "le")
                        .and_then(|le| le.trim().parse::<f64>().ok())
                    else {
                        continue;
                    };
                    match h.buckets.iter_mut().find(|(b, _)| *b == bound) {
                        Some(bucket) => bucket.1 += sample.value,
                        None => h.buckets.push((bound, sample.value)),
                    }
                }
                _ => {}
            }
        }
        for h in out.values_mut() {
            h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        if !out.is_empty() {
            return out;
        }
    }
    BTreeMap::new()
}

impl PresetState {
    /// Increase of a counter since the previous scrape (a reset counts from zero).
    fn increase(&mut self, key: String, now: f64) -> Option<f64> {
        let before = self.counters.insert(key, now)?;
        Some(if now >= before { now - before } else { now })
    }

    /// Increase of each bucket since the previous scrape; a reset (any bucket went back, or
    /// the bounds changed) counts from zero.
    fn histogram_increase(&mut self, key: String, now: &[(f64, f64)]) -> Option<Vec<(f64, f64)>> {
        let before = self.histograms.insert(key, now.to_vec())?;
        let same_bounds =
            before.len() == now.len() && before.iter().zip(now).all(|(a, b)| a.0 == b.0);
        if !same_bounds || before.iter().zip(now).any(|(a, b)| b.1 < a.1) {
            return Some(now.to_vec());
        }
        Some(
            now.iter()
                .zip(&before)
                .map(|(n, b)| (n.0, n.1 - b.1))
                .collect(),
        )
    }
}

/// Adds the series a preset derives from one scrape.
pub(crate) fn derive(
    preset: Preset,
    exp: &Exposition<'_>,
    state: &mut PresetState,
    ctx: &SampleContext<'_>,
    endpoint: &str,
    extra_tags: &[(String, String)],
    batch: &mut PointBatch<'static>,
) -> Result<(), SamplerError> {
    let seconds = state
        .previous_ns
        .map(|before| ctx.timestamp_ns.saturating_sub(before) as f64 / 1e9)
        .filter(|s| *s > 0.0);
    let result = match preset {
        Preset::Generic => Ok(()),
        Preset::Dcgm => dcgm(exp, ctx, extra_tags, batch),
        Preset::NodeExporter => node_exporter(exp, state, seconds, ctx, extra_tags, batch),
        _ => match preset.llm() {
            Some(spec) => llm(spec, exp, state, seconds, ctx, endpoint, extra_tags, batch),
            None => Ok(()),
        },
    };
    state.previous_ns = Some(ctx.timestamp_ns);
    result
}

/// Tags for a derived point: the preset's own, then the target's configured tags, which win.
fn with_extra<'t>(
    mut tags: Vec<(&'t str, &'t str)>,
    extra: &'t [(String, String)],
) -> Vec<(&'t str, &'t str)> {
    for (k, v) in extra {
        match tags.iter_mut().find(|(key, _)| key == k) {
            Some(existing) => existing.1 = v,
            None => tags.push((k, v)),
        }
    }
    tags
}

#[allow(clippy::too_many_arguments)]
fn llm(
    spec: &LlmSpec,
    exp: &Exposition<'_>,
    state: &mut PresetState,
    seconds: Option<f64>,
    ctx: &SampleContext<'_>,
    endpoint: &str,
    extra_tags: &[(String, String)],
    batch: &mut PointBatch<'static>,
) -> Result<(), SamplerError> {
    let label = spec.model_label;
    let running = sum_by(exp, spec.running, label);
    let waiting = sum_by(exp, spec.waiting, label);
    let kv = sum_by(exp, spec.kv_cache_fraction, label);
    let source = |source: &Source| -> BTreeMap<String, f64> {
        match source {
            Source::None => BTreeMap::new(),
            Source::Counter(names) => sum_by(exp, names, label),
            Source::HistogramSum(names) => histograms_by(exp, names, label)
                .into_iter()
                .map(|(k, h)| (k, h.sum))
                .collect(),
        }
    };
    let rates = [
        ("prompt_tokens_per_s", source(&spec.prompt_tokens)),
        ("completion_tokens_per_s", source(&spec.completion_tokens)),
        ("requests_per_s", source(&spec.requests)),
        ("errors_per_s", source(&spec.errors)),
    ];
    let histograms = [
        ("ttft_ms", histograms_by(exp, spec.ttft, label)),
        ("latency_ms", histograms_by(exp, spec.latency, label)),
        (
            "inter_token_ms",
            histograms_by(exp, spec.inter_token, label),
        ),
    ];
    let mut models: Vec<&String> = running
        .keys()
        .chain(waiting.keys())
        .chain(kv.keys())
        .chain(rates.iter().flat_map(|(_, m)| m.keys()))
        .chain(histograms.iter().flat_map(|(_, m)| m.keys()))
        .collect();
    models.sort();
    models.dedup();
    for model in models {
        let mut fields = Vec::new();
        if let Some(v) = running.get(model) {
            fields.push(("requests_running".to_string(), *v));
        }
        if let Some(v) = waiting.get(model) {
            fields.push(("requests_waiting".to_string(), *v));
        }
        if let Some(v) = kv.get(model) {
            fields.push(("kv_cache_usage_percent".to_string(), v * 100.0));
        }
        for (name, values) in &rates {
            let Some(now) = values.get(model) else {
                continue;
            };
            let increase = state.increase(format!("{name}\u{0}{model}"), *now);
            if let (Some(increase), Some(seconds)) = (increase, seconds) {
                fields.push((name.to_string(), increase / seconds));
            }
        }
        for (name, values) in &histograms {
            let Some(h) = values.get(model) else {
                continue;
            };
            let sum_increase = state.increase(format!("{name}\u{0}sum\u{0}{model}"), h.sum);
            let Some(delta) = state.histogram_increase(format!("{name}\u{0}{model}"), &h.buckets)
            else {
                continue;
            };
            let count = delta.last().map_or(0.0, |b| b.1);
            if count <= 0.0 {
                continue;
            }
            for (suffix, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
                if let Some(v) = histogram_quantile(q, &delta) {
                    fields.push((format!("{name}_{suffix}"), v * 1000.0));
                }
            }
            if let Some(sum) = sum_increase {
                fields.push((format!("{name}_mean"), sum / count * 1000.0));
            }
        }
        let model_tag = if model.is_empty() {
            "unknown"
        } else {
            model.as_str()
        };
        let tags = with_extra(
            vec![
                ("endpoint", endpoint),
                ("host", ctx.host),
                ("model", model_tag),
                ("provider", spec.provider),
            ],
            extra_tags,
        );
        push_point(
            batch,
            "llm_server",
            &tags,
            fields
                .into_iter()
                .map(|(k, v)| (std::borrow::Cow::Owned(k), float(v)))
                .collect(),
            ctx.timestamp_ns,
        )?;
    }
    Ok(())
}

/// DCGM exporter field → `nvidia_smi` field and the factor that converts its unit.
const DCGM_FIELDS: &[(&str, &str, f64)] = &[
    ("DCGM_FI_DEV_GPU_UTIL", "utilization_gpu", 1.0),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "utilization_memory", 1.0),
    ("DCGM_FI_DEV_FB_USED", "memory_used", 1.0),
    ("DCGM_FI_DEV_FB_FREE", "memory_free", 1.0),
    ("DCGM_FI_DEV_POWER_USAGE", "power_draw", 1.0),
    ("DCGM_FI_DEV_POWER_MGMT_LIMIT", "power_limit", 1.0),
    // DCGM counts millijoules; nvidia_smi's energy is in joules.
    (
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "energy_consumption",
        0.001,
    ),
    ("DCGM_FI_DEV_GPU_TEMP", "temperature_gpu", 1.0),
    ("DCGM_FI_DEV_SM_CLOCK", "clocks_current_sm", 1.0),
    ("DCGM_FI_DEV_MEM_CLOCK", "clocks_current_memory", 1.0),
    ("DCGM_FI_DEV_FAN_SPEED", "fan_speed", 1.0),
    ("DCGM_FI_DEV_PCIE_TX_THROUGHPUT", "pcie_tx", 1.0),
    ("DCGM_FI_DEV_PCIE_RX_THROUGHPUT", "pcie_rx", 1.0),
    ("DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", "ecc_errors_corrected", 1.0),
    (
        "DCGM_FI_DEV_ECC_DBE_AGG_TOTAL",
        "ecc_errors_uncorrected",
        1.0,
    ),
];

fn dcgm(
    exp: &Exposition<'_>,
    ctx: &SampleContext<'_>,
    extra_tags: &[(String, String)],
    batch: &mut PointBatch<'static>,
) -> Result<(), SamplerError> {
    // (gpu index, uuid, model name, host) → fields.
    type Key = (String, String, String, String);
    let mut gpus: BTreeMap<Key, Vec<(&'static str, f64)>> = BTreeMap::new();
    let mut throttle: BTreeMap<Key, u64> = BTreeMap::new();
    for sample in &exp.samples {
        let name = sample.name();
        if !name.starts_with("DCGM_FI_") {
            continue;
        }
        let key = (
            exp.label(sample, "gpu").unwrap_or("0").to_string(),
            exp.label(sample, "UUID").unwrap_or("").to_string(),
            exp.label(sample, "modelName").unwrap_or("").to_string(),
            exp.label(sample, "Hostname")
                .unwrap_or(ctx.host)
                .to_string(),
        );
        if name == "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"
            || name == "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"
        {
            throttle.insert(key, sample.value.max(0.0) as u64);
            continue;
        }
        if let Some((_, field, factor)) = DCGM_FIELDS.iter().find(|(n, _, _)| *n == name) {
            gpus.entry(key)
                .or_default()
                .push((field, sample.value * factor));
        }
    }
    for key in throttle.keys() {
        gpus.entry(key.clone()).or_default();
    }
    for (key, mut values) in gpus {
        let get =
            |values: &[(&str, f64)], k: &str| values.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        if let (Some(used), Some(free)) = (get(&values, "memory_used"), get(&values, "memory_free"))
        {
            values.push(("memory_total", used + free));
        }
        let mut fields = named(values.into_iter().map(|(k, v)| (k, float(v))));
        if let Some(bits) = throttle.get(&key) {
            fields.extend(named([("throttle_reasons", integer(*bits))]));
        }
        let (index, uuid, name, host) = &key;
        let tags = with_extra(
            vec![
                ("host", host.as_str()),
                ("index", index.as_str()),
                ("name", name.as_str()),
                ("uuid", uuid.as_str()),
            ],
            extra_tags,
        );
        push_point(batch, "nvidia_smi", &tags, fields, ctx.timestamp_ns)?;
    }
    Ok(())
}

fn first(exp: &Exposition<'_>, name: &str) -> Option<f64> {
    exp.samples
        .iter()
        .find(|s| s.name() == name)
        .map(|s| s.value)
}

fn bytes(v: f64) -> tally_engine::FieldValue<'static> {
    integer(if v.is_finite() && v > 0.0 {
        v as u64
    } else {
        0
    })
}

fn node_exporter(
    exp: &Exposition<'_>,
    state: &mut PresetState,
    seconds: Option<f64>,
    ctx: &SampleContext<'_>,
    extra_tags: &[(String, String)],
    batch: &mut PointBatch<'static>,
) -> Result<(), SamplerError> {
    let host_tags = with_extra(vec![("host", ctx.host)], extra_tags);
    let ts = ctx.timestamp_ns;
    if let Some(total) = first(exp, "node_memory_MemTotal_bytes") {
        let m = |k: &str| first(exp, &format!("node_memory_{k}_bytes")).unwrap_or(0.0);
        let free = m("MemFree");
        let buffered = m("Buffers");
        let cached = m("Cached") + m("SReclaimable");
        let available =
            first(exp, "node_memory_MemAvailable_bytes").unwrap_or(free + buffered + cached);
        let used = (total - free - buffered - cached).max(0.0);
        let pct = |v: f64| if total > 0.0 { v * 100.0 / total } else { 0.0 };
        push_point(
            batch,
            "mem",
            &host_tags,
            named([
                ("total", bytes(total)),
                ("available", bytes(available)),
                ("used", bytes(used)),
                ("free", bytes(free)),
                ("cached", bytes(cached)),
                ("buffered", bytes(buffered)),
                ("active", bytes(m("Active"))),
                ("inactive", bytes(m("Inactive"))),
                ("shared", bytes(m("Shmem"))),
                ("slab", bytes(m("Slab"))),
                ("dirty", bytes(m("Dirty"))),
                ("used_percent", float(pct(used))),
                ("available_percent", float(pct(available))),
            ]),
            ts,
        )?;
        let swap_total = m("SwapTotal");
        let swap_free = m("SwapFree");
        let swap_used = (swap_total - swap_free).max(0.0);
        let mut fields = named([
            ("total", bytes(swap_total)),
            ("used", bytes(swap_used)),
            ("free", bytes(swap_free)),
            (
                "used_percent",
                float(if swap_total > 0.0 {
                    swap_used * 100.0 / swap_total
                } else {
                    0.0
                }),
            ),
        ]);
        if let (Some(pages_in), Some(pages_out)) = (
            first(exp, "node_vmstat_pswpin"),
            first(exp, "node_vmstat_pswpout"),
        ) {
            fields.extend(named([
                ("in", bytes(pages_in * 4096.0)),
                ("out", bytes(pages_out * 4096.0)),
            ]));
        }
        push_point(batch, "swap", &host_tags, fields, ts)?;
    }
    let cpu_seconds: Vec<(&str, &str, f64)> = exp
        .samples
        .iter()
        .filter(|s| s.name() == "node_cpu_seconds_total")
        .filter_map(|s| Some((exp.label(s, "cpu")?, exp.label(s, "mode")?, s.value)))
        .collect();
    if let Some(load1) = first(exp, "node_load1") {
        let mut cpus: Vec<&str> = cpu_seconds.iter().map(|(c, _, _)| *c).collect();
        cpus.sort_unstable();
        cpus.dedup();
        let mut fields = named([
            ("load1", float(load1)),
            ("load5", float(first(exp, "node_load5").unwrap_or(0.0))),
            ("load15", float(first(exp, "node_load15").unwrap_or(0.0))),
        ]);
        if !cpus.is_empty() {
            fields.extend(named([("n_cpus", integer(cpus.len() as u64))]));
        }
        if let (Some(now), Some(boot)) = (
            first(exp, "node_time_seconds"),
            first(exp, "node_boot_time_seconds"),
        ) {
            fields.extend(named([("uptime", bytes(now - boot))]));
        }
        push_point(batch, "system", &host_tags, fields, ts)?;
    }
    // CPU usage: the increase of each mode's seconds over the increase of all modes.
    let mut per_cpu: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for (cpu, mode, value) in &cpu_seconds {
        let increase = state.increase(format!("cpu\u{0}{cpu}\u{0}{mode}"), *value);
        if let Some(increase) = increase {
            *per_cpu
                .entry(format!("cpu{cpu}"))
                .or_default()
                .entry(mode.to_string())
                .or_default() += increase;
            *per_cpu
                .entry("cpu-total".to_string())
                .or_default()
                .entry(mode.to_string())
                .or_default() += increase;
        }
    }
    if seconds.is_some() {
        for (cpu, modes) in &per_cpu {
            let total: f64 = modes.values().sum();
            if total <= 0.0 {
                continue;
            }
            let fields = modes
                .iter()
                .map(|(mode, v)| {
                    (
                        std::borrow::Cow::Owned(format!("usage_{mode}")),
                        float(v * 100.0 / total),
                    )
                })
                .collect();
            let tags = with_extra(vec![("cpu", cpu.as_str()), ("host", ctx.host)], extra_tags);
            push_point(batch, "cpu", &tags, fields, ts)?;
        }
    }
    let by_device = |name: &str| -> BTreeMap<String, f64> { sum_by(exp, &[name], "device") };
    let net = [
        ("bytes_recv", "node_network_receive_bytes_total"),
        ("bytes_sent", "node_network_transmit_bytes_total"),
        ("packets_recv", "node_network_receive_packets_total"),
        ("packets_sent", "node_network_transmit_packets_total"),
        ("err_in", "node_network_receive_errs_total"),
        ("err_out", "node_network_transmit_errs_total"),
        ("drop_in", "node_network_receive_drop_total"),
        ("drop_out", "node_network_transmit_drop_total"),
    ];
    per_device_points(
        batch,
        "net",
        "interface",
        &net,
        1.0,
        &by_device,
        ctx,
        extra_tags,
        |d| d != "lo",
    )?;
    let diskio_counts = [
        ("reads", "node_disk_reads_completed_total"),
        ("writes", "node_disk_writes_completed_total"),
        ("read_bytes", "node_disk_read_bytes_total"),
        ("write_bytes", "node_disk_written_bytes_total"),
        ("iops_in_progress", "node_disk_io_now"),
        ("merged_reads", "node_disk_reads_merged_total"),
        ("merged_writes", "node_disk_writes_merged_total"),
    ];
    let diskio_times = [
        ("read_time", "node_disk_read_time_seconds_total"),
        ("write_time", "node_disk_write_time_seconds_total"),
        ("io_time", "node_disk_io_time_seconds_total"),
        (
            "weighted_io_time",
            "node_disk_io_time_weighted_seconds_total",
        ),
    ];
    let mut diskio: BTreeMap<String, Vec<(&'static str, tally_engine::FieldValue<'static>)>> =
        BTreeMap::new();
    for (field, metric) in diskio_counts {
        for (device, v) in by_device(metric) {
            diskio.entry(device).or_default().push((field, bytes(v)));
        }
    }
    for (field, metric) in diskio_times {
        for (device, v) in by_device(metric) {
            // Telegraf's diskio times are milliseconds.
            diskio
                .entry(device)
                .or_default()
                .push((field, bytes(v * 1000.0)));
        }
    }
    for (device, fields) in diskio {
        let tags = with_extra(
            vec![("host", ctx.host), ("name", device.as_str())],
            extra_tags,
        );
        push_point(batch, "diskio", &tags, named(fields), ts)?;
    }
    for sample in exp
        .samples
        .iter()
        .filter(|s| s.name() == "node_filesystem_size_bytes")
    {
        let Some(path) = exp.label(sample, "mountpoint") else {
            continue;
        };
        let total = sample.value;
        if total <= 0.0 {
            continue;
        }
        let free = exp
            .samples
            .iter()
            .find(|s| {
                s.name() == "node_filesystem_avail_bytes"
                    && exp.label(s, "mountpoint") == Some(path)
            })
            .map_or(0.0, |s| s.value);
        let used = (total - free).max(0.0);
        let device = exp.label(sample, "device").unwrap_or("");
        let device = device.strip_prefix("/dev/").unwrap_or(device);
        let tags = with_extra(
            vec![
                ("device", device),
                ("fstype", exp.label(sample, "fstype").unwrap_or("")),
                ("host", ctx.host),
                ("path", path),
            ],
            extra_tags,
        );
        push_point(
            batch,
            "disk",
            &tags,
            named([
                ("total", bytes(total)),
                ("free", bytes(free)),
                ("used", bytes(used)),
                ("used_percent", float(used * 100.0 / total)),
            ]),
            ts,
        )?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn per_device_points(
    batch: &mut PointBatch<'static>,
    measurement: &str,
    tag: &str,
    metrics: &[(&'static str, &str)],
    factor: f64,
    by_device: &dyn Fn(&str) -> BTreeMap<String, f64>,
    ctx: &SampleContext<'_>,
    extra_tags: &[(String, String)],
    keep: impl Fn(&str) -> bool,
) -> Result<(), SamplerError> {
    let mut devices: BTreeMap<String, Vec<(&'static str, tally_engine::FieldValue<'static>)>> =
        BTreeMap::new();
    for (field, metric) in metrics {
        for (device, v) in by_device(metric) {
            if keep(&device) {
                devices
                    .entry(device)
                    .or_default()
                    .push((field, bytes(v * factor)));
            }
        }
    }
    for (device, fields) in devices {
        let tags = with_extra(vec![("host", ctx.host), (tag, device.as_str())], extra_tags);
        push_point(batch, measurement, &tags, named(fields), ctx.timestamp_ns)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_inside_the_bucket_as_prometheus_does() {
        let buckets = [(0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (f64::INFINITY, 40.0)];
        let close = |got: Option<f64>, want: f64| got.is_some_and(|g| (g - want).abs() < 1e-12);
        // Rank 20 of 40 lies halfway through the (0.1, 0.5] bucket.
        assert!(close(histogram_quantile(0.5, &buckets), 0.3));
        // Rank 5 lies halfway through the first bucket, which starts at 0.
        assert!(close(histogram_quantile(0.125, &buckets), 0.05));
        assert_eq!(histogram_quantile(1.0, &buckets), Some(1.0));
        let overflow = [(0.1, 1.0), (f64::INFINITY, 10.0)];
        assert_eq!(
            histogram_quantile(0.99, &overflow),
            Some(0.1),
            "the highest finite bound"
        );
        assert_eq!(
            histogram_quantile(0.5, &[(1.0, 0.0), (f64::INFINITY, 0.0)]),
            None
        );
        assert_eq!(histogram_quantile(0.5, &[]), None);
        assert_eq!(histogram_quantile(1.5, &buckets), None);
    }

    #[test]
    fn counter_increases_handle_first_readings_and_resets() {
        let mut state = PresetState::default();
        assert_eq!(state.increase("a".into(), 10.0), None);
        assert_eq!(state.increase("a".into(), 25.0), Some(15.0));
        assert_eq!(
            state.increase("a".into(), 5.0),
            Some(5.0),
            "a reset counts from zero"
        );
        let first = [(1.0, 2.0), (f64::INFINITY, 3.0)];
        assert_eq!(state.histogram_increase("h".into(), &first), None);
        let second = [(1.0, 5.0), (f64::INFINITY, 9.0)];
        assert_eq!(
            state.histogram_increase("h".into(), &second),
            Some(vec![(1.0, 3.0), (f64::INFINITY, 6.0)])
        );
        assert_eq!(
            state.histogram_increase("h".into(), &first),
            Some(first.to_vec())
        );
    }

    #[test]
    fn presets_parse_by_their_configuration_names() {
        for preset in Preset::ALL {
            assert_eq!(Preset::parse(preset.name()), Some(preset));
        }
        assert_eq!(Preset::parse("VLLM"), None);
    }
}
